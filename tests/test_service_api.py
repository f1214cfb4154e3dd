"""The REST API in process (FastAPI's TestClient) over real SQLite and PostgreSQL stores: routes,
errors, tenants. Jobs are run here by the search loop itself; the service's own runner is covered
by tests/test_service_live.py."""

import hashlib
import io
import json
import re
import zipfile
from pathlib import Path

import pytest
import sqlalchemy
import yaml
from fastapi.testclient import TestClient

from nas.search import run, submit
from nas.service import create_app
from nas.spec import load_spec
from nas.store import Store

ROOT = Path(__file__).resolve().parents[1]
SPEC = {
    "name": "api",
    "tags": ["edge", "nightly_run"],
    "space": "metaformer-tiny",
    "input_shape": [3, 64, 64],
    "evaluator": {"plugin": "search_plugins:ToyEvaluator"},
    "constraints": {"max_params": 2_000_000},
    "budget": {"trials": 20},
    "workers": {"count": 0},
}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A store with one finished job (run in this process) and the service over it."""
    tmp = tmp_path_factory.mktemp("api")
    store = Store(f"sqlite:///{tmp / 'nas.db'}")
    job = submit(store, load_spec(SPEC))
    run(store, job.id)
    app = create_app(store, run_jobs=False, data_dir=tmp / "service", allow_plugins=("search_plugins:ToyEvaluator",))
    with TestClient(app) as client:
        yield store, job.id, client


def test_job_detail_has_progress_best_hypervolume_and_no_eta_once_finished(finished):
    store, job_id, client = finished
    body = client.get(f"/jobs/{job_id}").json()
    job = store.get_job(job_id)
    assert body["status"] == "completed" and body["eta_s"] is None
    assert body["progress"]["trials"] == 20 == body["progress"]["budget_trials"]
    p = body["progress"]
    assert p["complete"] + p["infeasible"] + p["failed"] + p["duplicates"] == 20
    assert p["front"] == job.n_front > 0 and body["hypervolume"] == job.hypervolume
    best = store.pareto(job_id, sort="accuracy", limit=1)[0]
    assert body["best"] == {"objective": "accuracy", "value": best.metrics["accuracy"], "candidate_id": best.id,
                            "name": best.name}  # fmt: skip


def test_job_list_paginates_and_filters_by_status_and_tag(finished):
    store, job_id, client = finished
    second = submit(store, load_spec({**SPEC, "name": "second", "tags": ["edge"]}))
    try:
        page = client.get("/jobs", params={"limit": 1}).json()
        assert page["total"] == 2 and [j["id"] for j in page["items"]] == [second.id]
        assert [j["id"] for j in client.get("/jobs", params={"limit": 1, "offset": 1}).json()["items"]] == [job_id]
        assert [j["id"] for j in client.get("/jobs", params={"status": "queued"}).json()["items"]] == [second.id]
        assert [j["id"] for j in client.get("/jobs", params={"tag": "nightly_run"}).json()["items"]] == [job_id]
        assert client.get("/jobs", params={"tag": "nightly%"}).json()["total"] == 0  # LIKE wildcards are escaped
        assert client.get("/jobs", params={"tag": "edge"}).json()["total"] == 2
        assert client.get("/jobs", params={"status": "sleeping"}).status_code == 422
    finally:
        store.delete_job(second.id)


def test_pareto_matches_the_store_with_bounds_sort_pagination_and_fields(finished):
    store, job_id, client = finished
    front = store.pareto(job_id, sort="latency_ms")
    body = client.get(f"/jobs/{job_id}/pareto", params={"sort": "latency_ms"}).json()
    assert [r["id"] for r in body["items"]] == [c.id for c in front]
    assert body["items"][:50] == json.loads(json.dumps([c.row() for c in front][:50]))  # the store's rows, as they are
    assert body["objectives"] == ["accuracy", "latency_ms", "energy_mj"]
    bound = sorted(c.metrics["latency_ms"] for c in front)[len(front) // 2]
    body = client.get(f"/jobs/{job_id}/pareto", params={"where": f"latency_ms<={bound}"}).json()
    assert {r["id"] for r in body["items"]} == {
        c.id for c in store.pareto(job_id, where=_bounds(f"latency_ms<={bound}"))
    }
    page = client.get(f"/jobs/{job_id}/pareto", params={"sort": "latency_ms", "limit": 1, "offset": 1}).json()
    assert [r["id"] for r in page["items"]] == [front[1].id]
    rows = client.get(f"/jobs/{job_id}/pareto", params={"fields": "id,latency_ms"}).json()["items"]
    assert rows and all(set(r) == {"id", "latency_ms"} for r in rows)


def _bounds(text):
    from nas.store import parse_bounds

    return parse_bounds(text)


@pytest.mark.parametrize(
    ("params", "field"),
    [({"where": "latency<2"}, "where"), ({"sort": "speed"}, "sort"), ({"fields": "id,colour"}, "fields"),
     ({"limit": 0}, "limit"), ({"limit": 5000}, "limit")],
)  # fmt: skip
def test_bad_pareto_queries_answer_422_naming_the_parameter(finished, params, field):
    _, job_id, client = finished
    response = client.get(f"/jobs/{job_id}/pareto", params=params)
    assert response.status_code == 422
    assert field in json.dumps(response.json()["detail"])


def test_candidates_and_a_candidate_with_its_per_layer_table(finished):
    store, job_id, client = finished
    page = client.get(f"/jobs/{job_id}/candidates", params={"status": "complete", "limit": 100}).json()
    assert len(page["items"]) == store.get_job(job_id).n_complete
    c = page["items"][0]
    detail = client.get(f"/jobs/{job_id}/candidates/{c['id']}").json()
    assert detail["arch"]["stages"] and detail["metrics"]["latency_ms"] > 0
    layers = detail["layers"]
    assert layers and {"name", "unit", "time_us", "energy_uj"} <= set(layers[0])
    # the per-layer table adds up to the frame's totals (the model's own invariant, seen through the API)
    assert sum(r["energy_uj"] for r in layers) / 1e3 == pytest.approx(detail["metrics"]["energy_mj"], rel=1e-6)
    by_hash = client.get(f"/jobs/{job_id}/candidates/{c['arch_hash'][:10]}").json()
    assert by_hash["id"] == c["id"]


def test_unknown_ids_answer_404_with_a_message(finished):
    _, job_id, client = finished
    for path in ("/jobs/999", f"/jobs/{job_id}/candidates/999999", "/exports/999", "/jobs/999/pareto"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.json()["detail"]
    assert client.get("/jobs/0").status_code == 422  # ids start at 1
    assert client.post("/jobs/999/cancel").status_code == 404


def test_submit_json_and_yaml_and_invalid_specs_name_their_fields(finished):
    store, _, client = finished
    good = client.post("/jobs", content=yaml.safe_dump({**SPEC, "name": "from-yaml"}),
                       headers={"content-type": "application/yaml"})  # fmt: skip
    assert good.status_code == 201 and good.json()["status"] == "queued"
    job = store.get_job(good.json()["id"])
    assert job.name == "from-yaml" and job.managed  # the service's runner owns it
    store.delete_job(job.id)
    bad = client.post("/jobs", json={**SPEC, "budget": {"trials": "many"}, "evaluator": {"proxy": "x", "res": 3}})
    assert bad.status_code == 422
    locs = {tuple(d["loc"]) for d in bad.json()["detail"]}
    assert ("body", "budget", "trials") in locs and ("body", "evaluator", "res") in locs
    for body, loc in [
        ({**SPEC, "space": "/etc/passwd"}, ["body", "space"]),  # a server path: not over HTTP
        ({**SPEC, "accelerator": "tpu"}, ["body", "accelerator"]),
        ({**SPEC, "evaluator": {"plugin": "os:system"}}, ["body", "evaluator", "plugin"]),  # code: not allowed
    ]:
        response = client.post("/jobs", json=body)
        assert response.status_code == 422, body
        assert response.json()["detail"][0]["loc"] == loc
    for content, ctype in [(b"{not json", "application/json"), (b"- a list", "application/yaml"), (b"\xff", "")]:
        response = client.post("/jobs", content=content, headers={"content-type": ctype})
        assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body"]
    assert store.count_jobs() == 1  # nothing half-written


def test_oversized_bodies_are_refused_before_reading(finished):
    store, _, client = finished
    response = client.post("/jobs", content=b" " * (2 << 20), headers={"content-type": "application/json"})
    assert response.status_code == 413 and "limit" in response.json()["detail"]

    def chunks():  # no Content-Length: the cap still holds
        for _ in range(40):
            yield b" " * 65536

    assert client.post("/jobs", content=chunks()).status_code == 413
    assert store.count_jobs() == 1


def test_cancel_and_resume_of_a_finished_job(finished):
    _, job_id, client = finished
    assert client.post(f"/jobs/{job_id}/cancel").json()["status"] == "completed"
    response = client.post(f"/jobs/{job_id}/resume")  # its budget is spent
    assert response.status_code == 409 and "budget" in response.json()["detail"]


def test_an_export_is_only_queued_by_the_request_then_run_apart_and_downloaded(finished, monkeypatch, tmp_path):
    store, job_id, client = finished
    front = store.pareto(job_id, sort="latency_ms")
    bound = front[len(front) // 2].metrics["latency_ms"]

    def no_build(*_args, **_kwargs):
        raise AssertionError("the request built the network")

    with monkeypatch.context() as m:  # the request checks and queues: it builds, trains and traces nothing
        m.setattr("nas.export.export_candidate", no_build)
        response = client.post(
            f"/jobs/{job_id}/export", json={"where": f"latency_ms<={bound}", "formats": "onnx", "allow_untrained": True}
        )
    assert response.status_code == 202, response.text
    queued = response.json()
    best = store.pareto(job_id, where=_bounds(f"latency_ms<={bound}"), limit=1)[0]
    assert queued["candidate_id"] == best.id and queued["status"] == "queued" and queued["files"] == {}
    assert queued["request"] == {
        "formats": ["onnx"], "train_steps": 0, "train_batch": 32, "allow_untrained": True, "int8": False,
    }  # fmt: skip
    waiting = client.get(queued["url"])
    assert waiting.status_code == 409 and "queued" in waiting.json()["detail"]
    assert client.get(queued["card_url"]).json()["status"] == "queued"

    # what `nas export-run` does in the process the supervisor starts (run_jobs=False here: no supervisor)
    from nas._export_run import run_export

    assert run_export(store, queued["id"], tmp_path / "exports").status == "complete"
    record = client.get(queued["card_url"]).json()
    assert record["status"] == "complete" and set(record["files"]) == {"arch", "onnx", "model_card"}
    assert record["card"]["candidate"]["id"] == best.id and record["error"] is None
    archive = zipfile.ZipFile(io.BytesIO(client.get(record["url"]).content))
    names = {n.split("/", 1)[1] for n in archive.namelist() if not n.endswith("/")}
    assert names == {"arch.json", "model.onnx", "model_card.json", "README.md"}


@pytest.mark.parametrize(
    ("body", "field"),
    [({"formats": "tflite"}, "formats"), ({"train_steps": 5}, "train_steps"),  # a plug-in evaluator: no dataset
     ({"train_steps": 10**6}, "train_steps"), ({"train_batch": 1}, "train_batch"),
     ({}, "weights")],  # the job trained none: initialised weights only when asked (allow_untrained)
)  # fmt: skip
def test_bad_exports_answer_422_naming_the_field_and_queue_nothing(finished, body, field):
    store, job_id, client = finished
    before = store.count_exports()
    response = client.post(f"/jobs/{job_id}/export", json=body)
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body", field]
    assert client.post(f"/jobs/{job_id}/export", json={"where": "latency_ms<0"}).status_code == 404
    assert store.count_exports() == before


def test_unfinished_exports_count_in_the_tenant_s_quota_and_a_failed_one_answers_409(finished, tmp_path):
    from nas.limits import Limits

    store, job_id, _ = finished
    app = create_app(store, run_jobs=False, data_dir=tmp_path, limits=Limits(max_jobs_per_tenant=2))
    with TestClient(app) as client:
        untrained = {"allow_untrained": True}
        store.finish_export(client.post(f"/jobs/{job_id}/export", json=untrained).json()["id"], "failed", error="x")
        first = [client.post(f"/jobs/{job_id}/export", json=untrained) for _ in range(3)]
    assert [r.status_code for r in first] == [
        202,
        202,
        429,
    ]  # the finished job does not count, the failed export neither
    assert "2 unfinished exports" in first[2].json()["detail"]
    for r in first[:2]:
        store.finish_export(r.json()["id"], "failed", error=f"stopped by the service at {tmp_path}/exports")
    with TestClient(app) as client:
        failed = client.get(first[0].json()["url"])
        card = client.get(first[0].json()["card_url"]).json()
    assert failed.status_code == 409 and "failed" in failed.json()["detail"]
    assert card["status"] == "failed" and str(tmp_path) not in card["error"] and "exports" in card["error"]


def test_catalogue_routes_and_a_complete_openapi_schema(finished):
    _, _, client = finished
    names = [a["name"] for a in client.get("/accelerators").json()]
    assert "metis-like" in names
    assert {"metaformer", "metaformer-tiny"} <= {s["name"] for s in client.get("/spaces").json()}
    schema = client.get("/openapi.json").json()
    body = schema["paths"]["/jobs"]["post"]["requestBody"]["content"]
    assert {"application/json", "application/yaml"} <= set(body) and "JobSpec" in schema["components"]["schemas"]
    assert schema["components"]["schemas"]["Job"].get("examples")
    # every route the schema lists answers with a typed body: a named model for its success response
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            ok = next(v for k, v in operation["responses"].items() if k.startswith("2"))
            content = ok.get("content", {})
            typed = "$ref" in json.dumps(content.get("application/json", {})) or set(content) == {"application/zip"}
            assert typed, f"{method.upper()} {path}: no typed response ({content})"


def test_the_post_jobs_example_is_the_readme_job_read_from_its_file(finished):
    _, _, client = finished
    readme_job = yaml.safe_load((ROOT / "docs/examples/edge-classifier.yaml").read_text())
    assert "docs/examples/edge-classifier.yaml" in (ROOT / "README.md").read_text()  # the job the README runs
    body = client.get("/openapi.json").json()["paths"]["/jobs"]["post"]["requestBody"]["content"]
    [example] = body["application/json"]["examples"].values()
    assert example["value"] == readme_job and "README" in example["summary"]
    [as_yaml] = body["application/yaml"]["examples"].values()
    assert yaml.safe_load(as_yaml["value"]) == readme_job


def test_the_api_page_loads_swagger_ui_from_the_service_not_a_cdn(finished):
    _, _, client = finished
    page = client.get("/docs")
    assert page.status_code == 200
    assets = re.findall(r"""(?:src|href|url)\s*[:=]\s*['"]([^'"]+)['"]""", page.text)
    assert assets and all(a.startswith("/") and not a.startswith("//") for a in assets), assets
    assert not re.search(r"https?://", page.text)
    for asset in assets:
        served = client.get(asset)
        assert served.status_code == 200 and served.content, asset
    assert "SwaggerUIBundle" in client.get(next(a for a in assets if a.endswith(".js"))).text


def test_tokens_and_tenants(db_url, tmp_path):
    store = Store(db_url)
    a_token, _ = store.create_token("team-a")
    b_token, b_record = store.create_token("team-b")
    app = create_app(
        store, auth=True, run_jobs=False, data_dir=tmp_path, allow_plugins=("search_plugins:ToyEvaluator",)
    )
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200  # no token needed
        assert client.get("/jobs").status_code == 401
        assert client.get("/accelerators", headers=_auth("nas_wrong")).status_code == 401
        created = client.post("/jobs", json=SPEC, headers=_auth(a_token))
        assert created.status_code == 201 and created.json()["tenant"] == "team-a"
        job_id = created.json()["id"]
        assert client.get(f"/jobs/{job_id}", headers=_auth(a_token)).status_code == 200
        other = client.get(f"/jobs/{job_id}", headers=_auth(b_token))
        unknown = client.get("/jobs/4242", headers=_auth(b_token))
        assert other.status_code == unknown.status_code == 404
        assert other.json()["detail"].replace(str(job_id), "N") == unknown.json()["detail"].replace("4242", "N")
        assert client.post(f"/jobs/{job_id}/cancel", headers=_auth(b_token)).status_code == 404
        assert client.get("/jobs", headers=_auth(b_token)).json()["total"] == 0
        assert client.get("/jobs", headers=_auth(a_token)).json()["total"] == 1
        store.revoke_token(b_record.prefix)
        assert client.get("/jobs", headers=_auth(b_token)).status_code == 401
    # what the database holds: the tokens' SHA-256 and a short prefix, never a token itself
    with sqlalchemy.create_engine(db_url).connect() as db:
        rows = db.execute(sqlalchemy.text("SELECT * FROM nas_tokens")).mappings().all()
    assert {r["token_hash"] for r in rows} == {hashlib.sha256(t.encode()).hexdigest() for t in (a_token, b_token)}
    cells = [str(v) for r in rows for v in r.values()]
    assert not any(token in cell for token in (a_token, b_token) for cell in cells)
    assert all(len(r["prefix"]) < len(a_token) // 2 for r in rows)


def _auth(token):
    return {"Authorization": f"Bearer {token}"}


def test_train_asks_the_runner_to_measure_the_fronts_best(finished):
    store, job_id, client = finished
    body = client.get(f"/jobs/{job_id}").json()
    assert body["accuracy_kind"] == "evaluator"  # a plug-in's accuracy: nothing for the job to train
    refused = client.post(f"/jobs/{job_id}/train", json={"top": 2})
    assert refused.status_code == 409 and "no training recipe" in refused.json()["detail"]
    spec = {**SPEC, "name": "trainable", "evaluator": {"proxy": "synflow", "resolution": 16, "batch": 4,
            "train": {"candidates": 0, "final": 1, "recipe": {"epochs": 1, "images": 256}}}}  # fmt: skip
    job = submit(store, load_spec(spec))
    try:
        bad = client.post(f"/jobs/{job.id}/train", json={"top": 0})
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][-1] == "top"
        queued = client.post(f"/jobs/{job.id}/train", json={"top": 4}).json()
        assert queued["status"] == "queued" and queued["managed"] and queued["train_top"] == 4
        assert queued["accuracy_kind"] == "predicted" and store.get_job(job.id).final_top == 4
    finally:
        store.delete_job(job.id)


def test_the_job_list_costs_the_same_queries_for_one_job_or_many(tmp_path):
    """GET /jobs, polled by the dashboard every 2 s, once asked the store for each listed job's front."""
    store = Store(f"sqlite:///{tmp_path / 'nas.db'}")
    app = create_app(store, run_jobs=False, data_dir=tmp_path / "service")
    statements = []
    sqlalchemy.event.listen(store.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))

    def queries_for_the_list(client) -> int:
        statements.clear()
        page = client.get("/jobs").json()
        assert all(j["best"] for j in page["items"])  # every listed job shows its best candidate
        return len(statements)

    with TestClient(app) as client:
        run(store, submit(store, load_spec({**SPEC, "budget": {"trials": 6}})).id)
        one = queries_for_the_list(client)
        for i in range(4):
            run(store, submit(store, load_spec({**SPEC, "name": f"more-{i}", "budget": {"trials": 6}})).id)
        assert queries_for_the_list(client) == one


