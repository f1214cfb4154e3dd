"""The store's contract: every test runs on SQLite and on PostgreSQL (``db_url``)."""

import dataclasses
import itertools
import random

import numpy as np
import optuna
import pytest

from nas.objectives import loss_vector
from nas.pareto import dominates, non_dominated
from nas.store import CandidateIn, NotFoundError, Store, StoreError, parse_bounds

OBJECTIVES = ["accuracy", "latency_ms", "energy_mj"]


def new_job(store, reference=None, objectives=OBJECTIVES, trials=100):
    spec = {"objectives": objectives, "budget": {"trials": trials, "wall_time_s": None}}
    return store.create_job(
        name="contract", tags=["t"], spec=spec, accelerator={"chip": {}}, reference_point=reference or {}
    )


def candidate(i, rng, status="complete", **metrics):
    base = {
        "accuracy": rng.random(),
        "latency_ms": rng.uniform(0.1, 5),
        "energy_mj": rng.uniform(0.1, 5),
        "throughput_fps": rng.uniform(100, 5000),
        "params": rng.randrange(10**5, 10**7),
        "power_w": 5.0,
        "weight_mib": 1.0,
        "macs": 1e9,
        "utilisation": 0.5,
    }
    if status != "complete":
        base.pop("accuracy")
    return CandidateIn(
        arch_hash=f"hash{i:05d}", name=f"net{i}", arch=f'{{"i": {i}}}', status=status,
        metrics={**base, **metrics}, deployable=True, hardware={"bound": "compute"},
    )  # fmt: skip


def fill(store, job_id, n, seed=0, statuses=("complete",)):
    rng = random.Random(seed)
    for i in range(n):
        store.record(job_id, i, candidate=candidate(i, rng, rng.choice(statuses)), values=[0, 0, 0], constraints={})


def brute_front(cands, objectives=OBJECTIVES):
    pts = {c.id: loss_vector(c.metrics, objectives) for c in cands if c.status == "complete"}
    return {i for i, p in pts.items() if not any(dominates(q, p) for q in pts.values())}


def test_jobs_round_trip_and_list(db_url):
    store = Store(db_url)
    job = new_job(store, {"latency_ms": 5.0})
    got = store.get_job(job.id)
    assert got.status == "queued" and got.study_name == f"nas-job-{job.id}" and got.tags == ("t",)
    assert got.reference_point == {"latency_ms": 5.0} and got.created_at.tzinfo is not None
    assert job.id in [j.id for j in store.list_jobs()]
    assert job.id in [j.id for j in store.list_jobs(status="queued")]
    assert job.id not in [j.id for j in store.list_jobs(status="completed")]


def test_opening_twice_migrates_once_and_keeps_data(db_url):
    job = new_job(Store(db_url))
    assert Store(db_url).get_job(job.id).name == "contract"


def test_optuna_shares_the_database(db_url):
    store = Store(db_url)
    job = new_job(store)
    study = optuna.create_study(storage=db_url, study_name=f"contract-{job.id}", directions=["maximize", "minimize"])
    study.tell(study.ask(), [1.0, 2.0])
    assert store.get_job(job.id).id == job.id
    assert len(optuna.load_study(study_name=f"contract-{job.id}", storage=db_url).trials) == 1


def test_missing_rows_raise_not_found_naming_the_fix(db_url):
    store = Store(db_url)
    with pytest.raises(NotFoundError, match="`nas jobs` lists"):
        store.get_job(10**9)
    job = new_job(store)
    with pytest.raises(NotFoundError, match="not among its candidates"):
        store.candidate(job.id, "nope")


