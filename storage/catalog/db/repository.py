"""The catalog: users and tokens, runs, use cases, leaderboards and verifications, on one
SQLAlchemy engine (SQLite or PostgreSQL; see database.open_catalog). Runs are written and read
here; accounts (accounts.py), use-case reading (use_case_queries.py) and verifications
(verifications.py) are the parts :class:`Catalog` inherits.

Every method opens its own short session, so one ``Catalog`` serves many threads (FastAPI's
thread pool). Runs are written once per upload and read often.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from neuroptimus.storage.catalog.db.accounts import CatalogAccounts, Principal
from neuroptimus.storage.catalog.db.listing import (
    MAX_LIMIT,
    RunFilter,
    conditions,
    encode_cursor,
    page,
    parse_sort,
    visible,
)
from neuroptimus.storage.catalog.db.models import (
    Run,
    RunComponent,
    RunGeneration,
    RunParameter,
    Setting,
    UseCase,
    User,
    Verification,
)
from neuroptimus.storage.catalog.db.records import (
    catalog_run,
    child_rows,
    content_sha256,
    iso,
    list_item,
    run_row,
    utcnow,
)
from neuroptimus.storage.catalog.db.use_case_queries import CatalogUseCases
from neuroptimus.storage.catalog.db.verifications import CatalogVerifications
from neuroptimus.storage.catalog.errors import (
    CatalogError,
    Forbidden,
    InvalidInput,
    NotFound,
    QuotaExceeded,
    RunConflict,
    size_text,
)
from neuroptimus.storage.catalog.schema import CatalogRun, UseCaseIdentity

VISIBILITIES = ("public", "unlisted", "private")
__all__ = [
    "Catalog", "CatalogError", "Forbidden", "InvalidInput", "NotFound", "Principal", "PutResult",
    "QuotaExceeded", "RunConflict", "RunFilter", "RunPage",
]  # fmt: skip


@dataclass(frozen=True)
class PutResult:
    run_id: str
    created: bool
    use_case_slug: str


@dataclass(frozen=True)
class RunPage:
    items: list[dict[str, Any]]
    next_cursor: str | None
    total: int


@dataclass(frozen=True)
class _Files:
    """The stored names of an upload's store and archive, what they unpack to, and the
    uploader's quota of such bytes (None: none)."""

    store: str | None
    archive: str | None
    unpacked: dict[str, int]
    quota: int | None

    def size(self, kind: str) -> int:
        return int(self.unpacked.get(kind, 0)) if getattr(self, kind) else 0


def slug_stem(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:200] or "use-case"


