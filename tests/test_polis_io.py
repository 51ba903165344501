"""Reading Polis export folders: typed tables, full vote history, latest-wins, and clear errors."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workbench.errors import FormatError
from workbench.io.polis import PolisFormatError, latest_votes, read_polis_export

COMMENTS = (
    "timestamp,datetime,comment-id,author-id,agrees,disagrees,moderated,comment-body\n"
    "1403067224363,Wed,0,5,1,0,1,Pay should be livable\n"
    "1403067225000,Wed,1,6,0,1,-1,\"Spam, with a comma\"\n"
)
VOTES = (
    "timestamp,datetime,comment-id,voter-id,vote\n"
    "1403054214196,x,0,0,1\n"
    "1403054215000,x,1,0,-1\n"
    "1403054216000,x,0,1,0\n"
)
PARTICIPANTS = "participant,group-id,n-comments,n-votes,n-agree,n-disagree,0,1\n0,0,0,2,1,1,1,-1\n1,,0,1,0,0,0,\n"
SUMMARY = "topic,$15/hour\nurl,https://pol.is/2demo\n"


def write_export(folder: Path, **overrides: str | None) -> Path:
    files = {"comments.csv": COMMENTS, "votes.csv": VOTES, "participants-votes.csv": PARTICIPANTS,
             "summary.csv": SUMMARY}
    files.update({name.replace("_", "-") + ".csv": text for name, text in overrides.items()})
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        if text is not None:
            (folder / name).write_text(text)
    return folder


def test_small_export_is_read_into_typed_tables(tmp_path: Path) -> None:
    export = read_polis_export(write_export(tmp_path / "conv"))
    assert export.topic == "$15/hour"
    assert export.comments["comment_id"].tolist() == ["0", "1"]
    assert export.comments["moderated"].tolist() == [1, -1]
    assert export.comments["body"].iloc[1] == "Spam, with a comma"
    assert pd.api.types.is_datetime64_dtype(export.comments["created_at"])  # naive: no time zone
    assert export.comments["created_at"].iloc[0] == pd.Timestamp("2014-06-18 04:53:44.363")
    assert export.votes["vote"].tolist() == [1, -1, 0]
    assert export.votes["participant_id"].tolist() == ["0", "0", "1"]
    assert export.participants["polis_group"].tolist() == ["0", None]
    assert export.moderated_out() == {"1"}


def test_topic_falls_back_to_folder_name(tmp_path: Path) -> None:
    folder = write_export(tmp_path / "my-conversation")
    (folder / "summary.csv").unlink()
    assert read_polis_export(folder).topic == "my-conversation"


def test_latest_vote_wins_and_ties_go_to_the_later_row() -> None:
    events = pd.DataFrame(
        {
            "participant_id": ["a", "a", "a", "b", "b"],
            "comment_id": ["1", "1", "2", "1", "1"],
            "vote": [1, -1, 0, 1, 0],
            "created_at": pd.to_datetime([3000, 1000, 5000, 2000, 2000], unit="ms"),
        }
    )
    latest = latest_votes(events).set_index(["participant_id", "comment_id"])["vote"]
    assert latest[("a", "1")] == 1  # written first in the file but later in time
    assert latest[("b", "1")] == 0  # same timestamp: the later row wins
    assert len(latest) == 3


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"participants_votes": None}, ["participants-votes.csv", "not found"]),
        ({"comments": ""}, ["comments.csv", "empty"]),
        ({"votes": "timestamp,datetime,comment-id,voter-id\n1403054214196,x,0,0\n"},
         ["votes.csv", "header", "vote"]),
        ({"participants_votes": "participant,n-votes\n0,1\n"}, ["participants-votes.csv", "header", "group-id"]),
        ({"votes": VOTES + "1403054217000,x,1,1,yes\n"}, ["votes.csv", "row 4", "'vote'", "integer"]),
        ({"votes": VOTES + "1403054217000,x,1,1,2\n"}, ["votes.csv", "row 4", "'vote'", "[-1, 0, 1]"]),
        ({"votes": VOTES.replace("1403054215000", "yesterday")}, ["votes.csv", "row 2", "'timestamp'"]),
        ({"votes": VOTES.replace("1403054215000", "1403054215")}, ["votes.csv", "row 2", "milliseconds"]),
        ({"comments": COMMENTS.replace(",-1,\"Spam", ",2,\"Spam")}, ["comments.csv", "row 2", "'moderated'"]),
        ({"votes": "timestamp,datetime,comment-id,voter-id,vote\n"}, ["votes.csv", "no data rows"]),
    ],
)
def test_bad_input_names_file_row_and_column(tmp_path: Path, overrides: dict, expected: list[str]) -> None:
    folder = write_export(tmp_path / "bad", **overrides)
    with pytest.raises(PolisFormatError) as info:
        read_polis_export(folder)
    assert isinstance(info.value, FormatError)
    for part in expected:
        assert part in str(info.value)


def _records(path: Path) -> int:
    """Data records in a CSV file (comment bodies may span several lines)."""
    with path.open(newline="", encoding="utf-8") as handle:
        return sum(1 for _ in csv.reader(handle)) - 1


def test_real_exports_keep_every_row(shared_datasets: Path) -> None:
    folders = sorted((shared_datasets / "polis").iterdir())
    assert len(folders) >= 7
    for folder in folders:
        export = read_polis_export(folder)
        assert len(export.votes) == _records(folder / "votes.csv"), folder.name
        assert len(export.comments) == _records(folder / "comments.csv"), folder.name
        assert len(export.participants) == _records(folder / "participants-votes.csv"), folder.name
        assert set(export.votes["vote"].unique()) <= {-1, 0, 1}


def test_real_revote_latest_wins(shared_datasets: Path) -> None:
    export = read_polis_export(shared_datasets / "polis" / "brexit-consensus")
    history = export.votes[(export.votes["participant_id"] == "101") & (export.votes["comment_id"] == "22")]
    assert history["vote"].tolist() == [1, -1]  # agreed on 17 July, disagreed the next day
    latest = latest_votes(export.votes)
    assert len(latest) < len(export.votes)
    row = latest[(latest["participant_id"] == "101") & (latest["comment_id"] == "22")]
    assert row["vote"].tolist() == [-1]


def test_latest_votes_match_polis_own_participant_matrix(shared_datasets: Path) -> None:
    folder = shared_datasets / "polis" / "15-per-hour-seattle"
    export = read_polis_export(folder)
    ours = latest_votes(export.votes).pivot(index="participant_id", columns="comment_id", values="vote")
    theirs = pd.read_csv(folder / "participants-votes.csv", dtype={"participant": str}).set_index("participant")
    theirs = theirs[[c for c in theirs.columns if c.isdigit()]]
    ours = ours.reindex(index=theirs.index, columns=theirs.columns)
    both = ours.notna().to_numpy() | theirs.notna().to_numpy()
    assert both.sum() > 2000
    assert np.array_equal(ours.to_numpy()[both], theirs.to_numpy()[both])


def test_partial_export_reads_votes_from_the_matrix(tmp_path: Path) -> None:
    folder = write_export(tmp_path / "partial", votes=None, summary=None)
    export = read_polis_export(folder)
    assert not export.has_history and export.topic == "partial"
    assert sorted(map(tuple, export.votes[["participant_id", "comment_id", "vote"]].to_numpy().tolist())) == [
        ("0", "0", 1), ("0", "1", -1), ("1", "0", 0)]
    assert export.votes["created_at"].isna().all()
    assert export.participants.set_index("participant_id")["polis_group"].to_dict() == {"0": "0", "1": None}


@pytest.mark.parametrize(
    ("participants", "expected"),
    [
        (PARTICIPANTS.replace("1,-1\n", "1,2\n"), ["participants-votes.csv", "row 1", "'1'", "blank, -1, 0 or 1"]),
        (PARTICIPANTS.replace("1,-1\n", "1,yes\n"), ["participants-votes.csv", "row 1", "'1'"]),
        (PARTICIPANTS.replace(",0,1\n", ",0,note\n"), ["participants-votes.csv", "header", "'note'"]),
        (PARTICIPANTS.replace(",0,1\n", ",0,7\n"), ["participants-votes.csv", "header", "['7']", "comments.csv"]),
        ("participant,group-id\n0,0\n", ["participants-votes.csv", "no votes"]),
    ],
)
def test_bad_partial_export_names_file_row_and_column(tmp_path: Path, participants: str, expected: list[str]) -> None:
    folder = write_export(tmp_path / "bad", votes=None, participants_votes=participants)
    with pytest.raises(PolisFormatError) as info:
        read_polis_export(folder)
    for part in expected:
        assert part in str(info.value), str(info.value)
