"""The benchmarks' protocol participant (benchmarks/stream_client.py) still walks the real app.

bench_workers.py loads the app with participants that speak Streamlit's WebSocket protocol instead of
driving a browser; if the app's pages change and the client no longer finds its way, or sends widget
values the way no browser would, the benchmark would measure something else. So: a real `workbench
serve` on a DuckDB demo (port of its own), one protocol participant from the invite link to the last
comparison, and the DuckDB file checked after the server stopped: one card, exactly the planned
answers of every round, nothing duplicated. Every wait is for a state (a run finished), bounded.
"""

from __future__ import annotations

import asyncio
import sys

import pytest
from browser import workbench_server
from walk import demo_with_invite

from workbench import config

sys.path.insert(0, str(config.ROOT / "benchmarks"))

from bench_app_load import Walk, check, verify  # noqa: E402
from stream_client import StreamSession, participate  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def test_a_protocol_participant_walks_to_the_end_and_is_stored_exactly_as_planned(tmp_path, demo_spec):
    db = tmp_path / "demo.duckdb"
    pid, token = demo_with_invite(db, demo_spec)
    walk = Walk(0, token, pid)

    async def scenario(base: str) -> tuple[str, list[str]]:
        # As in a browser, Continue before the consent box is ticked is refused, and the page says why.
        early = StreamSession(base, f"invite={token}")
        await early.open()
        try:
            refused = await early.click("Continue")
            assert refused.shows("Please tick the box to agree") and refused.shows("Step 1 of 10: Welcome")
        finally:
            await early.close()
        await participate(base, walk)
        # The state is the server's, not the client's: the same link in a new session resumes there.
        again = StreamSession(base, f"invite={token}")
        page = await again.open()
        await again.close()
        return page.texts, [w.label for w in page.widgets()]

    with workbench_server(db, {"WORKBENCH_LLM_BASE_URL": None}) as (base, _):
        texts, labels = asyncio.run(scenario(base))
    assert walk.error is None and walk.finished, walk.error
    assert walk.page_exceptions == []
    names = [name for name, _ in walk.timings]
    assert names[:10] == ["open invite link", "consent", "about you", "choose question", "interview: answer",
                          "interview: story", "interview: attention", "interview: name", "interview: contexts",
                          "confirm card"]
    (row,) = verify(db, [walk])
    assert check(row) == [], check(row)
    assert row["cards"] == 1 and row["stored"] == {k: row["planned"][k] for k in ("wiser", "endorse", "compare")}
    assert names.count("wiser-than answer") == row["planned"]["wiser"] > 0
    assert names.count("endorse vote") == row["planned"]["endorse"] > 0
    assert names.count("compare choice") == row["planned"]["compare"] > 0
    assert any(t.startswith("Step 9 of 10") for t in texts), texts
    assert "I have read this and agree to take part" not in labels