def test_a_pareto_page_follows_every_trial_the_job_records(tmp_path):
    """Pages are kept per query until the job changes: a newly recorded candidate shows at once."""
    store = Store(f"sqlite:///{tmp_path / 'nas.db'}")
    job = submit(store, load_spec({**SPEC, "budget": {"trials": 6}}))
    run(store, job.id)
    app = create_app(store, run_jobs=False, data_dir=tmp_path / "service")
    with TestClient(app) as client:
        before = client.get(f"/jobs/{job.id}/pareto").json()["items"]
        assert client.get(f"/jobs/{job.id}/pareto").json()["items"] == before  # the kept page
        best = store.pareto(job.id, limit=1)[0]
        dominating = {**best.metrics, "accuracy": best.metrics["accuracy"] + 1, "latency_ms": 1e-6, "energy_mj": 1e-6}
        from nas.store import CandidateIn

        new = CandidateIn(arch_hash="f" * 16, name="better", arch=best.arch, status="complete", metrics=dominating,
                          deployable=True)  # fmt: skip
        store.record(job.id, 1000, candidate=new, values=[0.0, 0.0, 0.0], constraints=None)
        after = client.get(f"/jobs/{job.id}/pareto").json()["items"]
        assert [r["name"] for r in after] == ["better"] and after != before


