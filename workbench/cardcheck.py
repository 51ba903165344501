"""Checks a values card before a participant confirms it: hard errors that block and soft warnings.

Hard errors (empty fields, over-long text, fewer than two or more than ten policies, duplicate lines)
block confirmation. Soft warnings implement the attentional-policy rules of REFERENCE.md §1 (plural
noun first, general, concrete, positive, not an outcome, not instrumental, not about others'
expectations, a coherent set) as cheap word-level heuristics; the participant may override any of
them, so they must err on the side of a friendly hint rather than a verdict. This module is pure text
logic: it must never import Streamlit, touch the store, call a model or download anything.

Heuristics, documented because a participant may be told "this sounds like..." on their strength:
- plural noun first: the first word (or the first word after at most two modifiers such as "small")
  is a known irregular plural ("people", "children") or ends in "s" but not in "ss"/"us"/"is"/"'s",
  and is not a function word, a common verb ("is", "makes", "listens") or an "-izes" verb. Case is
  ignored. Singular mass nouns ("UNDERSTANDING of…", common in the 2023 study's own cards) are
  flagged, as the reference's rule asks; ambiguous words ("needs", "values", "offers") count as nouns.
- a particular person: "my/our/his/her" + a relation ("my older sister"), "the girl"-style phrases,
  or a Title-case word inside the line that is not a known common proper word ("God", "ChatGPT").
- overlap: the content words of one line (stop words and the leading plural noun removed, a final
  "s" stripped) are at least 80% contained in another line's.
- how a line is built (what the old rule-based drafter got wrong): under four words, or under six
  with fewer than two content words ("SIGNS of safety"); a clause right after the lead noun
  ("MOMENTS when…", "PEOPLE who…") with no verb from workbench.english's list, no "-ed" word and no
  auxiliary, or a determiner followed by a word that cannot follow one ("their toward"); a last word
  that needs more after it ("without", "the", "and"; stranded "about"/"to" are fine English); a run of
  seven or more words shared with the participant's story once people words are left out.
- a title that is not a name: "Paying attention to…"-style descriptions, a sentence (ends in
  "."/"?", or has "I", "you", "should", "is"…), or a dangling last word.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from workbench.english import is_finite_verb

from .errors import InputError

# Hard limits, shown by the pages beside the inputs.
TITLE_MAX_CHARS = 80
DESCRIPTION_MAX_CHARS = 600
POLICY_MAX_CHARS = 200
MIN_POLICIES = 2
MAX_POLICIES = 10

# Soft guidelines from REFERENCE.md §1 (warnings only).
TITLE_WORDS_MIN = 3
TITLE_WORDS_MAX = 6
DESCRIPTION_MAX_SENTENCES = 3
RECOMMENDED_POLICIES_MIN = 3
RECOMMENDED_POLICIES_MAX = 7
OVERLAP_THRESHOLD = 0.8
# A line needs at least this many words, and (under six words) this many content words after its lead
# noun, to say what is noticed ("SIGNS of safety" and "FEELINGS of being right" do not). Two of the
# study's 835 distinct lines are shorter (tests/test_cardcheck.py reads them from the shared dump).
POLICY_WORDS_MIN = 4
POLICY_CONTENT_WORDS_MIN = 2
# A run of this many words (people words left out) shared with the participant's story is a copy. Six
# would flag sound rewrites of one phrase ("CHANCES to be honest with them without pushing them").
STORY_COPY_WORDS = 7

OUTCOME_MESSAGE = "This sounds like an outcome. What do you notice in the moment that tells you it matters?"

# Stable codes: the store keeps the overridden ones (values_cards.overrides), pages key help text on them.
ERROR_CODES = (
    "title_empty",
    "title_too_long",
    "description_empty",
    "description_too_long",
    "policy_empty",
    "policy_too_long",
    "too_few_policies",
    "too_many_policies",
    "duplicate_policy",
)
WARNING_CODES = (
    "policy_not_plural_noun",
    "policy_too_short",
    "policy_fragment",
    "policy_dangling",
    "policy_copies_story",
    "policy_names_person",
    "policy_vague",
    "policy_outcome",
    "policy_negative",
    "policy_instrumental",
    "policy_expectations",
    "policy_overlap",
    "policy_count",
    "title_length",
    "title_not_name",
    "description_sentences",
)

Severity = Literal["error", "warning"]


class CardShapeError(InputError):
    """The object given as a card lacks a field or has one of the wrong type."""


@dataclass(frozen=True)
class ValuesCard:
    """A participant's card: a short title, a 1–3 sentence description, attentional policies."""

    title: str
    description: str
    policies: tuple[str, ...]

    def __post_init__(self) -> None:
        # Accept a list from callers but keep the frozen card hashable and immutable.
        object.__setattr__(self, "policies", tuple(self.policies))

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "description": self.description, "policies": list(self.policies)}


