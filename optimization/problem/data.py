"""Data registry: user-model and target files fetched by URL and verified by SHA-256.

A spec refers to a registered file as ``data://<path>`` (for example
``data://testcase_1_hh_pas_surrogate/input_data2.dat``). Where the file comes from:

- ``NEUROPTIMUS_DATA_MIRROR``: a local folder holding the same tree, or several separated by
  ``os.pathsep``; the file is read from the first that holds it (verified, never copied). A
  folder named after a source (``bluepyopt``) holds that source's files at their paths in the
  source's repository. When set, nothing is downloaded.
- otherwise it is downloaded once from ``NEUROPTIMUS_DATA_URL`` (default: the raw files of the
  name's source repository at its pinned commit — the original tool's, or BluePyOpt's for
  names under ``bluepyopt/``; a base URL the registered path is appended to, or a template
  with ``{path}``) into ``NEUROPTIMUS_DATA_CACHE`` (default: the user's cache folder,
  ``neuroptimus``) and verified before it is used.
"""

from __future__ import annotations

import os
import shutil
from functools import lru_cache
from importlib import resources
from pathlib import Path

import pooch

from neuroptimus.optimization.errors import UserError

SCHEME = "data://"
MIRROR_VARIABLE = "NEUROPTIMUS_DATA_MIRROR"
URL_VARIABLE = "NEUROPTIMUS_DATA_URL"
CACHE_VARIABLE = "NEUROPTIMUS_DATA_CACHE"
_PROTOCOLS = ("http://", "https://", "ftp://", "sftp://", "doi:")  # what pooch downloads
BASE_URL = (
    "https://raw.githubusercontent.com/KaliLab/neuroptimus/"
    "a0d7c9dfbf5646d9d1c39228fb9518bd3ab79e06/neuroptimus/new_test_files/"
)

# Registered names under a source's prefix come from that repository (the rest of the name is
# the path in it); every other name from BASE_URL.
SOURCES = {
    "bluepyopt": "https://raw.githubusercontent.com/BlueBrain/BluePyOpt/"
    "146bb019a866007d76eafcaca89d8b45e20be0f6/",
}


class DataError(UserError, RuntimeError):
    """A registered file is unknown, unreachable or fails its checksum."""


@lru_cache(maxsize=1)
def registry() -> dict[str, str]:
    """Registered path -> expected ``sha256:<hex>`` from ``usecases/registry.txt``."""
    text = resources.files("neuroptimus.usecases").joinpath("registry.txt").read_text()
    entries = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            path, digest = line.split()
            entries[path] = digest
    return entries


def is_registered_uri(value: str) -> bool:
    return value.startswith(SCHEME)


def fetch(uri_or_path: str) -> Path:
    """Local path of a registered file (``data://...``), fetched and verified on first use."""
    name = uri_or_path.removeprefix(SCHEME)
    entries = registry()
    if name not in entries and _folder_files(name):
        return _fetch_folder(uri_or_path, name)
    if name not in entries:
        raise DataError(f"{uri_or_path}: not in the data registry (usecases/registry.txt)")
    expected = entries[name]
    mirror = os.environ.get(MIRROR_VARIABLE)
    if mirror:
        path = _in_mirror(name)
        if path is None:
            raise DataError(f"{uri_or_path}: missing from the mirror {MIRROR_VARIABLE}={mirror}")
        verify(path, expected)
        return path
    return _download(uri_or_path, name, expected)


def _source(name: str) -> tuple[str, str] | None:
    """(source prefix, path in its repository) of a name under a source's prefix."""
    prefix, _, rest = name.partition("/")
    return (prefix, rest) if prefix in SOURCES and rest else None


def _in_mirror(name: str) -> Path | None:
    """Where the mirror folders hold a registered name (file or folder), if any."""
    source = _source(name)
    for folder in filter(None, os.environ.get(MIRROR_VARIABLE, "").split(os.pathsep)):
        candidates = [Path(folder) / name]
        if source and Path(folder).name == source[0]:
            candidates.append(Path(folder) / source[1])
        for path in candidates:
            if path.exists():
                return path
    return None


def file_url(name: str) -> str:
    """Where a registered file is downloaded from (``NEUROPTIMUS_DATA_URL`` or the default)."""
    base = os.environ.get(URL_VARIABLE)
    source = _source(name)
    if not base and source:
        return SOURCES[source[0]] + source[1]
    base = base or BASE_URL
    if not base.startswith(_PROTOCOLS):
        raise DataError(
            f"{URL_VARIABLE}={base}: not a download URL (it must start with "
            f"{', '.join(_PROTOCOLS)}); to use a local folder set {MIRROR_VARIABLE} instead"
        )
    if "{path}" in base:
        return base.replace("{path}", name)
    return base.rstrip("/") + "/" + name


def cache_folder() -> Path:
    return Path(os.environ.get(CACHE_VARIABLE) or pooch.os_cache("neuroptimus"))


def _download(uri: str, name: str, expected: str) -> Path:
    url = file_url(name)
    try:
        return Path(
            pooch.retrieve(
                url,
                known_hash=expected,
                fname=name.replace("/", "__"),
                path=cache_folder(),
                progressbar=False,
            )
        )
    except ValueError as error:  # pooch's checksum mismatch (the URL was checked above)
        raise DataError(
            f"{uri}: the file downloaded from {url} fails its SHA-256 check ({error}); the "
            "server holds another version of it — nothing was kept"
        ) from None
    except Exception as error:  # HTTP errors (404 …), refused connections, DNS, disk
        raise DataError(
            f"{uri}: cannot download {url} ({error}); set {MIRROR_VARIABLE} to a local copy "
            f"or {URL_VARIABLE} to another server"
        ) from None


def verify(path: Path, expected: str) -> None:
    """Refuse a file whose SHA-256 differs from the registry's."""
    algorithm, _, digest = expected.partition(":")
    actual = pooch.file_hash(str(path), alg=algorithm)
    if actual != digest:
        raise DataError(
            f"{path}: SHA-256 is {actual}, the registry expects {digest}; the file is corrupted "
            "or a different version — replace it with the registered one"
        )


def _folder_files(name: str) -> list[str]:
    """Registered files under a folder name (a folder of .mod files, for example)."""
    prefix = name.rstrip("/") + "/"
    return [entry for entry in registry() if entry.startswith(prefix)]


def _fetch_folder(uri: str, name: str) -> Path:
    """A registered folder: every file under it fetched and verified; the mirror's folder, or
    a copy of the downloaded files arranged as the folder (the download cache is flat)."""
    files = {entry: fetch(SCHEME + entry) for entry in _folder_files(name)}
    if os.environ.get(MIRROR_VARIABLE):
        return _in_mirror(name.rstrip("/"))
    folder = cache_folder() / "folders" / name.rstrip("/")
    for entry, path in files.items():
        copy = folder / entry.removeprefix(name.rstrip("/") + "/")
        if not copy.is_file() or copy.read_bytes() != path.read_bytes():
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, copy)
    return folder
