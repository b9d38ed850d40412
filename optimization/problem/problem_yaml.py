"""Write a problem mapping as YAML a person reads and edits: comments kept, order kept.

``yaml.safe_dump`` loses comments and writes every small mapping over several lines; a
problem file is easier to read with one line per parameter and per cost term, as the bundled
ones are written. Small mappings and lists go on one line (flow style) when they fit;
everything else is block style. Scalars are written by PyYAML itself, so quoting and floats
(``1.0e-05``, never ``1e-05``, which YAML 1.1 reads as a string) are always read back exactly.
"""

from __future__ import annotations

import textwrap
from typing import Any

import yaml

WIDTH = 100


def dump_problem(
    data: dict[str, Any], header: list[str] = (), comments: dict[str, str] | None = None
) -> str:
    """YAML text of ``data`` with ``header`` lines as top comments and ``comments`` (dotted
    key path -> text) at the end of those keys' lines. Reading it back gives ``data``."""
    lines = [
        f"# {wrapped}".rstrip()
        for line in header
        for wrapped in (textwrap.wrap(line, WIDTH - 2, subsequent_indent="  ") or [""])
    ]
    lines += _mapping(data, 0, "", comments or {})
    text = "\n".join(lines) + "\n"
    if yaml.safe_load(text) != data:  # a bug here must never write a different problem
        raise AssertionError("problem YAML does not read back as written")
    return text


def _scalar(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10**6, sort_keys=False)
    return text.removesuffix("\n").removesuffix("\n...").strip()


def _flow(value: Any) -> str | None:
    """One-line form of a small mapping or list of scalars, None when it has nested blocks."""
    items = value.values() if isinstance(value, dict) else value
    if any(isinstance(v, dict) or (isinstance(v, list) and _nested(v)) for v in items):
        return None
    return _scalar(value)


def _nested(values: list[Any]) -> bool:
    return any(isinstance(v, dict | list) for v in values)


def _with_comment(line: str, comment: str | None) -> str:
    return f"{line}  # {comment}" if comment else line


def _mapping(data: dict[str, Any], indent: int, path: str, comments: dict[str, str]) -> list:
    pad = " " * indent
    lines = []
    for key, value in data.items():
        here = f"{path}.{key}" if path else key
        comment = comments.get(here)
        if isinstance(value, dict) and value:
            flow = _flow(value)
            if flow is not None and indent + len(key) + len(flow) + 2 <= WIDTH and indent:
                lines.append(_with_comment(f"{pad}{key}: {flow}", comment))
            else:
                lines.append(_with_comment(f"{pad}{key}:", comment))
                lines += _mapping(value, indent + 2, here, comments)
        elif isinstance(value, list) and value and _nested(value):
            lines.append(_with_comment(f"{pad}{key}:", comment))
            lines += _sequence(value, indent + 2, here, comments)
        else:
            lines.append(_with_comment(f"{pad}{key}: {_scalar(value)}", comment))
    return lines


def _sequence(items: list[Any], indent: int, path: str, comments: dict[str, str]) -> list:
    pad = " " * indent
    lines = []
    for index, item in enumerate(items):
        comment = comments.get(f"{path}[{index}]")
        flow = _flow(item) if isinstance(item, dict | list) else _scalar(item)
        if flow is not None:
            lines.append(_with_comment(f"{pad}- {flow}", comment))
        elif isinstance(item, dict):
            block = _mapping(item, indent + 2, f"{path}[{index}]", comments)
            lines.append(_with_comment(f"{pad}- {block[0].lstrip()}", comment))
            lines += block[1:]
        else:
            lines.append(f"{pad}-")
            lines += _sequence(item, indent + 2, f"{path}[{index}]", comments)
    return lines
