"""What a catalog open to strangers needs: server-side sign-in sessions, use cases an admin
registered (the only ones a server re-simulates), who checked a run and how, and the unpacked
bytes each run holds (counted against its uploader's budget); seeds become 64-bit.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sessions",
        sa.Column("sha256", sa.String(length=64), nullable=False),  # of the cookie's random id
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_id", sa.Integer(), nullable=True),  # the token signed in with
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["token_id"], ["api_tokens.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("sha256"),
    )
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sessions_user_id"), ["user_id"], unique=False)
    with op.batch_alter_table("use_cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("registered_by", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("registered_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("files", sa.String(length=500), nullable=True))
        batch_op.create_foreign_key(
            "fk_use_cases_registered_by", "users", ["registered_by"], ["id"]
        )
    with op.batch_alter_table("verifications", schema=None) as batch_op:
        # "server" (the catalog re-simulated a registered use case) or "client" (a report)
        batch_op.add_column(
            sa.Column("checked_by", sa.String(length=16), nullable=False, server_default="client")
        )
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("unpacked_bytes", sa.BigInteger(), nullable=False, server_default="0")
        )
        # a problem's seed may be up to 2**32 - 1: more than PostgreSQL's 32-bit integer
        batch_op.alter_column("seed", type_=sa.BigInteger(), existing_type=sa.Integer())


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.alter_column("seed", type_=sa.Integer(), existing_type=sa.BigInteger())
        batch_op.drop_column("unpacked_bytes")
    with op.batch_alter_table("verifications", schema=None) as batch_op:
        batch_op.drop_column("checked_by")
    with op.batch_alter_table("use_cases", schema=None) as batch_op:
        batch_op.drop_constraint("fk_use_cases_registered_by", type_="foreignkey")
        batch_op.drop_column("files")
        batch_op.drop_column("registered_at")
        batch_op.drop_column("registered_by")
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sessions_user_id"))
    op.drop_table("sessions")