def test_counters_front_and_history_follow_every_record(db_url):
    store = Store(db_url)
    job = new_job(store, {"accuracy": 0.0, "latency_ms": 5.0, "energy_mj": 5.0})
    fill(store, job.id, 150, statuses=("complete", "complete", "complete", "infeasible", "failed"))
    cands = store.candidates(job.id)
    got = store.get_job(job.id)
    counts = {s: sum(c.status == s for c in cands) for s in ("complete", "infeasible", "failed")}
    assert (got.n_trials, got.n_complete, got.n_infeasible, got.n_failed) == (150, *counts.values())
    front = {c.id for c in cands if c.on_front}
    assert front == brute_front(cands) and got.n_front == len(front)
    losses = [loss_vector(c.metrics, OBJECTIVES) for c in cands if c.on_front]
    ref = loss_vector({"accuracy": 0.0, "latency_ms": 5.0, "energy_mj": 5.0}, OBJECTIVES)
    assert got.hypervolume == pytest.approx(grid_hypervolume(losses, ref))
    history = store.hypervolume_history(job.id)
    assert history[-1][1] == pytest.approx(got.hypervolume)
    assert all(b[1] >= a[1] - 1e-12 for a, b in itertools.pairwise(history))  # fixed reference: never shrinks


def grid_hypervolume(losses, reference):
    """The dominated volume counted cell by cell on the grid of the points' own coordinates: slow
    and plain, and sharing nothing with the store's (Optuna's) algorithm."""
    pts = np.array([p for p in losses if all(a < r for a, r in zip(p, reference, strict=True))])
    if len(pts) == 0:
        return 0.0
    axes = [np.unique(np.append(pts[:, d], reference[d])) for d in range(len(reference))]
    volume = 0.0
    for cell in itertools.product(*(range(len(a) - 1) for a in axes)):
        corner = np.array([axes[d][i] for d, i in enumerate(cell)])
        if np.any(np.all(pts <= corner, axis=1)):  # some point dominates the whole cell
            volume += np.prod([axes[d][i + 1] - axes[d][i] for d, i in enumerate(cell)])
    return float(volume)


def test_the_grid_hypervolume_counts_boxes():
    assert grid_hypervolume([(0, 0, 0)], (1, 2, 3)) == 6
    assert grid_hypervolume([(0, 1, 0), (1, 0, 0)], (2, 2, 1)) == 3  # two 2x1 boxes overlapping in a 1x1
    assert grid_hypervolume([(3, 0, 0)], (2, 2, 2)) == 0


def test_a_missing_reference_is_fixed_after_the_warmup(db_url):
    store = Store(db_url)
    job = new_job(store, {"accuracy": None, "latency_ms": 5.0, "energy_mj": 5.0})
    fill(store, job.id, 9)
    assert store.get_job(job.id).reference_point["accuracy"] is None
    assert store.get_job(job.id).hypervolume is None
    rng = random.Random(5)
    store.record(job.id, 99, candidate=candidate(99, rng), values=[0, 0, 0], constraints={})
    got = store.get_job(job.id)
    worst = min(c.metrics["accuracy"] for c in store.candidates(job.id, status="complete"))
    assert got.reference_point["accuracy"] == pytest.approx(worst) and got.hypervolume is not None


def test_a_failed_write_leaves_nothing_behind(db_url):
    store = Store(db_url)
    job = new_job(store)
    rng = random.Random(0)
    store.record(job.id, 0, candidate=candidate(0, rng), values=[1, 1, 1], constraints={})
    with pytest.raises(StoreError, match="already recorded"):
        store.record(job.id, 1, candidate=candidate(0, rng), values=[1, 1, 1], constraints={})
    got = store.get_job(job.id)
    assert got.n_trials == 1 and list(store.trials(job.id)) == [0]


def test_duplicates_add_trials_not_candidates(db_url):
    store = Store(db_url)
    job = new_job(store)
    rng = random.Random(0)
    first = store.record(job.id, 0, candidate=candidate(0, rng), values=[1, 2, 3], constraints={"max_params": -1.0})
    store.record(job.id, 1, duplicate_of=first.id, values=[1, 2, 3], constraints={"max_params": -1.0})
    got = store.get_job(job.id)
    assert (got.n_trials, got.n_duplicates, len(store.candidates(job.id))) == (2, 1, 1)
    trials = store.trials(job.id)
    assert trials[1].outcome == "duplicate" and trials[1].candidate_id == first.id
    assert trials[1].constraints == {"max_params": -1.0}
    # recording returns the candidate as the store holds it: the new one, or for a duplicate the original
    assert first.trial_number == 0 and first.arch_hash == store.candidates(job.id)[0].arch_hash
    with pytest.raises(ValueError, match="exactly one"):
        store.record(job.id, 2, values=None, constraints=None)


