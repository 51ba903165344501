"""Read the public dump of the 2023 Moral Graph Elicitation study into validated DataFrames.

The dump is a folder of JSON arrays (one object per row, camelCase fields, exported from the
study's Postgres database). `read_mge_dump(folder)` checks every row of every table it reads and
returns an `MgeDump` of pandas DataFrames with snake_case columns; anything malformed raises
`MgeFormatError` naming the file, the 0-based array index ("row") and the field. This module only
reads: it never writes files, never touches the store (no SQL, no DuckDB) and never derives
anything (no deduplication, no graph) — those are other modules' jobs.

Column conventions of the returned tables:
- JSON `fooBar` becomes column `foo_bar`, except the domain renames `userId` → `participant_id`,
  `caseId` → `question_id`, `contextId` → `context`, `relationship` → `answer`,
  `valuesCardId` → `value_id`, `fromId` → `from_id`, `toId` → `to_id`.
- Timestamps become naive UTC `datetime64` columns; ids stay integers as in the dump.
- Card ids (`cards.id`) and canonical value ids (`canonical_values.id`) are two different id
  spaces that collide as numbers; `edges.from_id/to_id`, `votes.value_id` and
  `impressions.value_id` always mean canonical value ids (this is checked).
- `edges` already has the columns `workbench.moralgraph` expects
  (`participant_id, from_id, to_id, context, answer, created_at`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import FormatError
from .limits import shown, too_deep, too_large, too_many_rows

WISER_ANSWERS = ("upgrade", "no_upgrade", "not_sure")
CARD_QUALITIES = ("ok", "invalid")

_RENAMES = {
    "userId": "participant_id",
    "caseId": "question_id",
    "contextId": "context",
    "relationship": "answer",
    "valuesCardId": "value_id",
    "fromId": "from_id",
    "toId": "to_id",
}


class MgeFormatError(FormatError):
    """A file of the MGE dump is missing or a row does not have the expected shape."""


@dataclass(frozen=True)
class _Field:
    name: str  # JSON field name, as in the dump
    kind: str  # "int" | "str" | "str_list" | "timestamp" | "enum"
    required: bool = True  # the key must be present
    nullable: bool = False  # the value may be JSON null
    choices: tuple[str, ...] = ()

    @property
    def column(self) -> str:
        if self.name in _RENAMES:
            return _RENAMES[self.name]
        return re.sub(r"(?<!^)(?=[A-Z])", "_", self.name).lower()


def _opt(name: str, kind: str) -> _Field:
    return _Field(name, kind, required=False, nullable=True)


_CARD_TEXT = (
    _Field("id", "int"),
    _Field("title", "str"),
    _Field("instructionsShort", "str"),
    _Field("instructionsDetailed", "str"),
    _Field("evaluationCriteria", "str_list"),
)
_SELECTION = (  # vote.json and impression.json share their shape
    _Field("id", "int"),
    _Field("userId", "int"),
    _Field("valuesCardId", "int"),
    _Field("caseId", "str"),
    _opt("drawId", "str"),
    _Field("createdAt", "timestamp"),
    _opt("updatedAt", "timestamp"),
)

# file name -> (MgeDump attribute, fields)
_TABLES: dict[str, tuple[str, tuple[_Field, ...]]] = {
    "case.json": (
        "questions",
        (_Field("id", "str"), _Field("title", "str"), _Field("question", "str"), _opt("seedMessage", "str")),
    ),
    "context.json": ("contexts", (_Field("id", "str"),)),
    "contextsOnCases.json": (
        "contexts_on_questions",
        (_Field("contextId", "str"), _Field("caseId", "str"), _opt("createdAt", "timestamp")),
    ),
    "valuesCard.json": (
        "cards",
        _CARD_TEXT
        + (
            _Field("quality", "enum", choices=CARD_QUALITIES),
            _Field("chatId", "str"),
            _Field("createdAt", "timestamp"),
            _opt("updatedAt", "timestamp"),
        ),
    ),
    "canonicalValuesCard.json": (
        "canonical_values",
        _CARD_TEXT + (_Field("createdAt", "timestamp"), _opt("updatedAt", "timestamp")),
    ),
    "edge.json": (
        "edges",
        (
            _Field("userId", "int"),
            _Field("fromId", "int"),
            _Field("toId", "int"),
            _Field("contextId", "str"),
            _Field("relationship", "enum", choices=WISER_ANSWERS),
            _Field("story", "str", nullable=True),
            _Field("comment", "str", nullable=True),
            _opt("runId", "str"),
            _Field("createdAt", "timestamp"),
            _opt("updatedAt", "timestamp"),
        ),
    ),
    "vote.json": ("votes", _SELECTION),
    "impression.json": ("impressions", _SELECTION),
    "demographic.json": (
        "demographics",
        (
            _Field("id", "int"),
            _Field("userId", "int"),
            _opt("usPoliticalAffiliation", "str"),
            _opt("fluentLanguages", "str_list"),
            _opt("age", "int"),
            _opt("sex", "str"),
            _opt("ethnicitySimplified", "str"),
            _opt("countryOfBirth", "str"),
            _opt("countryOfResidence", "str"),
            _opt("nationality", "str"),
            _opt("language", "str"),
            _opt("studentStatus", "str"),
            _opt("employmentStatus", "str"),
        ),
    ),
    "participant.json": (
        "participants",
        (_Field("id", "int"), _Field("signupType", "str"), _Field("createdAt", "timestamp")),
    ),
    # After the study: each participant saw their value's place in the graph and said whether it was fair.
    "graphPositionVerification.json": (
        "position_checks",
        (
            _Field("userId", "int"),
            _Field("deduplicatedCardId", "int"),
            _Field("isSatisfiedWithPosition", "bool"),
            _Field("createdAt", "timestamp"),
            _opt("updatedAt", "timestamp"),
        ),
    ),
}
#: Files a dump may lack (older or partial dumps): read as empty tables.
_OPTIONAL_FILES = frozenset({"graphPositionVerification.json"})


@dataclass(frozen=True)
class MgeDump:
    """The study's tables, one DataFrame each (columns: see the module docstring)."""

    folder: Path
    questions: pd.DataFrame  # case.json: id, title, question, seed_message
    contexts: pd.DataFrame  # context.json: id (the text, e.g. "When seeking clarity")
    contexts_on_questions: pd.DataFrame  # contextsOnCases.json: context, question_id, created_at
    cards: pd.DataFrame  # valuesCard.json: id, title, instructions_*, evaluation_criteria, quality, chat_id
    canonical_values: pd.DataFrame  # canonicalValuesCard.json: id, title, instructions_*, ...
    edges: pd.DataFrame  # edge.json: participant_id, from_id, to_id, context, answer, story, comment, ...
    votes: pd.DataFrame  # vote.json: id, participant_id, value_id, question_id, draw_id, created_at
    impressions: pd.DataFrame  # impression.json: same columns as votes
    demographics: pd.DataFrame  # demographic.json: id, participant_id, us_political_affiliation, age, ...
    participants: pd.DataFrame  # participant.json: id, signup_type, created_at
    # graphPositionVerification.json: participant_id, deduplicated_card_id (a canonical value id, not
    # always among the dump's), is_satisfied_with_position, created_at; empty when the file is absent
    position_checks: pd.DataFrame


