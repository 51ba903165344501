"""Read pairwise-comparison files (CSV or Parquet) into the comparisons and attributes DataFrames.

A file has one row per judgement with columns ``participant_id, item_a, item_b, winner`` (winner is
``a`` or ``b``, case-insensitive), optionally ``context``, ``prompt``, ``weight`` (a number ≥ 0,
default 1), and participant attributes as ``attr_<name>`` columns, repeated on each of a
participant's rows. This module only reads and checks: it must never write files, touch the store
or fit anything. Every problem raises ``ComparisonFormatError`` naming the file, the 1-based data row
(the first row after the header is row 1) and the reason.

Attributes: an empty ``attr_*`` cell means "not given" and never conflicts; two different non-empty
values for one participant do. Ids and attribute values are read as text (``007`` stays ``007``).

Limits (`workbench.models`): a file of at most 256 MB and 5,000,000 rows, counted before it is
parsed; ids (participant, items) of at most 200 characters, attribute names of 64 and values of
200, prompts of 1000, contexts of 120; no control characters in any of them (tab and newline are
allowed in prompts); at most 200 distinct contexts (they become the question's contexts).
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import numpy as np
import pandas as pd

from .. import ids
from ..errors import FormatError
from ..models import (
    ATTRIBUTE_KEY_MAX,
    ATTRIBUTE_VALUE_MAX,
    CONTEXT_MAX,
    CONTEXTS_PER_QUESTION_MAX,
    ID_MAX,
    PROMPT_MAX,
)
from .limits import shown, too_large, too_many_lines, too_many_rows

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
REQUIRED = ("participant_id", "item_a", "item_b", "winner")
OPTIONAL = ("context", "prompt", "weight")
ATTRIBUTE_PREFIX = "attr_"


class ComparisonFormatError(FormatError):
    """A comparisons file that cannot be read as the contract says; names file, row and reason."""

    def __init__(self, path: Path | str, reason: str, row: int | None = None) -> None:
        self.path = str(path)
        self.row = row
        self.reason = reason
        where = f"{self.path}, row {row}" if row is not None else self.path
        super().__init__(f"{where}: {reason}")


def _read_table(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    try:
        if problem := too_large(path):
            raise ComparisonFormatError(path, problem)
        if suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            if problem := too_many_rows(pq.ParquetFile(path).metadata.num_rows):
                raise ComparisonFormatError(path, problem)
            frame = pd.read_parquet(path)
        elif suffix in (".csv", ".txt", ""):
            if problem := too_many_lines(path):
                raise ComparisonFormatError(path, problem)
            # Everything as text, and "NA"/"null" stay strings: only truly empty cells are missing.
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8")
        else:
            raise ComparisonFormatError(path, f"unsupported file type {suffix!r}; use .csv or .parquet")
    except ComparisonFormatError:
        raise
    except FileNotFoundError:
        raise ComparisonFormatError(path, "file not found") from None
    except pd.errors.EmptyDataError:
        raise ComparisonFormatError(path, "empty file (no header, no rows)") from None
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise ComparisonFormatError(path, f"unreadable file ({type(exc).__name__}: {exc})") from None
    except Exception as exc:  # pyarrow raises its own error types for corrupt Parquet
        raise ComparisonFormatError(path, f"unreadable file ({type(exc).__name__}: {exc})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def _first(mask, path: Path, reason: str) -> None:
    """Raise naming the first row where `mask` holds (rows are 1-based)."""
    mask = np.asarray(mask, dtype=bool)
    if mask.any():
        raise ComparisonFormatError(path, reason, row=int(np.flatnonzero(mask)[0]) + 1)


def _check_text(values: pd.Series, path: Path, column: str, limit: int, *, controls: re.Pattern = _CONTROL) -> None:
    """Text a deliberation keeps and shows: free of control characters and within its limit."""
    text = values.map(lambda v: v if isinstance(v, str) else "")
    _first(text.map(lambda v: bool(controls.search(v))), path, f"{column} contains control characters")
    _first(text.str.len() > limit, path, f"{column} is longer than {limit} characters")


def _text(values: pd.Series) -> pd.Series:
    """Cells as stripped text; missing cells (None/NaN/empty) as None, in an object Series (pandas
    would otherwise infer a string dtype and turn None into NaN)."""
    values = values.astype(object)
    missing = values.isna().to_numpy()
    text = values.astype(str).str.strip().to_numpy(dtype=object)
    text[missing | (text == "")] = None
    return pd.Series(text, index=values.index, dtype=object)


def read_comparisons(path: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read a comparisons file; return ``(comparisons, attributes)``.

    ``comparisons`` columns: ``participant_id, item_a, item_b, winner ('a'|'b'), context (str|None),
    weight (float)`` and ``prompt`` when the file has it. ``attributes``: ``participant_id`` plus one
    column per ``attr_<name>`` (named ``<name>``), one row per participant in order of first
    appearance (None where not given).
    """
    path = Path(path)
    frame = _read_table(path)
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise ComparisonFormatError(path, f"missing column(s): {', '.join(missing)}")
    if len(frame) == 0:
        raise ComparisonFormatError(path, "empty file (a header but no data rows)")
    attr_columns = [c for c in frame.columns if c.startswith(ATTRIBUTE_PREFIX)]
    bare = [c[len(ATTRIBUTE_PREFIX):] for c in attr_columns]
    if any(name == "" for name in bare) or "participant_id" in bare or len(set(bare)) != len(bare) or any(
            _CONTROL.search(name) or len(name) > ATTRIBUTE_KEY_MAX for name in bare):
        raise ComparisonFormatError(path, f"bad attribute column names: {shown(', '.join(attr_columns))} (distinct,"
                                          f" at most {ATTRIBUTE_KEY_MAX} characters after {ATTRIBUTE_PREFIX!r},"
                                          " no control characters)")

    out = pd.DataFrame(index=frame.index)
    for column in ("participant_id", "item_a", "item_b"):
        values = _text(frame[column])
        _first(values.isna(), path, f"empty {column}")
        _check_text(values, path, column, ID_MAX)  # ids are shown on pages and exported; NUL is no id
        out[column] = values.astype(object)
        # These ids stay the public ids (workbench.ids): none may look like one the workbench makes itself.
        kind = "participant" if column == "participant_id" else "value"
        shaped = values.map(lambda v, kind=kind: ids.has_workbench_shape(kind, v)).to_numpy(dtype=bool)
        if shaped.any():
            row = int(np.flatnonzero(shaped)[0])
            letter = ids.PREFIX[kind]
            raise ComparisonFormatError(
                path, f"{column} {values.iloc[row]!r} has the shape the workbench gives its own {kind}s ('{letter}'"
                f" and digits), so the two could be confused; rename it (e.g. {values.iloc[row].upper()!r})",
                row=row + 1)

    winner = _text(frame["winner"]).map(lambda v: v.lower() if v is not None else None)
    bad = ~winner.isin(["a", "b"]).to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ComparisonFormatError(path, f"winner is {shown(frame['winner'].iloc[row])}; expected 'a' or 'b'",
                                    row=row + 1)
    out["winner"] = winner.astype(object)

    same = (out["item_a"] == out["item_b"]).to_numpy()
    if same.any():
        row = int(np.flatnonzero(same)[0])
        raise ComparisonFormatError(path, f"item_a and item_b are the same item ({shown(out['item_a'].iloc[row])})",
                                    row=row + 1)

    out["context"] = _text(frame["context"]) if "context" in frame.columns else None
    out["context"] = out["context"].astype(object)
    # Contexts become the deliberation's context names, which may not hold control characters.
    controlled = out["context"].map(lambda c: isinstance(c, str) and bool(_CONTROL.search(c))).to_numpy(dtype=bool)
    if controlled.any():
        row = int(np.flatnonzero(controlled)[0])
        raise ComparisonFormatError(path, "context contains control characters", row=row + 1)
    # ...and are kept as the workbench keeps text (NFC), within the context-name limit.
    out["context"] = pd.Series([unicodedata.normalize("NFC", c).strip() or None if isinstance(c, str) else None
                                for c in out["context"]], index=out.index, dtype=object)
    too_long = out["context"].map(lambda c: isinstance(c, str) and len(c) > CONTEXT_MAX).to_numpy(dtype=bool)
    if too_long.any():
        row = int(np.flatnonzero(too_long)[0])
        raise ComparisonFormatError(path, f"context is longer than {CONTEXT_MAX} characters", row=row + 1)
    if "weight" in frame.columns:
        raw = frame["weight"]
        given = _text(raw)
        weight = pd.to_numeric(given, errors="coerce").to_numpy(dtype=float)
        weight = np.where(given.isna().to_numpy(), 1.0, weight)
        bad = ~np.isfinite(weight) | (weight < 0)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ComparisonFormatError(path, f"weight is {shown(raw.iloc[row])}; expected a number ≥ 0", row=row + 1)
        out["weight"] = weight
    else:
        out["weight"] = 1.0
    if "prompt" in frame.columns:
        out["prompt"] = _text(frame["prompt"]).astype(object)
        _check_text(out["prompt"], path, "prompt", PROMPT_MAX, controls=re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]"))

    attributes = pd.DataFrame({"participant_id": pd.unique(out["participant_id"])})
    for column, name in zip(attr_columns, bare, strict=True):
        values = _text(frame[column])
        _check_text(values, path, column, ATTRIBUTE_VALUE_MAX)
        known = pd.DataFrame({"participant_id": out["participant_id"], "value": values}).dropna()
        first = known.drop_duplicates("participant_id")
        lookup = first.set_index("participant_id")["value"]
        conflict = (known["value"] != known["participant_id"].map(lookup)).to_numpy()
        if conflict.any():
            at = known.index[int(np.flatnonzero(conflict)[0])]
            row = int(frame.index.get_loc(at))
            pid = out["participant_id"].iloc[row]
            raise ComparisonFormatError(
                path,
                f"participant {shown(pid)} has {column}={shown(values.iloc[row])} here but {shown(lookup[pid])} on an"
                " earlier row",
                row=row + 1,
            )
        attributes[name] = attributes["participant_id"].map(lookup).astype(object)
        attributes[name] = attributes[name].where(attributes[name].notna(), None)

    return out.reset_index(drop=True), attributes


