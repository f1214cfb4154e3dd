"""The service as users run it: `nas serve` in its own process on a real SQLite store, jobs run by
its supervisor (the demo job on a local Ray), the Python client and `--server` CLI over HTTP, the
dashboard in a real headless Chromium (Debian's chromium + chromium-driver, through Selenium), and
the exported winner run by onnxruntime and torch.export in a Python that cannot import
this package.
"""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from nas.client import Client, ClientError
from nas.store import Store

TESTS = Path(__file__).parent
ROOT = TESTS.parent
SCREENSHOTS = ROOT / "tests" / "artifacts"  # the browser test's screenshots (git-ignored)
TOY = {
    "space": "metaformer-tiny",
    "input_shape": [3, 64, 64],
    "evaluator": {"plugin": "search_plugins:ToyEvaluator", "options": {"delay_s": 0.15}},
    "workers": {"count": 0},
}


class Server:
    def __init__(
        self,
        tmp: Path,
        allow_plugins: tuple[str, ...] = ("search_plugins:ToyEvaluator", "search_plugins:process_killer"),
    ) -> None:
        self.tmp, self.db, self.allow_plugins = tmp, f"sqlite:///{tmp / 'nas.db'}", allow_plugins
        self.proc: subprocess.Popen | None = None
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self, *extra: str) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH")) if p)}
        command = [sys.executable, "-m", "nas", "serve", "--port", str(self.port), "--db", self.db,
                   "--data-dir", str(self.tmp / "service"),
                   *(arg for p in self.allow_plugins for arg in ("--allow-plugin", p)), *extra]  # fmt: skip
        self.log = open(self.tmp / "serve.log", "ab")  # noqa: SIM115 - open for the server's life
        self.proc = subprocess.Popen(command, cwd=self.tmp, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                Client(self.url).health()
                return
            except ConnectionError:
                assert self.proc.poll() is None, (self.tmp / "serve.log").read_text()
                time.sleep(0.2)
        raise TimeoutError("nas serve did not answer within 60 s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # uvicorn's graceful stop: the supervisor interrupts its jobs
            self.proc.wait(timeout=60)
        self.log.close()


@pytest.fixture
def server(tmp_path):
    s = Server(tmp_path)
    s.start()
    yield s
    s.stop()


def wait_for(predicate, timeout: float = 120, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError("condition not reached")


def test_the_demo_job_over_http_watched_in_the_dashboard_and_its_winner_exported(server, tmp_path):
    from selenium.webdriver.common.by import By

    client = Client(server.url)
    assert "auth OFF" in (server.tmp / "serve.log").read_text()  # the embedded default says so
    with chromium() as (driver, wait):
        driver.get(f"{server.url}/")
        wait.until(lambda d: d.find_elements(By.ID, "no-jobs"))
        demo = yaml.safe_load((ROOT / "docs/examples/edge-classifier.yaml").read_text())
        small = {
            "candidates": 2,
            "final": 1,
            "recipe": {"epochs": 1, "images": 1000, "batch_size": 64, "test_images": 1000},
        }
        job = client.submit(
            demo, budget={"trials": 24, "wall_time_s": 240}, evaluator={**demo["evaluator"], "train": small}
        )
        assert job["status"] == "queued" and job["tenant"] is None

        # the open page shows the job within a poll, then follows it to the end without a reload
        def shown_status(d):
            cells = d.find_elements(By.CSS_SELECTOR, f"#jobs tr[data-job='{job['id']}'] [data-status]")
            return cells[0].get_attribute("data-status") if cells else None

        first = wait.until(shown_status)
        assert first in ("queued", "running")
        running = wait_for(lambda: (j := client.job(job["id"]))["status"] == "running" and j)
        assert running["started_at"]
        for _ in range(5):  # while the search runs, the API answers
            assert client.jobs()["total"] == 1 and client.health()["jobs_running"] == [job["id"]]
        done = client.wait(job["id"], timeout=300)
        assert done["status"] == "completed", done["error"]
        assert done["progress"]["trials"] == 24 and done["progress"]["front"] >= 1
        wait.until(lambda d: shown_status(d) == "completed")
        driver.save_screenshot(str(SCREENSHOTS / "dashboard-jobs.png"))

        front = client.pareto(job["id"], limit=1000)["items"]
        assert len(front) == done["progress"]["front"]
        browse_job(driver, wait, server.url, done, front)

    # the winner: the most accurate candidate at <= 1.25 ms (800 FPS), downloaded and run elsewhere
    record = client.export(job["id"], where="latency_ms<=1.25", out=tmp_path / "winner")
    assert record["status"] == "complete"  # run by the supervisor in a process of its own, which logged it:
    assert (server.tmp / "service" / "logs" / f"export-{record['id']}.log").is_file()
    winner = Path(record["path"])
    card = json.loads((winner / "model_card.json").read_text())
    assert card["candidate"]["id"] == record["candidate_id"] and card["metrics"]["latency_ms"] <= 1.25
    # the front's best was measured at the job's end: its trained weights ship, with the accuracy's provenance
    assert card["accuracy"]["kind"] == "measured" and card["weights"].startswith("trained by the job")
    assert card["accuracy"]["value"] == card["metrics"]["measured_accuracy"]
    if "weights depend on the input size" in card["input"]["size"]:  # a spatial MLP's, a clamped window's:
        r = card["accuracy"]["recipe"]["resolution"]  # exported (and re-priced) where they were trained
        assert card["input"]["exported_at"] == [3, r, r] and card["input"]["size"].startswith(f"fixed at {r}x{r}")
    else:
        assert card["input"]["exported_at"] == card["front"]["input_shape"]  # the network the front priced
    outputs = run_without_our_package(winner)
    assert outputs["onnx"].shape == (3, 10)
    np.testing.assert_allclose(outputs["onnx"], outputs["exported_program"], atol=1e-4)
    # and the state_dict in our builder gives the same logits
    import torch

    from search_spaces import ArchConfig, build_model

    size = tuple(card["input"]["exported_at"][1:])
    net = build_model(ArchConfig.from_json((winner / "arch.json").read_text()), num_classes=10, img_size=size)
    net.load_state_dict(torch.load(winner / "state_dict.pt", weights_only=True))
    with torch.no_grad():
        ours = net.eval()(torch.from_numpy(outputs["input"])).numpy()
    np.testing.assert_allclose(ours, outputs["onnx"], atol=1e-4)


@contextlib.contextmanager
def chromium():
    """Debian's headless Chromium through its chromedriver; yields the driver and a 60 s wait."""
    from selenium import webdriver
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.chrome.service import Service as ChromeService
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1400"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=ChromeService(shutil.which("chromedriver")))
    SCREENSHOTS.mkdir(exist_ok=True)
    try:
        yield driver, WebDriverWait(driver, 60, ignored_exceptions=[StaleElementReferenceException])
    finally:
        driver.quit()


def browse_job(driver, wait, url: str, job: dict, front: list[dict]) -> None:
    """From the job list to the job's page (plot, counts, axes) to a candidate's page (layers, export)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    def renders():
        return int(driver.find_element(By.TAG_NAME, "body").get_attribute("data-renders") or 0)

    driver.find_element(By.CSS_SELECTOR, f"#jobs tr[data-job='{job['id']}'] a").click()
    wait.until(ec.presence_of_element_located((By.ID, "pareto-plot")))
    points = driver.find_elements(By.CSS_SELECTOR, "#pareto-plot circle.front-point")
    assert len(points) == job["progress"]["front"] == len(front)
    assert {p.get_attribute("data-id") for p in points} == {str(c["id"]) for c in front}
    stat = driver.find_element(By.CSS_SELECTOR, "[data-stat='infeasible'] b").text
    assert stat == str(job["progress"]["infeasible"])
    assert driver.find_elements(By.CSS_SELECTOR, "#hv-plot path")  # the hypervolume history is drawn
    # accuracy in units: the axis names its dataset, the predictor's held-out errors are shown, measured points ringed
    assert "accuracy (top-1 on fashion-mnist" in driver.find_element(By.ID, "pareto-plot").text
    assert "leave-one-out" in driver.find_element(By.ID, "calibration").text
    assert driver.find_elements(By.CSS_SELECTOR, "#pareto-plot circle.front-point.measured")
    assert "measured" in driver.find_element(By.ID, "front").text
    # another pair of axes: the same points, moved
    before, rendered = {p.get_attribute("data-id"): p.get_attribute("cx") for p in points}, renders()
    driver.find_element(By.CSS_SELECTOR, "#x-axis option[value='energy_mj']").click()
    wait.until(lambda d: renders() > rendered)
    points = driver.find_elements(By.CSS_SELECTOR, "#pareto-plot circle.front-point")
    assert driver.find_element(By.CSS_SELECTOR, "#x-axis").get_attribute("value") == "energy_mj"
    after = {p.get_attribute("data-id"): p.get_attribute("cx") for p in points}
    # two points in the same order on both axes sit where they sat (each axis spans its own min to max)
    same_order = [c["id"] for c in sorted(front, key=lambda c: c["latency_ms"])] == [
        c["id"] for c in sorted(front, key=lambda c: c["energy_mj"])
    ]
    assert after.keys() == before.keys() and (after != before or len(front) == 1 or (len(front) == 2 and same_order))
    driver.save_screenshot(str(SCREENSHOTS / "dashboard-job.png"))

    target = points[0].get_attribute("data-id")
    driver.execute_script("arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}))", points[0])
    wait.until(ec.presence_of_element_located((By.ID, "layer-bars")))
    assert driver.current_url.endswith(f"/candidates/{target}")
    bars = driver.find_elements(By.CSS_SELECTOR, "#layer-bars g.layer")
    detail = Client(url).candidate(job["id"], target)
    assert len(bars) == len(detail["layers"]) and driver.find_elements(By.CSS_SELECTOR, "#stages tbody tr")
    assert len(driver.find_elements(By.CSS_SELECTOR, "#units tbody tr")) == len(detail["hardware"]["per_unit"])
    driver.find_element(By.ID, "export").click()  # queued, run by the supervisor; the page polls its card
    link = WebDriverWait(driver, 120).until(ec.presence_of_element_located((By.ID, "export-link")))
    assert "/exports/" in link.get_attribute("href")
    assert driver.find_element(By.ID, "export-result").text.startswith("ready: ")
    driver.save_screenshot(str(SCREENSHOTS / "dashboard-candidate.png"))

    # what-if across chips: the job's front re-priced on every shipped accelerator
    driver.get(f"{url}/ui/#/jobs/{job['id']}/compare")
    wait.until(ec.presence_of_element_located((By.ID, "compare")))
    rows = driver.find_elements(By.CSS_SELECTOR, "#compare tbody tr")
    expected = Client(url).compare(job["id"])["accelerators"]
    assert len(rows) == len(expected) and "(the job's)" in rows[0].text
    assert [r.find_elements(By.TAG_NAME, "td")[3].text for r in rows] == [str(a["front"]) for a in expected]
    driver.save_screenshot(str(SCREENSHOTS / "dashboard-compare.png"))


BLOCKER = """
import importlib.abc, json, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("nas", "search_spaces", "hwmodels", "timm"):
            raise ImportError(f"{name} is blocked: the export must run without it")
sys.meta_path.insert(0, Block())
import numpy as np, onnxruntime, torch
folder = sys.argv[1]
shape = json.load(open(f"{folder}/model_card.json"))["input"]["exported_at"]  # the card says what it takes
x = np.random.default_rng(0).standard_normal((3, *shape)).astype(np.float32)
onnx = onnxruntime.InferenceSession(f"{folder}/model.onnx").run(None, {"image": x})[0]
with torch.no_grad():
    pt2 = torch.export.load(f"{folder}/model.pt2").module()(torch.from_numpy(x)).numpy()
np.savez(f"{folder}/outputs.npz", input=x, onnx=onnx, exported_program=pt2)
"""


def run_without_our_package(folder: Path) -> dict[str, np.ndarray]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run([sys.executable, "-c", BLOCKER, str(folder)], check=True, cwd="/", env=env, timeout=120)
    with np.load(folder / "outputs.npz") as data:
        return dict(data)


def test_two_jobs_run_at_once_and_a_restarted_service_resumes_them(server):
    client = Client(server.url)
    # long enough that neither finishes while the service shuts down on a loaded machine
    ids = [client.submit({**TOY, "name": f"toy-{i}", "budget": {"trials": 150}})["id"] for i in range(2)]
    wait_for(lambda: all(client.job(i)["status"] == "running" for i in ids), timeout=60)
    try:  # two job processes starting at once on a 2-core machine that the rest of the suite keeps busy
        wait_for(lambda: all(client.job(i)["progress"]["trials"] >= 3 for i in ids), timeout=120)
    except TimeoutError:
        logs = {i: (server.tmp / "service" / "logs" / f"job-{i}.log") for i in ids}
        raise AssertionError({i: (client.job(i)["progress"], p.read_text()[-2000:] if p.is_file() else "no log")
                              for i, p in logs.items()}) from None  # fmt: skip
    server.stop()  # SIGTERM: the jobs stop and record that they were interrupted
    store = Store(server.db)
    assert [store.get_job(i).status for i in ids] == ["interrupted", "interrupted"]
    partial = [store.get_job(i).n_trials for i in ids]
    assert all(0 < n < 150 for n in partial)

    server.start()
    for i in ids:
        job = client.wait(i, timeout=180)
        assert job["status"] == "completed" and job["progress"]["trials"] == 150
        assert len(store.trials(i)) == 150  # every trial once: nothing lost or counted twice


def test_cancel_resume_and_the_cli_through_the_service(server, tmp_path, capsys):
    from nas.cli import main

    client = Client(server.url)
    job_id = client.submit({**TOY, "name": "cancel-me", "budget": {"trials": 400}})["id"]
    wait_for(lambda: client.job(job_id)["progress"]["trials"] >= 2, timeout=60)
    client.cancel(job_id)
    cancelled = wait_for(lambda: (j := client.job(job_id))["status"] == "cancelled" and j, timeout=30)
    assert cancelled["progress"]["trials"] < 400
    resumed = client.resume(job_id)
    assert resumed["status"] in ("queued", "running")
    wait_for(lambda: client.job(job_id)["progress"]["trials"] > cancelled["progress"]["trials"], timeout=60)
    client.cancel(job_id)
    wait_for(lambda: client.job(job_id)["status"] == "cancelled", timeout=30)

    assert main(["jobs", str(job_id), "--server", server.url]) == 0
    assert json.loads(capsys.readouterr().out)["id"] == job_id
    assert main(["export", str(job_id), "-o", str(tmp_path / "out"), "--format", "onnx", "--allow-untrained",
                 "--server", server.url]) == 0  # fmt: skip
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["README.md", "arch.json", "model.onnx",
                                                                      "model_card.json"]  # fmt: skip
    capsys.readouterr()
    assert main(["jobs", "999", "--server", server.url]) == 2
    assert "404" in capsys.readouterr().err
    with pytest.raises(ClientError) as err:
        client.submit({**TOY, "budget": {"trials": -1}})
    assert err.value.status == 422 and "budget.trials" in str(err.value)


def test_a_job_whose_process_keeps_dying_is_failed_not_restarted_forever(server):
    client = Client(server.url)
    spec = {**TOY, "name": "doomed", "budget": {"trials": 5}, "evaluator": {"plugin": "search_plugins:process_killer"}}
    job = client.wait(client.submit(spec)["id"], timeout=120)
    assert job["status"] == "failed" and "exited with 3 3 times" in job["error"]
    assert "the last lines of" in job["error"] and "resuming at 0 trials" in job["error"]  # its log's tail


def test_two_supervisors_on_one_database_run_a_job_once(tmp_path, monkeypatch):
    from nas.search import submit
    from nas.service import JobSupervisor
    from nas.spec import load_spec

    monkeypatch.setenv("PYTHONPATH", str(TESTS))  # the jobs' processes import the toy evaluator
    db = f"sqlite:///{tmp_path / 'nas.db'}"
    store = Store(db)
    job = submit(store, load_spec({**TOY, "name": "shared", "budget": {"trials": 20}}), managed=True)
    supervisors = [JobSupervisor(Store(db), log_dir=tmp_path / name, poll_s=0.2) for name in ("a", "b")]
    for s in supervisors:
        s.start()
    try:
        wait_for(lambda: store.get_job(job.id).status not in ("queued", "running"), timeout=120)
    finally:
        for s in supervisors:
            s.stop()
    done = store.get_job(job.id)
    assert done.status == "completed", done.error
    assert done.n_trials == len(store.trials(job.id)) == 20


def test_auth_on_at_start_says_so_and_wants_tokens(tmp_path):
    s = Server(tmp_path)
    token, _ = Store(s.db).create_token("team-a")
    s.start("--auth")
    try:
        assert "auth on" in (tmp_path / "serve.log").read_text()
        with pytest.raises(ClientError) as err:
            Client(s.url).jobs()
        assert err.value.status == 401
        assert Client(s.url, token=token).jobs()["total"] == 0
    finally:
        s.stop()
