"""Reading comparison files: the happy path (CSV and Parquet) and one test per kind of bad row."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from workbench import prefs
from workbench.errors import FormatError
from workbench.io.comparisons import ComparisonFormatError, read_comparisons

HEADER = "participant_id,item_a,item_b,winner,context,weight,attr_party,attr_age\n"


def _csv(tmp_path: Path, body: str, header: str = HEADER, name: str = "judgements.csv") -> Path:
    path = tmp_path / name
    path.write_text(header + body, encoding="utf-8")
    return path


def _error(path: Path) -> ComparisonFormatError:
    with pytest.raises(ComparisonFormatError) as info:
        read_comparisons(path)
    assert isinstance(info.value, FormatError)  # the CLI and pages show its message
    assert str(path) in str(info.value)
    return info.value


def test_reads_csv_with_context_weight_and_attributes(tmp_path):
    path = _csv(
        tmp_path,
        "007,care,rules,a,grief,2,left,30\n"
        "007,rules,truth,B,,,left,\n"
        "u2,care,truth,b,grief,0.5,,41\n",
    )
    comparisons, attributes = read_comparisons(path)
    assert list(comparisons.columns) == ["participant_id", "item_a", "item_b", "winner", "context", "weight"]
    assert comparisons["participant_id"].tolist() == ["007", "007", "u2"]  # ids stay text
    assert comparisons["winner"].tolist() == ["a", "b", "b"]
    assert comparisons["context"].tolist() == ["grief", None, "grief"]
    assert comparisons["weight"].tolist() == [2.0, 1.0, 0.5]
    assert attributes.to_dict("records") == [
        {"participant_id": "007", "party": "left", "age": "30"},
        {"participant_id": "u2", "party": None, "age": "41"},
    ]
    # What it reads is what the preference models take.
    fit = prefs.bradley_terry(comparisons)
    assert set(fit.items) == {"care", "rules", "truth"}


def test_reads_parquet_and_optional_columns_may_be_absent(tmp_path):
    frame = pd.DataFrame({"participant_id": [1, 2], "item_a": ["x", "y"], "item_b": ["y", "z"],
                          "winner": ["a", "a"], "prompt": ["Which is wiser?", None]})
    path = tmp_path / "judgements.parquet"
    frame.to_parquet(path)
    comparisons, attributes = read_comparisons(path)
    assert comparisons["participant_id"].tolist() == ["1", "2"]
    assert comparisons["context"].tolist() == [None, None]
    assert comparisons["weight"].tolist() == [1.0, 1.0]
    assert comparisons["prompt"].tolist() == ["Which is wiser?", None]
    assert list(attributes.columns) == ["participant_id"]


def test_missing_column(tmp_path):
    error = _error(_csv(tmp_path, "u1,x,y\n", header="participant_id,item_a,item_b\n"))
    assert "missing column(s): winner" in str(error)
    assert error.row is None


def test_empty_id_names_the_row(tmp_path):
    error = _error(_csv(tmp_path, "u1,x,y,a,,,,\nu2, ,y,a,,,,\n"))
    assert error.row == 2
    assert "row 2: empty item_a" in str(error)


def test_winner_not_a_or_b(tmp_path):
    error = _error(_csv(tmp_path, "u1,x,y,a,,,,\nu1,x,z,a,,,,\nu1,y,z,tie,,,,\n"))
    assert error.row == 3
    assert "winner is 'tie'" in str(error)


def test_item_compared_with_itself(tmp_path):
    error = _error(_csv(tmp_path, "u1,x,x,a,,,,\n"))
    assert error.row == 1
    assert "same item ('x')" in str(error)


def test_conflicting_attribute_values(tmp_path):
    error = _error(_csv(tmp_path, "u1,x,y,a,,,left,30\nu2,x,y,a,,,right,\nu1,y,z,b,,,right,30\n"))
    assert error.row == 3
    assert "participant 'u1' has attr_party='right' here but 'left'" in str(error)


def test_bad_weight(tmp_path):
    error = _error(_csv(tmp_path, "u1,x,y,a,,heavy,,\n"))
    assert error.row == 1 and "weight is 'heavy'" in str(error)


def test_unreadable_file(tmp_path):
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"this is not parquet at all")
    assert "unreadable file" in str(_error(path))
    missing = tmp_path / "nowhere.csv"
    assert "file not found" in str(_error(missing))
    odd = tmp_path / "judgements.xlsx"
    odd.write_bytes(b"PK")
    assert "unsupported file type" in str(_error(odd))


def test_empty_file(tmp_path):
    blank = tmp_path / "blank.csv"
    blank.write_text("", encoding="utf-8")
    assert "empty file" in str(_error(blank))
    header_only = _csv(tmp_path, "", name="header_only.csv")
    assert "no data rows" in str(_error(header_only))
