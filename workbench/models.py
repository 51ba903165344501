"""Domain models: every input that crosses into the workbench is validated here first.

Pydantic v2 models for deliberation definitions, values cards, judgements and attributes.
A bad value raises `InputError`, whose message names the field ("policies[2]: ...").
This module must never touch the database or Streamlit: it only says what is valid.

Text limits (characters, after trimming surrounding whitespace):
title 80, description 600, each attentional policy 200, 2-10 policies, comment 1000,
attribute key 64 / value 200, context name 120, question prompt 1000, closing-survey question 300.

Size limits, so that no definition or import can take minutes or gigabytes (a YAML definition with
100,000 questions once took 181 s and 805 MB). Each is refused early, with an error naming the file
or field, before the bulk of the input is parsed where the limit allows:
- a deliberation definition (YAML): at most 1 MB (`DEFINITION_MAX_BYTES`), nested at most 10 levels
  (the format needs 5), at most 200,000 values with YAML aliases expanded (the largest definition
  within the counts below has about 60,000); at most 100 questions, 200 contexts per question,
  30 demographic questions, 250 options per demographic question (a country list fits) and 20
  closing-survey questions;
- an imported file (an MGE dump's JSON file, a Polis CSV, a comparisons CSV or Parquet): at most
  256 MB (`IMPORT_FILE_MAX_BYTES`, over 100 times the largest real export we know) and 5,000,000 data
  rows (`IMPORT_ROWS_MAX`); an MGE JSON file nested at most 32 levels (the study's nest 3);
- ids in imported files (participants, items, comments): at most 200 characters, no control characters.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from . import cardcheck
from .errors import InputError as InputError  # re-exported: `validated` raises it for every form and file

# The card limits are the card checks' own: one definition.
TITLE_MAX = cardcheck.TITLE_MAX_CHARS
DESCRIPTION_MAX = cardcheck.DESCRIPTION_MAX_CHARS
POLICY_MAX = cardcheck.POLICY_MAX_CHARS
POLICIES_MIN = cardcheck.MIN_POLICIES
POLICIES_MAX = cardcheck.MAX_POLICIES
COMMENT_MAX = 1000
ATTRIBUTE_KEY_MAX = 64
ATTRIBUTE_VALUE_MAX = 200
CONTEXT_MAX = 120
PROMPT_MAX = 1000
FREE_TEXT_MAX = 4000
ID_MAX = 200
QUESTIONS_MAX = 100
CONTEXTS_PER_QUESTION_MAX = 200
DEMOGRAPHICS_MAX = 30
#: Open sign-up: at most this many participants join by the link, and at most this many in any hour
#: (a facilitator's `signup_limits` in the definition changes both).
SIGNUP_PARTICIPANTS_DEFAULT = 1000
SIGNUP_PER_HOUR_DEFAULT = 200
OPTIONS_MAX = 250
SURVEY_QUESTIONS_MAX = 20
SURVEY_TEXT_MAX = 300
DEFINITION_MAX_BYTES = 1_000_000
DEFINITION_MAX_NESTING = 10
DEFINITION_MAX_VALUES = 200_000
IMPORT_FILE_MAX_BYTES = 256 * 2**20
IMPORT_ROWS_MAX = 5_000_000
IMPORT_JSON_MAX_NESTING = 32

WiserAnswerKind = Literal["upgrade", "no_upgrade", "not_sure"]
Vote = Literal["agree", "disagree", "pass"]
Winner = Literal["a", "b", "tie"]
MergeAnswerKind = Literal["same", "different", "not_sure"]
Role = Literal["participant", "facilitator", "researcher"]
#: A closing-survey answer, stored as this key; the page shows "Yes", "Not sure", "No".
SurveyAnswer = Literal["yes", "not_sure", "no"]
SURVEY_ANSWERS: tuple[str, ...] = ("yes", "not_sure", "no")

# C0 controls except tab and newline, DEL, and the C1 controls (U+0080-U+009F).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def _clean_text(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("contains control characters")
    value = unicodedata.normalize("NFC", value).strip()
    return value


CleanText = Annotated[str, AfterValidator(_clean_text)]


def _at_most(max_length: int):
    """NFC can lengthen text (U+0958 becomes two code points): check the limit again on the clean text."""

    def check(value: str) -> str:
        if len(value) > max_length:
            raise ValueError(f"String should have at most {max_length} characters")
        return value

    return AfterValidator(check)


def _text(max_length: int, min_length: int = 1):
    return Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=min_length, max_length=max_length),
        AfterValidator(_clean_text),
        _at_most(max_length),
    ]


def _slug(value: str) -> str:
    if not _SLUG.match(value):
        raise ValueError("must be 1-64 lowercase letters, digits, '-' or '_', starting with a letter or digit")
    return value


Slug = Annotated[str, AfterValidator(_slug)]
Title = _text(TITLE_MAX)
Description = _text(DESCRIPTION_MAX)
Policy = _text(POLICY_MAX)
ContextName = _text(CONTEXT_MAX)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- deliberation definitions (data/*.yaml) -------------------------------------------------


class DemographicQuestion(_Model):
    key: Slug
    label: _text(200)
    options: list[_text(100)] = Field(min_length=1, max_length=OPTIONS_MAX)
    required: bool = False

    @model_validator(mode="after")
    def _prefer_not_to_say(self) -> DemographicQuestion:
        if len(set(self.options)) != len(self.options):
            raise ValueError("options must be distinct")
        return self


class QuestionSpec(_Model):
    slug: Slug
    title: _text(120)
    prompt: _text(PROMPT_MAX)
    contexts: list[ContextName] = Field(min_length=1, max_length=CONTEXTS_PER_QUESTION_MAX)


class Rounds(_Model):
    """How many judging questions of each kind a participant gets after their card."""

    wiser: int = Field(default=3, ge=0, le=50)
    endorse: int = Field(default=6, ge=0, le=100)
    compare: int = Field(default=4, ge=0, le=100)
    # Optional, last: "Are these two the same value?" about the merges the latest clustering is least sure of.
    same_value: int = Field(default=3, ge=0, le=20)


class SurveyQuestion(_Model):
    """One statement of the closing survey; participants answer yes, not sure or no."""

    key: Slug
    text: _text(SURVEY_TEXT_MAX)


#: The closing survey when a definition names none: what the 2023 MGE study asked its participants
#: (REFERENCE.md §1, "Legitimacy measures"), in our own words. `position_fair` is the question the
#: MGE import's graphPositionVerification.json answers.
DEFAULT_SURVEY: tuple[SurveyQuestion, ...] = (
    SurveyQuestion(key="expresses_me", text="The value I wrote down expresses what I care about."),
    SurveyQuestion(key="clarified", text="Taking part helped me get clearer about what matters to me."),
    SurveyQuestion(key="learned_others", text="I learned something about what other people value."),
    SurveyQuestion(key="respect_others", text="I came away with more respect for the other participants."),
    SurveyQuestion(key="position_fair", text="Where my value sits in the graph is fair."),
)
POSITION_FAIR = "position_fair"


class Closing(_Model):
    """What a participant sees after the rounds: where their value sits, then the closing survey.

    `open: false` holds both back until the facilitator sets it to true (the graph may need more
    answers first); participants who finished the rounds are told to come back with their link.
    """

    open: bool = True
    survey: list[SurveyQuestion] = Field(default_factory=lambda: list(DEFAULT_SURVEY),
                                         max_length=SURVEY_QUESTIONS_MAX)

    @field_validator("survey")
    @classmethod
    def _distinct_keys(cls, survey: list[SurveyQuestion]) -> list[SurveyQuestion]:
        keys = [q.key for q in survey]
        if len(set(keys)) != len(keys):
            raise ValueError("question keys must be distinct")
        return survey


class SignupLimits(_Model):
    """How many people may join by the open sign-up link (`?join=ID`), so a script opening it cannot fill
    the deliberation with participants. Invited participants do not count. The defaults let a large
    workshop in and stop a script within minutes; a facilitator changes them in the definition."""

    participants: int = Field(default=SIGNUP_PARTICIPANTS_DEFAULT, ge=0, le=1_000_000)
    per_hour: int = Field(default=SIGNUP_PER_HOUR_DEFAULT, ge=0, le=100_000)

    @classmethod
    def of(cls, settings: dict | None) -> SignupLimits:
        """A stored deliberation's limits (the defaults for one saved before they existed)."""
        return cls.model_validate((settings or {}).get("signup_limits") or {})


