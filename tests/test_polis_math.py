"""The Polis port piece by piece (workbench.polis), against hand-computed values and Polis's own
numbers: power iteration, projection, k-means starts, silhouette, the group-k smoother, repness and
consensus formulas, and group-informed consensus as Polis exported it."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workbench.io.polis import latest_votes, read_polis_export
from workbench.polis import polis_report
from workbench.polis.clusters import Clustering, kmeans, silhouette
from workbench.polis.conversation import KSmoother, best_k, max_group_k
from workbench.polis.pca import (
    CoVotes,
    deflated,
    gram_rows,
    power_iteration,
    principal_components,
    sparsity_aware_projection,
)
from workbench.polis.repness import prop_test, two_prop_test


def test_power_iteration_finds_the_dominant_eigenvector_and_stops_when_the_length_repeats() -> None:
    gram = np.diag([9.0, 4.0, 1.0])
    vector = power_iteration(gram, np.ones(3))
    assert vector == pytest.approx([1.0, 0.0, 0.0], abs=1e-6)  # the length converges faster than the vector
    calls = []

    class Counting(np.ndarray):
        def __matmul__(self, other):
            calls.append(1)
            return np.asarray(self) @ other

    power_iteration(gram.view(Counting), np.ones(3))
    assert len(calls) < 101  # converged (the product's length repeated) before the 101-product cap
    calls.clear()
    power_iteration(gram.view(Counting), np.ones(3), iters=3)
    assert len(calls) == 4  # iters + 1 products at most, as pca.clj loops
    assert not np.any(power_iteration(np.zeros((2, 2)), np.ones(2)))  # a zero product stays zero


def test_second_component_factors_out_the_first_like_pcaclj_factor_matrix() -> None:
    rng = np.random.default_rng(0)
    data = rng.normal(size=(40, 5)) * [5, 3, 2, 1, 0.5]
    centred = data - data.mean(axis=0)
    gram = centred.T @ centred
    comps = principal_components(gram, 40, previous=None, rng=np.random.default_rng(1))
    explicit = power_iteration(deflated(gram, comps[0]), np.random.default_rng(1).random(5))
    assert abs(comps[1] @ explicit) == pytest.approx(1.0, abs=1e-9)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    assert abs(comps[0] @ vt[0]) == pytest.approx(1.0, abs=1e-9)
    assert abs(comps[1] @ vt[1]) == pytest.approx(1.0, abs=1e-9)
    # warm start: last run's component, padded with 1s for a statement that arrived since
    warm = principal_components(np.pad(gram, (0, 1)), 40, previous=comps, rng=np.random.default_rng(5))
    assert abs(warm[0][:5] @ comps[0]) == pytest.approx(1.0, abs=1e-9) and warm.shape == (2, 6)
    # a single row (or column) gives one component, and everyone then sits at the origin
    one = principal_components(gram, 1, previous=None, rng=np.random.default_rng(0))
    assert one.shape == (1, 5)
    assert not np.any(sparsity_aware_projection(centred, np.full(40, 5), one))


def test_projection_uses_cast_votes_and_pushes_sparse_voters_out() -> None:
    components = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]])
    centred = np.array([[0.5, -0.5, 0.0, 0.0], [0.5, 0.0, 0.0, 0.0]])  # 0 where not voted
    xy = sparsity_aware_projection(centred, np.array([4, 1]), components)
    assert xy[0] == pytest.approx([0.5, -0.5])  # voted on all 4: scale sqrt(4/4)
    assert xy[1] == pytest.approx([0.5 * 2, 0.0])  # one vote of 4: scale sqrt(4/1) = 2


def test_kmeans_cold_start_takes_the_first_distinct_points() -> None:
    points = np.array([[0.0, 0.0], [0.0, 0.0], [10.0, 0.0], [0.1, 0.0], [10.1, 0.0]])
    result = kmeans(points, 2, max_iters=0)  # one step from the start, no more
    assert list(result.ids) == [0, 1]
    # start (0,0) and (10,0): the step assigns and re-centres
    assert result.centers == pytest.approx(np.array([[0.1 / 3, 0.0], [10.05, 0.0]]))
    assert list(result.member) == [0, 0, 1, 0, 1]


def test_kmeans_warm_start_keeps_ids_and_splits_off_the_most_distal_point() -> None:
    points = np.array([[0.0, 0.0], [1.0, 0.0], [10.0, 0.0]])
    last = Clustering(ids=np.array([4, 7]), centers=np.array([[0.0, 0.0], [10.0, 0.0]]),
                      member=np.array([4, 7]), names=np.array([0, 2]))
    # row 1 is new (no cluster); k = 3 and three distinct points: it is split off as cluster 8
    result = kmeans(points, 3, last=last)
    assert list(result.ids) == [4, 7, 8]
    assert list(result.member) == [4, 8, 7]
    # a last cluster with no member left is dropped, and the rest keep their ids
    gone = Clustering(ids=np.array([1, 2]), centers=np.zeros((2, 2)), member=np.array([1, 2]), names=np.array([0, 9]))
    assert 2 not in kmeans(points, 1, last=gone).ids


def test_silhouette_matches_a_hand_computation() -> None:
    pos = np.array([0.0, 1.0, 5.0, 7.0])
    distances = np.abs(pos[:, None] - pos[None])
    labels = np.array([0, 0, 1, 1])
    # a = own-cluster mean distance, b = nearest other cluster's mean distance
    expected = np.mean([(6 - 1) / 6, (5 - 1) / 5, (4.5 - 2) / 4.5, (6.5 - 2) / 6.5])
    assert silhouette(distances, labels) == pytest.approx(expected)
    assert silhouette(distances, np.array([0, 0, 0, 1])) == pytest.approx(
        np.mean([(7 - 3) / 7, (6 - 2.5) / 6, (2 - 4.5) / 4.5, 0.0]))  # a singleton's member scores 0
    assert math.isnan(silhouette(distances, np.zeros(4, dtype=int)))


def test_group_k_smoother_switches_only_after_four_wins_in_a_row() -> None:
    smoother = KSmoother()
    shown = []
    for k in [2, 3, 3, 3, 2, 3, 3, 3, 3, 3, 2]:
        smoother = smoother.next(k)
        shown.append(smoother.smoothed_k)
    assert shown == [2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3]
    assert best_k({2: 0.5, 3: 0.5, 4: 0.1}) == 3  # Clojure's max-key: the later of equals
    assert best_k({2: float("nan"), 3: 0.2}) == 3
    assert [max_group_k(n) for n in (5, 12, 24, 36, 100)] == [2, 3, 4, 5, 5]


def test_proportion_tests_match_statsclj_by_hand() -> None:
    # prop-test: 2 sqrt(n+1) ((s+1)/(n+1) - 0.5)
    assert prop_test(3, 4) == pytest.approx(2 * math.sqrt(5) * (4 / 5 - 0.5))
    # two-prop-test with +1 on all counts: 4/4 vs 1/3, pooled 5/7
    assert two_prop_test(3, 0, 3, 2) == pytest.approx((1 - 1 / 3) / math.sqrt(5 / 7 * 2 / 7 * (1 / 4 + 1 / 3)))
    assert two_prop_test(3, 3, 3, 3) == 0.0  # pooled rate 1


HAND = pd.DataFrame(
    [("a", "s1", 1), ("b", "s1", 1), ("c", "s1", 1), ("d", "s1", -1), ("e", "s1", -1),
     ("a", "s2", 1), ("b", "s2", 1), ("c", "s2", 1), ("d", "s2", 1), ("e", "s2", 1),
     ("a", "s3", 0), ("b", "s3", 1), ("d", "s3", 1), ("z", "s1", -1), ("z", "s3", -1)],
    columns=["participant_id", "statement_id", "vote"])
HAND_GROUPS = pd.Series({"a": 0, "b": 0, "c": 0, "d": 1, "e": 1, "z": -1})


def test_repness_matches_hand_computation() -> None:
    report = polis_report(HAND, HAND_GROUPS)
    a, b = report.groups
    assert (a.label, a.size, b.label, b.size) == ("A", 3, "B", 2)
    top = a.statements[0]
    assert top.statement_id == "s1" and top.repful == "agree" and top.significant
    assert top.p_success == pytest.approx(4 / 5)  # (3 + 1) / (3 + 2)
    assert top.repness == pytest.approx((4 / 5) / (1 / 4))  # other group: (0 + 1) / (2 + 2)
    assert top.repness_test == pytest.approx((1 - 1 / 3) / math.sqrt(5 / 7 * 2 / 7 * (1 / 4 + 1 / 3)))
    assert top.p_test == pytest.approx(2 * math.sqrt(4) * (4 / 4 - 0.5))
    assert (top.group_share, top.others_share) == (1.0, 0.0)
    s1_b = next(s for s in b.statements if s.statement_id == "s1")
    assert s1_b.repful == "disagree" and s1_b.p_success == pytest.approx(3 / 4)
    assert s1_b.repness == pytest.approx((3 / 4) / (1 / 5))
    assert s1_b.repness_test == pytest.approx(0.75 / math.sqrt(4 / 7 * 3 / 7 * (1 / 3 + 1 / 4)))
    gic = report.gic_by_statement
    assert gic["s1"] == pytest.approx((4 / 5) * (1 / 4))
    assert gic["s2"] == pytest.approx((4 / 5) * (3 / 4))
    assert gic["s3"] == pytest.approx((2 / 4) * (2 / 3))  # a pass counts as a vote; z is in no group
    assert report.group_informed_consensus[0].statement_id == "s2"
    # consensus is over everyone (z too): s2 has 5 agrees of 5 -> p = 6/7, test 2 sqrt(6)(6/6 - .5)
    assert [c.statement_id for c in report.consensus_agree] == ["s2"]
    assert report.consensus_agree[0].p_test == pytest.approx(2 * math.sqrt(6) * 0.5)


def test_group_informed_consensus_equals_polis_export(shared_datasets: Path) -> None:
    """bg2050-volunteers' comments.csv carries Polis's own group-informed consensus per comment;
    recomputed from its participants' latest votes and Polis's group-id, it matches to 1e-12."""
    folder = shared_datasets / "polis" / "bg2050-volunteers"
    export = read_polis_export(folder)
    votes = latest_votes(export.votes).rename(columns={"comment_id": "statement_id"})
    groups = export.participants.dropna(subset=["polis_group"]).set_index("participant_id")["polis_group"].astype(int)
    ours = pd.Series(polis_report(votes, groups, moderated_out=export.moderated_out()).gic_by_statement)
    comments = pd.read_csv(folder / "comments.csv", dtype={"comment-id": str}).set_index("comment-id")
    theirs = comments["group-informed-consensus"].reindex(ours.index)
    assert len(ours) >= 300 and theirs.notna().all()
    assert np.max(np.abs(ours - theirs)) < 1e-12


def test_co_vote_counts_kept_per_batch_equal_a_rebuild_and_give_the_gram_matrix() -> None:
    """The replay's incremental Gram matrix: counts changed batch by batch (re-votes included) equal
    counts rebuilt from the final votes exactly, and G = A'A follows from them, symmetric to the bit."""
    rng = np.random.default_rng(3)
    n, m = 30, 8
    votes, voted = np.zeros((n, m)), np.zeros((n, m), dtype=bool)
    counts = CoVotes.empty(m)
    for _ in range(40):
        rows, cols = rng.integers(0, n, 3), rng.integers(0, m, 3)
        voters = np.unique(rows)
        before = (votes[voters].copy(), voted[voters].copy())
        votes[rows, cols] = rng.choice([-1.0, 0.0, 1.0], 3)
        voted[rows, cols] = True
        counts.replace(np.unique(cols), before, (votes[voters], voted[voters]))
    rebuilt = CoVotes.of(votes, voted)
    for kept, full in ((counts.pairs, rebuilt.pairs), (counts.products, rebuilt.products), (counts.sums, rebuilt.sums)):
        assert np.array_equal(kept, full)
    mean = np.where(voted.any(axis=0), votes.sum(axis=0) / np.maximum(voted.sum(axis=0), 1), 0.0)
    centred = np.where(voted, votes - mean, 0.0)
    gram = gram_rows(np.arange(m), mean, counts)
    assert gram == pytest.approx(centred.T @ centred, abs=1e-9)
    assert np.array_equal(gram, gram.T)


def test_kmeans_started_on_its_own_result_stops_there() -> None:
    """A warm start whose labels reproduce themselves ends at once with the same clusters (the
    replay's shortcut for same-clustering? when no point changes cluster)."""
    rng = np.random.default_rng(0)
    points = np.r_[rng.normal(0, 0.1, (20, 2)), rng.normal(5, 0.1, (20, 2))]
    first = kmeans(points, 2)
    again = kmeans(points, 2, last=first)
    assert np.array_equal(again.ids, first.ids) and np.array_equal(again.member, first.member)
    assert np.array_equal(again.centers, first.centers)
    moved = kmeans(points + [0.5, 0.0], 2, last=first)  # every point moved: the centres follow
    assert np.allclose(moved.centers, first.centers + [0.5, 0.0])
