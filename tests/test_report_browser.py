"""The report file in Debian's Chromium with the network off: it opens, asks for nothing, runs nothing,
fits a printed page, and shows a hostile title as text. The screenshot in docs/screenshots/report.png (refreshed with WORKBENCH_SCREENSHOTS=docs/screenshots)
is taken here from the demo deliberation's report."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from browser import chromium

from workbench import config, report
from workbench.demo import load_world, simulate
from workbench.store import Store

pytestmark = pytest.mark.browser

SCREENSHOT = config.ROOT / "docs" / "screenshots" / "report.png"
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'
#: An A4 page is 794 CSS pixels wide at 96 dpi; with Chromium's default print margins about 720 remain.
A4_WIDTH = 794


@pytest.fixture(scope="module")
def report_file(tmp_path_factory, demo_spec):
    folder = tmp_path_factory.mktemp("report")
    store = Store(folder / "demo.duckdb")
    store.import_bundle(simulate(demo_spec, load_world(config.DATA / "demo_values.yaml"), 300, seed=0))
    made = report.deliberation_report(store, "demo", by="political_leaning", bootstrap=50)
    path = folder / "report.html"
    path.write_text(report.render_html(made), encoding="utf-8")
    value = int(store.canonical_values("demo").iloc[0]["id"])
    store.update_canonical_value(value, title=HOSTILE[:80])
    store._write(lambda cur: cur.execute("UPDATE deliberations SET title = ? WHERE id = 'demo'", [HOSTILE]))
    hostile = folder / "hostile.html"
    hostile.write_text(report.render_html(report.deliberation_report(store, "demo", bootstrap=0)), encoding="utf-8")
    store.close()
    return path, hostile


def _open_offline(browser, path: Path, *, width: int = 1100):
    """A page with the network off, every request recorded and any but the file itself refused."""
    context = browser.new_context(viewport={"width": width, "height": 1500}, offline=True)
    page = context.new_page()
    requests, dialogs = [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.route("**/*", lambda route: route.continue_() if route.request.url == path.as_uri() else route.abort())
    page.goto(path.as_uri(), wait_until="load")
    return context, page, requests, dialogs


def test_the_report_opens_offline_asks_for_nothing_and_prints_on_a_page(report_file, tmp_path):
    path, _ = report_file
    with chromium() as browser:
        context, page, requests, dialogs = _open_offline(browser, path)
        page.get_by_role("heading", name="Did participants feel represented?").wait_for()
        assert requests == [path.as_uri()], requests  # the file itself, and nothing else
        assert page.evaluate("document.scripts.length") == 0 and dialogs == []
        assert page.locator("svg.graph").count() >= 1  # the moral graph is drawn, inline
        assert page.locator("svg.graph text.node").count() >= 5
        assert page.evaluate("[...document.images].length") == 0
        page.locator("header").scroll_into_view_if_needed()
        # Into the README's folder only when asked (WORKBENCH_SCREENSHOTS=docs/screenshots, as the other
        # browser tests do): a test run must not change the working tree.
        shots = os.environ.get("WORKBENCH_SCREENSHOTS")
        shot = Path(shots) / SCREENSHOT.name if shots else tmp_path / SCREENSHOT.name
        shot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shot), clip={"x": 0, "y": 0, "width": 1100, "height": 1500})
        # printed: nothing wider than an A4 page
        page.emulate_media(media="print")
        page.set_viewport_size({"width": A4_WIDTH, "height": 1123})
        assert page.evaluate("document.documentElement.scrollWidth") <= A4_WIDTH
        pdf = page.pdf(format="A4")
        assert pdf.startswith(b"%PDF") and len(pdf) > 20_000
        context.close()


def test_a_hostile_title_is_shown_as_text_and_runs_nothing(report_file):
    _, path = report_file
    with chromium() as browser:
        context, page, requests, dialogs = _open_offline(browser, path)
        heading = page.locator("h1")
        heading.wait_for()
        assert heading.inner_text() == HOSTILE
        assert page.title() == f"{HOSTILE} — deliberation report"
        assert page.get_by_text(HOSTILE[:80], exact=False).count() >= 1
        assert page.evaluate("document.scripts.length") == 0 and page.evaluate("document.images.length") == 0
        assert dialogs == [] and requests == [path.as_uri()]
        context.close()
