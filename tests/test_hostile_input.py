"""Hostile and malformed input: every validator and importer answers with an error naming the place.

Property-based (hypothesis): arbitrary Unicode, very long text, control characters, lone surrogates,
empty files, wrong columns, wrong types and duplicate rows go into the pydantic models, the card
checks, the deliberation YAML reader and the three importers (MGE dump, Polis export, comparisons
file). Each either accepts the input (and then what it accepted obeys the documented limits) or
raises its own error (`InputError`, `CardShapeError`, `MgeFormatError`, `PolisFormatError`,
`ComparisonFormatError`) whose message names the field, or the file, row and column — never a
KeyError, TypeError or a database error. A failed import leaves every table as it was.

The size limits (`workbench.models`: definition size, nesting and counts; import file size, rows and
JSON nesting; id length and characters) are properties too: any size is accepted within the limit or
refused naming the file or field, before the input is parsed where the limit allows.

Also here: guessing invite tokens. Refused links are paused longer and longer (the computed pause is
asserted, not wall time), logged without the token, and no token or token hash appears in the logs of
a whole participant walk or in any export file.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import unicodedata
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest
from test_mge_io import _minimal_dump

from workbench import config, exports, models
from workbench.cardcheck import CardCheck, CardShapeError, check_card, check_policy
from workbench.deliberation import parse_deliberation
from workbench.io import limits
from workbench.io.bundle import ImportBundle
from workbench.io.comparisons import ComparisonFormatError, comparisons_bundle, read_comparisons
from workbench.io.mge import MgeFormatError, mge_bundle, read_mge_dump
from workbench.io.polis import PolisFormatError, polis_bundle, read_polis_export
from workbench.models import (
    AttributeIn,
    ComparisonIn,
    DeliberationSpec,
    InputError,
    ValuesCardIn,
    WiserAnswerIn,
    validated,
)
from workbench.participation import INVALID_LINK, InviteGuessPolicy, resolve_visitor
from workbench.store import Store, hash_token

HYPOTHESIS = settings(max_examples=30, deadline=None,
                      suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

# Text a participant or a file could hold: any code point (lone surrogates included), often a control
# character, sometimes far too long.
any_text = st.one_of(
    st.text(st.characters(codec=None, exclude_categories=()), max_size=40),
    st.text(st.sampled_from("ab \t\n\r\x00\x01\x1b\x7f\x85\u200b\u202e\u0958<>&\"',;|*_#"), max_size=30),
    st.builds(lambda ch, n: ch * n, st.sampled_from(["x", " ", "\u0958", "é", "😀"]), st.integers(0, 5000)),
)
any_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | any_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(any_text, inner, max_size=3),
    max_leaves=6,
)


def table_counts(store: Store) -> dict[str, int]:
    """Rows per table: the whole database's state as far as an import can change it."""
    tables = [r[0] for r in store._rows("SELECT table_name FROM information_schema.tables"
                                        " WHERE table_schema = 'main' ORDER BY table_name")]
    return {t: store._rows(f'SELECT count(*) FROM "{t}"')[0][0] for t in tables}


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Store:
    s = Store(tmp_path_factory.mktemp("hostile") / "hostile.duckdb")
    yield s
    s.close()


# -- the models --------------------------------------------------------------------------------------

CARD = {"title": "Listening Before Pushing", "description": "Understanding the refusal first.",
        "policies": ["MOMENTS when the child asks", "SIGNS of exhaustion"], "question_id": "demo/homework",
        "contexts": ["When a child's wellbeing is at stake"]}
#: (model, valid data, path of one text field, its limit, its minimum length)
TEXT_FIELDS = [
    (ValuesCardIn, CARD, ("title",), 80, 1),
    (ValuesCardIn, CARD, ("description",), 600, 1),
    (ValuesCardIn, CARD, ("policies", 1), 200, 1),
    (ValuesCardIn, CARD, ("contexts", 0), 120, 1),
    (WiserAnswerIn, {"participant_id": 1, "from_value_id": 1, "to_value_id": 2, "context_id": 1,
                     "answer": "upgrade", "comment": "ok"}, ("comment",), 1000, 0),
    (ComparisonIn, {"participant_id": 1, "item_a": "a", "item_b": "b", "winner": "a"}, ("item_b",), 200, 1),
    (AttributeIn, {"key": "age_band", "value": "30-44"}, ("key",), 64, 1),
    (AttributeIn, {"key": "age_band", "value": "30-44"}, ("value",), 200, 0),
]


def _set(data: dict, path: tuple, value) -> dict:
    data = json.loads(json.dumps(data))
    target = data
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return data


def _get(model, path: tuple):
    value = model
    for part in path:
        value = value[part] if isinstance(part, int) else getattr(value, part)
    return value


def _loc(path: tuple) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else p) for i, p in enumerate(path))


@HYPOTHESIS
@given(field=st.sampled_from(TEXT_FIELDS), text=any_text)
def test_any_text_is_accepted_within_limits_or_refused_naming_the_field(field, text):
    model, data, path, limit, minimum = field
    try:
        made = validated(model, _set(data, path, text), where="form")
    except InputError as exc:
        # "form: policies[1]: too long" or, for a cross-field rule, "form: policies[1] repeats policies[0]"
        assert re.match(rf"form: {re.escape(_loc(path))}[: ]", str(exc)), str(exc)
        return
    kept = _get(made, path)
    assert kept == unicodedata.normalize("NFC", kept) == kept.strip()
    assert minimum <= len(kept) <= limit
    assert not CONTROL.search(kept)
    kept.encode("utf-8")  # storable: no lone surrogates