def as_values_card(card: Any) -> ValuesCard:
    """A ValuesCard from a ValuesCard, a mapping or any object with title/description/policies."""
    if isinstance(card, ValuesCard):
        return card
    values: dict[str, Any] = {}
    for name in ("title", "description", "policies"):
        if isinstance(card, Mapping):
            if name not in card:
                raise CardShapeError(f"card is missing the field {name!r} (got keys {sorted(card)})")
            values[name] = card[name]
        elif hasattr(card, name):
            values[name] = getattr(card, name)
        else:
            raise CardShapeError(f"card of type {type(card).__name__} has no field {name!r}")
    for name in ("title", "description"):
        if values[name] is None:
            values[name] = ""
        if not isinstance(values[name], str):
            raise CardShapeError(f"card field {name!r} must be text, got {type(values[name]).__name__}")
    policies = values["policies"]
    if policies is None:
        policies = []
    if isinstance(policies, str) or not isinstance(policies, Iterable):
        raise CardShapeError(f"card field 'policies' must be a list of lines, got {type(policies).__name__}")
    policies = list(policies)
    for i, line in enumerate(policies):
        if not isinstance(line, str):
            raise CardShapeError(f"card field policies[{i}] must be text, got {type(line).__name__}")
    return ValuesCard(values["title"], values["description"], tuple(policies))


def lenient_values_card(card: Any) -> ValuesCard:
    """Like as_values_card, but only the title is required (canonical values may lack the rest)."""
    if isinstance(card, Mapping) and "title" in card:
        return ValuesCard(
            str(card["title"]), str(card.get("description") or ""), tuple(card.get("policies") or ())
        )
    if not isinstance(card, Mapping) and hasattr(card, "title"):
        return ValuesCard(
            str(card.title),
            str(getattr(card, "description", "") or ""),
            tuple(getattr(card, "policies", ()) or ()),
        )
    return as_values_card(card)  # raises CardShapeError naming what is missing


@dataclass(frozen=True)
class CardIssue:
    """One problem with one field. `match` is the text that triggered it, for highlighting."""

    code: str
    field: str
    message: str
    severity: Severity
    match: str | None = None


@dataclass(frozen=True)
class CardCheck:
    errors: tuple[CardIssue, ...] = ()
    warnings: tuple[CardIssue, ...] = ()

    def ok(self, overridden: Iterable[str] = frozenset()) -> bool:
        """True when there are no hard errors and every warning's code is in `overridden`."""
        return not self.errors and not self.outstanding(overridden)

    def outstanding(self, overridden: Iterable[str] = frozenset()) -> tuple[CardIssue, ...]:
        """The warnings the participant has not overridden yet."""
        skip = set(overridden)
        return tuple(w for w in self.warnings if w.code not in skip)

    def for_field(self, field_name: str) -> tuple[CardIssue, ...]:
        """Errors then warnings attached to one field (e.g. 'policies[2]'), to show beside its input."""
        return tuple(i for i in (*self.errors, *self.warnings) if i.field == field_name)

    @property
    def warning_codes(self) -> frozenset[str]:
        return frozenset(w.code for w in self.warnings)

    @property
    def error_codes(self) -> frozenset[str]:
        return frozenset(e.code for e in self.errors)


# --- word lists ------------------------------------------------------------------------------------

_WORD_RE = re.compile(r"[A-Za-z][A-Za-z'-]*")

