"""The problems whose files a catalog holds itself: the bundled use cases (``usecases/``) and
the use cases an admin registered (their files copied into the catalog's files folder). A
server re-simulates runs of these only, with its own files: an uploaded problem (its command,
model, user function, hoc or NMODL files) is never run, and no path in it is looked up.

A held problem stands for a run when their identities are equal: the run's is derived from
its uploaded problem (see ``fingerprint.recomputed_identity``), the held one's from the
files here, as a local run computes it.
"""

from __future__ import annotations

import functools
import logging
import shutil
import uuid
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import select

from neuroptimus import usecases
from neuroptimus.optimization.errors import UserError
from neuroptimus.optimization.problem.identity import use_case_identity
from neuroptimus.optimization.problem.problem_file import load_problem
from neuroptimus.optimization.problem.spec import ProblemSpec
from neuroptimus.optimization.problem.spec_base import SpecError
from neuroptimus.optimization.simulators.mechanisms import mechanisms_record
from neuroptimus.storage.catalog.db.models import UseCase
from neuroptimus.storage.catalog.db.repository import Catalog
from neuroptimus.storage.catalog.schema import UseCaseIdentity

log = logging.getLogger(__name__)

REGISTERED = "use-cases"  # the registered use cases' folders, inside the catalog's files
PROBLEM = "problem.yaml"


class RegistrationError(UserError, ValueError):
    """A problem cannot be registered (files outside its folder, a file that changed)."""


def held_identity(spec: ProblemSpec) -> UseCaseIdentity:
    """``spec``'s identity with its files read now, as a local run records it."""

    return use_case_identity(spec.model_dump(mode="json"), mechanisms_record(spec))


@functools.cache
def _bundled(name: str) -> tuple[ProblemSpec, str] | None:
    if name not in usecases.names():
        return None
    spec = load_problem(usecases.problem_path(name))
    return spec, held_identity(spec).fingerprint


def bundled_problem(identity: UseCaseIdentity) -> ProblemSpec | None:
    """The bundled use case that is the problem ``identity`` names (same fingerprint)."""
    try:
        found = _bundled(identity.name)
    except Exception as error:  # its data unreachable: nothing to simulate here
        log.warning("bundled use case %s not loaded: %s", identity.name, error)
        return None
    return found[0] if found and found[1] == identity.fingerprint else None


def registered_problem(catalog: Catalog, files: Path, fingerprint: str) -> ProblemSpec | None:
    """The problem an admin registered with this fingerprint, read from its stored files."""
    with catalog.session() as session:
        folder = session.scalar(
            select(UseCase.files).where(
                UseCase.fingerprint == fingerprint, UseCase.registered_by.is_not(None)
            )
        )
    if not folder:
        return None
    return load_problem(Path(files) / folder / PROBLEM)


def held_problem(catalog: Catalog, files: Path, identity: UseCaseIdentity) -> ProblemSpec | None:
    """The problem this catalog holds for ``identity``: registered, else bundled, else None."""
    if identity.kind != "content":
        return None
    return registered_problem(catalog, files, identity.fingerprint) or bundled_problem(identity)


# -- registering ---------------------------------------------------------------------------
def _named_files(spec: ProblemSpec) -> list[tuple[str, str, bool]]:
    """``(field, path, is_folder)`` of every file or folder ``spec`` names (not data://)."""
    model = spec.model
    named: list[tuple[str, str | None, bool]] = []
    if model.simulator == "python":
        named.append(("model.file", model.file, False))
    elif model.simulator == "external":
        named.append(("model.folder", model.folder or ".", True))
    elif model.simulator == "emodel":
        named += [("model.morphology", model.morphology, False),
                  ("model.mechanisms", model.mechanisms, True)]  # fmt: skip
        named += [(f"model.patches[{k}]", p, False) for k, p in enumerate(model.patches)]
    else:
        named += [("model.hoc", model.hoc, False), ("model.mechanisms", model.mechanisms, True)]
        named += [(f"model.patches[{k}]", p, False) for k, p in enumerate(model.patches)]
        if model.user_function:
            named.append(("model.user_function.file", model.user_function.file, False))
    stimulus = spec.protocol.stimulus if spec.protocol else None
    for k, waveform in enumerate((stimulus.waveforms if stimulus else None) or []):
        named.append((f"protocol.stimulus.waveforms[{k}]", waveform, False))
    if spec.target is not None:
        named += [
            ("target.file", spec.target.file, False),
            ("target.features", spec.target.features, False),
        ]
    return [(f, p, d) for f, p, d in named if p and not p.startswith("data://")]


def _ignored(folder: str, names: list[str]) -> list[str]:
    """What a folder's hash leaves out (fingerprint.folder_sha256) is not copied either."""
    return [n for n in names if n.startswith((".", "__pycache__"))]


def _copy_files(spec: ProblemSpec, source: Path, into: Path) -> None:
    base = Path(spec.base_dir).resolve()
    for field, value, is_folder in _named_files(spec):
        relative = PurePosixPath(value)
        if relative.is_absolute() or ".." in relative.parts:
            raise RegistrationError(
                f"{source}: {field} {value!r} is outside the problem's folder: a registered "
                "use case keeps its files together (give them as paths relative to it)"
            )
        origin, target = base.joinpath(*relative.parts), into.joinpath(*relative.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        if is_folder:
            shutil.copytree(origin, target, ignore=_ignored, dirs_exist_ok=True)
        else:
            shutil.copy2(origin, target)


def register_use_case(
    catalog: Catalog, files: Path, problem: Path, admin: str = "admin"
) -> dict[str, Any]:
    """Copy ``problem`` (a problem file) and the files it names into the catalog's files
    folder, compute its identity from the copies and mark its use case registered by
    ``admin``: runs of it are then verified by the server. Returns ``{slug, fingerprint,
    files}``."""
    problem, files = Path(problem), Path(files)
    spec = load_problem(problem)
    identity = held_identity(spec)
    final = files / REGISTERED / identity.fingerprint[:32]
    building = files / REGISTERED / f".{uuid.uuid4().hex}"
    building.mkdir(parents=True)
    try:
        _copy_files(spec, problem, building)
        shutil.copy2(problem, building / PROBLEM)
        stored = held_identity(load_problem(building / PROBLEM))
        if stored.fingerprint != identity.fingerprint:
            raise RegistrationError(
                f"{problem}: the copied files give another identity than the originals (a file "
                "changed while it was copied, or the problem reads files it does not name)"
            )
        shutil.rmtree(final, ignore_errors=True)
        building.rename(final)
    except (OSError, SpecError) as error:
        raise RegistrationError(f"{problem}: its files cannot be copied: {error}") from None
    finally:
        shutil.rmtree(building, ignore_errors=True)
    admin_id = catalog.create_user(admin, is_admin=True)
    name = final.relative_to(files).as_posix()
    slug = catalog.register_use_case(stored, admin_id, name)
    return {"slug": slug, "fingerprint": stored.fingerprint, "files": name}