def test_pareto_queries_match_brute_force(db_url):
    store = Store(db_url)
    job = new_job(store, {"accuracy": 0.0, "latency_ms": 5.0, "energy_mj": 5.0})
    fill(store, job.id, 200, seed=3, statuses=("complete", "complete", "infeasible"))
    cands = store.candidates(job.id)
    for where in ["", "latency_ms<2", "latency_ms<=2,accuracy>0.3", "latency_ms>2", "params<3000000", "energy_mj>1"]:
        bounds = parse_bounds(where)
        inside = [c for c in cands if all(_holds(c.metrics[b.metric], b.op, b.value) for b in bounds)]
        expected = brute_front(inside)
        got = store.pareto(job.id, where=bounds)
        assert {c.id for c in got} == expected, where
        assert [c.metrics["accuracy"] for c in got] == sorted((c.metrics["accuracy"] for c in got), reverse=True)
    by_energy = store.pareto(job.id, sort="energy_mj")
    assert [c.metrics["energy_mj"] for c in by_energy] == sorted(c.metrics["energy_mj"] for c in by_energy)
    page = store.pareto(job.id, sort="energy_mj", limit=2, offset=1)
    assert [c.id for c in page] == [c.id for c in by_energy[1:3]]
    assert store.pareto(job.id, sort="energy_mj", descending=True)[0].id == by_energy[-1].id
    with pytest.raises(ValueError, match="sort: unknown metric"):
        store.pareto(job.id, sort="nope")


def test_jobs_filter_by_status_tag_and_tenant_and_page(db_url):
    store = Store(db_url)
    spec = {"objectives": OBJECTIVES, "budget": {"trials": 1, "wall_time_s": None}}
    tag = f"t_{random.randrange(10**9)}"  # PostgreSQL's schema is shared by the session: tags of our own
    made = [store.create_job(name=f"j{i}", tags=[tag, f"{tag}-{i % 2}"], spec=spec, accelerator={},
                             reference_point={}, tenant="ours" if i < 3 else None) for i in range(5)]  # fmt: skip
    ids = [j.id for j in made]
    assert [j.id for j in store.list_jobs(tag=tag)] == ids[::-1] and store.count_jobs(tag=tag) == 5
    assert [j.id for j in store.list_jobs(tag=f"{tag}-1")] == [ids[3], ids[1]]
    assert [j.id for j in store.list_jobs(tag=tag, limit=2, offset=1)] == [ids[3], ids[2]]
    assert store.count_jobs(tag=tag.replace("_", "%")) == 0  # LIKE's wildcards in a tag match themselves only
    assert {j.id for j in store.list_jobs(tag=tag, tenant="ours")} == set(ids[:3])
    store.requeue(ids[0])
    assert store.get_job(ids[0]).managed and not store.get_job(ids[1]).managed
    assert ids[0] in [j.id for j in store.list_jobs(status="queued", tag=tag)]
    with pytest.raises(ValueError, match="status: 'sleeping'"):
        store.list_jobs(status="sleeping")


def test_a_recomputed_front_follows_new_candidates(db_url):
    store = Store(db_url)
    job = new_job(store)
    fill(store, job.id, 50, seed=5)
    bounds = parse_bounds("latency_ms>1")
    first = {c.id for c in store.pareto(job.id, where=bounds)}
    assert {c.id for c in store.pareto(job.id, where=bounds)} == first  # served again (from the cache)
    # a candidate inside the bounds that dominates everything there
    best = candidate(50, random.Random(0), accuracy=2.0, latency_ms=1.000001, energy_mj=0.001)
    recorded = store.record(job.id, 50, candidate=best, values=[0, 0, 0], constraints={})
    assert [c.id for c in store.pareto(job.id, where=bounds)] == [recorded.id]
    # a fresh Store on the same database (another process) sees the same
    assert [c.id for c in Store(db_url).pareto(job.id, where=bounds)] == [recorded.id]


