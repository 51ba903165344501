"""A light participant for load benchmarks: Streamlit's own WebSocket protocol instead of a browser.

A headless Chromium costs about seven times the app server's CPU per participant step, so on a small
machine a benchmark driving browsers measures the browsers. This client does what Streamlit's
frontend does on the wire, and nothing a browser adds on top (rendering, layout, JavaScript): it
GETs the page URL with its query string (keeping cookies, so the sticky `workbench_route` cookie nginx
sets sends the page and its WebSocket to the same worker), GETs `/_stcore/health` and
`/_stcore/host-config` as the frontend does, opens `/_stcore/stream` with those cookies, and sends
`BackMsg.rerun_script` with a `ClientState` (the query string, the widget states, the current page's
script hash). It reads the `ForwardMsg`s back: `new_session` starts a run, `delta`s carry the page's
elements at their delta paths, `page_info_changed` swaps the query string (the app does that after
open sign-up), `navigation` names the current page, `script_finished` ends a run. An action is done
when the run it caused has finished successfully (a run ended early by `st.rerun()` is followed by
the next run, which is waited for): state, never time.

Widget states are kept the way the frontend keeps them (`WidgetStateManager`): a value set by the
participant is sent with every later rerun while its widget is on the page (dropped when it is gone);
a button's trigger is sent once; a widget in a form holds its value until the form's submit button is
clicked, then the form's values and the trigger go together. Widgets are found by label (as shown,
Markdown escapes removed) or by the key their id ends with. A disabled widget cannot be used, as in a
browser. Custom components (the draft keeper) never send a value: they only save typed text earlier,
which the committed value then saves anyway. Static files (the frontend's JavaScript) are not fetched:
a browser fetches them once and caches them.

Benchmark code: it never touches a database and is not part of the product.
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import re
import time
import urllib.request
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ClientState_pb2 import ClientState
from streamlit.proto.Element_pb2 import Element
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState
from websockets.asyncio.client import connect

#: Elements whose text a participant reads, and the field holding it.
TEXT_FIELDS = {"markdown": "body", "text": "body", "heading": "body", "alert": "body", "progress": "text",
               "exception": "message"}
#: Widgets this client can use, and how their value goes on the wire (streamlit/elements/widgets).
WIDGETS = ("button", "checkbox", "radio", "selectbox", "multiselect", "text_area", "text_input")
#: How long one run may take before the client gives up (a queue of many participants on a busy
#: machine): a bound against a hung server, not a measurement.
RUN_TIMEOUT = 300.0


class ProtocolError(RuntimeError):
    """The server did not answer as Streamlit's frontend expects, or the page lacks what was asked for."""


def shown(markdown: str) -> str:
    """Markdown as a participant reads it: backslash escapes and the app's invisible word joiners gone."""
    return re.sub(r"\\(.)", r"\1", markdown).replace("\u2060", "")


@dataclass(frozen=True)
class Widget:
    """One widget on the page: its kind (the Element field), proto and place in the page."""

    kind: str
    proto: object
    path: tuple[int, ...]

    @property
    def id(self) -> str:
        return self.proto.id

    @property
    def label(self) -> str:
        return shown(self.proto.label)

    @property
    def form_id(self) -> str:
        return self.proto.form_id

    def option(self, text: str) -> str:
        """The option as the server formatted it (what the frontend sends), found by how it reads."""
        for option in self.proto.options:
            if shown(option) == text:
                return option
        raise ProtocolError(f"{self.kind} {self.label!r} has no option {text!r} (it has"
                            f" {[shown(o) for o in self.proto.options]})")


