"""Browser test of the moral-graph component: a real click in Chromium reaches the card panel and Python.

Starts `tests/apps/graph_component_app.py` with `streamlit run` on a free port, drives Debian's
chromium through Playwright, clicks a node inside the component's iframe and checks what a user
would see: the value's card in the side panel, "selected: <id>" written by Python, and a card
titled `<script>alert(1)</script>` shown as literal text with no alert dialog.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from browser import chromium, require_chromium, streamlit_server

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "tests" / "apps" / "graph_component_app.py"
SCREENSHOT = Path("/tmp/graph_component.png")
SCRIPT_TITLE = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def app_url() -> Iterator[str]:
    require_chromium()
    with streamlit_server(APP) as url:
        yield url


def test_click_selects_value_shows_card_and_reaches_python(app_url: str) -> None:
    from playwright.sync_api import expect

    with chromium() as browser:
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
