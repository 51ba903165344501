"""What `workbench serve` runs: the web app (main.py) and its own HTTP endpoints, as one ASGI app.

`streamlit run` finds `app` below and serves it with uvicorn, which stops cleanly on SIGTERM and
SIGINT. On start the server loads the interview's suggestion model in the background, opens the database for its whole life (refusing, with who holds it, when
another process does) and writes its serving record; on stop it removes the record.
Nothing else belongs here: the endpoints are webapp/endpoints.py, the pages main.py and views/.
"""

from __future__ import annotations

import gc
import sys
import threading
from contextlib import asynccontextmanager

import streamlit as st
from streamlit import config as streamlit_config
from streamlit.watcher import path_watcher, polling_path_watcher

from workbench import drafting
from workbench.errors import Unavailable
from workbench.webapp import endpoints


def stop_polling_watchers() -> int:
    """Stop Streamlit's own file polling, which `server.fileWatcherType = none` leaves on: it looks at
    each config.toml it could read and at each secrets file five times a second, to reload them when
    edited. A server `workbench serve` starts gets its options as flags and reads its secrets at start
    (a change is a restart), so this is work for nothing: 20 wake-ups a second, half of the idle
    server's CPU, and a thread contending for the GIL with every participant's click. Stops those
    already polling (the config files' are set up before this module is imported) and any asked for
    later (the secrets', on first use). Returns how many were stopped."""
    path_watcher.watch_file = path_watcher.watch_dir = _no_watching
    stopped = 0
    for thing in gc.get_objects():
        if type(thing) is polling_path_watcher.PollingPathWatcher:  # not isinstance: no proxy asked
            thing.close()
            stopped += 1
    return stopped


def _no_watching(*_args, **_kwargs) -> bool:
    return False  # what path_watcher says when it installs no watcher


def warm_up() -> None:
    """Import what the participant's pages use and read the word lists they parse once, now, before the
    health check answers: otherwise the first visitor's clicks pay for it (most of a CPU second: the
    analyses import scipy, the drafting reads its YAML). No model: nothing a participant's step needs."""
    from workbench import cardcheck, drafting, english, interview, llm, models, participation  # noqa: F401

    english.verb_forms()
    drafting.load_library()


def freeze_after_warm_up() -> None:
    """Once the model is loaded, move everything the server holds for its whole life (modules, torch and
    the model, the library's vectors: millions of objects) out of reach of Python's garbage collector.
    Otherwise every full collection, which a page run's allocations set off now and then, walks all of
    them again: most of the CPU a click cost. Objects made later (sessions, pages) are collected as usual."""
    drafting.warm_up(wait=True)
    gc.freeze()


@asynccontextmanager
async def serving(_app):
    stop_polling_watchers()
    warm_up()
    try:
        endpoints.start_serving(host=streamlit_config.get_option("server.address") or "0.0.0.0",
                                port=int(streamlit_config.get_option("server.port")))
    except Unavailable as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    # The interview's suggestion model, loaded in the background before the first participant arrives.
    drafting.warm_up()
    threading.Thread(target=freeze_after_warm_up, name="workbench-gc-freeze", daemon=True).start()
    try:
        yield
    finally:
        endpoints.stop_serving()


app = st.App("main.py", routes=endpoints.ROUTES, lifespan=serving)
