"""Apply a project's own unified diffs to copies of fetched mechanism files.

A small applier on purpose: one file per ``---``/``+++`` pair, hunks matched exactly (line
endings aside: upstream .mod files mix CRLF and LF, and a patch kept in git should not have
to) at the line the hunk names or the nearest line where it fits. A hunk that fits nowhere is
a ``PatchError`` naming the patch, the file and the hunk — never a fuzzy guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from neuroptimus.optimization.errors import UserError

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


class PatchError(UserError, ValueError):
    """A patch cannot be read or does not apply; the message is one line."""


@dataclass
class Hunk:
    old_start: int  # 1-based line of the first old line
    lines: list[tuple[str, str]] = field(default_factory=list)  # (" " | "-" | "+", text)

    @property
    def old(self) -> list[str]:
        return [text for tag, text in self.lines if tag != "+"]


@dataclass
class FilePatch:
    path: str  # as the patch names it, without the a/ b/ prefix
    hunks: list[Hunk] = field(default_factory=list)


def _strip_prefix(name: str) -> str:
    name = name.split("\t")[0].strip()
    return name[2:] if name[:2] in ("a/", "b/") else name


def parse_patch(text: str, source: str) -> list[FilePatch]:
    """The files and hunks of a unified diff (text before the first ``---`` is a comment)."""
    lines = text.split("\n")
    files: list[FilePatch] = []
    i = 0
    while i < len(lines):
        if not (lines[i].startswith("--- ") and i + 1 < len(lines)):
            i += 1
            continue
        if not lines[i + 1].startswith("+++ "):
            raise PatchError(f"{source}: line {i + 2}: expected '+++ FILE' after '---'")
        target = _strip_prefix(lines[i + 1][4:])
        if target == "/dev/null" or _strip_prefix(lines[i][4:]) == "/dev/null":
            raise PatchError(f"{source}: creating or deleting files is not supported")
        patch = FilePatch(target)
        i += 2
        while i < len(lines) and (match := _HUNK.match(lines[i])):
            old_left = int(match.group(2) or 1)
            new_left = int(match.group(4) or 1)
            hunk = Hunk(int(match.group(1)))
            i += 1
            while old_left > 0 or new_left > 0:
                if i >= len(lines):
                    raise PatchError(f"{source}: the last hunk of {target} is cut short")
                line = lines[i]
                tag, body = (line[:1] or " "), line[1:]  # an empty line: blank context
                if tag == "\\":  # "\ No newline at end of file": line endings are kept anyway
                    i += 1
                    continue
                if tag not in " -+":
                    raise PatchError(f"{source}: line {i + 1}: not a line of a hunk: {line!r}")
                hunk.lines.append((tag, body))
                old_left -= tag != "+"
                new_left -= tag != "-"
                i += 1
            patch.hunks.append(hunk)
        if not patch.hunks:
            raise PatchError(f"{source}: no hunk for {target}")
        files.append(patch)
    if not files:
        raise PatchError(f"{source}: not a unified diff (no '--- FILE' / '+++ FILE' lines)")
    return files


def _ending(line: str) -> str:
    return line[len(line.rstrip("\r\n")) :]


def apply_hunks(original: str, patch: FilePatch, source: str, file_name: str) -> str:
    """``original`` with the hunks of ``patch`` applied, or a PatchError naming the hunk."""
    # split at "\n" only: str.splitlines would also split at bytes such as 0x85 or 0x0c
    lines = [line + "\n" for line in original.split("\n")]
    lines[-1] = lines[-1][:-1]
    if not lines[-1]:
        lines.pop()
    bare = [line.rstrip("\r\n") for line in lines]
    result: list[str] = []
    done = 0  # lines of the original consumed so far
    offset = 0  # how far the matches have drifted from the hunks' line numbers
    for number, hunk in enumerate(patch.hunks, 1):
        old = hunk.old
        wanted = max(hunk.old_start - 1 + offset, done)
        fits = [p for p in range(done, len(lines) - len(old) + 1) if bare[p : p + len(old)] == old]
        if not fits:
            raise PatchError(
                f"patch {source} does not apply to {file_name}: hunk {number} "
                f"(@@ -{hunk.old_start} @@) matches no lines of the file"
            )
        at = min(fits, key=lambda p: abs(p - wanted))
        offset = at - (hunk.old_start - 1)
        result.extend(lines[done:at])
        cursor, ending = at, _ending(lines[at]) if at < len(lines) else "\n"
        for tag, text in hunk.lines:
            if tag == "+":
                result.append(text + (ending or "\n"))
                continue
            ending = _ending(lines[cursor]) or ending
            if tag == " ":
                result.append(lines[cursor])
            cursor += 1
        done = cursor
    result.extend(lines[done:])
    return "".join(result)


def apply_patch(patch_file: Path, folder: Path) -> list[str]:
    """Apply ``patch_file`` to the files of ``folder`` in place (a file is named by its path
    in the patch, or else by its name); return the names of the files it changed."""
    try:
        text = patch_file.read_text(encoding="latin-1")  # bytes as they are
    except OSError as error:
        raise PatchError(f"patch {patch_file}: cannot read it ({error})") from None
    changed = []
    for patch in parse_patch(text, patch_file.name):
        target = folder / patch.path
        if not target.is_file():
            target = folder / Path(patch.path).name
        if not target.is_file():
            raise PatchError(
                f"patch {patch_file.name} changes {patch.path}, which is not in the "
                "mechanisms folder"
            )
        # latin-1 and newline="": every byte, line endings included, read and written as is
        with open(target, encoding="latin-1", newline="") as handle:
            original = handle.read()
        patched = apply_hunks(original, patch, patch_file.name, target.name)
        with open(target, "w", encoding="latin-1", newline="") as handle:
            handle.write(patched)
        changed.append(target.name)
    return changed
