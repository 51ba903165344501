"""Polis-style opinion groups: who votes alike, and which statements define or bridge the groups.

This module reproduces the opinion-group pipeline of Polis's `polismath` (REFERENCE.md §2) on a
participant x statement vote table: participation threshold, column-mean imputation, PCA to two
components, sparsity-aware projection, ~100 k-means "base" clusters, weighted k-means over the base
centres for k = 2..min(5, 2 + n_base/12) with k chosen by silhouette, representativeness (repness)
with Polis's z-tests, and group-informed consensus. It is pure analysis: DataFrames in, a frozen
`OpinionGroups` out, seeded and deterministic. It must never read files, touch the store (no SQL,
no DuckDB), import Streamlit, or decide which statements are moderated out -- the caller says so.

Where this deviates from Polis, on purpose: Polis updates its clusters incrementally after every
batch of votes (warm-starting k-means from the previous clusters and only switching k after the same
k wins four updates in a row). A batch computation has no such history, so the group step runs
weighted k-means from several starts (Polis's own "first distinct centres" start plus seeded
k-means++ starts) and keeps the lowest weighted inertia. Measured against Polis's exported groups,
this matches Polis far better than a single cold start (see benchmarks/results/polis_groups.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

# Polis's fixed parameters (polismath conversation.clj defaults).
MIN_VOTES = 7  # a participant enters clustering after min(7, n_statements) votes
BASE_K = 100  # number of fine "base" clusters
MAX_K = 5  # largest number of opinion groups
BASE_ITERS = 100  # k-means iterations for the base clusters
GROUP_ITERS = 20  # k-means iterations for the groups (Polis's kmeans default)
SAME_CLUSTERING_TOLERANCE = 0.01  # Polis stops k-means when no centre moves further than this
Z_90 = 1.2816  # one-sided 90% significance used by Polis for repness and consensus
# Ours: restarts of the group k-means (the first one is Polis's deterministic start).
GROUP_RESTARTS = 10

VOTE_COLUMNS = ("participant_id", "statement_id", "vote")


class VoteTableError(ValueError):
    """The vote table handed to `opinion_groups` is not one vote per participant x statement."""


@dataclass(frozen=True)
class OpinionGroups:
    """Result of `opinion_groups`.

    participants: participant_id, n_votes, clustered (bool), base_cluster (-1 if not clustered),
        group (0-based; -1 below the participation threshold), x, y (sparsity-aware projection;
        computed for everyone, also those not clustered).
    k: number of opinion groups chosen (0 when nobody could be clustered).
    silhouette: silhouette of the grouping for every k tried.
    repness: group, statement_id, repful ('agree'|'disagree'), n_success, n_trials, p, ratio,
        z_diff (two-proportion test in- vs out-group), z_p (one-proportion test of p vs 0.5),
        significant (both z > 1.2816); one row per group x statement, sorted by group then the
        Polis repness metric (ratio * z_diff * p * z_p, descending).
    consensus: statement_id, n_votes, n_agree, n_disagree, agree_rate (raw share of agrees among
        all votes), p_agree ((n_agree + 1) / (n_votes + 2)), gic (group-informed consensus),
        sorted by gic descending.
    base_clusters: base_cluster, x, y, size, group.
    statements: statement ids in the column order used for the PCA.
    components: 2 x n_statements principal axes; center: column centre used for the projection.
    """

    participants: pd.DataFrame
    k: int
    silhouette: dict[int, float]
    repness: pd.DataFrame
    consensus: pd.DataFrame
    base_clusters: pd.DataFrame
    statements: tuple[str, ...]
    components: np.ndarray
    center: np.ndarray
    params: dict[str, object] = field(default_factory=dict)

    def group_of(self) -> pd.Series:
        """participant_id -> group (-1 for participants below the participation threshold)."""
        return self.participants.set_index("participant_id")["group"]


# ---------------------------------------------------------------------------------------------
# Input


def _validated(votes: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in VOTE_COLUMNS if c not in votes.columns]
    if missing:
        raise VoteTableError(f"vote table lacks column(s) {missing}; expected {list(VOTE_COLUMNS)}")
    table = votes.loc[:, list(VOTE_COLUMNS)].copy()
    table["participant_id"] = table["participant_id"].astype(str)
    table["statement_id"] = table["statement_id"].astype(str)
    numeric = pd.to_numeric(table["vote"], errors="coerce")
    bad = ~numeric.isin([-1, 0, 1])
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise VoteTableError(
            f"vote table row {row + 1}, column 'vote': {table['vote'].iloc[row]!r} is not -1, 0 or +1"
        )
    table["vote"] = numeric.astype(int)
    dup = table.duplicated(["participant_id", "statement_id"], keep=False)
    if dup.any():
        row = int(np.flatnonzero(dup.to_numpy())[0])
        raise VoteTableError(
            f"vote table row {row + 1}: participant {table['participant_id'].iloc[row]!r} voted twice on "
            f"statement {table['statement_id'].iloc[row]!r}; pass latest votes only (latest_votes)"
        )
    return table


def _vote_matrix(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Participants x statements with NaN for 'not seen'; rows and columns in order of first vote,
    which is the order Polis's named matrix grows in (and so the order its k-means starts from)."""
    pids = pd.unique(table["participant_id"])
    tids = pd.unique(table["statement_id"])
    rows = pd.Index(pids).get_indexer(table["participant_id"])
    cols = pd.Index(tids).get_indexer(table["statement_id"])
    matrix = np.full((len(pids), len(tids)), np.nan)
    matrix[rows, cols] = table["vote"].to_numpy(dtype=float)
    return np.asarray(pids, dtype=object), np.asarray(tids, dtype=object), matrix


