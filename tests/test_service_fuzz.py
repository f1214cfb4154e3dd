"""A property-based run over the API's OpenAPI schema (Schemathesis, Hypothesis): whatever it
generates, within and beyond the schema, gets no 5xx. Real SQLite store with a finished job, so
the routes that read jobs, candidates and exports have something to find."""

import json
from urllib.parse import quote

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


# routes left out of the fuzzing, none now: an export request only checks and queues a row (no
# supervisor here runs it), so it is fuzzed like the rest
SKIPPED: set[tuple[str, str]] = set()


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


# ---- hostile values in every parameter (issue 20) -------------------------------------------------

HOSTILE_VALUES = [
    "../../etc/passwd", "nas.db", "nas.db-wal", "/etc", "secret.txt", "%", "_", "%_%", "a\x00b", "NaN", "1e309",
    "9" * 40, -(2**70), 2**70, 1e308, -1, 0, "😀" * 300, "search_plugins:json.codecs.builtins.open", "127.0.0.1:8899",
    None, [], {},
]  # fmt: skip
NESTED = ["evaluator.proxy", "evaluator.data", "evaluator.data_dir", "evaluator.plugin", "accelerator.base",
          "workers.address", "space.plugin", "budget.trials", "reference_point.accuracy"]  # fmt: skip
BODIES = {  # a valid body per route: each field in turn gets each hostile value
    ("POST", "/jobs"): {**SPEC, "evaluator": {"proxy": "synflow"}},
    ("POST", "/jobs/{job_id}/train"): {"top": 1},
    ("POST", "/jobs/{job_id}/export"): {"candidate": 1},
    ("POST", "/hw/sweep"): {"preset": "poolformer_s12", "base": "metis-like", "grid": {"cores": [1, 2]}},
}


def _with(body: dict, dotted: str, value) -> dict:
    out = json.loads(json.dumps(body))
    node, *rest = dotted.split(".")
    if rest:
        out[node] = out.get(node) if isinstance(out.get(node), dict) else {}
        out[node] = _with(out[node], ".".join(rest), value)
    else:
        out[node] = value
    return out


def _snapshot(root) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` but the database's, with its size and modification time."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in root.rglob("*") if p.is_file() and not p.name.startswith("nas.db")}  # fmt: skip


def test_hostile_values_in_every_parameter_answer_4xx_touch_no_file_and_lose_nothing(tmp_path, monkeypatch):
    """Every route of the OpenAPI schema, each parameter and body field in turn set to a path, a
    LIKE pattern, a NUL, a huge number, NaN, an attribute chain or an address, from two tenants:
    no 5xx, no file created, changed or removed in the server's working directory (reads are
    tests/test_service_security.py's: a FIFO there would hang them), no secret echoed, and the
    database whole afterwards (the first job, its candidates, both tokens)."""
    from fastapi.testclient import TestClient

    from nas.limits import Limits

    monkeypatch.chdir(tmp_path)  # the server's working directory: what a name taken for a path would reach
    (tmp_path / "secret.txt").write_text("token: tok_0123456789abcdef\n")
    store = Store(f"sqlite:///{tmp_path / 'nas.db'}")
    tokens = {t: store.create_token(t)[0] for t in ("team-a", "team-b")}
    first = run(store, submit(store, load_spec(SPEC), tenant="team-a").id)
    n_candidates = len(store.candidates(first.id))
    app = create_app(store, auth=True, run_jobs=False, data_dir=tmp_path / "service",  # no quota stops a spec early
                     allow_plugins=("search_plugins:ToyEvaluator",), limits=Limits(max_jobs_per_tenant=10**6))  # fmt: skip
    before = _snapshot(tmp_path)
    failures, sent = [], 0
    with TestClient(app) as client:
        valid_path = {"job_id": first.id, "export_id": 1, "ref": 1}
        for path, methods in app.openapi()["paths"].items():
            for method, op in methods.items():
                params = [(p["name"], p["in"]) for p in op.get("parameters", [])]
                body = BODIES.get((method.upper(), path))
                fields = [*(body or {}), *(NESTED if path == "/jobs" and method == "post" else [])]
                targets = [("param", p) for p in params] + [("body", f) for f in fields] or [("none", None)]
                for kind, target in targets:
                    for value in HOSTILE_VALUES if kind != "none" else [None]:
                        url_params = dict(valid_path)
                        query = {}
                        payload = body
                        if kind == "param":
                            name, where = target
                            if where == "path":
                                url_params[name] = value
                            else:
                                query[name] = value
                        elif kind == "body":
                            payload = _with(body, target, value)
                        url = path.format(**{k: quote(str(v), safe="") for k, v in url_params.items()})
                        for token in tokens.values():
                            try:
                                answer = client.request(
                                    method.upper(), url, params={k: str(v) for k, v in query.items()},
                                    json=payload, headers={"Authorization": f"Bearer {token}"},
                                )  # fmt: skip
                            except Exception as err:
                                failures.append(f"{method.upper()} {url} {target}={value!r}: {err!r}")
                                continue
                            sent += 1
                            if answer.status_code >= 500:
                                failures.append(f"{method.upper()} {url} {target}={value!r}: {answer.status_code}")
                            assert "tok_0123456789" not in answer.text
    assert not failures, "\n".join(failures[:20])
    assert sent > 1000
    after = _snapshot(tmp_path)
    changed = {p for p in before if after.get(p) != before[p]} | (set(after) - set(before))
    assert not {p for p in changed if not p.startswith("service")}, changed  # exports may queue under service/
    assert store.get_job(first.id).status == "completed"
    assert len(store.candidates(first.id)) == n_candidates
    assert {store.tenant_of(t) for t in tokens.values()} == {"team-a", "team-b"}