IRREGULAR_PLURALS = frozenset(
    "people children men women data criteria phenomena feet teeth mice geese folk folks media "
    "indices crises analyses bases hypotheses theses".split()
)
# Words ending in "s" that are not plural nouns (verbs, pronouns, adverbs, conjunctions...).
_NOT_PLURAL_S = frozenset(
    "is was has does his hers its ours yours theirs this thus us yes as always sometimes perhaps "
    "besides unless whereas towards afterwards upwards nevertheless less news whereas across "
    "makes helps gives takes lets gets seems says goes tries ensures shows keeps puts becomes "
    "includes involves requires provides allows considers focuses notices pays looks asks tells "
    "knows thinks believes listens checks encourages respects treats avoids remembers explains "
    "validates acknowledges understands recognises recognizes cares tries wants feels helps".split()
)
# Function words that can never start the attended-to noun phrase.
FUNCTION_WORDS = frozenset(
    "a an the this that these those my your his her its our their i you he she it we they me him "
    "them us to of for in on at by with from about as and or but if when where while because so "
    "than then there here what which who whom whose how why be is are was were been being do does "
    "did have has had will would should could can may might must shall not no never don't avoid "
    "always just also only very really".split()
)
STOP_WORDS = FUNCTION_WORDS | frozenset(
    "am all any some each every more most other others such own same too into over under again "
    "further once both few nor up down out off s t very someone something things thing way ways "
    "one ones get got make made feel felt like".split()
)
# Lead nouns the study's style uses; they repeat across a set by design, so overlap ignores them.
_RELATIONS = (
    "sister|brother|mother|mom|mum|mommy|father|dad|daddy|parents?|son|daughter|wife|husband|partner|"
    "boyfriend|girlfriend|fianc[ée]e?|friend|best friend|boss|manager|coworker|co-worker|colleague|"
    "teacher|grand(?:mother|father|ma|pa|parents?)|aunt|uncle|cousin|neighbou?r|roommate|child|kid|"
    "baby|therapist|doctor|pastor|priest"
)
_PERSON_PATTERNS = (
    re.compile(rf"\b(?:my|our)\s+(?:[a-z]+\s+)?(?:{_RELATIONS})s?\b", re.IGNORECASE),
    re.compile(rf"\b(?:his|her)\s+(?:{_RELATIONS})\b", re.IGNORECASE),
    re.compile(
        rf"\bthe\s+(?:girl|boy|woman|man|lady|guy|teenager|teen|young woman|young man|{_RELATIONS})\b",
        re.IGNORECASE,
    ),
)
# Title-case words that are not a particular person from the story.
COMMON_PROPER_WORDS = frozenset(
    "I God Jesus Allah Christ Bible Quran Torah ChatGPT AI Christian Christians Muslim Muslims Jewish "
    "Hindu Buddhist Catholic Protestant American Americans English Spanish French Chinese Black White "
    "Latino Latina Asian Indigenous Native Monday Tuesday Wednesday Thursday Friday Saturday Sunday "
    "January February March April May June July August September October November December "
    "Internet LGBTQ LGBT Earth Christmas".split()
)
VAGUE_WORDS = frozenset(
    "meaningful meaningfully deep deeply deeper really very truly profound profoundly extremely "
    "incredibly totally absolutely super hugely immensely utterly".split()
)
_OUTCOME_RE = re.compile(
    r"\b(?:to make sure|make sure|makes sure|making sure|ensure|ensures|ensuring|so that|in order to|"
    r"so as to|the goal (?:is|of)|in the end)\b",
    re.IGNORECASE,
)
_NEGATIVE_RE = re.compile(
    r"\b(?:not|never|avoid|avoids|avoiding|avoided|don't|dont|do not|does not|doesn't|shouldn't|"
    r"should not|mustn't|must not|won't|refrain(?:ing)? from|stop(?:ping)? (?:doing|being))\b",
    re.IGNORECASE,
)
_INSTRUMENTAL_RE = re.compile(
    r"\b(?:(?:because|since|as) (?:it|this|that|they) (?:leads?|will lead|gets?|will get|helps?|pays? off)"
    r"(?: me| us| them| you)?(?: to)?|which (?:leads?|will lead) to|in order to (?:get|gain|win|achieve|have|earn)"
    r"|helps? (?:me|us|them|you|people|someone) (?:to )?(?:achieve|get|gain|reach|win|earn)"
    r"|as a means (?:to|of)|so (?:that )?(?:i|we|they|you) (?:can|could) (?:get|gain|win|achieve|earn)"
    r"|pays? off|in exchange for|useful for getting)\b",
    re.IGNORECASE,
)
_EXPECTATIONS_RE = re.compile(
    r"\b(?:what (?:others|other people|people|everyone|society|they) (?:expects?|thinks?|wants?|would think)"
    r"|(?:others'?|people'?s?|society'?s?|social) expectations?|expected of (?:me|us|them|you)"
    r"|socially acceptable|(?:be|being|seem|seeming|look|looking) acceptable|approval|approved of|"
    r"fit(?:ting)? in|look(?:ing)? good (?:to|in front of)|impress(?:ing)? (?:others|people|them)"
    r"|how it looks to others|what the neighbou?rs think)\b",
    re.IGNORECASE,
)


