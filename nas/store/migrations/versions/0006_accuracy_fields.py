"""accuracy's three fields apart (proxy score, prediction, measurement); one name per job concept
(train_final, predictor); what a job's constraints rejected; how many candidates it trained

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-12 10:00:00

Candidates: ``proxy_score``, ``predicted_accuracy`` and ``predicted_std`` are new columns; until now
``accuracy`` held the proxy's score, then the prediction, then the measurement. Existing rows are
split by their job's kind: a job that trains nothing held its evaluator's value (the proxy score);
a job that trains held its prediction where nothing was measured (and the proxy's score among the
scores); a measured row's prediction survives only where the predictor logged it (its
``prospective`` pairs). ``accuracy`` stays as the objective they define.

Jobs: ``train_top`` (the count measured at the end; null meant the spec's ``train.final``) is
``train_final``, always set; ``calibration`` (the accuracy predictor, not the chip's fit) is
``predictor``; ``n_trained`` counts the measured candidates; ``constraint_report`` says which
constraints rejected how many candidates and how far to loosen them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_jobs = sa.table(
    "nas_jobs",
    sa.column("id", sa.Integer()),
    sa.column("spec", sa.JSON()),
    sa.column("predictor", sa.JSON()),
    sa.column("train_final", sa.Integer()),
    sa.column("n_trained", sa.Integer()),
)
_candidates = sa.table(
    "nas_candidates",
    sa.column("id", sa.Integer()),
    sa.column("job_id", sa.Integer()),
    sa.column("accuracy", sa.Float()),
    sa.column("accuracy_std", sa.Float()),
    sa.column("measured_accuracy", sa.Float()),
    sa.column("scores", sa.JSON()),
    sa.column("proxy_score", sa.Float()),
    sa.column("predicted_accuracy", sa.Float()),
    sa.column("predicted_std", sa.Float()),
)


def _trains(spec: dict) -> bool:
    """JobRecord.accuracy_kind == 'predicted', as of this revision."""
    evaluator = spec.get("evaluator") or {}
    train = evaluator.get("train") or {}
    return "plugin" not in evaluator and (train.get("candidates", 0) > 0 or train.get("final", 0) > 0)


def upgrade() -> None:
    for column in ("proxy_score", "predicted_accuracy", "predicted_std"):
        op.add_column("nas_candidates", sa.Column(column, sa.Float(), nullable=True))
    # in place, never by copying nas_jobs: SQLite drops a copied table's original, and with foreign
    # keys on that deletes every candidate, trial, weight and export of every job
    op.execute("ALTER TABLE nas_jobs RENAME COLUMN calibration TO predictor")
    op.execute("ALTER TABLE nas_jobs RENAME COLUMN train_top TO train_final")
    op.add_column("nas_jobs", sa.Column("n_trained", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("nas_jobs", sa.Column("constraint_report", sa.JSON(), nullable=True))

    bind = op.get_bind()
    for job_id, spec, predictor, train_final in bind.execute(
        sa.select(_jobs.c.id, _jobs.c.spec, _jobs.c.predictor, _jobs.c.train_final)
    ).all():
        spec = spec or {}
        final = int(((spec.get("evaluator") or {}).get("train") or {}).get("final", 0))
        bind.execute(_jobs.update().where(_jobs.c.id == job_id).values(train_final=max(train_final or 0, final)))
        rows = _candidates.c
        if not _trains(spec):
            bind.execute(_candidates.update().where(rows.job_id == job_id).values(proxy_score=rows.accuracy))
            continue
        proxy = (spec.get("evaluator") or {}).get("proxy", "default")
        logged = {
            p["candidate"]: (p["predicted"], p.get("std"))
            for p in (predictor or {}).get("prospective", [])
            if "predicted" in p
        }
        n_trained = 0
        for cid, accuracy, std, measured, scores in bind.execute(
            sa.select(rows.id, rows.accuracy, rows.accuracy_std, rows.measured_accuracy, rows.scores).where(
                rows.job_id == job_id
            )
        ).all():
            values = {"proxy_score": (scores or {}).get(proxy)}
            if measured is None:
                values.update(predicted_accuracy=accuracy, predicted_std=std)
            else:
                n_trained += 1
                values.update(zip(("predicted_accuracy", "predicted_std"), logged.get(cid, (None, None)), strict=True))
            bind.execute(_candidates.update().where(rows.id == cid).values(**values))
        bind.execute(_jobs.update().where(_jobs.c.id == job_id).values(n_trained=n_trained))


def downgrade() -> None:
    for column in ("constraint_report", "n_trained"):  # in place, as upgrade adds them
        op.execute(f"ALTER TABLE nas_jobs DROP COLUMN {column}")
    op.execute("ALTER TABLE nas_jobs RENAME COLUMN train_final TO train_top")
    op.execute("ALTER TABLE nas_jobs RENAME COLUMN predictor TO calibration")
    for column in ("predicted_std", "predicted_accuracy", "proxy_score"):  # in place: a copy would cascade
        op.execute(f"ALTER TABLE nas_candidates DROP COLUMN {column}")
