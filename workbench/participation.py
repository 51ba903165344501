"""A participant's way through a deliberation: who the visitor is, where they are, what to ask next.

`resolve_visitor` turns an invite link (or an open sign-up link) into a participant; `flow`
derives the participant's current step from what the store holds (every step is saved when
submitted, so a refresh or a new device resumes exactly there); the `plan_*` functions choose the
judging questions of each round. Planning is pure and seeded; the page only renders and records.
Never renders anything and never writes SQL.
"""

from __future__ import annotations

import itertools
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from .store import NotFound, Store, utcnow

log = logging.getLogger("workbench.participation")

#: The participant's steps, in order. Rounds with nothing to ask are skipped.
STEPS = ("consent", "demographics", "question", "interview", "wiser", "endorse", "compare", "done")
STEP_TITLES = {
    "consent": "Welcome", "demographics": "About you", "question": "Choose a question",
    "interview": "Your values card", "wiser": "Who became wiser?", "endorse": "Other people's values",
    "compare": "Which should guide the answer?", "done": "Thank you",
}
ROUNDS = ("wiser", "endorse", "compare")

INVALID_LINK = ("This link is not valid. It may have been mistyped or withdrawn. "
                "Please use the link you were sent, or ask the organisers for a new one.")


@dataclass(frozen=True)
class Visitor:
    kind: str  # participant | denied | anonymous
    participant_id: int | None = None
    new_token: str | None = None
    message: str = ""


@dataclass(frozen=True)
class InviteGuessPolicy:
    """How refused invite links are slowed down, so guessing tokens gets slower the more it is tried.

    Every refused link pauses `failure_pause` seconds before the answer. Past `free_per_client`
    refusals for one browser session, or `free_overall` refusals across all sessions, within `window`,
    the pause doubles with each further refusal, up to `max_pause`. A valid link is never paused, so a
    guesser slows down the guesser and people who mistype, not those whose link works. (Tokens have
    128 bits: the slow-down and its log warnings are for noticing, the token length is the defence.)
    """

    window: timedelta = timedelta(minutes=1)
    failure_pause: float = 0.5
    free_per_client: int = 3
    free_overall: int = 30
    max_pause: float = 10.0

    def pause_for(self, by_client: int, overall: int) -> float:
        """Seconds to pause after a refusal, given the refusals in the window (this one included)."""
        excess = max(by_client - self.free_per_client, overall - self.free_overall, 0)
        return min(self.failure_pause * 2.0 ** min(excess, 32), self.max_pause)


INVITE_POLICY = InviteGuessPolicy()


def resolve_visitor(store: Store, query: Mapping[str, str], *, client: str | None = None,
                    policy: InviteGuessPolicy = INVITE_POLICY, clock: Callable[[], datetime] = utcnow,
                    sleep: Callable[[float], None] = time.sleep) -> Visitor:
    """Who is looking, from the page's query parameters (`invite=TOKEN` or `join=DELIBERATION`).

    `client` names the browser session (e.g. Streamlit's session id) so refusals can be counted per
    session as well as overall; `clock` and `sleep` are there for tests.
    """
    token = query.get("invite")
    if token:
        found = store.participant_by_token(str(token))
        if found is None:
            now = clock()
            store.record_invite_refusal(client, at=now)
            overall, by_client = store.invite_refusals(now - policy.window, client=client)
            pause = policy.pause_for(by_client, overall)
            # Never log the token (nor its hash): a log reader could use it.
            log.warning("invite link refused (unknown or revoked token); %d refusals in the last %d s overall, "
                        "%d from this browser session; pausing %.1f s", overall, policy.window.total_seconds(),
                        by_client, pause)
            sleep(pause)
            return Visitor("denied", message=INVALID_LINK)
        return Visitor("participant", participant_id=found["id"])
    join = query.get("join")
    if join:
        try:
            deliberation = store.deliberation(str(join))
        except NotFound:
            return Visitor("denied", message=INVALID_LINK)
        if not deliberation["open_signup"]:
            return Visitor("denied", message="This deliberation takes part by invitation only.")
        (pid, new_token), = store.create_invites(deliberation["id"], 1, signup="open")
        return Visitor("participant", participant_id=pid, new_token=new_token)
    return Visitor("anonymous")


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

    @property
    def rounds(self) -> dict[str, int]:
        return self.deliberation["settings"].get("rounds", {})

    def step_number(self) -> tuple[int, int]:
        return STEPS.index(self.step) + 1, len(STEPS)


def flow(store: Store, participant_id: int) -> Flow:
    participant = store.participant(participant_id)
    deliberation = store.deliberation(participant["deliberation_id"])
    done: set[str] = set()
    question_id = card_id = None
    plans: dict[str, list] = {}
    for event in store.steps(participant_id):
        step, payload = event["step"], event["payload"] or {}
        if step.startswith("plan:"):
            plans[step.removeprefix("plan:")] = payload.get("items", [])
            continue
        done.add(step)
        if step == "question":
            question_id = payload.get("question_id")
        if step == "interview":
            card_id = payload.get("card_id")
    interview = store.current_interview(participant_id)
    interview_id = int(interview["id"]) if interview is not None else None
    step = next((s for s in STEPS if s not in done), "done")
    return Flow(participant_id, deliberation, step, frozenset(done), question_id, interview_id, card_id, plans)