# Words that start a clause after the lead noun: what follows must say what happens, so it needs a verb
# ("MOMENTS when someone close" says nothing happens; "MOMENTS when someone close calls" does).
_CLAUSE_STARTS = frozenset("when whenever where wherever that which who whose while if once until".split())
# Subject words a story-made line pairs with "close" ("someone close"), where "close" is no verb.
_CLOSE_SUBJECTS = frozenset("someone people those one ones friends family".split())
_PREPOSITIONS = frozenset(
    "to of for in on at by with from about into onto toward towards without between among amongst during "
    "through over under after before against around across behind beyond within upon via per despite "
    "except beside beneath amid".split()
)
_CONJUNCTIONS = frozenset("and or but nor because if when while although though unless whereas than".split())
_DETERMINERS = frozenset("a an the my your their our its every each".split())
_SUBJECT_PRONOUNS = frozenset("i you he she we they it me us them him".split())
_AUX_WORDS = frozenset(
    "is are was were be been has have had will would should could can may might must do does did".split()
)
# What may not follow a determiner: "their toward", "the and", "a is" mean a word went missing.
_NOT_AFTER_DETERMINER = _PREPOSITIONS | _CONJUNCTIONS | _DETERMINERS | _SUBJECT_PRONOUNS | _AUX_WORDS
# Words a line cannot end on. Common prepositions are left out: a stranded one is good English
# ("IDEAS the person is excited about", "PEOPLE someone can turn to"); these rarely are.
_DANGLING_ENDS = (
    _DETERMINERS
    | _CONJUNCTIONS
    | frozenset(
        "without between among amongst toward towards during despite except via per into onto upon "
        "beside beneath amid within whether which who whose where should must shall would might not very "
        "such".split()
    )
)
# Titles that describe the card instead of naming the value ("Paying Attention to Stop").
_GENERIC_TITLE_RE = re.compile(
    r"^\s*(?:paying attention|pay attention|attention to|what (?:i|we|you|matters)\b|things (?:i|we)\b|"
    r"my (?:value|card)|values? card|title\b|untitled)",
    re.IGNORECASE,
)
# A title with these words is a sentence about the value, not its name.
_SENTENCE_WORDS = frozenset("i i'm we you should must shall is are was were am".split())
# People words a story and a line made from it write differently ("my son" / "someone close").
_PEOPLE_WORDS = frozenset(
    "i me my mine myself we us our ours you your he him his she her hers they them their theirs it its "
    "someone someone's somebody close person person's people a an the".split()
)


def _norm(text: str) -> str:
    return text.replace("\u2019", "'").replace("\u2018", "'")


def _words(text: str) -> list[str]:
    return _WORD_RE.findall(_norm(text))


def _is_plural_noun(word: str) -> bool:
    w = word.lower().strip("'-")
    if "-" in w:
        w = w.rsplit("-", 1)[-1]
    if w in IRREGULAR_PLURALS:
        return True
    if w in _NOT_PLURAL_S or w in FUNCTION_WORDS or len(w) < 3 or w.endswith("'s"):
        return False
    if len(w) > 6 and w.endswith(("izes", "yzes")):
        return False  # "prioritizes", "analyzes": verbs
    return w.endswith("s") and not w.endswith(("ss", "us", "is"))


def begins_with_plural_noun(policy: str) -> bool:
    """True when the line starts with a plural noun, optionally after up to two modifiers ("small")."""
    words = _words(policy)
    for i, word in enumerate(words[:3]):
        if _is_plural_noun(word):
            return True
        w = word.lower()
        # A modifier may precede the noun ("SMALL MOMENTS", "shared meals"); verbs in -ing, adverbs in
        # -ly and function words may not, since they mean the line starts with an action, not a thing.
        if i == 2 or w in FUNCTION_WORDS or w.endswith(("ing", "ly")) or w.endswith("'s"):
            return False
    return False


def content_stems(policy: str) -> set[str]:
    """Content words of a line, roughly stemmed; the leading plural noun and stop words are left out."""
    words = [w.lower() for w in _words(policy)]
    if words and _is_plural_noun(words[0]):
        words = words[1:]
    stems = set()
    for w in words:
        w = w.removesuffix("'s").strip("'")
        if w in STOP_WORDS or len(w) < 2:
            continue
        if len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
            w = w[:-1]
        stems.add(w)
    return stems


