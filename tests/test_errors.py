"""One error hierarchy: every error the product raises on purpose is a NeuroptimusError (a
user's mistake, the machine's failure, or decided by its cause), one rule decides what Prefect
retries, and commands turn a user's mistake into one line and exit code 2."""

from __future__ import annotations

import ast
import functools
import importlib
import subprocess
import sys
from pathlib import Path

import pytest
from distributed import KilledWorker

from neuroptimus.optimization.errors import (
    InfrastructureError,
    NeuroptimusError,
    UserError,
    exit_code,
    is_retryable,
)
from neuroptimus.optimization.problem.spec_base import SpecError
from neuroptimus.optimization.simulators import ModelError
from neuroptimus.storage.catalog.client import CatalogClientError, CatalogUnavailable
from neuroptimus.storage.runs.run_store import StoreError

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("optimization", "storage", "tasks", "flows", "analysis", "usecases")
# control flow, not an error: unwinds an algorithm's own loop when a run stops
NOT_ERRORS = {"neuroptimus.optimization.algorithms.bridge._Abandoned"}


@functools.cache  # read once for both tests that ask
def _exception_classes() -> list[str]:
    """Dotted names of the product's classes that derive from an exception, by reading it."""
    names = []
    for layer in LAYERS:
        for path in sorted((ROOT / layer).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            module = ".".join(["neuroptimus", *path.relative_to(ROOT).with_suffix("").parts])
            for node in ast.walk(ast.parse(path.read_text())):
                bases = [ast.unparse(b) for b in getattr(node, "bases", [])]
                if isinstance(node, ast.ClassDef) and any(
                    b.endswith(("Error", "Exception", "Timeout", "Lost", "Busy", "Conflict"))
                    or b in ("NotFound", "Forbidden", "QuotaExceeded")
                    for b in bases
                ):
                    names.append(f"{module.removesuffix('.__init__')}.{node.name}")
    return names


def test_every_error_the_product_raises_is_a_neuroptimus_error():
    names = _exception_classes()
    assert len(names) > 40  # the scan sees the product's errors
    outside = []
    for name in names:
        module, _, attribute = name.rpartition(".")
        cls = getattr(importlib.import_module(module), attribute)
        if issubclass(cls, BaseException) and not issubclass(cls, NeuroptimusError):
            outside.append(name)
    assert sorted(outside) == sorted(NOT_ERRORS)


def test_no_error_is_in_both_families():
    for name in _exception_classes():
        module, _, attribute = name.rpartition(".")
        cls = getattr(importlib.import_module(module), attribute)
        assert not (issubclass(cls, UserError) and issubclass(cls, InfrastructureError)), name


def _caused(error: BaseException, cause: BaseException) -> BaseException:
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (SpecError("bounds"), False),
        (ModelError("no section soma"), False),
        (_caused(ModelError("the model failed"), OSError("a disk error inside")), False),
        (StoreError("not a run store"), False),  # neither family, nothing behind it: the user's
        (_caused(StoreError("cannot write"), OSError(28, "No space left")), True),
        (OSError("connection reset"), True),
        (TimeoutError("no answer"), True),
        (KilledWorker("key", "worker", 3), True),
        (CatalogUnavailable("cannot reach the catalog", 0), True),
        (CatalogClientError("answered 401: bad token", 401), False),
        (ZeroDivisionError("a bug"), False),
        (_caused(KeyError("a bug"), ValueError("another")), False),
        (None, False),
    ],
    ids=lambda value: type(value).__name__ if not isinstance(value, bool) else str(value),
)
def test_one_rule_decides_what_is_retried(error, retried):
    assert is_retryable(error) is retried
    if error is not None:
        assert exit_code(error) == (3 if retried else 2)


def test_errors_keep_their_builtin_bases():
    assert issubclass(SpecError, ValueError) and issubclass(ModelError, RuntimeError)


@pytest.mark.parametrize(
    "arguments",
    [
        ["evaluate", "no-such-problem.yaml", "--values", "1"],
        ["run", "no-such-problem.yaml"],
        ["resume", "no-such-store.zarr"],
        ["catalog", "pull", "not-a-run-id"],
        ["explore", "no-such-store.zarr"],
    ],
    ids=["evaluate", "run", "resume", "catalog-pull", "explore"],
)
def test_a_users_mistake_is_one_line_and_exit_code_2(tmp_path, arguments):
    result = subprocess.run(
        [sys.executable, "-m", "neuroptimus.flows.cli", *arguments],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-2000:]
