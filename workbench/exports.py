"""Researcher exports: clean, documented, group-conditioned tables from one deliberation.

`export(store, deliberation, what, fmt, out)` writes a folder: the tables asked for, every table
their ids point to (so each foreign key resolves inside the export), and a README.md datasheet that
lists every file with its columns. Every table row is checked against its JSON Schema in
schemas/export/, whose `x-references` say which column points where. Ids are public ids
(workbench/ids.py): text everywhere, one value per participant, value, card or statement across all
files. Files are written to a temporary folder and moved into place only when everything succeeded,
so a failed export leaves nothing half-written; the same database gives the same files. Exports hold
pseudonymous ids only: never invite tokens, token hashes or passwords.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd

from . import analyses, config, ids
from .errors import InputError
from .markdown import literal
from .store import Store, as_timestamp

SCHEMAS = config.SCHEMAS / "export"
#: Every table, in the order a datasheet lists them (the ones others point to first).
TABLES = ("questions", "participants", "canonical-values", "cards", "statements", "wiser-answers", "endorsements",
          "comparisons", "same-value-answers", "survey-answers", "preference-pairs", "interviews",
          "interview-messages")
#: What `--what` accepts: a table, `interviews` (interviews and their messages), the graph, the Polis files, or all.
WHATS = tuple(t for t in TABLES if t != "interview-messages") + ("graph", "polis", "all")
FORMATS = ("parquet", "csv", "jsonl")
_EXTRA_TABLES = {"interviews": ("interviews", "interview-messages"), "graph": ("canonical-values",),
                 "polis": ("participants", "canonical-values", "statements", "cards"), "all": TABLES}


class ExportError(InputError):
    """An export could not be made (the message says which option, table, row or column)."""


@dataclass(frozen=True)
class ExportedFile:
    path: Path
    table: str
    rows: int


def schema(name: str) -> dict:
    return json.loads((SCHEMAS / f"{name}.schema.json").read_text())


def references(name: str) -> dict[str, tuple[str, str]]:
    """column → (table, column) for every column of `name` that names a row of another table."""
    out = {}
    for column, spec in schema(name)["properties"].items():
        if "x-references" in spec:
            table, target = spec["x-references"].split(".", 1)
            out[column] = (table, target)
    return out


def tables_for(what: str) -> tuple[str, ...]:
    """The tables an export of `what` holds: those asked for and, transitively, those they point to."""
    if what not in WHATS:
        raise ExportError(f"--what: must be one of {', '.join(WHATS)}, got {what!r}")
    wanted = list(_EXTRA_TABLES.get(what, (what,) if what in TABLES else ()))
    for name in wanted:  # grows while it is walked: the closure over x-references
        wanted += [table for table, _ in references(name).values() if table not in wanted and table in TABLES]
    return tuple(t for t in TABLES if t in wanted)


# -- the tables ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Query:
    """One export's reads: the deliberation, its filters, and the public ids of its rows."""

    store: Store
    deliberation_id: str
    question_id: str | None
    until: datetime | None

    @cached_property
    def participants(self) -> ids.IdMap:
        return self.store.id_map(self.deliberation_id, "participant")

    @cached_property
    def values(self) -> ids.IdMap:
        return self.store.id_map(self.deliberation_id, "value")

    @cached_property
    def cards(self) -> ids.IdMap:
        return self.store.id_map(self.deliberation_id, "card")

    @cached_property
    def statements(self) -> ids.IdMap:
        return self.store.id_map(self.deliberation_id, "statement")

    @cached_property
    def interviews(self) -> ids.IdMap:
        return self.store.id_map(self.deliberation_id, "interview")

    @cached_property
    def all_values(self) -> pd.DataFrame:
        """Every canonical value, retired ones too (answers may still name them), with `public_id`."""
        values = self.store.canonical_values(self.deliberation_id, include_retired=True)
        return values.assign(public_id=self.values.publics(values["id"]))

    def of_question(self, frame: pd.DataFrame, column: str = "question_id") -> pd.DataFrame:
        return frame if self.question_id is None else frame[frame[column] == self.question_id]

    def kept(self, frame: pd.DataFrame, id_map: ids.IdMap, include: set[str]) -> pd.DataFrame:
        """`frame` (store ids in `id`) with `public` ids, its rows of the question asked for and any
        row another table points to."""
        frame = frame.assign(public=id_map.publics(frame["id"]))
        return frame[frame["public"].isin(include) | (self.question_id is None)
                     | (frame["question_id"] == self.question_id)]


def _questions(q: _Query) -> pd.DataFrame:
    questions = q.store.questions(q.deliberation_id)
    return pd.DataFrame({"question_id": questions["id"], "title": questions["title"], "prompt": questions["prompt"]})


