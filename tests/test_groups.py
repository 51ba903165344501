"""Opinion groups (workbench.groups on the Polis port): what a user of `workbench groups` relies on,
and golden agreement with Polis's own groups on real conversations."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from workbench.errors import InputError
from workbench.groups import OpinionGroups, VoteTableError, opinion_groups
from workbench.io.polis import latest_votes, read_polis_export


def vote_table(rows: list[tuple[str, str, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["participant_id", "statement_id", "vote"])


def two_camps(n_per_camp: int = 30, n_statements: int = 12, seed: int = 1) -> pd.DataFrame:
    """Camp A agrees with the first half of the statements and disagrees with the rest; camp B the
    opposite; 10% of votes are passes."""
    rng = np.random.default_rng(seed)
    rows = []
    for camp in (0, 1):
        for i in range(n_per_camp):
            for s in range(n_statements):
                side = 1 if (s < n_statements // 2) == (camp == 0) else -1
                vote = 0 if rng.random() < 0.1 else side
                rows.append((f"{'AB'[camp]}{i}", f"s{s}", vote))
    return vote_table(rows)


def test_two_clear_camps_are_found_with_a_report() -> None:
    result = opinion_groups(two_camps())
    assert result.method == "single-shot"
    assert result.k == 2
    parts = result.participants
    assert adjusted_rand_score(parts["participant_id"].str[0], parts["group"]) == 1.0
    assert result.silhouette[2] == max(result.silhouette.values())
    for group in result.report.groups:
        assert group.size == 30
        assert group.statements and all(s.significant for s in group.statements)
        top = group.statements[0]
        assert top.group_share > 0.8 and top.others_share < 0.1


def test_participation_threshold_is_min_of_seven_and_statement_count() -> None:
    votes = two_camps()
    extra = [(pid, f"s{s}", 1 if s < 6 else -1) for pid, n in (("six", 6), ("seven", 7), ("all", 12))
             for s in range(n)]
    result = opinion_groups(pd.concat([votes, vote_table(extra)], ignore_index=True))
    parts = result.participants.set_index("participant_id")
    assert parts.loc["six", "group"] == -1 and not parts.loc["six", "clustered"]
    assert parts.loc["seven", "group"] >= 0 and parts.loc["all", "group"] >= 0
    assert np.isfinite(parts.loc["six", ["x", "y"]].astype(float)).all()  # on the map, not in a group
    assert parts.loc["seven", "group"] == parts.loc["A0", "group"]
    few = pd.concat([two_camps(n_statements=3), vote_table([("two", "s0", 1), ("two", "s1", 1)])], ignore_index=True)
    result = opinion_groups(few)
    parts = result.participants.set_index("participant_id")
    assert parts.loc["A0", "clustered"] and not parts.loc["two", "clustered"]
    assert result.params["threshold"] == 3


def test_fewer_than_fifteen_in_the_conversation_takes_the_most_active() -> None:
    """Polis's greedy rule: below 15 participants in, the most active others join (fewest votes last)."""
    rows = [(f"p{i}", f"s{s}", 1 if (s + i) % 3 else -1) for i in range(20) for s in range(2 + i % 5)]
    rows += [(f"q{i}", f"s{s}", 1) for i in range(3) for s in range(12)]  # three with 12 votes each
    result = opinion_groups(vote_table(rows))
    parts = result.participants.set_index("participant_id")
    assert int(parts["clustered"].sum()) == 15
    assert parts.loc[["q0", "q1", "q2"], "clustered"].all()
    assert parts.loc[parts["n_votes"] == 6, "clustered"].all()  # the next most active
    assert not parts.loc[parts["n_votes"] == 2, "clustered"].any()


def test_same_seed_same_groups_and_latest_vote_counts() -> None:
    votes = two_camps(seed=7)
    first, second = opinion_groups(votes, seed=3), opinion_groups(votes, seed=3)
    pd.testing.assert_frame_equal(first.participants, second.participants)
    assert first.silhouette == second.silhouette
    flipped = pd.concat([votes, vote_table([("A0", f"s{s}", -1 if s < 6 else 1) for s in range(12)])],
                        ignore_index=True)
    parts = opinion_groups(flipped).participants.set_index("participant_id")
    assert parts.loc["A0", "group"] == parts.loc["B0", "group"]  # A0 changed their mind on everything


