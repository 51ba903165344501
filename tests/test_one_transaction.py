"""One participant action, one transaction: the connection is lost between the writes of every
participant step, and afterwards there is neither a crash nor a duplicate.

The loss is real as far as the store can tell: a statement of the submission's transaction raises
DuckDB's own IOException (as a dropped connection or a full disk would), so the transaction rolls
back. For every use-case and every one of its write statements, nothing of the submission is left;
submitting again stores it once; submitting a third time stores nothing more. Then the participant
page is walked from consent to "thank you" with the second write of every submission failing once
(or its commit, for a submission of one write):
the page shows a short message with an error id (never a trace), a refresh shows the same step, and
the finished walk holds one card, one answer per question asked and one step of each.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable

import duckdb
import pytest
from apptest import button, step_text
from apptest import participant_page as visit
from streamlit.testing.v1 import AppTest
from walk import CARD, card_in, to_card, to_question

from workbench.store.core import StoreCore

TABLES = ("participants", "participant_steps", "participant_attributes", "participant_activity", "interviews",
          "interview_steps", "interview_messages", "values_cards", "card_contexts", "contexts", "wiser_answers",
          "endorsements", "comparisons", "survey_answers", "merge_judgements")
WRITE = re.compile(r"^\s*(INSERT|UPDATE|DELETE)\b", re.IGNORECASE)


class LostConnection:
    """A cursor whose `fail_at`-th write statement raises, as if the connection dropped just then."""

    def __init__(self, cursor, fail_at: int | None, counter: list[int]) -> None:
        self._cursor, self._fail_at, self._counter = cursor, fail_at, counter

    def _count(self, sql: str) -> None:
        if WRITE.match(sql):
            self._counter[0] += 1
            if self._counter[0] == self._fail_at:
                raise duckdb.IOException("connection lost between two writes of one submission")

    def execute(self, sql, *args, **kwargs):
        self._count(sql)
        return self._cursor.execute(sql, *args, **kwargs)

    def executemany(self, sql, *args, **kwargs):
        self._count(sql)
        return self._cursor.executemany(sql, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._cursor, name)


@contextlib.contextmanager
def writes(monkeypatch, fail_at: int | None = None, *, or_before_commit: bool = False):
    """Count the write statements of the transactions run inside the block (yields the count), making the
    `fail_at`-th one raise; with `or_before_commit`, a transaction that wrote fewer is cut just before it
    commits (a submission with one write has no "between two writes")."""
    counter = [0]
    original = StoreCore._transaction

    @contextlib.contextmanager
    def transaction(self):
        with original(self) as cur:
            yield LostConnection(cur, fail_at, counter)
            if or_before_commit and 0 < counter[0] < fail_at:
                counter[0] = fail_at
                raise duckdb.IOException("connection lost before the submission's transaction committed")

    monkeypatch.setattr(StoreCore, "_transaction", transaction)
    try:
        yield counter
    finally:
        monkeypatch.setattr(StoreCore, "_transaction", original)


def snapshot(store) -> dict[str, int]:
    return {t: store._one(f"SELECT count(*) FROM {t}")[0] for t in TABLES}


# -- every use-case, every write ---------------------------------------------------------------------

WISER_CONTEXT = "When a child's wellbeing is at stake"


def _values(store) -> tuple[int, int]:
    values = store.canonical_values("demo", question_id="demo/homework")
    return int(values.iloc[0]["id"]), int(values.iloc[1]["id"])


def _planned(store, pid, round_name):
    a, b = _values(store)
    to_card(store, pid)
    cards = store.cards("demo")["id"]
    items = {"wiser": [{"from_id": a, "to_id": b, "context": WISER_CONTEXT}], "endorse": [a],
             "same_value": [{"card_a": int(cards.iloc[1]), "card_b": int(cards.iloc[0])}],
             "compare": [{"item_a": store.id_map("demo", "value").public(a),
                          "item_b": store.id_map("demo", "value").public(b)}]}[round_name]
    store.plan_round(pid, round_name, items)


#: use-case → (bring a new participant to just before it, submit it once).
USE_CASES: dict[str, tuple[Callable, Callable]] = {
    "give_consent": (lambda s, p: None, lambda s, p: s.give_consent(p)),
    "record_about_you": (lambda s, p: s.give_consent(p),
                         lambda s, p: s.record_about_you(p, {"age_band": "30-44", "political_leaning": "Centre"})),
    "choose_question": (lambda s, p: (s.give_consent(p), s.record_about_you(p, {})),
                        lambda s, p: s.choose_question(p, "demo/homework")),
    "save_interview_stage": (lambda s, p: to_question(s, p),
                             lambda s, p: s.save_interview_stage(p, s.current_interview(p)["id"], "story",
                                                                 {"story": "When my son cried over maths."})),
    "confirm_card": (lambda s, p: to_question(s, p),
                     lambda s, p: s.confirm_card(p, s.current_interview(p)["id"],
                                                 card_in(contexts=[WISER_CONTEXT, "A context nobody had"]),
                                                 {"title": CARD["title"]})),
    "chat_turn": (lambda s, p: to_question(s, p, mode="llm"),
                  lambda s, p: s.chat_turn(p, s.current_interview(p)["id"], "It was hard.", "What did you notice?")),
    "continue_guided": (lambda s, p: to_question(s, p, mode="llm"),
                        lambda s, p: s.continue_guided(p, s.current_interview(p)["id"], draft={"story": "s"},
                                                       error="timeout", said="It was hard.")),
    "plan_round": (lambda s, p: to_card(s, p), lambda s, p: s.plan_round(p, "endorse", [_values(s)[0]])),
    "answer_wiser": (lambda s, p: _planned(s, p, "wiser"), lambda s, p: s.answer_wiser(p, 0, "upgrade", "why")),
    "endorse": (lambda s, p: _planned(s, p, "endorse"), lambda s, p: s.endorse(p, 0, "agree")),
    "compare": (lambda s, p: _planned(s, p, "compare"), lambda s, p: s.compare(p, 0, "b")),
    "answer_same_value": (lambda s, p: _planned(s, p, "same_value"), lambda s, p: s.answer_same_value(p, 0, "same")),
    "finish_round": (lambda s, p: _planned(s, p, "wiser"), lambda s, p: s.finish_round(p, "wiser")),
    "answer_survey": (lambda s, p: to_card(s, p),
                      lambda s, p: s.answer_survey(p, {"position_fair": "yes", "clarified": "not_sure"})),
}


@pytest.mark.both_backends
@pytest.mark.parametrize("use_case", USE_CASES)
def test_a_submission_cut_at_any_write_leaves_nothing_and_a_retry_stores_it_once(demo_db, monkeypatch, use_case):
    prepare, submit = USE_CASES[use_case]
    (pid, _), = demo_db.create_invites("demo", 1)
    prepare(demo_db, pid)
    before = snapshot(demo_db)
    fail_at = 1
    while True:  # cut the 1st write, then the 2nd, ... until the submission has fewer writes than that
        with writes(monkeypatch, fail_at) as counted:
            try:
                first = submit(demo_db, pid)
            except duckdb.IOException:
                assert snapshot(demo_db) == before, f"cut at write {fail_at}, it left something behind"
                fail_at += 1
                continue
        break
    assert counted[0] == fail_at - 1 >= 2, "a submission takes its participant's lock row and writes at least once"
    stored = snapshot(demo_db)
    assert stored != before
    assert submit(demo_db, pid) == first, "a repeated submission returns what the first one stored"
    assert snapshot(demo_db) == stored, "and writes nothing"


@pytest.mark.both_backends
def test_a_card_confirmed_twice_at_once_is_one_card(demo_db):
    import threading

    (pid, _), = demo_db.create_invites("demo", 1)
    interview = to_question(demo_db, pid)
    start = threading.Barrier(4)
    got: list[int] = []

    def confirm():
        start.wait()
        got.append(demo_db.confirm_card(pid, interview, card_in(), {}))

    threads = [threading.Thread(target=confirm) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 4 and len(set(got)) == 1
    assert len(demo_db.cards_by(pid)) == 1
    assert [s["step"] for s in demo_db.steps(pid)].count("interview") == 1


# -- what the code before this method per use-case could leave behind ------------------------------------


def test_a_question_step_without_its_interview_resumes_without_a_crash(demo_db):
    """Before `choose_question`, choosing wrote the step and started the interview in two transactions; a
    crash between them left the step alone and the next visit failed with a TypeError."""
    (pid, token), = demo_db.create_invites("demo", 1)
    demo_db.give_consent(pid)
    demo_db.record_about_you(pid, {})
    demo_db._write(lambda cur: cur.execute(
        "INSERT INTO participant_steps (participant_id, step, payload, created_at) VALUES (?, 'question', ?, now())",
        [pid, '{"question_id": "demo/homework"}']))
    at = visit(token)
    assert "Step 4 of 10: Your values card" in step_text(at)
    assert at.subheader[0].value == "Your answer"
    assert demo_db.current_interview(pid)["question_id"] == "demo/homework"
    assert [s["step"] for s in demo_db.steps(pid)].count("question") == 1


def test_a_card_stored_without_its_step_is_not_stored_twice(demo_db):
    """Before `confirm_card`, the card and its step were two transactions: a crash between them let the
    participant confirm again, and left two cards."""
    (pid, _), = demo_db.create_invites("demo", 1)
    interview = to_question(demo_db, pid)
    demo_db._write(lambda cur: cur.execute(
        "INSERT INTO values_cards (deliberation_id, question_id, author_id, interview_id, title, description,"
        " policies, created_at) VALUES ('demo', 'demo/homework', ?, ?, 'Listening Before Pushing', 'd',"
        " ['MOMENTS a', 'SIGNS b'], now())", [pid, interview]))
    card = demo_db.confirm_card(pid, interview, card_in(), {})
    assert list(demo_db.cards_by(pid)["id"]) == [card]


# -- the participant page, with the second write (or the commit) of every submission failing once --------

def test_the_page_survives_a_lost_connection_in_every_step_and_duplicates_nothing(demo_db, monkeypatch):
    (pid, token), = demo_db.create_invites("demo", 1)
    submissions = []

    def step(fill: Callable[[AppTest], None], submit: Callable[[AppTest], None]) -> None:
        """Fill the step in, submit it with the connection lost at its second write (or before it commits
        when it has one), see nothing moved and no trace; refresh, see the same step; fill in and submit
        again."""
        at = visit(token)
        where = step_text(at)
        fill(at)
        before = snapshot(demo_db)
        with writes(monkeypatch, fail_at=2, or_before_commit=True):
            submit(at)
        assert not at.exception, at.exception
        messages = [e.value for e in at.error]
        assert any("error id" in m for m in messages), messages
        assert snapshot(demo_db) == before
        at = visit(token)  # a refresh
        assert step_text(at) == where
        fill(at)
        submit(at)
        assert not at.exception, at.exception
        assert not at.error, [e.value for e in at.error]
        submissions.append(where)

    def click(label: str) -> Callable[[AppTest], None]:
        return lambda at: button(at, label).click().run()

    # Consent, about you and the question are forms: their values travel with the submit button.
    step(lambda at: at.checkbox[0].check(), click("Continue"))

    def about_you(at):
        for box in at.selectbox:
            box.select(box.options[-1])
        at.button[0].click().run()

    step(lambda at: None, about_you)
    step(lambda at: at.radio[0].set_value("demo/homework"), click("Continue"))
    stages = [("text_area", "It should help the parent understand why the child resists."),
              ("text_area", "When my son was nine he cried over maths and I noticed he was exhausted."),
              ("text_area", "MOMENTS when the child asks their own questions\nSIGNS of exhaustion after school"),
              ("text_input", "Listening Before Pushing"),
              ("multiselect", WISER_CONTEXT)]
    for kind, value in stages:  # typed (the draft is saved as the participant leaves the box), then submitted
        def fill(at, kind=kind, value=value):
            widget = getattr(at, kind)[0]
            (widget.select(value) if kind == "multiselect" else widget.input(value)).run()

        step(fill, click("Continue"))

    def accept_warnings(at):
        for box in at.checkbox:
            box.check()
        at.run()

    step(accept_warnings, click("Confirm my card"))
    while "Thank you" not in step_text(visit(token)):  # the rounds: every question of every plan
        def judge(at):
            if "Where you sit" in step_text(at):  # the closing survey: one answer is enough
                at.radio[0].set_value("yes")
            elif at.radio:  # the wiser-than question is a form too
                at.radio[0].set_value("upgrade")
            at.button[0].click().run()

        step(lambda at: None, judge)

    plans = {s["step"].removeprefix("plan:"): s["payload"]["items"] for s in demo_db.steps(pid)
             if s["step"].startswith("plan:")}
    assert len(submissions) == 3 + 5 + 1 + sum(len(items) for items in plans.values()) + 1  # + the closing survey
    assert len(demo_db.cards_by(pid)) == 1
    assert list(demo_db.survey_answers("demo").query("participant_id == @pid")["answer"]) == ["yes"]
    steps = [s["step"] for s in demo_db.steps(pid)]
    assert len(steps) == len(set(steps)), steps
    for round_name, answers in (("wiser", demo_db.wiser_answers_by(pid)), ("endorse", demo_db.endorsements_by(pid)),
                                ("compare", demo_db.comparisons_by(pid))):
        assert len(answers) == len(plans[round_name]) > 0, round_name
