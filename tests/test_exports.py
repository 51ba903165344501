"""Researcher exports: schema-valid rows, datasheets, determinism, nothing identifying, and a Polis
round trip (export → re-import gives the same groups)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from workbench import config, exports
from workbench.cli import app
from workbench.demo import load_world, simulate
from workbench.store import Store

runner = CliRunner()


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory, demo_spec):
    db = tmp_path_factory.mktemp("exp") / "demo.duckdb"
    with Store(db) as s:
        s.import_bundle(simulate(demo_spec, load_world(config.DATA / "demo_values.yaml"), 60, seed=3))
        s.create_invites("demo", 2)
    return db


def run(*args):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("fmt", exports.FORMATS)
def test_every_table_exports_valid_rows_with_a_datasheet(demo_db, tmp_path, fmt):
    out = tmp_path / "all"
    run("export", "--db", demo_db, "--what", "all", "--format", fmt, "--out", out)
    readme = (out / "README.md").read_text()
    for table in exports.TABLES:
        path = out / f"{table}.{fmt}"
        assert path.exists(), table
        assert f"`{table}.{fmt}`" in readme
    frame = {"parquet": pd.read_parquet, "csv": pd.read_csv,
             "jsonl": lambda p: pd.read_json(p, lines=True)}[fmt](out / f"cards.{fmt}")
    assert len(frame) == 60 and frame["cluster_id"].notna().all()
    assert "| `policies` | the attentional policies" in readme
    assert "Licence: CC BY 4.0" in readme
    graph = json.loads((out / "moral-graph-mge.json").read_text())
    assert set(graph) == {"values", "edges"}
    assert (out / "moral-graph-default.graphml").read_text().startswith("<?xml")
    assert (out / "polis" / "participants-votes.csv").exists()


def test_the_same_database_gives_the_same_files(demo_db, tmp_path):
    for name in ("a", "b"):
        run("export", "--db", demo_db, "--what", "all", "--format", "csv", "--out", tmp_path / name)
    for path in sorted((tmp_path / "a").rglob("*")):
        if path.is_file():
            twin = tmp_path / "b" / path.relative_to(tmp_path / "a")
            assert path.read_bytes() == twin.read_bytes(), path.name


def test_participants_export_holds_no_tokens_or_hashes(demo_db, tmp_path):
    run("export", "--db", demo_db, "--what", "participants", "--format", "csv", "--out", tmp_path / "p.csv")
    text = (tmp_path / "p.csv").read_text()
    with Store(demo_db) as s:
        hashes = [h for (h,) in s._rows("SELECT token_hash FROM participants WHERE token_hash IS NOT NULL")]
    assert hashes and not any(h in text for h in hashes)
    assert "token" not in text.splitlines()[0]
    frame = pd.read_csv(tmp_path / "p.csv")
    assert {"participant_id", "political_leaning", "age_band"} <= set(frame.columns)


def test_preference_pairs_have_the_dpo_shape_and_group_columns(demo_db, tmp_path):
    run("export", "--db", demo_db, "--what", "preference-pairs", "--format", "jsonl", "--out", tmp_path / "pp.jsonl")
    rows = [json.loads(line) for line in (tmp_path / "pp.jsonl").read_text().splitlines()]
    assert rows and {"prompt", "chosen", "rejected", "participant_id", "context", "cluster_id", "cluster_prob",
                     "weight", "group_political_leaning"} <= set(rows[0])
    assert all(r["chosen"] != r["rejected"] for r in rows)
    assert {r["source"] for r in rows} == {"demo", "wiser"}


def test_hidden_cards_leave_the_exports(demo_db, tmp_path):
    with Store(demo_db) as s:
        card = int(s.cards("demo").iloc[0]["id"])
        s.hide_card(card, "test")
    try:
        run("export", "--db", demo_db, "--what", "cards", "--format", "csv", "--out", tmp_path / "c.csv")
        assert card not in set(pd.read_csv(tmp_path / "c.csv")["card_id"])
    finally:
        with Store(demo_db) as s:
            s._write(lambda cur: cur.execute("UPDATE values_cards SET status = 'active' WHERE id = ?", [card]))


def test_bad_arguments_fail_clearly_and_write_nothing(demo_db, tmp_path):
    result = runner.invoke(app, ["export", "--db", str(demo_db), "--what", "nonsense", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "--what: must be one of" in result.output
    result = runner.invoke(app, ["export", "--db", str(demo_db), "--what", "cards", "--format", "xlsx",
                                 "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "--format" in result.output
    assert list(tmp_path.iterdir()) == []


def test_polis_round_trip_gives_the_same_groups(tmp_path, shared_datasets):
    src = tmp_path / "src.duckdb"
    # 15-per-hour-seattle: small enough to replay twice quickly, with 23 comments moderated out.
    run("import", "polis", shared_datasets / "polis" / "15-per-hour-seattle", "--db", src, "--as", "seattle")
    run("groups", "--db", src, "--out", tmp_path / "g1.csv")
    run("export", "--db", src, "--what", "polis", "--format", "csv", "--out", tmp_path / "polis")
    again = tmp_path / "again.duckdb"
    run("import", "polis", tmp_path / "polis", "--db", again, "--as", "again")
    run("groups", "--db", again, "--out", tmp_path / "g2.csv")
    first, second = pd.read_csv(tmp_path / "g1.csv"), pd.read_csv(tmp_path / "g2.csv")
    both = first.merge(second, on="source_id", suffixes=("_first", "_again"))
    assert len(both) == len(first) == len(second)
    assert (both["group_first"] == both["group_again"]).all()
    polis = pd.read_csv(tmp_path / "polis" / "participants-votes.csv", dtype=str)
    original = pd.read_csv(shared_datasets / "polis" / "15-per-hour-seattle" / "participants-votes.csv", dtype=str)
    assert polis.set_index("participant")["group-id"].equals(
        original.set_index("participant")["group-id"].reindex(polis["participant"]))  # Polis's groups travel
    comments = pd.read_csv(tmp_path / "polis" / "comments.csv")
    assert (comments["moderated"] == -1).sum() > 0  # moderated-out statements travel as Polis marks them


@pytest.mark.parametrize("fmt", exports.FORMATS)
def test_a_deliberation_with_no_answers_yet_exports_empty_tables(tmp_path, demo_spec, fmt):
    db = tmp_path / "empty.duckdb"
    with Store(db) as s:
        s.save_deliberation(demo_spec)
        s.create_invites("demo", 1)
    run("export", "--db", db, "--what", "all", "--format", fmt, "--out", tmp_path / "out")
    assert (tmp_path / "out" / f"endorsements.{fmt}").exists()
    assert "| `endorsements." in (tmp_path / "out" / "README.md").read_text()
