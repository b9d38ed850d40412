"""Reading and checking what people upload to the catalog, before anything is stored.

Three kinds of file arrive: a run's ``metadata.json`` (ours or the original tool's), the run's
Zarr store as a zip, and an archive of the model and target (zip or tar). Everything here reads
bytes and files in a scratch folder and either returns what it found or raises
``UploadError`` with an HTTP status and one sentence that says what is wrong; nothing here
touches the database or the catalog's file folder.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import stat
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import ValidationError

from neuroptimus.optimization.errors import UserError
from neuroptimus.storage.catalog.bounds import json_problem
from neuroptimus.storage.catalog.intake.ingest import IngestError, run_from_metadata, run_from_store
from neuroptimus.storage.catalog.intake.unpacking import (
    Budgets,
    Reservation,
    UnpackingBudgetError,
    size_text,
)
from neuroptimus.storage.catalog.schema import CatalogRun

__all__ = ["UploadError", "UploadLimits", "size_text"]


class UploadError(UserError):
    """An upload refused: ``status`` is the HTTP status, ``detail`` one clear sentence."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class UploadLimits:
    """How big and how many. A zip bomb or a tar of a million files is refused on its headers
    when they say so, else as it is unpacked: bytes and entries are counted as they are
    written, against this upload's, its uploader's and the server's budgets."""

    max_bytes: int = 200 * 2**20  # one uploaded file
    max_metadata_bytes: int = 16 * 2**20
    max_members: int = 50_000  # entries one upload unpacks (its store and its archive)
    max_unpacked_bytes: int = 2**30  # bytes one upload unpacks
    max_ratio: float = 200.0  # unpacked / packed size, of one zip entry and of a whole zip
    max_user_bytes: int = 20 * 2**30  # unpacked bytes of a user's runs, kept or being checked
    max_user_members: int = 100_000  # entries a user's uploads unpack at the same time
    max_staging_bytes: int = 4 * 2**30  # what all uploads being checked unpack at once
    max_staging_members: int = 200_000

    def budgets(self) -> Budgets:
        return Budgets(
            upload_bytes=self.max_unpacked_bytes, upload_entries=self.max_members,
            user_bytes=self.max_user_bytes, user_entries=self.max_user_members,
            server_bytes=self.max_staging_bytes, server_entries=self.max_staging_members,
        )  # fmt: skip


# Below this many unpacked bytes a zip is not judged by its ratio (JSON squeezes well).
RATIO_FLOOR = 2**20


