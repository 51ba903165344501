"""Build the moral graph — which values participants judged wiser than which — from wiser-than answers.

Pure analysis: a wiser-answers DataFrame (and optionally a values DataFrame) in, a frozen
`MoralGraph` out. It never reads the store, never runs SQL, never imports Streamlit and never
looks at the clock; the same answers always give the same graph, in any row order.

Input: one row per participant answer with columns
`participant_id, from_id, to_id, context, answer, created_at`, where `answer` is `upgrade`
(B is wiser than A), `no_upgrade` or `not_sure` for the shown move A = `from_id` → B = `to_id`.
Ids are canonical value ids of any hashable type, but use ONE type throughout (all `int`, as in
the MGE dump, or all `str`): they are sorted to make results independent of row order.
`created_at` holds naive UTC datetimes (tz-aware ones are converted to UTC); it is only needed
for `until=` and in the default mode. Values metadata: a DataFrame with an `id` column and any
others (`title`, `description`, ...), copied onto `MoralGraph.values`.

Two modes:

**MGE-compatible** (`summarize_mge`) reproduces the study's published algorithm (REFERENCE.md §1)
exactly. All contexts are pooled: for every ordered pair (A, B) with at least one answer in either
direction, `markedWiser/markedNotWiser/markedUnsure` count `upgrade/no_upgrade/not_sure` on A→B,
`markedLessWise` counts `upgrade` on B→A and `impressions` counts every answer on A→B or B→A.
`wiserLikelihood = (W − LW) / (W + NW + U + LW)` (NaN when the denominator is 0, i.e. the pair
only has non-upgrade answers on the reverse move), `entropy` = log2 Shannon entropy of the five
counts (impressions included) taken as a distribution. A→B is kept when `W ≥ 1`,
`wiserLikelihood ≥ 0.33`, `entropy ≤ 1.69` and `W ≥ min_wiser`; its `contexts` are the distinct
contexts of all answers on the pair, either direction (sorted). Ranking: weighted PageRank over
kept edges (source → wiser, weight `wiserLikelihood` normalised over the source's out-edges,
damping 0.85, 100 iterations from 1/N, N = values on kept edges); the rank of values without
out-edges is not passed on, so the ranks sum to less than 1 — as in the study.
On the public dump, answers created before 2023-10-18 give the study's 69 edges.

**Default** (`summarize_default`) — the workbench's own statistic. README-ready summary:

Per context and per ordered pair (A, B), every answer about the two values counts as a vote on
"is B wiser than A here?". An `upgrade` on A→B says yes (W). A `no_upgrade` on A→B or an
`upgrade` on the reverse move B→A says no (L). A `not_sure` on either move is unsure (U), and so
is a `no_upgrade` on B→A, which rules out "A is wiser" but not "they are equal". Each participant
counts once per context and pair (their latest answer wins), because repeated answers by one person
are not independent evidence. With a Dirichlet prior `prior = (a_W, a_L, a_U)` (default 1, 1, 1)
the posterior over the three shares is Dirichlet(a_W + W, a_L + L, a_U + U), so the share of
decided answers that say "B is wiser", q = θ_W / (θ_W + θ_L), has the exact posterior
Beta(a_W + W, a_L + L). The edge A→B is kept in a context when
(1) at least one participant said yes,
(2) the one-sided `credible` (default 90%) lower bound of q is above `min_lower` (default 0.5:
    we are 90% sure that most decided participants call B wiser), and
(3) the posterior mean share of unsure answers, (a_U + U) / (a_W + a_L + a_U + W + L + U), is at
    most `max_unsure` (default 0.5; the analogue of the study's entropy cut-off).
With the default prior, 3 yes and nothing else gives a lower bound of 0.56 (kept), 2 yes give
0.46 (not kept), 3 yes against 1 no give 0.42, 5 yes against 1 no give 0.55 (kept).

Ranking: per context, PageRank over that context's kept edges (source → wiser), each edge weighted
by its credible lower bound of q (normalised over the source's out-edges, so a value passes more of
its rank along its better-supported edges), damping 0.85, 100 iterations, and the rank of values
without out-edges spread evenly over all values — textbook PageRank, so the ranks of a context sum
to 1 and contexts can be compared. The pooled ranking runs the same PageRank over the union of the
per-context edges, an edge kept in several contexts weighing the sum of its per-context weights;
if A→B is kept in one context and B→A in another, both edges are in the pooled graph.

Unlike the study, the default mode never lets evidence from one context decide another, treats
reverse answers as counter-evidence through an explicit model rather than a fixed cut-off, and asks
for more answers before keeping an edge when the answers are few or split.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

import networkx as nx
import numpy as np
import pandas as pd
from scipy.stats import beta as beta_dist

from .errors import InputError

ANSWERS = ("upgrade", "no_upgrade", "not_sure")

# The study's constants (REFERENCE.md §1); exposed so callers can cite them, not to be tuned.
MGE_MIN_LIKELIHOOD = 0.33
MGE_MAX_ENTROPY = 1.69
DAMPING = 0.85
ITERATIONS = 100

_COUNT_COLUMNS = ("marked_wiser", "marked_not_wiser", "marked_less_wise", "marked_unsure", "impressions")
_PUBLISHED_COUNTS = {
    "marked_wiser": "markedWiser",
    "marked_not_wiser": "markedNotWiser",
    "marked_less_wise": "markedLessWise",
    "marked_unsure": "markedUnsure",
    "impressions": "impressions",
}


class MoralGraphInputError(InputError):
    """The answers or values DataFrame does not have the shape this module needs."""


@dataclass(frozen=True)
class MoralGraph:
    """A summarised moral graph.

    - `values`: one row per value on a kept edge: `id`, `page_rank`, then the metadata columns of
      the values DataFrame given (if any); sorted by `page_rank` descending, then id.
    - `edges`: one row per kept ordered pair: `source`, `wiser`, `contexts` (tuple of str),
      `marked_wiser`, `marked_not_wiser`, `marked_less_wise`, `marked_unsure`, `impressions`,
      `wiser_likelihood`, `entropy`; the default mode adds `n_wiser`, `n_not_wiser`, `n_unsure`,
      `lower_bound` (best context) and `weight` (summed over contexts). Sorted by source, wiser.
    - `pairs`: every ordered pair with at least one answer either way, with the same count and
      summary columns and a bool `kept` (the study's "allEdges"; `wiser_likelihood` is NaN where
      it is 0/0). Default mode: one row per context and pair, with a `context` column, the
      evidence counts `n_wiser, n_not_wiser, n_unsure`, and `p_wiser` (posterior mean of q),
      `lower_bound`, `p_unsure` and `weight`.
    - `page_rank`: id → rank over the kept edges (pooled over contexts).
    - `page_rank_by_context`: context → (id → rank); filled in the default mode only.
    - `mode`: "mge" or "default"; `params`: the parameters used (for provenance).
    """

    mode: Literal["mge", "default"]
    params: Mapping[str, Any]
    values: pd.DataFrame
    edges: pd.DataFrame
    pairs: pd.DataFrame
    page_rank: Mapping[Hashable, float]
    page_rank_by_context: Mapping[str, Mapping[Hashable, float]] = field(default_factory=dict)

    def edge(self, source: Hashable, wiser: Hashable) -> pd.Series | None:
        """The kept edge source → wiser as a row, or None if it is not in the graph."""
        hit = self.edges[(self.edges["source"] == source) & (self.edges["wiser"] == wiser)]
        return None if hit.empty else hit.iloc[0]


# ---------------------------------------------------------------------------------------------
# Public API


def summarize_mge(
    answers: pd.DataFrame,
    values: pd.DataFrame | None = None,
    *,
    until: str | date | datetime | pd.Timestamp | None = None,
    min_wiser: int = 2,
    context: str | Iterable[str] | None = None,
) -> MoralGraph:
    """The study's moral graph (REFERENCE.md §1), contexts pooled.

    `until` keeps answers with `created_at < until` (exclusive); `context` keeps only answers in
    that context (or those contexts) before counting — the study's per-context graph;
    `min_wiser` is the study's last threshold (`markedWiser ≥ min_wiser`, 0 disables it).
    """
    if min_wiser < 0:
        raise MoralGraphInputError(f"min_wiser must be >= 0, got {min_wiser}")
    table = _prepared_answers(answers, until=until, context=context, needs=())
    ids, src, dst = _codes(table)
    counts = _pair_counts(src, dst, table["answer"].to_numpy(), n_ids=len(ids))
    pairs = counts.frame
    w = pairs["marked_wiser"].to_numpy()
    pairs["wiser_likelihood"] = _wiser_likelihood(pairs)
    pairs["entropy"] = _entropy(pairs)
    with np.errstate(invalid="ignore"):  # NaN likelihoods compare False: never kept, as in the study
        pairs["kept"] = (
            (w >= 1)
            & (pairs["wiser_likelihood"].to_numpy() >= MGE_MIN_LIKELIHOOD)
            & (pairs["entropy"].to_numpy() <= MGE_MAX_ENTROPY)
            & (w >= min_wiser)
        )
    contexts = _contexts_of(counts.answer_group, table["context"].to_numpy(), pairs["kept"].to_numpy())

    kept = pairs[pairs["kept"]].copy()
    kept.insert(2, "contexts", [contexts[g] for g in kept.index])
    rank = weighted_page_rank(
        kept["source"].to_numpy(), kept["wiser"].to_numpy(), kept["wiser_likelihood"].to_numpy(),
        dangling="leak",
    )
    params = {"until": _iso(until), "min_wiser": min_wiser, "context": _context_param(context),
              "min_likelihood": MGE_MIN_LIKELIHOOD, "max_entropy": MGE_MAX_ENTROPY,
              "damping": DAMPING, "iterations": ITERATIONS}
    return MoralGraph(
        mode="mge",
        params=params,
        values=_values_table(ids, rank, values),
        edges=_decode(kept.drop(columns="kept"), ids),
        pairs=_decode(pairs, ids),
        page_rank=_decode_rank(rank, ids),
    )


def summarize_default(
    answers: pd.DataFrame,
    values: pd.DataFrame | None = None,
    *,
    until: str | date | datetime | pd.Timestamp | None = None,
    context: str | Iterable[str] | None = None,
    prior: tuple[float, float, float] = (1.0, 1.0, 1.0),
    credible: float = 0.9,
    min_lower: float = 0.5,
    max_unsure: float = 0.5,
) -> MoralGraph:
    """The workbench's per-context Bayesian moral graph (see the module docstring)."""
    if len(prior) != 3 or any(not (p > 0) for p in prior):
        raise MoralGraphInputError(f"prior must be three positive pseudo-counts (W, L, U), got {prior!r}")
    if not 0 < credible < 1:
        raise MoralGraphInputError(f"credible must be strictly between 0 and 1, got {credible}")
    table = _prepared_answers(answers, until=until, context=context, needs=("participant_id", "created_at"))
    table = _latest_per_participant(table)
    ids, src, dst = _codes(table)
    ctx_names, ctx_codes = np.unique(table["context"].to_numpy().astype(str), return_inverse=True)
    counts = _pair_counts(src, dst, table["answer"].to_numpy(), n_ids=len(ids), ctx=ctx_codes)
    pairs = counts.frame

    n_w = pairs["marked_wiser"].to_numpy()
    n_l = pairs["marked_not_wiser"].to_numpy() + pairs["marked_less_wise"].to_numpy()
    n_u = pairs["impressions"].to_numpy() - n_w - n_l
    a_w, a_l, a_u = (prior[0] + n_w, prior[1] + n_l, prior[2] + n_u)
    pairs["n_wiser"], pairs["n_not_wiser"], pairs["n_unsure"] = n_w, n_l, n_u
    pairs["wiser_likelihood"] = _wiser_likelihood(pairs)
    pairs["entropy"] = _entropy(pairs)
    pairs["p_wiser"] = a_w / (a_w + a_l)
    pairs["lower_bound"] = beta_dist.ppf(1.0 - credible, a_w, a_l)
    pairs["p_unsure"] = a_u / (a_w + a_l + a_u)
    pairs["weight"] = pairs["lower_bound"]
    pairs["kept"] = (n_w >= 1) & (pairs["lower_bound"].to_numpy() > min_lower) & (
        pairs["p_unsure"].to_numpy() <= max_unsure
    )
    pairs.insert(0, "context", ctx_names[pairs.pop("ctx").to_numpy()])

    kept = pairs[pairs["kept"]]
    by_context: dict[str, dict[Hashable, float]] = {}
    for name, part in kept.groupby("context", sort=True):
        rank = weighted_page_rank(part["source"].to_numpy(), part["wiser"].to_numpy(),
                                  part["weight"].to_numpy(), dangling="uniform")
        by_context[str(name)] = _decode_rank(rank, ids)

    summed = ["n_wiser", "n_not_wiser", "n_unsure", *_COUNT_COLUMNS, "weight"]
    grouped = kept.groupby(["source", "wiser"], sort=True)
    edges = grouped[summed].sum()
    edges["lower_bound"] = grouped["lower_bound"].max()
    contexts = _sorted_tuples_by_group(grouped.ngroup().to_numpy(), kept["context"].to_numpy())
    edges = edges.reset_index()
    edges["contexts"] = [contexts[i] for i in range(len(edges))]
    # The published shape wants the study's two summary numbers: computed on the counts summed
    # over the contexts where the edge is kept, so they describe exactly the evidence shown.
    edges["wiser_likelihood"] = _wiser_likelihood(edges)
    edges["entropy"] = _entropy(edges)
    edges = edges[["source", "wiser", "contexts", *_COUNT_COLUMNS, "wiser_likelihood", "entropy",
                   "n_wiser", "n_not_wiser", "n_unsure", "lower_bound", "weight"]]
    rank = weighted_page_rank(edges["source"].to_numpy(), edges["wiser"].to_numpy(),
                              edges["weight"].to_numpy(), dangling="uniform")
    params = {"until": _iso(until), "context": _context_param(context), "prior": tuple(prior),
              "credible": credible, "min_lower": min_lower, "max_unsure": max_unsure,
              "damping": DAMPING, "iterations": ITERATIONS}
    return MoralGraph(
        mode="default",
        params=params,
        values=_values_table(ids, rank, values),
        edges=_decode(edges, ids),
        pairs=_decode(pairs, ids),
        page_rank=_decode_rank(rank, ids),
        page_rank_by_context=by_context,
    )


