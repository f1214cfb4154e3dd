"""accuracy in units: predicted accuracy's spread, measured accuracy, trained weights, calibration

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("nas_jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("calibration", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("train_top", sa.Integer(), nullable=True))
    with op.batch_alter_table("nas_candidates", schema=None) as batch_op:
        batch_op.add_column(sa.Column("accuracy_std", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("measured_accuracy", sa.Float(), nullable=True))
    op.create_table(
        "nas_weights",
        sa.Column("candidate_id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("recipe", sa.JSON(), nullable=False),
        sa.Column("state_dict", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["candidate_id"], ["nas_candidates.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["job_id"], ["nas_jobs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("candidate_id"),
    )
    with op.batch_alter_table("nas_weights", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_nas_weights_job_id"), ["job_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("nas_weights", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_nas_weights_job_id"))
    op.drop_table("nas_weights")
    with op.batch_alter_table("nas_candidates", schema=None) as batch_op:
        batch_op.drop_column("measured_accuracy")
        batch_op.drop_column("accuracy_std")
    with op.batch_alter_table("nas_jobs", schema=None) as batch_op:
        batch_op.drop_column("train_top")
        batch_op.drop_column("calibration")
