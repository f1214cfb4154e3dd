import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy
import torch


@pytest.fixture(scope="session", autouse=True)
def _two_threads():
    torch.set_num_threads(2)  # the CI machine's cores; more threads only contend


@pytest.fixture
def unfused_attention():
    """timm models built inside see plain matmuls (fvcore cannot count fused attention)."""
    import timm.layers

    timm.layers.set_fused_attn(False)
    yield
    timm.layers.set_fused_attn(True)


# ---- databases ----------------------------------------------------------------------------------

POSTGRES_ENV = "NAS_TEST_POSTGRES_URL"  # `make test` sets it from .ci/postgres
REQUIRE_POSTGRES_ENV = "NAS_REQUIRE_POSTGRES"  # CI: a missing PostgreSQL fails instead of skipping


@pytest.fixture(scope="session")
def postgres_url():
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        message = f"no PostgreSQL: set {POSTGRES_ENV} (`make test` does it through .ci/postgres)"
        if os.environ.get(REQUIRE_POSTGRES_ENV):
            pytest.fail(message)
        pytest.skip(message)
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as conn:  # a fresh schema per session: migrations run from scratch
        conn.exec_driver_sql("DROP SCHEMA public CASCADE")
        conn.exec_driver_sql("CREATE SCHEMA public")
    engine.dispose()
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    """Every store test runs against both backends."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'nas.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'nas.db'}"


# ---- Ray ----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def ray_cluster():
    """A real two-node Ray cluster on this machine (head + one worker node, 1 CPU each), started
    once per session; yields its address. Jobs with two workers necessarily span both nodes."""
    ray_cli = str(Path(sys.executable).parent / "ray")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"127.0.0.1:{port}"
    # Ray >= 2.5x turns token authentication on for `ray start --head`; every node and driver of
    # the cluster then needs RAY_AUTH_MODE=token (the token itself is in ~/.ray, shared here).
    saved = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "token"
    common = ["--num-cpus=1", "--node-ip-address=127.0.0.1", "--disable-usage-stats"]
    start = [[ray_cli, "start", "--head", f"--port={port}", "--include-dashboard=false", *common],
             [ray_cli, "start", f"--address={address}", *common]]  # fmt: skip
    # a fresh machine has no token yet: `ray start` does not make one, `get-auth-token --generate` does
    subprocess.run([ray_cli, "get-auth-token", "--generate"], capture_output=True, check=True)
    try:
        for command in start:
            result = subprocess.run(command, capture_output=True, text=True)
            assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}"
        yield address
    finally:
        subprocess.run([ray_cli, "stop", "--force"], capture_output=True)
        if saved is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = saved


@pytest.fixture
def nas_env(ray_cluster):
    """Environment for `nas` subprocesses: the plug-ins of tests/ importable, the session's Ray."""
    tests_dir = str(Path(__file__).parent)
    path = os.pathsep.join(p for p in (tests_dir, os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, "RAY_ADDRESS": ray_cluster}
