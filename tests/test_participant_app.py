"""The participant's way through the app under AppTest: invite → consent → about you → question →
guided interview → card → wiser-than, endorse and compare rounds → thank you; refresh resumes at
every step; bad and revoked links see nothing else."""

from __future__ import annotations

from apptest import button, step_text, visit
from streamlit.testing.v1 import AppTest
from walk import to_question

from workbench import config
from workbench.cardcheck import check_policy
from workbench.drafting import load_library
from workbench.participation import INVALID_LINK

APP = str(config.APP)








def test_unknown_and_revoked_links_see_only_a_plain_message(demo_db):
    at = visit(invite="not-a-real-token")
    assert [e.value for e in at.error] == [INVALID_LINK]
    assert not at.button and not at.text_area
    (pid, token), = demo_db.create_invites("demo", 1)
    demo_db.revoke_invites([pid])
    at = visit(invite=token)
    assert [e.value for e in at.error] == [INVALID_LINK]


def test_open_signup_makes_a_participant_with_its_own_resumable_link_when_they_agree(demo_db):
    before = len(demo_db.participants("demo"))
    at = visit(join="demo")
    assert len(demo_db.participants("demo")) == before, "opening the link stores nothing"
    at.checkbox[0].check().run()
    button(at, "Continue").click().run()
    assert len(demo_db.participants("demo")) == before + 1
    assert "Step 2 of 10" in step_text(at)
    token = at.query_params["invite"]
    token = token[0] if isinstance(token, list) else token
    assert demo_db.participant_by_token(token) is not None
    assert "Step 2 of 10" in step_text(visit(invite=token))