def test_errors_carry_their_field_s_location_not_parsed_from_text(finished):
    _, job_id, client = finished
    bad = client.get(f"/jobs/{job_id}/pareto", params={"fields": "id,bogus"}).json()["detail"]
    assert bad == [{"loc": ["query", "fields"], "msg": bad[0]["msg"], "type": "value_error"}]
    assert "unknown bogus" in bad[0]["msg"]
    off = client.post("/jobs", json={**SPEC, "evaluator": {"plugin": "os:system"}}).json()["detail"]
    assert [d["loc"] for d in off] == [["body", "evaluator", "plugin"]] and "--allow-plugin" in off[0]["msg"]
    several = client.post("/jobs", json={**SPEC, "num_classes": 10**12, "batch": 10**9}).json()["detail"]
    assert [d["loc"] for d in several] == [["body", "num_classes"], ["body", "batch"]]


def test_an_http_error_names_the_route_that_helps_not_a_cli_command(finished):
    store, job_id, client = finished
    unknown = client.get(f"/jobs/{job_id}/candidates/ffffffffffff").json()["detail"]
    assert f"GET /jobs/{job_id}/pareto" in unknown and "`nas" not in unknown
    running = submit(store, load_spec({**SPEC, "name": "running"}))
    try:
        store.claim(running.id, "somehost:1")  # running in a process that is alive (this one's pid 1 is)
        refused = client.post(f"/jobs/{running.id}/resume")
        assert refused.status_code == 409
        detail = refused.json()["detail"]
        assert f"POST /jobs/{running.id}/cancel" in detail and "`nas" not in detail and "somehost" not in detail
    finally:
        store.delete_job(running.id)