# ---------------------------------------------------------------------------------------------
# Projection


def _pca_projection(rating: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Polis's PCA and sparsity-aware projection.

    Missing votes become the statement's mean vote, PCA keeps two components; each participant is
    projected using only the votes they cast and pushed out by sqrt(n_statements / n_votes) so that
    people who voted little are not all piled up at the centre."""
    n_statements = rating.shape[1]
    voted = ~np.isnan(rating)
    counts = voted.sum(axis=0)
    col_mean = np.divide(np.nansum(rating, axis=0), counts, out=np.zeros(n_statements), where=counts > 0)
    imputed = np.where(voted, rating, col_mean)
    center = imputed.mean(axis=0)
    centred = imputed - center
    components = np.zeros((2, n_statements))
    if centred.shape[0] >= 2 and np.any(centred):
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        n = min(2, vt.shape[0])
        components[:n] = vt[:n]
        # An SVD's signs are arbitrary; fix them so results do not flip between machines.
        for i in range(n):
            pivot = np.argmax(np.abs(components[i]))
            if components[i, pivot] < 0:
                components[i] = -components[i]
    projected = np.where(voted, rating - center, 0.0) @ components.T
    scale = np.sqrt(n_statements / np.maximum(voted.sum(axis=1), 1))
    return projected * scale[:, None], components, center


# ---------------------------------------------------------------------------------------------
# Clustering


def _first_distinct(points: np.ndarray, k: int) -> np.ndarray:
    """Polis's k-means start: the first k distinct points in row order."""
    _, first = np.unique(points, axis=0, return_index=True)
    return points[np.sort(first)[:k]]


def _kmeans_pp(points: np.ndarray, weights: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Weighted k-means++ seeding (starts for the extra restarts)."""
    centres = [points[rng.choice(len(points), p=weights / weights.sum())]]
    for _ in range(1, k):
        d2 = np.min(((points[:, None, :] - np.asarray(centres)[None]) ** 2).sum(-1), axis=1)
        mass = d2 * weights
        if mass.sum() <= 0:
            break
        centres.append(points[rng.choice(len(points), p=mass / mass.sum())])
    return np.asarray(centres)


def _lloyd(
    points: np.ndarray, weights: np.ndarray, centres: np.ndarray, max_iters: int
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted k-means as Polis runs it: empty clusters are dropped, and iteration stops when no
    centre moved further than SAME_CLUSTERING_TOLERANCE (or after max_iters steps)."""
    for _ in range(max_iters + 1):
        labels = ((points[:, None, :] - centres[None]) ** 2).sum(-1).argmin(axis=1)
        mass = np.bincount(labels, weights=weights, minlength=len(centres))
        sums = np.stack(
            [np.bincount(labels, weights=weights * points[:, d], minlength=len(centres)) for d in range(2)],
            axis=1,
        )
        used = mass > 0
        new = sums[used] / mass[used][:, None]
        converged = len(new) == len(centres) and bool(
            np.all(np.linalg.norm(np.sort(new, axis=0) - np.sort(centres, axis=0), axis=1)
                   < SAME_CLUSTERING_TOLERANCE)
        )
        centres = new
        if converged:
            break
    labels = ((points[:, None, :] - centres[None]) ** 2).sum(-1).argmin(axis=1)
    return labels, centres


def _relabelled(labels: np.ndarray) -> np.ndarray:
    """Consecutive 0-based labels, in order of first appearance (stable group numbering)."""
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))
    return order[inverse]