def running_text(policy: str) -> str:
    """A policy as it reads inside a sentence: the capitalised lead words in lower case, no full stop
    ("MOMENTS when a child asks" → "moments when a child asks")."""
    return " ".join(w.lower() if len(w) > 1 and w.isupper() else w for w in policy.split()).rstrip(" .")


def _normalised_line(text: str) -> str:
    return " ".join(_norm(text).casefold().split()).rstrip(" .;,!")


def _quote(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return f"“{text if len(text) <= limit else text[: limit - 1] + '…'}”"


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s.strip()]


def _lower_words(text: str) -> list[str]:
    return [w.lower() for w in _words(text)]


def _has_finite_verb(words: Sequence[str]) -> bool:
    for i, w in enumerate(words):
        if w == "close" and i > 0 and words[i - 1].removesuffix("'s") in _CLOSE_SUBJECTS:
            continue  # "someone close": an adjective
        if is_finite_verb(w) or w.endswith(("n't", "'re", "'ve", "'ll", "'d")):
            return True
        if w in ("it's", "that's", "there's", "here's", "what's", "who's", "he's", "she's", "someone's"):
            return True
        if len(w) > 4 and (w.endswith("ed") or w.endswith(("ises", "izes", "ates", "ifies"))):
            return True  # a verb we do not list ("when someone hesitated", "when a parent apologises")
    return False


def policy_fragment(policy: str) -> str | None:
    """Why the line reads as a broken sentence, or None: a clause with no verb, or a word gone missing.

    A clause started right after the lead noun ("MOMENTS when ...", "SIGNS that ...", "PEOPLE who ...")
    must have a finite verb; a determiner must not be followed by a preposition, a conjunction, another
    determiner, a pronoun or an auxiliary ("their toward", "the and").
    """
    words = _lower_words(policy)
    for a, b in zip(words, words[1:], strict=False):
        if a in _DETERMINERS and b in _NOT_AFTER_DETERMINER and b != "while":  # "for a while"
            return f"{a} {b}"
    # The clause word must come right after the lead noun phrase (at most two modifiers before the noun).
    for i, w in enumerate(words[1:4], start=1):
        if w in _CLAUSE_STARTS:
            rest = words[i + 1 :]
            # "when facing ...", "while waiting ...": a clause may be shortened to its -ing verb.
            shortened = w not in ("that", "which", "who", "whose") and rest and rest[0].endswith("ing")
            if not shortened and not _has_finite_verb(rest):
                return w
            return None
        if _is_plural_noun(words[i - 1]) and w not in _CLAUSE_STARTS:
            return None  # the noun phrase went on with something else ("SIGNS of ...")
    return None


def dangling_end(text: str) -> str | None:
    """The last word when a line or title stops on a word that needs more after it ("without", "the")."""
    words = _lower_words(text)
    if not words:
        return None
    last = words[-1]
    if last in _DANGLING_ENDS and not (last == "while" and words[-2:-1] in (["a"], ["the"])):
        return last
    # "next" ends a line well after a verb ("what to try next"), not after "sitting" or "right".
    if last == "next" and len(words) > 1 and (words[-2].endswith("ing") or words[-2] == "right"):
        return last
    # A common preposition may end a line, but not right after another function word ("to the of").
    if len(words) > 1 and last in _PREPOSITIONS and words[-2] in (_DETERMINERS | _PREPOSITIONS | _CONJUNCTIONS):
        return last
    return None


_TOKEN_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9'-]*")


def _people_free(text: str) -> list[re.Match[str]]:
    return [m for m in _TOKEN_RE.finditer(_norm(text)) if m.group(0).lower() not in _PEOPLE_WORDS]


def copied_run(line: str, story: str, min_words: int = STORY_COPY_WORDS) -> str | None:
    """The stretch of the line that repeats at least `min_words` words of the story in a row, or None.

    People words ("my son", "someone close", "she") are left out of both before comparing, so a
    story sentence with its people made general still counts as copied.
    """
    a_tokens, b_tokens = _people_free(line), _people_free(story)
    a = [m.group(0).lower() for m in a_tokens]
    b = [m.group(0).lower() for m in b_tokens]
    if len(a) < min_words or len(b) < min_words:
        return None
    best_end, best_len = 0, 0
    previous = [0] * (len(b) + 1)
    for i in range(1, len(a) + 1):
        current = [0] * (len(b) + 1)
        for j in range(1, len(b) + 1):
            if a[i - 1] == b[j - 1]:
                current[j] = previous[j - 1] + 1
                if current[j] > best_len:
                    best_len, best_end = current[j], i
        previous = current
    if best_len < min_words:
        return None
    return _norm(line)[a_tokens[best_end - best_len].start() : a_tokens[best_end - 1].end()]


