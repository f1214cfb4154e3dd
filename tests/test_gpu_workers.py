"""GPU workers (`workers.gpus_per_worker`): the spec and the limits refuse what cannot run, naming
the field; Ray schedules the actors on GPU shares (Ray's logical GPUs on this CPU machine), hides
every GPU from an actor that asked for none, and refuses at once what its cluster cannot hold; the
CPU training path computes in float32, NCHW, as before. A CUDA machine also runs the GPU path."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from nas.data import ImageData
from nas.limits import Limits
from nas.proxies._training import Trainer, TrainRecipe, evaluate
from nas.search import run, submit
from nas.search._executor import gpu_slots
from nas.spec import SpecError, load_spec
from nas.store import Store

TESTS = Path(__file__).parent
PROBE = {"plugin": "gpu_probe:device_probe"}  # its scores say what CUDA_VISIBLE_DEVICES its worker has


def spec(**workers):
    return load_spec({"name": "gpu", "space": "metaformer-tiny", "input_shape": [3, 32, 32], "evaluator": PROBE,
                      "budget": {"trials": 4}, "workers": workers})  # fmt: skip


# ---- the spec and the limits ----------------------------------------------------------------------


def test_a_gpu_share_needs_ray_workers_and_is_a_fraction_or_whole_gpus():
    assert spec().workers.gpus_per_worker == 0 and spec(count=2, gpus_per_worker=0.25).workers.gpus_per_worker == 0.25
    with pytest.raises(SpecError, match=r"workers\.gpus_per_worker: .*count: 0.*set count >= 1"):
        spec(count=0, gpus_per_worker=0.5)
    with pytest.raises(SpecError, match=r"workers\.gpus_per_worker: 1\.5: .*whole GPUs"):
        spec(gpus_per_worker=1.5)
    with pytest.raises(SpecError, match=r"workers\.gpus_per_worker"):
        spec(gpus_per_worker=-1)
    assert spec(count=0).workers.gpus_per_worker == 0  # no GPU asked: in-process stays valid


def test_the_service_bounds_gpus_per_job_and_lists_the_bound(tmp_path):
    from fastapi.testclient import TestClient

    from nas.service import create_app

    store = Store(f"sqlite:///{tmp_path / 'nas.db'}")
    app = create_app(store, run_jobs=False, data_dir=tmp_path / "service", limits=Limits(max_workers=8, max_gpus=2))
    body = {**spec().model_dump(mode="json"), "evaluator": {"proxy": "synflow"}}  # no plug-in over HTTP
    with TestClient(app) as client:
        limits = client.get("/limits").json()
        over = client.post("/jobs", json={**body, "workers": {"count": 3, "gpus_per_worker": 1}})
        in_process = client.post("/jobs", json={**body, "workers": {"count": 0, "gpus_per_worker": 0.5}})
        within = client.post("/jobs", json={**body, "workers": {"count": 4, "gpus_per_worker": 0.5}})
    assert limits["max_gpus"] == 2
    assert over.status_code == 422, over.text
    assert [d["loc"] for d in over.json()["detail"]] == [["body", "workers", "gpus_per_worker"]]
    assert "3 is over the limit of 2 GPUs" in over.json()["detail"][0]["msg"]
    assert in_process.status_code == 422 and in_process.json()["detail"][0]["loc"][-1] == "gpus_per_worker"
    assert within.status_code == 201, within.text
    assert store.count_jobs() == 1
    assert Limits().max_gpus >= 1 and Limits.local().max_gpus is None  # `nas run`: the job's Ray decides
    assert Limits(max_gpus=0).violations(spec(gpus_per_worker=0.5))  # an operator may forbid GPUs
    # an omitted count would start one worker per CPU, each holding its share: the job must say how many
    assert [loc for loc, _ in Limits(max_gpus=2).violations(spec(count=None, gpus_per_worker=0.5))] == ["workers.count"]
    with pytest.raises(SpecError, match=r"workers\.gpus_per_worker: 0\.001: a share below 0\.01"):
        spec(gpus_per_worker=0.001)
    with pytest.raises(ValueError, match="max_gpus must be >= 0"):
        Limits(max_gpus=-1)


def test_gpu_slots_keep_a_fractional_share_on_one_gpu():
    nodes = [{"Alive": True, "Resources": {"CPU": 8, "GPU": 2}}, {"Alive": True, "Resources": {"CPU": 8}},
             {"Alive": False, "Resources": {"GPU": 4}}]  # fmt: skip
    assert gpu_slots(nodes, 0.5) == 4
    assert gpu_slots(nodes, 0.4) == 4  # two a GPU, not five over two
    assert gpu_slots(nodes, 1) == 2 and gpu_slots(nodes, 2) == 1 and gpu_slots(nodes, 3) == 0


# ---- scheduling on Ray's logical GPUs ---------------------------------------------------------------

SCHEDULE = """
import json, sys, time
import ray
from test_gpu_workers import spec
from nas.search._executor import RayExecutor
from nas.spec import SpecError
from search_spaces import get_space, sample_archs

ray.init(address="local", num_cpus=4, num_gpus=2, include_dashboard=False, log_to_driver=False)
arch = sample_archs(get_space("metaformer-tiny"), 1, seed=0)[0].to_json()
out = {}
for name, workers in {"shared": dict(cpus_per_worker=0.5, gpus_per_worker=0.5), "whole": dict(count=2, gpus_per_worker=1),
                      "none": dict(count=2)}.items():
    executor = RayExecutor(spec(**workers))
    tickets = [executor.submit(arch) for _ in range(executor.capacity)]
    done = []
    while len(done) < len(tickets):
        done += executor.wait(30)
    out[name] = [{"worker": o.worker, "failure": o.failure, **o.scores} for _, o in done]
    executor.shutdown()
