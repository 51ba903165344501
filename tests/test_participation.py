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


def test_next_item_shows_the_planned_values_and_skips_one_merged_away(tmp_path, demo_spec):
    """A judging click reads only the values of the plan's unanswered items (`store.askable_values`): the
    item shown is the plan's first unanswered one with exactly its values, for store ids (wiser, endorse)
    and public ids (compare); an item whose value was merged away since planning is skipped."""
    import walk

    from workbench import config, ids
    from workbench import participation as P
    from workbench.demo import load_world, simulate
    from workbench.store import Store

    with Store(tmp_path / "rounds.duckdb") as store:
        store.import_bundle(simulate(demo_spec, load_world(config.DATA / "demo_values.yaml"), 12, seed=1))
        (pid, _), = store.create_invites("demo", 1)
        walk.to_card(store, pid)
        shown = {}
        for round_name in ("wiser", "endorse", "compare"):
            item = P.next_item(store, P.flow(store, pid), round_name)
            plan = P.flow(store, pid).plans[round_name]
            assert item.index == 0 and item.entry == plan[0] and item.total == len(plan)
            shown[round_name] = item
        wiser, endorse, compare = shown["wiser"], shown["endorse"], shown["compare"]
        assert [v["id"] for v in wiser.values] == [int(wiser.entry["from_id"]), int(wiser.entry["to_id"])]
        assert [v["id"] for v in endorse.values] == [int(endorse.entry)]
        assert [ids.public_id("value", v["id"], v["source_id"]) for v in compare.values] == [
            str(compare.entry["item_a"]), str(compare.entry["item_b"])]
        assert all(v["title"] and v["policies"] for item in shown.values() for v in item.values)

        # The value the first endorse item asks about is merged into another: that item is skipped.
        gone = int(endorse.entry)
        keeper = next(v for v in P.round_values(store, P.flow(store, pid))["id"] if int(v) != gone)
        store.merge_canonical_values([gone, int(keeper)], into=int(keeper))
        after = P.next_item(store, P.flow(store, pid), "endorse")
        plan = P.flow(store, pid).plans["endorse"]
        expected = next(i for i, entry in enumerate(plan) if int(entry) != gone)
        assert after.index == expected and [v["id"] for v in after.values] == [int(plan[expected])]
