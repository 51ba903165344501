"""Staff accounts on a temporary DuckDB file: password hashing, sign-in, sessions, slowing down
repeated failures (with an injected clock, never by waiting), the audit log and the `workbench user`
commands."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pandas as pd
import pytest
from argon2 import PasswordHasher
from typer.testing import CliRunner

from workbench import auth, config
from workbench.cli import app
from workbench.errors import InputError, NotFound
from workbench.store import Store, hash_token
from workbench.store.accounts import UsernameTaken
from workbench.store.core import SCHEMAS

T0 = datetime(2025, 3, 1, 12, 0, 0)
PASSWORD = "correct horse battery"


pytestmark = pytest.mark.both_backends


@pytest.fixture
def store(db_target):
    s = Store(db_target)
    yield s
    s.close()


@pytest.fixture
def quick_hashing(monkeypatch):
    """Cheap argon2 parameters: these tests count attempts, they do not measure hashing cost."""
    monkeypatch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    monkeypatch.setattr(auth, "_dummy_hash", None)


class Pauses:
    """Stands in for time.sleep: records the pauses instead of taking them."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


# -- passwords and accounts ---------------------------------------------------------------------


def test_passwords_are_stored_only_as_salted_argon2id_hashes(store):
    first, second = auth.hash_password(PASSWORD), auth.hash_password(PASSWORD)
    assert first.startswith("$argon2id$") and first != second  # a fresh salt each time
    assert auth.verify_password(first, PASSWORD) and auth.verify_password(second, PASSWORD)
    assert not auth.verify_password(first, PASSWORD + "!")
    assert not auth.verify_password("not a hash", PASSWORD)

    user_id = auth.create_user(store, "Alice", "facilitator", PASSWORD)
    row = store.user("alice")
    assert row["id"] == user_id and row["role"] == "facilitator"
    assert PASSWORD not in row["password_hash"] and auth.verify_password(row["password_hash"], PASSWORD)
    assert "password_hash" not in store.users().columns  # listings never carry hashes
    assert list(store.users()["username"]) == ["alice"]


def test_new_accounts_are_validated(store, quick_hashing):
    with pytest.raises(auth.AccountError, match="at least 10"):
        auth.create_user(store, "bob", "researcher", "short")
    with pytest.raises(auth.AccountError, match="role"):
        auth.create_user(store, "bob", "admin", PASSWORD)
    with pytest.raises(auth.AccountError, match="username"):
        auth.create_user(store, "b o b", "researcher", PASSWORD)
    with pytest.raises(InputError, match="role"):
        store.add_user("bob", "admin", auth.hash_password(PASSWORD))
    auth.create_user(store, "bob", "researcher", PASSWORD)
    with pytest.raises(UsernameTaken, match="'bob' already exists"):
        auth.create_user(store, " BOB ", "facilitator", PASSWORD)
    assert list(store.users()["role"]) == ["researcher"]


def test_roles_in_code_match_the_schema():
    sql = (SCHEMAS / "002_accounts.sql").read_text()
    allowed = re.search(r"CHECK \(role IN \(([^)]*)\)\)", sql).group(1)
    assert sorted(r.strip(" '") for r in allowed.split(",")) == sorted(auth.ROLES)
    assert set(auth.PAGES_BY_ROLE) == set(auth.ROLES)


def test_every_role_has_its_own_existing_pages_and_each_checks_the_role_itself():
    for role, pages in auth.PAGES_BY_ROLE.items():
        assert pages, role
        for page in pages:
            source = (config.APP.parent / page.path).read_text()
            # Streamlit may run a file in pages/ without app.py (see auth.staff_page_user).
            assert "web.require_staff(__file__)" in source, f"{page.path} lacks the staff page guard"
    facilitator = {p.path for p in auth.pages_for("facilitator")}
    researcher = {p.path for p in auth.pages_for("researcher")}
    # Both review the graph and the disagreement views; only facilitators set up and moderate,
    # only researchers export.
    assert facilitator & researcher == {"views/moral_graph.py", "views/disagreement.py", "views/report.py"}
    assert {"views/facilitator_setup.py", "views/facilitator_moderation.py"} <= facilitator - researcher
    assert researcher - facilitator == {"views/researcher_exports.py"}
    assert auth.pages_for("participant") == ()


