"""Wiser-than answers as comparisons: the moral graph's judgements in the preference models' input shape."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .data import PreferenceDataError, id_column, optional_text

WISER_COLUMNS = ("participant_id", "from_id", "to_id", "context", "answer", "created_at")
WISER_ANSWERS = ("upgrade", "no_upgrade", "not_sure")


def comparisons_from_wiser(
    answers: pd.DataFrame, *, no_upgrade_weight: float = 0.5, not_sure_weight: float = 0.0
) -> pd.DataFrame:
    """Comparisons (``participant_id, item_a, item_b, winner, context, weight``) from wiser-than answers.

    See the module docstring for how each answer counts. ``answers`` columns:
    ``participant_id, from_id, to_id, context, answer, created_at``.
    """
    missing = [c for c in WISER_COLUMNS if c not in answers.columns]
    if missing:
        raise PreferenceDataError(f"answers: missing column(s) {', '.join(missing)}")
    if no_upgrade_weight < 0 or not_sure_weight < 0:
        raise PreferenceDataError("answer weights must be ≥ 0")
    frame = answers.reset_index(drop=True)
    kinds = pd.Series([(v or "").lower() for v in optional_text(frame["answer"])], dtype=object)
    bad = ~kinds.isin(WISER_ANSWERS).to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise PreferenceDataError(
            f"answers: row {row} has answer {frame['answer'].iloc[row]!r}; expected one of {WISER_ANSWERS}"
        )
    ids = {c: id_column(frame, c, "answers") for c in ("participant_id", "from_id", "to_id")}
    context = optional_text(frame["context"])
    table = pd.DataFrame(
        {
            "participant_id": ids["participant_id"],
            "item_a": ids["from_id"],
            "item_b": ids["to_id"],
            "context": pd.Series(context, dtype=object),
            "answer": kinds.to_numpy(dtype=object),
            "created_at": frame["created_at"].to_numpy(),
            "_order": np.arange(len(frame)),
        }
    )
    same = table["item_a"].to_numpy() == table["item_b"].to_numpy()
    if same.any():
        row = int(np.flatnonzero(same)[0])
        raise PreferenceDataError(f"answers: row {row} has from_id == to_id ({table['item_a'].iloc[row]!r})")
    # Latest answer wins; ties in created_at keep the later row.
    table["_ctx"] = ["\x00none" if v is None else v for v in table["context"]]
    table = table.sort_values(["created_at", "_order"], kind="stable")
    table = table.drop_duplicates(["participant_id", "item_a", "item_b", "_ctx"], keep="last")
    table = table.sort_values("_order", kind="stable")

    upgrade = table[table["answer"] == "upgrade"].assign(winner="b", weight=1.0)
    no_upgrade = table[table["answer"] == "no_upgrade"].assign(winner="a", weight=float(no_upgrade_weight))
    parts = [upgrade, no_upgrade]
    if not_sure_weight > 0:
        unsure = table[table["answer"] == "not_sure"]
        parts += [unsure.assign(winner="a", weight=not_sure_weight / 2.0),
                  unsure.assign(winner="b", weight=not_sure_weight / 2.0)]
    out = pd.concat(parts, ignore_index=True).sort_values(["_order", "winner"], kind="stable")
    out = out[out["weight"] > 0]
    columns = ["participant_id", "item_a", "item_b", "winner", "context", "weight"]
    out = out[columns].reset_index(drop=True)
    # Object dtype keeps a missing context as None (pandas would otherwise store NaN).
    out["context"] = pd.Series([None if c is None or c != c else c for c in out["context"]], dtype=object)
    return out
