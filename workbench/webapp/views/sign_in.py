"""Staff sign-in: facilitators and researchers sign in with the account an administrator made
(`workbench user add`), or through the OpenID Connect provider secrets.toml configures. Thin:
`workbench.auth` checks the password and slows down guessing; this page asks, tells, and hands the
session to main.py through the session state and to the browser's cookie through the session endpoint
(webapp/endpoints.py); main.py turns a provider identity into a session the same way."""

from __future__ import annotations

import streamlit as st

from workbench import auth, web
from workbench.webapp import endpoints

st.title("Staff sign-in")
notice = st.session_state.pop(auth.WEB_NOTICE_KEY, None)
if notice:
    st.info(notice)
st.write("For facilitators and researchers. Taking part? Please open the invite link you were sent.")

providers = web.sso_providers()
if web.sso_identity() is not None:
    if st.button("Sign out of single sign-on"):
        st.logout()
elif providers:
    for provider, label in providers:
        if st.button(label, key=f"sso_{provider}", type="primary"):
            st.login(provider)
    st.caption("…or with a username and password:")

with st.form("sign_in"):
    username = st.text_input("Username", max_chars=64, autocomplete="username")
    password = st.text_input("Password", type="password", max_chars=auth.MAX_PASSWORD_LENGTH,
                             autocomplete="current-password")
    submitted = st.form_submit_button("Sign in", type="primary")

if submitted:
    try:
        session = auth.sign_in(web.store(), username, password)
    except auth.SignInRefused as exc:
        st.error(str(exc))
    else:
        if session is None:
            # One message for every failure, so it never says whether the username exists.
            st.error("Wrong username or password.")
        else:
            st.session_state[auth.WEB_TOKEN_KEY] = session.token
            st.session_state[auth.WEB_LANDING_KEY] = True
            st.session_state.pop(auth.WEB_SIGNED_OUT_KEY, None)
            # The session endpoint gives the browser the cookie that keeps it signed in for reloads and
            # new tabs, and sends it on to the page it asked for. Without the endpoints (a bare
            # `streamlit run`), the sign-in lasts for this tab: main.py lands it on the next run.
            url = endpoints.cookie_handoff_url(session, st.session_state.get(auth.WEB_NEXT_KEY))
            if url is None:
                st.rerun()
            st.success("Signed in. Opening your page…")
            web.send_browser_to(url)
