"""The catalog's database on SQLite and on a real PostgreSQL server: schema, tokens, runs,
visibility and pages."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from variants import variant

from neuroptimus.storage.catalog.db.database import open_catalog
from neuroptimus.storage.catalog.db.models import Base
from neuroptimus.storage.catalog.db.repository import (
    Forbidden,
    InvalidInput,
    NotFound,
    RunConflict,
    RunFilter,
)


def test_the_migrations_make_exactly_the_models_tables_and_run_once(catalog, catalog_url):
    with catalog.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    again = open_catalog(catalog_url)  # again: already at the newest revision
    assert again.setting("secret", lambda: "first") == "first"
    assert catalog.setting("secret", lambda: "second") == "first"
    again.close()


def test_tokens_are_stored_hashed_scoped_and_revocable(catalog):
    assert catalog.create_user("ada", "Ada L.") == catalog.create_user("ada")
    token = catalog.issue_token("ada", {"read", "upload"}, name="laptop")
    assert token.startswith("npt_") and len(token) > 50
    with catalog.engine.connect() as connection:
        stored = connection.execute(text("SELECT prefix, sha256, scopes FROM api_tokens")).one()
    assert token not in stored and stored.scopes == "read upload"
    who = catalog.authenticate(token)
    assert (who.handle, who.scopes, who.is_admin) == ("ada", {"read", "upload"}, False)
    assert catalog.authenticate(token + "x") is None and catalog.authenticate("") is None
    (listed,) = catalog.list_tokens("ada")
    assert listed["prefix"] == token[:12] and listed["last_used_at"] is not None
    other = catalog.issue_token("bob")
    with pytest.raises(NotFound):
        catalog.revoke_token("bob", listed["id"])  # not bob's token
    catalog.revoke_token("ada", listed["id"])
    assert catalog.authenticate(token) is None and catalog.authenticate(other).handle == "bob"
    expired = catalog.issue_token("ada", expires_days=-1)
    assert catalog.authenticate(expired) is None
    assert catalog.authenticate(catalog.issue_token("root", {"admin"})).is_admin
    with pytest.raises(InvalidInput, match="scopes"):
        catalog.issue_token("ada", {"write"})
    with pytest.raises(InvalidInput, match="user name"):
        catalog.create_user("no spaces please")


def test_put_is_idempotent_and_a_changed_or_foreign_reupload_conflicts(catalog, hh_run):
    ada = catalog.authenticate(catalog.issue_token("ada"))
    bob = catalog.authenticate(catalog.issue_token("bob"))
    first = catalog.put_run(hh_run, ada, store_file="a.zip")
    assert (first.created, first.use_case_slug) == (True, "hh")
    assert catalog.put_run(hh_run, ada).created is False
    with pytest.raises(RunConflict, match="other content"):
        catalog.put_run(hh_run.model_copy(update={"final_error": 0.5}), ada)
    with pytest.raises(RunConflict, match="another user"):
        catalog.put_run(hh_run, bob)
    assert catalog.run_record(hh_run.run_id) == hh_run
    shown = catalog.get_run(hh_run.run_id)
    assert shown["uploader"] == "ada" and shown["use_case_slug"] == "hh"
    assert shown["store_file"] == "a.zip" and shown["verified"] is None
    assert shown["curve"] == [g.model_dump() for g in hh_run.curve]
    # same name, another problem: another use case with its own slug
    identity = hh_run.use_case.model_copy(update={"fingerprint": "0" * 64})
    other = catalog.put_run(variant(hh_run, use_case=identity), ada)
    assert other.use_case_slug == "hh-2"
    listed = {u["slug"]: u for u in catalog.use_cases()}
    assert listed["hh"]["runs"] == 1 and listed["hh"]["best_final_error"] == hh_run.final_error
    detail = catalog.use_case("hh")
    assert [p["name"] for p in detail["parameters"]] == ["gnabar_hh", "gkbar_hh", "gl_hh"]
    assert detail["example_run_id"] == hh_run.run_id


def test_private_runs_are_the_owners_and_unlisted_ones_need_their_id(catalog, hh_run):
    ada = catalog.authenticate(catalog.issue_token("ada"))
    bob = catalog.authenticate(catalog.issue_token("bob"))
    admin = catalog.authenticate(catalog.issue_token("root", {"admin"}))
    private = variant(hh_run)
    unlisted = variant(hh_run)
    catalog.put_run(private, ada, visibility="private", store_file="p.zip", archive_file="p.tgz")
    catalog.put_run(unlisted, ada, visibility="unlisted")
    for viewer in (None, bob):
        with pytest.raises(NotFound):
            catalog.get_run(private.run_id, viewer)
        assert catalog.get_run(unlisted.run_id, viewer)["visibility"] == "unlisted"
        assert catalog.list_runs(viewer=viewer).total == 0
    assert catalog.get_run(private.run_id, admin)["uploader"] == "ada"
    assert {i["run_id"] for i in catalog.list_runs(viewer=ada).items} == {
        private.run_id, unlisted.run_id
    }  # fmt: skip
    with pytest.raises(Forbidden):
        catalog.update_run(unlisted.run_id, bob, visibility="public")
    catalog.update_run(unlisted.run_id, ada, visibility="public", tags=["uc1"], notes="n")
    assert catalog.list_runs().total == 1
    with pytest.raises(Forbidden):
        catalog.delete_run(unlisted.run_id, bob)
    assert catalog.delete_run(private.run_id, ada) == ["p.zip", "p.tgz"]
    with pytest.raises(NotFound):
        catalog.get_run(private.run_id, ada)


def _expected(items, key, descending):
    present = sorted((i for i in items if i[key] is not None),
                     key=lambda i: (i[key], i["run_id"]), reverse=descending)  # fmt: skip
    missing = sorted((i for i in items if i[key] is None), key=lambda i: i["run_id"],
                     reverse=descending)  # fmt: skip
    return [i["run_id"] for i in present + missing]


def test_pages_follow_each_other_in_every_sort_order(catalog, hh_run):
    ada = catalog.authenticate(catalog.issue_token("ada"))
    errors = [0.3, None, 0.1, 0.3, 0.2, None, 0.3, 0.05, 0.2, 0.4, 0.1, 0.3, 0.15]
    for k, error in enumerate(errors):
        catalog.put_run(variant(hh_run, final_error=error, seed=k % 4,
                                algorithm_key="cmaes" if k % 3 else "pygmo-de"), ada)  # fmt: skip
    everything = catalog.list_runs(limit=100).items
    assert len(everything) == len(errors)
    for sort in ("final_error", "-final_error", "seed", "-seed", "uploaded_at", "-budget"):
        key = sort.removeprefix("-")
        seen, cursor = [], None
        for _page in range(len(errors)):
            page = catalog.list_runs(sort=sort, limit=4, cursor=cursor)
            assert page.total == len(errors) and len(page.items) <= 4
            seen += [i["run_id"] for i in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
        assert seen == _expected(everything, key, sort.startswith("-")), sort
    chosen = catalog.list_runs(RunFilter(algorithm="pygmo-de", seed=0), sort="final_error")
    assert {(i["algorithm_key"], i["seed"]) for i in chosen.items} == {("pygmo-de", 0)}
    assert chosen.total == sum(1 for k in range(len(errors)) if k % 3 == 0 and k % 4 == 0)
    assert catalog.list_runs(RunFilter(use_case="nope")).total == 0
    assert catalog.list_runs(RunFilter(uploader="ada", use_case="hh")).total == len(errors)
    assert catalog.list_runs(RunFilter(q="CMA-ES hh")).total == len(errors)
    with pytest.raises(InvalidInput, match="sort by one of"):
        catalog.list_runs(sort="name")
    with pytest.raises(InvalidInput, match="cursor"):
        catalog.list_runs(cursor="garbage!")
