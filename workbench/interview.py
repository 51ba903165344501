"""The guided (offline) interview: its stages and the rule-based helpers that draft a card from them.

A participant who has no LLM interviewer (or whose LLM failed) walks through six stages, one question
each: how an assistant should respond, a story from their life, what they paid attention to, a title
and description, where it applies, and a review. The helpers here propose attentional policies,
a title and a description built only from the participant's own words with simple, deterministic text
rules, and write the short "moving from A to B" story the wiser-than round shows. This module must
never import Streamlit, touch the store, call a model or download anything (no NLP models: sentence and
clause splitting, stop words and cue verbs only).
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from workbench.cardcheck import (
    DESCRIPTION_MAX_CHARS,
    FUNCTION_WORDS,
    OVERLAP_THRESHOLD,
    POLICY_MAX_CHARS,
    RECOMMENDED_POLICIES_MIN,
    STOP_WORDS,
    TITLE_MAX_CHARS,
    VAGUE_WORDS,
    ValuesCard,
    check_policy,
    content_stems,
    lenient_values_card,
)
from workbench.errors import InputError


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
        hint="Put each thing on its own line. We have suggested a few lines from your own words — keep, "
        "change or remove them.",
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
        unknown = set(data) - {"response", "story", "policies", "title", "description", "contexts"}
        if unknown:
            raise ValueError(f"guided answers have unknown fields {sorted(unknown)}")
        return cls(**{k: (tuple(v) if k in ("policies", "contexts") else v) for k, v in data.items()})

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
    candidate_policies will find it.
    """
    said = [m.get("content", "").strip() for m in transcript if m.get("role") == "user"]
    said = [s for s in said if s]
    if not response.strip() and said:
        response, said = said[0], said[1:]
    return GuidedAnswers(response=response, story="\n\n".join(said))


def policies_from_text(text: str) -> list[str]:
    """One policy per non-empty line of a text area, with list bullets and numbering removed."""
    lines = []
    for line in text.splitlines():
        line = re.sub(r"^\s*(?:[-*•·]+|\d+[.)])\s*", "", line).strip()
        if line:
            lines.append(line)
    return lines


# --- candidate policies -----------------------------------------------------------------------------

_SENTENCE_SPLIT = re.compile(r"(?<=[.!?;])\s+|\n+")
# Clause boundaries that end the phrase a cue introduces.
_PHRASE_END = re.compile(
    r",|;|:|\s[-–—]\s|\b(?:because|but|although|though|so that|so i|so we|which|and then|and i|and we|"
    r"until|unless|since|whereas|even if|in order)\b"
    # a new subject with a cue verb starts a new thought: "when they called someone felt like..."
    r"|\b(?:someone|they|people|you)\s+(?:felt|feel|noticed|realized|realised|wanted|knew|thought|decided)\b",
    re.IGNORECASE,
)
_SUBJECTS = frozenset("i you he she we they it someone everyone people nobody somebody".split())