def weighted_page_rank(
    sources: Any,
    targets: Any,
    weights: Any,
    *,
    damping: float = DAMPING,
    iterations: int = ITERATIONS,
    dangling: Literal["leak", "uniform"] = "leak",
) -> dict[Hashable, float]:
    """Weighted PageRank by power iteration; nodes are the ends of the given edges.

    Each node passes `damping × rank` to its out-neighbours in proportion to edge weight and every
    node gets `(1 − damping) / N`, starting from 1/N. `dangling="leak"` drops the rank of nodes
    without out-edges (the study's implementation); `"uniform"` spreads it over all nodes, the
    textbook PageRank (equal to `networkx.pagerank` at convergence).
    """
    sources, targets = np.asarray(sources), np.asarray(targets)
    weights = np.asarray(weights, dtype=float)
    if not len(sources) == len(targets) == len(weights):
        raise MoralGraphInputError("sources, targets and weights must have the same length")
    if len(sources) == 0:
        return {}
    nodes, codes = np.unique(np.concatenate([sources, targets]), return_inverse=True)
    src, dst = codes[: len(sources)], codes[len(sources):]
    rank = _page_rank_codes(src, dst, weights, len(nodes), damping, iterations, dangling)
    return {_py(node): float(r) for node, r in zip(nodes, rank, strict=True)}


