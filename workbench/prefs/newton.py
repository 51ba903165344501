"""The numerical core: the weighted Bradley–Terry MAP by Newton's method, and its Laplace intervals.

`descend` is the one Newton loop (Armijo backtracking) every fit uses: `fit_map` with exact steps
(a Cholesky solve of the dense Hessian, or sparse conjugate gradients above `DENSE_MAX_ITEMS` items)
for the pooled, per-group and bootstrap fits, and the latent-class M-step with inexact steps. The
functions here trust their input: it was validated and encoded (`prefs.data`) at the entry point.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.special import expit
from scipy.stats import norm

from .data import PreferenceDataError
from .results import StrengthFit

DENSE_MAX_ITEMS = 5000
"""Above this many items the Newton step uses sparse CG and intervals use the Hessian diagonal."""


def log_sigmoid(x: np.ndarray) -> np.ndarray:
    # Same values as scipy.special.log_expit, about five times faster on large arrays; in place to
    # spare temporaries (the EM calls this on every comparison of every component each iteration).
    tail = np.abs(x)
    np.negative(tail, out=tail)
    np.exp(tail, out=tail)
    np.log1p(tail, out=tail)
    out = np.minimum(x, 0.0)
    out -= tail
    return out


def _neg_log_posterior(theta, win, lose, weight, prior_mean, tau) -> float:
    data = -float(np.dot(weight, log_sigmoid(theta[win] - theta[lose])))
    return data + 0.5 * tau * float(np.sum((theta - prior_mean) ** 2))


def _gradient_and_curvature(theta, win, lose, weight, n, prior_mean, tau):
    loss_prob = expit(theta[lose] - theta[win])  # 1 − σ(θ_w − θ_l)
    g_term = weight * loss_prob
    grad = np.bincount(lose, g_term, n) - np.bincount(win, g_term, n) + tau * (theta - prior_mean)
    curv = weight * loss_prob * (1.0 - loss_prob)
    return grad, curv


def _dense_hessian(win, lose, curv, n, tau) -> np.ndarray:
    adjacency = np.bincount(win * n + lose, curv, n * n).reshape(n, n)
    adjacency += adjacency.T
    hessian = -adjacency
    hessian[np.diag_indices(n)] += adjacency.sum(axis=1) + tau
    return hessian


def _sparse_hessian(win, lose, curv, n, tau) -> sp.csr_matrix:
    adjacency = sp.coo_matrix((curv, (win, lose)), shape=(n, n)).tocsr()
    adjacency = adjacency + adjacency.T
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    return (sp.diags(degree + tau) - adjacency).tocsr()


def _newton_step(theta, win, lose, weight, n, prior_mean, tau):
    grad, curv = _gradient_and_curvature(theta, win, lose, weight, n, prior_mean, tau)
    if n <= DENSE_MAX_ITEMS:
        hessian = _dense_hessian(win, lose, curv, n, tau)
        step = sla.cho_solve(sla.cho_factor(hessian, check_finite=False), grad, check_finite=False)
    else:
        hessian = _sparse_hessian(win, lose, curv, n, tau)
        precond = sp.diags(1.0 / hessian.diagonal())
        step, _ = spla.cg(hessian, grad, M=precond, rtol=1e-10, maxiter=500)
    return step, grad


def descend(point: Any, value: float, direction: Callable[[Any], tuple[Any, float]],
            move: Callable[[Any, Any, float], tuple[Any, float]], *, max_steps: int,
            small: Callable[[Any, float], bool] = lambda step, t: False) -> tuple[Any, float, bool]:
    """Minimise by Newton steps with Armijo backtracking: the one optimisation loop of the package.

    `direction(point)` gives the step and the predicted decrease (gradient · step); `move(point, step,
    t)` gives the point `t` of the way along it and its objective value. Stops when no step decreases
    the objective (rounding noise only: the point is as good as it gets), when `small(step, t)`, or
    after `max_steps`. Returns (point, value, converged).
    """
    for _ in range(max_steps):
        step, decrease = direction(point)
        t = 1.0
        while True:
            candidate, new_value = move(point, step, t)
            # Near the optimum the predicted decrease drops below rounding error: stop halving there.
            if new_value <= value - 1e-4 * t * decrease or t * decrease < 1e-13 * abs(value) or t < 1e-6:
                break
            t *= 0.5
        if new_value > value:
            return point, value, True
        point, value = candidate, new_value
        if small(step, t):
            return point, value, True
    return point, value, False


def fit_map(
    win: np.ndarray,
    lose: np.ndarray,
    weight: np.ndarray,
    n: int,
    *,
    prior_mean: np.ndarray | float = 0.0,
    tau: float,
    theta0: np.ndarray | None = None,
    max_iter: int = 100,
    tol: float = 1e-9,
) -> tuple[np.ndarray, bool]:
    """MAP θ of the weighted BT likelihood under θ ~ N(prior_mean, 1/tau), by exact Newton steps."""
    if tau <= 0:
        raise PreferenceDataError("the prior precision must be > 0 (it keeps one-sided items finite)")
    prior_mean = np.broadcast_to(np.asarray(prior_mean, dtype=float), (n,))
    theta = prior_mean.copy() if theta0 is None else np.array(theta0, dtype=float)

    def direction(theta):
        step, grad = _newton_step(theta, win, lose, weight, n, prior_mean, tau)
        return step, float(np.dot(grad, step))

    def move(theta, step, t):
        candidate = theta - t * step
        return candidate, _neg_log_posterior(candidate, win, lose, weight, prior_mean, tau)

    theta, _, converged = descend(theta, _neg_log_posterior(theta, win, lose, weight, prior_mean, tau), direction,
                                  move, max_steps=max_iter, small=lambda step, t: np.max(np.abs(t * step)) < tol)
    return theta, converged


def _shift_basis(connected: np.ndarray) -> sp.csr_matrix:
    """U (n × sets) with U[i, s] = 1/√n_s for the connected sets s of two or more items: UUᵀ projects
    onto the sets' common shifts."""
    sizes = np.bincount(connected)
    shared = np.flatnonzero(sizes >= 2)
    column = np.full(len(sizes), -1)
    column[shared] = np.arange(len(shared))
    rows = np.flatnonzero(sizes[connected] >= 2)
    return sp.csr_matrix((1.0 / np.sqrt(sizes[connected[rows]]), (rows, column[connected[rows]])),
                         shape=(len(connected), len(shared)))