start = time.monotonic()
try:
    RayExecutor(spec(count=3, gpus_per_worker=1))
except SpecError as err:
    out["over"] = {"error": str(err), "s": time.monotonic() - start}
print("RESULT " + json.dumps(out))
"""


@pytest.fixture(scope="module")
def scheduled():
    """What the actors saw on a Ray of 2 logical GPUs (its own, in a subprocess: the session's Ray
    has none)."""
    path = os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path}
    env.pop("RAY_ADDRESS", None)
    result = subprocess.run([sys.executable, "-c", SCHEDULE], env=env, capture_output=True, text=True, timeout=240)
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    assert result.returncode == 0 and lines, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads(lines[-1].removeprefix("RESULT "))


def gpu_of(worker: str) -> str:
    node, _, gpus = worker.partition("/gpu:")
    assert len(node) == 56, worker  # a Ray node id, then the GPUs Ray assigned
    return gpus


@pytest.mark.ray
def test_fractional_shares_pack_two_workers_a_gpu_and_bound_the_count(scheduled):
    shared = scheduled["shared"]
    assert not [o["failure"] for o in shared if o["failure"]]
    # the count left to Ray: 4 CPUs hold 8 workers of 0.5, 2 GPUs only 4
    assert len(shared) == 4
    assert sorted(gpu_of(o["worker"]) for o in shared) == ["0", "0", "1", "1"]
    # each actor sees exactly the GPU its worker string names (so torch's "cuda" is that one)
    assert all(o["cuda_visible"] == float(gpu_of(o["worker"])) and o["gpus_seen"] == 1 for o in shared)


@pytest.mark.ray
def test_whole_gpus_are_each_workers_own(scheduled):
    whole = scheduled["whole"]
    assert sorted(gpu_of(o["worker"]) for o in whole) == ["0", "1"]
    assert all(o["cuda_visible"] == float(gpu_of(o["worker"])) for o in whole)


@pytest.mark.ray
def test_workers_that_ask_for_no_gpu_see_none(scheduled):
    none = scheduled["none"]
    assert len(none) == 2 and not [o["failure"] for o in none if o["failure"]]
    assert all("/gpu" not in o["worker"] for o in none)  # a CPU worker's string is its node id, as before
    assert all(o["cuda_visible"] == -2 and o["gpus_seen"] == 0 for o in none)  # CUDA_VISIBLE_DEVICES == ""


@pytest.mark.ray
def test_more_gpus_than_the_cluster_holds_fail_at_once_naming_the_field(scheduled):
    over = scheduled["over"]
    assert over["error"].startswith("workers.gpus_per_worker: 3 workers x 1 GPUs asked, the Ray cluster has 2 GPUs")
    assert over["s"] < 5


@pytest.mark.ray
def test_a_gpu_job_on_a_cluster_without_gpus_fails_at_once(sqlite_url, ray_cluster):
    store = Store(sqlite_url)
    job = submit(store, spec(count=1, gpus_per_worker=1, address=ray_cluster))
    start = time.monotonic()
    with pytest.raises(SpecError, match="the Ray cluster has 0 GPUs"):
        run(store, job.id)
    assert time.monotonic() - start < 60  # not left waiting for a GPU that never comes
    failed = store.get_job(job.id)
    assert failed.status == "failed" and "workers.gpus_per_worker" in failed.error


# ---- training -----------------------------------------------------------------------------------


def tiny_data(n=96) -> ImageData:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, 16, 16), dtype=torch.uint8, generator=g)
    return ImageData("noise", images, torch.arange(n) % 4, num_classes=4, mean=(0.5,) * 3, std=(0.25,) * 3)


def tiny_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.GELU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(8, 4))  # fmt: skip


def trained(device: str) -> tuple[nn.Module, list[torch.dtype], list[bool]]:
    """A model trained 6 steps on ``device``, its outputs' dtypes and whether its inputs were NCHW-contiguous."""
    model = tiny_model().to(device)
    dtypes, nchw = [], []

    def seen(module, args, out):
        dtypes.append(out.dtype)
        nchw.append(args[0].is_contiguous())

    model[0].register_forward_hook(seen)
    Trainer(model, tiny_data(), TrainRecipe(steps=6, batch_size=16, resolution=16, warmup_steps=2, seed=3)).advance(6)
    return model, dtypes, nchw


def test_the_cpu_path_trains_in_float32_nchw_and_repeats_bit_for_bit():
    first, dtypes, nchw = trained("cpu")
    second, _, _ = trained("cpu")
    assert set(dtypes) == {torch.float32} and all(nchw)
    assert all(p.is_contiguous() for p in first.parameters())  # no channels-last on the CPU
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    assert first[0].weight.ne(tiny_model()[0].weight).any()  # it did train


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
def test_the_cuda_path_trains_in_bfloat16_channels_last():
    model, dtypes, nchw = trained("cuda")
    assert set(dtypes) == {torch.bfloat16} and not any(nchw)
    assert model[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert model[0].weight.dtype == torch.float32  # autocast: float32 master weights
    assert 0 <= evaluate(model, tiny_data(), resolution=16) <= 1
