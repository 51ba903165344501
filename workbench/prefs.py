"""Preference models over pairwise judgements: pooled, per-context, per-group and latent-class Bradley–Terry.

This module turns a comparisons DataFrame (one row per judgement: ``participant_id, item_a, item_b,
winner ('a'|'b'), context, weight``) into strengths θ with intervals, and finds latent classes of
participants who share a ranking. It is pure analysis: DataFrames in, frozen dataclasses out, seeded
and deterministic. It must never read files, touch the store (no SQL, no DuckDB) or import Streamlit.

Model (REFERENCE §3). ``P(i ≻ j) = σ(θ_i − θ_j)``. Every fit is a MAP estimate under a Gaussian prior:
pooled and per-context fits use ``θ ~ N(0, 1/alpha)`` (an L2 penalty ``alpha/2·‖θ‖²``), which keeps
items with few or one-sided comparisons finite and makes the MAP mean-0 by itself (the likelihood
gradient sums to zero, so ``alpha·Σθ = 0``). Comparison weights multiply the log-likelihood terms.

Point fit. choix was the default candidate; we fit with our own vectorised Newton method (dense
Cholesky of the ``n×n`` Hessian, Armijo backtracking; a sparse conjugate-gradient solve above
``DENSE_MAX_ITEMS`` items) for reasons measured in ``benchmarks/bench_prefs.py`` (1,000 items / 100k
comparisons, same run): it agrees with ``choix.ilsr_pairwise_dense`` to ~5e-7 at a vanishing prior;
its point fit took 0.4–0.9× choix's time across runs (0.4× with single-threaded BLAS); and it optimises the
stated Gaussian-prior objective exactly (choix's ILSR ``alpha`` adds pseudo-transition rates, not a
Gaussian prior on θ), so its Hessian is the right one for the intervals and the same solver serves
the shrunk group fits. The tests check equality with ``choix.opt_pairwise`` (the same penalised
objective; choix's ``alpha`` is our ``alpha/2``) and with ``choix.ilsr_pairwise_dense``, also with
fractional weights.

Intervals. Laplace approximation: the posterior covariance is the inverse Hessian of the negative
log-posterior at the MAP, projected onto strengths centred within each connected set of compared
items (``P H⁻¹ P``, ``P = I − Σ_s 1_s1_sᵀ/n_s``; e.g. one question's values, which are never compared
with another question's: each set's common shift only carries the prior's arbitrary choice, and
leaving it in widened every interval several-fold). Strengths are read within their set; an item
nobody compared keeps the prior's width. Wald intervals ``θ ± z·se``. Above
``DENSE_MAX_ITEMS`` items only the diagonal ``1/H_ii`` is used (narrower; ``ci_method`` says so).
``bootstrap_strengths`` gives percentile intervals from resampling participants instead.

Known groups. ``group_strengths`` fits each group's θ_g under a Gaussian prior centred on the pooled
fit, ``θ_g ~ N(θ_pooled, 1/shrinkage)``: a group with little data stays at the pooled strengths, a
group with much data follows its own. This is empirical-Bayes style partial pooling; the pooled fit
uses everybody (the group's own data included) and its uncertainty is not propagated into the
group intervals.

Latent classes (MaxMin-RLHF style). ``latent_mixture`` runs EM over participants: the E-step gives
each participant a responsibility per component from the product of the likelihoods of all its
comparisons (one sparse participants×comparisons product for all components at once); the M-step
refits each component's θ as a BT fit with comparison weights ``weight × responsibility``, by one
warm-started inexact Newton step per iteration (Jacobi-preconditioned conjugate gradients on the
sparse Hessian, Armijo backtracking): generalised EM, every step still raises the penalised
likelihood. Initialisation: k-means on a spectral embedding (truncated SVD of the participants'
signed win/loss vectors), one k-means seed per restart; each distinct start runs ``warmup`` EM
iterations, the best of them by log-likelihood is continued to convergence. K is chosen by
BIC = −2·logL + p·ln(N), p = K·(n_items − 1) + (K − 1), N = number of comparisons.

Wiser-than answers as comparisons (``comparisons_from_wiser``). An ``upgrade`` answer on A→B in
context C says B is wiser than A: the row ``item_a=A, item_b=B, winner='b'`` with weight 1.
A ``no_upgrade`` says B is *not* wiser than A, which is weaker than "A is wiser than B" (the MGE
summary likewise only counts it in the denominator): it becomes ``winner='a'`` with weight
``no_upgrade_weight`` (0.5 by default). ``not_sure`` says nothing about the direction and is dropped by
default; with ``not_sure_weight > 0`` it becomes a tie, half of that weight to each side (two rows).
When a participant answered the same A→B in the same context more than once, the latest
``created_at`` wins.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.csgraph as csgraph
import scipy.sparse.linalg as spla
from scipy.special import expit, logsumexp
from scipy.stats import norm

from . import config
from .errors import InputError

DEFAULT_ALPHA = 0.1
"""Prior precision of θ for pooled fits: θ ~ N(0, 10), weak next to a few comparisons per item."""

DEFAULT_SHRINKAGE = 1.0
"""Prior precision of a group's θ around the pooled θ: θ_g ~ N(θ_pooled, 1)."""

