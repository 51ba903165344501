"""Where the store's SQL runs: a DuckDB file, or a PostgreSQL server through a connection pool.

The store modules write their SQL once, in the dialect both engines read (`?` and `$name`
placeholders, `x = ANY(?)`, `array_agg`, window functions in a subquery rather than QUALIFY); a
`Database` runs it. `DuckDB` passes it through; `PostgreSQL` rewrites the placeholders for psycopg,
spells DuckDB's type names the PostgreSQL way, turns a registered DataFrame into a temporary table,
and hands results back with the column types DuckDB gives, so the store's callers cannot tell the
engines apart. Both run every write in a snapshot transaction whose concurrent update of the same row
is a conflict the store retries (DuckDB's optimistic concurrency; PostgreSQL's REPEATABLE READ).
This module holds no domain SQL, and never prints a password: `masked` is how a URL is shown.
"""

from __future__ import annotations

import functools
import re
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import pandas as pd

from ..config import is_database_url as is_url


def masked(target: str | Path) -> str:
    """`target` fit to show: a URL's password replaced by ***; a file path as it is."""
    text = str(target)
    if not is_url(text):
        return text
    parts = urlsplit(text)
    if parts.password is None:
        text = re.sub(r"password=[^&\s]*", "password=***", text)
        return text
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return re.sub(r"password=[^&\s]*", "password=***", urlunsplit(parts._replace(netloc=netloc)))


def frame_of(columns: list[str], rows: list[tuple], kinds: list[str]) -> pd.DataFrame:
    """A DataFrame with the column types DuckDB's `.df()` gives: `kinds` says, per column, 'int32',
    'int64', 'bool', 'timestamp', 'float' or 'object' (lists as plain lists)."""
    frame = pd.DataFrame.from_records(rows, columns=columns) if rows else pd.DataFrame(
        {c: pd.Series(dtype=object) for c in columns})
    for column, kind in zip(columns, kinds, strict=True):
        values = frame[column]
        nulls = bool(values.isna().any()) if len(values) else False
        if kind in ("int32", "int64"):
            frame[column] = values.astype(kind.capitalize() if nulls else kind)
        elif kind == "bool":
            frame[column] = values.astype("boolean" if nulls else bool)
        elif kind == "float":
            frame[column] = values.astype("float64")
        elif kind == "timestamp":
            frame[column] = pd.to_datetime(values).astype("datetime64[us]")
    return frame


class DuckDB:
    """One DuckDB connection per process; every unit of work takes a cursor of its own."""

    kind = "duckdb"

    def __init__(self, connection) -> None:
        import duckdb

        self.con = connection
        self.conflicts = (duckdb.TransactionException,)
        self.clashes = (duckdb.ConstraintException,)
        self.errors = (duckdb.Error,)

    @contextmanager
    def cursor(self) -> Iterator[Any]:
        cursor = self.con.cursor()
        try:
            yield cursor
        finally:
            cursor.close()

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        with self.cursor() as cursor:
            cursor.begin()
            try:
                yield cursor
            except BaseException:
                cursor.rollback()
                raise
            cursor.commit()

    def close(self) -> None:
        self.con.close()


# -- PostgreSQL ------------------------------------------------------------------------------------

#: A string literal (left alone), a placeholder, a percent sign, or a DuckDB-only type name.
_TOKENS = re.compile(r"'(?:[^']|'')*'|\?|\$[A-Za-z_]\w*|%|\bDOUBLE\b(?!\s+PRECISION)", re.IGNORECASE)


