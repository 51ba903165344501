"""The Values Workbench web app: routes each visitor to the pages their role may see.

A participant arrives with `?invite=TOKEN` and sees only their own flow, whatever else the browser
holds. Someone with `?join=DELIBERATION` (where open sign-up is on) sees its consent page; agreeing
makes them a participant and swaps the link for their own invite link. Everyone else sees the welcome page and
"Staff sign-in"; a signed-in facilitator or researcher sees exactly the pages
`workbench.auth.PAGES_BY_ROLE` gives their role, each at its own URL path (/facilitator-progress,
...). A page not in the visitor's list cannot be opened, not even by its URL: `st.navigation` runs
only the pages it is given. A signed-out visit to a staff page's URL gets the sign-in page, and
after signing in the browser lands on the page it asked for. Pages live in views/.

Staff stay signed in across reloads and tabs through the staff session cookie, which only the
server's own endpoint sets (webapp/endpoints.py) and only the server reads: Streamlit hands this
script the cookies of the WebSocket handshake (`st.context.cookies`), never page JavaScript.
"""

from __future__ import annotations

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from workbench import auth, web
from workbench.participation import resolve_visitor
from workbench.webapp import endpoints
from workbench.webapp.views import home

# The session token of a signed-in staff member, once this browser session has checked it: from the
# cookie, or from signing in just now (the cookie follows when the browser comes back from the
# session endpoint). The store keeps only its hash.
STAFF_TOKEN, GO_TO_LANDING, SIGN_IN_NOTICE = auth.WEB_TOKEN_KEY, auth.WEB_LANDING_KEY, auth.WEB_NOTICE_KEY
STAFF_NEXT, SIGNED_OUT = auth.WEB_NEXT_KEY, auth.WEB_SIGNED_OUT_KEY

st.set_page_config(page_title="Values Workbench", page_icon="🧭", layout="wide")

with web.shown_errors("opening the app"):
    store = web.store()
    # The browser session's id lets repeated refused invite links from one session be slowed down.
    visitor = resolve_visitor(store, st.query_params, client=get_script_run_ctx().session_id)


def staff_page(page: auth.StaffPage) -> st.Page:
    return st.Page(page.path, title=page.title, icon=page.icon, url_path=page.url_path)


def sign_out() -> None:
    auth.sign_out(store, st.session_state.pop(STAFF_TOKEN, None))
    # Neither the handshake's cookie (ended now) nor a provider identity signs this tab in again.
    st.session_state[SIGNED_OUT] = True
    st.session_state[GO_TO_LANDING] = True
    # Delete the cookie, and end the single sign-on identity too if that is how they came in.
    single_sign_on = web.sso_identity() is not None
    url = endpoints.sign_out_url(single_sign_on=single_sign_on)
    if url is not None:
        web.send_browser_to(url)
    elif single_sign_on:
        st.session_state["sso_sign_out"] = True  # no endpoints: st.logout on the next run does it


def front_page() -> None:
    """The page at "/": a signed-in staff member goes on to their landing page; anyone else is welcomed.

    One callable for both, so that signing in or out never finds "/" taken by a different page.
    """
    if user is not None:
        st.switch_page(landing)
    home.show()


def staff_token() -> str | None:
    """The token this browser session signs in with: already checked, or from the cookie."""
    token = st.session_state.get(STAFF_TOKEN)
    if token is None and not st.session_state.get(SIGNED_OUT):
        cookie = st.context.cookies.get(auth.STAFF_COOKIE)
        token = auth.cookie_token(auth.cookie_key(store), cookie)
        if token is not None and st.session_state.get("staff_stale_cookie") == token:
            token = None  # already found ended in this browser session; do not say so on every run
    return token


