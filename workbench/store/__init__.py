"""The workbench's store: the only place that speaks SQL.

`Store` is a DuckDB file or a PostgreSQL database (`Store("postgresql://...")`) behind a narrow,
domain-named interface (record_wiser_answer, wiser_answers(until=...), cards(...), ...). One `Store`
per process and per database (`open_store`); inside it every unit of work takes its own cursor and
every write its own transaction, so many Streamlit sessions (and, on PostgreSQL, many app processes
and the command line) can write at once.
"""

from __future__ import annotations

import atexit
import threading
from pathlib import Path

from .accounts import AccountStore
from .backends import is_url, masked
from .cards import WITHHELD_TITLE, CardStore
from .core import DatabaseLocked, NotFound, as_timestamp, migrations, utcnow
from .deliberations import DeliberationStore, hash_token, new_token
from .imports import ImportStore
from .judgements import JudgementStore
from .participation import ParticipationStore
from .security import SecurityStore
from .snapshots import SnapshotStore, is_snapshot

__all__ = [
    "DatabaseLocked",
    "NotFound",
    "Store",
    "WITHHELD_TITLE",
    "as_timestamp",
    "is_url",
    "masked",
    "hash_token",
    "migrations",
    "close_stores",
    "is_snapshot",
    "open_snapshot",
    "new_token",
    "open_store",
    "utcnow",
]


class Store(DeliberationStore, ParticipationStore, CardStore, JudgementStore, ImportStore, AccountStore,
            SecurityStore, SnapshotStore):
    """A workbench database file: deliberations, participants, cards, judgements, analyses."""


_open: dict[str, Store] = {}
_open_lock = threading.Lock()


def open_store(path: str | Path) -> Store:
    """The process's one Store for `path` (DuckDB allows a single writing process per file; a PostgreSQL
    URL gets one connection pool per process)."""
    key = str(path) if str(path) == ":memory:" or is_url(path) else str(Path(path).resolve())
    with _open_lock:
        store = _open.get(key)
        if store is None or store.closed:  # closed by a `with open_store(...)` block: open it again
            store = _open[key] = Store(path)
        return store


def open_snapshot(directory: str | Path) -> Store:
    """A snapshot folder (`workbench snapshot`) as an in-memory store to analyse; nothing goes back."""
    store = Store(":memory:")
    try:
        store.load_parquet_snapshot(directory)
    except BaseException:
        store.close()
        raise
    return store


@atexit.register
def close_stores() -> None:
    """Close the process's stores (on exit, or when a server stops), so DuckDB checkpoints and
    releases the file cleanly."""
    with _open_lock:
        for store in _open.values():
            try:
                store.close()
            except Exception:  # noqa: BLE001 - closing at exit must never raise
                pass
        _open.clear()
