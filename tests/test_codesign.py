"""Co-design and what-if across chips: a job that searches the chip with the network (stored,
queried, exported), a job's front re-priced on other chips, and a network swept over a chip grid,
from Python, the REST API and the CLI. Real SQLite stores, jobs run in process."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from hwmodels import area_mm2, chip_variant, load_accelerator
from nas.export import export_candidate
from nas.search import run, stored_report, submit
from nas.service import create_app
from nas.spec import SpecError, load_spec
from nas.store import Store
from nas.whatif import compare_job

NAS = shutil.which("nas") or str(Path(sys.executable).parent / "nas")
SEARCH = {"cores": [1, 2, 4], "array_cols": [256, 512], "l2_mib": [8, 32]}
SPEC = {
    "name": "codesign",
    "space": "metaformer-tiny",
    "input_shape": [3, 64, 64],
    "accelerator": {"base": "metis-like", "search": SEARCH},
    "objectives": ["accuracy", "latency_ms", "area_mm2"],
    "evaluator": {"plugin": "search_plugins:ToyEvaluator"},
    "constraints": {"max_area_mm2": 40},
    "budget": {"trials": 60},
    "workers": {"count": 0},
}


@pytest.fixture(scope="module")
def jobs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("codesign")
    store = Store(f"sqlite:///{tmp / 'nas.db'}")
    codesign = run(store, submit(store, load_spec(SPEC)).id)
    plain = run(store, submit(store, load_spec({**SPEC, "name": "plain", "accelerator": "metis-like",
                                                "objectives": ["accuracy", "latency_ms", "energy_mj"],
                                                "constraints": {}})).id)  # fmt: skip
    return store, codesign, plain, tmp


@pytest.mark.parametrize(
    ("accelerator", "field", "message"),
    [
        ({"search": {"cors": [1]}}, "accelerator", "cors: not a chip knob"),
        ({"search": {"cores": []}}, "accelerator", "cores: list 1 to 64 distinct choices"),
        ({"search": {}}, "accelerator.search", "at least 1 item"),
        (
            {"search": {"cores": list(range(1, 65)), "clock_mhz": list(range(100, 164)), "l2_mib": [8, 16]}},
            "accelerator",
            "over the limit",
        ),
    ],
)
def test_bad_chip_searches_name_their_field(accelerator, field, message):
    with pytest.raises(SpecError) as err:
        load_spec({**SPEC, "accelerator": accelerator})
    assert field in str(err.value) and message in str(err.value)


def test_a_bad_choice_or_base_fails_at_submission(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'nas.db'}")
    with pytest.raises(
        SpecError, match=r"accelerator.search.cores: 0 is not a valid choice \(cores: Input should be greater than 0\)"
    ):
        submit(store, load_spec({**SPEC, "accelerator": {"search": {"cores": [1, 0]}}}))
    with pytest.raises(SpecError, match=r"accelerator\.base: unknown accelerator 'nope'"):
        submit(store, load_spec({**SPEC, "accelerator": {"base": "nope", "search": {"cores": [1]}}}))
    assert store.list_jobs() == []


def test_a_codesign_job_searches_the_chip_with_the_network(jobs):
    store, job, _, _ = jobs
    assert job.status == "completed"
    done = store.candidates(job.id)
    base = load_accelerator("metis-like")
    for c in done:
        chip = c.hardware["chip"]
        assert set(chip) == set(SEARCH) and all(chip[k] in SEARCH[k] for k in SEARCH)
        assert c.metrics["area_mm2"] == pytest.approx(area_mm2(chip_variant(base, chip).chip))
        assert c.name.endswith("@" + ",".join(f"{k}={v}" for k, v in chip.items()))
        if c.status == "complete":  # priced again from the store: the same chip, the same figures
            assert stored_report(job, c.arch, c.hardware).latency_ms == pytest.approx(c.metrics["latency_ms"])
    assert {c.status for c in done if c.metrics["area_mm2"] > 40} == {"infeasible"}
    # the same network on two chips: two candidates, scored once
    by_arch: dict[str, list] = {}
    for c in sorted(done, key=lambda c: c.id):
        if c.status == "complete":
            by_arch.setdefault(c.arch, []).append(c)
    twins = [cs for cs in by_arch.values() if len(cs) > 1]
    assert twins, "60 trials over 12 chips revisit a network"
    for first, *others in twins:
        assert all(o.scores == first.scores and o.metrics["accuracy"] == first.metrics["accuracy"] for o in others)
        assert all(o.worker == "scores of the same network" for o in others)
    front = store.pareto(job.id, sort="area_mm2")
    assert front and all(c.metrics["area_mm2"] <= 40 for c in front)


def test_the_chosen_chip_goes_in_the_model_card(jobs, tmp_path):
    store, job, _, _ = jobs
    best = store.pareto(job.id, sort="accuracy", descending=True, limit=1)[0]
    card = export_candidate(job, best, tmp_path / "out", formats=("state_dict",), allow_untrained=True).card
    acc = card["accelerator"]
    assert acc["codesign"]["searched"] == best.hardware["chip"]
    assert (
        acc["chip"]
        == acc["codesign"]["config"]["name"]
        == chip_variant(load_accelerator(), best.hardware["chip"]).chip.name
    )
    assert acc["area_mm2"]["total"] == pytest.approx(best.metrics["area_mm2"])
    assert acc["requested"] == {"base": "metis-like", "search": SEARCH}


def test_compare_reprices_the_front_and_the_jobs_own_column_reproduces_it(jobs):
    store, _, plain, _ = jobs
    result = compare_job(store, plain.id, ["metis-m2-like", "imc-8core-1024"])
    own, m2, big = result["accelerators"]
    assert big["accelerator"] == "imc-8core-1024" and big["area_mm2"] > own["area_mm2"]
    assert own["accelerator"] == "metis-like (the job's)" and m2["accelerator"] == "metis-m2-like"
    stored = {c.id: c for c in store.pareto(plain.id)}
    assert {r["id"] for r in own["rows"]} == set(stored) and own["kept_from_job_front"] == len(stored)
    for r in own["rows"]:
        assert r["latency_ms"] == pytest.approx(stored[r["id"]].metrics["latency_ms"], rel=1e-9)
        assert r["on_front"]
    # one core instead of four: a quarter of the frames, the same latency
    for r, s in zip(m2["rows"], own["rows"], strict=True):
        assert r["throughput_fps"] < s["throughput_fps"] / 2
    # a co-design job's own column prices each candidate on its own chip
    codesign = jobs[1]
    own = compare_job(store, codesign.id, ["metis-like"])["accelerators"][0]
    assert own["accelerator"] == "each candidate's own chip (the job's)" and own["area_mm2"] is None
    stored = {c.id: c for c in store.pareto(codesign.id)}
    assert {r["id"]: r["latency_ms"] for r in own["rows"]} == pytest.approx(
        {i: c.metrics["latency_ms"] for i, c in stored.items()}, rel=1e-9
    )
    # on the fixed 71 mm2 chip, none of the co-design front meets its 40 mm2 bound
    fixed = compare_job(store, codesign.id, ["metis-like"])["accelerators"][1]
    assert fixed["feasible"] == 0 and all(r["violations"].get("max_area_mm2") for r in fixed["rows"])
    every = compare_job(store, plain.id, ["metis-like", "metis-m2-like"], every_candidate=True)
    assert [a["accelerator"] for a in every["accelerators"]] == ["metis-like (the job's)", "metis-m2-like"]
    assert len(every["accelerators"][1]["rows"]) == len(store.candidates(plain.id, status="complete"))


def test_compare_and_sweep_over_the_api(jobs):
    store, _, plain, tmp = jobs
    app = create_app(store, run_jobs=False, data_dir=tmp / "service", allow_plugins=("search_plugins:ToyEvaluator",))
    with TestClient(app) as client:
        body = client.get(f"/jobs/{plain.id}/compare", params={"accelerators": "metis-m2-like"}).json()
        assert [a["accelerator"] for a in body["accelerators"]] == ["metis-like (the job's)", "metis-m2-like"]
        bad = client.get(f"/jobs/{plain.id}/compare", params={"accelerators": "nope"})
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "accelerators"]
        assert client.get("/jobs/999/compare").status_code == 404
        sweep = client.post(
            "/hw/sweep", json={"preset": "poolformer_s12", "grid": {"cores": [1, 2], "l2_mib": [8, 32]}}
        )
        rows = sweep.json()["rows"]
        assert sweep.status_code == 200 and [(r["cores"], r["l2_mib"]) for r in rows] == [
            (1, 8),
            (1, 32),
            (2, 8),
            (2, 32),
        ]
        assert rows[0]["area_mm2"] < rows[1]["area_mm2"] and rows[2]["throughput_fps"] > rows[0]["throughput_fps"]
        for body, field in [
            ({"preset": "poolformer_s12", "grid": {"cors": [1]}}, "cors"),
            ({"grid": {"cores": [1]}}, "preset"),
            ({"preset": "nope", "grid": {"cores": [1]}}, "preset"),
        ]:
            answer = client.post("/hw/sweep", json=body)
            assert answer.status_code == 422 and field in json.dumps(answer.json()["detail"]), answer.json()


def test_compare_and_sweep_from_the_cli(jobs):
    store, _, plain, _ = jobs
    out = subprocess.run([NAS, "hw", "compare", "--job", str(plain.id), "--db", store.url, "--accelerators",
                          "metis-m2-like"], capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert "metis-like (the job's)" in out and "front on metis-m2-like" in out
    out = subprocess.run([NAS, "hw", "sweep", "--preset", "poolformer_s12", "--set", "cores=1,2", "--set",
                          "array_cols=256,512", "--json"], capture_output=True, text=True, check=True).stdout  # fmt: skip
    data = json.loads(out)
    assert len(data["rows"]) == 4 and data["rows"][0]["accelerator"] == "metis-like[cores=1,array_cols=256]"
    bad = subprocess.run(
        [NAS, "hw", "sweep", "--preset", "poolformer_s12", "--set", "cores"], capture_output=True, text=True
    )
    assert bad.returncode != 0 and "write KNOB=V1,V2" in bad.stderr


def test_the_worked_examples_report_reads_a_codesign_job(jobs):
    """benchmarks/codesign_example.py, run as its users run it, finds the completed job and reports it."""
    store, job, _, tmp = jobs
    spec = tmp / "codesign.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    script = Path(__file__).parents[1] / "benchmarks" / "codesign_example.py"
    result = subprocess.run(
        [sys.executable, str(script), "--db", f"sqlite:///{tmp / 'nas.db'}", "--spec", str(spec)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    text = result.stdout
    assert f"Job {job.id} `codesign`: {job.n_trials} trials" in text  # the stored job, not a new run
    front = store.pareto(job.id)
    assert f"{len(front)} on the front" in text
    assert all(f"| {c.id} | {c.name.split('@')[0]} |" in text for c in front)
    assert "`cores` | 4 |" in text and "(fixed)" in text
