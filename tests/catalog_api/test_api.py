"""The catalog's JSON API on a real catalog (SQLite and PostgreSQL): uploads and idempotent
re-uploads, who may read, edit and delete what, listing with filters, sorting, pagination and
CSV, a run's files, use cases, comparisons, verifications, tokens, and the browser session."""

from __future__ import annotations

import csv
import io
import json
import tarfile
import zipfile

import yaml
from catalog_service import make_service
from fastapi import Form, Request, Response

from neuroptimus.optimization.problem.spec import ProblemSpec
from neuroptimus.storage.catalog.web import auth
from neuroptimus.storage.catalog.web.app import create_app
from neuroptimus.usecases import problem_path
from tests.storage.catalog.original_metadata import original_metadata


def _archive() -> tuple[str, bytes]:
    """What the original site called an archive "for full replication": the model's files."""
    buffer = io.BytesIO()
    folder = problem_path("hh").parent
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.iterdir()):
            if path.is_file():
                archive.write(path, f"hh/{path.name}")
    return "model.zip", buffer.getvalue()


def _tar_archive() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        archive.add(problem_path("hh").parent, arcname="hh")
    return buffer.getvalue()


def test_an_upload_with_its_files_is_served_back_and_a_re_upload_is_idempotent(service, real_run):
    run_id = real_run.run_id
    archive = _archive()
    first = service.upload(
        real_run.metadata, service.alice, store=real_run.store_zip, archive=archive
    )
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["run_id"] == run_id and body["created"] is True
    assert body["use_case"] and body["fingerprint"] == real_run.metadata["use_case"]["fingerprint"]
    assert body["url"] == f"/api/v1/runs/{run_id}"
    # the same again, by POST and by PUT: 200, nothing new
    rows = service.row_counts()
    again = service.upload(
        real_run.metadata, service.alice, store=real_run.store_zip, archive=archive
    )
    assert again.status_code == 200 and again.json()["created"] is False
    put = service.upload(real_run.metadata, service.alice, run_id=run_id)
    assert put.status_code == 200 and put.json()["created"] is False
    assert service.row_counts() == rows
    assert service.leftovers() == [f"runs/{run_id}/archive.zip", f"runs/{run_id}/store.zip"]

    client = service.client  # anonymous from here: a public run needs nothing
    run = client.get(f"/api/v1/runs/{run_id}").json()
    assert run["run_id"] == run_id and run["uploader"] == "alice"
    assert run["final_error"] == real_run.metadata["final_error"]
    assert client.get(f"/api/v1/runs/{run_id}/metadata.json").json() == real_run.metadata
    curve = client.get(f"/api/v1/runs/{run_id}/curve").json()
    assert [row["evaluations"] for row in curve] == [4, 8]
    assert curve[-1]["cumulative_best"] == real_run.metadata["final_error"]
    store = client.get(f"/api/v1/runs/{run_id}/store.zip")
    assert store.status_code == 200 and store.content == real_run.store_zip
    assert client.get(f"/api/v1/runs/{run_id}/archive").content == archive[1]
    problem = client.get(f"/api/v1/runs/{run_id}/problem.yaml")
    assert problem.headers["content-type"].startswith("application/yaml")
    spec = ProblemSpec.model_validate(yaml.safe_load(problem.text))
    assert spec.seed == real_run.metadata["algorithm"]["seed"]
    assert spec.algorithm.name == "cmaes" and spec.algorithm.population == 4
    slug = body["use_case"]
    case = yaml.safe_load(client.get(f"/api/v1/use-cases/{slug}/problem.yaml").text)
    assert "algorithm" not in case and "seed" not in case
    assert [p["name"] for p in case["parameters"]] == ["gnabar_hh", "gkbar_hh", "gl_hh"]


def test_a_put_creates_a_run_and_a_later_push_adds_its_store(service, real_run):
    run_id = real_run.run_id
    assert service.upload(real_run.metadata, service.alice, run_id=run_id).status_code == 201
    missing = service.client.get(f"/api/v1/runs/{run_id}/store.zip")
    assert missing.status_code == 404 and "without its store" in missing.json()["detail"]
    archive = _tar_archive()
    later = service.upload(
        real_run.metadata,
        service.alice,
        run_id=run_id,
        store=real_run.store_zip,
        archive=("model.tar.gz", archive),
    )
    assert later.status_code == 200 and later.json()["warnings"] == [], later.text
    store = service.client.get(f"/api/v1/runs/{run_id}/store.zip")
    assert store.status_code == 200 and store.content == real_run.store_zip
    assert service.client.get(f"/api/v1/runs/{run_id}/archive").content == archive
    # a third push with a store changes nothing and leaves no file behind
    again = service.upload(real_run.metadata, service.alice, run_id=run_id,
                           store=real_run.store_zip)  # fmt: skip
    assert again.status_code == 200
    assert service.leftovers() == [f"runs/{run_id}/archive.tar.gz", f"runs/{run_id}/store.zip"]


