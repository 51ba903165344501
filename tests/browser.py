"""Helpers for the browser tests: a real Streamlit server on a free port and Debian's Chromium via Playwright.

Browser tests see what AppTest cannot (real clicks, typing, focus and blur, page reloads). Playwright
cannot download its own browsers here, so we drive the system's `/usr/bin/chromium`; tests skip with a
clear reason when it (or the `playwright` package) is missing. These helpers must never touch the
project's own database: the caller passes the DuckDB file in `env` (WORKBENCH_DB), and closes its own
handle on that file before the server starts, because DuckDB allows one writing process per file.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless=new",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: A cold Streamlit start imports pandas, duckdb and streamlit: a few seconds, much more on a busy machine.
SERVER_START_TIMEOUT = 90.0

# What a sample participant types for the homework question, shared by the participant browser test
# and the app load benchmark (benchmarks/bench_app_load.py).
VIEWPORT = {"width": 1280, "height": 900}
RESPONSE = "It should help the parent understand why the child resists, not just force it."
STORY = ("When my son was nine he cried over maths. I noticed he was exhausted after school "
         "and I paid attention to the moments when he asked his own questions.")
POLICIES = ("MOMENTS when the child asks their own questions\n"
            "SIGNS of exhaustion after school\n"
            "FRUSTRATIONS the child cannot yet put into words")
DESCRIPTION = "Understanding what the refusal says before insisting on the homework."
CONTEXT = "When a child's wellbeing is at stake"
TITLE = "Listening Before Pushing"
#: A bound on every wait for a page state, never a measurement: generous, because the machine is shared
#: (other test runs and benchmarks at once) and a cold server imports pandas, duckdb and streamlit first.
WAIT_MS = 60_000


class ServerDidNotStart(RuntimeError):
    """The Streamlit server exited or never answered its health check."""


def chromium_missing_reason() -> str | None:
    """Why browser tests cannot run here, or None when they can."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} not found (install Debian's chromium package to run browser tests)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is not installed (pip install playwright)"
    return None


def require_chromium() -> None:
    """Skip the calling test when Chromium or Playwright is not available."""
    reason = chromium_missing_reason()
    if reason:
        pytest.skip(reason)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_is_free(port: int) -> bool:
    """Whether a server could listen on 127.0.0.1:`port` now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def processes_under(pid: int) -> set[int]:
    """`pid` and every process descended from it that still exist, from /proc."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found = {pid} if pid in parents else set()
    while True:
        more = {p for p, parent in parents.items() if parent in found} - found
        if not more:
            return found
        found |= more


