"""`nas run | resume | cancel | jobs | pareto | show` on a real SQLite store (in-process evaluation;
the Ray paths are tests/test_search_ray.py)."""

import contextlib
import csv
import dataclasses
import io
import json
import re
import time

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
    out, err = capsys.readouterr()
    assert "resuming" not in out  # refused before it claims to resume
    assert "completed its budget of 25 trials: nothing to resume" in err and "--trials N" in err


@pytest.mark.parametrize("argv", [["jobs"], ["jobs", "1"], ["pareto", "1"], ["show", "1", "1"], ["cancel", "1"],
                                  ["resume", "1"], ["train", "1"], ["token", "list"]])  # fmt: skip
def test_read_commands_refuse_a_missing_sqlite_file_instead_of_creating_it(tmp_path, capsys, argv):
    path = tmp_path / "typo.db"
    assert main([*argv, "--db", f"sqlite:///{path}"]) == 2
    err = capsys.readouterr().err
    assert f"no such file {path}" in err and "nas run SPEC.yaml --db" in err
    assert not path.exists()


def test_where_refuses_equality_on_a_float_metric_and_keeps_it_for_counts(finished_job, capsys):
    db, _ = finished_job
    assert main(["pareto", "1", "--db", db, "--where", "latency_ms=2"]) == 2
    err = capsys.readouterr().err
    assert "latency_ms=2 asks for exact equality" in err and "'latency_ms<=2'" in err
    main(["pareto", "1", "--db", db, "--format", "json"])
    first = json.loads(capsys.readouterr().out)[0]
    assert main(["pareto", "1", "--db", db, "--format", "json", "--where", f"params={first['params']}"]) == 0
    assert first["id"] in [c["id"] for c in json.loads(capsys.readouterr().out)]


def test_show_top_limits_the_layer_table_whose_total_row_is_the_candidates_totals(finished_job, capsys):
    db, _ = finished_job
    main(["pareto", "1", "--db", db, "--format", "json"])
    best = json.loads(capsys.readouterr().out)[0]
    assert main(["show", "1", str(best["id"]), "--db", db, "--top", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("layer "))
    assert {"time us", "energy uJ", "static uJ", "compute uJ"} <= {h.strip() for h in lines[header].split("  ")}
    rows = lines[header + 2 :]
    assert len(rows) == 4 and "other layers" in rows[2] and rows[3].startswith("total per frame")
    total_us, total_uj = (float(v.replace(",", "")) for v in rows[3].split()[3:5])
    assert total_us == pytest.approx(best["latency_ms"] * 1e3, abs=0.01)
    assert total_uj == pytest.approx(best["energy_mj"] * 1e3, abs=0.001)
    assert main(["show", "1", str(best["id"]), "--db", db, "--top", "0"]) == 0
    assert "time us" not in capsys.readouterr().out  # --top 0: no layers at all
    assert main(["show", "1", str(best["id"]), "--db", db, "--top", "-1"]) == 2
    assert "--top -1: give a number of layers >= 0" in capsys.readouterr().err


def test_hw_compare_takes_the_job_positionally_lists_each_chip_once_in_plain_numbers(finished_job, capsys):
    db, _ = finished_job
    assert main(["hw", "compare", "1", "--db", db]) == 0
    out = capsys.readouterr().out
    summary = out.split("\n\n")[0].splitlines()[3:]
    names = [line.split("  ")[0].strip() for line in summary]
    assert names[0] == "metis-like (the job's)" and "metis-like" not in names[1:] and len(names) >= 3
    assert not re.search(r"\de[+-]\d", out), "scientific notation"  # 35,372 FPS, never 3.54e+04
    assert main(["hw", "compare", "--job", "1", "--db", db, "--json"]) == 0
    captured = capsys.readouterr()
    assert "--job is deprecated; give the job positionally: `nas hw compare 1`" in captured.err
    assert [a["accelerator"] for a in json.loads(captured.out)["accelerators"]][:1] == ["metis-like (the job's)"]


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


def test_a_bad_spec_names_the_field_and_the_nearest_valid_name(tmp_path, sqlite_url, capsys):
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump({**SPEC, "constraints": {"max_energy_mJ": 3}}))
    assert main(["run", str(path), "--db", sqlite_url]) == 2
    assert "constraints.max_energy_mJ: Extra inputs are not permitted; did you mean `max_energy_mj`?" in (
        capsys.readouterr().err
    )


def test_the_database_comes_from_the_environment(finished_job, monkeypatch, capsys):
    db, _ = finished_job
    monkeypatch.setenv("NAS_DB_URL", db)
    assert main(["jobs"]) == 0
    assert "cli" in capsys.readouterr().out


def test_the_progress_bars_show_counts_best_hypervolume_and_eta(finished_job, capsys):
    from nas.cli.progress import ProgressBar
    from nas.store import Store

    db, _ = finished_job
    store = Store(db)
    job = store.get_job(1)
    bar = ProgressBar(store, job)
    bar(job)
    best = store.pareto(1, limit=1)[0].metrics["accuracy"]
    assert "trials: 100%" in bar.line and "25/25" in bar.line and f"{job.n_complete} scored" in bar.line
    assert f"best accuracy {best:.4g}" in bar.line and f"HV {job.hypervolume:.4g}" in bar.line
    assert "trainings" not in bar.line  # the plug-in's job trains nothing
    bar.close()


def test_a_job_that_trains_has_a_trainings_bar_with_its_own_count_and_eta(finished_job, capsys):
    from nas.cli.progress import ProgressBar
    from nas.store import Store

    db, _ = finished_job
    store = Store(db)
    job = store.get_job(1)
    train = {"candidates": 40, "final": 3}
    trains = dataclasses.replace(
        job,
        spec={**job.spec, "evaluator": {"proxy": "synflow", "train": train}},
        train_final=3,
        n_trained=2,
        status="running",
    )
    assert trains.accuracy_kind == "predicted" and trains.train_final == 3
    bar = ProgressBar(store, trains)
    time.sleep(1.1)  # one training done a second later: about 40 seconds left at that rate
    bar(dataclasses.replace(trains, n_trained=3))
    trainings = bar.line.splitlines()[1]
    assert trainings.startswith("trainings:") and "3/43" in trainings
    remaining = trainings.split("<")[1].split(",")[0]  # tqdm's [elapsed<remaining, rate]
    assert remaining not in ("00:00", "?") and remaining.count(":") == 1
    bar(dataclasses.replace(trains, n_trained=41, status="completed"))  # the front's best were measured already
    assert "41/41" in bar.line.splitlines()[1]
    bar.close()


def test_a_score_only_job_calls_its_value_a_score_and_says_when_its_hypervolume_appears(finished_job, capsys):
    from nas.cli.format import hypervolume_text
    from nas.cli.progress import ProgressBar
    from nas.reference import WARMUP
    from nas.store import Store

    db, _ = finished_job
    store = Store(db)
    job = store.get_job(1)
    scored = dataclasses.replace(
        job, spec={**job.spec, "evaluator": {"proxy": "synflow", "train": {"candidates": 0, "final": 0}}},
        hypervolume=None, reference_point={**job.reference_point, "accuracy": None}, n_complete=4,
    )  # fmt: skip
    assert scored.accuracy_kind == "score"
    bar = ProgressBar(store, scored)
    bar(scored)
    assert "best proxy score" in bar.line and "best accuracy" not in bar.line
    assert f"HV appears after {WARMUP} scored candidates (4 so far)" in bar.line
    text = hypervolume_text(scored)
    assert text.startswith("hypervolume: none yet") and "accuracy has no natural floor (a proxy's score)" in text
    bar.close()
