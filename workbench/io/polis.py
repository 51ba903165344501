"""Read a Polis conversation export folder (comments.csv, participants-votes.csv, and where present
votes.csv and summary.csv).

Pure reading: files in, a frozen `PolisExport` of typed DataFrames out. It keeps the FULL vote history
as events (Polis exports every re-vote; "latest wins" is computed by `latest_votes`, never by
dropping rows here). A partial export without votes.csv is read too: its votes come from the
participant x comment matrix in participants-votes.csv (the latest vote per cell, no times), so it
has no vote history. It must never write anything, open the store or a database, or guess: any
malformed value raises `PolisFormatError` naming the file, the 1-based data row (or the header) and
the column.

Polis facts this relies on: vote +1 agree, -1 disagree, 0 pass; timestamps are milliseconds since
the epoch; `moderated` is 1 accepted, 0 unmoderated, -1 rejected (moderated out); participants-votes
carries Polis's own opinion group per participant in `group-id` (blank when Polis did not cluster
that participant).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import FormatError
from ..models import ID_MAX
from .limits import shown, too_large, too_many_lines

COMMENTS_FILE = "comments.csv"
VOTES_FILE = "votes.csv"
PARTICIPANTS_FILE = "participants-votes.csv"
SUMMARY_FILE = "summary.csv"

_COMMENT_COLUMNS = ("timestamp", "comment-id", "author-id", "moderated", "comment-body")
_VOTE_COLUMNS = ("timestamp", "comment-id", "voter-id", "vote")
_PARTICIPANT_COLUMNS = ("participant", "group-id")
# participants-votes.csv columns before the one-per-comment vote columns
_PARTICIPANT_SUMMARY = {"participant", "xid", "group-id", "n-comments", "n-votes", "n-agree", "n-disagree"}


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class PolisFormatError(FormatError):
    """A Polis export file is missing, empty or malformed; the message names file, row and column."""


@dataclass(frozen=True)
class PolisExport:
    """One Polis conversation.

    comments: comment_id, author_id, body, moderated (1/0/-1), is_meta (bool; False when the export
        has no is-meta column), created_at (UTC, naive).
    votes: the full vote history, one row per vote event in file order: participant_id, comment_id,
        vote (+1/-1/0), created_at. Without votes.csv: the latest vote per cell from
        participants-votes.csv, created_at NaT, and `has_history` False.
    participants: participant_id, polis_group (str, None when Polis did not cluster them).
    """

    topic: str
    comments: pd.DataFrame
    votes: pd.DataFrame
    participants: pd.DataFrame
    has_history: bool = True

    def moderated_out(self) -> set[str]:
        """Comment ids Polis leaves out of the analysis: rejected by a moderator, or meta."""
        out = self.comments["moderated"].eq(-1) | self.comments["is_meta"]
        return set(self.comments.loc[out, "comment_id"])


def latest_votes(votes: pd.DataFrame) -> pd.DataFrame:
    """The vote that counts per participant x comment: the latest `created_at`; on equal timestamps
    the later row in file order wins (a stable sort keeps file order among ties)."""
    ordered = votes.sort_values("created_at", kind="stable")
    latest = ordered.drop_duplicates(["participant_id", "comment_id"], keep="last")
    return latest.sort_index().reset_index(drop=True)


def _read_table(path: Path, required: tuple[str, ...]) -> pd.DataFrame:
    if not path.is_file():
        raise PolisFormatError(f"{path}: file not found")
    if problem := too_large(path) or too_many_lines(path):
        raise PolisFormatError(f"{path}: {problem}")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise PolisFormatError(f"{path}: file is empty (no header)") from None
    except pd.errors.ParserError as exc:
        raise PolisFormatError(f"{path}: not a readable CSV file ({exc})") from None
    except UnicodeDecodeError as exc:
        raise PolisFormatError(f"{path}: not UTF-8 text ({exc.reason})") from None
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise PolisFormatError(
            f"{path}, header: missing column(s) {missing}; found {list(table.columns)}"
        )
    if table.empty:
        raise PolisFormatError(f"{path}: file has a header but no data rows")
    return table


def _bad(path: Path, table: pd.DataFrame, mask: np.ndarray, column: str, expected: str) -> None:
    if mask.any():
        row = int(np.flatnonzero(mask)[0])
        raise PolisFormatError(
            f"{path}, row {row + 1}, column '{column}': {shown(table[column].iloc[row])} is not {expected}"
        )


def _integers(path: Path, table: pd.DataFrame, column: str, allowed: set[int] | None = None) -> pd.Series:
    text = table[column].str.strip()
    values = pd.to_numeric(text, errors="coerce")
    # "inf" and 1e30 parse as floats that equal their rounding but fit no 64-bit integer.
    not_int = values.isna() | ~np.isfinite(values) | (values.abs() >= 2**53) | (values != values.round())
    _bad(path, table, not_int.to_numpy(), column, "an integer")
    values = values.astype("int64")
    if allowed is not None:
        _bad(path, table, ~values.isin(sorted(allowed)).to_numpy(), column, f"one of {sorted(allowed)}")
    return values


def _timestamps(path: Path, table: pd.DataFrame, column: str = "timestamp") -> pd.Series:
    millis = _integers(path, table, column)
    # Milliseconds before 1990 or after 2100 mean seconds, microseconds or garbage, not Polis.
    plausible = millis.between(631_152_000_000, 4_102_444_800_000)
    _bad(path, table, ~plausible.to_numpy(), column, "a timestamp in milliseconds (1990-2100)")
    return pd.to_datetime(millis, unit="ms")


def _ids(path: Path, table: pd.DataFrame, column: str, *, unique: bool = False) -> pd.Series:
    ids = table[column].str.strip()
    _bad(path, table, (ids == "").to_numpy(), column, "a non-empty id")
    _bad(path, table, ids.str.contains(_CONTROL).to_numpy(dtype=bool), column, "an id without control characters")
    _bad(path, table, (ids.str.len() > ID_MAX).to_numpy(), column, f"an id of at most {ID_MAX} characters")
    # Ids are integers in Polis; keep them as text but normalise "12.0" style spellings.
    ids = ids.str.replace(r"\.0$", "", regex=True)
    if unique:  # a comment or participant listed twice would be imported twice and its votes counted twice
        _bad(path, table, ids.duplicated().to_numpy(), column, "an id of its own (it repeats an earlier row's)")
    return ids


def _read_comments(path: Path) -> pd.DataFrame:
    table = _read_table(path, _COMMENT_COLUMNS)
    is_meta = (
        table["is-meta"].str.strip().str.lower().isin(["true", "1", "t"])
        if "is-meta" in table.columns
        else pd.Series(False, index=table.index)
    )
    return pd.DataFrame(
        {
            "comment_id": _ids(path, table, "comment-id", unique=True),
            "author_id": _ids(path, table, "author-id"),
            "body": table["comment-body"],
            "moderated": _integers(path, table, "moderated", {-1, 0, 1}),
            "is_meta": is_meta.astype(bool),
            "created_at": _timestamps(path, table),
        }
    )


def _read_votes(path: Path) -> pd.DataFrame:
    table = _read_table(path, _VOTE_COLUMNS)
    return pd.DataFrame(
        {
            "participant_id": _ids(path, table, "voter-id"),
            "comment_id": _ids(path, table, "comment-id"),
            "vote": _integers(path, table, "vote", {-1, 0, 1}),
            "created_at": _timestamps(path, table),
        }
    )


def _read_participants(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(participant_id + polis_group, the matrix's votes as participant_id, comment_id, vote)."""
    table = _read_table(path, _PARTICIPANT_COLUMNS)
    group = table["group-id"].str.strip()
    numeric = pd.to_numeric(group.where(group != ""), errors="coerce")
    not_int = numeric.isna() | ~np.isfinite(numeric) | (numeric.abs() >= 2**53) | (numeric != numeric.round())
    _bad(path, table, ((group != "") & not_int).to_numpy(), "group-id", "blank or an integer group id")
    polis_group = [None if g == "" else str(int(float(g))) for g in group]
    pids = _ids(path, table, "participant", unique=True)
    people = pd.DataFrame({"participant_id": pids, "polis_group": pd.Series(polis_group, dtype=object)})
    columns = [c for c in table.columns if c.strip() not in _PARTICIPANT_SUMMARY]
    for column in columns:
        if not re.fullmatch(r"\d+", column.strip()):
            raise PolisFormatError(f"{path}, header: column {column!r} is neither a participant field nor a comment id")
    frames = []
    for column in columns:
        cells = table[column].str.strip()
        cast = cells.where(cells != "")
        values = pd.to_numeric(cast, errors="coerce")
        _bad(path, table, (cast.notna() & ~values.isin([-1, 0, 1])).to_numpy(), column, "blank, -1, 0 or 1")
        voted = values.notna().to_numpy()
        frames.append(pd.DataFrame({"participant_id": pids[voted].to_numpy(), "comment_id": column.strip(),
                                    "vote": values[voted].astype("int64").to_numpy()}))
    matrix = (pd.concat(frames, ignore_index=True) if frames
              else pd.DataFrame({"participant_id": [], "comment_id": [], "vote": []}))
    return people, matrix