def test_who_reads_what_public_unlisted_private(service, real_run):
    public = real_run.variant(seed=1)
    unlisted = real_run.variant(seed=2)
    private = real_run.variant(seed=3)
    for data, visibility in ((public, "public"), (unlisted, "unlisted"), (private, "private")):
        answer = service.upload(data, service.alice, visibility=visibility)
        assert answer.status_code == 201, answer.text
    client, alice, bob = service.client, service.auth(service.alice), service.auth(service.bob)

    def listed(headers) -> set[str]:
        return {
            item["run_id"] for item in client.get("/api/v1/runs", headers=headers).json()["items"]
        }

    assert listed({}) == listed(bob) == {public["run_id"]}
    assert listed(alice) == {public["run_id"], unlisted["run_id"], private["run_id"]}
    # unlisted: by its link, for anyone
    assert client.get(f"/api/v1/runs/{unlisted['run_id']}").status_code == 200
    # private: its owner only; to others it does not exist
    for headers in ({}, bob):
        answer = client.get(f"/api/v1/runs/{private['run_id']}", headers=headers)
        assert answer.status_code == 404 and "no run" in answer.json()["detail"]
        for part in ("curve", "metadata.json", "problem.yaml", "store.zip"):
            assert (
                client.get(f"/api/v1/runs/{private['run_id']}/{part}", headers=headers).status_code
                == 404
            )
        assert (
            client.get(
                f"/api/v1/compare?runs={public['run_id']},{private['run_id']}", headers=headers
            ).status_code
            == 404
        )
    assert client.get(f"/api/v1/runs/{private['run_id']}", headers=alice).status_code == 200
    assert client.get("/api/v1/runs/00000000-0000-4000-8000-000000000000").status_code == 404


def test_nobody_edits_or_deletes_another_users_run(service, real_run):
    answer = service.upload(real_run.metadata, service.alice, store=real_run.store_zip)
    assert answer.status_code == 201
    run_id, client = real_run.run_id, service.client
    bob, alice = service.auth(service.bob), service.auth(service.alice)
    url = f"/api/v1/runs/{run_id}"
    assert client.patch(url, json={"notes": "mine now"}).status_code == 401
    assert client.patch(url, json={"notes": "mine now"}, headers=bob).status_code == 403
    assert client.delete(url).status_code == 401
    denied = client.delete(url, headers=bob)
    assert denied.status_code == 403 and isinstance(denied.json()["detail"], str)
    assert client.patch(url, json={"owner": "bob"}, headers=alice).status_code == 422
    assert client.get(url).json()["uploader"] == "alice"
    # the owner may
    changed = client.patch(
        url, json={"notes": "first try", "tags": ["uc1"], "visibility": "unlisted"}, headers=alice
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["notes"] == "first try" and changed.json()["visibility"] == "unlisted"
    assert client.get("/api/v1/runs").json()["total"] == 0
    assert client.delete(url, headers=alice).status_code == 204
    assert client.get(url).status_code == 404
    assert service.leftovers() == []
    assert client.delete(url, headers=alice).status_code == 404


def test_listing_filters_sorts_pages_and_exports_csv(service, real_run):
    errors = [0.5, 0.1, 0.9, 0.3, 0.7]
    ids = []
    for seed, error in enumerate(errors):
        data = real_run.variant(final_error=error)
        data["algorithm"] = {**data["algorithm"], "seed": seed}
        assert service.upload(data, service.alice).status_code == 201
        ids.append(data["run_id"])
    client = service.client
    by_error = [ids[i] for i in sorted(range(5), key=lambda i: errors[i])]
    # pages of two, by final error, follow the cursor to the end
    seen, cursor = [], None
    while True:
        page = client.get(
            "/api/v1/runs",
            params={"sort": "final_error", "limit": 2, **({"cursor": cursor} if cursor else {})},
        )
        assert page.status_code == 200, page.text
        assert page.json()["total"] == 5 and len(page.json()["items"]) <= 2
        seen += [item["run_id"] for item in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == by_error
    descending = client.get("/api/v1/runs", params={"sort": "-final_error"}).json()["items"]
    assert [item["run_id"] for item in descending] == by_error[::-1]
    # filters pass through
    one = client.get("/api/v1/runs", params={"seed": 3}).json()
    assert [item["run_id"] for item in one["items"]] == [ids[3]] and one["total"] == 1
    assert client.get("/api/v1/runs", params={"algorithm": "cmaes"}).json()["total"] == 5
    assert client.get("/api/v1/runs", params={"algorithm": "pso"}).json()["total"] == 0
    assert client.get("/api/v1/runs", params={"uploader": "bob"}).json()["total"] == 0
    assert client.get("/api/v1/runs", params={"min_budget": 9}).json()["total"] == 0
    # refused with a sentence
    bad_sort = client.get("/api/v1/runs", params={"sort": "password"})
    assert bad_sort.status_code == 422 and "sort by one of" in bad_sort.json()["detail"]
    bad_limit = client.get("/api/v1/runs", params={"limit": 0})
    assert bad_limit.status_code == 422 and isinstance(bad_limit.json()["detail"], str)
    bad_cursor = client.get("/api/v1/runs", params={"cursor": "not-a-cursor"})
    assert bad_cursor.status_code == 422 and "cursor" in bad_cursor.json()["detail"]
    # CSV: every matching run, by format= or by Accept
    for answer in (
        client.get("/api/v1/runs", params={"format": "csv", "sort": "final_error"}),
        client.get("/api/v1/runs", params={"sort": "final_error"}, headers={"Accept": "text/csv"}),
    ):
        assert answer.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(answer.text)))
        assert [row["run_id"] for row in rows] == by_error
        assert [float(row["final_error"]) for row in rows] == sorted(errors)
        assert {row["uploader"] for row in rows} == {"alice"}


