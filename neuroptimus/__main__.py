"""``python -m neuroptimus``: the command line, as the ``neuroptimus`` script runs it."""

from neuroptimus.flows.cli import app, run_and_exit

run_and_exit(app)
