"""Choosing what to ask in the judging rounds: pure, seeded, offline.

`plan_wiser`, `plan_endorse` and `plan_compare` pick a participant's questions for a round from the
values and the answers so far (under-answered first, then the most informative). They never read
the store and never render; `workbench.participation.rounds` stores the plan once and walks it.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping

import numpy as np
import pandas as pd

_WORD = re.compile(r"[a-z]{3,}")


def _words(*texts) -> set[str]:
    out: set[str] = set()
    for t in texts:
        if isinstance(t, list | tuple | np.ndarray):
            out |= _words(*t)
        elif isinstance(t, str):
            out |= set(_WORD.findall(t.lower()))
    return out


def similarity(a: pd.Series, b: pd.Series) -> float:
    """Word overlap (Jaccard) of two values' title, description and policies: cheap, offline, stable."""
    wa, wb = _words(a["title"], a["description"], a["policies"]), _words(b["title"], b["description"], b["policies"])
    return len(wa & wb) / max(len(wa | wb), 1)


def plan_wiser(values: pd.DataFrame, answered: pd.DataFrame, n: int, *, seed: int,
               question_contexts: list[str]) -> list[dict]:
    """N wiser-than questions: pairs of values that share a context, near in meaning but distinct.

    `values` has id, title, description, policies, contexts; `answered` has from_id, to_id, context
    and one row per answer so far (all participants). Under-answered directed pairs come first,
    then the more similar pairs (a closer pair is a more informative question), ties broken by seed.
    Each pair is asked in the direction that has fewer answers, so both directions get asked.
    """
    if n <= 0 or len(values) < 2:
        return []
    rng = np.random.default_rng(seed)
    counts = answered.groupby(["from_id", "to_id", "context"]).size().to_dict() if len(answered) else {}
    rows = list(values.itertuples(index=False))
    candidates = []
    for a, b in itertools.combinations(range(len(rows)), 2):
        va, vb = values.iloc[a], values.iloc[b]
        shared = sorted(set(_contexts(va, question_contexts)) & set(_contexts(vb, question_contexts)))
        if not shared:
            continue
        sim = similarity(va, vb)
        if sim >= 0.9:  # practically the same value: nothing to learn from asking
            continue
        for context in shared:
            fwd = counts.get((int(va["id"]), int(vb["id"]), context), 0)
            back = counts.get((int(vb["id"]), int(va["id"]), context), 0)
            src, dst = (va, vb) if fwd <= back or (fwd == back and rng.random() < 0.5) else (vb, va)
            candidates.append((min(fwd, back), -sim, rng.random(), int(src["id"]), int(dst["id"]), context))
    candidates.sort()
    plan, used = [], set()
    for _, _, _, src, dst, context in candidates:
        key = frozenset((src, dst))
        if key in used:  # one question per pair, in the under-answered context
            continue
        used.add(key)
        plan.append({"from_id": src, "to_id": dst, "context": context})
        if len(plan) == n:
            break
    return plan


def _contexts(value: pd.Series, fallback: list[str]) -> list[str]:
    ctx = value.get("contexts")
    ctx = list(ctx) if ctx is not None and len(ctx) else []
    return ctx or list(fallback)


def plan_endorse(values: pd.DataFrame, counts: Mapping[int, int], n: int, *, seed: int,
                 exclude: set[int] = frozenset()) -> list[int]:
    """N values (by store id) to agree/disagree with, those with the fewest votes so far first (`counts`:
    votes per value id; ties broken by seed)."""
    if n <= 0 or values.empty:
        return []
    rng = np.random.default_rng(seed)
    order = sorted((counts.get(int(v), 0), rng.random(), int(v)) for v in values["id"] if int(v) not in exclude)
    return [v for _, _, v in order[:n]]


def plan_compare(values: pd.DataFrame, pair_counts: pd.DataFrame, n: int, *, seed: int,
                 strengths: Mapping[str, float] | None = None) -> list[dict]:
    """N pairs for "which should guide the answer?", informative for the current fit.

    Values are named by their `item` column (the id comparisons record: the value's public id).

    Coverage first (pairs with the fewest answers), then the pairs whose order the pooled fit is
    least sure of (smallest strength gap), ties broken by seed. No value appears twice in a row.
    """
    if n <= 0 or len(values) < 2:
        return []
    rng = np.random.default_rng(seed)
    counts = {}
    if len(pair_counts):
        counts = {(str(r.a), str(r.b)): int(r.answers) for r in pair_counts.itertuples(index=False)}
    strengths = strengths or {}
    ids = [str(v) for v in values["item"]]
    scored = []
    for a, b in itertools.combinations(ids, 2):
        lo, hi = sorted((a, b))
        gap = abs(strengths.get(a, 0.0) - strengths.get(b, 0.0))
        scored.append((counts.get((lo, hi), 0), round(gap, 3), rng.random(), a, b))
    scored.sort()
    plan: list[dict] = []
    last: set[str] = set()
    pool = scored[:]
    while pool and len(plan) < n:
        pick = next((s for s in pool if not ({s[3], s[4]} & last)), pool[0])
        pool.remove(pick)
        a, b = (pick[3], pick[4]) if rng.random() < 0.5 else (pick[4], pick[3])
        plan.append({"item_a": a, "item_b": b})
        last = {a, b}
    return plan
