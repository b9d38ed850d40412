"""The catalog's database: its tables (models.py) and their migrations, opening it, and the queries
behind the pages and the API (runs, use cases, leaderboards, accounts)."""