def to_published_json(graph: MoralGraph, values_df: pd.DataFrame | None = None) -> dict[str, Any]:
    """The graph in the study's published JSON shape (camelCase keys, `pageRank` on values).

    Value metadata comes from `values_df` when given (any snake_case column becomes camelCase),
    else from `graph.values`. NaN becomes null; datetimes become ISO strings with Z.
    """
    meta = graph.values.drop(columns="page_rank")
    if values_df is not None:
        _check_values(values_df)
        meta = graph.values[["id"]].merge(values_df, on="id", how="left")
    meta_rows = meta.to_dict("records")
    values = []
    for row, rank in zip(meta_rows, graph.values["page_rank"], strict=True):
        item = {_camel(k): _json_safe(v) for k, v in row.items()}
        item["pageRank"] = _json_safe(rank)
        values.append(item)

    edges = []
    for row in graph.edges.to_dict("records"):
        summary = {"wiserLikelihood": _json_safe(row["wiser_likelihood"]), "entropy": _json_safe(row["entropy"])}
        if graph.mode == "default":
            summary["credibleLowerBound"] = _json_safe(row["lower_bound"])
            summary["weight"] = _json_safe(row["weight"])
        edges.append({
            "sourceValueId": _json_safe(row["source"]),
            "wiserValueId": _json_safe(row["wiser"]),
            "contexts": list(row["contexts"]),
            "counts": {pub: _json_safe(row[col]) for col, pub in _PUBLISHED_COUNTS.items()},
            "summary": summary,
        })
    return {"values": values, "edges": edges}


