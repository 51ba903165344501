"""Polis's conversation update (`conversation.clj`) and a replay of a vote history in its cadence.

One update, as Polis's math worker runs it on each batch of new votes:
1. the votes go into the raw rating matrix (participants and statements numbered in order of first
   vote); moderated-out and meta statements are zeroed in the rating matrix for everyone;
2. `in conversation`: a participant enters once they have min(7, n_statements) votes (moderated-out
   votes count) and never leaves; while fewer than 15 are in, the most active others are added;
3. PCA by power iteration on the column-mean-imputed rating matrix, each component started from the
   last update's; participants projected from the votes they cast, scaled by sqrt(n_statements/n_votes);
4. base clusters: k-means (k = 100, up to 101 steps) of the in-conversation participants, started
   from the last update's base clusters;
5. group clusterings for k = 2..min(5, 2 + n_base // 12): weighted k-means of the base-cluster
   centres, each k started from the last update's clustering for that k; the silhouette of each;
6. the group-k smoother: the k with the best silhouette replaces the shown k only after it has been
   best `GROUP_K_BUFFER` (4) updates in a row; until a k has been shown, the best one is shown.
The worker polls for new votes every second (`POLL_INTERVAL_MS`) and runs one update on all votes
that arrived since, so `replay_conversation` cuts the time-ordered vote history into one-second
windows and runs an update per non-empty window; `single_shot` runs one update on the latest votes,
which is what Polis does for a conversation computed from scratch.

Deviations, all on purpose and small: ties in `in conversation`'s greedy top-15 go to the earlier
participant (Polis: hash order); the first PCA start is drawn from a seeded generator (Polis:
unseeded); we iterate on the Gram matrix (same product, see `pca`). A worker restart (which in Polis
forgets the per-k group clusterings and the smoother) cannot be known from an export and is not
replayed; nor are subgroups, which do not change anyone's group.
Pure: arrays in, a frozen `ConversationMath` out; no SQL, no files, no Streamlit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from .clusters import KMEANS_MAX_ITERS, Clustering, kmeans, silhouette
from .pca import PCA_ITERS, CoVotes, gram_rows, principal_components, sparsity_aware_projection

# conversation.clj base-conv-update-graph defaults
BASE_K = 100
BASE_ITERS = 100
MAX_K = 5
GROUP_K_BUFFER = 4
MIN_VOTES = 7  # in-conv: min(7, n-cmts) votes
GREEDY_N = 15  # in-conv: top up to 15 participants
POLL_INTERVAL_MS = 1000  # components/config.clj :poller :votes :polling-interval

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class KSmoother:
    """conversation.clj :group-k-smoother state."""

    last_k: int | None = None
    last_k_count: int = 0
    smoothed_k: int | None = None

    def next(self, this_k: int, buffer: int = GROUP_K_BUFFER) -> KSmoother:
        """The smoother after an update whose best-silhouette k is `this_k`."""
        count = self.last_k_count + 1 if self.last_k is not None and this_k == self.last_k else 1
        smoothed = this_k if count >= buffer else (self.smoothed_k if self.smoothed_k is not None else this_k)
        return KSmoother(last_k=this_k, last_k_count=count, smoothed_k=smoothed)


def best_k(silhouettes: dict[int, float]) -> int:
    """Clojure's (apply max-key silhouettes ks): the later k wins ties; NaN never wins over a number."""
    ks = list(silhouettes)
    best = ks[0]
    for k in ks[1:]:
        if silhouettes[k] >= silhouettes[best] or np.isnan(silhouettes[best]) and not np.isnan(silhouettes[k]):
            best = k
    return best


