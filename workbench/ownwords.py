"""Attentional policies rewritten from the participant's own words, only where the rewrite is sound.

A participant's story often says what they paid attention to ("I noticed he was exhausted after
school", "I wanted to be honest without pushing her", "I felt torn between loyalty and ambition").
A few sentence shapes can be turned, by rule, into a line of the study's form: a plural noun phrase,
then a clause ("SIGNS that someone is exhausted after school", "CHANCES to be honest without pushing
them", "FEELINGS of being torn between loyalty and ambition"). Everything else is left alone: a line
is kept only when its clause has a verb, it ends on a word that can end it, it names nobody, it is
not a stretch of the story copied out, and it passes every card check. Fewer lines, all of them
sound, is the point; the library (workbench.drafting) supplies the rest.

Pure text rules: this module must never call a model, touch the store or import Streamlit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from workbench.cardcheck import FUNCTION_WORDS, IRREGULAR_PLURALS, STOP_WORDS, VAGUE_WORDS, check_policy
from workbench.english import is_finite_verb, present_tense, verb_forms

# Longest clause a rewrite may keep: longer ones are retellings of the story, not things noticed.
MAX_CLAUSE_WORDS = 9
MIN_LINE_WORDS = 5
MAX_LINES = 3

_SENTENCE_SPLIT = re.compile(r"(?<=[.!?;])\s+|\n+")
# Where a clause ends: punctuation, a new clause, or a new "I ..." thought.
_WHO = r"(?:i|we|you|he|she|they|someone|it|people|then|my|our|his|her|their)\b"
_CLAUSE_END = re.compile(
    r"[,;:()]|\s[-–—]\s|\b(?:because|but|although|though|so that|so|which|until|unless|since|whereas|"
    r"even if|in order|while|when|whenever)\b"
    # "and", "or", "before", "after" join noun phrases too ("loyalty and ambition", "after school"):
    # they end the clause only when a new subject follows ("and I paid", "after he left").
    rf"|\b(?:and|or|before|after)\s+(?={_WHO})",
    re.IGNORECASE,
)

# A relation from the story ("my son", "our parents") becomes the role anyone could have: children and
# parents keep their role ("a child", "their parents"); everyone else is "someone close".
_ROLES = {
    "child": ("a child", "children"),
    "parent": ("a parent", "their parents"),
    "other": ("someone close", "people close to them"),
}
_RELATION_ROLE = {
    **dict.fromkeys("son daughter kid child baby boy girl toddler teen teenager".split(), "child"),
    **dict.fromkeys("mother mom mum father dad parent".split(), "parent"),
}
_RELATIONS = (
    r"sister|brother|mother|mom|mum|father|dad|parents?|sons?|daughters?|wife|husband|partner|boyfriend|"
    r"girlfriend|friends?|best friend|boss|manager|coworker|colleague|teacher|grandmother|grandma|"
    r"grandfather|grandpa|aunt|uncle|cousin|neighbou?r|roommate|kids?|child|children|baby|doctor|"
    r"therapist|nurse|pastor|priest|toddler|teen|teenager|boy|girl"
)
_POSSESSED_RELATION = re.compile(
    rf"\b(?:my|our|his|her|their)\s+(?:(?:little|older|younger|eldest|oldest|youngest|best|elderly|"
    rf"teenage|grown)\s+)?(?P<rel>{_RELATIONS})(?P<poss>'s)?\b",
    re.I,
)


def _role(match: re.Match[str]) -> str:
    rel = match.group("rel").lower()
    plural = rel.endswith("s") and rel not in ("boss",) or rel == "children"
    singular_rel = {"children": "child", "parents": "parent"}.get(rel, rel.rstrip("s") if plural else rel)
    one, many = _ROLES[_RELATION_ROLE.get(singular_rel, "other")]
    if plural and singular_rel in ("friend", "sister", "brother", "cousin", "colleague", "coworker"):
        many = f"their {singular_rel}s"
    phrase = many if plural else one
    return phrase + ("'s" if match.group("poss") else "")


# Particular people become general ones, so the line fits anyone in a similar spot.
_GENERALISE: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\bthe\s+(?:girl|boy|woman|man|lady|guy|teenager|teen)\b", re.I), "someone"),
    (re.compile(r"\b(?:i'm|im)\b", re.I), "I am"),
    (re.compile(r"\b(?:she|he)'s\b", re.I), "\x00 is"),
    (re.compile(r"\b(?:she|he)\b", re.I), "\x00"),
    (re.compile(r"\b(?:him)\b", re.I), "them"),
    (re.compile(r"\b(?:his)\b", re.I), "their"),
    (re.compile(r"\b(?:himself|herself)\b", re.I), "themselves"),
)
# After these "her" is an object ("told her without"), else a possessive ("her fear").
_NOT_NOUN_AFTER_HER = FUNCTION_WORDS | frozenset(
    "without about into onto through during before after against around because up down out off over "
    "again too first finally".split()
)
# The narrator's own pronouns: a rewrite that still has one is a retelling, so it is dropped.
_NARRATOR = re.compile(r"\b(?:i|me|my|mine|myself|we|us|our|ours|ourselves|i've|i'd|i'll)\b", re.I)
_PEOPLE = re.compile(r"\b(?:someone|someone's|they|them|their|themselves|people)\b", re.I)
_YOU = re.compile(r"\b(?:you|your|yours|yourself)\b", re.I)
_PAST = re.compile(r"\b(?:was|were|had|did)\b", re.I)
_PARTICULAR = re.compile(
    r"\d|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|[a-z]+teen|twenty|thirty|"
    r"forty|fifty|hundred|monday|tuesday|wednesday|thursday|friday|saturday|sunday|yesterday|tonight)\b",
    re.I,
)
# Words that name the one person of a line: each may appear once ("a child ... a child" is soup).
_ONE_PERSON = frozenset({"someone", "a child", "a parent", "someone close"})
_SUBJECTS_SINGULAR = frozenset({"someone", "a", "an", "the", "this", "that", "it", "everyone", "nobody"})
_SUBJECTS_PLURAL = frozenset({"they", "people", "we", "both"})


@dataclass(frozen=True)
class OwnWordsLine:
    """A policy rewritten from the participant's words, and the sentence it came from."""

    text: str
    sentence: str
    cue: str


