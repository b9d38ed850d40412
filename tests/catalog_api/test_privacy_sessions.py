"""Private stays private and sessions live on the server: a use case known only from a private
run shows nowhere to others (API, leaderboard, comparison, pages, CSV) and goes with its last
run; a PUT of a hidden run answers as its GET; the session cookie is a random id that
sign-out, revocation and expiry end on the server; every response carries the security
headers (the pages' inline figure script under the response's CSP nonce).

On the catalog app with its pages (API and pages share one app, as ``catalog serve`` runs
them), on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
import sqlalchemy
from catalog_service import Service, make_service
from fastapi.testclient import TestClient

from neuroptimus.storage.catalog.web import auth
from neuroptimus.storage.catalog.web.site import add_pages
from tests.storage.catalog.original_metadata import original_metadata


@pytest.fixture
def site(catalog_url, tmp_path) -> Iterator[Service]:
    service = make_service(catalog_url, tmp_path / "files")
    add_pages(service.client.app, service.catalog)
    yield service
    service.close()


def _sql(service: Service, statement: str, **params) -> list:
    """Rows of a statement, run with an engine of our own (not the catalog's code)."""
    service.row_counts()  # makes the service's own engine
    with service._engine.begin() as connection:
        result = connection.execute(sqlalchemy.text(statement), params)
        return result.all() if result.returns_rows else []


def _browser(service: Service, base_url: str = "http://testserver") -> TestClient:
    return TestClient(service.client.app, base_url=base_url)


def _sign_in(browser: TestClient, token: str):
    form = browser.get("/sign-in").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
    return browser.post("/sign-in", data={"token": token, "csrf": csrf, "next": "/"},
                        follow_redirects=False)  # fmt: skip


def _sign_out(browser: TestClient):
    csrf = re.search(r'name="csrf" value="([^"]+)"', browser.get("/").text).group(1)
    return browser.post("/sign-out", data={"csrf": csrf}, follow_redirects=False)


def _with_cookie(service: Service, cookie: str) -> TestClient:
    """Another browser holding a copy of a session cookie."""
    other = _browser(service)
    other.cookies.set(auth.SESSION_COOKIE, cookie)
    return other


# -- private use cases --------------------------------------------------------------------
def _everything_shown(client: TestClient, slug: str, headers: dict) -> dict[str, str]:
    """Every surface a use case shows on, as one text each (status first)."""
    urls = [
        "/api/v1/use-cases", f"/api/v1/use-cases/{slug}", f"/api/v1/use-cases/{slug}/leaderboard",
        f"/api/v1/use-cases/{slug}/problem.yaml", f"/api/v1/compare?use_case={slug}",
        f"/api/v1/runs?use_case={slug}", f"/api/v1/runs?use_case={slug}&format=csv",
        "/api/v1/runs?format=csv", "/", f"/use-cases/{slug}", f"/compare?use_case={slug}",
        f"/runs?use_case={slug}",
    ]  # fmt: skip
    shown = {}
    for url in urls:
        answer = client.get(url, headers=headers)
        shown[url] = f"{answer.status_code} {answer.text}"
    return shown


def test_a_private_runs_use_case_shows_nowhere_but_to_its_owner(site, real_run):
    private = real_run.variant()
    made = site.upload(private, site.alice, visibility="private")
    assert made.status_code == 201, made.text
    slug, fingerprint = made.json()["use_case"], made.json()["fingerprint"]
    # what would tell others what alice works on (its name is its slug, asked for here)
    identity = real_run.metadata["use_case"]
    description, name = identity["description"], identity["name"]
    assert description and fingerprint
    alice = _browser(site)
    assert _sign_in(alice, site.alice).status_code == 303
    bob = _browser(site)
    assert _sign_in(bob, site.bob).status_code == 303
    unknown = site.client.get("/api/v1/use-cases/no-such-case").json()["detail"]
    for who, client, headers in (
        ("anyone", site.client, {}),
        ("bob's token", site.client, site.auth(site.bob)),
        ("bob's session", bob, {}),
    ):
        shown = _everything_shown(client, slug, headers)
        for url, text in shown.items():
            for secret in (fingerprint, description, private["run_id"]):
                assert secret not in text, f"{who} reads {secret!r} on {url}"
        # as unknown as a use case that does not exist
        detail = client.get(f"/api/v1/use-cases/{slug}", headers=headers).json()["detail"]
        assert detail == unknown.replace("no-such-case", slug)
        for url in (f"/api/v1/use-cases/{slug}/leaderboard", f"/use-cases/{slug}",
                    f"/api/v1/compare?use_case={slug}"):  # fmt: skip
            assert shown[url].startswith("404 "), (who, url)
        assert client.get("/api/v1/use-cases", headers=headers).json() == []
    # its owner sees it, by token (the API) and by session (the API and the pages)
    for client, headers, pages in ((site.client, site.auth(site.alice), False), (alice, {}, True)):
        shown = _everything_shown(client, slug, headers)
        assert [c["slug"] for c in client.get("/api/v1/use-cases", headers=headers).json()] == [
            slug
        ]
        urls = ["/api/v1/use-cases", f"/api/v1/use-cases/{slug}"]
        for url in urls + (["/", f"/use-cases/{slug}"] if pages else []):
            assert shown[url].startswith("200 ") and description in shown[url], url
            assert name in shown[url]
        assert shown[f"/api/v1/use-cases/{slug}/leaderboard"].startswith("200 ")
        assert private["run_id"] in shown[f"/api/v1/runs?use_case={slug}&format=csv"]


def test_a_use_case_goes_with_the_last_run_its_viewer_may_see(site, real_run):
    public, private, unlisted = real_run.variant(seed=1), real_run.variant(seed=2), None
    assert site.upload(public, site.bob).status_code == 201
    made = site.upload(private, site.alice, visibility="private")
    slug = made.json()["use_case"]
    client, alice, bob = site.client, site.auth(site.alice), site.auth(site.bob)

    def seen(headers: dict) -> bool:
        listed = [c["slug"] for c in client.get("/api/v1/use-cases", headers=headers).json()]
        detail = client.get(f"/api/v1/use-cases/{slug}", headers=headers).status_code
        assert (slug in listed) == (detail == 200)
        return slug in listed

    assert seen({}) and seen(bob) and seen(alice)
    assert client.delete(f"/api/v1/runs/{public['run_id']}", headers=bob).status_code == 204
    assert not seen({}) and not seen(bob) and seen(alice)
    # an unlisted run is read by its link, but does not list its use case for others
    unlisted = real_run.variant(seed=3)
    assert site.upload(unlisted, site.bob, visibility="unlisted").status_code == 201
    assert not seen({}) and seen(bob)
    assert client.get(f"/api/v1/runs/{unlisted['run_id']}").status_code == 200
    for run, headers in ((private, alice), (unlisted, bob)):
        assert client.delete(f"/api/v1/runs/{run['run_id']}", headers=headers).status_code == 204
    assert not seen(alice) and not seen(bob)
    # nothing of it is kept: its name, bounds and file hashes went with its last run
    assert _sql(site, "SELECT slug FROM use_cases") == []


def test_a_put_of_a_run_the_caller_may_not_see_answers_as_its_get(site, real_run):
    hidden = real_run.metadata
    assert site.upload(hidden, site.alice, visibility="private").status_code == 201
    rows, files = site.row_counts(), site.leftovers()
    read = site.client.get(f"/api/v1/runs/{hidden['run_id']}", headers=site.auth(site.bob))
    assert read.status_code == 404
    for run_id in (hidden["run_id"], None):  # PUT by its id, or POST
        wrote = site.upload(hidden, site.bob, run_id=run_id, store=real_run.store_zip)
        assert (wrote.status_code, wrote.json()) == (read.status_code, read.json())
    assert site.row_counts() == rows and site.leftovers() == files
    # a run others may see is no secret: uploading it again is the conflict it is
    shown = real_run.variant()
    assert site.upload(shown, site.alice).status_code == 201
    assert site.upload(shown, site.bob, run_id=shown["run_id"]).status_code == 409


def test_the_original_tools_runs_get_ids_nobody_can_derive(site):
    data = original_metadata()
    first = site.upload(data, site.alice)
    assert first.status_code == 201, first.text
    run_id = first.json()["run_id"]
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
                        run_id)  # fmt: skip
    again = site.upload(data, site.alice)
    assert again.status_code == 200 and again.json()["run_id"] == run_id
    # the same file from someone else is another entry: its id tells nothing of the first
    other = site.upload(data, site.bob)
    assert other.status_code == 201 and other.json()["run_id"] != run_id


