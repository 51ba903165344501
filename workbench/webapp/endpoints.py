"""The web app's own HTTP endpoints, served beside Streamlit's by `workbench serve` (webapp/server.py).

`SNAPSHOT_ENDPOINT` writes a consistent copy of the database for the command line
(`workbench.serving`), for whoever shows the key in the app's serving record (a file only its owner
can read). `start_serving` and `stop_serving` are the server's start and stop.
This module never imports Streamlit and holds no SQL.
"""

from __future__ import annotations

import hmac
import shutil
import tempfile
import threading
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from workbench import config, serving
from workbench.store import Store, open_store

#: Set while this process serves the endpoints (server.py's lifespan).
SERVED = threading.Event()


def _store() -> Store:
    return open_store(config.db_path())


class SnapshotKey:
    """The key this process wrote into its serving record (None until it serves)."""

    value: str | None = None


async def snapshot_endpoint(request: Request) -> Response:
    key = SnapshotKey.value
    given = request.headers.get("authorization", "")
    if key is None or not hmac.compare_digest(given.encode(), f"Bearer {key}".encode()):
        return PlainTextResponse("forbidden", status_code=403)
    store = _store()
    folder = tempfile.mkdtemp(prefix=".workbench-snapshot-", dir=Path(store.path).parent)
    try:
        path = await run_in_threadpool(store.write_snapshot, folder)
    except Exception:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return JSONResponse({"path": str(path)})


ROUTES = [
    Route(config.SNAPSHOT_ENDPOINT, snapshot_endpoint, methods=["POST"]),
]


def start_serving(*, host: str, port: int) -> None:
    """Open the database for the life of the server and say who serves it; refuse if another process does.

    Raises workbench.errors.Unavailable naming the other process (`workbench serve` checks first;
    this closes the gap between its check and Streamlit's start).
    """
    db = config.db_path().resolve()
    serving.refuse_if_served(db)
    open_store(db)
    SnapshotKey.value = serving.write_record(db, host=host, port=port).snapshot_key
    SERVED.set()


def stop_serving() -> None:
    SERVED.clear()
    SnapshotKey.value = None
    serving.remove_record(config.db_path().resolve())