def parse_json(raw: bytes, what: str = "metadata.json") -> dict[str, Any]:
    """The JSON object in ``raw``; refuses what is not UTF-8 JSON, not an object, or holds
    NaN or infinities (Python writes them, JSON has no such numbers)."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise UploadError(400, f"{what} is not UTF-8 text (byte {error.start}).") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise UploadError(
            400,
            f"{what} is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}.",
        ) from None
    except RecursionError:
        raise UploadError(400, f"{what} is nested too deeply to be a run's metadata.") from None
    if not isinstance(data, dict):
        raise UploadError(422, f"{what} must hold a JSON object, not {type(data).__name__}.")
    problem = json_problem(data)
    if problem is not None:
        raise UploadError(422, f"{what} cannot be stored: {_quoted(problem)}.")
    return data


def _quoted(problem: str) -> str:
    """A problem sentence whose field path is cut short (a path can be long)."""
    return problem if len(problem) <= 300 else problem[:140] + " … " + problem[-140:]


def read_run(raw: bytes, limits: UploadLimits = UploadLimits()) -> CatalogRun:
    """The catalog record of an uploaded metadata.json (ours or the original tool's)."""
    if len(raw) > limits.max_metadata_bytes:
        raise UploadError(
            413, f"metadata.json is larger than {size_text(limits.max_metadata_bytes)}."
        )
    data = parse_json(raw)
    try:
        return run_from_metadata(data)
    except IngestError as error:
        raise UploadError(422, _sentence(f"metadata.json cannot be read: {error}")) from None
    except ValidationError as error:
        raise UploadError(422, f"metadata.json does not fit the catalog: {_first(error)}") from None


def _sentence(text: str) -> str:
    return text if text.endswith((".", "!", "?")) else f"{text}."


def _first(error: ValidationError) -> str:
    """One sentence from pydantic's list: where and what."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "the top"
    more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"{where}: {first['msg']}{more}."


# A member name must stay inside the folder it is unpacked to: no absolute paths, drive
# letters, backslashes (Windows separators zip tools write) or parent references.
_DRIVE = re.compile(r"^[A-Za-z]:")


def check_member_name(name: str, what: str) -> PurePosixPath:
    if not name or "\x00" in name or "\\" in name or name.startswith("/") or _DRIVE.match(name):
        raise UploadError(400, f"{what} holds an entry with an unsafe path: {name!r}.")
    path = PurePosixPath(name)
    if ".." in path.parts:
        raise UploadError(400, f"{what} holds an entry that escapes its folder: {name!r}.")
    return path


def zip_members(path: Path, what: str, limits: UploadLimits) -> list[zipfile.ZipInfo]:
    """The entries of a zip, checked on their headers: paths, links, encryption, counts and
    sizes (a zip bomb declares its unpacked size; zipfile never unpacks more than that)."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        raise UploadError(400, f"{what} is not a zip file.") from None
    with archive:
        members = archive.infolist()
    if len(members) > limits.max_members:
        raise UploadError(413, f"{what} has more than {limits.max_members} entries.")
    seen: set[str] = set()
    total = 0
    for info in members:
        check_member_name(info.filename, what)
        if info.filename in seen:
            raise UploadError(400, f"{what} holds {info.filename!r} twice.")
        seen.add(info.filename)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise UploadError(400, f"{what} holds a symbolic link: {info.filename!r}.")
        if info.flag_bits & 0x1:
            raise UploadError(400, f"{what} holds an encrypted entry: {info.filename!r}.")
        if info.file_size > limits.max_ratio * max(info.compress_size, 1) and (
            info.file_size > 2**20
        ):
            raise UploadError(
                400,
                f"{what} looks like a zip bomb: {info.filename!r} unpacks "
                f"{info.file_size // max(info.compress_size, 1)} times larger.",
            )
        total += info.file_size
        if total > limits.max_unpacked_bytes:
            raise UploadError(
                413, f"{what} unpacks to more than {size_text(limits.max_unpacked_bytes)}."
            )
    return members


def unpack_zip(
    path: Path, into: Path | None, what: str, limits: UploadLimits, booking: Reservation
) -> int:
    """Unpack a checked zip into the empty folder ``into`` (None: read every entry through
    without writing it, to count and check it); returns the bytes unpacked. Each entry and
    each block is booked before it is written: what is counted is what the zip holds, not
    what its headers say."""
    members = zip_members(path, what, limits)
    packed = path.stat().st_size
    booking.what = what
    unpacked = 0
    with zipfile.ZipFile(path) as archive:
        for info in members:
            try:
                with _booked(booking):
                    booking.entry()
                target = None
                if into is not None:
                    target = into.joinpath(*check_member_name(info.filename, what).parts)
                    if info.is_dir():
                        target.mkdir(parents=True, exist_ok=True)
                        continue
                    target.parent.mkdir(parents=True, exist_ok=True)
                sink = open(target, "wb") if target is not None else contextlib.nullcontext()
                with archive.open(info) as source, sink:
                    while block := source.read(2**20):
                        unpacked += len(block)
                        if unpacked > RATIO_FLOOR and unpacked > limits.max_ratio * packed:
                            raise UploadError(
                                400, f"{what} looks like a zip bomb: it unpacks more than "
                                f"{limits.max_ratio:g} times its size.",
                            )  # fmt: skip
                        with _booked(booking):
                            booking.write(len(block))
                        if target is not None:
                            sink.write(block)
            except (zipfile.BadZipFile, EOFError, OSError) as error:
                # a damaged entry, or one that is a file and a folder at once
                reason = getattr(error, "strerror", None) or error
                raise UploadError(
                    400, f"{what} cannot be unpacked ({info.filename!r}: {reason})."
                ) from None
    return unpacked


class _booked:
    """Turns a budget that ran out into the upload's refusal."""

    def __init__(self, booking: Reservation) -> None:
        self.booking = booking

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type | None, error: BaseException | None, _tb: object) -> bool:
        if isinstance(error, UnpackingBudgetError):
            raise UploadError(error.status, error.detail) from None
        return False


def zarr_root(folder: Path, what: str) -> Path:
    """The Zarr group in an unpacked store zip: at its top or in its one top-level folder."""
    if (folder / "zarr.json").is_file():
        return folder
    tops = [p for p in folder.iterdir() if p.is_dir() and (p / "zarr.json").is_file()]
    if len(tops) != 1:
        raise UploadError(
            422, f"{what} holds no Zarr store (a zarr.json at its top or in one top-level folder)."
        )
    return tops[0]


