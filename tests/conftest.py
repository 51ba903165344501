"""Shared test fixtures: temporary stores, the shared datasets, and the fake LLM server plugin."""

from __future__ import annotations

import sys
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


@pytest.fixture
def demo_db(tmp_path, monkeypatch, demo_spec):
    """The app's store on a temporary file (WORKBENCH_DB points at it) with 12 simulated participants."""
    from workbench import config
    from workbench.demo import load_world, simulate
    from workbench.store import open_store

    path = tmp_path / "app.duckdb"
    monkeypatch.setenv("WORKBENCH_DB", str(path))
    monkeypatch.delenv("WORKBENCH_LLM_BASE_URL", raising=False)
    store = open_store(path)
    store.import_bundle(simulate(demo_spec, load_world(config.DATA / "demo_values.yaml"), 12, seed=1))
    return store
