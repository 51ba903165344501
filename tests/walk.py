"""A participant's submissions through the store's use-case methods, for tests that need a participant
at some point of the flow (a confirmed card, a planned round) without driving the page."""

from __future__ import annotations

from workbench.models import ValuesCardIn, validated

QUESTION = "demo/homework"
CARD = {"title": "Listening Before Pushing", "description": "Understanding the refusal first.",
        "policies": ["MOMENTS when the child asks their own questions", "SIGNS of exhaustion after school"],
        "question_id": QUESTION, "contexts": ["When a child's wellbeing is at stake"]}


def card_in(**changes) -> ValuesCardIn:
    return validated(ValuesCardIn, {**CARD, **changes})


def to_question(store, pid: int, question: str = QUESTION, *, mode: str = "guided") -> int:
    """Consent, about you, and the question chosen; returns the interview id."""
    store.give_consent(pid)
    store.record_about_you(pid, {"age_band": "30-44", "political_leaning": "Centre"})
    return store.choose_question(pid, question, mode=mode)


def to_card(store, pid: int, card: ValuesCardIn | None = None) -> tuple[int, int]:
    """A participant with a confirmed card: (interview id, card id)."""
    card = card or card_in()
    interview = to_question(store, pid, card.question_id)
    answers = {"title": card.title, "description": card.description, "policies": list(card.policies),
               "contexts": list(card.contexts)}
    store.save_interview_stage(pid, interview, "contexts", answers)
    return interview, store.confirm_card(pid, interview, card, answers)


def demo_with_invite(target, spec) -> tuple[int, str]:
    """The demo deliberation with 12 simulated participants into `target` (a DuckDB file or a PostgreSQL
    URL) and one invited participant: (participant id, token). Closed again: a server will open it."""
    from workbench import config
    from workbench.demo import load_world, simulate
    from workbench.store import Store

    store = Store(target)
    try:
        store.import_bundle(simulate(spec, load_world(config.DATA / "demo_values.yaml"), 12, seed=1))
        (pid, token), = store.create_invites("demo", 1)
    finally:
        store.close()
    return pid, token


def same_value_round(store, pid: int, answers: list[tuple[int, int, str]]) -> list[int]:
    """The participant's "Are these two the same value?" round planned with these card pairs (card_a,
    card_b, answer) and answered through the use-case, in order; returns the answers' ids."""
    store.plan_round(pid, "same_value", [{"card_a": int(a), "card_b": int(b)} for a, b, _ in answers])
    return [store.answer_same_value(pid, item, answer) for item, (_, _, answer) in enumerate(answers)]
