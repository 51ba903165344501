"""The Setup page's YAML upload (issue 17 item 7): loading a file replaces the editor's text and saving
stores that file's deliberation; the file meets the command line's limits with one-line errors naming the
file (and the field); saving text nobody edited, or over another deliberation, asks first; a refused
definition changes nothing."""

from __future__ import annotations

import pytest
import yaml
from apptest import button, staff_page, staff_store

from workbench import config
from workbench.models import DEFINITION_MAX_BYTES

DEFINITION = {"id": "uploaded", "title": "From a file", "consent": "Do you agree?", "open_signup": False,
              "questions": [{"slug": "q", "title": "A question", "prompt": "What matters here?",
                             "contexts": ["When it is late"]}]}


@pytest.fixture
def store(tmp_path, monkeypatch, demo_spec):
    return staff_store(tmp_path / "setup.duckdb", monkeypatch, demo_spec, participants=4, seed=1)


def setup_page(store):
    return staff_page(store, "fran", "facilitator pass 1", "views/facilitator_setup.py")


def upload(at, name: str, content: bytes):
    at.file_uploader[0].set_value((name, content, "application/x-yaml")).run()
    assert not at.exception, at.exception
    return at


def state(store) -> tuple:
    """What a refused save must leave as it was."""
    return (sorted(store.deliberations()["id"]), len(store.audit_log()), store.deliberation("demo")["title"])


def test_an_uploaded_file_replaces_the_editor_text_and_is_what_gets_saved(store):
    at = setup_page(store)
    text = yaml.safe_dump(DEFINITION, sort_keys=False)
    upload(at, "mine.yaml", text.encode())
    assert at.text_area[0].value == text, "the editor shows the file"
    button(at, "Save the deliberation").click().run()
    assert any("(uploaded)" in s.value for s in at.success) and not at.warning
    saved = store.deliberation("uploaded")
    assert saved["title"] == "From a file" and not saved["open_signup"]
    assert "my-deliberation" not in set(store.deliberations()["id"]), "not the built-in example"


def test_saving_the_example_nobody_edited_asks_first(store):
    at = setup_page(store)
    before = state(store)
    button(at, "Save the deliberation").click().run()
    assert any("You have not changed the example" in w.value and "open sign-up on" in w.value for w in at.warning)
    assert state(store) == before, "nothing saved yet"
    button(at, "Cancel").click().run()
    assert not at.warning and state(store) == before
    button(at, "Save the deliberation").click().run()
    button(at, "Save it anyway").click().run()
    assert not at.exception, at.exception
    assert any("(my-deliberation)" in s.value for s in at.success)
    assert "my-deliberation" in set(store.deliberations()["id"])


def test_an_upload_naming_another_deliberation_asks_before_changing_it(store):
    at = setup_page(store)
    before = state(store)
    upload(at, "over.yaml", yaml.safe_dump({**DEFINITION, "id": "demo", "title": "Replaced"}).encode())
    button(at, "Save the deliberation").click().run()
    assert any("A deliberation “demo” exists" in w.value for w in at.warning)
    assert state(store) == before
    button(at, "Save it anyway").click().run()
    assert store.deliberation("demo")["title"] == "Replaced"


@pytest.mark.parametrize(("name", "content", "message"), [
    ("big.yaml", b"# " + b"x" * DEFINITION_MAX_BYTES, f"big.yaml: the file is larger than {DEFINITION_MAX_BYTES:,} bytes"),
    ("latin.yaml", "title: Caf\u00e9".encode("latin-1"), "latin.yaml: not UTF-8 text"),
])
def test_a_file_beyond_the_limits_is_refused_naming_it_and_leaves_the_editor(store, name, content, message):
    at = setup_page(store)
    example = at.text_area[0].value
    upload(at, name, content)
    assert [e.value for e in at.error if e.value.startswith(name)] and any(message in e.value for e in at.error)
    assert at.text_area[0].value == example and len(at.error) == 1 and "\n" not in at.error[0].value


@pytest.mark.parametrize(("content", "field"), [
    (yaml.safe_dump({**DEFINITION, "questions": []}), "bad.yaml: questions: "),
    (yaml.safe_dump({**DEFINITION, "signup_limits": {"per_hour": -5}}), "bad.yaml: signup_limits.per_hour: "),
    (yaml.safe_dump({**DEFINITION, "questions": [DEFINITION["questions"][0]] * 101}), "bad.yaml: questions: "),
    ("[" * 40 + "]" * 40, "bad.yaml: line 1: nested deeper than"),
])
def test_a_bad_definition_in_a_file_names_the_file_and_field_and_writes_nothing(store, content, field):
    at = setup_page(store)
    before = state(store)
    upload(at, "bad.yaml", content.encode())
    assert not at.error, "the text loads; it is checked when saved"
    button(at, "Save the deliberation").click().run()
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and errors[0].startswith(field) and "\n" not in errors[0], errors
    assert state(store) == before


def test_the_example_is_the_demo_definition_under_another_id(store):
    at = setup_page(store)
    assert at.text_area[0].value.startswith(config.DEMO_DELIBERATION.read_text().split("id: demo")[0])
    assert "id: my-deliberation" in at.text_area[0].value