def _holds(value, op, bound):
    if value is None:  # SQL: a comparison with NULL is not true
        return False
    return {"<": value < bound, "<=": value <= bound, ">": value > bound, ">=": value >= bound}[op]


def test_parse_bounds_errors_name_the_fix():
    assert [str(b) for b in parse_bounds(["latency_ms<2", "energy_mj >= 0.5"])] == ["latency_ms<2", "energy_mj>=0.5"]
    with pytest.raises(ValueError, match="write METRIC OP NUMBER"):
        parse_bounds("latency_ms < two")
    with pytest.raises(ValueError, match="unknown metric 'fps'"):
        parse_bounds("fps>3")


def test_lookups_by_id_and_hash_prefix(db_url):
    store = Store(db_url)
    job = new_job(store)
    fill(store, job.id, 3)
    c = store.candidates(job.id)[1]
    assert store.candidate(job.id, c.id) == c == store.candidate(job.id, c.arch_hash[:9])
    with pytest.raises(NotFoundError, match="ambiguous"):
        store.candidate(job.id, "hash")
    with pytest.raises(ValueError, match="status: 'done' is not one of complete"):
        store.candidates(job.id, status="done")


def test_claim_heartbeat_cancel_finish(db_url):
    store = Store(db_url)
    job = new_job(store)
    assert store.claim(job.id, "host:1").status == "running"
    assert store.heartbeat(job.id, "host:1", run_seconds=3.0, eval_seconds=5.0) is False
    store.request_cancel(job.id)
    assert store.heartbeat(job.id, "host:1", run_seconds=4.0, eval_seconds=6.0) is True
    done = store.finish(job.id, "cancelled")
    assert (done.status, done.owner, done.run_seconds) == ("cancelled", None, 4.0)
    assert store.claim(job.id, "host:2").cancel_requested is False  # a resume clears the request
    with pytest.raises(StoreError, match="claimed by host:2 meanwhile"):
        store.claim(job.id, "host:3", previous_owner=None)  # a second resumer that saw no owner loses


def test_deleting_a_job_deletes_its_rows(db_url):
    """Every table that holds a job's rows (found from the schema, so a new one is checked too)
    and its Optuna study lose that job's rows; another job keeps all of its own."""
    from sqlalchemy import func, select

    from nas.store._models import BaseModel
    from nas.store._records import Measured

    store = Store(db_url)
    jobs = [new_job(store, {"accuracy": 0.0, "latency_ms": 5.0, "energy_mj": 5.0}) for _ in range(2)]
    for job in jobs:
        fill(store, job.id, 5)
        first = store.candidates(job.id)[0]
        store.update_accuracy(job.id, {}, {}, Measured(first.id, 0.9, b"weights", {}))
        store.create_export(job.id, first.id, request={})
        study = optuna.create_study(study_name=job.study_name, storage=store.optuna_storage())
        study.tell(study.ask(), 1.0)
    tables = [t for t in BaseModel.metadata.sorted_tables if "job_id" in t.c]
    assert {t.name for t in tables} >= {"nas_candidates", "nas_trials", "nas_hypervolume", "nas_weights", "nas_exports"}

    def rows(job_id):
        with store.engine.connect() as conn:
            return {
                t.name: conn.scalar(select(func.count()).select_from(t).where(t.c.job_id == job_id)) for t in tables
            }

    kept = rows(jobs[1].id)
    assert all(kept.values()) and rows(jobs[0].id) == kept  # both jobs have a row in every table
    store.delete_job(jobs[0].id)
    with pytest.raises(NotFoundError):
        store.get_job(jobs[0].id)
    assert rows(jobs[0].id) == dict.fromkeys(kept, 0)
    assert rows(jobs[1].id) == kept
    studies = {s.study_name for s in optuna.get_all_study_summaries(store.optuna_storage())}
    assert jobs[0].study_name not in studies and jobs[1].study_name in studies
    store.delete_job(jobs[1].id)  # a job whose study is gone already, or never existed, deletes as well


