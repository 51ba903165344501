"""The optional "Are these two the same value?" round on the participant page, and what it changes.

Under AppTest on the demo data clustered with the real model: the round asks about the candidate
merges the latest clustering is least sure of, shows both cards side by side as text, records one
answer per click (a refresh after each answer asks the next pair and stores nothing twice), can be
skipped, and ends on "Thank you". On real MGE cards (a subset of ../shared/datasets/mge-dft, imported
as `workbench import mge` does): the pairs the round plans, answered against the model's decision,
decide the next clustering.
"""

from __future__ import annotations

import dataclasses

import pytest
from apptest import button, step_text, visit
from walk import to_card

from workbench import analyses
from workbench import participation as P
from workbench.embed import Embedder
from workbench.io.mge import mge_bundle, read_mge_dump
from workbench.store import Store


@pytest.fixture(scope="module")
def embedder():
    return Embedder()


def at_the_round(store, pid: int) -> None:
    """A participant with a card who answered (here: closed) the three rounds before this one."""
    to_card(store, pid)
    for round_name in ("wiser", "endorse", "compare"):
        store.finish_round(pid, round_name)


def shown(at) -> str:
    return " ".join(m.value for m in at.markdown).replace("\\", "")


@pytest.mark.model
def test_the_round_asks_the_least_sure_pairs_once_each_across_refreshes(demo_db, embedder):
    run = analyses.deduplicate(demo_db, "demo", embedder=embedder, use_llm=False)
    assert len(run.result.candidates) >= 2
    (pid, token), = demo_db.create_invites("demo", 1)
    at_the_round(demo_db, pid)
    at = visit(invite=token)
    assert "Step 8 of 9: Are these the same value?" in step_text(at)
    plan = next(s["payload"]["items"] for s in demo_db.steps(pid) if s["step"] == "plan:same_value")
    least_sure = analyses.merge_questions(demo_db, "demo", participant_id=pid, limit=3)
    assert [(p["card_a"], p["card_b"]) for p in plan] == list(zip(least_sure["card_a"], least_sure["card_b"],
                                                                     strict=True))
    cards = demo_db.cards("demo").set_index("id")
    for item, pair in enumerate(plan):
        assert f"Pair {item + 1} of {len(plan)}" in " ".join(m.value for m in at.markdown)
        for card in (pair["card_a"], pair["card_b"]):  # both cards, as text, side by side
            assert cards.loc[card, "title"] in shown(at)
        assert [c.value for c in at.caption][:2] == ["First card", "Second card"] or \
            {"First card", "Second card"} <= {c.value for c in at.caption}
        answer = ("Same value", "Different values", "Not sure")[item % 3]
        button(at, answer).click().run()
        assert not at.exception, at.exception
        stored = demo_db.merge_judgements("demo", latest=False)
        assert len(stored) == item + 1, "one click, one answer"
        at = visit(invite=token)  # a refresh: the next pair, nothing stored again
        assert len(demo_db.merge_judgements("demo", latest=False)) == item + 1
    assert "Step 9 of 9: Thank you" in step_text(at)
    stored = demo_db.merge_judgements("demo", latest=False)
    assert list(stored["answer"]) == [("same", "different", "not_sure")[i % 3] for i in range(len(plan))]
    assert [(a, b) for a, b in zip(stored["card_a"], stored["card_b"], strict=True)] == \
        [tuple(sorted((p["card_a"], p["card_b"]))) for p in plan]
    steps = [s["step"] for s in demo_db.steps(pid)]
    assert steps.count("same_value") == 1 and steps.count("plan:same_value") == 1
    # The facilitator's view tallies them; a second participant is not asked about nothing new.
    tally = analyses.merge_questions(demo_db, "demo", limit=50)
    first = tally[(tally["card_a"] == min(plan[0]["card_a"], plan[0]["card_b"]))
                  & (tally["card_b"] == max(plan[0]["card_a"], plan[0]["card_b"]))]
    assert list(first["same"]) == [1]


@pytest.mark.model
def test_the_round_can_be_skipped(demo_db, embedder):
    analyses.deduplicate(demo_db, "demo", embedder=embedder, use_llm=False)
    (pid, token), = demo_db.create_invites("demo", 1)
    at_the_round(demo_db, pid)
    at = visit(invite=token)
    assert "Step 8 of 9" in step_text(at)
    button(at, "Skip these questions").click().run()
    assert "Step 9 of 9: Thank you" in step_text(visit(invite=token))
    assert demo_db.merge_judgements("demo").empty
    assert [s["step"] for s in demo_db.steps(pid)].count("same_value") == 1


def test_without_a_clustering_the_round_is_passed_over(demo_db):
    (pid, token), = demo_db.create_invites("demo", 1)
    at_the_round(demo_db, pid)
    assert "Step 9 of 9: Thank you" in step_text(visit(invite=token))
    assert next(s["payload"]["items"] for s in demo_db.steps(pid) if s["step"] == "plan:same_value") == []


# -- real cards: the answers decide the next clustering -------------------------------------------------

#: Study card ids: near-duplicates the tests of workbench.dedup know (352/483, 91/586, 114/223), two
#: unrelated cards (109, 646), and the first 16 valid cards of the dump.
MGE_CARDS = [352, 483, 91, 586, 114, 223, 109, 646]


@pytest.mark.model
def test_answers_on_real_mge_cards_change_the_decision(shared_datasets, tmp_path, embedder):
    dump = read_mge_dump(shared_datasets / "mge-dft")
    valid = dump.cards[dump.cards["quality"] != "invalid"].sort_values("id")
    chosen = valid[valid["id"].isin(MGE_CARDS) | valid["id"].isin(valid["id"].head(16))]
    store = Store(tmp_path / "mge.duckdb")
    store.import_bundle(mge_bundle(dataclasses.replace(dump, cards=chosen), deliberation_id="mge"))
    first = analyses.deduplicate(store, "mge", embedder=embedder, use_llm=False)
    decided = {(c.card_a, c.card_b): c.merged for c in first.result.candidates}
    # Two participants of the study get the round; it plans the pairs the model is least sure of.
    people = [int(p) for p in store.participants("mge")["participant_id"].iloc[:2]]
    plans = []
    for who in people:
        flow = P.flow(store, who)
        P.next_item(store, flow, "same_value", P.round_cards(store, flow))
        plans.append(P.flow(store, who).plans["same_value"])
    assert plans[0] == plans[1] and len(plans[0]) == 3
    pairs = [(p["card_a"], p["card_b"]) for p in plans[0]]
    assert [(c.card_a, c.card_b) for c in first.result.candidates[:3]] == pairs
    assert any(decided[p] for p in pairs) and not all(decided[p] for p in pairs), "both kinds of decision"
    # Each answers every pair against the model's decision.
    for who in people:
        for item, pair in enumerate(pairs):
            store.answer_same_value(who, item, "different" if decided[pair] else "same")
    again = analyses.deduplicate(store, "mge", embedder=embedder, use_llm=False)
    assert again.embedded == 0
    value = again.result.assignment
    for pair in pairs:
        assert (value[pair[0]] == value[pair[1]]) is not decided[pair], pair
    after = {(c.card_a, c.card_b): c for c in again.result.candidates}
    assert all(after[p].decided_by == "participants" for p in pairs if p in after)
    # The stored clustering follows: the cards' links in the store.
    links = store.card_links("mge").set_index("card_id")["canonical_id"]
    for pair in pairs:
        assert (links[pair[0]] == links[pair[1]]) is not decided[pair]
