"""Helpers for page tests under AppTest: open the app as a visitor or as a signed-in staff member."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from workbench import auth, config

APP = str(config.APP)


def staff_page(store, username: str, password: str, path: str) -> AppTest:
    """The app in a session that signed in as `username`, switched to the page at `path`."""
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state[auth.WEB_TOKEN_KEY] = auth.sign_in(store, username, password).token
    at.run()
    at.switch_page(path).run()
    assert not at.exception, at.exception
    return at
