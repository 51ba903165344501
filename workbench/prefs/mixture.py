"""Latent classes of participants who share a ranking: a Bradley–Terry mixture fitted by EM (MaxMin-RLHF style).

The E-step gives each participant a responsibility per component from all their comparisons at once;
the M-step refits every component by warm-started inexact Newton steps (`newton.descend`). K is chosen
by BIC. Input is validated once at `latent_mixture`; `mixture_encoded` trusts it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.special import expit, logsumexp

from .data import (
    DEFAULT_ALPHA,
    Encoded,
    PreferenceDataError,
    attribute_of,
    check_level,
    encode,
    validate_comparisons,
)
from .newton import descend, log_sigmoid, strength_fit
from .results import ClassComposition, MixtureFit


@dataclass
class _EMState:
    theta: np.ndarray
    resp: np.ndarray
    log_likelihood: float
    iterations: int
    converged: bool

    @property
    def weights(self) -> np.ndarray:
        return self.resp.mean(axis=1)


class _MixtureData:
    """Encoded comparisons with the index structures the vectorised EM reuses every iteration.

    ``by_participant`` (participants × comparisons, sparse) sums comparison log-likelihoods per
    participant for the E-step. The M-step's Hessian has the fixed sparsity pattern of the compared
    item pairs, so its CSR structure is built once and only the values change.
    """

    def __init__(self, enc: Encoded) -> None:
        self.enc = enc
        n = self.n_items = len(enc.items)
        self.n_participants = len(enc.participants)
        m = len(enc.win)
        self.by_participant = sp.csr_matrix(
            (np.ones(m), (enc.participant, np.arange(m))), shape=(self.n_participants, m)
        )
        low, high = np.minimum(enc.win, enc.lose), np.maximum(enc.win, enc.lose)
        pairs, self.pair_of = np.unique(low * n + high, return_inverse=True)
        self.n_pairs = len(pairs)
        rows = np.concatenate([pairs // n, pairs % n])
        cols = np.concatenate([pairs % n, pairs // n])
        source = np.concatenate([np.arange(self.n_pairs), np.arange(self.n_pairs)])
        order = np.lexsort((cols, rows))
        # int32 indices as scipy stores them, so building the CSR each step copies nothing.
        self._indices = cols[order].astype(np.int32)
        self._source = source[order]
        self._indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n))]).astype(np.int32)

    def log_sigmoid_terms(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each component row of ``theta``: d = θ_win − θ_lose and log σ(d), per comparison."""
        diff = theta[:, self.enc.win] - theta[:, self.enc.lose]
        return diff, log_sigmoid(diff)

    def m_step(self, theta: np.ndarray, diff: np.ndarray, log_sig: np.ndarray, weight: np.ndarray,
               alpha: float, newton_steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A few inexact Newton steps (Jacobi-preconditioned CG) on one component, by the package's one
        Newton loop (`newton.descend`).

        ``diff`` and ``log_sig`` are θ_win − θ_lose and log σ of it at ``theta``; they are returned
        updated so the E-step and the next M-step need not recompute them.
        """
        enc, n = self.enc, self.n_items

        def direction(point):
            theta, diff, _ = point
            loss_prob = expit(-diff)
            g_term = weight * loss_prob
            grad = np.bincount(enc.lose, g_term, n) - np.bincount(enc.win, g_term, n) + alpha * theta
            curv = g_term * (1.0 - loss_prob)
            pair_curv = np.bincount(self.pair_of, curv, self.n_pairs)
            adjacency = sp.csr_matrix((pair_curv[self._source], self._indices, self._indptr), shape=(n, n))
            diagonal = np.asarray(adjacency.sum(axis=1)).ravel() + alpha
            hessian = spla.LinearOperator((n, n), matvec=lambda v, a=adjacency, d=diagonal: d * v - a @ v,
                                          dtype=float)
            precond = spla.LinearOperator((n, n), matvec=lambda v, d=diagonal: v / d, dtype=float)
            step, _ = spla.cg(hessian, grad, M=precond, rtol=1e-4, maxiter=200)
            return (step, step[enc.win] - step[enc.lose]), float(np.dot(grad, step))

        def move(point, step, t):
            theta, diff, _ = point
            new_diff = diff - t * step[1]
            new_log_sig = log_sigmoid(new_diff)
            candidate = theta - t * step[0]
            value = -float(np.dot(weight, new_log_sig)) + 0.5 * alpha * float(np.dot(candidate, candidate))
            return (candidate, new_diff, new_log_sig), value

        value = -float(np.dot(weight, log_sig)) + 0.5 * alpha * float(np.dot(theta, theta))
        (theta, diff, log_sig), _, _ = descend((theta, diff, log_sig), value, direction, move, max_steps=newton_steps)
        return theta, diff, log_sig

    def spectral_embedding(self, dims: int, seed: int) -> np.ndarray:
        """Participants' signed win/loss vectors reduced by truncated SVD to ``dims`` dimensions."""
        enc = self.enc
        rows = np.concatenate([enc.participant, enc.participant])
        cols = np.concatenate([enc.win, enc.lose])
        vals = np.concatenate([enc.weight, -enc.weight])
        matrix = sp.csr_matrix((vals, (rows, cols)), shape=(self.n_participants, self.n_items))
        per_participant = np.bincount(enc.participant, enc.weight, self.n_participants)
        # Dividing by sqrt(#comparisons) puts participants with many and few judgements on one noise scale.
        matrix = sp.diags(1.0 / np.sqrt(np.maximum(per_participant, 1e-12))) @ matrix
        if min(matrix.shape) <= dims + 1 or min(matrix.shape) < 50:
            u, s, _ = np.linalg.svd(matrix.toarray(), full_matrices=False)
        else:
            v0 = np.random.default_rng(seed).standard_normal(min(matrix.shape))
            u, s, _ = spla.svds(matrix, k=dims, v0=v0)
            order = np.argsort(s)[::-1]
            u, s = u[:, order], s[order]
        return u[:, :dims] * s[:dims]


def _init_labels(embedding: np.ndarray, k: int, seed: int) -> np.ndarray:
    """k-means on the first k embedding dimensions; labels renumbered in order of first appearance."""
    # Local imports: scikit-learn is only needed here. One thread: on a tiny problem OpenMP threads
    # cost more in start-up and contention than they save.
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        labels = KMeans(n_clusters=k, n_init=1, random_state=seed).fit_predict(embedding[:, :k])
    _, first = np.unique(labels, return_index=True)
    renumber = np.empty(k, dtype=np.int64)
    renumber[labels[np.sort(first)]] = np.arange(len(first))
    return renumber[labels]


def _soft_responsibilities(labels: np.ndarray, k: int) -> np.ndarray:
    # 0.9 on the k-means class rather than 1.0 leaves every component some say over every participant.
    resp = np.full((k, len(labels)), 0.1 / max(k - 1, 1))
    resp[labels, np.arange(len(labels))] = 0.9 if k > 1 else 1.0
    return resp / resp.sum(axis=0, keepdims=True)


def _run_em(data: _MixtureData, resp: np.ndarray, *, alpha: float, max_iter: int, tol: float,
            newton_steps: int, theta: np.ndarray | None = None, start_iteration: int = 0) -> _EMState:
    """EM from responsibilities ``resp`` (M-step first). Stops when the penalised log-likelihood
    rises by less than ``tol`` × its magnitude, or after ``max_iter`` iterations in total."""
    enc = data.enc
    k = resp.shape[0]
    theta = np.zeros((k, data.n_items)) if theta is None else theta.copy()
    diff, log_sig = data.log_sigmoid_terms(theta)
    previous = -np.inf
    log_lik = -np.inf
    converged = False
    iteration = start_iteration
    while iteration < max_iter:
        iteration += 1
        weights = resp.mean(axis=1)
        for c in range(k):
            theta[c], diff[c], log_sig[c] = data.m_step(theta[c], diff[c], log_sig[c],
                                                        enc.weight * resp[c, enc.participant], alpha,
                                                        newton_steps)
        participant_ll = np.asarray((data.by_participant @ (enc.weight * log_sig).T).T)
        log_post = np.log(np.maximum(weights, 1e-300))[:, None] + participant_ll
        norm_const = logsumexp(log_post, axis=0)
        resp = np.exp(log_post - norm_const)
        log_lik = float(norm_const.sum())
        objective = log_lik - 0.5 * alpha * float(np.sum(theta**2))
        if objective - previous < tol * abs(objective):
            converged = True
            break
        previous = objective
    return _EMState(theta=theta, resp=resp, log_likelihood=log_lik, iterations=iteration, converged=converged)


def _best_em(data: _MixtureData, k: int, embedding: np.ndarray | None, *, restarts: int, seed: int,
             alpha: float, max_iter: int, tol: float, newton_steps: int, warmup: int) -> _EMState:
    """Short EM runs from each seeded start, then the best of them continued to convergence.

    Starts whose k-means partition repeats an earlier one are skipped (same start, same result).
    """
    if k == 1 or embedding is None:
        return _run_em(data, np.ones((1, data.n_participants)), alpha=alpha, max_iter=max_iter, tol=tol,
                       newton_steps=newton_steps)
    seen: set[bytes] = set()
    best: _EMState | None = None
    for r in range(restarts):
        labels = _init_labels(embedding, k, seed + r)
        key = labels.tobytes()
        if key in seen:
            continue
        seen.add(key)
        state = _run_em(data, _soft_responsibilities(labels, k), alpha=alpha, max_iter=warmup, tol=tol,
                        newton_steps=newton_steps)
        if best is None or state.log_likelihood > best.log_likelihood:
            best = state
    if best.converged:
        return best
    return _run_em(data, best.resp, alpha=alpha, max_iter=max_iter, tol=tol, newton_steps=newton_steps,
                   theta=best.theta, start_iteration=best.iterations)


def _bic(log_lik: float, k: int, n_items: int, n_obs: int) -> float:
    n_params = k * (n_items - 1) + (k - 1)
    return -2.0 * log_lik + n_params * math.log(max(n_obs, 2))


def latent_mixture(
    comparisons: pd.DataFrame,
    *,
    k: int | None = None,
    max_k: int = 6,
    restarts: int = 3,
    seed: int = 0,
    alpha: float = DEFAULT_ALPHA,
    level: float = 0.95,
    max_iter: int = 200,
    tol: float = 1e-6,
    newton_steps: int = 1,
    warmup: int = 2,
) -> MixtureFit:
    """Latent-class BT mixture fitted by EM over participants; K by BIC over 1..max_k unless ``k`` given.

    Per K: ``restarts`` seeded starts (k-means on a spectral embedding, seeds seed..seed+restarts−1;
    a start that repeats an earlier partition is skipped), ``warmup`` EM iterations each, then the
    start with the highest log-likelihood runs until the penalised log-likelihood rises by less than
    ``tol`` (relative) per iteration, or ``max_iter`` iterations. Component intervals are Laplace
    intervals of each component's weighted fit with the responsibilities held fixed.
    """
    check_level(level)
    return mixture_encoded(encode(validate_comparisons(comparisons)), k=k, max_k=max_k, restarts=restarts, seed=seed,
                           alpha=alpha, level=level, max_iter=max_iter, tol=tol, newton_steps=newton_steps,
                           warmup=warmup)


def mixture_encoded(enc: Encoded, *, k: int | None = None, max_k: int = 6, restarts: int = 3, seed: int = 0,
                    alpha: float = DEFAULT_ALPHA, level: float = 0.95, max_iter: int = 200, tol: float = 1e-6,
                    newton_steps: int = 1, warmup: int = 2) -> MixtureFit:
    """`latent_mixture` on comparisons already validated and encoded."""
    if restarts < 1:
        raise PreferenceDataError("restarts must be at least 1")
    data = _MixtureData(enc)
    n_part = data.n_participants
    if k is not None:
        if not 1 <= k <= n_part:
            raise PreferenceDataError(f"k must be between 1 and the number of participants ({n_part}), got {k}")
        candidates = [k]
    else:
        if max_k < 1:
            raise PreferenceDataError("max_k must be at least 1")
        candidates = list(range(1, min(max_k, n_part) + 1))
    embedding = data.spectral_embedding(max(candidates), seed) if max(candidates) > 1 else None

    best_by_k = {
        kk: _best_em(data, kk, embedding, restarts=restarts, seed=seed, alpha=alpha, max_iter=max_iter,
                     tol=tol, newton_steps=newton_steps, warmup=warmup)
        for kk in candidates
    }

    m = len(enc.win)
    bic = {kk: _bic(st.log_likelihood, kk, data.n_items, m) for kk, st in best_by_k.items()}
    chosen_k = k if k is not None else min(bic, key=lambda kk: (bic[kk], kk))
    chosen = best_by_k[chosen_k]

    # Largest component first, so labels do not depend on the initialisation order.
    order = np.argsort(-chosen.weights, kind="stable")
    resp = chosen.resp[order]
    theta = chosen.theta[order] - chosen.theta[order].mean(axis=1, keepdims=True)
    components = []
    for c in range(chosen_k):
        comp_weight = enc.weight * resp[c, enc.participant]
        components.append(strength_fit(enc.items, enc.win, enc.lose, comp_weight, theta=theta[c], tau=alpha,
                                        level=level, converged=chosen.converged, connected=enc.connected))
    probs = resp.T.copy()
    return MixtureFit(
        k=chosen_k,
        bic=bic,
        log_likelihoods={kk: st.log_likelihood for kk, st in best_by_k.items()},
        log_likelihood=chosen.log_likelihood,
        items=enc.items,
        participants=enc.participants,
        probs=probs,
        component=np.argmax(probs, axis=1),
        weights=resp.mean(axis=1),
        components=tuple(components),
        n_comparisons=m,
        iterations=chosen.iterations,
        converged=chosen.converged,
        restarts=restarts,
        seed=seed,
    )


def latent_class_attributes(mixture: MixtureFit, column: str = "latent_class") -> pd.DataFrame:
    """``participant_id, <column>`` with labels ``class_<k>``: pass to ``group_strengths(..., by=column)``
    to treat the latent classes as known groups (e.g. per context)."""
    return pd.DataFrame(
        {"participant_id": list(mixture.participants),
         column: [f"class_{c}" for c in mixture.component]}
    )


def class_composition(mixture: MixtureFit, attributes: pd.DataFrame) -> ClassComposition:
    """Share of each value of every attribute column within each latent class (soft counts)."""
    if "participant_id" not in attributes.columns:
        raise PreferenceDataError("attributes: missing column participant_id")
    rows = []
    for column in [c for c in attributes.columns if c != "participant_id"]:
        values = attribute_of(attributes, column, mixture.participants)
        known = np.array([v is not None for v in values], dtype=bool)
        if not known.any():
            continue
        for value in sorted({v for v in values if v is not None}):
            members = np.array([v == value for v in values], dtype=bool)
            for c in range(mixture.k):
                count = float(mixture.probs[members, c].sum())
                total = float(mixture.probs[known, c].sum())
                rows.append({"latent_class": c, "attribute": str(column), "value": value, "count": count,
                             "share": count / total if total > 0 else 0.0})
    table = pd.DataFrame(rows, columns=["latent_class", "attribute", "value", "count", "share"])
    return ClassComposition(table=table)
