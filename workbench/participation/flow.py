"""Where a participant is: their step, derived from what the store holds.

Every submission is stored with the step it completes (workbench.store.participation), so `flow`
only reads: a refresh or a new device resumes exactly where the participant was. Never writes and
never renders.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..store import Store
from ..store.participation import ROUNDS as ROUNDS  # the judging rounds, in order

#: The participant's steps, in order. Rounds with nothing to ask are skipped. "survey" shows where the
#: participant's value sits and asks the closing survey (held back while the deliberation's closing is not open).
STEPS = ("consent", "demographics", "question", "interview", "wiser", "endorse", "compare", "same_value", "survey",
         "done")
STEP_TITLES = {
    "consent": "Welcome", "demographics": "About you", "question": "Choose a question",
    "interview": "Your values card", "wiser": "Who became wiser?", "endorse": "Other people's values",
    "compare": "Which should guide the answer?", "same_value": "Are these the same value?", "survey": "Where you sit",
    "done": "Thank you",
}


@dataclass(frozen=True)
class Flow:
    """Where a participant is."""

    participant_id: int
    deliberation: dict
    step: str
    done_steps: frozenset[str]
    question_id: str | None = None
    interview_id: int | None = None
    card_id: int | None = None
    plans: dict = field(default_factory=dict)
    question: dict | None = None  # the chosen question: id, title, prompt
    interview: dict | None = None  # the latest interview: id, question_id, mode, created_at

    @property
    def rounds(self) -> dict[str, int]:
        return self.deliberation["settings"].get("rounds", {})

    def step_number(self) -> tuple[int, int]:
        return STEPS.index(self.step) + 1, len(STEPS)


def flow(store: Store, participant_id: int) -> Flow:
    state = store.participant_state(participant_id)  # one unit of work: a page run is a click
    done: set[str] = set()
    question_id = card_id = None
    plans: dict[str, list] = {}
    for event in state.steps:
        step, payload = event["step"], event["payload"] or {}
        if step.startswith("plan:"):
            plans[step.removeprefix("plan:")] = payload.get("items", [])
            continue
        done.add(step)
        if step == "question":
            question_id = payload.get("question_id")
        if step == "interview":
            card_id = payload.get("card_id")
    interview_id = int(state.interview["id"]) if state.interview is not None else None
    step = next((s for s in STEPS if s not in done), "done")
    return Flow(participant_id, state.deliberation, step, frozenset(done), question_id, interview_id, card_id,
                plans, state.question, state.interview)