def read_mge_dump(folder: Path | str) -> MgeDump:
    """Read and validate every table of the MGE dump in `folder`.

    Raises `MgeFormatError` for a missing file, a file that is not a JSON array of objects, a
    missing required field, a wrong type, a value outside its allowed set, a bad timestamp, a
    duplicate id, or a reference to an unknown canonical value, context or question.
    """
    folder = Path(folder)
    tables = {attr: _read_table(folder / file, fields) if file not in _OPTIONAL_FILES or (folder / file).exists()
              else pd.DataFrame({f.column: pd.Series(dtype=object) for f in fields})
              for file, (attr, fields) in _TABLES.items()}

    for file, attr in (("case.json", "questions"), ("context.json", "contexts"),
                       ("valuesCard.json", "cards"), ("canonicalValuesCard.json", "canonical_values"),
                       ("vote.json", "votes"), ("impression.json", "impressions"),
                       ("demographic.json", "demographics"), ("participant.json", "participants")):
        _check_unique(tables[attr], file)

    canonical_ids = set(tables["canonical_values"]["id"])
    context_ids = set(tables["contexts"]["id"])
    question_ids = set(tables["questions"]["id"])
    # Edges, votes and impressions must point at canonical values: catching a card id here is
    # the cheapest place to notice the two id spaces were mixed up.
    _check_refs(tables["edges"], "edge.json", "from_id", "fromId", canonical_ids, "canonicalValuesCard id")
    _check_refs(tables["edges"], "edge.json", "to_id", "toId", canonical_ids, "canonicalValuesCard id")
    _check_refs(tables["edges"], "edge.json", "context", "contextId", context_ids, "context.json id")
    for file, attr in (("vote.json", "votes"), ("impression.json", "impressions")):
        _check_refs(tables[attr], file, "value_id", "valuesCardId", canonical_ids, "canonicalValuesCard id")
        _check_refs(tables[attr], file, "question_id", "caseId", question_ids, "case.json id")
    cq = tables["contexts_on_questions"]
    _check_refs(cq, "contextsOnCases.json", "context", "contextId", context_ids, "context.json id")
    _check_refs(cq, "contextsOnCases.json", "question_id", "caseId", question_ids, "case.json id")
    # Participants are NOT checked: the public dump dropped some accounts that still have answers.
    return MgeDump(folder=folder, **tables)


