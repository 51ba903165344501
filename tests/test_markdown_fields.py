"""What facilitators and imported files write is shown as text, never as Markdown (issue 17 item 8).

A deliberation whose title tries to end the Welcome page's join link, and whose licence, question title,
prompt, context and "about you" label and option carry Markdown images and links pointing at a server the
test runs: in AppTest every element that Streamlit renders as Markdown shows those fields escaped; in
Chromium, walking from the welcome page through the join link to the interview, the page makes no image
or link from them and the image server never hears from the browser.
"""

from __future__ import annotations

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from apptest import button, staff_page, staff_store, step_text, visit
from streamlit.testing.v1 import AppTest

from workbench import config, exports
from workbench.markdown import WORD_JOINER
from workbench.models import DeliberationSpec
from workbench.store import Store

#: Markdown that would make a link or an image (unescaped `![`, `](`).
ACTIVE = re.compile(r"(?<!\\)!\[|(?<!\\)\]\(")


def definition(host: str) -> DeliberationSpec:
    return DeliberationSpec.model_validate({
        "id": "md", "title": f"Our plans](http://{host}/breakout) ![t](http://{host}/title.png) **loud**",
        "consent": f"Agree? ![c](http://{host}/consent.png)", "licence": f"CC ![l](http://{host}/licence.png)",
        "open_signup": True, "rounds": {"wiser": 0, "endorse": 0, "compare": 0},
        "demographics": [{"key": "age", "label": f"Age ![d](http://{host}/label.png)", "required": True,
                          "options": [f"young ![o](http://{host}/option.png)", "old"]}],
        "questions": [{"slug": "q", "title": f"Homework ![q](http://{host}/question.png) [go](http://{host}/go)",
                       "prompt": f"What now? ![p](http://{host}/prompt.png) :red[alarm] $x^2$",
                       "contexts": [f"When ![x](http://{host}/context.png) happens"]}]})


def rendered(at: AppTest) -> list[str]:
    """Every text AppTest sees Streamlit render as Markdown: element bodies, widget labels, radio options
    and their captions."""
    kinds = ("markdown", "caption", "info", "warning", "error", "success", "title", "header", "subheader")
    texts = [e.proto.body for kind in kinds for e in at.get(kind)]
    for kind in ("selectbox", "radio", "checkbox", "multiselect", "text_area", "text_input"):
        for widget in at.get(kind):
            texts.append(widget.label)
            if kind == "radio":
                texts += [*widget.options, *widget.proto.captions]
    return texts


def assert_inert(at: AppTest, host: str) -> int:
    """No field becomes a link or an image; returns how many rendered texts carried one of them."""
    carrying = [t for t in rendered(at) if host in t.replace("\\", "")]
    for text in carrying:
        assert not ACTIVE.search(text.replace("](?join=", "")), text  # the welcome page's own join link aside
        assert not re.search(r"(?<!\\):red\[|(?<!\\)\$x", text), text
    return len(carrying)


@pytest.fixture
def store(tmp_path, monkeypatch, demo_spec):
    store = staff_store(tmp_path / "md.duckdb", monkeypatch, demo_spec, participants=4, seed=1)
    monkeypatch.delenv("WORKBENCH_LLM_BASE_URL", raising=False)
    store.save_deliberation(definition("images.invalid"))
    return store


def test_pages_render_facilitator_fields_as_text(store):
    host = "images.invalid"
    at = visit()  # the welcome page lists the open deliberation as a join link
    links = [m.proto.body for m in at.markdown if "Join" in m.proto.body]
    assert len(links) == 2 and assert_inert(at, host) >= 1
    ours = next(b for b in links if "breakout" in b)
    assert ours.endswith("(?join=md)") and ours.count("](") == 1, "the title cannot end the link early"

    at = visit(join="md")
    assert "Step 1 of 10" in step_text(at) and assert_inert(at, host) >= 1  # the title
    at.checkbox[0].check().run()
    button(at, "Continue").click().run()
    assert "Step 2 of 10" in step_text(at) and assert_inert(at, host) >= 2  # title and the demographic label
    at.selectbox[0].select("old")
    button(at, "Continue").click().run()
    assert "Step 3 of 10" in step_text(at)
    assert assert_inert(at, host) >= 3  # the title, the question as a radio option and its prompt below it
    at.radio[0].set_value("md/q")
    button(at, "Continue").click().run()
    assert "Step 4 of 10" in step_text(at) and assert_inert(at, host) >= 2  # the prompt above the interview

    # The researcher's exports page renders the datasheet, which names the title and the licence.
    at = staff_page(store, "rhea", "researcher pass 1", "views/researcher_exports.py")
    at.sidebar.selectbox[0].select("md").run()
    button(at, "Prepare the export").click().run()
    assert not at.exception, at.exception
    sheet = next(m.proto.body for m in at.markdown if "Values Workbench export" in m.proto.body)
    assert "licence.png" in sheet and "title.png" in sheet and not ACTIVE.search(sheet)


