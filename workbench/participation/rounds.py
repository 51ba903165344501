"""The judging rounds as the participant meets them: which values they are about, the participant's
plan (chosen once and stored), and the next item to ask.

A plan is made the first time a round is shown (workbench.participation.planning; for the optional
"same value?" round, the candidate merges the latest clustering is least sure of,
`analyses.merge_questions`) and stored with `store.plan_round`, whose first plan wins, so a refresh or a
second tab asks the same questions. An item is asked until the participant answers it
(`store.answer_wiser`, `endorse`, `compare`, `answer_same_value` take its index); an item whose values
(or cards) have since left the round (merged away, hidden) is skipped. Renders nothing and writes only
the plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from .. import analyses
from ..models import Rounds
from ..store import Store
from .flow import Flow
from .planning import plan_compare, plan_endorse, plan_wiser


@dataclass(frozen=True)
class RoundItem:
    """One question of a round: `index` in the stored plan (what the store's answer methods take),
    `number` of `total` for the participant, and the plan's `entry` (wiser: from_id, to_id, context;
    endorse: a value's store id; compare: item_a, item_b as public ids; same: card_a, card_b, two cards'
    store ids)."""

    round: str
    index: int
    number: int
    total: int
    entry: Any


def round_values(store: Store, flow: Flow) -> pd.DataFrame:
    """The values the rounds ask about: the participant's question's values that have member cards (or
    came with imported data); `item` is how comparisons name them (their public id)."""
    values = analyses.value_table(store, flow.deliberation["id"], question_id=flow.question_id)
    values = values[(values["members"] > 0) | values["origin"].isin(["import", "demo"])].reset_index(drop=True)
    return values.assign(item=values["public_id"])


def round_cards(store: Store, flow: Flow) -> pd.DataFrame:
    """The cards the "same value?" round can show: every active card of the deliberation (a candidate
    merge may pair cards of different questions)."""
    return store.cards(flow.deliberation["id"])


def _make_plan(store: Store, flow: Flow, round_name: str, values: pd.DataFrame) -> list:
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


def _askable(round_name: str, entry: Any, values: pd.DataFrame) -> bool:
    if round_name == "wiser":
        return {int(entry["from_id"]), int(entry["to_id"])} <= set(map(int, values["id"]))
    if round_name == "endorse":
        return int(entry) in set(map(int, values["id"]))
    if round_name == "same_value":  # `values` are the round's cards
        return {int(entry["card_a"]), int(entry["card_b"])} <= set(map(int, values["id"]))
    return {str(entry["item_a"]), str(entry["item_b"])} <= set(values["item"])


def next_item(store: Store, flow: Flow, round_name: str, values: pd.DataFrame) -> RoundItem | None:
    """The first unanswered, still askable item of the participant's plan for the round (making and
    storing the plan the first time); None when there is nothing (more) to ask. `values` are what the
    round shows: `round_values`, or `round_cards` for the "same value?" round."""
    plan = flow.plans.get(round_name)
    if plan is None:
        plan = store.plan_round(flow.participant_id, round_name, _make_plan(store, flow, round_name, values))
    answered = store.answered_items(flow.participant_id, round_name)
    for index, entry in enumerate(plan):
        if index not in answered and _askable(round_name, entry, values):
            return RoundItem(round_name, index, len(answered) + 1, len(plan), entry)
    return None