def to_graphml(graph: MoralGraph, path: Path | str) -> Path:
    """Write the kept graph as GraphML (networkx): nodes carry page_rank and scalar metadata,
    edges their counts, summary numbers and contexts joined by "; "."""
    g = nx.DiGraph(mode=graph.mode)
    for row in graph.values.to_dict("records"):
        node = row.pop("id")
        g.add_node(node, **{k: v for k, v in (_graphml_attr(k, v) for k, v in row.items()) if v is not None})
    for row in graph.edges.to_dict("records"):
        attrs = {k: v for k, v in (_graphml_attr(k, v) for k, v in row.items() if k not in ("source", "wiser"))
                 if v is not None}
        g.add_edge(row["source"], row["wiser"], **attrs)
    path = Path(path)
    nx.write_graphml(g, path)
    return path


# ---------------------------------------------------------------------------------------------
# Internals


@dataclass(frozen=True)
class _Counts:
    frame: pd.DataFrame  # one row per (ctx?, source, wiser); source/wiser are id codes
    answer_group: np.ndarray  # length 2n: group row of each answer's forward, then reverse, entry


def _prepared_answers(
    answers: pd.DataFrame, *, until: Any, context: Any, needs: tuple[str, ...]
) -> pd.DataFrame:
    if not isinstance(answers, pd.DataFrame):
        raise MoralGraphInputError(f"answers must be a pandas DataFrame, got {type(answers).__name__}")
    required = ["from_id", "to_id", "context", "answer", *needs]
    if until is not None and "created_at" not in required:
        required.append("created_at")
    missing = [c for c in required if c not in answers.columns]
    if missing:
        raise MoralGraphInputError(
            f"answers is missing column(s) {', '.join(missing)}; it has {', '.join(map(str, answers.columns))}"
        )
    table = answers[required].reset_index(drop=True)
    for col in required:
        _first_bad(table, col, table[col].isna().to_numpy(), "must not be missing")
    _first_bad(table, "answer", ~table["answer"].isin(ANSWERS).to_numpy(),
               f"is not one of {', '.join(ANSWERS)}")
    _first_bad(table, "to_id", (table["from_id"] == table["to_id"]).to_numpy(),
               "equals from_id: a value cannot be wiser than itself")
    if "created_at" in required:
        created = pd.to_datetime(table["created_at"])
        if created.dt.tz is not None:
            created = created.dt.tz_convert("UTC").dt.tz_localize(None)
        table["created_at"] = created
    if until is not None:
        table = table[table["created_at"] < _naive_utc(until)]
    if context is not None:
        table = table[table["context"].isin(_context_param(context))]
    return table.reset_index(drop=True)


