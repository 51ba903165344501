"""Polis's PCA (`pca.clj`): power iteration with warm starts, deflation, sparsity-aware projection.

Polis finds two principal components of the column-mean-imputed vote matrix by power iteration:
at most `iters` + 1 products, stopping early when the length of the product vector repeats
exactly; a component starts from the previous run's component (padded with 1s for statements that
arrived since) or, the first time, from a random vector. The second component is found on the data
with the first factored out (Gram-Schmidt). Polis iterates on the data rows (sum of (row . v) row);
we iterate on the Gram matrix G = A'A of the centred, imputed data, which is the same product and lets
a replay update G one changed column at a time instead of rebuilding it for every batch of votes.
Pure numpy; never reads or writes anything outside its arguments.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

PCA_ITERS = 100  # conversation.clj :pca-iters


@dataclass
class CoVotes:
    """Exact counts per pair of statements (j, l) over the participants who voted on both: `pairs`
    (how many), `products` (sum of vote_j * vote_l) and `sums` (sum of vote_j). Whole numbers held
    in floats (exact below 2**53), so any order of adding them up gives the same values."""

    pairs: np.ndarray
    products: np.ndarray
    sums: np.ndarray

    @classmethod
    def empty(cls, m: int) -> CoVotes:
        return cls(np.zeros((m, m)), np.zeros((m, m)), np.zeros((m, m)))

    @classmethod
    def of(cls, votes: np.ndarray, voted: np.ndarray) -> CoVotes:
        """From participants x statements `votes` (0 where not voted) and the `voted` mask."""
        flags = voted.astype(float)
        return cls(flags.T @ flags, votes.T @ votes, votes.T @ flags)

    def view(self, m: int) -> CoVotes:
        return CoVotes(self.pairs[:m, :m], self.products[:m, :m], self.sums[:m, :m])

    def replace(self, changed: np.ndarray, before: tuple[np.ndarray, np.ndarray],
                after: tuple[np.ndarray, np.ndarray]) -> None:
        """Swap some participants' votes (rows of votes and voted masks, before and after) in the counts.
        changed: the statements whose cells differ between before and after; only their rows and
        columns of the counts can move, so only those are recomputed (a batch of a few votes costs
        O(changed x statements), not O(statements^2))."""
        (old_votes, old_voted), (new_votes, new_voted) = before, after
        old_flags, new_flags = old_voted.astype(float), new_voted.astype(float)
        for counts, new_left, old_left in ((self.pairs, new_flags, old_flags), (self.products, new_votes, old_votes)):
            counts[changed] += new_left[:, changed].T @ new_left - old_left[:, changed].T @ old_left
            counts[:, changed] = counts[changed].T  # symmetric
        self.sums[changed] += new_votes[:, changed].T @ new_flags - old_votes[:, changed].T @ old_flags
        column = new_votes.T @ new_flags[:, changed] - old_votes.T @ old_flags[:, changed]
        column[changed] = 0.0  # those rows were counted in full just above
        self.sums[:, changed] += column


def gram_rows(rows: np.ndarray, mean: np.ndarray, covotes: CoVotes) -> np.ndarray:
    """Rows `rows` of G = A'A, A the centred matrix (vote - column mean where voted, 0 elsewhere):
    G_jl = products_jl - (mean_l sums_jl + mean_j sums_lj) + mean_j mean_l pairs_jl.

    From exact counts through one fixed formula, so a replay that updates a few rows and one that
    rebuilds G get the same bits, and G_jl == G_lj exactly (+ and * commute in floating point)."""
    mj, ml = mean[rows][:, None], mean[None, :]
    return (covotes.products[rows] - (ml * covotes.sums[rows] + mj * covotes.sums[:, rows].T)
            + (mj * ml) * covotes.pairs[rows])


def power_iteration(gram: np.ndarray, start: np.ndarray, iters: int = PCA_ITERS,
                    factored: np.ndarray | None = None) -> np.ndarray:
    """The dominant eigenvector of `gram` by Polis's power iteration from `start`.

    As in pca.clj: up to `iters` + 1 products; stop when the product's length equals the previous
    one exactly; a zero product stays zero (vectorz's normalise leaves a zero vector alone).
    factored: a unit vector already factored out of the data (pca.clj factor-matrix); the product
    is then (I - ff')G(I - ff')v, without building the deflated matrix."""
    vector = start
    last = 0.0
    for remaining in range(iters, -1, -1):
        if factored is None:
            product = gram @ vector
        else:
            product = gram @ (vector - factored * (factored @ vector))
            product -= factored * (factored @ product)
        eigval = math.sqrt(float(product @ product))  # IEEE sqrt: the same bits as np.sqrt
        normed = product / eigval if eigval > 0 else product
        if remaining == 0 or eigval == last:
            return normed
        vector, last = normed, eigval
    return vector  # pragma: no cover - the loop always returns


def deflated(gram: np.ndarray, component: np.ndarray) -> np.ndarray:
    """G for the data with `component` factored out of every row (pca.clj factor-matrix):
    (I - pp')G(I - pp'), left alone when the component is zero."""
    norm2 = float(component @ component)
    if norm2 == 0:
        return gram
    p = component / np.sqrt(norm2)
    gp = gram @ p
    return gram - np.outer(p, gp) - np.outer(gp, p) + np.outer(p, p) * float(p @ gp)


def principal_components(gram: np.ndarray, n_rows: int, *, previous: np.ndarray | None,
                         rng: np.random.Generator, n_comps: int = 2, iters: int = PCA_ITERS,
                         columns: np.ndarray | None = None, n_statements: int | None = None) -> np.ndarray:
    """Polis's `powerit-pca` on the Gram matrix of `n_rows` centred data rows.

    previous: last run's components (n_comps x m_prev, m_prev <= m) or None. Returns
    min(n_comps, n_rows, n_statements) components, one per row. A previous component that is all
    zeros counts as none (wrapped-pca), and then, as on the first run, the start is uniform random.
    columns / n_statements: the Gram matrix may leave out statements whose column is zero for
    everyone (moderated out): `columns` are the positions of its columns among the `n_statements`
    (ascending). They change nothing in any product, so the components are those of the full matrix
    restricted to `columns`; a random start is still drawn over all `n_statements`, so the generator
    moves exactly as for the full matrix."""
    m = gram.shape[0]
    n_statements = m if n_statements is None else n_statements
    wanted = min(n_comps, n_rows, n_statements)
    comps: list[np.ndarray] = []
    for i in range(wanted):
        start = None
        if previous is not None and i < len(previous) and np.any(previous[i]):
            old = previous[i]
            start = np.concatenate([old, np.ones(m - len(old))]) if len(old) < m else old[:m]
        if start is None:
            start = rng.random(n_statements)
            if columns is not None:
                start = start[columns]
        factored = None
        if comps and float(comps[-1] @ comps[-1]) > 0:  # a zero component factors nothing out
            factored = comps[-1] / np.sqrt(float(comps[-1] @ comps[-1]))
        comps.append(power_iteration(gram, start, iters, factored))
    return np.asarray(comps).reshape(len(comps), m)


def sparsity_aware_projection(centred: np.ndarray, n_voted: np.ndarray, components: np.ndarray,
                              n_statements: int | None = None) -> np.ndarray:
    """Participants' coordinates (pca.clj sparsity-aware-project-ptpts).

    centred: participants x statements, vote minus the statement's mean where the participant voted,
    0 elsewhere (so only cast votes count). n_voted: votes each participant cast, counting every
    zeroed (moderated-out) statement as Polis's rating matrix does. The projection is pushed out by
    sqrt(n_statements / max(n_voted, 1)). n_statements: all statements, when `centred` and
    `components` leave out the zeroed ones. With fewer than two components Polis's zip of the votes
    with a missing component is empty, so every participant sits at the origin; so here."""
    n, m = centred.shape
    if len(components) < 2:
        return np.zeros((n, 2))
    scale = np.sqrt((m if n_statements is None else n_statements) / np.maximum(n_voted, 1))
    return (centred @ components[:2].T) * scale[:, None]
