"""The guided (offline) interview: its stages, the participant's answers, and the drafting API pages call.

A participant who has no LLM interviewer (or whose LLM failed) walks through six stages, one question
each: how an assistant should respond, a story from their life, what they paid attention to, a title
and description, where it applies, and a review. This module holds the stages and `GuidedAnswers`, and
gathers in one place what a page calls to help: `suggest_policies` and `draft_card`
(workbench.drafting: the policy library, others' cards and the participant's own words, matched with
the embedding model), `draft_title` and `draft_description`, `candidate_policies` (own words only, no
model), and `transition_story` / `wiser_story` (workbench.stories) for the wiser-than round. It must
never import Streamlit or touch the store.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from workbench.cardcheck import ValuesCard
from workbench.drafting import (
    REASONS,
    DraftCard,
    Suggestion,
    draft_card,
    draft_description,
    draft_title,
    suggest_policies,
)
from workbench.errors import InputError, WorkbenchError
from workbench.ownwords import own_words_lines
from workbench.stories import WiserStory, card_difference, transition_story, wiser_story

log = logging.getLogger(__name__)

__all__ = [
    "ANSWER_FIELDS",
    "STAGES",
    "AttentionChoices",
    "STAGE_KEYS",
    "DraftCard",
    "GuidedAnswers",
    "InterviewStage",
    "Suggestion",
    "WiserStory",
    "answers_from_transcript",
    "attention_choices",
    "candidate_policies",
    "card_difference",
    "draft_card",
    "draft_description",
    "draft_title",
    "next_stage",
    "policies_from_text",
    "previous_stage",
    "question_text",
    "stage",
    "suggest_policies",
    "transition_story",
    "wiser_story",
]


class UnknownStageError(InputError):
    """A stage key that is not one of STAGE_KEYS."""


@dataclass(frozen=True)
class InterviewStage:
    """One step of the guided interview: one warm question and a hint below it."""

    key: str
    title: str
    prompt: str
    hint: str
    placeholder: str


STAGES: tuple[InterviewStage, ...] = (
    InterviewStage(
        key="response",
        title="Your answer",
        prompt="Imagine someone brings this question to an AI assistant. How do you think it should "
        "respond — and why does that feel right to you?",
        hint="There are no wrong answers. A few sentences in your own words is perfect.",
        placeholder="I think it should… because…",
    ),
    InterviewStage(
        key="story",
        title="A moment from your life",
        prompt="Could you tell us about a time in your own life that this question brings to mind — a hard "
        "choice you faced, or a moment you remember well?",
        hint="Something small is just as good as something big. Share only what you are comfortable with.",
        placeholder="There was a time when…",
    ),
    InterviewStage(
        key="attention",
        title="What you noticed",
        prompt="Thinking back to that moment, when you were choosing well, what were you paying "
        "attention to?",
        hint="Tick the suggestions that are true for you. Rewrite any of them in your own words, or add "
        "your own lines below, one thing per line.",
        placeholder="MOMENTS when…\nFEELINGS of…\nCHANCES to…",
    ),
    InterviewStage(
        key="title",
        title="Name it",
        prompt="What would you call this way of choosing? Give it a short name, and say in a sentence or "
        "two what it is about.",
        hint="A few words for the name is plenty. You can change our suggestion freely.",
        placeholder="A short name",
    ),
    InterviewStage(
        key="contexts",
        title="Where it matters",
        prompt="In which situations would you most want an assistant to act this way?",
        hint="Pick all that fit, or suggest a new one.",
        placeholder="When someone…",
    ),
    InterviewStage(
        key="review",
        title="Your card",
        prompt="Here is your card. Read it line by line — does each line say something you really pay "
        "attention to? Change anything that is not quite right.",
        hint="When it feels like yours, confirm it.",
        placeholder="",
    ),
)
STAGE_KEYS: tuple[str, ...] = tuple(s.key for s in STAGES)
#: The fields of GuidedAnswers (what an interview stage or draft stores), and those that are lists.
ANSWER_FIELDS = ("response", "story", "policies", "title", "description", "contexts")
LIST_FIELDS = ("policies", "contexts")


def stage(key: str) -> InterviewStage:
    for s in STAGES:
        if s.key == key:
            return s
    raise UnknownStageError(f"unknown interview stage {key!r}; expected one of {', '.join(STAGE_KEYS)}")


def next_stage(key: str) -> str | None:
    """The stage after `key`, or None after the review."""
    i = STAGE_KEYS.index(stage(key).key)
    return STAGE_KEYS[i + 1] if i + 1 < len(STAGE_KEYS) else None


def previous_stage(key: str) -> str | None:
    i = STAGE_KEYS.index(stage(key).key)
    return STAGE_KEYS[i - 1] if i > 0 else None


@dataclass(frozen=True)
class GuidedAnswers:
    """Everything a participant has written so far; kept whole when they switch modes."""

    response: str = ""
    story: str = ""
    policies: tuple[str, ...] = ()
    title: str = ""
    description: str = ""
    contexts: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "policies", tuple(self.policies))
        object.__setattr__(self, "contexts", tuple(self.contexts))

    def card(self) -> ValuesCard:
        return ValuesCard(self.title, self.description, self.policies)

    def to_dict(self) -> dict[str, Any]:
        return {
            "response": self.response,
            "story": self.story,
            "policies": list(self.policies),
            "title": self.title,
            "description": self.description,
            "contexts": list(self.contexts),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GuidedAnswers:
        """Answers from their stored form; InputError naming the field for anything else."""
        if not isinstance(data, Mapping):
            raise InputError(f"guided answers: expected a mapping, got {type(data).__name__}")
        unknown = set(data) - set(ANSWER_FIELDS)
        if unknown:
            raise InputError(f"guided answers have unknown fields {sorted(unknown)}")
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key in LIST_FIELDS:
                if isinstance(value, str) or not isinstance(value, Sequence) or \
                        not all(isinstance(v, str) for v in value):
                    raise InputError(f"guided answers: {key} must be a list of texts")
                values[key] = tuple(value)
            elif isinstance(value, str):
                values[key] = value
            else:
                raise InputError(f"guided answers: {key} must be text, got {type(value).__name__}")
        return cls(**values)

    def merged(self, changes: Mapping[str, Any]) -> GuidedAnswers:
        """These answers with some fields replaced (a draft of one stage), checked like from_dict."""
        return GuidedAnswers.from_dict({**self.to_dict(), **changes})

    def with_changes(self, **changes: Any) -> GuidedAnswers:
        return replace(self, **changes)

    def first_unanswered(self) -> str:
        """The stage a participant returning to the interview should continue at."""
        if not self.response.strip():
            return "response"
        if not self.story.strip():
            return "story"
        if not self.policies:
            return "attention"
        if not self.title.strip() or not self.description.strip():
            return "title"
        if not self.contexts:
            return "contexts"
        return "review"


def answers_from_transcript(transcript: Sequence[Mapping[str, str]], response: str = "") -> GuidedAnswers:
    """Guided answers seeded from an LLM chat, so a participant dropped into the guided flow keeps it all.

    The interviewer's first question asks how an assistant should respond, so the participant's first
    message becomes the response (unless `response` is given) and everything after it the story, where
    the suggestions will find it.
    """
    said = [m.get("content", "").strip() for m in transcript if m.get("role") == "user"]
    said = [s for s in said if s]
    if not response.strip() and said:
        response, said = said[0], said[1:]
    return GuidedAnswers(response=response, story="\n\n".join(said))


def question_text(title: str, prompt: str) -> str:
    """The question as drafting and the card checks read it: its title and its prompt. The title often
    names the situation's roles ("A child who refuses homework") that the prompt leaves implicit."""
    title, prompt = " ".join(str(title or "").split()), " ".join(str(prompt or "").split())
    return f"{title.rstrip('.')}. {prompt}" if title else prompt


