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


#: How a PostgreSQL server is named where a DuckDB file could be (`--db`, WORKBENCH_DB).
DATABASE_URL_SCHEMES = ("postgresql://", "postgres://")


def is_database_url(target: str | os.PathLike | None) -> bool:
    """Whether `target` names a PostgreSQL server (postgresql://...) rather than a DuckDB file."""
    return target is not None and str(target).startswith(DATABASE_URL_SCHEMES)


def db_path(override: str | os.PathLike | None = None) -> Path | str:
    """`--db` wins, then WORKBENCH_DB, then data/workbench.duckdb (in the working directory).

    A DuckDB file (or a snapshot folder) is a Path; a PostgreSQL server is its URL, a str.
    """
    value = override or os.environ.get("WORKBENCH_DB") or DEFAULT_DB
    return str(value) if is_database_url(value) else Path(value)


def base_url() -> str:
    """The address participants' invite links point to (WORKBENCH_BASE_URL)."""
    return os.environ.get("WORKBENCH_BASE_URL", "http://127.0.0.1:8501").rstrip("/")


def invite_link(token: str) -> str:
    return f"{base_url()}/?invite={token}"
