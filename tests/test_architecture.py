"""The architecture is checked, not only described: import-linter's contracts (the layers, the
library without Prefect or the web, the run store without the catalog, the library's concepts
in one direction, no import cycles), ruff's lint and format, every product module
importable on its own and none over 500 lines."""

from __future__ import annotations

import importlib
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("optimization", "storage", "tasks", "flows", "analysis", "usecases")


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: pip install -e '.[test]'")
    return found


def _run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_the_import_contracts_hold():
    result = _run(_tool("lint-imports"), "--no-cache")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_ruff_lint_and_format_are_clean():
    lint = _run(_tool("ruff"), "check", ".")
    assert lint.returncode == 0, lint.stdout[-4000:]
    formatted = _run(_tool("ruff"), "format", "--check", ".")
    assert formatted.returncode == 0, formatted.stdout[-4000:]


def test_every_product_module_imports():
    failed = []
    for layer in LAYERS:
        package = importlib.import_module(f"neuroptimus.{layer}")
        for module in pkgutil.walk_packages(package.__path__, f"neuroptimus.{layer}."):
            if ".migrations." in module.name or module.name.endswith(".__main__"):
                continue  # Alembic's scripts run inside Alembic; __main__ runs the command
            try:
                importlib.import_module(module.name)
            except Exception as error:  # noqa: BLE001 - every failure is reported together
                failed.append(f"{module.name}: {type(error).__name__}: {error}")
    assert not failed, "\n".join(failed)


MAX_LINES = 500


def test_no_product_module_is_over_500_lines():
    too_long = []
    for layer in LAYERS:
        for path in sorted((ROOT / layer).rglob("*.py")):
            lines = len(path.read_text().splitlines())
            if lines > MAX_LINES:
                too_long.append(f"{path.relative_to(ROOT)}: {lines} lines")
    assert not too_long, (
        f"split these modules by concept (at most {MAX_LINES} lines each): " + ", ".join(too_long)
    )
