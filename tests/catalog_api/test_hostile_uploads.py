"""Malformed and hostile uploads: each is refused with a clear 4xx JSON sentence and leaves no
database row and no file behind (checked by counting the rows of every table with an engine of
the test's own, and listing the files folder)."""

from __future__ import annotations

import functools
import io
import json
import stat
import tarfile
import uuid
import zipfile

from catalog_service import SMALL_UPLOADS, RealRun, Service

from tests.storage.catalog.original_metadata import original_metadata


def _zip(entries: dict[str, bytes], symlinks: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)
    return buffer.getvalue()


@functools.cache
def _bomb() -> bytes:
    """40 MiB of zeros in a 40 kB zip."""
    return _zip({"hh.zarr/c/0": bytes(40 * 2**20)})


_MODEL_ZIP = _zip({"hh/model.hoc": b"create soma\n"})
_GROUP = json.dumps({"zarr_format": 3, "node_type": "group", "attributes": {}}).encode()


def _tar(add) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        add(archive)
    return buffer.getvalue()


def _tar_with_link(archive: tarfile.TarFile) -> None:
    info = tarfile.TarInfo("model/passwords")
    info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
    archive.addfile(info)


def _tar_escaping(archive: tarfile.TarFile) -> None:
    data = b"x = 1\n"
    info = tarfile.TarInfo("../../outside.hoc")
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


def _cases(run: RealRun, service: Service) -> list[tuple[str, dict, int, str]]:
    """(name, upload arguments, status, words the message must contain)."""
    ours = run.metadata
    nan = run.metadata_bytes().replace(
        f'"final_error": {json.dumps(ours["final_error"])}'.encode(), b'"final_error": NaN'
    )
    assert b"NaN" in nan
    infinite = run.variant()
    infinite["generation_statistics"][1]["best"] = float("inf")
    store = run.store_zip
    a = service.alice
    return [
        ("not JSON", dict(metadata=b"this is not json {", token=a), 400, "not valid JSON"),
        ("not UTF-8", dict(metadata=b"\xff\xfe\x00\x81binary", token=a), 400, "not UTF-8"),
        ("a JSON list", dict(metadata=b"[1, 2, 3]", token=a), 422, "JSON object"),
        (
            "wrong schema",
            dict(metadata={"name": "my run", "score": 1}, token=a),
            422,
            "neither a Neuroptimus metadata.json",
        ),
        (
            "a field of the wrong type",
            dict(metadata=run.variant(evaluations="many"), token=a),
            422,
            "evaluations",
        ),
        ("NaN score", dict(metadata=nan, token=a), 422, "final_error"),
        (
            "infinite generation best",
            dict(metadata=json.dumps(infinite).encode(), token=a),
            422,
            "generation_statistics[1].best",
        ),
        (
            "run id that is a path",
            dict(metadata=run.variant(run_id="../../etc/passwd"), token=a),
            422,
            "run_id",
        ),
        (
            "original format with a seed that is no number",
            dict(metadata={**original_metadata(), "seed": "x"}, token=a),
            422,
            "seed",
        ),
        (
            "nested too deeply",
            dict(metadata=b"[" * 100_000 + b"]" * 100_000, token=a),
            400,
            "nested too deeply",
        ),
        (
            "huge metadata.json",
            dict(metadata=b" " * (SMALL_UPLOADS + 10) + b"{}", token=a),
            413,
            "larger than",
        ),
        (
            "store that is not a zip",
            dict(metadata=ours, store=b"PK but not really", token=a),
            400,
            "not a zip",
        ),
        (
            "huge store",
            dict(metadata=ours, store=bytes(SMALL_UPLOADS + 2**21), token=a),
            413,
            "larger than",
        ),
        ("empty store", dict(metadata=ours, store=b"", token=a), 400, "empty"),
        (
            "store with a path that escapes",
            dict(
                metadata=ours,
                store=_zip({"hh.zarr/zarr.json": b"{}", "../../evil.py": b"1"}),
                token=a,
            ),
            400,
            "escapes",
        ),
        (
            "store with an absolute path",
            dict(metadata=ours, store=_zip({"/etc/cron.d/evil": b"* * * * * root sh"}), token=a),
            400,
            "unsafe path",
        ),
        (
            "store with a symbolic link",
            dict(
                metadata=ours,
                store=_zip({"hh.zarr/zarr.json": b"{}"}, {"hh.zarr/link": "/etc/passwd"}),
                token=a,
            ),
            400,
            "symbolic link",
        ),
        (
            "zip bomb",
            dict(metadata=ours, store=_zip({"hh.zarr/c/0": bytes(40 * 2**20)}), token=a),
            400,
            "zip bomb",
        ),
        (
            "store without a Zarr group",
            dict(metadata=ours, store=_zip({"README.txt": b"my run"}), token=a),
            422,
            "no Zarr store",
        ),
        (
            "store with a file that is also a folder",
            dict(
                metadata=ours,
                store=_zip({"hh.zarr/zarr.json": _GROUP, "hh.zarr/zarr.json/x": b"1"}),
                token=a,
            ),
            400,
            "cannot be unpacked",
        ),
        (
            "store with a Zarr group that is not a run",
            dict(metadata=ours, store=_zip({"hh.zarr/zarr.json": _GROUP}), token=a),
            422,
            "not a readable run store",
        ),
        (
            "store of another run",
            dict(metadata=run.variant(), store=store, token=a),
            422,
            "but metadata.json describes run",
        ),
        (
            "store with other evaluations",
            dict(metadata={**ours, "evaluations": 9}, store=store, token=a),
            422,
            "claims 9",
        ),
        (
            "store with another best error",
            dict(metadata={**ours, "final_error": ours["final_error"] / 2}, store=store, token=a),
            422,
            "best error",
        ),
        (
            "store beside the original tool's metadata",
            dict(metadata=original_metadata(), store=store, token=a),
            422,
            "metadata.json",
        ),
        (
            "archive of an unknown kind",
            dict(metadata=ours, archive=("model.exe", b"MZ"), token=a),
            400,
            "archive must be one of",
        ),
        (
            "archive that is not a tar",
            dict(metadata=ours, archive=("model.tar.gz", b"nope"), token=a),
            400,
            "not a readable",
        ),
        (
            "archive with a link",
            dict(metadata=ours, archive=("m.tar.gz", _tar(_tar_with_link)), token=a),
            400,
            "link",
        ),
        (
            "archive with a path that escapes",
            dict(metadata=ours, archive=("m.tar.gz", _tar(_tar_escaping)), token=a),
            400,
            "escapes",
        ),
        ("no token", dict(metadata=ours, token=None), 401, "API token"),
        ("a made-up token", dict(metadata=ours, token="npt_" + "x" * 40), 401, "not valid"),
        (
            "a token without the upload scope",
            dict(metadata=ours, token=service.catalog.issue_token("carol", scopes={"read"})),
            403,
            "'upload' scope",
        ),
        (
            "an unknown visibility",
            dict(metadata=ours, token=a, visibility="secret"),
            422,
            "visibility",
        ),
        (
            "PUT to another run's address",
            dict(metadata=ours, token=a, run_id=str(uuid.uuid4())),
            422,
            "the address names run",
        ),
    ]


