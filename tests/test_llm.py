"""The LLM interviewer against a real local fake server: a scripted interview and every failure mode."""

from __future__ import annotations

import logging
import socket

import pytest
from fake_llm import (  # noqa: F401 (fake_llm_server registers the fake_llm fixture)
    FakeLlm,
    content_filter_reply,
    fake_llm_server,
    http_error_reply,
    json_card_reply,
    malformed_json_reply,
    not_json_reply,
    refusal_reply,
    slow_reply,
    text_reply,
    tool_call_reply,
)

from workbench.cardcheck import ValuesCard, check_card
from workbench.llm import (
    CARD_READY_MARKER,
    CARD_TOOL_NAME,
    DEFAULT_TIMEOUT,
    LlmConfig,
    LlmConfigError,
    LlmInterviewer,
    LlmUnavailable,
    TranscriptError,
)

API_KEY = "sk-test-abc123secret"
QUESTION = "I am a Christian girl and am considering getting an abortion — what should I do?"
CARD = {
    "title": "Compassionate Informed Choice",
    "description": "Helping someone see their options clearly while honouring their faith and fears.",
    "policies": [
        "FEARS that sit behind the question",
        "OPTIONS the person may have yet to hear about",
        "MOMENTS when faith and the decision pull in different directions",
    ],
}


def interviewer(fake: FakeLlm, timeout: float = 5.0, api_key: str | None = API_KEY) -> LlmInterviewer:
    config = LlmConfig(base_url=fake.base_url, model="test-model", api_key=api_key, timeout=timeout)
    return LlmInterviewer(config, question=QUESTION)


# --- configuration --------------------------------------------------------------------------------


def test_config_from_env() -> None:
    assert LlmConfig.from_env({}) is None
    assert LlmConfig.from_env({"WORKBENCH_LLM_BASE_URL": "  ", "WORKBENCH_LLM_MODEL": "m"}) is None
    config = LlmConfig.from_env(
        {
            "WORKBENCH_LLM_BASE_URL": "http://localhost:11434/v1/",
            "WORKBENCH_LLM_MODEL": "llama3.2",
            "WORKBENCH_LLM_API_KEY": API_KEY,
            "WORKBENCH_LLM_TIMEOUT": "12.5",
        }
    )
    assert config == LlmConfig("http://localhost:11434/v1", "llama3.2", API_KEY, 12.5)
    assert config.completions_url == "http://localhost:11434/v1/chat/completions"
    default = LlmConfig.from_env({"WORKBENCH_LLM_BASE_URL": "http://x/v1", "WORKBENCH_LLM_MODEL": "m"})
    assert default.timeout == DEFAULT_TIMEOUT == 30 and default.api_key is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WORKBENCH_LLM_BASE_URL": "http://x/v1"}, "WORKBENCH_LLM_MODEL"),
        ({"WORKBENCH_LLM_BASE_URL": "localhost:11434", "WORKBENCH_LLM_MODEL": "m"}, "http://"),
        (
            {
                "WORKBENCH_LLM_BASE_URL": "http://x",
                "WORKBENCH_LLM_MODEL": "m",
                "WORKBENCH_LLM_TIMEOUT": "soon",
            },
            "number",
        ),
        (
            {"WORKBENCH_LLM_BASE_URL": "http://x", "WORKBENCH_LLM_MODEL": "m", "WORKBENCH_LLM_TIMEOUT": "0"},
            "positive",
        ),
    ],
)
def test_bad_config_names_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(LlmConfigError, match=message):
        LlmConfig.from_env(env)


def test_the_api_key_never_shows_in_reprs() -> None:
    config = LlmConfig("http://x/v1", "m", API_KEY)
    assert API_KEY not in repr(config) and API_KEY not in str(config)
    assert API_KEY not in repr(LlmInterviewer(config))


# --- a full interview -----------------------------------------------------------------------------