def max_group_k(n_base: int, max_k: int = MAX_K) -> int:
    """conversation.clj max-k-fn: min(max-k, 2 + n_base // 12)."""
    return min(max_k, 2 + n_base // 12)


@dataclass(frozen=True)
class ConversationMath:
    """Polis's math state after the last update.

    participants / statements: ids in Polis's row / column order (first vote).
    raw: latest vote per participant x statement (NaN: not seen); rating: raw with moderated-out
    statements zeroed for everyone (what PCA and repness read). n_votes: votes per participant in
    raw (what `in conversation` counts). projection: x, y per participant (everyone, not only those
    in the conversation). base: base clusters, `member` per in-conversation participant (in row
    order). groups: group clusters over base-cluster ids (`member` per base cluster in base.ids
    order). group_of: Polis's group id per participant (-1: not in the conversation).
    silhouettes: per k tried in the last update. k_history: (update number, vote time, best k,
    shown k) whenever either changed.
    """

    participants: tuple[str, ...]
    statements: tuple[str, ...]
    moderated: np.ndarray
    raw: np.ndarray
    rating: np.ndarray
    n_votes: np.ndarray
    in_conversation: np.ndarray
    projection: np.ndarray
    components: np.ndarray
    center: np.ndarray
    base: Clustering
    groups: Clustering
    group_of: np.ndarray
    k: int
    silhouettes: dict[int, float]
    smoother: KSmoother
    updates: int
    k_history: tuple[tuple[int, int | None, int, int], ...] = ()
    params: dict[str, object] = field(default_factory=dict)

    def group_series(self) -> pd.Series:
        """participant id -> Polis group id (-1 outside the conversation)."""
        return pd.Series(self.group_of, index=pd.Index(self.participants, name="participant_id"), name="group")


class _Worker:
    """One conversation's mutable math state during a replay (private: results leave as ConversationMath).

    Kept incrementally, because a replay runs thousands of updates of a few votes each. Everything
    over statements is kept only for those not moderated out (a moderated-out column is 0 for
    everyone and changes no product). `CoVotes` holds exact integer counts per pair of statements, so
    a batch's votes change a few of them by whole numbers and then only the rows and columns of
    G = A'A whose statement got a vote (its mean moved) are recomputed, with the same formula a
    rebuild uses (`gram_rows`): the optimised replay and a straightforward one agree bit for bit."""

    def __init__(self, n_rows: int, n_cols: int, moderated: np.ndarray, known: np.ndarray, seed: int) -> None:
        self.raw = np.full((n_rows, n_cols), np.nan)
        self.kept = np.flatnonzero(~moderated)  # statement positions of A's and G's columns
        self.kept_at = np.full(n_cols, -1)
        self.kept_at[self.kept] = np.arange(len(self.kept))
        self.votes_kept = np.zeros((n_rows, len(self.kept)))  # votes on A's columns, 0 where not voted
        self.voted_kept = np.zeros((n_rows, len(self.kept)), dtype=bool)
        self.covotes = CoVotes.empty(len(self.kept))
        self.centred = np.zeros((n_rows, len(self.kept)))  # A: vote - column mean where voted, else 0
        self.gram = np.zeros((len(self.kept), len(self.kept)))
        self.col_sum = np.zeros(n_cols)
        self.col_count = np.zeros(n_cols)
        self.row_count = np.zeros(n_rows, dtype=int)  # raw votes per participant
        self.row_count_kept = np.zeros(n_rows, dtype=int)  # ... on statements not moderated out
        self.moderated = moderated
        self.known = known
        self.in_conv = np.zeros(n_rows, dtype=bool)
        self.n_rows = 0
        self.n_cols = 0
        self.n_kept = 0  # A's columns seen so far (statements are numbered in order of first vote)
        self.rng = np.random.default_rng(seed)
        self.components: np.ndarray | None = None  # over A's columns seen so far
        self.base: Clustering | None = None
        self.base_of = np.full(n_rows, -1)
        self.group_clusterings: dict[int, Clustering] = {}
        self.smoother = KSmoother()
        self.silhouettes: dict[int, float] = {}
        self.projection = np.zeros((n_rows, 2))
        self.updates = 0
        self.k_history: list[tuple[int, int | None, int, int]] = []

    def apply(self, rows: np.ndarray, cols: np.ndarray, votes: np.ndarray) -> np.ndarray:
        """Write a batch of votes (one per cell, latest already chosen); return A's changed columns."""
        old = self.raw[rows, cols]
        fresh = np.isnan(old)
        self.raw[rows, cols] = votes
        np.add.at(self.row_count, rows[fresh], 1)
        kept = fresh & ~self.moderated[cols]
        np.add.at(self.row_count_kept, rows[kept], 1)
        np.add.at(self.col_count, cols[fresh], 1)
        np.add.at(self.col_sum, cols, votes - np.where(fresh, 0.0, old))
        self.n_rows = max(self.n_rows, int(rows.max()) + 1)
        self.n_cols = max(self.n_cols, int(cols.max()) + 1)
        self.n_kept = int(np.searchsorted(self.kept, self.n_cols))
        at = self.kept_at[cols]
        on_kept = at >= 0  # a zeroed column stays 0 - 0 for everyone
        rows, at, votes = rows[on_kept], at[on_kept], votes[on_kept]
        if not len(rows):
            return at
        voters = np.unique(rows)
        before = (self.votes_kept[voters], self.voted_kept[voters])
        self.votes_kept[rows, at] = votes
        self.voted_kept[rows, at] = True
        changed = np.unique(at)
        self.covotes.replace(changed, before, (self.votes_kept[voters], self.voted_kept[voters]))
        return changed

    def refresh_gram(self, changed: np.ndarray) -> None:
        """Recompute A's columns and G's rows and columns for the statements that got votes."""
        if not len(changed):
            return
        n, k = self.n_rows, self.n_kept
        mean = self.col_sum[self.kept[:k]] / np.maximum(self.col_count[self.kept[:k]], 1)
        self.centred[:n, changed] = np.where(self.voted_kept[:n, changed], self.votes_kept[:n, changed] - mean[changed], 0.0)
        block = gram_rows(changed, mean, self.covotes.view(k))
        self.gram[changed, :k] = block
        self.gram[:k, changed] = block.T

    def update(self, rows: np.ndarray, cols: np.ndarray, votes: np.ndarray, when: int | None) -> None:
        self.refresh_gram(self.apply(rows, cols, votes))
        n, m, k = self.n_rows, self.n_cols, self.n_kept
        self.components = principal_components(self.gram[:k, :k], n, previous=self.components, rng=self.rng,
                                               columns=self.kept[:k], n_statements=m)
        n_voted = self.row_count_kept[:n] + int(self.moderated[:m].sum())
        self.projection[:n] = sparsity_aware_projection(self.centred[:n, :k], n_voted, self.components, n_statements=m)
        self._in_conversation(n, m)
        self._cluster(n, when)
        self.updates += 1

    def full_components(self) -> np.ndarray:
        """The components over all statements seen (0 for the moderated-out ones)."""
        m, k = self.n_cols, self.n_kept
        if self.components is None:
            return np.zeros((0, m))
        full = np.zeros((len(self.components), m))
        full[:, self.kept[:k]] = self.components
        return full

    def _in_conversation(self, n: int, m: int) -> None:
        counts = self.row_count[:n]
        inc = self.in_conv[:n]
        inc |= (counts >= min(MIN_VOTES, m)) | self.known[:n]
        short = GREEDY_N - int(inc.sum())
        if short > 0:
            others = np.flatnonzero(~inc)
            top = others[np.argsort(-counts[others], kind="stable")[:short]]
            inc[top] = True

    def _cluster(self, n: int, when: int | None) -> None:
        rows = np.flatnonzero(self.in_conv[:n])
        if not len(rows):
            return
        points = self.projection[rows]
        self.base = kmeans(points, BASE_K, names=rows, last=self.base, max_iters=BASE_ITERS,
                           carried=self.base_of[rows])
        self.base_of[rows] = self.base.member
        centers, sizes = self.base.centers, self.base.sizes().astype(float)
        dx, dy = centers[:, None, 0] - centers[None, :, 0], centers[:, None, 1] - centers[None, :, 1]
        distances = np.sqrt(dx * dx + dy * dy)
        clusterings: dict[int, Clustering] = {}
        silhouettes: dict[int, float] = {}
        for k in range(2, max_group_k(len(centers)) + 1):
            clustering = kmeans(centers, k, names=self.base.ids, weights=sizes, last=self.group_clusterings.get(k),
                                max_iters=KMEANS_MAX_ITERS)
            clusterings[k] = clustering
            silhouettes[k] = silhouette(distances, np.searchsorted(clustering.ids, clustering.member), len(clustering.ids))
        self.group_clusterings = clusterings
        self.silhouettes = silhouettes
        this_k = best_k(silhouettes)
        before = self.smoother
        self.smoother = before.next(this_k)
        if (before.last_k, before.smoothed_k) != (self.smoother.last_k, self.smoother.smoothed_k):
            self.k_history.append((self.updates, when, this_k, int(self.smoother.smoothed_k)))


_EMPTY = Clustering(np.zeros(0, int), np.zeros((0, 2)), np.zeros(0, int), np.zeros(0, int))


def _numbered(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Codes in order of first appearance, and the distinct values in that order."""
    codes, uniques = pd.factorize(values, sort=False)
    return codes, np.asarray(uniques, dtype=object)


def _numbered_stream(stream: pd.DataFrame, moderated_out: Iterable[str],
                     known: Iterable[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Participant rows and statement columns numbered in order of first vote, their ids, and which
    statements are moderated out and which participants are already in the conversation."""
    rows, participants = _numbered(stream["participant_id"].astype(str))
    cols, statements = _numbered(stream["statement_id"].astype(str))
    moderated = np.isin(statements, np.asarray(sorted({str(s) for s in moderated_out}), dtype=object))
    known_rows = np.isin(participants, np.asarray(sorted({str(p) for p in known}), dtype=object))
    return rows, cols, participants, statements, moderated, known_rows


def _batch_bounds(batches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) of each run of equal batch numbers in the stream."""
    starts = np.flatnonzero(np.r_[True, batches[1:] != batches[:-1]]) if len(batches) else np.zeros(0, int)
    return starts, np.r_[starts[1:], len(batches)]


def _replayed(stream: pd.DataFrame, batches: np.ndarray, *, moderated_out: Iterable[str], known: Iterable[str],
              seed: int, progress: Progress | None) -> tuple[_Worker, np.ndarray, np.ndarray]:
    """Run one update per batch; the worker after the last, with the participant and statement ids."""
    rows, cols, participants, statements, moderated, known_rows = _numbered_stream(stream, moderated_out, known)
    worker = _Worker(len(participants), len(statements), moderated, known_rows, seed)
    votes = stream["vote"].to_numpy(dtype=float)
    times = stream["time"].to_numpy() if "time" in stream else None
    starts, ends = _batch_bounds(batches)
    # within a batch the latest vote on a cell wins: mark, once, each vote a later one in its batch replaces
    batch_of = np.repeat(np.arange(len(starts)), ends - starts)
    cell = batch_of * (len(participants) * len(statements)) + rows * len(statements) + cols
    counts = ~pd.Series(cell).duplicated(keep="last").to_numpy()
    for i, (s, e) in enumerate(zip(starts, ends, strict=True)):
        keep = counts[s:e]
        worker.update(rows[s:e][keep], cols[s:e][keep], votes[s:e][keep], int(times[e - 1]) if times is not None else None)
        if progress is not None:
            progress(i + 1, len(starts))
    return worker, participants, statements


def _run(stream: pd.DataFrame, batches: np.ndarray, *, moderated_out: Iterable[str], known: Iterable[str],
         seed: int, mode: str, progress: Progress | None) -> ConversationMath:
    with threadpool_limits(1, user_api="blas"):  # small products: a second BLAS thread only waits for a core
        worker, participants, statements = _replayed(stream, batches, moderated_out=moderated_out, known=known,
                                                     seed=seed, progress=progress)
    return _result(worker, participants, statements, mode=mode, seed=seed)


def _shown_groups(smoother: KSmoother, clusterings: dict[int, Clustering],
                 silhouettes: dict[int, float]) -> tuple[int, Clustering | None]:
    """The k Polis shows and its group clustering: the smoothed k, or, when that k no longer fits the
    base clusters, the best-silhouette one (None before any update clustered anyone)."""
    k = int(smoother.smoothed_k) if smoother.smoothed_k is not None else 0
    groups = clusterings.get(k)
    if groups is None and clusterings:
        k = best_k(silhouettes)
        groups = clusterings[k]
    return k, groups


def _result(worker: _Worker, participants: np.ndarray, statements: np.ndarray, *, mode: str,
            seed: int) -> ConversationMath:
    n, m = worker.n_rows, worker.n_cols
    raw = worker.raw[:n, :m].copy()
    rating = raw.copy()
    rating[:, worker.moderated[:m]] = 0.0
    k, groups = _shown_groups(worker.smoother, worker.group_clusterings, worker.silhouettes)
    base = worker.base if worker.base is not None else _EMPTY
    group_of = np.full(n, -1)
    if groups is not None:
        rows = np.flatnonzero(worker.in_conv[:n])
        group_of[rows] = groups.carried_over(worker.base_of[rows])
    else:
        groups = _EMPTY
    center = np.where(worker.col_count[:m] > 0, worker.col_sum[:m] / np.maximum(worker.col_count[:m], 1), 0.0)
    center[worker.moderated[:m]] = 0.0
    comps = worker.full_components()
    return ConversationMath(
        participants=tuple(str(p) for p in participants), statements=tuple(str(s) for s in statements),
        moderated=worker.moderated[:m].copy(), raw=raw, rating=rating, n_votes=worker.row_count[:n].copy(),
        in_conversation=worker.in_conv[:n].copy(), projection=worker.projection[:n].copy(), components=comps,
        center=center, base=base, groups=groups, group_of=group_of, k=k if groups is not None and len(groups.ids) else 0,
        silhouettes=dict(worker.silhouettes), smoother=worker.smoother, updates=worker.updates,
        k_history=tuple(worker.k_history),
        params={"mode": mode, "seed": seed, "base_k": BASE_K, "max_k": MAX_K, "group_k_buffer": GROUP_K_BUFFER,
                "pca_iters": PCA_ITERS, "poll_interval_ms": POLL_INTERVAL_MS if mode == "replay" else None})


def single_shot(votes: pd.DataFrame, *, moderated_out: Iterable[str] = (), known_in_conversation: Iterable[str] = (),
                seed: int = 0) -> ConversationMath:
    """One Polis update on a conversation computed from scratch.

    votes: participant_id, statement_id, vote (+1 agree, -1 disagree, 0 pass), one row per cell (the
    latest vote), in the order Polis would have seen them (that order numbers the participants, and
    k-means starts from the first distinct points). known_in_conversation: participants Polis has
    already let into the conversation (its in-conv set outlives rule changes; an export's non-blank
    group-id says who they are)."""
    stream = votes.loc[:, ["participant_id", "statement_id", "vote"]]
    return _run(stream, np.zeros(len(stream), dtype=int), moderated_out=moderated_out,
                known=known_in_conversation, seed=seed, mode="single-shot", progress=None)


def replay_conversation(history: pd.DataFrame, *, moderated_out: Iterable[str] = (),
                        known_in_conversation: Iterable[str] = (), seed: int = 0,
                        poll_interval_ms: int = POLL_INTERVAL_MS, progress: Progress | None = None) -> ConversationMath:
    """Polis's math replayed over a vote history, one update per polling window with votes.

    history: every vote event (re-votes included): participant_id, statement_id, vote, time
    (milliseconds since the epoch). Events are taken in time order (file order among equal times)."""
    stream = history.loc[:, ["participant_id", "statement_id", "vote", "time"]]
    stream = stream.iloc[np.argsort(stream["time"].to_numpy(), kind="stable")].reset_index(drop=True)
    batches = stream["time"].to_numpy(dtype=np.int64) // int(poll_interval_ms)
    return _run(stream, batches, moderated_out=moderated_out, known=known_in_conversation, seed=seed,
                mode="replay", progress=progress)
