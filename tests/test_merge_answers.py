"""'Are these two the same value?': answers and LLM verdicts as store events, what the dedup does with
them, the LLM confirmation step against the fake server over real HTTP, and the Moderation page."""

from __future__ import annotations

import json
import threading

import pytest
from apptest import staff_page
from argon2 import PasswordHasher
from fake_llm import (
    fake_llm_server,  # noqa: F401 - the fixture
    http_error_reply,
    json_card_reply,
    tool_call_reply,
)
from walk import same_value_round

from workbench import analyses, auth, config, errors
from workbench.demo import load_world, simulate
from workbench.embed import Embedder
from workbench.llm import SAME_VALUE_SYSTEM_PROMPT, VERDICT_TOOL_NAME, LlmConfig, LlmInterviewer
from workbench.store import Store, open_store

pytestmark = pytest.mark.both_backends


@pytest.fixture
def store(db_target):
    s = Store(db_target)
    s.import_bundle(simulate(load_spec(), load_world(config.DATA / "demo_values.yaml"), 30, seed=3))
    yield s
    s.close()


def load_spec():
    from workbench.deliberation import load_deliberation

    return load_deliberation(config.DEMO_DELIBERATION)


def three_cards_and_a_participant(store) -> tuple[int, int, int, int]:
    cards = store.cards("demo")
    a, b, c = (int(i) for i in cards["id"].iloc[:3])
    return a, b, c, int(store.participants("demo")["participant_id"].iloc[0])


# -- the store: the round's use-case -------------------------------------------------------------------


def test_an_answer_repeated_is_stored_once_and_the_last_answer_closes_the_round(store):
    a, b, c, who = three_cards_and_a_participant(store)
    store.plan_round(who, "same_value", [{"card_a": b, "card_b": a}, {"card_a": a, "card_b": c}])
    first = store.answer_same_value(who, 0, "same")
    assert store.answer_same_value(who, 0, "same") == first
    assert store.answer_same_value(who, 0, "different") == first, "a resent form finds the answer it sent first"
    stored = store.merge_judgements("demo", latest=False)
    assert list(stored["answer"]) == ["same"]
    assert (int(stored["card_a"].iloc[0]), int(stored["card_b"].iloc[0])) == (min(a, b), max(a, b))
    assert stored["participant_id"].tolist() == [who] and stored["source"].tolist() == ["participant"]
    steps = [s["step"] for s in store.steps(who)]
    assert "same_value" not in steps and store.answered_items(who, "same_value") == {0}
    store.answer_same_value(who, 1, "not_sure")
    assert [s["step"] for s in store.steps(who)].count("same_value") == 1, "the last answer closes the round"
    assert len(store.merge_judgements("demo", latest=False)) == 2


def test_the_same_answer_sent_twice_at_once_is_stored_once(store):
    a, b, _, who = three_cards_and_a_participant(store)
    store.plan_round(who, "same_value", [{"card_a": a, "card_b": b}])
    ids, barrier = [], threading.Barrier(4)

    def submit():
        barrier.wait()
        ids.append(store.answer_same_value(who, 0, "not_sure"))

    threads = [threading.Thread(target=submit) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ids) == 4 and len(set(ids)) == 1
    assert len(store.merge_judgements("demo", latest=False)) == 1
    assert [s["step"] for s in store.steps(who)].count("same_value") == 1


def test_bad_answers_name_the_problem_and_write_nothing(store):
    a, b, _, who = three_cards_and_a_participant(store)
    store.plan_round(who, "same_value", [{"card_a": a, "card_b": b}, {"card_a": a, "card_b": a}])
    with pytest.raises(errors.InputError, match="answer: Input should be 'same', 'different' or 'not_sure'"):
        store.answer_same_value(who, 0, "maybe")
    with pytest.raises(errors.InputError, match="card_b: must differ from card_a"):
        store.answer_same_value(who, 1, "same")
    with pytest.raises(errors.InputError, match="the same_value round of participant .* has 2 item"):
        store.answer_same_value(who, 2, "same")
    with pytest.raises(errors.NotFound, match="no participant 999999"):
        store.answer_same_value(999999, 0, "same")
    with pytest.raises(errors.InputError, match="round: must be one of wiser, endorse, compare, same_value"):
        store.plan_round(who, "same", [])
    assert store.merge_judgements("demo", latest=False).empty
    assert store.answered_items(who, "same_value") == set()