# -- sessions ------------------------------------------------------------------------------
def test_the_cookie_is_a_random_session_id_with_safe_attributes(site, real_run):
    browser = _browser(site)
    signed = _sign_in(browser, site.alice)
    assert signed.status_code == 303
    cookie = browser.cookies[auth.SESSION_COOKIE]
    header = signed.headers["set-cookie"]
    attributes = {part.strip().split("=")[0].lower() for part in header.split(";")}
    assert {"httponly", "max-age", "expires", "path"} <= attributes
    assert "samesite=lax" in header.lower() and "secure" not in attributes  # plain http
    # no token in it, in any encoding; the server keeps only its SHA-256
    padded = cookie + "=" * (-len(cookie) % 4)
    decoded = base64.urlsafe_b64decode(padded.encode()).decode("latin-1")
    token_like = re.compile(r"npt_[a-z2-7]{20,}")
    for text in (cookie, decoded, signed.text, str(signed.headers)):
        assert site.alice not in text and not token_like.search(text)
    stored = _sql(site, "SELECT sha256, ended_at, expires_at, created_at FROM sessions")
    assert [row[0] for row in stored] == [hashlib.sha256(cookie.encode()).hexdigest()]
    lifetime = _time(stored[0][2]) - _time(stored[0][3])
    assert lifetime == timedelta(seconds=auth.SESSION_SECONDS)
    # a wrong token: no session, and the page does not echo what was typed
    stranger = _browser(site)
    refused = _sign_in(stranger, "npt_notatoken")
    assert refused.status_code == 401 and "npt_notatoken" not in refused.text
    assert auth.SESSION_COOKIE not in stranger.cookies
    # over https the cookie is Secure
    secure = _sign_in(_browser(site, "https://testserver"), site.bob)
    assert "secure" in {p.strip().lower() for p in secure.headers["set-cookie"].split(";")}