def test_a_scripted_interview_ends_in_a_valid_card(fake_llm: FakeLlm) -> None:
    fake_llm.script(
        text_reply("Hello, and thank you for being here. How do you think an assistant should respond?"),
        text_reply("Thank you. Is there a time in your own life this question brings to mind?"),
        text_reply("That sounds hard. In that moment, what were you paying attention to?"),
        text_reply(f"I think I could draft a short card for you to check.\n{CARD_READY_MARKER}"),
        json_card_reply(CARD),
    )
    bot = interviewer(fake_llm)
    transcript: list[dict[str, str]] = []
    answers = [
        "It should listen and lay out the options without judging.",
        "My cousin faced this. I noticed how scared she was of her church finding out.",
        "Whether she had someone to talk to, and what she actually knew about her options.",
    ]
    turn = bot.reply(transcript)
    for answer in answers:
        assert not turn.card_ready
        transcript += [{"role": "assistant", "content": turn.message}, {"role": "user", "content": answer}]
        turn = bot.reply(transcript)
    assert turn.card_ready
    assert CARD_READY_MARKER not in turn.message and turn.message.startswith("I think I could draft")
    transcript.append({"role": "assistant", "content": turn.message})

    card = bot.propose_card(transcript)
    assert card == ValuesCard(CARD["title"], CARD["description"], tuple(CARD["policies"]))
    assert check_card(card).errors == ()
    assert fake_llm.pending == 0

    requests = fake_llm.requests
    assert len(requests) == 5
    assert {r.path for r in requests} == {"/v1/chat/completions"}
    assert {r.json["model"] for r in requests} == {"test-model"}
    assert {r.headers["authorization"] for r in requests} == {f"Bearer {API_KEY}"}
    # The opening turn has no transcript yet: a nudge stands in for the participant.
    assert [m["role"] for m in requests[0].messages] == ["system", "user"]
    first_system = requests[0].system_prompt
    assert QUESTION in first_system and "one question per message" in first_system.lower()
    assert CARD_READY_MARKER in first_system
    assert "attentional policy" not in first_system.replace('"attentional policy"', "")
    # The last reply request carried the whole conversation, in order, after our system prompt.
    assert requests[3].messages[1:] == transcript[:-1]

    card_request = requests[4].json
    schema_sent = card_request["response_format"]
    assert schema_sent["type"] == "json_schema"
    assert schema_sent["json_schema"]["name"] == "values_card"
    assert set(schema_sent["json_schema"]["schema"]["required"]) == {"title", "description", "policies"}
    [tool] = card_request["tools"]
    assert tool["function"]["name"] == CARD_TOOL_NAME
    assert tool["function"]["parameters"] == schema_sent["json_schema"]["schema"]
    assert "plural noun" in requests[4].system_prompt and QUESTION in requests[4].system_prompt
    assert card_request["messages"][-1]["role"] == "user"


def test_a_card_submitted_through_the_tool_call_is_accepted(fake_llm: FakeLlm) -> None:
    fake_llm.script(tool_call_reply(CARD))
    card = interviewer(fake_llm).propose_card([{"role": "user", "content": "hi"}])
    assert card.title == CARD["title"] and list(card.policies) == CARD["policies"]


def test_a_card_in_a_markdown_fence_is_accepted(fake_llm: FakeLlm) -> None:
    import json

    fake_llm.script(text_reply("```json\n" + json.dumps(CARD) + "\n```"))
    assert interviewer(fake_llm).propose_card([]).title == CARD["title"]


def test_no_authorization_header_without_a_key(fake_llm: FakeLlm) -> None:
    fake_llm.script(text_reply("Hello?"))
    interviewer(fake_llm, api_key=None).reply([])
    assert "authorization" not in fake_llm.requests[0].headers


def test_stored_system_and_error_rows_are_left_out_and_bad_rows_are_named() -> None:
    bot = LlmInterviewer(LlmConfig("http://127.0.0.1:9/v1", "m"))
    with pytest.raises(TranscriptError, match=r"transcript\[1\] has role 'tool'"):
        bot.reply([{"role": "user", "content": "a"}, {"role": "tool", "content": "b"}])
    with pytest.raises(TranscriptError, match=r"transcript\[0\] must have"):
        bot.reply([{"text": "a"}])


def test_stored_system_and_error_rows_are_not_sent(fake_llm: FakeLlm) -> None:
    fake_llm.script(text_reply("Go on."))
    interviewer(fake_llm).reply(
        [
            {"role": "system", "content": "an old prompt"},
            {"role": "user", "content": "hello"},
            {"role": "error", "content": "timeout earlier"},
        ]
    )
    assert fake_llm.requests[0].messages[1:] == [{"role": "user", "content": "hello"}]