DENSE_MAX_ITEMS = 5000
"""Above this many items the Newton step uses sparse CG and intervals use the Hessian diagonal."""

FIT_SCHEMA_PATH = config.SCHEMAS / "fit.schema.json"

REQUIRED_COLUMNS = ("participant_id", "item_a", "item_b", "winner")
WISER_COLUMNS = ("participant_id", "from_id", "to_id", "context", "answer", "created_at")
WISER_ANSWERS = ("upgrade", "no_upgrade", "not_sure")


class PreferenceDataError(InputError):
    """A comparisons, attributes or answers DataFrame that the preference models cannot use."""


# --------------------------------------------------------------------------------------------------
# Results


def _frozen(*arrays: np.ndarray | None) -> None:
    for array in arrays:
        if array is not None:
            array.setflags(write=False)


@dataclass(frozen=True)
class StrengthFit:
    """Strengths θ (mean 0) of ``items`` with standard errors and ``level`` intervals."""

    items: tuple[str, ...]
    theta: np.ndarray
    se: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    level: float
    prior_precision: float
    item_comparisons: np.ndarray
    """Total comparison weight each item took part in."""
    n_comparisons: float
    """Total comparison weight of the fit."""
    log_likelihood: float
    covariance: np.ndarray | None = field(default=None, repr=False)
    ci_method: str = "laplace"
    converged: bool = True

    def __post_init__(self) -> None:
        _frozen(self.theta, self.se, self.lower, self.upper, self.item_comparisons, self.covariance)

    def strength(self, item: str) -> float:
        return float(self.theta[self.index(item)])

    def index(self, item: str) -> int:
        try:
            return self.items.index(item)
        except ValueError:
            raise KeyError(f"item {item!r} is not in this fit") from None

    def prob_beats(self, item_a: str, item_b: str) -> float:
        """P(item_a ≻ item_b) under this fit."""
        return float(expit(self.strength(item_a) - self.strength(item_b)))

    def as_frame(self) -> pd.DataFrame:
        """Columns ``item, theta, se, lower, upper, n_comparisons``, strongest first."""
        frame = pd.DataFrame(
            {
                "item": list(self.items),
                "theta": self.theta,
                "se": self.se,
                "lower": self.lower,
                "upper": self.upper,
                "n_comparisons": self.item_comparisons,
            }
        )
        return frame.sort_values(["theta", "item"], ascending=[False, True], ignore_index=True)


@dataclass(frozen=True)
class GroupFit:
    """Per-group strengths for the groups of attribute ``by``, each shrunk toward ``pooled``."""

    by: str
    pooled: StrengthFit
    groups: Mapping[str, StrengthFit]
    n_participants: Mapping[str, int]
    shrinkage: float
    n_unassigned: int
    """Participants with comparisons but no value for ``by`` (in the pooled fit, in no group)."""

    @property
    def items(self) -> tuple[str, ...]:
        return self.pooled.items

    def as_frame(self) -> pd.DataFrame:
        """Long table ``group, item, theta, se, lower, upper, n_comparisons``."""
        frames = [fit.as_frame().assign(group=name) for name, fit in self.groups.items()]
        if not frames:
            return pd.DataFrame(columns=["group", "item", "theta", "se", "lower", "upper", "n_comparisons"])
        frame = pd.concat(frames, ignore_index=True)
        return frame[["group", "item", "theta", "se", "lower", "upper", "n_comparisons"]]


