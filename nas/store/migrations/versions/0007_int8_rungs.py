"""INT8 accuracy beside FP32 (measured, or its drop predicted), the rungs of each training
(successive halving), and the INT8 model a measurement was made on

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 18:00:00

Candidates gain ``measured_accuracy_int8``, ``predicted_int8_drop`` (+ std) and the fields derived
from them (``accuracy_int8`` + std, ``int8_drop``: ``nas.objectives.int8_fields``), and ``rungs``
(each training's partial accuracies). Rows from before have no INT8 figure: their fields stay null
until the job measures or predicts them. Weights gain the INT8 ONNX model and its recipe.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_FLOATS = (
    "measured_accuracy_int8",
    "predicted_int8_drop",
    "predicted_int8_drop_std",
    "accuracy_int8",
    "accuracy_int8_std",
    "int8_drop",
)


def upgrade() -> None:
    for column in _FLOATS:
        op.add_column("nas_candidates", sa.Column(column, sa.Float(), nullable=True))
    op.add_column("nas_candidates", sa.Column("rungs", sa.JSON(), nullable=True))
    op.add_column("nas_weights", sa.Column("int8_onnx", sa.LargeBinary(), nullable=True))
    op.add_column("nas_weights", sa.Column("int8", sa.JSON(), nullable=True))


def downgrade() -> None:
    # in place: copying a table (SQLite's batch mode) would cascade its deletes
    for table, column in (("nas_weights", "int8"), ("nas_weights", "int8_onnx"), ("nas_candidates", "rungs")):
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    for column in reversed(_FLOATS):
        op.execute(f"ALTER TABLE nas_candidates DROP COLUMN {column}")
