import os

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