@dataclass
class Page:
    """What the last finished run put on screen: its elements in page order, and the text they show."""

    elements: list[tuple[tuple[int, ...], Element]] = field(default_factory=list)

    @property
    def texts(self) -> list[str]:
        out = []
        for _, element in self.elements:
            kind = element.WhichOneof("type")
            if kind in TEXT_FIELDS:
                out.append(shown(getattr(getattr(element, kind), TEXT_FIELDS[kind])))
            elif kind in WIDGETS:
                out.append(shown(getattr(element, kind).label))
                out.extend(shown(o) for o in getattr(getattr(element, kind), "options", ()))
        return out

    def shows(self, text: str | re.Pattern) -> bool:
        return any((text.search(t) if isinstance(text, re.Pattern) else text in t) for t in self.texts)

    def find_text(self, pattern: re.Pattern) -> re.Match:
        for text in self.texts:
            if match := pattern.search(text):
                return match
        raise ProtocolError(f"nothing on the page matches {pattern.pattern!r}")

    def widgets(self, kind: str | None = None, label: str | re.Pattern | None = None,
                key: str | None = None) -> list[Widget]:
        found = []
        for path, element in self.elements:
            which = element.WhichOneof("type")
            if which not in WIDGETS or (kind and which != kind):
                continue
            widget = Widget(which, getattr(element, which), path)
            if label is not None and not (label.search(widget.label) if isinstance(label, re.Pattern)
                                          else widget.label == label):
                continue
            if key is not None and not widget.id.endswith(f"-{key}"):
                continue
            found.append(widget)
        return found

    def widget(self, kind: str | None = None, label: str | re.Pattern | None = None, *, key: str | None = None,
               nth: int = 0) -> Widget:
        found = self.widgets(kind, label, key)
        if len(found) <= nth:
            what = label.pattern if isinstance(label, re.Pattern) else label or key
            raise ProtocolError(f"no {kind or 'widget'} {what!r} (#{nth}) on the page; it shows"
                                f" {[w.label for w in self.widgets()]} and {self.texts[:6]}")
        return found[nth]

    def errors(self) -> list[str]:
        """Exceptions and error boxes on the page (what a participant would see as something wrong)."""
        out = []
        for _, element in self.elements:
            kind = element.WhichOneof("type")
            if kind == "exception":
                out.append(f"{element.exception.type}: {element.exception.message}"[:200])
            elif kind == "alert" and element.alert.format == element.alert.ERROR:
                out.append(shown(element.alert.body)[:200])
        return out