def _participants(q: _Query) -> pd.DataFrame:
    people = q.store.participants(q.deliberation_id, taking_part=True)[["participant_id", "signup", "created_at"]]
    people = people.merge(q.store.attributes(q.deliberation_id, until=q.until), on="participant_id", how="left")
    return people.assign(participant_id=q.participants.publics(people["participant_id"]))


def _cards(q: _Query, include: set[str] = frozenset()) -> pd.DataFrame:
    cards = q.kept(q.store.cards(q.deliberation_id, until=q.until), q.cards, include)
    titles = dict(zip(q.all_values["id"], q.all_values["title"], strict=True))
    linked = cards["canonical_id"].notna()
    return pd.DataFrame({
        "card_id": cards["public"], "question_id": cards["question_id"],
        "participant_id": q.participants.publics(cards["author_id"]), "title": cards["title"],
        "description": cards["description"], "policies": cards["policies"], "contexts": cards["contexts"],
        "value_id": q.values.publics(cards["canonical_id"].where(linked, None)),
        "value_title": [titles.get(v) if ok else None for v, ok in zip(cards["canonical_id"], linked, strict=True)],
        "created_at": cards["created_at"]}).reset_index(drop=True)


def _statements(q: _Query, include: set[str] = frozenset()) -> pd.DataFrame:
    found = q.kept(q.store.cards(q.deliberation_id, kind="statement", until=q.until), q.statements, include)
    return pd.DataFrame({
        "statement_id": found["public"], "question_id": found["question_id"],
        "text": [d or t for d, t in zip(found["description"], found["title"], strict=True)],
        "created_at": found["created_at"]}).reset_index(drop=True)


def _canonical_values(q: _Query, include: set[str] = frozenset()) -> pd.DataFrame:
    values = q.all_values
    retired = values["retired"].astype(bool)
    shown = ~retired & ((q.question_id is None) | values["question_id"].isna() | (values["question_id"] == q.question_id))
    values = values[shown | values["public_id"].isin(include)]
    return pd.DataFrame({
        "value_id": values["public_id"], "question_id": values["question_id"], "title": values["title"],
        "description": values["description"], "policies": values["policies"], "origin": values["origin"],
        "members": values["members"].astype(int), "contexts": values["contexts"],
        "retired": values["retired"].astype(bool)}).reset_index(drop=True)


def _wiser_answers(q: _Query) -> pd.DataFrame:
    answers = q.store.wiser_answers(q.deliberation_id, until=q.until, question_id=q.question_id)
    return pd.DataFrame({
        "answer_id": answers["id"].astype(int), "participant_id": q.participants.publics(answers["participant_id"]),
        "from_value_id": q.values.publics(answers["from_id"]), "to_value_id": q.values.publics(answers["to_id"]),
        "context": answers["context"], "answer": answers["answer"], "comment": answers["comment"],
        "created_at": answers["created_at"]})


def _endorsements(q: _Query) -> pd.DataFrame:
    votes = q.store.endorsements(q.deliberation_id, until=q.until, question_id=q.question_id)
    kind = votes["target_kind"]
    return pd.DataFrame({
        "participant_id": q.participants.publics(votes["participant_id"]),
        "value_id": q.values.publics(votes["canonical_id"].where(kind == "value", None)),
        "statement_id": q.statements.publics(votes["card_id"].where(kind == "statement", None)),
        "card_id": q.cards.publics(votes["card_id"].where(kind == "card", None)),
        "question_id": votes["question_id"], "vote": votes["vote"].astype(int), "created_at": votes["created_at"]})


def _comparisons(q: _Query) -> pd.DataFrame:
    made = q.of_question(q.store.comparisons(q.deliberation_id, until=q.until, include_ties=True))
    return pd.DataFrame({
        "participant_id": q.participants.publics(made["participant_id"]), "item_a": made["item_a"],
        "item_b": made["item_b"], "winner": made["winner"], "context": made["context"],
        "question_id": made["question_id"], "weight": made["weight"].astype(float), "source": made["source"],
        "created_at": made["created_at"]}).reset_index(drop=True)


def _same_value_answers(q: _Query) -> pd.DataFrame:
    """The latest answer of each participant (and verdict of each LLM model) per card pair, about cards that
    are exported: not hidden, and with a question filter, one of the pair answers it."""
    answers = q.store.merge_judgements(q.deliberation_id, until=q.until)
    cards = q.store.cards(q.deliberation_id, until=q.until)
    shown = set(cards["id"])
    of_question = shown if q.question_id is None else set(cards[cards["question_id"] == q.question_id]["id"])
    answers = answers[answers["card_a"].isin(shown) & answers["card_b"].isin(shown)
                      & (answers["card_a"].isin(of_question) | answers["card_b"].isin(of_question))]
    return pd.DataFrame({
        "answer_id": answers["id"].astype(int),
        "participant_id": q.participants.publics(answers["participant_id"].astype(object)),
        "card_a": q.cards.publics(answers["card_a"]), "card_b": q.cards.publics(answers["card_b"]),
        "answer": answers["answer"], "source": answers["source"], "model": answers["model"],
        "reason": answers["reason"], "created_at": answers["created_at"]}).reset_index(drop=True)


