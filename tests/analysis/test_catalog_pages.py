"""The catalog's pages through FastAPI's TestClient, on a real SQLite catalog holding the
session's real ``hh`` run, runs derived from it and an original-format run: what a visitor
reads, what the filters do, and the sign-in and upload forms with their CSRF protection."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from fastapi.testclient import TestClient

from neuroptimus.storage.catalog.web.pages import _number as shown
from neuroptimus.storage.catalog.web.site import create_site
from tests.analysis.catalog_pages_data import derived, filled_site
from tests.storage.catalog.original_metadata import original_metadata


@pytest.fixture(scope="module")
def site(tmp_path_factory, hh_run_store):
    return filled_site(tmp_path_factory.mktemp("catalog-pages"), hh_run_store)


@pytest.fixture
def client(site):
    with TestClient(site[0]) as browser:
        yield browser


def _rows(page: str, table: str) -> list[str]:
    """The text of each body row of the table with this id (tags stripped)."""
    body = page.split(f'id="{table}"', 1)[1].split("</table>", 1)[0].split("<tbody>", 1)[1]
    rows = re.findall(r"<tr>(.*?)</tr>", body, flags=re.S)
    return [" ".join(re.sub(r"<[^>]+>", " ", r).split()) for r in rows]


def _signed_in(client: TestClient, token: str, next_page: str = "/upload"):
    form = client.get(f"/sign-in?next={next_page}").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
    return client.post("/sign-in", data={"token": token, "csrf": csrf, "next": next_page},
                       follow_redirects=False)  # fmt: skip


def _csrf(page: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def test_the_use_cases_show_their_best_public_result(client, site):
    _, _, data = site
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    rows = _rows(page.text, "use-cases")
    assert len(rows) == 2
    hh = next(r for r in rows if data.real.use_case.name in r)
    best = min(r.final_error for r in data.runs.values())
    assert shown(best) in hh and "PSO (pygmo) · seed 1" in hh
    # the private run of alice (a hundred times better) is not anyone's best result
    assert shown(data.real.final_error * 0.01) not in page.text
    original = next(r for r in rows if "names only" in r)
    assert "CMAES" in original and shown(0.0125) in original


def test_a_leaderboard_ranks_the_algorithms_with_the_papers_figures(client, site):
    _, _, data = site
    page = client.get(f"/use-cases/{data.slug}").text
    board = _rows(page, "leaderboard")
    assert [r.split()[1] for r in board] == ["PSO", "CMA-ES", "Random"]
    assert board[0].startswith("1 PSO (pygmo) 3 ")  # rank, label, runs
    final = data.real.final_error
    assert shown(0.6 * final) in board[0] and shown(4.5 * final) in board[2]
    # Fig 1 B–D: the convergence figure and the two box plots, drawn by BokehJS from this site
    assert page.count("data-root-id") == 2
    assert "Convergence: median cumulative minimum" in page and "Final score" in page
    assert '<script src="/assets/bokeh/js/bokeh.min.js">' in page
    assert 'id="summary"' not in page  # the leaderboard says it already
    script = client.get("/assets/bokeh/js/bokeh.min.js")
    assert script.status_code == 200 and len(script.content) > 100_000


def test_the_leaderboard_filters(client, site):
    _, _, data = site
    page = client.get(f"/use-cases/{data.slug}?uploader=bob&package=pygmo").text
    assert "3 of 3 complete run(s)" in page
    assert [r.split()[0] for r in _rows(page, "summary")] == ["PSO"]
    page = client.get(f"/use-cases/{data.slug}?verified=yes").text
    assert "No complete run of this use case matches" in page
    big = data.real.budget + 1
    page = client.get(f"/use-cases/{data.slug}?budget={big}").text
    assert "8 run(s) had a budget below" in page
    assert client.get(f"/use-cases/{data.slug}?budget=many").status_code == 400
    missing = client.get("/use-cases/no-such-problem")
    assert missing.status_code == 404 and "no use case" in missing.text


def test_the_run_table_filters_sorts_pages_and_exports(client, site):
    _, _, data = site
    assert len(_rows(client.get("/runs").text, "runs")) == 9  # and the original's
    page = client.get(f"/runs?use_case={data.slug}&sort=final_error").text
    rows = _rows(page, "runs")
    assert len(rows) == 8  # the public runs of hh; not the private one
    assert "PSO (pygmo)" in rows[0] and "Random search" in rows[-1]
    page = client.get("/runs?algorithm=random&sort=-final_error").text
    assert [r.split()[2] for r in _rows(page, "runs")] == ["Random", "Random"]
    first = client.get("/runs?sort=seed&limit=4").text
    assert len(_rows(first, "runs")) == 4
    after = re.search(r'href="/runs\?([^"]+)" id="next-page"', first).group(1)
    second = client.get(f"/runs?{after.replace('&amp;', '&')}").text
    assert set(_rows(first, "runs")).isdisjoint(_rows(second, "runs"))
    link = re.search(r'href="([^"]+)" id="csv"', client.get("/runs?package=pygmo").text).group(1)
    exported = client.get(link.replace("&amp;", "&"))
    assert exported.status_code == 200 and "text/csv" in exported.headers["content-type"]
    table = list(csv.DictReader(io.StringIO(exported.text)))
    assert len(table) == 3 and {r["package"] for r in table} == {"pygmo"}
    assert client.get("/runs?sort=password").status_code == 400


def test_a_run_reads_as_text_with_downloads_and_a_reproduce_command(client, site):
    _, catalog, data = site
    run = data.real
    page = client.get(f"/runs/{run.run_id}").text
    parameters = _rows(page, "parameters")
    assert [r.split()[0] for r in parameters] == [p.name for p in run.parameters]
    for row, p in zip(parameters, run.parameters, strict=True):
        assert shown(p.lower, 6) in row and shown(p.upper, 6) in row
        assert shown(p.optimum, 6) in row and shown(p.true_value, 6) in row
    components = _rows(page, "components")
    assert len(components) == len(run.components)
    for row, c in zip(components, run.components, strict=True):
        assert row.startswith(c.name) and shown(c.weighted_value, 6) in row
    assert len(_rows(page, "curve")) == len(run.curve) and "Generation plot" in page
    command = re.search(r'<pre class="command" id="reproduce">([^<]+)</pre>', page).group(1)
    assert command == f"neuroptimus catalog reproduce http://testserver/runs/{run.run_id}"
    for link in re.findall(r'href="(/api/v1/runs/[^"]+)"', page):
        assert client.get(link).status_code == 200, link
    assert "unchecked" in page and "git" in page.lower()


def test_a_run_shows_its_verification(client, site):
    _, catalog, data = site
    run_id = next(i for i, r in data.runs.items() if r.algorithm_key == "random")
    alice = catalog.authenticate(data.tokens["alice"])  # bob uploaded it: not his to check
    catalog.record_verification(run_id, alice, "resimulate-best", 1.0, 1.0, True, {})
    page = client.get(f"/runs/{run_id}").text
    assert 'class="badge ok"' in page and _rows(page, "verifications")[0].count("verified") == 1


def test_an_original_run_and_a_private_one(client, site):
    _, _, data = site
    page = " ".join(client.get(f"/runs/{data.original_id}").text.split())
    assert 'id="reproduce"' not in page and "cannot be rerun by command" in page
    assert "identified by names and bounds only" in page
    assert client.get(f"/runs/{data.private_id}").status_code == 404
    assert _signed_in(client, data.tokens["bob"], "/").status_code == 303
    assert client.get(f"/runs/{data.private_id}").status_code == 404  # not bob's
    client.cookies.clear()
    assert _signed_in(client, data.tokens["alice"], "/").status_code == 303
    assert client.get(f"/runs/{data.private_id}").status_code == 200  # alice's own


def test_comparing_chosen_runs(client, site):
    _, _, data = site
    ids = [i for i, r in data.runs.items() if r.algorithm_key in ("pso", "random")]
    page = client.get(f"/compare?runs={','.join(ids)},not-a-run").text
    assert len(_rows(page, "chosen")) == 5 and page.count("data-root-id") == 2
    assert "Not found (or not yours to see): not-a-run" in page
    page = client.get(f"/compare?runs={ids[0]}&runs={data.original_id}").text
    assert "different problems" in page
    page = client.get(f"/compare?use_case={data.slug}&algorithms=pso,cmaes").text
    assert len(_rows(page, "chosen")) == 6
    assert "Choose runs" in client.get("/compare").text


def test_signing_in_and_uploading_through_the_form(client, site, tmp_path):
    _, catalog, data = site
    assert client.get("/upload", follow_redirects=False).headers["location"].startswith("/sign-in")
    form = client.get("/sign-in").text
    stale = client.post("/sign-in", data={"token": data.tokens["bob"], "csrf": "forged"})
    assert stale.status_code == 403
    # another site that fetched a sign-in form of its own cannot sign this browser in with it
    with TestClient(client.app) as other_browser:
        foreign = _csrf(other_browser.get("/sign-in").text)
    assert foreign != _csrf(form)
    login_csrf = client.post("/sign-in", data={"token": data.tokens["bob"], "csrf": foreign})
    assert login_csrf.status_code == 403
    wrong = client.post("/sign-in", data={"token": "npt_wrong", "csrf": _csrf(form)})
    assert wrong.status_code == 401 and "unknown, revoked or expired" in wrong.text
    signed = _signed_in(client, data.tokens["bob"])
    assert signed.status_code == 303 and signed.headers["location"] == "/upload"
    form = client.get("/upload").text
    assert "signed in as <strong>bob</strong>" in form
    metadata = original_metadata()
    metadata["opt_name"] = "<script>alert(1)</script>"
    metadata["seed"] = 777
    body = json.dumps(metadata).encode()
    files = {"metadata": ("metadata.json", body, "application/json")}
    refused = client.post("/upload", files=files, data={"csrf": "forged"})
    assert refused.status_code == 403
    before = catalog.list_runs(_filter(), limit=1).total
    assert before == catalog.list_runs(_filter(), limit=1).total
    done = client.post("/upload", files=files, data={"csrf": _csrf(form), "visibility": "public"})
    assert done.status_code == 201 and "Uploaded." in done.text
    run_id = re.search(r'href="/runs/([0-9a-f-]{36})"', done.text).group(1)
    assert catalog.list_runs(_filter(), limit=1).total == before + 1
    page = client.get(f"/runs/{run_id}").text
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
    again = client.post("/upload", files=files, data={"csrf": _csrf(form)})
    assert again.status_code == 200 and "already in the catalog" in again.text
    broken = {"metadata": ("metadata.json", b"{not json", "application/json")}
    bad = client.post("/upload", files=broken, data={"csrf": _csrf(form)})
    assert bad.status_code in (400, 422) and "Not uploaded:" in bad.text
    assert catalog.list_runs(_filter(), limit=1).total == before + 1
    out = client.post("/sign-out", data={"csrf": _csrf(client.get("/").text)},
                      follow_redirects=False)  # fmt: skip
    assert out.status_code == 303
    assert "Sign in" in client.get("/").text


def test_the_site_serves_the_api_and_the_pages(tmp_path):
    with TestClient(create_site(f"sqlite:///{tmp_path / 'site.sqlite'}", tmp_path / "f")) as site:
        assert site.get("/health").json() == {"status": "ok", "database": "sqlite"}
        assert "The catalog is empty" in site.get("/").text
        assert site.get("/docs").status_code == 200
        assert site.get("/runs").status_code == 200


def _filter():
    from neuroptimus.storage.catalog.db.repository import RunFilter

    return RunFilter()


def test_derived_runs_keep_their_own_identity(site):
    _, _, data = site
    again = derived(data.real, "pso", "PSO (pygmo)", "pygmo", 1, 0.5)
    assert again.run_id in data.runs and again.use_case == data.real.use_case