def _time(value) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def _signed_in_as(browser: TestClient) -> str | None:
    found = re.search(r"signed in as <strong>([^<]+)</strong>", browser.get("/").text)
    return found.group(1) if found else None


def test_a_copied_cookie_stops_working_after_sign_out(site, real_run):
    private = real_run.variant()
    assert site.upload(private, site.alice, visibility="private").status_code == 201
    browser = _browser(site)
    _sign_in(browser, site.alice)
    copy = _with_cookie(site, browser.cookies[auth.SESSION_COOKIE])
    assert _signed_in_as(copy) == "alice"
    assert copy.get(f"/api/v1/runs/{private['run_id']}").status_code == 200
    signed_out = _sign_out(browser)
    assert signed_out.status_code == 303
    assert _signed_in_as(browser) is None and _signed_in_as(copy) is None
    assert copy.get(f"/api/v1/runs/{private['run_id']}").status_code == 404
    assert copy.get(f"/runs/{private['run_id']}").status_code == 404
    assert _sql(site, "SELECT count(*) FROM sessions WHERE ended_at IS NOT NULL")[0][0] == 1
    # signing in again starts another session; the ended one stays ended
    _sign_in(browser, site.alice)
    assert _signed_in_as(browser) == "alice" and _signed_in_as(copy) is None


