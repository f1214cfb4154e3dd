"""The dashboard's plots in a real headless Chromium, served by `nas serve` over a real SQLite store:
error bars on predicted accuracies, axis labels with units, ticks at 1-2-5 steps inside the data,
the hypervolume drawn as steps with the reason it can fall, and a score-only job that calls its
score a score.

The jobs are written through the store as a finished search would leave them: networks sampled from
the shipped tiny space and priced by the chip model; their accuracies are the fixture's numbers (a
predictor's mean and spread), since what is under test is how the page shows them.
"""

import itertools
import math
import random

import pytest

from hwmodels import estimate, load_accelerator
from nas.spec import load_spec
from nas.store import CandidateIn, Store
from search_spaces import get_space, lower, sample_archs

pytest.importorskip("selenium")
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from test_service_live import SCREENSHOTS, Server, chromium

SHAPE = (3, 64, 64)
CHIP = "metis-like"
BUDGET = 20


def _write_job(store: Store, name: str, train: dict, accuracy, n: int, seed: int) -> int:
    """A completed job of ``n`` priced candidates; ``accuracy(i)`` gives (accuracy, std, measured)."""
    spec = load_spec({"name": name, "space": "metaformer-tiny", "input_shape": list(SHAPE), "accelerator": CHIP,
                      "objectives": ["accuracy", "latency_ms"], "evaluator": {"train": train},
                      "budget": {"trials": BUDGET}})  # fmt: skip
    reference = {"accuracy": 0.1 if spec.accuracy_kind() == "predicted" else None, "latency_ms": 50.0}
    job = store.create_job(name=name, tags=[], spec=spec.model_dump(mode="json"), accelerator={},
                           reference_point=reference)  # fmt: skip
    acc = load_accelerator(CHIP)
    for i, arch in enumerate(sample_archs(get_space("metaformer-tiny"), n, seed=seed)):
        report = estimate(lower(arch, SHAPE, num_classes=10), acc)
        value, std, measured = accuracy(i)
        # the store derives `accuracy` (nas.objectives.accuracy_objective): a score-only job's is its proxy score
        # INT8: measured a few tenths of a point under a measured FP32 accuracy, else a predicted drop
        int8 = ({"measured_accuracy_int8": measured - 0.003} if measured is not None
                else {"predicted_int8_drop": 0.004, "predicted_int8_drop_std": 0.002})  # fmt: skip
        kinds = ({"predicted_accuracy": value, "predicted_std": std, "measured_accuracy": measured, **int8}
                 if spec.accuracy_kind() == "predicted" else {"proxy_score": value})  # fmt: skip
        metrics = {**kinds, "latency_ms": report.latency_ms, "energy_mj": report.energy_mj,
                   "throughput_fps": report.throughput_fps, "params": report.params}  # fmt: skip
        store.record(job.id, i, candidate=CandidateIn(arch.arch_hash, arch.name, arch.to_json(), "complete",
                                                      metrics, True), values=None, constraints=None)  # fmt: skip
    store.finish(job.id, "completed")
    return job.id


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dashboard")
    store = Store(f"sqlite:///{tmp / 'nas.db'}")
    rng = random.Random(0)

    def predicted(i):  # every fourth trained (measured, no spread); the others predicted with one
        if i % 4 == 0:
            value = rng.uniform(0.6, 0.9)
            return value, None, value
        return rng.uniform(0.5, 0.85), rng.uniform(0.01, 0.05), None

    def score(i):  # a proxy's ranking score: no units, negative here
        return -rng.uniform(5, 15), None, None

    ids = {
        "predicted": _write_job(store, "predicted", {"candidates": 4, "final": 1}, predicted, 14, seed=4),
        "score": _write_job(store, "score-only", {"candidates": 0, "final": 0}, score, 6, seed=5),
    }
    store.close()
    server = Server(tmp)
    server.start()
    try:
        with chromium() as (driver, wait):
            yield server, driver, wait, ids
    finally:
        server.stop()


def _open(site, job_key):
    server, driver, wait, ids = site
    driver.get(f"{server.url}/ui/#/jobs/{ids[job_key]}")
    wait.until(ec.presence_of_element_located((By.ID, "pareto-plot")))
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#hv-plot, #hv-empty"))
    driver.save_screenshot(str(SCREENSHOTS / f"dashboard-{job_key}.png"))  # for a person to look at
    return driver


def _front(site, job_key):
    from nas.client import Client

    server, _, _, ids = site
    return Client(server.url).pareto(ids[job_key], limit=1000)


def _is_nice(ticks: list[float]) -> bool:
    steps = {round(b - a, 12) for a, b in itertools.pairwise(ticks)}
    if len(steps) != 1:
        return False
    step = steps.pop()
    mantissa = step / 10 ** math.floor(math.log10(step) + 1e-9)
    return any(math.isclose(mantissa, m) for m in (1, 2, 5))


