"""The optional "Are these two the same value?" round on the participant page, and what it changes.

On real MGE cards (a subset of ../shared/datasets/mge-dft imported as `workbench import mge` does,
clustered with the real model): under AppTest the round asks about the candidate merges the model is
least sure of, shows both cards side by side as text, records one answer per click (a refresh after
each answer asks the next pair and stores nothing twice), can be skipped, and ends on "Thank you";
the pairs it plans, answered against the model's decision, decide the next clustering. Where the model
is sure of every merge (the demo's simulated cards are copies of a few values) there is nothing to ask
and the round is passed over.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pandas as pd
import pytest
from apptest import button, step_text, visit
from typer.testing import CliRunner
from walk import card_in, to_card

from workbench import analyses
from workbench import participation as P
from workbench.cli import app
from workbench.embed import Embedder
from workbench.io.mge import mge_bundle, read_mge_dump
from workbench.store import Store, open_store

#: Study card ids: near-duplicates the tests of workbench.dedup know (352/483, 91/586, 114/223), two
#: unrelated cards (109, 646), and the first 16 valid cards of the dump.
MGE_CARDS = [352, 483, 91, 586, 114, 223, 109, 646]
QUESTION = "mge/parenting"


@pytest.fixture(scope="module")
def embedder():
    return Embedder()


def mge_round_db(path: Path, shared_datasets: Path, embedder: Embedder) -> Path:
    """A DuckDB file at `path` holding the MGE subset as deliberation "mge", clustered once (closed again)."""
    dump = read_mge_dump(shared_datasets / "mge-dft")
    valid = dump.cards[dump.cards["quality"] != "invalid"].sort_values("id")
    chosen = valid[valid["id"].isin(MGE_CARDS) | valid["id"].isin(valid["id"].head(16))]
    with Store(path) as store:
        store.import_bundle(mge_bundle(dataclasses.replace(dump, cards=chosen), deliberation_id="mge"))
        analyses.deduplicate(store, "mge", embedder=embedder, use_llm=False)
    return path


@pytest.fixture(scope="module")
def clustered(tmp_path_factory, embedder) -> Path:
    from conftest import SHARED_DATASETS

    if not SHARED_DATASETS.is_dir():
        pytest.skip(f"shared datasets not found at {SHARED_DATASETS}")
    return mge_round_db(tmp_path_factory.mktemp("mge") / "mge.duckdb", SHARED_DATASETS, embedder)


@pytest.fixture
def mge_db(clustered, tmp_path, monkeypatch):
    """The app's store (WORKBENCH_DB) on a copy of the clustered MGE subset."""
    path = tmp_path / "app.duckdb"
    shutil.copy(clustered, path)
    monkeypatch.setenv("WORKBENCH_DB", str(path))
    monkeypatch.delenv("WORKBENCH_LLM_BASE_URL", raising=False)
    return open_store(path)


def at_the_round(store, pid: int) -> None:
    """A participant with a card who answered (here: closed) the three rounds before this one."""
    to_card(store, pid, card_in(question_id=QUESTION, contexts=["When seeking clarity"]))
    for round_name in ("wiser", "endorse", "compare"):
        store.finish_round(pid, round_name)


def open_the_round(store) -> tuple[int, str, object]:
    """A new invited participant at the round, and their page opened on it: (participant id, token, page)."""
    (pid, token), = store.create_invites("mge", 1)
    at_the_round(store, pid)
    at = visit(invite=token)
    assert "Step 8 of 10: Are these the same value?" in step_text(at)
    return pid, token, at


def shown(at) -> str:
    return " ".join(m.value for m in at.markdown).replace("\\", "")


@pytest.mark.model
def test_the_round_asks_the_least_sure_pairs_once_each_across_refreshes(mge_db):
    pid, token, at = open_the_round(mge_db)
    plan = next(s["payload"]["items"] for s in mge_db.steps(pid) if s["step"] == "plan:same_value")
    run = mge_db.run(int(mge_db.runs(deliberation_id="mge", kind="dedup").iloc[0]["id"]))["result"]
    unsure = [c for c in run["candidates"] if 0.1 <= c["probability"] <= 0.9]
    card_ids = mge_db.id_map("mge", "card")
    assert [(card_ids.public(p["card_a"]), card_ids.public(p["card_b"])) for p in plan] == \
        [(c["card_a"], c["card_b"]) for c in unsure[:3]], "the least sure first, only those the model is unsure of"
    assert len(plan) >= 2
    cards = mge_db.cards("mge").set_index("id")
    for item, pair in enumerate(plan):
        assert f"Pair {item + 1} of {len(plan)}" in " ".join(m.value for m in at.markdown)
        for card in (pair["card_a"], pair["card_b"]):  # both cards, as text, side by side
            assert cards.loc[card, "title"] in shown(at)
        assert {"First card", "Second card"} <= {c.value for c in at.caption}
        answer = ("Same value", "Different values", "Not sure")[item % 3]
        button(at, answer).click().run()
        assert not at.exception, at.exception
        stored = mge_db.merge_judgements("mge", latest=False)
        assert len(stored) == item + 1, "one click, one answer"
        at = visit(invite=token)  # a refresh: the next pair, nothing stored again
        assert len(mge_db.merge_judgements("mge", latest=False)) == item + 1
    assert "Step 9 of 10: Where you sit" in step_text(at)
    stored = mge_db.merge_judgements("mge", latest=False)
    assert list(stored["answer"]) == [("same", "different", "not_sure")[i % 3] for i in range(len(plan))]
    assert [(a, b) for a, b in zip(stored["card_a"], stored["card_b"], strict=True)] == \
        [tuple(sorted((p["card_a"], p["card_b"]))) for p in plan]
    steps = [s["step"] for s in mge_db.steps(pid)]
    assert steps.count("same_value") == 1 and steps.count("plan:same_value") == 1
    assert (mge_db.activity("mge")["kind"] == "same_value").sum() == len(plan)  # the Progress page's count
    # The facilitator's view tallies them.
    tally = analyses.merge_questions(mge_db, "mge", limit=50)
    first = tally[(tally["card_a"] == min(plan[0]["card_a"], plan[0]["card_b"]))
                  & (tally["card_b"] == max(plan[0]["card_a"], plan[0]["card_b"]))]
    assert list(first["same"]) == [1]