def test_the_store_limits_and_settings_are_dependencies_a_test_overrides(finished, tmp_path):
    from nas.limits import Limits
    from nas.service import Settings
    from nas.service._common import get_limits, get_settings, get_store

    _, job_id, client = finished
    other = Store(f"sqlite:///{tmp_path / 'other.db'}")
    app = client.app
    try:
        app.dependency_overrides[get_store] = lambda: other  # every route and the tenant check read this one
        assert client.get("/jobs").json()["total"] == 0
        assert client.get(f"/jobs/{job_id}").status_code == 404
        app.dependency_overrides[get_limits] = lambda: Limits(max_trials=7)
        refused = client.post("/jobs", json={**SPEC, "budget": {"trials": 8}})
        assert refused.status_code == 422 and "over the limit of 7" in refused.json()["detail"][0]["msg"]
        assert other.count_jobs() == 0
        app.dependency_overrides[get_settings] = lambda: Settings(max_page=3, max_variants=2)
        assert client.get("/limits").json()["max_page"] == 3
        over = client.get("/jobs", params={"limit": 4})
        assert over.status_code == 422 and over.json()["detail"][0]["loc"] == ["query", "limit"]
        sweep = client.post("/hw/sweep", json={"preset": "poolformer_s12", "grid": {"cores": [1, 2, 4]}})
        assert sweep.status_code == 422 and "over the limit of 2 chip variants" in sweep.json()["detail"][0]["msg"]
    finally:
        app.dependency_overrides.clear()
    assert client.get(f"/jobs/{job_id}").status_code == 200


