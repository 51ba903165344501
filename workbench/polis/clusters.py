"""Polis's k-means and silhouette (`clusters.clj`), for base clusters and for groups.

What Polis does, and so what this does:
- a cold start takes the first k distinct points in row order (init-clusters);
- a warm start (clean-start-clusters) takes last run's clusters: each is re-centred on the current
  positions of its members still present (none left: dropped; all dropped: one cluster of
  everything), clusters with identical centres are merged, and while there are fewer clusters than
  min(k, distinct points) the point farthest from every centre is split off as a cluster of its own;
- each step assigns every point to its nearest centre, drops empty clusters and re-centres (weighted
  means for groups, weight = base-cluster size); it stops when the sorted centres moved less than
  0.01 each, or after `max_iters` + 1 steps;
- the silhouette is the unweighted mean over members of (b - a) / max(a, b), 0 for a singleton.
Cluster ids persist from run to run (a split-off cluster gets the largest id + 1), which is what
lets the next run start from this one. Pure numpy; clusters are frozen dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SAME_CLUSTERING_THRESHOLD = 0.01  # clusters.clj same-clustering? :threshold
KMEANS_MAX_ITERS = 20  # clusters.clj kmeans default (the group call passes :cluster-iters, a key kmeans ignores)


@dataclass(frozen=True)
class Clustering:
    """Clusters sorted by id; `member[i]` is the cluster id of the data row named `names[i]`
    (participant rows for base clusters, base-cluster ids for groups; names ascend)."""

    ids: np.ndarray
    centers: np.ndarray
    member: np.ndarray
    names: np.ndarray

    def carried_over(self, names: np.ndarray) -> np.ndarray:
        """For each of `names` (ascending), the id of the cluster it was a member of here (-1 if none)."""
        if not len(self.names):
            return np.full(len(names), -1)
        at = np.minimum(np.searchsorted(self.names, names), len(self.names) - 1)
        return np.where(self.names[at] == names, self.member[at], -1)

    def sizes(self, weights: np.ndarray | None = None) -> np.ndarray:
        """Members (or their total weight) per cluster, in `ids` order."""
        return np.bincount(np.searchsorted(self.ids, self.member), weights=weights, minlength=len(self.ids))


def _weighted_centers(points: np.ndarray, weights: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    mass = np.bincount(labels, weights=weights, minlength=n)
    out = np.empty((n, 2))
    out[:, 0] = np.bincount(labels, weights=weights * points[:, 0], minlength=n)
    out[:, 1] = np.bincount(labels, weights=weights * points[:, 1], minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):  # empty clusters: NaN, dropped by the callers
        out /= mass[:, None]
    return out


def first_distinct(points: np.ndarray, k: int) -> np.ndarray:
    """Row indices of the first k distinct points in row order (init-clusters)."""
    _, first = np.unique(points, axis=0, return_index=True)
    return np.sort(first)[:k]


def _positions(ids: np.ndarray, member: np.ndarray) -> np.ndarray:
    """Index into `ids` of each member's cluster id (-1 where the id is not among `ids`), by a
    lookup table over the ids (cheaper than a search per member)."""
    top = max(int(ids.max()) if len(ids) else 0, int(member.max()) if len(member) else 0)
    table = np.full(top + 2, -1)  # member -1 reads the last slot, which no id fills
    table[ids] = np.arange(len(ids))
    return table[member]


def _centers_of(points: np.ndarray, weights: np.ndarray, member: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Weighted mean position of each cluster's members, in `ids` order."""
    labels = _positions(ids, member)
    has = labels >= 0
    if has.all():
        return _weighted_centers(points, weights, labels, len(ids))
    return _weighted_centers(points[has], weights[has], labels[has], len(ids))


def _clean_start(points: np.ndarray, weights: np.ndarray, member: np.ndarray, last_ids: np.ndarray,
                 k: int) -> tuple[np.ndarray, np.ndarray]:
    """clean-start-clusters: (ids in order, centres); `member` (per-row cluster id or -1) is updated.
    The centres are always the weighted means of the rows `member` puts in each cluster."""
    present = np.zeros(max(int(last_ids.max()), int(member.max())) + 2, dtype=bool)
    present[member[member >= 0]] = True
    ids = last_ids[present[last_ids]]  # safe-recenter drops clusters with no member here
    if not len(ids):
        big = int(last_ids.max()) + 1 if len(last_ids) else 0
        ids = np.array([big])
        member[:] = big
    centers = _centers_of(points, weights, member, ids)
    # uniqify-clusters: merge clusters whose centres are identical (the larger one's id survives;
    # on equal sizes the later one's, as Clojure's max-key returns the last of equals).
    ordered = centers[np.lexsort((centers[:, 1], centers[:, 0]))]
    if len(ordered) > 1 and np.any(np.all(ordered[1:] == ordered[:-1], axis=1)):
        keys = [c.tobytes() for c in centers]
        kept: list[int] = []
        seen: dict[bytes, int] = {}
        for cid, key in zip(ids.tolist(), keys, strict=True):
            twin = seen.get(key)
            if twin is None:
                seen[key] = len(kept)
                kept.append(cid)
                continue
            other = kept[twin]
            n_other, n_this = int(np.sum(member == other)), int(np.sum(member == cid))
            survivor = other if n_other > n_this else cid
            member[(member == other) | (member == cid)] = survivor
            kept[twin] = survivor
        ids = np.asarray(kept)
        centers = _centers_of(points, weights, member, ids)
    if len(ids) >= k:
        return ids, centers
    possible = min(k, len(np.unique(points, axis=0)))
    while len(ids) < possible:
        # most-distal: the point whose nearest centre is farthest (the last such point on ties)
        nearest = np.sqrt(((points[:, None, :] - centers[None]) ** 2).sum(-1).min(axis=1))
        far = len(nearest) - 1 - int(np.argmax(nearest[::-1]))
        if nearest[far] <= 0:
            break
        new_id = int(ids.max()) + 1
        member[far] = new_id
        ids = np.append(ids, new_id)
        centers = _centers_of(points, weights, member, ids)
    return ids, centers


