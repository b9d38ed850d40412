"""One import name: the layers import as ``neuroptimus.<layer>`` only, and a module of the same
bare name first on sys.path (a scientist's own ``analysis.py``) changes nothing."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("optimization", "storage", "tasks", "flows", "analysis", "usecases")
# a file that names the old modules on purpose (reading old pickles) says so
KEEP_MARKER = "rename-imports: keep old names"
# "flows.cli", "flows.prefect_server:server_app", "optimization.algorithms.cmaes_adapter"
MODULE_PATH = re.compile(rf"({'|'.join(LAYERS)})((?:\.\w+)+)(?::\w+)?")


def _sources():
    for folder in (*LAYERS, "tests", "docs"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            text = path.read_text()
            if KEEP_MARKER not in text:
                yield path, ast.parse(text, str(path))


def _is_module(dotted: str) -> bool:
    path = ROOT.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _names_a_module(dotted: str) -> bool:
    """A module of ours, or a name in one (``optimization.runner.Checkpoint``)."""
    parent = dotted.rsplit(".", 1)[0]
    return _is_module(dotted) or ("." in parent and _is_module(parent))


def test_a_users_modules_named_like_our_layers_do_not_shadow_them(tmp_path):
    for name in LAYERS:
        (tmp_path / f"{name}.py").write_text(f"raise SystemExit('the user {name}.py ran')\n")
    code = (
        "import sys\n"
        "import neuroptimus.analysis.figures, neuroptimus.flows.cli\n"
        "import neuroptimus.storage.runs.create\n"
        "import neuroptimus.tasks.evaluate, neuroptimus.optimization.scoring.costs as costs\n"
        "from neuroptimus import usecases\n"
        "from neuroptimus.optimization.algorithms import list_algorithms\n"
        "assert len(list_algorithms()) > 20 and 'hh' in usecases.names()  # imports every family\n"
        f"bare = sorted(m for m in sys.modules if m.partition('.')[0] in {LAYERS!r})\n"
        "assert not bare, bare\n"
        "print(costs.__name__)\n"
    )
    path = os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": path},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "neuroptimus.optimization.scoring.costs"


def test_the_command_line_runs_as_a_module_beside_a_users_flows_py(tmp_path):
    (tmp_path / "flows.py").write_text("raise SystemExit('the user flows.py ran')\n")
    path = os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-m", "neuroptimus.flows.cli", "usecases"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": path},
    )
    assert done.returncode == 0, done.stderr
    assert "hh" in done.stdout


def test_no_module_imports_a_bare_layer_name():
    offenders = []
    for path, tree in _sources():
        for node in ast.walk(tree):
            names = (
                [alias.name for alias in node.names] if isinstance(node, ast.Import)
                else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level
                else []
            )  # fmt: skip
            offenders += [
                f"{path.relative_to(ROOT)}:{node.lineno} {name}"
                for name in names
                if name.partition(".")[0] in LAYERS
            ]
    assert offenders == []


def test_no_string_names_a_module_by_its_bare_path():
    """``-m flows.cli``, a uvicorn target, ``import_module("optimization.x")``, a patch target:
    strings that Python would import as a bare layer name."""
    offenders = []
    for path, tree in _sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                match = MODULE_PATH.fullmatch(node.value)
                if match and _names_a_module(match[1] + match[2]):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value!r}")
    assert offenders == []


def test_the_package_links_every_layer_folder():
    package = ROOT / "neuroptimus"
    for name in LAYERS:
        link = package / name
        assert link.is_symlink() and os.readlink(link) == f"../{name}", name
        assert (link / "__init__.py").resolve() == ROOT / name / "__init__.py"
