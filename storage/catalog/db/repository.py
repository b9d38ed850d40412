"""The catalog: users and tokens, runs, use cases, leaderboards and verifications, on one
SQLAlchemy engine (SQLite or PostgreSQL; see database.open_catalog).

Every method opens its own short session, so one ``Catalog`` serves many threads (FastAPI's
thread pool). Runs are written once per upload and read often.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from base64 import b32encode
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from neuroptimus.storage.catalog.db import leaderboard as boards
from neuroptimus.storage.catalog.db.listing import (
    MAX_LIMIT,
    RunFilter,
    conditions,
    encode_cursor,
    page,
    parse_sort,
    use_case_seen,
    visible,
)
from neuroptimus.storage.catalog.db.models import (
    ApiToken,
    Run,
    RunComponent,
    RunGeneration,
    RunParameter,
    Setting,
    UseCase,
    User,
    Verification,
)
from neuroptimus.storage.catalog.db.models import Session as SignIn
from neuroptimus.storage.catalog.db.records import (
    catalog_run,
    child_rows,
    content_sha256,
    iso,
    list_item,
    run_row,
    utcnow,
)
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

SCOPES = frozenset({"read", "upload", "verify", "admin"})
VISIBILITIES = ("public", "unlisted", "private")
__all__ = [
    "Catalog", "CatalogError", "Forbidden", "InvalidInput", "NotFound", "Principal", "PutResult",
    "QuotaExceeded", "RunConflict", "RunFilter", "RunPage",
]  # fmt: skip
_HANDLE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


@dataclass(frozen=True)
class Principal:
    """Who is asking: a user authenticated by a token with these scopes."""

    user_id: int
    handle: str
    scopes: frozenset[str] = field(default_factory=frozenset)
    is_admin: bool = False


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


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def slug_stem(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:200] or "use-case"


class Catalog:
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

    # -- users and tokens -------------------------------------------------------------------
    def create_user(self, handle: str, display_name: str = "", is_admin: bool = False) -> int:
        """The user's id; made if the handle is new (an existing user is left as it is)."""
        if not _HANDLE.match(handle or ""):
            raise InvalidInput(
                f"user name {handle!r}: use 1-100 letters, digits, '.', '_' or '-' "
                "(starting with a letter or digit)"
            )
        for _attempt in range(2):  # two first uploads of one new user may race
            try:
                with self.session() as session:
                    found = session.scalar(select(User.id).where(User.handle == handle))
                    if found is not None:
                        return found
                    user = User(handle=handle, display_name=display_name, is_admin=is_admin,
                                created_at=utcnow())  # fmt: skip
                    session.add(user)
                    session.flush()
                    return user.id
            except IntegrityError:
                continue
        raise CatalogError(f"could not create user {handle!r}")

    def issue_token(
        self,
        handle: str,
        scopes: set[str] | frozenset[str] = frozenset({"read", "upload"}),
        name: str = "",
        expires_days: float | None = None,
    ) -> str:
        """A new token for ``handle`` (made if needed); shown once, only its hash is kept."""
        unknown = set(scopes) - SCOPES
        if unknown or not scopes:
            raise InvalidInput(
                f"token scopes {', '.join(sorted(unknown)) or '(none)'}: choose among "
                f"{', '.join(sorted(SCOPES))}"
            )
        user_id = self.create_user(handle)
        secret = b32encode(secrets.token_bytes(32)).decode().rstrip("=").lower()
        token = f"npt_{secret}"
        now = utcnow()
        with self.session() as session:
            session.add(
                ApiToken(
                    user_id=user_id, name=name[:200], prefix=token[:12],
                    sha256=token_sha256(token), scopes=" ".join(sorted(scopes)), created_at=now,
                    expires_at=now + timedelta(days=expires_days) if expires_days else None,
                )
            )  # fmt: skip
        return token

    def authenticate(self, token: str) -> Principal | None:
        """Who holds ``token``; None for an unknown, revoked or expired one."""
        if not token or not token.startswith("npt_"):
            return None
        now = utcnow()
        with self.session() as session:
            found = session.execute(
                select(ApiToken, User)
                .join(User, User.id == ApiToken.user_id)
                .where(ApiToken.sha256 == token_sha256(token))
            ).first()
            if found is None:
                return None
            stored, user = found
            if not _token_live(stored, now):
                return None
            stored.last_used_at = now
            scopes = frozenset(stored.scopes.split())
            return Principal(user.id, user.handle, scopes, user.is_admin or "admin" in scopes)

    def list_tokens(self, handle: str) -> list[dict[str, Any]]:
        with self.session() as session:
            rows = session.scalars(
                select(ApiToken).join(User).where(User.handle == handle).order_by(ApiToken.id)
            ).all()
            return [
                {"id": t.id, "name": t.name, "prefix": t.prefix, "scopes": t.scopes.split(),
                 "created_at": iso(t.created_at), "last_used_at": iso(t.last_used_at),
                 "expires_at": iso(t.expires_at), "revoked_at": iso(t.revoked_at)}
                for t in rows
            ]  # fmt: skip

    def revoke_token(self, handle: str, token_id: int) -> None:
        with self.session() as session:
            token = session.scalar(
                select(ApiToken).join(User).where(User.handle == handle, ApiToken.id == token_id)
            )
            if token is None:
                raise NotFound(f"user {handle!r} has no token {token_id}")
            token.revoked_at = token.revoked_at or utcnow()
            self._end_sessions(session, SignIn.token_id == token.id)

    # -- browser sessions ---------------------------------------------------------------------
    def start_session(self, token: str, seconds: float) -> tuple[str, datetime] | None:
        """A new sign-in with ``token``: its random id (for the cookie; only its SHA-256 is
        kept) and when it expires (after ``seconds``, or with the token if that is sooner);
        None when the token does not authenticate."""
        now = utcnow()
        with self.session() as session:
            stored = session.scalar(select(ApiToken).where(ApiToken.sha256 == token_sha256(token)))
            if stored is None or not _token_live(stored, now):
                return None
            expires = now + timedelta(seconds=seconds)
            if stored.expires_at is not None:
                expires = min(expires, stored.expires_at)
            session_id = secrets.token_urlsafe(32)
            session.add(SignIn(sha256=token_sha256(session_id), user_id=stored.user_id,
                               token_id=stored.id, created_at=now, expires_at=expires))  # fmt: skip
            # sessions over for a day are forgotten (the table stays small)
            session.execute(delete(SignIn).where(
                (SignIn.expires_at < now - timedelta(days=1))
                | (SignIn.ended_at < now - timedelta(days=1))
            ))  # fmt: skip
            return session_id, expires

    def session_principal(self, session_id: str) -> Principal | None:
        """Who a browser session is: the user, with the scopes of the token signed in with;
        None once it was ended (sign-out, the token revoked), expired, or is unknown."""
        now = utcnow()
        with self.session() as session:
            found = session.execute(
                select(SignIn, ApiToken, User)
                .join(ApiToken, ApiToken.id == SignIn.token_id)
                .join(User, User.id == SignIn.user_id)
                .where(SignIn.sha256 == token_sha256(session_id))
            ).first()
            if found is None:
                return None
            signed_in, stored, user = found
            if signed_in.ended_at is not None or signed_in.expires_at <= now:
                return None
            if not _token_live(stored, now):
                return None
            scopes = frozenset(stored.scopes.split())
            return Principal(user.id, user.handle, scopes, user.is_admin or "admin" in scopes)

    def end_session(self, session_id: str) -> None:
        """Sign-out: the session's cookie is worth nothing from now on, wherever it was copied."""
        with self.session() as session:
            self._end_sessions(session, SignIn.sha256 == token_sha256(session_id))

    @staticmethod
    def _end_sessions(session: Session, which: Any) -> None:
        session.execute(
            update(SignIn).where(which, SignIn.ended_at.is_(None)).values(ended_at=utcnow())
        )

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

    # -- use cases, leaderboards, comparisons ----------------------------------------------
    def use_cases(self, viewer: Principal | None = None) -> list[dict[str, Any]]:
        """The use cases ``viewer`` may see (see ``listing.use_case_seen``)."""
        with self.session() as session:
            return boards.use_case_list(session, _use_cases_seen(viewer))

    def use_case(self, slug: str, viewer: Principal | None = None) -> dict[str, Any]:
        """One use case; NotFound, as for an unknown slug, when ``viewer`` may not see it."""
        with self.session() as session:
            found = boards.use_case_detail(session, slug, _use_cases_seen(viewer))
        if found is None:
            raise NotFound(f"no use case {slug!r}")
        return found

    def _seen_use_case(self, session: Session, slug: str, viewer: Principal | None) -> UseCase:
        use_case = session.scalar(
            select(UseCase).where(UseCase.slug == slug, _use_cases_seen(viewer))
        )
        if use_case is None:
            raise NotFound(f"no use case {slug!r}")
        return use_case

    def leaderboard(
        self,
        slug: str,
        budget: int | None = None,
        target: float | None = None,
        grid: int = 100,
        group_by: str = "algorithm",
        verified_only: bool = False,
        package: str | None = None,
        uploader: str | None = None,
        viewer: Principal | None = None,
    ) -> dict[str, Any]:
        """The leaderboard of the public runs of a use case ``viewer`` may see."""
        with self.session() as session:
            use_case = self._seen_use_case(session, slug, viewer)
            return boards.leaderboard(
                session, use_case, budget=budget, target=target, grid=grid,
                group_by=group_by, verified_only=verified_only, package=package,
                uploader=uploader,
            )  # fmt: skip

    def curves(self, run_ids: list[str], viewer: Principal | None = None) -> dict[str, list]:
        with self.session() as session:
            for run_id in run_ids:
                self._visible_run(session, run_id, viewer)
            return boards.curves(session, run_ids)

    def compare(
        self,
        run_ids: list[str] | None = None,
        slug: str | None = None,
        algorithms: list[str] | None = None,
        budget: int | None = None,
        grid: int = 100,
        viewer: Principal | None = None,
    ) -> dict[str, Any]:
        with self.session() as session:
            if run_ids:
                for run_id in run_ids:
                    self._visible_run(session, run_id, viewer)
            elif slug is None:
                raise InvalidInput("compare chosen runs (run ids) or a use case's algorithms")
            else:
                self._seen_use_case(session, slug, viewer)
            return boards.compare(session, run_ids, slug, algorithms, budget, grid)

    # -- verification -----------------------------------------------------------------------
    def record_verification(
        self,
        run_id: str,
        by: Principal,
        method: str,
        reported: float | None,
        reproduced: float | None,
        ok: bool,
        details: dict[str, Any],
        checked_by: str = "client",
    ) -> None:
        """Keep a check's result: the server's re-simulation (``checked_by="server"``) or a
        client's report, never the uploader's own (Forbidden). The run's status is the latest
        check's result: a later failure outweighs an earlier pass."""
        if checked_by not in ("client", "server"):
            raise InvalidInput(f"checked_by {checked_by!r}: 'client' or 'server'")
        with self.session() as session:
            row = self._visible_run(session, run_id, by)
            if checked_by == "client" and row.uploader_id == by.user_id:
                raise Forbidden(
                    f"run {run_id} was uploaded by {by.handle}: its check must come from "
                    "another user or the catalog's server"
                )
            session.add(
                Verification(run_id=run_id, user_id=by.user_id, method=method[:50],
                             reported=reported, reproduced=reproduced, ok=bool(ok),
                             details=details, created_at=utcnow(), checked_by=checked_by)
            )  # fmt: skip
            row.verified = bool(ok)

    def verifications(self, run_id: str, viewer: Principal | None = None) -> list[dict]:
        with self.session() as session:
            self._visible_run(session, run_id, viewer)
            return self._verifications(session, run_id)

    def _verifications(self, session: Session, run_id: str) -> list[dict[str, Any]]:
        rows = session.execute(
            select(Verification, User.handle)
            .join(User, User.id == Verification.user_id)
            .where(Verification.run_id == run_id)
            .order_by(Verification.id)
        ).all()
        return [
            {"id": v.id, "by": "server" if v.checked_by == "server" else handle,
             "checked_by": v.checked_by, "method": v.method, "reported": v.reported,
             "reproduced": v.reproduced, "ok": v.ok, "details": v.details,
             "created_at": iso(v.created_at)}
            for v, handle in rows
        ]  # fmt: skip


def _may_see_private(viewer: Principal | None, uploader_id: int) -> bool:
    return viewer is not None and (viewer.is_admin or viewer.user_id == uploader_id)


def _use_cases_seen(viewer: Principal | None) -> Any:
    if viewer is None:
        return use_case_seen(None)
    return use_case_seen(viewer.user_id, viewer.is_admin)


def _token_live(token: ApiToken, now: datetime) -> bool:
    return token.revoked_at is None and not (token.expires_at and token.expires_at <= now)
