"""Keeping the database file safe: the write-ahead-log check at open, backups, and recovery.

DuckDB writes each commit to `FILE.wal` and folds the log into the file at a checkpoint (every
16 MiB, and when the last connection closes). After a crash the next open replays the log. DuckDB
2.0 refuses a log entry whose checksum fails, but it *silently* stops replaying at an entry that
runs past the end of the file, at unreadable bytes where an entry should begin, or at an unreadable
header, and opens without the writes that follow: a truncated or overwritten log loses acknowledged
writes without a word. `wal_damage` reads the log's framing itself (a header, then entries of
`[size: u64][checksum: u64][payload]`, each commit ending with a flush entry) and reports a log that
does not end exactly at a commit, so the store can refuse to open instead. `recover` is the explicit,
logged way to accept the loss; `backup` makes a verified copy of a checkpointed file.
This module never edits a log or a database file unless asked to recover it, and never deletes a log:
a damaged one is kept beside the database.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from ..errors import Conflict, Unavailable

#: The main log, and the log DuckDB 2.0 writes commits to while a checkpoint runs.
LOG_SUFFIXES = (".wal", ".checkpoint.wal")
_WAL_VERSION_ENTRY, _WAL_FLUSH_ENTRY = 98, 100
_FRAMED_VERSION = 2  # version 1 has no framing, version 3 is encrypted: neither is checked here
_FRAME = struct.Struct("<QQ")  # entry size, checksum
_FLUSH_PAYLOAD = bytes([100, 0, _WAL_FLUSH_ENTRY])  # field 100 (u16 LE) = the entry type, varint


class DamagedDatabase(Unavailable):
    """The database file or its write-ahead log does not open cleanly; the message says what to do."""


@dataclass(frozen=True)
class LogDamage:
    """Where a write-ahead log stops making sense: `readable` bytes are whole commits, `size` is the file's."""

    log: Path
    readable: int
    size: int
    reason: str


def log_paths(db_path: str | Path) -> list[Path]:
    return [Path(f"{db_path}{suffix}") for suffix in LOG_SUFFIXES]


def wal_damage(db_path: str | Path) -> LogDamage | None:
    """The first damage found in the database's write-ahead logs, or None when each is whole or absent."""
    for log in log_paths(db_path):
        if log.is_file():
            damage = _scan(log).damage
            if damage is not None:
                return damage
    return None


@dataclass(frozen=True)
class _Scan:
    commits: tuple[int, ...]  # byte offsets just after each flush entry (the end of each commit)
    damage: LogDamage | None


def _scan(log: Path) -> _Scan:
    size = log.stat().st_size
    if size == 0:
        return _Scan((), None)
    with log.open("rb") as f:
        header = _header_end(f.read(256))
        if header is None:
            return _Scan((), LogDamage(log, 0, size, "its header is unreadable"))
        end, version = header
        if version != _FRAMED_VERSION:
            return _Scan((), None)  # a format this check does not know: DuckDB's own checks decide
        commits: list[int] = []
        position = end
        while position < size:
            if size - position < _FRAME.size:
                reason = f"it ends inside the header of the entry at byte {position}"
                break
            f.seek(position)
            length, _ = _FRAME.unpack(f.read(_FRAME.size))
            if position + _FRAME.size + length > size:
                reason = (f"the entry at byte {position} claims {length} bytes but only "
                          f"{size - position - _FRAME.size} follow")
                break
            kind = f.read(min(length, len(_FLUSH_PAYLOAD)))
            position += _FRAME.size + length
            if kind == _FLUSH_PAYLOAD:
                commits.append(position)
        else:
            last = commits[-1] if commits else end
            if last == size:
                return _Scan(tuple(commits), None)
            reason = f"bytes {last}-{size} are entries of a commit that never finished"
    readable = commits[-1] if commits else end
    return _Scan(tuple(commits), LogDamage(log, readable, size, reason))


