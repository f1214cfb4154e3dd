"""exports run as supervised processes: their request, state and liveness

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-10 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_exports = sa.table("nas_exports", sa.column("request", sa.JSON()))


def upgrade() -> None:
    with op.batch_alter_table("nas_exports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tenant", sa.String(length=100), nullable=True))
        # the exports made so far ran in the request: all complete
        batch_op.add_column(sa.Column("status", sa.String(length=20), nullable=False, server_default="complete"))
        batch_op.add_column(sa.Column("request", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("error", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("owner", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("started_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.alter_column("path", existing_type=sa.Text(), nullable=True)
        batch_op.create_index(batch_op.f("ix_nas_exports_tenant"), ["tenant"], unique=False)
        batch_op.create_index(batch_op.f("ix_nas_exports_status"), ["status"], unique=False)
    op.execute(
        "UPDATE nas_exports SET tenant = (SELECT nas_jobs.tenant FROM nas_jobs WHERE nas_jobs.id = nas_exports.job_id)"
    )
    op.execute(_exports.update().values(request={}))
    with op.batch_alter_table("nas_exports", schema=None) as batch_op:
        batch_op.alter_column("status", existing_type=sa.String(length=20), server_default=None)
        batch_op.alter_column("request", existing_type=sa.JSON(), nullable=False)


def downgrade() -> None:
    op.execute("DELETE FROM nas_exports WHERE status != 'complete'")
    with op.batch_alter_table("nas_exports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_nas_exports_status"))
        batch_op.drop_index(batch_op.f("ix_nas_exports_tenant"))
        batch_op.alter_column("path", existing_type=sa.Text(), nullable=False)
        for column in ("finished_at", "started_at", "heartbeat_at", "owner", "error", "request", "status", "tenant"):
            batch_op.drop_column(column)
