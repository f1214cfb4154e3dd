"""`nas token`, `nas export` and `nas serve`'s refusals, on a real SQLite store."""

import contextlib
import io
import json

import pytest

from nas.cli import main
from nas.store import Store

SPEC = {
    "name": "cli-export",
    "space": "metaformer-tiny",
    "input_shape": [3, 32, 32],
    "evaluator": {"proxy": "synflow", "resolution": 16, "batch": 4, "train": 0},
    "budget": {"trials": 3},
    "workers": {"count": 0},
}


def run_cli(*args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def test_token_create_prints_it_once_and_stores_its_hash(sqlite_url):
    code, out, err = run_cli("token", "create", "--tenant", "team-a", "--db", sqlite_url)
    token = out.strip()
    assert code == 0 and token.startswith("nas_") and "shown once" in err
    store = Store(sqlite_url)
    assert store.tenant_of(token) == "team-a"
    code, out, _ = run_cli("token", "list", "--db", sqlite_url)
    assert "team-a" in out and token not in out and token[:12] in out
    assert run_cli("token", "revoke", token[:12], "--db", sqlite_url)[0] == 0
    assert store.tenant_of(token) is None
    code, _, err = run_cli("token", "create", "--db", sqlite_url)
    assert code == 2 and "--tenant" in err


def test_export_writes_the_chosen_formats(tmp_path, sqlite_url):
    spec = tmp_path / "job.json"
    spec.write_text(json.dumps(SPEC))
    assert run_cli("run", str(spec), "--db", sqlite_url, "--quiet")[0] == 0
    code, out, _ = run_cli("export", "1", "-o", str(tmp_path / "best"), "--format", "torchscript", "--db", sqlite_url)
    assert code == 0 and "exported candidate" in out
    assert sorted(p.name for p in (tmp_path / "best").iterdir()) == [
        "README.md", "arch.json", "model.torchscript.pt", "model_card.json"]  # fmt: skip
    code, _, err = run_cli("export", "1", "-o", str(tmp_path / "x"), "--format", "tflite", "--db", sqlite_url)
    assert code == 2 and "formats: unknown tflite" in err and not (tmp_path / "x").exists()
    code, _, err = run_cli("export", "1", "-o", str(tmp_path / "y"), "--where", "latency_ms<0", "--db", sqlite_url)
    assert code == 2 and "no feasible candidate within latency_ms<0" in err


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.5"])
def test_serve_refuses_to_bind_beyond_this_machine_without_auth(sqlite_url, host):
    code, _, err = run_cli("serve", "--host", host, "--db", sqlite_url)
    assert code == 2 and "--auth" in err and "--insecure" in err


def test_a_service_that_is_not_there_is_named(capsys):
    code, _, err = run_cli("jobs", "--server", "http://127.0.0.1:9")
    assert code == 2 and "cannot reach the service at http://127.0.0.1:9" in err
