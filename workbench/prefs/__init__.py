"""Preference models over pairwise judgements: pooled, per-context, per-group and latent-class Bradley–Terry.

This package turns a comparisons DataFrame (one row per judgement: ``participant_id, item_a, item_b,
winner ('a'|'b'), context, weight``) into strengths θ with intervals, and finds latent classes of
participants who share a ranking. It is pure analysis: DataFrames in, frozen dataclasses out, seeded
and deterministic. It must never read files, touch the store (no SQL, no DuckDB) or import Streamlit.

Layout: `data` validates and encodes the input (once, at each public entry point; everything behind
it trusts the encoded arrays), `newton` is the one Newton loop every fit uses, `fits` the pooled,
per-context, per-group and all-at-once (`fit_preferences`) fits, `bootstrap` and `mixture` the
intervals over resampled participants and the latent classes, `wiser` the wiser-than answers as
comparisons, `results` the frozen result types and `serialise` the fit JSON.

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

from .bootstrap import bootstrap_strengths
from .data import DEFAULT_ALPHA, DEFAULT_SHRINKAGE, FIT_SCHEMA_PATH, PreferenceDataError, validate_comparisons
from .fits import bradley_terry, fit_by_context, fit_preferences, group_strengths, group_strengths_by_context
from .mixture import class_composition, latent_class_attributes, latent_mixture
from .results import (
    BootstrapInterval,
    BootstrapStrengths,
    ClassComposition,
    GroupFit,
    MixtureFit,
    PreferenceFit,
    StrengthFit,
)
from .serialise import fit_to_json
from .wiser import comparisons_from_wiser

__all__ = [
    "DEFAULT_ALPHA", "DEFAULT_SHRINKAGE", "FIT_SCHEMA_PATH", "BootstrapInterval", "BootstrapStrengths",
    "ClassComposition", "GroupFit", "MixtureFit", "PreferenceDataError", "PreferenceFit", "StrengthFit",
    "bootstrap_strengths", "bradley_terry", "class_composition", "comparisons_from_wiser", "fit_by_context",
    "fit_preferences", "fit_to_json", "group_strengths", "group_strengths_by_context", "latent_class_attributes",
    "latent_mixture", "validate_comparisons",
]