def healthy(url: str, timeout: float = 2.0) -> bool:
    """Whether GET `url` answers 200 within `timeout` seconds."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def wait_until_healthy(base: str, process: subprocess.Popen, timeout: float = SERVER_START_TIMEOUT) -> None:
    """Wait for the Streamlit server `process` to answer its health check at `base` (a bound, not a
    measurement); fail if it exits first or never answers."""
    deadline = time.monotonic() + timeout
    while not healthy(f"{base}/_stcore/health"):
        assert process.poll() is None, f"the server exited with code {process.returncode}"
        assert time.monotonic() < deadline, f"the server did not answer {base}/_stcore/health in {timeout:.0f} s"
        time.sleep(0.25)


@contextlib.contextmanager
def streamlit_server(script: str | os.PathLike, env: Mapping[str, str | None] | None = None,
                     port: int | None = None, *, timeout: float = SERVER_START_TIMEOUT,
                     options: Sequence[str] = ()) -> Iterator[str]:
    """Run `streamlit run SCRIPT` on 127.0.0.1:PORT until the block ends; yields the base URL.

    For test apps and the participant pages; staff pages need the cookie endpoints, which only
    `workbench_server` (the command users run) serves. `env` is laid over this process's environment;
    a None value removes that variable. The server is stopped (terminate, then kill) when the block
    ends, so the caller may reopen the database file afterwards.
    """
    script = Path(script).resolve()
    port = port or free_port()
    command = [
        sys.executable, "-m", "streamlit", "run", str(script),
        "--server.port", str(port), "--server.headless", "true", "--server.address", "127.0.0.1",
        "--browser.gatherUsageStats", "false",
        # Other people edit the source tree while tests run: no "source file changed" banners or reruns.
        "--server.fileWatcherType", "none",
        *options,  # more `--section.option value` pairs, e.g. --secrets.files PATH
    ]
    with _running(command, env, f"http://127.0.0.1:{port}", timeout, f"streamlit run {script.name}",
                  cwd=script.parent) as (base, _):
        yield base


#: The `workbench` command of this virtualenv (what `make run` calls).
WORKBENCH = Path(sys.executable).parent / "workbench"


@contextlib.contextmanager
def workbench_server(db: str | os.PathLike, env: Mapping[str, str | None] | None = None,
                     port: int | None = None, *, timeout: float = SERVER_START_TIMEOUT,
                     options: Sequence[str] = (), cwd: Path | None = None) -> Iterator[tuple[str, subprocess.Popen]]:
    """`workbench serve --db DB --port PORT`, exactly as `make run` starts it; yields (base URL, process).

    `options` are more `workbench serve` options (e.g. --secrets FILE); `cwd` the folder it starts in
    (Streamlit puts it first on sys.path). Stopped with SIGTERM when the block ends (then killed if it
    has not gone), so the caller may reopen the database afterwards.
    """
    port = port or free_port()
    command = [str(WORKBENCH), "serve", "--db", str(db), "--port", str(port), *options]
    with _running(command, env, f"http://127.0.0.1:{port}", timeout, "workbench serve", cwd=cwd) as running:
        yield running


@contextlib.contextmanager
def _running(command: Sequence[str], env: Mapping[str, str | None] | None, base: str, timeout: float,
             name: str, cwd: Path | None = None) -> Iterator[tuple[str, subprocess.Popen]]:
    full_env = {**os.environ, **(env or {})}
    full_env = {key: value for key, value in full_env.items() if value is not None}
    # A file, not a pipe: a chatty server must never block on a full pipe nobody reads.
    with tempfile.TemporaryFile(mode="w+", prefix="server-stderr-") as errors:
        process = subprocess.Popen(command, cwd=cwd, env=full_env, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=errors)
        try:
            deadline = time.monotonic() + timeout
            while not healthy(f"{base}/_stcore/health"):
                if process.poll() is not None or time.monotonic() > deadline:
                    state = (f"exited with code {process.returncode}" if process.poll() is not None
                             else f"did not answer {base}/_stcore/health within {timeout:.0f} s")
                    errors.seek(0)
                    raise ServerDidNotStart(f"{name} {state}. Its stderr:\n{errors.read()[-4000:] or '(empty)'}")
                time.sleep(0.25)
            yield base, process
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


@contextlib.contextmanager
def chromium() -> Iterator[object]:
    """Debian's Chromium under Playwright (a `playwright.sync_api.Browser`); skips when unavailable."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield _CountingBrowser(browser)
        finally:
            browser.close()


#: Installed in every page before Streamlit's own scripts: wraps `WebSocket` to count, in the page itself,
#: the reruns the frontend asks for (BackMsg field 11, `rerun_script`) and the runs the server starts
#: (ForwardMsg field 4, `new_session`, sent at the start of every run) and finishes (field 6,
#: `script_finished`, other than "finished early for a rerun", value 2). Counting in the page, not from
#: Playwright's WebSocket events, means a rerun is counted the moment the click sends it, with no race
#: against the events reaching the test. Only top-level protobuf tags are read.
RUN_COUNTER_JS = r"""
(() => {
  if (window.__workbenchRuns) return;
  const runs = window.__workbenchRuns = {requested: 0, startedAfter: -1, finishedAfter: -1};
  const topLevel = (data) => {
    const bytes = new Uint8Array(data), found = new Map();
    let i = 0;
    const varint = () => { let value = 0, scale = 1, byte;
      do { byte = bytes[i++]; value += (byte & 0x7f) * scale; scale *= 128; } while (byte & 0x80 && i < bytes.length);
      return value; };
    while (i < bytes.length) {
      const tag = varint(), field = Math.floor(tag / 8), wire = tag % 8;
      if (wire === 0) found.set(field, varint());
      else if (wire === 2) { const size = varint(); found.set(field, -1); i += size; }
      else if (wire === 1) i += 8; else if (wire === 5) i += 4; else break;
    }
    return found;
  };
  const Native = window.WebSocket;
  class CountingWebSocket extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", (event) => {
        if (!(event.data instanceof ArrayBuffer)) return;
        const fields = topLevel(event.data);
        if (fields.has(4)) runs.startedAfter = runs.requested;
        if (fields.has(6) && fields.get(6) !== 2 && runs.startedAfter === runs.requested) {
          runs.finishedAfter = runs.requested;
        }
      });
    }
    send(data) {
      try { if (topLevel(data).has(11)) runs.requested += 1; } catch (error) { /* not ours to judge */ }
      return super.send(data);
    }
  }
  window.WebSocket = CountingWebSocket;
})();
"""