class StreamSession:
    """One browser tab's worth of Streamlit session over HTTP + WebSocket (see the module docstring)."""

    def __init__(self, base: str, query: str = "") -> None:
        self.base = base.rstrip("/")
        self.query = query.lstrip("?")
        self.jar = http.cookiejar.CookieJar()
        # No proxy from the environment: the server is on this machine, as the browser's is.
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                                  urllib.request.HTTPCookieProcessor(self.jar))
        self.page = Page()
        self.page_script_hash = ""
        self.worker: str | None = None  # behind nginx: the worker that answered the page (X-Workbench-Worker)
        self.runs = 0  # runs finished successfully: one per action, plus those st.rerun() added
        self._states: dict[str, WidgetState] = {}  # what the frontend would send with the next rerun
        self._forms: dict[str, dict[str, WidgetState]] = {}  # form widgets' values until their submit
        self._socket = None

    # -- connecting --------------------------------------------------------------------------------

    async def open(self) -> Page:
        """GET the page (and its cookies), connect the WebSocket, run the script once: the first page."""
        page_url = f"{self.base}/" + (f"?{self.query}" if self.query else "")
        self.worker = await asyncio.to_thread(self._get, page_url)
        await asyncio.to_thread(self._get, f"{self.base}/_stcore/health")
        await asyncio.to_thread(self._get, f"{self.base}/_stcore/host-config")
        parts = urlsplit(self.base)
        stream = f"{'wss' if parts.scheme == 'https' else 'ws'}://{parts.netloc}{parts.path}/_stcore/stream"
        cookie_request = urllib.request.Request(f"{self.base}/_stcore/stream")
        self.jar.add_cookie_header(cookie_request)
        headers = {"Cookie": cookie_request.get_header("Cookie")} if cookie_request.has_header("Cookie") else {}
        xsrf = next((c.value for c in self.jar if c.name == "_streamlit_xsrf"), None)
        self._socket = await connect(stream, origin=f"{parts.scheme}://{parts.netloc}", proxy=None,
                                     subprotocols=["streamlit", xsrf or "PLACEHOLDER_AUTH_TOKEN"],
                                     additional_headers=headers, max_size=None, open_timeout=RUN_TIMEOUT)
        stream_worker = self._socket.response.headers.get("X-Workbench-Worker")
        if self.worker != stream_worker:  # the session would be on one worker and its page on another
            raise ProtocolError(f"the page came from worker {self.worker} and its WebSocket went to {stream_worker}")
        return await self._rerun()

    def _get(self, url: str) -> str | None:
        """GET `url` (cookies kept); the worker nginx says answered, if any."""
        with self.opener.open(url, timeout=RUN_TIMEOUT) as response:
            response.read()
            return response.headers.get("X-Workbench-Worker")

    @property
    def cookies(self) -> dict[str, str]:
        return {c.name: c.value for c in self.jar}

    async def close(self) -> None:
        if self._socket is not None:
            await self._socket.close()

    # -- what a participant does -------------------------------------------------------------------

    async def click(self, label: str | re.Pattern | None = None, *, key: str | None = None, nth: int = 0) -> Page:
        """Click a button (a form's submit button sends the form's values with it)."""
        button = self._usable(self.page.widget("button", label, key=key, nth=nth))
        trigger = WidgetState(id=button.id, trigger_value=True)
        if button.proto.is_form_submitter:
            self._states.update(self._forms.pop(button.form_id, {}))
        return await self._rerun(extra=[trigger])

    async def tick(self, label: str | re.Pattern | None = None, value: bool = True, *, key: str | None = None,
                   nth: int = 0) -> Page:
        return await self._set(self.page.widget("checkbox", label, key=key, nth=nth), bool_value=value)

    async def type(self, label: str | re.Pattern | None = None, text: str = "", *, key: str | None = None,
                   nth: int = 0) -> Page:
        """Type into a text area or text input and commit it (Ctrl+Enter, Enter, or leaving the field)."""
        widget = self.page.widget(None, label, key=key, nth=nth)
        if widget.kind not in ("text_area", "text_input"):
            raise ProtocolError(f"{widget.label!r} is a {widget.kind}, not a text field")
        return await self._set(widget, string_value=text)

    async def choose(self, label: str | re.Pattern | None = None, option: str = "", *, key: str | None = None,
                     nth: int = 0) -> Page:
        """Choose an option of a radio or a selectbox, by the option's text as shown."""
        widget = self.page.widget(None, label, key=key, nth=nth)
        if widget.kind not in ("radio", "selectbox"):
            raise ProtocolError(f"{widget.label!r} is a {widget.kind}, not a radio or selectbox")
        return await self._set(widget, string_value=widget.option(option))

    async def pick(self, label: str | re.Pattern | None = None, options: list[str] = (), *,
                   key: str | None = None, nth: int = 0) -> Page:
        """Set a multiselect's chosen options (by their text as shown)."""
        widget = self.page.widget("multiselect", label, key=key, nth=nth)
        state = WidgetState(id=widget.id)
        state.string_array_value.data.extend(widget.option(o) for o in options)
        return await self._commit(self._usable(widget), state)

    async def _set(self, widget: Widget, **value) -> Page:
        return await self._commit(self._usable(widget), WidgetState(id=widget.id, **value))

    async def _commit(self, widget: Widget, state: WidgetState) -> Page:
        """A changed value: held by its form until submitted, otherwise sent at once (a rerun)."""
        if widget.form_id:
            self._forms.setdefault(widget.form_id, {})[widget.id] = state
            return self.page
        self._states[widget.id] = state
        if getattr(widget.proto, "ignore_rerun", False):
            return self.page
        return await self._rerun()

    @staticmethod
    def _usable(widget: Widget) -> Widget:
        if widget.proto.disabled:
            raise ProtocolError(f"{widget.kind} {widget.label!r} is disabled")
        return widget

    # -- the wire ----------------------------------------------------------------------------------

    async def _rerun(self, extra: list[WidgetState] = ()) -> Page:
        """Send rerun_script with the widget states and wait for the run it causes to finish."""
        message = BackMsg()
        state: ClientState = message.rerun_script
        state.query_string = self.query
        state.page_script_hash = self.page_script_hash
        state.widget_states.widgets.extend([*self._states.values(), *extra])
        info = state.context_info
        info.timezone, info.timezone_offset, info.locale = "UTC", 0, "en-GB"
        info.url = f"{self.base}/" + (f"?{self.query}" if self.query else "")
        info.is_embedded = False
        await self._socket.send(message.SerializeToString())
        async with asyncio.timeout(RUN_TIMEOUT):
            return await self._finished_run()

    async def _finished_run(self) -> Page:
        elements: dict[tuple[int, ...], Element] = {}
        started = False
        while True:
            raw = await self._socket.recv()
            message = ForwardMsg()
            message.ParseFromString(raw)
            kind = message.WhichOneof("type")
            if kind == "new_session":
                started, elements = True, {}
                if message.new_session.page_script_hash:
                    self.page_script_hash = message.new_session.page_script_hash
            elif kind == "navigation" and message.navigation.page_script_hash:
                self.page_script_hash = message.navigation.page_script_hash
            elif kind == "page_info_changed":
                self.query = message.page_info_changed.query_string
            elif kind == "delta" and message.delta.WhichOneof("type") == "new_element":
                elements[tuple(message.metadata.delta_path)] = message.delta.new_element
            elif kind == "ref_hash":
                raise ProtocolError("the server sent a cached-message reference this client never asked for")
            elif kind == "page_not_found":
                raise ProtocolError(f"page not found: {message.page_not_found.page_name!r}")
            elif kind == "script_finished" and started:
                status = message.script_finished
                if status == ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                    started = False  # st.rerun(): the next run is the one that shows the page
                    continue
                if status == ForwardMsg.FINISHED_WITH_COMPILE_ERROR:
                    raise ProtocolError("the page did not compile")
                self.runs += 1
                self.page = Page(sorted(elements.items()))
                self._forget_inactive()
                return self.page

    def _forget_inactive(self) -> None:
        """As the frontend does after a successful run: drop the states of widgets no longer shown, and
        take a value the server set (session state) as the widget's value."""
        active = {}
        for widget in self.page.widgets():
            active[widget.id] = widget
            proto = widget.proto
            if getattr(proto, "set_value", False) and widget.kind in ("text_area", "text_input"):
                self._states[widget.id] = WidgetState(id=widget.id, string_value=proto.value)
            elif getattr(proto, "set_value", False) and widget.kind == "checkbox":
                self._states[widget.id] = WidgetState(id=widget.id, bool_value=proto.value)
        self._states = {k: v for k, v in self._states.items() if k in active}
        self._forms = {form: {k: v for k, v in states.items() if k in active}
                       for form, states in self._forms.items()}