def _survey_answers(q: _Query) -> pd.DataFrame:
    """Each participant's latest answer to each closing-survey question (not filtered by question: the
    survey is about the deliberation)."""
    answers = q.store.survey_answers(q.deliberation_id, until=q.until)
    return pd.DataFrame({
        "participant_id": q.participants.publics(answers["participant_id"]),
        "survey_question": answers["question"], "answer": answers["answer"],
        "value_id": q.values.publics(answers["canonical_id"]), "created_at": answers["created_at"],
    }).reset_index(drop=True)


def _value_texts(values: pd.DataFrame) -> dict[str, str]:
    """Public value id → the text a preference pair shows for it."""
    text = {}
    for row in values.itertuples():
        body = f"{row.title}: {row.description}".strip().rstrip(":")
        policies = "; ".join(row.policies or [])
        text[row.public_id] = f"{body} (attends to: {policies})" if policies else body
    return text


@dataclass(frozen=True)
class LatentClasses:
    """Each participant's class in the latest stored latent-class fit, and which run that was."""

    run_id: int | None = None
    finished_at: str | None = None
    params: dict | None = None
    classes: dict[str, tuple[int, float | None]] | None = None

    def describe(self) -> str:
        if self.run_id is None:
            return "no latent-class fit is stored yet (`workbench fit`), so `cluster_id` and `cluster_prob` are empty"
        return (f"from analysis run {self.run_id} (a `fit` finished {self.finished_at} UTC, with "
                f"{', '.join(f'{k} = {v}' for k, v in (self.params or {}).items() if v is not None)})")


def latest_latent_classes(store: Store, deliberation_id: str) -> LatentClasses:
    """participant's public id → (component, probability) from the latest successful `fit` run."""
    runs = store.runs(deliberation_id=deliberation_id, kind="fit")
    runs = runs[runs["status"] == "done"]
    if runs.empty:
        return LatentClasses()
    run = store.run(int(runs.iloc[0]["id"]))
    classes = {}
    for p in (run["result"] or {}).get("participants", []):
        probs = p.get("probs") or []
        component = int(p["component"])
        classes[str(p["participant_id"])] = (component, float(probs[component]) if probs else None)
    return LatentClasses(int(run["id"]), str(run["finished_at"]), run["params"], classes)


def _preference_pairs(q: _Query, latent: LatentClasses) -> pd.DataFrame:
    """Comparisons and wiser-than upgrades as (prompt, chosen, rejected) pairs with group columns.

    A comparison's winner is chosen over the other value; an `upgrade` on A→B in context C is B
    chosen over A with prompt C (no_upgrade and not_sure give no pair: see workbench.prefs).
    `group_*` columns carry the participant's attributes; `cluster_id`/`cluster_prob` their latent
    class from the latest stored `fit` run, when there is one.
    """
    text = _value_texts(q.all_values)
    rows = []
    made = q.of_question(q.store.comparisons(q.deliberation_id, until=q.until))
    for m, person in zip(made.itertuples(), q.participants.publics(made["participant_id"]), strict=True):
        chosen, rejected = (m.item_a, m.item_b) if m.winner == "a" else (m.item_b, m.item_a)
        rows.append({"prompt": m.prompt or m.context or "", "chosen": text.get(chosen, chosen),
                     "rejected": text.get(rejected, rejected), "chosen_id": chosen, "rejected_id": rejected,
                     "participant_id": person, "context": m.context, "weight": float(m.weight), "source": m.source})
    answers = q.store.wiser_answers(q.deliberation_id, until=q.until, latest=True, question_id=q.question_id)
    answers = answers[answers["answer"] == "upgrade"]
    for a, person in zip(answers.itertuples(), q.participants.publics(answers["participant_id"]), strict=True):
        chosen, rejected = q.values.public(a.to_id), q.values.public(a.from_id)
        rows.append({"prompt": a.context, "chosen": text[chosen], "rejected": text[rejected], "chosen_id": chosen,
                     "rejected_id": rejected, "participant_id": person, "context": a.context, "weight": 1.0,
                     "source": "wiser"})
    pairs = pd.DataFrame(rows, columns=["prompt", "chosen", "rejected", "chosen_id", "rejected_id", "participant_id",
                                        "context", "weight", "source"])
    attrs = q.store.attributes(q.deliberation_id, until=q.until)
    attrs = attrs.assign(participant_id=q.participants.publics(attrs["participant_id"]))
    attrs = attrs.rename(columns={c: f"group_{c}" for c in attrs.columns if c != "participant_id"})
    pairs = pairs.merge(attrs, on="participant_id", how="left")
    classes = latent.classes or {}
    pairs["cluster_id"] = pairs["participant_id"].map(lambda p: classes.get(p, (None, None))[0]).astype("Int64")
    pairs["cluster_prob"] = pairs["participant_id"].map(lambda p: classes.get(p, (None, None))[1]).astype("Float64")
    return pairs