if visitor.kind in ("participant", "joining"):
    # An invite link never opens a staff page, even in a browser that has signed in.
    st.session_state.pop(STAFF_TOKEN, None)
    st.session_state.pop("staff_user_id", None)
    if visitor.kind == "participant":
        st.session_state["participant_id"] = visitor.participant_id
        view = "views/participant.py"
    else:  # the open sign-up link: its consent page makes the participant when they agree
        st.session_state.pop("participant_id", None)
        st.session_state["joining_deliberation"] = visitor.deliberation_id
        view = "views/join.py"
    pages = [st.Page(view, title="Your values", icon="🧭", url_path="participate", default=True)]
elif visitor.kind == "denied":
    st.session_state.pop("participant_id", None)
    st.error(visitor.message)
    st.stop()
else:
    identity = web.sso_identity()
    if st.session_state.pop("sso_sign_out", False) and identity is not None:
        st.logout()  # clears the provider identity cookie and starts afresh
    token = staff_token()
    user = auth.session_user(store, token)
    if user is None and token is not None:
        # Expired, signed out elsewhere, or the account was disabled.
        st.session_state.pop(STAFF_TOKEN, None)
        st.session_state["staff_stale_cookie"] = token
        st.session_state[SIGN_IN_NOTICE] = "Your session has ended. Please sign in again."
        st.session_state[GO_TO_LANDING] = True
    elif user is not None:
        st.session_state[STAFF_TOKEN] = token
    if (user is None and identity is not None and not st.session_state.get(SIGNED_OUT)
            and st.session_state.get("sso_refused") != identity.get("email")):
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
            st.session_state.pop(SIGNED_OUT, None)
            user = session.user
            url = endpoints.cookie_handoff_url(session, st.session_state.get(STAFF_NEXT))
            if url is not None:  # the browser comes back with the cookie, on its landing page
                web.send_browser_to(url)
                st.stop()
        st.session_state[GO_TO_LANDING] = True
    # The signed-in user's id, for pages that log who did what (store.record_audit's actor).
    st.session_state["staff_user_id"] = None if user is None else user.id
    if user is None:
        sign_in_page = st.Page("views/sign_in.py", title="Staff sign-in", icon="🔑", url_path="sign-in")
        pages = [st.Page(front_page, title="Welcome", icon="🏠", default=True), sign_in_page]
        landing = sign_in_page if SIGN_IN_NOTICE in st.session_state else pages[0]
        if web.requested_page() in auth.STAFF_URL_PATHS:
            # A bookmarked staff page: sign in first, then land there (views/sign_in.py hands it on).
            st.session_state[STAFF_NEXT] = web.requested_page()
            st.session_state.setdefault(SIGN_IN_NOTICE, "Please sign in to open this page.")
            landing = sign_in_page
            st.session_state[GO_TO_LANDING] = True
    else:
        staff_pages = [staff_page(p) for p in user.pages]
        landing = staff_pages[user.pages.index(auth.staff_destination(user.role, st.session_state.get(STAFF_NEXT)))]
        # The address "/" belongs to the default page, whose own path is lost; the front page takes it
        # (out of the menu) and passes on to the landing page, so that every staff page keeps its own
        # path (a bookmark opens it) and "/", or a page not theirs, leads to the landing page.
        front = st.Page(front_page, title="Welcome", icon="🏠", default=True, visibility="hidden")
        pages = {user.role.title(): [front, *staff_pages]}
        with st.sidebar:
            st.caption(f"Signed in as **{user.username}** ({user.role})")
            st.button("Sign out", on_click=sign_out, key="sign_out")
    if st.session_state.pop(GO_TO_LANDING, False):
        # Just signed in or out, or asked for a staff page signed out: go to where this visitor lands,
        # before st.navigation would look up the page asked for (not in the list) and say "not found".
        if user is not None:
            st.session_state.pop(STAFF_NEXT, None)
        st.switch_page(landing)

if isinstance(pages, list):
    page = st.navigation(pages, position="sidebar" if len(pages) > 1 else "hidden")
else:
    page = st.navigation(pages, position="sidebar")
with web.shown_errors(f"page {page.title}"):  # a bug in a page shows an error id, never a trace
    page.run()