def _covariance(theta, win, lose, weight, n, tau, connected) -> tuple[np.ndarray | None, np.ndarray, str]:
    """Laplace covariance of the strengths, each centred within its connected set of compared items.

    (covariance or None, standard errors, method). Within a set the data fix only differences, so the
    set's common shift is left to the prior (precision tau per item); the fits centre each set at 0
    (the MAP does so by itself), and the covariance is projected accordingly: P H⁻¹ P with P = I − Q.
    An item that was never compared is a set of one and keeps the prior's width, 1/√tau.
    """
    _, curv = _gradient_and_curvature(theta, win, lose, weight, n, np.zeros(n), tau)
    if n > DENSE_MAX_ITEMS:
        hessian = _sparse_hessian(win, lose, curv, n, tau)
        return None, 1.0 / np.sqrt(hessian.diagonal()), "laplace-diagonal"
    hessian = _dense_hessian(win, lose, curv, n, tau)
    # Each set's shift 1_s is an eigenvector of H with eigenvalue tau (every comparison is within a
    # set). Moving those eigenvalues to tau + 1 before inverting keeps the inverse well conditioned when
    # tau is tiny, and leaves P H⁻¹ P unchanged.
    basis = _shift_basis(connected)
    dense_basis = basis.toarray()
    hessian += dense_basis @ dense_basis.T
    covariance = sla.cho_solve(sla.cho_factor(hessian, check_finite=False), np.eye(n), check_finite=False)
    # P X P = X − U(UᵀX) − (XU)Uᵀ + U(UᵀXU)Uᵀ, without forming P.
    xu = covariance @ dense_basis
    covariance -= xu @ dense_basis.T
    covariance -= dense_basis @ xu.T
    covariance += dense_basis @ (dense_basis.T @ xu) @ dense_basis.T
    covariance = 0.5 * (covariance + covariance.T)
    return covariance, np.sqrt(np.clip(np.diag(covariance), 0.0, None)), "laplace"


def _centred_within_sets(theta: np.ndarray, connected: np.ndarray) -> np.ndarray:
    sums = np.bincount(connected, theta)
    sizes = np.bincount(connected)
    return theta - (sums / sizes)[connected]


def strength_fit(
    items, win, lose, weight, *, theta, tau, level, converged, connected, with_covariance: bool = True
) -> StrengthFit:
    """`connected` labels the items' connected sets in the graph of *all* the data's comparisons (a group's
    or latent class's own rows may connect less; the prior toward the pooled fit links those parts)."""
    n = len(items)
    sizes = np.bincount(connected)
    theta = np.where(sizes[connected] >= 2, _centred_within_sets(theta, connected), theta)
    covariance, se, method = _covariance(theta, win, lose, weight, n, tau, connected)
    z = float(norm.ppf(0.5 + level / 2.0))
    involvement = np.bincount(win, weight, n) + np.bincount(lose, weight, n)
    log_lik = float(np.dot(weight, log_sigmoid(theta[win] - theta[lose])))
    return StrengthFit(
        items=tuple(items),
        theta=theta,
        se=se,
        lower=theta - z * se,
        upper=theta + z * se,
        level=level,
        prior_precision=tau,
        item_comparisons=involvement,
        n_comparisons=float(weight.sum()),
        log_likelihood=log_lik,
        covariance=covariance if with_covariance else None,
        ci_method=method,
        converged=converged,
    )
