"""Prefect flows (setup, optimize, analyze, and run = all three) and the command line."""