# Cue families, in the order a participant's attention is most clearly voiced. Each pattern's
# named group `x` is the phrase that follows the cue.
_CUES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "attend",
        re.compile(
            r"\b(?:noticed|notice|paid attention to|pay attention to|paying attention to|focused on|"
            r"looked for|look for|watched for|listened to|listen for|remembered|realized|realised|saw|"
            r"kept thinking about|kept in mind)\s+(?:that\s+)?(?P<x>.+)",
            re.IGNORECASE,
        ),
    ),
    (
        "care",
        re.compile(
            r"\b(?:cared about|care about|cares about|worried about|thought about|think about|valued|"
            r"value|appreciated|appreciate|mattered to me was|matters to me is|matters most is|"
            r"what mattered was)\s+(?P<x>.+)",
            re.IGNORECASE,
        ),
    ),
    ("feel", re.compile(r"\b(?:felt|feel|feels|feeling)\s+(?P<x>.+)", re.IGNORECASE)),
    (
        "chance",
        re.compile(
            r"\b(?P<kind>chances?|opportunit(?:y|ies)|room|space)\s+(?P<prep>to|for)\s+(?P<x>.+)",
            re.IGNORECASE,
        ),
    ),
    (
        "want",
        re.compile(
            r"\b(?:wanted|want|wants|hoped|hope|wished|wish|needed|need|needs|tried|try|decided|chose|"
            r"should|could|must|ought to)\s+(?:to\s+)?(?:try to\s+|first\s+|just\s+)?(?P<x>.+)",
            re.IGNORECASE,
        ),
    ),
    ("when", re.compile(r"\b(?:when|whenever|the moment|every time)\s+(?P<x>.+)", re.IGNORECASE)),
)
# Words a phrase must not end on (a pronoun object such as "them" may: "told them").
_DANGLING = frozenset(
    "a an the to of for in on at by with from about as and or but if when where while because so than "
    "then that which who whose how why be is are was were been being do does did have has had will "
    "would should could can may might must not no their its your our my".split()
)
# Words after which "her" is an object ("told her without…"), not a possessive ("her fear").
_NOT_NOUN_AFTER_HER = FUNCTION_WORDS | frozenset(
    "without about into onto through during before after against around because up down out off over "
    "again too".split()
)
# Lead nouns and glue the templates add; overlap between candidates must ignore them.
_TEMPLATE_WORDS = frozenset("moment feeling chance sign opportunitie touch stake someone close being".split())
# Words that name no thing to attend to: lead nouns of the templates, generalised people, common verbs.
_NOT_TITLE_WORDS = frozenset(
    "moments moment feelings feeling chances chance signs sign opportunities opportunity ways way times "
    "someone close loved being touch touches stake people things person give take ask listen tell told "
    "know knew want wants wanted need needs needed help make think thought say said got called kept "
    "finally first only assistant should would could whether paid pay attention thinking time move "
    "taught teach learned decide decided feel feels noticed notice care cared grandma grandpa mom dad "
    "sister brother friend kids".split()
)
_CUE_RANK = {name: i for i, (name, _) in enumerate(_CUES)}
_MAX_PHRASE_WORDS = 14

_RELATION_WORDS = (
    r"sister|brother|mother|mom|mum|father|dad|parents?|son|daughter|wife|husband|partner|boyfriend|"
    r"girlfriend|friend|best friend|boss|manager|coworker|colleague|teacher|grandmother|grandma|"
    r"grandfather|grandpa|aunt|uncle|cousin|neighbou?r|roommate|kid|child|baby|doctor|therapist"
)
_GENERALISE: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(rf"\b(?:my|our|his|her|their)\s+(?:\w+\s+)?(?:{_RELATION_WORDS})s?'s\b", re.I),
        "their loved one's",
    ),
    (re.compile(rf"\b(?:my|our|his|her)\s+(?:\w+\s+)?(?:{_RELATION_WORDS})s?\b", re.I), "someone close"),
    (
        re.compile(rf"\bthe\s+(?:girl|boy|woman|man|lady|guy|teenager|teen|{_RELATION_WORDS})\b", re.I),
        "someone",
    ),
    (re.compile(r"\b(?:i am|i'm|im)\b", re.I), "someone is"),
    (re.compile(r"\b(?:she|he) (?:is|'s)\b", re.I), "someone is"),
    (re.compile(r"\bi've\b", re.I), "someone has"),
    (re.compile(r"\bi'd\b", re.I), "someone would"),
    (re.compile(r"\bi'll\b", re.I), "someone will"),
    (re.compile(r"\b(?:i|she|he)\b", re.I), "someone"),
    (re.compile(r"\bwe\b", re.I), "people"),
    (re.compile(r"\b(?:me|us|him)\b", re.I), "them"),
    (re.compile(r"\b(?:my|our|his|mine)\b", re.I), "their"),
    (re.compile(r"\b(?:myself|ourselves|himself|herself)\b", re.I), "themselves"),
)


@dataclass(frozen=True)
class _Candidate:
    text: str
    warnings: int
    cue_rank: int
    order: int


