"""A participant's guided interview in a real browser: what AppTest cannot see.

Debian's Chromium (via Playwright) opens an invite link on a real Streamlit server and clicks and
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
    require_chromium,
    settled,
    streamlit_server,
    type_into,
    words,
)

from workbench import config
from workbench.demo import load_world, simulate
from workbench.store import Store

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

APP = config.APP
TITLE = "Listening Before Pushing"


@pytest.fixture
def invited(tmp_path, demo_spec) -> tuple[Path, int, str]:
    """A demo database with one invited participant: (db file, participant id, token). Closed again,
    because the server process must be the file's only writer."""
    require_chromium()
    path = tmp_path / "browser.duckdb"
    store = Store(path)
    try:
        store.import_bundle(simulate(demo_spec, load_world(config.DATA / "demo_values.yaml"), 12, seed=1))
        (pid, token), = store.create_invites("demo", 1)
    finally:
        store.close()
    return path, pid, token


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
    with streamlit_server(APP, env) as base, chromium() as browser:
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
        policies = page.get_by_role("textbox", name=re.compile("^One thing you pay attention to"))
        assert policies.input_value().strip(), "lines are proposed from the participant's own words"
        save_screenshot(page, "participant-interview.png")
        type_into(policies, POLICIES, replace=True)
        settled(page)
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

        expect_step(page, "Step 5 of 9: Who became wiser?")
        page.reload()
        expect_step(page, "Step 5 of 9: Who became wiser?")
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
