"""Where groups disagree about values, and which values bridge them, from fitted group strengths.

Input is a fit with one strength vector per group over a shared item set: a ``GroupFit`` (known groups,
e.g. a demographic) or a ``MixtureFit`` (latent classes) from ``workbench.prefs``, or one of those per
context. Output is frozen dataclasses holding tidy DataFrames. This module is pure: it never fits a
model, reads files, touches the store or imports Streamlit.

Measures (REFERENCE §3):

- **Choice divergence.** Each group's choice distribution over the items is ``softmax(θ_g)`` (the
  Bradley–Terry/Luce probability that the group picks item i from the whole set). Pairwise
  Jensen–Shannon divergence between groups, in bits (0 = same distribution, 1 = disjoint), and the
  size-weighted generalised JSD ``H(Σ π_g p_g) − Σ π_g H(p_g)``, which equals the mutual information
  between group membership and choice when a random participant (group g with probability π_g)
  picks an item. Weights π_g: participants per known group, component weights for latent classes.
- **Value pairs.** ``P_g(a ≻ b) = σ(θ_ga − θ_gb)`` per group with a delta-method interval
  (``se² = Var θ_a + Var θ_b − 2 Cov(θ_a, θ_b)`` from the fit's covariance; without one, the
  covariance term is dropped), the largest gap ``max |P_g − P_h|``, a ``sign_flip`` when one group's
  point estimate is above .5 and another's below, and a ``confident_flip`` when one group's whole
  interval is above .5 and another's whole interval below.
- **Divisive values.** Size-weighted between-group variance of θ_i (groups' θ are all mean-0, so they
  are comparable), with the between-group variance of the item's rank beside it.
- **Bridging values.** For each group, ``b_g(i)`` = mean over the other items j of ``σ(θ_gi − θ_gj)``:
  the chance the value beats a randomly chosen other value in that group's eyes. The bridging score
  is ``min_g b_g(i)``, so a value scores high only if *every* group rates it highly (the
  Community-Notes / group-informed-consensus idea: a product or minimum over groups, not an average).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd
from scipy.special import expit, softmax
from scipy.stats import norm, rankdata

from workbench.errors import InputError
from workbench.prefs import GroupFit, MixtureFit, StrengthFit


class DisagreementInputError(InputError):
    """A fit the disagreement measures cannot use (too few groups, unknown items...)."""


@dataclass(frozen=True)
class GroupStrengths:
    """The common view of known groups and latent classes: one StrengthFit per group, same items."""

    groups: tuple[str, ...]
    items: tuple[str, ...]
    fits: tuple[StrengthFit, ...]
    weights: np.ndarray
    """Group sizes as shares (sum 1)."""

    def __post_init__(self) -> None:
        self.weights.setflags(write=False)

    @property
    def theta(self) -> np.ndarray:
        """``(n_groups, n_items)`` strengths."""
        return np.vstack([fit.theta for fit in self.fits])


def group_strengths_of(fit: GroupFit | MixtureFit | GroupStrengths) -> GroupStrengths:
    """Known groups (weights = participants per group) or latent classes (weights = π_k, labels
    ``class_<k>``) as a ``GroupStrengths``."""
    if isinstance(fit, GroupStrengths):
        return fit
    if isinstance(fit, GroupFit):
        names = tuple(fit.groups)
        sizes = np.array([fit.n_participants[name] for name in names], dtype=float)
        fits = tuple(fit.groups[name] for name in names)
        items = fit.items
    elif isinstance(fit, MixtureFit):
        names = tuple(f"class_{k}" for k in range(fit.k))
        sizes = np.asarray(fit.weights, dtype=float)
        fits = tuple(fit.components)
        items = fit.items
    else:
        raise DisagreementInputError(f"expected a GroupFit or MixtureFit, got {type(fit).__name__}")
    if len(names) == 0:
        raise DisagreementInputError("the fit has no groups")
    total = sizes.sum()
    weights = sizes / total if total > 0 else np.full(len(names), 1.0 / len(names))
    return GroupStrengths(groups=names, items=tuple(items), fits=fits, weights=weights)


# --------------------------------------------------------------------------------------------------
# Choice divergence


def _entropy_bits(p: np.ndarray) -> np.ndarray:
    """Shannon entropy in bits along the last axis (0·log 0 = 0)."""
    safe = np.where(p > 0, p, 1.0)
    return -np.sum(p * np.log2(safe), axis=-1)


def jensen_shannon(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen–Shannon divergence between two distributions, in bits (0…1)."""
    mix = 0.5 * (p + q)
    return float(max(_entropy_bits(mix) - 0.5 * (_entropy_bits(p) + _entropy_bits(q)), 0.0))


