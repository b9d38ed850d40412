"""Importing the original Neuroptimus's settings files (algorithms, external programs)."""
