"""Joining by the open sign-up link: the deliberation's consent, and nothing stored until the visitor agrees.

Thin: agreeing is one store call (`store.sign_up`), which makes the participant with their consent in one
transaction, within the deliberation's sign-up limits; the link is then swapped for the participant's
own invite link, which brings them back to where they left off. A visitor who only looks leaves nothing.
"""

from __future__ import annotations

import streamlit as st

from workbench import participation as P
from workbench import web
from workbench.markdown import literal

store = web.store()
if "joining_deliberation" not in st.session_state:  # opened by its file URL, not by a join link
    st.error("Please open the link you were sent.")
    st.stop()
delib = store.deliberation(st.session_state["joining_deliberation"])

st.title(literal(delib["title"]))
st.progress(1 / len(P.STEPS), text=f"Step 1 of {len(P.STEPS)}: {P.STEP_TITLES['consent']}")
st.text(delib["consent_text"])
agreed = st.checkbox("I have read this and agree to take part", key="consent_box")
if st.button("Continue", type="primary", disabled=not agreed):
    joined = store.sign_up(delib["id"])  # a full or paused sign-up is a Conflict: its message is shown
    st.query_params.clear()
    st.query_params["invite"] = joined.token  # their own link from now on (it resumes where they are)
    st.session_state.pop("joining_deliberation", None)
    st.rerun()
