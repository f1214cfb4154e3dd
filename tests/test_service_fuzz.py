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
