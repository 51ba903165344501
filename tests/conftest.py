"""Shared test fixtures: temporary stores, the shared datasets, and the fake LLM server plugin."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
SHARED_DATASETS = ROOT.parent / "shared" / "datasets"

sys.path.insert(0, str(TESTS))


@pytest.fixture
def shared_datasets() -> Path:
    if not SHARED_DATASETS.is_dir():
        pytest.skip(f"shared datasets not found at {SHARED_DATASETS}")
    return SHARED_DATASETS


@pytest.fixture(scope="session")
def demo_spec():
    from workbench import config
    from workbench.deliberation import load_deliberation

    return load_deliberation(config.DEMO_DELIBERATION)


# -- the two backends -------------------------------------------------------------------------------
# A test module marked `pytest.mark.both_backends` runs each test that uses `backend` (directly, or
# through `db_target`, `demo_db`, ...) once on a DuckDB file and once on a real PostgreSQL server: the
# server in $WORKBENCH_TEST_POSTGRES, or a throwaway one started from Debian's PostgreSQL 15 binaries
# for the session. Without those binaries the PostgreSQL runs skip, unless $CI or
# $WORKBENCH_REQUIRE_POSTGRES is set: then they fail.

BACKENDS = ("duckdb", "postgresql")


def pytest_generate_tests(metafunc):
    if "backend" in metafunc.fixturenames and metafunc.definition.get_closest_marker("both_backends"):
        metafunc.parametrize("backend", BACKENDS, indirect=True)


@pytest.fixture
def backend(request) -> str:
    """'duckdb', or the backend a `both_backends` test runs on."""
    return getattr(request, "param", "duckdb")


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory):
    """The base URL of a PostgreSQL server for this test session."""
    import pgserver

    given = os.environ.get("WORKBENCH_TEST_POSTGRES")
    if given:
        yield given
        return
    if not pgserver.available():
        message = f"PostgreSQL 15 server binaries not found in {pgserver.BIN} (apt-get install postgresql)"
        if os.environ.get("CI") or os.environ.get("WORKBENCH_REQUIRE_POSTGRES"):
            pytest.fail(message + "; $CI or $WORKBENCH_REQUIRE_POSTGRES requires them")
        pytest.skip(message)
    directory = Path(tempfile.mkdtemp(prefix="wb-pg-"))
    try:
        yield pgserver.start(directory)
    finally:
        pgserver.stop(directory)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server):
    """A URL to an empty schema of its own on the session's server (dropped after the test)."""
    import psycopg

    from workbench.store.backends import close_pools

    schema = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(postgres_server, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
    url = postgres_server + ("&" if "?" in postgres_server else "?") + f"options=-csearch_path%3D{schema}"
    yield url
    from workbench.store import close_stores

    close_stores()
    close_pools(url)
    with psycopg.connect(postgres_server, autocommit=True) as connection:
        connection.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def db_target(backend, tmp_path, request):
    """Where a test's store lives: a DuckDB file in tmp_path, or a PostgreSQL URL of its own."""
    if backend == "postgresql":
        return request.getfixturevalue("postgres_url")
    return tmp_path / "app.duckdb"


@pytest.fixture
def demo_db(db_target, monkeypatch, demo_spec):
    """The app's store (WORKBENCH_DB points at it) with 12 simulated participants; on DuckDB unless the
    test module is marked `both_backends`."""
    from workbench import config
    from workbench.demo import load_world, simulate
    from workbench.store import open_store

    path = db_target
    monkeypatch.setenv("WORKBENCH_DB", str(path))
    monkeypatch.delenv("WORKBENCH_LLM_BASE_URL", raising=False)
    store = open_store(path)
    store.import_bundle(simulate(demo_spec, load_world(config.DATA / "demo_values.yaml"), 12, seed=1))
    return store