def _routes(app):
    """(method, path) of every route the app serves (mounted static folders aside)."""
    from fastapi.routing import iter_route_contexts

    return {(m, c.path) for c in iter_route_contexts(app.routes) for m in (c.methods or ()) if m != "HEAD"}


# one call per route the app serves, in order (a later call uses what an earlier one created), and
# the status it must answer; a new route without an entry here fails the test below
ROUTE_CALLS = {
    ("GET", "/openapi.json"): (lambda ids: {}, 200),
    ("GET", "/docs"): (lambda ids: {}, 200),
    ("GET", "/"): (lambda ids: {"follow_redirects": False}, 307),
    ("GET", "/healthz"): (lambda ids: {}, 200),
    ("GET", "/limits"): (lambda ids: {}, 200),
    ("GET", "/accelerators"): (lambda ids: {}, 200),
    ("GET", "/spaces"): (lambda ids: {}, 200),
    ("POST", "/jobs"): (lambda ids: {"json": {**SPEC, "name": "every-route"}}, 201),
    ("GET", "/jobs"): (lambda ids: {"params": {"status": "completed"}}, 200),
    ("GET", "/jobs/{job_id}"): (lambda ids: {}, 200),
    ("POST", "/jobs/{job_id}/cancel"): (lambda ids: {}, 200),
    ("POST", "/jobs/{job_id}/resume"): (lambda ids: {"path": {"job_id": ids["new"]}}, 200),
    ("POST", "/jobs/{job_id}/train"): (lambda ids: {"json": {"top": 1}}, 409),  # a plug-in's accuracy: no recipe
    ("GET", "/jobs/{job_id}/hypervolume"): (lambda ids: {}, 200),
    ("GET", "/jobs/{job_id}/pareto"): (lambda ids: {"params": {"sort": "latency_ms"}}, 200),
    ("GET", "/jobs/{job_id}/candidates"): (lambda ids: {}, 200),
    ("GET", "/jobs/{job_id}/candidates/{ref}"): (lambda ids: {"path": {"ref": ids["candidate"]}}, 200),
    ("POST", "/jobs/{job_id}/export"): (lambda ids: {"json": {"formats": "onnx", "allow_untrained": True}}, 202),
    ("GET", "/exports/{export_id}"): (lambda ids: {}, 409),  # queued: no zip yet
    ("GET", "/exports/{export_id}/card"): (lambda ids: {}, 200),
    ("GET", "/jobs/{job_id}/compare"): (lambda ids: {"params": {"accelerators": "metis-like"}}, 200),
    ("POST", "/hw/sweep"): (lambda ids: {"json": {"preset": "poolformer_s12", "grid": {"cores": [1, 2]}}}, 200),
}


