"""The SQL store of jobs, candidates, trials and Pareto fronts (SQLite or PostgreSQL).

    from nas.store import Store
    store = Store("sqlite:///nas.db")        # migrates the schema to the newest version
    store.pareto(job_id, where=parse_bounds("latency_ms<2"), sort="energy_mj")

tests/test_store.py holds its tests (run on SQLite; the queries are written to work on PostgreSQL too).
"""

from nas.store._records import (
    CANDIDATE_STATUSES,
    FILTERABLE,
    JOB_STATUSES,
    METRIC_COLUMNS,
    ROW_FIELDS,
    Bound,
    CandidateIn,
    CandidateRecord,
    ExportRecord,
    JobRecord,
    NotFoundError,
    StoreError,
    TokenRecord,
    TrialRecord,
    parse_bounds,
)
from nas.store._store import DB_ENV, DEFAULT_DB, Store, default_url

__all__ = [
    "CANDIDATE_STATUSES",
    "DB_ENV",
    "DEFAULT_DB",
    "FILTERABLE",
    "JOB_STATUSES",
    "METRIC_COLUMNS",
    "ROW_FIELDS",
    "Bound",
    "CandidateIn",
    "CandidateRecord",
    "ExportRecord",
    "JobRecord",
    "NotFoundError",
    "Store",
    "StoreError",
    "TokenRecord",
    "TrialRecord",
    "default_url",
    "parse_bounds",
]