class DeliberationSpec(_Model):
    id: Slug
    title: _text(200)
    description: _text(2000, 0) = ""
    consent: _text(FREE_TEXT_MAX)
    licence: _text(200, 0) = ""
    open_signup: bool = False
    signup_limits: SignupLimits = SignupLimits()
    rounds: Rounds = Rounds()
    demographics: list[DemographicQuestion] = Field(default_factory=list, max_length=DEMOGRAPHICS_MAX)
    closing: Closing = Closing()
    questions: list[QuestionSpec] = Field(min_length=1, max_length=QUESTIONS_MAX)

    @model_validator(mode="after")
    def _unique(self) -> DeliberationSpec:
        slugs = [q.slug for q in self.questions]
        if len(set(slugs)) != len(slugs):
            raise ValueError("question slugs must be distinct")
        keys = [d.key for d in self.demographics]
        if len(set(keys)) != len(keys):
            raise ValueError("demographic keys must be distinct")
        return self


# --- what participants submit ---------------------------------------------------------------


class ValuesCardIn(_Model):
    """A values card as the participant confirms it (REFERENCE.md §1)."""

    title: Title
    description: Description
    policies: list[Policy] = Field(min_length=POLICIES_MIN, max_length=POLICIES_MAX)
    question_id: _text(200)
    contexts: list[ContextName] = Field(default_factory=list)
    overrides: list[_text(64)] = Field(default_factory=list)

    @model_validator(mode="after")
    def _distinct_policies(self) -> ValuesCardIn:
        seen: dict[str, int] = {}
        for i, p in enumerate(self.policies):
            key = " ".join(p.lower().split())
            if key in seen:
                raise ValueError(f"policies[{i}] repeats policies[{seen[key]}]")
            seen[key] = i
        return self