def test_every_route_of_the_app_is_called_and_answers_its_typed_body(finished):
    from fastapi.routing import iter_route_contexts
    from pydantic import TypeAdapter

    store, job_id, client = finished
    served = _routes(client.app)
    assert served == set(ROUTE_CALLS), f"routes without a call here: {served - set(ROUTE_CALLS)}"
    models = {(m, c.path): getattr(c.original_route, "response_model", None)
              for c in iter_route_contexts(client.app.routes) for m in (c.methods or ())}  # fmt: skip
    ids = {"job_id": job_id, "candidate": store.pareto(job_id, limit=1)[0].id}
    try:
        for (method, path), (call, status) in ROUTE_CALLS.items():
            args = call(ids)
            url = path.format(**{"job_id": job_id, "export_id": ids.get("export"), **args.pop("path", {})})
            response = client.request(method, url, **args)
            assert response.status_code == status, f"{method} {path}: {response.status_code} {response.text[:300]}"
            if response.is_success and models.get((method, path)) is not None:  # the body its model types
                TypeAdapter(models[(method, path)]).validate_python(response.json())
            if (method, path) == ("POST", "/jobs"):
                ids["new"] = response.json()["id"]
            if (method, path) == ("POST", "/jobs/{job_id}/export"):
                ids["export"] = response.json()["id"]
    finally:
        if "export" in ids:
            store.finish_export(ids["export"], "failed", error="not run here")
        if "new" in ids:
            store.delete_job(ids["new"])


