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
