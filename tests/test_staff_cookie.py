"""The staff session cookie and the app's own endpoints, without a browser.

`workbench.auth` signs and checks the cookie (an injected clock, never a wait); the endpoints of
`workbench.webapp.endpoints` run under Starlette's test client on a temporary database: the one-time
code becomes an HttpOnly, SameSite=Strict cookie once, sign-out deletes it and ends the session,
and only the holder of the serving record's key gets a snapshot. The browser tests
(test_staff_session_browser.py) show the same from Chromium against `workbench serve`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from http.cookies import SimpleCookie

import pytest
from argon2 import PasswordHasher
from starlette.applications import Starlette
from starlette.testclient import TestClient

from workbench import auth, config, serving
from workbench.store import Store, open_store
from workbench.webapp import endpoints

T0 = datetime(2025, 3, 1, 12, 0, 0)
KEY = bytes(range(32))
PASSWORD = "correct horse battery"


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    monkeypatch.setattr(auth, "_dummy_hash", None)
    monkeypatch.setenv("WORKBENCH_DB", str(tmp_path / "cookie.duckdb"))
    s = open_store(tmp_path / "cookie.duckdb")
    auth.create_user(s, "fran", "facilitator", PASSWORD)
    auth.create_user(s, "rhea", "researcher", PASSWORD)
    return s


@pytest.fixture
def client(store, monkeypatch):
    monkeypatch.setattr(endpoints, "SERVED", _Set())
    with TestClient(Starlette(routes=endpoints.ROUTES), follow_redirects=False) as c:
        yield c


class _Set:
    """Stands in for the event server.py's lifespan sets: these endpoints are served."""

    @staticmethod
    def is_set() -> bool:
        return True


def set_cookie(response) -> SimpleCookie:
    jar = SimpleCookie()
    for header in response.headers.get_list("set-cookie"):
        jar.load(header)
    return jar


# -- the cookie value ---------------------------------------------------------------------------------


def test_the_cookie_carries_token_and_expiry_under_a_signature():
    expires = T0 + auth.SESSION_LIFETIME
    value = auth.session_cookie(KEY, "the-token", expires)
    assert auth.cookie_token(KEY, value, now=T0) == "the-token"
    assert auth.cookie_token(KEY, value, now=expires - timedelta(seconds=1)) == "the-token"
    assert auth.cookie_token(KEY, value, now=expires) is None  # past its signed expiry
    assert auth.cookie_token(bytes(32), value, now=T0) is None  # another server's key

    token, stamp, signature = value.split(".")
    edited = [f"the-tokeN.{stamp}.{signature}", f"{token}.{int(stamp) + 3600}.{signature}",
              f"{token}.{stamp}.{signature[:-1]}A", f"{token}.{stamp}", f"{token}..{signature}"]
    for bad in [*edited, None, "", "x" * 201, "no dots at all", 42]:
        assert auth.cookie_token(KEY, bad, now=T0) is None, bad


def test_the_signing_key_is_made_once_and_kept(tmp_path):
    with Store(tmp_path / "keys.duckdb") as s:
        first = s.signing_key("staff-cookie", b"\x01" * 32)
        assert first == b"\x01" * 32
        assert s.signing_key("staff-cookie", b"\x02" * 32) == first  # the kept key wins
    with Store(tmp_path / "keys.duckdb") as s:  # and survives a restart
        assert s.signing_key("staff-cookie", b"\x03" * 32) == first
        assert auth.cookie_key(s) == first


def test_a_cookie_signs_in_only_while_its_session_lives(store):
    session = auth.sign_in(store, "fran", PASSWORD)
    value = auth.session_cookie(auth.cookie_key(store), session.token, session.expires_at)
    assert auth.cookie_user(store, value) == session.user
    auth.sign_out(store, session.token)
    assert auth.cookie_user(store, value) is None  # signed out: a kept copy of the cookie is worthless

    session = auth.sign_in(store, "fran", PASSWORD)
    value = auth.session_cookie(auth.cookie_key(store), session.token, session.expires_at)
    store.disable_user(session.user.id)
    assert auth.cookie_user(store, value) is None


# -- one-time codes ---------------------------------------------------------------------------------


