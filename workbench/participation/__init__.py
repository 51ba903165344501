"""A participant's way through a deliberation: who the visitor is, where they are, what to ask next.

- `visitor`: an invite link (or an open sign-up link) becomes a participant (`resolve_visitor`);
- `flow`: the participant's current step, read from what the store holds (`flow`);
- `planning`: which judging questions to ask (pure, seeded);
- `rounds`: the participant's stored plan for each round and its next item.

Each submission is one store method that writes the answer and the step it completes in one
transaction and returns the stored result when repeated (workbench/store/participation.py): the
participant page renders a step and calls exactly one of them per submission. This package never
renders anything and holds no SQL.
"""

from __future__ import annotations

from .flow import ROUNDS, STEP_TITLES, STEPS, Flow, flow
from .planning import plan_compare, plan_endorse, plan_wiser, similarity
from .rounds import RoundItem, next_item, round_values
from .visitor import INVALID_LINK, INVITE_POLICY, InviteGuessPolicy, Visitor, resolve_visitor

__all__ = [
    "INVALID_LINK", "INVITE_POLICY", "ROUNDS", "STEPS", "STEP_TITLES", "Flow", "InviteGuessPolicy", "RoundItem",
    "Visitor", "flow", "next_item", "plan_compare", "plan_endorse", "plan_wiser", "resolve_visitor",
    "round_values", "similarity",
]
