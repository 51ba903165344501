"""One rule for public ids (workbench/ids.py): every public id is a string; imported rows keep their
source id as text, workbench-made rows are a letter and a number; imports refuse ids shaped like the
workbench's own, so the rule is one-to-one; and a deliberation mixing both kinds of value works
everywhere (issue 17 item 1: it broke the graph and the exports with ArrowTypeError)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from apptest import staff_page, staff_store
from typer.testing import CliRunner

from workbench import ids
from workbench.cli import app
from workbench.errors import InputError, NotFound
from workbench.io.comparisons import ComparisonFormatError, comparisons_bundle
from workbench.store import open_store

runner = CliRunner()


def test_public_ids_are_source_ids_as_text_or_a_letter_and_the_store_id():
    assert ids.public_id("value", 5, "167") == "167"
    assert ids.public_id("participant", 17) == "p17" and ids.public_id("participant", 17, None) == "p17"
    assert ids.public_id("card", 12, float("nan")) == "c12"  # a missing source id from a DataFrame
    assert [ids.public_id(k, 3) for k in ("statement", "value", "interview")] == ["s3", "v3", "i3"]
    column = ids.public_ids("participant", pd.Series([1, 2, 3]), pd.Series(["demo-0001", None, "1234"]))
    assert list(column) == ["demo-0001", "p2", "1234"] and all(isinstance(v, str) for v in column)


def test_an_id_map_goes_both_ways_and_names_what_is_missing():
    people = ids.IdMap.of("participant", [1, 2], ["1234", None])
    assert people.public(2) == "p2" and people.store("1234") == 1
    assert list(people.publics(pd.Series([2, None, 1]))) == ["p2", None, "1234"]
    with pytest.raises(NotFound, match="no participant 'p9'"):
        people.store("p9")
    with pytest.raises(AssertionError, match="share a public id"):
        ids.IdMap.of("participant", [1, 17], ["p17", None])


def test_an_imported_id_shaped_like_a_workbench_id_is_refused_naming_file_and_row(tmp_path):
    path = tmp_path / "judgements.csv"
    path.write_text("participant_id,item_a,item_b,winner\nu1,x,y,a\np17,x,y,b\n")
    with pytest.raises(ComparisonFormatError, match=r"judgements.csv, row 2: participant_id 'p17' has the shape"):
        comparisons_bundle(path, deliberation_id="c")
    path.write_text("participant_id,item_a,item_b,winner\nu1,x,v5,a\n")
    with pytest.raises(ComparisonFormatError, match=r"row 1: item_b 'v5' has the shape the workbench gives its own"):
        comparisons_bundle(path, deliberation_id="c")
    # Any importer's bundle is checked too (the comparisons reader names the row first).
    with pytest.raises(InputError, match="participant id 'p3'"):
        ids.refuse_workbench_shapes("participant", ["1234", "p3"], where="polis import")
    ids.refuse_workbench_shapes("participant", ["P17", "demo-0001", "17", "p17x", None], where="fine")


def test_imported_and_workbench_made_rows_keep_distinct_public_ids(tmp_path, demo_spec, shared_datasets):
    db = tmp_path / "mge.duckdb"
    assert runner.invoke(app, ["import", "mge", str(shared_datasets / "mge-dft"), "--db", str(db)]).exit_code == 0
    store = open_store(db)
    values = store.id_map("mge-dft", "value")
    assert "167" in values.to_store and all(p.isdigit() for p in values.to_store)
    new = store.add_canonical_value("mge-dft", title="New", description="", policies=["A", "B"], origin="manual")
    values = store.id_map("mge-dft", "value")
    assert values.public(new) == f"v{new}" and values.store(f"v{new}") == new
    people = store.id_map("mge-dft", "participant")
    (pid, _), = store.create_invites("mge-dft", 1)
    assert store.id_map("mge-dft", "participant").public(pid) == f"p{pid}"
    assert len(people.to_store) + 1 == len(store.id_map("mge-dft", "participant").to_store)
    store.close()


# -- issue 17 item 1: a workbench-made value next to the demo's ----------------------------------------


@pytest.fixture
def mixed(tmp_path, monkeypatch, demo_spec):
    """The demo, one of whose participants' cards dedup turned into a new canonical value, and a
    wiser-than answer touching that value. Built with the SQL the app's own calls write, so the same
    state can be made on any version of the store."""
    path = tmp_path / "mixed.duckdb"
    store = staff_store(path, monkeypatch, demo_spec, participants=12, seed=1)
    card = int(store.cards("demo", question_id="demo/homework").iloc[0]["id"])
    new = store.add_canonical_value("demo", title="Listening Before Pushing", description="Hearing it out.",
                                    policies=["MOMENTS a", "SIGNS b"], origin="dedup", question_id="demo/homework",
                                    members=[card], provenance="dedup")
    old = int(store.canonical_values("demo", question_id="demo/homework").iloc[0]["id"])
    context = store.context_id("demo", "When a child's wellbeing is at stake")
    participant = int(store.participants("demo").iloc[0]["participant_id"])
    store._write(lambda cur: cur.execute(
        "INSERT INTO wiser_answers (deliberation_id, participant_id, from_value_id, to_value_id, context_id, answer,"
        " created_at) VALUES ('demo', ?, ?, ?, ?, 'upgrade', now())", [participant, old, new, context]))
    return store, path, new


def test_a_workbench_made_value_beside_imported_ones_breaks_no_export_graph_or_page(mixed, tmp_path):
    store, path, new = mixed
    for what in ("all", "graph"):
        result = runner.invoke(app, ["export", "--db", str(path), "--what", what, "--out", str(tmp_path / what)])
        assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["graph", "--db", str(path), "--mode", "mge", "--min-wiser", "0",
                                 "--out", str(tmp_path / "g.json")])
    assert result.exit_code == 0, result.output
    graph = json.loads((tmp_path / "g.json").read_text())
    value_ids = [v["id"] for v in graph["values"]]
    assert all(isinstance(v, str) for v in value_ids) and f"v{new}" in value_ids
    assert "demo-homework-parent-calm" in value_ids or any(v.startswith("demo-") for v in value_ids)
    answers = pd.read_parquet(tmp_path / "all" / "wiser-answers.parquet")
    assert f"v{new}" in set(answers["to_value_id"])

    at = staff_page(store, "fran", "facilitator pass 1", "views/moral_graph.py")
    at.radio[0].set_value("mge").run()
    assert not at.exception, at.exception
    at = staff_page(store, "rhea", "researcher pass 1", "views/researcher_exports.py")
    next(b for b in at.button if b.label == "Prepare the export").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert at.get("download_button")
