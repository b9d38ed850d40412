"""Run lists: filters, sorting and keyset pagination (a page continues after the last row of
the previous one, so page 1000 costs what page 2 does and rows added meanwhile do not shift
pages)."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import Select, and_, false, func, or_, select

from storage.catalog.errors import InvalidInput
from storage.catalog.models import Run, UseCase, User
from storage.catalog.records import parse_time

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


def filtered(query: Select, where: RunFilter, ids: dict[str, int | None]) -> Select:
    """``ids``: the use case's and uploader's ids (None: no such one, so no rows)."""
    conditions = []
    for name, column in (("use_case", Run.use_case_id), ("uploader", Run.uploader_id)):
        if getattr(where, name) is not None:
            found = ids.get(name)
            conditions.append(column == found if found is not None else false())
    for name, column in (("algorithm", Run.algorithm_key), ("package", Run.package),
                         ("seed", Run.seed), ("state", Run.state)):  # fmt: skip
        if getattr(where, name) is not None:
            conditions.append(column == getattr(where, name))
    if where.min_budget is not None:
        conditions.append(Run.budget >= where.min_budget)
    if where.max_budget is not None:
        conditions.append(Run.budget <= where.max_budget)
    if where.verified is not None:
        conditions.append(Run.verified.is_(True) if where.verified else Run.verified.is_not(True))
    for word in (where.q or "").split():
        pattern = f"%{word.lower()}%"
        conditions.append(
            or_(func.lower(Run.optimization_name).like(pattern),
                func.lower(Run.algorithm_label).like(pattern),
                func.lower(UseCase.name).like(pattern))
        )  # fmt: skip
    return query.where(*conditions) if conditions else query


def parse_sort(sort: str) -> tuple[str, bool]:
    key = sort.removeprefix("-")
    if key not in SORT_KEYS:
        raise BadQuery(f"cannot sort by {sort!r}; sort by one of {', '.join(SORT_KEYS)} "
                       "(with - for descending)")  # fmt: skip
    return key, sort.startswith("-")


def ordered(query: Select, key: str, descending: bool) -> Select:
    """Sorted by ``key`` (missing values last in both directions), then by run id."""
    column = getattr(Run, key)
    if descending:
        return query.order_by(column.desc().nulls_last(), Run.id.desc())
    return query.order_by(column.asc().nulls_last(), Run.id.asc())


def after(query: Select, key: str, descending: bool, cursor: str) -> Select:
    """The rows after the cursor's row in this order."""
    value, run_id = decode_cursor(cursor)
    if key in _TIMES and value is not None:
        value = parse_time(value)
    column = getattr(Run, key)
    beyond = Run.id < run_id if descending else Run.id > run_id
    if value is None:  # among the missing values, which come last
        return query.where(and_(column.is_(None), beyond))
    further = column < value if descending else column > value
    return query.where(or_(further, and_(column == value, beyond), column.is_(None)))


def encode_cursor(item: dict[str, Any], key: str) -> str:
    text = json.dumps([item[key], item["run_id"]])  # times: as listed (ISO 8601)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[Any, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value, run_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError, binascii.Error):
        raise BadQuery("the cursor is malformed: use next_cursor of the previous page") from None
    if not isinstance(run_id, str) or isinstance(value, (list, dict)):
        raise BadQuery("the cursor is malformed: use next_cursor of the previous page")
    return value, run_id
