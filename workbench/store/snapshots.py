"""Snapshots for analysis: a database's tables as Parquet files plus a manifest, and a store that reads them.

`workbench snapshot --db postgresql://... --to DIR` writes one Parquet file per table, all read in one
transaction (so the folder is the database as of one moment, while participants keep writing), and
`manifest.json` saying what it holds. Every analysis command accepts such a folder as `--db`: it is
loaded into an in-memory DuckDB store of the current schema, analysed there, and nothing is written
back. A snapshot never holds credentials or what guards them: staff accounts, their sessions and
sign-in attempts, the server's signing keys, refused invite look-ups and participants' invite token
hashes are left out.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from ..errors import Conflict, FormatError, Unavailable
from .core import StoreCore, utcnow

MANIFEST = "manifest.json"
FORMAT = "workbench-snapshot"
FORMAT_VERSION = 1
#: Tables that never leave the database in a snapshot (credentials, and what guards them).
LEFT_OUT = ("schema_version", "users", "staff_sessions", "server_keys", "sign_in_attempts", "invite_refusals")
#: Columns blanked in a snapshot: an invite token's hash would let its holder be looked up.
BLANKED = {"participants": ("token_hash",)}


@dataclass(frozen=True)
class SnapshotManifest:
    """What a snapshot folder holds: rows per table, the schema version and the source it was taken from."""

    format: str
    format_version: int
    schema_version: int
    source: str  # the database, as it may be shown (no password)
    backend: str
    taken_at: str  # ISO time, UTC
    tables: dict[str, int]
    left_out: tuple[str, ...]


def is_snapshot(target) -> bool:
    """Whether `target` is a snapshot folder (a directory with a manifest)."""
    try:
        path = Path(target)
        return path.is_dir() and (path / MANIFEST).is_file()
    except (TypeError, OSError):
        return False


def read_manifest(directory: str | Path) -> SnapshotManifest:
    path = Path(directory) / MANIFEST
    try:
        raw = json.loads(path.read_text())
        if raw.get("format") != FORMAT:
            raise ValueError(f"format is {raw.get('format')!r}, not {FORMAT!r}")
        raw["left_out"] = tuple(raw.get("left_out", ()))
        return SnapshotManifest(**raw)
    except (OSError, ValueError, TypeError) as exc:
        raise FormatError(f"{path}: not a workbench snapshot manifest ({exc})") from None


class SnapshotStore(StoreCore):
    def write_parquet_snapshot(self, directory: str | Path) -> SnapshotManifest:
        """Write every table analyses read to `directory` (new, or empty) as Parquet, plus the manifest."""
        directory = Path(directory)
        if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
            raise Conflict(f"--to: {directory} already exists and is not an empty folder; choose a new one")

        def read(cur):  # one transaction: every table as of the same moment
            names = [r[0] for r in cur.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
                " AND table_type = 'BASE TABLE' ORDER BY table_name").fetchall()]
            version = cur.execute("SELECT max(version) FROM schema_version").fetchall()[0][0]
            return version, {name: cur.execute(f'SELECT * FROM "{name}" ORDER BY 1').df()
                             for name in names if name not in LEFT_OUT}

        version, frames = self._write(read)
        partial = directory.with_name(directory.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        try:
            for name, frame in frames.items():
                for column in BLANKED.get(name, ()):
                    frame[column] = pd.Series([None] * len(frame), dtype=object)
                frame.to_parquet(partial / f"{name}.parquet", index=False)
            manifest = SnapshotManifest(FORMAT, FORMAT_VERSION, int(version), self.name, self.kind,
                                        utcnow().isoformat(timespec="seconds") + "Z",
                                        {name: len(frame) for name, frame in frames.items()}, LEFT_OUT)
            (partial / MANIFEST).write_text(json.dumps(asdict(manifest), indent=1))
            if directory.exists():
                directory.rmdir()
            partial.rename(directory)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        return manifest

    def load_parquet_snapshot(self, directory: str | Path) -> SnapshotManifest:
        """Fill this (new, in-memory DuckDB) store with a snapshot's tables, in one transaction."""
        directory = Path(directory)
        manifest = read_manifest(directory)
        if manifest.schema_version > self.schema_version():
            raise Unavailable(f"{directory} was written at schema version {manifest.schema_version}, newer than"
                              f" this workbench's {self.schema_version()}: upgrade the workbench to read it")

        def load(cur):
            for name in manifest.tables:
                path = directory / f"{name}.parquet"
                if not path.is_file():
                    raise FormatError(f"{path}: missing (the manifest lists table {name!r})")
                cur.execute(f'INSERT INTO "{name}" BY NAME SELECT * FROM read_parquet(?)', [str(path)])

        self._write(load)
        return manifest
