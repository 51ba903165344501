"""A participant's submissions, one store method each: the answer and the step it completes, together.

Each use-case (`sign_up` by the open link, `give_consent`, `record_about_you`, `choose_question`,
`save_interview_stage`, `confirm_card`, `answer_wiser`, `endorse`, `compare`, `answer_same_value`, `finish_round`,
`answer_survey`, and the LLM interview's turns) is one transaction: everything it writes is written, or nothing is. Each but
`sign_up` (every agreeing visitor is someone new; the page then swaps the join link for the
participant's own invite link, so a refresh resumes) is idempotent: a repeated
submission (a double click, a refresh that resends, a retry after a crash, a second tab) finds what
the first one stored, returns it and writes nothing. Judgements answer an item of the participant's
stored plan for the round and carry the key `app:<participant>:<round>:<item>` in `source_key`,
whose unique index makes a duplicate impossible. Every other submission first takes its
participant's row in `participant_activity`, so two of them at once conflict and the retried one
sees the other's result (DuckDB's optimistic concurrency; `StoreCore._write` retries).
All SQL for these lives here; the flow they serve (what to ask next) is `workbench.participation`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from ..errors import Conflict, InputError, NotFound
from ..interview import ANSWER_FIELDS, STAGE_KEYS, GuidedAnswers
from ..models import (
    AttributeIn,
    ComparisonIn,
    EndorsementIn,
    MergeAnswerIn,
    SignupLimits,
    SurveyAnswersIn,
    ValuesCardIn,
    WiserAnswerIn,
    validated,
)
from .core import StoreCore, as_timestamp, from_json, to_json, utcnow
from .deliberations import hash_token, new_token

#: The judging rounds, in order; `same_value` ("Are these two the same value?") is optional and skippable.
ROUNDS = ("wiser", "endorse", "compare", "same_value")
#: What an interview stores per stage: the guided stages, a draft typed but not yet submitted.
INTERVIEW_STAGES = ("draft", *STAGE_KEYS)
INTERVIEW_MODES = ("guided", "llm")
_ROUND_TABLE = {"wiser": "wiser_answers", "endorse": "endorsements", "compare": "comparisons",
                "same_value": "merge_judgements"}
#: A deliberation's row as a participant's page reads it (`ParticipantState.deliberation`).
_DELIBERATION_COLUMNS = ("id", "title", "description", "consent_text", "licence", "open_signup", "settings",
                         "source", "created_at")


@dataclass(frozen=True)
class ParticipantState:
    """What a participant's page needs on every run: their row (id, deliberation_id, revoked_at), their
    deliberation (settings parsed), their steps in order, their latest interview and the question they
    chose (id, title, prompt; None before they choose)."""

    participant: dict
    deliberation: dict
    steps: list[dict]
    interview: dict | None
    question: dict | None
_SIGNUP_LOCK = threading.Lock()
#: The window `signup_limits.per_hour` counts open sign-ups in.
SIGNUP_WINDOW = timedelta(hours=1)
SIGNUP_CLOSED = "This deliberation takes part by invitation only."
SIGNUP_FULL = ("This deliberation has all the participants it can take by this link. If you were meant to take"
               " part, please ask the organisers for an invite link.")
SIGNUP_BUSY = ("Many people have joined in the last hour, so joining by this link is paused for a while. Please"
               " try again later, or ask the organisers for an invite link.")


def _asked_in_rounds(deliberation_id: str, question_id: str | None) -> tuple[str, list]:
    """The judging rounds' rule for a canonical value `v` (SQL and its parameters): of the deliberation,
    not retired, of the question (or of every question), and with an active member card or imported
    with the data."""
    question = "" if question_id is None else " AND (v.question_id = ? OR v.question_id IS NULL)"
    return ("v.deliberation_id = ? AND v.retired_at IS NULL" + question
            + " AND (v.origin IN ('import', 'demo') OR EXISTS (SELECT 1 FROM card_value l JOIN values_cards c"
              " ON c.id = l.card_id AND c.status = 'active' WHERE l.canonical_id = v.id))",
            [deliberation_id] + ([] if question_id is None else [question_id]))


@dataclass(frozen=True)
class ParticipantCounts:
    """Who is in a deliberation, for the Progress page: people taking part (they agreed, or their data was
    imported), invited people who have not started, and open sign-up against its limits."""

    taking_part: int
    invited_not_started: int
    joined_by_link: int
    joined_last_hour: int
    empty_signups: int
    limits: SignupLimits


@dataclass(frozen=True)
class SignUp:
    """A participant who joined by the open sign-up link, and the invite token that brings them back."""

    participant_id: int
    token: str



def _key(participant_id: int, round_name: str, item: int) -> str:
    return f"app:{int(participant_id)}:{round_name}:{int(item)}"


def _key_survey(participant_id: int, question: str) -> str:
    return f"app:{int(participant_id)}:survey:{question}"


def _answered(participant_id: int, round_name: str, keys: list[str | None]) -> set[int]:
    """Plan items of a round answered, from the participant's answers' keys (answers from before the keys
    existed count as the first items, in order)."""
    prefix = _key(participant_id, round_name, 0)[:-1]
    keyed = {int(k[len(prefix):]) for k in keys if k and k.startswith(prefix)}
    return keyed | set(range(sum(1 for k in keys if not k)))


class ParticipationStore(StoreCore):
    # -- the one pattern every submission follows ---------------------------------------------

    def _submission(self, participant_id: int, stored: Callable[[Any], Any],
                    write: Callable[[Any, datetime], Any]) -> Any:
        """One submission in one transaction: `stored(cur)` is what an identical earlier submission left
        (None when there was none); otherwise take the participant's lock row and `write(cur, now)`."""

        def work(cur):
            earlier = stored(cur)
            if earlier is not None:
                return earlier
            now = utcnow()
            cur.execute(
                "INSERT INTO participant_activity VALUES (?, 1, ?) ON CONFLICT (participant_id) DO UPDATE"
                " SET submissions = participant_activity.submissions + 1,"
                " last_submission_at = excluded.last_submission_at",
                [participant_id, now])
            return write(cur, now)

        return self._write(work)

    @staticmethod
    def _step(cur, participant_id: int, step: str) -> dict | None:
        """The payload of the participant's latest `step` event, or None when there is none."""
        rows = cur.execute(
            "SELECT payload FROM participant_steps WHERE participant_id = ? AND step = ? ORDER BY id DESC LIMIT 1",
            [participant_id, step]).fetchall()
        return (from_json(rows[0][0]) or {}) if rows else None

    @staticmethod
    def _add_step(cur, participant_id: int, step: str, now: datetime, payload: dict | None = None) -> None:
        cur.execute("INSERT INTO participant_steps (participant_id, step, payload, created_at) VALUES (?, ?, ?, ?)",
                    [participant_id, step, to_json(payload or {}), now])

    def _done(self, participant_id: int, step: str) -> Callable[[Any], bool | None]:
        return lambda cur: True if self._step(cur, participant_id, step) is not None else None

    # -- consent, about you, the question ---------------------------------------------------------

    def sign_up(self, deliberation_id: str) -> SignUp:
        """Someone who opened the open sign-up link agreed to take part: the participant, their invite token
        (only its hash is stored) and their consent, in one transaction. Until now nothing was stored: a
        visitor who only opens the link leaves no participant behind.

        Refused with `Conflict` when the deliberation takes no open sign-up, or has reached its
        `signup_limits` (in all, or in the last hour; invited participants do not count). Sign-ups take
        a lock on the deliberation's row, so concurrent ones (in any process) are counted one after the
        other and the limits hold exactly.
        """
        token = new_token()

        def work(cur):
            # Claims the deliberation's row first: two sign-ups in different processes (app workers on
            # PostgreSQL) then conflict, and the store retries the later one on a fresh snapshot that
            # counts the first; without it each would count the other as absent.
            cur.execute("UPDATE deliberations SET open_signup = open_signup WHERE id = ?", [deliberation_id])
            now = utcnow()
            refusal = self._signup_refusal(cur, deliberation_id, now)
            if refusal is not None:
                raise Conflict(refusal)
            pid = cur.execute(
                "INSERT INTO participants (deliberation_id, token_hash, signup, created_at) VALUES (?, ?, 'open', ?)"
                " RETURNING id", [deliberation_id, hash_token(token), now]).fetchall()[0][0]
            cur.execute("INSERT INTO participant_activity VALUES (?, 1, ?)", [pid, now])
            self._add_step(cur, pid, "consent", now)
            return SignUp(int(pid), token)

        # One sign-up at a time, counted and written in one transaction. Across processes the row claim
        # above serialises them; within one, this lock spares the claims a round of conflicts and retries.
        with _SIGNUP_LOCK:
            return self._write(work)

    def signup_refusal(self, deliberation_id: str) -> str | None:
        """Why the open sign-up link would refuse someone now (closed, full, or busy this hour), or None.
        `sign_up` decides again when they agree; this lets the link say so before they read the consent."""
        with self._cursor() as cur:
            return self._signup_refusal(cur, deliberation_id, utcnow())

    @staticmethod
    def _signup_refusal(cur, deliberation_id: str, now: datetime) -> str | None:
        rows = cur.execute(
            "SELECT d.open_signup, d.settings, coalesce(n.total, 0), coalesce(n.recent, 0) FROM deliberations d"
            " LEFT JOIN (SELECT deliberation_id, count(*) AS total, count(*) FILTER (WHERE created_at >= ?) AS recent"
            "   FROM participants WHERE signup = 'open' GROUP BY deliberation_id) n ON n.deliberation_id = d.id"
            " WHERE d.id = ?", [now - SIGNUP_WINDOW, deliberation_id]).fetchall()
        if not rows:
            raise NotFound(f"no deliberation {deliberation_id!r}")
        open_signup, settings, total, recent = rows[0]
        limits = SignupLimits.of(from_json(settings))
        if not open_signup:
            return SIGNUP_CLOSED
        if total >= limits.participants:
            return SIGNUP_FULL
        if recent >= limits.per_hour:
            return SIGNUP_BUSY
        return None

    def participant_counts(self, deliberation_id: str) -> ParticipantCounts:
        """Who has taken part, who was invited and has not started, and how open sign-up stands."""
        now = utcnow()
        with self._cursor() as cur:
            rows = cur.execute(
                "SELECT p.signup, s.participant_id IS NOT NULL AS started, p.created_at >= ? AS recent, count(*)"
                " FROM participants p LEFT JOIN (SELECT DISTINCT participant_id FROM participant_steps) s"
                " ON s.participant_id = p.id WHERE p.deliberation_id = ? GROUP BY 1, 2, 3",
                [now - SIGNUP_WINDOW, deliberation_id]).fetchall()
            settings = cur.execute("SELECT settings FROM deliberations WHERE id = ?", [deliberation_id]).fetchall()
        if not settings:
            raise NotFound(f"no deliberation {deliberation_id!r}")

        def count(signup=None, started=None, recent=None) -> int:
            return sum(n for s, st, r, n in rows if signup in (None, s) and started in (None, st)
                       and recent in (None, r))

        return ParticipantCounts(
            # Imported and simulated participants take part through their data, not through the steps.
            taking_part=sum(n for signup, started, _, n in rows if started or signup not in ("open", "invite")),
            invited_not_started=count("invite", started=False), joined_by_link=count("open"),
            joined_last_hour=count("open", recent=True), empty_signups=count("open", started=False),
            limits=SignupLimits.of(from_json(settings[0][0])))

    def remove_empty_signups(self, deliberation_id: str, *, actor_id: int | None = None) -> int:
        """Remove the participants who opened the open sign-up link but never agreed to take part (before
        sign-up waited for consent, every visit made one): nothing of theirs is kept anywhere else.
        Audited; returns how many were removed."""
        def work(cur):
            removed = cur.execute(
                "DELETE FROM participants p WHERE p.deliberation_id = ? AND p.signup = 'open'"
                " AND NOT EXISTS (SELECT 1 FROM participant_steps s WHERE s.participant_id = p.id)"
                " AND NOT EXISTS (SELECT 1 FROM participant_activity a WHERE a.participant_id = p.id)"
                " AND NOT EXISTS (SELECT 1 FROM participant_attributes a WHERE a.participant_id = p.id)"
                " AND NOT EXISTS (SELECT 1 FROM interviews i WHERE i.participant_id = p.id) RETURNING id",
                [deliberation_id]).fetchall()
            self._audit(cur, deliberation_id, actor_id, "remove_empty_signups", deliberation_id,
                        {"participants": len(removed)}, utcnow())
            return len(removed)

        return self._write(work)

    def give_consent(self, participant_id: int) -> None:
        """The participant agreed to take part."""
        self._submission(participant_id, self._done(participant_id, "consent"),
                         lambda cur, now: self._add_step(cur, participant_id, "consent", now))

    def record_about_you(self, participant_id: int, answers: dict[str, str | None]) -> None:
        """The "about you" answers (participant attributes) and the step, together."""
        rows = [validated(AttributeIn, {"key": k, "value": v}, where=f"attribute {k!r}") for k, v in answers.items()]

        def write(cur, now):
            if rows:
                cur.executemany(
                    "INSERT INTO participant_attributes (participant_id, key, value, created_at) VALUES (?, ?, ?, ?)",
                    [(participant_id, a.key, a.value, now) for a in rows])
            self._add_step(cur, participant_id, "demographics", now)

        self._submission(participant_id, self._done(participant_id, "demographics"), write)

    def choose_question(self, participant_id: int, question_id: str, *, mode: str = "guided") -> int:
        """Record the question the participant chose and start its interview; returns the interview id.

        Repeated, it returns the interview already started (whichever question the repeat names).
        """
        if mode not in INTERVIEW_MODES:
            raise InputError(f"mode: must be one of {', '.join(INTERVIEW_MODES)}, got {mode!r}")

        chosen: list[dict] = []  # the question step already stored, if any

        def stored(cur):
            chosen.clear()
            step = self._step(cur, participant_id, "question")
            if step is None:
                return None
            chosen.append(step)
            # A question step without its interview can only come from before this method existed
            # (two transactions); then the interview is started now, and the step is not repeated.
            rows = cur.execute("SELECT id FROM interviews WHERE participant_id = ? ORDER BY id DESC LIMIT 1",
                               [participant_id]).fetchall()
            return rows[0][0] if rows else None

        def write(cur, now):  # runs right after `stored`, in its transaction
            qid = chosen[0].get("question_id", question_id) if chosen else question_id
            rows = cur.execute(
                "SELECT p.deliberation_id, q.id FROM participants p LEFT JOIN questions q"
                " ON q.deliberation_id = p.deliberation_id AND q.id = ? WHERE p.id = ?",
                [qid, participant_id]).fetchall()
            if not rows:
                raise NotFound(f"no participant {participant_id}")
            if rows[0][1] is None:
                raise NotFound(f"question: no question {qid!r} in deliberation {rows[0][0]!r}")
            if not chosen:
                self._add_step(cur, participant_id, "question", now, {"question_id": question_id})
            return cur.execute(
                "INSERT INTO interviews (participant_id, question_id, mode, created_at) VALUES (?, ?, ?, ?)"
                " RETURNING id", [participant_id, qid, mode, now]).fetchall()[0][0]

        return self._submission(participant_id, stored, write)

    # -- the interview ----------------------------------------------------------------------------

    @staticmethod
    def _interview(cur, participant_id: int, interview_id: int) -> dict:
        """The participant's interview: its question, mode, deliberation and card (the first card confirmed
        from it, None before), in one read."""
        rows = cur.execute(
            "SELECT i.question_id, i.mode, p.deliberation_id, (SELECT min(id) FROM values_cards WHERE interview_id = $iid)"
            " FROM interviews i JOIN participants p ON p.id = i.participant_id WHERE i.id = $iid AND i.participant_id = $pid",
            {"iid": interview_id, "pid": participant_id}).fetchall()
        if not rows:
            raise NotFound(f"no interview {interview_id} of participant {participant_id}")
        return dict(zip(("question_id", "mode", "deliberation_id", "card_id"), rows[0], strict=True))

    def save_interview_stage(self, participant_id: int, interview_id: int, stage: str, answers: dict) -> None:
        """One stage of the guided interview submitted, or a `draft` typed but not yet submitted.

        `answers` holds the fields this stage sets (all of them is fine too); they are merged into the
        interview's latest answers inside the transaction, so a draft of one field can never undo a
        field saved a moment earlier by another callback or tab (a page's own copy may be stale).
        Nothing is written when it would change nothing (the same stage again with the same answers,
        or a draft equal to the latest answers), or when the interview's card is already confirmed.
        """
        if stage not in INTERVIEW_STAGES:
            raise InputError(f"stage: must be one of {', '.join(INTERVIEW_STAGES)}, got {stage!r}")
        GuidedAnswers().merged(answers)  # InputError naming a field that is not an answer, before any write
        payload: list[str] = []

        def stored(cur):
            payload.clear()
            if self._interview(cur, participant_id, interview_id)["card_id"] is not None:
                return True
            rows = cur.execute("SELECT stage, payload FROM interview_steps WHERE interview_id = ?"
                               " ORDER BY id DESC LIMIT 1", [interview_id]).fetchall()
            latest_stage, latest = rows[0] if rows else (None, None)
            latest = {k: v for k, v in (from_json(latest) or {}).items() if k in ANSWER_FIELDS}
            payload.append(to_json(GuidedAnswers.from_dict(latest).merged(answers).to_dict()))
            unchanged = rows and to_json(GuidedAnswers.from_dict(latest).to_dict()) == payload[0]
            return True if unchanged and stage in ("draft", latest_stage) else None

        self._submission(participant_id, stored, lambda cur, now: cur.execute(
            "INSERT INTO interview_steps (interview_id, stage, payload, created_at) VALUES (?, ?, ?, ?)",
            [interview_id, stage, payload[0], now]))

    def confirm_card(self, participant_id: int, interview_id: int, card: ValuesCardIn, review: dict) -> int:
        """The participant confirms their card: the review stage, the card, its contexts (new ones as
        proposed) and the interview step, in one transaction. Returns the card id; repeated, the card
        already confirmed for this interview."""

        interview: dict = {}

        def stored(cur):
            interview.update(self._interview(cur, participant_id, interview_id))
            card_id = interview["card_id"]
            if card_id is None:
                step = self._step(cur, participant_id, "interview")
                card_id = step.get("card_id") if step else None
            return card_id

        def write(cur, now):  # runs right after `stored`, in its transaction
            deliberation_id, question_id = interview["deliberation_id"], interview["question_id"]
            if card.question_id != question_id:
                raise InputError(f"question_id: the interview is about {question_id!r}, not {card.question_id!r}")
            cur.execute("INSERT INTO interview_steps (interview_id, stage, payload, created_at) VALUES (?, ?, ?, ?)",
                        [interview_id, "review", to_json(review), now])
            card_id = cur.execute(
                "INSERT INTO values_cards (deliberation_id, question_id, author_id, interview_id, title,"
                " description, policies, overrides, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                [deliberation_id, card.question_id, participant_id, interview_id, card.title, card.description,
                 list(card.policies), list(card.overrides), now]).fetchall()[0][0]
            context_ids = list(dict.fromkeys(
                self._ensure_context(cur, deliberation_id, name, now=now, status="proposed", proposed_by=participant_id)
                for name in card.contexts))
            if context_ids:  # one statement for all of them: the card is new, so none is linked yet
                cur.execute("INSERT INTO card_contexts SELECT ?, unnest(?::BIGINT[])", [card_id, context_ids])
            self._add_step(cur, participant_id, "interview", now, {"card_id": card_id})
            return card_id

        return self._submission(participant_id, stored, write)

    # -- the LLM interviewer's turns ----------------------------------------------------------------

    @staticmethod
    def _messages(cur, interview_id: int) -> list[tuple[str, str]]:
        return cur.execute("SELECT role, content FROM interview_messages WHERE interview_id = ? ORDER BY id",
                           [interview_id]).fetchall()

    @staticmethod
    def _add_messages(cur, interview_id: int, messages: list[tuple[str, str]], now: datetime) -> None:
        if messages:
            cur.executemany(
                "INSERT INTO interview_messages (interview_id, role, content, created_at) VALUES (?, ?, ?, ?)",
                [(interview_id, role, content, now) for role, content in messages])

    def chat_turn(self, participant_id: int, interview_id: int, said: str | None, reply: str) -> None:
        """One turn of the LLM interview: what the participant said (None for the opening) and the
        interviewer's reply, together. Repeated (the same words again as the latest thing said), nothing."""

        def stored(cur):
            self._interview(cur, participant_id, interview_id)
            messages = self._messages(cur, interview_id)
            if said is None:
                return True if any(role == "assistant" for role, _ in messages) else None
            users = [content for role, content in messages if role == "user"]
            return True if users and users[-1] == said else None

        messages = ([] if said is None else [("user", said)]) + [("assistant", reply)]
        self._submission(participant_id, stored, lambda cur, now: self._add_messages(cur, interview_id, messages, now))

    def continue_guided(self, participant_id: int, interview_id: int, *, draft: dict | None = None,
                        stages: tuple[str, ...] = (), error: str | None = None, said: str | None = None) -> None:
        """Move an LLM interview to the guided form, in one transaction: what the participant just said
        (`said`, if the LLM failed before answering it), the failure (`error`, shown on the Progress page),
        and the answers so far as a draft or as submitted `stages`. Repeated (already guided), nothing."""
        for stage in stages:
            if stage not in STAGE_KEYS:
                raise InputError(f"stage: must be one of {', '.join(STAGE_KEYS)}, got {stage!r}")

        def stored(cur):
            return True if self._interview(cur, participant_id, interview_id)["mode"] == "guided" else None

        def write(cur, now):
            messages = ([("user", said)] if said else []) + ([("error", error)] if error else [])
            self._add_messages(cur, interview_id, messages, now)
            if draft is not None:
                rows = [(interview_id, stage, to_json(draft), now) for stage in (stages or ("draft",))]
                cur.executemany(
                    "INSERT INTO interview_steps (interview_id, stage, payload, created_at) VALUES (?, ?, ?, ?)", rows)
            cur.execute("UPDATE interviews SET mode = 'guided' WHERE id = ?", [interview_id])

        self._submission(participant_id, stored, write)

    # -- the judging rounds -------------------------------------------------------------------------

    def plan_round(self, participant_id: int, round_name: str, items: list) -> list:
        """Store what the participant will be asked in a round; the first plan stored wins (a second tab
        or a refresh gets the same questions). Returns the stored plan."""
        self._check_round(round_name)

        def stored(cur):
            step = self._step(cur, participant_id, f"plan:{round_name}")
            return step.get("items", []) if step is not None else None

        def write(cur, now):
            self._add_step(cur, participant_id, f"plan:{round_name}", now, {"items": list(items)})
            return list(items)

        return self._submission(participant_id, stored, write)

    @staticmethod
    def _check_round(round_name: str) -> None:
        if round_name not in ROUNDS:
            raise InputError(f"round: must be one of {', '.join(ROUNDS)}, got {round_name!r}")

    @staticmethod
    def _answered_in(cur, participant_id: int, round_name: str) -> set[int]:
        rows = cur.execute(f"SELECT source_key FROM {_ROUND_TABLE[round_name]} WHERE participant_id = ?",
                           [participant_id]).fetchall()
        return _answered(participant_id, round_name, [k for (k,) in rows])

    def answered_items(self, participant_id: int, round_name: str) -> set[int]:
        """The plan items of a round the participant has answered."""
        self._check_round(round_name)
        with self._cursor() as cur:
            return self._answered_in(cur, participant_id, round_name)

    def _judgement(self, participant_id: int, round_name: str, item: int, insert) -> int:
        """The shared shape of answer_wiser, endorse and compare: answer plan item `item` once, and close
        the round in the same transaction when this was its last unanswered item.

        One read gathers what the answer needs (the participant's deliberation, round plan, question and
        whether the round is closed; their answers in this round, an earlier answer to this item among
        them); then one insert. The unique index on (deliberation, source_key) is what makes a concurrent
        repeat fail and, retried, find the first answer, so judgements do not take the participant's lock
        row (most submissions are judgements: fewer and simpler statements per transaction is most of the
        store's throughput under load; DuckDB pays about a millisecond per statement and more for
        correlated subqueries).
        """
        self._check_round(round_name)
        key = _key(participant_id, round_name, item)
        plan_step = f"plan:{round_name}"

        def work(cur):
            # One statement of three plain scans (a join or a correlated subquery costs DuckDB several times
            # more): 0 = the deliberation, 1 = the steps the answer needs, 2 = the answers in this round.
            rows = cur.execute(
                "SELECT 0, deliberation_id, NULL, NULL::BIGINT FROM participants WHERE id = $pid"
                " UNION ALL SELECT 1, step, payload, id FROM participant_steps WHERE participant_id = $pid"
                "   AND step IN ($plan, 'question', $round)"
                f" UNION ALL SELECT 2, source_key, NULL, id FROM {_ROUND_TABLE[round_name]} WHERE participant_id = $pid",
                {"pid": participant_id, "plan": plan_step, "round": round_name}).fetchall()
            deliberation_id = next((text for part, text, _, _ in rows if part == 0), None)
            if deliberation_id is None:
                raise NotFound(f"no participant {participant_id}")
            steps = sorted((row_id, step, payload) for part, step, payload, row_id in rows if part == 1)
            latest = {step: payload for _, step, payload in steps}  # in id order: the latest wins
            answers = [(row_id, k) for part, k, _, row_id in rows if part == 2]
            earlier = min((row_id for row_id, k in answers if k == key), default=None)
            if earlier is not None:
                return earlier
            items = (from_json(latest.get(plan_step)) or {}).get("items", [])
            if not 0 <= int(item) < len(items):
                raise InputError(f"item: the {round_name} round of participant {participant_id} has {len(items)}"
                                 f" item(s), not an item {item}")
            question_id = (from_json(latest.get("question")) or {}).get("question_id")
            now = utcnow()
            row_id = insert(cur, items[int(item)], deliberation_id, key, question_id, now)
            keys = [k for _, k in answers] + [key]
            if round_name not in latest and _answered(participant_id, round_name, keys) >= set(range(len(items))):
                self._add_step(cur, participant_id, round_name, now)
            return row_id

        return self._write(work)

    def answer_wiser(self, participant_id: int, item: int, answer: str, comment: str | None = None,
                     story: str | None = None) -> int:
        """Answer item `item` of the participant's wiser-than plan ("did moving from A to B make them wiser?").
        Returns the answer's id; repeated, the id of the answer already given."""

        def insert(cur, planned, deliberation_id, key, question_id, now):
            a = validated(WiserAnswerIn, {
                "participant_id": participant_id, "from_value_id": int(planned["from_id"]),
                "to_value_id": int(planned["to_id"]), "context_id": 1, "answer": answer,  # the context: below
                "comment": comment or None, "story": story or None})
            rows = cur.execute(
                "INSERT INTO wiser_answers (deliberation_id, participant_id, from_value_id, to_value_id, context_id,"
                " answer, story, comment, source_key, created_at) SELECT ?, ?, ?, ?, x.id, ?, ?, ?, ?, ?"
                " FROM contexts x WHERE x.deliberation_id = ? AND x.name = ? RETURNING id",
                [deliberation_id, participant_id, a.from_value_id, a.to_value_id, a.answer, a.story, a.comment, key,
                 now, deliberation_id, planned["context"]]).fetchall()
            if not rows:
                raise NotFound(f"context: no context {planned['context']!r} in deliberation {deliberation_id!r}")
            return rows[0][0]

        return self._judgement(participant_id, "wiser", item, insert)

    def endorse(self, participant_id: int, item: int, vote: str) -> int:
        """Agree, disagree or pass on item `item` of the participant's endorse plan (a canonical value)."""

        def insert(cur, planned, deliberation_id, key, question_id, now):
            e = validated(EndorsementIn, {"participant_id": participant_id, "canonical_id": int(planned),
                                          "vote": vote, "question_id": question_id})
            return cur.execute(
                "INSERT INTO endorsements (deliberation_id, participant_id, question_id, canonical_id, card_id, vote,"
                " source_key, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                [deliberation_id, participant_id, e.question_id, e.canonical_id, e.card_id, e.vote, key,
                 now]).fetchall()[0][0]

        return self._judgement(participant_id, "endorse", item, insert)

    def compare(self, participant_id: int, item: int, winner: str) -> int:
        """Which of the two values of item `item` of the compare plan should guide the answer ('a', 'b' or
        'tie' for "I can't choose")."""

        def insert(cur, planned, deliberation_id, key, question_id, now):
            c = validated(ComparisonIn, {
                "participant_id": participant_id, "item_a": planned["item_a"], "item_b": planned["item_b"],
                "winner": winner, "question_id": question_id})
            # The prompt is the question's as it reads now (a staff edit later does not rewrite the answer).
            return cur.execute(
                "INSERT INTO comparisons (deliberation_id, participant_id, question_id, context, prompt, item_a,"
                " item_b, winner, source, source_key, created_at)"
                " VALUES (?, ?, ?, ?, (SELECT prompt FROM questions WHERE id = ?), ?, ?, ?, 'compare', ?, ?)"
                " RETURNING id",
                [deliberation_id, participant_id, c.question_id, c.context, c.question_id, c.item_a, c.item_b,
                 c.winner, key, now]).fetchall()[0][0]

        return self._judgement(participant_id, "compare", item, insert)

    def answer_same_value(self, participant_id: int, item: int, answer: str) -> int:
        """Are the two cards of item `item` of the participant's "same value?" plan the same value ('same',
        'different' or 'not_sure')? Returns the answer's id; repeated, the id of the answer already given.
        The next dedup run counts it (workbench.analyses.merge_evidence)."""

        def insert(cur, planned, deliberation_id, key, question_id, now):
            m = validated(MergeAnswerIn, {"participant_id": participant_id, "card_a": int(planned["card_a"]),
                                          "card_b": int(planned["card_b"]), "answer": answer})
            a, b = sorted((m.card_a, m.card_b))
            # `revision` counts this participant's earlier answers about the pair (migration 006's index).
            return cur.execute(
                "INSERT INTO merge_judgements (deliberation_id, card_a, card_b, source, participant_id, answer,"
                " revision, source_key, created_at) SELECT ?, ?, ?, 'participant', ?, ?, count(*), ?, ?"
                " FROM merge_judgements WHERE deliberation_id = ? AND participant_id = ? AND card_a = ?"
                " AND card_b = ? RETURNING id",
                [deliberation_id, a, b, participant_id, m.answer, key, now, deliberation_id, participant_id, a,
                 b]).fetchall()[0][0]

        return self._judgement(participant_id, "same_value", item, insert)

    def finish_round(self, participant_id: int, round_name: str) -> None:
        """Close a round that has nothing (more) to ask (an empty plan, or planned values since retired)."""
        self._check_round(round_name)
        self._submission(participant_id, self._done(participant_id, round_name),
                         lambda cur, now: self._add_step(cur, participant_id, round_name, now))

    # -- the closing survey ---------------------------------------------------------------------------

    def answer_survey(self, participant_id: int, answers: dict[str, str]) -> dict[str, str]:
        """The closing survey's answers (question key -> yes | not_sure | no) and the step `survey` they
        complete, in one transaction. Each answer names the value it is about: the canonical value of the
        participant's card at this moment. Returns the answers stored; repeated, the first answers."""
        checked = validated(SurveyAnswersIn, {"answers": answers}, where="survey").answers

        def stored(cur):
            if self._step(cur, participant_id, "survey") is None:
                return None
            rows = cur.execute("SELECT question, answer FROM survey_answers WHERE participant_id = ? AND source_key"
                               " LIKE ? ORDER BY id", [participant_id, f"app:{int(participant_id)}:survey:%"]).fetchall()
            return dict(rows)

        def write(cur, now):
            rows = cur.execute(
                "SELECT p.deliberation_id, d.settings, (SELECT l.canonical_id FROM values_cards c JOIN card_value l"
                "   ON l.card_id = c.id WHERE c.author_id = p.id ORDER BY c.id DESC LIMIT 1)"
                " FROM participants p JOIN deliberations d ON d.id = p.deliberation_id WHERE p.id = ?",
                [participant_id]).fetchall()
            if not rows:
                raise NotFound(f"no participant {participant_id}")
            deliberation_id, settings, value_id = rows[0]
            asked = [q["key"] for q in ((from_json(settings) or {}).get("closing") or {}).get("survey", [])]
            unknown = [key for key in checked if key not in asked]
            if unknown:
                raise InputError(f"survey.{unknown[0]}: not a question of the closing survey of {deliberation_id!r}"
                                 f" (its questions: {', '.join(asked) or 'none'})")
            if checked:  # nothing answered: the participant skipped the survey, and only the step is written
                cur.executemany(
                    "INSERT INTO survey_answers (deliberation_id, participant_id, question, answer, canonical_id,"
                    " source_key, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(deliberation_id, participant_id, key, answer, value_id, _key_survey(participant_id, key), now)
                     for key, answer in checked.items()])
            self._add_step(cur, participant_id, "survey", now, {"answered": len(checked)})
            return dict(checked)

        return self._submission(participant_id, stored, write)

    def survey_answers(self, deliberation_id: str, *, until: datetime | str | None = None) -> pd.DataFrame:
        """Each participant's latest answer to each closing-survey question: participant_id (store id),
        participant_source_id, question, answer, canonical_id, value_source_id, created_at."""
        until = as_timestamp(until)
        return self._frame(
            # The latest answer per participant and question (DISTINCT ON: both engines read it).
            "SELECT participant_id, participant_source_id, question, answer, canonical_id, value_source_id, created_at"
            " FROM (SELECT DISTINCT ON (s.participant_id, s.question) s.participant_id,"
            " p.source_id AS participant_source_id, s.question, s.answer, s.canonical_id,"
            " v.source_id AS value_source_id, s.created_at FROM survey_answers s"
            " JOIN participants p ON p.id = s.participant_id LEFT JOIN canonical_values v ON v.id = s.canonical_id"
            " WHERE s.deliberation_id = ? AND (CAST(? AS TIMESTAMP) IS NULL OR s.created_at < ?)"
            " ORDER BY s.participant_id, s.question, s.created_at DESC, s.id DESC) AS latest"
            " ORDER BY participant_id, question",
            [deliberation_id, until, until])

    # -- what a participant has done (reads) ---------------------------------------------------------

    def steps(self, participant_id: int) -> list[dict]:
        with self._cursor() as cur:
            return self._steps(cur, participant_id)

    def current_interview(self, participant_id: int) -> dict | None:
        with self._cursor() as cur:
            return self._current_interview(cur, participant_id)

    @staticmethod
    def _steps(cur, participant_id: int) -> list[dict]:
        rows = cur.execute(
            "SELECT step, payload, created_at FROM participant_steps WHERE participant_id = ? ORDER BY id",
            [participant_id]).fetchall()
        return [{"step": s, "payload": from_json(p), "created_at": t} for s, p, t in rows]

    @staticmethod
    def _current_interview(cur, participant_id: int) -> dict | None:
        rows = cur.execute(
            "SELECT id, question_id, mode, created_at FROM interviews WHERE participant_id = ? ORDER BY id DESC LIMIT 1",
            [participant_id]).fetchall()
        return dict(zip(("id", "question_id", "mode", "created_at"), rows[0], strict=True)) if rows else None

    def participant_state(self, participant_id: int) -> ParticipantState:
        """Everything the participant's page reads on every run, in one unit of work of four plain look-ups
        (a page run is a click: no DataFrames, no aggregates). Raises NotFound for an unknown participant."""
        with self._cursor() as cur:
            rows = cur.execute(
                f"SELECT p.id, p.deliberation_id, p.revoked_at, {', '.join('d.' + c for c in _DELIBERATION_COLUMNS)}"
                " FROM participants p JOIN deliberations d ON d.id = p.deliberation_id WHERE p.id = ?",
                [participant_id]).fetchall()
            if not rows:
                raise NotFound(f"no participant {participant_id}")
            (pid, deliberation_id, revoked_at, *columns), = rows
            deliberation = dict(zip(_DELIBERATION_COLUMNS, columns, strict=True))
            deliberation["settings"] = from_json(deliberation["settings"])
            steps = self._steps(cur, participant_id)
            chosen = next((s["payload"].get("question_id") for s in reversed(steps)
                           if s["step"] == "question" and s["payload"]), None)
            question = None
            if chosen is not None:
                found = cur.execute("SELECT id, title, prompt FROM questions WHERE id = ?", [chosen]).fetchall()
                question = dict(zip(("id", "title", "prompt"), found[0], strict=True)) if found else None
            return ParticipantState(
                participant={"id": pid, "deliberation_id": deliberation_id, "revoked_at": revoked_at},
                deliberation=deliberation, steps=steps, interview=self._current_interview(cur, participant_id),
                question=question)

    def round_value_keys(self, deliberation_id: str, question_id: str | None) -> list[tuple[int, str | None]]:
        """The values the judging rounds ask about (`_asked_in_rounds`), as (store id, source id): what a round's
        plan is drawn from (a judging click reads only its items' values, `askable_values`)."""
        asked, params = _asked_in_rounds(deliberation_id, question_id)
        return [(int(i), s) for i, s in self._rows(
            f"SELECT v.id, v.source_id FROM canonical_values v WHERE {asked} ORDER BY v.id", params)]

    def askable_values(self, deliberation_id: str, question_id: str | None, *, value_ids=(),
                       source_ids=()) -> list[dict]:
        """Those of the given values (by store id, or by source id for imported ones) that the judging rounds
        still ask about (`_asked_in_rounds`), as a round shows them: id, source_id, title,
        description, policies (a list). What a judging click reads: only the values of its next items."""
        ids, sources = sorted({int(v) for v in value_ids}), sorted({str(v) for v in source_ids})
        if not ids and not sources:
            return []
        asked, params = _asked_in_rounds(deliberation_id, question_id)
        rows = self._rows(
            "SELECT v.id, v.source_id, v.title, v.description, v.policies FROM canonical_values v"
            f" WHERE (v.id = ANY(?) OR v.source_id = ANY(?)) AND {asked}", [ids, sources, *params])
        return [{"id": int(r[0]), "source_id": r[1], "title": r[2], "description": r[3], "policies": list(r[4] or [])}
                for r in rows]

    def interview_state(self, interview_id: int) -> dict[str, dict]:
        """The latest submitted payload of every stage of an interview."""
        rows = self._rows("SELECT stage, payload FROM interview_stage WHERE interview_id = ?", [interview_id])
        return {stage: from_json(payload) for stage, payload in rows}

    def interview_log(self, interview_id: int) -> list[tuple[str, dict]]:
        """Every submitted stage and saved draft of an interview, oldest first."""
        rows = self._rows("SELECT stage, payload FROM interview_steps WHERE interview_id = ? ORDER BY id",
                          [interview_id])
        return [(stage, from_json(payload)) for stage, payload in rows]

    def transcript(self, interview_id: int) -> list[dict]:
        rows = self._rows("SELECT role, content FROM interview_messages WHERE interview_id = ? ORDER BY id",
                          [interview_id])
        return [{"role": r, "content": c} for r, c in rows]

    def interviews(self, deliberation_id: str, *, until: datetime | None = None) -> pd.DataFrame:
        """Every interview with the answers at its latest submitted stage (a draft when nothing was submitted
        yet): id, participant_id, question_id, mode, stage, answers (dict), card_id, card_status, created_at."""
        frame = self._frame(
            "SELECT i.id, i.participant_id, i.question_id, i.mode, s.stage, s.payload AS answers,"
            " (SELECT min(c.id) FROM values_cards c WHERE c.interview_id = i.id) AS card_id, i.created_at"
            " FROM interviews i JOIN participants p ON p.id = i.participant_id"
            " LEFT JOIN (SELECT DISTINCT ON (interview_id) interview_id, stage, payload FROM interview_steps"
            "   ORDER BY interview_id, stage = 'draft', id DESC) s"
            "   ON s.interview_id = i.id"
            " WHERE p.deliberation_id = ? AND (CAST(? AS TIMESTAMP) IS NULL OR i.created_at < ?) ORDER BY i.id",
            [deliberation_id, until, until])
        status = dict(self._rows("SELECT id, status FROM values_cards WHERE deliberation_id = ? AND interview_id IS NOT NULL",
                                 [deliberation_id]))
        return frame.assign(answers=[from_json(a) for a in frame["answers"]],
                            card_id=frame["card_id"].astype("Int64"),
                            card_status=[status.get(c) if not pd.isna(c) else None for c in frame["card_id"]])

    def interview_messages(self, deliberation_id: str, *, until: datetime | None = None) -> pd.DataFrame:
        """The chat interviews' transcripts: interview_id, turn (1, 2, ...), role (user | assistant), content,
        created_at. Failures the interviewer logged (role error) are not part of a transcript."""
        return self._frame(
            "SELECT m.interview_id, row_number() OVER (PARTITION BY m.interview_id ORDER BY m.id) AS turn, m.role,"
            " m.content, m.created_at FROM interview_messages m JOIN interviews i ON i.id = m.interview_id"
            " JOIN participants p ON p.id = i.participant_id WHERE p.deliberation_id = ?"
            " AND m.role IN ('user', 'assistant') AND (CAST(? AS TIMESTAMP) IS NULL OR m.created_at < ?)"
            " ORDER BY m.interview_id, m.id",
            [deliberation_id, until, until])

    def progress(self, deliberation_id: str) -> pd.DataFrame:
        """Participants per furthest step reached."""
        return self._frame(
            "SELECT s.step, count(*) AS participants FROM participant_last_step s"
            " JOIN participants p ON p.id = s.participant_id WHERE p.deliberation_id = ?"
            " GROUP BY s.step ORDER BY participants DESC",
            [deliberation_id])
