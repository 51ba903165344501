"""The fit JSON (schemas/fit.schema.json): what `workbench fit` writes and analysis runs store."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .data import PreferenceDataError
from .results import BootstrapInterval, BootstrapStrengths, GroupFit, MixtureFit, StrengthFit


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
