"""Wiser-than stories: a few sentences about someone who moved from value A to value B in a context.

The wiser-than round shows a participant two values and asks whether someone who moved from the first
to the second became wiser. A short story makes the move concrete. The story is built from what differs
between the two cards: what B pays attention to that A does not (`card_difference`), and what A
attends to that B keeps. Offline, one of a few story forms is filled in (`transition_story`, chosen by a
seed so a pair always reads the same and different pairs read differently); with an LLM configured,
`wiser_story` asks it for the story, with the same difference in the prompt, and falls back to the
offline form when it fails. This module must never import Streamlit or touch the store; the only
network it uses is workbench.llm's configured endpoint.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from workbench.cardcheck import (
    OVERLAP_THRESHOLD,
    ValuesCard,
    content_stems,
    lenient_values_card,
    running_text,
)
from workbench.llm import LlmConfig, LlmInterviewer, LlmUnavailable

STORY_NAMES = ("Alex", "Sam", "Jordan", "Taylor", "Morgan", "Riley", "Casey", "Jamie", "Robin", "Kim")


@dataclass(frozen=True)
class CardDifference:
    """What two cards attend to, set side by side (lines as written on the cards)."""

    only_a: tuple[str, ...]  # A's lines B does not cover
    only_b: tuple[str, ...]  # B's lines A does not cover: what the move adds
    shared: tuple[str, ...]  # A's lines B also attends to: what the move keeps


def _covered(line: str, others: Sequence[str]) -> bool:
    stems = content_stems(line)
    if not stems:
        return False
    return any(len(stems & content_stems(o)) / len(stems) >= OVERLAP_THRESHOLD / 2 for o in others)


def card_difference(from_card: Any, to_card: Any) -> CardDifference:
    """Which lines of A and B the other card does not cover (half of their content words shared)."""
    a, b = lenient_values_card(from_card), lenient_values_card(to_card)
    return CardDifference(
        only_a=tuple(p for p in a.policies if not _covered(p, b.policies)),
        only_b=tuple(p for p in b.policies if not _covered(p, a.policies)),
        shared=tuple(p for p in a.policies if _covered(p, b.policies)),
    )


def _when(context: str) -> str:
    context = " ".join(context.split()).rstrip(".")
    if not context:
        return "in a situation like this"
    if context.lower().startswith("when "):
        return "when " + context[5:]
    return f"when it came to {context[0].lower()}{context[1:]}"


def _join(items: Sequence[str]) -> str:
    items = [i for i in items if i]
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])}, and {items[-1]}"


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _parts(a: ValuesCard, b: ValuesCard) -> tuple[str, str, str]:
    """(what A attended to, what B adds, what A's attention B keeps) as running text."""
    diff = card_difference(a, b)
    old = running_text((diff.only_a or a.policies or ("",))[0])
    new = [running_text(p) for p in (diff.only_b or b.policies)[:2]]
    kept = running_text((diff.shared or a.policies or ("",))[0])
    return old, _join(new), kept


def _form_before_after(name: str, a: ValuesCard, b: ValuesCard, when: str) -> str:
    old, new, kept = _parts(a, b)
    lines = [f"{_capital(when)}, {name} used to choose by “{a.title}”" + (f", watching for {old}." if old else ".")]
    if new:
        lines.append(f"Over time that felt incomplete, and {name} began to notice {new} as well.")
    lines.append(
        f"{name} still cares about {kept}, but now it sits inside “{b.title}”." if kept
        else f"Now {name} is guided by “{b.title}”."
    )
    return " ".join(lines)


def _form_moment(name: str, a: ValuesCard, b: ValuesCard, when: str) -> str:
    old, new, _ = _parts(a, b)
    lines = [f"{_capital(when)}, {name} trusted “{a.title}” above everything" + (f" and watched for {old}." if old else ".")]
    if new:
        lines.append(f"Then came a moment that showed what this missed — {new}.")
    lines.append(f"Since then {name} pays attention to that too, and calls it “{b.title}”.")
    return " ".join(lines)


def _form_first_person(name: str, a: ValuesCard, b: ValuesCard, when: str) -> str:
    old, new, _ = _parts(a, b)
    lines = [f"“I used to choose by ‘{a.title}’: {when}, I paid most attention to {old or 'getting that right'}."]
    lines.append("I still think it counts.")
    if new:
        lines.append(f"But I came to see {new}.")
    lines.append(f"That is what ‘{b.title}’ means to me now,” says {name}.")
    return " ".join(lines)


def _form_learning(name: str, a: ValuesCard, b: ValuesCard, when: str) -> str:
    old, new, kept = _parts(a, b)
    lines = [f"{_capital(when)}, {name}’s way of choosing was “{a.title}”."]
    if new:
        lines.append(f"Over the years {name} learned to look further: at {new}.")
    if kept:
        lines.append(
            f"Nothing good was thrown away — paying attention to {kept} still matters — but “{b.title}” sees "
            "more of the situation."
        )
    else:
        lines.append(f"“{b.title}” sees more of the situation.")
    return " ".join(lines)


FORMS = (_form_before_after, _form_moment, _form_first_person, _form_learning)


def transition_story(from_card: Any, to_card: Any, context: str, *, seed: int | None = None) -> str:
    """A short story (offline) of someone who moved from value A to value B in a context.

    Built from what B attends to that A does not. Cards may be ValuesCard, mappings or objects with a
    title (description and policies optional). `seed` picks the form and the name; by default a hash of
    the two titles, so the same pair always reads the same.
    """
    a, b = lenient_values_card(from_card), lenient_values_card(to_card)
    if seed is None:
        seed = zlib.crc32(f"{a.title}|{b.title}".encode())
    form = FORMS[seed % len(FORMS)]
    name = STORY_NAMES[(seed // len(FORMS)) % len(STORY_NAMES)]
    return form(name, a, b, _when(context))


@dataclass(frozen=True)
class WiserStory:
    """A story to show in the wiser-than round, and who wrote it."""

    text: str
    source: Literal["llm", "offline"]
    llm_error: str | None = None  # why the LLM's story is not used, when one was configured


def wiser_story(
    from_card: Any, to_card: Any, context: str, *, seed: int | None = None, llm: LlmConfig | None = None
) -> WiserStory:
    """The LLM's story when `llm` is configured and answers, else the offline one (with the reason)."""
    offline = transition_story(from_card, to_card, context, seed=seed)
    if llm is None:
        return WiserStory(offline, "offline")
    try:
        focus = card_difference(from_card, to_card).only_b
        text = LlmInterviewer(llm).transition_story(from_card, to_card, context, focus=focus)
    except LlmUnavailable as exc:
        return WiserStory(offline, "offline", llm_error=exc.reason)
    return WiserStory(text, "llm")