def test_an_unreachable_database_is_a_store_error():
    with pytest.raises(StoreError, match="cannot open it"):
        Store("postgresql+psycopg://nobody:x@127.0.0.1:1/none")


def test_non_dominated_mask_with_ties():
    pts = np.array([[0, 1], [0, 1], [1, 0], [1, 1]], dtype=float)
    assert non_dominated(pts).tolist() == [True, True, True, False]


def test_the_migrations_build_exactly_the_models_tables(sqlite_url):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from nas.store._models import BaseModel

    store = Store(sqlite_url)
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), BaseModel.metadata)
    assert [d for d in diff if "nas_alembic_version" not in str(d)] == []


def test_new_predictions_move_the_front_and_a_measurement_keeps_its_weights(db_url):
    from nas.store._records import Measured

    store = Store(db_url)
    job = new_job(store, {"accuracy": 0.0, "latency_ms": 5.0, "energy_mj": 5.0})
    fill(store, job.id, 40, seed=3)
    cands = store.candidates(job.id)
    store.pareto(job.id, where=parse_bounds("latency_ms>1"))  # cached under these bounds: must not be served stale
    rng = random.Random(7)
    predictions = {c.id: {"predicted_accuracy": rng.random(), "predicted_std": 0.01} for c in cands[1:]}
    measured = Measured(cands[0].id, 0.99, b"weights", {"epochs": 3, "resolution": 32})
    store.update_accuracy(job.id, predictions, {"measured": 1}, measured)
    assert store.get_job(job.id).predictor == {"measured": 1, "version": 1}

    after = store.candidates(job.id)
    by_id = {c.id: c for c in after}
    assert by_id[cands[0].id].metrics["accuracy"] == 0.99 == by_id[cands[0].id].metrics["measured_accuracy"]
    assert by_id[cands[0].id].metrics["accuracy_std"] is None
    assert all(by_id[i].metrics["accuracy"] == pytest.approx(p["predicted_accuracy"]) for i, p in predictions.items())
    # the three fields stay apart: the evaluator's value is the proxy score, never rewritten
    for c in cands:
        assert by_id[c.id].metrics["proxy_score"] == c.metrics["accuracy"] == c.metrics["proxy_score"]
    assert all(
        by_id[i].metrics["predicted_accuracy"] == pytest.approx(p["predicted_accuracy"]) for i, p in predictions.items()
    )
    assert by_id[cands[0].id].metrics["predicted_accuracy"] is None  # this job never predicted it
    later = {
        cands[0].id: {"predicted_accuracy": 0.5, "predicted_std": 0.02},
        cands[1].id: {"predicted_accuracy": 0.6, "predicted_std": 0.03},
    }
    store.update_accuracy(job.id, later, {"measured": 1}, Measured(cands[1].id, 0.7, None, {}))
    kept, measured_now = (store.candidate(job.id, i).metrics for i in (cands[0].id, cands[1].id))
    assert kept["accuracy"] == 0.99 and kept["predicted_accuracy"] == 0.5  # a measurement outranks a refit
    assert measured_now["accuracy"] == 0.7 and measured_now["predicted_accuracy"] == 0.6  # its prediction kept
    assert store.get_job(job.id).n_trained == 2
    assert {c.id for c in store.pareto(job.id)} == brute_front(after)
    assert store.get_job(job.id).n_front == len(brute_front(after))
    inside = [c for c in after if c.metrics["latency_ms"] > 1]
    assert {c.id for c in store.pareto(job.id, where=parse_bounds("latency_ms>1"))} == brute_front(inside)
    assert store.weights(job.id, cands[0].id) == (b"weights", {"epochs": 3, "resolution": 32})
    assert store.weights(job.id, cands[1].id) is None
    assert store.get_job(job.id).predictor == {"measured": 1, "version": 2}
    with pytest.raises(NotFoundError):
        store.update_accuracy(job.id, {}, {}, Measured(10**6, 0.5, None, {}))


