"""The `workbench` command line through typer's CliRunner, on temporary DuckDB files."""

from __future__ import annotations

import re

import pandas as pd
from typer.testing import CliRunner

from workbench.cli import app
from workbench.store import Store

runner = CliRunner()


def test_init_creates_a_migrated_database(tmp_path):
    db = tmp_path / "x.duckdb"
    result = runner.invoke(app, ["init", "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "schema version" in result.output
    assert db.exists()


def test_init_reports_a_bad_deliberation_file_by_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: Bad Id\ntitle: t\nconsent: c\nquestions: []\n")
    result = runner.invoke(app, ["init", "--db", str(tmp_path / "x.duckdb"), "--deliberation", str(bad)])
    assert result.exit_code == 2
    assert "bad.yaml" in result.output and "id:" in result.output and "questions:" in result.output


def test_db_from_environment_variable(tmp_path, monkeypatch):
    db = tmp_path / "env.duckdb"
    monkeypatch.setenv("WORKBENCH_DB", str(db))
    assert runner.invoke(app, ["init"]).exit_code == 0
    assert db.exists()


def test_demo_is_deterministic_and_idempotent(tmp_path):
    dbs = [tmp_path / "a.duckdb", tmp_path / "b.duckdb"]
    for db in dbs:
        result = runner.invoke(app, ["demo", "--db", str(db), "--participants", "30", "--seed", "7", "--invites", "0"])
        assert result.exit_code == 0, result.output
        assert "30 participants" in result.output
    frames = []
    for db in dbs:
        with Store(db) as s:
            frames.append((s.cards("demo")[["title", "policies"]], s.wiser_answers("demo")[["from_id", "to_id", "answer"]],
                           s.comparisons("demo")[["item_a", "item_b", "winner"]]))
    for x, y in zip(*frames, strict=True):
        assert x.astype(str).equals(y.astype(str))
    again = runner.invoke(app, ["demo", "--db", str(dbs[0]), "--participants", "30", "--seed", "7", "--invites", "0"])
    assert again.exit_code == 0
    with Store(dbs[0]) as s:
        assert len(s.participants("demo")) == 30
        assert len(s.wiser_answers("demo")) == 30 * 3
        assert set(s.attributes("demo")["simulated_community"]) == {"autonomy", "care", "tradition"}


def test_invite_prints_links_that_resolve(tmp_path):
    db = tmp_path / "i.duckdb"
    assert runner.invoke(app, ["demo", "--db", str(db), "--participants", "3", "--invites", "0"]).exit_code == 0
    result = runner.invoke(app, ["invite", "demo", "-n", "2", "--db", str(db), "--csv", str(tmp_path / "inv.csv")])
    assert result.exit_code == 0, result.output
    tokens = re.findall(r"\?invite=([\w-]+)", result.output)
    assert len(tokens) == 2
    with Store(db) as s:
        people = [s.participant_by_token(t) for t in tokens]
        assert all(p is not None for p in people)
        public = [s.id_map("demo", "participant").public(p["id"]) for p in people]
    # Printed and written by their public ids (p<number>), as every export names them.
    assert re.findall(r"participant (p\d+):", result.output) == public
    assert list(pd.read_csv(tmp_path / "inv.csv")["participant_id"]) == public


def test_invite_for_an_unknown_deliberation_fails_clearly(tmp_path):
    result = runner.invoke(app, ["invite", "nope", "--db", str(tmp_path / "i.duckdb")])
    assert result.exit_code == 2
    assert "no deliberation 'nope'" in result.output
