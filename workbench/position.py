"""Where a participant sits: their value in the moral graph of their question, and their opinion group.

Pure: a `MoralGraph` (values named by public ids), the value's id and, when opinion groups were
found, the stored Polis report and opinion map go in; a frozen `Position` comes out, with the
sentences the participant page shows (`Position.sentences`). Never reads the store, never renders.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from .moralgraph import MoralGraph


@dataclass(frozen=True)
class Neighbour:
    """A value joined to the participant's by a kept wiser-than edge."""

    value_id: str
    title: str
    contexts: tuple[str, ...]
    likelihood: float  # the edge's wiser likelihood (share of answers saying "wiser", less those saying the reverse)


@dataclass(frozen=True)
class GroupPlace:
    """The participant's opinion group: its label, size, and what set it apart (statement texts)."""

    label: str
    size: int
    n_groups: int
    agreed: tuple[str, ...] = ()
    disagreed: tuple[str, ...] = ()


@dataclass(frozen=True)
class Position:
    value_id: str
    title: str
    rank: int | None  # 1 = the most-wise-judged value of the graph; None when the value is on no kept edge
    ranked: int  # values in the graph
    wiser_than_yours: tuple[Neighbour, ...] = ()
    yours_wiser_than: tuple[Neighbour, ...] = ()
    group: GroupPlace | None = None

    def sentences(self) -> tuple[str, ...]:
        """The position in plain words, one sentence per fact."""
        out = []
        if self.rank is None:
            out.append(f"“{self.title}” is not linked to other values in the graph yet: too few people have"
                       " judged it against another value for a clear answer.")
        else:
            out.append(f"“{self.title}” comes {_ordinal(self.rank)} of the {self.ranked} values in the graph,"
                       " ranked by how often people judged moving towards it to be wiser.")
        if self.yours_wiser_than:
            out.append("People judged your value wiser than: " + _listed(self.yours_wiser_than) + ".")
        if self.wiser_than_yours:
            out.append("People judged these values wiser than yours: " + _listed(self.wiser_than_yours) + ".")
        if self.rank is not None and not (self.yours_wiser_than or self.wiser_than_yours):
            out.append("No single value was clearly judged wiser or less wise than yours.")
        if self.group is not None:
            g = self.group
            text = (f"From how you voted, you are in opinion group {g.label}, one of {g.n_groups} groups, with"
                    f" {g.size - 1} other {'person' if g.size == 2 else 'people'}.")
            if g.agreed:
                text += " Your group stood out for agreeing with " + _quoted(g.agreed) + "."
            if g.disagreed:
                text += " It stood out for disagreeing with " + _quoted(g.disagreed) + "."
            out.append(text)
        return tuple(out)


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _listed(neighbours: tuple[Neighbour, ...]) -> str:
    return "; ".join(f"“{n.title}” ({', '.join(n.contexts).lower() or 'all situations'})" for n in neighbours)


def _quoted(texts: tuple[str, ...]) -> str:
    return "; ".join(f"“{t}”" for t in texts)


def where_you_sit(graph: MoralGraph, value_id: str, titles: Mapping[str, str], *,
                  group: GroupPlace | None = None) -> Position:
    """The value's rank in `graph` and its kept edges in both directions (strongest first)."""
    value_id = str(value_id)
    ranked = [str(v) for v in graph.values["id"]]
    edges = graph.edges

    def neighbours(mine: str, other: str) -> tuple[Neighbour, ...]:
        rows = edges[edges[mine].astype(str) == value_id].sort_values("wiser_likelihood", ascending=False)
        return tuple(Neighbour(str(r[other]), titles.get(str(r[other]), str(r[other])), tuple(r["contexts"]),
                               float(r["wiser_likelihood"])) for _, r in rows.iterrows())

    return Position(value_id, titles.get(value_id, value_id),
                    ranked.index(value_id) + 1 if value_id in ranked else None, len(ranked),
                    wiser_than_yours=neighbours("source", "wiser"), yours_wiser_than=neighbours("wiser", "source"),
                    group=group)


def group_place(polis_report: Mapping | None, opinion_map: pd.DataFrame | None, participant: str) -> GroupPlace | None:
    """The participant's (public id) opinion group from a stored Polis report and opinion map; None when
    they were not placed in a group."""
    if not polis_report or opinion_map is None or opinion_map.empty:
        return None
    mine = opinion_map[opinion_map["participant_id"].astype(str) == str(participant)]
    if mine.empty:
        return None
    group = int(mine.iloc[0]["group"])
    found = next((g for g in polis_report.get("groups", []) if int(g["group"]) == group), None)
    if found is None:
        return None
    statements = [s for s in found["statements"] if s.get("significant")] or found["statements"][:2]
    text = [(s["repful"], s.get("text") or s["statement_id"]) for s in statements[:3]]
    return GroupPlace(found["label"], int(found["size"]), len(polis_report["groups"]),
                      tuple(t for side, t in text if side == "agree"),
                      tuple(t for side, t in text if side == "disagree"))