@HYPOTHESIS
@given(field=st.sampled_from(TEXT_FIELDS), value=any_json)
def test_wrong_types_are_refused_naming_the_field(field, value):
    model, data, path, _, _ = field
    try:
        validated(model, _set(data, path, value))
    except InputError as exc:
        assert str(exc).startswith(_loc(path)), str(exc)


@HYPOTHESIS
@given(data=any_json)
def test_anything_that_is_not_a_card_is_refused_with_an_input_error(data):
    with pytest.raises(InputError):
        validated(ValuesCardIn, data)


@HYPOTHESIS
@given(name=st.text(min_size=1, max_size=30).filter(lambda n: n not in ValuesCardIn.model_fields), value=any_json)
def test_a_valid_card_with_an_extra_field_is_refused_naming_that_field(name, value):
    """Every model forbids fields it does not know: a typo or an injected key is an error, not ignored."""
    validated(ValuesCardIn, CARD)  # the card itself is fine
    with pytest.raises(InputError) as refused:
        validated(ValuesCardIn, {**CARD, name: value})
    assert f"{name}: Extra inputs are not permitted" in str(refused.value)


def test_duplicate_policies_name_both_lines():
    card = {**CARD, "policies": ["SIGNS of exhaustion", "MOMENTS when asked", "signs  of EXHAUSTION"]}
    with pytest.raises(InputError, match=r"^policies\[2\] repeats policies\[0\]$"):
        validated(ValuesCardIn, card)


# -- the card checks and the deliberation YAML ------------------------------------------------------


@HYPOTHESIS
@given(title=any_json, description=any_json, policies=any_json)
def test_card_checks_report_issues_or_a_shape_error_never_a_crash(title, description, policies):
    try:
        check = check_card({"title": title, "description": description, "policies": policies})
    except CardShapeError as exc:
        assert re.search(r"title|description|policies", str(exc)), str(exc)
        return
    assert isinstance(check, CardCheck)
    for issue in (*check.errors, *check.warnings):
        assert re.fullmatch(r"title|description|policies(\[\d+\])?", issue.field), issue


@HYPOTHESIS
@given(title=any_text, description=any_text, policies=st.lists(any_text, max_size=12))
def test_card_checks_block_every_card_the_model_would_refuse_for_length(title, description, policies):
    check = check_card({"title": title, "description": description, "policies": policies})
    for line in policies:
        check_policy(line)  # never raises on any text
    if len(title.strip()) > 80 or not title.strip():
        assert check.errors, "an empty or over-long title is a hard error"


DELIBERATION = {"id": "d1", "title": "T", "consent": "C",
                "questions": [{"slug": "q", "title": "Q", "prompt": "P?", "contexts": ["When asked"]}]}


@HYPOTHESIS
@given(text=any_text | st.binary(max_size=200).map(lambda b: b.decode("latin-1")))
def test_any_yaml_text_is_a_deliberation_or_an_error_naming_the_definition(text):
    try:
        spec = parse_deliberation(text, where="upload.yaml")
    except InputError as exc:
        assert str(exc).startswith("upload.yaml: "), str(exc)
        return
    assert isinstance(spec, DeliberationSpec)


@HYPOTHESIS
@given(key=st.sampled_from(["id", "title", "consent", "questions", "rounds", "demographics", "open_signup",
                            "signup_limits"]),
       value=any_json)
def test_a_definition_with_one_wrong_value_names_that_key(key, value):
    text = yaml.safe_dump({**DELIBERATION, key: value}, allow_unicode=True)
    try:
        parse_deliberation(text, where="upload.yaml")
    except InputError as exc:
        assert str(exc).startswith(f"upload.yaml: {key}"), str(exc)


@HYPOTHESIS
@given(participants=st.integers(-10, 2_000_000), per_hour=st.integers(-10, 200_000))
def test_signup_limits_are_accepted_within_their_bounds_or_refused_naming_the_field(participants, per_hour):
    text = yaml.safe_dump({**DELIBERATION, "signup_limits": {"participants": participants, "per_hour": per_hour}})
    bad = [k for k, v, top in (("participants", participants, 1_000_000), ("per_hour", per_hour, 100_000))
           if not 0 <= v <= top]
    try:
        spec = parse_deliberation(text, where="upload.yaml")
    except InputError as exc:
        assert bad and str(exc).startswith(f"upload.yaml: signup_limits.{bad[0]}"), str(exc)
        return
    assert not bad and (spec.signup_limits.participants, spec.signup_limits.per_hour) == (participants, per_hour)


def test_duplicate_question_slugs_and_demographic_keys_are_refused():
    twice = {**DELIBERATION, "questions": DELIBERATION["questions"] * 2}
    with pytest.raises(InputError, match="question slugs must be distinct"):
        parse_deliberation(yaml.safe_dump(twice))
    demo = {"key": "age", "label": "Age", "options": ["young", "old"]}
    with pytest.raises(InputError, match="demographic keys must be distinct"):
        parse_deliberation(yaml.safe_dump({**DELIBERATION, "demographics": [demo, demo]}))


# -- the MGE importer -------------------------------------------------------------------------------

MGE_FILES = list(_minimal_dump())


def _import_mge(store: Store, folder: Path) -> str | None:
    """Read, convert and import the dump; the format error's message, or None when it was imported."""
    try:
        bundle = mge_bundle(read_mge_dump(folder), deliberation_id="mge-hostile")
    except (MgeFormatError, InputError) as exc:
        return str(exc)
    store.import_bundle(bundle, merge=True)  # each example adds to the one deliberation
    return None