def _read_table(path: Path, fields: Sequence[_Field]) -> pd.DataFrame:
    name = path.name
    if not path.is_file():
        raise MgeFormatError(f"{name}: file not found in {path.parent}")
    if problem := too_large(path):
        raise MgeFormatError(f"{name}: {problem}")
    data = path.read_bytes()
    if problem := too_deep(data):  # before parsing: Python's JSON reader recurses once per level
        raise MgeFormatError(f"{name}: {problem}")
    try:
        rows = json.loads(data.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MgeFormatError(f"{name}: not valid JSON ({exc})") from exc
    except RecursionError:  # nesting the bracket count above misread (e.g. in a broken string)
        raise MgeFormatError(f"{name}: nested too deeply to read") from None
    if not isinstance(rows, list):
        raise MgeFormatError(f"{name}: expected a JSON array of objects, got {type(rows).__name__}")
    if problem := too_many_rows(len(rows)):
        raise MgeFormatError(f"{name}: {problem}")

    columns: dict[str, list[Any]] = {f.column: [] for f in fields}
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise MgeFormatError(f"{name} row {i}: expected an object, got {type(row).__name__}")
        for f in fields:
            if f.name not in row:
                if f.required:
                    raise MgeFormatError(f"{name} row {i}: missing required field '{f.name}'")
                columns[f.column].append(None)
                continue
            columns[f.column].append(_checked_value(row[f.name], f, f"{name} row {i} field '{f.name}'"))
    return pd.DataFrame({f.column: _column(columns[f.column], f) for f in fields})


def _checked_value(value: Any, f: _Field, where: str) -> Any:
    if value is None:
        if f.nullable:
            return None
        raise MgeFormatError(f"{where}: must not be null")
    if f.kind == "int":
        # bool is a subclass of int in Python; a true/false id is a broken export, not an id.
        if isinstance(value, bool) or not isinstance(value, int):
            raise MgeFormatError(f"{where}: expected an integer, got {shown(value)}")
        if not -(2**63) <= value < 2**63:  # DuckDB and numpy keep ids in 64 bits
            raise MgeFormatError(f"{where}: integer {value} is out of range (64-bit)")
        return value
    if f.kind == "str":
        if not isinstance(value, str):
            raise MgeFormatError(f"{where}: expected a string, got {shown(value)}")
        return _unicode(value, where)
    if f.kind == "enum":
        if value not in f.choices:
            raise MgeFormatError(f"{where}: {shown(value)} is not one of {', '.join(f.choices)}")
        return value
    if f.kind == "str_list":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise MgeFormatError(f"{where}: expected a list of strings, got {shown(value)}")
        return [_unicode(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if f.kind == "timestamp":
        return _utc_naive(value, where)
    if f.kind == "bool":
        if not isinstance(value, bool):
            raise MgeFormatError(f"{where}: expected true or false, got {shown(value)}")
        return value
    raise AssertionError(f"unknown field kind {f.kind}")  # a bug in _TABLES, not in the data


def _unicode(value: str, where: str) -> str:
    """JSON may spell lone surrogates ("\\ud800"); they are not text and no database can store them."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise MgeFormatError(f"{where}: not valid Unicode text (a lone surrogate escape)") from None
    return value


def _utc_naive(value: Any, where: str) -> datetime:
    """ISO 8601 with a zone ('...Z' in the dump) -> naive UTC, the workbench's one time convention."""
    if not isinstance(value, str):
        raise MgeFormatError(f"{where}: expected an ISO 8601 timestamp string, got {shown(value)}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = None
    except OverflowError:  # far-out offsets near year 1 or 9999
        raise MgeFormatError(f"{where}: {shown(value)} is outside the dates a timestamp can hold") from None
    if parsed is None or parsed.tzinfo is None or "T" not in value:
        # A zone-less time is ambiguous; the dump always says Z, so refuse rather than guess.
        raise MgeFormatError(
            f"{where}: {shown(value)} is not an ISO 8601 timestamp with a time zone "
            "(e.g. '2023-09-19T11:54:18.065Z')"
        )
    try:
        return parsed.astimezone(UTC).replace(tzinfo=None)
    except OverflowError:  # e.g. 9999-12-31T23:00-14:00 is past year 9999 in UTC
        raise MgeFormatError(f"{where}: {shown(value)} is outside the dates a timestamp can hold") from None


def _column(values: list[Any], f: _Field) -> Any:
    if f.kind == "int":
        if any(v is None for v in values):
            return pd.array(values, dtype="Int64")
        return np.asarray(values, dtype=np.int64)
    if f.kind == "timestamp":
        return pd.to_datetime(pd.Series(values, dtype=object)).astype("datetime64[us]")
    if f.kind == "str_list":
        out = np.empty(len(values), dtype=object)  # keep lists as cells, not as a 2-D array
        out[:] = values
        return out
    if not values:  # an empty table: text columns stay text, so the bundle's string joins still work
        return pd.array([], dtype="str")
    return values


def _check_unique(table: pd.DataFrame, file: str) -> None:
    dup = table["id"].duplicated()
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise MgeFormatError(f"{file} row {i} field 'id': duplicate id {shown(_plain(table['id'].iloc[i]))}")


def _check_refs(table: pd.DataFrame, file: str, column: str, field: str, known: set, what: str) -> None:
    bad = ~table[column].isin(known)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise MgeFormatError(f"{file} row {i} field '{field}': {shown(_plain(table[column].iloc[i]))} is not a known"
                             f" {what}")


def _plain(v: Any) -> Any:
    """numpy scalar -> Python scalar, so messages read `99`, not `np.int64(99)`."""
    return v.item() if isinstance(v, np.generic) else v


# --- into the workbench -------------------------------------------------------------------------

MGE_DELIBERATION = "mge-dft"


def mge_bundle(dump: MgeDump, *, deliberation_id: str = MGE_DELIBERATION):
    """The dump as an `ImportBundle` for `Store.import_bundle`.

    - cases → questions; contexts and their cases → contexts (contexts no case lists are kept too);
    - canonical values keep their study ids as `source_id`; cards too (quality 'invalid' → status
      'invalid'); the study's card → canonical mapping is not in the dump, so no links are made;
    - edges → wiser-than answers with their timestamps and contexts;
    - votes → endorsements `agree` on the canonical value; impressions of a value the participant
      was shown in a draw but did not select → `pass` (seen, no stated opinion), never `disagree`:
      not choosing a value among several says too little to count against it;
    - demographics → participant attributes (lists joined with ", "); signup type → `signup_type`;
    - graph position checks → closing-survey answers to `position_fair` (yes / no), about the value
      the participant was shown (its canonical id, where the dump has that value).
    """
    from ..io.bundle import ImportBundle
    from ..models import POSITION_FAIR, QUESTIONS_MAX, DeliberationSpec, InputError, QuestionSpec, validated

    if len(dump.questions) > QUESTIONS_MAX:
        raise MgeFormatError(f"case.json: {len(dump.questions)} cases; a deliberation takes at most {QUESTIONS_MAX}"
                             " questions")
    ctx_by_question = dump.contexts_on_questions.groupby("question_id")["context"].apply(sorted).to_dict()
    if dump.questions.empty or dump.contexts.empty:
        raise MgeFormatError("case.json, context.json: the workbench needs at least one case and one context")
    questions = [{"slug": q.id, "title": q.title, "prompt": q.question,
                  "contexts": ctx_by_question.get(q.id) or sorted(dump.contexts["id"])[:1]}
                 for q in dump.questions.itertuples()]
    for i, question in enumerate(questions):
        # A case becomes a workbench question, whose limits are stricter than the dump's (slug-shaped
        # id, no control characters): say which case, rather than fail later inside the store.
        try:
            validated(QuestionSpec, question, where=f"case.json row {i} (with its contexts from contextsOnCases.json)")
        except InputError as exc:
            raise MgeFormatError(str(exc)) from None
    spec = validated(DeliberationSpec, {
        "id": deliberation_id,
        "title": "Moral Graph Elicitation study (Democratic Fine-Tuning, 2023)",
        "description": "Imported from the public dump of the Meaning Alignment Institute's 2023 study.",
        "consent": "Imported data: participants consented in the original study.",
        "licence": "As published by the Meaning Alignment Institute with the study dump.",
        "questions": questions,
    }, where="deliberation")
    used = set(dump.contexts_on_questions["context"])
    contexts = pd.DataFrame({"name": [c for c in dump.contexts["id"] if c not in used], "question": None,
                             "status": "approved"})

    people = sorted(set(dump.participants["id"]) | set(dump.edges["participant_id"]) | set(dump.votes["participant_id"])
                    | set(dump.impressions["participant_id"]) | set(dump.demographics["participant_id"])
                    | set(dump.position_checks["participant_id"]))
    signup = dict(zip(dump.participants["id"], dump.participants["signup_type"], strict=True))
    created = dict(zip(dump.participants["id"], dump.participants["created_at"], strict=True))
    participants = pd.DataFrame({"source_id": [str(p) for p in people], "signup": "import",
                                 "created_at": [created.get(p) for p in people]})
    attributes = [{"participant": str(p), "key": "signup_type", "value": str(signup[p])}
                  for p in people if p in signup and signup[p] is not None]
    for row in dump.demographics.to_dict("records"):
        for key, value in row.items():
            if key in ("id", "participant_id") or value is None or (isinstance(value, float) and np.isnan(value)):
                continue
            value = ", ".join(map(str, value)) if isinstance(value, list | tuple | np.ndarray) else str(value)
            attributes.append({"participant": str(row["participant_id"]), "key": key, "value": value})

    def card_rows(table: pd.DataFrame, *, canonical: bool) -> pd.DataFrame:
        out = pd.DataFrame({
            "source_id": table["id"].astype(str), "question": None, "title": table["title"],
            "description": table["instructions_short"].fillna(""),
            "policies": [list(p) if p is not None else [] for p in table["evaluation_criteria"]],
            "created_at": table["created_at"]})
        if canonical:
            out["origin"] = "import"
        else:
            out["kind"] = "card"
            out["author"] = None
            out["status"] = np.where(table["quality"] == "ok", "active", "invalid")
            out["contexts"] = [[] for _ in range(len(table))]
        return out

    edges = dump.edges
    keys = ("edge:" + edges["participant_id"].astype(str) + ":" + edges["from_id"].astype(str) + ":"
            + edges["to_id"].astype(str) + ":" + edges["context"] + ":" + edges["created_at"].astype(str))
    keys = keys + ":" + keys.groupby(keys).cumcount().astype(str)
    wiser = pd.DataFrame({
        "source_key": keys, "participant": edges["participant_id"].astype(str),
        "from_value": edges["from_id"].astype(str), "to_value": edges["to_id"].astype(str),
        "context": edges["context"], "answer": edges["answer"], "story": edges["story"],
        "comment": edges["comment"], "created_at": edges["created_at"]})

    votes, shown = dump.votes, dump.impressions
    selected = set(zip(votes["participant_id"], votes["value_id"], votes["draw_id"], strict=True))
    passed = shown[np.array([(u, v, d) not in selected for u, v, d in  # an array: [] would select no columns
                             zip(shown["participant_id"], shown["value_id"], shown["draw_id"], strict=True)],
                            dtype=bool)]

    def endorsement_rows(table: pd.DataFrame, prefix: str, vote: str) -> pd.DataFrame:
        return pd.DataFrame({
            "source_key": prefix + table["id"].astype(str), "participant": table["participant_id"].astype(str),
            "canonical": table["value_id"].astype(str), "card": None, "card_kind": None,
            "question": table["question_id"], "vote": vote, "created_at": table["created_at"]})

    checks = dump.position_checks
    survey = pd.DataFrame({
        "source_key": "position:" + checks["participant_id"].astype(str) + ":" + checks["created_at"].astype(str),
        "participant": checks["participant_id"].astype(str), "question": POSITION_FAIR,
        "answer": np.where(checks["is_satisfied_with_position"].astype(bool), "yes", "no"),
        "canonical": checks["deduplicated_card_id"].astype(str), "created_at": checks["created_at"]})

    return ImportBundle(
        spec=spec, source="mge", survey=survey, participants=participants, attributes=pd.DataFrame(attributes),
        contexts=contexts, cards=card_rows(dump.cards, canonical=False),
        canonical=card_rows(dump.canonical_values, canonical=True), wiser=wiser,
        endorsements=pd.concat([endorsement_rows(votes, "vote:", "agree"),
                                endorsement_rows(passed, "impression:", "pass")], ignore_index=True),
    )
