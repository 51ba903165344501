"""Nothing typed is lost: sends what a participant types to the server before Streamlit would.

Streamlit's text fields reach the server only when committed (Ctrl+Enter, or leaving the field), so a
reload, a closed tab or a click that lands before the commit's rerun loses what was typed. This inline
component (Streamlit's components v2, no iframe; its script is keeper.js next to this file) watches
the page's fields by widget key: it keeps typed text in the tab's sessionStorage until the server has
stored it, sends it after a pause in typing and when the page is hidden, and sends it again after a
reload if the server never got it. Each send calls `on_typed` with {widget key: text} and whether it
is a restore (then the widget shows the text again). It stores nothing itself and holds no SQL: the
page's callback saves the draft through the store.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import streamlit as st

_JS = (Path(__file__).resolve().parent / "keeper.js").read_text(encoding="utf-8")
_component = st.components.v2.component("workbench.draft_keeper", js=_JS)

#: Milliseconds without typing before what was typed is sent.
IDLE_MS = 800


def keep_typed(scope: str, fields: Mapping[str, str], on_typed: Callable[[dict[str, str], bool], None], *,
               key: str) -> None:
    """Watch the text widgets `fields` ({widget key: the value the server has stored}) on this page.

    `scope` keeps one participant's pending text apart from another's in the same tab (an interview
    id). `on_typed(values, restore)` runs as a widget callback before the page renders, with the
    widgets' texts as typed; it must store them (and, on a restore, put them back into the widgets).
    """

    def typed() -> None:
        event = st.session_state.get(key)  # the component's state with this run's trigger values
        payload = event.get("typed") if isinstance(event, Mapping) else None
        if isinstance(payload, Mapping) and isinstance(payload.get("values"), Mapping):
            values = {str(k): str(v) for k, v in payload["values"].items() if str(k) in fields}
            if values:
                on_typed(values, bool(payload.get("restore")))

    _component(key=key, data={"scope": scope, "fields": dict(fields), "idle_ms": IDLE_MS,
                              "saved": any(v.strip() for v in fields.values())},
               on_typed_change=typed, height="content")