@dataclass(frozen=True)
class ChoiceDivergence:
    """How differently the groups would choose among the items."""

    groups: tuple[str, ...]
    weights: np.ndarray
    pairwise_jsd: np.ndarray
    """``(n_groups, n_groups)`` JSD in bits, symmetric, zero diagonal."""
    generalized_jsd: float
    """Size-weighted generalised JSD in bits = mutual information I(group; choice)."""

    def __post_init__(self) -> None:
        self.weights.setflags(write=False)
        self.pairwise_jsd.setflags(write=False)

    def as_frame(self) -> pd.DataFrame:
        """Columns ``group_a, group_b, jsd`` for each unordered pair, most divergent first."""
        rows = [
            {"group_a": self.groups[i], "group_b": self.groups[j], "jsd": float(self.pairwise_jsd[i, j])}
            for i, j in combinations(range(len(self.groups)), 2)
        ]
        frame = pd.DataFrame(rows, columns=["group_a", "group_b", "jsd"])
        return frame.sort_values("jsd", ascending=False, ignore_index=True)


def choice_divergence(fit: GroupFit | MixtureFit | GroupStrengths) -> ChoiceDivergence:
    """Pairwise and size-weighted generalised JSD between the groups' ``softmax(θ_g)``."""
    view = group_strengths_of(fit)
    dists = softmax(view.theta, axis=1)
    g = len(view.groups)
    pairwise = np.zeros((g, g))
    for i, j in combinations(range(g), 2):
        pairwise[i, j] = pairwise[j, i] = jensen_shannon(dists[i], dists[j])
    mixture = view.weights @ dists
    generalized = float(max(_entropy_bits(mixture) - view.weights @ _entropy_bits(dists), 0.0))
    return ChoiceDivergence(groups=view.groups, weights=view.weights.copy(), pairwise_jsd=pairwise,
                            generalized_jsd=generalized)


@dataclass(frozen=True)
class ContextDivergence:
    """Choice divergence in every context.

    ``table`` columns: ``context, n_groups, generalized_jsd, max_pairwise_jsd, group_a, group_b``
    (the most divergent pair), most divergent context first.
    """

    by_context: Mapping[str | None, ChoiceDivergence]
    table: pd.DataFrame


def divergence_by_context(fits: Mapping[str | None, GroupFit | MixtureFit | GroupStrengths]) -> ContextDivergence:
    """``choice_divergence`` per context, e.g. of ``prefs.group_strengths_by_context(...)``."""
    by_context: dict[str | None, ChoiceDivergence] = {}
    rows = []
    for context, fit in fits.items():
        div = choice_divergence(fit)
        by_context[context] = div
        pairs = div.as_frame()
        top = pairs.iloc[0] if len(pairs) else None
        rows.append(
            {
                "context": context,
                "n_groups": len(div.groups),
                "generalized_jsd": div.generalized_jsd,
                "max_pairwise_jsd": float(top["jsd"]) if top is not None else 0.0,
                "group_a": top["group_a"] if top is not None else None,
                "group_b": top["group_b"] if top is not None else None,
            }
        )
    table = pd.DataFrame(rows, columns=["context", "n_groups", "generalized_jsd", "max_pairwise_jsd",
                                        "group_a", "group_b"])
    table = table.sort_values("generalized_jsd", ascending=False, ignore_index=True)
    return ContextDivergence(by_context=by_context, table=table)


