"""Percentile intervals for the strengths by resampling participants (not comparisons) with replacement."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

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
from .newton import fit_map
from .results import BootstrapInterval, BootstrapStrengths


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
    check_level(level)
    check_replicates(n_boot)
    if (attributes is None) != (by is None):
        raise PreferenceDataError("give both attributes and by, or neither")
    enc = encode(validate_comparisons(comparisons))
    labels = attribute_of(attributes, by, enc.participants) if by is not None else None
    pooled_map, _ = fit_map(enc.win, enc.lose, enc.weight, len(enc.items), tau=alpha)
    return bootstrap_encoded(enc, labels, by, pooled_map, n_boot=n_boot, seed=seed, alpha=alpha, shrinkage=shrinkage,
                             level=level, progress=progress)


def check_replicates(n_boot: int) -> None:
    if n_boot < 2:
        raise PreferenceDataError("n_boot must be at least 2")


def bootstrap_encoded(enc: Encoded, labels: np.ndarray | None, by: str | None, pooled_map: np.ndarray, *,
                      n_boot: int, seed: int, alpha: float, shrinkage: float, level: float,
                      progress: Callable[[int, int], None] | None) -> BootstrapStrengths:
    """`bootstrap_strengths` on input already validated and encoded, with the full data's pooled MAP
    (`pooled_map`) already fitted; `labels` is each participant's group (None: no groups)."""
    n, n_part = len(enc.items), len(enc.participants)
    if labels is None:
        labels = np.full(n_part, None, dtype=object)
    full_theta = pooled_map - pooled_map.mean()
    names = sorted({v for v in labels if v is not None})
    full_groups = {}
    row_label = labels[enc.participant]
    for name in names:
        mask = row_label == name
        theta, _ = fit_map(enc.win[mask], enc.lose[mask], enc.weight[mask], n, prior_mean=full_theta,
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
        theta, _ = fit_map(enc.win, enc.lose, weight, n, tau=alpha, theta0=full_theta, tol=1e-7)
        theta -= theta.mean()
        pooled_draws[b] = theta
        for name in names:
            mask = row_label == name
            g_theta, _ = fit_map(enc.win[mask], enc.lose[mask], weight[mask], n, prior_mean=theta,
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
