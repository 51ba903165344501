"""Disagreement measures: JSD between groups, sign flips on value pairs, divisive and bridging values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import softmax
from simulate import simulate_planted_classes

from workbench import disagreement as dis
from workbench import prefs


def _view(theta: np.ndarray, weights=None, groups=None) -> dis.GroupStrengths:
    """Hand-made group strengths (no covariance: pair intervals then use the standard errors)."""
    theta = np.asarray(theta, dtype=float)
    g, n = theta.shape
    fits = []
    for row in theta:
        se = np.full(n, 0.1)
        fits.append(prefs.StrengthFit(items=tuple(f"i{j}" for j in range(n)), theta=row - row.mean(), se=se,
                                      lower=row - 0.2, upper=row + 0.2, level=0.95, prior_precision=1.0,
                                      item_comparisons=np.ones(n), n_comparisons=1.0, log_likelihood=0.0))
    weights = np.full(g, 1.0 / g) if weights is None else np.asarray(weights, dtype=float)
    groups = tuple(groups or (f"g{k}" for k in range(g)))
    return dis.GroupStrengths(groups=groups, items=fits[0].items, fits=tuple(fits), weights=weights)


@pytest.fixture(scope="module")
def two_camps() -> prefs.GroupFit:
    """Two camps of 20 people: they agree 'honesty' is best, split on 'loyalty' vs 'fairness',
    and 'tradition' is loved by camp red and disliked by camp blue."""
    rng = np.random.default_rng(0)
    truth = {
        "red": {"honesty": 1.5, "loyalty": 1.0, "fairness": -0.5, "tradition": 1.2, "novelty": -1.0},
        "blue": {"honesty": 1.5, "loyalty": -0.5, "fairness": 1.0, "tradition": -1.2, "novelty": 0.2},
    }
    items = list(truth["red"])
    rows, people = [], []
    for camp, theta in truth.items():
        for person in range(20):
            pid = f"{camp}{person}"
            people.append((pid, camp))
            for _ in range(40):
                a, b = rng.choice(items, size=2, replace=False)
                p_a = 1.0 / (1.0 + np.exp(-(theta[a] - theta[b])))
                rows.append((pid, a, b, "a" if rng.random() < p_a else "b"))
    comparisons = pd.DataFrame(rows, columns=["participant_id", "item_a", "item_b", "winner"])
    attributes = pd.DataFrame(people, columns=["participant_id", "camp"])
    return prefs.group_strengths(comparisons, attributes, "camp", shrinkage=1.0)


def test_jsd_of_identical_groups_is_zero():
    theta = np.array([[0.5, -0.2, 1.0, -1.3]] * 3)
    div = dis.choice_divergence(_view(theta, weights=[0.2, 0.3, 0.5]))
    assert np.allclose(div.pairwise_jsd, 0.0, atol=1e-12)
    assert div.generalized_jsd == pytest.approx(0.0, abs=1e-12)


def test_jsd_is_symmetric_bounded_and_grows_with_difference():
    close = dis.choice_divergence(_view([[1.0, 0.0, -1.0], [0.9, 0.1, -1.0]])).pairwise_jsd[0, 1]
    far = dis.choice_divergence(_view([[3.0, 0.0, -3.0], [-3.0, 0.0, 3.0]])).pairwise_jsd[0, 1]
    extreme = dis.choice_divergence(_view([[30.0, -30.0], [-30.0, 30.0]]))
    assert 0 < close < far < 1
    assert extreme.pairwise_jsd[0, 1] == pytest.approx(1.0, abs=1e-6)  # disjoint choices: one bit
    assert np.array_equal(extreme.pairwise_jsd, extreme.pairwise_jsd.T)


def test_generalized_jsd_is_mutual_information_between_group_and_choice():
    theta = np.array([[1.0, 0.0, -1.0, 0.5], [-1.0, 0.3, 1.0, 0.0], [0.0, 2.0, -0.5, -1.0]])
    weights = np.array([0.5, 0.3, 0.2])
    div = dis.choice_divergence(_view(theta, weights=weights))
    joint = weights[:, None] * softmax(theta, axis=1)
    independent = joint.sum(axis=1, keepdims=True) * joint.sum(axis=0, keepdims=True)
    mutual_information = float(np.sum(joint * np.log2(joint / independent)))
    assert div.generalized_jsd == pytest.approx(mutual_information, rel=1e-10)
    # With two equal-sized groups it is the pairwise JSD.
    pair = dis.choice_divergence(_view(theta[:2]))
    assert pair.generalized_jsd == pytest.approx(pair.pairwise_jsd[0, 1], rel=1e-10)


def test_sign_flip_found_on_two_camp_example(two_camps):
    result = dis.pair_disagreement(two_camps)
    pairs = result.pairs.set_index(["item_a", "item_b"])
    split = pairs.loc[("fairness", "loyalty")]
    assert split["sign_flip"] and split["confident_flip"]
    assert {split["group_high"], split["group_low"]} == {"red", "blue"}
    assert split["max_gap"] > 0.4
    # Both camps put honesty over novelty: no flip there.
    agreed = pairs.loc[("honesty", "novelty")]
    assert not agreed["sign_flip"] and agreed["max_gap"] < 0.3
    # The most divisive pair involves tradition (the widest planted split).
    top = result.pairs.iloc[0]
    assert "tradition" in (top["item_a"], top["item_b"])
    probabilities = result.probabilities
    row = probabilities[(probabilities["item_a"] == "fairness") & (probabilities["item_b"] == "loyalty")]
    assert set(row["group"]) == {"red", "blue"}
    assert np.all((row["lower"] < row["p"]) & (row["p"] < row["upper"]))
    assert set(result.flips(confident=True)["item_a"] + "|" + result.flips(confident=True)["item_b"]) >= {
        "fairness|loyalty"}


def test_pair_disagreement_on_chosen_pairs_and_top(two_camps):
    chosen = dis.pair_disagreement(two_camps, pairs=[("loyalty", "fairness"), ("honesty", "novelty")])
    assert len(chosen.pairs) == 2 and len(chosen.probabilities) == 4
    assert chosen.pairs.iloc[0]["item_a"] == "loyalty"  # larger gap first
    assert len(dis.pair_disagreement(two_camps, top=3).pairs) == 3
    with pytest.raises(dis.DisagreementInputError, match="unknown item 'kindness'"):
        dis.pair_disagreement(two_camps, pairs=[("kindness", "honesty")])


def test_divisive_and_bridging_rankings(two_camps):
    divisive = dis.divisive_values(two_camps).table
    assert divisive.iloc[0]["item"] == "tradition"
    assert divisive.set_index("item").loc["honesty", "score"] < 0.05
    bridging = dis.bridging_values(two_camps).table
    assert bridging.iloc[0]["item"] == "honesty"
    # Tradition is the favourite of one camp yet bridges badly: its minimum over camps is low.
    tradition = bridging.set_index("item").loc["tradition"]
    assert tradition["beats_red"] > 0.6 and tradition["score"] < 0.35
    assert tradition["weakest_group"] == "blue"


def test_beats_random_other_is_a_probability_average():
    beats = dis.beats_random_other(np.array([[0.0, 0.0, 0.0], [10.0, 0.0, -10.0]]))
    assert np.allclose(beats[0], 0.5)
    assert beats[1, 0] > 0.99 and beats[1, 2] < 0.01


def test_measures_work_on_latent_classes_and_per_context():
    comparisons, truth, _ = simulate_planted_classes(n_items=15, n_classes=2, n_comparisons=3000,
                                                           per_participant=(40, 60), spread=1.5, seed=3)
    comparisons["context"] = np.where(np.arange(len(comparisons)) % 2 == 0, "work", "home")
    mixture = prefs.latent_mixture(comparisons, max_k=3, seed=0)
    assert mixture.k == 2
    div = dis.choice_divergence(mixture)
    assert div.groups == ("class_0", "class_1") and div.generalized_jsd > 0.01
    assert len(dis.bridging_values(mixture).table) == 15
    flips = dis.pair_disagreement(mixture).flips(confident=True)
    assert len(flips) > 0
    classes = prefs.latent_class_attributes(mixture)
    per_context = prefs.group_strengths_by_context(comparisons, classes, "latent_class")
    summary = dis.divergence_by_context(per_context)
    assert set(summary.table["context"]) == {"home", "work"}
    assert np.all(summary.table["generalized_jsd"] > 0.01)
    # Known groups equal to the planted classes give about the same divergence as the latent classes.
    known = prefs.group_strengths(comparisons, truth.astype({"true_class": str}), "true_class")
    assert dis.choice_divergence(known).generalized_jsd == pytest.approx(div.generalized_jsd, rel=0.3)