def _same_clustering(a: np.ndarray, b: np.ndarray) -> bool:
    """clusters.clj same-clustering?: sorted centres pairwise closer than 0.01 (zip stops at the shorter)."""
    n = min(len(a), len(b))
    sa = a[np.lexsort((a[:, 1], a[:, 0]))][:n]
    sb = b[np.lexsort((b[:, 1], b[:, 0]))][:n]
    d2 = ((sa - sb) ** 2).sum(axis=1)
    return bool(np.all(d2 < SAME_CLUSTERING_THRESHOLD**2))


def kmeans(points: np.ndarray, k: int, *, names: np.ndarray | None = None, weights: np.ndarray | None = None,
           last: Clustering | None = None, max_iters: int = KMEANS_MAX_ITERS,
           carried: np.ndarray | None = None) -> Clustering:
    """Polis's k-means of `points` (rows in Polis's order, named by ascending `names`, default 0..n-1).

    last: the last run's clustering; a row whose name was a member of one of its clusters starts
    there (a participant who just entered starts nowhere). Without it, or when it was empty, the
    start is cold. carried: `last.carried_over(names)` when the caller already knows it."""
    names = np.arange(len(points)) if names is None else np.asarray(names)
    weights = np.ones(len(points)) if weights is None else np.asarray(weights, dtype=float)
    warm = last is not None and len(last.ids) > 0
    if warm:
        member = last.carried_over(names) if carried is None else carried.copy()
        ids, centers = _clean_start(points, weights, member, last.ids, k)
    else:
        start = first_distinct(points, k)
        ids, centers = np.arange(len(start)), points[start].astype(float)
    # centred_on: the labels whose weighted means `centers` are, when every row had one. A step that
    # assigns exactly those labels again would recompute the same centres bit for bit, so it ends the
    # loop as same-clustering? would (every centre moved 0) without recomputing them.
    centred_on = None
    if warm and (member >= 0).all():
        centred_on = _positions(ids, member)
    labels = np.zeros(len(points), dtype=int)
    for remaining in range(max_iters, -1, -1):
        # nearest centre: argmin of |c|^2 - 2 p.c (|p|^2 is the same for every centre)
        # (-2c and the sum's order are exact rewrites of |c|^2 - 2 p.c: scaling by 2 rounds nothing)
        scores = points @ (-2.0 * centers.T)
        scores += centers[:, 0] * centers[:, 0] + centers[:, 1] * centers[:, 1]
        labels = scores.argmin(axis=1)
        if centred_on is not None and np.array_equal(labels, centred_on):
            break
        new_centers = _weighted_centers(points, weights, labels, len(ids))
        used = ~np.isnan(new_centers[:, 0])
        if not used.all():  # cluster-step drops clusters that lost every member
            remap = np.cumsum(used) - 1
            labels, new_centers, ids = remap[labels], new_centers[used], ids[used]
        done = remaining == 0 or _same_clustering(centers, new_centers)
        centers, centred_on = new_centers, labels
        if done:
            break
    if len(ids) > 1 and np.any(ids[1:] < ids[:-1]):  # only a merge into a later id unsorts them
        order = np.argsort(ids, kind="stable")
        ids, centers = ids[order], centers[order]
        labels = np.argsort(order)[labels]
    return Clustering(ids=ids, centers=centers, member=ids[labels], names=names)


def silhouette(distances: np.ndarray, labels: np.ndarray, k: int | None = None) -> float:
    """Mean silhouette over all points (clusters.clj silhouette); a singleton's member scores 0.
    labels: cluster positions 0..k-1. NaN when there is only one cluster (Polis has no b then)."""
    k = int(labels.max()) + 1 if k is None else k
    if k < 2:
        return float("nan")
    onehot = (labels[:, None] == np.arange(k)).astype(float)
    counts = np.bincount(labels, minlength=k).astype(float)
    sums = distances @ onehot
    idx = np.arange(len(labels))
    own_count = counts[labels]
    with np.errstate(invalid="ignore", divide="ignore"):
        a = sums[idx, labels] / np.maximum(own_count - 1, 1)  # the point itself adds 0 distance
        means = sums / counts[None, :]
        means[idx, labels] = np.inf
        b = means.min(axis=1)
        s = np.where(own_count > 1, (b - a) / np.maximum(a, b), 0.0)
    return float(np.mean(s))
