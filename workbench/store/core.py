"""The store's foundation: the database (a DuckDB file or a PostgreSQL server), migrations, units of work.

Every other store module builds on `StoreCore`: a read takes its own cursor and fetches what it
executes; a write runs in its own transaction on its own cursor and is retried when the database
reports a conflict between concurrent transactions. `backends` runs the same SQL on either engine.
Nothing outside `workbench.store` may hold a cursor.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from .. import config
from ..errors import InputError, Unavailable, WorkbenchError
from ..errors import NotFound as NotFound  # the store modules raise it from here
from . import backends, durability

SCHEMAS = config.SCHEMAS
#: PostgreSQL's own spelling of each migration, numbered and named as the DuckDB ones.
POSTGRES_SCHEMAS = SCHEMAS / "postgresql"


class DatabaseLocked(Unavailable):
    """Another process holds the DuckDB file (DuckDB admits one writing process per file).

    `pid` is the holder's process id as DuckDB reports it (None if it did not say); who that is and
    what to do is `workbench.serving`'s to say, since only it knows about running apps.
    """

    def __init__(self, path: str, pid: int | None, detail: str) -> None:
        self.path, self.pid = path, pid
        holder = f"process {pid}" if pid else "another process"
        super().__init__(f"the database {path} is in use by {holder} ({detail})")


#: How DuckDB names the holder of a file lock ("Conflicting lock is held in /usr/bin/python (PID 123)").
_LOCK_HOLDER = re.compile(r"Conflicting lock is held in .*?\(PID (\d+)\)")


def utcnow() -> datetime:
    """Naive UTC, the only kind of timestamp the store keeps."""
    return datetime.now(UTC).replace(tzinfo=None)


def as_timestamp(value: datetime | str | None, *, field: str = "until") -> datetime | None:
    """Accept a datetime or an ISO date/time string ('2023-10-18', '2023-10-18T12:00:00Z');
    anything else is an `InputError` naming `field`."""
    if value is None or isinstance(value, datetime):
        if isinstance(value, datetime) and value.tzinfo is not None:
            return value.astimezone(UTC).replace(tzinfo=None)
        return value
    try:
        ts = pd.Timestamp(value)
        if ts is pd.NaT:
            raise ValueError(value)
    except (ValueError, TypeError, OverflowError):
        raise InputError(f"{field}: not a date or time: {str(value)[:60]!r} (use e.g. 2023-10-18 or"
                         " 2023-10-18T12:00:00Z)") from None
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts.to_pydatetime()


def migrations(kind: str = "duckdb") -> list[tuple[int, str, str]]:
    """The numbered migrations in schemas/: (version, name, sql), in order, for a kind of database.

    PostgreSQL runs the same migrations, with DuckDB's type names spelt its way (`postgres_ddl`), or
    schemas/postgresql/NNN_name.sql where DuckDB's SQL has no PostgreSQL spelling (QUALIFY in a view).
    """
    found = []
    for path in sorted(SCHEMAS.glob("[0-9][0-9][0-9]_*.sql")):
        sql = path.read_text()
        if kind == "postgresql":
            own = POSTGRES_SCHEMAS / path.name
            sql = own.read_text() if own.is_file() else postgres_ddl(sql)
        found.append((int(path.name[:3]), path.stem, sql))
    versions = [v for v, _, _ in found]
    if versions != list(range(1, len(versions) + 1)):
        raise WorkbenchError(f"migrations in {SCHEMAS} must be numbered 001, 002, ... without gaps: {versions}")
    strays = {p.name for p in POSTGRES_SCHEMAS.glob("*.sql")} - {p.name for p in SCHEMAS.glob("*.sql")}
    if strays:
        raise WorkbenchError(f"{POSTGRES_SCHEMAS} has migrations that {SCHEMAS} lacks: {sorted(strays)}")
    return found


def postgres_ddl(sql: str) -> str:
    """A DuckDB migration in PostgreSQL's spelling: FLOAT[] is REAL[], DOUBLE is DOUBLE PRECISION, an empty
    list literal is '{}'."""
    sql = re.sub(r"\bFLOAT\[\]", "REAL[]", sql)
    sql = re.sub(r"\bDOUBLE\b(?!\s+PRECISION)", "DOUBLE PRECISION", sql)
    return re.sub(r"DEFAULT \[\]", "DEFAULT '{}'", sql)


class StoreCore:
    """Connection, migrations and the two kinds of unit of work (read, write)."""

    #: Concurrent transactions that touch the same rows conflict in DuckDB; retry a few times.
    WRITE_RETRIES = 8
    #: A unique-key clash with a transaction that committed meanwhile (two participants proposing the
    #: same new context at once) vanishes on retry, because the retried work reads the committed row;
    #: a real duplicate fails again, so it is retried only this often before it is raised.
    CONSTRAINT_RETRIES = 2

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        self.path = str(path)
        self._read_only, self._closed = read_only, False
        self._lock = threading.Lock()  # guards migrations only; units of work run concurrently
        if backends.is_url(self.path):
            self._db = backends.PostgreSQL(self.path)
            if not read_only:
                self.migrate()
            return
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            durability.refuse_damaged_log(self.path)  # DuckDB would open it short of acknowledged writes
        try:
            self._con = duckdb.connect(self.path, read_only=read_only)
        except duckdb.Error as exc:
            holder = _LOCK_HOLDER.search(str(exc))
            if isinstance(exc, duckdb.IOException) and (holder or "Could not set lock" in str(exc)):
                raise DatabaseLocked(self.path, int(holder.group(1)) if holder else None,
                                     "DuckDB admits one process per file") from None
            raise durability.opening_error(self.path, exc) or Unavailable(
                f"cannot open the database {self.path}: {exc}") from exc
        self._db = backends.DuckDB(self._con)
        if not read_only:
            self.migrate()

    @property
    def kind(self) -> str:
        """'duckdb' or 'postgresql'."""
        return self._db.kind

    @property
    def name(self) -> str:
        """The database as it may be shown: the file, or the server's URL without its password."""
        return backends.masked(self.path)

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Fold the write-ahead log into the file, then close: a clean exit leaves no log to replay."""
        if self._closed:
            return
        self._closed = True
        if self.kind == "postgresql":
            self._db.close()
            return
        if not self._read_only:
            try:
                self.checkpoint()
            except duckdb.Error:  # a unit of work still running: DuckDB checkpoints at close when it can
                pass
        self._con.close()

    def checkpoint(self) -> None:
        if self.kind == "postgresql":
            return  # the server keeps its own log
        with self._cursor() as cur:
            cur.execute("CHECKPOINT").fetchall()

    def backup(self, target: str | Path | None = None) -> durability.Backup:
        """A copy of the database at `target` (a file, or a folder; default `backups/` beside it),
        made after a CHECKPOINT and verified by reopening it. Only while no other process has the file."""
        if self.kind == "postgresql":
            raise InputError(f"--db: {self.name} is a PostgreSQL server; back it up with pg_dump, or write a"
                             " snapshot for analysis with `workbench snapshot`")
        name = durability.default_backup_path(self.path)
        target = name if target is None else Path(target)
        if target.is_dir():
            target = target / name.name
        self.checkpoint()
        return durability.copy_checkpointed(self.path, target, lambda: durability.table_contents(self._con))

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def migrate(self) -> list[int]:
        """Apply the migrations this database lacks; running it twice changes nothing."""
        if self.kind == "postgresql":
            return self._migrate_postgres()
        applied: list[int] = []
        with self._lock:
            cur = self._con.cursor()
            try:
                cur.execute(
                    "CREATE TABLE IF NOT EXISTS schema_version ("
                    " version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)"
                )
                have = {row[0] for row in cur.execute("SELECT version FROM schema_version").fetchall()}
                for version, name, sql in migrations():
                    if version in have:
                        continue
                    cur.begin()
                    try:
                        cur.execute(sql)
                        cur.execute(
                            "INSERT INTO schema_version VALUES (?, ?, ?)", [version, name, utcnow()]
                        )
                        cur.commit()
                    except Exception:
                        cur.rollback()
                        raise
                    applied.append(version)
            finally:
                cur.close()
        return applied

    def _migrate_postgres(self) -> list[int]:
        """All missing migrations in one transaction, under an advisory lock, so that app workers
        starting together apply each once (PostgreSQL's DDL is transactional)."""
        applied: list[int] = []
        with self._db.pool.connection() as connection, connection.cursor() as cur:
            cur.execute("BEGIN")
            try:
                cur.execute("SELECT pg_advisory_xact_lock(hashtext('workbench-migrations'))")
                cur.execute(
                    "CREATE TABLE IF NOT EXISTS schema_version ("
                    " version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)")
                cur.execute("SELECT version FROM schema_version")
                have = {row[0] for row in cur.fetchall()}
                for version, name, sql in migrations("postgresql"):
                    if version in have:
                        continue
                    cur.execute(sql.encode())  # no parameters: several statements in one go
                    cur.execute("INSERT INTO schema_version VALUES (%s, %s, %s)", [version, name, utcnow()])
                    applied.append(version)
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        return applied

    def write_snapshot(self, directory: str | Path) -> Path:
        """A consistent copy of the whole database, as a new DuckDB file in `directory`.

        One statement, so one transaction: the copy is the database as of one moment, while
        participants keep writing. The file is readable by its owner only (it holds everything,
        staff password hashes included). Lets the command line read a file this process serves.
        """
        fd, name = tempfile.mkstemp(prefix="snapshot-", suffix=".duckdb", dir=directory)
        os.close(fd)
        os.remove(name)  # DuckDB creates the file itself; mkstemp only reserved an unused name
        alias = f"snapshot_{os.getpid()}_{threading.get_ident()}"
        with self._cursor() as cur:
            source = cur.execute("SELECT current_database()").fetchall()[0][0]
            quoted = name.replace("'", "''")
            cur.execute(f"ATTACH '{quoted}' AS {alias}")
            try:
                cur.execute(f"COPY FROM DATABASE {_identifier(source)} TO {alias}")
            finally:
                cur.execute(f"DETACH {alias}")
        os.chmod(name, 0o600)
        return Path(name)

    def schema_version(self) -> int:
        row = self._one("SELECT max(version) FROM schema_version")
        return int(row[0] or 0)

    # -- units of work ----------------------------------------------------------------------

    @contextmanager
    def _cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._db.cursor() as cur:
            yield cur

    def _frame(self, sql: str, params: list | dict | None = None) -> pd.DataFrame:
        with self._cursor() as cur:
            frame = cur.execute(sql, params or []).df()
        # DuckDB hands LIST columns over as numpy arrays; the domain speaks plain lists.
        for column in frame.columns:
            if frame[column].dtype == object and any(isinstance(v, np.ndarray) for v in frame[column].head(5)):
                frame[column] = [v.tolist() if isinstance(v, np.ndarray) else v for v in frame[column]]
        return frame

    def _rows(self, sql: str, params: list | dict | None = None) -> list[tuple]:
        with self._cursor() as cur:
            return cur.execute(sql, params or []).fetchall()

    def _one(self, sql: str, params: list | dict | None = None) -> tuple | None:
        with self._cursor() as cur:
            # fetchall, not fetchone: DuckDB results stream, and a half-read result blocks the cursor.
            rows = cur.execute(sql, params or []).fetchall()
        return rows[0] if rows else None

    @contextmanager
    def _transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One write: a cursor of its own, BEGIN ... COMMIT, rolled back on any error."""
        with self._cursor() as cur:
            cur.begin()
            try:
                yield cur
            except BaseException:
                cur.rollback()
                raise
            cur.commit()

    @staticmethod
    def _audit(cur, deliberation_id: str | None, actor_id: int | None, action: str, target: str | None,
               details: dict | None, now: datetime) -> int:
        """The audit row of a staff action, written in that action's own transaction (actor None: the
        command line or the system)."""
        return cur.execute(
            "INSERT INTO audit_log (deliberation_id, actor_id, action, target, details, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
            [deliberation_id, actor_id, action, target, None if details is None else to_json(details), now],
        ).fetchall()[0][0]

    def _write(self, work) -> Any:
        """Run `work(cursor)` in a transaction, retrying when concurrent transactions conflict."""
        delay = 0.005
        for attempt in range(self.WRITE_RETRIES):
            try:
                with self._transaction() as cur:
                    return work(cur)
            except self._db.conflicts + self._db.clashes as exc:
                clash = isinstance(exc, self._db.clashes)
                if attempt == self.WRITE_RETRIES - 1 or (clash and attempt >= self.CONSTRAINT_RETRIES):
                    raise
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def to_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def from_json(value: Any) -> Any:
    if value is None or isinstance(value, dict | list):
        return value
    if isinstance(value, float) and value != value:  # a NULL that came through a DataFrame as NaN
        return None
    return json.loads(value)