def title_not_name(title: str) -> str | None:
    """Why a title reads as a description or a sentence rather than a name, or None."""
    generic = _GENERIC_TITLE_RE.match(_norm(title))
    if generic:
        return generic.group(0).strip()
    if title.rstrip().endswith((".", "?", "!")):
        return title.strip()[-1]
    words = _lower_words(title)
    sentence = next((w for w in words if w in _SENTENCE_WORDS), None)
    if sentence:
        return sentence
    end = dangling_end(title)
    if end or (words and words[-1] in _PREPOSITIONS):
        return end or words[-1]
    return None


# --- checks ---------------------------------------------------------------------------------------


def check_policy(policy: str, field_name: str = "policy", *, story: str = "",
                 question: str = "") -> tuple[CardIssue, ...]:
    """Hard and soft issues of one attentional-policy line on its own (no set-level checks).

    `story` is what the participant wrote (their answer and story); when given, a line that copies a
    long stretch of it is flagged. `question` is the question's title and text: a role it names ("a
    child who refuses homework") is the situation's, so "the child" is no person from the story.
    """
    text = _norm(policy).strip()
    if not text:
        return (
            CardIssue(
                "policy_empty", field_name, "This line is empty. Write something or remove it.", "error"
            ),
        )
    issues: list[CardIssue] = []
    if len(text) > POLICY_MAX_CHARS:
        issues.append(
            CardIssue(
                "policy_too_long",
                field_name,
                f"This line has {len(text)} characters; please keep it under {POLICY_MAX_CHARS}. "
                "Could it be split in two?",
                "error",
            )
        )
    if not begins_with_plural_noun(text):
        first = (_words(text) or [text])[0]
        issues.append(
            CardIssue(
                "policy_not_plural_noun",
                field_name,
                f"Try starting with the kind of thing you notice, in the plural — like “MOMENTS when…”, "
                f"“OPPORTUNITIES for…” or “FEELINGS of…” — instead of {_quote(first)}.",
                "warning",
                first,
            )
        )
    shape = _shape_issue(text, field_name)
    if shape is not None:
        issues.append(shape)
    copied = copied_run(text, story) if story.strip() else None
    if copied:
        issues.append(
            CardIssue(
                "policy_copies_story",
                field_name,
                f"This line repeats your story word for word ({_quote(copied)}). What did you notice in "
                "that moment? Say it in general words, so it fits anyone in a similar spot.",
                "warning",
                copied,
            )
        )
    person = _names_person(text, question)
    if person:
        issues.append(
            CardIssue(
                "policy_names_person",
                field_name,
                f"{_quote(person)} is someone from your story. Could you say it so it fits anyone in a "
                "similar spot (e.g. “a person”, “someone close to them”)?",
                "warning",
                person,
            )
        )
    vague = [w for w in _words(text) if w.lower() in VAGUE_WORDS]
    if vague:
        issues.append(
            CardIssue(
                "policy_vague",
                field_name,
                f"{_quote(vague[0])} is a little vague. What exactly do you notice? Name it concretely.",
                "warning",
                vague[0],
            )
        )
    instrumental = list(_INSTRUMENTAL_RE.finditer(text))
    taken = [(m.start(), m.end()) for m in instrumental]
    # "in order to get" is instrumental, not also an outcome: one hint per phrase is enough.
    outcome = [
        m for m in _OUTCOME_RE.finditer(text) if not any(s < m.end() and m.start() < e for s, e in taken)
    ]
    if outcome:
        issues.append(
            CardIssue("policy_outcome", field_name, OUTCOME_MESSAGE, "warning", outcome[0].group(0))
        )
    negative = _NEGATIVE_RE.search(text)
    if negative:
        issues.append(
            CardIssue(
                "policy_negative",
                field_name,
                f"{_quote(negative.group(0))} makes this a rule about what to avoid. What do you pay "
                "attention to instead — what is there when things go well?",
                "warning",
                negative.group(0),
            )
        )
    if instrumental:
        issues.append(
            CardIssue(
                "policy_instrumental",
                field_name,
                f"{_quote(instrumental[0].group(0))} makes this sound like a means to something else. "
                "What do you notice that matters in itself?",
                "warning",
                instrumental[0].group(0),
            )
        )
    expectation = _EXPECTATIONS_RE.search(text)
    if expectation:
        issues.append(
            CardIssue(
                "policy_expectations",
                field_name,
                f"{_quote(expectation.group(0))} is about what others expect or approve of. What matters "
                "to you here, whatever others think?",
                "warning",
                expectation.group(0),
            )
        )
    return tuple(issues)


