"""The environment of a ``neuroptimus`` command started by a test, as a user starts it."""

from __future__ import annotations

import os


def command_env(**settings: str) -> dict[str, str]:
    """This process's environment without the test harness's Prefect settings, so the command
    uses the host's shared Prefect server (started by the first command, found warm by the
    next, including ones a test kills), plus ``settings``."""
    environment = {
        k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "PREFECT_HOME")
    }
    return {**environment, **settings}