def _write_dump(folder: Path, tables: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in tables.items():
        (folder / name).write_text(json.dumps(rows), encoding="utf-8")
    return folder


@HYPOTHESIS
@given(file=st.sampled_from(MGE_FILES), data=st.data(), value=any_json | st.just("__missing__"))
def test_mge_dump_with_one_bad_field_names_file_row_and_field(store, tmp_path_factory, file, data, value):
    tables = _minimal_dump()
    row = data.draw(st.integers(0, len(tables[file]) - 1), label="row")
    field = data.draw(st.sampled_from(sorted(tables[file][row])), label="field")
    if value == "__missing__":
        del tables[file][row][field]
    else:
        tables[file][row][field] = value
    before = table_counts(store)
    error = _import_mge(store, _write_dump(tmp_path_factory.mktemp("mge"), tables))
    if error is not None:
        assert table_counts(store) == before, "a refused import writes nothing"
        assert error.startswith(file) or "row" in error or error.startswith("deliberation"), error
        if error.startswith(f"{file} row {row}"):
            assert f"'{field}'" in error or "(with its contexts" in error, error


@HYPOTHESIS
@given(file=st.sampled_from(MGE_FILES), content=st.one_of(
    st.just(b""), st.binary(max_size=64), any_json.map(lambda v: json.dumps(v).encode()),
    st.lists(any_json, max_size=3).map(lambda v: json.dumps(v).encode())))
def test_mge_dump_with_a_broken_file_names_the_file(store, tmp_path_factory, file, content):
    folder = _write_dump(tmp_path_factory.mktemp("mge"), _minimal_dump())
    (folder / file).write_bytes(content)
    before = table_counts(store)
    error = _import_mge(store, folder)
    if error is not None:
        assert table_counts(store) == before
        # The broken file itself, or a file whose rows point into it ("... is not a known context.json id").
        assert file.removesuffix(".json") in error and any(error.startswith(f) for f in MGE_FILES), error


@pytest.mark.parametrize("file", ["case.json", "context.json", "valuesCard.json", "canonicalValuesCard.json",
                                  "vote.json", "participant.json"])
def test_mge_duplicate_ids_are_refused(store, tmp_path, file):
    tables = _minimal_dump()
    tables[file].append(dict(tables[file][0]))
    before = table_counts(store)
    error = _import_mge(store, _write_dump(tmp_path, tables))
    assert error is not None and error.startswith(f"{file} row {len(tables[file]) - 1} field 'id': duplicate id")
    assert table_counts(store) == before


@pytest.mark.parametrize("field,value,message", [
    ("userId", 2**70, "edge.json row 0 field 'userId': integer 1180591620717411303424 is out of range"),
    ("createdAt", "9999-12-31T23:00:00-14:00", "edge.json row 0 field 'createdAt': '9999-12-31T23:00:00-14:00' "
                                              "is outside the dates"),
    ("story", "\ud800", "edge.json row 0 field 'story': not valid Unicode text"),
])
def test_mge_values_no_database_can_hold_are_format_errors(store, tmp_path, field, value, message):
    tables = _minimal_dump()
    tables["edge.json"][0][field] = value
    assert _import_mge(store, _write_dump(tmp_path, tables)).startswith(message)


def test_mge_case_that_cannot_be_a_question_names_the_case(store, tmp_path):
    tables = _minimal_dump()
    tables["case.json"][0]["title"] = "A \x07 bell"
    assert _import_mge(store, _write_dump(tmp_path, tables)) == (
        "case.json row 0 (with its contexts from contextsOnCases.json): title: contains control characters")


# -- the Polis importer -----------------------------------------------------------------------------

POLIS = {
    "comments.csv": [["timestamp", "comment-id", "author-id", "moderated", "comment-body"],
                     ["1500000000000", "0", "1", "1", "Pay should be livable"],
                     ["1500000001000", "1", "2", "-1", "Spam"]],
    "votes.csv": [["timestamp", "comment-id", "voter-id", "vote"],
                  ["1500000002000", "0", "1", "1"], ["1500000003000", "1", "1", "-1"],
                  ["1500000004000", "0", "2", "0"]],
    "participants-votes.csv": [["participant", "group-id", "0", "1"], ["1", "0", "1", "-1"], ["2", "", "0", ""]],
}


def _write_polis(folder: Path, tables: dict[str, list[list[str]]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in tables.items():
        buffer = io.StringIO()
        csv.writer(buffer).writerows(rows)
        (folder / name).write_bytes(buffer.getvalue().encode("utf-8", errors="surrogatepass"))
    return folder


def _import_polis(store: Store, folder: Path) -> str | None:
    try:
        bundle = polis_bundle(read_polis_export(folder), deliberation_id="polis-hostile")
    except (PolisFormatError, InputError) as exc:
        return str(exc)
    store.import_bundle(bundle, merge=True)  # each example adds to the one deliberation
    return None


@HYPOTHESIS
@given(file=st.sampled_from(list(POLIS)), data=st.data(), value=any_text)
def test_polis_export_with_one_bad_cell_names_file_row_and_column(store, tmp_path_factory, file, data, value):
    tables = json.loads(json.dumps(POLIS))
    row = data.draw(st.integers(1, len(tables[file]) - 1), label="row")
    column = data.draw(st.integers(0, len(tables[file][0]) - 1), label="column")
    tables[file][row][column] = value
    before = table_counts(store)
    error = _import_polis(store, _write_polis(tmp_path_factory.mktemp("polis"), tables))
    if error is not None:
        assert table_counts(store) == before
        assert f"{file}, row {row}, column '{tables[file][0][column]}'" in error or "not UTF-8" in error, error


@HYPOTHESIS
@given(file=st.sampled_from(list(POLIS)), data=st.data())
def test_polis_export_with_wrong_columns_names_the_header(store, tmp_path_factory, file, data):
    tables = json.loads(json.dumps(POLIS))
    header = tables[file][0]
    column = data.draw(st.integers(0, len(header) - 1), label="column")
    header[column] = data.draw(any_text.filter(lambda t: t.strip() not in header), label="renamed to")
    before = table_counts(store)
    error = _import_polis(store, _write_polis(tmp_path_factory.mktemp("polis"), tables))
    assert table_counts(store) == before
    if column < 5 and header is not tables["participants-votes.csv"][0] or column < 2:
        assert error is not None and f"{file}, header: missing column(s)" in error or "not UTF-8" in error, error


@HYPOTHESIS
@given(file=st.sampled_from(list(POLIS)), content=st.one_of(st.just(b""), st.just(b"\n\n"), st.binary(max_size=80)))
def test_polis_export_with_a_broken_file_names_the_file(store, tmp_path_factory, file, content):
    folder = _write_polis(tmp_path_factory.mktemp("polis"), POLIS)
    (folder / file).write_bytes(content)
    before = table_counts(store)
    error = _import_polis(store, folder)
    assert error is not None and file in error, error
    assert table_counts(store) == before


@pytest.mark.parametrize("file,column,row", [("comments.csv", "comment-id", 2), ("participants-votes.csv",
                                                                                 "participant", 2)])
def test_polis_duplicate_ids_are_refused(store, tmp_path, file, column, row):
    """A comment listed twice would become two statements, and every vote on it would count twice."""
    tables = json.loads(json.dumps(POLIS))
    tables[file][row][tables[file][0].index(column)] = tables[file][1][tables[file][0].index(column)]
    before = table_counts(store)
    error = _import_polis(store, _write_polis(tmp_path, tables))
    assert error is not None and f"{file}, row {row}, column '{column}'" in error and "repeats" in error, error
    assert table_counts(store) == before


def test_polis_re_votes_are_kept_not_refused(store, tmp_path):
    tables = json.loads(json.dumps(POLIS))
    tables["votes.csv"].append(["1500000009000", "0", "1", "-1"])  # participant 1 changes their mind
    assert _import_polis(store, _write_polis(tmp_path, tables)) is None


# -- the comparisons importer -----------------------------------------------------------------------

# Ids shaped like the workbench's own ("p1", "v1") are refused (workbench/ids.py), so these are not.
COMPARISONS = [["participant_id", "item_a", "item_b", "winner", "context", "weight", "attr_party"],
               ["u1", "x1", "x2", "a", "When asked", "1", "left"],
               ["u2", "x2", "x3", "B", "When asked", "0.5", "right"],
               ["u3", "x1", "x3", "a", "", "", ""]]


def _import_comparisons(store: Store, path: Path) -> str | None:
    try:
        bundle = comparisons_bundle(path, deliberation_id="comparisons-hostile")
    except (ComparisonFormatError, InputError) as exc:
        return str(exc)
    store.import_bundle(bundle, merge=True)  # each example adds to the one deliberation
    return None


def _write_csv(path: Path, rows: list[list[str]]) -> Path:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    path.write_bytes(buffer.getvalue().encode("utf-8", errors="surrogatepass"))
    return path


@HYPOTHESIS
@given(data=st.data(), value=any_text)
def test_comparisons_file_with_one_bad_cell_names_file_and_row(store, tmp_path_factory, data, value):
    rows = json.loads(json.dumps(COMPARISONS))
    row = data.draw(st.integers(1, len(rows) - 1), label="row")
    column = data.draw(st.integers(0, len(rows[0]) - 1), label="column")
    rows[row][column] = value
    path = _write_csv(tmp_path_factory.mktemp("cmp") / "judgements.csv", rows)
    before = table_counts(store)
    error = _import_comparisons(store, path)
    if error is not None:
        assert table_counts(store) == before
        assert error.startswith(f"{path}, row {row}: ") or "unreadable file" in error, error
        return
    comparisons, _ = read_comparisons(path)
    for column in ("participant_id", "item_a", "item_b"):  # what was accepted obeys the id limits
        assert all(0 < len(v) <= models.ID_MAX and not CONTROL.search(v) for v in comparisons[column])


@HYPOTHESIS
@given(columns=st.lists(st.sampled_from(COMPARISONS[0][:4]) | any_text, min_size=0, max_size=5),
       cells=st.lists(any_json, min_size=0, max_size=5))
def test_comparisons_parquet_with_wrong_columns_or_types_names_the_file(store, tmp_path_factory, columns, cells):
    columns = list(dict.fromkeys(c for c in columns if isinstance(c, str)))
    path = tmp_path_factory.mktemp("cmp") / "judgements.parquet"
    try:  # pandas' Arrow-backed strings cannot even hold a lone surrogate as a column name
        frame = pd.DataFrame({c: [cells[i % len(cells)] if cells else None] for i, c in enumerate(columns)})
        frame.to_parquet(path)
    except Exception:  # noqa: BLE001 - pyarrow cannot write every mix of Python values; nothing to test then
        return
    before = table_counts(store)
    error = _import_comparisons(store, path)
    if error is not None:
        assert error.startswith(str(path)), error
        assert table_counts(store) == before


@pytest.mark.parametrize("content,reason", [
    (b"", "empty file (no header, no rows)"),
    (b"participant_id,item_a,item_b,winner\n", "empty file (a header but no data rows)"),
    (b"who,what\nx,y\n", "missing column(s): participant_id, item_a, item_b, winner"),
    (b"participant_id,item_a,item_b,winner\np1,a,b,\xff\n", "unreadable file"),
])
def test_comparisons_empty_or_foreign_files(store, tmp_path, content, reason):
    path = tmp_path / "judgements.csv"
    path.write_bytes(content)
    error = _import_comparisons(store, path)
    assert error is not None and error.startswith(f"{path}: {reason}"), error


def test_comparisons_duplicate_rows_are_two_judgements(store, tmp_path):
    """The same judgement twice is two judgements (a participant may be asked twice), not an error."""
    rows = [COMPARISONS[0], COMPARISONS[1], COMPARISONS[1]]
    before = table_counts(store)["comparisons"]
    assert _import_comparisons(store, _write_csv(tmp_path / "twice.csv", rows)) is None
    assert table_counts(store)["comparisons"] == before + 2


def test_a_bundle_that_fails_inside_the_store_writes_nothing(store, demo_spec):
    """The store's side of "a failed import changes nothing": one transaction, rolled back as a whole."""
    bundle = ImportBundle(
        spec=demo_spec, source="test",
        participants=pd.DataFrame({"source_id": ["x1"], "signup": "import", "created_at": None}),
        comparisons=pd.DataFrame({"source_key": ["k1"], "participant": ["x1"], "item_a": ["a"], "item_b": ["b"],
                                  "winner": ["a"], "context": [None], "prompt": [None], "question": [None],
                                  "weight": ["not a number"], "created_at": [None]}))
    before = table_counts(store)
    with pytest.raises(Exception):  # noqa: B017 - DuckDB's conversion error; importers never send this
        store.import_bundle(bundle)
    assert table_counts(store) == before


# -- size limits -------------------------------------------------------------------------------------


def _definition(questions: int = 1, contexts: int = 1, demographics: int = 0, options: int = 1) -> str:
    """A definition with these counts (the first question and demographic carry the long lists)."""
    return yaml.safe_dump({
        **DELIBERATION,
        "questions": [{"slug": f"q{i}", "title": "Q", "prompt": "P?",
                       "contexts": [f"When {j}" for j in range(contexts if i == 0 else 1)]} for i in range(questions)],
        "demographics": [{"key": f"d{i}", "label": "L", "options": [f"o{j}" for j in range(options if i == 0 else 1)]}
                         for i in range(demographics)]})


#: (count, its limit, the field an error names)
COUNT_LIMITS = {"questions": (models.QUESTIONS_MAX, "questions"),
                "contexts": (models.CONTEXTS_PER_QUESTION_MAX, "questions[0].contexts"),
                "demographics": (models.DEMOGRAPHICS_MAX, "demographics"),
                "options": (models.OPTIONS_MAX, "demographics[0].options")}


@pytest.mark.parametrize("count", list(COUNT_LIMITS))
def test_a_definition_beyond_a_count_limit_is_refused_naming_the_field(count):
    limit, field = COUNT_LIMITS[count]
    counts = {"demographics": 1, count: limit}
    assert parse_deliberation(_definition(**counts), where="big.yaml")
    with pytest.raises(InputError, match=rf"^big.yaml: {re.escape(field)}: List should have at most {limit} items"):
        parse_deliberation(_definition(**{**counts, count: limit + 1}), where="big.yaml")


@HYPOTHESIS
@given(questions=st.integers(1, 130), contexts=st.integers(1, 260), demographics=st.integers(0, 40),
       options=st.integers(1, 300))
def test_definitions_of_any_size_are_accepted_within_the_limits_or_refused_naming_the_count(questions, contexts,
                                                                                           demographics, options):
    counts = {"questions": questions, "contexts": contexts, "demographics": demographics, "options": options}
    over = [c for c, n in counts.items() if n > COUNT_LIMITS[c][0] and (c != "options" or demographics)]
    try:
        spec = parse_deliberation(_definition(**counts), where="upload.yaml")
    except InputError as exc:
        assert over, str(exc)
        assert any(f"{COUNT_LIMITS[c][1]}: List should have at most" in str(exc) for c in over), str(exc)
        return
    assert not over
    assert len(spec.questions) == questions and len(spec.questions[0].contexts) == contexts


def _nested(depth: int, shape: str) -> str:
    if shape == "flow list":
        return "[" * depth + "1" + "]" * depth
    if shape == "flow mapping":
        return "{a: " * depth + "1" + "}" * depth
    # A block mapping indents each level: depth d takes about d² bytes (100,000 levels would be 10 GB),
    # so stop once the text passes the size limit, where the caller cuts it anyway.
    lines, size = [], 0
    for i in range(depth):
        lines.append(f"{'  ' * i}a:\n")
        size += len(lines[-1])
        if size > models.DEFINITION_MAX_BYTES:
            return "".join(lines)
    return "".join(lines) + "  " * depth + "1\n"


@HYPOTHESIS
@given(depth=st.integers(0, 30) | st.integers(0, 100_000), shape=st.sampled_from(["flow list", "flow mapping",
                                                                                "block mapping"]),
       where=st.sampled_from(["title", "questions", "extra"]))
def test_yaml_nested_to_any_depth_is_refused_naming_the_definition_never_a_recursion_error(depth, shape, where):
    text = yaml.safe_dump(DELIBERATION) + f"{where}:\n" + "\n".join(
        "  " + line for line in _nested(depth, shape).splitlines()) + "\n"
    if len(text) > models.DEFINITION_MAX_BYTES:
        text = text[:models.DEFINITION_MAX_BYTES]  # the size limit is tested below; here the nesting
    with pytest.raises(InputError) as refused:  # the nested value is never a valid title, list or key
        parse_deliberation(text, where="deep.yaml")
    assert str(refused.value).startswith("deep.yaml: "), str(refused.value)
    if depth + 1 > models.DEFINITION_MAX_NESTING:
        assert "nested deeper than" in str(refused.value) or "not valid YAML" in str(refused.value)


def test_a_definition_too_large_or_standing_for_too_many_values_is_refused_before_it_is_built(tmp_path):
    from workbench.deliberation import load_deliberation

    padded = "# " + "x" * models.DEFINITION_MAX_BYTES + "\n" + yaml.safe_dump(DELIBERATION)
    with pytest.raises(InputError, match=r"^big.yaml: the definition is larger than 1,000,000 bytes"):
        parse_deliberation(padded, where="big.yaml")
    (tmp_path / "big.yaml").write_text(padded)
    with pytest.raises(InputError, match=r"big.yaml: the file is larger than 1,000,000 bytes"):
        load_deliberation(tmp_path / "big.yaml")
    # Nine lines standing for 10**9 contexts ("billion laughs"): refused while reading the events.
    bomb = "laugh0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
        f"laugh{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]\n" for i in range(1, 9))
    with pytest.raises(InputError, match=r"more than 200,000 values \(YAML aliases counted"):
        parse_deliberation(yaml.safe_dump(DELIBERATION) + bomb, where="bomb.yaml")
    shared = yaml.safe_dump({**DELIBERATION, "questions": [{**DELIBERATION["questions"][0], "slug": s}
                                                           for s in "abc"]})
    assert len(parse_deliberation(shared).questions) == 3, "a few aliases (as yaml.safe_dump writes) are fine"


@pytest.mark.parametrize("depth", [models.IMPORT_JSON_MAX_NESTING - 2, models.IMPORT_JSON_MAX_NESTING + 1, 10_000,
                                   100_000])
def test_deeply_nested_json_in_an_mge_dump_is_a_format_error_naming_the_file(store, tmp_path, depth):
    tables = _minimal_dump()
    tables["edge.json"][0]["note"] = json.loads("[" * min(depth, 500) + "]" * min(depth, 500))
    folder = _write_dump(tmp_path, tables)
    if depth > 500:  # deeper than Python's JSON writer goes: write the brackets by hand
        text = (folder / "edge.json").read_text()
        (folder / "edge.json").write_text(text.replace('"note": ' + "[" * 500 + "]" * 500,
                                                       '"note": ' + "[" * depth + "]" * depth))
    before = table_counts(store)
    error = _import_mge(store, folder)
    if depth + 2 <= models.IMPORT_JSON_MAX_NESTING:  # the file's array and the row's object count too
        assert error is None, error  # an unknown field is ignored, however it nests
        return
    assert error == (f"edge.json: nested {depth + 2} levels deep; the workbench reads JSON nested at most"
                     f" {models.IMPORT_JSON_MAX_NESTING} levels")
    assert table_counts(store) == before


@HYPOTHESIS
@given(file=st.sampled_from(MGE_FILES), data=st.data(), depth=st.integers(0, 60) | st.integers(0, 50_000))
def test_mge_json_nested_to_any_depth_is_imported_or_names_the_file(store, tmp_path_factory, file, data, depth):
    tables = _minimal_dump()
    row = data.draw(st.integers(0, len(tables[file]) - 1), label="row")
    field = data.draw(st.sampled_from([*sorted(tables[file][row]), "extra"]), label="field")
    tables[file][row][field] = "__nested__"
    folder = _write_dump(tmp_path_factory.mktemp("mge"), tables)
    text = (folder / file).read_text()
    (folder / file).write_text(text.replace('"__nested__"', "[" * depth + "1" + "]" * depth))
    before = table_counts(store)
    error = _import_mge(store, folder)
    if error is not None:
        assert error.startswith(file) or "row" in error or error.startswith("deliberation"), error
        assert table_counts(store) == before
    if depth + 2 > models.IMPORT_JSON_MAX_NESTING:
        assert error is not None and error.startswith(f"{file}: nested {depth + 2} levels deep"), error


@pytest.mark.parametrize("column", ["participant_id", "item_a", "item_b"])
@pytest.mark.parametrize("bad", ["v\x00", "\x00", "a\x1bb", "x" * (models.ID_MAX + 1)])
def test_comparisons_ids_with_nul_bytes_or_beyond_the_limit_are_refused_naming_file_row_and_column(
        store, tmp_path, column, bad):
    rows = json.loads(json.dumps(COMPARISONS))
    rows[2][rows[0].index(column)] = bad
    path = _write_csv(tmp_path / "judgements.csv", rows)
    before = table_counts(store)
    error = _import_comparisons(store, path)
    reason = "contains control characters" if len(bad) <= models.ID_MAX else "is longer than 200 characters"
    assert error == f"{path}, row 2: {column} {reason}"
    assert table_counts(store) == before


def test_polis_ids_with_control_characters_are_refused_naming_file_row_and_column(store, tmp_path):
    tables = json.loads(json.dumps(POLIS))
    tables["votes.csv"][2][2] = "1\x00"
    error = _import_polis(store, _write_polis(tmp_path, tables))
    assert error is not None and "votes.csv, row 2, column 'voter-id'" in error and "control characters" in error


def _comparisons_rows(n: int) -> list[list[str]]:
    return [COMPARISONS[0][:4]] + [[f"u{i}", "x1", "x2", "a"] for i in range(n)]


def _polis_rows(n: int) -> dict:
    """The small export with `n` votes (its other files have 2 rows each)."""
    tables = json.loads(json.dumps(POLIS))
    tables["votes.csv"] = [tables["votes.csv"][0]] + [["1500000002000", "0", str(i % 2 + 1), "1"] for i in range(n)]
    return tables


@HYPOTHESIS
@given(rows=st.integers(1, 40), limit=st.integers(3, 30), kind=st.sampled_from(["csv", "parquet", "polis", "mge"]))
def test_import_files_beyond_the_row_limit_are_refused_before_they_are_parsed(store, tmp_path_factory, monkeypatch,
                                                                             rows, limit, kind):
    monkeypatch.setattr(limits, "IMPORT_ROWS_MAX", limit)
    read_csv = pd.read_csv
    parsed = []
    monkeypatch.setattr(pd, "read_csv", lambda *a, **k: parsed.append(a) or read_csv(*a, **k))
    folder = tmp_path_factory.mktemp("rows")
    if kind == "csv":
        path = _write_csv(folder / "judgements.csv", _comparisons_rows(rows))
        error, name = _import_comparisons(store, path), str(path)
    elif kind == "parquet":
        path = folder / "judgements.parquet"
        pd.DataFrame(_comparisons_rows(rows)[1:], columns=COMPARISONS[0][:4]).to_parquet(path)
        error, name = _import_comparisons(store, path), str(path)
    elif kind == "polis":
        error, name = _import_polis(store, _write_polis(folder, _polis_rows(rows))), str(folder / "votes.csv")
    else:
        tables = _minimal_dump()
        tables["vote.json"] = [{**tables["vote.json"][0], "id": i + 1} for i in range(rows)]
        error, name = _import_mge(store, _write_dump(folder, tables)), "vote.json"
    if rows <= limit:
        assert error is None, error
        return
    assert error is not None and error.startswith(name) and f"at most {limit:,} rows per file" in error, error
    if kind in ("csv", "polis"):
        assert not any(str(a[0]) == name for a in parsed), "a file over the limit is refused before pandas reads it"


@pytest.mark.parametrize("kind", ["comparisons", "polis", "mge", "definition"])
def test_files_beyond_the_size_limit_are_refused_by_their_size_alone(store, tmp_path, monkeypatch, kind):
    monkeypatch.setattr(limits, "IMPORT_FILE_MAX_BYTES", 100)
    if kind == "comparisons":
        path = _write_csv(tmp_path / "judgements.csv", _comparisons_rows(20))
        assert _import_comparisons(store, path) == (f"{path}: the file is {path.stat().st_size} bytes; the workbench"
                                                    " imports files of at most 100 bytes")
    elif kind == "polis":
        error = _import_polis(store, _write_polis(tmp_path, POLIS))
        assert error.startswith(str(tmp_path / "comments.csv")) and "files of at most" in error
    elif kind == "mge":
        error = _import_mge(store, _write_dump(tmp_path, _minimal_dump()))
        assert any(error.startswith(f"{f}: the file is") for f in MGE_FILES) and "files of at most" in error
    else:  # the real limit: a file's size is checked before it is read
        from workbench.deliberation import load_deliberation

        path = tmp_path / "big.yaml"
        with path.open("wb") as f:
            f.truncate(models.DEFINITION_MAX_BYTES + 1)  # a sparse file of NUL bytes: never valid, never read
        with pytest.raises(InputError, match="the file is larger than"):
            load_deliberation(path)


def test_the_limits_are_documented_where_facilitators_and_researchers_read_them():
    readme = (config.ROOT / "README.md").read_text()
    for text in (models.__doc__, readme):
        for phrase in ("1 MB", "nested at most 10 levels", "200,000 values", "100 questions",
                       "200 contexts per question", "30 demographic questions", "250 options", "256 MB",
                       "5,000,000", "nested at most 32 levels", "200 characters"):
            assert phrase in text, phrase
    assert (models.DEFINITION_MAX_BYTES, models.DEFINITION_MAX_NESTING, models.DEFINITION_MAX_VALUES,
            models.QUESTIONS_MAX, models.CONTEXTS_PER_QUESTION_MAX, models.DEMOGRAPHICS_MAX, models.OPTIONS_MAX,
            models.IMPORT_FILE_MAX_BYTES, models.IMPORT_ROWS_MAX, models.IMPORT_JSON_MAX_NESTING, models.ID_MAX) == (
        1_000_000, 10, 200_000, 100, 200, 30, 250, 256 * 2**20, 5_000_000, 32, 200)


# -- guessing invite tokens ---------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2030, 1, 1, 12, 0, 0)
        self.pauses: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)


@pytest.fixture
def invited(tmp_path, demo_spec):
    s = Store(tmp_path / "invites.duckdb")
    s.save_deliberation(demo_spec)
    (pid, token), = s.create_invites("demo", 1)
    yield s, pid, token
    s.close()


def guess(store, clock, token, client="session-a", policy=InviteGuessPolicy()):
    return resolve_visitor(store, {"invite": token}, client=client, policy=policy, clock=clock, sleep=clock.sleep)


def test_repeated_bad_tokens_are_paused_longer_and_a_good_token_never(invited):
    store, pid, token = invited
    clock = FakeClock()
    for i in range(9):
        assert guess(store, clock, f"guess-{i}").message == INVALID_LINK
    # 3 free refusals at 0.5 s, then doubling per refusal, capped at 10 s.
    assert clock.pauses == [0.5, 0.5, 0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    visitor = guess(store, clock, token)
    assert (visitor.kind, visitor.participant_id) == ("participant", pid)
    assert len(clock.pauses) == 9, "a valid link is answered without a pause, even during a guessing spree"
    guess(store, clock, "from-another-tab", client="session-b")
    assert clock.pauses[-1] == 0.5, "another browser session starts with the short pause"
    clock.now += timedelta(minutes=1, seconds=1)
    guess(store, clock, "a-minute-later")
    assert clock.pauses[-1] == 0.5, "the count is per minute"


def test_guessing_from_many_sessions_slows_everyone_who_is_refused(invited):
    store, _, token = invited
    clock, policy = FakeClock(), InviteGuessPolicy(free_overall=5)
    for i in range(7):
        guess(store, clock, f"guess-{i}", client=f"session-{i}", policy=policy)
    assert clock.pauses == [0.5] * 5 + [1.0, 2.0]
    assert guess(store, clock, token, client="session-x", policy=policy).kind == "participant"
    assert len(clock.pauses) == 7


def test_the_pause_is_bounded_for_any_count():
    policy = InviteGuessPolicy()
    assert policy.pause_for(10**9, 10**9) == policy.max_pause
    assert policy.pause_for(0, 0) == policy.failure_pause


def test_a_refused_link_is_logged_without_the_token(invited, caplog):
    store, _, token = invited
    (revoked_pid, revoked), = store.create_invites("demo", 1)
    store.revoke_invites([revoked_pid])
    clock = FakeClock()
    with caplog.at_level(logging.DEBUG):
        guess(store, clock, revoked)
        guess(store, clock, "x" * 500)
    warnings = [r for r in caplog.records if r.name == "workbench.participation" and r.levelno == logging.WARNING]
    assert len(warnings) == 2 and all("invite link refused" in r.getMessage() for r in warnings)
    logged = caplog.text
    for secret in (revoked, hash_token(revoked), revoked[:8], token):
        assert secret not in logged
    assert store._rows("SELECT count(*) FROM invite_refusals")[0][0] == 2
    stored = _database_text(store)
    assert "x" * 500 not in stored and hash_token("x" * 500) not in stored, "a refused token is not stored"


def test_the_app_counts_refused_links_by_the_browser_session_that_asked(demo_db, caplog):
    """The running app passes Streamlit's session id to the refusal count (AppTest's sessions all have
    the id "test session id"; a real browser gets a new one per page load)."""
    from workbench.store.security import client_hash

    caplog.set_level(logging.WARNING, logger="workbench.participation")
    at = AppTest.from_file(str(config.APP), default_timeout=60)
    at.query_params["invite"] = "not-a-token"
    for _ in range(2):
        at.run()
        assert [e.value for e in at.error] == [INVALID_LINK]
    hashes = [r[0] for r in demo_db._rows("SELECT client_hash FROM invite_refusals ORDER BY id")]
    assert hashes == [client_hash("test session id")] * 2
    counted = [r.getMessage() for r in caplog.records if "invite link refused" in r.getMessage()]
    assert [m.split("overall, ")[1].split(" from")[0] for m in counted] == ["1", "2"], counted


def _database_text(store: Store) -> str:
    """Every text value in every table, for grepping."""
    out = []
    for table in table_counts(store):
        columns = [r[0] for r in store._rows(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [table])]
        for column in columns:
            out += [str(v[0]) for v in store._rows(f'SELECT CAST("{column}" AS VARCHAR) FROM "{table}"')]
    return "\n".join(out)


def test_no_token_in_the_logs_of_a_whole_participant_walk_nor_in_any_export(demo_db, caplog, capsys, tmp_path):
    (pid, token), = demo_db.create_invites("demo", 1)
    secrets = [token, hash_token(token)]
    streamlit_log = logging.getLogger("streamlit")
    streamlit_log.addHandler(caplog.handler)  # Streamlit's loggers do not propagate to the root
    caplog.set_level(logging.DEBUG)
    try:
        def visit() -> AppTest:
            at = AppTest.from_file(str(config.APP), default_timeout=60)
            at.query_params["invite"] = token
            at.run()
            assert not at.exception, at.exception
            return at

        def click(at: AppTest, label: str) -> None:
            next(b for b in at.button if b.label == label).click().run()

        at = visit()
        at.checkbox[0].check()  # consent and the question are forms: values travel with Continue
        click(at, "Continue")
        at = visit()
        for box in at.selectbox:
            box.select(box.options[-1])
        at.button[0].click().run()
        at = visit()
        at.radio[0].set_value("demo/homework")
        click(at, "Continue")
        # The interview's stages are AppTest-tested elsewhere; here they are filled in as submitted.
        iid = int(demo_db.current_interview(pid)["id"])
        answers = {"response": "r", "story": "s", "policies": ["MOMENTS when the child asks", "SIGNS of fatigue"],
                   "title": "Listening Before Pushing", "description": "Hearing the refusal out.",
                   "contexts": ["When a child's wellbeing is at stake"]}
        for stage in ("response", "story", "attention", "title", "contexts"):
            demo_db.save_interview_stage(pid, iid, stage, answers)
        at = visit()
        for box in at.checkbox:
            box.check()
        at.run()
        click(at, "Confirm my card")
        for _ in range(20):  # the judging rounds, whatever their length
            at = visit()
            steps = " ".join(str(p.proto.text) for p in at.get("progress"))
            if "Thank you" in steps:
                break
            if at.radio:
                at.radio[0].set_value("yes" if "Where you sit" in steps else "upgrade")
                at.button[0].click().run()
            else:
                at.button[0].click().run()
        assert "Thank you" in steps, steps
        # A refused link in the same process, for good measure: its warning must not carry it either.
        at = AppTest.from_file(str(config.APP), default_timeout=60)
        at.query_params["invite"] = token[::-1]
        at.run()
        assert [e.value for e in at.error] == [INVALID_LINK]
    finally:
        streamlit_log.removeHandler(caplog.handler)
    captured = capsys.readouterr()
    assert any("invite link refused" in r.getMessage() for r in caplog.records)
    for secret in [*secrets, token[::-1]]:
        assert secret not in caplog.text and secret not in captured.out and secret not in captured.err

    assert token not in _database_text(demo_db), "only the token's hash is stored"
    for fmt in exports.FORMATS:
        files = exports.export(demo_db, "demo", "all", fmt, tmp_path / fmt)
        assert len(files) > 10
        for f in files:
            blob = f.path.read_bytes()
            if f.path.suffix == ".parquet":  # compressed: read it back as text
                blob = pd.read_parquet(f.path).to_csv(index=False).encode()
            for secret in secrets:
                assert secret.encode() not in blob, f.path