def test_the_client_refuses_a_non_empty_export_folder_before_the_service_builds_anything(finished, tmp_path):
    from nas.client import Client

    store, job_id, client = finished
    api = Client("http://testserver")
    api._http = client  # FastAPI's TestClient is an httpx.Client over the app
    (tmp_path / "kept.txt").write_text("a user's file")
    before = store.count_exports()
    with pytest.raises(FileExistsError, match="not an empty folder"):
        api.export(job_id, out=tmp_path, formats="onnx", timeout=5, poll_s=0.1)  # an old client waits, then fails
    assert store.count_exports() == before  # nothing was queued
    assert api.job(job_id)["id"] == job_id  # the same client does reach the service


def test_the_api_models_are_the_store_s_records_and_follow_a_new_field(finished):
    """A field added to a record (the row and the record: two edits) reaches the API unedited."""
    import dataclasses

    from nas.service import _schemas as schemas
    from nas.service._derive import record_model, record_names, record_values
    from nas.store import CandidateRecord, ExportRecord, JobRecord

    for model, record, views in [(schemas.Job, JobRecord, {"progress", "objectives", "best", "eta_s"}),
                                 (schemas.Candidate, CandidateRecord, {"layers"}),
                                 (schemas.ExportOut, ExportRecord, {"url", "card_url", "files"})]:  # fmt: skip
        kept_on_server = {"owner", "study_name", "accelerator", "path", "budget_trials", "final_top", "n_trained",
                          "trainings_planned"}  # fmt: skip
        counts = set(schemas.PROGRESS.values()) if record is JobRecord else set()
        assert set(model.model_fields) == (record_names(record) - kept_on_server - counts) | views, model.__name__

    @dataclasses.dataclass(frozen=True)
    class Wider(CandidateRecord):
        input_scale: float | None = None  # what a new field of the record looks like

    wider = record_model(Wider, "Wider", types={"arch": dict})
    assert "input_scale" in wider.model_json_schema()["properties"]
    store, job_id, client = finished
    c = store.pareto(job_id, limit=1)[0]
    shown = wider.model_validate(record_values(wider, Wider(**dataclasses.asdict(c), input_scale=0.25)))
    assert json.loads(shown.model_dump_json())["input_scale"] == 0.25
    api = client.get(f"/jobs/{job_id}/candidates/{c.id}").json()
    assert {k: v for k, v in json.loads(shown.model_dump_json()).items() if k != "input_scale"} == {
        k: v for k, v in api.items() if k != "layers"
    }