# -- what the dedup does with answers (real model on the demo cards) ---------------------------------


@pytest.mark.model
def test_participants_answers_decide_the_next_clustering(store):
    embedder = Embedder()
    run = analyses.deduplicate(store, "demo", embedder=embedder, use_llm=False)
    apart = next(c for c in run.result.candidates if not c.merged)
    together = next(c for c in run.result.candidates if c.merged)
    people = list(store.participants("demo")["participant_id"])[:3]
    for who in people:
        same_value_round(store, int(who), [(apart.card_a, apart.card_b, "same"),
                                           (together.card_a, together.card_b, "different")])
    again = analyses.deduplicate(store, "demo", embedder=embedder, use_llm=False)
    links = store.card_links("demo").set_index("card_id")["canonical_id"]
    assert links[apart.card_a] == links[apart.card_b]
    assert links[together.card_a] != links[together.card_b]
    assert again.embedded == 0, "answers change the decision, not the embeddings"
    decided = {(c.card_a, c.card_b): c.decided_by for c in again.result.candidates}
    assert decided.get((apart.card_a, apart.card_b), "participants") == "participants"
    # The run's result names cards and values by their public ids, as every analysis run does.
    stored = store.run(again.run_id)["result"]["candidates"]
    card_ids = store.id_map("demo", "card")
    assert stored and [(c["card_a"], c["card_b"]) for c in stored] == [
        (card_ids.public(c.card_a), card_ids.public(c.card_b)) for c in again.result.candidates[:len(stored)]]
    assert all(isinstance(c[k], str) for c in stored for k in ("value_a", "value_b"))
    # The facilitator's view lists the answered pairs with their tallies.
    questions = analyses.merge_questions(store, "demo", limit=50)
    row = questions[(questions["card_a"] == apart.card_a) & (questions["card_b"] == apart.card_b)]
    assert list(row["same"]) == [3] and list(row["different"]) == [0]
    # A participant is not asked again about a pair they answered.
    mine = analyses.merge_questions(store, "demo", participant_id=int(people[0]), limit=50)
    assert not ((mine["card_a"] == apart.card_a) & (mine["card_b"] == apart.card_b)).any()


# -- the LLM confirmation step, over real HTTP to the fake server -------------------------------------


def verdict(answer: str, reason: str = "They attend to the same things.") -> dict:
    return {"verdict": answer, "reason": reason}


