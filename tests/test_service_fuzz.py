"""A property-based run over the API's OpenAPI schema (Schemathesis, Hypothesis): whatever it
generates, within and beyond the schema, gets no 5xx. Real SQLite store with a finished job, so
the routes that read jobs, candidates and exports have something to find."""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from nas.search import run, submit
from nas.service import create_app
from nas.spec import load_spec
from nas.store import Store

SPEC = {
    "name": "fuzz",
    "space": "metaformer-tiny",
    "input_shape": [3, 32, 32],
    "evaluator": {"plugin": "search_plugins:ToyEvaluator"},
    "budget": {"trials": 6},
    "workers": {"count": 0},
}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz")
    store = Store(f"sqlite:///{tmp / 'nas.db'}")
    run(store, submit(store, load_spec(SPEC)).id)
    return create_app(store, run_jobs=False, data_dir=tmp / "service")


@pytest.fixture(scope="module")
def operations(app):
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    return [result.ok() for result in schema.get_all_operations()]


# exports build and trace networks (seconds each): their inputs are covered by test_service_api
SKIPPED = {("POST", "/jobs/{job_id}/export")}


def test_the_schema_has_every_route(operations):
    assert len(operations) >= 14


def test_no_input_makes_a_server_error(operations):
    failures = []
    for operation in operations:
        if (operation.method.upper(), operation.path) in SKIPPED:
            continue

        @given(case=operation.as_strategy())
        @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case):
            case.call_and_validate(checks=[not_a_server_error])

        try:
            check()
        except Exception as err:  # collect them all: one report names every route that failed
            failures.append(f"{operation.method.upper()} {operation.path}: {err}")
    assert not failures, "\n\n".join(failures)


HOSTILE = [  # what a careless or hostile client sent (issue 13), and the field the refusal must name
    ({"workers": {"count": 1_000_000}}, ["workers", "count"]),
    ({"workers": {"count": 2, "cpus_per_worker": 10_000}}, ["workers", "cpus_per_worker"]),
    ({"num_classes": 1_000_000_000_000}, ["num_classes"]),
    ({"input_shape": [3, 100_000, 100_000]}, ["input_shape"]),
    ({"input_shape": [100_000, 32, 32]}, ["input_shape"]),
    ({"batch": 10**9}, ["batch"]),
    ({"budget": {"trials": 10**9}}, ["budget", "trials"]),
    ({"budget": {"trials": 10, "wall_time_s": 1e9}}, ["budget", "wall_time_s"]),
    ({"budget": {"trials": 10, "trial_timeout_s": 1e9}}, ["budget", "trial_timeout_s"]),
    (
        {"evaluator": {"proxy": "synflow", "train": {"candidates": 2, "timeout_s": 1e9}}},
        ["evaluator", "train", "timeout_s"],
    ),
]


@pytest.mark.parametrize(("override", "field"), HOSTILE, ids=[".".join(f) for _, f in HOSTILE])
def test_hostile_specs_are_refused_naming_the_field_and_nothing_is_created(app, override, field):
    from fastapi.testclient import TestClient

    store = app.state.service.store
    before = store.count_jobs()
    with TestClient(app) as client:
        answer = client.post("/jobs", json={**SPEC, "evaluator": {"proxy": "synflow"}, **override})
        limits = client.get("/limits").json()
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"]
    assert any(d["loc"] == ["body", *field] and "over the limit of" in d["msg"] for d in detail), detail
    assert store.count_jobs() == before
    assert limits["max_workers"] >= 1 and limits["max_jobs_per_tenant"] >= 1


def test_a_tenant_at_its_quota_gets_429_and_nothing_is_created(tmp_path):
    from fastapi.testclient import TestClient

    from nas.limits import Limits

    store = Store(f"sqlite:///{tmp_path / 'nas.db'}")
    token, _ = store.create_token("team-a")
    other, _ = store.create_token("team-b")
    app = create_app(store, auth=True, run_jobs=False, data_dir=tmp_path, limits=Limits(max_jobs_per_tenant=2))
    spec = {**SPEC, "evaluator": {"proxy": "synflow"}}
    with TestClient(app) as client:
        a, b = ({"Authorization": f"Bearer {t}"} for t in (token, other))
        assert [client.post("/jobs", json=spec, headers=a).status_code for _ in range(2)] == [201, 201]
        refused = client.post("/jobs", json=spec, headers=a)
        assert refused.status_code == 429 and "max_jobs_per_tenant" in refused.json()["detail"]
        assert store.count_jobs(tenant="team-a") == 2
        assert client.post("/jobs", json=spec, headers=b).status_code == 201  # another tenant's quota is its own
        first = client.get("/jobs", headers=a).json()["items"][-1]["id"]
        assert client.post(f"/jobs/{first}/cancel", headers=a).status_code == 200  # a finished job frees its place
        assert client.post("/jobs", json=spec, headers=a).status_code == 201
        assert client.post(f"/jobs/{first}/resume", headers=a).status_code == 429  # resuming would be a third
        assert client.get("/limits", headers=a).json()["max_jobs_per_tenant"] == 2