@functools.lru_cache(maxsize=4096)
def postgres_sql(sql: str) -> tuple[str, tuple[str, ...]]:
    """The store's SQL as psycopg takes it, and the names of its `$name` placeholders in order.

    `?` → %s, each `$name` → %s of its own (one server parameter used at several places must have one
    type, and PostgreSQL may deduce different ones), `%` → %%, DOUBLE → DOUBLE PRECISION.
    """
    names: list[str] = []

    def token(match: re.Match) -> str:
        text = match.group(0)
        if text.startswith("'"):  # a literal keeps its ? and $ but not a lone % (psycopg reads those)
            return text.replace("%", "%%")
        if text == "?":
            return "%s"
        if text.startswith("$"):
            names.append(text[1:])
            return "%s"
        if text == "%":
            return "%%"
        return "DOUBLE PRECISION"

    return _TOKENS.sub(token, sql), tuple(names)


def _plain(value: Any) -> Any:
    """A parameter psycopg can send: numpy scalars and arrays, pandas timestamps and NaN/NaT as Python's."""
    if value is None or isinstance(value, str | bool | int | bytes):
        return value
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return _plain(value.item())
    if isinstance(value, float):
        return None if value != value else value
    if isinstance(value, pd.Timestamp):
        return None if pd.isna(value) else value.to_pydatetime()
    if value is pd.NaT or value is pd.NA:
        return None
    return value


def _params(params: list | tuple | dict | None, names: tuple[str, ...]) -> list:
    if params is None:
        return []
    if isinstance(params, dict):
        return [_plain(params[name]) for name in names]
    return [_plain(v) for v in params]


#: PostgreSQL type oids → the kind of column DuckDB would have given (see `frame_of`).
_KINDS = {21: "int32", 23: "int32", 20: "int64", 16: "bool", 700: "float", 701: "float", 1700: "float",
          1114: "timestamp"}