@pytest.mark.model
def test_the_llm_judges_the_least_sure_merges_and_a_failure_falls_back(store, fake_llm):
    fake_llm.script(json_card_reply(verdict("same")),
                    tool_call_reply(verdict("different", "One is about safety, the other about honesty."),
                                    name=VERDICT_TOOL_NAME),
                    http_error_reply(503, "overloaded"))
    llm = LlmInterviewer(LlmConfig(base_url=fake_llm.base_url, model="judge-1", api_key="sk-secret"))
    run = analyses.deduplicate(store, "demo", llm=llm, llm_pairs=5)
    assert (run.llm_asked, run.llm_answered) == (3, 2)
    assert "http_status" in run.llm_error and "503" in run.llm_error
    assert store.run(run.run_id)["status"] == "done", "an LLM failure does not fail the clustering"
    assert store.run(run.run_id)["result"]["llm"] == {"asked": 3, "answered": 2, "error": run.llm_error}
    assert "judged 2 of 3 uncertain merges, then failed (http_status" in analyses.dedup_llm_note(store, "demo")

    request = fake_llm.requests[0]
    assert request.system_prompt == SAME_VALUE_SYSTEM_PROMPT.format(tool=VERDICT_TOOL_NAME)
    assert request.json["model"] == "judge-1"
    assert request.json["response_format"]["json_schema"]["name"] == "same_value_verdict"
    assert request.headers["authorization"] == "Bearer sk-secret"
    assert "Card A:" in request.messages[-1]["content"] and "Card B:" in request.messages[-1]["content"]

    verdicts = store.merge_judgements("demo")
    assert list(verdicts["source"]) == ["llm", "llm"] and list(verdicts["model"]) == ["judge-1", "judge-1"]
    same, different = verdicts.iloc[0], verdicts.iloc[1]
    assert list(verdicts["answer"]) == ["same", "different"]
    assert different["reason"].startswith("One is about safety")
    links = store.card_links("demo").set_index("card_id")["canonical_id"]
    assert links[same["card_a"]] == links[same["card_b"]]
    assert links[different["card_a"]] != links[different["card_b"]]

    # The next run does not ask again about pairs already judged; it asks about the next least sure.
    fake_llm.script(json_card_reply(verdict("not_sure")))
    second = analyses.deduplicate(store, "demo", llm=llm, llm_pairs=1)
    assert (second.llm_asked, second.llm_answered, second.llm_error) == (1, 1, None)
    pairs = store.merge_judgements("demo")[["card_a", "card_b"]].apply(tuple, axis=1)
    assert pairs.is_unique


@pytest.mark.model
def test_the_llm_from_the_environment_and_unparseable_verdicts_fall_back(store, fake_llm, monkeypatch):
    monkeypatch.setenv("WORKBENCH_LLM_BASE_URL", fake_llm.base_url)
    monkeypatch.setenv("WORKBENCH_LLM_MODEL", "env-judge")
    fake_llm.script(json_card_reply(json.dumps({"verdict": "perhaps", "reason": "?"})))
    run = analyses.deduplicate(store, "demo", llm_pairs=3)
    assert run.llm_asked == 1 and run.llm_answered == 0 and run.llm_error.startswith("schema")
    assert store.merge_judgements("demo").empty
    # --no-llm (use_llm=False) never calls it.
    before = len(fake_llm.requests)
    assert analyses.deduplicate(store, "demo", use_llm=False).llm_asked == 0
    assert len(fake_llm.requests) == before


# -- the Moderation page ------------------------------------------------------------------------------


@pytest.mark.model
def test_moderation_page_lists_the_least_sure_merges_with_answers(tmp_path, monkeypatch):
    path = tmp_path / "staff.duckdb"
    monkeypatch.setenv("WORKBENCH_DB", str(path))
    monkeypatch.delenv("WORKBENCH_LLM_BASE_URL", raising=False)
    monkeypatch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    monkeypatch.setattr(auth, "_dummy_hash", None)
    s = open_store(path)
    s.import_bundle(simulate(load_spec(), load_world(config.DATA / "demo_values.yaml"), 30, seed=3))
    auth.create_user(s, "fran", "facilitator", "facilitator pass 1")
    run = analyses.deduplicate(s, "demo", use_llm=False)
    pair = run.result.candidates[0]
    who = int(s.participants("demo")["participant_id"].iloc[0])
    same_value_round(s, who, [(pair.card_a, pair.card_b, "different")])
    at = staff_page(s, "fran", "facilitator pass 1", "views/facilitator_moderation.py")
    assert any(h.value == "Merges the workbench is least sure of" for h in at.subheader)
    table = next(d.value for d in at.dataframe if "p(same)" in d.value.columns)
    card_ids = s.id_map("demo", "card")  # the page names cards by their public ids
    row = table[(table["card_a"] == card_ids.public(pair.card_a)) & (table["card_b"] == card_ids.public(pair.card_b))]
    assert list(row["different"]) == [1]
    assert table["p(same)"].between(0, 1).all()