# --------------------------------------------------------------------------------------------------
# Value pairs


@dataclass(frozen=True)
class PairDisagreement:
    """Per value pair and group: P_g(item_a ≻ item_b) with intervals, and where the groups split.

    ``probabilities`` columns: ``item_a, item_b, group, p, lower, upper``.
    ``pairs`` columns: ``item_a, item_b, max_gap, group_high, p_high, group_low, p_low, sign_flip,
    confident_flip``; sorted by ``max_gap`` (largest first).
    """

    level: float
    probabilities: pd.DataFrame
    pairs: pd.DataFrame

    def flips(self, *, confident: bool = False) -> pd.DataFrame:
        column = "confident_flip" if confident else "sign_flip"
        return self.pairs[self.pairs[column]].reset_index(drop=True)


def _pair_indices(items: tuple[str, ...], pairs: Sequence[tuple[str, str]] | None) -> tuple[np.ndarray, np.ndarray]:
    if pairs is None:
        first, second = np.triu_indices(len(items), k=1)
        return first, second
    lookup = {item: i for i, item in enumerate(items)}
    unknown = [p for pair in pairs for p in pair if p not in lookup]
    if unknown:
        raise DisagreementInputError(f"unknown item {unknown[0]!r} in pairs")
    first = np.array([lookup[a] for a, _ in pairs], dtype=np.int64)
    second = np.array([lookup[b] for _, b in pairs], dtype=np.int64)
    if np.any(first == second):
        raise DisagreementInputError("a pair compares an item with itself")
    return first, second


def pair_disagreement(
    fit: GroupFit | MixtureFit | GroupStrengths,
    *,
    pairs: Sequence[tuple[str, str]] | None = None,
    level: float = 0.95,
    top: int | None = None,
) -> PairDisagreement:
    """P_g(a ≻ b) per group for the given pairs (all unordered pairs by default).

    ``top`` keeps only the ``top`` pairs with the largest gap (useful for hundreds of items: n items
    give n(n−1)/2 pairs).
    """
    if not 0.0 < level < 1.0:
        raise DisagreementInputError(f"level must be in (0, 1), got {level}")
    view = group_strengths_of(fit)
    first, second = _pair_indices(view.items, pairs)
    z = float(norm.ppf(0.5 + level / 2.0))
    theta = view.theta
    diff = theta[:, first] - theta[:, second]
    var = np.empty_like(diff)
    for g, group_fit in enumerate(view.fits):
        if group_fit.covariance is not None:
            cov = group_fit.covariance
            var[g] = cov[first, first] + cov[second, second] - 2.0 * cov[first, second]
        else:
            var[g] = group_fit.se[first] ** 2 + group_fit.se[second] ** 2
    se = np.sqrt(np.clip(var, 0.0, None))
    prob, lower, upper = expit(diff), expit(diff - z * se), expit(diff + z * se)

    high, low = np.argmax(prob, axis=0), np.argmin(prob, axis=0)
    cols = np.arange(len(first))
    p_high, p_low = prob[high, cols], prob[low, cols]
    confident = (lower > 0.5).any(axis=0) & (upper < 0.5).any(axis=0)
    items = np.asarray(view.items, dtype=object)
    groups = np.asarray(view.groups, dtype=object)
    summary = pd.DataFrame(
        {
            "item_a": items[first],
            "item_b": items[second],
            "max_gap": p_high - p_low,
            "group_high": groups[high],
            "p_high": p_high,
            "group_low": groups[low],
            "p_low": p_low,
            "sign_flip": (p_high > 0.5) & (p_low < 0.5),
            "confident_flip": confident,
        }
    )
    order = np.argsort(-summary["max_gap"].to_numpy(), kind="stable")
    if top is not None:
        order = order[:top]
    summary = summary.iloc[order].reset_index(drop=True)
    g_count = len(view.groups)
    probabilities = pd.DataFrame(
        {
            "item_a": np.repeat(items[first][order], g_count),
            "item_b": np.repeat(items[second][order], g_count),
            "group": np.tile(groups, len(order)),
            "p": prob[:, order].T.ravel(),
            "lower": lower[:, order].T.ravel(),
            "upper": upper[:, order].T.ravel(),
        }
    )
    return PairDisagreement(level=level, probabilities=probabilities, pairs=summary)