def sentences(text: str) -> list[str]:
    """The sentences (and lines) of a text, stripped, empty ones left out."""
    return [s.strip() for s in _SENTENCE_SPLIT.split(text) if s.strip()]


def _norm(text: str) -> str:
    return text.replace("\u2019", "'").replace("\u2018", "'").replace("“", '"').replace("”", '"')


def generalise(text: str, referent: str = "someone") -> str:
    """The particular people of a story made general ("my son" → "a child", "her fear" → "their fear").

    "he" and "she" become `referent`: the role the story last introduced ("a child" after "my son"),
    or "someone".
    """
    # A Title-case word inside a sentence is most likely a name ("when Maria called").
    text = re.sub(
        r"(?<=\S )([A-Z][a-z]+)(?:'s)?\b",
        lambda m: (
            m.group(0)
            if m.group(1).lower() in STOP_WORDS or m.group(1) in ("God", "I")
            else ("someone's" if m.group(0).endswith("'s") else "someone")
        ),
        text,
    )
    text = _POSSESSED_RELATION.sub(_role, text)
    text = re.sub(rf"\bthe\s+(?P<rel>{_RELATIONS})(?P<poss>'s)?\b", _role, text, flags=re.I)
    for pattern, replacement in _GENERALISE:
        text = pattern.sub(replacement, text)
    text = text.replace("\x00", referent)
    text = re.sub(r"\b(someone close|a child|a parent) someone\b", r"\1", text)  # "my friend Maria"
    return re.sub(
        r"\bher\b(\s+(\w+))?",
        lambda m: (
            ("their" + m.group(1))
            if m.group(2) and m.group(2).lower() not in _NOT_NOUN_AFTER_HER
            else ("them" + (m.group(1) or ""))
        ),
        text,
        flags=re.I,
    )


