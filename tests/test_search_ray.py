"""Jobs on a real two-node Ray cluster: spread over both nodes, failures and timeouts recorded,
a SIGKILLed job resumed, a cancelled job stopped promptly and resumed."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from search_plugins import evaluations
from test_search import check_consistent, toy_spec

from nas.liveness import CANCEL_GRACE_S, HEARTBEAT_S
from nas.search import run, submit
from nas.store import Store

pytestmark = pytest.mark.ray


def nas(*args, env, **kwargs):
    return subprocess.run([sys.executable, "-m", "nas", *args], env=env, capture_output=True, text=True, **kwargs)


def wait_for(predicate, timeout_s, what):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def write_spec(tmp_path, spec):
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(spec.model_dump(mode="json")))
    return path


def ray_status(env: dict) -> str:
    """`ray status` of the session's cluster (its resources in use, pending demands), for failures."""
    ray_cli = str(Path(sys.executable).parent / "ray")
    result = subprocess.run([ray_cli, "status"], capture_output=True, text=True, timeout=60, check=False, env=env)
    return result.stdout[-3000:] + result.stderr[-1000:]


def test_a_job_spans_both_nodes_of_the_cluster(sqlite_url, ray_cluster):
    import ray

    store = Store(sqlite_url)
    spec = toy_spec(None, {"delay_s": 0.3}, workers={"count": 2, "address": ray_cluster}, budget={"trials": 16})
    job = run(store, submit(store, spec).id)
    check_consistent(store, job.id, 16)
    workers = {c.worker for c in store.candidates(job.id, status="complete")}
    ray.init(address=ray_cluster)
    try:
        nodes = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    finally:
        ray.shutdown()
    assert len(nodes) == 2 and workers == nodes


def test_failures_and_timeouts_are_recorded_and_the_job_goes_on(sqlite_url, ray_cluster):
    store = Store(sqlite_url)
    options = {"fail_mod": 3, "hang_mod": 3, "hang_s": 30}  # a third fail, a third hang
    budget = {"trials": 24, "trial_timeout_s": 2}
    spec = toy_spec(None, options, workers={"count": 2, "address": ray_cluster}, budget=budget)
    job = run(store, submit(store, spec).id)
    assert job.status == "completed"
    check_consistent(store, job.id, 24)
    failures = [c.failure for c in store.candidates(job.id, status="failed")]
    assert any(f.startswith("RuntimeError: toy failure") for f in failures)
    assert any(f.startswith("timeout: still running after 2 s") for f in failures)
    assert store.get_job(job.id).n_complete > 0


def test_the_default_proxy_scores_and_candidates_train_on_ray_workers(sqlite_url, ray_cluster):
    store = Store(sqlite_url)
    workers = {"count": 2, "address": ray_cluster}
    recipe = {"epochs": 1, "images": 256, "batch_size": 32, "test_images": 200}
    evaluator = {"proxy": "default", "batch": 16, "train": {"candidates": 2, "final": 1, "recipe": recipe}}
    spec = toy_spec(evaluator=evaluator, workers=workers, budget={"trials": 6})
    job = run(store, submit(store, spec).id)
    scored = store.candidates(job.id, status="complete")
    assert scored and all({"default", "jacob_cov"} <= set(c.scores) for c in scored)
    measured = [c for c in scored if c.metrics["measured_accuracy"] is not None]
    assert len(measured) >= 2 and all(0 <= c.metrics["accuracy"] <= 1 for c in scored)
    for c in measured:  # trained on a worker of the cluster, its weights back in the store
        assert store.weights(job.id, c.id) is not None
    assert store.get_job(job.id).predictor["measured"] == len(measured)


def test_sigkill_then_resume_loses_and_double_counts_nothing(sqlite_url, nas_env, tmp_path):
    log = tmp_path / "evals.log"
    spec = toy_spec(log, {"delay_s": 0.3}, workers={"count": 2}, budget={"trials": 30})
    path = write_spec(tmp_path, spec)
    proc = subprocess.Popen([sys.executable, "-m", "nas", "run", str(path), "--db", sqlite_url, "--quiet"],
                            env=nas_env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    store = Store(sqlite_url)
    try:
        wait_for(lambda: store.list_jobs() and store.list_jobs()[0].n_trials >= 8, 120, "8 trials")
    except AssertionError as err:  # say where the job was: its output, its trials, the cluster's state
        os.killpg(proc.pid, signal.SIGKILL)
        output = proc.communicate()[0].decode(errors="replace")[-4000:]
        trials = store.list_jobs()[0].n_trials if store.list_jobs() else None
        raise AssertionError(
            f"{err}; job at {trials} trials; `nas run` printed:\n{output}\n{ray_status(nas_env)}"
        ) from None
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    job = store.list_jobs()[0]
    assert job.status == "running" and job.n_trials < 30  # what a crash leaves behind
    killed_at = job.n_trials
    result = nas("resume", str(job.id), "--db", sqlite_url, "--quiet", env=nas_env, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    job, trials, cands, study = check_consistent(store, job.id, 30)
    assert job.status == "completed" and killed_at < 30
    reaped = [t.number for t in study.trials if t.number not in trials]  # left RUNNING by the kill
    assert all(t.state.name == "FAIL" for t in study.trials if t.number in reaped)
    requeued = [t for t in study.trials if "requeued_from" in t.user_attrs]
    assert sorted(t.user_attrs["requeued_from"] for t in requeued) == reaped
    evaluated = evaluations(log)
    repeats = len(evaluated) - len(set(evaluated))
    assert repeats <= len(requeued)  # only evaluations cut short by the kill ran again
    scored = {c.arch_hash for c in cands if c.status in ("complete", "failed")}
    assert scored <= set(evaluated)


def test_cancel_stops_promptly_and_resume_finishes(sqlite_url, nas_env, tmp_path):
    spec = toy_spec(None, {"delay_s": 0.5}, workers={"count": 2}, budget={"trials": 40})
    path = write_spec(tmp_path, spec)
    proc = subprocess.Popen([sys.executable, "-m", "nas", "run", str(path), "--db", sqlite_url, "--quiet"],
                            env=nas_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    store = Store(sqlite_url)
    try:
        wait_for(lambda: store.list_jobs() and store.list_jobs()[0].n_trials >= 4, 120, "4 trials")
        job = store.list_jobs()[0]
        assert nas("cancel", str(job.id), "--db", sqlite_url, env=nas_env).returncode == 0
        requested_at = time.monotonic()  # the request is in the store
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    # the next heartbeat sees the request; the loop stops, or is interrupted CANCEL_GRACE_S later
    # (how fast `nas cancel` itself answers: tests/test_cli.py, it loads neither torch nor Ray)
    bound_s = 2 * HEARTBEAT_S + CANCEL_GRACE_S + 3
    assert time.monotonic() - requested_at < bound_s, "the job took too long to stop"
    assert proc.returncode == 0, out
    job = store.get_job(job.id)
    assert job.status == "cancelled" and job.n_trials < 40
    result = nas("resume", str(job.id), "--db", sqlite_url, "--quiet", env=nas_env, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    job, *_ = check_consistent(store, job.id, 40)
    assert job.status == "completed"