# -- signing in, sessions -----------------------------------------------------------------------


def test_sign_in_starts_a_session_whose_token_only_the_browser_keeps(store):
    auth.create_user(store, "alice", "facilitator", PASSWORD)
    pauses = Pauses()
    session = auth.sign_in(store, " Alice", PASSWORD, now=T0, sleep=pauses)
    assert session is not None and pauses.calls == []
    assert session.user.username == "alice" and session.user.role == "facilitator"
    assert session.expires_at == T0 + auth.SESSION_LIFETIME == T0 + timedelta(hours=8)
    assert session.token not in repr(session)
    assert store.staff_session(session.token) is None  # stored under its hash only
    assert store.staff_session(hash_token(session.token))["username"] == "alice"

    who = auth.session_user(store, session.token, now=T0 + timedelta(hours=7, minutes=59))
    assert who == auth.StaffUser(session.user.id, "alice", "facilitator")
    assert [p.url_path for p in who.pages] == ["facilitator-setup", "facilitator-progress", "facilitator-moderation",
                                              "moral-graph", "disagreement", "report"]
    assert auth.session_user(store, session.token, now=T0 + timedelta(hours=8)) is None  # expired
    assert auth.session_user(store, "made-up-token", now=T0) is None
    assert auth.session_user(store, None) is None

    auth.sign_out(store, session.token)
    assert auth.session_user(store, session.token, now=T0) is None
    auth.sign_out(store, session.token)  # twice is fine
    auth.sign_out(store, None)


def test_wrong_password_or_unknown_user_is_refused_after_a_pause(store):
    auth.create_user(store, "alice", "facilitator", PASSWORD)
    pauses = Pauses()
    assert auth.sign_in(store, "alice", PASSWORD.upper(), now=T0, sleep=pauses) is None
    assert auth.sign_in(store, "mallory", PASSWORD, now=T0, sleep=pauses) is None
    assert auth.sign_in(store, "not a valid name!", PASSWORD, now=T0, sleep=pauses) is None
    assert auth.sign_in(store, "alice", "", now=T0, sleep=pauses) is None
    assert pauses.calls == [auth.POLICY.failure_pause] * 4 and auth.POLICY.failure_pause > 0
    assert store.recent_failures("alice", since=T0 - timedelta(minutes=1)) == [T0, T0]
    assert store.recent_failures("mallory", since=T0 - timedelta(minutes=1)) == [T0]


def test_a_disabled_account_cannot_sign_in_and_its_sessions_stop(store):
    user_id = auth.create_user(store, "alice", "researcher", PASSWORD)
    session = auth.sign_in(store, "alice", PASSWORD, now=T0)
    store.disable_user(user_id)
    assert auth.session_user(store, session.token, now=T0) is None
    assert auth.sign_in(store, "alice", PASSWORD, now=T0, sleep=Pauses()) is None


def test_a_new_password_replaces_the_old_one(store, quick_hashing):
    auth.create_user(store, "alice", "researcher", PASSWORD)
    auth.change_password(store, "ALICE", "a brand new passphrase")
    assert auth.sign_in(store, "alice", PASSWORD, now=T0, sleep=Pauses()) is None
    assert auth.sign_in(store, "alice", "a brand new passphrase", now=T0) is not None
    with pytest.raises(auth.AccountError, match="at least 10"):
        auth.change_password(store, "alice", "short")
    with pytest.raises(NotFound, match="no user named 'nobody'"):
        auth.change_password(store, "nobody", "a brand new passphrase")


# -- slowing down repeated failures -------------------------------------------------------------