def _weighted_inertia(points: np.ndarray, weights: np.ndarray, labels: np.ndarray) -> float:
    total = 0.0
    for g in np.unique(labels):
        member = labels == g
        centre = np.average(points[member], axis=0, weights=weights[member])
        total += float((weights[member] * ((points[member] - centre) ** 2).sum(1)).sum())
    return total


def _silhouette(distances: np.ndarray, labels: np.ndarray) -> float:
    """Polis's silhouette over base-cluster centres: unweighted mean, 0 for singleton members."""
    groups = np.unique(labels)
    if len(groups) < 2:
        return float("nan")
    values = np.zeros(len(labels))
    for i, own in enumerate(labels):
        mates = labels == own
        mates[i] = False
        if not mates.any():
            continue
        a = distances[i, mates].mean()
        b = min(distances[i, labels == g].mean() for g in groups if g != own)
        values[i] = (b - a) / max(a, b) if max(a, b) > 0 else 0.0
    return float(values.mean())


def _group_clustering(
    centres: np.ndarray, sizes: np.ndarray, k: int, restarts: int, rng: np.random.Generator
) -> np.ndarray:
    weights = sizes.astype(float)
    starts = [_first_distinct(centres, k)]
    starts += [_kmeans_pp(centres, weights, k, rng) for _ in range(max(restarts - 1, 0))]
    best_labels, best_inertia = None, np.inf
    for start in starts:
        labels, _ = _lloyd(centres, weights, start, GROUP_ITERS)
        inertia = _weighted_inertia(centres, weights, labels)
        # Strictly better only, so ties keep the earliest start (Polis's own) and stay deterministic.
        if inertia < best_inertia - 1e-12:
            best_labels, best_inertia = labels, inertia
    return _relabelled(best_labels)


# ---------------------------------------------------------------------------------------------
# Repness and consensus