def test_predicted_points_carry_error_bars_of_their_spread(site):
    driver = _open(site, "predicted")
    items = _front(site, "predicted")["items"]
    spread = {str(r["id"]): r["accuracy_std"] for r in items if r.get("measured_accuracy") is None}
    assert spread and len(spread) < len(items)  # the fixture's front has both kinds
    bars = driver.find_elements(By.CSS_SELECTOR, "#pareto-plot g.error-bar")
    assert {b.get_attribute("data-id") for b in bars} == set(spread)  # predicted points, and only they
    dots = {
        d.get_attribute("data-id"): d for d in driver.find_elements(By.CSS_SELECTOR, "#pareto-plot circle.front-point")
    }
    pixels_per_sd = []
    for bar in bars:
        line = bar.find_element(By.TAG_NAME, "line")  # the first line is the bar itself (accuracy on y)
        y1, y2 = float(line.get_attribute("y1")), float(line.get_attribute("y2"))
        cy = float(dots[bar.get_attribute("data-id")].get_attribute("cy"))
        assert y1 < cy < y2 and math.isclose(cy - y1, y2 - cy, rel_tol=1e-6)  # centred on its point
        pixels_per_sd.append((y2 - y1) / (2 * spread[bar.get_attribute("data-id")]))
    assert max(pixels_per_sd) == pytest.approx(min(pixels_per_sd), rel=1e-6)  # length is the sd on one scale
    measured = driver.find_elements(By.CSS_SELECTOR, "#pareto-plot circle.front-point.measured")
    assert len(measured) == len(items) - len(spread)


def test_axes_are_labelled_with_units_and_ticked_at_nice_values(site):
    driver = _open(site, "predicted")
    x = driver.find_element(By.CSS_SELECTOR, "#pareto-plot .x-label").text
    y = driver.find_element(By.CSS_SELECTOR, "#pareto-plot .y-label").text
    assert x == f"latency (ms, {CHIP} at {'x'.join(map(str, SHAPE))})"
    assert y.startswith("accuracy") and "0-1" in y and "predicted" in y
    for plot in ("pareto-plot", "hv-plot"):  # each label fits along its axis, none cut off
        box = driver.find_element(By.ID, plot).rect
        label = driver.find_element(By.CSS_SELECTOR, f"#{plot} .y-label").rect
        assert box["y"] <= label["y"] and label["y"] + label["height"] <= box["y"] + box["height"], plot
    for plot in ("pareto-plot", "hv-plot"):
        for axis in ("x-tick", "y-tick"):
            ticks = [float(t.get_attribute("data-value"))
                     for t in driver.find_elements(By.CSS_SELECTOR, f"#{plot} text.{axis}")]  # fmt: skip
            assert len(ticks) >= 3 and _is_nice(ticks), (plot, axis, ticks)
    for tick in driver.find_elements(By.CSS_SELECTOR, "#pareto-plot text.tick"):  # printed as the value it marks
        assert float(tick.text.replace(",", "")) == pytest.approx(float(tick.get_attribute("data-value")), abs=1e-9)
    trials = [
        float(t.get_attribute("data-value")) for t in driver.find_elements(By.CSS_SELECTOR, "#hv-plot text.x-tick")
    ]
    assert max(trials) <= BUDGET and all(t == int(t) for t in trials)  # never past the budget, whole trials
    assert f"budget {BUDGET}" in driver.find_element(By.CSS_SELECTOR, "#hv-plot .x-label").text


def test_the_hypervolume_is_a_step_function_that_says_why_it_can_fall(site):
    driver = _open(site, "predicted")
    d = driver.find_element(By.CSS_SELECTOR, "#hv-plot path").get_attribute("d").split()
    assert d[0].startswith("M") and len(d) > 2 and all(cmd[0] in "HV" for cmd in d[1:])  # no slopes
    driver.execute_script("document.getElementById('hv-plot').scrollIntoView()")
    driver.save_screenshot(str(SCREENSHOTS / "dashboard-hypervolume.png"))
    caption = driver.find_element(By.ID, "hv-caption").text
    assert "refit" in caption and "fall" in caption


def test_the_front_shows_int8_accuracy_beside_fp32_where_the_job_trains(site):
    items = {str(r["id"]): r for r in _front(site, "predicted")["items"]}
    driver = _open(site, "predicted")
    table = driver.find_element(By.ID, "front")
    headers = [th.text for th in table.find_elements(By.CSS_SELECTOR, "thead th")]
    assert "INT8 accuracy (0-1)" in headers
    column = headers.index("INT8 accuracy (0-1)")
    rows = table.find_elements(By.CSS_SELECTOR, "tbody tr")
    assert rows
    for row in rows:
        cells = [td.text for td in row.find_elements(By.TAG_NAME, "td")]
        r = items[cells[0]]
        if r["measured_accuracy_int8"] is not None:
            assert cells[column] == f"{r['accuracy_int8']:.4f} measured"
            assert r["int8_drop"] == pytest.approx(0.003)
        else:  # the FP32 accuracy less the predicted drop, their spreads added
            assert r["accuracy_int8"] == pytest.approx(r["accuracy"] - 0.004)
            assert cells[column] == f"{r['accuracy_int8']:.4f} ± {r['accuracy_int8_std']:.4f}"
    score = _open(site, "score").find_element(By.ID, "front")
    assert "INT8" not in score.text  # a job that trains nothing has no accuracy to quantize


def test_a_score_only_job_calls_its_score_a_score(site):
    driver = _open(site, "score")
    best = driver.find_element(By.CSS_SELECTOR, "[data-stat='best']").text
    assert "score" in best and "accuracy" not in best
    assert "proxy score" in driver.find_element(By.CSS_SELECTOR, "#pareto-plot .y-label").text
    assert not driver.find_elements(By.CSS_SELECTOR, "#pareto-plot g.error-bar")
    assert "(score)" in driver.find_element(By.ID, "front").text
    empty = driver.find_element(By.ID, "hv-empty").text  # 6 scored candidates: the reference is not set yet
    assert "proxy score" in empty and "appears" in empty