@dataclass(frozen=True)
class MixtureFit:
    """Latent-class BT mixture: K components over participants, chosen by BIC unless K was fixed."""

    k: int
    bic: Mapping[int, float]
    log_likelihoods: Mapping[int, float]
    log_likelihood: float
    items: tuple[str, ...]
    participants: tuple[str, ...]
    probs: np.ndarray
    """``(n_participants, k)`` posterior class probabilities."""
    component: np.ndarray
    """Most probable component per participant."""
    weights: np.ndarray
    components: tuple[StrengthFit, ...]
    n_comparisons: int
    iterations: int
    converged: bool
    restarts: int
    seed: int

    def __post_init__(self) -> None:
        _frozen(self.probs, self.component, self.weights)

    def assignments(self) -> pd.DataFrame:
        """Columns ``participant_id, latent_class, prob`` (prob = P(latent_class)) plus ``prob_<k>``."""
        frame = pd.DataFrame(
            {
                "participant_id": list(self.participants),
                "latent_class": self.component.astype(int),
                "prob": self.probs[np.arange(len(self.participants)), self.component],
            }
        )
        for k in range(self.k):
            frame[f"prob_{k}"] = self.probs[:, k]
        return frame

    def strengths_frame(self) -> pd.DataFrame:
        """Long table ``latent_class, weight, item, theta, se, lower, upper, n_comparisons``."""
        frames = [
            fit.as_frame().assign(latent_class=k, weight=float(self.weights[k]))
            for k, fit in enumerate(self.components)
        ]
        frame = pd.concat(frames, ignore_index=True)
        return frame[["latent_class", "weight", "item", "theta", "se", "lower", "upper", "n_comparisons"]]


@dataclass(frozen=True)
class ClassComposition:
    """Share of each attribute value inside each latent class (soft counts from the class probabilities).

    ``table`` columns: ``latent_class, attribute, value, count, share``; ``count`` is the sum of the
    members' probabilities of that class, ``share`` = count / the class's total over that attribute's
    known values (participants without the attribute are left out of that attribute's shares).
    """

    table: pd.DataFrame

    def shares(self, attribute: str) -> pd.DataFrame:
        """Wide view: one row per latent class, one column per value of ``attribute``."""
        rows = self.table[self.table["attribute"] == attribute]
        return rows.pivot(index="latent_class", columns="value", values="share").fillna(0.0)


@dataclass(frozen=True)
class BootstrapInterval:
    items: tuple[str, ...]
    estimate: np.ndarray
    se: np.ndarray
    lower: np.ndarray
    upper: np.ndarray

    def __post_init__(self) -> None:
        _frozen(self.estimate, self.se, self.lower, self.upper)

    def as_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {"item": list(self.items), "theta": self.estimate, "se": self.se,
             "lower": self.lower, "upper": self.upper}
        )


@dataclass(frozen=True)
class BootstrapStrengths:
    """Percentile intervals from refitting on participants resampled with replacement."""

    n_boot: int
    level: float
    seed: int
    pooled: BootstrapInterval
    groups: Mapping[str, BootstrapInterval]
    by: str | None


# --------------------------------------------------------------------------------------------------
# Input handling


@dataclass(frozen=True)
class _Encoded:
    items: tuple[str, ...]
    participants: tuple[str, ...]
    win: np.ndarray
    lose: np.ndarray
    weight: np.ndarray
    participant: np.ndarray
    connected: np.ndarray  # per item: its connected set of compared items (see _connected_sets)


def _optional_text(values: pd.Series) -> np.ndarray:
    """Cells as stripped text, missing or blank cells as None (an object array, never NaN)."""
    values = pd.Series(values).astype(object)
    missing = values.isna().to_numpy()
    text = values.astype(str).str.strip().to_numpy(dtype=object)
    text[missing | (text == "")] = None
    return text