class Catalog(CatalogAccounts, CatalogUseCases, CatalogVerifications):
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session committed at the end of the block (rolled back on an error)."""
        with self._sessions() as session, session.begin():
            yield session

    def close(self) -> None:
        self.engine.dispose()

    def setting(self, key: str, make: Callable[[], str]) -> str:
        """A value the service keeps (e.g. its session-signing secret): the stored one, else
        ``make()`` stored now (the first of two racing writers wins)."""
        for _attempt in range(2):
            try:
                with self.session() as session:
                    found = session.get(Setting, key)
                    if found is not None:
                        return found.value
                    value = make()
                    session.add(Setting(key=key, value=value))
                    session.flush()
                    return value
            except IntegrityError:
                continue
        raise CatalogError(f"could not keep setting {key!r}")

    # -- runs -------------------------------------------------------------------------------
    def put_run(
        self,
        run: CatalogRun,
        uploader: Principal,
        visibility: str = "public",
        store_file: str | None = None,
        archive_file: str | None = None,
        unpacked: dict[str, int] | None = None,
        quota: int | None = None,
    ) -> PutResult:
        """Add a run; the same run again is no change (``created=False``) but for a store or
        archive file it brings where the run had none; the same run id with other content, or
        from another user, is a RunConflict. ``unpacked``: the bytes the store and the
        archive unpack to (``{"store": n, "archive": m}``), kept with the run; a run that would
        take its uploader's runs past ``quota`` such bytes is QuotaExceeded."""
        if visibility not in VISIBILITIES:
            raise InvalidInput(f"visibility {visibility!r}: choose {', '.join(VISIBILITIES)}")
        files = _Files(store_file, archive_file, dict(unpacked or {}), quota)
        for attempt in range(3):  # concurrent uploads may race for a new use case's slug
            try:
                return self._put(run, uploader, visibility, files)
            except IntegrityError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _put(
        self, run: CatalogRun, uploader: Principal, visibility: str, files: _Files
    ) -> PutResult:
        store_file, archive_file = files.store, files.archive
        with self.session() as session:
            existing = session.execute(
                select(Run.uploader_id, Run.content_sha256, Run.visibility, UseCase.slug)
                .join(UseCase)
                .where(Run.id == run.run_id)
            ).first()
            if existing is not None:
                if existing.visibility == "private" and not _may_see_private(
                    uploader, existing.uploader_id
                ):  # answered as a read of it is: the run's existence is not revealed
                    raise NotFound(f"no run {run.run_id}")
                if existing.uploader_id != uploader.user_id:
                    raise RunConflict(f"run {run.run_id} was uploaded by another user")
                if existing.content_sha256 != content_sha256(run):
                    raise RunConflict(
                        f"run {run.run_id} is in the catalog with other content; a run "
                        "cannot be changed by uploading it again (delete it first)"
                    )
                self._attach_files(session, run.run_id, files, uploader)
                return PutResult(run.run_id, False, existing.slug)
            added = files.size("store") + files.size("archive")
            self._within_quota(session, uploader, added, files.quota)
            use_case = self._use_case_for(session, run.use_case)
            session.add(run_row(run, use_case.id, uploader.user_id, visibility=visibility,
                                store_file=store_file, archive_file=archive_file,
                                unpacked_bytes=added))  # fmt: skip
            session.flush()
            session.add_all(child_rows(run))
            return PutResult(run.run_id, True, use_case.slug)

    def _attach_files(
        self, session: Session, run_id: str, files: _Files, uploader: Principal
    ) -> None:
        """A store or archive the run did not have yet (pushed later with ``--with-store``)."""
        row = session.get(Run, run_id)
        new = [kind for kind in ("store", "archive")
               if getattr(files, kind) and not getattr(row, f"{kind}_file")]  # fmt: skip
        added = sum(files.size(kind) for kind in new)
        self._within_quota(session, uploader, added, files.quota)
        for kind in new:
            setattr(row, f"{kind}_file", getattr(files, kind))
        row.unpacked_bytes = (row.unpacked_bytes or 0) + added

    def unpacked_bytes(self, user_id: int) -> int:
        """What the runs of ``user_id`` unpack to (their stores and archives)."""
        with self.session() as session:
            return self._unpacked(session, user_id)

    @staticmethod
    def _unpacked(session: Session, user_id: int) -> int:
        total = session.scalar(
            select(func.coalesce(func.sum(Run.unpacked_bytes), 0)).where(Run.uploader_id == user_id)
        )
        return int(total or 0)

    def _within_quota(
        self, session: Session, uploader: Principal, added: int, quota: int | None
    ) -> None:
        if quota is None or added == 0:
            return
        if self._unpacked(session, uploader.user_id) + added > quota:
            raise QuotaExceeded(
                f"the upload would take your runs past {size_text(quota)} unpacked, your "
                "quota on this catalog: delete runs you no longer need"
            )

    def _use_case_for(self, session: Session, identity: UseCaseIdentity) -> UseCase:
        found = session.scalar(select(UseCase).where(UseCase.fingerprint == identity.fingerprint))
        if found is not None:
            return found
        stem = slug_stem(identity.name)
        taken = set(
            session.scalars(
                select(UseCase.slug).where((UseCase.slug == stem) | UseCase.slug.like(f"{stem}-%"))
            )
        )
        slug, number = stem, 1
        while slug in taken:
            number += 1
            slug = f"{stem}-{number}"
        use_case = UseCase(
            slug=slug, fingerprint=identity.fingerprint, kind=identity.kind,
            name=identity.name, description=identity.description, simulator=identity.simulator,
            identity=identity.model_dump(mode="json"), created_at=utcnow(),
        )  # fmt: skip
        session.add(use_case)
        session.flush()
        return use_case

    def _visible_run(self, session: Session, run_id: str, viewer: Principal | None) -> Run:
        """The run, if ``viewer`` may read it (private: owner and admins; unlisted: anyone
        with its id)."""
        row = session.get(Run, run_id)
        if row is None:
            raise NotFound(f"no run {run_id}")
        if row.visibility == "private" and not _may_see_private(viewer, row.uploader_id):
            raise NotFound(f"no run {run_id}")
        return row

    def _children(self, session: Session, run_id: str) -> tuple[list, list, list]:
        def rows(model: Any, order: Any) -> list:
            return list(
                session.scalars(select(model).where(model.run_id == run_id).order_by(order))
            )

        return (
            rows(RunParameter, RunParameter.position),
            rows(RunComponent, RunComponent.position),
            rows(RunGeneration, RunGeneration.generation),
        )

    def run_record(self, run_id: str) -> CatalogRun:
        """The record as uploaded (no visibility check: for the service itself)."""
        with self.session() as session:
            row = session.get(Run, run_id)
            if row is None:
                raise NotFound(f"no run {run_id}")
            return catalog_run(row, *self._children(session, run_id))

    def get_run(self, run_id: str, viewer: Principal | None = None) -> dict[str, Any]:
        with self.session() as session:
            row = self._visible_run(session, run_id, viewer)
            record = catalog_run(row, *self._children(session, run_id))
            uploader = session.get(User, row.uploader_id)
            use_case = session.get(UseCase, row.use_case_id)
            return {
                **record.model_dump(mode="json"),
                "uploader": uploader.handle,
                "uploaded_at": iso(row.uploaded_at),
                "visibility": row.visibility,
                "use_case_slug": use_case.slug,
                "verified": row.verified,
                "verifications": self._verifications(session, run_id),
                "store_file": row.store_file,
                "archive_file": row.archive_file,
                "tags": row.tags,
                "notes": row.notes,
            }

    def list_runs(
        self,
        filters: RunFilter | None = None,
        sort: str = "-uploaded_at",
        limit: int = 50,
        cursor: str | None = None,
        viewer: Principal | None = None,
    ) -> RunPage:
        filters = filters or RunFilter()
        key, descending = parse_sort(sort)
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidInput(f"limit {limit}: give 1 to {MAX_LIMIT}")
        with self.session() as session:
            where = [
                *conditions(filters, self._filter_ids(session, filters)),
                visible(viewer.user_id if viewer else None),
            ]
            total = session.scalar(select(func.count(Run.id)).where(*where))
            rows = page(session, where, key, descending, cursor, limit + 1)
        items = [list_item(row) for row in rows[:limit]]
        more = len(rows) > limit
        return RunPage(items, encode_cursor(items[-1], key) if more else None, int(total or 0))

    def _filter_ids(self, session: Session, filters: RunFilter) -> dict[str, int | None]:
        ids: dict[str, int | None] = {}
        if filters.use_case is not None:
            ids["use_case"] = session.scalar(
                select(UseCase.id).where(UseCase.slug == filters.use_case)
            )
        if filters.uploader is not None:
            ids["uploader"] = session.scalar(select(User.id).where(User.handle == filters.uploader))
        return ids

    def _owned(self, session: Session, run_id: str, user: Principal) -> Run:
        row = self._visible_run(session, run_id, user)
        if not (user.is_admin or row.uploader_id == user.user_id):
            raise Forbidden(f"run {run_id} belongs to another user")
        return row

    def update_run(
        self,
        run_id: str,
        user: Principal,
        *,
        visibility: str | None = None,
        tags: list[str] | None = None,
        notes: str | None = None,
    ) -> None:
        if visibility is not None and visibility not in VISIBILITIES:
            raise InvalidInput(f"visibility {visibility!r}: choose {', '.join(VISIBILITIES)}")
        with self.session() as session:
            row = self._owned(session, run_id, user)
            if visibility is not None:
                row.visibility = visibility
            if tags is not None:
                row.tags = [str(tag)[:100] for tag in tags]
            if notes is not None:
                row.notes = notes

    def delete_run(self, run_id: str, user: Principal) -> list[str]:
        """Remove the run's rows; the files it had (store, archive) for the caller to delete."""
        with self.session() as session:
            row = self._owned(session, run_id, user)
            files = [f for f in (row.store_file, row.archive_file) if f]
            for model in (RunParameter, RunComponent, RunGeneration, Verification):
                session.execute(delete(model).where(model.run_id == run_id))
            use_case_id = row.use_case_id
            session.delete(row)
            session.flush()
            self._drop_if_orphan(session, use_case_id)
            return files

    @staticmethod
    def _drop_if_orphan(session: Session, use_case_id: int) -> None:
        """A use case whose last run went, unless an admin registered it: what its runs told
        about their problem (names, bounds, file hashes) goes with them. An upload racing to
        add a run to it fails on the missing row and is retried with a new use case."""
        use_case = session.get(UseCase, use_case_id)
        left = session.scalar(select(Run.id).where(Run.use_case_id == use_case_id).limit(1))
        if use_case is not None and use_case.registered_by is None and left is None:
            session.delete(use_case)

    def register_use_case(self, identity: UseCaseIdentity, admin_id: int, files: str) -> str:
        """Mark ``identity``'s use case registered by an admin, its files kept in ``files``
        (a folder inside the catalog's files): its runs are then verified by the server.
        Made if no run has it yet; returns its slug."""
        with self.session() as session:
            use_case = self._use_case_for(session, identity)
            use_case.identity = identity.model_dump(mode="json")
            use_case.description = identity.description
            use_case.registered_by, use_case.registered_at = admin_id, utcnow()
            use_case.files = files
            return use_case.slug


def _may_see_private(viewer: Principal | None, uploader_id: int) -> bool:
    return viewer is not None and (viewer.is_admin or viewer.user_id == uploader_id)
