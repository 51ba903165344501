"""What the preference models return: frozen dataclasses with numpy arrays that cannot be written to."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.special import expit


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


@dataclass(frozen=True)
class PreferenceFit:
    """Everything `fit_preferences` fits from one comparisons table (validated and encoded once, the
    pooled fit made once): the pooled strengths, the latent classes, and if asked the per-group
    strengths, the bootstrap intervals and the latent classes' make-up."""

    pooled: StrengthFit
    mixture: MixtureFit
    groups: GroupFit | None = None
    bootstrap: BootstrapStrengths | None = None
    composition: ClassComposition | None = None