def _interviews(q: _Query, include: set[str] = frozenset()) -> pd.DataFrame:
    found = q.store.interviews(q.deliberation_id, until=q.until)
    found = found[found["card_status"].isna() | (found["card_status"] == "active")]  # a hidden card's text, nowhere
    found = q.kept(found, q.interviews, include)
    answers = [a or {} for a in found["answers"]]

    def field(name, empty=None):
        return [a.get(name) or empty for a in answers]

    return pd.DataFrame({
        "interview_id": found["public"], "participant_id": q.participants.publics(found["participant_id"]),
        "question_id": found["question_id"], "mode": found["mode"], "stage": found["stage"],
        "card_id": q.cards.publics(found["card_id"]), "response": field("response"), "story": field("story"),
        "policies": [list(p) for p in field("policies", [])], "title": field("title"),
        "description": field("description"), "contexts": [list(c) for c in field("contexts", [])],
        "started_at": found["created_at"]}).reset_index(drop=True)


def _interview_messages(q: _Query, interviews: pd.DataFrame) -> pd.DataFrame:
    messages = q.store.interview_messages(q.deliberation_id, until=q.until)
    messages = messages.assign(interview_id=q.interviews.publics(messages["interview_id"]))
    messages = messages[messages["interview_id"].isin(set(interviews["interview_id"]))]
    return messages[["interview_id", "turn", "role", "content", "created_at"]].reset_index(drop=True)


def tables(store: Store, deliberation_id: str, names: tuple[str, ...], *, question_id: str | None = None,
           until=None) -> dict[str, pd.DataFrame]:
    """The export tables `names` (as `tables_for` lists them), each with exactly its schema's columns
    (plus attribute columns); tables that others point to hold every row those point to."""
    q = _Query(store, deliberation_id, question_id, as_timestamp(until))
    out: dict[str, pd.DataFrame] = {}
    build = {"questions": _questions, "participants": _participants, "wiser-answers": _wiser_answers,
             "endorsements": _endorsements, "comparisons": _comparisons, "same-value-answers": _same_value_answers,
             "survey-answers": _survey_answers}
    for name in names:
        if name in build:
            out[name] = build[name](q)
    if "preference-pairs" in names:
        out["preference-pairs"] = _preference_pairs(q, latest_latent_classes(store, deliberation_id))
    if "interviews" in names:
        out["interviews"] = _interviews(q)
        out["interview-messages"] = _interview_messages(q, out["interviews"])
    # The tables others point to last, with every row pointed to (even outside the question filter);
    # cards before values, because a card names its value.
    for name, builder in (("cards", _cards), ("statements", _statements), ("canonical-values", _canonical_values)):
        if name in names:
            out[name] = builder(q, _pointed_to(out, name))
    return {name: out[name] for name in TABLES if name in out and name in names}


def _pointed_to(frames: dict[str, pd.DataFrame], table: str) -> set[str]:
    """The ids other exported tables name in `table`."""
    found: set[str] = set()
    for name, frame in frames.items():
        for column, (target, _) in references(name).items():
            if target == table and column in frame.columns:
                found |= {str(v) for v in frame[column].dropna()}
    return found


# -- writing ---------------------------------------------------------------------------------------


def _plain(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, pd.Timestamp | datetime):
        return value.isoformat() + ("Z" if value.tzinfo is None else "")
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.floating):
        return None if np.isnan(value) else float(value)
    if value is pd.NA or value is pd.NaT or (isinstance(value, float) and np.isnan(value)):
        return None
    return value


def records(frame: pd.DataFrame) -> list[dict]:
    return [{k: _plain(v) for k, v in row.items()} for row in frame.to_dict("records")]


def validate(name: str, frame: pd.DataFrame) -> None:
    """Every row against schemas/export/<name>.schema.json; the first bad row is named."""
    validator = jsonschema.Draft202012Validator(schema(name), format_checker=jsonschema.FormatChecker())
    for i, row in enumerate(records(frame), start=1):
        error = next(iter(validator.iter_errors(row)), None)
        if error is not None:
            where = ".".join(str(p) for p in error.absolute_path) or "(row)"
            raise ExportError(f"{name}: row {i}, column {where}: {error.message}")