#: True once every rerun the page asked for has been started and finished by the server.
#: Also waits for every lazily loaded element (Streamlit fetches a widget's code, e.g. the selectbox's, the
#: first time a page shows one, and shows a skeleton meanwhile) to be drawn.
SETTLED_JS = ("() => { const runs = window.__workbenchRuns;"
              " if (!runs) throw new Error('RUN_COUNTER_JS is missing: open pages with tests.browser.chromium()');"
              " return (runs.requested === 0 || runs.finishedAfter === runs.requested)"
              " && !document.querySelector('[data-testid=\"stSkeleton\"]'); }")


class _CountingBrowser:
    """The Playwright browser, with RUN_COUNTER_JS in every page it opens (what `settled` reads)."""

    def __init__(self, browser) -> None:
        self._browser = browser

    def new_page(self, **kwargs):
        page = self._browser.new_page(**kwargs)
        page.add_init_script(RUN_COUNTER_JS)
        return page

    def new_context(self, **kwargs):
        context = self._browser.new_context(**kwargs)
        context.add_init_script(RUN_COUNTER_JS)
        return context

    def __getattr__(self, name: str):
        return getattr(self._browser, name)


# -- a participant's clicks in the real page ----------------------------------------------------


@contextlib.contextmanager
def snapshot_on_failure(page, folder: Path, name: str = "failure") -> Iterator[None]:
    """When the block fails, save what the browser showed (PNG and HTML) in `folder` and say where."""
    try:
        yield
    except Exception:
        with contextlib.suppress(Exception):  # the page may be gone; the original failure matters
            page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
            (folder / f"{name}.html").write_text(page.content())
            print(f"browser state at the failure: {folder / name}.png / .html", file=sys.stderr)
        raise


def settled(page) -> None:
    """Wait until Streamlit has run, to the end, every rerun the page asked for so far (the last action's
    included: a click sends its rerun before Playwright's click returns), and the page shows it.

    State, not time: the page counts its rerun requests and the runs the server started and finished
    after the latest of them (RUN_COUNTER_JS, installed by `chromium()` in every page it opens)."""
    page.wait_for_function(SETTLED_JS, timeout=WAIT_MS)
    page.locator("[data-testid='stApp'][data-test-script-state='notRunning']").wait_for(timeout=WAIT_MS)


def expect_step(page, text: str) -> None:
    page.get_by_text(text).first.wait_for(timeout=WAIT_MS)


def expect_stage(page, title: str) -> None:
    """The guided interview shows `title` as its stage heading."""
    page.get_by_role("heading", name=title).wait_for(timeout=WAIT_MS)
    settled(page)


def type_into(locator, text: str, *, replace: bool = False) -> None:
    """Type like a person, then commit with Ctrl+Enter (a text area sends its value on Ctrl+Enter or blur)."""
    locator.click()
    if replace:
        locator.press("Control+a")
        locator.press("Delete")
    locator.press_sequentially(text)
    locator.press("Control+Enter")


def choose(page, label: str, option: str) -> None:
    """Pick `option` in the selectbox or multiselect labelled `label`."""
    page.get_by_role("combobox", name=label).click()
    page.get_by_role("option", name=option, exact=True).click()