def _first_bad(table: pd.DataFrame, col: str, bad: np.ndarray, problem: str) -> None:
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise MoralGraphInputError(f"answers row {i} column '{col}': {_py(table[col].iloc[i])!r} {problem}")


def _latest_per_participant(table: pd.DataFrame) -> pd.DataFrame:
    """Keep each participant's latest answer per context and unordered pair.

    Repeated answers by one person are not independent evidence; ties on created_at are broken by
    the answer text and direction so the result does not depend on row order.
    """
    f, t = table["from_id"].to_numpy(), table["to_id"].to_numpy()
    keyed = table.assign(_lo=np.where(f < t, f, t), _hi=np.where(f < t, t, f))
    keyed = keyed.sort_values(["created_at", "answer", "from_id", "to_id"], kind="stable")
    keyed = keyed.drop_duplicates(["participant_id", "context", "_lo", "_hi"], keep="last")
    return keyed.drop(columns=["_lo", "_hi"]).sort_index()


def _codes(table: pd.DataFrame) -> tuple[pd.Index, np.ndarray, np.ndarray]:
    """Sorted distinct ids and the int codes of from_id/to_id (sorted, so row order never matters)."""
    both = pd.concat([table["from_id"], table["to_id"]], ignore_index=True)
    kind = pd.api.types.infer_dtype(both, skipna=False)
    if kind.startswith("mixed"):
        # Mixed ids (1 and "1") would silently be two values, and cannot be sorted for determinism.
        raise MoralGraphInputError(
            f"value ids must be of one comparable type (all int or all str); from_id/to_id are {kind}"
        )
    codes, ids = pd.factorize(both, sort=True)
    n = len(table)
    return pd.Index(ids), codes[:n], codes[n:]


