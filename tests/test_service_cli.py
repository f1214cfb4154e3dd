"""`nas token`, `nas export` and `nas serve`'s refusals, on a real SQLite store; `nas pareto` and
`nas hw compare | sweep` through `nas serve` in its own process, answering as they do locally."""

import contextlib
import io
import json
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from nas.cli import main
from nas.client import Client
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
    code, _, err = run_cli("export", "1", "-o", str(tmp_path / "best"), "--db", sqlite_url)
    assert code == 2 and "weights:" in err and "nas train 1" in err and "--allow-untrained" in err  # trained none
    assert not (tmp_path / "best").exists()
    code, out, _ = run_cli(
        "export", "1", "-o", str(tmp_path / "best"), "--format", "torchscript", "--allow-untrained", "--db", sqlite_url
    )
    assert code == 0 and "exported candidate" in out
    assert sorted(p.name for p in (tmp_path / "best").iterdir()) == [
        "README.md", "arch.json", "model.torchscript.pt", "model_card.json"]  # fmt: skip
    code, _, err = run_cli(
        "export", "1", "-o", str(tmp_path / "x"), "--format", "tflite", "--allow-untrained", "--db", sqlite_url
    )
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


# ---- the --server side of pareto and hw, against `nas serve` in its own process ------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A finished score-only job in a SQLite store, served by `nas serve`: (URL, database URL)."""
    tmp = tmp_path_factory.mktemp("served")
    db = f"sqlite:///{tmp / 'nas.db'}"
    spec = tmp / "job.json"
    spec.write_text(json.dumps({**SPEC, "budget": {"trials": 6}}))
    assert run_cli("run", str(spec), "--db", db, "--quiet")[0] == 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with open(tmp / "serve.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "nas", "serve", "--port", str(port), "--db", db, "--data-dir", str(tmp / "svc")],
            cwd=tmp, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    Client(url).health()
                    break
                except ConnectionError:
                    assert proc.poll() is None and time.monotonic() < deadline, (tmp / "serve.log").read_text()
                    time.sleep(0.2)
            yield url, db
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)


def test_pareto_through_a_service_prints_in_its_format(served):
    url, db = served
    code, local, _ = run_cli("pareto", "1", "--db", db, "--format", "csv")
    code, remote, _ = run_cli("pareto", "1", "--server", url, "--format", "csv")
    assert code == 0 and remote == local and remote.startswith("id,")
    code, table, _ = run_cli("pareto", "1", "--server", url)
    assert code == 0 and [h.strip() for h in table.splitlines()[0].split("  ") if h.strip()][:3] == [
        "id",
        "name",
        "proxy score (no units)",
    ]
    assert table == run_cli("pareto", "1", "--db", db)[1]
    code, _, err = run_cli("pareto", "1", "--server", url, "--where", "energy_mj=2")
    assert code == 2 and "'energy_mj<=2'" in err


def test_hw_compare_and_sweep_through_a_service_answer_as_locally(served):
    url, db = served
    code, remote, _ = run_cli("hw", "compare", "1", "--server", url, "--accelerators", "metis-like,imc-8core-1024")
    assert code == 0 and remote == run_cli("hw", "compare", "1", "--db", db, "--accelerators",
                                           "metis-like,imc-8core-1024")[1]  # fmt: skip
    assert "metis-like (the job's)" in remote and not re.search(r"\nmetis-like +\d", remote)  # listed once
    assert "score (no units)" in remote  # a score-only job's value is called a score
    sweep = ("hw", "sweep", "--preset", "poolformer_s12", "--set", "cores=1,2", "--input-size", "64")
    code, remote, _ = run_cli(*sweep, "--server", url)
    assert code == 0 and remote == run_cli(*sweep)[1] and "on 2 variants of metis-like" in remote
    code, _, err = run_cli("hw", "sweep", "--model", "resnet18", "--set", "cores=1,2", "--server", url)
    assert code == 2 and "give --preset or --arch" in err