def _read_topic(folder: Path) -> str:
    path = folder / SUMMARY_FILE
    if path.is_file():
        if problem := too_large(path):
            raise PolisFormatError(f"{path}: {problem}")
        try:
            with path.open(newline="", encoding="utf-8") as handle:
                for number, row in enumerate(csv.reader(handle), start=1):
                    if len(row) >= 2 and row[0].strip() == "topic" and row[1].strip():
                        if _CONTROL.search(row[1]):  # the topic becomes the deliberation's title
                            raise PolisFormatError(f"{path}, row {number}, column 2: the topic contains "
                                                   "control characters")
                        return row[1].strip()
        except (UnicodeDecodeError, csv.Error) as exc:
            raise PolisFormatError(f"{path}: not a readable UTF-8 CSV file ({exc})") from None
    return folder.name


def read_polis_export(folder: Path) -> PolisExport:
    """Read one Polis export folder. comments.csv and participants-votes.csv are required; votes.csv
    (the vote history) and summary.csv (the topic; else the folder name) are read where present.
    Without votes.csv the votes are the participants-votes.csv matrix, which must then name only
    comments that comments.csv lists."""
    folder = Path(folder)
    if not folder.is_dir():
        raise PolisFormatError(f"{folder}: not a folder")
    comments = _read_comments(folder / COMMENTS_FILE)
    participants, matrix = _read_participants(folder / PARTICIPANTS_FILE)
    votes_path = folder / VOTES_FILE
    if votes_path.exists():
        votes = _read_votes(votes_path)
    else:
        unknown = sorted(set(matrix["comment_id"]) - set(comments["comment_id"]), key=lambda c: (len(c), c))
        if unknown:
            raise PolisFormatError(f"{folder / PARTICIPANTS_FILE}, header: comment column(s) {unknown[:5]} are not in"
                                   f" {folder / COMMENTS_FILE} (and there is no {VOTES_FILE} to say what they are)")
        if matrix.empty:
            raise PolisFormatError(f"{folder / PARTICIPANTS_FILE}: no votes in the matrix, and no {VOTES_FILE}")
        votes = matrix.assign(created_at=pd.Series(pd.NaT, index=matrix.index, dtype="datetime64[ns]"))
    return PolisExport(topic=_read_topic(folder), comments=comments, votes=votes, participants=participants,
                       has_history=votes_path.exists())