OPEN_AT = """
import sys, time
from nas.store import Store
while time.time() < float(sys.argv[2]):
    time.sleep(0.001)
Store(sys.argv[1]).optuna_storage()
"""


def test_processes_opening_a_fresh_database_at_once_all_get_it(tmp_path):
    """Jobs started together on a new database raced to create Optuna's tables; the losers failed
    (found by the chaos benchmark). Four processes open it at the same instant."""
    import subprocess
    import sys
    import time

    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    at = time.time() + 8  # after every interpreter has imported the package
    procs = [subprocess.Popen([sys.executable, "-c", OPEN_AT, url, str(at)], stderr=subprocess.PIPE) for _ in range(4)]
    errors = [p.communicate(timeout=120)[1].decode()[-500:] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], errors


def test_an_export_is_queued_claimed_once_beats_and_finishes(db_url):
    store = Store(db_url)
    job = new_job(store)
    fill(store, job.id, 2)
    c = store.candidates(job.id)[0]
    export = store.create_export(job.id, c.id, request={"formats": ["onnx"], "train_steps": 0}, tenant="acme")
    assert (export.status, export.owner, export.card, export.path) == ("queued", None, {}, None)
    assert store.count_exports(status=("queued", "running"), tenant="acme") == 1
    assert store.count_exports(tenant="other") == 0
    running = store.claim_export(export.id, "host:1")
    assert running.status == "running" and running.owner == "host:1" and running.started_at is not None
    with pytest.raises(StoreError, match="not queued"):  # a second process started for it loses
        store.claim_export(export.id, "host:2")
    before = store.get_export(export.id).heartbeat_at
    store.export_heartbeat(export.id, "host:2")  # not its owner: no beat
    assert store.get_export(export.id).heartbeat_at == before
    store.export_heartbeat(export.id, "host:1")
    assert store.get_export(export.id).heartbeat_at >= before
    assert [e.id for e in store.list_exports(status="running")] == [export.id]
    done = store.finish_export(export.id, "complete", path="/x/e.zip", card={"files": {"onnx": "model.onnx"}})
    assert (done.status, done.owner, done.path, done.request["formats"]) == ("complete", None, "/x/e.zip", ["onnx"])
    assert done.finished_at is not None and store.count_exports(status=("queued", "running")) == 0
    with pytest.raises(ValueError, match="status"):
        store.list_exports(status="done")
    with pytest.raises(NotFoundError):
        store.get_export(export.id + 1)


def test_exports_from_before_they_were_queued_migrate_as_complete(db_url):
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from nas.store._store import MIGRATIONS

    store = Store(db_url)
    job = store.create_job(
        name="old", tags=[], spec={"objectives": OBJECTIVES}, accelerator={}, reference_point={}, tenant="acme"
    )
    fill(store, job.id, 1)
    c = store.candidates(job.id)[0]
    store.finish_export(store.create_export(job.id, c.id, request={}).id, "complete", path="/x/a.zip", card={"a": 1})
    store.create_export(job.id, c.id, request={})  # queued: no such thing before 0005

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.begin() as connection:  # back to the schema where every export was complete
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, "0004")
    with store.engine.begin() as connection:
        rows = connection.execute(text(f"SELECT path FROM nas_exports WHERE job_id = {job.id}")).all()
    assert rows == [("/x/a.zip",)]
    store.close()

    migrated = [e for e in Store(db_url).list_exports(limit=None) if e.job_id == job.id]
    assert [(e.status, e.path, e.card, e.request, e.tenant) for e in migrated] == [
        ("complete", "/x/a.zip", {"a": 1}, {}, "acme")
    ]