def read_store(
    path: Path,
    scratch: Path,
    limits: UploadLimits,
    booking: Reservation,
    use_case: dict[str, Any] | None = None,
) -> tuple[CatalogRun, int]:
    """The catalog record of an uploaded store zip, unpacked under ``scratch`` (booked on
    ``booking``), and the bytes it unpacked to; a store older than the catalog takes
    ``use_case`` (its metadata.json's, checked against the store's problem): nothing the
    store names is looked up on this machine."""
    folder = scratch / "store"
    folder.mkdir()
    unpacked = unpack_zip(path, folder, "store.zip", limits, booking)
    root = zarr_root(folder, "store.zip")
    try:
        return run_from_store(root, use_case), unpacked
    except (IngestError, ValidationError, KeyError, ValueError, TypeError, OSError) as error:
        # the message names the folder it was unpacked to: a server path the user never saw
        message = str(error).replace(f"{folder}/", "").replace(str(folder), "store.zip")
        raise UploadError(
            422, _sentence(f"store.zip is not a readable run store: {message}")
        ) from None


def check_same_run(metadata: CatalogRun, store: CatalogRun) -> None:
    """A store must be the run its metadata describes: same id, problem, evaluations, best."""
    if store.run_id != metadata.run_id:
        raise UploadError(
            422,
            f"store.zip is run {store.run_id}, but metadata.json describes run {metadata.run_id}.",
        )
    if store.use_case.fingerprint != metadata.use_case.fingerprint:
        raise UploadError(422, "store.zip solves a different problem than metadata.json describes.")
    if store.evaluations != metadata.evaluations:
        raise UploadError(
            422,
            f"store.zip holds {store.evaluations} evaluations, but metadata.json "
            f"claims {metadata.evaluations}.",
        )
    a, b = store.final_error, metadata.final_error
    if (a is None) != (b is None) or (a is not None and not math.isclose(a, b, rel_tol=1e-9)):
        raise UploadError(422, f"store.zip's best error is {a}, but metadata.json claims {b}.")


ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar")


def archive_suffix(filename: str) -> str:
    """The archive kind named by an upload's file name (kept for the download's name)."""
    lower = filename.lower()
    for suffix in ARCHIVE_SUFFIXES:
        if lower.endswith(suffix):
            return suffix
    kinds = ", ".join(ARCHIVE_SUFFIXES)
    raise UploadError(400, f"the archive must be one of {kinds}, not {filename!r}.")


def check_archive(
    path: Path, filename: str, limits: UploadLimits, booking: Reservation
) -> tuple[str, int]:
    """Check an archive of the model and target (kept, never unpacked on disk by the server,
    but whoever downloads it must be able to unpack it safely): its entries are read through
    and booked on ``booking`` as if unpacked. Returns its suffix and unpacked size."""
    suffix = archive_suffix(filename)
    if suffix == ".zip":
        return suffix, unpack_zip(path, None, "the archive", limits, booking)
    booking.what = "the archive"
    try:
        archive = tarfile.open(path, mode="r:*")
    except (tarfile.TarError, OSError, EOFError):
        raise UploadError(400, f"the archive is not a readable {suffix} file.") from None
    count = total = 0
    with archive:
        try:
            while (member := archive.next()) is not None:
                count += 1
                total += member.size
                with _booked(booking):  # the stream holds the sizes its headers say
                    booking.entry()
                    booking.write(member.size)
                check_member_name(member.name, "the archive")
                if member.issym() or member.islnk():
                    raise UploadError(400, f"the archive holds a link: {member.name!r}.")
                if not (member.isfile() or member.isdir()):
                    raise UploadError(400, f"the archive holds a device or pipe: {member.name!r}.")
                if count > limits.max_members:
                    raise UploadError(
                        413, f"the archive has more than {limits.max_members} entries."
                    )
                if total > limits.max_unpacked_bytes:
                    raise UploadError(
                        413,
                        f"the archive unpacks to more than {size_text(limits.max_unpacked_bytes)}.",
                    )
        except (tarfile.TarError, OSError, EOFError) as error:
            raise UploadError(400, f"the archive is damaged ({error}).") from None
    if count == 0:
        raise UploadError(400, "the archive is empty.")
    return suffix, total