# --- into the workbench -------------------------------------------------------------------------


def polis_bundle(export: PolisExport, *, deliberation_id: str):
    """The export as an `ImportBundle`: comments become statements, votes endorsements.

    - each comment → a values card of kind 'statement' (the comment's text as its description);
      rejected (-1) and meta comments are stored as hidden: they leave every view and export, but
      their votes are kept, because Polis's clustering counts them (zeroed) — see workbench.groups;
    - every vote event is kept (re-votes included; "latest wins" is the store's query);
    - Polis's own `group-id` → the participant attribute `polis_group`.
    """
    from ..io.bundle import ImportBundle
    from ..models import DeliberationSpec, validated

    topic = (export.topic or deliberation_id).strip()[:120] or deliberation_id
    spec = validated(DeliberationSpec, {
        "id": deliberation_id, "title": topic[:200],
        "description": "Imported from a Polis export (comments, votes, participants-votes)." if export.has_history
        else "Imported from a partial Polis export (comments and the participants-votes matrix; no vote history).",
        "consent": "Imported data: participants took part in the original Polis conversation.",
        "licence": "As the Polis export states (Polis open data is CC BY 4.0).",
        "questions": [{"slug": "conversation", "title": topic[:120], "prompt": topic,
                       "contexts": ["In this conversation"]}],
    }, where="deliberation")
    comments = export.comments
    hidden = export.moderated_out()
    cards = pd.DataFrame({
        "source_id": comments["comment_id"], "kind": "statement", "question": "conversation",
        "author": None,
        "title": [b if len(b) <= 80 else b[:79].rstrip() + "…" for b in comments["body"].fillna("")],
        "description": comments["body"].fillna(""), "policies": [[] for _ in range(len(comments))],
        "status": ["hidden" if c in hidden else "active" for c in comments["comment_id"]],
        "contexts": [[] for _ in range(len(comments))], "created_at": comments["created_at"]})
    people = sorted(set(export.votes["participant_id"]) | set(export.participants["participant_id"]),
                    key=lambda s: (len(s), s))
    first_vote = export.votes.groupby("participant_id")["created_at"].min().to_dict()
    participants = pd.DataFrame({"source_id": people, "signup": "import",
                                 "created_at": [first_vote.get(p) for p in people]})
    groups = export.participants.dropna(subset=["polis_group"])
    attributes = pd.DataFrame({"participant": groups["participant_id"], "key": "polis_group",
                               "value": groups["polis_group"].astype(str)})
    votes = export.votes.reset_index(drop=True)
    # Vote events are keyed by their row in votes.csv; a matrix vote (no votes.csv) by its cell.
    prefix = "vote:" + votes.index.astype(str) if export.has_history else pd.Series("matrix", index=votes.index)
    endorsements = pd.DataFrame({
        "source_key": prefix + ":" + votes["participant_id"] + ":" + votes["comment_id"],
        "participant": votes["participant_id"], "canonical": None, "card": votes["comment_id"],
        "card_kind": "statement", "question": "conversation",
        "vote": votes["vote"].map({1: "agree", -1: "disagree", 0: "pass"}), "created_at": votes["created_at"]})
    return ImportBundle(spec=spec, source="polis", participants=participants, attributes=attributes, cards=cards,
                        endorsements=endorsements)
