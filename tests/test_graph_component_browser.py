"""Browser test of the moral-graph component: a real click in Chromium reaches the card panel and Python.

Starts `tests/apps/graph_component_app.py` with `streamlit run` on a free port, drives Debian's
chromium through Playwright, clicks a node inside the component's iframe and checks what a user
would see: the value's card in the side panel, "selected: <id>" written by Python, and a card
titled `<script>alert(1)</script>` shown as literal text with no alert dialog.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "tests" / "apps" / "graph_component_app.py"
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = Path("/tmp/graph_component.png")
CHROMIUM_ARGS = ["--no-sandbox", "--headless=new", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SCRIPT_TITLE = "<script>alert(1)</script>"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (install Debian's chromium: apt-get install chromium)")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    port = _free_port()
    log = (tmp_path_factory.mktemp("streamlit") / "streamlit.log").open("w")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(APP), "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true",
         "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"streamlit exited with code {proc.returncode}; see {log.name}")
            try:
                if httpx.get(f"{url}/_stcore/health", timeout=2).text == "ok":
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"streamlit did not answer on {url} within 60 s; see {log.name}")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_click_selects_value_shows_card_and_reaches_python(app_url: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 760})
            dialogs: list[str] = []

            def on_dialog(dialog) -> None:
                dialogs.append(dialog.message)
                dialog.dismiss()

            page.on("dialog", on_dialog)
            page.goto(app_url)
            graph = page.frame_locator('iframe[title="workbench.components.moral_graph.moral_graph"]')
            expect(page.get_by_text("selected: None")).to_be_visible(timeout=30_000)
            expect(graph.locator("g.node")).to_have_count(4, timeout=30_000)
            expect(graph.locator("g.edge")).to_have_count(4)
            expect(graph.locator("#card")).to_be_hidden()

            # A click on "Informed Autonomy" (id 2) shows its card and reaches Python.
            graph.locator('g.node[data-node-id="2"]').click()
            expect(graph.locator("#card-title")).to_have_text("Informed Autonomy")
            expect(graph.locator("#card-description")).to_have_text("Help people decide for themselves.")
            expect(graph.locator("#card-policies li")).to_have_text(
                ["OPTIONS the person has not yet considered", "CHOICES that are theirs to make"])
            expect(page.get_by_text("selected: 2")).to_be_visible(timeout=15_000)
            expect(graph.locator('g.node[data-node-id="2"]')).to_have_class("node selected")

            # The hostile card: its title and description are shown as text, and nothing ran.
            graph.locator('g.node[data-node-id="3"]').click()
            expect(graph.locator("#card-title")).to_have_text(SCRIPT_TITLE)
            expect(graph.locator("#card-description")).to_have_text('Shown as text: <img src=x onerror="alert(2)">')
            expect(graph.locator("#card-policies li")).to_have_text(["<b>not bold</b>"])
            expect(graph.locator('g.node[data-node-id="3"] text')).to_have_text(SCRIPT_TITLE)
            expect(page.get_by_text("selected: 3")).to_be_visible(timeout=15_000)
            assert graph.locator("#panel script, #panel img, #panel b").count() == 0
            page.wait_for_timeout(300)  # let a late render settle before the screenshot
            page.screenshot(path=str(SCREENSHOT), full_page=True)
            assert dialogs == []
        finally:
            browser.close()
