"""What every page shares: the process's store, the interview's cached suggestions, and who is looking
(participant or staff).

The only Streamlit-aware module in the package besides the pages; it holds no SQL and no analysis.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import streamlit as st
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.runtime.scriptrunner import get_script_run_ctx

from . import config, errors, serving
from .interview import AttentionChoices, GuidedAnswers, attention_choices
from .store import DatabaseLocked, Store, open_store

log = logging.getLogger("workbench")

#: What a visitor sees when the database is held by another process (the server log says which).
DATABASE_BUSY = ("The workbench cannot open its database just now. Please try again in a few minutes; "
                 "nothing you entered before has been lost.")


@st.cache_resource(show_spinner=False)
def _store(path: str) -> Store:
    return open_store(path)


def store() -> Store:
    """The process's one store (DuckDB allows a single writing process per file).

    If another process holds the file, the visitor gets a short message instead of DuckDB's lock
    error and the page stops; the server log says who holds it. (`workbench serve` opens the file
    before it serves, so this happens only to a server started some other way.)
    """
    try:
        return _store(str(config.db_path()))
    except DatabaseLocked as exc:
        log.error("cannot serve a page: %s", serving.busy_message(exc, "serve it"))
        st.error(DATABASE_BUSY)
        st.stop()


@st.cache_resource(show_spinner=False, max_entries=256)
def suggestions(question: str, response: str, story: str, others: tuple) -> AttentionChoices:
    """The interview's suggestions per (question, answer, story, others' cards as (id, title, lines)
    tuples): a rerun or reload does not ask the model again. Cached without the participant's own
    lines; the page applies those per participant. (Here, not in the page script: a page script runs
    again on every click, and Streamlit would rebuild a cached function defined there, hashing its
    source, on every run.)"""
    cards = [{"id": cid, "title": title, "description": "", "policies": list(lines)} for cid, title, lines in others]
    return attention_choices(question, GuidedAnswers(response=response, story=story), others=cards)


def send_browser_to(url: str | None) -> None:
    """Make the browser load `url` (a path on this server) as a new page; None does nothing.

    Streamlit has no public call for this; it is the message st.login and st.logout use to send the
    browser to the provider, so it works wherever they do.
    """
    if url is None:
        return
    message = ForwardMsg()
    message.auth_redirect.url = url
    get_script_run_ctx().enqueue(message)


def requested_page() -> str | None:
    """The URL path (no leading slash) the browser asked for when it opened this page, '' for the
    root; None when this run was not started by opening a URL (a click within a page)."""
    ctx = get_script_run_ctx()
    return None if ctx is None else ctx.pages_manager.intended_page_name


@contextmanager
def shown_errors(where: str) -> Iterator[None]:
    """Run a page (or the app's routing) so that no trace reaches a visitor.

    A `WorkbenchError` was raised on purpose: its message is for the visitor. Anything else is a bug:
    its trace is logged with an error id and the visitor sees only a short message with that id.
    Streamlit's own stop and rerun signals are not `Exception`s and pass through. A message a widget
    callback left (`guarded`) is shown first.
    """
    if _CALLBACK_ERROR in st.session_state:
        st.error(st.session_state.pop(_CALLBACK_ERROR))
    try:
        yield
    except errors.WorkbenchError as exc:
        st.error(str(exc))
        st.stop()
    except Exception as exc:
        st.error(errors.unexpected(exc, where=where))
        st.stop()


_CALLBACK_ERROR = "_workbench_callback_error"


def guarded(where: str, callback: Callable[..., None]) -> Callable[..., None]:
    """A widget callback (on_change, on_click) that never lets a trace reach the visitor.

    Streamlit runs callbacks before the page, outside `shown_errors`; this keeps the same rule: a
    `WorkbenchError`'s message, or a short one with an error id for a bug (logged with its trace),
    shown on the page run that follows.
    """

    def run(*args, **kwargs) -> None:
        try:
            callback(*args, **kwargs)
        except errors.WorkbenchError as exc:
            st.session_state[_CALLBACK_ERROR] = str(exc)
        except Exception as exc:
            st.session_state[_CALLBACK_ERROR] = errors.unexpected(exc, where=where)

    return run


def sso_providers() -> list[tuple[str, str]]:
    """(provider, button label) for each OpenID Connect provider secrets.toml configures; [] when none."""
    from . import auth

    try:
        section = st.secrets.get("auth")
    except FileNotFoundError:  # no secrets.toml at all (StreamlitSecretNotFoundError subclasses it)
        return []
    return auth.sso_providers(section.to_dict() if hasattr(section, "to_dict") else section)


def sso_identity() -> dict | None:
    """The claims of the visitor's single sign-on identity (`st.user`), or None if they have none."""
    if not sso_providers() or not st.user.is_logged_in:
        return None
    return st.user.to_dict()


def deliberation_picker() -> str | None:
    """The deliberation a staff page works on, chosen in the sidebar and kept across pages."""
    known = store().deliberations()
    if known.empty:
        st.info("The database holds no deliberation yet. Load one on the Setup page or run `workbench demo`.")
        return None
    ids = list(known["id"])
    titles = dict(zip(known["id"], known["title"], strict=True))
    current = st.session_state.get("deliberation_id")
    choice = st.sidebar.selectbox("Deliberation", ids, index=ids.index(current) if current in ids else 0,
                                  format_func=lambda d: f"{titles[d]} ({d})")
    st.session_state["deliberation_id"] = choice
    return choice


def question_picker(deliberation_id: str, *, label: str = "Question", allow_all: bool = True) -> str | None:
    questions = store().questions(deliberation_id)
    options = ([None] if allow_all else []) + list(questions["id"])
    titles = dict(zip(questions["id"], questions["title"], strict=True))
    return st.selectbox(label, options, format_func=lambda q: "All questions" if q is None else titles[q],
                        key=f"question_{deliberation_id}")


def require_staff(page_file: str):
    """First line of every staff page: the signed-in user allowed to see it, or stop here.

    The navigation already leaves the page out for others; this is the page's own check besides
    (see workbench.auth.staff_page_user).
    """
    from . import auth

    user = auth.staff_page_user(store(), page_file, token=st.session_state.get(auth.WEB_TOKEN_KEY),
                                query=st.query_params)
    if user is None:
        st.stop()
    return user