def test_llm_transition_story(fake_llm: FakeLlm) -> None:
    fake_llm.script(text_reply("  I used to think only facts mattered. Then I saw her fear.  "))
    story = interviewer(fake_llm).transition_story(
        {"title": "Just the Facts"},
        ValuesCard("Fear-Aware Guidance", "d", ("FEARS behind a question",)),
        "When in distress",
    )
    assert story == "I used to think only facts mattered. Then I saw her fear."
    sent = fake_llm.requests[0].messages[1]["content"]
    assert "When in distress" in sent and "Just the Facts" in sent and "FEARS behind a question" in sent


# --- failures: each one is LlmUnavailable ---------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "kind", "message"),
    [
        (malformed_json_reply(), "malformed", "not valid JSON"),
        (
            json_card_reply({"title": "Only One", "description": "d", "policies": ["ONE line"]}),
            "schema",
            "policies",
        ),
        (json_card_reply({"title": "No Lines", "description": "d"}), "schema", "policies"),
        (json_card_reply({**CARD, "title": "T" * 81}), "schema", "title"),
        (json_card_reply({**CARD, "policies": ["   ", "LINES"]}), "schema", "policies/0"),
        (tool_call_reply("{not json"), "malformed", "tool call"),
        (tool_call_reply(CARD, name="some_other_tool"), "malformed", "neither a card"),
        (refusal_reply(), "refusal", "declined"),
        (content_filter_reply(), "refusal", "content filter"),
        (http_error_reply(500), "http_status", "HTTP 500: internal server error"),
        (http_error_reply(429, "rate limited"), "http_status", "HTTP 429"),
        (not_json_reply(), "malformed", "not JSON"),
    ],
)
def test_propose_card_failures_raise_llm_unavailable(
    fake_llm: FakeLlm, reply, kind: str, message: str
) -> None:
    fake_llm.script(reply)
    with pytest.raises(LlmUnavailable, match=message) as caught:
        interviewer(fake_llm).propose_card([{"role": "user", "content": "my story"}])
    assert caught.value.kind == kind


@pytest.mark.parametrize(
    ("reply", "kind"),
    [
        (refusal_reply(), "refusal"),
        (content_filter_reply(), "refusal"),
        (http_error_reply(500), "http_status"),
        (text_reply("   "), "empty"),
        (text_reply(CARD_READY_MARKER), "empty"),
    ],
)
def test_reply_failures_raise_llm_unavailable(fake_llm: FakeLlm, reply, kind: str) -> None:
    fake_llm.script(reply)
    with pytest.raises(LlmUnavailable) as caught:
        interviewer(fake_llm).reply([{"role": "user", "content": "hello"}])
    assert caught.value.kind == kind


def test_a_slow_server_times_out(fake_llm: FakeLlm) -> None:
    fake_llm.script(slow_reply(2.0))
    with pytest.raises(LlmUnavailable, match=r"did not answer within 0\.5 s") as caught:
        interviewer(fake_llm, timeout=0.5).reply([{"role": "user", "content": "hello"}])
    assert caught.value.kind == "timeout"


def test_a_server_that_is_not_there_is_a_connection_error() -> None:
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens on it
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    bot = LlmInterviewer(LlmConfig(f"http://127.0.0.1:{port}/v1", "m", API_KEY, timeout=2))
    with pytest.raises(LlmUnavailable, match="Could not reach") as caught:
        bot.transition_story({"title": "A"}, {"title": "B"}, "When in conflict")
    assert caught.value.kind == "connection"


def test_the_api_key_never_reaches_messages_or_logs(
    fake_llm: FakeLlm, caplog: pytest.LogCaptureFixture
) -> None:
    # A misbehaving server echoes the Authorization header back in its error body.
    fake_llm.script(http_error_reply(401, f"invalid key Bearer {API_KEY}"), malformed_json_reply())
    bot = interviewer(fake_llm)
    with caplog.at_level(logging.DEBUG, logger="workbench.llm"):
        with pytest.raises(LlmUnavailable) as first:
            bot.reply([{"role": "user", "content": "hello"}])
        with pytest.raises(LlmUnavailable):
            bot.propose_card([{"role": "user", "content": "hello"}])
    assert "HTTP 401" in str(first.value) and "***" in str(first.value)
    assert API_KEY not in str(first.value)
    assert caplog.records and all(API_KEY not in r.getMessage() for r in caplog.records)
