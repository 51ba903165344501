"""A facilitator in a real browser: signs in, opens the moral graph, clicks a value and sees its card.

Debian's chromium through Playwright against `workbench serve` on the demo data; the graph is
the offline custom component that AppTest cannot look inside. A card whose title holds a `<script>`
is shown as text on the graph page too.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from browser import chromium, require_chromium, workbench_server

from workbench import analyses, auth, config
from workbench.demo import load_world, simulate
from workbench.store import Store

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]
SCRIPT_TITLE = "<script>alert('x')</script> Listening"


@pytest.fixture
def demo_db(tmp_path, demo_spec):
    require_chromium()
    db = tmp_path / "browser.duckdb"
    with Store(db) as s:
        s.import_bundle(simulate(demo_spec, load_world(config.DATA / "demo_values.yaml"), 60, seed=4))
        auth.create_user(s, "fran", "facilitator", "facilitator pass 1")
        # A hostile value title: it must come out as text, never as markup. It goes to a value the page's
        # default graph shows, so the check below always runs.
        on_graph = [v["id"] for v in analyses.moral_graph(s, "demo").published["values"]]
        assert on_graph, "the demo's default graph has values"
        s.update_canonical_value(s.id_map("demo", "value").store(on_graph[0]), title=SCRIPT_TITLE)
    return db


def test_facilitator_signs_in_opens_the_graph_and_clicks_a_value(demo_db):
    from playwright.sync_api import expect

    env = {"WORKBENCH_DB": str(demo_db), "WORKBENCH_LLM_BASE_URL": None}
    with workbench_server(demo_db, env=env) as (url, _), chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        dialogs = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(url)
        page.get_by_role("link", name="Staff sign-in").click()
        page.get_by_role("textbox", name="Username").fill("fran")
        page.get_by_role("textbox", name="Password").fill("facilitator pass 1")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_text("Signed in as")).to_be_visible(timeout=30_000)
        page.get_by_role("link", name="Moral graph").click()
        expect(page.get_by_role("heading", name="The moral graph")).to_be_visible(timeout=30_000)

        graph = page.frame_locator('iframe[title="workbench.components.moral_graph.moral_graph"]')
        nodes = graph.locator("g.node")
        expect(nodes.first).to_be_visible(timeout=60_000)
        assert nodes.count() >= 4
        target = nodes.first
        value_id = target.get_attribute("data-node-id")
        target.click()
        title = graph.locator("#card-title")
        expect(title).not_to_be_empty(timeout=15_000)
        shown = title.text_content()
        # Python received the click: the page lists the value's answers under its title.
        expect(page.get_by_role("heading", name=shown)).to_be_visible(timeout=30_000)
        expect(page.get_by_text("wiser-than answers involve this value")).to_be_visible()
        assert value_id

        # The hostile title is on the graph, as plain text in the component.
        hostile = graph.locator("g.node", has_text="<script>")
        expect(hostile).to_have_count(1)
        hostile.first.click()
        expect(graph.locator("#card-title")).to_have_text(SCRIPT_TITLE, timeout=15_000)
        assert graph.locator("#panel script").count() == 0
        assert graph.locator("script", has_text="alert('x')").count() == 0
        # ...and the page under the graph names the clicked value as text too.
        expect(page.get_by_role("heading", name=SCRIPT_TITLE)).to_be_visible(timeout=30_000)
        assert page.locator("script", has_text="alert('x')").count() == 0
        shots = os.environ.get("WORKBENCH_SCREENSHOTS")  # e.g. docs/screenshots, to refresh the README's
        if shots:
            page.screenshot(path=str(Path(shots) / "facilitator-graph.png"))
        assert dialogs == []
