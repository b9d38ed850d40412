"""Run lists: filters, sorting and keyset pagination (a page continues after the last row of
the previous one, so page 1000 costs what page 2 does and rows added meanwhile do not shift
pages)."""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import BigInteger, Integer, Select, exists, false, func, or_, select, true, tuple_
from sqlalchemy.orm import Session, aliased

from neuroptimus.storage.catalog.db.models import Run, UseCase, User
from neuroptimus.storage.catalog.db.records import parse_time
from neuroptimus.storage.catalog.errors import InvalidInput

SORT_KEYS = ("final_error", "evaluations", "budget", "seed", "uploaded_at", "created_at",
             "wall_seconds")  # fmt: skip
_TIMES = ("uploaded_at", "created_at")
MAX_LIMIT = 1000


BadQuery = InvalidInput  # an unknown sort key, a malformed cursor or filter


@dataclass(frozen=True)
class RunFilter:
    use_case: str | None = None  # slug
    algorithm: str | None = None  # registry key
    package: str | None = None
    uploader: str | None = None  # handle
    seed: int | None = None
    min_budget: int | None = None
    max_budget: int | None = None
    verified: bool | None = None
    state: str | None = None
    q: str | None = None  # words in the optimization name, algorithm label or use case name

    def is_empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in fields(self))


def list_query() -> Select:
    return (
        select(
            Run.id.label("run_id"),
            UseCase.slug.label("use_case_slug"),
            Run.algorithm_key,
            Run.algorithm_label,
            Run.package,
            Run.seed,
            Run.budget,
            Run.population,
            Run.evaluations,
            Run.final_error,
            Run.evaluations_to_best,
            Run.wall_seconds,
            Run.stop_reason,
            Run.state,
            Run.verified,
            User.handle.label("uploader"),
            Run.created_at,
            Run.uploaded_at,
        )  # fmt: skip
        .join(UseCase, UseCase.id == Run.use_case_id)
        .join(User, User.id == Run.uploader_id)
    )


def visible(viewer_id: int | None) -> Any:
    """Public runs, and a viewer's own runs of any visibility."""
    public = Run.visibility == "public"
    return public if viewer_id is None else or_(public, Run.uploader_id == viewer_id)


def use_case_seen(viewer_id: int | None, is_admin: bool = False) -> Any:
    """The use cases a viewer may see: those an admin registered, and those of a run the
    viewer may list (public, the viewer's own; every run for an admin). A use case known only
    from private runs of others, or from unlisted runs, is not shown: its name, bounds and file
    hashes would tell what those runs were about."""
    run = aliased(Run)  # its own, apart from a query's join of runs
    if is_admin:
        runs = true()
    else:
        runs = run.visibility == "public"
        if viewer_id is not None:
            runs = or_(runs, run.uploader_id == viewer_id)
    has_run = exists(select(run.id).where(run.use_case_id == UseCase.id, runs))
    return or_(UseCase.registered_by.is_not(None), has_run.correlate(UseCase))


def conditions(where: RunFilter, ids: dict[str, int | None]) -> list[Any]:
    """The filter on ``runs`` alone (no joins, so counting is cheap); ``ids``: the use case's
    and uploader's ids (None: no such one, so no rows)."""
    found = []
    for name, column in (("use_case", Run.use_case_id), ("uploader", Run.uploader_id)):
        if getattr(where, name) is not None:
            known = ids.get(name)
            found.append(column == known if known is not None else false())
    for name, column in (("algorithm", Run.algorithm_key), ("package", Run.package),
                         ("seed", Run.seed), ("state", Run.state)):  # fmt: skip
        if getattr(where, name) is not None:
            found.append(column == getattr(where, name))
    if where.min_budget is not None:
        found.append(Run.budget >= where.min_budget)
    if where.max_budget is not None:
        found.append(Run.budget <= where.max_budget)
    if where.verified is not None:
        found.append(Run.verified.is_(True) if where.verified else Run.verified.is_not(True))
    for word in (where.q or "").split():
        pattern = f"%{word.lower()}%"
        named = select(UseCase.id).where(func.lower(UseCase.name).like(pattern))
        found.append(
            or_(func.lower(Run.optimization_name).like(pattern),
                func.lower(Run.algorithm_label).like(pattern),
                Run.use_case_id.in_(named))
        )  # fmt: skip
    return found


