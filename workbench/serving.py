"""Serving the web app: how Streamlit is started, who serves a database file, and what to tell others.

`workbench serve` starts Streamlit with every option it needs on the command line
(`streamlit_command`), so an installed wheel run from any directory serves exactly as the checkout
does: no file watcher, no rerun on save, no developer toolbar. While it serves, the app keeps a
small record next to the database (`DB.serving`: its process id, address and a key for asking it
for a snapshot), so that whoever else finds the file locked — a second `workbench serve`, a CLI
command — is told which app holds it and what to do instead of DuckDB's lock error. DuckDB admits
one process per file, so a CLI read of a served file goes through the app: it asks the app for a
consistent snapshot (`snapshot_from_app`) and reads that.
This module never imports Streamlit and holds no SQL; it decides nothing about who may sign in.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

from . import config
from .errors import Unavailable
from .store import DatabaseLocked, Store

#: Streamlit options every server gets, whatever config.toml says or does not say (an installed
#: wheel has no .streamlit directory). `.streamlit/config.toml` in the checkout repeats them for a
#: plain `streamlit run`; a test keeps the two equal.
STREAMLIT_OPTIONS: dict[str, str] = {
    # Watching files costs a core on a big tree and reruns every session on a save: never in production.
    "server.fileWatcherType": "none",
    "server.runOnSave": "false",
    "server.headless": "true",
    "browser.gatherUsageStats": "false",
    # Participants and staff see the app, not Streamlit's developer menu or "Deploy".
    "client.toolbarMode": "viewer",
    # A bug shows no trace or server paths: the app shows its own message with an error id.
    "client.showErrorDetails": "none",
    "theme.primaryColor": "#2f6f9f",
    # No full garbage collection after every script run: on this app's heap (pandas, DuckDB, Streamlit)
    # it was 80% of the server's CPU per click. Python's own generational collector still runs
    # (bench_app_load.py measures the server's memory over a long walk with this off).
    "runner.postScriptGC": "false",
}

#: How long the command line waits for a running app to write a snapshot.
SNAPSHOT_TIMEOUT = 600.0


def streamlit_command(*, host: str, port: int, secrets_file: Path | None = None) -> list[str]:
    """The command `workbench serve` becomes: Streamlit running the app's ASGI entry with every option."""
    options = {**STREAMLIT_OPTIONS, "server.address": host, "server.port": str(port)}
    if secrets_file is not None:
        options["secrets.files"] = str(secrets_file)
    flags = [part for name, value in options.items() for part in (f"--{name}", value)]
    return [sys.executable, "-m", "streamlit", "run", str(config.SERVER), *flags]


# -- who serves a database file -------------------------------------------------------------------


@dataclass(frozen=True)
class ServingRecord:
    """What a running app says about itself, next to the database it serves."""

    pid: int
    url: str  # where people open the app
    local_url: str  # where a command on this machine reaches it
    db: str
    started_at: str
    snapshot_key: str = field(repr=False)


def record_path(db: Path) -> Path:
    return db.with_name(db.name + ".serving")


def write_record(db: Path, *, host: str, port: int) -> ServingRecord:
    """Say that this process serves `db` (readable by its owner only: it holds the snapshot key)."""
    local_host = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
    record = ServingRecord(pid=os.getpid(), url=config.base_url(),
                           local_url=f"http://{_url_host(local_host)}:{port}", db=str(db.resolve()),
                           started_at=datetime.now().astimezone().isoformat(timespec="seconds"),
                           snapshot_key=secrets.token_urlsafe(32))
    path = record_path(db)
    partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(asdict(record), out)
    partial.replace(path)
    return record


def remove_record(db: Path) -> None:
    """Remove this process's record (a record another process wrote meanwhile is left alone)."""
    found = read_record(db)
    if found is not None and found.pid == os.getpid():
        record_path(db).unlink(missing_ok=True)


def read_record(db: Path) -> ServingRecord | None:
    try:
        return ServingRecord(**json.loads(record_path(db).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def serving_app(db: Path, pid: int | None) -> ServingRecord | None:
    """The app serving `db`, if the process holding its lock is one (a stale record is ignored)."""
    found = read_record(db)
    if found is None or (pid is not None and found.pid != pid) or not _alive(found.pid):
        return None
    return found


def busy_message(exc: DatabaseLocked, doing: str) -> str:
    """What to tell someone who cannot `doing` (e.g. "write to it") because another process holds the file."""
    db = Path(exc.path)
    app = serving_app(db, exc.pid)
    if app is None:
        command = _command_of(exc.pid)
        holder = (f"process {exc.pid}" + (f" ({command})" if command else "")) if exc.pid else "another process"
        return (f"{db} is open in {holder}, which holds DuckDB's lock on it: only one process may use a"
                f" database file. Close that program (or wait for it to finish) and {doing} again.")
    return (f"{db} is served by the workbench app at {app.url} (process {app.pid}, since {app.started_at}),"
            f" and DuckDB lets only that process use the file, so this command cannot {doing}. Do it in the"
            f" app (its staff pages: {app.url}), or stop the app (Ctrl-C in its terminal, or `kill"
            f" {app.pid}`), run the command, and start the app again with `workbench serve`.")


def refuse_if_served(db: Path) -> None:
    """Raise Unavailable, saying who serves `db`, unless this process can open it (and migrate it)."""
    try:
        Store(db).close()
    except DatabaseLocked as exc:
        app = serving_app(db, exc.pid)
        if app is None:
            raise Unavailable(busy_message(exc, "serve it")) from None
        raise Unavailable(f"{db} is already served by the workbench app at {app.url} (process {app.pid},"
                          f" since {app.started_at}). Open that address, or stop that server first (Ctrl-C"
                          f" in its terminal, or `kill {app.pid}`); DuckDB lets only one process serve a"
                          " database file.") from None


def snapshot_from_app(exc: DatabaseLocked) -> Path:
    """Ask the app serving the locked file for a snapshot; its path (the caller deletes its folder).

    Raises Unavailable, with what to do, when no workbench app holds the file or it cannot answer.
    """
    app = serving_app(Path(exc.path), exc.pid)
    if app is None:
        raise Unavailable(busy_message(exc, "read it")) from None
    request = urllib.request.Request(f"{app.local_url}{config.SNAPSHOT_ENDPOINT}", method="POST", data=b"",
                                     headers={"Authorization": f"Bearer {app.snapshot_key}"})
    try:
        with urllib.request.urlopen(request, timeout=SNAPSHOT_TIMEOUT) as response:
            return Path(json.loads(response.read())["path"])
    except (urllib.error.URLError, OSError, ValueError, KeyError) as failure:
        raise Unavailable(busy_message(exc, "read it") + f" (Asking the app for a snapshot failed: {failure}.)"
                          ) from None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process, but alive
        return True
    return True


def _command_of(pid: int | None) -> str:
    """The command line of process `pid` where the system tells it (Linux), else ''."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()[:200]
    except OSError:
        return ""


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