class WiserAnswerIn(_Model):
    participant_id: int = Field(ge=1)
    from_value_id: int = Field(ge=1)
    to_value_id: int = Field(ge=1)
    context_id: int = Field(ge=1)
    answer: WiserAnswerKind
    story: _text(FREE_TEXT_MAX, 0) | None = None
    comment: _text(COMMENT_MAX, 0) | None = None

    @model_validator(mode="after")
    def _distinct(self) -> WiserAnswerIn:
        if self.from_value_id == self.to_value_id:
            raise ValueError("to_value_id must differ from from_value_id")
        return self


class EndorsementIn(_Model):
    participant_id: int = Field(ge=1)
    vote: Vote
    canonical_id: int | None = Field(default=None, ge=1)
    card_id: int | None = Field(default=None, ge=1)
    question_id: _text(200) | None = None

    @model_validator(mode="after")
    def _one_target(self) -> EndorsementIn:
        if (self.canonical_id is None) == (self.card_id is None):
            raise ValueError("exactly one of canonical_id and card_id must be given")
        return self


class ComparisonIn(_Model):
    participant_id: int = Field(ge=1)
    item_a: _text(200)
    item_b: _text(200)
    winner: Winner
    question_id: _text(200) | None = None
    context: ContextName | None = None
    prompt: _text(PROMPT_MAX, 0) | None = None

    @field_validator("item_b")
    @classmethod
    def _distinct(cls, item_b: str, info: ValidationInfo) -> str:
        # A field check, so the error names item_b (an item compared with itself says nothing).
        if item_b == info.data.get("item_a"):
            raise ValueError("must differ from item_a")
        return item_b


class SurveyAnswersIn(_Model):
    """A participant's closing-survey answers: question key -> yes | not_sure | no (any question may be
    left out; none answered is a participant who skipped the survey)."""

    answers: dict[Slug, SurveyAnswer] = Field(default_factory=dict, max_length=SURVEY_QUESTIONS_MAX)


class MergeAnswerIn(_Model):
    """A participant's answer to "Are these two the same value?" about two cards."""

    participant_id: int = Field(ge=1)
    card_a: int = Field(ge=1)
    card_b: int = Field(ge=1)
    answer: MergeAnswerKind

    @field_validator("card_b")
    @classmethod
    def _distinct(cls, card_b: int, info: ValidationInfo) -> int:
        if card_b == info.data.get("card_a"):
            raise ValueError("must differ from card_a (a card is the same value as itself)")
        return card_b


class AttributeIn(_Model):
    key: _text(ATTRIBUTE_KEY_MAX)
    value: _text(ATTRIBUTE_VALUE_MAX, 0) | None


def validated(model: type[_Model], data: dict, *, where: str = "") -> _Model:
    """Build `model` from `data`, turning pydantic's errors into one `InputError` naming the field.

    `where` prefixes the message, e.g. "data/demo.yaml" or "row 12".
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InputError(describe_validation_error(exc, where=where)) from None


def describe_validation_error(exc: ValidationError, *, where: str = "") -> str:
    parts = []
    for err in exc.errors():
        loc = _format_loc(err.get("loc", ()))
        msg = err.get("msg", "invalid")
        msg = msg.removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    prefix = f"{where}: " if where else ""
    return prefix + "; ".join(parts)


def _format_loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out