def continue_button(page):
    return page.get_by_role("button", name="Continue", exact=True)


def join_and_choose(page, base: str, token: str) -> None:
    """Open the invite link; consent, answer "about you", choose the homework question (steps 1 to 3)."""
    page.goto(f"{base}/?invite={token}")
    expect_step(page, "Step 1 of 10: Welcome")
    page.get_by_text("I have read this and agree to take part").click()
    continue_button(page).click()
    expect_step(page, "Step 2 of 10: About you")
    choose(page, "Your age", "30-44")
    choose(page, "Your political leaning", "Prefer not to say")
    continue_button(page).click()
    expect_step(page, "Step 3 of 10: Choose a question")
    page.get_by_text("A child who refuses homework").click()
    settled(page)
    continue_button(page).click()
    expect_step(page, "Step 4 of 10: Your values card")


def filled(box, value: str | re.Pattern = re.compile(r"\S")) -> None:
    """Wait until the text box holds `value` (by default: anything but blanks). A box drawn by a new run is
    briefly empty in the browser before its value arrives, so a test waits for the value, never reads once."""
    from playwright.sync_api import expect

    expect(box).to_have_value(value, timeout=WAIT_MS)


def words(page, text: str) -> None:
    """Type into the "Your words" box of the first two interview stages and continue."""
    type_into(page.get_by_role("textbox", name=re.compile("^Your words")), text)
    settled(page)
    continue_button(page).click()


def suggestion_boxes(page, *, checked: bool | None = None):
    """The suggested lines' checkboxes on the "What you noticed" stage (not the review's "Keep it")."""
    return page.locator("[data-testid='stCheckbox']").filter(
        has_not_text="Keep it as it is").get_by_role("checkbox", checked=checked)


def own_lines(page, text: str) -> None:
    """The "What you noticed" stage: untick every suggestion, then type `text` as the participant's own
    lines (committed), waiting on the page's state after each click."""
    from playwright.sync_api import expect

    ticked = suggestion_boxes(page, checked=True)
    while (n := ticked.count()) > 0:
        ticked.first.uncheck(force=True)  # Streamlit draws its own box over the input
        expect(ticked).to_have_count(n - 1, timeout=WAIT_MS)
        settled(page)
    type_into(own_lines_box(page), text, replace=True)
    settled(page)


def own_lines_box(page):
    return page.get_by_role("textbox", name=re.compile("^Your own lines"))


def name_and_place(page) -> None:
    """The "Name it" and "Where it matters" stages: TITLE, DESCRIPTION and CONTEXT, up to the review."""
    expect_stage(page, "Name it")
    title = page.get_by_role("textbox", name=re.compile(r"^Name \(up to"))
    filled(title)  # a title is drafted
    title.fill("")
    title.press_sequentially(TITLE)
    title.press("Enter")
    settled(page)
    type_into(page.get_by_role("textbox", name=re.compile("^What it is about")), DESCRIPTION, replace=True)
    settled(page)
    continue_button(page).click()
    expect_stage(page, "Where it matters")
    choose(page, "Situations", CONTEXT)
    page.keyboard.press("Escape")
    settled(page)
    continue_button(page).click()


def walk_to_review(page, base: str, token: str) -> None:
    """Click and type from the invite link through every stage of the guided interview, up to the review
    with "Confirm my card" enabled (soft warnings accepted)."""
    join_and_choose(page, base, token)
    expect_stage(page, "Your answer")
    words(page, RESPONSE)
    expect_stage(page, "A moment from your life")
    words(page, STORY)
    expect_stage(page, "What you noticed")
    own_lines(page, POLICIES)
    continue_button(page).click()
    name_and_place(page)
    accept_warnings(page)


def accept_warnings(page) -> None:
    """On the review: tick "Keep it as it is" under every soft warning."""
    expect_stage(page, "Your card")
    keep = page.get_by_text("Keep it as it is", exact=True)
    for i in range(keep.count()):
        keep.nth(i).click()
        settled(page)