def _header_end(data: bytes) -> tuple[int, int] | None:
    """Parse the unchecksummed version entry that opens a log: (its length, the log version), or None
    if these bytes are not one. Fields are u16 ids with LEB128 values; 0xFFFF ends the entry."""
    position = 0

    def varint() -> int:
        nonlocal position
        value, shift = 0, 0
        while position < len(data) and shift < 64:
            byte = data[position]
            position += 1
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7
        raise ValueError("unterminated integer")

    def field() -> int:
        nonlocal position
        if position + 2 > len(data):
            raise ValueError("truncated")
        position += 2
        return int.from_bytes(data[position - 2:position], "little")

    try:
        if field() != 100 or varint() != _WAL_VERSION_ENTRY:
            return None
        version = None
        while (number := field()) != 0xFFFF:
            if number in (101, 103):
                value = varint()
                version = value if number == 101 else version
            elif number == 102:  # the database identifier: a list of bytes
                for _ in range(varint()):
                    varint()
            else:
                return None
    except ValueError:
        return None
    return (position, version) if version is not None else None


def refuse_damaged_log(db_path: str | Path) -> None:
    """Raise `DamagedDatabase` if a log would be cut short on open. A log a writer has open may end
    mid-commit for a moment: that is not damage (and the open then meets DuckDB's lock)."""
    damage = wal_damage(db_path)
    if damage is None or _held_by_another_process(db_path):
        return
    raise DamagedDatabase(
        f"the database {db_path} was not opened: its write-ahead log {damage.log} is damaged ({damage.reason});"
        f" DuckDB would silently open it without what the log records after byte {damage.readable} of"
        f" {damage.size}. Nothing was changed. {_WHAT_TO_DO.format(db=db_path)}")


_WHAT_TO_DO = ("Restore the latest backup (see `workbench backup` in the README), or keep every whole commit"
               " the log holds with `workbench recover --db {db}` (it keeps a copy of the damaged log).")


