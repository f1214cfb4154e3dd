"""What one tenant may make the server do (issue 20): a real `nas serve --auth` with two tenants,
sent the exact requests an attacker holding an ordinary token sent. Each test is one finding; the
threat model is docs/service.md's.

The server's working directory holds its SQLite database, a file with a token in it, a `.env`, a
YAML file and a FIFO: a request that made the server open a name as a file would read a secret
(and answer with it), or hang on the FIFO, or, on the database, drop the locks that keep its WAL
alive (SQLite's POSIX-lock hazard).
"""

import json
import os
from pathlib import Path

import httpx
import pytest
from test_service_live import Server, wait_for

from nas.client import Client
from nas.store import Store

SECRET = "tok_0123456789abcdefghijklmnopqrstuvwxyzABCDEF"
TOY = {
    "space": "metaformer-tiny",
    "input_shape": [3, 32, 32],
    "evaluator": {"plugin": "search_plugins:ToyEvaluator"},
    "budget": {"trials": 4},
    "workers": {"count": 0},
}
PLUGINS = ("search_plugins:ToyEvaluator", "search_plugins:pid_recorder")
FILES = {"tokens.txt": f"team-b: {SECRET}\n", ".env": f"NAS_TOKEN={SECRET}\n", "conf.yaml": f"token: {SECRET}\n"}
NAMES = ["nas.db", "nas.db-wal", "tokens.txt", ".env", "conf.yaml", "trap", "../nas.db", "/etc/passwd", "x.yml"]


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("security")
    for name, text in FILES.items():
        (tmp / name).write_text(text)
    os.mkfifo(tmp / "trap")  # opening it for reading would block the request
    roots = tmp / "data"
    for tenant in ("team-a", "team-b"):
        (roots / tenant / "set").mkdir(parents=True)
    (roots / "team-a" / "escape").symlink_to(roots / "team-b")
    server = Server(tmp, allow_plugins=PLUGINS)
    store = Store(server.db)
    tokens = {t: store.create_token(t)[0] for t in ("team-a", "team-b")}
    server.start("--auth", "--data-root", str(roots))
    http = {t: httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {k}"}, timeout=60)
            for t, k in tokens.items()}  # fmt: skip
    first = Client(server.url, token=tokens["team-a"]).submit({**TOY, "name": "before"})
    yield {"server": server, "store": store, "tokens": tokens, "http": http, "tmp": tmp, "first": first["id"],
           "roots": roots}  # fmt: skip
    for client in http.values():
        client.close()
    server.stop()


def refused(response: httpx.Response, *loc: str) -> list[dict]:
    """The 422's entries for ``loc`` (there must be one), none of which carries a secret."""
    assert response.status_code == 422, response.text
    assert SECRET[:12] not in response.text
    detail = response.json()["detail"]
    found = [d for d in detail if d["loc"][1 : 1 + len(loc)] == list(loc)]
    assert found, detail
    return found


def post_job(live, tenant: str, spec: dict) -> httpx.Response:
    return live["http"][tenant].post("/jobs", json=spec)


# ---- 1 and 2: names, never paths ------------------------------------------------------------------


def test_a_chip_name_is_never_opened_and_the_database_outlives_the_request(live):
    """Critical (finding 1): `/hw/sweep` with base "nas.db" opened the database file, and the next
    job process removed its WAL under the running server; jobs and tokens were lost. Finding 2: the
    same field echoed other files' contents and told which files exist."""
    b = live["http"]["team-b"]
    answers = {}
    for name in NAMES:
        answers[name] = refused(b.post("/hw/sweep", json={"preset": "poolformer_s12", "base": name, "grid": {}}),
                                "base")[0]["msg"]  # fmt: skip
        compare = live["http"]["team-a"].get(f"/jobs/{live['first']}/compare", params={"accelerators": name})
        refused(compare, "accelerators")
    # an existing file and a missing one answer alike: no oracle for what the directory holds
    assert answers["tokens.txt"].replace("tokens.txt", "X") == answers["x.yml"].replace("x.yml", "X")
    # the database is whole: the first job completes, another runs after the requests, a new token works
    a = Client(live["server"].url, token=live["tokens"]["team-a"])
    assert a.wait(live["first"], timeout=180)["status"] == "completed"
    assert (live["tmp"] / "nas.db-wal").exists()
    after = a.submit({**TOY, "name": "after"})
    assert a.wait(after["id"], timeout=180)["status"] == "completed"
    token, _ = live["store"].create_token("team-c")
    assert Client(live["server"].url, token=token).jobs()["total"] == 0
    live["server"].stop()  # and after a restart every job and token is still there
    live["server"].start("--auth", "--data-root", str(live["roots"]))
    assert {j["name"] for j in a.jobs()["items"]} >= {"before", "after"}
    assert Client(live["server"].url, token=token).jobs()["total"] == 0


