"""Preference models: BT agrees with choix, shrinkage, planted latent classes, wiser answers, fit JSON."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import choix
import jsonschema
import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr
from simulate import simulate_planted_classes
from sklearn.metrics import adjusted_rand_score

from workbench import prefs
from workbench.prefs import PreferenceDataError

ROOT = Path(__file__).resolve().parents[1]
MGE = ROOT.parent / "shared" / "datasets" / "mge-dft"


def _rows(pairs: list[tuple[str, str, str, str]], **extra) -> pd.DataFrame:
    frame = pd.DataFrame(pairs, columns=["participant_id", "item_a", "item_b", "winner"])
    for key, value in extra.items():
        frame[key] = value
    return frame


@pytest.fixture(scope="module")
def planted():
    comparisons, truth, theta = simulate_planted_classes(
        n_items=30, n_classes=3, n_comparisons=6000, per_participant=(40, 60), spread=1.0, seed=1
    )
    return comparisons, truth, theta


@pytest.fixture(scope="module")
def planted_mixture(planted):
    comparisons, _, _ = planted
    return prefs.latent_mixture(comparisons, max_k=5, restarts=3, seed=0)


@pytest.fixture(scope="module")
def pooled_data():
    comparisons, _, _ = simulate_planted_classes(
        n_items=25, n_classes=1, n_comparisons=3000, per_participant=(20, 40), seed=7
    )
    return comparisons


# --------------------------------------------------------------------------------------------------
# Pooled Bradley–Terry


def _indexed(comparisons: pd.DataFrame) -> tuple[list[str], np.ndarray, np.ndarray]:
    items = sorted(set(comparisons["item_a"]) | set(comparisons["item_b"]))
    index = {item: i for i, item in enumerate(items)}
    a = comparisons["item_a"].map(index).to_numpy()
    b = comparisons["item_b"].map(index).to_numpy()
    a_wins = comparisons["winner"].to_numpy() == "a"
    return items, np.where(a_wins, a, b), np.where(a_wins, b, a)


def test_bt_equals_choix_map_with_same_gaussian_prior(pooled_data):
    items, win, lose = _indexed(pooled_data)
    fit = prefs.bradley_terry(pooled_data, alpha=1.0)
    # choix penalises alpha·‖θ‖², we use alpha/2·‖θ‖²: the same objective at half the alpha.
    reference = choix.opt_pairwise(len(items), list(zip(win, lose, strict=True)), alpha=0.5, tol=1e-10)
    assert fit.items == tuple(items)
    assert np.max(np.abs(fit.theta - (reference - reference.mean()))) < 1e-5


def test_bt_equals_choix_ilsr_maximum_likelihood(pooled_data):
    items, win, lose = _indexed(pooled_data)
    counts = np.zeros((len(items), len(items)))
    np.add.at(counts, (win, lose), 1.0)
    reference = choix.ilsr_pairwise_dense(counts, alpha=0.0, tol=1e-12)
    fit = prefs.bradley_terry(pooled_data, alpha=1e-9)
    assert np.max(np.abs(fit.theta - (reference - reference.mean()))) < 1e-5


def test_fractional_weights_match_choix_fractional_count_matrix(pooled_data):
    rng = np.random.default_rng(3)
    weighted = pooled_data.assign(weight=rng.uniform(0.2, 2.0, len(pooled_data)))
    items, win, lose = _indexed(weighted)
    counts = np.zeros((len(items), len(items)))
    np.add.at(counts, (win, lose), weighted["weight"].to_numpy())
    reference = choix.ilsr_pairwise_dense(counts, alpha=0.0, tol=1e-12)
    fit = prefs.bradley_terry(weighted, alpha=1e-9)
    assert np.max(np.abs(fit.theta - (reference - reference.mean()))) < 1e-5
    # Doubling every weight is the same as seeing every judgement twice: intervals shrink by √2.
    doubled = prefs.bradley_terry(weighted.assign(weight=2 * weighted["weight"]), alpha=1e-9)
    assert np.allclose(doubled.se * np.sqrt(2), fit.se, rtol=1e-4)


def test_strengths_are_mean_zero_and_one_sided_items_stay_finite():
    rows = [("u1", "champion", other, "a") for other in ("x", "y", "z")] * 3
    rows += [("u2", "x", "y", "a"), ("u2", "y", "z", "a"), ("u2", "z", "x", "a"), ("u2", "x", "z", "b")]
    fit = prefs.bradley_terry(_rows(rows))
    assert abs(fit.theta.sum()) < 1e-9
    assert np.all(np.isfinite(fit.theta)) and np.all(np.isfinite(fit.se))
    table = fit.as_frame()
    assert table.loc[0, "item"] == "champion"
    # An item that never lost is uncertain: its interval is the widest.
    assert fit.se[fit.index("champion")] == fit.se.max()
    assert fit.prob_beats("champion", "x") > 0.9


def test_laplace_interval_is_close_to_bootstrap_interval(pooled_data):
    fit = prefs.bradley_terry(pooled_data)
    boot = prefs.bootstrap_strengths(pooled_data, n_boot=60, seed=0)
    ratio = boot.pooled.se / fit.se
    assert 0.7 < np.median(ratio) < 1.4
    # Percentile intervals bracket the point estimate for every item.
    assert np.all(boot.pooled.lower <= fit.theta + 1e-9) and np.all(fit.theta <= boot.pooled.upper + 1e-9)


def _two_questions(pooled_data: pd.DataFrame) -> pd.DataFrame:
    """The same participants answering two questions whose values are never compared with each other."""
    other = pooled_data.assign(item_a="q2-" + pooled_data["item_a"], item_b="q2-" + pooled_data["item_b"],
                               winner=np.where(pooled_data["winner"] == "a", "b", "a"))
    return pd.concat([pooled_data, other], ignore_index=True)


def test_values_of_separate_questions_get_intervals_within_their_question(pooled_data):
    # Comparisons never link the two questions' values, so how the questions sit relative to each other
    # is the prior's arbitrary choice; it must not widen every interval (it did: ~10x, from the prior's
    # variance along each question's shift).
    both = _two_questions(pooled_data)
    fit = prefs.bradley_terry(both)
    alone = prefs.bradley_terry(pooled_data)
    first = [fit.index(item) for item in alone.items]
    assert np.allclose(fit.theta[first], alone.theta, atol=1e-6)  # each question centred on its own
    assert np.allclose(fit.se[first], alone.se, rtol=1e-6)
    boot = prefs.bootstrap_strengths(both, n_boot=60, seed=0)
    assert 0.7 < np.median(boot.pooled.se / fit.se) < 1.4
    # the same within each latent class and each known group
    mixture = prefs.latent_mixture(both, k=1, seed=0)
    assert np.allclose(mixture.components[0].se[first], alone.se, rtol=1e-3)
    camps = pd.DataFrame({"participant_id": sorted(set(both["participant_id"]))})
    camps["camp"] = np.where(np.arange(len(camps)) % 2 == 0, "even", "odd")
    groups = prefs.group_strengths(both, camps, "camp")
    assert np.all(groups.groups["even"].se < 0.5)


def test_a_value_nobody_compared_keeps_the_prior_width(pooled_data):
    items = sorted(set(pooled_data["item_a"]) | set(pooled_data["item_b"])) + ["never-compared"]
    fit = prefs.bradley_terry(pooled_data, items=items, alpha=0.1)
    lonely = fit.index("never-compared")
    assert fit.theta[lonely] == 0.0
    assert fit.se[lonely] == pytest.approx(1.0 / np.sqrt(0.1))
    assert np.allclose(np.delete(fit.se, lonely), prefs.bradley_terry(pooled_data, alpha=0.1).se, rtol=1e-6)


def test_bootstrap_is_seeded(pooled_data):
    first = prefs.bootstrap_strengths(pooled_data, n_boot=10, seed=5)
    second = prefs.bootstrap_strengths(pooled_data, n_boot=10, seed=5)
    other = prefs.bootstrap_strengths(pooled_data, n_boot=10, seed=6)
    assert np.array_equal(first.pooled.lower, second.pooled.lower)
    assert not np.array_equal(first.pooled.lower, other.pooled.lower)


def test_fit_by_context_separates_opposite_contexts():
    rows = [("u1", "care", "rules", "a", "grief")] * 8 + [("u2", "care", "rules", "b", "tax")] * 8
    rows += [("u1", "care", "rules", "b", "grief"), ("u2", "care", "rules", "a", "tax")]
    frame = pd.DataFrame(rows, columns=["participant_id", "item_a", "item_b", "winner", "context"])
    fits = prefs.fit_by_context(frame)
    assert set(fits) == {"grief", "tax"}
    assert fits["grief"].prob_beats("care", "rules") > 0.75
    assert fits["tax"].prob_beats("care", "rules") < 0.25


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (_rows([("u1", "a1", "b1", "a")]).drop(columns="winner"), "missing column"),
        (_rows([("u1", "a1", "b1", "c")]), "winner"),
        (_rows([("u1", "a1", "a1", "a")]), "with itself"),
        (_rows([("", "a1", "b1", "a")]), "empty participant_id"),
        (_rows([("u1", "a1", "b1", "a")], weight=-1.0), "weight"),
    ],
)
def test_bad_comparisons_are_rejected_with_a_reason(frame, message):
    with pytest.raises(PreferenceDataError, match=message):
        prefs.bradley_terry(frame)


# --------------------------------------------------------------------------------------------------
# Known groups


def test_group_with_little_data_stays_near_pooled():
    big, _, _ = simulate_planted_classes(n_items=12, n_classes=1, n_comparisons=2400,
                                               per_participant=(40, 40), seed=2)
    # A second, small group with the opposite ranking: four judgements only.
    small = _rows([("s1", "v0000", "v0001", "b"), ("s1", "v0002", "v0003", "b"),
                   ("s2", "v0004", "v0005", "b"), ("s2", "v0006", "v0007", "b")])
    frame = pd.concat([big, small], ignore_index=True)
    attributes = pd.DataFrame({"participant_id": list(big["participant_id"].unique()) + ["s1", "s2"]})
    attributes["side"] = ["big"] * (len(attributes) - 2) + ["small", "small"]
    fit = prefs.group_strengths(frame, attributes, "side", shrinkage=1.0)
    pooled = fit.pooled.theta
    small_shift = np.abs(fit.groups["small"].theta - pooled).max()
    big_shift = np.abs(fit.groups["big"].theta - pooled).max()
    # Four judgements move no strength by more than one logit, and the small group keeps the pooled
    # ranking, while the same four judgements fitted on their own would reverse it.
    assert small_shift < 1.0
    assert spearmanr(fit.groups["small"].theta, pooled).statistic > 0.8
    alone = prefs.bradley_terry(small, alpha=0.1)
    assert alone.prob_beats("v0001", "v0000") > 0.85
    assert fit.groups["small"].prob_beats("v0001", "v0000") < fit.pooled.prob_beats("v0001", "v0000") + 0.25
    assert big_shift < 0.2  # the big group is the pooled data, nearly
    # Harder shrinkage pulls the small group closer still; intervals of the small group are wider.
    tighter = prefs.group_strengths(frame, attributes, "side", shrinkage=10.0)
    assert np.abs(tighter.groups["small"].theta - pooled).max() < small_shift
    assert np.all(fit.groups["small"].se > fit.groups["big"].se)
    assert fit.n_participants == {"big": len(attributes) - 2, "small": 2}


def test_large_groups_follow_their_own_data(planted):
    comparisons, truth, theta = planted
    attributes = truth.assign(camp=truth["true_class"].map({0: "zero", 1: "one", 2: "two"}))
    fit = prefs.group_strengths(comparisons, attributes[["participant_id", "camp"]], "camp")
    for label, k in (("zero", 0), ("one", 1), ("two", 2)):
        estimated = fit.groups[label].theta
        assert np.corrcoef(estimated, theta[k])[0, 1] > 0.9


def test_group_attribute_problems_are_reported(pooled_data):
    attributes = pd.DataFrame({"participant_id": ["p00000", "p00000"], "side": ["x", "y"]})
    with pytest.raises(PreferenceDataError, match="more than one value"):
        prefs.group_strengths(pooled_data, attributes, "side")
    with pytest.raises(PreferenceDataError, match="no column 'age'"):
        prefs.group_strengths(pooled_data, attributes, "age")


def test_bootstrap_gives_group_intervals(planted):
    comparisons, truth, _ = planted
    attributes = truth.assign(camp=np.where(truth["true_class"] == 0, "zero", "rest"))
    boot = prefs.bootstrap_strengths(comparisons, attributes[["participant_id", "camp"]], "camp",
                                     n_boot=12, seed=1)
    assert set(boot.groups) == {"rest", "zero"}
    widths = boot.groups["zero"].upper - boot.groups["zero"].lower
    assert np.all(widths > 0)


# --------------------------------------------------------------------------------------------------
# Latent classes


def test_planted_classes_are_recovered(planted, planted_mixture):
    _, truth, _ = planted
    fit = planted_mixture
    assert fit.k == 3
    assert min(fit.bic, key=fit.bic.get) == 3
    assert set(fit.bic) == {1, 2, 3, 4, 5}
    labels = pd.Series(fit.component, index=list(fit.participants))
    ari = adjusted_rand_score(truth["true_class"], truth["participant_id"].map(labels))
    assert ari >= 0.9
    assert np.allclose(fit.probs.sum(axis=1), 1.0)
    assert np.isclose(fit.weights.sum(), 1.0)
    assert list(fit.weights) == sorted(fit.weights, reverse=True)


def test_component_strengths_match_planted_strengths(planted, planted_mixture):
    _, _, theta = planted
    for component in planted_mixture.components:
        best = max(np.corrcoef(component.theta, planted)[0, 1] for planted in theta)
        assert best > 0.9


def test_fixed_k_and_determinism(planted):
    comparisons, _, _ = planted
    first = prefs.latent_mixture(comparisons, k=2, seed=4)
    second = prefs.latent_mixture(comparisons, k=2, seed=4)
    assert first.k == 2 and set(first.bic) == {2}
    assert np.array_equal(first.probs, second.probs)


def test_one_class_data_chooses_one_class(pooled_data):
    fit = prefs.latent_mixture(pooled_data, max_k=3, seed=0)
    assert fit.k == 1
    assert np.all(fit.component == 0)


def test_class_composition_reflects_a_class_aligned_attribute(planted, planted_mixture):
    _, truth, _ = planted
    attributes = truth.assign(camp=truth["true_class"].map({0: "zero", 1: "one", 2: "two"}),
                              coin=np.where(np.arange(len(truth)) % 2 == 0, "heads", "tails"))
    composition = prefs.class_composition(planted_mixture, attributes[["participant_id", "camp", "coin"]])
    camp = composition.shares("camp")
    assert np.allclose(camp.sum(axis=1), 1.0)
    # Each latent class is (almost) one planted camp; the coin is split about evenly in each.
    assert np.all(camp.max(axis=1) > 0.9)
    coin = composition.shares("coin")
    assert np.all(np.abs(coin["heads"] - 0.5) < 0.2)


def test_latent_classes_can_be_used_as_groups(planted, planted_mixture):
    comparisons, _, _ = planted
    attributes = prefs.latent_class_attributes(planted_mixture)
    fit = prefs.group_strengths(comparisons, attributes, "latent_class")
    assert set(fit.groups) == {"class_0", "class_1", "class_2"}


# --------------------------------------------------------------------------------------------------
# Wiser-than answers


def test_wiser_answers_become_comparisons():
    answers = pd.DataFrame(
        {
            "participant_id": [1, 1, 2, 3, 3],
            "from_id": [10, 11, 10, 10, 10],
            "to_id": [20, 21, 20, 20, 20],
            "context": ["c", "c", "c", "c", "c"],
            "answer": ["upgrade", "no_upgrade", "not_sure", "upgrade", "no_upgrade"],
            "created_at": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-01-01", "2024-01-01", "2024-02-01"]),
        }
    )
    out = prefs.comparisons_from_wiser(answers)
    assert list(out.columns) == ["participant_id", "item_a", "item_b", "winner", "context", "weight"]
    # Participant 3 changed their mind: only the later no_upgrade counts; not_sure is dropped.
    assert out.to_dict("records") == [
        {"participant_id": "1", "item_a": "10", "item_b": "20", "winner": "b", "context": "c", "weight": 1.0},
        {"participant_id": "1", "item_a": "11", "item_b": "21", "winner": "a", "context": "c", "weight": 0.5},
        {"participant_id": "3", "item_a": "10", "item_b": "20", "winner": "a", "context": "c", "weight": 0.5},
    ]
    no_context = prefs.comparisons_from_wiser(answers.assign(context=None))
    assert no_context["context"].tolist() == [None, None, None]
    ties = prefs.comparisons_from_wiser(answers, not_sure_weight=1.0)
    unsure = ties[ties["participant_id"] == "2"]
    assert sorted(unsure["winner"]) == ["a", "b"] and np.allclose(unsure["weight"], 0.5)


def test_bad_wiser_answer_is_rejected():
    answers = pd.DataFrame({"participant_id": [1], "from_id": [1], "to_id": [2], "context": ["c"],
                            "answer": ["maybe"], "created_at": [0]})
    with pytest.raises(PreferenceDataError, match="row 0 has answer 'maybe'"):
        prefs.comparisons_from_wiser(answers)


def _mge_answers() -> tuple[pd.DataFrame, pd.DataFrame]:
    if not MGE.is_dir():
        pytest.skip(f"shared MGE dataset not found at {MGE}")
    edges = pd.DataFrame(json.loads((MGE / "edge.json").read_text()))
    answers = edges.rename(columns={"userId": "participant_id", "fromId": "from_id", "toId": "to_id",
                                    "contextId": "context", "relationship": "answer",
                                    "createdAt": "created_at"})
    demographics = pd.DataFrame(json.loads((MGE / "demographic.json").read_text()))
    attributes = demographics.rename(columns={"userId": "participant_id"})[["participant_id",
                                                                            "usPoliticalAffiliation"]]
    attributes = attributes[attributes["usPoliticalAffiliation"].isin(["Democrat", "Republican", "Independent"])]
    return answers, attributes


def test_mge_study_answers_fit():
    answers, attributes = _mge_answers()
    comparisons = prefs.comparisons_from_wiser(answers)
    # 1,070 upgrades and 183 no_upgrades in the study dump; the 339 not_sure answers are dropped.
    assert len(comparisons) == 1253
    assert comparisons["weight"].sum() == pytest.approx(1070 + 0.5 * 183)
    fit = prefs.bradley_terry(comparisons)
    assert np.all(np.isfinite(fit.theta))
    assert len(fit.items) == 78  # canonical values that appear in some answer
    # Where the participants leaned clearly one way on a pair (net weight ≥ 2), the fit agrees.
    winner = np.where(comparisons["winner"] == "b", comparisons["item_b"], comparisons["item_a"])
    loser = np.where(comparisons["winner"] == "b", comparisons["item_a"], comparisons["item_b"])
    first = np.minimum(winner, loser)
    signed = np.where(winner == first, comparisons["weight"], -comparisons["weight"])
    net = pd.Series(signed).groupby([first, np.maximum(winner, loser)]).sum()
    clear = net[net.abs() >= 2]
    agree = [(fit.prob_beats(a, b) > 0.5) == (lean > 0) for (a, b), lean in clear.items()]
    assert len(clear) > 50 and np.mean(agree) > 0.9
    groups = prefs.group_strengths(comparisons, attributes, "usPoliticalAffiliation")
    assert set(groups.groups) == {"Democrat", "Independent", "Republican"}
    mixture = prefs.latent_mixture(comparisons, max_k=3, restarts=2, seed=0)
    doc = prefs.fit_to_json(mixture, groups)
    jsonschema.Draft202012Validator(json.loads(prefs.FIT_SCHEMA_PATH.read_text())).validate(doc)


# --------------------------------------------------------------------------------------------------
# Fit JSON and its schema


@pytest.fixture(scope="module")
def schema() -> dict:
    return json.loads(prefs.FIT_SCHEMA_PATH.read_text())


@pytest.fixture(scope="module")
def fit_doc(planted, planted_mixture) -> dict:
    comparisons, truth, _ = planted
    attributes = truth.assign(camp=np.where(truth["true_class"] == 0, "zero", "rest"))
    groups = prefs.group_strengths(comparisons, attributes[["participant_id", "camp"]], "camp")
    return prefs.fit_to_json(planted_mixture, groups)


def test_fit_json_validates_against_schema(schema, fit_doc, planted_mixture):
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(fit_doc)
    json.dumps(fit_doc)  # plain JSON types only
    assert fit_doc["k"] == 3
    assert set(fit_doc["bic"]) == {"1", "2", "3", "4", "5"}
    assert len(fit_doc["participants"]) == len(planted_mixture.participants)
    assert set(fit_doc["groups"]) == {"rest", "zero"} and fit_doc["group_by"] == "camp"
    first = fit_doc["components"][0]
    assert set(first["strengths"]) == set(fit_doc["items"])
    item = fit_doc["items"][0]
    assert first["lower"][item] < first["strengths"][item] < first["upper"][item]


def test_fit_json_with_bootstrap_intervals_validates(schema, planted, planted_mixture):
    comparisons, truth, _ = planted
    attributes = truth.assign(camp=np.where(truth["true_class"] == 0, "zero", "rest"))[["participant_id", "camp"]]
    groups = prefs.group_strengths(comparisons, attributes, "camp")
    ticks = []
    boot = prefs.bootstrap_strengths(comparisons, attributes, "camp", n_boot=8, seed=3,
                                     progress=lambda done, total: ticks.append((done, total)))
    assert ticks == [(b, 8) for b in range(1, 9)]
    doc = prefs.fit_to_json(planted_mixture, groups, bootstrap=boot)
    jsonschema.Draft202012Validator(schema).validate(doc)
    block = doc["bootstrap"]
    assert (block["n_boot"], block["seed"], block["by"]) == (8, 3, "camp")
    assert set(block["groups"]) == {"rest", "zero"}
    item = doc["items"][0]
    assert block["groups"]["zero"]["lower"][item] <= block["groups"]["zero"]["upper"][item]
    assert block["groups"]["zero"]["se"][item] > 0
    # the schema refuses a bootstrap block without its standard errors
    del block["pooled"]["se"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate(doc)


def test_fit_json_without_groups_validates(schema, planted_mixture):
    doc = prefs.fit_to_json(planted_mixture)
    jsonschema.Draft202012Validator(schema).validate(doc)
    assert "groups" not in doc


@pytest.mark.parametrize(
    "break_it",
    [
        lambda d: d.pop("k"),
        lambda d: d.__setitem__("surprise", 1),
        lambda d: d["participants"][0].pop("probs"),
        lambda d: d["components"][0].__setitem__("weight", 2.0),
        lambda d: d["groups"]["zero"].pop("n_participants"),
        lambda d: d.pop("group_by"),
        lambda d: d["bic"].__setitem__("two", 1.0),
    ],
)
def test_schema_rejects_drifted_documents(schema, fit_doc, break_it):
    doc = copy.deepcopy(fit_doc)
    break_it(doc)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate(doc)


def test_fit_preferences_validates_once_and_fits_the_pooled_model_once(monkeypatch):
    """One table, one validation, one pooled fit, for the latent classes, the groups and the bootstrap."""
    from workbench.prefs import fits

    comparisons, truth, _ = simulate_planted_classes(n_items=6, n_classes=2, n_comparisons=1200,
                                                     per_participant=(40, 60), seed=4)
    attributes = truth.assign(camp=truth["true_class"].map({0: "left", 1: "right"}))[["participant_id", "camp"]]
    calls = {"validate": 0, "pooled": 0}
    validate, pooled = fits.validate_comparisons, fits._pooled

    def counting_validate(*args, **kwargs):
        calls["validate"] += 1
        return validate(*args, **kwargs)

    def counting_pooled(*args, **kwargs):
        calls["pooled"] += 1
        return pooled(*args, **kwargs)

    monkeypatch.setattr(fits, "validate_comparisons", counting_validate)
    monkeypatch.setattr(fits, "_pooled", counting_pooled)
    fit = prefs.fit_preferences(comparisons, attributes, "camp", max_k=3, bootstrap=5)
    assert calls == {"validate": 1, "pooled": 1}
    assert fit.mixture.k == 2 and set(fit.groups.groups) == {"left", "right"} and fit.bootstrap.n_boot == 5
    assert fit.composition is not None and np.allclose(fit.pooled.theta, prefs.bradley_terry(comparisons).theta)
