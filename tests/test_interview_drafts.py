"""What a participant types in the guided interview is stored as they go, and never undone.

The page saves a draft of one field at a time (a text field committed, a suggestion ticked, or the
draft keeper sending text that was never committed), and submits a stage with only the fields it
sets. The store merges each into the interview's latest answers inside its transaction, so a draft
built from a stale copy of the answers (a callback registered before another field was saved, a
second tab) cannot undo a field saved a moment earlier.
"""

from __future__ import annotations

import pytest
from walk import to_question

from workbench.errors import InputError


def latest(store, iid: int) -> dict:
    return store.interview_log(iid)[-1][1]


def test_a_draft_of_one_field_keeps_every_other_field(demo_db):
    (pid, _), = demo_db.create_invites("demo", 1)
    iid = to_question(demo_db, pid, "demo/homework")
    demo_db.save_interview_stage(pid, iid, "response", {"response": "Listen first."})
    demo_db.save_interview_stage(pid, iid, "draft", {"story": "When my son was nine"})
    demo_db.save_interview_stage(pid, iid, "draft", {"title": "Listening First"})  # a callback from an older page
    assert latest(demo_db, iid) == {"response": "Listen first.", "story": "When my son was nine", "policies": [],
                                    "title": "Listening First", "description": "", "contexts": []}
    demo_db.save_interview_stage(pid, iid, "story", {"story": "When my son was nine he cried."})
    assert latest(demo_db, iid)["title"] == "Listening First"
    assert latest(demo_db, iid)["story"] == "When my son was nine he cried."


def test_a_draft_that_changes_nothing_writes_nothing_and_a_resubmitted_stage_wins_again(demo_db):
    (pid, _), = demo_db.create_invites("demo", 1)
    iid = to_question(demo_db, pid, "demo/homework")
    demo_db.save_interview_stage(pid, iid, "story", {"story": "A"})
    demo_db.save_interview_stage(pid, iid, "draft", {"story": "A"})
    demo_db.save_interview_stage(pid, iid, "story", {"story": "A"})  # a double click
    assert [stage for stage, _ in demo_db.interview_log(iid)] == ["story"]
    demo_db.save_interview_stage(pid, iid, "draft", {"story": "B"})  # typed, then changed back and submitted
    demo_db.save_interview_stage(pid, iid, "story", {"story": "A"})
    assert [stage for stage, _ in demo_db.interview_log(iid)] == ["story", "draft", "story"]
    assert latest(demo_db, iid)["story"] == "A"


def test_a_draft_with_a_field_that_is_not_an_answer_is_refused_naming_it(demo_db):
    (pid, _), = demo_db.create_invites("demo", 1)
    iid = to_question(demo_db, pid, "demo/homework")
    with pytest.raises(InputError, match="storey"):
        demo_db.save_interview_stage(pid, iid, "draft", {"storey": "typo"})
    with pytest.raises(InputError, match="policies must be a list of texts"):
        demo_db.save_interview_stage(pid, iid, "draft", {"policies": "MOMENTS when x"})
    assert demo_db.interview_log(iid) == []
