"""Open sign-up (issue 17 item 2): opening `?join=...` stores nothing; a participant is made when the visitor
agrees to take part, within the deliberation's sign-up limits (in all and per hour), which hold exactly under
concurrent sign-ups; people who never agreed count nowhere; a facilitator sees and removes the empty
sign-ups older versions left behind."""

from __future__ import annotations

import threading

import pytest
import yaml
from apptest import button, staff_page, staff_store, step_text, visit

from workbench import config, exports
from workbench.deliberation import parse_deliberation
from workbench.errors import Conflict, InputError
from workbench.models import SIGNUP_PARTICIPANTS_DEFAULT, SIGNUP_PER_HOUR_DEFAULT
from workbench.store.participation import SIGNUP_BUSY, SIGNUP_FULL


@pytest.fixture
def store(tmp_path, monkeypatch, demo_spec):
    monkeypatch.delenv("WORKBENCH_LLM_BASE_URL", raising=False)
    return staff_store(tmp_path / "signup.duckdb", monkeypatch, demo_spec, participants=8, seed=3)


def limit(store, **limits) -> None:
    """Save the demo deliberation again with these `signup_limits`."""
    text = config.DEMO_DELIBERATION.read_text(encoding="utf-8")
    data = yaml.safe_load(text) | {"signup_limits": limits}
    store.save_deliberation(parse_deliberation(yaml.safe_dump(data), where="definition"))


def counts(store) -> tuple[int, int]:
    """(participants rows in the store, people taking part as Progress counts them)."""
    return len(store.participants("demo")), store.participant_counts("demo").taking_part


def test_opening_the_join_link_stores_nothing_until_the_visitor_agrees(store, tmp_path):
    before = counts(store)
    for _ in range(25):  # what a script opening the link over and over does
        at = visit(join="demo")
        assert "Step 1 of 10: Welcome" in step_text(at) and "invite" not in at.query_params
    assert counts(store) == before
    assert store.participant_counts("demo").joined_by_link == 0

    at.checkbox[0].check().run()
    button(at, "Continue").click().run()
    assert not at.exception, at.exception
    assert "Step 2 of 10: About you" in step_text(at)
    token = at.query_params["invite"]
    token = token[0] if isinstance(token, list) else token
    joined = store.participant_by_token(token)
    assert joined is not None and counts(store) == (before[0] + 1, before[1] + 1)
    assert [s["step"] for s in store.steps(joined["id"])] == ["consent"]  # made with their consent, together
    assert "Step 2 of 10: About you" in step_text(visit(invite=token)), "the new link resumes where they are"
    people = exports.tables(store, "demo", ("participants",))["participants"]
    assert len(people) == before[1] + 1


def test_signup_limits_hold_exactly_when_many_sign_up_at_once(store):
    limit(store, participants=5, per_hour=100)
    results: list = []

    def join() -> None:
        try:
            results.append(store.sign_up("demo"))
        except Conflict as exc:
            results.append(exc)

    threads = [threading.Thread(target=join) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    joined = [r for r in results if not isinstance(r, Exception)]
    assert len(joined) == 5 and all(str(r) == SIGNUP_FULL for r in results if isinstance(r, Exception))
    assert store.participant_counts("demo").joined_by_link == 5
    assert store.signup_refusal("demo") == SIGNUP_FULL


def test_the_hourly_limit_pauses_sign_up_until_the_hour_has_passed(store):
    limit(store, participants=100, per_hour=3)
    made = [store.sign_up("demo") for _ in range(3)]
    with pytest.raises(Conflict) as refused:
        store.sign_up("demo")
    assert str(refused.value) == SIGNUP_BUSY
    at = visit(join="demo")  # the link says so before anyone reads the consent
    assert [e.value for e in at.error] == [SIGNUP_BUSY] and not at.checkbox
    ids = [m.participant_id for m in made]
    store._write(lambda cur: cur.execute(
        "UPDATE participants SET created_at = created_at - INTERVAL 61 MINUTE WHERE list_contains(?, id)", [ids]))
    assert store.signup_refusal("demo") is None and store.sign_up("demo").participant_id not in ids


def test_limits_are_read_from_the_definition_with_sane_defaults(store):
    spec = parse_deliberation(config.DEMO_DELIBERATION.read_text(encoding="utf-8"))
    assert (spec.signup_limits.participants, spec.signup_limits.per_hour) == (
        SIGNUP_PARTICIPANTS_DEFAULT, SIGNUP_PER_HOUR_DEFAULT) == (1000, 200)
    data = yaml.safe_load(config.DEMO_DELIBERATION.read_text(encoding="utf-8"))
    with pytest.raises(InputError, match=r"^up\.yaml: signup_limits\.per_hour: "):
        parse_deliberation(yaml.safe_dump(data | {"signup_limits": {"per_hour": -1}}), where="up.yaml")
    with pytest.raises(InputError, match=r"^up\.yaml: signup_limits\.hourly: "):
        parse_deliberation(yaml.safe_dump(data | {"signup_limits": {"hourly": 5}}), where="up.yaml")


def test_a_facilitator_sees_and_removes_empty_signups(store):
    # What every visit to the join link left before sign-up waited for consent.
    store.create_invites("demo", 7, signup="open")
    kept = store.sign_up("demo").participant_id
    invited = store.create_invites("demo", 2)
    before = store.participant_counts("demo")
    assert (before.empty_signups, before.invited_not_started, before.joined_by_link) == (7, 2, 8)
    people = exports.tables(store, "demo", ("participants",))["participants"]
    assert len(people) == before.taking_part == 8 + 1, "the demo's 8, and the one who agreed"

    at = staff_page(store, "fran", "facilitator pass 1", "views/facilitator_progress.py")
    assert {m.label: m.value for m in at.metric}["Participants"] == "9"
    assert any("7 participant(s) opened the open sign-up link" in w.value for w in at.warning)
    assert any("2 invited participant(s) have not started yet" in c.value for c in at.caption)
    button(at, "Remove the 7 empty sign-up(s)").click().run()
    assert not at.exception, at.exception
    assert any("Removed 7" in s.value for s in at.success)
    after = store.participant_counts("demo")
    assert (after.empty_signups, after.taking_part, after.invited_not_started) == (0, 9, 2)
    left = set(store.participants("demo")["participant_id"])
    assert kept in left and {p for p, _ in invited} <= left
    audit = store.audit_log("demo")
    assert audit.iloc[-1]["action"] == "remove_empty_signups" and audit.iloc[-1]["actor"] == "fran"
    assert audit.iloc[-1]["details"] == {"participants": 7}
