"""Data registry: user-model and target files fetched by URL and verified by SHA-256.

A spec refers to a registered file as ``data://<path>`` (for example
``data://testcase_1_hh_pas_surrogate/input_data2.dat``). The file is downloaded once into a
cache and verified; if ``NEUROPTIMUS_DATA_MIRROR`` names a local folder holding the same tree,
the file is taken from there instead (still verified) and never copied.
"""

from __future__ import annotations

import os
from functools import lru_cache
from importlib import resources
from pathlib import Path

import pooch

SCHEME = "data://"
MIRROR_VARIABLE = "NEUROPTIMUS_DATA_MIRROR"
BASE_URL = (
    "https://raw.githubusercontent.com/KaliLab/neuroptimus/"
    "a0d7c9dfbf5646d9d1c39228fb9518bd3ab79e06/neuroptimus/new_test_files/"
)


class DataError(RuntimeError):
    """A registered file is unknown, unreachable or fails its checksum."""


@lru_cache(maxsize=1)
def registry() -> dict[str, str]:
    """Registered path -> expected ``sha256:<hex>`` from ``usecases/registry.txt``."""
    text = resources.files("usecases").joinpath("registry.txt").read_text()
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
    if name not in entries:
        raise DataError(f"{uri_or_path}: not in the data registry (usecases/registry.txt)")
    expected = entries[name]
    mirror = os.environ.get(MIRROR_VARIABLE)
    if mirror:
        path = Path(mirror) / name
        if not path.is_file():
            raise DataError(f"{uri_or_path}: missing from the mirror {MIRROR_VARIABLE}={mirror}")
        verify(path, expected)
        return path
    try:
        return Path(
            pooch.retrieve(
                BASE_URL + name,
                known_hash=expected,
                fname=name.replace("/", "__"),
                path=pooch.os_cache("neuroptimus"),
                progressbar=False,
            )
        )
    except ValueError as error:  # pooch's checksum mismatch
        raise DataError(
            f"{uri_or_path}: downloaded file fails its SHA-256 check ({error})"
        ) from None
    except Exception as error:
        raise DataError(
            f"{uri_or_path}: cannot download ({error}); set {MIRROR_VARIABLE} to a local copy"
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
