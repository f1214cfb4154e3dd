"""No job blocks the queue and nothing outlives its job: the service's supervisor (in this process)
runs real `nas resume` and `nas export-run` processes on a real SQLite store, and we hang, overrun,
cancel, stop and kill them."""

import os
import signal
import time
from pathlib import Path

import pytest
from test_service_live import TESTS, TOY, wait_for

from nas.limits import Limits
from nas.liveness import owner_pid, session_pids
from nas.search import submit
from nas.service import JobSupervisor
from nas.spec import load_spec
from nas.store import Store


@pytest.fixture
def supervised(tmp_path, monkeypatch):
    """A store and a function that starts a supervisor over it (stopped at the end)."""
    monkeypatch.setenv("PYTHONPATH", str(TESTS))  # the jobs' processes import the toy evaluator
    store = Store(f"sqlite:///{tmp_path / 'nas.db'}")
    started = []

    def supervise(**limits) -> JobSupervisor:
        s = JobSupervisor(store, log_dir=tmp_path / "logs", max_jobs=1, poll_s=0.2, limits=Limits(**limits))
        s.start()
        started.append(s)
        return s

    yield store, supervise
    for s in started:
        s.stop()


def job(store, name, **spec):
    return submit(store, load_spec({**TOY, "name": name, **spec}), managed=True).id


def running_pid(store, job_id, trials=1):
    """The job's process, once it runs and has done ``trials`` trials."""
    wait_for(lambda: store.get_job(job_id).status == "running" and store.get_job(job_id).n_trials >= trials, 90)
    return owner_pid(store.get_job(job_id))


def test_a_hung_job_is_stopped_failed_with_the_reason_and_the_queue_moves_on(supervised):
    store, supervise = supervised
    hung, next_one = job(store, "hung", budget={"trials": 400}), job(store, "next", budget={"trials": 3})
    supervise(heartbeat_timeout_s=4)
    pid = running_pid(store, hung)
    os.kill(pid, signal.SIGSTOP)  # alive, but silent: it holds its slot until someone notices
    stopped_at = time.monotonic()
    failed = wait_for(lambda: (j := store.get_job(hung)).status == "failed" and j, timeout=30)
    assert "no heartbeat" in failed.error and "stopped by the service" in failed.error
    assert time.monotonic() - stopped_at < 4 + 20 + 5  # the timeout, then SIGKILL after the grace at most
    assert session_pids(pid) == []
    assert wait_for(lambda: store.get_job(next_one).status == "completed", timeout=90)  # its slot was freed


def test_a_job_past_its_time_limit_is_stopped(supervised, monkeypatch):
    store, supervise = supervised
    monkeypatch.setattr("nas.search._runner.STARTUP_S", 3.0)  # the start-up allowance, shortened for the test
    # each evaluation sleeps 60 s in the job's own process, where no trial timeout can stop it
    slow = job(store, "slow", evaluator={"plugin": "search_plugins:ToyEvaluator", "options": {"delay_s": 60}},
               budget={"trials": 5, "wall_time_s": 2, "trial_timeout_s": 2})  # fmt: skip
    started = time.monotonic()
    supervise()
    failed = wait_for(lambda: (j := store.get_job(slow)).status == "failed" and j, timeout=60)
    assert "ran past its time limit of 7 s" in failed.error
    assert time.monotonic() - started < 7 + 20 + 10


def test_cancel_takes_effect_within_seconds_even_inside_a_long_evaluation(supervised):
    store, supervise = supervised
    slow = job(store, "slow", evaluator={"plugin": "search_plugins:ToyEvaluator", "options": {"delay_s": 120}},
               budget={"trials": 5})  # fmt: skip
    supervise()
    wait_for(lambda: store.get_job(slow).status == "running", timeout=60)
    time.sleep(2)  # inside its first 120 s evaluation now
    from nas.search import cancel

    asked = time.monotonic()
    cancel(store, slow)
    wait_for(lambda: store.get_job(slow).status == "cancelled", timeout=30)
    assert time.monotonic() - asked < 15


