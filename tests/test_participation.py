"""Choosing what to ask in the judging rounds: under-answered first, both directions, informative pairs."""

from __future__ import annotations

import pandas as pd

from workbench.participation import plan_compare, plan_endorse, plan_wiser

VALUES = pd.DataFrame({
    "id": [1, 2, 3, 4],
    "title": ["Informed Choice", "Informed Personal Choice", "Family Bonds", "Medical Facts"],
    "description": ["options", "options for the person", "family", "facts"],
    "policies": [["OPTIONS the person may not know"], ["OPTIONS the person may not know about"],
                 ["BONDS that survive a disclosure"], ["FACTS about each option"]],
    "contexts": [["A"], ["A"], ["A", "B"], ["B"]],
})


def answers(rows):
    return pd.DataFrame(rows, columns=["from_id", "to_id", "context"])


def test_wiser_pairs_share_a_context_and_under_answered_come_first():
    plan = plan_wiser(VALUES, answers([]), 3, seed=0, question_contexts=["A", "B"])
    pairs = {frozenset((p["from_id"], p["to_id"])) for p in plan}
    assert len(plan) == 3 and len(pairs) == 3
    for p in plan:  # every pair shares the context it is asked in
        shared = set(VALUES.set_index("id").loc[p["from_id"], "contexts"]) & set(
            VALUES.set_index("id").loc[p["to_id"], "contexts"])
        assert p["context"] in shared
    assert frozenset((1, 4)) not in pairs  # no context in common
    # Pair 1-2 is the most similar, but once answered a lot, fresh pairs are asked first.
    busy = answers([(1, 2, "A")] * 5 + [(2, 1, "A")] * 5)
    assert frozenset((1, 2)) not in {frozenset((p["from_id"], p["to_id"])) for p in
                                     plan_wiser(VALUES, busy, 2, seed=0, question_contexts=["A", "B"])}


def test_wiser_asks_the_direction_with_fewer_answers():
    one_way = answers([(1, 3, "A")] * 3)
    plan = plan_wiser(VALUES[VALUES["id"].isin([1, 3])], one_way, 1, seed=0, question_contexts=["A"])
    assert plan == [{"from_id": 3, "to_id": 1, "context": "A"}]


def test_endorse_fewest_answers_first_and_never_ones_own_value():
    plan = plan_endorse(VALUES, {1: 9, 2: 0, 3: 4, 4: 1}, 3, seed=0, exclude={2})
    assert plan == [4, 3, 1]


def test_compare_prefers_uncovered_then_uncertain_pairs():
    values = VALUES.assign(item=VALUES["id"].astype(str))
    counts = pd.DataFrame({"a": ["1"], "b": ["2"], "answers": [10]})
    strengths = {"1": 0.0, "2": 0.1, "3": 2.0, "4": 0.05}
    plan = plan_compare(values, counts, 2, seed=0, strengths=strengths)
    first = frozenset((plan[0]["item_a"], plan[0]["item_b"]))
    assert first == frozenset(("1", "4"))  # never asked, and the closest in strength
    assert frozenset(("1", "2")) not in {frozenset((p["item_a"], p["item_b"])) for p in plan}