def test_a_sign_in_code_works_once_and_only_for_a_minute(store, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(endpoints.time, "monotonic", lambda: clock[0])
    handoffs = endpoints.Handoffs()
    session = auth.sign_in(store, "fran", PASSWORD)
    code = handoffs.issue(session, "moral-graph")
    assert session.token not in code
    found = handoffs.redeem(code)
    assert (found.token, found.next_page) == (session.token, "moral-graph")
    assert handoffs.redeem(code) is None  # used

    late = handoffs.issue(session, None)
    clock[0] += handoffs.LIFETIME
    assert handoffs.redeem(late) is None  # expired
    assert handoffs.redeem("made-up") is None and handoffs.redeem("") is None


# -- the endpoints ------------------------------------------------------------------------------------


def test_the_session_endpoint_sets_a_strict_httponly_cookie_once(store, client):
    session = auth.sign_in(store, "fran", PASSWORD)
    url = endpoints.cookie_handoff_url(session, "facilitator-progress")
    response = client.get(url)
    assert response.status_code == 303 and response.headers["location"] == "/facilitator-progress"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"
    cookie = set_cookie(response)[auth.STAFF_COOKIE]
    assert cookie["httponly"] and cookie["samesite"].lower() == "strict" and cookie["path"] == "/"
    assert not cookie["secure"]  # plain HTTP here; see the HTTPS case below
    assert abs(int(cookie["max-age"]) - auth.SESSION_LIFETIME.total_seconds()) < 60
    assert auth.cookie_user(store, cookie.value) == session.user

    again = client.get(url)  # the same code a second time: nothing
    assert again.status_code == 303 and again.headers["location"] == endpoints.SIGN_IN_PATH
    assert "set-cookie" not in again.headers
    made_up = client.get(f"{config.SESSION_ENDPOINT}?code=not-a-code")
    assert made_up.headers["location"] == endpoints.SIGN_IN_PATH and "set-cookie" not in made_up.headers


def test_the_session_endpoint_lands_on_a_page_of_the_role_only(store, client):
    session = auth.sign_in(store, "rhea", PASSWORD)
    response = client.get(endpoints.cookie_handoff_url(session, "facilitator-moderation"))
    assert response.headers["location"] == "/researcher-exports"  # not a researcher's page: the landing page
    ended = auth.sign_in(store, "rhea", PASSWORD)
    url = endpoints.cookie_handoff_url(ended, None)
    auth.sign_out(store, ended.token)
    refused = client.get(url)
    assert refused.headers["location"] == endpoints.SIGN_IN_PATH and "set-cookie" not in refused.headers


def test_over_https_the_cookie_is_secure(store, monkeypatch):
    monkeypatch.setattr(endpoints, "SERVED", _Set())
    with TestClient(Starlette(routes=endpoints.ROUTES), base_url="https://workbench.example",
                    follow_redirects=False) as secure_client:
        session = auth.sign_in(store, "fran", PASSWORD)
        response = secure_client.get(endpoints.cookie_handoff_url(session, None))
    assert set_cookie(response)[auth.STAFF_COOKIE]["secure"]


def test_the_sign_out_endpoint_deletes_the_cookie_and_ends_its_session(store, client):
    session = auth.sign_in(store, "fran", PASSWORD)
    value = auth.session_cookie(auth.cookie_key(store), session.token, session.expires_at)
    client.cookies.set(auth.STAFF_COOKIE, value)
    response = client.get(endpoints.sign_out_url(single_sign_on=False))
    assert response.status_code == 303 and response.headers["location"] == "/"
    deleted = set_cookie(response)[auth.STAFF_COOKIE]
    assert deleted.value == "" and deleted["max-age"] == "0" and deleted["httponly"]
    assert auth.session_user(store, session.token) is None
    client.cookies.clear()
    via_sso = client.get(endpoints.sign_out_url(single_sign_on=True))
    assert via_sso.headers["location"] == endpoints.SSO_SIGN_OUT  # then Streamlit ends the provider identity


def test_without_the_endpoints_a_sign_in_stays_in_its_tab(store):
    assert not endpoints.SERVED.is_set()  # AppTest or a bare `streamlit run`: no cookie to hand over
    session = auth.sign_in(store, "fran", PASSWORD)
    assert endpoints.cookie_handoff_url(session, None) is None
    assert endpoints.sign_out_url(single_sign_on=False) is None


def test_a_snapshot_only_for_the_key_in_the_serving_record(store, client, tmp_path):
    db = config.db_path().resolve()
    record = serving.write_record(db, host="127.0.0.1", port=8501)
    assert (serving.record_path(db).stat().st_mode & 0o777) == 0o600
    try:
        endpoints.SnapshotKey.value = record.snapshot_key
        url = config.SNAPSHOT_ENDPOINT
        assert client.post(url).status_code == 403
        assert client.post(url, headers={"Authorization": "Bearer wrong"}).status_code == 403
        assert client.get(url, headers={"Authorization": f"Bearer {record.snapshot_key}"}).status_code == 405
        response = client.post(url, headers={"Authorization": f"Bearer {record.snapshot_key}"})
        assert response.status_code == 200
        snapshot = response.json()["path"]
        with Store(snapshot) as copy:
            assert list(copy.users()["username"]) == ["fran", "rhea"]
            assert copy.schema_version() == store.schema_version()
    finally:
        endpoints.SnapshotKey.value = None
        serving.remove_record(db)
    assert serving.read_record(db) is None
    assert len(store.users()) == 2  # the store is still open and usable after the copy