def test_bad_votes_are_refused_by_row_and_column() -> None:
    with pytest.raises(VoteTableError, match="row 2, column 'vote'") as info:
        opinion_groups(vote_table([("a", "s1", 1), ("a", "s2", 5)]))
    assert isinstance(info.value, InputError)
    with pytest.raises(VoteTableError, match="vote history"):
        opinion_groups(vote_table([("a", "s1", 1)]), replay=True)


def test_moderated_out_statements_get_no_report_rows() -> None:
    result = opinion_groups(two_camps(), moderated_out={"s0"})
    assert result.k == 2
    shown = {s.statement_id for g in result.report.groups for s in g.statements}
    shown |= {s.statement_id for s in result.report.group_informed_consensus}
    assert "s0" not in shown and "s1" in result.report.gic_by_statement


def test_replay_uses_the_history_and_matches_one_update_when_everything_arrives_at_once() -> None:
    votes = two_camps()
    at_once = votes.assign(created_at=pd.Timestamp("2024-01-01"))
    stamped = votes.assign(created_at=pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(len(votes)), unit="s"))
    replayed = opinion_groups(stamped)
    assert replayed.method == "replay" and replayed.params["updates"] == len(votes)
    assert replayed.k == 2
    assert adjusted_rand_score(replayed.participants["participant_id"].str[0], replayed.participants["group"]) == 1.0
    assert opinion_groups(at_once).method == "single-shot"  # one time for all votes: no history


@functools.cache
def polis_groups(folder: Path, *, replay: bool) -> tuple[pd.Series, OpinionGroups]:
    """Polis's group-id per participant and our groups, as the benchmark computes them (participants
    Polis grouped count as already in the conversation, as Polis's persisted in-conv set makes them).
    Cached: the replays are the slow part and several tests read the same one."""
    export = read_polis_export(folder)
    theirs = export.participants.dropna(subset=["polis_group"]).set_index("participant_id")["polis_group"]
    votes = export.votes.rename(columns={"comment_id": "statement_id"})
    if not replay:
        votes = latest_votes(export.votes).rename(columns={"comment_id": "statement_id"}).drop(columns="created_at")
    return theirs, opinion_groups(votes, moderated_out=export.moderated_out(), in_conversation=set(theirs.index))


def polis_ari(folder: Path, *, replay: bool) -> tuple[float, int]:
    """ARI of our groups against Polis's group-id over the participants both grouped, and our k."""
    theirs, result = polis_groups(folder, replay=replay)
    ours = result.group_of().reindex(theirs.index)
    both = ours.notna() & (ours >= 0)
    return adjusted_rand_score(theirs[both], ours[both]), result.k


# Golden: Polis's own groups. Conversations and thresholds taken from benchmarks/results/polis_groups.md
# (measured: 15-per-hour-seattle replay 0.912, brexit-consensus replay 0.901, bg2050-volunteers single
# update 1.000), kept a little below the measurement so a faithful change of floating-point order
# cannot fail them while a broken port does. Where the method still disagrees with Polis is in that file.
@pytest.mark.parametrize(("name", "replay", "reached"), [("15-per-hour-seattle", True, 0.912),
                                                         ("brexit-consensus", True, 0.901),
                                                         ("bg2050-volunteers", False, 1.0)])
def test_golden_agreement_with_polis_groups(shared_datasets: Path, name: str, replay: bool, reached: float) -> None:
    ari, k = polis_ari(shared_datasets / "polis" / name, replay=replay)
    assert k == 2  # Polis shows two groups in all three
    assert ari >= reached - 0.05


# Golden: the replay's own groups, computed with the replay as it was before it was made incremental
# (commit 5e3298f, one full Gram block product per update). The incremental replay (exact co-vote
# counts, moderated-out columns left out, one BLAS thread) rounds differently in the last bits, so its
# base clusters may be numbered differently; every participant's group must still be the same.
REPLAY_GOLDEN = Path(__file__).parent / "fixtures" / "polis_replay_groups.csv"


@pytest.mark.parametrize("name", ["15-per-hour-seattle", "brexit-consensus"])
def test_incremental_replay_keeps_every_participants_group(shared_datasets: Path, name: str) -> None:
    golden = pd.read_csv(REPLAY_GOLDEN, dtype={"participant_id": str}).query("conversation == @name")
    _, result = polis_groups(shared_datasets / "polis" / name, replay=True)
    assert result.method == "replay"
    ours = result.participants.set_index("participant_id")["group"]
    assert sorted(ours.index) == sorted(golden["participant_id"])
    expected = golden.set_index("participant_id")["group"].reindex(ours.index)
    assert (ours != expected).sum() == 0, ours[ours != expected]
