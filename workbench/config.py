"""Where things are: the database path, the demo deliberation, the app's address.

Reads environment variables only; never opens files or connections itself.
"""

from __future__ import annotations

import os
from pathlib import Path

#: The installed package: everything the app needs at run time lives in it (it works from a wheel).
PACKAGE = Path(__file__).resolve().parent
#: The source checkout (tests and benchmarks only; an installed wheel has no checkout).
ROOT = PACKAGE.parent
DATA = PACKAGE / "data"
SCHEMAS = PACKAGE / "schemas"
APP = PACKAGE / "webapp" / "main.py"
#: What `workbench serve` runs: the app (APP) plus the app's own HTTP endpoints (webapp/endpoints.py).
SERVER = PACKAGE / "webapp" / "server.py"
#: The app's own HTTP endpoints, beside Streamlit's: the staff session cookie and CLI snapshots.
SESSION_ENDPOINT = "/_workbench/session"
SIGN_OUT_ENDPOINT = "/_workbench/sign-out"
SNAPSHOT_ENDPOINT = "/_workbench/snapshot"
DEFAULT_DB = Path("data") / "workbench.duckdb"  # relative to the working directory
DEMO_DELIBERATION = DATA / "demo.yaml"
DEMO_ID = "demo"


def db_path(override: str | os.PathLike | None = None) -> Path:
    """`--db PATH` wins, then WORKBENCH_DB, then data/workbench.duckdb (in the working directory)."""
    if override:
        return Path(override)
    env = os.environ.get("WORKBENCH_DB")
    return Path(env) if env else DEFAULT_DB


def base_url() -> str:
    """The address participants' invite links point to (WORKBENCH_BASE_URL)."""
    return os.environ.get("WORKBENCH_BASE_URL", "http://127.0.0.1:8501").rstrip("/")


def invite_link(token: str) -> str:
    return f"{base_url()}/?invite={token}"
