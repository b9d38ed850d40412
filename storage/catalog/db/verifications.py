"""The catalog's verifications: checks of a run's reported cost by other users or by the
catalog's server, and the run's verified status they decide."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from neuroptimus.storage.catalog.db.accounts import Principal
from neuroptimus.storage.catalog.db.models import User, Verification
from neuroptimus.storage.catalog.db.records import iso, utcnow
from neuroptimus.storage.catalog.errors import Forbidden, InvalidInput


class CatalogVerifications:
    """The verification part of :class:`~neuroptimus.storage.catalog.db.repository.Catalog`
    (which provides ``session()`` and ``_visible_run``)."""

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
