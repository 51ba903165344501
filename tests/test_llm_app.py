"""The LLM interviewer inside the participant page, against a local fake OpenAI-compatible server
over real HTTP: a chat that drafts a card, and a failure that drops into the guided flow with
everything the participant wrote kept."""

from __future__ import annotations

import pytest
from apptest import participant_page as visit
from fake_llm import (
    fake_llm_server,  # noqa: F401 - the fixture
    json_card_reply,
    malformed_json_reply,
    text_reply,
)
from walk import to_question

from workbench import config
from workbench.models import ValuesCardIn, validated
from workbench.store import open_store

APP = str(config.APP)


@pytest.fixture
def at_interview(tmp_path, monkeypatch, demo_spec, fake_llm):
    path = tmp_path / "llm.duckdb"
    monkeypatch.setenv("WORKBENCH_DB", str(path))
    monkeypatch.setenv("WORKBENCH_LLM_BASE_URL", fake_llm.base_url)
    monkeypatch.setenv("WORKBENCH_LLM_MODEL", "fake-model")
    monkeypatch.setenv("WORKBENCH_LLM_API_KEY", "sk-test-secret")
    monkeypatch.setenv("WORKBENCH_LLM_TIMEOUT", "5")
    store = open_store(path)
    store.save_deliberation(demo_spec)
    (pid, token), = store.create_invites("demo", 1)
    to_question(store, pid, "demo/homework", mode="llm")
    return store, pid, token, fake_llm




CARD = {"title": "Listening Before Pushing", "description": "Hearing what the refusal says before insisting.",
        "policies": ["MOMENTS when the child asks their own questions", "SIGNS of exhaustion after school",
                     "FRUSTRATIONS the child cannot yet put into words"]}


def test_chat_interview_drafts_a_card_through_structured_output(at_interview):
    store, pid, token, fake = at_interview
    fake.script(text_reply("Hello! Can you tell me about a time homework turned into a fight?"),
                text_reply("That sounds hard. What did you notice in your son then?"),
                text_reply("Thank you. What mattered most to you in that moment?"),
                json_card_reply(CARD))
    at = visit(token)
    assert len(at.chat_message) == 1 and "homework turned into a fight" in at.chat_message[0].text[0].value
    at.chat_input[0].set_value("My son cried over maths every evening.").run()
    at.chat_input[0].set_value("He was exhausted and asked his own questions when calm.").run()
    at = visit(token)
    assert len(store.transcript(int(store.current_interview(pid)["id"]))) == 5
    next(b for b in at.button if b.label == "Draft my card from this conversation").click().run()
    at = visit(token)
    # The drafted card lands in the guided flow's later stages for the participant to check.
    assert at.subheader[0].value == "Where it matters"
    requests = fake.requests
    assert requests[0].headers.get("authorization") == "Bearer sk-test-secret"
    assert requests[-1].json["model"] == "fake-model"
    assert requests[-1].json["response_format"]["type"] == "json_schema"


def test_malformed_output_falls_back_to_the_guided_flow_keeping_everything(at_interview):
    store, pid, token, fake = at_interview
    fake.script(text_reply("Hello! Can you tell me about a time homework turned into a fight?"),
                text_reply("What did you notice then?"),
                text_reply("And what mattered most?"),
                malformed_json_reply())
    at = visit(token)
    at.chat_input[0].set_value("It should help the parent understand the child first.").run()
    at.chat_input[0].set_value("My son was exhausted after school and I noticed his own questions.").run()
    at = visit(token)
    next(b for b in at.button if b.label == "Draft my card from this conversation").click().run()
    assert any("switched to the step-by-step form" in w.value for w in at.warning)
    at = visit(token)
    interview = store.current_interview(pid)
    assert interview["mode"] == "guided"
    assert any(m["role"] == "error" for m in store.transcript(int(interview["id"])))
    assert at.subheader[0].value == "Your answer"
    assert "understand the child first" in at.text_area[0].value


def test_unreachable_endpoint_falls_back_at_once(at_interview, monkeypatch):
    store, pid, token, fake = at_interview
    monkeypatch.setenv("WORKBENCH_LLM_BASE_URL", "http://127.0.0.1:9/v1")  # nothing listens there
    at = visit(token)
    at = visit(token)
    assert store.current_interview(pid)["mode"] == "guided"
    assert at.subheader[0].value == "Your answer"


def test_the_wiser_round_tells_the_llm_story_when_one_is_configured(at_interview, demo_spec):
    from workbench.demo import load_world, simulate

    store, pid, token, fake = at_interview
    store.import_bundle(simulate(demo_spec, load_world(config.DATA / "demo_values.yaml"), 9, seed=1), merge=True)
    interview = int(store.current_interview(pid)["id"])
    card = validated(ValuesCardIn, {
        "title": "Listening Before Pushing", "description": "Hearing the refusal first.",
        "policies": ["MOMENTS when the child asks questions", "SIGNS of exhaustion"],
        "question_id": "demo/homework", "contexts": ["When a child's wellbeing is at stake"]})
    store.continue_guided(pid, interview)
    store.confirm_card(pid, interview, card, {})
    fake.script(text_reply("Dana used to insist on routines, until she saw her son's exhaustion."))
    at = visit(token)
    assert any("Dana used to insist on routines" in t.value for t in at.text)
    assert fake.requests[-1].json["model"] == "fake-model"