def _refused(service: Service, name: str, arguments: dict, status: int, words: str) -> str:
    """What is wrong with the answer to one refused upload ("" if nothing)."""
    rows, files = service.row_counts(), service.leftovers()
    answer = service.upload(**arguments)
    problems = []
    if answer.status_code != status:
        problems.append(f"status {answer.status_code}, not {status}")
    detail = (
        answer.json().get("detail")
        if answer.headers["content-type"].startswith("application/json")
        else None
    )
    if not isinstance(detail, str) or words.lower() not in detail.lower():
        problems.append(f"detail {detail!r} does not say {words!r}")
    elif not detail.endswith("."):
        problems.append(f"detail {detail!r} is not a sentence")
    elif str(service.files) in detail or "/tmp" in detail:
        problems.append(f"detail {detail!r} shows a server path")
    if service.row_counts() != rows:
        problems.append("rows were left behind")
    if service.leftovers() != files:
        problems.append(f"files were left behind: {service.leftovers()}")
    return f"{name}: {'; '.join(problems)}" if problems else ""


def test_hostile_uploads_are_refused_and_leave_nothing_behind(service, real_run):
    cases = _cases(real_run, service)
    assert len(cases) >= 20
    failures = [m for case in cases if (m := _refused(service, *case))]
    assert not failures, "\n".join(failures)
    assert service.leftovers() == []
    assert service.client.get("/api/v1/runs").json()["total"] == 0


def test_revoked_tokens_and_other_users_conflicting_uploads_are_refused(service, real_run):
    first = service.upload(real_run.metadata, service.alice, store=real_run.store_zip)
    assert first.status_code == 201, first.text
    kept = service.client.get(f"/api/v1/runs/{real_run.run_id}").json()
    revoked = service.catalog.issue_token("alice", name="laptop")
    laptop = [t for t in service.catalog.list_tokens("alice") if t["name"] == "laptop"]
    service.catalog.revoke_token("alice", laptop[0]["id"])
    changed = {**real_run.metadata, "final_error": real_run.metadata["final_error"] * 2}
    cases = [
        ("a revoked token", dict(metadata=real_run.variant(), token=revoked), 401, "revoked"),
        (
            "another user's upload of the same run",
            dict(metadata=real_run.metadata, token=service.bob, store=real_run.store_zip),
            409,
            "",
        ),
        (
            "another user's PUT of the same run",
            dict(metadata=real_run.metadata, token=service.bob, run_id=real_run.run_id),
            409,
            "another user",
        ),
        (  # the archive is put in place before the catalog refuses: it must go again
            "another user's upload of the same run with an archive",
            dict(metadata=real_run.metadata, token=service.bob, archive=("m.zip", _MODEL_ZIP)),
            409,
            "another user",
        ),
        (
            "a conflicting re-upload",
            dict(metadata=changed, token=service.alice),
            409,
            "other content",
        ),
        (
            "a conflicting re-upload with a store",
            dict(metadata=changed, token=service.alice, store=real_run.store_zip),
            422,
            "best error",
        ),
    ]
    failures = [m for case in cases if (m := _refused(service, *case))]
    assert not failures, "\n".join(failures)
    # the first upload is untouched, its store still there
    assert service.client.get(f"/api/v1/runs/{real_run.run_id}").json() == kept
    assert service.leftovers() == [f"runs/{real_run.run_id}/store.zip"]


def test_chunked_bodies_over_the_limit_are_cut_off(service, real_run):
    """Without a Content-Length the limit holds too: the body is counted as it arrives."""
    boundary = "x" * 16
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="metadata"; '
        f'filename="metadata.json"\r\n\r\n'
    ).encode()

    def body():
        yield head
        for _ in range(2 * SMALL_UPLOADS // 2**16):
            yield b" " * 2**16
        yield f"\r\n--{boundary}--\r\n".encode()

    answer = service.client.post(
        "/api/v1/runs",
        content=body(),
        headers={
            **service.auth(service.alice),
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        },
    )
    assert answer.status_code == 413 and "larger than" in answer.json()["detail"]
    assert service.leftovers() == []
