"""One home for errors: every error the workbench raises on purpose is a `WorkbenchError`, and nothing
else reaches a user as a message — a bug is logged with its trace and the user sees a short message
with an error id (pages) or a one-line note (CLI; the trace with --debug). Issue 17 item 9: no
traceback with server paths reaches a visitor."""

from __future__ import annotations

import importlib
import inspect
import logging
import pkgutil

import pytest
from apptest import button, staff_page, staff_store
from typer.testing import CliRunner

import workbench
from workbench import config, errors
from workbench.cli import app
from workbench.demo import load_world, simulate
from workbench.store import open_store

runner = CliRunner()


def workbench_exceptions() -> list[type[BaseException]]:
    """Every exception class defined in a workbench module (the Streamlit views excepted: they are scripts)."""
    found = []
    for module_info in pkgutil.walk_packages(workbench.__path__, "workbench."):
        if module_info.name.startswith("workbench.webapp") or module_info.name == "workbench.web":
            continue
        module = importlib.import_module(module_info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, BaseException) and cls.__module__ == module.__name__:
                found.append(cls)
    return found


def test_every_workbench_exception_is_a_workbench_error_and_none_is_a_value_error():
    classes = workbench_exceptions()
    # The 22 classes the issue counted, less the three now replaced by errors.py (models.InputError, the
    # store's StoreError and NotFound), plus errors.py's base and its six kinds.
    assert len(classes) >= 22 - 3 + 7
    assert [c.__qualname__ for c in classes if not issubclass(c, errors.WorkbenchError)] == []
    # A bare ValueError is a bug's signature (a failed int(), a bad numpy shape): never a user's message.
    assert [c.__qualname__ for c in classes if issubclass(c, ValueError)] == []


def test_models_input_error_is_the_one_input_error():
    from workbench import models

    assert models.InputError is errors.InputError


# -- the command line -------------------------------------------------------------------------------


@pytest.fixture
def demo_file(tmp_path, demo_spec):
    path = tmp_path / "cli.duckdb"
    store = open_store(path)
    store.import_bundle(simulate(demo_spec, load_world(config.DATA / "demo_values.yaml"), 12, seed=1))
    store.close()
    from workbench.store import _open

    _open.clear()
    return path


def broken_graph(*args, **kwargs):
    raise TypeError("'NoneType' object is not subscriptable (in /srv/workbench/secret/path.py)")


def test_cli_reports_a_bug_in_one_line_with_exit_code_1_and_the_trace_only_with_debug(demo_file, monkeypatch,
                                                                                      tmp_path):
    from workbench import analyses

    monkeypatch.setattr(analyses, "moral_graph", broken_graph)
    result = runner.invoke(app, ["graph", "--db", str(demo_file), "--out", str(tmp_path / "g.json")])
    assert result.exit_code == 1
    assert "Traceback" not in result.output and "/srv/workbench" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "workbench graph failed unexpectedly (TypeError)" in lines[0]
    assert "--debug" in lines[0]

    result = runner.invoke(app, ["--debug", "graph", "--db", str(demo_file), "--out", str(tmp_path / "g.json")])
    assert result.exit_code == 1
    assert "error id" in result.output


def test_cli_debug_logs_the_trace(demo_file, monkeypatch, tmp_path, caplog):
    from workbench import analyses

    monkeypatch.setattr(analyses, "moral_graph", broken_graph)
    with caplog.at_level(logging.ERROR, logger="workbench"):
        runner.invoke(app, ["--debug", "graph", "--db", str(demo_file), "--out", str(tmp_path / "g.json")])
    record = next(r for r in caplog.records if r.name == "workbench")
    assert record.exc_info and record.exc_info[0] is TypeError


def test_cli_usage_errors_stay_usage_errors(demo_file, tmp_path):
    result = runner.invoke(app, ["fit", "--db", str(demo_file), "--no-such", "q", "--out", str(tmp_path / "f.json")])
    assert result.exit_code == 2 and "No such option" in result.output and "a bug" not in result.output


def test_cli_shows_a_workbench_error_as_its_message_with_exit_code_2(demo_file, tmp_path):
    result = runner.invoke(app, ["graph", "--db", str(demo_file), "--until", "next tuesday",
                                 "--out", str(tmp_path / "g.json")])
    assert result.exit_code == 2
    assert "until: not a date or time: 'next tuesday'" in result.output
    assert "Traceback" not in result.output


# -- the pages ------------------------------------------------------------------------------------------


@pytest.fixture
def staff(tmp_path, monkeypatch, demo_spec):
    return staff_store(tmp_path / "staff.duckdb", monkeypatch, demo_spec, participants=12, seed=2)




def test_exports_page_names_the_field_of_an_invalid_date_in_one_line(staff):
    at = staff_page(staff, "rhea", "researcher pass 1", "views/researcher_exports.py")
    at.text_input[0].input("31/31/2023").run()
    button(at, "Prepare the export").click().run()
    assert not at.exception, at.exception
    messages = [e.value for e in at.error]
    assert len(messages) == 1 and "\n" not in messages[0]
    assert messages[0].startswith("until (only data created before): not a date or time: '31/31/2023'")


def test_a_bug_in_a_page_shows_an_error_id_and_logs_the_trace(staff, monkeypatch, caplog):
    from workbench import exports

    def broken_export(*args, **kwargs):
        raise KeyError("/srv/workbench/secret/path.py")

    monkeypatch.setattr(exports, "export", broken_export)
    at = staff_page(staff, "rhea", "researcher pass 1", "views/researcher_exports.py")
    with caplog.at_level(logging.ERROR, logger="workbench"):
        button(at, "Prepare the export").click().run()
    assert not at.exception, "no traceback reaches the visitor"
    shown = " ".join(e.value for e in at.error)
    assert "error id" in shown and "/srv/workbench" not in shown and "KeyError" not in shown
    error_id = shown.split("error id ")[1].split(")")[0]
    record = next(r for r in caplog.records if r.name == "workbench" and error_id in r.getMessage())
    assert record.exc_info and record.exc_info[0] is KeyError


def test_setup_reports_deeply_nested_yaml_in_one_line(staff):
    at = staff_page(staff, "fran", "facilitator pass 1", "views/facilitator_setup.py")
    at.text_area[0].input("questions: " + "[" * 3000 + "]" * 3000)
    button(at, "Save the deliberation").click().run()
    assert not at.exception, at.exception
    messages = [e.value for e in at.error]
    assert len(messages) == 1 and "\n" not in messages[0], messages
    assert messages[0].startswith("definition: ") and "nesting depth" in messages[0], messages
