"""Small English word knowledge shared by the card checks and the own-words rewrite: verb forms.

The card checks ask "does this clause have a verb?" and the rewrite turns a story's past tense into a
policy's present ("he was exhausted" → "someone is exhausted"). Both need to know which words are
verbs and how they inflect. The list of verbs lives in `data/english_verbs.yaml`; the regular forms
(asks, asked, asking) are derived here with the usual spelling rules. This module is word lists and
spelling rules only: it must never call a model, download anything or guess beyond its lists (a word
it does not know is simply not a verb to it).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Literal

import yaml

from workbench import config

VERBS_FILE = config.DATA / "english_verbs.yaml"

Form = Literal["base", "present", "past", "participle", "ing"]

# Auxiliaries and modals: finite verbs on their own ("when someone is", "who can").
AUXILIARIES = frozenset(
    "am is are was were be been being has have had do does did will would shall should can could may "
    "might must isn't aren't wasn't weren't hasn't haven't hadn't don't doesn't didn't won't wouldn't "
    "can't cannot couldn't shouldn't mustn't".split()
)
# The present tense of the past forms a story uses most; regular verbs are handled by rule.
_PRESENT_OF_AUX = {"was": "is", "were": "are", "had": "has", "did": "does", "could": "can", "would": "will"}
_VOWELS = frozenset("aeiou")


@dataclass(frozen=True)
class VerbForm:
    """What one word form is: the verb's base and which form of it the word is."""

    base: str
    form: Form


def _third_person(base: str) -> str:
    if base == "be":
        return "is"
    if base == "have":
        return "has"
    if base.endswith(("s", "sh", "ch", "x", "z", "o")):
        return base + "es"
    if base.endswith("y") and len(base) > 2 and base[-2] not in _VOWELS:
        return base[:-1] + "ies"
    return base + "s"


def _regular_past(base: str, doubles: bool) -> str:
    if doubles:
        return base + base[-1] + "ed"
    if base.endswith("e"):
        return base + "d"
    if base.endswith("y") and len(base) > 2 and base[-2] not in _VOWELS:
        return base[:-1] + "ied"
    return base + "ed"


def _ing(base: str, doubles: bool) -> str:
    if doubles:
        return base + base[-1] + "ing"
    if base.endswith("ie"):
        return base[:-2] + "ying"
    if base.endswith("e") and base not in ("be", "see", "agree", "free", "flee"):
        return base[:-1] + "ing"
    return base + "ing"


@cache
def verb_forms() -> dict[str, tuple[VerbForm, ...]]:
    """Every known verb form → what it can be ("read" is base, present, past and participle)."""
    data = yaml.safe_load(VERBS_FILE.read_text(encoding="utf-8"))
    doubling = frozenset(data["doubling"])
    table: dict[str, list[VerbForm]] = {}

    def add(word: str, base: str, form: Form) -> None:
        entry = table.setdefault(word, [])
        if VerbForm(base, form) not in entry:
            entry.append(VerbForm(base, form))

    for base in data["regular"]:
        doubles = base in doubling
        past = _regular_past(base, doubles)
        add(base, base, "base")
        add(_third_person(base), base, "present")
        add(past, base, "past")
        add(past, base, "participle")
        add(_ing(base, doubles), base, "ing")
    for base, (past, participle) in data["irregular"].items():
        add(base, base, "base")
        add(_third_person(base), base, "present")
        add(past, base, "past")
        add(participle, base, "participle")
        add(_ing(base, base in doubling), base, "ing")
    add("were", "be", "past")
    add("are", "be", "present")
    add("am", "be", "present")
    return {word: tuple(forms) for word, forms in table.items()}


def is_finite_verb(word: str) -> bool:
    """True for a word that can be the finite verb of a clause: an auxiliary, a present or past form.

    A base form counts too ("when parents *disagree*"), since the plural present is the base form.
    """
    w = word.lower().strip("'")
    if w in AUXILIARIES:
        return True
    return any(f.form in ("base", "present", "past") for f in verb_forms().get(w, ()))


def is_verb_form(word: str) -> bool:
    """True for any known form of a known verb, -ing and participles included."""
    w = word.lower().strip("'")
    return w in AUXILIARIES or w in verb_forms()


def present_tense(word: str) -> str | None:
    """The third-person present of a past-tense verb ("asked" → "asks", "felt" → "feels").

    Present forms come back unchanged; None when the word is not a known past or present form, so a
    caller can refuse to rewrite what it does not understand.
    """
    w = word.lower()
    if w in _PRESENT_OF_AUX:
        return _PRESENT_OF_AUX[w]
    if w in ("is", "are", "has", "does", "can", "will", "should", "must", "may", "might"):
        return w
    forms = verb_forms().get(w, ())
    for f in forms:
        if f.form == "present":
            return w
    for f in forms:
        if f.form == "past":
            return _third_person(f.base)
    return None