def _typed(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """Id columns as text and nothing else: the same dtype in every file, whatever the rows hold."""
    frame = frame.copy()
    for column, spec in schema(name)["properties"].items():
        kinds = spec.get("type")
        kinds = {kinds} if isinstance(kinds, str) else set(kinds or ())
        if column in frame.columns and kinds <= {"string", "null"} and "format" not in spec:
            frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return frame


#: What a spreadsheet reads as the start of a formula (OWASP's list), and the apostrophe that marks text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "'")


def spreadsheet_safe(value):
    """A CSV cell a spreadsheet shows as text: a string starting with =, +, -, @, a tab or a carriage
    return (a formula such as =HYPERLINK(...) to Excel, LibreOffice and Google Sheets) gets a leading
    apostrophe, as OWASP recommends against CSV injection. A string already starting with an apostrophe
    gets one too, so removing one leading apostrophe from every cell that has one gives the text back
    exactly (and a spreadsheet, which hides the first apostrophe, shows the text as typed)."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """`frame` as CSV with every text cell made spreadsheet-safe (numbers, such as a -1 vote, stay numbers)."""
    safe = frame.copy()
    for column in safe.columns:
        if safe[column].dtype == object or pd.api.types.is_string_dtype(safe[column]):
            safe[column] = safe[column].map(spreadsheet_safe)
    safe.columns = [spreadsheet_safe(str(c)) for c in safe.columns]
    safe.to_csv(path, index=False)


def write_table(frame: pd.DataFrame, path: Path, fmt: str) -> None:
    if fmt == "parquet":
        frame.to_parquet(path, index=False)
    elif fmt == "csv":
        flat = frame.copy()
        for column in flat.columns:  # lists as JSON arrays, so a CSV reader gets them back exactly
            if flat[column].dtype == object and any(isinstance(v, list | np.ndarray) for v in flat[column]):
                flat[column] = flat[column].map(lambda v: json.dumps(_plain(v), ensure_ascii=False)
                                                if isinstance(v, list | np.ndarray) else v)
        write_csv(flat, path)
    elif fmt == "jsonl":
        with open(path, "w", encoding="utf-8") as f:
            for row in records(frame):
                f.write(json.dumps(row, ensure_ascii=False, sort_keys=False) + "\n")
    else:
        raise ExportError(f"--format: must be one of {', '.join(FORMATS)}, got {fmt!r}")


def _columns_section(name: str, file_label: str, extra: list[str]) -> list[str]:
    sch = schema(name)
    lines = ["", f"## `{file_label}`: {sch['title']}", "", sch["description"], "", "| column | meaning |", "|---|---|"]
    for column, spec in sch["properties"].items():
        meaning = spec.get("description", "")
        if "x-references" in spec:
            meaning += f" (→ `{spec['x-references']}`" + (f"; {spec['x-references-note']}" if "x-references-note"
                                                            in spec else "") + ")"
        lines.append(f"| `{column}` | {meaning} |")
    for column in extra:
        if name == "preference-pairs":
            lines.append(f"| `{column}` | the participant's attribute `{column.removeprefix('group_')}` |")
        elif name == "polis-participants-votes":
            lines.append(f"| `{column}` | the voter's latest vote on that comment-id (1, -1, 0; empty: not seen) |")
        else:
            lines.append(f"| `{column}` | participant attribute `{column}` |")
    return lines


def datasheet(deliberation: dict, files: list[ExportedFile], *, what: str, fmt: str, filters: dict,
              extra_columns: dict[str, list[str]], data_until: str | None, latent: LatentClasses | None = None,
              groups: str | None = None) -> str:
    """The README.md that travels with an export: every file, its rows, its columns and where they point.

    It states the time of the newest exported row, not the wall clock, so the same database gives
    the same files.
    """
    # The deliberation's title and licence are a facilitator's or an import's text: shown as typed, so a
    # Markdown image or link in them is neither fetched nor followed where the datasheet is rendered.
    lines = [f"# Values Workbench export: {literal(deliberation['title'])}", "",
             f"- Deliberation: `{deliberation['id']}` ({deliberation.get('source', '')})",
             f"- Exported: `{what}` as {fmt}",
             f"- Newest row: {data_until or 'no timestamped rows'} (UTC)",
             f"- Filters: {', '.join(f'{k} = {literal(v) if isinstance(v, str) else v}' for k, v in filters.items() if v) or 'none'}",
             f"- Licence: {literal(deliberation.get('licence')) if deliberation.get('licence') else 'not stated'}",
             "- Participants are pseudonymous: no invite tokens, token hashes, passwords or names are exported.",
             "  Hidden (moderated) cards, and the interviews that led to them, are left out.",
             "- Ids are text, the same in every file (a participant, value, card or statement has one id):"
             " the id its source gave it where it was imported (MGE, Polis, demo), else a letter and a number"
             " (`p17` participant, `c12` card, `s3` statement, `v5` value, `i4` interview). Every id a column"
             " points to (→) is in this export. Parquet keeps ids as text; read CSV with"
             " `pd.read_csv(path, dtype=str)` for the id columns and JSONL with `pd.read_json(path, lines=True,"
             " dtype=False)`, or pandas turns numeric-looking ids into numbers."]
    if fmt == "csv":
        lines.append("- Lists (policies, contexts) are JSON arrays in the CSV cells (`json.loads` gives them back).")
    if fmt == "csv" or what in ("polis", "all"):
        lines.append("- CSV files are safe to open in a spreadsheet: a text cell that begins with `=`, `+`, `-`, `@`,"
                     " a tab, a carriage return or an apostrophe is written with one more apostrophe in front (OWASP's"
                     " advice against CSV formula injection), so a spreadsheet shows it as text and never runs it."
                     " Remove one leading `'` from such cells to get the text exactly. Parquet and JSONL files (and"
                     " the graph files) hold the text verbatim.")
    if latent is not None:
        lines.append(f"- Latent classes (`cluster_id`, `cluster_prob` in preference-pairs): {latent.describe()}.")
    if groups is not None:
        lines.append(f"- Opinion groups (`group-id` in polis/participants-votes.csv): {groups}.")
    lines += ["", "## Files", "", "| file | what | rows |", "|---|---|---|"]
    base = files[0].path.parent if files else Path(".")
    labels = {f.path: str(f.path.relative_to(base)) if f.path.is_relative_to(base) else f.path.name for f in files}
    lines += [f"| `{labels[f.path]}` | {f.table} | {f.rows} |" for f in files]
    described: set[str] = set()
    for f in files:
        name = _schema_of(f.table)
        if name is None or (name == "moral-graph" and name in described):
            continue
        described.add(name)
        label = labels[f.path] if name != "moral-graph" else "moral-graph-*.json, moral-graph-*.graphml"
        lines += _columns_section(name, label, extra_columns.get(f.table, []))
    if deliberation.get("source") == "polis":
        lines += ["", "Data was gathered using the Polis software (compdemocracy.org/polis) and is sub-licensed "
                  "under CC BY 4.0 with Attribution to The Computational Democracy Project."]
    return "\n".join(lines) + "\n"


def _schema_of(table: str) -> str | None:
    if table in TABLES:
        return table
    if table.startswith("graph"):
        return "moral-graph"
    return {"polis comments": "polis-comments", "polis votes": "polis-votes",
            "polis participants-votes": "polis-participants-votes", "polis participant ids": "polis-participant-ids",
            "polis comment ids": "polis-comment-ids"}.get(table)


def export(store: Store, deliberation_id: str, what: str, fmt: str, out: Path, *, question_id: str | None = None,
           until=None) -> list[ExportedFile]:
    """Write the export of `what` into the folder `out`: its tables, the tables they point to, and README.md."""
    names = tables_for(what)
    if fmt not in FORMATS:
        raise ExportError(f"--format: must be one of {', '.join(FORMATS)}, got {fmt!r}")
    out = Path(out)
    if out.suffix.lower() in {".csv", ".parquet", ".jsonl", ".json", ".zip"}:
        raise ExportError(f"--out: {out} looks like a file; an export is a folder (the tables, the tables their"
                          " ids point to, and README.md): name a folder")
    until = as_timestamp(until, field="until (only data created before)")
    deliberation = store.deliberation(deliberation_id)
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=out))
    try:
        files: list[ExportedFile] = []
        extra: dict[str, list[str]] = {}
        newest: list[pd.Timestamp] = []
        for name, frame in tables(store, deliberation_id, names, question_id=question_id, until=until).items():
            frame = _typed(frame, name)
            validate(name, frame)
            known = set(schema(name)["properties"])
            extra[name] = [c for c in frame.columns if c not in known]
            for column in ("created_at", "started_at"):
                if column in frame.columns and frame[column].notna().any():
                    newest.append(pd.Timestamp(frame[column].max()))
            write_table(frame, staging / f"{name}.{fmt}", fmt)
            files.append(ExportedFile(out / f"{name}.{fmt}", name, len(frame)))
        if what in ("graph", "all"):
            files += _write_graphs(store, deliberation_id, staging, out, question_id=question_id, until=until)
        groups = None
        if what in ("polis", "all"):
            written, groups, columns = _write_polis(store, deliberation_id, staging / "polis", out,
                                                    question_id=question_id, until=until)
            files += written
            extra["polis participants-votes"] = columns
        latent = latest_latent_classes(store, deliberation_id) if "preference-pairs" in names else None
        sheet = datasheet(deliberation, files, what=what, fmt=fmt, filters={"question": question_id, "until": until},
                          extra_columns=extra, data_until=str(max(newest)) if newest else None, latent=latent,
                          groups=groups)
        (staging / "README.md").write_text(sheet, encoding="utf-8")
        for item in staging.iterdir():  # everything succeeded: move into place
            target = out / item.name
            if target.is_dir():
                shutil.rmtree(target)
            os.replace(item, target)
        return [*files, ExportedFile(out / "README.md", "datasheet", 0)]
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _write_graphs(store, deliberation_id, staging, final_dir, *, question_id, until) -> list[ExportedFile]:
    from . import moralgraph

    validator = jsonschema.Draft202012Validator(schema("moral-graph"))
    files = []
    for mode in ("mge", "default"):
        graph = analyses.moral_graph(store, deliberation_id, mode=mode, until=until, question_id=question_id)
        published = graph.published
        error = next(iter(validator.iter_errors(published)), None)
        if error is not None:
            raise ExportError(f"moral-graph-{mode}.json: {'.'.join(map(str, error.absolute_path))}: {error.message}")
        (staging / f"moral-graph-{mode}.json").write_text(json.dumps(published, indent=1, ensure_ascii=False))
        moralgraph.to_graphml(graph.graph, staging / f"moral-graph-{mode}.graphml")
        files += [ExportedFile(final_dir / f"moral-graph-{mode}.json", f"graph ({mode})", len(published["edges"])),
                  ExportedFile(final_dir / f"moral-graph-{mode}.graphml", f"graph ({mode}, GraphML)",
                               len(published["edges"]))]
    return files


def _polis_numbers(public: list[str]) -> tuple[dict[str, int], bool]:
    """Polis's integer ids for public ids: the ids themselves when every one is an integer (they came from
    Polis), else 0, 1, ... in order. The flag says whether a mapping file is needed."""
    if all(p.isdigit() for p in public):
        return {p: int(p) for p in public}, False
    return {p: i for i, p in enumerate(sorted(public, key=_natural))}, True


def _natural(text: str) -> tuple:
    head = text.rstrip("0123456789")
    tail = text[len(head):]
    return (head, int(tail) if tail else -1, text)


def polis_groups(store: Store, deliberation_id: str) -> tuple[dict[str, int], str]:
    """participant's public id → the opinion group the Polis files give them, and a sentence saying whose.

    An imported Polis conversation keeps Polis's own groups (the `polis_group` attribute: it also says who
    Polis placed in its conversation, so an export imported again gives the same groups); otherwise the
    latest stored opinion-groups run."""
    attrs = store.attributes(deliberation_id)
    if "polis_group" in attrs.columns and attrs["polis_group"].notna().any():
        people = store.id_map(deliberation_id, "participant")
        known = attrs.dropna(subset=["polis_group"])
        return ({people.public(p): int(g) for p, g in zip(known["participant_id"], known["polis_group"], strict=True)},
                "Polis's own groups, as the imported export gave them (the participant attribute `polis_group`)")
    return latest_groups(store, deliberation_id)


def latest_groups(store: Store, deliberation_id: str) -> tuple[dict[str, int], str]:
    """participant's public id → opinion group from the latest stored opinion-groups run (`workbench
    groups`, or the Disagreement page), and a sentence saying which run that was."""
    runs = store.runs(deliberation_id=deliberation_id)
    runs = runs[(runs["status"] == "done") & runs["kind"].isin(["groups", "disagreement"])]
    known = set(store.id_map(deliberation_id, "participant").to_store)
    for run_id in runs["id"]:
        run = store.run(int(run_id))
        rows = (run["result"] or {}).get("participants") or (run["result"] or {}).get("opinion_map") or []
        groups = {str(r["participant_id"]): int(r["group"]) for r in rows
                  if isinstance(r.get("participant_id"), str) and str(r["participant_id"]) in known and r["group"] >= 0}
        if groups:
            params = ", ".join(f"{k} = {v}" for k, v in (run["params"] or {}).items() if v is not None)
            return groups, f"from analysis run {run['id']} (`{run['kind']}`, finished {run['finished_at']} UTC, {params})"
    return {}, "no opinion-groups run is stored yet (`workbench groups` or the Disagreement page), so it is empty"


def _write_polis(store, deliberation_id, folder: Path, final_dir, *, question_id, until
                 ) -> tuple[list[ExportedFile], str, list[str]]:
    """comments.csv, votes.csv and participants-votes.csv in Polis's own export format, with mapping files
    to the public ids when the participants or statements did not come from Polis."""
    folder.mkdir(parents=True, exist_ok=True)
    # Hidden statements go out as Polis marks moderated-out comments (moderated = -1, text withheld):
    # Polis tools still count their votes, as Polis itself does.
    votes = analyses.endorsement_table(store, deliberation_id, until=until, question_id=question_id, latest=False,
                                       include_hidden=True)
    latest = analyses.endorsement_table(store, deliberation_id, until=until, question_id=question_id,
                                        include_hidden=True)
    hidden = set(latest.loc[latest["hidden"], "statement_id"])
    number, comment_map = _polis_numbers(sorted(set(latest["statement_id"])))
    voter, voter_map = _polis_numbers(sorted(set(latest["participant_id"])))
    statements = sorted(number, key=number.get)
    people = sorted(voter, key=voter.get)
    values = analyses.value_table(store, deliberation_id)
    cards = pd.concat([store.cards(deliberation_id, kind="statement", include_hidden=True),
                       store.cards(deliberation_id, include_hidden=True)], ignore_index=True)
    body = {r.public_id: f"{r.title}: {r.description}" for r in values.itertuples()}
    body |= {ids.public_id(r.kind, r.id, r.source_id): (r.description or r.title) for r in cards.itertuples()}
    kind_of = dict(zip(latest["statement_id"], latest["target_kind"], strict=True))
    ms = lambda ts: int(pd.Timestamp(ts).timestamp() * 1000)  # noqa: E731
    agrees = latest[latest["vote"] == 1].groupby("statement_id").size()
    disagrees = latest[latest["vote"] == -1].groupby("statement_id").size()
    first = votes.groupby("statement_id")["created_at"].min()
    comments = pd.DataFrame({
        "timestamp": [ms(first[s]) for s in statements],
        "datetime": [pd.Timestamp(first[s]).strftime("%a %b %d %H:%M:%S UTC %Y") for s in statements],
        "comment-id": [number[s] for s in statements], "author-id": -1,
        "agrees": [int(agrees.get(s, 0)) for s in statements], "disagrees": [int(disagrees.get(s, 0)) for s in statements],
        "moderated": [-1 if s in hidden else 1 for s in statements],
        "comment-body": ["(hidden by a facilitator)" if s in hidden else body.get(s, s) for s in statements]})
    vote_rows = votes[votes["statement_id"].isin(number) & votes["participant_id"].isin(voter)]
    votes_csv = pd.DataFrame({
        "timestamp": [ms(t) for t in vote_rows["created_at"]],
        "datetime": [pd.Timestamp(t).strftime("%a %b %d %H:%M:%S UTC %Y") for t in vote_rows["created_at"]],
        "comment-id": vote_rows["statement_id"].map(number).astype(int),
        "voter-id": vote_rows["participant_id"].map(voter).astype(int), "vote": vote_rows["vote"].astype(int)})
    matrix = latest.pivot_table(index="participant_id", columns="statement_id", values="vote", aggfunc="last")
    matrix = matrix.reindex(index=people, columns=statements)
    group_of, groups_note = polis_groups(store, deliberation_id)
    pv = pd.DataFrame({"participant": [voter[p] for p in people],
                       "group-id": pd.array([group_of.get(p) for p in people], dtype="Int64"),
                       "n-comments": 0, "n-votes": matrix.notna().sum(axis=1).to_numpy(),
                       "n-agree": (matrix == 1).sum(axis=1).to_numpy(),
                       "n-disagree": (matrix == -1).sum(axis=1).to_numpy()})
    columns = pd.DataFrame({str(number[s]): matrix[s].astype("Int64").to_numpy() for s in statements})
    pv = pd.concat([pv, columns], axis=1)
    files = {"comments.csv": ("polis comments", "polis-comments", comments),
             "votes.csv": ("polis votes", "polis-votes", votes_csv),
             "participants-votes.csv": ("polis participants-votes", "polis-participants-votes", pv)}
    if voter_map:
        files["participant-ids.csv"] = ("polis participant ids", "polis-participant-ids", pd.DataFrame(
            {"participant": [voter[p] for p in people], "participant_id": people}))
    if comment_map:
        files["comment-ids.csv"] = ("polis comment ids", "polis-comment-ids", pd.DataFrame({
            "comment-id": [number[s] for s in statements],
            **{column: [s if kind_of[s] == kind else None for s in statements]
               for column, kind in (("value_id", "value"), ("statement_id", "statement"), ("card_id", "card"))}}))
    out = []
    for file_name, (table, schema_name, frame) in files.items():
        validate(schema_name, frame)
        write_csv(frame, folder / file_name)
        out.append(ExportedFile(final_dir / "polis" / file_name, table, len(frame)))
    return out, groups_note, [str(number[s]) for s in statements]