def _id_column(frame: pd.DataFrame, column: str, what: str) -> np.ndarray:
    text = _optional_text(frame[column])
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
        {c: _id_column(comparisons, c, what) for c in ("participant_id", "item_a", "item_b")}
    )
    winner = pd.Series([(v or "").lower() for v in _optional_text(comparisons["winner"])], dtype=object)
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
        out["context"] = pd.Series(_optional_text(comparisons["context"]), dtype=object)
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


def _encode(frame: pd.DataFrame, items: Sequence[str] | None = None) -> _Encoded:
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
    return _Encoded(
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


def _attribute_of(attributes: pd.DataFrame, by: str, participants: Sequence[str]) -> np.ndarray:
    """The ``by`` value (str, or None) for each participant, checking the attributes frame."""
    if not isinstance(attributes, pd.DataFrame) or "participant_id" not in attributes.columns:
        raise PreferenceDataError("attributes: expected a DataFrame with a participant_id column")
    if by not in attributes.columns:
        others = [c for c in attributes.columns if c != "participant_id"]
        raise PreferenceDataError(f"attributes: no column {by!r} (columns: {', '.join(map(str, others))})")
    ids = _optional_text(attributes["participant_id"])
    values = _optional_text(attributes[by])
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


# --------------------------------------------------------------------------------------------------
# Numerical core: weighted BT MAP by Newton's method


def _log_sigmoid(x: np.ndarray) -> np.ndarray:
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
    data = -float(np.dot(weight, _log_sigmoid(theta[win] - theta[lose])))
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


def _fit_map(
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
    """MAP θ of the weighted BT likelihood under θ ~ N(prior_mean, 1/tau); Newton with backtracking."""
    if tau <= 0:
        raise PreferenceDataError("the prior precision must be > 0 (it keeps one-sided items finite)")
    prior_mean = np.broadcast_to(np.asarray(prior_mean, dtype=float), (n,))
    theta = prior_mean.copy() if theta0 is None else np.array(theta0, dtype=float)
    value = _neg_log_posterior(theta, win, lose, weight, prior_mean, tau)
    for _ in range(max_iter):
        step, grad = _newton_step(theta, win, lose, weight, n, prior_mean, tau)
        decrease = float(np.dot(grad, step))
        t = 1.0
        while True:
            candidate = theta - t * step
            new_value = _neg_log_posterior(candidate, win, lose, weight, prior_mean, tau)
            # Near the optimum the predicted decrease drops below rounding error: stop halving there.
            if new_value <= value - 1e-4 * t * decrease or t * decrease < 1e-13 * abs(value) or t < 1e-6:
                break
            t *= 0.5
        if new_value > value:  # rounding noise only: the current point is as good as it gets
            return theta, True
        theta, value = candidate, new_value
        if np.max(np.abs(t * step)) < tol:
            return theta, True
    return theta, False


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


def _strength_fit(
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
    log_lik = float(np.dot(weight, _log_sigmoid(theta[win] - theta[lose])))
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


def _check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise PreferenceDataError(f"level must be in (0, 1), got {level}")


# --------------------------------------------------------------------------------------------------
# Pooled, per-context and per-group fits


def bradley_terry(
    comparisons: pd.DataFrame,
    *,
    alpha: float = DEFAULT_ALPHA,
    level: float = 0.95,
    items: Sequence[str] | None = None,
    max_iter: int = 100,
    tol: float = 1e-9,
) -> StrengthFit:
    """Pooled Bradley–Terry strengths (mean 0, prior θ ~ N(0, 1/alpha)) with Laplace intervals.

    ``items`` fixes the item set and order (items without comparisons then sit at 0 with
    prior-width intervals); by default it is the sorted set of items that occur.
    """
    _check_level(level)
    enc = _encode(validate_comparisons(comparisons), items)
    n = len(enc.items)
    theta, converged = _fit_map(enc.win, enc.lose, enc.weight, n, tau=alpha, max_iter=max_iter, tol=tol)
    return _strength_fit(enc.items, enc.win, enc.lose, enc.weight, theta=theta, tau=alpha, level=level,
                         converged=converged, connected=enc.connected)


def _in_context(frame: pd.DataFrame, key: str | None) -> np.ndarray:
    return np.array([c == key if key is not None else c is None for c in frame["context"]], dtype=bool)


def _context_keys(frame: pd.DataFrame) -> list[str | None]:
    keys = set(frame["context"].tolist())
    return sorted(keys, key=lambda c: (c is not None, "" if c is None else c))


def fit_by_context(
    comparisons: pd.DataFrame, *, alpha: float = DEFAULT_ALPHA, level: float = 0.95
) -> dict[str | None, StrengthFit]:
    """One pooled fit per context (key None for rows without a context), over that context's items."""
    frame = validate_comparisons(comparisons)
    out: dict[str | None, StrengthFit] = {}
    for key in _context_keys(frame):
        rows = frame[_in_context(frame, key)]
        out[key] = bradley_terry(rows, alpha=alpha, level=level)
    return out


def group_strengths(
    comparisons: pd.DataFrame,
    attributes: pd.DataFrame,
    by: str,
    *,
    shrinkage: float = DEFAULT_SHRINKAGE,
    alpha: float = DEFAULT_ALPHA,
    level: float = 0.95,
) -> GroupFit:
    """θ per value of attribute ``by``, each a MAP fit under θ_g ~ N(θ_pooled, 1/shrinkage).

    Larger ``shrinkage`` pulls groups harder toward the pooled fit. Participants without a value
    for ``by`` count in the pooled fit only (``n_unassigned``).
    """
    _check_level(level)
    if shrinkage <= 0:
        raise PreferenceDataError("shrinkage must be > 0 (it is the prior precision around the pooled fit)")
    frame = validate_comparisons(comparisons)
    enc = _encode(frame)
    n = len(enc.items)
    theta, converged = _fit_map(enc.win, enc.lose, enc.weight, n, tau=alpha)
    pooled = _strength_fit(enc.items, enc.win, enc.lose, enc.weight, theta=theta, tau=alpha, level=level,
                           converged=converged, connected=enc.connected)
    labels = _attribute_of(attributes, by, enc.participants)
    return _groups_from_encoded(enc, labels, pooled, by=by, shrinkage=shrinkage, level=level)


def _groups_from_encoded(enc: _Encoded, labels: np.ndarray, pooled: StrengthFit, *, by, shrinkage, level):
    n = len(enc.items)
    names = sorted({v for v in labels if v is not None})
    groups: dict[str, StrengthFit] = {}
    sizes: dict[str, int] = {}
    row_label = labels[enc.participant]
    for name in names:
        mask = row_label == name
        win, lose, weight = enc.win[mask], enc.lose[mask], enc.weight[mask]
        theta, converged = _fit_map(win, lose, weight, n, prior_mean=pooled.theta, tau=shrinkage,
                                    theta0=pooled.theta)
        groups[name] = _strength_fit(enc.items, win, lose, weight, theta=theta, tau=shrinkage, level=level,
                                     converged=converged, connected=enc.connected)
        sizes[name] = int(np.sum(labels == name))
    return GroupFit(by=by, pooled=pooled, groups=groups, n_participants=sizes, shrinkage=shrinkage,
                    n_unassigned=int(sum(v is None for v in labels)))


def group_strengths_by_context(
    comparisons: pd.DataFrame,
    attributes: pd.DataFrame,
    by: str,
    *,
    shrinkage: float = DEFAULT_SHRINKAGE,
    alpha: float = DEFAULT_ALPHA,
    level: float = 0.95,
) -> dict[str | None, GroupFit]:
    """``group_strengths`` within each context (key None for rows without a context)."""
    frame = validate_comparisons(comparisons)
    return {
        key: group_strengths(frame[_in_context(frame, key)], attributes, by,
                             shrinkage=shrinkage, alpha=alpha, level=level)
        for key in _context_keys(frame)
    }


# --------------------------------------------------------------------------------------------------
# Bootstrap over participants


def bootstrap_strengths(
    comparisons: pd.DataFrame,
    attributes: pd.DataFrame | None = None,
    by: str | None = None,
    *,
    n_boot: int = 200,
    seed: int = 0,
    alpha: float = DEFAULT_ALPHA,
    shrinkage: float = DEFAULT_SHRINKAGE,
    level: float = 0.95,
    progress: Callable[[int, int], None] | None = None,
) -> BootstrapStrengths:
    """Percentile intervals for pooled θ (and group θ when ``by`` is given) by resampling participants.

    Each replicate draws participants with replacement (stratified by group when ``by`` is given, so
    every group keeps its size) and refits with each comparison weighted by how often its participant
    was drawn; groups are re-shrunk toward that replicate's pooled fit. ``estimate`` is the full-data fit.
    ``progress(done, n_boot)`` is called after each replicate (it only reports; results do not depend on it).
    """
    _check_level(level)
    if n_boot < 2:
        raise PreferenceDataError("n_boot must be at least 2")
    if (attributes is None) != (by is None):
        raise PreferenceDataError("give both attributes and by, or neither")
    frame = validate_comparisons(comparisons)
    enc = _encode(frame)
    n, n_part = len(enc.items), len(enc.participants)
    labels = (_attribute_of(attributes, by, enc.participants) if by is not None
              else np.full(n_part, None, dtype=object))
    full_theta, _ = _fit_map(enc.win, enc.lose, enc.weight, n, tau=alpha)
    full_theta -= full_theta.mean()
    names = sorted({v for v in labels if v is not None})
    full_groups = {}
    row_label = labels[enc.participant]
    for name in names:
        mask = row_label == name
        theta, _ = _fit_map(enc.win[mask], enc.lose[mask], enc.weight[mask], n, prior_mean=full_theta,
                            tau=shrinkage, theta0=full_theta)
        full_groups[name] = theta - theta.mean()

    # Strata: each group, and the participants without a group, are resampled within themselves.
    strata = [np.flatnonzero(labels == name) for name in names]
    unassigned = np.flatnonzero(np.array([v is None for v in labels], dtype=bool))
    if len(unassigned):
        strata.append(unassigned)
    rng = np.random.default_rng(seed)
    pooled_draws = np.empty((n_boot, n))
    group_draws = {name: np.empty((n_boot, n)) for name in names}
    for b in range(n_boot):
        counts = np.zeros(n_part)
        for members in strata:
            counts += np.bincount(rng.choice(members, size=len(members), replace=True), minlength=n_part)
        weight = enc.weight * counts[enc.participant]
        theta, _ = _fit_map(enc.win, enc.lose, weight, n, tau=alpha, theta0=full_theta, tol=1e-7)
        theta -= theta.mean()
        pooled_draws[b] = theta
        for name in names:
            mask = row_label == name
            g_theta, _ = _fit_map(enc.win[mask], enc.lose[mask], weight[mask], n, prior_mean=theta,
                                  tau=shrinkage, theta0=full_groups[name], tol=1e-7)
            group_draws[name][b] = g_theta - g_theta.mean()
        if progress is not None:
            progress(b + 1, n_boot)

    tail = (1.0 - level) / 2.0

    def interval(estimate: np.ndarray, draws: np.ndarray) -> BootstrapInterval:
        lower, upper = np.quantile(draws, [tail, 1.0 - tail], axis=0)
        return BootstrapInterval(items=enc.items, estimate=estimate, se=draws.std(axis=0, ddof=1),
                                 lower=lower, upper=upper)

    return BootstrapStrengths(
        n_boot=n_boot,
        level=level,
        seed=seed,
        pooled=interval(full_theta, pooled_draws),
        groups={name: interval(full_groups[name], group_draws[name]) for name in names},
        by=by,
    )


# --------------------------------------------------------------------------------------------------
# Latent classes


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

    def __init__(self, enc: _Encoded) -> None:
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
        return diff, _log_sigmoid(diff)

    def m_step(self, theta: np.ndarray, diff: np.ndarray, log_sig: np.ndarray, weight: np.ndarray,
               alpha: float, newton_steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A few inexact Newton steps (Jacobi-preconditioned CG, Armijo backtracking) on one component.

        ``diff`` and ``log_sig`` are θ_win − θ_lose and log σ of it at ``theta``; they are returned
        updated so the E-step and the next M-step need not recompute them.
        """
        enc, n = self.enc, self.n_items
        value = -float(np.dot(weight, log_sig)) + 0.5 * alpha * float(np.dot(theta, theta))
        for _ in range(newton_steps):
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
            step_diff = step[enc.win] - step[enc.lose]
            decrease = float(np.dot(grad, step))
            t = 1.0
            while True:
                new_diff = diff - t * step_diff
                new_log_sig = _log_sigmoid(new_diff)
                candidate = theta - t * step
                new_value = -float(np.dot(weight, new_log_sig)) + 0.5 * alpha * float(np.dot(candidate, candidate))
                if new_value <= value - 1e-4 * t * decrease or t * decrease < 1e-13 * abs(value) or t < 1e-6:
                    break
                t *= 0.5
            if new_value > value:  # no descent found: keep the current point
                break
            theta, diff, log_sig, value = candidate, new_diff, new_log_sig, new_value
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
    _check_level(level)
    if restarts < 1:
        raise PreferenceDataError("restarts must be at least 1")
    frame = validate_comparisons(comparisons)
    enc = _encode(frame)
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
        components.append(_strength_fit(enc.items, enc.win, enc.lose, comp_weight, theta=theta[c], tau=alpha,
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
        values = _attribute_of(attributes, column, mixture.participants)
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


# --------------------------------------------------------------------------------------------------
# Wiser-than answers


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
    kinds = pd.Series([(v or "").lower() for v in _optional_text(frame["answer"])], dtype=object)
    bad = ~kinds.isin(WISER_ANSWERS).to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise PreferenceDataError(
            f"answers: row {row} has answer {frame['answer'].iloc[row]!r}; expected one of {WISER_ANSWERS}"
        )
    ids = {c: _id_column(frame, c, "answers") for c in ("participant_id", "from_id", "to_id")}
    context = _optional_text(frame["context"])
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


# --------------------------------------------------------------------------------------------------
# Simulation (for tests, benchmarks and power checks)


def simulate_planted_classes(
    *,
    n_items: int,
    n_classes: int,
    n_comparisons: int,
    per_participant: tuple[int, int] = (100, 200),
    spread: float = 1.0,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """Comparisons from ``n_classes`` planted BT classes with strengths ~ N(0, spread²) per class.

    Each participant belongs to one class (uniformly at random) and makes between
    ``per_participant[0]`` and ``per_participant[1]`` comparisons of uniformly random distinct item
    pairs, until ``n_comparisons`` in total. Returns ``(comparisons, truth, theta)``: ``truth`` has
    ``participant_id, true_class``; ``theta`` is ``(n_classes, n_items)``; items are ``v0000``....
    """
    low, high = per_participant
    if not 1 <= low <= high or n_items < 2 or n_classes < 1 or n_comparisons < 1:
        raise PreferenceDataError("simulate_planted_classes: bad sizes")
    rng = np.random.default_rng(seed)
    theta = rng.normal(0.0, spread, size=(n_classes, n_items))
    counts: list[int] = []
    total = 0
    while total < n_comparisons:
        count = min(int(rng.integers(low, high + 1)), n_comparisons - total)
        counts.append(count)
        total += count
    n_participants = len(counts)
    classes = rng.integers(0, n_classes, size=n_participants)
    participant = np.repeat(np.arange(n_participants), counts)
    a = rng.integers(0, n_items, size=total)
    b = (a + rng.integers(1, n_items, size=total)) % n_items
    row_class = classes[participant]
    a_wins = rng.random(total) < expit(theta[row_class, a] - theta[row_class, b])
    width = max(4, len(str(n_items - 1)))
    items = np.array([f"v{i:0{width}d}" for i in range(n_items)], dtype=object)
    ids = np.array([f"p{u:05d}" for u in range(n_participants)], dtype=object)
    comparisons = pd.DataFrame(
        {
            "participant_id": ids[participant],
            "item_a": items[a],
            "item_b": items[b],
            "winner": np.where(a_wins, "a", "b").astype(object),
        }
    )
    truth = pd.DataFrame({"participant_id": ids, "true_class": classes})
    return comparisons, truth, theta


# --------------------------------------------------------------------------------------------------
# JSON export


def _finite(value: float) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise PreferenceDataError(f"cannot export a non-finite number ({value}) to JSON")
    return value


def _strength_json(fit: StrengthFit) -> dict[str, Any]:
    return {
        "strengths": {item: _finite(t) for item, t in zip(fit.items, fit.theta, strict=True)},
        "lower": {item: _finite(v) for item, v in zip(fit.items, fit.lower, strict=True)},
        "upper": {item: _finite(v) for item, v in zip(fit.items, fit.upper, strict=True)},
    }


def _bootstrap_json(interval: BootstrapInterval) -> dict[str, Any]:
    def by_item(values: np.ndarray) -> dict[str, float]:
        return {item: _finite(v) for item, v in zip(interval.items, values, strict=True)}

    return {"strengths": by_item(interval.estimate), "lower": by_item(interval.lower),
            "upper": by_item(interval.upper), "se": by_item(interval.se)}


def fit_to_json(
    mixture: MixtureFit,
    groups: GroupFit | None = None,
    *,
    pooled: StrengthFit | None = None,
    bootstrap: BootstrapStrengths | None = None,
) -> dict[str, Any]:
    """The fit JSON (``schemas/fit.schema.json``): latent classes, and per-group strengths if given.

    Keys: ``k``, ``bic`` ({"K": value}), ``log_likelihood``, ``items``, ``participants``
    ([{participant_id, component, probs}]), ``components`` ([{weight, strengths, lower, upper}]),
    and when ``groups`` is given ``group_by`` plus ``groups`` ({group: {n_participants, strengths,
    lower, upper}}); ``pooled`` defaults to the group fit's pooled fit when there is one. Those
    intervals are Laplace (Wald) intervals. With ``bootstrap`` (``bootstrap_strengths``), the key
    ``bootstrap`` adds percentile intervals over resampled participants for the pooled fit and each
    group: {method, n_boot, seed, level, by, pooled: {strengths, lower, upper, se}, groups: {...}}.
    """
    if pooled is None and groups is not None:
        pooled = groups.pooled
    doc: dict[str, Any] = {
        "schema_version": 1,
        "model": "bradley-terry",
        "level": float(mixture.components[0].level),
        "k": int(mixture.k),
        "bic": {str(kk): _finite(v) for kk, v in sorted(mixture.bic.items())},
        "log_likelihood": _finite(mixture.log_likelihood),
        "n_comparisons": int(mixture.n_comparisons),
        "items": list(mixture.items),
        "participants": [
            {"participant_id": pid, "component": int(c), "probs": [_finite(p) for p in row]}
            for pid, c, row in zip(mixture.participants, mixture.component, mixture.probs, strict=True)
        ],
        "components": [
            {"weight": _finite(w), **_strength_json(fit)}
            for w, fit in zip(mixture.weights, mixture.components, strict=True)
        ],
    }
    if pooled is not None:
        doc["pooled"] = _strength_json(pooled)
    if groups is not None:
        doc["group_by"] = groups.by
        doc["groups"] = {
            str(name): {"n_participants": int(groups.n_participants[name]), **_strength_json(fit)}
            for name, fit in groups.groups.items()
        }
    if bootstrap is not None:
        doc["bootstrap"] = {
            "method": "percentile; participants resampled with replacement"
                      + (f", stratified by {bootstrap.by}" if bootstrap.by else ""),
            "n_boot": int(bootstrap.n_boot), "seed": int(bootstrap.seed), "level": float(bootstrap.level),
            "by": bootstrap.by,
            "pooled": _bootstrap_json(bootstrap.pooled),
            "groups": {str(name): _bootstrap_json(interval) for name, interval in bootstrap.groups.items()},
        }
    return doc


__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_SHRINKAGE",
    "FIT_SCHEMA_PATH",
    "BootstrapInterval",
    "BootstrapStrengths",
    "ClassComposition",
    "GroupFit",
    "MixtureFit",
    "PreferenceDataError",
    "StrengthFit",
    "bootstrap_strengths",
    "bradley_terry",
    "class_composition",
    "comparisons_from_wiser",
    "fit_by_context",
    "fit_to_json",
    "group_strengths",
    "group_strengths_by_context",
    "latent_class_attributes",
    "latent_mixture",
    "simulate_planted_classes",
    "validate_comparisons",
]