# -- choosing what to ask --------------------------------------------------------------------

_WORD = re.compile(r"[a-z]{3,}")


def _words(*texts) -> set[str]:
    out: set[str] = set()
    for t in texts:
        if isinstance(t, list | tuple | np.ndarray):
            out |= _words(*t)
        elif isinstance(t, str):
            out |= set(_WORD.findall(t.lower()))
    return out


def similarity(a: pd.Series, b: pd.Series) -> float:
    """Word overlap (Jaccard) of two values' title, description and policies: cheap, offline, stable."""
    wa, wb = _words(a["title"], a["description"], a["policies"]), _words(b["title"], b["description"], b["policies"])
    return len(wa & wb) / max(len(wa | wb), 1)


def plan_wiser(values: pd.DataFrame, answered: pd.DataFrame, n: int, *, seed: int,
               question_contexts: list[str]) -> list[dict]:
    """N wiser-than questions: pairs of values that share a context, near in meaning but distinct.

    `values` has id, title, description, policies, contexts; `answered` has from_id, to_id, context
    and one row per answer so far (all participants). Under-answered directed pairs come first,
    then the more similar pairs (a closer pair is a more informative question), ties broken by seed.
    Each pair is asked in the direction that has fewer answers, so both directions get asked.
    """
    if n <= 0 or len(values) < 2:
        return []
    rng = np.random.default_rng(seed)
    counts = answered.groupby(["from_id", "to_id", "context"]).size().to_dict() if len(answered) else {}
    rows = list(values.itertuples(index=False))
    candidates = []
    for a, b in itertools.combinations(range(len(rows)), 2):
        va, vb = values.iloc[a], values.iloc[b]
        shared = sorted(set(_contexts(va, question_contexts)) & set(_contexts(vb, question_contexts)))
        if not shared:
            continue
        sim = similarity(va, vb)
        if sim >= 0.9:  # practically the same value: nothing to learn from asking
            continue
        for context in shared:
            fwd = counts.get((int(va["id"]), int(vb["id"]), context), 0)
            back = counts.get((int(vb["id"]), int(va["id"]), context), 0)
            src, dst = (va, vb) if fwd <= back or (fwd == back and rng.random() < 0.5) else (vb, va)
            candidates.append((min(fwd, back), -sim, rng.random(), int(src["id"]), int(dst["id"]), context))
    candidates.sort()
    plan, used = [], set()
    for _, _, _, src, dst, context in candidates:
        key = frozenset((src, dst))
        if key in used:  # one question per pair, in the under-answered context
            continue
        used.add(key)
        plan.append({"from_id": src, "to_id": dst, "context": context})
        if len(plan) == n:
            break
    return plan


def _contexts(value: pd.Series, fallback: list[str]) -> list[str]:
    ctx = value.get("contexts")
    ctx = list(ctx) if ctx is not None and len(ctx) else []
    return ctx or list(fallback)


def plan_endorse(values: pd.DataFrame, counts: Mapping[str, int], n: int, *, seed: int,
                 exclude: set[int] = frozenset()) -> list[int]:
    """N values to agree/disagree with, those with the fewest answers first (ties broken by seed)."""
    if n <= 0 or values.empty:
        return []
    rng = np.random.default_rng(seed)
    order = sorted((counts.get(f"v{int(v)}", 0), rng.random(), int(v)) for v in values["id"] if int(v) not in exclude)
    return [v for _, _, v in order[:n]]


def plan_compare(values: pd.DataFrame, pair_counts: pd.DataFrame, n: int, *, seed: int,
                 strengths: Mapping[str, float] | None = None) -> list[dict]:
    """N pairs for "which should guide the answer?", informative for the current fit.

    Values are named by their `item` column (the id comparisons record: exports' value id).

    Coverage first (pairs with the fewest answers), then the pairs whose order the pooled fit is
    least sure of (smallest strength gap), ties broken by seed. No value appears twice in a row.
    """
    if n <= 0 or len(values) < 2:
        return []
    rng = np.random.default_rng(seed)
    counts = {}
    if len(pair_counts):
        counts = {(str(r.a), str(r.b)): int(r.answers) for r in pair_counts.itertuples(index=False)}
    strengths = strengths or {}
    ids = [str(v) for v in values["item"]]
    scored = []
    for a, b in itertools.combinations(ids, 2):
        lo, hi = sorted((a, b))
        gap = abs(strengths.get(a, 0.0) - strengths.get(b, 0.0))
        scored.append((counts.get((lo, hi), 0), round(gap, 3), rng.random(), a, b))
    scored.sort()
    plan: list[dict] = []
    last: set[str] = set()
    pool = scored[:]
    while pool and len(plan) < n:
        pick = next((s for s in pool if not ({s[3], s[4]} & last)), pool[0])
        pool.remove(pick)
        a, b = (pick[3], pick[4]) if rng.random() < 0.5 else (pick[4], pick[3])
        plan.append({"item_a": a, "item_b": b})
        last = {a, b}
    return plan
