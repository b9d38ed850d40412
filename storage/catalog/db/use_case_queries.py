"""The catalog's use cases as a reader sees them: the list, one use case, its leaderboard,
progress curves and comparisons of runs or algorithms."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from neuroptimus.storage.catalog.db import leaderboard as boards
from neuroptimus.storage.catalog.db.accounts import Principal
from neuroptimus.storage.catalog.db.listing import use_case_seen
from neuroptimus.storage.catalog.db.models import UseCase
from neuroptimus.storage.catalog.errors import InvalidInput, NotFound


class CatalogUseCases:
    """The use-case reading part of :class:`~neuroptimus.storage.catalog.db.repository.Catalog`
    (which provides ``session()`` and ``_visible_run``)."""

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


def _use_cases_seen(viewer: Principal | None) -> Any:
    if viewer is None:
        return use_case_seen(None)
    return use_case_seen(viewer.user_id, viewer.is_admin)
