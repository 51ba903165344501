"""Helpers for page tests under AppTest: open the app as a visitor or as a signed-in staff member, on a
demo database with the two staff accounts the page tests sign in with."""

from __future__ import annotations

from pathlib import Path

from argon2 import PasswordHasher
from streamlit.testing.v1 import AppTest

from workbench import auth, config
from workbench.demo import load_world, simulate
from workbench.store import Store, open_store

APP = str(config.APP)
#: The staff accounts `staff_store` makes: (username, role, password).
FACILITATOR = ("fran", "facilitator", "facilitator pass 1")
RESEARCHER = ("rhea", "researcher", "researcher pass 1")


def staff_store(path: Path, monkeypatch, spec, *, participants: int, seed: int) -> Store:
    """The app's store at `path` (WORKBENCH_DB points there) with `participants` simulated demo participants
    and the two staff accounts, hashed with cheap argon2 parameters so tests sign in fast."""
    monkeypatch.setenv("WORKBENCH_DB", str(path))
    monkeypatch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    monkeypatch.setattr(auth, "_dummy_hash", None)
    store = open_store(path)
    store.import_bundle(simulate(spec, load_world(config.DATA / "demo_values.yaml"), participants, seed=seed))
    for username, role, password in (FACILITATOR, RESEARCHER):
        auth.create_user(store, username, role, password)
    return store


def staff_page(store, username: str, password: str, path: str) -> AppTest:
    """The app in a session that signed in as `username`, switched to the page at `path`."""
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state[auth.WEB_TOKEN_KEY] = auth.sign_in(store, username, password).token
    at.run()
    at.switch_page(path).run()
    assert not at.exception, at.exception
    return at


def visit(**query) -> AppTest:
    """The app opened with these query parameters (e.g. invite=TOKEN), run once, without an exception."""
    at = AppTest.from_file(APP, default_timeout=60)
    for key, value in query.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, at.exception
    return at


def participant_page(token: str) -> AppTest:
    return visit(invite=token)


def step_text(at: AppTest) -> str:
    """The participant's progress line ("Step 4 of 10: Your values card")."""
    return " ".join(str(p.proto.text) for p in at.get("progress"))


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)
