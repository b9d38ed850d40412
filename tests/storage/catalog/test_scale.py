"""The scale benchmark's synthetic runs are real catalog runs, and the common queries walk
indexes instead of sorting the whole table."""

from __future__ import annotations

from sqlalchemy import text

from neuroptimus.flows.benchmarks import catalog_scale as scale
from neuroptimus.storage.catalog.db.listing import RunFilter


def test_filled_runs_are_listed_ranked_and_timed(catalog):
    assert scale.fill(catalog, 1500, seed=1) == 1500
    page = catalog.list_runs(sort="final_error", limit=20)
    assert page.total > 1200 and len(page.items) == 20
    finals = [item["final_error"] for item in page.items]
    assert finals == sorted(finals)
    record = catalog.run_record(page.items[0]["run_id"])
    assert record.final_error == finals[0] and len(record.parameters) == 3
    slug = max(catalog.use_cases(), key=lambda u: u["runs"])["slug"]
    board = catalog.leaderboard(slug)
    assert board["runs"] > 0 and board["groups"][0]["rank"] == 1
    times = scale.time_queries(catalog)
    assert set(times) >= {"list", "filter", "sort", "page_2", "leaderboard"}
    assert all(ms > 0 for ms in times.values())
    if catalog.dialect != "sqlite":
        return
    with catalog.engine.connect() as connection:
        for where, order in (("final_error IS NOT NULL", "final_error, id"),
                             ("1", "uploaded_at DESC, id DESC")):  # fmt: skip
            plan = connection.execute(text(
                "EXPLAIN QUERY PLAN SELECT id FROM runs WHERE visibility = 'public' AND "
                f"{where} ORDER BY {order} LIMIT 51"
            )).all()  # fmt: skip
            details = " ".join(row[-1] for row in plan)
            assert "INDEX ix_runs_visibility_" in details and "TEMP B-TREE" not in details, details
    assert catalog.list_runs(RunFilter(use_case=slug), sort="final_error").total > 0
