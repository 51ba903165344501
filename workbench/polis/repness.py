"""Polis's report numbers (`repness.clj`, `stats.clj`, `conversation.clj`): what each opinion group
stands for, what everyone shares, and group-informed consensus.

For every group g and statement (votes of the group's members; `n_s` counts every vote, passes
included):
- p_a = (n_a + 1)/(n_s + 2) and the one-proportion test pat = 2 sqrt(n_s + 1) ((n_a + 1)/(n_s + 1) - 0.5);
- r_a = p_a / ((rest_a + 1)/(rest_s + 2)) against the members of every other group, and the
  two-proportion test rat (+1 on all four counts; 0 when the pooled rate is 1);
- the same for disagrees; a statement is representative of g for the side with the larger
  two-proportion test, and "significant" when both tests of a side exceed 1.2816 (90%, one-sided).
Selection as select-rep-comments: up to 5 significant statements by ratio x test x p x test, the
best agreed-upon statement first, agrees before disagrees; a group with none gets its best one.
Consensus (select-consensus-comments): over everyone, up to 5 statements per side with p > 0.5 and
a significant one-proportion test, by p x test. Group-informed consensus: prod over groups of
(A_g + 1)/(S_g + 2). Moderated-out statements get no row. Pure: DataFrames in, frozen dataclasses out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

Z_90 = 1.2816  # stats.clj z-sig-90?
PICK_MAX = 5


def prop_test(successes, trials):
    """stats.clj prop-test: one-proportion z-test of successes/trials against 0.5, +1 on both."""
    s, n = np.asarray(successes, dtype=float) + 1, np.asarray(trials, dtype=float) + 1
    return 2 * np.sqrt(n) * (s / n - 0.5)


def two_prop_test(succ_in, succ_out, pop_in, pop_out):
    """stats.clj two-prop-test: in-group rate above out-group rate, +1 on all four counts; 0 when
    the pooled rate is 1."""
    s1, s2, n1, n2 = (np.asarray(x, dtype=float) + 1 for x in (succ_in, succ_out, pop_in, pop_out))
    pooled = (s1 + s2) / (n1 + n2)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (s1 / n1 - s2 / n2) / np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return np.where(pooled == 1, 0.0, z)


@dataclass(frozen=True)
class RepresentativeStatement:
    """One statement that sets a group apart, with the numbers Polis's report shows.

    group_share: share of the group's votes on it that went this way (n_success / n_trials);
    others_share: the same share among every other group's members."""

    statement_id: str
    repful: str
    n_success: int
    n_trials: int
    p_success: float
    p_test: float
    repness: float
    repness_test: float
    group_share: float
    others_share: float
    significant: bool
    best_agree: bool


@dataclass(frozen=True)
class GroupReport:
    group: int
    label: str
    size: int
    statements: tuple[RepresentativeStatement, ...]


@dataclass(frozen=True)
class ConsensusStatement:
    """A statement most participants agree (or disagree) with: share = n_success / n_trials."""

    statement_id: str
    direction: str
    n_success: int
    n_trials: int
    p_success: float
    p_test: float
    share: float


@dataclass(frozen=True)
class GroupConsensus:
    """Group-informed consensus of a statement, and each group's agree share on it."""

    statement_id: str
    gic: float
    agree_share_by_group: dict[str, float]


@dataclass(frozen=True)
class PolisReport:
    """What Polis's report shows, for groups given by the caller (ours, or Polis's own)."""

    k: int
    n_participants: int
    n_grouped: int
    groups: tuple[GroupReport, ...]
    consensus_agree: tuple[ConsensusStatement, ...]
    consensus_disagree: tuple[ConsensusStatement, ...]
    group_informed_consensus: tuple[GroupConsensus, ...]
    gic_by_statement: dict[str, float]

    def to_json(self, titles: dict[str, str] | None = None) -> dict:
        """Plain JSON (schemas/polis_report.schema.json); `titles` adds each statement's text."""
        titles = titles or {}

        def with_text(row: dict) -> dict:
            return {**row, "text": titles.get(row["statement_id"])}

        return {
            "k": self.k, "n_participants": self.n_participants, "n_grouped": self.n_grouped,
            "groups": [{"group": g.group, "label": g.label, "size": g.size,
                        "statements": [with_text(asdict(s)) for s in g.statements]} for g in self.groups],
            "consensus": {"agree": [with_text(asdict(s)) for s in self.consensus_agree],
                          "disagree": [with_text(asdict(s)) for s in self.consensus_disagree]},
            "group_informed_consensus": [
                with_text({**asdict(s), "agree_share_by_group": {g: (None if v != v else v)  # NaN: no votes
                                                                  for g, v in s.agree_share_by_group.items()}})
                for s in self.group_informed_consensus],
        }


