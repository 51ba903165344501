"""A participant's guided interview in a real browser: what AppTest cannot see.

Debian's Chromium (via Playwright) opens an invite link on `workbench serve` (as `make run` starts it,
which loads the suggestion model in the background at start) and clicks and
types its way from consent to a confirmed values card, reloading the page in the middle of the
interview and after the card: a reload must resume exactly where the participant was, with what
they typed kept. After the server stops, the DuckDB file must hold the card exactly once.

Set WORKBENCH_SCREENSHOTS=DIR to also save the interview and the wiser-than round as PNGs
(the README's screenshots: `WORKBENCH_SCREENSHOTS=docs/screenshots`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from browser import (
    CONTEXT,
    POLICIES,
    RESPONSE,
    STORY,
    VIEWPORT,
    WAIT_MS,
    chromium,
    continue_button,
    expect_stage,
    expect_step,
    join_and_choose,
    name_and_place,
    own_lines,
    own_lines_box,
    require_chromium,
    settled,
    snapshot_on_failure,
    suggestion_boxes,
    type_into,
    words,
    workbench_server,
)
from walk import demo_with_invite

from workbench.store import Store

# A bound, not a measurement: a shared machine running other test suites can be ten times slower.
pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]

TITLE = "Listening Before Pushing"


@pytest.fixture
def invited(tmp_path, demo_spec) -> tuple[Path, int, str]:
    """A demo database with one invited participant: (db file, participant id, token). Closed again,
    because the server process must be the file's only writer."""
    require_chromium()
    path = tmp_path / "browser.duckdb"
    return (path, *demo_with_invite(path, demo_spec))


def save_screenshot(page, name: str) -> None:
    """With WORKBENCH_SCREENSHOTS set, save the page 1280 wide and as tall as its content (900-1600 px)."""
    folder = os.environ.get("WORKBENCH_SCREENSHOTS")
    if not folder:
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    # Streamlit scrolls its main block, not the document, so a "full page" shot would stop at the viewport.
    height = page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": VIEWPORT["width"], "height": max(VIEWPORT["height"], min(int(height), 1600))})
    page.wait_for_timeout(300)  # let the layout settle at the new size
    page.screenshot(path=str(Path(folder) / name))
    page.set_viewport_size(VIEWPORT)


def test_a_card_made_with_real_clicks_survives_reloads_and_is_stored_once(invited):
    path, pid, token = invited
    env = {"WORKBENCH_DB": str(path), "WORKBENCH_LLM_BASE_URL": None}
    with workbench_server(path, env) as (base, _), chromium() as browser:
        page = browser.new_page(viewport=VIEWPORT)
        page.set_default_timeout(WAIT_MS)
        join_and_choose(page, base, token)
        expect_stage(page, "Your answer")
        words(page, RESPONSE)

        expect_stage(page, "A moment from your life")
        story = page.get_by_role("textbox", name=re.compile("^Your words"))
        type_into(story, STORY)
        settled(page)

        # Typed, committed, not yet submitted: a reload keeps both the stage and the words.
        page.reload()
        expect_stage(page, "A moment from your life")
        story = page.get_by_role("textbox", name=re.compile("^Your words"))
        assert story.input_value() == STORY
        continue_button(page).click()

        expect_stage(page, "What you noticed")
        page.reload()  # the submitted story is kept too: the interview resumes at the next stage
        expect_stage(page, "What you noticed")
        assert suggestion_boxes(page).count() >= 4, "lines are suggested"
        page.get_by_text("From your own words.").first.wait_for()
        own = page.get_by_text("From your own words.").count()
        assert 1 <= suggestion_boxes(page, checked=True).count() <= own, "only lines of their own words come ticked"
        page.get_by_text("From the workbench's library").first.wait_for()
        save_screenshot(page, "participant-interview.png")
        own_lines(page, POLICIES)
        continue_button(page).click()

        name_and_place(page)

        expect_stage(page, "Your card")
        assert page.get_by_role("textbox", name=re.compile(r"^Name \(up to")).input_value() == TITLE
        keep = page.get_by_text("Keep it as it is", exact=True)  # one per soft warning
        for i in range(keep.count()):
            keep.nth(i).click()
            settled(page)
        assert page.get_by_role("checkbox", name="Keep it as it is", checked=False).count() == 0
        confirm = page.get_by_role("button", name="Confirm my card")
        assert confirm.is_enabled()
        confirm.click()

        expect_step(page, "Step 5 of 10: Who became wiser?")
        page.reload()
        expect_step(page, "Step 5 of 10: Who became wiser?")
        page.get_by_text("Did they become wiser?").wait_for()
        settled(page)
        save_screenshot(page, "participant-wiser.png")
        page.close()

    store = Store(path)
    try:
        mine = store.cards_by(pid)
        everyone = store.cards("demo", include_hidden=True)
        card = store.card(int(mine.iloc[0]["id"])) if len(mine) else {}
        stages = store.interview_state(int(store.current_interview(pid)["id"]))
    finally:
        store.close()
    assert list(mine["title"]) == [TITLE]
    assert list(everyone["title"]).count(TITLE) == 1
    assert list(card["policies"]) == POLICIES.splitlines()
    assert list(card["contexts"]) == [CONTEXT]
    assert stages["story"]["story"] == STORY


