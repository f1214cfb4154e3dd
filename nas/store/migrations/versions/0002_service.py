"""the service: job tenants and runner, API tokens, exports

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 00:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("nas_jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tenant", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("managed", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.create_index(batch_op.f("ix_nas_jobs_tenant"), ["tenant"], unique=False)
    op.create_table(
        "nas_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant", sa.String(length=100), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("nas_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_nas_tokens_tenant"), ["tenant"], unique=False)
    op.create_table(
        "nas_exports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("candidate_id", sa.Integer(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("card", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["candidate_id"], ["nas_candidates.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["job_id"], ["nas_jobs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("nas_exports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_nas_exports_job_id"), ["job_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("nas_exports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_nas_exports_job_id"))
    op.drop_table("nas_exports")
    with op.batch_alter_table("nas_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_nas_tokens_tenant"))
    op.drop_table("nas_tokens")
    with op.batch_alter_table("nas_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_nas_jobs_tenant"))
        batch_op.drop_column("managed")
        batch_op.drop_column("tenant")
