"""Who sees which pages, under AppTest: an anonymous visitor sees the welcome page and staff sign-in
only; a facilitator sees facilitator pages, a researcher researcher pages; an invite link shows the
participant's page and nothing else, whatever page it asks for; a wrong password, too many failures
and an expired session are answered plainly.

A page missing from a visitor's navigation cannot be switched to (AppTest raises ValueError, as
the browser gets "page not found"); a request for a page that is not the visitor's, carried over
from an earlier run in the same session, falls back to the visitor's own landing page.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from streamlit.testing.v1 import AppTest

from workbench import auth, config
from workbench.store import hash_token, open_store, utcnow

APP = str(config.APP)
PASSWORD = {"fran": "facilitator pass 1", "rhea": "researcher pass 1"}
FACILITATOR_PAGES = ["views/facilitator_setup.py", "views/facilitator_progress.py"]
RESEARCHER_PAGES = ["views/researcher_exports.py"]
STAFF_TITLES = {"Set up a deliberation", "Progress", "Exports"}


@pytest.fixture
def store(tmp_path, monkeypatch, demo_spec):
    path = tmp_path / "roles.duckdb"
    monkeypatch.setenv("WORKBENCH_DB", str(path))
    monkeypatch.delenv("WORKBENCH_LLM_BASE_URL", raising=False)
    # Cheap argon2 parameters and no pause on failure: these tests check who sees what, not timing.
    monkeypatch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    monkeypatch.setattr(auth, "_dummy_hash", None)
    monkeypatch.setattr(auth, "POLICY", auth.SignInPolicy(failure_pause=0))
    s = open_store(path)
    s.save_deliberation(demo_spec)
    auth.create_user(s, "fran", "facilitator", PASSWORD["fran"])
    auth.create_user(s, "rhea", "researcher", PASSWORD["rhea"])
    return s


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, at.exception
    return at


def visit(**query) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    for k, v in query.items():
        at.query_params[k] = v
    return run(at)


def titles(at: AppTest) -> list[str]:
    return [t.value for t in at.title]


def sign_in_with_form(username: str, password: str) -> AppTest:
    at = visit()
    run(at.switch_page("views/sign_in.py"))
    assert titles(at) == ["Staff sign-in"]
    at.text_input[0].input(username)
    at.text_input[1].input(password)
    at.button[0].click()
    return run(at)


def signed_in(username: str) -> AppTest:
    """An app session that already holds a staff session token (as after signing in)."""
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state[auth.WEB_TOKEN_KEY] = auth.sign_in(open_store(config.db_path()), username,
                                                        PASSWORD[username]).token
    return run(at)


def cannot_open(at: AppTest, pages: list[str]) -> None:
    """None of `pages` shows its content: either it is not in the navigation at all, or asking for
    it (as a URL would) shows something else."""
    for page in pages:
        try:
            at.switch_page(page)
        except ValueError as exc:  # not a page of this visitor's navigation
            assert "Could not find a navigation page" in str(exc)
            continue
        run(at)
        assert not STAFF_TITLES & set(titles(at)), (page, titles(at))


def test_an_anonymous_visitor_sees_the_welcome_page_and_staff_sign_in_only(store):
    at = visit()
    assert titles(at) == ["Values Workbench"]
    assert not at.sidebar.button  # no "Sign out"
    cannot_open(at, FACILITATOR_PAGES + RESEARCHER_PAGES)
    run(at.switch_page("views/sign_in.py"))
    assert titles(at) == ["Staff sign-in"]
    assert [t.label for t in at.text_input] == ["Username", "Password"]


def test_a_facilitator_signs_in_sees_facilitator_pages_and_signs_out(store):
    at = sign_in_with_form("Fran", PASSWORD["fran"])
    assert titles(at) == ["Set up a deliberation"]  # where a facilitator lands
    assert [c.value for c in at.sidebar.caption] == ["Signed in as **fran** (facilitator)"]
    assert at.session_state["staff_user_id"] == store.user("fran")["id"]
    token = at.session_state[auth.WEB_TOKEN_KEY]
    assert auth.session_user(store, token).role == "facilitator"
    run(at.switch_page("views/facilitator_progress.py"))
    assert titles(at) == ["Progress"]
    cannot_open(at, RESEARCHER_PAGES)
    with pytest.raises(ValueError):
        at.switch_page("views/sign_in.py")  # signed in: no sign-in page in the menu

    at.sidebar.button[0].click()  # "Sign out"
    run(at)
    assert titles(at) == ["Values Workbench"]
    assert auth.WEB_TOKEN_KEY not in at.session_state
    assert auth.session_user(store, token) is None  # the session is over, not just forgotten
    cannot_open(at, FACILITATOR_PAGES)


def test_a_researcher_sees_researcher_pages_and_not_facilitator_ones(store):
    at = sign_in_with_form("rhea", PASSWORD["rhea"])
    assert titles(at) == ["Exports"]
    assert [c.value for c in at.sidebar.caption] == ["Signed in as **rhea** (researcher)"]
    cannot_open(at, FACILITATOR_PAGES)

    # A browser session still pointing at a facilitator page, now holding a researcher's session,
    # gets the researcher's landing page, never the facilitator page.
    at = signed_in("fran")
    run(at.switch_page("views/facilitator_progress.py"))
    assert titles(at) == ["Progress"]
    at.session_state[auth.WEB_TOKEN_KEY] = auth.sign_in(store, "rhea", PASSWORD["rhea"]).token
    run(at)
    assert titles(at) == ["Exports"]


@pytest.mark.parametrize("staff_session_too", [False, True])
def test_an_invite_link_never_opens_a_staff_page(store, staff_session_too):
    (_, token), = store.create_invites("demo", 1)
    at = signed_in("fran")
    run(at.switch_page("views/facilitator_progress.py"))
    assert titles(at) == ["Progress"]
    if not staff_session_too:
        del at.session_state[auth.WEB_TOKEN_KEY]
    # The participant asks for the staff page three ways: its page in this session, ?page=, and the
    # staff session the browser session may still hold.
    at.query_params["invite"] = token
    at.query_params["page"] = "facilitator-progress"
    run(at)
    assert "Step 1 of 10" in " ".join(str(p.proto.text) for p in at.get("progress"))
    assert not STAFF_TITLES & set(titles(at))
    assert not at.sidebar.button and not at.sidebar.caption
    assert auth.WEB_TOKEN_KEY not in at.session_state
    cannot_open(at, FACILITATOR_PAGES + RESEARCHER_PAGES)


def test_a_wrong_password_or_unknown_user_shows_one_plain_error(store):
    for username, password in (("fran", "not her password"), ("nobody", PASSWORD["fran"])):
        at = sign_in_with_form(username, password)
        assert [e.value for e in at.error] == ["Wrong username or password."]
        assert titles(at) == ["Staff sign-in"]
        assert auth.WEB_TOKEN_KEY not in at.session_state
        cannot_open(at, FACILITATOR_PAGES)


def test_repeated_failures_refuse_even_the_right_password_for_a_while(store):
    for _ in range(auth.POLICY.max_failures):
        store.record_sign_in("fran", False)
    at = sign_in_with_form("fran", PASSWORD["fran"])
    assert len(at.error) == 1 and "Too many failed sign-ins" in at.error[0].value
    assert "try again in 1 minute" in at.error[0].value
    assert auth.WEB_TOKEN_KEY not in at.session_state
    # Another account is not held up by fran's failures.
    at = sign_in_with_form("rhea", PASSWORD["rhea"])
    assert titles(at) == ["Exports"]


def test_an_expired_session_goes_back_to_sign_in_with_a_notice(store):
    fran = store.user("fran")["id"]
    store.start_staff_session(hash_token("an-old-token"), fran, utcnow() - timedelta(minutes=1))
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state[auth.WEB_TOKEN_KEY] = "an-old-token"
    run(at)
    assert titles(at) == ["Staff sign-in"]
    assert [i.value for i in at.info] == ["Your session has ended. Please sign in again."]
    assert auth.WEB_TOKEN_KEY not in at.session_state
    cannot_open(at, FACILITATOR_PAGES)


def test_a_fresh_server_does_not_open_a_staff_page_by_its_file_name(store):
    # Before any st.navigation call (a server's first run; every AppTest run), Streamlit's legacy
    # pages-directory mode can run views/facilitator_setup.py directly for the URL /facilitator_setup.
    at = AppTest.from_file(APP, default_timeout=60)
    run(at.switch_page("views/facilitator_setup.py"))
    assert not STAFF_TITLES & set(titles(at))


@pytest.mark.parametrize("page, role, title", [
    ("views/facilitator_setup.py", "fran", "Set up a deliberation"),
    ("views/facilitator_progress.py", "fran", "Progress"),
    ("views/researcher_exports.py", "rhea", "Exports"),
])
def test_every_staff_page_checks_the_role_itself(store, page, role, title):
    other = {"fran": "rhea", "rhea": "fran"}[role]

    def open_page(username: str | None, **query) -> list[str]:
        at = AppTest.from_file(str(config.APP.parent / page), default_timeout=60)
        if username:
            at.session_state[auth.WEB_TOKEN_KEY] = auth.sign_in(store, username, PASSWORD[username]).token
        for k, v in query.items():
            at.query_params[k] = v
        return titles(run(at))

    assert open_page(role) == [title]
    assert open_page(None) == []
    assert open_page(other) == []
    (_, token), = store.create_invites("demo", 1)
    assert open_page(role, invite=token) == []