@pytest.mark.parametrize(
    ("override", "loc"),
    [
        ({"space": "tokens.txt"}, ("space",)),
        ({"space": "trap"}, ("space",)),
        ({"accelerator": "conf.yaml"}, ("accelerator",)),
        ({"accelerator": {"base": ".env", "search": {"cores": [1, 2]}}}, ("accelerator", "base")),
        ({"evaluator": {"proxy": "../../etc/passwd"}}, ("evaluator", "proxy")),
        ({"evaluator": {"proxy": "synflow", "data": "/etc"}}, ("evaluator", "data")),
        ({"evaluator": {"proxy": "synflow", "data": "../team-b/set"}}, ("evaluator", "data")),
        ({"evaluator": {"proxy": "synflow", "data": "escape/set"}}, ("evaluator", "data")),  # a symlink out
        ({"evaluator": {"proxy": "synflow", "data_dir": "/usr/share/datasets"}}, ("evaluator", "data_dir")),
    ],
    ids=[
        "space-file",
        "space-fifo",
        "chip-file",
        "chip-base",
        "proxy-path",
        "data-etc",
        "data-other-tenant",
        "data-symlink",
        "data-dir",
    ],
)
def test_specs_name_registered_things_and_data_under_the_tenants_root(live, override, loc):
    before = live["store"].count_jobs()
    answer = post_job(live, "team-a", {**TOY, **override})
    msg = refused(answer, *loc)[0]["msg"]
    assert "images" not in msg and "exist" not in msg and "passwd:" not in msg  # nothing of what the server holds
    assert live["store"].count_jobs() == before


def test_a_data_folder_under_the_tenants_root_is_accepted_and_resolved_there(live):
    spec = {**TOY, "evaluator": {"proxy": "synflow", "data": "set"}, "budget": {"trials": 1}}
    created = post_job(live, "team-a", spec)
    assert created.status_code == 201, created.text
    stored = live["store"].get_job(created.json()["id"]).spec["evaluator"]["data"]
    assert Path(stored) == (live["roots"] / "team-a" / "set").resolve()
    assert created.json()["spec"]["evaluator"]["data"] == "…/set"  # the tenant sees no server path
    live["http"]["team-a"].post(f"/jobs/{created.json()['id']}/cancel")


# ---- 3: plug-ins by exact entry, built in the job's process ----------------------------------------


@pytest.mark.parametrize(
    "plugin",
    ["search_plugins_evil.x:y", "search_plugins:json.codecs.builtins.open", "builtins:__import__", "os:system",
     "search_plugins:ToyEvaluator.__init__", "search_plugins:evaluations"],
)  # fmt: skip
def test_only_the_operators_exact_plugins_may_be_named(live, plugin):
    target = live["tmp"] / "created-by-a-plugin"
    answer = post_job(live, "team-a", {**TOY, "evaluator": {"plugin": plugin, "options": {"file": str(target),
                                                                                           "mode": "w"}}})  # fmt: skip
    refused(answer, "evaluator", "plugin")
    assert not target.exists()


def test_an_allowed_plugin_is_built_by_the_jobs_process_not_the_servers(live):
    pids = live["tmp"] / "built-by"
    spec = {**TOY, "evaluator": {"plugin": "search_plugins:pid_recorder", "options": {"path": str(pids)}}}
    created = post_job(live, "team-a", spec)
    assert created.status_code == 201, created.text
    a = Client(live["server"].url, token=live["tokens"]["team-a"])
    assert a.wait(created.json()["id"], timeout=180)["status"] == "completed"
    builders = {int(p) for p in pids.read_text().split()}
    assert builders and live["server"].proc.pid not in builders


# ---- 4: the operator's cluster --------------------------------------------------------------------


def test_a_tenant_cannot_point_a_job_at_a_ray_cluster(live):
    before = live["store"].count_jobs()
    answer = post_job(live, "team-a", {**TOY, "workers": {"count": 1, "address": "127.0.0.1:8899"}})
    assert "--allow-ray-address" in refused(answer, "workers", "address")[0]["msg"]
    assert live["store"].count_jobs() == before


# ---- 5: bounded work ------------------------------------------------------------------------------


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _pooling(depth: int, stages: int = 1) -> dict:
    return {"stages": [{"mixer": "pooling", "depth": depth, "dim": 64}] * stages}


