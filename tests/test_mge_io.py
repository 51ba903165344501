"""Reading the MGE study dump: golden counts on the real files, and every kind of malformed input."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from workbench.io.mge import MgeDump, MgeFormatError, read_mge_dump

TS = "2023-09-19T11:54:18.065Z"


def _minimal_dump() -> dict[str, list[dict]]:
    """One valid row per file: the smallest dump read_mge_dump accepts."""
    card = {"title": "T", "instructionsShort": "s", "instructionsDetailed": "d",
            "evaluationCriteria": ["MOMENTS where x"], "createdAt": TS, "updatedAt": TS}
    selection = {"id": 1, "userId": 7, "valuesCardId": 10, "caseId": "abortion", "drawId": "d",
                 "createdAt": TS, "updatedAt": TS}
    return {
        "case.json": [{"id": "abortion", "title": "Abortion", "question": "Q?", "seedMessage": "m"}],
        "context.json": [{"id": "When seeking clarity"}],
        "contextsOnCases.json": [{"contextId": "When seeking clarity", "caseId": "abortion", "createdAt": TS}],
        "valuesCard.json": [{"id": 10, **card, "chatId": "c1", "quality": "ok"}],
        "canonicalValuesCard.json": [{"id": 10, **card}, {"id": 11, **card}],
        "edge.json": [{"userId": 7, "fromId": 10, "toId": 11, "story": "s", "contextId": "When seeking clarity",
                       "runId": "r", "relationship": "upgrade", "comment": None, "createdAt": TS,
                       "updatedAt": TS}],
        "vote.json": [dict(selection)],
        "impression.json": [dict(selection)],
        "demographic.json": [{"id": 1, "userId": 7, "usPoliticalAffiliation": "Independent",
                              "fluentLanguages": ["English"], "age": 40, "sex": "Female"}],
        "participant.json": [{"id": 7, "signupType": "PROLIFIC", "createdAt": TS}],
    }


def _write(folder: Path, tables: dict[str, object]) -> Path:
    for name, rows in tables.items():
        (folder / name).write_text(json.dumps(rows), encoding="utf-8")
    return folder


@pytest.fixture
def dump_dir(tmp_path: Path) -> Path:
    return _write(tmp_path, _minimal_dump())


def _broken(folder: Path, file: str, row: int, **changes: object) -> Path:
    tables = _minimal_dump()
    tables[file][row].update(changes)
    return _write(folder, tables)


def test_minimal_dump_reads_with_domain_column_names(dump_dir: Path) -> None:
    dump = read_mge_dump(dump_dir)
    assert isinstance(dump, MgeDump)
    edge = dump.edges.iloc[0]
    assert list(dump.edges.columns[:6]) == ["participant_id", "from_id", "to_id", "context", "answer", "story"]
    assert (edge["participant_id"], edge["from_id"], edge["to_id"], edge["answer"]) == (7, 10, 11, "upgrade")
    assert edge["created_at"] == pd.Timestamp(2023, 9, 19, 11, 54, 18, 65000)
    assert dump.edges["created_at"].dt.tz is None
    assert dump.votes.iloc[0]["value_id"] == 10
    assert dump.cards.iloc[0]["evaluation_criteria"] == ["MOMENTS where x"]
    assert list(dump.questions.columns) == ["id", "title", "question", "seed_message"]


def test_offset_timestamp_is_converted_to_naive_utc(tmp_path: Path) -> None:
    dump = read_mge_dump(_broken(tmp_path, "edge.json", 0, createdAt="2023-10-18T01:30:00+02:00"))
    assert dump.edges.iloc[0]["created_at"] == pd.Timestamp(datetime(2023, 10, 17, 23, 30))


def test_optional_fields_may_be_absent(tmp_path: Path) -> None:
    tables = _minimal_dump()
    del tables["demographic.json"][0]["age"]
    del tables["edge.json"][0]["runId"]
    dump = read_mge_dump(_write(tmp_path, tables))
    assert pd.isna(dump.demographics.iloc[0]["age"])
    assert pd.isna(dump.edges.iloc[0]["run_id"])


def test_missing_file_is_named(dump_dir: Path) -> None:
    (dump_dir / "vote.json").unlink()
    with pytest.raises(MgeFormatError, match=r"vote\.json: file not found"):
        read_mge_dump(dump_dir)


def test_file_that_is_not_an_array(tmp_path: Path) -> None:
    tables: dict[str, object] = dict(_minimal_dump())
    tables["edge.json"] = {"rows": []}
    with pytest.raises(MgeFormatError, match=r"edge\.json: expected a JSON array of objects, got dict"):
        read_mge_dump(_write(tmp_path, tables))


def test_invalid_json(dump_dir: Path) -> None:
    (dump_dir / "context.json").write_text("[{", encoding="utf-8")
    with pytest.raises(MgeFormatError, match=r"context\.json: not valid JSON"):
        read_mge_dump(dump_dir)


def test_row_that_is_not_an_object(tmp_path: Path) -> None:
    tables: dict[str, object] = dict(_minimal_dump())
    tables["context.json"] = [{"id": "When seeking clarity"}, "When in doubt"]
    with pytest.raises(MgeFormatError, match=r"context\.json row 1: expected an object, got str"):
        read_mge_dump(_write(tmp_path, tables))


def test_missing_required_field(tmp_path: Path) -> None:
    tables = _minimal_dump()
    del tables["edge.json"][0]["relationship"]
    with pytest.raises(MgeFormatError, match=r"edge\.json row 0: missing required field 'relationship'"):
        read_mge_dump(_write(tmp_path, tables))


def test_bad_relationship_message_names_file_row_field_and_choices(tmp_path: Path) -> None:
    tables = _minimal_dump()
    tables["edge.json"] = [tables["edge.json"][0]] * 17 + [{**tables["edge.json"][0], "relationship": "maybe"}]
    with pytest.raises(MgeFormatError) as err:
        read_mge_dump(_write(tmp_path, tables))
    assert str(err.value) == (
        "edge.json row 17 field 'relationship': 'maybe' is not one of upgrade, no_upgrade, not_sure"
    )


@pytest.mark.parametrize(
    ("file", "field", "value", "expected"),
    [
        ("edge.json", "fromId", "10", "expected an integer, got '10'"),
        ("edge.json", "userId", True, "expected an integer, got True"),
        ("edge.json", "contextId", 3, "expected a string, got 3"),
        ("valuesCard.json", "evaluationCriteria", "MOMENTS", "expected a list of strings"),
        ("valuesCard.json", "quality", "great", "'great' is not one of ok, invalid"),
        ("canonicalValuesCard.json", "title", None, "must not be null"),
        ("demographic.json", "age", "forty", "expected an integer"),
    ],
)
def test_wrong_types(tmp_path: Path, file: str, field: str, value: object, expected: str) -> None:
    with pytest.raises(MgeFormatError, match=rf"{file.replace('.', '[.]')} row 0 field '{field}': {expected}"):
        read_mge_dump(_broken(tmp_path, file, 0, **{field: value}))


@pytest.mark.parametrize("value", ["2023-13-01T00:00:00Z", "yesterday", "2023-09-19 11:54:18", "2023-09-19", 1695000000])
def test_bad_or_zoneless_timestamp(tmp_path: Path, value: object) -> None:
    with pytest.raises(MgeFormatError, match=r"participant\.json row 0 field 'createdAt': .*timestamp"):
        read_mge_dump(_broken(tmp_path, "participant.json", 0, createdAt=value))


def test_duplicate_id(tmp_path: Path) -> None:
    tables = _minimal_dump()
    tables["participant.json"].append(dict(tables["participant.json"][0]))
    with pytest.raises(MgeFormatError, match=r"participant\.json row 1 field 'id': duplicate id 7"):
        read_mge_dump(_write(tmp_path, tables))


def test_edge_pointing_at_a_card_id_instead_of_a_canonical_id(tmp_path: Path) -> None:
    # card ids and canonical ids are different id spaces; 99 exists only as a card here
    tables = _minimal_dump()
    tables["valuesCard.json"].append({**tables["valuesCard.json"][0], "id": 99})
    tables["edge.json"][0]["toId"] = 99
    with pytest.raises(MgeFormatError, match=r"edge\.json row 0 field 'toId': 99 is not a known canonicalValuesCard id"):
        read_mge_dump(_write(tmp_path, tables))


def test_vote_with_unknown_case(tmp_path: Path) -> None:
    with pytest.raises(MgeFormatError, match=r"vote\.json row 0 field 'caseId': 'guns' is not a known case\.json id"):
        read_mge_dump(_broken(tmp_path, "vote.json", 0, caseId="guns"))


def test_empty_tables_keep_their_columns(tmp_path: Path) -> None:
    tables = _minimal_dump()
    for name in ("edge.json", "vote.json", "impression.json", "demographic.json"):
        tables[name] = []
    dump = read_mge_dump(_write(tmp_path, tables))
    assert dump.edges.empty and "answer" in dump.edges.columns and "created_at" in dump.edges.columns


# ---------------------------------------------------------------------------------------------
# Golden: the real dump


@pytest.fixture(scope="module")
def real_dump() -> MgeDump:
    folder = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "mge-dft"
    if not folder.is_dir():
        pytest.skip(f"MGE dump not found at {folder}")
    return read_mge_dump(folder)


def test_real_dump_row_counts(real_dump: MgeDump) -> None:
    counts = {name: len(getattr(real_dump, name)) for name in (
        "questions", "contexts", "contexts_on_questions", "cards", "canonical_values", "edges",
        "votes", "impressions", "demographics", "participants")}
    assert counts == {"questions": 3, "contexts": 21, "contexts_on_questions": 16, "cards": 630,
                      "canonical_values": 115, "edges": 1592, "votes": 1265, "impressions": 3295,
                      "demographics": 344, "participants": 832}
    assert (real_dump.cards["quality"] == "ok").sum() == 625
    assert real_dump.edges["answer"].value_counts().to_dict() == {"upgrade": 1070, "not_sure": 339,
                                                                   "no_upgrade": 183}
    assert set(real_dump.questions["id"]) == {"abortion", "weapons", "parenting"}


def test_real_dump_values_and_times(real_dump: MgeDump) -> None:
    first = real_dump.edges.iloc[0]
    assert (first["participant_id"], first["from_id"], first["to_id"]) == (2, 304, 208)
    assert first["context"] == "When being introspective"
    assert first["created_at"] == pd.Timestamp("2023-09-19 11:54:18.065")
    assert pd.isna(first["comment"])
    assert real_dump.edges["created_at"].min() == pd.Timestamp("2023-09-11 18:36:18.598")
    assert (real_dump.edges["created_at"] < pd.Timestamp("2023-10-18")).sum() == 1540
    # the two id spaces really collide as numbers, which is why the reader checks references
    assert set(real_dump.cards["id"]) & set(real_dump.canonical_values["id"])
    assert all(len(c) >= 1 for c in real_dump.canonical_values["evaluation_criteria"])