def test_use_cases_leaderboard_and_compare(service, real_run):
    ids = []
    for seed in (1, 2):
        data = real_run.variant()
        data["algorithm"] = {**data["algorithm"], "seed": seed}
        assert service.upload(data, service.alice).status_code == 201
        ids.append(data["run_id"])
    client = service.client
    cases = client.get("/api/v1/use-cases").json()
    assert len(cases) == 1 and cases[0]["runs"] == 2
    slug = cases[0]["slug"]
    assert client.get(f"/api/v1/use-cases/{slug}").json()["slug"] == slug
    board = client.get(f"/api/v1/use-cases/{slug}/leaderboard", params={"budget": 8})
    assert board.status_code == 200, board.text
    assert client.get("/api/v1/use-cases/nothing-here").status_code == 404
    bad = client.get(f"/api/v1/use-cases/{slug}/leaderboard", params={"group_by": "password"})
    assert bad.status_code == 422 and "group_by" in bad.json()["detail"]
    by_runs = client.get("/api/v1/compare", params={"runs": ",".join(ids)})
    assert by_runs.status_code == 200, by_runs.text
    by_case = client.get("/api/v1/compare", params={"use_case": slug, "algorithms": "cmaes"})
    assert by_case.status_code == 200, by_case.text
    assert client.get("/api/v1/compare").status_code == 422


def test_verifications_need_the_verify_scope_and_the_verifier_runs_after_an_upload(
    catalog_url, tmp_path, real_run, request
):
    checked = []

    def verifier(run, problem):  # what neuroptimus.storage.catalog.verify.verify_best answers
        assert problem.name == "hh" and "usecases" in problem.base_dir  # the bundled files
        checked.append(run.run_id)
        return {
            "reported": run.final_error,
            "reproduced": run.final_error,
            "rel_diff": 0.0,
            "ok": True,
            "method": "resimulate-best",
        }

    service = make_service(catalog_url, tmp_path / "files", verifier=verifier)
    request.addfinalizer(service.close)
    assert service.upload(real_run.metadata, service.alice).status_code == 201
    service.client.app.state.verifications.submit(lambda: None).result()  # the queue has run
    assert checked == [real_run.run_id]
    url = f"/api/v1/runs/{real_run.run_id}/verifications"
    found = service.client.get(url).json()
    assert len(found) == 1 and found[0]["ok"] is True
    check = {"method": "resimulate-best", "reported": 0.1, "reproduced": 0.2, "ok": False}
    denied = service.client.post(url, json=check, headers=service.auth(service.alice))
    assert denied.status_code == 403 and "'verify' scope" in denied.json()["detail"]
    verifier_token = service.catalog.issue_token("vera", scopes={"read", "verify"})
    nan = service.client.post(
        url,
        content=json.dumps({**check, "reported": float("nan")}),
        headers={**service.auth(verifier_token), "Content-Type": "application/json"},
    )
    assert nan.status_code == 422
    added = service.client.post(url, json=check, headers=service.auth(verifier_token))
    assert added.status_code == 201, added.text
    assert len(service.client.get(url).json()) == 2
    # a re-upload is not verified again
    assert service.upload(real_run.metadata, service.alice).status_code == 200
    service.client.app.state.verifications.submit(lambda: None).result()
    assert checked == [real_run.run_id]


