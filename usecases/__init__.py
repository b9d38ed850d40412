"""The benchmark problems shipped with the tool, addressed by name (``hh``, ``vclamp``,
``ca1-passive`` …): a folder per problem, its name with ``_`` for ``-``."""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent


def names() -> list[str]:
    return sorted(p.parent.name.replace("_", "-") for p in _HERE.glob("*/problem.yaml"))


def description(name: str) -> str:
    """A bundled problem's one-line description, read without validating the problem (which
    would fetch its data files)."""
    import yaml  # noqa: PLC0415 (lazy: the command line imports this registry at start)

    data = yaml.safe_load(problem_path(name).read_text())
    return str(data.get("description", ""))


def problem_path(name_or_path: str) -> Path:
    """The problem file of a use-case name, or the given path if it is not a name."""
    candidate = _HERE / name_or_path.replace("-", "_") / "problem.yaml"
    if "/" not in name_or_path and candidate.is_file():
        return candidate
    return Path(name_or_path)