# --------------------------------------------------------------------------------------------------
# Divisive and bridging values


@dataclass(frozen=True)
class ValueRanking:
    """Items ranked by ``score`` (highest first); ``kind`` is "divisive" or "bridging".

    ``table`` columns: ``item, score`` then the measure's own columns and one ``theta_<group>`` (divisive)
    or ``beats_<group>`` (bridging) column per group.
    """

    kind: str
    table: pd.DataFrame

    def top(self, n: int = 10) -> pd.DataFrame:
        return self.table.head(n)


def divisive_values(fit: GroupFit | MixtureFit | GroupStrengths) -> ValueRanking:
    """Items ranked by the size-weighted between-group variance of θ (``score``); ``rank_variance`` is
    the same variance of the item's rank within each group (1 = strongest)."""
    view = group_strengths_of(fit)
    theta = view.theta
    w = view.weights[:, None]
    mean = (w * theta).sum(axis=0)
    score = (w * (theta - mean) ** 2).sum(axis=0)
    ranks = np.vstack([rankdata(-row, method="average") for row in theta])
    rank_mean = (w * ranks).sum(axis=0)
    rank_var = (w * (ranks - rank_mean) ** 2).sum(axis=0)
    table = pd.DataFrame({"item": list(view.items), "score": score, "rank_variance": rank_var,
                          "theta_range": theta.max(axis=0) - theta.min(axis=0)})
    for g, name in enumerate(view.groups):
        table[f"theta_{name}"] = theta[g]
    table = table.sort_values(["score", "item"], ascending=[False, True], ignore_index=True)
    return ValueRanking(kind="divisive", table=table)


def beats_random_other(theta: np.ndarray) -> np.ndarray:
    """``(n_groups, n_items)``: mean over j ≠ i of σ(θ_i − θ_j), per group row."""
    n = theta.shape[-1]
    if n < 2:
        raise DisagreementInputError("need at least two items")
    pairwise = expit(theta[:, :, None] - theta[:, None, :])  # (g, i, j)
    return (pairwise.sum(axis=2) - 0.5) / (n - 1)  # drop the diagonal σ(0) = .5


def bridging_values(fit: GroupFit | MixtureFit | GroupStrengths) -> ValueRanking:
    """Items ranked by ``min_g P_g(item beats a random other item)`` (``score``); ``weakest_group`` is
    the group that holds the minimum."""
    view = group_strengths_of(fit)
    theta = view.theta
    if theta.shape[1] > 4000:
        # (groups × n × n) would not fit comfortably; do it one group at a time.
        beats = np.vstack([beats_random_other(row[None, :]) for row in theta])
    else:
        beats = beats_random_other(theta)
    weakest = np.argmin(beats, axis=0)
    table = pd.DataFrame(
        {
            "item": list(view.items),
            "score": beats.min(axis=0),
            "weakest_group": np.asarray(view.groups, dtype=object)[weakest],
            "mean_beats": view.weights @ beats,
        }
    )
    for g, name in enumerate(view.groups):
        table[f"beats_{name}"] = beats[g]
    table = table.sort_values(["score", "item"], ascending=[False, True], ignore_index=True)
    return ValueRanking(kind="bridging", table=table)


__all__ = [
    "ChoiceDivergence",
    "ContextDivergence",
    "DisagreementInputError",
    "GroupStrengths",
    "PairDisagreement",
    "ValueRanking",
    "beats_random_other",
    "bridging_values",
    "choice_divergence",
    "divergence_by_context",
    "divisive_values",
    "group_strengths_of",
    "jensen_shannon",
    "pair_disagreement",
]
