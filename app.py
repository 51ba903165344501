"""The Values Workbench web app: routes each visitor to the pages their role may see.

A participant arrives with `?invite=TOKEN` (or `?join=DELIBERATION` where open sign-up is on) and
sees only their own flow; everyone else sees the welcome page. Pages live in pages/.
"""

from __future__ import annotations

import streamlit as st

from workbench import web
from workbench.participation import resolve_visitor

st.set_page_config(page_title="Values Workbench", page_icon="🧭", layout="wide")

visitor = resolve_visitor(web.store(), st.query_params)

if visitor.kind == "participant":
    st.session_state["participant_id"] = visitor.participant_id
    if visitor.new_token:
        # Open sign-up: swap the join link for the participant's own resumable invite link.
        st.query_params.clear()
        st.query_params["invite"] = visitor.new_token
    pages = [st.Page("pages/participant.py", title="Your values", icon="🧭", url_path="participate", default=True)]
elif visitor.kind == "denied":
    st.session_state.pop("participant_id", None)
    st.error(visitor.message)
    st.stop()
else:
    pages = [st.Page("pages/home.py", title="Welcome", icon="🏠", default=True)]

st.navigation(pages, position="sidebar" if len(pages) > 1 else "hidden").run()