@pytest.mark.ray
def test_the_ray_processes_a_job_started_end_with_it_however_it_ends(supervised):
    store, supervise = supervised
    ray_job = job(store, "ray", workers={"count": 1}, budget={"trials": 2000})
    supervisor = supervise()
    pid = running_pid(store, ray_job, trials=2)
    ours = session_pids(pid)
    assert len(ours) >= 3, ours  # the job, Ray's head processes and its worker
    os.kill(pid, signal.SIGKILL)  # no chance to stop Ray itself
    wait_for(lambda: not session_pids(pid), timeout=30)
    # the supervisor resumes the job (it died); stopping the service then ends that run and its Ray
    second = wait_for(lambda: (p := owner_pid(store.get_job(ray_job))) not in (None, pid) and p, timeout=90)
    wait_for(lambda: len(session_pids(second)) >= 3, timeout=90)
    supervisor.stop()
    assert store.get_job(ray_job).status == "interrupted", store.get_job(ray_job).error
    assert session_pids(second) == []


# ---- exports: the same slots, liveness and limits, one `nas export-run` process each ------------------


def queued_export(store, formats=("onnx",)):
    """A finished job (run here) and a queued export of its best candidate."""
    from nas.search import run

    job_id = run(
        store, job(store, "exported", budget={"trials": 6}, evaluator={"plugin": "search_plugins:ToyEvaluator"})
    ).id
    best = store.pareto(job_id, limit=1)[0]
    request = {"formats": list(formats), "train_steps": 0, "train_batch": 32, "allow_untrained": True}  # a toy job
    return store.create_export(job_id, best.id, request=request, tenant="acme").id


def test_a_queued_export_runs_in_its_own_process_is_queued_again_by_a_stop_and_completes(supervised, tmp_path):
    store, supervise = supervised
    export = queued_export(store)
    first = supervise()
    pid = wait_for(lambda: (e := store.get_export(export)).status == "running" and owner_pid(e), timeout=60)
    assert pid != os.getpid() and first.running("export") == [export] and first.running() == []
    first.stop()  # the service stops mid-export: not the export's fault, so the next start runs it again
    assert store.get_export(export).status == "queued" and session_pids(pid) == []
    supervise()
    done = wait_for(lambda: (e := store.get_export(export)).status == "complete" and e, timeout=120)
    assert done.card["files"] == {"arch": "arch.json", "onnx": "model.onnx", "model_card": "model_card.json"}
    assert Path(done.path).parent == tmp_path / "exports" and Path(done.path).is_file()
    assert f"export {export}: complete" in (tmp_path / "logs" / f"export-{export}.log").read_text()


def test_an_export_past_its_time_limit_is_stopped_and_recorded_failed(supervised, tmp_path, monkeypatch):
    store, supervise = supervised
    monkeypatch.setattr("nas.service._supervisor.EXPORT_STARTUP_S", 0.5)  # shortened for the test
    export = queued_export(store, formats=("state_dict", "torchscript", "onnx", "exported_program"))
    started = time.monotonic()
    supervise(max_export_s=1)
    failed = wait_for(lambda: (e := store.get_export(export)).status == "failed" and e, timeout=60)
    assert "stopped by the service: it ran past its time limit of 2 s (max_export_s" in failed.error
    assert time.monotonic() - started < 1.5 + 20 + 10  # the limit, then SIGKILL after the grace at most
    assert not list((tmp_path / "exports").glob("*.zip"))


def test_an_export_whose_process_dies_is_failed_not_rerun(supervised):
    store, supervise = supervised
    export = queued_export(store, formats=("state_dict", "torchscript", "onnx", "exported_program"))
    supervise()
    pid = wait_for(lambda: (e := store.get_export(export)).status == "running" and owner_pid(e), timeout=60)
    os.kill(pid, signal.SIGKILL)  # as the OOM killer would
    failed = wait_for(lambda: (e := store.get_export(export)).status == "failed" and e, timeout=30)
    assert "killed by SIGKILL" in failed.error and "out of memory" in failed.error
    time.sleep(1.5)  # a poll or more later, it is still failed: not started again
    assert store.get_export(export).status == "failed"
