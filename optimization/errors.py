"""The errors Neuroptimus raises on purpose, in two families, and the one rule for retrying.

Every such error's message is one sentence naming what to fix. A ``UserError`` is something
the user must change (the problem file, the model, the data, a setting, an argument, a catalog
request): retrying only repeats it, and every command prints it in one line and exits with
``USER_EXIT``. An ``InfrastructureError`` is the machine failing (a lost worker, a fresh
process that cannot start, a lock that times out, a server that does not answer): Prefect
retries it, and a command exits with ``INFRASTRUCTURE_EXIT``. A ``NeuroptimusError`` of
neither family (a run store that cannot be written) is decided by its cause: a disk error
behind it is infrastructure, nothing behind it is the user's.

Each class also keeps its built-in base (``class SpecError(UserError, ValueError)``), so
``except ValueError`` around older code still catches it."""

from __future__ import annotations

USER_EXIT = 2
INFRASTRUCTURE_EXIT = 3


class NeuroptimusError(Exception):
    """Base of every error Neuroptimus raises on purpose."""


class UserError(NeuroptimusError):
    """Something the user must fix; never retried."""


class InfrastructureError(NeuroptimusError):
    """The machine failed; worth retrying."""


def _chain(error: BaseException | None) -> list[BaseException]:
    """The error and its causes (``raise ... from``) or contexts, outermost first."""
    seen: list[BaseException] = []
    while error is not None and error not in seen:
        seen.append(error)
        error = error.__cause__ or error.__context__
    return seen


def _infrastructure_types() -> tuple[type[BaseException], ...]:
    import concurrent.futures  # noqa: PLC0415 (lazy: the command line imports errors at its start)

    try:  # a lost worker or a cancelled future of Dask's (optional outside a cluster)
        from distributed import KilledWorker  # noqa: PLC0415 (lazy: the command line imports errors at start; Dask takes seconds)
        from distributed.client import FutureCancelledError  # noqa: PLC0415 (lazy: the command line imports errors at start; Dask takes seconds)
    except ImportError:  # pragma: no cover - distributed is a dependency
        dask_types: tuple[type[BaseException], ...] = ()
    else:
        dask_types = (KilledWorker, FutureCancelledError)
    # OSError covers Dask's CommClosedError, lost connections and a full disk; TimeoutError
    # (asyncio's too) a scheduler that does not answer
    return (
        InfrastructureError,
        OSError,
        TimeoutError,
        concurrent.futures.CancelledError,
        *dask_types,
    )


def is_retryable(error: BaseException | None) -> bool:
    """The one retry rule. Walk the error and its causes, outermost first: a ``UserError``
    met first means no; an infrastructure failure (``InfrastructureError``, ``OSError``,
    ``TimeoutError``, a killed worker or a cancelled future) means yes; anything else — a bug —
    means no."""
    infrastructure = _infrastructure_types()
    for link in _chain(error):
        if isinstance(link, UserError):
            return False
        if isinstance(link, infrastructure):
            return True
    return False


def exit_code(error: BaseException) -> int:
    """The exit code of a command that stops on ``error``."""
    return INFRASTRUCTURE_EXIT if is_retryable(error) else USER_EXIT