def _shape_issue(text: str, field_name: str) -> CardIssue | None:
    """At most one hint on how the line is built: too short, a broken clause, or a dangling end."""
    words = _words(text)
    few_content = len(content_stems(text)) < POLICY_CONTENT_WORDS_MIN and len(words) < 6
    if len(words) < POLICY_WORDS_MIN or few_content:
        return CardIssue(
            "policy_too_short",
            field_name,
            "This line is very short. What exactly do you notice? A few more words help others see it "
            "too — like “SIGNS that a child is too tired to think”.",
            "warning",
        )
    broken = policy_fragment(text)
    if broken is not None:
        if broken in _CLAUSE_STARTS:
            message = (
                f"After {_quote(broken)} this line does not say what happens. Could you finish the "
                "thought — like “MOMENTS when someone asks for help”?"
            )
        else:
            message = f"{_quote(broken)} looks like a word went missing. Could you read the line once more?"
        return CardIssue("policy_fragment", field_name, message, "warning", broken)
    end = dangling_end(text)
    if end is not None:
        return CardIssue(
            "policy_dangling",
            field_name,
            f"This line stops on {_quote(end)}, as if something is missing at the end. How does it go on?",
            "warning",
            end,
        )
    return None


def _question_roles(question: str) -> frozenset[str]:
    """The relations a question names ("child" in "A child who refuses homework", "father" in "My father
    is 84"), singular and lower case: "the child" then names the question's role, not someone's child."""
    found = re.findall(rf"\b({_RELATIONS}|children|kids)\b", question, re.IGNORECASE)
    roles = {w.lower() for w in found}
    roles |= {w[:-1] for w in roles if w.endswith("s")} | {"child" for w in roles if w == "children"}
    return frozenset(roles)


def _names_person(text: str, question: str = "") -> str | None:
    roles = _question_roles(question) if question else frozenset()
    for i, pattern in enumerate(_PERSON_PATTERNS):
        for m in pattern.finditer(text):
            # "the child" in a question about a child is the question's role; "my son" never is.
            if i == 2 and m.group(0).split()[-1].lower() in roles:
                continue
            return m.group(0)
    # A Title-case word inside the line is likely a name ("when John felt heard"); the first word and
    # words starting a new sentence are capitalised for other reasons.
    for m in re.finditer(r"(?<![.!?:;\"“(]\s)\b([A-Z][a-z]+(?:'s)?)\b", text):
        word = m.group(1).removesuffix("'s")
        if m.start() == 0 or word in COMMON_PROPER_WORDS:
            continue
        return word
    return None


