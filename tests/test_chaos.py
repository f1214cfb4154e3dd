"""The chaos benchmark, short: while clients poll a real `nas serve` and its jobs run, the service
and the jobs' processes are killed (SIGKILL and SIGTERM) and the service started again; nothing
may be lost, recorded twice or left running, and clients see no error but a refused connection
while the service is down. The harness is tests/chaos_harness.py; the long run (>= 20 kills) is
`benchmarks/chaos.py`, docs/chaos.md."""

import pytest
from chaos_harness import run_chaos

pytestmark = pytest.mark.chaos


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_kills_lose_nothing(backend, request, tmp_path):
    db = request.getfixturevalue("postgres_url") if backend == "postgresql" else None
    report = run_chaos(db=db, workdir=tmp_path, kills=4, jobs=2, clients=6, trials=150, seed=1, finish_timeout_s=300)
    summary = "\n".join(f"{name}: {value}" for name, value in report.rows())
    assert sum(report.kills.values()) == 4, summary
    assert report.jobs_completed == 2, summary
    assert report.candidates_seen > 0 and report.candidates_lost == 0, summary
    assert report.recorded_twice == 0 and report.trials == 2 * 150, summary
    assert report.trials_left_running == 0 and report.processes_left == 0, summary
    assert report.requests > 100 and report.client_errors == [], summary + "\n" + "\n".join(report.client_errors[:5])