def _pair_counts(
    src: np.ndarray, dst: np.ndarray, answer: np.ndarray, *, n_ids: int, ctx: np.ndarray | None = None
) -> _Counts:
    """Count, per (context?, A, B), the study's five numbers from forward and reverse answers.

    Each answer on A→B is entered twice: as itself for the pair (A, B), and as a reverse answer for
    (B, A). Grouping is one integer key per entry + bincount, so there is no Python loop per answer.
    """
    n = len(src)
    up = (answer == "upgrade").astype(float)
    no = (answer == "no_upgrade").astype(float)
    unsure = (answer == "not_sure").astype(float)
    a = np.concatenate([src, dst]).astype(np.int64)
    b = np.concatenate([dst, src]).astype(np.int64)
    key = a * n_ids + b
    if ctx is not None:
        c = np.concatenate([ctx, ctx]).astype(np.int64)
        key = key + c * (n_ids * n_ids)
    keys, group = np.unique(key, return_inverse=True)
    m = len(keys)
    fwd, rev = group[:n], group[n:]

    def count(g: np.ndarray, w: np.ndarray) -> np.ndarray:
        return np.rint(np.bincount(g, weights=w, minlength=m)).astype(np.int64)

    frame = pd.DataFrame({
        "source": (keys % (n_ids * n_ids)) // n_ids,
        "wiser": keys % n_ids,
        "marked_wiser": count(fwd, up),
        "marked_not_wiser": count(fwd, no),
        "marked_less_wise": count(rev, up),
        "marked_unsure": count(fwd, unsure),
        "impressions": np.bincount(group, minlength=m).astype(np.int64),
    })
    if ctx is not None:
        frame.insert(0, "ctx", keys // (n_ids * n_ids))
    return _Counts(frame=frame, answer_group=group)


def _wiser_likelihood(df: pd.DataFrame) -> np.ndarray:
    w, nw = df["marked_wiser"].to_numpy(float), df["marked_not_wiser"].to_numpy(float)
    u, lw = df["marked_unsure"].to_numpy(float), df["marked_less_wise"].to_numpy(float)
    total = w + nw + u + lw  # the study's order of addition
    out = np.full(len(df), np.nan)
    # 0/0 happens when a pair's only answers are non-upgrades on the reverse move; the study got
    # NaN there (JavaScript), we get NaN without dividing by zero.
    np.divide(w - lw, total, out=out, where=total > 0)
    return out


def _entropy(df: pd.DataFrame) -> np.ndarray:
    """log2 entropy of the five counts (impressions included, as the study did), in its order."""
    counts = [df[c].to_numpy(float) for c in _COUNT_COLUMNS]
    total = counts[0] + counts[1] + counts[2] + counts[3] + counts[4]
    h = np.zeros(len(df))
    for c in counts:
        p = np.divide(c, total, out=np.zeros(len(df)), where=total > 0)
        h -= p * np.log2(p, out=np.zeros(len(df)), where=p > 0)
    return h


def _contexts_of(answer_group: np.ndarray, context: np.ndarray, kept: np.ndarray) -> dict[int, tuple[str, ...]]:
    """Sorted distinct contexts of every answer (either direction) on each kept pair."""
    both = np.concatenate([context, context])
    mask = kept[answer_group]
    return _sorted_tuples_by_group(answer_group[mask], both[mask])


def _sorted_tuples_by_group(group: np.ndarray, labels: np.ndarray) -> dict[int, tuple[str, ...]]:
    """group code → sorted distinct labels; one vectorised sort, then a loop per group (not per row),
    because pandas' groupby-agg(tuple) costs ~0.1 ms per group."""
    found = pd.DataFrame({"g": np.asarray(group, dtype=np.int64), "c": np.asarray(labels).astype(str)})
    found = found.drop_duplicates().sort_values(["g", "c"], kind="stable")
    g = found["g"].to_numpy()
    c = found["c"].to_numpy(dtype=object).tolist()
    if not len(g):
        return {}
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    ends = np.r_[starts[1:], len(g)]
    return {int(g[s]): tuple(c[s:e]) for s, e in zip(starts, ends, strict=True)}


def _page_rank_codes(
    src: np.ndarray, dst: np.ndarray, weight: np.ndarray, n: int, damping: float, iterations: int,
    dangling: str,
) -> np.ndarray:
    if dangling not in ("leak", "uniform"):
        raise MoralGraphInputError(f"dangling must be 'leak' or 'uniform', got {dangling!r}")
    out_weight = np.bincount(src, weights=weight, minlength=n)
    # The study skips edges whose source has no positive out-weight; dividing guarded the same way.
    share = np.divide(weight, out_weight[src], out=np.zeros(len(src)), where=out_weight[src] > 0)
    sink = out_weight <= 0
    rank = np.full(n, 1.0 / n)
    for _ in range(iterations):
        new = np.full(n, (1.0 - damping) / n)
        new += damping * np.bincount(dst, weights=rank[src] * share, minlength=n)
        if dangling == "uniform":
            new += damping * rank[sink].sum() / n
        rank = new
    return rank


def _decode(df: pd.DataFrame, ids: pd.Index) -> pd.DataFrame:
    """Id codes back to the caller's ids (same dtype as the input's id columns)."""
    out = df.reset_index(drop=True)
    for col in ("source", "wiser"):
        out[col] = ids.take(out[col].to_numpy(np.int64)).to_numpy()
    sort = ["context", "source", "wiser"] if "context" in out.columns else ["source", "wiser"]
    return out.sort_values(sort, kind="stable").reset_index(drop=True)


def _decode_rank(rank: Mapping[Any, float], ids: pd.Index) -> dict[Hashable, float]:
    if not rank:
        return {}
    codes = np.fromiter(rank.keys(), dtype=np.int64, count=len(rank))
    return dict(zip(ids.take(codes).tolist(), rank.values(), strict=True))


def _values_table(ids: pd.Index, rank_by_code: Mapping[Any, float], values: pd.DataFrame | None) -> pd.DataFrame:
    rank = _decode_rank(rank_by_code, ids)
    table = pd.DataFrame({"id": list(rank), "page_rank": list(rank.values())})
    if table.empty:
        table = pd.DataFrame({"id": pd.Series([], dtype=object), "page_rank": pd.Series([], dtype=float)})
    if values is not None:
        _check_values(values)
        meta = values.drop(columns=[c for c in ("page_rank",) if c in values.columns])
        table = table.merge(meta, on="id", how="left")
    return table.sort_values(["page_rank", "id"], ascending=[False, True], kind="stable").reset_index(drop=True)


def _check_values(values: pd.DataFrame) -> None:
    if "id" not in values.columns:
        raise MoralGraphInputError(f"values must have an 'id' column; it has {', '.join(map(str, values.columns))}")
    dup = values["id"].duplicated().to_numpy()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise MoralGraphInputError(f"values row {i} column 'id': duplicate id {_py(values['id'].iloc[i])!r}")


def _context_param(context: str | Iterable[str] | None) -> tuple[str, ...] | None:
    if context is None:
        return None
    return (context,) if isinstance(context, str) else tuple(context)


def _naive_utc(when: Any) -> pd.Timestamp:
    ts = pd.Timestamp(when)
    return ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo is not None else ts


def _iso(when: Any) -> str | None:
    return None if when is None else _naive_utc(when).isoformat()


def _py(v: Any) -> Any:
    """numpy scalars → Python scalars, so ids in dicts and JSON look like the input's."""
    return v.item() if isinstance(v, np.generic) else v


def _camel(name: str) -> str:
    head, *rest = str(name).split("_")
    return head + "".join(part.title() for part in rest)


def _json_safe(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return [_json_safe(x) for x in v.tolist()]
    if isinstance(v, list | tuple):
        return [_json_safe(x) for x in v]
    if isinstance(v, pd.Timestamp | datetime):
        return _iso_z(pd.Timestamp(v))
    v = _py(v)
    if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and np.isnan(v)):
        return None
    return v


def _iso_z(ts: pd.Timestamp) -> str:
    """Naive UTC (or aware) timestamp -> '2023-09-19T11:54:18.065Z', the dump's own format."""
    ts = _naive_utc(ts)
    spec = "milliseconds" if ts.microsecond % 1000 == 0 and ts.nanosecond == 0 else "auto"
    return ts.isoformat(timespec=spec) + "Z"


def _graphml_attr(key: str, v: Any) -> tuple[str, Any]:
    """GraphML only holds scalars: lists become one "; "-joined string, missing values are dropped."""
    v = _json_safe(v)
    if isinstance(v, list):
        return key, "; ".join(map(str, v))
    return key, v
