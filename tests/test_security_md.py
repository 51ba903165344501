"""SECURITY.md stays true: every test it cites exists, its numbers are the code's, and it lists no gap
the suite shows closed.

A claim in SECURITY.md is a promise only if a test checks it. This file cannot read prose, so it checks
what it can: the citations resolve to test functions, the policies' figures match their constants, every
section that makes claims cites a test, and gaps that were closed are not still listed as open.
"""

from __future__ import annotations

import base64
import re

from workbench import auth, config
from workbench.participation import InviteGuessPolicy
from workbench.store import new_token

SECURITY = (config.ROOT / "SECURITY.md").read_text()
#: Sections that give advice or list gaps, not promises.
UNTESTED_SECTIONS = {"Running behind TLS", "Known gaps"}
#: Gaps the suite shows closed: the phrase must not be back in SECURITY.md, and the test proves why.
CLOSED_GAPS = {
    "count is not wired in": "tests/test_hostile_input.py::test_the_app_counts_refused_links_by_the_browser_session_that_asked",
    "shows Streamlit's traceback": "tests/test_errors.py::test_a_bug_in_a_page_shows_an_error_id_and_logs_the_trace",
    "can list all page names":
        "tests/test_staff_session_browser.py::test_a_fresh_server_names_no_pages_and_finds_sign_in_on_its_first_run",
    "means signing in again":
        "tests/test_staff_session_browser.py::test_a_signed_in_facilitator_stays_signed_in_across_reloads_and_new_tabs",
    "open sign-up has no limit":
        "tests/test_open_signup.py::test_opening_the_join_link_stores_nothing_until_the_visitor_agrees",
    "hidden card's text can remain":
        "tests/test_hidden_card_text.py::test_a_hidden_card_s_text_leaves_every_value_export_graph_and_page",
    "CSV exports are not neutralised":
        "tests/test_csv_injection.py::test_csv_exports_are_neutralised_and_parquet_and_jsonl_keep_the_text",
    "fields are rendered as Markdown":
        "tests/test_markdown_fields.py::test_no_browser_fetches_or_links_an_address_from_a_facilitator_field",
}


def citations() -> list[tuple[str, str]]:
    """(file, test) for each `tests/FILE.py::test_name`, `...::test_name` meaning the previous file."""
    found, last = [], None
    for file, name in re.findall(r"(tests/\w+\.py|\.\.\.)::(\w+)", SECURITY):
        last = last if file == "..." else file
        found.append((last, name))
    return found


def test_every_cited_test_exists():
    cited = citations()
    assert len(cited) > 40
    missing = [f"{f}::{n}" for f, n in cited if not re.search(rf"^def {n}\(", (config.ROOT / f).read_text(), re.M)]
    assert missing == []


def test_every_section_that_makes_claims_cites_a_test():
    sections = re.split(r"^## ", SECURITY, flags=re.M)[1:]
    for section in sections:
        title = section.splitlines()[0].strip()
        if title not in UNTESTED_SECTIONS:
            assert "::test_" in section, title


def test_the_figures_are_the_code_s():
    guess, sign_in = InviteGuessPolicy(), auth.SignInPolicy()
    assert f"answered after {guess.failure_pause} s" in SECURITY
    assert f"Past {guess.free_per_client} refusals in a minute" in SECURITY and guess.window.total_seconds() == 60
    assert f"or {guess.free_overall} in\n  a minute across all sessions" in SECURITY
    assert f"up to {guess.max_pause:g} s" in SECURITY
    assert len(base64.urlsafe_b64decode(new_token() + "==")) * 8 == 128 and "128 random bits" in SECURITY
    assert f"After {sign_in.max_failures} failures within {sign_in.window.total_seconds() / 60:g} minutes" in SECURITY
    assert f"locked for {sign_in.first_lock.total_seconds() / 60:g} minute" in SECURITY
    assert f"up to {sign_in.max_lock.total_seconds() / 60:g} minutes" in SECURITY
    assert f"at most {auth.SESSION_LIFETIME.total_seconds() / 3600:g} hours" in SECURITY


def test_no_gap_the_suite_shows_closed_is_listed_as_open():
    for phrase, proof in CLOSED_GAPS.items():
        assert phrase not in SECURITY, f"{phrase!r} is closed: {proof}"
        file, name = proof.split("::")
        assert f"def {name}(" in (config.ROOT / file).read_text()