def test_the_lock_grows_with_failures_and_is_capped():
    policy = auth.SignInPolicy()
    minutes = [policy.lock_for(n) / timedelta(minutes=1) for n in range(0, 11)]
    assert minutes == [0, 0, 0, 0, 0, 1, 2, 4, 8, 15, 15]


def fail(store, username: str, at: datetime, pauses: Pauses | None = None) -> None:
    assert auth.sign_in(store, username, "wrong password!", now=at, sleep=pauses or Pauses()) is None


def test_five_failures_lock_the_username_even_for_the_right_password(store, quick_hashing):
    auth.create_user(store, "alice", "facilitator", PASSWORD)
    auth.create_user(store, "bob", "facilitator", PASSWORD)
    for i in range(4):
        fail(store, "alice", T0 + timedelta(seconds=i))
    assert auth.locked_until(store, "alice", now=T0 + timedelta(seconds=5)) is None  # 4 are tolerated
    fail(store, "alice", T0 + timedelta(seconds=4))

    now = T0 + timedelta(seconds=10)
    with pytest.raises(auth.SignInRefused, match="try again in 1 minute") as refused:
        auth.sign_in(store, "alice", PASSWORD, now=now)
    assert refused.value.locked_until == T0 + timedelta(seconds=4, minutes=1)
    assert refused.value.retry_after == timedelta(seconds=54)
    # A refused attempt checks no password and adds nothing; other usernames are unaffected.
    assert len(store.recent_failures("alice", since=T0 - timedelta(minutes=1))) == 5
    assert auth.sign_in(store, "bob", PASSWORD, now=now) is not None

    # Once the lock has passed, the right password works and clears the slate.
    assert auth.sign_in(store, "alice", PASSWORD, now=T0 + timedelta(seconds=4, minutes=1)) is not None
    fail(store, "alice", T0 + timedelta(minutes=2))
    assert auth.locked_until(store, "alice", now=T0 + timedelta(minutes=2, seconds=1)) is None


def test_each_further_failure_doubles_the_lock(store, quick_hashing):
    for i in range(5):
        fail(store, "alice", T0 + timedelta(seconds=i))  # no such account: guessing is slowed down all the same
    last = T0 + timedelta(seconds=4)
    for expected in (1, 2, 4):
        until = auth.locked_until(store, "alice", now=last)
        assert until == last + timedelta(minutes=expected)
        with pytest.raises(auth.SignInRefused):
            auth.sign_in(store, "alice", PASSWORD, now=until - timedelta(seconds=1))
        last = until
        fail(store, "alice", last)  # allowed again at `until`, and wrong again


def test_failures_older_than_the_window_are_forgiven(store, quick_hashing):
    auth.create_user(store, "alice", "facilitator", PASSWORD)
    for i in range(5):
        fail(store, "alice", T0 + timedelta(seconds=i))
    later = T0 + auth.POLICY.window + timedelta(seconds=5)
    assert auth.locked_until(store, "alice", now=later) is None
    assert auth.sign_in(store, "alice", PASSWORD, now=later) is not None


# -- demo accounts and the audit log ------------------------------------------------------------


def test_demo_accounts_are_created_once_and_never_reset(store, quick_hashing):
    assert auth.ensure_demo_users(store) == ["facilitator", "researcher"]
    assert auth.sign_in(store, "facilitator", "demo-facilitator", now=T0).user.role == "facilitator"
    assert auth.sign_in(store, "researcher", "demo-researcher", now=T0).user.role == "researcher"
    auth.change_password(store, "facilitator", "a real passphrase")
    assert auth.ensure_demo_users(store) == []
    assert auth.sign_in(store, "facilitator", "demo-facilitator", now=T0, sleep=Pauses()) is None
    assert len(store.users()) == 2