def _generalise(text: str) -> str:
    """Swap the particular people of a story for general ones, so the line fits anyone."""
    # A Title-case word that does not start the sentence is most likely a name ("when Maria called").
    text = re.sub(
        r"(?<=\S )([A-Z][a-z]+)(?:'s)?\b",
        lambda m: (
            m.group(0)
            if m.group(1).lower() in STOP_WORDS or m.group(1) in ("God", "ChatGPT")
            else ("someone's" if m.group(0).endswith("'s") else "someone")
        ),
        text,
    )
    for pattern, replacement in _GENERALISE:
        text = pattern.sub(replacement, text)
    # "her" is a possessive before a noun ("her fear") and an object otherwise ("told her").
    text = re.sub(
        r"\bher\b(\s+(\w+))?",
        lambda m: (
            ("their" + m.group(1))
            if m.group(2) and m.group(2).lower() not in _NOT_NOUN_AFTER_HER
            else ("them" + (m.group(1) or ""))
        ),
        text,
        flags=re.I,
    )
    return text


def _phrase(raw: str) -> str:
    """The cue's phrase, cut at the clause boundary, without vague intensifiers or trailing filler."""
    raw = _norm_quotes(raw)
    cut = _PHRASE_END.search(raw)
    if cut and cut.start() > 0:
        raw = raw[: cut.start()]
    # A second "when" usually starts a new thought: "scared when I told her when ...".
    words = [w for w in raw.split() if w.lower().strip(".,!?\"'") not in VAGUE_WORDS]
    words = words[:_MAX_PHRASE_WORDS]
    while words and words[-1].lower().strip(".,!?\"'") in _DANGLING:
        words.pop()
    return " ".join(words).strip(" .,!?;:\"'“”")


def _norm_quotes(text: str) -> str:
    return text.replace("\u2019", "'").replace("\u2018", "'")


def _has_content(phrase: str) -> bool:
    return any(w.lower() not in STOP_WORDS for w in re.findall(r"[A-Za-z']+", phrase))


def _strip_determiner(phrase: str) -> str:
    words = phrase.split()
    while words and words[0].lower() in ("the", "a", "an", "their", "this", "that", "these", "those", "some"):
        words.pop(0)
    return " ".join(words)


def _policies_from_clause(cue: str, match: re.Match[str]) -> list[str]:
    x = _phrase(match.group("x"))
    if not x or not _has_content(x):
        return []
    first = x.split()[0].lower()
    if cue in ("attend", "care"):
        if first in ("how", "whether", "what", "why", "who"):
            return [f"SIGNS of {x}"]
        if first in _SUBJECTS or first == "someone":
            return [f"MOMENTS when {x}"]
        np = _strip_determiner(x)
        if not np or np.split()[0].lower() in ("chance", "chances", "opportunity", "opportunities"):
            return []  # the "chance" cue phrases these better
        if cue == "care":
            return [f"MOMENTS when {np} is at stake"]
        return [f"SIGNS of {np}"]
    if cue == "feel":
        lowered = x.lower()
        for lead in ("like ", "as if ", "as though ", "that "):
            if lowered.startswith(lead):
                rest = x[len(lead) :]
                return [f"MOMENTS when it feels like {rest}"] if _has_content(rest) else []
        if first in STOP_WORDS:
            return []
        return [f"FEELINGS of being {x}"]
    if cue == "chance":
        if match.group("prep").lower() == "for":
            return [f"OPPORTUNITIES for {x}"]
        return [f"CHANCES to {x}"]
    if cue == "want":
        if first in _SUBJECTS or first in ("be", "not", "never"):
            return [f"CHANCES to {x}"] if first == "be" else []
        return [f"CHANCES to {x}"]
    if cue == "when":
        return [f"MOMENTS when {x}"]
    return []


