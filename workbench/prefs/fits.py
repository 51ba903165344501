"""Pooled, per-context and per-group Bradley–Terry fits, and `fit_preferences`: all of them in one pass.

Each public function validates its input once (`prefs.data`) and fits on the encoded arrays;
`fit_preferences` validates and encodes once and fits the pooled model once for the latent classes,
the groups and the bootstrap together.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from .bootstrap import bootstrap_encoded, check_replicates
from .data import (
    DEFAULT_ALPHA,
    DEFAULT_SHRINKAGE,
    Encoded,
    PreferenceDataError,
    attribute_of,
    check_level,
    encode,
    validate_comparisons,
)
from .mixture import class_composition, mixture_encoded
from .newton import fit_map, strength_fit
from .results import GroupFit, PreferenceFit, StrengthFit


def _pooled(enc: Encoded, *, alpha: float, level: float, max_iter: int = 100, tol: float = 1e-9
            ) -> tuple[StrengthFit, np.ndarray]:
    """The pooled fit of encoded comparisons, and its MAP before centring (the bootstrap starts there)."""
    theta, converged = fit_map(enc.win, enc.lose, enc.weight, len(enc.items), tau=alpha, max_iter=max_iter, tol=tol)
    fit = strength_fit(enc.items, enc.win, enc.lose, enc.weight, theta=theta, tau=alpha, level=level,
                       converged=converged, connected=enc.connected)
    return fit, theta


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
    check_level(level)
    return _pooled(encode(validate_comparisons(comparisons), items), alpha=alpha, level=level, max_iter=max_iter,
                   tol=tol)[0]


def _in_context(frame: pd.DataFrame, key: str | None) -> np.ndarray:
    return np.array([c == key if key is not None else c is None for c in frame["context"]], dtype=bool)


def _context_keys(frame: pd.DataFrame) -> list[str | None]:
    keys = set(frame["context"].tolist())
    return sorted(keys, key=lambda c: (c is not None, "" if c is None else c))


def fit_by_context(
    comparisons: pd.DataFrame, *, alpha: float = DEFAULT_ALPHA, level: float = 0.95
) -> dict[str | None, StrengthFit]:
    """One pooled fit per context (key None for rows without a context), over that context's items."""
    check_level(level)
    frame = validate_comparisons(comparisons)
    return {key: _pooled(encode(frame[_in_context(frame, key)]), alpha=alpha, level=level)[0]
            for key in _context_keys(frame)}


def _check_shrinkage(shrinkage: float) -> None:
    if shrinkage <= 0:
        raise PreferenceDataError("shrinkage must be > 0 (it is the prior precision around the pooled fit)")


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
    check_level(level)
    _check_shrinkage(shrinkage)
    return _pooled_and_groups(encode(validate_comparisons(comparisons)), attributes, by, shrinkage=shrinkage,
                              alpha=alpha, level=level)


def _pooled_and_groups(enc: Encoded, attributes: pd.DataFrame, by: str, *, shrinkage: float, alpha: float,
                       level: float) -> GroupFit:
    pooled, _ = _pooled(enc, alpha=alpha, level=level)
    return _groups(enc, attribute_of(attributes, by, enc.participants), pooled, by=by, shrinkage=shrinkage,
                   level=level)


def _groups(enc: Encoded, labels: np.ndarray, pooled: StrengthFit, *, by, shrinkage, level):
    n = len(enc.items)
    names = sorted({v for v in labels if v is not None})
    groups: dict[str, StrengthFit] = {}
    sizes: dict[str, int] = {}
    row_label = labels[enc.participant]
    for name in names:
        mask = row_label == name
        win, lose, weight = enc.win[mask], enc.lose[mask], enc.weight[mask]
        theta, converged = fit_map(win, lose, weight, n, prior_mean=pooled.theta, tau=shrinkage,
                                    theta0=pooled.theta)
        groups[name] = strength_fit(enc.items, win, lose, weight, theta=theta, tau=shrinkage, level=level,
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
    check_level(level)
    _check_shrinkage(shrinkage)
    frame = validate_comparisons(comparisons)
    return {key: _pooled_and_groups(encode(frame[_in_context(frame, key)]), attributes, by, shrinkage=shrinkage,
                                    alpha=alpha, level=level)
            for key in _context_keys(frame)}


def fit_preferences(
    comparisons: pd.DataFrame,
    attributes: pd.DataFrame | None = None,
    by: str | None = None,
    *,
    k: int | None = None,
    max_k: int = 6,
    seed: int = 0,
    bootstrap: int = 0,
    alpha: float = DEFAULT_ALPHA,
    shrinkage: float = DEFAULT_SHRINKAGE,
    level: float = 0.95,
    progress: Callable[[int, int], None] | None = None,
) -> PreferenceFit:
    """The pooled fit, the latent classes (K by BIC over 1..max_k unless ``k``), and with ``by`` the
    per-group fits, with ``bootstrap`` ≥ 2 percentile intervals over that many resampled-participant
    replicates (``progress(done, bootstrap)`` follows them), and the latent classes' make-up when
    ``attributes`` has any attribute column. The comparisons are validated once and the pooled model
    is fitted once for all of them.
    """
    check_level(level)
    _check_shrinkage(shrinkage)
    if bootstrap:
        check_replicates(bootstrap)
    if by is not None and attributes is None:
        raise PreferenceDataError("by: needs the participants' attributes")
    enc = encode(validate_comparisons(comparisons))
    pooled, pooled_map = _pooled(enc, alpha=alpha, level=level)
    mixture = mixture_encoded(enc, k=k, max_k=max_k, seed=seed, alpha=alpha, level=level)
    labels = attribute_of(attributes, by, enc.participants) if by is not None else None
    groups = _groups(enc, labels, pooled, by=by, shrinkage=shrinkage, level=level) if by is not None else None
    boot = (bootstrap_encoded(enc, labels, by, pooled_map, n_boot=bootstrap, seed=seed, alpha=alpha,
                              shrinkage=shrinkage, level=level, progress=progress) if bootstrap else None)
    composition = (class_composition(mixture, attributes)
                   if attributes is not None and len(attributes.columns) > 1 else None)
    return PreferenceFit(pooled=pooled, mixture=mixture, groups=groups, bootstrap=boot, composition=composition)