def test_a_job_s_predictor_leaves_the_server_without_its_paths(finished):
    """The predictor's recipe names the data folder and its log may hold a failed training's
    traceback: both are the server's own, under the new key and the deprecated one."""
    import dataclasses

    from nas.service import _schemas as schemas

    store, job_id, _ = finished
    secret = "/srv/nas-data/tenant-a/secret-set"
    predictor = {"recipe": {"dataset": secret}, "prospective": [{"failed": f'File "{secret}/x.py", line 3'}]}
    job = dataclasses.replace(store.get_job(job_id), predictor=predictor)
    shown = json.loads(schemas.job_out(job, None, None).model_dump_json())
    assert shown["predictor"] == shown["calibration"] and "secret-set" in json.dumps(shown["predictor"])
    assert "/srv/nas-data" not in json.dumps(shown)


def test_a_job_past_its_trials_shows_its_trainings_not_an_eta_of_zero(finished):
    import dataclasses

    from nas.service._jobs import _eta

    store, job_id, _ = finished
    job = store.get_job(job_id)
    train = {"candidates": 4, "final": 3}
    training = dataclasses.replace(
        job, status="running", spec={**job.spec, "evaluator": {"proxy": "synflow", "train": train}},
        train_final=3, n_trained=5, n_trials=job.budget_trials, run_seconds=60.0,
    )  # fmt: skip
    assert training.trainings_planned == 7 and _eta(training) is None  # 2 trainings left: not "0 s"
    assert _eta(dataclasses.replace(training, n_trained=7)) == 0.0
    assert _eta(dataclasses.replace(training, n_trials=job.budget_trials // 2)) == pytest.approx(60.0, abs=1.0)


def test_pareto_refuses_equality_on_a_measured_number_and_keeps_it_on_counts(finished):
    store, job_id, client = finished
    response = client.get(f"/jobs/{job_id}/pareto", params={"where": "latency_ms=2"})
    assert response.status_code == 422 and "latency_ms<=2" in response.text
    params = store.pareto(job_id, limit=1)[0].metrics["params"]
    rows = client.get(f"/jobs/{job_id}/pareto", params={"where": f"params={params:.0f}"}).json()["items"]
    assert rows and all(r["params"] == params for r in rows)
