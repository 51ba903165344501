"""What every importer checks before it parses a file: its size, its rows, how deep its JSON nests.

The limits themselves are `workbench.models`' (documented there and in the README). Each check
reads raw bytes or file metadata only and returns the reason a file is refused, or None; the
importer raises its own error naming the file. `shown` keeps a bad value short in a message. This
module never parses a whole file into Python objects and never touches the store.
"""

from __future__ import annotations

import re
import reprlib
from pathlib import Path

import numpy as np

from ..models import IMPORT_FILE_MAX_BYTES, IMPORT_JSON_MAX_NESTING, IMPORT_ROWS_MAX

_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_CHUNK = 1 << 24

_short = reprlib.Repr()
_short.maxlevel, _short.maxstring, _short.maxother, _short.maxlist, _short.maxdict = 2, 80, 80, 4, 4


def shown(value: object) -> str:
    """`repr(value)`, cut short: a message quotes at most ~80 characters and 2 levels of nesting."""
    return _short.repr(value)


def _size(n: int) -> str:
    return f"{n / 2**20:,.0f} MB" if n >= 2**20 else f"{n:,} bytes"


def too_large(path: Path) -> str | None:
    size = path.stat().st_size
    if size > IMPORT_FILE_MAX_BYTES:
        return f"the file is {_size(size)}; the workbench imports files of at most {_size(IMPORT_FILE_MAX_BYTES)}"
    return None


def too_many_lines(path: Path) -> str | None:
    """Counted before parsing: a file with more lines than the row limit (plus its header) is refused.
    A quoted cell may span lines, so a file just over the limit in lines may hold fewer rows."""
    lines = 0
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            lines += chunk.count(b"\n")
            if lines > IMPORT_ROWS_MAX + 1:
                return f"the file has more than {IMPORT_ROWS_MAX + 1:,} lines; the workbench imports at most" \
                       f" {IMPORT_ROWS_MAX:,} rows per file"
    return None


def too_many_rows(rows: int) -> str | None:
    if rows > IMPORT_ROWS_MAX:
        return f"{rows:,} rows; the workbench imports at most {IMPORT_ROWS_MAX:,} rows per file"
    return None


def json_nesting(data: bytes) -> int:
    """How deep the arrays and objects of a JSON text nest (brackets inside strings do not count)."""
    brackets = _JSON_STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    if not brackets:
        return 0
    steps = np.frombuffer(brackets, dtype=np.uint8)
    depth = np.cumsum(np.where((steps == ord("[")) | (steps == ord("{")), 1, -1))
    return int(depth.max())


def too_deep(data: bytes) -> str | None:
    depth = json_nesting(data)
    if depth > IMPORT_JSON_MAX_NESTING:
        return f"nested {depth} levels deep; the workbench reads JSON nested at most {IMPORT_JSON_MAX_NESTING} levels"
    return None