def check_card(card: Any, *, story: str = "", question: str = "") -> CardCheck:
    """Check a card (ValuesCard, mapping or object with title/description/policies).

    `story` is what the participant wrote in the interview (answer and story): lines copying long
    stretches of it are flagged. `question` (its title and text) names the situation's roles, which a
    line may name ("the child" for a question about a child).

    Raises CardShapeError when the object is not card-shaped at all (missing field, wrong type);
    everything a participant can fix comes back as CardIssue entries instead.
    """
    c = as_values_card(card)
    errors: list[CardIssue] = []
    warnings: list[CardIssue] = []

    title = c.title.strip()
    if not title:
        errors.append(CardIssue("title_empty", "title", "Please give your card a short title.", "error"))
    else:
        if len(title) > TITLE_MAX_CHARS:
            errors.append(
                CardIssue(
                    "title_too_long",
                    "title",
                    f"The title has {len(title)} characters; please keep it under {TITLE_MAX_CHARS}.",
                    "error",
                )
            )
        not_name = title_not_name(title)
        if not_name is not None:
            warnings.append(
                CardIssue(
                    "title_not_name",
                    "title",
                    f"The title reads like a sentence or a description ({_quote(not_name)}). Could you give "
                    "it a name instead, the way you would name a habit or a virtue — like “Patient, "
                    "Honest Care”?",
                    "warning",
                    not_name,
                )
            )
        n_words = len(title.split())
        if not TITLE_WORDS_MIN <= n_words <= TITLE_WORDS_MAX:
            size_word = "short" if n_words < TITLE_WORDS_MIN else "long"
            warnings.append(
                CardIssue(
                    "title_length",
                    "title",
                    f"The title has {n_words} word{'s' if n_words != 1 else ''}, which is a bit "
                    f"{size_word}. {TITLE_WORDS_MIN}–{TITLE_WORDS_MAX} words usually make it easy to "
                    "tell apart from other cards.",
                    "warning",
                )
            )

    description = c.description.strip()
    if not description:
        errors.append(
            CardIssue(
                "description_empty",
                "description",
                "Please add a sentence or two on what this value is about.",
                "error",
            )
        )
    else:
        if len(description) > DESCRIPTION_MAX_CHARS:
            errors.append(
                CardIssue(
                    "description_too_long",
                    "description",
                    f"The description has {len(description)} characters; please keep it under "
                    f"{DESCRIPTION_MAX_CHARS}.",
                    "error",
                )
            )
        n_sentences = len(_sentences(description))
        if n_sentences > DESCRIPTION_MAX_SENTENCES:
            warnings.append(
                CardIssue(
                    "description_sentences",
                    "description",
                    f"The description has {n_sentences} sentences. One to {DESCRIPTION_MAX_SENTENCES} "
                    "usually say it best — the lines below carry the detail.",
                    "warning",
                )
            )

    n = len(c.policies)
    if n < MIN_POLICIES:
        errors.append(
            CardIssue(
                "too_few_policies",
                "policies",
                f"Please write at least {MIN_POLICIES} things you pay attention to (you have {n}).",
                "error",
            )
        )
    elif n > MAX_POLICIES:
        errors.append(
            CardIssue(
                "too_many_policies",
                "policies",
                f"Please keep it to at most {MAX_POLICIES} lines (you have {n}); pick the ones that matter most.",
                "error",
            )
        )
    elif not RECOMMENDED_POLICIES_MIN <= n <= RECOMMENDED_POLICIES_MAX:
        warnings.append(
            CardIssue(
                "policy_count",
                "policies",
                f"You have {n} lines. Cards usually have {RECOMMENDED_POLICIES_MIN}–"
                f"{RECOMMENDED_POLICIES_MAX}; is there anything to add or combine?",
                "warning",
            )
        )

    seen: dict[str, int] = {}
    for i, policy in enumerate(c.policies):
        name = f"policies[{i}]"
        for issue in check_policy(policy, name, story=story, question=question):
            (errors if issue.severity == "error" else warnings).append(issue)
        key = _normalised_line(policy)
        if key and key in seen:
            errors.append(
                CardIssue(
                    "duplicate_policy",
                    name,
                    f"Line {i + 1} repeats line {seen[key] + 1}. Remove one of them.",
                    "error",
                )
            )
        elif key:
            seen[key] = i

    warnings.extend(_overlap_warnings(c.policies, distinct=set(seen.values())))
    return CardCheck(tuple(errors), tuple(warnings))


def _overlap_warnings(policies: Sequence[str], distinct: set[int]) -> list[CardIssue]:
    """Warn on a line whose content words another line already (mostly) covers."""
    stems = [content_stems(p) for p in policies]
    warned: set[int] = set()
    out: list[CardIssue] = []
    for i in range(len(policies)):
        for j in range(len(policies)):
            if i == j or i in warned or i not in distinct or j not in distinct:
                continue
            a, b = stems[i], stems[j]
            if len(a) < 2 or len(b) < 2:
                continue
            # i is "covered" by j when most of i's words are in j; on a tie the later line gets the hint.
            if len(a) > len(b) or (len(a) == len(b) and i < j):
                continue
            if len(a & b) / len(a) >= OVERLAP_THRESHOLD:
                warned.add(i)
                out.append(
                    CardIssue(
                        "policy_overlap",
                        f"policies[{i}]",
                        f"Line {i + 1} is mostly covered by line {j + 1} ({_quote(policies[j])}). "
                        "Could you merge them, or say what this one adds?",
                        "warning",
                    )
                )
    return out
