"""Progress of a deliberation, updated live: participants per step, cards per question, answers over time,
invited people not started yet, open sign-up against its limits (and the empty sign-ups older versions
left, with a button to remove them)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from workbench import web
from workbench.participation import STEP_TITLES, STEPS

actor = web.require_staff(__file__).id
st.title("Progress")
store = web.store()
did = web.deliberation_picker()
if did is None:
    st.stop()


@st.fragment(run_every=10)
def live() -> None:
    steps = store.progress(did).set_index("step")["participants"]
    reached = pd.Series({STEP_TITLES[s]: int(steps.get(s, 0)) for s in STEPS}, name="participants")
    activity = store.activity(did)
    people = store.participant_counts(did)
    a, b, c, d = st.columns(4)
    a.metric("Participants", people.taking_part, help="who agreed to take part (or whose data was imported)")
    b.metric("Values cards", int((activity["kind"] == "card").sum()))
    c.metric("Wiser-than answers", int((activity["kind"] == "wiser").sum()))
    d.metric("Votes and comparisons", int(activity["kind"].isin(["endorse", "compare"]).sum()))
    left, right = st.columns(2)
    with left:
        st.subheader("Where participants are")
        st.bar_chart(reached, horizontal=True)
    with right:
        st.subheader("Cards per question")
        questions = store.questions(did).set_index("id")["title"]
        cards = activity[activity["kind"] == "card"]["question_id"].map(questions).value_counts()
        st.bar_chart(cards.rename("cards"), horizontal=True)
    if not activity.empty:
        st.subheader("Answers over time")
        span = activity["created_at"].max() - activity["created_at"].min()
        freq = "D" if span > pd.Timedelta(days=3) else "h"
        over_time = (activity.assign(when=activity["created_at"].dt.floor(freq))
                     .pivot_table(index="when", columns="kind", values="question_id", aggfunc="size", fill_value=0)
                     .cumsum())
        st.line_chart(over_time)
    signup(people)
    failed_runs = store.runs(deliberation_id=did)
    failed_runs = failed_runs[failed_runs["status"] == "failed"]
    llm = store.interviewer_failures(did)
    if len(failed_runs) or len(llm):
        st.subheader("Problems")
        if len(failed_runs):
            st.warning(f"{len(failed_runs)} analysis run(s) failed; run them again once the cause is fixed "
                       "(work already done, such as embedded cards, is kept).")
            st.dataframe(failed_runs[["id", "kind", "error", "started_at"]], hide_index=True)
        if len(llm):
            st.warning(f"The LLM interviewer failed {len(llm)} time(s); those participants continued in the "
                       "guided interview with what they had written.")
            people = store.id_map(did, "participant")
            st.dataframe(llm.assign(participant_id=people.publics(llm["participant_id"])), hide_index=True)
    st.caption(f"Updated every 10 seconds · {pd.Timestamp.now(tz='UTC'):%H:%M:%S} UTC")


def signup(people) -> None:
    """Invited people not started yet, open sign-up against its limits, and empty sign-ups to remove."""
    notes = []
    if people.invited_not_started:
        notes.append(f"{people.invited_not_started} invited participant(s) have not started yet")
    if store.deliberation(did)["open_signup"] or people.joined_by_link:
        limits = people.limits
        notes.append(f"open sign-up: {people.joined_by_link} of at most {limits.participants} joined by the link,"
                     f" {people.joined_last_hour} of at most {limits.per_hour} in the last hour"
                     " (`signup_limits` in the definition on the Setup page)")
    if notes:
        st.caption("; ".join(notes).capitalize() + ".")
    if people.empty_signups:
        st.warning(f"{people.empty_signups} participant(s) opened the open sign-up link but never agreed to take part"
                   " (before sign-up waited for consent, every visit made one). They hold no answers and are left"
                   " out of the counts above and the exports.")
        if st.button(f"Remove the {people.empty_signups} empty sign-up(s)", key="remove_empty_signups"):
            removed = store.remove_empty_signups(did, actor_id=actor)
            st.success(f"Removed {removed} empty sign-up(s).")


live()
