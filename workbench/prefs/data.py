"""The preference models' input: checked once at each public entry point, then encoded as index arrays.

`validate_comparisons` checks the comparisons contract and names the first bad row; `encode` turns a
validated frame into the integer arrays every fit runs on; `attribute_of` reads one participant
attribute. Nothing behind a public entry point validates again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
import scipy.sparse.csgraph as csgraph

from .. import config
from ..errors import InputError

DEFAULT_ALPHA = 0.1
"""Prior precision of θ for pooled fits: θ ~ N(0, 10), weak next to a few comparisons per item."""

DEFAULT_SHRINKAGE = 1.0
"""Prior precision of a group's θ around the pooled θ: θ_g ~ N(θ_pooled, 1)."""

FIT_SCHEMA_PATH = config.SCHEMAS / "fit.schema.json"

REQUIRED_COLUMNS = ("participant_id", "item_a", "item_b", "winner")


class PreferenceDataError(InputError):
    """A comparisons, attributes or answers DataFrame that the preference models cannot use."""


def check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise PreferenceDataError(f"level must be in (0, 1), got {level}")


@dataclass(frozen=True)
class Encoded:
    """A validated comparisons frame as index arrays: winner/loser item, weight, participant per row."""

    items: tuple[str, ...]
    participants: tuple[str, ...]
    win: np.ndarray
    lose: np.ndarray
    weight: np.ndarray
    participant: np.ndarray
    connected: np.ndarray  # per item: its connected set of compared items (see _connected_sets)


def optional_text(values: pd.Series) -> np.ndarray:
    """Cells as stripped text, missing or blank cells as None (an object array, never NaN)."""
    values = pd.Series(values).astype(object)
    missing = values.isna().to_numpy()
    text = values.astype(str).str.strip().to_numpy(dtype=object)
    text[missing | (text == "")] = None
    return text


def id_column(frame: pd.DataFrame, column: str, what: str) -> np.ndarray:
    text = optional_text(frame[column])
    bad = np.array([v is None for v in text], dtype=bool)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise PreferenceDataError(f"{what}: row {row} has an empty {column}")
    return text


def validate_comparisons(comparisons: pd.DataFrame, *, what: str = "comparisons") -> pd.DataFrame:
    """Check the comparisons contract and return a normalised copy.

    Columns out: ``participant_id, item_a, item_b, winner, context, weight`` with ids as stripped
    strings, ``winner`` in {'a','b'}, ``context`` a string or None, ``weight`` a float ≥ 0 (1.0 when
    the column is absent). Rows are numbered from 0 in messages (DataFrame positions).
    """
    if not isinstance(comparisons, pd.DataFrame):
        raise PreferenceDataError(f"{what}: expected a pandas DataFrame, got {type(comparisons).__name__}")
    missing = [c for c in REQUIRED_COLUMNS if c not in comparisons.columns]
    if missing:
        raise PreferenceDataError(f"{what}: missing column(s) {', '.join(missing)}")
    if len(comparisons) == 0:
        raise PreferenceDataError(f"{what}: no comparisons")
    out = pd.DataFrame(
        {c: id_column(comparisons, c, what) for c in ("participant_id", "item_a", "item_b")}
    )
    winner = pd.Series([(v or "").lower() for v in optional_text(comparisons["winner"])], dtype=object)
    bad = ~winner.isin(["a", "b"]).to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise PreferenceDataError(
            f"{what}: row {row} has winner {comparisons['winner'].iloc[row]!r}; expected 'a' or 'b'"
        )
    out["winner"] = winner.to_numpy(dtype=object)
    same = out["item_a"].to_numpy() == out["item_b"].to_numpy()
    if same.any():
        row = int(np.flatnonzero(same)[0])
        raise PreferenceDataError(f"{what}: row {row} compares item {out['item_a'].iloc[row]!r} with itself")
    if "context" in comparisons.columns:
        out["context"] = pd.Series(optional_text(comparisons["context"]), dtype=object)
    else:
        out["context"] = np.full(len(out), None, dtype=object)
    if "weight" in comparisons.columns:
        weight = pd.to_numeric(comparisons["weight"], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(weight) | (weight < 0)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise PreferenceDataError(
                f"{what}: row {row} has weight {comparisons['weight'].iloc[row]!r}; expected a number ≥ 0"
            )
        out["weight"] = weight
    else:
        out["weight"] = 1.0
    return out


def encode(frame: pd.DataFrame, items: Sequence[str] | None = None) -> Encoded:
    """Index a validated comparisons frame: winner/loser item indices, weights, participant indices."""
    a = frame["item_a"].to_numpy(dtype=object)
    b = frame["item_b"].to_numpy(dtype=object)
    a_wins = frame["winner"].to_numpy(dtype=object) == "a"
    if items is None:
        item_arr, inverse = np.unique(np.concatenate([a, b]).astype(str), return_inverse=True)
        items = tuple(item_arr.tolist())
        ia, ib = inverse[: len(a)], inverse[len(a):]
    else:
        items = tuple(items)
        lookup = pd.Index(items)
        ia, ib = lookup.get_indexer(a), lookup.get_indexer(b)
        if (ia < 0).any() or (ib < 0).any():
            raise PreferenceDataError("comparisons mention items outside the fitted item set")
    part_arr, participant = np.unique(frame["participant_id"].to_numpy(dtype=object).astype(str),
                                      return_inverse=True)
    win = np.where(a_wins, ia, ib).astype(np.int64)
    lose = np.where(a_wins, ib, ia).astype(np.int64)
    return Encoded(
        items=items,
        participants=tuple(part_arr.tolist()),
        win=win,
        lose=lose,
        weight=frame["weight"].to_numpy(dtype=float),
        participant=participant.astype(np.int64),
        connected=_connected_sets(win, lose, len(items)),
    )


def _connected_sets(win: np.ndarray, lose: np.ndarray, n: int) -> np.ndarray:
    """Label each item with its connected set in the graph of all comparisons (e.g. one question's values).

    Comparisons only say how items of the same set relate; the sets' positions relative to each other
    are the prior's arbitrary choice, so strengths and their intervals are read within a set.
    """
    graph = sp.coo_matrix((np.ones(len(win)), (win, lose)), shape=(n, n))
    return csgraph.connected_components(graph, directed=False)[1]


def attribute_of(attributes: pd.DataFrame, by: str, participants: Sequence[str]) -> np.ndarray:
    """The ``by`` value (str, or None) for each participant, checking the attributes frame."""
    if not isinstance(attributes, pd.DataFrame) or "participant_id" not in attributes.columns:
        raise PreferenceDataError("attributes: expected a DataFrame with a participant_id column")
    if by not in attributes.columns:
        others = [c for c in attributes.columns if c != "participant_id"]
        raise PreferenceDataError(f"attributes: no column {by!r} (columns: {', '.join(map(str, others))})")
    ids = optional_text(attributes["participant_id"])
    values = optional_text(attributes[by])
    keep = np.array([i is not None and v is not None for i, v in zip(ids, values, strict=True)], dtype=bool)
    table = pd.DataFrame({"participant_id": ids[keep], "value": values[keep]}, dtype=object)
    conflicts = table.groupby("participant_id")["value"].nunique()
    conflicts = conflicts[conflicts > 1]
    if len(conflicts):
        raise PreferenceDataError(
            f"attributes: participant {conflicts.index[0]!r} has more than one value for {by!r}"
        )
    mapping = table.drop_duplicates("participant_id").set_index("participant_id")["value"]
    lookup = mapping.to_dict()
    return np.array([lookup.get(p) for p in participants], dtype=object)