def test_revoking_the_token_or_its_expiry_ends_its_sessions(site, real_run):
    laptop = site.catalog.issue_token("alice", name="laptop")
    browser = _browser(site)
    _sign_in(browser, laptop)
    copy = _with_cookie(site, browser.cookies[auth.SESSION_COOKIE])
    assert _signed_in_as(copy) == "alice"
    (entry,) = [t for t in site.catalog.list_tokens("alice") if t["name"] == "laptop"]
    revoked = site.client.delete(f"/api/v1/tokens/{entry['id']}", headers=site.auth(site.alice))
    assert revoked.status_code == 204
    assert _signed_in_as(copy) is None and _signed_in_as(browser) is None
    ended = _sql(site, "SELECT ended_at FROM sessions WHERE token_id = :id", id=entry["id"])
    assert ended and all(row[0] is not None for row in ended)
    # a token that expires: the session ends with it (its cookie lasts no longer either)
    brief = site.catalog.issue_token("bob", name="brief", expires_days=1)
    browser = _browser(site)
    _sign_in(browser, brief)
    assert _signed_in_as(browser) == "bob"
    (row,) = _sql(site, "SELECT s.expires_at, t.expires_at FROM sessions s JOIN api_tokens t "
                        "ON t.id = s.token_id WHERE t.name = 'brief'")  # fmt: skip
    assert _time(row[0]) <= _time(row[1])
    _sql(site, "UPDATE api_tokens SET expires_at = :past WHERE name = 'brief'",
         past=datetime(2000, 1, 1))  # fmt: skip
    assert _signed_in_as(browser) is None


def test_an_expired_session_is_no_session(site):
    browser = _browser(site)
    _sign_in(browser, site.alice)
    assert _signed_in_as(browser) == "alice"
    _sql(site, "UPDATE sessions SET expires_at = :past", past=datetime(2000, 1, 1))
    assert _signed_in_as(browser) is None
    # an unknown or malformed cookie is no session either (and no error)
    for value in ("x" * 43, "not a session", ""):
        assert _signed_in_as(_with_cookie(site, value)) is None


# -- security headers ----------------------------------------------------------------------
def _assert_secured(answer, url: str) -> str:
    headers = answer.headers
    assert headers.get("x-frame-options") == "DENY", url
    assert headers.get("x-content-type-options") == "nosniff", url
    assert headers.get("referrer-policy") == "same-origin", url
    policy = headers.get("content-security-policy", "")
    assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy, url
    assert "'unsafe-inline'" not in policy.split("script-src", 1)[1].split(";")[0], url
    return policy


def test_every_page_and_api_response_has_the_security_headers(site, real_run):
    made = site.upload(real_run.metadata, site.alice, store=real_run.store_zip)
    slug, run_id = made.json()["use_case"], real_run.run_id
    client = site.client
    urls = [
        "/", "/runs", f"/runs/{run_id}", f"/use-cases/{slug}", "/compare", "/sign-in",
        "/no-such-page", "/use-cases/no-such", "/assets/catalog.css",
        "/assets/bokeh/js/bokeh.min.js", "/health", "/openapi.json", "/api/v1/runs",
        "/api/v1/runs?format=csv", f"/api/v1/runs/{run_id}", f"/api/v1/runs/{run_id}/store.zip",
        "/api/v1/runs/no-such", "/api/v1/me", "/api/v1/use-cases",
    ]  # fmt: skip
    for url in urls:
        policy = _assert_secured(client.get(url), url)
        assert "cdn.jsdelivr.net" not in policy, url
    _assert_secured(site.upload(b"{", site.alice), "a refused upload")
    # the leaderboard's figures: their one inline script runs under this response's nonce
    page = client.get(f"/use-cases/{slug}")
    nonce = re.search(r"'nonce-([^']+)'", page.headers["content-security-policy"]).group(1)
    inline = re.findall(r"<script(?![^>]*\bsrc=)([^>]*)>", page.text)
    assert inline and all(f'nonce="{nonce}"' in attributes for attributes in inline)
    again = client.get(f"/use-cases/{slug}").headers["content-security-policy"]
    assert f"'nonce-{nonce}'" not in again  # a fresh nonce for every response
    # the API docs load Swagger UI from its CDN: allowed there, their script under the nonce
    docs = client.get("/docs")
    policy = _assert_secured(docs, "/docs")
    assert docs.status_code == 200 and "https://cdn.jsdelivr.net" in policy
    nonce = re.search(r"'nonce-([^']+)'", policy).group(1)
    assert f'<script nonce="{nonce}">' in docs.text and "<script>" not in docs.text
    assert client.get("/redoc").status_code == 200
