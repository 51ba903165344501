"""The guided interview: stage prompts, candidate policies from the participant's words, drafts, stories."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.cardcheck import STOP_WORDS, CardShapeError, ValuesCard, check_card, check_policy
from workbench.interview import (
    STAGE_KEYS,
    STAGES,
    GuidedAnswers,
    UnknownStageError,
    answers_from_transcript,
    candidate_policies,
    draft_description,
    draft_title,
    next_stage,
    policies_from_text,
    previous_stage,
    stage,
    transition_story,
)

JARGON = ("attentional", "policy", "policies", "values card", "mge", "moral graph", "canonical")

# Realistic answers (response, story), as participants in the 2023 study wrote them.
PREGNANCY = (
    "It should listen first and ask what she wants, because only she knows her situation. "
    "It shouldn't lecture her.",
    "When my sister got pregnant at 17, I noticed that she was scared of being judged by our parents. "
    "I felt relieved when she finally told me. I wanted to be honest with her without pushing her. "
    "What mattered was her freedom to choose.",
)
MOVING = (
    "The assistant should give clear facts about the options and help the person think through their values.",
    "I had to decide whether to move across the country for a job. I paid attention to how my kids felt "
    "about leaving their friends. I cared about the chance to grow in my career. "
    "I felt torn between loyalty and ambition.",
)
FRIEND = (
    "Be honest, but kind. Offer resources.",
    "My friend Maria was in an abusive relationship. I kept thinking about her safety. Every time she "
    "called me late at night I felt like I was the only one she could trust.",
)
GRIEF = (
    "Gently ask how they are coping and give them room to talk about the person they lost.",
    "After my dad died I realized that small rituals helped me most. I looked for quiet moments to remember "
    "him. I appreciated friends who just sat with me.",
)
SHORT = ("Support them.", "Hospital visits with grandma taught me patience.")
ALL = {"pregnancy": PREGNANCY, "moving": MOVING, "friend": FRIEND, "grief": GRIEF, "short": SHORT}
TEMPLATE_WORDS = {
    "moments",
    "when",
    "feelings",
    "of",
    "being",
    "chances",
    "to",
    "signs",
    "opportunities",
    "for",
    "that",
    "touch",
    "on",
    "is",
    "at",
    "stake",
    "someone",
    "close",
    "it",
    "feels",
    "like",
}


def words(text: str) -> set[str]:
    return {w.lower() for w in re.findall(r"[A-Za-z][A-Za-z']*", text)}


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


# --- candidate policies ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", ALL, ids=list(ALL))
def test_candidates_are_built_from_the_participants_words_and_pass_hard_checks(case: str) -> None:
    response, story = ALL[case]
    lines = candidate_policies(response, story)
    assert 3 <= len(lines) <= 6
    given = words(response + " " + story) - STOP_WORDS
    for line in lines:
        own = (words(line) - TEMPLATE_WORDS - STOP_WORDS) & given
        assert own, f"{line!r} uses none of the participant's words"
    card = ValuesCard(draft_title(lines, response), draft_description(lines, response), tuple(lines))
    assert check_card(card).errors == ()


@pytest.mark.parametrize("case", ALL, ids=list(ALL))
def test_candidates_pass_the_soft_checks_too(case: str) -> None:
    lines = candidate_policies(*ALL[case])
    assert {line: [i.code for i in check_policy(line)] for line in lines} == {line: [] for line in lines}


def test_cue_phrases_become_lines_in_the_studys_style() -> None:
    assert "FEELINGS of being torn between loyalty and ambition" in candidate_policies(*MOVING)
    assert "CHANCES to grow in their career" in candidate_policies(*MOVING)
    assert "SIGNS of safety" in candidate_policies(*FRIEND)
    assert "MOMENTS when freedom to choose is at stake" in candidate_policies(*PREGNANCY)
    assert "SIGNS of how someone close felt about leaving their friends" in candidate_policies(*MOVING)


def test_people_from_the_story_are_made_general() -> None:
    text = " ".join(candidate_policies(*PREGNANCY) + candidate_policies(*FRIEND) + candidate_policies(*GRIEF))
    for particular in ("sister", "Maria", "parents", "dad", " my ", " I ", " her "):
        assert particular not in f" {text} "


def test_vague_words_are_dropped_and_outcome_lines_rank_last() -> None:
    story = (
        "I wanted to make sure my brother was safe. I noticed that he was really quiet at dinner. "
        "I felt deeply grateful when he opened up."
    )
    lines = candidate_policies("", story)
    assert "SIGNS he was quiet at dinner" not in lines
    assert "MOMENTS when someone was quiet at dinner" in lines
    assert "FEELINGS of being grateful when someone opened up" in lines
    assert not [w for w in ("really", "deeply") if w in " ".join(lines)]
    outcome = [i for i, line in enumerate(lines) if "make sure" in line]
    assert outcome == [len(lines) - 1]


def test_candidates_are_deterministic_and_respect_max_n() -> None:
    assert candidate_policies(*MOVING) == candidate_policies(*MOVING)
    assert candidate_policies(*MOVING, max_n=2) == candidate_policies(*MOVING)[:2]
    assert candidate_policies("", "") == []
    with pytest.raises(ValueError, match="max_n"):
        candidate_policies(*MOVING, max_n=0)


def test_candidates_never_exceed_the_line_limit() -> None:
    worries = " ".join(f"worry{chr(97 + i % 26)}" for i in range(80))
    hopes = " ".join(f"hope{chr(97 + i % 26)}" for i in range(80))
    lines = candidate_policies("", f"I noticed that {worries}. I felt {hopes}.")
    assert len(lines) >= 2
    assert all(len(line) <= 200 for line in lines)
    assert [i for line in lines for i in check_policy(line) if i.severity == "error"] == []


VOCAB = (
    "I noticed that felt like wanted to when my sister John the girl chance for to really deep not "
    "make sure safety her him their freedom honest , . ; ? ! — was scared judged choose 17 café "
    "opportunities room space cared about paid attention looked we us it someone".split()
)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.sampled_from(VOCAB), max_size=60), st.text(max_size=200))
def test_candidates_from_any_text_pass_the_hard_checks(tokens: list[str], noise: str) -> None:
    text = " ".join(tokens)
    lines = candidate_policies(text + noise, noise + text)
    assert len(lines) <= 6
    assert len({" ".join(line.casefold().split()) for line in lines}) == len(lines)
    assert [i for line in lines for i in check_policy(line) if i.severity == "error"] == []


# --- drafts ---------------------------------------------------------------------------------------


def test_draft_title_uses_the_shared_thing_words() -> None:
    lines = candidate_policies(*MOVING)
    assert draft_title(lines, MOVING[0]) == "Loyalty and Ambition"
    assert draft_title(candidate_policies(*FRIEND), FRIEND[0]) == "Paying Attention to Safety"
    assert 3 <= len(draft_title([], "").split()) <= 6


def test_draft_description_is_short_and_keeps_the_participants_answer() -> None:
    lines = candidate_policies(*PREGNANCY)
    description = draft_description(lines, PREGNANCY[0])
    assert "It should listen first and ask what she wants" in description
    assert "moments when freedom to choose is at stake" in description
    check = check_card(ValuesCard("Freedom to Choose Well", description, tuple(lines)))
    assert {w.code for w in check.warnings if w.field == "description"} == set()
    long = draft_description(["MOMENTS " + "x" * 190] * 3, "y" * 700)
    assert len(long) <= 600 and long.endswith(".")


# --- guided answers -------------------------------------------------------------------------------


def test_guided_answers_round_trip_and_know_where_to_continue() -> None:
    answers = GuidedAnswers(response="Listen first.", story="A time...", policies=("MOMENTS when x",))
    assert GuidedAnswers.from_dict(answers.to_dict()) == answers
    assert answers.first_unanswered() == "title"
    done = answers.with_changes(title="A b c", description="D.", contexts=("When seeking clarity",))
    assert done.first_unanswered() == "review"
    assert done.card() == ValuesCard("A b c", "D.", ("MOMENTS when x",))
    assert GuidedAnswers().first_unanswered() == "response"
    with pytest.raises(ValueError, match="unknown fields"):
        GuidedAnswers.from_dict({"respnse": "typo"})


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
    assert "CHANCES to give them space" in candidate_policies(answers.response, answers.story)
    given = answers_from_transcript(transcript, response="Kindly.")
    assert given.response == "Kindly." and given.story.startswith("Gently, and without judging.")
    assert answers_from_transcript([]) == GuidedAnswers()


def test_policies_from_text_takes_one_line_each_without_bullets() -> None:
    text = "- MOMENTS when a\n\n* FEELINGS of b\n3. CHANCES to c\n   \n• SIGNS of d"
    assert policies_from_text(text) == ["MOMENTS when a", "FEELINGS of b", "CHANCES to c", "SIGNS of d"]


# --- wiser-than story -----------------------------------------------------------------------------


def test_transition_story_names_both_values_and_the_context() -> None:
    a = {"title": "Respecting Autonomy", "description": "", "policies": ["CHOICES the person makes alone"]}
    b = ValuesCard("Informed Compassionate Guidance", "d", ("FEARS behind the question", "OPTIONS to weigh"))
    story = transition_story(a, b, "When seeking clarity")
    assert story.startswith("When seeking clarity, ")
    assert "“Respecting Autonomy”" in story and "“Informed Compassionate Guidance”" in story
    assert "fears behind the question and options to weigh" in story
    assert story == transition_story(a, b, "When seeking clarity")
    assert "When it came to parenting" in transition_story({"title": "A"}, {"title": "B"}, "parenting")
    with pytest.raises(CardShapeError):
        transition_story(object(), b, "When in distress")
