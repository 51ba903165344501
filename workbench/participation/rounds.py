"""The judging rounds as the participant meets them: which values they are about, the participant's
plan (chosen once and stored), and the next item to ask.

A plan is made the first time a round is shown (workbench.participation.planning; for the optional
"same value?" round, the candidate merges the latest clustering is least sure of,
`analyses.merge_questions`) and stored with `store.plan_round`, whose first plan wins, so a refresh or a
second tab asks the same questions. An item is asked until the participant answers it
(`store.answer_wiser`, `endorse`, `compare`, `answer_same_value` take its index); an item whose values
(or cards) have since left the round (merged away, hidden) is skipped. Renders nothing and writes only
the plan. A judging click reads only what it shows (`next_item`); the whole value table is read once
per round, to plan it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import pandas as pd

from .. import analyses, ids
from ..models import Rounds
from ..store import Store
from .flow import Flow
from .planning import plan_compare, plan_endorse, plan_wiser


@dataclass(frozen=True)
class RoundItem:
    """One question of a round: `index` in the stored plan (what the store's answer methods take),
    `number` of `total` for the participant, the plan's `entry` (wiser: from_id, to_id, context;
    endorse: a value's store id; compare: item_a, item_b as public ids; same_value: card_a, card_b, two
    cards' store ids) and the `values` it shows (wiser: before, after; endorse: the value; compare: a, b,
    each a dict with id, source_id, title, description and policies; same_value: the two cards' rows)."""

    round: str
    index: int
    number: int
    total: int
    entry: Any
    values: tuple[dict, ...] = ()


def round_values(store: Store, flow: Flow) -> pd.DataFrame:
    """The values the rounds ask about (`store.round_value_keys`), in full (what planning reads); `item` is
    how comparisons name them (their public id)."""
    values = analyses.value_table(store, flow.deliberation["id"], question_id=flow.question_id)
    asked = {i for i, _ in store.round_value_keys(flow.deliberation["id"], flow.question_id)}
    values = values[values["id"].isin(asked)].reset_index(drop=True)
    return values.assign(item=values["public_id"])


def _make_plan(store: Store, flow: Flow, round_name: str, values: pd.DataFrame | None) -> list:
    did, pid = flow.deliberation["id"], flow.participant_id
    # A deliberation saved before a round existed gets the round's default size.
    n = flow.rounds.get(round_name, Rounds.model_fields[round_name].default)
    if round_name == "same_value":
        pairs = analyses.merge_questions(store, did, participant_id=pid, limit=n)
        return [{"card_a": int(a), "card_b": int(b)} for a, b in zip(pairs["card_a"], pairs["card_b"], strict=True)]
    if round_name == "wiser":
        contexts = list(store.contexts(did, question_id=flow.question_id)["name"])
        return plan_wiser(values, store.wiser_answers(did), n, seed=pid, question_contexts=contexts)
    if round_name == "endorse":
        own = store.card(flow.card_id)["canonical_id"] if flow.card_id else None
        exclude = {int(own)} if own is not None and not pd.isna(own) else set()
        return plan_endorse(values, store.endorsement_counts(did), n, seed=pid, exclude=exclude)
    strengths = analyses.pooled_strengths(store, did, question_id=flow.question_id)
    return plan_compare(values, store.comparison_pair_counts(did), n, seed=pid, strengths=strengths)


def _shown(round_name: str, entry: Any, by_public: dict[str, int], asked: Collection[int]) -> list[int] | None:
    """The store ids of the values an item shows, in order; None when one has left the round."""
    if round_name == "wiser":
        shown = [int(entry["from_id"]), int(entry["to_id"])]
    elif round_name == "endorse":
        shown = [int(entry)]
    else:
        shown = [by_public.get(str(entry["item_a"])), by_public.get(str(entry["item_b"]))]
    return shown if all(v in asked for v in shown) else None


def next_item(store: Store, flow: Flow, round_name: str) -> RoundItem | None:
    """The first unanswered, still askable item of the participant's plan for the round, with the values
    it shows (making and storing the plan the first time); None when there is nothing (more) to ask.

    After the plan exists this reads only the answered items and, of the values its unanswered items
    name, those still in the round (one look-up): never the whole value table.
    """
    plan = flow.plans.get(round_name)
    if plan is None:
        values = None if round_name == "same_value" else round_values(store, flow)  # pairs come from dedup
        plan = store.plan_round(flow.participant_id, round_name, _make_plan(store, flow, round_name, values))
    answered = store.answered_items(flow.participant_id, round_name)
    if len(answered) >= len(plan):
        return None
    if round_name == "same_value":
        return _next_pair(store, flow, plan, answered)
    waiting = [(index, entry) for index, entry in enumerate(plan) if index not in answered]
    store_ids, source_ids = _planned_values(round_name, [entry for _, entry in waiting])
    askable = store.askable_values(flow.deliberation["id"], flow.question_id, value_ids=store_ids,
                                   source_ids=source_ids)
    found = {v["id"]: v for v in askable}
    by_public = {ids.public_id("value", v["id"], v["source_id"]): v["id"] for v in askable}
    for index, entry in waiting:
        shown = _shown(round_name, entry, by_public, found.keys())
        if shown is not None:
            return RoundItem(round_name, index, len(answered) + 1, len(plan), entry,
                             tuple(found[v] for v in shown))
    return None


def _planned_values(round_name: str, entries: list) -> tuple[set[int], set[str]]:
    """The values plan entries name: store ids (wiser, endorse), and for compare's public ids the store id
    of a workbench-made value ("v12") or the source id of an imported one."""
    if round_name == "wiser":
        return {int(e[k]) for e in entries for k in ("from_id", "to_id")}, set()
    if round_name == "endorse":
        return {int(e) for e in entries}, set()
    public = {str(e[k]) for e in entries for k in ("item_a", "item_b")}
    made = {p for p in public if ids.has_workbench_shape("value", p)}
    return {int(p[1:]) for p in made}, public - made


def _next_pair(store: Store, flow: Flow, plan: list, answered: set[int]) -> RoundItem | None:
    """The "same value?" round's next pair whose two cards are both still active, with their rows. Reads
    only the cards of the unanswered pairs (a candidate merge may pair cards of different questions)."""
    waiting = [(index, (int(entry["card_a"]), int(entry["card_b"])), entry)
               for index, entry in enumerate(plan) if index not in answered]
    cards = store.cards(flow.deliberation["id"], card_ids=sorted({c for _, pair, _ in waiting for c in pair}))
    by_id = {int(row["id"]): row for row in cards.to_dict("records")}  # active cards only
    for index, pair, entry in waiting:
        if all(card in by_id for card in pair):
            return RoundItem("same_value", index, len(answered) + 1, len(plan), entry,
                             tuple(by_id[card] for card in pair))
    return None