def test_the_datasheet_file_shows_the_title_and_licence_as_text(store, tmp_path):
    files = {f.table: f.path for f in exports.export(store, "md", "questions", "parquet", tmp_path / "x")}
    sheet = files["datasheet"].read_text(encoding="utf-8")
    assert "Our plans\\]\\(http" in sheet and "CC \\!\\[l\\]" in sheet and not ACTIVE.search(sheet)


class _Recorder(BaseHTTPRequestHandler):
    """The outside server the Markdown points at: it records every path asked for."""

    asked: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        type(self).asked.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.mark.browser
@pytest.mark.timeout(300)
def test_no_browser_fetches_or_links_an_address_from_a_facilitator_field(tmp_path):
    from browser import (
        WAIT_MS,
        chromium,
        continue_button,
        expect_step,
        require_chromium,
        settled,
        streamlit_server,
    )

    require_chromium()
    images = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=images.serve_forever, daemon=True).start()
    host = f"127.0.0.1:{images.server_address[1]}"
    path = tmp_path / "md-browser.duckdb"
    with Store(path) as s:
        s.save_deliberation(definition(host))
    try:
        env = {"WORKBENCH_DB": str(path), "WORKBENCH_LLM_BASE_URL": None}
        with streamlit_server(config.APP, env) as base, chromium() as browser:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(WAIT_MS)
            seen: list[str] = []
            page.on("request", lambda request: seen.append(request.url) if host in request.url else None)

            def from_fields() -> dict:
                return page.evaluate("""(host) => ({
                    images: [...document.querySelectorAll('img')].filter(i => (i.src || '').includes(host)).length,
                    links: [...document.querySelectorAll('a')].map(a => a.getAttribute('href') || '')
                        .filter(href => !href.startsWith('#') && href.includes(host)),
                })""", host)

            def shown() -> str:
                """The page's text as a reader sees it (the invisible word joiners left out)."""
                return page.evaluate("() => document.body.innerText").replace(WORD_JOINER, "")

            page.goto(base)
            page.get_by_text("Our plans](http").first.wait_for()
            settled(page)
            assert from_fields() == {"images": 0, "links": []}
            join = page.get_by_role("link", name=re.compile("^Join “Our plans"))
            assert join.get_attribute("href").endswith("?join=md"), "the whole title stays inside the join link"
            assert f"Join “Our plans](http://{host}/breakout) ![t](http://{host}/title.png) **loud**”" in shown()

            page.goto(f"{base}/?join=md")
            expect_step(page, "Step 1 of 10: Welcome")
            settled(page)
            assert f"Our plans](http://{host}/breakout) ![t](http://{host}/title.png) **loud**" in shown()
            assert from_fields() == {"images": 0, "links": []}
            page.get_by_text("I have read this and agree to take part").click()
            continue_button(page).click()
            expect_step(page, "Step 2 of 10: About you")
            settled(page)
            assert f"Age ![d](http://{host}/label.png)" in shown()
            assert from_fields() == {"images": 0, "links": []}
            page.get_by_role("combobox").first.click()
            page.get_by_role("option", name="old", exact=True).click()
            continue_button(page).click()
            expect_step(page, "Step 3 of 10: Choose a question")
            page.get_by_text("Homework ![q]").first.click()
            settled(page)
            page.get_by_text("What now? ![p]").first.wait_for()
            assert f"What now? ![p](http://{host}/prompt.png) :red[alarm] $x^2$" in shown(), "no colour, no math"
            assert f"Homework ![q](http://{host}/question.png) [go](http://{host}/go)" in shown()
            assert from_fields() == {"images": 0, "links": []}
            continue_button(page).click()
            expect_step(page, "Step 4 of 10: Your values card")
            settled(page)
            assert from_fields() == {"images": 0, "links": []}
            assert seen == [] and _Recorder.asked == [], (seen, _Recorder.asked)
    finally:
        images.shutdown()
