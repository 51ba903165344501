"""The "Are these two the same value?" round in a real browser (Debian's Chromium via Playwright).

On the clustered subset of real MGE cards (test_same_value_round.py), a participant who has made a
card and closed the judging rounds opens their invite link on a real
Streamlit server, sees two cards side by side, answers each pair with a real click, reloads after each
answer and is asked the next pair; after the server stops the DuckDB file holds one answer per pair.
WORKBENCH_SCREENSHOTS=DIR also saves the round as a PNG.
"""

from __future__ import annotations

import pytest
from browser import VIEWPORT, WAIT_MS, chromium, expect_step, require_chromium, settled, streamlit_server
from test_participant_browser import save_screenshot
from test_same_value_round import at_the_round, mge_round_db

from workbench import config
from workbench.embed import Embedder
from workbench.store import Store

pytestmark = [pytest.mark.browser, pytest.mark.model, pytest.mark.timeout(300)]


def test_the_round_with_real_clicks_and_reloads_stores_one_answer_per_pair(tmp_path, shared_datasets):
    require_chromium()
    path = mge_round_db(tmp_path / "round.duckdb", shared_datasets, Embedder())
    with Store(path) as store:  # closed again: the server must be the file's only writer
        (pid, token), = store.create_invites("mge", 1)
        at_the_round(store, pid)
        cards = set(store.cards("mge")["id"])

    env = {"WORKBENCH_DB": str(path), "WORKBENCH_LLM_BASE_URL": None}
    answers = ["Same value", "Different values", "Not sure"]
    with streamlit_server(config.APP, env) as base, chromium() as browser:
        page = browser.new_page(viewport=VIEWPORT)
        page.set_default_timeout(WAIT_MS)
        page.goto(f"{base}/?invite={token}")
        expect_step(page, "Step 8 of 10: Are these the same value?")
        total = int(page.get_by_text("Pair 1 of").first.inner_text().split(" of ")[1].split()[0])
        assert total >= 2
        for item in range(total):
            page.get_by_text(f"Pair {item + 1} of {total}").first.wait_for()
            settled(page)
            first, second = page.get_by_text("First card").first, page.get_by_text("Second card").first
            assert first.bounding_box()["x"] < second.bounding_box()["x"], "side by side"
            if item == 0:
                save_screenshot(page, "participant-same-value.png")
            page.get_by_role("button", name=answers[item % 3], exact=True).click()
            settled(page)
            page.reload()  # after every answer: the next pair, never the same one again
            expect_step(page, "Step 9 of 10: Where you sit" if item + 1 == total else f"Pair {item + 2} of {total}")
        page.close()

    store = Store(path)
    try:
        stored = store.merge_judgements("mge", latest=False)
        steps = [s["step"] for s in store.steps(pid)]
    finally:
        store.close()
    assert len(stored) == total and set(stored["participant_id"]) == {pid}
    assert list(stored["answer"]) == [("same", "different", "not_sure")[i % 3] for i in range(total)]
    assert set(stored["card_a"]) | set(stored["card_b"]) <= cards
    assert steps.count("same_value") == 1
