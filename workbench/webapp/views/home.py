"""The welcome page for visitors without an invite link (main.py shows it at "/")."""

from __future__ import annotations

from urllib.parse import quote

import streamlit as st

from workbench import web
from workbench.markdown import literal


def show() -> None:
    st.title("Values Workbench")
    st.write(
        "Find out what a community values, where its groups agree and where they part ways. "
        "Participants describe what they pay attention to when choosing well, then judge one another's values; "
        "the workbench builds a moral graph and shows where communities disagree and which values bridge them."
    )
    st.subheader("Taking part")
    st.write("Open the invite link you were sent. It looks like `http://HOST:8501/?invite=…` and brings you "
             "back to where you left off whenever you open it again.")
    open_ones = web.store().deliberations()
    open_ones = open_ones[open_ones["open_signup"]]
    for row in open_ones.itertuples():
        # The title is shown as typed (it cannot end the link or add an image); the id is a slug.
        st.markdown(f"- [Join “{literal(row.title)}”](?join={quote(str(row.id), safe='')})")