# -- a participant's whole way through, as bench_app_load.py's browser walk does it -----------------


async def participate(base: str, walk, delay: float = 0.0) -> None:
    """`walk` (a bench_app_load.Walk) from its invite link to the last comparison over the protocol:
    the same steps, the same typing, ticking and clicking as the browser walk, timed per step (the
    action until the run it caused has finished and the next step is on the page)."""
    from bench_app_load import QUESTION_TITLE, TITLES, outcome, server_cpu
    from browser import CONTEXT, DESCRIPTION, POLICIES, RESPONSE, STORY

    await asyncio.sleep(delay)
    session = StreamSession(base, f"invite={walk.token}")

    async def step(name: str, act, arrive: str | re.Pattern) -> Page:
        walk.step = name
        cpu = server_cpu(walk.server_pid) if walk.server_pid else 0.0
        started = time.perf_counter()
        page = await act()
        walk.timings.append((name, time.perf_counter() - started))
        walk.done_at.append(time.perf_counter())
        walk.worker = session.worker
        if walk.server_pid:
            walk.cpu.append((name, server_cpu(walk.server_pid) - cpu))
        walk.page_exceptions.extend(f"{name}: {e}" for e in page.errors())
        if not page.shows(arrive):
            raise ProtocolError(f"after '{name}' the page does not show"
                                f" {arrive.pattern if isinstance(arrive, re.Pattern) else arrive!r}: {page.texts[:5]}")
        return page

    async def round_size(pattern: str) -> int:
        return int(re.search(r"of (\d+)", session.page.find_text(re.compile(pattern)).group(0)).group(1))

    async with outcome(walk, session.close):
        await step("open invite link", session.open, "Step 1 of 10: Welcome")

        async def consent():
            await session.tick("I have read this and agree to take part")
            return await session.click("Continue")
        await step("consent", consent, "Step 2 of 10: About you")

        async def about_you():
            await session.choose("Your age", ["18-29", "30-44", "45-59", "60+"][walk.index % 4])
            await session.choose("Your political leaning", ["Left", "Centre", "Right"][walk.index % 3])
            return await session.click("Continue")
        await step("about you", about_you, "Step 3 of 10: Choose a question")

        async def question():
            await session.choose("Question", QUESTION_TITLE)
            return await session.click("Continue")
        await step("choose question", question, "Your answer")

        async def text_stage(text: str):
            await session.type(re.compile("^(Your words|Your own lines)"), text)
            return await session.click("Continue")
        await step("interview: answer", lambda: text_stage(RESPONSE), "A moment from your life")
        await step("interview: story", lambda: text_stage(STORY), "What you noticed")
        await step("interview: attention", lambda: text_stage(POLICIES), "Name it")

        async def name_it():
            await session.type(re.compile(r"^Name \(up to"), TITLES[walk.index % len(TITLES)])
            await session.type(re.compile("^What it is about"), DESCRIPTION)
            return await session.click("Continue")
        await step("interview: name", name_it, "Where it matters")

        async def contexts():
            await session.pick("Situations", [CONTEXT])
            return await session.click("Continue")
        await step("interview: contexts", contexts, "Your card")

        async def confirm():
            for i in range(len(session.page.widgets("checkbox", "Keep it as it is"))):
                await session.tick("Keep it as it is", nth=i)
            return await session.click("Confirm my card")
        await step("confirm card", confirm, "Step 5 of 10: Who became wiser?")

        n = await round_size(r"^Question 1 of \d+")
        for i in range(n):
            async def wiser(i=i):
                await session.choose("Did they become wiser?", ["Yes, wiser", "No", "Not sure"][(walk.index + i) % 3])
                return await session.click("Submit")
            await step("wiser-than answer", wiser, f"Question {i + 2} of {n}" if i + 1 < n else "Step 6 of 10")

        n = await round_size(r"^Value 1 of \d+")
        for i in range(n):
            label = ["Agree", "Disagree", "Pass / unsure"][(walk.index + i) % 3]
            await step("endorse vote", lambda label=label: session.click(label),
                       re.compile(rf"^Value {i + 2} of {n}") if i + 1 < n else "Step 7 of 10")

        n = await round_size(r"^Pair 1 of \d+")
        for i in range(n):
            await step("compare choice", lambda i=i: session.click("This one", nth=i % 2),
                       re.compile(rf"^Pair {i + 2} of {n}") if i + 1 < n else "Step 9 of 10: Where you sit")


async def drive(base: str, walks: list, ramp: float, limit: float) -> float:
    """All `walks` at once over the protocol (starts spread over `ramp` s), stopped after `limit` s; the
    wall time until the last one ended."""
    started = time.perf_counter()
    tasks = [asyncio.create_task(participate(base, w, ramp * i / max(len(walks) - 1, 1)))
             for i, w in enumerate(walks)]
    done, pending = await asyncio.wait(tasks, timeout=limit)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    return time.perf_counter() - started