def _fallback_policies(text: str) -> list[str]:
    """Content-word phrases ("hospital visits") for texts that voice no cue at all."""
    out = []
    text = re.sub(r"\bsomeone close\b|\bsomeone\b", ".", text)
    for sentence in _SENTENCE_SPLIT.split(text):
        run: list[str] = []
        for word in re.findall(r"[A-Za-z][A-Za-z'-]*", _norm_quotes(sentence)) + [""]:
            w = word.lower()
            if (
                w
                and w not in STOP_WORDS
                and w not in VAGUE_WORDS
                and w not in _NOT_TITLE_WORDS
                and not w.endswith(("ed", "ly"))
            ):
                run.append(word.lower())
                continue
            if run:
                out.append(" ".join(run[:4]))
            run = []
    # Longer phrases say more; ties keep their place in the text.
    ranked = sorted(enumerate(out), key=lambda t: (-len(t[1].split()), t[0]))
    return [f"MOMENTS that touch on {phrase}" for _, phrase in ranked]


def candidate_policies(response: str, story: str, max_n: int = 6) -> list[str]:
    """Attentional policies built from the participant's own words, best first.

    Cue phrases ("I noticed…", "I felt…", "I wanted to…", "when…") in the story and then the answer
    become lines in the study's style ("SIGNS of…", "FEELINGS of being…", "CHANCES to…",
    "MOMENTS when…"); people from the story are made general ("my sister" → "someone close").
    Every line passes the hard checks; lines with fewer soft warnings come first. Deterministic;
    an empty answer and story give an empty list.
    """
    if max_n < 1:
        raise ValueError(f"max_n must be at least 1, got {max_n}")
    found: list[_Candidate] = []
    order = 0
    for text in (story or "", response or ""):
        for sentence in _SENTENCE_SPLIT.split(_norm_quotes(text)):
            sentence = sentence.strip()
            if not sentence:
                continue
            general = _generalise(sentence)
            for cue, pattern in _CUES:
                for m in pattern.finditer(general):
                    for line in _policies_from_clause(cue, m):
                        order += 1
                        found.append(_score(line, _CUE_RANK[cue], order))
    # Content-word fallbacks only top up a story that voiced too few cues: they are weaker lines.
    n_cued = len({c.text.casefold() for c in found if c.warnings >= 0})
    if n_cued < RECOMMENDED_POLICIES_MIN:
        for line in _fallback_policies(_generalise(f"{story or ''}\n{response or ''}")):
            order += 1
            found.append(_score(line, len(_CUES), order))
    chosen: list[str] = []
    chosen_stems: list[set[str]] = []
    for cand in sorted(
        (c for c in found if c.warnings >= 0), key=lambda c: (c.warnings, c.cue_rank, c.order)
    ):
        stems = content_stems(cand.text) - _TEMPLATE_WORDS
        key = cand.text.casefold()
        if any(key == c.casefold() for c in chosen):
            continue
        if any(_covered(stems, other) or _covered(other, stems) for other in chosen_stems):
            continue
        chosen.append(cand.text)
        chosen_stems.append(stems)
        if len(chosen) == max_n:
            break
    return chosen


def _covered(a: set[str], b: set[str]) -> bool:
    return bool(a) and len(a & b) / len(a) >= OVERLAP_THRESHOLD


def _score(line: str, cue_rank: int, order: int) -> _Candidate:
    line = " ".join(line.split())
    if len(line) > POLICY_MAX_CHARS:
        line = line[:POLICY_MAX_CHARS].rsplit(" ", 1)[0]
    issues = check_policy(line)
    if any(i.severity == "error" for i in issues):
        return _Candidate(line, -1, cue_rank, order)  # filtered out by the caller
    return _Candidate(line, len(issues), cue_rank, order)


# --- title and description ------------------------------------------------------------------------

# Suffixes that mark a word as the name of a thing ("safety", "freedom"); titles prefer such words.
_NOUN_SUFFIXES = tuple("ness ion ity ty dom ment ship ance ence cy hood ism th".split())