def _clause(text: str) -> list[str]:
    """The words of `text` up to the first clause boundary, without vague intensifiers."""
    cut = _CLAUSE_END.search(text)
    if cut is not None:
        text = text[: cut.start()]
    words = [w.strip(".,!?\"'") for w in text.split()]
    return [w for w in words if w and w.lower() not in VAGUE_WORDS]


def _present(words: list[str]) -> list[str] | None:
    """The clause "subject verb ..." in the present tense, or None when its verb is not understood."""
    if len(words) < 2:
        return None
    # Find the subject (up to three words) and its finite verb.
    for i in range(1, min(4, len(words))):
        if is_finite_verb(words[i]):
            subject = [w.lower() for w in words[:i]]
            head = subject[-1]
            plural = head in _SUBJECTS_PLURAL or head in IRREGULAR_PLURALS or (
                subject[0] not in _SUBJECTS_SINGULAR and head.endswith("s") and not head.endswith("ss")
                and head not in ("someone", "this", "it")
            )
            verb = words[i].lower()
            if verb in ("do", "did", "does") and i + 1 < len(words) and words[i + 1].lower() == "not":
                return None  # "did not ...": a line about what is absent
            present = present_tense(verb)
            if present is None:
                return None
            if plural:
                present = {"is": "are", "has": "have", "does": "do", "was": "are"}.get(present, present)
                if present.endswith("s") and present not in ("is", "has", "does", "was"):
                    base = next((f.base for f in verb_forms().get(present, ()) if f.form == "present"), None)
                    present = base or present
            return [*words[:i], present, *words[i + 1 :]]
    return None


def _line(lead: str, words: list[str]) -> str | None:
    text = f"{lead} {' '.join(words)}"
    if len(words) > MAX_CLAUSE_WORDS or len(text.split()) < MIN_LINE_WORDS:
        return None
    people = _PEOPLE.findall(text) + re.findall(r"\ba (?:child|parent)\b|\bsomeone close\b", text)
    if _NARRATOR.search(text) or _YOU.search(text) or len(people) > 2 or len(set(people) & _ONE_PERSON) < len(
        [p for p in people if p in _ONE_PERSON]
    ):
        return None  # "I" or "you" left in, or pronoun soup ("a child starts saying a child was stupid")
    if _PAST.search(" ".join(words[1:])):
        return None  # a past tense left after the rewrite: a retelling, not something to notice
    if _PARTICULAR.search(text):
        return None  # an age, a date or a count belongs to one story ("CHANCES to quit at thirteen")
    return text


def _strip_article(words: list[str]) -> list[str]:
    while words and words[0].lower() in ("the", "a", "an", "some", "those", "these"):
        words = words[1:]
    return words


# (cue name, pattern, builder). Each pattern's group `x` is what follows the cue.
_NOTICE = re.compile(
    r"\b(?:i|we)\s+(?:noticed|notice|realised|realized|saw|see|could see|could tell|learned|learnt|"
    r"remembered|understood)\s+(?:that\s+)?(?P<x>.+)",
    re.I,
)
_ATTEND = re.compile(
    r"\b(?:i|we)\s+(?:paid attention to|pay attention to|focused on|focus on|looked for|look for|"
    r"listened for|watched for|kept thinking about|kept an eye on|thought about|cared about|care about|"
    r"worried about)\s+(?P<x>.+)",
    re.I,
)
_WANT = re.compile(
    r"\b(?:i|we)\s+(?:wanted|want|tried|try|needed|need|hoped|hope|chose|choose|decided|decide|"
    r"learned|learnt|started)\s+to\s+(?P<x>.+)",
    re.I,
)
_FELT = re.compile(r"\b(?:i|we)\s+(?:felt|feel|was feeling)\s+(?P<x>.+)", re.I)
_MATTERED = re.compile(
    r"\bwhat\s+(?:mattered|matters|counted|counts)(?:\s+most)?(?:\s+to\s+(?:me|us))?\s+(?:was|is)\s+(?P<x>.+)",
    re.I,
)


def _from_notice(x: str) -> str | None:
    clause = _clause(x)
    if clause and clause[0].lower() in ("what", "how", "why", "it", "this", "that", "there"):
        return None  # "I learned that what matters is ...": an insight, not something seen
    words = _present(clause)
    return _line("SIGNS that", words) if words else None


