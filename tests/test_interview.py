"""The guided interview: stage prompts, the answers a participant gives, and the names the page imports."""

from __future__ import annotations

import pytest

from workbench import interview
from workbench.cardcheck import ValuesCard, check_policy
from workbench.errors import InputError
from workbench.interview import (
    STAGE_KEYS,
    STAGES,
    GuidedAnswers,
    UnknownStageError,
    answers_from_transcript,
    candidate_policies,
    next_stage,
    policies_from_text,
    previous_stage,
    stage,
)

JARGON = ("attentional", "policy", "policies", "values card", "mge", "moral graph", "canonical")

# --- stages ---------------------------------------------------------------------------------------


def test_stages_come_in_the_interview_order() -> None:
    assert STAGE_KEYS == ("response", "story", "attention", "title", "contexts", "review")
    assert next_stage("response") == "story"
    assert next_stage("review") is None
    assert previous_stage("response") is None
    assert previous_stage("title") == "attention"
    assert stage("story").key == "story"
    with pytest.raises(UnknownStageError, match="unknown interview stage 'storytime'"):
        stage("storytime")


@pytest.mark.parametrize("s", STAGES, ids=STAGE_KEYS)
def test_each_stage_asks_one_question_without_jargon(s) -> None:
    assert s.prompt.count("?") == 1
    text = f"{s.title} {s.prompt} {s.hint}".lower()
    assert not [j for j in JARGON if j in text]


# --- guided answers -------------------------------------------------------------------------------


def test_guided_answers_round_trip_and_know_where_to_continue() -> None:
    answers = GuidedAnswers(response="Listen first.", story="A time...", policies=("MOMENTS when x",))
    assert GuidedAnswers.from_dict(answers.to_dict()) == answers
    assert answers.first_unanswered() == "title"
    done = answers.with_changes(title="A b c", description="D.", contexts=("When seeking clarity",))
    assert done.first_unanswered() == "review"
    assert done.card() == ValuesCard("A b c", "D.", ("MOMENTS when x",))
    assert GuidedAnswers().first_unanswered() == "response"
    with pytest.raises(InputError, match="unknown fields"):
        GuidedAnswers.from_dict({"respnse": "typo"})
    with pytest.raises(InputError, match="policies must be a list of texts"):
        GuidedAnswers.from_dict({"policies": "MOMENTS when x"})
    with pytest.raises(InputError, match="title must be text"):
        GuidedAnswers.from_dict({"title": 3})
    assert answers.merged({"title": "A b c"}).title == "A b c"


def test_an_unknown_stage_is_an_input_error_naming_it() -> None:
    with pytest.raises(InputError, match="'storytime'"):
        next_stage("storytime")


def test_an_llm_transcript_seeds_the_guided_flow_with_everything_the_participant_wrote() -> None:
    transcript = [
        {"role": "assistant", "content": "How should it respond?"},
        {"role": "user", "content": "Gently, and without judging."},
        {"role": "assistant", "content": "Is there a time in your life this brings to mind?"},
        {"role": "user", "content": "I noticed that my son was anxious."},
        {"role": "error", "content": "timeout"},
        {"role": "user", "content": "I wanted to give him space."},
    ]
    answers = answers_from_transcript(transcript)
    assert answers.response == "Gently, and without judging."
    assert answers.story == "I noticed that my son was anxious.\n\nI wanted to give him space."
    assert answers.first_unanswered() == "attention"
    assert candidate_policies(answers.response, answers.story) == [
        "SIGNS that a child is anxious",
        "CHANCES to give them space",
    ]
    given = answers_from_transcript(transcript, response="Kindly.")
    assert given.response == "Kindly." and given.story.startswith("Gently, and without judging.")
    assert answers_from_transcript([]) == GuidedAnswers()


def test_policies_from_text_takes_one_line_each_without_bullets() -> None:
    text = "- MOMENTS when a\n\n* FEELINGS of b\n3. CHANCES to c\n   \n• SIGNS of d"
    assert policies_from_text(text) == ["MOMENTS when a", "FEELINGS of b", "CHANCES to c", "SIGNS of d"]


def test_candidate_policies_are_own_words_lines_that_pass_every_check() -> None:
    story = (
        "When my son was nine he cried over maths. I noticed he was exhausted after school and I paid "
        "attention to the moments when he asked his own questions."
    )
    lines = candidate_policies("It should help the parent understand why the child resists.", story)
    assert lines == ["MOMENTS when a child asks their own questions", "SIGNS that a child is exhausted after school"]
    assert [i for line in lines for i in check_policy(line, story=story)] == []
    assert candidate_policies("", "") == []


def test_the_page_finds_the_drafting_api_in_one_place() -> None:
    for name in ("suggest_policies", "draft_card", "draft_title", "draft_description", "transition_story",
                 "wiser_story", "card_difference", "Suggestion", "DraftCard", "WiserStory"):
        assert name in interview.__all__ and hasattr(interview, name), name
    card = ValuesCard("A b c", "d.", ("MOMENTS when x",))
    assert GuidedAnswers(policies=card.policies).card().policies == card.policies