def test_the_whole_guided_flow_resumes_after_every_refresh(demo_db):
    (pid, token), = demo_db.create_invites("demo", 1)

    def refresh(expect: str) -> AppTest:
        at = visit(invite=token)
        assert expect in step_text(at), step_text(at)
        return at

    at = refresh("Step 1 of 10: Welcome")
    button(at, "Continue").click().run()  # not agreed yet: refused, beside the button, nothing stored
    assert any("Please tick the box to agree" in e.value for e in at.error)
    assert "Step 1 of 10" in step_text(at) and demo_db.steps(pid) == []
    at.checkbox[0].check()
    button(at, "Continue").click().run()

    at = refresh("Step 2 of 10: About you")
    at.selectbox[0].select("30-44")
    at.button[0].click().run()  # political leaning is required too
    assert any("Your political leaning" in e.value for e in at.error)
    at.selectbox[2].select("Prefer not to say")
    at.button[0].click().run()
    attrs = demo_db.attributes("demo").set_index("participant_id").loc[pid]
    assert attrs["age_band"] == "30-44" and attrs["political_leaning"] == "Prefer not to say"

    at = refresh("Step 3 of 10: Choose a question")
    assert "A child who refuses homework" in at.radio[0].options
    button(at, "Continue").click().run()  # nothing chosen yet
    assert any("Please choose a question" in e.value for e in at.error)
    at.radio[0].set_value("demo/homework")
    button(at, "Continue").click().run()

    at = refresh("Step 4 of 10: Your values card")
    assert at.subheader[0].value == "Your answer"
    at.text_area[0].input("It should help the parent understand why the child resists, not just force it.")
    button(at, "Continue").click().run()
    at = refresh("Step 4 of 10")
    assert at.subheader[0].value == "A moment from your life"
    # Typed but not submitted: kept as a draft across a refresh.
    at.text_area[0].input("When my son was nine he cried over maths. I noticed he was exhausted after school "
                          "and I paid attention to the moments when he asked his own questions.")
    at.run()
    at = refresh("Step 4 of 10")
    assert "exhausted after school" in at.text_area[0].value
    button(at, "Continue").click().run()

    at = refresh("Step 4 of 10")
    assert at.subheader[0].value == "What you noticed"
    # Suggestions to tick, each saying where it comes from; only lines from the participant's own words
    # come ticked, never the library's (read blind, its ticked lines were no likelier to fit).
    suggested = {box.label.replace("\\", ""): box for box in at.checkbox}
    reasons = [c.value for c in at.caption]
    library = {p.text for p in load_library().policies}
    assert len(suggested) >= 4 and any(box.value for box in suggested.values())
    assert not any(box.value for line, box in suggested.items() if line in library)
    assert any(line in library for line in suggested)
    assert "From your own words." in reasons
    assert any(r.startswith("From the workbench's library") for r in reasons)
    question = "A child who refuses homework. " + demo_db.questions("demo").set_index("id").loc["demo/homework", "prompt"]
    assert [line for line in suggested if check_policy(line, question=question)] == []
    for box in at.checkbox:
        box.uncheck()
    keep = next(line for line in suggested if line.startswith("MOMENTS when a child asks"))
    next(box for line, box in suggested.items() if line == keep).check()
    at.text_area[0].input("SIGNS of exhaustion after school\nFRUSTRATIONS the child cannot yet put into words")
    button(at, "Continue").click().run()
    assert demo_db.interview_state(demo_db.current_interview(pid)["id"])["attention"]["policies"] == [
        keep, "SIGNS of exhaustion after school", "FRUSTRATIONS the child cannot yet put into words"]

    at = refresh("Step 4 of 10")
    assert at.subheader[0].value == "Name it"
    assert at.text_input[0].value  # a drafted title
    at.text_input[0].input("Listening Before Pushing")
    at.text_area[0].input("Understanding what the refusal says before insisting on the homework.")
    button(at, "Continue").click().run()

    at = refresh("Step 4 of 10")
    assert at.subheader[0].value == "Where it matters"
    at.multiselect[0].select("When a child's wellbeing is at stake")
    at.text_input[0].input("When a parent feels at the end of their rope")
    button(at, "Continue").click().run()

    at = refresh("Step 4 of 10")
    assert at.subheader[0].value == "Your card"
    assert at.text_input[0].value == "Listening Before Pushing"
    for box in at.checkbox:  # accept any soft warnings, recorded as overrides
        box.check()
    at.run()
    button(at, "Confirm my card").click().run()
    cards = demo_db.cards_by(pid)
    assert list(cards["title"]) == ["Listening Before Pushing"]
    assert list(cards.iloc[0]["policies"])[0] == "MOMENTS when a child asks their own questions"
    proposed_ctx = demo_db.contexts("demo", include_proposed=True)
    assert "When a parent feels at the end of their rope" in set(proposed_ctx[proposed_ctx.status == "proposed"]["name"])

    at = refresh("Step 5 of 10: Who became wiser?")
    for i in range(3):
        at.radio[0].set_value(["upgrade", "no_upgrade", "not_sure"][i])
        if i == 0:
            at.text_area[0].input("Listening comes first.")
        at.button[0].click().run()
        at = refresh("Step")
    answers = demo_db.wiser_answers_by(pid)
    assert list(answers["answer"]) == ["upgrade", "no_upgrade", "not_sure"]
    assert "Step 6 of 10" in step_text(at)

    for i in range(5):  # the homework question has 5 values; the participant's own card's value is new
        button(at, ["Agree", "Disagree", "Pass / unsure"][i % 3]).click().run()
        at = refresh("Step")
    votes = demo_db.endorsements_by(pid)
    assert len(votes) == 5 and votes["canonical_id"].is_unique
    assert "Step 7 of 10" in step_text(at)

    for i in range(4):
        (button(at, "I can't choose") if i == 3 else at.button[i % 2]).click().run()
        at = refresh("Step")
    made = demo_db.comparisons_by(pid)
    assert list(made["winner"]) == ["a", "b", "a", "tie"]
    assert "Step 9 of 10: Where you sit" in step_text(at)
    next(r for r in at.radio if r.label == "Where my value sits in the graph is fair.").set_value("yes")
    button(at, "Send my answers").click().run()
    at = refresh("Step 10 of 10: Thank you")
    assert list(demo_db.survey_answers("demo").query("participant_id == @pid")["answer"]) == ["yes"]
    assert any("Listening Before Pushing" in m.value for m in at.markdown)


