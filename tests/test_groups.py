"""Polis-style opinion groups: hand-checked repness and consensus, threshold, determinism, golden ARI."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from workbench.groups import (
    VoteTableError,
    group_informed_consensus,
    opinion_groups,
    representativeness,
)
from workbench.io.polis import latest_votes, read_polis_export


def vote_table(rows: list[tuple[str, str, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["participant_id", "statement_id", "vote"])


# Group 0 = a, b, c; group 1 = d, e.
HAND_GROUPS = pd.Series({"a": 0, "b": 0, "c": 0, "d": 1, "e": 1, "z": -1})
HAND_VOTES = vote_table(
    [("a", "s1", 1), ("b", "s1", 1), ("c", "s1", 1), ("d", "s1", -1), ("e", "s1", -1),
     ("a", "s2", 1), ("b", "s2", 1), ("c", "s2", 1), ("d", "s2", 1), ("e", "s2", 1),
     ("a", "s3", 0), ("b", "s3", 1), ("d", "s3", 1),
     ("z", "s1", -1), ("z", "s3", -1)]  # z is unclustered: counts in overall rates, not in groups
)


def test_repness_matches_hand_computation() -> None:
    rep = representativeness(HAND_VOTES, HAND_GROUPS).set_index(["group", "statement_id"])
    g0 = rep.loc[(0, "s1")]
    assert g0["repful"] == "agree"
    assert g0["p"] == pytest.approx(4 / 5)  # (3 + 1) / (3 + 2)
    assert g0["ratio"] == pytest.approx((4 / 5) / (1 / 4))  # outside: (0 + 1) / (2 + 2)
    # two-proportion test with +1 on every count: 4/4 vs 1/3, pooled 5/7
    assert g0["z_diff"] == pytest.approx((1 - 1 / 3) / math.sqrt(5 / 7 * 2 / 7 * (1 / 4 + 1 / 3)))
    assert g0["z_p"] == pytest.approx(2 * math.sqrt(4) * (4 / 4 - 0.5))
    assert bool(g0["significant"])
    g1 = rep.loc[(1, "s1")]
    assert g1["repful"] == "disagree"
    assert g1["p"] == pytest.approx(3 / 4)
    assert g1["ratio"] == pytest.approx((3 / 4) / (1 / 5))
    assert g1["z_diff"] == pytest.approx(0.75 / math.sqrt(4 / 7 * 3 / 7 * (1 / 3 + 1 / 4)))
    assert g1["z_p"] == pytest.approx(math.sqrt(3))
    # Everyone agrees with s2: it represents nobody in particular.
    assert not rep.loc[(0, "s2"), "significant"] and not rep.loc[(1, "s2"), "significant"]
    # Within a group, the defining statement comes first.
    assert representativeness(HAND_VOTES, HAND_GROUPS).query("group == 0")["statement_id"].iloc[0] == "s1"


def test_group_informed_consensus_matches_hand_computation() -> None:
    cons = group_informed_consensus(HAND_VOTES, HAND_GROUPS).set_index("statement_id")
    assert cons.loc["s1", "gic"] == pytest.approx((4 / 5) * (1 / 4))
    assert cons.loc["s2", "gic"] == pytest.approx((4 / 5) * (3 / 4))
    assert cons.loc["s3", "gic"] == pytest.approx((2 / 4) * (2 / 3))  # a pass counts as seen
    assert cons.loc["s3", "agree_rate"] == pytest.approx(2 / 4)  # z's disagree counts overall
    assert cons.index[0] == "s2"  # bridging statement ranks first


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


def test_two_clear_camps_are_found() -> None:
    result = opinion_groups(two_camps())
    assert result.k == 2
    parts = result.participants
    camp = parts["participant_id"].str[0]
    assert adjusted_rand_score(camp, parts["group"]) == 1.0
    assert result.silhouette[2] == max(result.silhouette.values())
    top = result.repness.groupby("group").head(1)
    assert top["significant"].all()


def test_participation_threshold_is_min_of_seven_and_statement_count() -> None:
    votes = two_camps()
    # Three late-comers: 6 votes (below 7), exactly 7 votes, and 12 votes.
    extra = [(pid, f"s{s}", 1 if s < 6 else -1) for pid, n in (("six", 6), ("seven", 7), ("all", 12))
             for s in range(n)]
    result = opinion_groups(pd.concat([votes, vote_table(extra)], ignore_index=True))
    parts = result.participants.set_index("participant_id")
    assert parts.loc["six", "group"] == -1 and not parts.loc["six", "clustered"]
    assert parts.loc["seven", "group"] >= 0 and parts.loc["all", "group"] >= 0
    # Below the threshold a participant is still placed on the map, just not grouped.
    assert np.isfinite(parts.loc["six", ["x", "y"]].astype(float)).all()
    assert parts.loc["seven", "group"] == parts.loc["A0", "group"]

    # With only three statements, three votes are enough.
    few = two_camps(n_statements=3)
    few = pd.concat([few, vote_table([("two", "s0", 1), ("two", "s1", 1)])], ignore_index=True)
    parts = opinion_groups(few).participants.set_index("participant_id")
    assert parts.loc["A0", "clustered"] and not parts.loc["two", "clustered"]
    assert opinion_groups(few).params["threshold"] == 3


def test_same_seed_same_groups() -> None:
    votes = two_camps(seed=7)
    first, second = opinion_groups(votes, seed=3), opinion_groups(votes, seed=3)
    pd.testing.assert_frame_equal(first.participants, second.participants)
    pd.testing.assert_frame_equal(first.repness, second.repness)
    assert first.silhouette == second.silhouette


def test_duplicate_votes_are_refused() -> None:
    with pytest.raises(VoteTableError, match="latest"):
        opinion_groups(vote_table([("a", "s1", 1), ("a", "s1", -1)]))
    with pytest.raises(VoteTableError, match="row 2, column 'vote'"):
        opinion_groups(vote_table([("a", "s1", 1), ("a", "s2", 5)]))


def test_moderated_out_statements_get_no_rows() -> None:
    votes = two_camps()
    result = opinion_groups(votes, moderated_out={"s0"})
    assert "s0" not in set(result.repness["statement_id"])
    assert "s0" not in set(result.consensus["statement_id"])
    assert result.k == 2


def polis_ari(folder: Path) -> tuple[float, int]:
    export = read_polis_export(folder)
    votes = latest_votes(export.votes).rename(columns={"comment_id": "statement_id"})
    result = opinion_groups(votes, seed=0, moderated_out=export.moderated_out())
    theirs = export.participants.dropna(subset=["polis_group"]).set_index("participant_id")["polis_group"]
    ours = result.group_of().reindex(theirs.index)
    both = ours.notna() & (ours >= 0)
    return adjusted_rand_score(theirs[both], ours[both]), result.k


@pytest.mark.parametrize(("name", "reached"), [("scoop-hivemind.taxes", 0.925),
                                               ("canadian-electoral-reform", 0.964)])
def test_golden_agreement_with_polis_groups(shared_datasets: Path, name: str, reached: float) -> None:
    ari, k = polis_ari(shared_datasets / "polis" / name)
    assert k == 2  # Polis found two groups in both
    assert ari >= reached - 0.03
