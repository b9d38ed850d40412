"""The catalog's accounts: users, their API tokens (only a token's SHA-256 is kept) and the
browser sessions signed in with them."""

from __future__ import annotations

import hashlib
import re
import secrets
from base64 import b32encode
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from neuroptimus.storage.catalog.db.models import ApiToken, User
from neuroptimus.storage.catalog.db.models import Session as SignIn
from neuroptimus.storage.catalog.db.records import iso, utcnow
from neuroptimus.storage.catalog.errors import CatalogError, InvalidInput, NotFound

SCOPES = frozenset({"read", "upload", "verify", "admin"})
_HANDLE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


@dataclass(frozen=True)
class Principal:
    """Who is asking: a user authenticated by a token with these scopes."""

    user_id: int
    handle: str
    scopes: frozenset[str] = field(default_factory=frozenset)
    is_admin: bool = False


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class CatalogAccounts:
    """The users, tokens and sessions part of the catalog (``repository.Catalog``, which
    provides ``session()``)."""

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


def _token_live(token: ApiToken, now: datetime) -> bool:
    return token.revoked_at is None and not (token.expires_at and token.expires_at <= now)