def in_plain_words(row: dict) -> str:
    """One representative statement (a `to_json` row) as a sentence a reader can quote."""
    verb = "agreed" if row["repful"] == "agree" else "disagreed"
    sure = "a clear difference (90% one-sided z-test)" if row["significant"] else "not a clear difference"
    return (f"{row['group_share']:.0%} of this group {verb} ({row['n_success']} of {row['n_trials']} who voted),"
            f" against {row['others_share']:.0%} of everyone else: {sure}.")


def group_label(position: int) -> str:
    """Polis names groups A, B, C, ... in order of id."""
    return chr(ord("A") + position) if position < 26 else f"G{position}"


def _counts(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    voted = ~np.isnan(matrix)
    return (matrix == 1).sum(axis=0), (matrix == -1).sum(axis=0), voted.sum(axis=0)


def polis_report(votes: pd.DataFrame, group_of: pd.Series, *, moderated_out: Iterable[str] = (),
                 statement_order: Iterable[str] | None = None, top_consensus: int = 10) -> PolisReport:
    """Polis's report for `votes` (participant_id, statement_id, vote; one row per cell, +1 agree)
    grouped by `group_of` (participant_id -> group id; missing or < 0: in no group).

    statement_order: Polis's column order (it breaks ties); default: first appearance in `votes`."""
    table = votes.assign(participant_id=votes["participant_id"].astype(str),
                         statement_id=votes["statement_id"].astype(str))
    order = [str(s) for s in statement_order] if statement_order is not None else list(pd.unique(table["statement_id"]))
    order += [s for s in pd.unique(table["statement_id"]) if s not in set(order)]
    people = list(pd.unique(table["participant_id"]))
    matrix = np.full((len(people), len(order)), np.nan)
    matrix[pd.Index(people).get_indexer(table["participant_id"]),
           pd.Index(order).get_indexer(table["statement_id"])] = table["vote"].to_numpy(dtype=float)
    moderated = {str(s) for s in moderated_out}
    keep = np.array([s not in moderated for s in order])
    groups_of = pd.Series(group_of).rename(index=str).reindex(people)
    gid = groups_of.fillna(-1).astype(int).to_numpy()
    group_ids = sorted(int(g) for g in np.unique(gid) if g >= 0)
    na, nd, ns = map(np.array, zip(*[_counts(matrix[gid == g]) for g in group_ids], strict=True)) if group_ids \
        else (np.zeros((0, len(order))),) * 3
    reports = []
    for i, g in enumerate(group_ids):
        rest = [j for j in range(len(group_ids)) if j != i]
        ra_n, rd_n, rs_n = na[rest].sum(0), nd[rest].sum(0), ns[rest].sum(0)
        stats = {
            "na": na[i], "nd": nd[i], "ns": ns[i],
            "pa": (na[i] + 1) / (ns[i] + 2), "pd": (nd[i] + 1) / (ns[i] + 2),
            "pat": prop_test(na[i], ns[i]), "pdt": prop_test(nd[i], ns[i]),
            "ra": (na[i] + 1) / (ns[i] + 2) / ((ra_n + 1) / (rs_n + 2)),
            "rd": (nd[i] + 1) / (ns[i] + 2) / ((rd_n + 1) / (rs_n + 2)),
            "rat": two_prop_test(na[i], ra_n, ns[i], rs_n), "rdt": two_prop_test(nd[i], rd_n, ns[i], rs_n),
            "rest_a": ra_n, "rest_d": rd_n, "rest_s": rs_n,
        }
        chosen = _select(stats, [j for j in range(len(order)) if keep[j]])
        statements = tuple(_finalized(order[j], stats, j, best_agree=flag) for j, flag in chosen)
        reports.append(GroupReport(group=g, label=group_label(i), size=int(np.sum(gid == g)), statements=statements))
    consensus = _consensus(matrix, order, keep)
    gic, by_group = _group_informed_consensus(na, ns, group_ids)
    gic_rows = sorted((j for j in range(len(order)) if keep[j] and len(group_ids)), key=lambda j: -gic[j])
    return PolisReport(
        k=len(group_ids), n_participants=len(people), n_grouped=int(np.sum(gid >= 0)), groups=tuple(reports),
        consensus_agree=consensus["agree"], consensus_disagree=consensus["disagree"],
        group_informed_consensus=tuple(
            GroupConsensus(order[j], float(gic[j]), {group_label(i): float(by_group[i, j]) for i in range(len(group_ids))})
            for j in gic_rows[:top_consensus]),
        gic_by_statement={order[j]: float(gic[j]) for j in range(len(order)) if keep[j] and len(group_ids)},
    )


def _side(stats: dict, j: int) -> tuple[str, ...]:
    return ("agree", "na", "pa", "pat", "ra", "rat", "rest_a") if stats["rat"][j] > stats["rdt"][j] \
        else ("disagree", "nd", "pd", "pdt", "rd", "rdt", "rest_d")


def _finalized(statement_id: str, stats: dict, j: int, *, best_agree: bool) -> RepresentativeStatement:
    """repness.clj finalize-cmt-stats: the side with the larger two-proportion test."""
    side, n, p, pt, r, rt, rest = _side(stats, j)
    ns, rest_s = int(stats["ns"][j]), int(stats["rest_s"][j])
    return RepresentativeStatement(
        statement_id=statement_id, repful=side, n_success=int(stats[n][j]), n_trials=ns,
        p_success=float(stats[p][j]), p_test=float(stats[pt][j]), repness=float(stats[r][j]),
        repness_test=float(stats[rt][j]), group_share=float(stats[n][j] / ns) if ns else 0.0,
        others_share=float(stats[rest][j] / rest_s) if rest_s else 0.0,
        significant=bool(_passes(stats, j)), best_agree=best_agree)


def _passes(stats: dict, j: int) -> bool:
    """repness.clj passes-by-test?"""
    return bool((stats["rat"][j] > Z_90 and stats["pat"][j] > Z_90) or (stats["rdt"][j] > Z_90 and stats["pdt"][j] > Z_90))


def _metric(stats: dict, j: int) -> float:
    _, _, p, pt, r, rt, _ = _side(stats, j)
    return float(stats[r][j] * stats[rt][j] * stats[p][j] * stats[pt][j])


def _select(stats: dict, columns: list[int]) -> list[tuple[int, bool]]:
    """repness.clj select-rep-comments for one group: (column, is best-agree) pairs in report order."""
    sufficient: list[int] = []
    best: int | None = None
    best_agree: int | None = None
    for j in columns:
        if _passes(stats, j):
            sufficient.append(j)
        if not sufficient and (best is None or max(stats["rat"][j], stats["rdt"][j]) > _side_test(stats, best)):
            best = j
        if _beats_best_agree(stats, j, best_agree):
            best_agree = j
    if not sufficient:
        return [(best_agree, True)] if best_agree is not None else ([(best, False)] if best is not None else [])
    ranked = sorted((j for j in sufficient if j != best_agree), key=lambda j: -_metric(stats, j))
    picked = ([(best_agree, True)] if best_agree is not None else []) + [(j, False) for j in ranked]
    picked = picked[:PICK_MAX]
    return [p for p in picked if _side(stats, p[0])[0] == "agree"] + [p for p in picked if _side(stats, p[0])[0] != "agree"]


def _side_test(stats: dict, j: int) -> float:
    return float(np.float32(stats[_side(stats, j)[5]][j]))  # finalize-cmt-stats keeps the test as a float


def _beats_best_agree(stats: dict, j: int, best: int | None) -> bool:
    """repness.clj beats-best-agr?"""
    na, nd, ra, rat, pa, pat = (stats[key][j] for key in ("na", "nd", "ra", "rat", "pa", "pat"))
    if na == 0 and nd == 0:
        return False
    if best is not None and stats["ra"][best] > 1.0:
        return bool(ra * rat * pa * pat > stats["ra"][best] * stats["rat"][best] * stats["pa"][best] * stats["pat"][best])
    if best is not None:
        return bool(pa * pat > stats["pa"][best] * stats["pat"][best])
    return bool(pat > Z_90 or (ra > 1.0 and pa > 0.5))


def _consensus(matrix: np.ndarray, order: list[str], keep: np.ndarray) -> dict[str, tuple[ConsensusStatement, ...]]:
    """repness.clj consensus-stats + select-consensus-comments, over every participant."""
    na, nd, ns = _counts(matrix)
    out = {}
    for direction, n in (("agree", na), ("disagree", nd)):
        p = (n + 1) / (ns + 2)
        z = prop_test(n, ns)
        candidates = [j for j in range(len(order)) if keep[j] and p[j] > 0.5 and z[j] > Z_90]
        candidates.sort(key=lambda j: -(p[j] * z[j]))
        out[direction] = tuple(ConsensusStatement(order[j], direction, int(n[j]), int(ns[j]), float(p[j]), float(z[j]),
                                                  float(n[j] / ns[j]) if ns[j] else 0.0)
                               for j in candidates[:PICK_MAX])
    return out


def _group_informed_consensus(na: np.ndarray, ns: np.ndarray, group_ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """conversation.clj group-aware-consensus: prod over groups of (A + 1)/(S + 2); and agree shares."""
    if not group_ids:
        return np.zeros(na.shape[1] if na.ndim == 2 else 0), np.zeros((0, 0))
    probs = (na + 1.0) / (ns + 2.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = np.where(ns > 0, na / np.maximum(ns, 1), np.nan)
    return probs.prod(axis=0), shares
