"""The catalog's tables (SQLAlchemy 2 ORM). The schema itself is made by the Alembic
migrations in ``storage/catalog/migrations`` (kept in step with these classes).

Everything people sort and filter runs by is a typed column of ``runs``; a leaderboard reads
per-run numbers precomputed at upload (``final_at_budget``, ``convergence_at_budget``) and the
compact curve (``curve_evaluations``, ``curve_best``) instead of the generation rows.
Times are naive UTC.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

Json = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: Json, list[Any]: Json}


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    handle: Mapped[str] = mapped_column(String(100), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    is_admin: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime]


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    prefix: Mapped[str] = mapped_column(String(16))  # shown in token lists, not secret
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[str] = mapped_column(String(200))  # space-separated
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class UseCase(Base):
    __tablename__ = "use_cases"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(220), unique=True)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    simulator: Mapped[str] = mapped_column(String(50), default="")
    identity: Mapped[dict[str, Any]]  # the UseCaseIdentity (with its hashed core)
    created_at: Mapped[datetime]
    # set when an admin registered the use case with its files (kept under ``files``, inside
    # the catalog's files folder): only such use cases are re-simulated by the server, and
    # they are listed even without a run anyone may see
    registered_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    registered_at: Mapped[datetime | None]
    files: Mapped[str | None] = mapped_column(String(500))


class Run(Base):
    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # the store's run_id
    use_case_id: Mapped[int] = mapped_column(ForeignKey("use_cases.id"))
    uploader_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    source_format: Mapped[str] = mapped_column(String(32))
    optimization_name: Mapped[str] = mapped_column(String(300))
    algorithm_key: Mapped[str] = mapped_column(String(100))
    algorithm_label: Mapped[str] = mapped_column(String(200))
    package: Mapped[str] = mapped_column(String(100))
    population: Mapped[int | None]
    generations: Mapped[int | None]
    budget: Mapped[int | None]
    seed: Mapped[int | None] = mapped_column(BigInteger)  # a spec's seed may pass 2**31
    evaluations: Mapped[int]
    stop_reason: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16))
    final_error: Mapped[float | None]
    validation_error: Mapped[float | None]  # held-out validation of the best (migration 0003)
    evaluations_to_best: Mapped[int | None]
    convergence_native: Mapped[float | None]
    wall_seconds: Mapped[float | None]
    workers: Mapped[int | None]
    created_at: Mapped[datetime | None]
    uploaded_at: Mapped[datetime]
    visibility: Mapped[str] = mapped_column(String(16))
    verified: Mapped[bool | None]
    # precomputed at upload for leaderboards at the run's own budget (see leaderboard.py)
    final_at_budget: Mapped[float | None]
    convergence_at_budget: Mapped[float | None]
    curve_evaluations: Mapped[list[Any]]  # cumulative evaluations per generation
    curve_best: Mapped[list[Any]]  # cumulative best per generation (None: not yet known)
    content_sha256: Mapped[str] = mapped_column(String(64))  # of the uploaded record
    record: Mapped[dict[str, Any]]  # the CatalogRun without parameters, components, curve
    store_file: Mapped[str | None] = mapped_column(String(500))
    archive_file: Mapped[str | None] = mapped_column(String(500))
    tags: Mapped[list[Any]]
    notes: Mapped[str] = mapped_column(Text, default="")
    unpacked_bytes: Mapped[int] = mapped_column(BigInteger, default=0)  # its store and archive

    __table_args__ = (  # as the migrations make them (see 0001_initial.RUN_INDEXES)
        *(Index(f"ix_runs_visibility_{key}", "visibility", key, "id")
          for key in ("uploaded_at", "final_error", "evaluations", "budget", "seed",
                      "created_at", "wall_seconds")),
        Index("ix_runs_use_case_final", "use_case_id", "final_error", "id"),
        Index("ix_runs_use_case_budget", "use_case_id", "budget"),
        Index("ix_runs_algorithm", "algorithm_key", "final_error"),
        Index("ix_runs_package", "package"),
        Index("ix_runs_uploader", "uploader_id", "uploaded_at"),
    )  # fmt: skip


class RunParameter(Base):
    __tablename__ = "run_parameters"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    unit: Mapped[str] = mapped_column(String(50), default="")
    lower: Mapped[float]
    upper: Mapped[float]
    log: Mapped[bool] = mapped_column(default=False)
    optimum: Mapped[float | None]
    true_value: Mapped[float | None]


class RunComponent(Base):
    __tablename__ = "run_components"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    value: Mapped[float | None]
    weight: Mapped[float]
    weighted_value: Mapped[float | None]


class RunGeneration(Base):
    """One row per generation: the run's curve."""

    __tablename__ = "run_generations"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    generation: Mapped[int] = mapped_column(primary_key=True)
    evaluations: Mapped[int]
    best: Mapped[float | None]
    cumulative_best: Mapped[float | None]
    median: Mapped[float | None]
    mean: Mapped[float | None]
    worst: Mapped[float | None]
    failed: Mapped[int | None]
    seconds: Mapped[float | None]


class Verification(Base):
    __tablename__ = "verifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    method: Mapped[str] = mapped_column(String(50))
    reported: Mapped[float | None]
    reproduced: Mapped[float | None]
    ok: Mapped[bool]
    details: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    checked_by: Mapped[str] = mapped_column(String(16), default="client")  # or "server"


class Session(Base):
    """A browser's sign-in: the cookie holds a random id, the table its SHA-256. Signing out,
    expiry and revoking the token signed in with end it here, on the server."""

    __tablename__ = "sessions"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_id: Mapped[int | None] = mapped_column(ForeignKey("api_tokens.id", ondelete="CASCADE"))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]


class Setting(Base):
    """Small values the service keeps (e.g. the session-signing secret)."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
