"""`nas run | resume | cancel | jobs | pareto | show` on a real SQLite store (in-process evaluation;
the Ray paths are tests/test_search_ray.py)."""

import contextlib
import csv
import io
import json

import pytest
import yaml

from nas.cli import main

SPEC = {
    "name": "cli",
    "space": "metaformer-tiny",
    "input_shape": [3, 64, 64],
    "evaluator": {"plugin": "search_plugins:ToyEvaluator"},
    "constraints": {"max_params": 2_000_000},
    "budget": {"trials": 25},
    "workers": {"count": 0},
}


@pytest.fixture(scope="module")
def finished_job(tmp_path_factory):
    """One job for the module's read-only commands: (database URL, what `nas run` printed)."""
    tmp = tmp_path_factory.mktemp("cli")
    path, db = tmp / "job.yaml", f"sqlite:///{tmp / 'nas.db'}"
    path.write_text(yaml.safe_dump(SPEC))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["run", str(path), "--db", db, "--quiet"]) == 0
    return db, out.getvalue()


def test_run_prints_the_job_and_its_pareto_front(finished_job):
    _, out = finished_job
    assert out.startswith("job 1 (cli)") and "job 1: completed after 25 trials" in out
    assert "Pareto front" in out and "`nas show 1 ID`" in out


def test_jobs_lists_and_details(finished_job, capsys):
    db, _ = finished_job
    assert main(["jobs", "--db", db]) == 0
    listing = capsys.readouterr().out
    assert "cli" in listing and "completed" in listing and "25/25" in listing
    assert main(["jobs", "1", "--db", db, "--json"]) == 0
    detail = json.loads(capsys.readouterr().out)
    assert detail["n_trials"] == 25 and detail["hypervolume_history"]
    assert detail["hypervolume"] == detail["hypervolume_history"][-1]["hypervolume"]


def test_pareto_formats_filters_and_sorts(finished_job, capsys):
    db, _ = finished_job
    assert main(["pareto", "1", "--db", db, "--format", "json"]) == 0
    front = json.loads(capsys.readouterr().out)
    assert front and all(c["params"] <= 2_000_000 for c in front)
    assert [c["accuracy"] for c in front] == sorted((c["accuracy"] for c in front), reverse=True)
    bound = sorted(c["latency_ms"] for c in front)[len(front) // 2]
    assert (
        main(["pareto", "1", "--db", db, "--format", "csv", "--where", f"latency_ms<{bound}", "--sort", "energy_mj"])
        == 0
    )
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert rows and all(float(r["latency_ms"]) < bound for r in rows)
    assert [float(r["energy_mj"]) for r in rows] == sorted(float(r["energy_mj"]) for r in rows)
    assert json.loads(rows[0]["arch"])["stages"]
    assert main(["pareto", "1", "--db", db, "--limit", "1"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:2] == ["id", "name"] and len(table) == 3


def test_show_prints_metrics_and_the_per_layer_table(finished_job, capsys):
    db, _ = finished_job
    main(["pareto", "1", "--db", db, "--format", "json"])
    best = json.loads(capsys.readouterr().out)[0]
    assert main(["show", "1", best["arch_hash"][:10], "--db", db]) == 0
    out = capsys.readouterr().out
    assert f"candidate {best['id']} of job 1" in out and "on the Pareto front" in out
    assert "stem.conv" in out and "time us" in out
    assert main(["show", "1", str(best["id"]), "--db", db, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["layers"] and sum(row["time_us"] for row in data["layers"]) > 0


def test_cancel_and_resume_of_a_finished_job(finished_job, capsys):
    db, _ = finished_job
    assert main(["cancel", "1", "--db", db]) == 0
    assert "already completed" in capsys.readouterr().out
    assert main(["resume", "1", "--db", db]) == 2
    assert "completed its budget" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["jobs", "7"], "job 7 is not in"),
        (["pareto", "1", "--where", "fps>3"], "unknown metric 'fps'"),
        (["show", "1", "zzz"], "candidate 'zzz' is not among its candidates"),
        (["pareto", "1", "--sort", "nope"], "sort: unknown metric"),
        (
            ["train", "1", "--top", "2"],
            "job 1 has no training recipe (its accuracy is what the job's plug-in evaluator returns)",
        ),
    ],
)
def test_errors_name_the_fix_and_exit_2(finished_job, capsys, args, message):
    db, _ = finished_job
    assert main([*args, "--db", db]) == 2
    assert message in capsys.readouterr().err


def test_a_bad_spec_names_the_field(tmp_path, sqlite_url, capsys):
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump({**SPEC, "budget": {"trails": 3}}))
    assert main(["run", str(path), "--db", sqlite_url]) == 2
    assert "budget.trails: Extra inputs are not permitted" in capsys.readouterr().err


def test_the_database_comes_from_the_environment(finished_job, monkeypatch, capsys):
    db, _ = finished_job
    monkeypatch.setenv("NAS_DB_URL", db)
    assert main(["jobs"]) == 0
    assert "cli" in capsys.readouterr().out


def test_the_progress_line_shows_counts_best_hypervolume_and_eta(finished_job, capsys):
    from nas.cli.progress import ProgressBar
    from nas.store import Store

    db, _ = finished_job
    store = Store(db)
    job = store.get_job(1)
    bar = ProgressBar(store, job)
    bar(job)
    best = store.pareto(1, limit=1)[0].metrics["accuracy"]
    assert f"25/25 trials: {job.n_complete} scored" in bar.line
    assert f"best accuracy {best:.4g}" in bar.line and f"HV {job.hypervolume:.4g}" in bar.line
