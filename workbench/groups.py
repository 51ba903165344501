"""Opinion groups of a conversation's agree / disagree / pass votes, as Polis finds them.

The workbench's entry to `workbench.polis` (a port of Polis's math): it takes a vote table,
checks it once, decides how to run Polis's math and returns a frozen `OpinionGroups` with a row per
participant and Polis's report. With a vote history (every vote with its time) the conversation is
replayed in the cadence of Polis's math worker, each update starting from the last one, so the groups
depend on the order and timing of votes as Polis's do; without one (only the latest votes, or all at
one time) Polis's math runs once, as for a conversation computed from scratch. Pure: DataFrames in,
a frozen dataclass out; no SQL, no files, no Streamlit; moderated-out statements and who Polis already
let into the conversation are the caller's to say.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .errors import InputError
from .polis import ConversationMath, PolisReport, polis_report, replay_conversation, single_shot
from .polis.conversation import MIN_VOTES, Progress

VOTE_COLUMNS = ("participant_id", "statement_id", "vote")


class VoteTableError(InputError):
    """The vote table handed to `opinion_groups` is not a table of votes (names the row and column)."""


@dataclass(frozen=True)
class OpinionGroups:
    """Result of `opinion_groups`.

    participants: participant_id, n_votes, clustered (in Polis's conversation), base_cluster (-1 if
        not clustered), group (0-based, in order of Polis's group id; -1 outside the conversation),
        x, y (Polis's projection; everyone has one). Rows in Polis's order (first vote).
    k: number of groups shown (after the group-k smoother); method: 'replay' or 'single-shot';
    silhouette: per k tried in the last update; report: Polis's report (representative statements,
    consensus, group-informed consensus) for these groups; math: Polis's full state.
    """

    participants: pd.DataFrame
    k: int
    method: str
    silhouette: dict[int, float]
    report: PolisReport
    math: ConversationMath
    params: dict[str, object] = field(default_factory=dict)

    def group_of(self) -> pd.Series:
        """participant_id -> group (-1 outside the conversation)."""
        return self.participants.set_index("participant_id")["group"]


def _validated(votes: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in VOTE_COLUMNS if c not in votes.columns]
    if missing:
        raise VoteTableError(f"vote table lacks column(s) {missing}; expected {list(VOTE_COLUMNS)}")
    table = votes.copy()
    table["participant_id"] = table["participant_id"].astype(str)
    table["statement_id"] = table["statement_id"].astype(str)
    numeric = pd.to_numeric(table["vote"], errors="coerce")
    bad = ~numeric.isin([-1, 0, 1])
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise VoteTableError(f"vote table row {row + 1}, column 'vote': {table['vote'].iloc[row]!r} is not -1, 0 or +1")
    table["vote"] = numeric.astype(int)
    return table


def has_history(votes: pd.DataFrame) -> bool:
    """True when the votes carry times that tell an order (at least two distinct vote times)."""
    return "created_at" in votes.columns and votes["created_at"].notna().all() and votes["created_at"].nunique() > 1


def latest_per_cell(votes: pd.DataFrame) -> pd.DataFrame:
    """The vote that counts per participant x statement: the last in table order (callers order by time)."""
    return votes.drop_duplicates(["participant_id", "statement_id"], keep="last").sort_index(kind="stable")


def opinion_groups(votes: pd.DataFrame, *, seed: int = 0, moderated_out: Iterable[str] = (),
                   in_conversation: Iterable[str] = (), replay: bool | None = None,
                   progress: Progress | None = None) -> OpinionGroups:
    """Polis's opinion groups and report for a conversation.

    votes: participant_id, statement_id, vote (+1 agree, -1 disagree, 0 pass), optionally created_at;
    every vote event in the order they were cast (re-votes included: the latest counts). Participants
    and statements are numbered in that order, as in Polis.
    moderated_out: statements moderated out or meta (zeroed for everyone, no report row).
    in_conversation: participants Polis already let into the conversation (e.g. those an export gives
    a group); they are clustered from their first vote, as Polis's persisted in-conv set makes them.
    replay: replay the history (default when `has_history`), else one update on the latest votes.
    """
    table = _validated(votes)
    moderated = {str(s) for s in moderated_out}
    known = {str(p) for p in in_conversation}
    if replay is None:
        replay = has_history(table)
    if replay:
        if not has_history(table):
            raise VoteTableError("replay needs a vote history: every vote with its time (column 'created_at')")
        times = pd.to_datetime(table["created_at"]).astype("datetime64[ms]").astype("int64")
        math = replay_conversation(table.assign(time=times), moderated_out=moderated, known_in_conversation=known,
                                   seed=seed, progress=progress)
    else:
        math = single_shot(latest_per_cell(table), moderated_out=moderated, known_in_conversation=known, seed=seed)
    return _assembled(math, table, moderated, seed)


def _assembled(math: ConversationMath, table: pd.DataFrame, moderated: set[str], seed: int) -> OpinionGroups:
    group_ids = [int(g) for g in math.groups.ids]
    position = {g: i for i, g in enumerate(group_ids)}
    group = np.array([position.get(int(g), -1) for g in math.group_of], dtype=int)
    base = np.full(len(math.participants), -1)
    rows = np.flatnonzero(math.in_conversation)
    base[rows] = math.base.carried_over(rows)
    participants = pd.DataFrame({
        "participant_id": list(math.participants), "n_votes": math.n_votes.astype(int),
        "clustered": math.in_conversation, "base_cluster": base, "group": group,
        "x": math.projection[:, 0], "y": math.projection[:, 1]})
    latest = latest_per_cell(table)
    report = polis_report(latest, participants.set_index("participant_id")["group"], moderated_out=moderated,
                          statement_order=math.statements)
    return OpinionGroups(participants=participants, k=len(group_ids), method=str(math.params["mode"]),
                         silhouette=dict(math.silhouettes), report=report, math=math,
                         params={**math.params, "seed": seed, "min_votes": MIN_VOTES,
                                 "threshold": min(MIN_VOTES, len(math.statements)), "updates": math.updates,
                                 "moderated_out": sorted(moderated)})
