"""Thin Prefect tasks around library calls (retries, logging, artifacts)."""