def _prop_test(successes: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Polis's one-proportion z-test of successes/n against 0.5, with +1 on both counts."""
    s, n = successes + 1.0, n + 1.0
    return 2.0 * np.sqrt(n) * (s / n - 0.5)


def _two_prop_test(succ_in, succ_out, n_in, n_out) -> np.ndarray:
    """Polis's two-proportion z-test (in-group > out-group), with +1 on all four counts."""
    succ_in, succ_out, n_in, n_out = (np.asarray(x, dtype=float) + 1.0 for x in (succ_in, succ_out, n_in, n_out))
    p1, p2 = succ_in / n_in, succ_out / n_out
    pooled = (succ_in + succ_out) / (n_in + n_out)
    denom = np.sqrt(pooled * (1 - pooled) * (1 / n_in + 1 / n_out))
    return np.divide(p1 - p2, denom, out=np.zeros_like(p1), where=denom > 0)


def _group_counts(table: pd.DataFrame, group_of: pd.Series) -> pd.DataFrame:
    """Agree / disagree / seen counts per group x statement, from clustered participants only."""
    grouped = table.assign(group=table["participant_id"].map(group_of))
    grouped = grouped[grouped["group"].notna() & (grouped["group"] >= 0)]
    counts = (
        grouped.assign(n_agree=grouped["vote"].eq(1), n_disagree=grouped["vote"].eq(-1), n_seen=1)
        .groupby(["group", "statement_id"])[["n_agree", "n_disagree", "n_seen"]]
        .sum()
        .astype(int)
    )
    groups = sorted(int(g) for g in grouped["group"].unique())
    statements = pd.unique(table["statement_id"])
    full = pd.MultiIndex.from_product([groups, statements], names=["group", "statement_id"])
    return counts.reindex(full, fill_value=0).reset_index()


def representativeness(votes: pd.DataFrame, group_of: pd.Series) -> pd.DataFrame:
    """Polis repness of every statement for every group.

    votes: participant_id, statement_id, vote (one per pair). group_of: participant_id -> group
    (participants missing or < 0 are ignored, as Polis ignores unclustered participants).
    For the agree side: p = (n_a + 1)/(n_s + 2), ratio = p / p(outside), z_diff = two-proportion test
    of in- vs out-group agrees, z_p = one-proportion test of agrees vs 0.5; the same for disagrees.
    The statement is repful for the side with the larger z_diff, and significant when both its
    z-values exceed 1.2816."""
    table = _validated(votes)
    counts = _group_counts(table, group_of.astype(float))
    columns = ["group", "statement_id", "repful", "n_success", "n_trials", "p", "ratio", "z_diff", "z_p",
               "significant"]
    if counts.empty:
        return pd.DataFrame(columns=columns)
    totals = counts.groupby("statement_id")[["n_agree", "n_disagree", "n_seen"]].transform("sum")
    n_s = counts["n_seen"].to_numpy(float)
    rest_s = totals["n_seen"].to_numpy(float) - n_s
    sides = {}
    for side, col in (("agree", "n_agree"), ("disagree", "n_disagree")):
        n = counts[col].to_numpy(float)
        rest = totals[col].to_numpy(float) - n
        p = (n + 1) / (n_s + 2)
        sides[side] = {
            "n_success": n.astype(int),
            "p": p,
            "ratio": p / ((rest + 1) / (rest_s + 2)),
            "z_diff": _two_prop_test(n, rest, n_s, rest_s),
            "z_p": _prop_test(n, n_s),
        }
    agree_wins = sides["agree"]["z_diff"] > sides["disagree"]["z_diff"]
    out = pd.DataFrame({"group": counts["group"].astype(int), "statement_id": counts["statement_id"]})
    out["repful"] = np.where(agree_wins, "agree", "disagree")
    for key in ("n_success", "p", "ratio", "z_diff", "z_p"):
        out[key] = np.where(agree_wins, sides["agree"][key], sides["disagree"][key])
    out["n_trials"] = n_s.astype(int)
    out["significant"] = (out["z_diff"] > Z_90) & (out["z_p"] > Z_90)
    metric = out["ratio"] * out["z_diff"] * out["p"] * out["z_p"]
    out = out.assign(_metric=metric).sort_values(["group", "_metric"], ascending=[True, False], kind="stable")
    return out.drop(columns="_metric").loc[:, columns].reset_index(drop=True)


def group_informed_consensus(votes: pd.DataFrame, group_of: pd.Series) -> pd.DataFrame:
    """Polis's group-informed consensus GIC(c) = prod_g (A_g + 1)/(S_g + 2) over the opinion groups,
    plus each statement's overall vote counts (over everyone who voted, clustered or not)."""
    table = _validated(votes)
    overall = (
        table.assign(n_votes=1, n_agree=table["vote"].eq(1), n_disagree=table["vote"].eq(-1))
        .groupby("statement_id", sort=False)[["n_votes", "n_agree", "n_disagree"]]
        .sum()
        .astype(int)
    )
    overall["agree_rate"] = overall["n_agree"] / overall["n_votes"]
    overall["p_agree"] = (overall["n_agree"] + 1) / (overall["n_votes"] + 2)
    counts = _group_counts(table, group_of.astype(float))
    if counts.empty:
        overall["gic"] = np.nan
    else:
        per_group = (counts["n_agree"] + 1.0) / (counts["n_seen"] + 2.0)
        overall["gic"] = per_group.groupby(counts["statement_id"]).prod().reindex(overall.index)
    out = overall.reset_index().sort_values("gic", ascending=False, kind="stable")
    return out.loc[:, ["statement_id", "gic", "agree_rate", "p_agree", "n_votes", "n_agree", "n_disagree"]
                   ].reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# The pipeline


def opinion_groups(
    votes: pd.DataFrame,
    *,
    seed: int = 0,
    moderated_out: Iterable[str] = (),
    min_votes: int = MIN_VOTES,
    base_k: int = BASE_K,
    max_k: int = MAX_K,
    group_restarts: int = GROUP_RESTARTS,
) -> OpinionGroups:
    """Polis opinion groups from a vote table.

    votes: participant_id, statement_id, vote (+1 agree, -1 disagree, 0 pass), exactly one row per
    participant x statement (latest vote already chosen). Row order matters only as Polis's does:
    participants and statements are numbered in order of first appearance.
    moderated_out: statement ids moderated out. Usually the caller drops their votes beforehand;
    if it keeps them and names them here, they are handled as Polis does (the column is zeroed:
    it carries no opinion but still counts as a vote for the participation threshold and the
    sparsity scaling) and they get no repness or consensus row.
    """
    table = _validated(votes)
    moderated = {str(s) for s in moderated_out}
    pids, tids, raw = _vote_matrix(table)
    n_participants, n_statements = raw.shape
    n_votes = (~np.isnan(raw)).sum(axis=1) if n_participants else np.zeros(0, int)

    rating = raw.copy()
    out_cols = np.array([t in moderated for t in tids], dtype=bool)
    rating[:, out_cols] = 0.0
    if n_participants:
        xy, components, center = _pca_projection(rating)
    else:
        xy, components, center = np.zeros((0, 2)), np.zeros((2, 0)), np.zeros(0)

    threshold = min(min_votes, n_statements)
    clustered = n_votes >= max(threshold, 1)
    points = xy[clustered]
    base = np.full(n_participants, -1)
    group = np.full(n_participants, -1)
    silhouettes: dict[int, float] = {}
    k = 0
    base_table = pd.DataFrame(columns=["base_cluster", "x", "y", "size", "group"])
    if len(points):
        start = _first_distinct(points, base_k)
        base_labels, _ = _lloyd(points, np.ones(len(points)), start, BASE_ITERS)
        base_labels = _relabelled(base_labels)
        n_base = int(base_labels.max()) + 1
        centres = np.array([points[base_labels == b].mean(axis=0) for b in range(n_base)])
        sizes = np.bincount(base_labels, minlength=n_base)
        base[clustered] = base_labels
        rng = np.random.default_rng(seed)
        distances = np.linalg.norm(centres[:, None] - centres[None], axis=-1)
        candidates: dict[int, np.ndarray] = {}
        for kk in range(2, min(max_k, 2 + n_base // 12) + 1):
            if n_base <= kk:
                break
            labels = _group_clustering(centres, sizes, kk, group_restarts, rng)
            if labels.max() + 1 < 2:
                continue
            candidates[kk] = labels
            silhouettes[kk] = _silhouette(distances, labels)
        if candidates:
            k = max(candidates, key=lambda kk: (silhouettes[kk], -kk))
            base_group = candidates[k]
            k = int(base_group.max()) + 1
        else:
            # Too few distinct positions to split: everyone clustered forms one group.
            base_group = np.zeros(n_base, dtype=int)
            k = 1
        group[clustered] = base_group[base_labels]
        base_table = pd.DataFrame(
            {"base_cluster": np.arange(n_base), "x": centres[:, 0], "y": centres[:, 1], "size": sizes,
             "group": base_group}
        )

    participants = pd.DataFrame(
        {
            "participant_id": pids.astype(str),
            "n_votes": n_votes.astype(int),
            "clustered": clustered,
            "base_cluster": base,
            "group": group,
            "x": xy[:, 0] if n_participants else np.zeros(0),
            "y": xy[:, 1] if n_participants else np.zeros(0),
        }
    )
    group_of = participants.set_index("participant_id")["group"]
    kept = table[~table["statement_id"].isin(moderated)]
    return OpinionGroups(
        participants=participants,
        k=k,
        silhouette=silhouettes,
        repness=representativeness(kept, group_of),
        consensus=group_informed_consensus(kept, group_of),
        base_clusters=base_table,
        statements=tuple(str(t) for t in tids),
        components=components,
        center=center,
        params={"seed": seed, "min_votes": min_votes, "threshold": threshold, "base_k": base_k,
                "max_k": max_k, "group_restarts": group_restarts, "moderated_out": sorted(moderated)},
    )