def test_card_checks_block_hard_errors_on_review(demo_db):
    (pid, token), = demo_db.create_invites("demo", 1)
    iid = to_question(demo_db, pid, "demo/riot")
    answers = {"response": "r", "story": "s", "policies": ["SOURCES people can check", "SOURCES people can check"],
               "title": "Fidelity To The Record", "description": "Answer from evidence.",
               "contexts": ["When giving factual information"]}
    for stage in ("response", "story", "attention", "title", "contexts"):
        demo_db.save_interview_stage(pid, iid, stage, answers)
    at = visit(invite=token)
    assert at.subheader[0].value == "Your card"
    assert at.error, "a duplicate line is a hard error"
    assert button(at, "Confirm my card").disabled


def test_a_judging_click_is_one_page_run_that_reads_only_what_it_shows(demo_db, monkeypatch):
    """A submission is its button's callback: the click runs the page once (not a writing run and then a
    showing run), and once a round is planned a click never reads the whole value table."""
    from walk import to_card

    from workbench import analyses, participation

    (pid, token), = demo_db.create_invites("demo", 1)
    to_card(demo_db, pid)
    at = visit(invite=token)  # plans the wiser-than round: the value table is read this once
    assert "Step 5 of 10" in step_text(at) and "Question 1 of 3" in " ".join(m.value for m in at.markdown)

    runs = []
    real_flow = participation.flow
    monkeypatch.setattr(participation, "flow", lambda store, p: runs.append(p) or real_flow(store, p))

    def no_value_table(*args, **kwargs):
        raise AssertionError("a judging click read the whole value table")
    monkeypatch.setattr(analyses, "value_table", no_value_table)
    for i, answer in enumerate(["upgrade", "no_upgrade"]):
        runs.clear()
        at.radio[0].set_value(answer)
        at.button[0].click().run()
        assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
        assert runs == [pid], f"click {i + 1}: {len(runs)} page runs"
        assert f"Question {i + 2} of 3" in " ".join(m.value for m in at.markdown)
    assert list(demo_db.wiser_answers_by(pid)["answer"]) == ["upgrade", "no_upgrade"]


def test_when_nothing_suggested_fits_the_page_says_so_and_ticks_nothing(demo_db):
    """An answer the library does not cover (car tyres, asked on the homework question; until issue 12's
    sixth round it was social media, which the library now covers): the suggestions are still offered,
    none comes ticked, and a short note says nothing may fit."""
    from workbench.drafting import WEAK_NOTE

    (pid, token), = demo_db.create_invites("demo", 1)
    iid = to_question(demo_db, pid, "demo/homework")
    demo_db.save_interview_stage(pid, iid, "response", {
        "response": "It should say which tyres grip best on wet roads for a small hatchback."})
    demo_db.save_interview_stage(pid, iid, "story", {
        "story": "My tyres slid on a wet roundabout last winter, so I changed to a different brand with deeper "
                 "tread."})
    at = visit(invite=token)
    assert at.subheader[0].value == "What you noticed"
    assert WEAK_NOTE in [i.value for i in at.info]
    assert len(at.checkbox) >= 4 and not any(box.value for box in at.checkbox)


def _order(at: AppTest) -> list[str]:
    """The main area's elements in page order, as 'kind:text' (what a participant reads top to bottom)."""
    out = []

    def walk(node) -> None:
        for child in getattr(node, "children", {}).values():
            kind = type(child).__name__
            text = getattr(child, "label", None) or getattr(child, "value", None)
            out.append(f"{kind}:{text}")
            walk(child)

    walk(at.main)
    return out


def test_a_refused_submission_says_why_beside_its_button_and_stores_nothing(demo_db):
    """A Continue refused for what was entered (nothing written) says why just above the button that was
    clicked, not at the top of a page the participant may have scrolled past."""
    (pid, token), = demo_db.create_invites("demo", 1)
    interview = to_question(demo_db, pid)
    at = visit(invite=token)
    assert at.subheader[0].value == "Your answer"
    button(at, "Continue").click().run()
    message = "Please write a few words before you continue."
    assert [e.value for e in at.error] == [message]
    order = _order(at)
    error = order.index(f"Error:{message}")
    assert order.index("TextArea:" + at.text_area[0].label) < error < order.index("Button:Continue")
    assert [stage for stage, _ in demo_db.interview_log(interview)] == []  # nothing stored
    again = visit(invite=token)
    assert again.subheader[0].value == "Your answer" and [e.value for e in again.error] == []  # said once
