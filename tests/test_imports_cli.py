"""Golden tests through the command line on the shared real data: the MGE study dump and Polis exports."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score
from typer.testing import CliRunner

from workbench.cli import app
from workbench.store import Store

runner = CliRunner()


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def mge_db(tmp_path_factory):
    from conftest import SHARED_DATASETS

    if not (SHARED_DATASETS / "mge-dft").is_dir():
        pytest.skip("shared MGE dataset not found")
    db = tmp_path_factory.mktemp("mge") / "mge.duckdb"
    out = invoke("import", "mge", SHARED_DATASETS / "mge-dft", "--db", db)
    assert "834 participants" in out and "630 cards" in out and "115 canonical" in out and "1592 wiser" in out
    return db


def test_mge_import_counts_and_idempotence(mge_db, shared_datasets):
    again = invoke("import", "mge", shared_datasets / "mge-dft", "--db", mge_db)
    assert "nothing new" in again
    with Store(mge_db) as s:
        assert len(s.cards("mge-dft")) == 625  # quality 'ok'
        assert len(s.cards("mge-dft", include_hidden=True)) == 630
        assert len(s.canonical_values("mge-dft")) == 115
        assert len(s.wiser_answers("mge-dft")) == 1592
        assert len(s.wiser_answers("mge-dft", until="2023-10-18")) == 1540
        votes = s.endorsements("mge-dft", latest=False)
        assert (votes["vote"] == 1).sum() == 1265  # every selection is an agree
        attrs = s.attributes("mge-dft")
        assert attrs["us_political_affiliation"].notna().sum() == 344


def test_mge_graph_reproduces_the_published_study_graph(mge_db, tmp_path):
    out = tmp_path / "g.json"
    printed = invoke("graph", "--db", mge_db, "--mode", "mge", "--until", "2023-10-18", "--out", out)
    assert "69 edges" in printed
    graph = json.loads(out.read_text())
    assert len(graph["edges"]) == 69
    edge = next(e for e in graph["edges"] if e["sourceValueId"] == 167 and e["wiserValueId"] == 174)
    assert edge["contexts"] == ["When making decisions"]
    assert edge["counts"] == {"markedWiser": 3, "markedNotWiser": 0, "markedLessWise": 0, "markedUnsure": 1,
                              "impressions": 4}
    assert edge["summary"]["wiserLikelihood"] == pytest.approx(0.75)
    assert edge["summary"]["entropy"] == pytest.approx(1.4056390622295665)
    top = max(graph["values"], key=lambda v: v["pageRank"])
    assert top["id"] == 289 and top["title"] == "Information Empowerment"


def test_graph_as_graphml_and_default_mode(mge_db, tmp_path):
    printed = invoke("graph", "--db", mge_db, "--out", tmp_path / "g.graphml")
    assert "default moral graph" in printed
    assert "<graphml" in (tmp_path / "g.graphml").read_text()


def test_bad_dump_names_file_row_and_field_and_writes_nothing(tmp_path, shared_datasets):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(shared_datasets / "mge-dft", bad)
    edges = json.loads((bad / "edge.json").read_text())
    edges[17]["relationship"] = "maybe"
    (bad / "edge.json").write_text(json.dumps(edges))
    db = tmp_path / "x.duckdb"
    result = runner.invoke(app, ["import", "mge", str(bad), "--db", str(db)])
    assert result.exit_code == 2
    assert "edge.json row 17 field 'relationship'" in result.output
    with Store(db) as s:
        assert s.deliberations().empty


@pytest.mark.parametrize("conversation,at_least", [("canadian-electoral-reform", 0.9), ("scoop-hivemind.taxes", 0.85)])
def test_polis_import_then_groups_match_polis(conversation, at_least, tmp_path, shared_datasets):
    db = tmp_path / "p.duckdb"
    folder = shared_datasets / "polis" / conversation
    invoke("import", "polis", folder, "--db", db)
    assert "nothing new" in invoke("import", "polis", folder, "--db", db)
    invoke("groups", "--db", db, "--out", tmp_path / "g.csv")
    ours = pd.read_csv(tmp_path / "g.csv", dtype={"source_id": str})
    theirs = pd.read_csv(folder / "participants-votes.csv", usecols=["participant", "group-id"], dtype=str)
    both = ours.merge(theirs, left_on="source_id", right_on="participant").dropna(subset=["group-id"])
    both = both[both["group"] >= 0]
    assert len(both) > 250
    assert adjusted_rand_score(both["group-id"], both["group"]) >= at_least