def policies_from_text(text: str) -> list[str]:
    """One policy per non-empty line of a text area, with list bullets and numbering removed."""
    lines = []
    for line in text.splitlines():
        line = re.sub(r"^\s*(?:[-*•·]+|\d+[.)])\s*", "", line).strip()
        if line:
            lines.append(line)
    return lines


@dataclass(frozen=True)
class AttentionChoices:
    """What the "what you noticed" stage offers: suggestions (each saying where it comes from and why),
    the ones ticked, and the participant's own lines (typed, or suggestions they rewrote)."""

    suggestions: tuple[Suggestion, ...]
    ticked: frozenset[str]
    own_lines: tuple[str, ...]
    unavailable: str | None = None  # why only lines from their own words are suggested
    note: str | None = None  # nothing suggested may fit what they wrote (then nothing from the library is ticked)

    def policies(self, ticked: Iterable[str], own_text: str) -> tuple[str, ...]:
        """The card's lines: ticked suggestions in the order shown, then own lines, each once."""
        chosen = set(ticked)
        lines = [s.text for s in self.suggestions if s.text in chosen] + policies_from_text(own_text)
        seen: set[str] = set()
        return tuple(line for line in lines if not (line.casefold() in seen or seen.add(line.casefold())))


def attention_choices(question: str, answers: GuidedAnswers, *, others: Any = (), embedder: Any = None,
                      library: Any = None) -> AttentionChoices:
    """Suggestions for the participant's answer and story (workbench.drafting.draft_card: the library,
    `others`' confirmed cards of the same question, their own words) and what is ticked: their lines
    so far when they have any, else only the drafted card's lines from their own words (and a `note`
    when nothing suggested may fit).

    Lines from the library or from others are offered, never ticked for them: read blind on questions the
    library was not written for (held_out_4 and held_out_5, two readers), the lines the drafted card
    ticked were signable about as rarely as those it left (13-21% against 10-15%), and relevance told
    the two apart no better than chance (AUC 0.55), so a ticked default would hand a hurried participant
    a card of strangers' lines. The participant ticks what is true for them.

    Without the embedding model (not installed, folder missing) only their own words are suggested,
    and `unavailable` says so; the interview goes on.
    """
    try:
        draft = draft_card(question, answers.response, answers.story, others=others, embedder=embedder,
                           library=library)
        suggestions, unavailable = draft.suggestions, None
        proposed = [s.text for s in draft.policies if s.source == "own_words"]
        note = draft.note
    except (WorkbenchError, ImportError, OSError) as exc:
        log.warning("suggestions from the library are unavailable: %s", exc)
        own = own_words_lines(answers.response, answers.story)
        suggestions = tuple(Suggestion(o.text, "own_words", REASONS["own_words"], 0.0) for o in own)
        proposed = [s.text for s in suggestions]
        unavailable = "Suggestions from other people's values are not available just now; write your own lines."
        note = None
    texts = {s.text for s in suggestions}
    if answers.policies:
        ticked = frozenset(p for p in answers.policies if p in texts)
        own_lines = tuple(p for p in answers.policies if p not in texts)
    else:
        ticked, own_lines = frozenset(proposed), ()
    return AttentionChoices(tuple(suggestions), ticked, own_lines, unavailable, note)


def candidate_policies(response: str, story: str, max_n: int = 3) -> list[str]:
    """Policies rewritten from the participant's own words, only those that pass every card check.

    No model: usable before the embedding model is loaded. Often fewer than three lines (none when
    the story voices no noticing, wanting or feeling in a shape the rules understand); the page's
    full suggestions come from `suggest_policies`.
    """
    return [line.text for line in own_words_lines(response, story, max_lines=max_n)]
