"""The Values Workbench web app: routes each visitor to the pages their role may see.

A participant arrives with `?invite=TOKEN` (or `?join=DELIBERATION` where open sign-up is on) and
sees only their own flow, whatever else the browser session holds. Everyone else sees the welcome
page and "Staff sign-in"; a signed-in facilitator or researcher sees exactly the pages
`workbench.auth.PAGES_BY_ROLE` gives their role. A page not in the visitor's list cannot be opened,
not even by its URL: `st.navigation` runs only the pages it is given. Pages live in pages/.
"""

from __future__ import annotations

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from workbench import auth, web
from workbench.participation import resolve_visitor

# The staff session token lives only in st.session_state (server memory for this browser session;
# no cookie, so a reload or a new tab means signing in again); the store keeps only its hash.
STAFF_TOKEN, GO_TO_LANDING, SIGN_IN_NOTICE = auth.WEB_TOKEN_KEY, auth.WEB_LANDING_KEY, auth.WEB_NOTICE_KEY

st.set_page_config(page_title="Values Workbench", page_icon="🧭", layout="wide")

with web.shown_errors("opening the app"):
    store = web.store()
    # The browser session's id lets repeated refused invite links from one session be slowed down.
    visitor = resolve_visitor(store, st.query_params, client=get_script_run_ctx().session_id)


def staff_page(page: auth.StaffPage) -> st.Page:
    return st.Page(page.path, title=page.title, icon=page.icon, url_path=page.url_path)


def sign_out() -> None:
    auth.sign_out(store, st.session_state.pop(STAFF_TOKEN, None))
    st.session_state[GO_TO_LANDING] = True
    st.session_state["sso_sign_out"] = True  # and out of single sign-on, if that is how they came in


if visitor.kind == "participant":
    # An invite link never opens a staff page, even in a browser session that had signed in.
    st.session_state.pop(STAFF_TOKEN, None)
    st.session_state.pop("staff_user_id", None)
    st.session_state["participant_id"] = visitor.participant_id
    if visitor.new_token:
        # Open sign-up: swap the join link for the participant's own resumable invite link.
        st.query_params.clear()
        st.query_params["invite"] = visitor.new_token
    pages = [st.Page("views/participant.py", title="Your values", icon="🧭", url_path="participate", default=True)]
elif visitor.kind == "denied":
    st.session_state.pop("participant_id", None)
    st.error(visitor.message)
    st.stop()
else:
    identity = web.sso_identity()
    if st.session_state.pop("sso_sign_out", False) and identity is not None:
        st.logout()  # clears the provider identity cookie and starts afresh
    user = auth.session_user(store, st.session_state.get(STAFF_TOKEN))
    if user is None and st.session_state.pop(STAFF_TOKEN, None):
        # Expired, signed out elsewhere, or the account was disabled.
        st.session_state[SIGN_IN_NOTICE] = "Your session has ended. Please sign in again."
        st.session_state[GO_TO_LANDING] = True
    if user is None and identity is not None and st.session_state.get("sso_refused") != identity.get("email"):
        # Signed in through the OpenID Connect provider: a staff session if the email belongs to an account.
        session = auth.single_sign_on(store, identity)
        if session is None:
            st.session_state["sso_refused"] = identity.get("email")
            st.session_state[SIGN_IN_NOTICE] = (
                f"You signed in with your provider as {identity.get('email') or 'someone without an email'},"
                " but no staff account uses that verified email. Ask an administrator to run"
                " `workbench user set-email USERNAME EMAIL`, or sign out of single sign-on below.")
        else:
            st.session_state[STAFF_TOKEN] = session.token
            user = session.user
        st.session_state[GO_TO_LANDING] = True
    # The signed-in user's id, for pages that log who did what (store.record_audit's actor).
    st.session_state["staff_user_id"] = None if user is None else user.id
    if user is None:
        sign_in_page = st.Page("views/sign_in.py", title="Staff sign-in", icon="🔑", url_path="sign-in")
        pages = [st.Page("views/home.py", title="Welcome", icon="🏠", default=True), sign_in_page]
        landing = sign_in_page if SIGN_IN_NOTICE in st.session_state else pages[0]
    else:
        pages = {user.role.title(): [staff_page(p) for p in user.pages]}
        landing = pages[user.role.title()][0]
        with st.sidebar:
            st.caption(f"Signed in as **{user.username}** ({user.role})")
            st.button("Sign out", on_click=sign_out, key="sign_out")
    if st.session_state.pop(GO_TO_LANDING, False):
        # Just signed in or out: go to where this visitor lands, before st.navigation would look up
        # the previous page (no longer in the list) and report it as not found.
        st.switch_page(landing)

if isinstance(pages, list):
    page = st.navigation(pages, position="sidebar" if len(pages) > 1 else "hidden")
else:
    page = st.navigation(pages, position="sidebar")
with web.shown_errors(f"page {page.title}"):  # a bug in a page shows an error id, never a trace
    page.run()
