"""The participant's way through the app under AppTest: invite → consent → about you → question →
guided interview → card → wiser-than, endorse and compare rounds → thank you; refresh resumes at
every step; bad and revoked links see nothing else."""

from __future__ import annotations

from apptest import button, step_text, visit
from streamlit.testing.v1 import AppTest
from walk import to_question

from workbench import config
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
    assert "Step 2 of 8" in step_text(at)
    token = at.query_params["invite"]
    token = token[0] if isinstance(token, list) else token
    assert demo_db.participant_by_token(token) is not None
    assert "Step 2 of 8" in step_text(visit(invite=token))


def test_the_whole_guided_flow_resumes_after_every_refresh(demo_db):
    (pid, token), = demo_db.create_invites("demo", 1)

    def refresh(expect: str) -> AppTest:
        at = visit(invite=token)
        assert expect in step_text(at), step_text(at)
        return at

    at = refresh("Step 1 of 8: Welcome")
    assert button(at, "Continue").disabled
    at.checkbox[0].check().run()
    button(at, "Continue").click().run()

    at = refresh("Step 2 of 8: About you")
    at.selectbox[0].select("30-44")
    at.button[0].click().run()  # political leaning is required too
    assert any("Your political leaning" in e.value for e in at.error)
    at.selectbox[2].select("Prefer not to say")
    at.button[0].click().run()
    attrs = demo_db.attributes("demo").set_index("participant_id").loc[pid]
    assert attrs["age_band"] == "30-44" and attrs["political_leaning"] == "Prefer not to say"

    at = refresh("Step 3 of 8: Choose a question")
    at.radio[0].set_value("demo/homework").run()
    button(at, "Continue").click().run()

    at = refresh("Step 4 of 8: Your values card")
    assert at.subheader[0].value == "Your answer"
    at.text_area[0].input("It should help the parent understand why the child resists, not just force it.")
    button(at, "Continue").click().run()
    at = refresh("Step 4 of 8")
    assert at.subheader[0].value == "A moment from your life"
    # Typed but not submitted: kept as a draft across a refresh.
    at.text_area[0].input("When my son was nine he cried over maths. I noticed he was exhausted after school "
                          "and I paid attention to the moments when he asked his own questions.")
    at.run()
    at = refresh("Step 4 of 8")
    assert "exhausted after school" in at.text_area[0].value
    button(at, "Continue").click().run()

    at = refresh("Step 4 of 8")
    assert at.subheader[0].value == "What you noticed"
    proposed = [line for line in at.text_area[0].value.splitlines() if line.strip()]
    assert proposed, "the form proposes candidate policies from the participant's own words"
    at.text_area[0].input("MOMENTS when the child asks their own questions\nSIGNS of exhaustion after school\n"
                          "FRUSTRATIONS the child cannot yet put into words")
    button(at, "Continue").click().run()

    at = refresh("Step 4 of 8")
    assert at.subheader[0].value == "Name it"
    assert at.text_input[0].value  # a drafted title
    at.text_input[0].input("Listening Before Pushing")
    at.text_area[0].input("Understanding what the refusal says before insisting on the homework.")
    button(at, "Continue").click().run()

    at = refresh("Step 4 of 8")
    assert at.subheader[0].value == "Where it matters"
    at.multiselect[0].select("When a child's wellbeing is at stake")
    at.text_input[0].input("When a parent feels at the end of their rope")
    button(at, "Continue").click().run()

    at = refresh("Step 4 of 8")
    assert at.subheader[0].value == "Your card"
    assert at.text_input[0].value == "Listening Before Pushing"
    for box in at.checkbox:  # accept any soft warnings, recorded as overrides
        box.check()
    at.run()
    button(at, "Confirm my card").click().run()
    cards = demo_db.cards_by(pid)
    assert list(cards["title"]) == ["Listening Before Pushing"]
    assert list(cards.iloc[0]["policies"])[0] == "MOMENTS when the child asks their own questions"
    proposed_ctx = demo_db.contexts("demo", include_proposed=True)
    assert "When a parent feels at the end of their rope" in set(proposed_ctx[proposed_ctx.status == "proposed"]["name"])

    at = refresh("Step 5 of 8: Who became wiser?")
    for i in range(3):
        at.radio[0].set_value(["upgrade", "no_upgrade", "not_sure"][i])
        if i == 0:
            at.text_area[0].input("Listening comes first.")
        at.button[0].click().run()
        at = refresh("Step")
    answers = demo_db.wiser_answers_by(pid)
    assert list(answers["answer"]) == ["upgrade", "no_upgrade", "not_sure"]
    assert "Step 6 of 8" in step_text(at)

    for i in range(5):  # the homework question has 5 values; the participant's own card's value is new
        button(at, ["Agree", "Disagree", "Pass / unsure"][i % 3]).click().run()
        at = refresh("Step")
    votes = demo_db.endorsements_by(pid)
    assert len(votes) == 5 and votes["canonical_id"].is_unique
    assert "Step 7 of 8" in step_text(at)

    for i in range(4):
        (button(at, "I can't choose") if i == 3 else at.button[i % 2]).click().run()
        at = refresh("Step")
    made = demo_db.comparisons_by(pid)
    assert list(made["winner"]) == ["a", "b", "a", "tie"]
    assert "Step 8 of 8: Thank you" in step_text(at)
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