def opening_error(db_path: str | Path, exc: duckdb.Error) -> DamagedDatabase | None:
    """What to tell the user when DuckDB finds the file or its log corrupt; None for other errors
    (a lock held by another process, a missing directory), whose own message says enough."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if re.search(r"WAL", text):
        return DamagedDatabase(f"the database {db_path} was not opened: DuckDB refuses its write-ahead log"
                               f" ({text}). Nothing was changed. {_WHAT_TO_DO.format(db=db_path)}")
    if re.search(r"corrupt|checksum|not a valid DuckDB", text, re.IGNORECASE):
        return DamagedDatabase(f"the database {db_path} is damaged ({text}). Nothing was changed. Restore the"
                               " latest backup (see `workbench backup` in the README).")
    return None


def _held_by_another_process(db_path: str | Path) -> bool:
    """Whether a writer has the file open: another process (DuckDB's lock), or this one (DuckDB refuses a
    second, read-only configuration of a file a connection in this process has open)."""
    try:
        duckdb.connect(str(db_path), read_only=True).close()
    except duckdb.Error as exc:
        return bool(re.search(r"lock|different configuration", str(exc), re.IGNORECASE))
    return False


# -- recovery -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recovery:
    """What `recover` did to each damaged log: kept a copy, and replayed `kept_bytes` of its `size`."""

    log: Path
    copy: Path
    kept_bytes: int
    size: int


def recover(db_path: str | Path, *, now: datetime | None = None) -> list[Recovery]:
    """Let a database whose log is damaged open again, keeping every whole commit the log holds.

    Each damaged log is first copied to `LOG.damaged-YYYYmmddTHHMMSSZ`, then cut after its last whole
    commit, or after the last commit before an entry whose checksum DuckDB refuses; a log with no
    whole commit is set aside entirely (the file then holds what its last checkpoint did). Opening the
    database afterwards replays what is left. Returns [] when nothing needed recovering.
    """
    if _held_by_another_process(db_path):
        raise Unavailable(f"the database {db_path} is in use by another process; stop it before recovering")
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    done = []
    for log in log_paths(db_path):
        if not log.is_file() or log.stat().st_size == 0:
            continue
        scan = _scan(log)
        refused = _refused_entry(db_path, log)
        if scan.damage is None and refused is None:
            continue
        copy = log.with_name(f"{log.name}.damaged-{stamp}")
        shutil.copy2(log, copy)
        size = log.stat().st_size
        keep = scan.damage.readable if scan.damage is not None else size
        while True:
            if refused is not None:  # the last commit that ends before the refused entry begins
                keep = max((c for c in scan.commits if c <= refused - _FRAME.size), default=0)
            _cut(log, keep)
            refused = _refused_entry(db_path, log)
            if refused is None:
                break
        done.append(Recovery(log, copy, keep if log.exists() else 0, size))
    return done


def _cut(log: Path, size: int) -> None:
    with log.open("r+b") as f:
        if size == 0 or _header_end(f.read(256)) is None:
            size = 0
        else:
            f.truncate(size)
            f.flush()
            os.fsync(f.fileno())
    if size == 0:
        log.unlink()


def _refused_entry(db_path: str | Path, log: Path) -> int | None:
    """The byte position of the entry of `log` whose checksum DuckDB refuses, or None if the file opens."""
    try:
        duckdb.connect(str(db_path), read_only=True).close()
    except duckdb.Error as exc:
        found = re.search(r"entry at byte position (\d+)", str(exc))
        if found is None or str(log) not in str(exc) or not log.exists():
            raise DamagedDatabase(f"the database {db_path} does not open even without its damaged log ({exc});"
                                  " restore the latest backup (see `workbench backup` in the README)") from None
        return int(found.group(1))
    return None


# -- backups --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Backup:
    path: Path
    tables: int
    rows: int
    size: int


def default_backup_path(db_path: str | Path, *, now: datetime | None = None) -> Path:
    """`backups/NAME-YYYYmmddTHHMMSSZ.duckdb` beside the database."""
    db = Path(db_path)
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return db.parent / "backups" / f"{db.stem}-{stamp}{db.suffix or '.duckdb'}"


def copy_checkpointed(db_path: str | Path, target: Path, contents) -> Backup:
    """Copy a database file that was just checkpointed (its log empty), then open the copy and check
    that it holds what `contents()` says the original holds ({table: (rows, content hash)})."""
    db = Path(db_path)
    if target.exists():
        raise Conflict(f"{target} already exists; choose another name with --to")
    if any(log.is_file() and log.stat().st_size > 0 for log in log_paths(db)):
        raise Unavailable(f"{db} still has an unfolded write-ahead log after CHECKPOINT: another connection is"
                          " writing; stop `workbench serve` and try again")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    shutil.copyfile(db, partial)
    with partial.open("rb+") as f:
        os.fsync(f.fileno())
    try:
        con = duckdb.connect(str(partial), read_only=True)
        try:
            copied = table_contents(con)
        finally:
            con.close()
        expected = contents()
        if copied != expected:
            differ = sorted(t for t in set(copied) | set(expected) if copied.get(t) != expected.get(t))
            raise Unavailable(f"the backup {target} does not match {db} (tables {', '.join(differ)}); nothing was"
                              " kept. Is another process writing to the database?")
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, target)
    return Backup(target, len(copied), sum(rows for rows, _ in copied.values()), target.stat().st_size)


def table_contents(con) -> dict[str, tuple[int, int]]:
    """{table: (rows, an order-independent hash of every row)}: reading every row makes DuckDB verify
    the checksum of every block it reads."""
    cur = con.cursor()
    try:
        tables = [r[0] for r in cur.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
            " AND table_type = 'BASE TABLE' ORDER BY table_name").fetchall()]
        out = {}
        for table in tables:
            rows, digest = cur.execute(
                f'SELECT count(*), coalesce(bit_xor(hash(t)), 0) FROM "{table}" AS t').fetchall()[0]
            out[table] = (int(rows), int(digest))
        return out
    finally:
        cur.close()
