"""The results catalog: a searchable record of runs, comparable across users (see schema)."""
