"""Wiser-than stories: built from what differs between two cards, in several forms, LLM when configured."""

from __future__ import annotations

import re

import pytest
from fake_llm import (  # noqa: F401 (fake_llm_server registers the fake_llm fixture)
    FakeLlm,
    fake_llm_server,
    http_error_reply,
    text_reply,
)

from workbench.cardcheck import CardShapeError, ValuesCard
from workbench.llm import LlmConfig
from workbench.stories import FORMS, card_difference, transition_story, wiser_story

FACTS = ValuesCard(
    "Just the Facts",
    "Give the facts.",
    ("FACTS about an event that sources agree on", "SOURCES a person can check for themselves"),
)
FEAR_AWARE = ValuesCard(
    "Fear-Aware Guidance",
    "Facts, with an eye on the fear behind the question.",
    (
        "FACTS about an event that sources agree on",
        "FEELINGS of fear that sit behind a practical question",
        "MOMENTS when someone needs comfort before they can take in advice",
    ),
)


def test_the_difference_is_what_the_second_card_adds_and_what_it_keeps() -> None:
    diff = card_difference(FACTS, FEAR_AWARE)
    assert diff.only_b == FEAR_AWARE.policies[1:]
    assert diff.shared == ("FACTS about an event that sources agree on",)
    assert diff.only_a == ("SOURCES a person can check for themselves",)


@pytest.mark.parametrize("seed", range(len(FORMS)))
def test_every_form_tells_the_move_through_what_differs(seed: int) -> None:
    story = transition_story(FACTS, FEAR_AWARE, "When someone is afraid", seed=seed)
    assert re.search("[“‘]Just the Facts[”’]", story) and re.search("[“‘]Fear-Aware Guidance[”’]", story)
    assert "feelings of fear that sit behind a practical question" in story  # what B adds, in running text
    assert "when someone is afraid" in story.lower()
    assert 2 <= len(re.findall(r"[.!?][”]?(?:\s|$)", story)) <= 5
    assert story == transition_story(FACTS, FEAR_AWARE, "When someone is afraid", seed=seed)


def test_the_forms_differ_and_the_default_seed_is_stable_per_pair() -> None:
    stories = {transition_story(FACTS, FEAR_AWARE, "When in distress", seed=s) for s in range(len(FORMS))}
    assert len(stories) == len(FORMS)
    assert transition_story(FACTS, FEAR_AWARE, "x") == transition_story(FACTS, FEAR_AWARE, "x")
    pairs = [({"title": f"A{i}"}, {"title": f"B{i}"}) for i in range(12)]
    openings = {transition_story(a, b, "parenting").split(",")[0][:12] for a, b in pairs}
    assert len(openings) >= 2, "different pairs do not all read the same"


def test_cards_with_only_a_title_still_make_a_story_and_shapeless_ones_are_refused() -> None:
    story = transition_story({"title": "Respecting Autonomy"}, {"title": "Informed Care"}, "parenting", seed=0)
    assert re.search("[“‘]Respecting Autonomy[”’]", story) and "Informed Care" in story and "parenting" in story
    with pytest.raises(CardShapeError):
        transition_story(object(), FEAR_AWARE, "x")


def test_the_llm_tells_the_story_with_the_difference_in_its_prompt(fake_llm: FakeLlm) -> None:
    fake_llm.script(text_reply("I used to want only facts. Then I saw her fear."))
    config = LlmConfig(base_url=fake_llm.base_url, model="fake", timeout=5.0)
    story = wiser_story(FACTS, FEAR_AWARE, "When in distress", llm=config)
    assert (story.text, story.source, story.llm_error) == ("I used to want only facts. Then I saw her fear.", "llm", None)
    sent = fake_llm.requests[0].messages[1]["content"]
    assert "What the second value notices that the first does not:" in sent
    assert "- FEELINGS of fear that sit behind a practical question" in sent


def test_a_failing_llm_falls_back_to_the_offline_story_and_says_why(fake_llm: FakeLlm) -> None:
    fake_llm.script(http_error_reply(503, "overloaded"))
    config = LlmConfig(base_url=fake_llm.base_url, model="fake", timeout=5.0)
    story = wiser_story(FACTS, FEAR_AWARE, "When in distress", seed=1, llm=config)
    assert story.source == "offline"
    assert story.text == transition_story(FACTS, FEAR_AWARE, "When in distress", seed=1)
    assert "503" in story.llm_error
    assert wiser_story(FACTS, FEAR_AWARE, "x").source == "offline"  # no LLM configured