def _key_words(texts: Iterable[str]) -> list[str]:
    """Content words ranked by how many texts use them (+1 for a noun suffix), then by first appearance."""
    counts: dict[str, int] = {}
    first: dict[str, int] = {}
    position = 0
    for text in texts:
        seen_here: set[str] = set()
        for word in re.findall(r"[A-Za-z][A-Za-z-]*", _norm_quotes(text)):
            w = word.lower()
            if (
                w in STOP_WORDS
                or w in VAGUE_WORDS
                or w in _NOT_TITLE_WORDS
                or len(w) < 3
                or (len(w) > 4 and w.endswith(("ed", "ly")))
            ):
                continue
            position += 1
            first.setdefault(w, position)
            if w not in seen_here:
                counts[w] = counts.get(w, 0) + 1
                seen_here.add(w)
    return sorted(counts, key=lambda w: (-(counts[w] + w.endswith(_NOUN_SUFFIXES)), first[w]))


def draft_title(policies: Sequence[str], response: str = "") -> str:
    """A 3–4 word title from the thing-words ("safety", "freedom") the policies and answer use most."""
    words = _key_words([*policies, response])
    things = [w for w in words if w.endswith(_NOUN_SUFFIXES)]
    if len(things) >= 2:
        title = f"{things[0].title()} and {things[1].title()}"
    elif things or words:
        title = f"Paying Attention to {(things or words)[0].title()}"
    else:
        title = "What I Pay Attention To"
    return title[:TITLE_MAX_CHARS]


def _plain_policy(policy: str) -> str:
    """A policy as running text: the study's capitalised lead words in lower case."""
    return " ".join(w.lower() if len(w) > 2 and w.isupper() else w for w in policy.split()).rstrip(" .")


def draft_description(policies: Sequence[str], response: str = "") -> str:
    """One or two sentences: what this way of choosing attends to, and the participant's answer."""
    lines = [_plain_policy(p) for p in policies if p.strip()][:3]
    if not lines:
        attends = "Choosing well here means paying close attention to what matters to the person."
    elif len(lines) == 1:
        attends = f"Choosing well here means paying attention to {lines[0]}."
    else:
        attends = f"Choosing well here means paying attention to {', '.join(lines[:-1])} and {lines[-1]}."
    first_answer = next((s.strip() for s in _SENTENCE_SPLIT.split(response or "") if s.strip()), "")
    first_answer = first_answer.rstrip(".!?;")
    description = attends
    if first_answer:
        description = f"{attends} In my words: “{first_answer}.”"
    if len(description) > DESCRIPTION_MAX_CHARS:
        description = (
            attends
            if len(attends) <= DESCRIPTION_MAX_CHARS
            else attends[: DESCRIPTION_MAX_CHARS - 1].rsplit(" ", 1)[0] + "."
        )
    return description


# --- wiser-than story -------------------------------------------------------------------------------

_STORY_NAMES = ("Alex", "Sam", "Jordan", "Taylor", "Morgan", "Riley", "Casey", "Jamie")


def _context_clause(context: str) -> str:
    context = " ".join(context.split()).rstrip(".")
    if not context:
        return "in a situation like this"
    if context.lower().startswith("when "):
        return "when " + context[5:]
    return f"when it came to {context[0].lower()}{context[1:]}"


def transition_story(from_card: Any, to_card: Any, context: str) -> str:
    """A short story of someone who moved from value A to value B in context C (offline template).

    Cards may be ValuesCard, mappings or objects with title/description/policies; policies may be empty.
    The name is picked from the titles with a stable hash, so the same pair always reads the same.
    """
    a, b = lenient_values_card(from_card), lenient_values_card(to_card)
    name = _STORY_NAMES[zlib.crc32(f"{a.title}|{b.title}".encode()) % len(_STORY_NAMES)]
    when = _context_clause(context)
    a_focus = f" — {_plain_policy(a.policies[0])}" if a.policies else ""
    if b.policies:
        b_focus = _plain_policy(b.policies[0])
        if len(b.policies) > 1:
            b_focus += f" and {_plain_policy(b.policies[1])}"
        now = f"Now {name} pays attention to {b_focus}, guided by “{b.title}”."
    else:
        now = f"Now {name} is guided by “{b.title}”."
    return (
        f"{when[0].upper()}{when[1:]}, {name} used to rely on “{a.title}”{a_focus}. "
        f"Over time, {name} found that this left something out. {now}"
    )
