"""What a problem is: the problem file's schema, its parameters, data files and target traces,
and the checks before a run."""
