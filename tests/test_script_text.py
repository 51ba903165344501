"""HTML and script in card and context text are shown as text everywhere, never run or rendered.

A values card and a context whose text holds `<script>alert(1)</script>` and `<img src=x onerror=alert(2)>`:
- the exports keep the text verbatim in every format (it is data), and the datasheet README.md does not
  carry card or context text at all (only the deliberation, counts and the schemas' column meanings);
- the participant's rounds (AppTest) pass card text to Markdown only escaped, never with
  `unsafe_allow_html`; the staff pages show it in data grids or as plain text;
- in a real browser the participant sees the literal text in the wiser-than round, no dialog opens and
  no <script> or <img onerror> element is made from card text.
"""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from apptest import participant_page, staff_page, step_text
from argon2 import PasswordHasher
from streamlit.testing.v1 import AppTest
from walk import to_card

from workbench import auth, config, exports
from workbench.models import DeliberationSpec, ValuesCardIn, validated
from workbench.store import Store, open_store

APP = str(config.APP)
SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(2)>"
TITLE = f"{SCRIPT} {IMG}"
DESCRIPTION = f"Plain words, then {SCRIPT} and {IMG} and **not bold** [a link](javascript:alert(3))."
POLICY = f"MOMENTS when {IMG} appears"
CONTEXT = f"When {SCRIPT} is typed"
PROPOSED = f"When {IMG} is proposed"
QUESTION = "xss/q"


def xss_world(store: Store) -> dict:
    """A deliberation with one question; value A's card is all markup, value B is plain. The
    participant `pid` has made card C (markup too, part of B) and is at the wiser-than round."""
    spec = DeliberationSpec.model_validate({
        "id": "xss", "title": "Markup as data", "consent": "Yes.",
        "rounds": {"wiser": 1, "endorse": 1, "compare": 1},
        "questions": [{"slug": "q", "title": "A question", "prompt": "What should guide the answer?",
                       "contexts": [CONTEXT]}]})
    store.save_deliberation(spec)
    (author, _), (other, _), (pid, token) = store.create_invites("xss", 3)

    def card(title, description, policies, contexts, author_id):
        return to_card(store, author_id, validated(ValuesCardIn, {
            "title": title, "description": description, "policies": policies, "question_id": QUESTION,
            "contexts": contexts}))[1]

    a = card(TITLE, DESCRIPTION, [POLICY, "SIGNS of <b>bold</b> claims"], [CONTEXT, PROPOSED], author)
    b = card("Patient Careful Listening", "Hearing people out.", ["PAUSES before answering", "QUESTIONS asked back"],
             [CONTEXT], other)
    c = card(f"Mine: {SCRIPT}", DESCRIPTION, [POLICY, "FEELINGS of <i>doubt</i>"], [CONTEXT], pid)
    va = store.add_canonical_value("xss", title=TITLE, description=DESCRIPTION, policies=[POLICY, "SIGNS of x"],
                                   origin="manual", question_id=QUESTION, members=[a])
    vb = store.add_canonical_value("xss", title="Patient Careful Listening", description="Hearing people out.",
                                   policies=["PAUSES before answering", "QUESTIONS asked back"], origin="manual",
                                   question_id=QUESTION, members=[b, c])
    store.plan_round(other, "wiser", [{"from_id": va, "to_id": vb, "context": CONTEXT}])
    store.answer_wiser(other, 0, "upgrade", f"Because {SCRIPT}")
    # Every export table gets a row.
    store.plan_round(other, "endorse", [va])
    store.endorse(other, 0, "agree")
    values = store.id_map("xss", "value")
    store.plan_round(other, "compare", [{"item_a": values.public(va), "item_b": values.public(vb)}])
    store.compare(other, 0, "b")
    return {"pid": pid, "token": token, "values": (va, vb), "cards": (a, b, c)}


@pytest.fixture
def world(tmp_path, monkeypatch):
    path = tmp_path / "xss.duckdb"
    monkeypatch.setenv("WORKBENCH_DB", str(path))
    monkeypatch.delenv("WORKBENCH_LLM_BASE_URL", raising=False)
    store = open_store(path)
    return store, xss_world(store)


# -- exports ---------------------------------------------------------------------------------------


def _rows(path, fmt) -> pd.DataFrame:
    if fmt == "parquet":
        return pd.read_parquet(path)
    if fmt == "csv":
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    return pd.DataFrame([json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()])


@pytest.mark.parametrize("fmt", exports.FORMATS)
def test_exports_keep_markup_verbatim_and_the_datasheet_leaves_card_text_out(world, tmp_path, fmt):
    store, _ = world
    files = {f.table: f.path for f in exports.export(store, "xss", "all", fmt, tmp_path / fmt)}
    cards = _rows(files["cards"], fmt).set_index("title")
    assert TITLE in cards.index and cards.loc[TITLE, "description"] == DESCRIPTION
    policies = cards.loc[TITLE, "policies"]
    contexts = cards.loc[TITLE, "contexts"]
    if fmt == "csv":  # lists travel as JSON arrays in CSV
        policies, contexts = json.loads(policies), json.loads(contexts)
    assert list(policies)[0] == POLICY and set(contexts) == {CONTEXT, PROPOSED}
    values = _rows(files["canonical-values"], fmt)
    assert TITLE in set(values["title"])
    answers = _rows(files["wiser-answers"], fmt)
    assert list(answers["context"]) == [CONTEXT] and list(answers["comment"]) == [f"Because {SCRIPT}"]
    pairs = _rows(files["preference-pairs"], fmt)
    assert any(SCRIPT in text and IMG in text for text in pairs["rejected"])
    polis_comments = pd.read_csv(files["polis comments"], dtype=str, keep_default_na=False)
    assert any(TITLE in body for body in polis_comments["comment-body"])

    sheet = files["datasheet"].read_text(encoding="utf-8")
    assert "Markup as data" in sheet  # it does describe this deliberation...
    for markup in ("<script", "onerror", "alert(", "<img", "<b>", "<i>"):
        assert markup not in sheet  # ...but never repeats what participants typed