def test_audit_log_round_trip(store, quick_hashing):
    alice = auth.create_user(store, "alice", "facilitator", PASSWORD)
    first = store.record_audit("demo", alice, "hide_card", "card:12", {"reason": "off topic"})
    store.record_audit("other", None, "export", None)
    store.record_audit("demo", alice, "merge_values", "canonical:3", {"into": 4})
    log = store.audit_log("demo")
    assert list(log["action"]) == ["hide_card", "merge_values"] and log["id"].iloc[0] == first
    assert list(log["actor"]) == ["alice", "alice"]
    assert log["details"].iloc[0] == {"reason": "off topic"} and log["target"].iloc[1] == "canonical:3"
    everything = store.audit_log()
    assert len(everything) == 3 and everything["actor"].isna().sum() == 1
    assert list(store.audit_log(action="export")["deliberation_id"]) == ["other"]
    assert store.audit_log("nowhere").empty


# -- `workbench user` ---------------------------------------------------------------------------

runner = CliRunner()


def test_user_add_reads_the_password_from_stdin_or_asks_twice(tmp_path, quick_hashing):
    db = str(tmp_path / "cli.duckdb")
    result = runner.invoke(app, ["user", "add", "Alice", "--role", "researcher", "--password-stdin", "--db", db],
                           input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    assert "user 'alice' (researcher) created" in result.output
    result = runner.invoke(app, ["user", "add", "bob", "--role", "facilitator", "--db", db],
                           input="first try 12345\nsecond try 1234\n" + "same twice 123\n" * 2)
    assert result.exit_code == 0, result.output
    assert "do not match" in result.output and PASSWORD not in result.output
    with Store(db) as s:
        assert auth.sign_in(s, "bob", "same twice 123", now=T0).user.role == "facilitator"
        assert auth.sign_in(s, "alice", PASSWORD, now=T0).user.role == "researcher"


def test_user_add_refuses_short_passwords_duplicates_and_unknown_roles(tmp_path, quick_hashing):
    db = str(tmp_path / "cli.duckdb")
    short = runner.invoke(app, ["user", "add", "carol", "--role", "researcher", "--password-stdin", "--db", db],
                          input="short\n")
    assert short.exit_code == 2 and "at least 10" in short.output
    ok = ["user", "add", "carol", "--role", "researcher", "--password-stdin", "--db", db]
    assert runner.invoke(app, ok, input=PASSWORD + "\n").exit_code == 0
    again = runner.invoke(app, ok, input=PASSWORD + "\n")
    assert again.exit_code == 2 and "already exists" in again.output
    bad_role = runner.invoke(app, ["user", "add", "dan", "--role", "admin", "--password-stdin", "--db", db],
                             input=PASSWORD + "\n")
    assert bad_role.exit_code != 0
    with Store(db) as s:
        assert list(s.users()["username"]) == ["carol"]


def test_ensure_demo_and_set_password_commands(tmp_path, quick_hashing):
    db = str(tmp_path / "cli.duckdb")
    first = runner.invoke(app, ["user", "ensure-demo", "--db", db])
    assert first.exit_code == 0 and "facilitator, researcher" in first.output
    changed = runner.invoke(app, ["user", "set-password", "facilitator", "--password-stdin", "--db", db],
                            input="not the demo one\n")
    assert changed.exit_code == 0, changed.output
    second = runner.invoke(app, ["user", "ensure-demo", "--db", db])
    assert second.exit_code == 0 and "already exist" in second.output
    with Store(db) as s:
        assert auth.sign_in(s, "facilitator", "not the demo one", now=T0) is not None
        assert auth.sign_in(s, "researcher", "demo-researcher", now=T0) is not None
    missing = runner.invoke(app, ["user", "set-password", "nobody", "--password-stdin", "--db", db],
                            input="long enough pw\n")
    assert missing.exit_code == 2 and "no user named 'nobody'" in missing.output


# -- single sign-on (OpenID Connect through st.login; the browser flow is tests/test_sso_browser.py) --


def test_single_sign_on_opens_the_account_whose_verified_email_the_provider_vouches_for(store, quick_hashing):
    fran = auth.create_user(store, "fran", "facilitator", None, email=" Fran@Example.ORG ")
    auth.create_user(store, "rhea", "researcher", PASSWORD)  # no email: password only
    session = auth.single_sign_on(store, {"email": "fran@example.org", "email_verified": True}, now=T0)
    assert session is not None and session.user.id == fran and session.user.role == "facilitator"
    assert auth.session_user(store, session.token, now=T0) == session.user
    # Refused: unverified (as a bool or as text), no email, an email no account has, a disabled account.
    for identity in ({"email": "fran@example.org", "email_verified": False},
                     {"email": "fran@example.org", "email_verified": "false"},
                     {"name": "Fran"}, {"email": "not an address"}, {"email": "rhea@example.org"}):
        assert auth.single_sign_on(store, identity, now=T0) is None, identity
    store.disable_user(fran)
    assert auth.single_sign_on(store, {"email": "fran@example.org"}, now=T0) is None
    attempts = store._rows("SELECT username, ok FROM sign_in_attempts ORDER BY id")
    assert attempts[0] == ("sso:fran@example.org", True)
    assert ("sso:rhea@example.org", False) in attempts and attempts[-1] == ("sso:fran@example.org", False)


def test_a_single_sign_on_only_account_cannot_sign_in_with_any_password(store, quick_hashing):
    auth.create_user(store, "fran", "facilitator", None, email="fran@example.org")
    assert auth.sign_in(store, "fran", "", now=T0, sleep=Pauses()) is None
    assert auth.sign_in(store, "fran", PASSWORD, now=T0, sleep=Pauses()) is None
    with pytest.raises(auth.AccountError, match="^password: required"):
        auth.create_user(store, "nomail", "facilitator", None)
    with pytest.raises(auth.AccountError, match="^email: "):
        auth.create_user(store, "badmail", "facilitator", None, email="fran at example")
    with pytest.raises(UsernameTaken, match="email"):
        auth.create_user(store, "twin", "researcher", PASSWORD, email="FRAN@example.org")
    assert list(store.users()["username"]) == ["fran"]


def test_sso_providers_follow_streamlits_auth_section():
    assert auth.sso_providers(None) == [] and auth.sso_providers({"redirect_uri": "x"}) == []
    default = {"redirect_uri": "x", "cookie_secret": "y", "client_id": "c", "label": "Sign in with Example"}
    assert auth.sso_providers(default) == [("default", "Sign in with Example")]
    named = {"redirect_uri": "x", "cookie_secret": "y", "google": {"client_id": "c"}, "okta": {"client_id": "d"}}
    assert auth.sso_providers(named) == [("google", "Sign in with Google"), ("okta", "Sign in with Okta")]


def test_user_commands_set_up_single_sign_on(tmp_path, quick_hashing):
    db = str(tmp_path / "cli.duckdb")
    added = runner.invoke(app, ["user", "add", "fran", "--role", "facilitator", "--email", "Fran@Example.org",
                                "--no-password", "--db", db])
    assert added.exit_code == 0 and "single sign-on as fran@example.org" in added.output, added.output
    lonely = runner.invoke(app, ["user", "add", "x1", "--role", "facilitator", "--no-password", "--db", db])
    assert lonely.exit_code == 2 and "--no-password: needs --email" in lonely.output
    runner.invoke(app, ["user", "add", "rhea", "--role", "researcher", "--password-stdin", "--db", db],
                  input=PASSWORD + "\n")
    taken = runner.invoke(app, ["user", "set-email", "rhea", "fran@example.org", "--db", db])
    assert taken.exit_code == 2 and "already has the email" in taken.output
    assert runner.invoke(app, ["user", "set-email", "rhea", "rhea@example.org", "--db", db]).exit_code == 0
    assert runner.invoke(app, ["user", "set-email", "fran", "none", "--db", db]).exit_code == 0
    with Store(db) as s:
        assert auth.single_sign_on(s, {"email": "rhea@example.org"}, now=T0).user.username == "rhea"
        assert auth.single_sign_on(s, {"email": "fran@example.org"}, now=T0) is None
        emails = s.users().set_index("username")["email"]
        assert pd.isna(emails["fran"]) and emails["rhea"] == "rhea@example.org"