def test_rows_from_before_0006_split_their_accuracy_and_keep_every_row(sqlite_url):
    """The data migration: a job that trains keeps its prediction apart from its measurement, a
    score-only job's accuracy becomes its proxy score, and no job loses a row (SQLite rebuilding a
    table would cascade deletes)."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from nas.store._records import Measured
    from nas.store._store import MIGRATIONS

    store = Store(sqlite_url)
    trains = {"objectives": OBJECTIVES, "budget": {"trials": 10}, "evaluator": {"proxy": "snip", "train": {
        "candidates": 2, "final": 3}}}  # fmt: skip
    predicted = store.create_job(name="p", tags=[], spec=trains, accelerator={}, reference_point={})
    scored = new_job(store)
    fill(store, predicted.id, 3)
    fill(store, scored.id, 3, seed=1)
    p = store.candidates(predicted.id)
    store.update_accuracy(predicted.id, {p[1].id: {"predicted_accuracy": 0.4, "predicted_std": 0.05},
        p[2].id: {"predicted_accuracy": 0.45, "predicted_std": 0.06}}, {
        "prospective": [{"candidate": p[0].id, "predicted": 0.3, "std": 0.1, "measured": 0.8}]},
        Measured(p[0].id, 0.8, b"w", {}))  # fmt: skip
    store.request_training(predicted.id, 5)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, "0005")
        connection.execute(
            text(f"UPDATE nas_candidates SET scores = '{{\"snip\": 7.0}}' WHERE job_id = {predicted.id}")
        )
    store.close()

    store = Store(sqlite_url)
    after = {c.id: c.metrics for c in store.candidates(predicted.id)}
    assert len(after) == 3 and store.weights(predicted.id, p[0].id) is not None
    assert after[p[0].id]["measured_accuracy"] == 0.8 == after[p[0].id]["accuracy"]
    assert after[p[0].id]["predicted_accuracy"] == 0.3  # recovered from the predictor's log
    assert after[p[1].id]["predicted_accuracy"] == 0.4 == after[p[1].id]["accuracy"]
    assert after[p[1].id]["predicted_std"] == 0.05 and after[p[1].id]["proxy_score"] == 7.0
    job = store.get_job(predicted.id)
    assert (job.train_final, job.n_trained, job.predictor["version"]) == (5, 1, 1)
    for c in store.candidates(scored.id):
        assert c.metrics["proxy_score"] == c.metrics["accuracy"] is not None and c.metrics["predicted_accuracy"] is None
    assert store.get_job(scored.id).train_final == 0


def test_each_record_is_its_row_by_field_name():
    """A record field is a column of the same name (a candidate's metrics: one column each), so a
    new field is two edits, the row and the record: the conversion follows the dataclass."""

    from nas.store import METRIC_COLUMNS, CandidateRecord, ExportRecord, JobRecord, TokenRecord
    from nas.store._models import CandidateModel, ExportModel, JobModel, TokenModel

    pairs = [
        (JobRecord, JobModel),
        (CandidateRecord, CandidateModel),
        (ExportRecord, ExportModel),
        (TokenRecord, TokenModel),
    ]
    for record, model in pairs:
        columns = set(model.__table__.c.keys())
        fields = {f.name for f in dataclasses.fields(record)} - {"metrics"}
        assert fields <= columns, f"{record.__name__}: no column for {fields - columns}"
    assert set(METRIC_COLUMNS) <= set(CandidateModel.__table__.c.keys())


def test_records_carry_the_status_enums(sqlite_url):
    from nas.status import CandidateStatus, JobStatus

    store = Store(sqlite_url)
    job = new_job(store)
    fill(store, job.id, 2)
    assert store.get_job(job.id).status is JobStatus.QUEUED
    assert all(c.status is CandidateStatus.COMPLETE for c in store.candidates(job.id))


def test_a_job_that_trains_nothing_calls_its_accuracy_a_score(sqlite_url):
    store = Store(sqlite_url)
    scored = new_job(store)
    trains = store.create_job(name="p", tags=[], spec={"objectives": OBJECTIVES, "evaluator": {"train": {
        "candidates": 2, "final": 1}}}, accelerator={}, reference_point={})  # fmt: skip
    assert (scored.accuracy_kind, scored.accuracy_label) == ("score", "proxy score")
    assert (trains.accuracy_kind, trains.accuracy_label, trains.train_final) == ("predicted", "accuracy", 1)