def draft_saved(page) -> None:
    """Wait until the page says everything typed so far is stored on the server (the draft keeper's
    status, which it sets only once the server has rendered the stored text back)."""
    page.locator("[data-testid='draft-status'][data-state='saved']").wait_for(timeout=WAIT_MS)


def test_words_typed_and_never_submitted_survive_reloads_and_navigation(invited, tmp_path):
    """Issue 12 item 6: text typed into a field and not yet committed (no Ctrl+Enter, no leaving the
    field) is kept across a reload that comes at once, and across Back and Continue. Nothing here waits
    on time: every wait is for a state of the page. Run it with the machine busy."""
    path, pid, token = invited
    env = {"WORKBENCH_DB": str(path), "WORKBENCH_LLM_BASE_URL": None}
    own = "MOMENTS when a child asks for help in their own words"
    with workbench_server(path, env) as (base, _), chromium() as browser:
        page = browser.new_page(viewport=VIEWPORT)
        page.set_default_timeout(WAIT_MS)
        with snapshot_on_failure(page, tmp_path):
            typed_reloaded_and_navigated(page, base, token, own)
        page.close()

    store = Store(path)
    try:
        answers = store.interview_state(int(store.current_interview(pid)["id"]))
    finally:
        store.close()
    assert answers["draft"]["title"] == TITLE
    assert answers["story"]["story"] == STORY and answers["response"]["response"] == RESPONSE
    assert own in answers["attention"]["policies"]


def reload_and_find(page, stage: str, box: str, text: str) -> None:
    """Reload at once, then wait until the stage's text box `box` (a label pattern) holds `text` and the
    page says it is stored."""
    from playwright.sync_api import expect

    page.reload()
    expect_stage(page, stage)
    expect(page.get_by_role("textbox", name=re.compile(box))).to_have_value(text, timeout=WAIT_MS)
    draft_saved(page)


def typed_reloaded_and_navigated(page, base: str, token: str, own: str) -> None:
    """Type, reload at once, navigate, and find every word each time."""
    from playwright.sync_api import expect

    first, rest = STORY[: len(STORY) // 2], STORY[len(STORY) // 2 :]
    words_box, name_box = "^Your words", r"^Name \(up to"
    join_and_choose(page, base, token)

    # Typed, then reloaded at once: the words were never committed, and come back.
    expect_stage(page, "Your answer")
    answer = page.get_by_role("textbox", name=re.compile(words_box))
    answer.click()
    answer.press_sequentially(RESPONSE)
    reload_and_find(page, "Your answer", words_box, RESPONSE)
    continue_button(page).click()

    # Half typed and saved while typing, the other half typed and reloaded at once.
    expect_stage(page, "A moment from your life")
    story = page.get_by_role("textbox", name=re.compile(words_box))
    story.click()
    story.press_sequentially(first)
    draft_saved(page)
    story.press_sequentially(rest)
    reload_and_find(page, "A moment from your life", words_box, STORY)
    continue_button(page).click()

    # An own line typed, then Back and Continue: still there, and the story too.
    expect_stage(page, "What you noticed")
    box = own_lines_box(page)
    box.click()
    box.press_sequentially(own)
    page.get_by_role("button", name="Back", exact=True).click()
    expect_stage(page, "A moment from your life")
    expect(page.get_by_role("textbox", name=re.compile(words_box))).to_have_value(STORY, timeout=WAIT_MS)
    continue_button(page).click()
    expect_stage(page, "What you noticed")
    expect(own_lines_box(page)).to_have_value(own, timeout=WAIT_MS)
    continue_button(page).click()

    # A name typed over the drafted one, reloaded at once.
    expect_stage(page, "Name it")
    title = page.get_by_role("textbox", name=re.compile(name_box))
    assert title.input_value(), "a title is drafted"
    title.fill("")
    title.press_sequentially(TITLE)
    reload_and_find(page, "Name it", name_box, TITLE)
