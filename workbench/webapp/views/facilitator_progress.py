"""Progress of a deliberation, updated live: participants per step, cards per question, answers over time."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from workbench import web
from workbench.participation import STEP_TITLES, STEPS

web.require_staff(__file__)
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
    a, b, c, d = st.columns(4)
    a.metric("Participants", len(store.participants(did)))
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


live()