def parse_sort(sort: str) -> tuple[str, bool]:
    key = sort.removeprefix("-")
    if key not in SORT_KEYS:
        raise BadQuery(f"cannot sort by {sort!r}; sort by one of {', '.join(SORT_KEYS)} "
                       "(with - for descending)")  # fmt: skip
    return key, sort.startswith("-")


def page(
    session: Session, where: list[Any], key: str, descending: bool, cursor: str | None, rows: int
) -> list[Any]:
    """Up to ``rows`` rows after the cursor, sorted by ``key`` then run id; missing values come
    last in both directions. Two plain queries (the runs with a value, then those without)
    let both databases walk an index in order whatever their rule for where NULLs sort."""
    column = getattr(Run, key)
    by_id = Run.id.desc() if descending else Run.id.asc()
    value, run_id = decode_cursor(cursor, key) if cursor else (None, None)
    found: list[Any] = []
    if cursor is None or value is not None:
        extra = [column.is_not(None)] if column.nullable else []
        if cursor is not None:
            mark = tuple_(column, Run.id)
            extra.append(mark < (value, run_id) if descending else mark > (value, run_id))
        order = [column.desc() if descending else column.asc(), by_id]
        found = session.execute(list_query().where(*where, *extra).order_by(*order).limit(rows))
        found = found.all()
    if column.nullable and len(found) < rows:
        extra = [column.is_(None)]
        if cursor is not None and value is None:
            extra.append(Run.id < run_id if descending else Run.id > run_id)
        query = list_query().where(*where, *extra).order_by(by_id).limit(rows - len(found))
        found += session.execute(query).all()
    return found


def encode_cursor(item: dict[str, Any], key: str) -> str:
    text = json.dumps([item[key], item["run_id"]])  # times: as listed (ISO 8601)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


MAX_CURSOR = 1000  # characters; ours are under 100
_MALFORMED = "the cursor is malformed: use next_cursor of the previous page"
_RUN_ID = re.compile(r"^[0-9A-Za-z-]{1,36}$")


def decode_cursor(cursor: str, key: str = "uploaded_at") -> tuple[Any, str]:
    """The (sort value, run id) a cursor continues after, checked against the column it
    sorts by: a forged cursor is refused here, not by the database."""
    try:
        if len(cursor) > MAX_CURSOR:
            raise ValueError(cursor)
        padded = cursor + "=" * (-len(cursor) % 4)
        value, run_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError, binascii.Error, RecursionError):
        raise BadQuery(_MALFORMED) from None
    if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
        raise BadQuery(_MALFORMED)
    return _cursor_value(value, key), run_id


def _cursor_value(value: Any, key: str) -> Any:
    """``value`` as the column ``key`` holds it (None: a run without one)."""
    if value is None:
        return None
    column = getattr(Run, key).type
    if key in _TIMES:
        moment = parse_time(value) if isinstance(value, str) and len(value) <= 40 else None
        if moment is None:
            raise BadQuery(_MALFORMED)
        return moment
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadQuery(_MALFORMED)
    if isinstance(column, Integer):  # BigInteger too
        bits = 63 if isinstance(column, BigInteger) else 31
        if not isinstance(value, int) or not -(2**bits) <= value < 2**bits:
            raise BadQuery(_MALFORMED)
        return value
    number = float(value) if abs(value) < 1e308 else math.inf
    if not math.isfinite(number):
        raise BadQuery(_MALFORMED)
    return number
