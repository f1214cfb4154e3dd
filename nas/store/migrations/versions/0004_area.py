"""co-design: each candidate's chip area

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("nas_candidates", schema=None) as batch_op:
        batch_op.add_column(sa.Column("area_mm2", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("nas_candidates", schema=None) as batch_op:
        batch_op.drop_column("area_mm2")