# -- pages under AppTest ------------------------------------------------------------------------------

UNESCAPED = re.compile(r"(?<!\\)[<>*\[\]]")


def markdown_bodies(at: AppTest) -> list:
    """Every element whose text Streamlit renders as Markdown."""
    kinds = ("markdown", "caption", "info", "warning", "error", "success", "title", "header", "subheader")
    return [e for kind in kinds for e in at.get(kind)]


def assert_markup_is_text(at: AppTest) -> int:
    """Markdown elements that show participant text escape it; returns how many showed some."""
    shown = 0
    for element in markdown_bodies(at):
        proto = element.proto
        body = getattr(proto, "body", "")
        if hasattr(proto, "allow_html"):
            assert not proto.allow_html, body
        for piece in re.findall(r"[^\n]*(?:alert|onerror|not bold|FEELINGS of|SIGNS of)[^\n]*", body or ""):
            shown += 1
            assert not UNESCAPED.search(piece.strip().removeprefix("- ").strip("*")), piece
    return shown






def test_participant_rounds_show_markup_escaped(world):
    store, w = world
    at = participant_page(w["token"])
    assert "Who became wiser?" in step_text(at)
    assert assert_markup_is_text(at) >= 4  # both cards' text, the situation and the policies
    assert any(TITLE in t.value for t in at.text), "the story is plain text, with the title as typed"
    at.radio[0].set_value("not_sure")
    at.button[0].click().run()

    at = participant_page(w["token"])
    assert "Other people's values" in step_text(at)
    assert assert_markup_is_text(at) >= 2
    next(b for b in at.button if b.label == "Agree").click().run()

    at = participant_page(w["token"])
    assert "Which should guide the answer?" in step_text(at)
    assert assert_markup_is_text(at) >= 2
    at.button[0].click().run()

    at = participant_page(w["token"])
    assert "Where you sit" in step_text(at)
    assert_markup_is_text(at)  # where the value sits names titles: escaped too
    at.button[0].click().run()  # the survey, left unanswered

    at = participant_page(w["token"])
    assert "Thank you" in step_text(at)
    assert assert_markup_is_text(at) >= 2  # the participant's own card, escaped too
    assert len(store.wiser_answers_by(w["pid"])) == 1 and len(store.comparisons_by(w["pid"])) == 1


@pytest.fixture
def staff(world, monkeypatch):
    store, w = world
    monkeypatch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    monkeypatch.setattr(auth, "_dummy_hash", None)
    auth.create_user(store, "fran", "facilitator", "facilitator pass 1")
    auth.create_user(store, "rhea", "researcher", "researcher pass 1")

    return lambda username, password, path: staff_page(store, username, password, path)


def test_moderation_shows_markup_as_data_and_text(staff):
    at = staff("fran", "facilitator pass 1", "views/facilitator_moderation.py")
    grids = [frame.value for frame in at.dataframe]
    assert any(TITLE in set(grid.get("title", [])) for grid in grids), "cards are listed in a data grid"
    assert PROPOSED in [t.value for t in at.text], "a proposed context is shown with st.text"
    assert_markup_is_text(at)


def test_exports_page_renders_a_datasheet_without_card_text(staff):
    at = staff("rhea", "researcher pass 1", "views/researcher_exports.py")
    next(b for b in at.button if b.label == "Prepare the export").click().run()
    assert not at.exception, at.exception
    sheet = [m for m in at.markdown if "Values Workbench export" in m.value]
    assert len(sheet) == 1 and not sheet[0].proto.allow_html
    for markup in ("<script", "onerror", "alert(", "<img", "not bold"):
        assert markup not in sheet[0].value, "no card text in the datasheet"
    assert_markup_is_text(at)


# -- a real browser ---------------------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.timeout(240)
def test_browser_shows_the_literal_markup_and_runs_none_of_it(tmp_path):
    from browser import WAIT_MS, chromium, require_chromium, streamlit_server

    require_chromium()
    path = tmp_path / "xss-browser.duckdb"
    store = Store(path)
    try:
        w = xss_world(store)
    finally:
        store.close()  # the server must be the file's only writer
    env = {"WORKBENCH_DB": str(path), "WORKBENCH_LLM_BASE_URL": None}
    with streamlit_server(APP, env) as base, chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(WAIT_MS)  # a bound, not a measurement: a cold first page on a busy machine
        dialogs: list[str] = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.goto(f"{base}/?invite={w['token']}")
        page.get_by_text("Who became wiser?").first.wait_for()
        page.locator("[data-testid='stApp'][data-test-script-state='notRunning']").wait_for()
        page.get_by_text(TITLE, exact=True).first.wait_for()
        assert page.get_by_text(TITLE, exact=True).first.is_visible()
        assert page.get_by_text(POLICY).first.is_visible()
        page.wait_for_timeout(1000)  # give any injected handler its chance to fire
        assert dialogs == []
        injected = page.evaluate("""() => ({
            scripts: [...document.querySelectorAll('script')].filter(s => s.textContent.includes('alert(')).length,
            images: document.querySelectorAll('img[onerror], img[src="x"]').length,
            bold: [...document.querySelectorAll('b, strong')].filter(b => b.textContent === 'bold').length,
            links: document.querySelectorAll('a[href^="javascript:"]').length,
        })""")
        assert injected == {"scripts": 0, "images": 0, "bold": 0, "links": 0}