@pytest.mark.model
def test_the_round_can_be_skipped(mge_db):
    pid, token, at = open_the_round(mge_db)
    button(at, "Skip these questions").click().run()
    assert "Step 9 of 10: Where you sit" in step_text(visit(invite=token))
    assert mge_db.merge_judgements("mge").empty
    assert [s["step"] for s in mge_db.steps(pid)].count("same_value") == 1


@pytest.mark.model
def test_where_the_model_is_sure_of_every_merge_the_round_is_passed_over(demo_db, embedder):
    run = analyses.deduplicate(demo_db, "demo", embedder=embedder, use_llm=False)
    assert run.result.candidates and all(not 0.1 <= c.probability <= 0.9 for c in run.result.candidates)
    (pid, token), = demo_db.create_invites("demo", 1)
    to_card(demo_db, pid)
    for round_name in ("wiser", "endorse", "compare"):
        demo_db.finish_round(pid, round_name)
    assert "Step 9 of 10: Where you sit" in step_text(visit(invite=token))
    assert next(s["payload"]["items"] for s in demo_db.steps(pid) if s["step"] == "plan:same_value") == []


# -- real cards: the answers decide the next clustering -------------------------------------------------

@pytest.mark.model
def test_answers_on_real_mge_cards_change_the_decision(mge_db, embedder):
    store = mge_db
    first = analyses.deduplicate(store, "mge", embedder=embedder, use_llm=False)  # as the fixture's run
    assert first.embedded == 0
    decided = {(c.card_a, c.card_b): c.merged for c in first.result.candidates}
    # Two participants of the study get the round; it plans the pairs the model is least sure of.
    people = [int(p) for p in store.participants("mge")["participant_id"].iloc[:2]]
    plans = []
    for who in people:
        flow = P.flow(store, who)
        P.next_item(store, flow, "same_value")
        plans.append(P.flow(store, who).plans["same_value"])
    assert plans[0] == plans[1] and len(plans[0]) >= 2
    pairs = [(p["card_a"], p["card_b"]) for p in plans[0]]
    assert [(c.card_a, c.card_b) for c in first.result.candidates[:len(pairs)]] == pairs
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


# -- after an MGE import, cards join the imported values they match --------------------------------------


@pytest.mark.model
def test_after_an_mge_import_cards_join_the_imported_values_they_copy(mge_db, tmp_path):
    values = mge_db.id_map("mge", "value")
    cards = mge_db.cards("mge").assign(public=lambda f: mge_db.id_map("mge", "card").publics(f["id"]))
    value_of = dict(zip(cards["public"], [values.public(v) for v in cards["canonical_id"]], strict=True))
    # Study cards 352 and 483 copy the canonical "Nurturing Discipline" (315), 91 and 586 "Thorough
    # Evaluation" (286), 114 and 223 "Truth Seeking" (298): they join those imported values, by their ids.
    assert value_of["352"] == value_of["483"] == "315"
    assert value_of["91"] == value_of["586"] == "286"
    assert value_of["114"] == value_of["223"] == "298"
    imported = mge_db.canonical_values("mge")
    imported = imported[imported["origin"] == "import"].set_index("source_id")
    assert imported.loc["315", "title"] == "Nurturing Discipline" and imported.loc["315", "members"] == 2
    assert len(imported) == 115, "no imported value is retired or rewritten"
    # What a researcher exports: the cards name the study's value ids.
    mge_db.close()
    out = tmp_path / "cards"
    result = CliRunner().invoke(app, ["export", "--db", str(tmp_path / "app.duckdb"), "-d", "mge", "--what", "cards",
                                      "--format", "csv", "--out", str(out)])
    assert result.exit_code == 0, result.output
    exported = pd.read_csv(out / "cards.csv", dtype=str).set_index("card_id")
    assert exported.loc["483", "value_id"] == "315" and exported.loc["483", "value_title"] == "Nurturing Discipline"
