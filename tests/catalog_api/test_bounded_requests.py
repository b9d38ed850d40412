"""Bounded work per request: what an upload may unpack (per upload, per user, for all uploads
at once, counted as it is written), and every query parameter and JSON field bounded, so that
bad input is a 4xx with one sentence, never a 500, and leaves no row and no file behind. On
SQLite and PostgreSQL (which refuses NUL bytes and out-of-range integers SQLite takes)."""

from __future__ import annotations

import base64
import io
import json
import os
import threading
import zipfile
from dataclasses import replace

import pytest
from catalog_service import SMALL_UPLOADS, RealRun, Service, make_service

from neuroptimus.storage.catalog.db.repository import QuotaExceeded
from neuroptimus.storage.catalog.intake import uploads
from neuroptimus.storage.catalog.intake.uploads import UploadLimits
from neuroptimus.storage.catalog.web.site import add_pages

LIMITS = UploadLimits(max_bytes=SMALL_UPLOADS, max_unpacked_bytes=4 * 2**20, max_members=500)


def _zip(entries: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _many_small_entries(count: int, size: int) -> bytes:
    """A zip bomb no entry of which is large: ``count`` entries of ``size`` zeros."""
    return _zip({f"hh.zarr/c/{k}": bytes(size) for k in range(count)})


def _noise(size: int) -> bytes:
    """A store-like zip of ``size`` bytes that do not compress (no zip bomb)."""
    return _zip({"hh.zarr/c/0": os.urandom(size)}, zipfile.ZIP_STORED)


def _cursor(value, run_id="00000000-0000-0000-0000-000000000000") -> str:
    return base64.urlsafe_b64encode(json.dumps([value, run_id]).encode()).decode().rstrip("=")


@pytest.fixture
def bounded(catalog_url, tmp_path) -> Service:
    """The catalog app with the pages, and small limits on what an upload unpacks."""
    service = make_service(catalog_url, tmp_path / "files", limits=LIMITS)
    add_pages(service.client.app, service.catalog)
    yield service
    service.close()


def _answer_problems(answer, status: int | tuple[int, ...], words: str) -> list[str]:
    """What is wrong with a refusal: its status, and a detail that is one sentence saying
    ``words`` (JSON for the API, the error page's message for the pages)."""
    statuses = status if isinstance(status, tuple) else (status,)
    problems = []
    if answer.status_code not in statuses:
        problems.append(f"status {answer.status_code}, not {status}")
    kind = answer.headers.get("content-type", "")
    if kind.startswith("application/json"):
        detail = answer.json().get("detail")
        if not isinstance(detail, str):
            problems.append(f"detail {detail!r} is not a sentence")
        elif words.lower() not in detail.lower():
            problems.append(f"detail {detail!r} does not say {words!r}")
        elif not detail.endswith(".") or ". " in detail.rstrip(".")[:-1].replace("e.g. ", ""):
            problems.append(f"detail {detail!r} is not one sentence")
    elif words.lower() not in answer.text.lower():
        problems.append(f"the page does not say {words!r}")
    return problems


def _refused(service: Service, name: str, send, status, words: str) -> str:
    """Send one request (``send(client)``); what is wrong with how it was refused ("" if
    nothing), including rows, files or staging folders left behind."""
    account = service.client.app.state.unpacking
    rows, files, booked = service.row_counts(), service.leftovers(), account.in_use()
    answer = send(service.client)
    problems = _answer_problems(answer, status, words)
    if service.row_counts() != rows:
        problems.append("rows were left behind")
    if service.leftovers() != files:
        problems.append(f"files were left behind: {service.leftovers()}")
    if (service.files / ".staging").exists():
        problems.append("a staging folder was left behind")
    if account.in_use() != booked:
        problems.append("the upload's unpacking budget was not given back")
    return f"{name}: {'; '.join(problems)}" if problems else ""


def _get(path: str, **kwargs):
    return lambda client: client.get(path, **kwargs)


def _query_cases(service: Service) -> list[tuple[str, object, object, str]]:
    """(name, request, status, words): hostile query strings on the API and the pages."""
    huge = "99999999999999999999999"
    words = "+".join(["word"] * 1200)
    alice = service.auth(service.alice)
    cases = [
        ("huge min_budget", _get(f"/api/v1/runs?min_budget={huge}"), 422, "min_budget"),
        ("huge seed", _get(f"/api/v1/runs?seed={huge}"), 422, "seed"),
        ("huge negative seed", _get(f"/api/v1/runs?seed=-{huge}"), 422, "seed"),
        ("negative budget", _get("/api/v1/runs?max_budget=-1"), 422, "max_budget"),
        ("budget past the column", _get("/api/v1/runs?min_budget=3000000000"), 422,
         "min_budget"),
        ("zero limit", _get("/api/v1/runs?limit=0"), 422, "limit"),
        ("negative limit", _get("/api/v1/runs?limit=-3"), 422, "limit"),
        ("huge limit", _get(f"/api/v1/runs?limit={huge}"), 422, "limit"),
        ("1,200-word q", _get(f"/api/v1/runs?q={words}"), 422, "q"),
        ("21-word q", _get("/api/v1/runs?q=" + "+".join("abcdefghijklmnopqrstu")), 422,
         "at most 20 words"),
        ("long use case", _get("/api/v1/runs?use_case=" + "x" * 500), 422, "use_case"),
        ("NUL in q", _get("/api/v1/runs?q=a%00b"), 400, "NUL"),
        ("NUL in a filter", _get("/api/v1/runs?use_case=a%00b"), 400, "NUL"),
        ("NUL in a run id", _get("/api/v1/runs/a%00b"), 400, "NUL"),
        ("NUL in a slug", _get("/api/v1/use-cases/a%00b"), 400, "NUL"),
        ("NUL in compared runs", _get("/api/v1/compare?runs=a%00b"), 400, "NUL"),
        ("a lone surrogate in q", _get("/api/v1/runs?q=%ED%A0%80"), 400, "not UTF-8"),
        ("a lone surrogate in the address", _get("/api/v1/runs/%ED%A0%80"), 400, "not UTF-8"),
        ("a huge query string", _get("/api/v1/runs?q=" + "x" * 17_000), 414, "query string"),
        ("unknown sort", _get("/api/v1/runs?sort=password"), 422, "sort"),
        ("garbled cursor", _get("/api/v1/runs?cursor=%%%%"), 422, "cursor"),
        ("cursor of no JSON", _get("/api/v1/runs?cursor=bm90IGpzb24"), 422, "cursor"),
        ("cursor with an object", _get("/api/v1/runs?cursor=" + _cursor({"a": 1})), 422,
         "cursor"),
        ("cursor with text for a number",
         _get("/api/v1/runs?sort=final_error&cursor=" + _cursor("abc")), 422, "cursor"),
        ("cursor with a huge number",
         _get("/api/v1/runs?sort=seed&cursor=" + _cursor(10**30)), 422, "cursor"),
        ("cursor past a 32-bit column",
         _get("/api/v1/runs?sort=evaluations&cursor=" + _cursor(2**40)), 422, "cursor"),
        ("cursor with a huge float key",
         _get("/api/v1/runs?sort=final_error&cursor=" + _cursor(10**400)), 422, "cursor"),
        ("cursor with a number for a time",
         _get("/api/v1/runs?sort=uploaded_at&cursor=" + _cursor(5)), 422, "cursor"),
        ("cursor with a NUL run id",
         _get("/api/v1/runs?sort=seed&cursor=" + _cursor(1, "x\x00")), 422, "cursor"),
        ("cursor with a lone surrogate",
         _get("/api/v1/runs?sort=seed&cursor=" + _cursor("\ud800")), 422, "cursor"),
        ("cursor with true for a number",
         _get("/api/v1/runs?sort=seed&cursor=" + _cursor(True)), 422, "cursor"),
        ("deeply nested cursor",
         _get("/api/v1/runs?cursor=" + base64.urlsafe_b64encode(b"[" * 700).decode()), 422,
         "cursor"),
        ("a leaderboard's huge budget", _get(f"/api/v1/use-cases/x/leaderboard?budget={huge}"),
         422, "budget"),
        ("a comparison's huge budget", _get(f"/api/v1/compare?use_case=x&budget={huge}"), 422,
         "budget"),
        ("a huge token id", lambda c: c.delete(f"/api/v1/tokens/{huge}", headers=alice), 422,
         "token_id"),
        # the pages read the same filters with the same rules
        ("page: huge min_budget", _get(f"/runs?min_budget={huge}"), 400, "min_budget"),
        ("page: huge seed", _get(f"/runs?seed={huge}"), 400, "seed"),
        ("page: 1,200-word q", _get(f"/runs?q={words}"), 400, "q"),
        ("page: zero limit", _get("/runs?limit=0"), 400, "limit"),
        ("page: negative limit", _get("/runs?limit=-5"), 400, "limit"),
        ("page: huge limit", _get(f"/runs?limit={huge}"), 400, "limit"),
        ("page: digits that are not ASCII", _get("/runs?seed=%D9%A3"), 400, "seed"),
        ("page: NUL in a filter", _get("/runs?use_case=a%00b"), 400, "NUL"),
        ("page: a lone surrogate", _get("/runs?q=%ED%A0%80"), 400, "not UTF-8"),
        ("page: long cursor", _get("/runs?cursor=" + "A" * 2000), 400, "cursor"),
        ("page: forged cursor", _get("/runs?sort=seed&cursor=" + _cursor(10**30)), 400,
         "cursor"),
        ("page: a huge leaderboard budget", _get(f"/use-cases/x?budget={huge}"), (400, 404),
         ""),
        ("page: a huge comparison budget", _get(f"/compare?budget={huge}"), 400, "budget"),
    ]  # fmt: skip
    return cases


def test_hostile_query_parameters_are_refused_in_one_sentence(bounded, real_run):
    assert bounded.upload(real_run.metadata, bounded.alice).status_code == 201
    cases = _query_cases(bounded)
    failures = [m for case in cases if (m := _refused(bounded, *case))]
    assert not failures, "\n".join(failures)


def test_filters_read_the_same_on_the_api_and_the_pages(bounded, real_run):
    """One parser, one rule: what the API takes the page takes, blank means not given."""
    seed = 2**32 - 1  # a problem's largest seed: more than a 32-bit column holds
    run = real_run.variant()
    run["algorithm"] = {**run["algorithm"], "seed": seed}
    assert bounded.upload(run, bounded.alice).status_code == 201
    for query in (
        f"seed={seed}",
        "min_budget=0",
        "min_budget=8&max_budget=8",
        "seed=&q=",
        "verified=no",
        f"q={run['optimization_name'].split()[0]}&state=complete",
    ):
        api = bounded.client.get(f"/api/v1/runs?{query}")
        page = bounded.client.get(f"/runs?{query}")
        assert api.status_code == page.status_code == 200, (query, api.text)
        assert api.json()["total"] == 1 and run["run_id"] in page.text, query
    for query in ("min_budget=-1", "max_budget=x", f"seed={2**63}", "state=done"):
        assert bounded.client.get(f"/api/v1/runs?{query}").status_code == 422, query
        assert bounded.client.get(f"/runs?{query}").status_code == 400, query


def _with(run: RealRun, **algorithm) -> dict:
    data = run.variant()
    data["algorithm"] = {**data["algorithm"], **algorithm}
    return data


def _metadata_cases(run: RealRun, service: Service) -> list[tuple[str, object, object, str]]:
    """Metadata fields and JSON bodies beyond what the databases store."""
    a = service.alice

    def upload(data):
        body = data if isinstance(data, bytes) else json.dumps(data).encode()
        return lambda _client: service.upload(body, a)

    named = run.variant(optimization_name="a\x00b")
    surrogate = json.dumps(run.variant()).replace(
        '"optimization_name": "', '"optimization_name": "\\ud800', 1
    )
    deep = run.variant()
    deep["algorithm"]["settings"] = {"x0": json.loads("[" * 100 + "]" * 100)}
    owned = f"/api/v1/runs/{run.run_id}"
    auth = service.auth(a)

    def patch(body: bytes):
        headers = {**auth, "Content-Type": "application/json"}
        return lambda c: c.patch(owned, content=body, headers=headers)

    huge_detail = b'{"ok": true, "details": {"n": ' + b"1" * 40 + b"}}"
    auth = {**auth, "Content-Type": "application/json"}
    return [
        ("a seed beyond 64 bits", upload(_with(run, seed=10**30)), 422, "beyond 64 bits"),
        ("a budget beyond 64 bits", upload(_with(run, max_evaluations=-(10**20))), 422,
         "beyond 64 bits"),
        ("evaluations past the column", upload(run.variant(evaluations=2**40)), 422,
         "evaluations"),
        ("a population past the column", upload(_with(run, population=2**31)), 422,
         "population"),
        ("a NUL in a name", upload(named), 422, "NUL"),
        ("a lone surrogate in a name", upload(surrogate.encode()), 422, "surrogate"),
        ("a NUL in a key", upload(_with(run, settings={"a\x00": 1})), 422, "NUL"),
        ("settings nested 100 deep", upload(deep), 422, "nested more than 64"),
        ("100,000 [", upload(b"[" * 100_000 + b"]" * 100_000), 400, "nested too deeply"),
        ("an algorithm key longer than its column", upload(_with(run, key="k" * 101)), 422,
         "key"),
        ("a package name longer than its column", upload(_with(run, package="p" * 101)), 422,
         "package"),
        ("notes with a NUL", patch(b'{"notes": "a\\u0000b"}'), 422, "NUL"),
        ("notes with a lone surrogate", patch(b'{"notes": "\\udc00"}'), 422, "surrogate"),
        ("tags nested 100,000 deep", patch(b'{"tags": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
         400, "nested too deeply"),
        ("a huge integer in a body", patch(b'{"tags": [' + b"9" * 30 + b"]}"), 422,
         "beyond 64 bits"),
        ("over-long notes", patch(json.dumps({"notes": "n" * 10_001}).encode()), 422, "notes"),
        ("a JSON body over 1 MiB", patch(json.dumps({"notes": "n" * 2**20}).encode()), 413,
         "larger than 1 MiB"),
        ("a sign-in form over 1 MiB",
         lambda c: c.post("/sign-in", content=b"token=" + b"x" * 2**20,
                          headers={"Content-Type": "application/x-www-form-urlencoded"}),
         413, "form is larger than 1 MiB"),
        ("a token name with a NUL",
         lambda c: c.post("/api/v1/tokens", json={"name": "a\x00"}, headers=auth), 422, "NUL"),
        ("a verification with a huge integer",
         lambda c: c.post(f"{owned}/verifications", headers=auth, content=huge_detail), 422,
         "beyond 64 bits"),
    ]  # fmt: skip


def test_metadata_and_json_bodies_beyond_the_databases_are_refused(bounded, real_run):
    assert bounded.upload(real_run.metadata, bounded.alice).status_code == 201
    cases = _metadata_cases(real_run, bounded)
    failures = [m for case in cases if (m := _refused(bounded, *case))]
    assert not failures, "\n".join(failures)
    # a seed up to 64 bits is a seed, on both databases
    big = _with(real_run, seed=2**62)
    assert bounded.upload(big, bounded.alice).status_code == 201
    found = bounded.client.get(f"/api/v1/runs?seed={2**62}").json()
    assert [item["run_id"] for item in found["items"]] == [big["run_id"]]


def test_zip_bombs_of_many_small_entries_stop_at_their_budget(service, bounded, real_run):
    """No entry is over 1 MiB, so no header gives the bomb away: it is stopped as it is
    unpacked, by its ratio (default limits) or by the upload's budget (small limits)."""
    bomb = _many_small_entries(400, 64 * 2**10)  # 25 MiB of zeros in about 60 kB
    assert len(bomb) < 2**17
    send = lambda s: lambda _c: s.upload(real_run.metadata, s.alice, store=bomb)  # noqa: E731
    failures = [
        _refused(service, "the bomb at default limits", send(service), 400, "zip bomb"),
        _refused(bounded, "the bomb at 4 MiB per upload", send(bounded), 413, "4 MiB"),
        _refused(
            bounded,
            "too many entries",
            lambda _c: bounded.upload(
                real_run.metadata, bounded.alice, store=_many_small_entries(501, 0)
            ),
            413,
            "500 entries",
        ),  # fmt: skip
        _refused(
            bounded,
            "an archive of many small entries",
            lambda _c: bounded.upload(
                real_run.metadata, bounded.alice, archive=("model.zip", bomb)
            ),
            413,
            "4 MiB",
        ),  # fmt: skip
    ]
    assert not [f for f in failures if f], "\n".join(failures)
    # what was written before the bomb was stopped: at most its ratio's worth and a block
    assert service.client.app.state.unpacking.peak_bytes <= 200 * len(bomb) + 2**20
    assert bounded.client.app.state.unpacking.peak_bytes <= LIMITS.max_unpacked_bytes


def _user_id(service: Service, handle: str) -> int:
    return service.catalog.authenticate(getattr(service, handle)).user_id


def test_a_users_quota_counts_kept_runs_and_uploads_in_progress(catalog_url, tmp_path, real_run):
    entries = zipfile.ZipFile(io.BytesIO(real_run.store_zip)).infolist()
    store_bytes = sum(info.file_size for info in entries)
    quota = store_bytes + 2**20
    limits = replace(LIMITS, max_user_bytes=quota)
    service = make_service(catalog_url, tmp_path / "files", limits=limits)
    try:
        alice = _user_id(service, "alice")
        first = service.upload(real_run.metadata, service.alice, store=real_run.store_zip)
        assert first.status_code == 201, first.text
        assert service.catalog.unpacked_bytes(alice) == store_bytes  # runs.unpacked_bytes
        archive = ("model.zip", _noise(2**20 + 1))  # 1 MiB and a byte: past the quota
        second = real_run.variant()
        failure = _refused(service, "an archive past the quota",
                           lambda _c: service.upload(second, service.alice, archive=archive),
                           413, "your quota")  # fmt: skip
        assert not failure, failure
        # another user's quota is their own
        assert service.upload(second, service.bob, archive=archive).status_code == 201
        # an upload of hers being unpacked at the same time counts too
        booking = service.client.app.state.unpacking.open(alice, 0)
        booking.write(2**20 - 1000)
        small = ("model.zip", _noise(2000))
        third = real_run.variant()
        failure = _refused(service, "a parallel upload past the quota",
                           lambda _c: service.upload(third, service.alice, archive=small),
                           413, "your quota")  # fmt: skip
        booking.release()
        assert not failure, failure
        assert service.upload(third, service.alice, archive=small).status_code == 201
        # deleting a run gives its bytes back
        deleted = service.client.delete(
            f"/api/v1/runs/{real_run.run_id}", headers=service.auth(service.alice)
        )
        assert deleted.status_code == 204
        fourth = real_run.variant()
        assert service.upload(fourth, service.alice, archive=archive).status_code == 201
        # and the catalog itself checks the quota when it writes the row
        with pytest.raises(QuotaExceeded, match="quota"):
            service.catalog.put_run(
                uploads.read_run(json.dumps(real_run.variant()).encode()),
                service.catalog.authenticate(service.alice), store_file="runs/x/store.zip",
                unpacked={"store": quota}, quota=quota,
            )  # fmt: skip
    finally:
        service.close()


def test_parallel_uploads_share_one_budget(catalog_url, tmp_path, real_run):
    limits = replace(
        LIMITS,
        max_staging_bytes=int(1.6 * 2**20),
        max_unpacked_bytes=2**20 + 2**19,
        max_user_members=100,
    )
    service = make_service(catalog_url, tmp_path / "files", limits=limits)
    account = service.client.app.state.unpacking
    try:
        # another user's upload holds most of the server's budget: this one waits its turn
        booking = account.open(_user_id(service, "bob"), 0)
        booking.write(2**20 + 2**19)
        failure = _refused(service, "an upload while the budget is taken",
                           lambda _c: service.upload(real_run.metadata, service.alice,
                                                     store=real_run.store_zip),
                           503, "too many uploads at once")  # fmt: skip
        booking.release()
        assert not failure, failure
        # an upload of hers unpacking 60 entries: with the store's 42, more than her 100
        booking = account.open(_user_id(service, "alice"), 0)
        for _ in range(60):
            booking.entry()
        failure = _refused(service, "an upload past the user's entries at once",
                           lambda _c: service.upload(real_run.metadata, service.alice,
                                                     store=real_run.store_zip),
                           429, "wait for one to finish")  # fmt: skip
        booking.release()
        assert not failure, failure
        # eight uploads of 1 MiB each at once, from four users, on a budget of 1.6 MiB
        users = [service.catalog.issue_token(f"user{k}") for k in range(4)]
        noise = _noise(2**20)
        answers: list[int] = []

        def send(token: str) -> None:
            answers.append(service.upload(real_run.variant(), token, store=noise).status_code)

        threads = [threading.Thread(target=send, args=(users[k % 4],)) for k in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        # each is refused for what it is (no Zarr store) or for the budget, nothing more
        assert sorted(set(answers)) <= [422, 503], answers
        assert account.peak_bytes <= limits.max_staging_bytes
        assert account.in_use() == (0, 0)
        assert service.leftovers() == []
        last = service.upload(real_run.metadata, service.alice, store=real_run.store_zip)
        assert last.status_code == 201, last.text
    finally:
        service.close()


def test_catalog_serve_takes_the_limits(monkeypatch, tmp_path):
    """``catalog serve``'s options become the app's limits (uvicorn itself is not started)."""
    import uvicorn
    from typer.testing import CliRunner

    from neuroptimus.flows.cli.catalog import app

    served = {}
    monkeypatch.setattr(uvicorn, "run", lambda site, **_options: served.setdefault("app", site))
    result = CliRunner().invoke(app, [
        "serve", "--db", f"sqlite:///{tmp_path / 'c.sqlite'}", "--files", str(tmp_path / "f"),
        "--max-upload-mib", "3", "--max-unpacked-mib", "5", "--max-entries", "7",
        "--user-quota-gib", "0.5", "--staging-gib", "1",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    limits = served["app"].state.limits
    assert (limits.max_bytes, limits.max_unpacked_bytes, limits.max_members) == (
        3 * 2**20,
        5 * 2**20,
        7,
    )
    assert (limits.max_user_bytes, limits.max_staging_bytes) == (2**29, 2**30)
    assert served["app"].state.unpacking.budgets == limits.budgets()


HOSTILE_VALUES = (
    "99999999999999999999999", "-99999999999999999999999", "-1", "0", "", "1e400", "nan",
    "%00", "%ED%A0%80", "x" * 3000, "+".join(["w"] * 1200), "[" * 500, _cursor(10**30),
)  # fmt: skip


def test_every_parameter_of_the_openapi_spec_takes_hostile_values(bounded, real_run):
    """A small fuzz from the app's own OpenAPI document: each query and path parameter of
    each GET endpoint, one hostile value at a time; never a 500 (the test client raises the
    server's exceptions), a 4xx always says one sentence."""
    assert bounded.upload(real_run.metadata, bounded.alice).status_code == 201
    spec = bounded.client.get("/openapi.json").json()
    alice = bounded.auth(bounded.alice)
    sent = 0
    for template, operations in spec["paths"].items():
        parameters = (operations.get("get") or {}).get("parameters", [])
        if "get" not in operations:
            continue
        for chosen in parameters:
            for value in HOSTILE_VALUES:
                path, query = template, []
                for parameter in parameters:
                    given = value if parameter is chosen else "x"
                    if parameter["in"] == "path":
                        path = path.replace("{" + parameter["name"] + "}", given or "x")
                    elif parameter is chosen:
                        query.append(f"{parameter['name']}={given}")
                path = path.replace("{run_id}", real_run.run_id)
                answer = bounded.client.get(f"{path}?{'&'.join(query)}", headers=alice)
                sent += 1
                assert answer.status_code < 500, (path, query, answer.text)
                if answer.status_code >= 400:
                    assert not _answer_problems(answer, answer.status_code, ""), answer.text
    assert sent > 100
