"""The Prefect server the commands of a host share, and the supervision behind
``neuroptimus serve``."""