def test_tokens_me_health_and_docs(service):
    client, alice = service.client, service.auth(service.alice)
    health = client.get("/health").json()
    assert health == {"status": "ok", "database": service.url.split(":")[0].split("+")[0]}
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/v1/runs", "/api/v1/runs/{run_id}", "/api/v1/use-cases/{slug}/leaderboard"} <= set(
        paths
    )
    assert client.get("/api/v1/me").status_code == 401
    me = client.get("/api/v1/me", headers=alice).json()
    assert me["handle"] == "alice" and "upload" in me["scopes"]
    wider = client.post("/api/v1/tokens", json={"scopes": ["admin"]}, headers=alice)
    assert wider.status_code == 403 and "scopes" in wider.json()["detail"]
    made = client.post("/api/v1/tokens", json={"name": "ci", "scopes": ["read"]}, headers=alice)
    assert made.status_code == 201 and made.json()["token"].startswith("npt_")
    new = made.json()["token"]
    listed = client.get("/api/v1/tokens", headers=alice).json()
    assert all(new not in json.dumps(entry) for entry in listed)  # never shown again
    ci = [entry for entry in listed if entry["name"] == "ci"]
    assert len(ci) == 1
    assert client.get("/api/v1/me", headers=service.auth(new)).status_code == 200
    assert client.delete(f"/api/v1/tokens/{ci[0]['id']}", headers=alice).status_code == 204
    revoked = client.get("/api/v1/me", headers=service.auth(new))
    assert revoked.status_code == 401 and "revoked" in revoked.json()["detail"]
    assert client.get("/api/v1/me", headers={"Authorization": "Basic YWxpY2U="}).status_code == 401


def test_a_signed_session_reads_private_runs_and_forms_need_its_csrf_token(service, real_run):
    """The helpers the pages' forms use, on routes of the test's own."""
    app = service.client.app
    private = real_run.variant()
    assert service.upload(private, service.alice, visibility="private").status_code == 201

    @app.post("/test/sign-in")
    def sign_in(request: Request, token: str = Form(...)) -> Response:
        response = Response("signed in")
        auth.sign_in(request, response, token)
        return response

    @app.get("/test/form")
    def form(request: Request) -> dict:
        who = auth.session_principal(request)
        return {"csrf": auth.csrf_token(request), "handle": who.handle if who else None}

    @app.post("/test/form")
    def submit(request: Request, csrf: str = Form("")) -> dict:
        auth.check_csrf(request, csrf)
        return {"ok": True}

    client = service.client
    anonymous = client.get("/test/form").json()
    assert anonymous["handle"] is None
    client.post("/test/sign-in", data={"token": service.alice})
    signed = client.get("/test/form").json()
    assert signed["handle"] == "alice" and signed["csrf"] != anonymous["csrf"]
    assert client.get(f"/api/v1/runs/{private['run_id']}").status_code == 200
    assert client.post("/test/form", data={"csrf": signed["csrf"]}).json() == {"ok": True}
    last = "1" if signed["csrf"].endswith("0") else "0"
    for wrong in ("", anonymous["csrf"], signed["csrf"][:-1] + last):
        refused = client.post("/test/form", data={"csrf": wrong})
        assert refused.status_code == 403 and "security token" in refused.json()["detail"]
    # the cookie never authorises API writes (a form elsewhere could send it)
    assert service.upload(real_run.metadata, None).status_code == 401
    # a tampered cookie is no session
    cookie = client.cookies[auth.SESSION_COOKIE]
    client.cookies.clear()
    client.cookies.set(auth.SESSION_COOKIE, "x" + cookie)
    assert client.get("/test/form").json()["handle"] is None
    assert client.get(f"/api/v1/runs/{private['run_id']}").status_code == 404
    client.cookies.clear()
    client.cookies.set(auth.SESSION_COOKIE, cookie)
    assert client.get("/test/form").json()["handle"] == "alice"
    # a restarted server (another app on the same catalog) keeps the sessions
    again = create_app(service.catalog, service.files)
    assert again.state.catalog_secret == app.state.catalog_secret
    # revoking the token ends the session
    for entry in service.catalog.list_tokens("alice"):
        service.catalog.revoke_token("alice", entry["id"])
    assert client.get("/test/form").json()["handle"] is None


def test_the_original_tools_metadata_is_cataloged_with_a_warning(service):
    data = original_metadata()
    first = service.upload(data, service.alice)
    assert first.status_code == 201, first.text
    assert "names and bounds only" in " ".join(first.json()["warnings"])
    run_id = first.json()["run_id"]
    assert service.upload(data, service.alice).status_code == 200  # its id is its content's
    run = service.client.get(f"/api/v1/runs/{run_id}").json()
    assert run["source_format"] == "original-neuroptimus" and run["final_error"] == 0.0125
    assert service.client.get(f"/api/v1/runs/{run_id}/metadata.json").json() == data
    problem = service.client.get(f"/api/v1/runs/{run_id}/problem.yaml")
    assert problem.status_code == 404 and "original tool's format" in problem.json()["detail"]
