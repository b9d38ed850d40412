"""NMODL that NEURON 9 refuses but NEURON 8 (which the original Neuroptimus ran) accepted,
found in a mechanisms folder, and the unified diff that fixes it without changing behaviour.

The one known case: a name listed in the NEURON block's ``RANGE`` statement that is also a
``FUNCTION`` or ``PROCEDURE`` of the same file ("ainfi used as both variable and function",
use case 6's ``kd_params3.mod``). NEURON 8 made it a range variable nobody assigns; dropping it
from ``RANGE`` leaves the function and the simulation as they were.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

_CALLABLE = re.compile(r"^\s*(?:FUNCTION|PROCEDURE)\s+([A-Za-z_]\w*)", re.MULTILINE)
_NEURON_BLOCK = re.compile(r"^\s*NEURON\s*\{")
_RANGE = re.compile(r"^(\s*RANGE\s+)([^:]*?)(\s*(:.*)?)$")


def _code(text: str) -> str:
    """NMODL without its ``:`` comments (and ``COMMENT … ENDCOMMENT`` blocks)."""
    text = re.sub(r"^\s*COMMENT\b.*?^\s*ENDCOMMENT\b", "", text, flags=re.S | re.M)
    return "\n".join(line.split(":")[0] for line in text.split("\n"))


def range_function_clashes(mod_file: Path) -> tuple[str, list[str]] | None:
    """(unified diff, names dropped) when ``mod_file``'s RANGE lists its own FUNCTIONs or
    PROCEDUREs; None when NEURON 9 has nothing to refuse there."""
    text = mod_file.read_text(encoding="latin-1")  # bytes as they are, as the applier reads
    callables = set(_CALLABLE.findall(_code(text)))
    lines = [line.rstrip("\r") for line in text.split("\n")]
    fixed, dropped, inside = list(lines), [], False
    for index, line in enumerate(lines):
        if _NEURON_BLOCK.match(line):
            inside = True
        match = _RANGE.match(line) if inside else None
        if match:
            names = [n for n in re.split(r"[\s,]+", match.group(2)) if n]
            clash = [n for n in names if n in callables]
            if clash:
                kept = [n for n in names if n not in callables]
                fixed[index] = match.group(1) + ", ".join(kept) + match.group(3) if kept else None
                dropped += clash
        if inside and "}" in line.split(":")[0]:
            inside = False
    if not dropped:
        return None
    name = mod_file.name
    diff = difflib.unified_diff(
        lines, [line for line in fixed if line is not None], f"a/{name}", f"b/{name}", lineterm=""
    )
    header = (
        f"{name} under NEURON 9: its RANGE statement lists {', '.join(dropped)}, which are also "
        "FUNCTIONs or PROCEDUREs of the file;\nNEURON 9 refuses that, NEURON 8 accepted it. "
        "Dropping them from RANGE changes no behaviour.\nWritten by `neuroptimus "
        "import-settings`; applied to a copy of the mechanism file before compiling.\n\n"
    )
    return header + "\n".join(diff) + "\n", dropped


def neuron9_patches(folder: Path) -> dict[str, tuple[str, list[str]]]:
    """.mod file name -> (patch, names dropped) for every file of ``folder`` needing one."""
    found = {}
    for mod_file in sorted(folder.glob("*.mod")):
        clash = range_function_clashes(mod_file)
        if clash:
            found[mod_file.name] = clash
    return found
