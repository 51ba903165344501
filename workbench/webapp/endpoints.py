"""The web app's own HTTP endpoints, served beside Streamlit's by `workbench serve` (webapp/server.py).

Streamlit speaks to the browser over a WebSocket, and a WebSocket cannot set a cookie; a plain HTTP
response can. So a staff sign-in, checked on the sign-in page, hands its session to
`SESSION_ENDPOINT` through a one-time code (`cookie_handoff_url`): the page sends the browser there,
the endpoint redeems the code, sets the staff session cookie (HttpOnly, SameSite=Strict, Secure
over HTTPS; its value is signed by `workbench.auth`) and sends the browser on to the page it was
going to. The code is random (256 bits), lives 60 s in this process's memory (only its hash), works
once, and carries nothing but itself in the URL: like an OAuth authorization code, a copy of a used
or expired one is worthless. `SIGN_OUT_ENDPOINT` deletes the cookie. `SNAPSHOT_ENDPOINT` writes a
consistent copy of the database for the command line (`workbench.serving`), for whoever shows the
key in the app's serving record (a file only its owner can read).
This module never imports Streamlit and holds no SQL; who may sign in is `workbench.auth`'s call.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from workbench import auth, config, serving
from workbench.store import Store, close_stores, open_store, utcnow

#: Streamlit's own endpoint that ends a single sign-on identity (st.logout sends the browser there too).
SSO_SIGN_OUT = "/auth/logout"
SIGN_IN_PATH = "/sign-in"


@dataclass(frozen=True)
class Handoff:
    """A new staff session on its way from the sign-in page to the browser's cookie jar."""

    token: str = field(repr=False)
    expires_at: datetime
    next_page: str | None
    issued: float


class Handoffs:
    """One-time codes, each good for LIFETIME seconds in this process; kept by their sha256 only."""

    LIFETIME = 60.0

    def __init__(self) -> None:
        self._pending: dict[str, Handoff] = {}
        self._lock = threading.Lock()

    def issue(self, session: auth.StaffSession, next_page: str | None) -> str:
        code = secrets.token_urlsafe(32)
        now = time.monotonic()
        with self._lock:
            for key in [k for k, h in self._pending.items() if now - h.issued >= self.LIFETIME]:
                del self._pending[key]
            self._pending[_digest(code)] = Handoff(session.token, session.expires_at, next_page, now)
        return code

    def redeem(self, code: str) -> Handoff | None:
        if not code or len(code) > 100:
            return None
        with self._lock:
            handoff = self._pending.pop(_digest(code), None)
        if handoff is None or time.monotonic() - handoff.issued >= self.LIFETIME:
            return None
        return handoff


HANDOFFS = Handoffs()
#: Set while this process serves the endpoints (server.py's lifespan), so pages know a cookie can be set.
SERVED = threading.Event()


def cookie_handoff_url(session: auth.StaffSession, next_page: str | None) -> str | None:
    """Where to send the browser so that `session` becomes its cookie, then on to `next_page`.

    None when these endpoints are not served (main.py run by a bare `streamlit run`, or AppTest):
    the sign-in then lasts as long as the browser tab's session, as it did before there was a cookie.
    """
    if not SERVED.is_set():
        return None
    return f"{config.SESSION_ENDPOINT}?{urlencode({'code': HANDOFFS.issue(session, next_page)})}"


def sign_out_url(*, single_sign_on: bool) -> str | None:
    """Where to send the browser after signing out: the cookie goes, then the provider identity too
    (None when these endpoints are not served)."""
    if not SERVED.is_set():
        return None
    return config.SIGN_OUT_ENDPOINT + ("?sso=1" if single_sign_on else "")


# -- the endpoints ---------------------------------------------------------------------------------


def _store() -> Store:
    return open_store(config.db_path())


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or config.base_url().startswith("https://")


def _see_other(location: str) -> Response:
    response = RedirectResponse(location, status_code=303)
    # The URL that led here held a code: keep it out of caches and other sites' Referer headers.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


async def session_endpoint(request: Request) -> Response:
    handoff = HANDOFFS.redeem(request.query_params.get("code", ""))
    if handoff is None:  # used, expired, made up, or issued before a restart
        return _see_other(SIGN_IN_PATH)
    store = _store()
    user = await run_in_threadpool(auth.session_user, store, handoff.token)
    if user is None:
        return _see_other(SIGN_IN_PATH)
    key = await run_in_threadpool(auth.cookie_key, store)
    response = _see_other("/" + auth.staff_destination(user.role, handoff.next_page).url_path)
    response.set_cookie(auth.STAFF_COOKIE, auth.session_cookie(key, handoff.token, handoff.expires_at),
                        max_age=max(0, int((handoff.expires_at - utcnow()).total_seconds())), path="/",
                        secure=_secure(request), httponly=True, samesite="strict")
    return response


async def sign_out_endpoint(request: Request) -> Response:
    # The page has ended the session already; a cookie that still arrives here is ended too, so a
    # plain link to this address signs out as well.
    value = request.cookies.get(auth.STAFF_COOKIE)
    if value:
        store = _store()
        token = auth.cookie_token(await run_in_threadpool(auth.cookie_key, store), value)
        await run_in_threadpool(auth.sign_out, store, token)
    response = _see_other(SSO_SIGN_OUT if request.query_params.get("sso") == "1" else "/")
    response.delete_cookie(auth.STAFF_COOKIE, path="/", secure=_secure(request), httponly=True, samesite="strict")
    return response


class SnapshotKey:
    """The key this process wrote into its serving record (None until it serves)."""

    value: str | None = None


async def snapshot_endpoint(request: Request) -> Response:
    key = SnapshotKey.value
    given = request.headers.get("authorization", "")
    if key is None or not hmac.compare_digest(given.encode(), f"Bearer {key}".encode()):
        return PlainTextResponse("forbidden", status_code=403)
    store = _store()
    folder = tempfile.mkdtemp(prefix=".workbench-snapshot-", dir=Path(store.path).parent)
    try:
        path = await run_in_threadpool(store.write_snapshot, folder)
    except Exception:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return JSONResponse({"path": str(path)})


ROUTES = [
    Route(config.SESSION_ENDPOINT, session_endpoint, methods=["GET"]),
    Route(config.SIGN_OUT_ENDPOINT, sign_out_endpoint, methods=["GET"]),
    Route(config.SNAPSHOT_ENDPOINT, snapshot_endpoint, methods=["POST"]),
]


def start_serving(*, host: str, port: int) -> None:
    """Open the database for the life of the server and say who serves it; refuse if another process does.

    Raises workbench.errors.Unavailable naming the other process (`workbench serve` checks first;
    this closes the gap between its check and Streamlit's start).
    """
    db = config.db_path()
    if config.is_database_url(db):  # a PostgreSQL server admits many processes: nothing to refuse or say
        open_store(db)
        SERVED.set()
        return
    db = db.resolve()
    serving.refuse_if_served(db)
    open_store(db)
    SnapshotKey.value = serving.write_record(db, host=host, port=port).snapshot_key
    SERVED.set()


def stop_serving() -> None:
    """The server's last act: no longer say who serves the database, and close it (DuckDB folds its
    log into the file). Here, not at exit: uvicorn ends the process with the signal it caught, and a
    process ended by SIGTERM runs no exit handlers."""
    SERVED.clear()
    SnapshotKey.value = None
    if not config.is_database_url(config.db_path()):
        serving.remove_record(config.db_path().resolve())
    close_stores()


def _digest(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()