def test_requests_that_would_cost_unbounded_work_are_refused_before_any(live):
    """Finding 5, each request that took seconds to minutes of server CPU or gigabytes of its memory."""
    b = live["http"]["team-b"]
    pid = live["server"].proc.pid
    rss_before = _rss_mib(pid)
    deep = {"name": "deep", "hierarchical": {"num_stages": [1], "stages": [{"mixers": ["pooling"], "depth": [3000],
                                                                           "dim": [64]}]}}  # fmt: skip
    refused(post_job(live, "team-b", {**TOY, "space": deep}), "space", "hierarchical", "stages", "0", "depth")
    wide = {"stages": [{"mixer": "attention", "depth": 1, "dim": 100000001}]}
    refused(b.post("/hw/sweep", json={"arch": wide, "grid": {}}), "arch", "stages", "0", "dim")
    wide = {"stages": [{"mixer": "pooling", "depth": 1, "dim": 9000}]}  # within the schema, over --max-width
    assert (
        "8,192" in refused(b.post("/hw/sweep", json={"arch": wide, "grid": {}}), "arch", "stages", "0", "dim")[0]["msg"]
    )
    refused(b.post("/hw/sweep", json={"arch": _pooling(100000), "grid": {}}), "arch", "stages", "0", "depth")
    grid = {"cores": [1, 2, 4, 8], "clock_mhz": list(range(100, 1124))}  # 4,096 chips x ~1,500 layers
    refused(b.post("/hw/sweep", json={"arch": _pooling(32, 4), "grid": grid}), "grid")
    batch = {"proxy": "synflow", "resolution": 1024, "batch": 1024}
    refused(post_job(live, "team-b", {**TOY, "evaluator": batch}), "evaluator", "batch")
    heads = {"stages": [{"mixer": "attention", "depth": 1, "dim": 4096, "head_dim": 1}]}
    refused(b.post("/hw/sweep", json={"arch": heads, "grid": {}}), "arch", "stages", "0", "head_dim")
    # a sweep within the limits still answers
    assert b.post("/hw/sweep", json={"preset": "poolformer_s12", "grid": {"cores": [1, 2]}}).status_code == 200
    assert _rss_mib(pid) - rss_before < 300  # MiB: nothing above built a network or a batch


# ---- 6: the rest ----------------------------------------------------------------------------------


def test_health_says_nothing_without_a_token_and_errors_carry_no_server_paths(live):
    anonymous = httpx.get(f"{live['server'].url}/healthz")
    assert anonymous.json() == {"status": "ok"}
    health = live["http"]["team-b"].get("/healthz").json()
    assert "database" not in health and health["jobs_running"] is not None
    store, url = live["store"], live["server"].db
    job = Client(live["server"].url, token=live["tokens"]["team-a"]).submit({**TOY, "name": "doomed"})["id"]
    live["http"]["team-a"].post(f"/jobs/{job}/cancel")
    wait_for(lambda: store.get_job(job).status in ("cancelled", "completed"), timeout=60)
    store.finish(job, "failed", error=f"job {job} is not in {url}; see {live['tmp']}/service/logs/job-{job}.log")
    error = live["http"]["team-a"].get(f"/jobs/{job}").json()["error"]
    assert url not in error and str(live["tmp"]) not in error and "job-" in error


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/jobs/{first}/candidates/%25", None),  # LIKE patterns are not hashes
        ("GET", "/jobs/{first}/candidates/_", None),
        ("GET", "/jobs/{first}/candidates/" + "9" * 27, None),  # past any database integer
        ("POST", "/hw/sweep", {"preset": "poolformer_s12", "grid": {"clock_mhz": [1e-320]}}),
        ("POST", "/jobs", {}),
        ("POST", "/jobs", {**TOY, "tags": ["t"] * 50_000}),
        ("POST", "/jobs", {**TOY, "evaluator": {"proxy": "../../etc/passwd"}}),
        ("POST", "/jobs/{first}/export", {"candidate": 1e30}),
        ("POST", "/jobs/{first}/export", {"train_steps": 10**9}),
        ("POST", "/jobs/{first}/export", {"train_steps": 10, "train_batch": 10**6}),
    ],
    ids=[
        "like-percent",
        "like-underscore",
        "huge-candidate-id",
        "denormal-clock",
        "empty-body",
        "50k-tags",
        "proxy-path",
        "export-candidate-1e30",
        "export-steps",
        "export-batch",
    ],
)
def test_out_of_range_inputs_answer_4xx_and_create_nothing(live, method, path, body):
    store = live["store"]
    before = store.count_jobs(), store.count_exports()
    answer = live["http"]["team-a"].request(method, path.format(first=live["first"]), json=body)
    assert answer.status_code in (404, 422), answer.text
    assert (store.count_jobs(), store.count_exports()) == before


def test_a_plugin_space_is_never_imported_by_the_service(live):
    """Comparing or showing a plug-in space's candidates would build the plug-in here: refused."""
    spec = {**TOY, "space": {"plugin": "no_such_module_here:Space", "options": {}}}
    job = live["store"].create_job(name="plugin-space", tags=(), spec=spec, accelerator={}, reference_point={},
                                   tenant="team-a")  # fmt: skip
    answer = live["http"]["team-a"].get(f"/jobs/{job.id}/compare")
    assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == ["path", "job_id"], answer.text


def test_a_nan_reference_point_is_refused(live):
    body = json.dumps({**TOY, "reference_point": {"accuracy": 0.5}}).replace("0.5", "NaN")
    answer = live["http"]["team-a"].post("/jobs", content=body, headers={"content-type": "application/json"})
    refused(answer, "reference_point", "accuracy")


def test_the_page_cache_counts_keys_as_well_as_bodies():
    from nas.service._cache import PageCache

    cache = PageCache(max_bytes=1 << 20)
    for i in range(2000):  # 2 kB keys, 2-byte bodies: 4 MB of keys if only bodies counted
        cache.put((f"{i}" + "w" * 2000,), 1, b"{}")
    assert sum(len(repr(k)) for k in cache._pages) <= 1 << 20
    assert cache.get(("1999" + "w" * 2000,), 1) == b"{}"  # the newest stays