class PostgresCursor:
    """A psycopg cursor that takes the store's SQL (see `postgres_sql`) and DuckDB's `register`."""

    def __init__(self, cursor) -> None:
        self._cursor = cursor

    def execute(self, sql: str, params: list | tuple | dict | None = None) -> PostgresCursor:
        text, names = postgres_sql(sql)
        self._cursor.execute(text, _params(params, names))
        return self

    def executemany(self, sql: str, rows) -> PostgresCursor:
        text, names = postgres_sql(sql)
        self._cursor.executemany(text, [_params(r, names) for r in rows])
        return self

    def fetchall(self) -> list[tuple]:
        return self._cursor.fetchall() if self._cursor.description is not None else []

    @property
    def description(self):
        return self._cursor.description

    def df(self) -> pd.DataFrame:
        description = self._cursor.description or []
        rows = self.fetchall()
        return frame_of([d.name for d in description], rows, [_KINDS.get(d.type_code, "object") for d in description])

    def register(self, name: str, frame: pd.DataFrame) -> None:
        """DuckDB reads a DataFrame as a table; here it becomes a temporary table of this transaction."""
        table = _identifier(name)
        columns = [(str(c), _column_type(frame[c])) for c in frame.columns]
        self._cursor.execute(f"DROP TABLE IF EXISTS pg_temp.{table}")
        self._cursor.execute(f"CREATE TEMPORARY TABLE {table} ("
                             + ", ".join(f"{_identifier(c)} {t}" for c, t in columns) + ") ON COMMIT DROP")
        names = ", ".join(_identifier(c) for c, _ in columns)
        with self._cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for row in frame.itertuples(index=False, name=None):
                copy.write_row([_plain(v) for v in row])

    def unregister(self, name: str) -> None:
        self._cursor.execute(f"DROP TABLE IF EXISTS pg_temp.{_identifier(name)}")


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _column_type(values: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(values):
        return "BOOLEAN"
    if pd.api.types.is_integer_dtype(values):
        return "BIGINT"
    if pd.api.types.is_float_dtype(values):
        return "DOUBLE PRECISION"
    if pd.api.types.is_datetime64_any_dtype(values):
        return "TIMESTAMP"
    sample = next((v for v in values if v is not None and not (isinstance(v, float) and v != v)), None)
    if isinstance(sample, list | tuple | np.ndarray):
        return "VARCHAR[]"
    if isinstance(sample, bool):
        return "BOOLEAN"
    if isinstance(sample, int | np.integer):
        return "BIGINT"
    if isinstance(sample, float):
        return "DOUBLE PRECISION"
    if isinstance(sample, datetime):
        return "TIMESTAMP"
    return "VARCHAR"


class PostgreSQL:
    """A pool of connections to one PostgreSQL database (the URL's), shared by the store's threads."""

    kind = "postgresql"
    #: Connections per process: plenty for one app process on a few cores (a server allows 100 by default,
    #: shared by every worker and the command line).
    POOL_SIZE = 10

    def __init__(self, url: str, *, max_size: int = POOL_SIZE) -> None:
        import psycopg
        from psycopg.types.string import TextLoader
        from psycopg_pool import ConnectionPool

        from ..errors import Unavailable

        self.url = url
        self._psycopg = psycopg
        self.conflicts = (psycopg.errors.SerializationFailure, psycopg.errors.DeadlockDetected)
        self.clashes = (psycopg.errors.UniqueViolation,)
        self.errors = (psycopg.Error,)

        def configure(connection) -> None:
            # JSON columns come back as the text DuckDB gives, so callers parse them the same way.
            for name in ("json", "jsonb"):
                connection.adapters.register_loader(name, TextLoader)
            connection.autocommit = True  # a read is one statement; a write opens its own transaction

        try:  # one plain connection first: a wrong address or password fails at once, with the server's reason
            psycopg.connect(url, connect_timeout=10).close()
        except psycopg.Error as exc:
            raise Unavailable(f"cannot connect to the database {masked(url)}: {_first_line(exc)}") from None
        try:
            # check: a connection the server dropped (a restart) is replaced before it is handed out.
            self.pool = ConnectionPool(url, min_size=1, max_size=max_size, configure=configure, open=True,
                                       timeout=60, name=f"workbench-{id(self)}",
                                       check=ConnectionPool.check_connection)
            self.pool.wait(timeout=30)
        except psycopg.Error as exc:
            raise Unavailable(f"cannot connect to the database {masked(url)}: {_first_line(exc)}") from None
        except Exception as exc:  # psycopg_pool.PoolTimeout: the server did not answer
            self._close_quietly()
            raise Unavailable(f"cannot connect to the database {masked(url)}: {_first_line(exc)}") from None
        _open_pools.add(self)

    def _close_quietly(self) -> None:
        try:
            self.pool.close(timeout=1)
        except Exception:  # noqa: BLE001 - already failing; the first error is the one to report
            pass

    @contextmanager
    def cursor(self) -> Iterator[PostgresCursor]:
        with self.pool.connection() as connection, connection.cursor() as cursor:
            yield PostgresCursor(cursor)

    @contextmanager
    def transaction(self) -> Iterator[PostgresCursor]:
        """BEGIN ISOLATION LEVEL REPEATABLE READ ... COMMIT: a snapshot, and a concurrent update of a row
        this transaction also writes fails with a serialization failure (retried by the store)."""
        with self.pool.connection() as connection:
            with connection.cursor() as cursor:
                cursor.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
                try:
                    yield PostgresCursor(cursor)
                except BaseException:
                    try:
                        cursor.execute("ROLLBACK")
                    except self._psycopg.Error:  # a lost connection has nothing to roll back
                        pass
                    raise
                cursor.execute("COMMIT")

    def close(self) -> None:
        _open_pools.discard(self)
        self.pool.close(timeout=5)


_open_pools: weakref.WeakSet[PostgreSQL] = weakref.WeakSet()
_pools_lock = threading.Lock()


def close_pools(url_prefix: str) -> None:
    """Close every pool this process holds to a URL starting with `url_prefix` (tests drop their schema after)."""
    with _pools_lock:
        for database in list(_open_pools):
            if database.url.startswith(url_prefix):
                database.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