_PLURAL_HEAD = re.compile(
    r"^(?:(?:the|some|those|these|any)\s+)?(?P<mod>[a-z]+\s+)?(?P<head>[a-z]+s)\s+"
    r"(?P<link>when|where|that|who|of|for|to|in|at|between|with|from|about)\s+(?P<rest>.+)",
    re.I,
)


def _from_attend(x: str) -> str | None:
    plural = _PLURAL_HEAD.match(x.strip())
    if plural and plural.group("head").lower() not in STOP_WORDS and not is_finite_verb(plural.group("head")):
        # "the moments when he asked ..." → "MOMENTS when someone asks ..."
        link = plural.group("link").lower()
        rest = _clause(plural.group("rest"))
        if link in ("when", "where", "that", "who"):
            rest = _present(rest) or []
        lead = f"{(plural.group('mod') or '').upper()}{plural.group('head').upper()} {link}"
        return _line(lead, rest) if rest else None
    words = _strip_article(_clause(x))
    if not words:
        return None
    head = words[0].lower()
    if head in ("how", "whether", "what", "why", "who"):
        rest = _present(words[1:]) if len(words) > 2 else None
        return _line(f"SIGNS of {head}", rest) if rest else None
    return _from_mattered(x)


def _from_want(x: str) -> str | None:
    words = _clause(x)
    if not words or words[0].lower() in ("not", "never", "make", "ensure", "avoid", "stop"):
        return None
    forms = verb_forms().get(words[0].lower(), ())
    if not any(f.form == "base" for f in forms):
        return None
    return _line("CHANCES to", words)


def _from_felt(x: str) -> str | None:
    words = _clause(x)
    if not words or words[0].lower() in ("like", "that", "as", "so", "it", "a", "an", "the", "good", "bad", "right"):
        return None
    if _PEOPLE.search(" ".join(words)):
        return None
    return _line("FEELINGS of being", words)


def _from_mattered(x: str) -> str | None:
    """ "what mattered was her freedom to choose" → "MOMENTS when someone's freedom to choose is at stake"."""
    words = _clause(x)
    if words and words[0].lower() in ("their", "someone's"):
        words = ["someone's", *words[1:]]
    finite = [w for i, w in enumerate(words) if is_finite_verb(w) and (i == 0 or words[i - 1].lower() != "to")]
    if len(words) < 2 or finite or words[-1].lower().endswith("s"):
        return None  # a clause or a plural: "is at stake" would not fit
    return _line("MOMENTS when", [*words, "is", "at", "stake"])


_CUES = (
    ("attend", _ATTEND, _from_attend),
    ("notice", _NOTICE, _from_notice),
    ("want", _WANT, _from_want),
    ("felt", _FELT, _from_felt),
    ("mattered", _MATTERED, _from_mattered),
)


def own_words_lines(response: str, story: str, *, max_lines: int = MAX_LINES) -> tuple[OwnWordsLine, ...]:
    """Up to `max_lines` sound policies rewritten from the story, then the answer; none when none is sound.

    A line is kept only when it passes every card check with the participant's words as the story
    (so no fragment, dangling end, named person, copied stretch of story, negative or outcome).
    Deterministic; the first cue in the text comes first.
    """
    words_given = f"{response}\n{story}"
    found: list[OwnWordsLine] = []
    seen: set[str] = set()
    for text in (story or "", response or ""):
        referent = "someone"
        for sentence in sentences(_norm(text)):
            roles = {_role(m) for m in _POSSESSED_RELATION.finditer(sentence)} & {"a child", "a parent"}
            if len(roles) == 1:
                referent = roles.pop()  # "my son ... he" → "a child"
            elif roles:
                referent = "someone"
            general = generalise(sentence, referent)
            for cue, pattern, build in _CUES:
                for match in pattern.finditer(general):
                    line = build(match.group("x"))
                    if line is None:
                        continue
                    line = line[0] + line[1:]
                    key = line.casefold()
                    if key in seen or check_policy(line, story=words_given):
                        continue
                    seen.add(key)
                    found.append(OwnWordsLine(line, sentence, cue))
    return tuple(found[:max_lines])