__all__ = ["ATTRIBUTE_PREFIX", "ComparisonFormatError", "read_comparisons"]


# --- into the workbench -------------------------------------------------------------------------


def comparisons_bundle(path: str | Path, *, deliberation_id: str):
    """A comparisons file as an `ImportBundle`: participants with their `attr_*` attributes and every
    row as a comparison keyed by the file's content hash and row number, so importing the same
    file twice adds nothing. Items keep the ids the file gives them."""
    import hashlib

    from ..io.bundle import ImportBundle
    from ..models import DeliberationSpec, validated

    path = Path(path)
    comparisons, attributes = read_comparisons(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    contexts = sorted({c for c in comparisons["context"] if isinstance(c, str) and c.strip()}) or ["In this study"]
    if len(contexts) > CONTEXTS_PER_QUESTION_MAX:
        raise ComparisonFormatError(path, f"{len(contexts)} distinct contexts; a question takes at most"
                                          f" {CONTEXTS_PER_QUESTION_MAX}")
    spec = validated(DeliberationSpec, {
        "id": deliberation_id, "title": f"Comparisons imported from {path.name}"[:200],
        "consent": "Imported data: participants consented where the comparisons were collected.",
        "questions": [{"slug": "comparisons", "title": "Imported comparisons", "prompt": path.name[:1000],
                       "contexts": contexts}],
    }, where=f"{path} (as deliberation {deliberation_id!r})")
    people = attributes["participant_id"].astype(str)
    long = attributes.melt(id_vars="participant_id", var_name="key", value_name="value").dropna(subset=["value"])
    return ImportBundle(
        spec=spec, source="comparisons",
        participants=pd.DataFrame({"source_id": people, "signup": "import", "created_at": None}),
        attributes=pd.DataFrame({"participant": long["participant_id"].astype(str), "key": long["key"],
                                 "value": long["value"].astype(str)}),
        comparisons=pd.DataFrame({
            "source_key": [f"{digest}:{i + 1}" for i in range(len(comparisons))],
            "participant": comparisons["participant_id"].astype(str), "item_a": comparisons["item_a"],
            "item_b": comparisons["item_b"], "winner": comparisons["winner"], "context": comparisons["context"],
            "prompt": comparisons["prompt"] if "prompt" in comparisons.columns else None, "question": "comparisons",
            "weight": comparisons["weight"].astype(float), "created_at": None}),
    )
