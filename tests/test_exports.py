"""Researcher exports: schema-valid rows, datasheets, determinism, nothing identifying, a Polis round trip
(export → re-import gives the same groups), and exports a researcher can join without thinking: every
WHAT loads with pandas, merges on `participant_id` without a cast, and every id a column points to is
in the same export."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner
from walk import card_in, same_value_round, to_card, to_question

from workbench import analyses, config, exports
from workbench.cli import app
from workbench.demo import load_world, simulate
from workbench.store import Store

runner = CliRunner()


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory, demo_spec):
    """The demo (60 simulated participants) plus what the app adds: participants who joined by invite and
    made cards, a value split off by a facilitator and answered about, a chat interview, a latent-class
    fit and an opinion-groups run."""
    db = tmp_path_factory.mktemp("exp") / "demo.duckdb"
    with Store(db) as s:
        s.import_bundle(simulate(demo_spec, load_world(config.DATA / "demo_values.yaml"), 60, seed=3))
        (a, _), (b, _), (c, _) = s.create_invites("demo", 3)
        _, card = to_card(s, a)
        to_card(s, b, card_in(title="Hearing The Child Out", policies=["PAUSES before insisting",
                                                                        "QUESTIONS the child asks"]))
        split = s.split_card(card)  # a value made in the workbench ("v..."), next to the demo's slugs
        homework = analyses.value_table(s, "demo", question_id="demo/homework")
        other = int(homework[homework["origin"] == "demo"].iloc[0]["id"])
        s.plan_round(b, "wiser", [{"from_id": other, "to_id": split, "context": "When a child's wellbeing is at stake"}])
        s.answer_wiser(b, 0, "upgrade", "listening first")
        s.plan_round(b, "endorse", [split])
        s.endorse(b, 0, "agree")
        values = s.id_map("demo", "value")
        s.plan_round(b, "compare", [{"item_a": values.public(split), "item_b": values.public(other)}])
        s.compare(b, 0, "a")
        demo_cards = [int(i) for i in s.cards("demo", question_id="demo/homework")["id"].iloc[:2]]
        same_value_round(s, b, [(card, demo_cards[0], "same")])
        s.record_merge_verdicts("demo", [(demo_cards[1], card, "different", "One listens, one pushes.")],
                                model="judge-1")
        interview = to_question(s, c, "demo/riot", mode="llm")
        s.chat_turn(c, interview, None, "Tell me about a time the news scared you.")
        s.chat_turn(c, interview, "When my neighbour shared a rumour as fact.", "What did you notice then?")
        analyses.fit_preferences(s, "demo", question_id="demo/homework", max_k=3)
        analyses.opinion_groups(s, "demo", question_id="demo/pregnancy", record=True)
    return db


def run(*args):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


READ = {"parquet": pd.read_parquet, "csv": pd.read_csv, "jsonl": lambda p: pd.read_json(p, lines=True)}


@pytest.mark.parametrize("fmt", exports.FORMATS)
def test_every_table_exports_valid_rows_with_a_datasheet(demo_db, tmp_path, fmt):
    out = tmp_path / "all"
    run("export", "--db", demo_db, "--what", "all", "--format", fmt, "--out", out)
    readme = (out / "README.md").read_text()
    for table in exports.TABLES:
        path = out / f"{table}.{fmt}"
        assert path.exists(), table
        assert f"`{table}.{fmt}`" in readme
    frame = READ[fmt](out / f"cards.{fmt}")
    assert len(frame) == 62 and frame["value_id"].isna().sum() == 1  # the newest card awaits clustering
    assert "| `policies` | the attentional policies" in readme
    assert "Licence: CC BY 4.0" in readme
    graph = json.loads((out / "moral-graph-mge.json").read_text())
    assert set(graph) == {"values", "edges"}
    assert (out / "moral-graph-default.graphml").read_text().startswith("<?xml")
    assert (out / "polis" / "participants-votes.csv").exists()


def test_the_datasheet_lists_every_file_with_its_columns(demo_db, tmp_path):
    out = tmp_path / "all"
    run("export", "--db", demo_db, "--what", "all", "--format", "csv", "--out", out)
    readme = (out / "README.md").read_text()
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and p.name != "README.md")
    assert len(files) == len(exports.TABLES) + 4 + 5  # the tables, two graphs in two formats, five Polis files
    for name in files:
        assert f"| `{name}` |" in readme, name
    for name in files:
        if name.endswith(".csv"):  # every column of every table file is explained
            for column in pd.read_csv(out / name, nrows=0).columns:
                if not column.isdigit():  # participants-votes has one column per comment-id
                    assert f"| `{column}` |" in readme, (name, column)
    for field in ("sourceValueId", "wiserValueId", "pageRank", "comment-id", "voter-id", "group-id"):
        assert field in readme
    assert "(→ `participants.participant_id`)" in readme
    assert "from analysis run" in readme and "Latent classes" in readme and "Opinion groups" in readme


def load(folder: Path, fmt: str) -> dict[str, pd.DataFrame]:
    return {path.name.rsplit(".", 1)[0]: READ[fmt](path) for path in folder.glob(f"*.{fmt}")}


def assert_joins(frames: dict[str, pd.DataFrame]) -> None:
    """Every participant_id merges with participants as is, and every id a column points to is there."""
    people = frames["participants"]
    assert people["participant_id"].is_unique
    for name, frame in frames.items():
        if name != "participants" and "participant_id" in frame.columns and len(frame):
            answered = frame.dropna(subset=["participant_id"])  # an LLM's same-value verdict has nobody
            joined = answered.merge(people, on="participant_id", how="left", indicator=True,
                                 validate="many_to_one", suffixes=("", "_person"))
            assert (joined["_merge"] == "both").all(), (name, joined[joined["_merge"] != "both"].head())
        for column, (table, target) in exports.references(name).items():
            assert table in frames, (name, column, table)
            if frame.empty:  # an empty JSONL file has no columns at all
                continue
            wanted = set(frame[column].dropna())
            missing = wanted - set(frames[table][target] if wanted else ())
            assert not missing, f"{name}.{column} → {table}.{target}: {sorted(missing)[:5]}"


@pytest.mark.parametrize("what", [w for w in exports.WHATS if w not in ("graph", "polis")])
def test_every_export_joins_on_participant_id_without_a_cast_and_every_key_resolves(demo_db, tmp_path, what):
    out = tmp_path / what
    run("export", "--db", demo_db, "--what", what, "--out", out)
    frames = load(out, "parquet")
    assert set(frames) == set(exports.tables_for(what))
    if "participants" in frames:
        dtypes = {str(f["participant_id"].dtype) for f in frames.values() if "participant_id" in f.columns}
        assert len(dtypes) == 1, dtypes  # one dtype for participant_id across every table
        assert_joins(frames)


def test_same_value_answers_name_cards_and_participants_by_public_ids(demo_db, tmp_path):
    out = tmp_path / "same"
    run("export", "--db", demo_db, "--what", "same-value-answers", "--out", out)
    frames = load(out, "parquet")
    assert set(frames) == {"same-value-answers", "cards", "participants", "canonical-values", "questions"}
    answers = frames["same-value-answers"].sort_values("answer_id")
    assert list(answers["source"]) == ["participant", "llm"]
    assert list(answers["answer"]) == ["same", "different"]
    assert answers["participant_id"].iloc[0].startswith("p") and pd.isna(answers["participant_id"].iloc[1])
    assert list(answers["model"].fillna("")) == ["", "judge-1"]
    pairs = answers.merge(frames["cards"], left_on="card_a", right_on="card_id", validate="many_to_one")
    pairs = pairs.merge(frames["cards"], left_on="card_b", right_on="card_id", suffixes=("_a", "_b"))
    assert len(pairs) == 2 and "Listening Before Pushing" in set(pairs["title_a"]) | set(pairs["title_b"])
    assert "## `same-value-answers.parquet`: same-value answer" in (out / "README.md").read_text()


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_all_joins_in_text_formats_too(demo_db, tmp_path, fmt):
    out = tmp_path / fmt
    run("export", "--db", demo_db, "--what", "all", "--format", fmt, "--out", out)
    assert_joins(load(out, fmt))


def test_graph_and_polis_exports_resolve_their_ids(demo_db, tmp_path):
    out = tmp_path / "graph"
    run("export", "--db", demo_db, "--what", "graph", "--out", out)
    values = set(pd.read_parquet(out / "canonical-values.parquet")["value_id"])
    for mode in ("mge", "default"):
        graph = json.loads((out / f"moral-graph-{mode}.json").read_text())
        assert {v["id"] for v in graph["values"]} <= values
        assert all(isinstance(v["id"], str) for v in graph["values"])
        assert {e[k] for e in graph["edges"] for k in ("sourceValueId", "wiserValueId")} <= values

    out = tmp_path / "polis"
    run("export", "--db", demo_db, "--what", "polis", "--out", out)
    people = set(pd.read_parquet(out / "participants.parquet")["participant_id"])
    ids = pd.read_csv(out / "polis" / "participant-ids.csv", dtype={"participant_id": str})
    pv = pd.read_csv(out / "polis" / "participants-votes.csv")
    votes = pd.read_csv(out / "polis" / "votes.csv")
    assert set(ids["participant_id"]) <= people and set(votes["voter-id"]) <= set(pv["participant"])
    assert set(pv["participant"]) == set(ids["participant"])
    comments = pd.read_csv(out / "polis" / "comment-ids.csv", dtype=str)
    assert set(comments["value_id"].dropna()) <= set(pd.read_parquet(out / "canonical-values.parquet")["value_id"])
    assert set(votes["comment-id"]) <= set(pd.read_csv(out / "polis" / "comments.csv")["comment-id"])
    # group-id comes from the stored opinion-groups run (on the pregnancy question's voters).
    grouped = pv.merge(ids, on="participant")
    assert grouped["group-id"].notna().sum() >= 10
    assert "from analysis run" in (out / "README.md").read_text()


def test_cluster_id_comes_from_the_latest_stored_latent_fit(demo_db, tmp_path):
    out = tmp_path / "pp"
    run("export", "--db", demo_db, "--what", "preference-pairs", "--out", out)
    pairs = pd.read_parquet(out / "preference-pairs.parquet")
    with Store(demo_db) as s:
        run_id = int(s.runs(deliberation_id="demo", kind="fit").iloc[0]["id"])
        fitted = {p["participant_id"]: p["component"] for p in s.run(run_id)["result"]["participants"]}
    placed = pairs[pairs["participant_id"].isin(fitted)]
    assert len(placed) > 50 and placed["cluster_id"].notna().all()
    assert (placed["cluster_id"] == placed["participant_id"].map(fitted)).all()
    assert placed["cluster_prob"].between(0, 1).all()
    assert pairs.loc[~pairs["participant_id"].isin(fitted), "cluster_id"].isna().all()
    assert f"from analysis run {run_id}" in (out / "README.md").read_text()
    # One participant, one id: a demo participant is 'demo-0001' in every row, never also a number.
    assert pairs["participant_id"].str.match(r"^(demo-\d{4}|p\d+)$").all()


def test_interviews_export_holds_the_guided_stages_and_the_chat(demo_db, tmp_path):
    out = tmp_path / "interviews"
    run("export", "--db", demo_db, "--what", "interviews", "--out", out)
    interviews = pd.read_parquet(out / "interviews.parquet")
    messages = pd.read_parquet(out / "interview-messages.parquet")
    assert len(interviews) == 3 and interviews["interview_id"].str.match(r"^i\d+$").all()
    guided = interviews[interviews["card_id"].notna()]
    assert set(guided["title"]) == {"Listening Before Pushing", "Hearing The Child Out"}
    assert list(guided.iloc[0]["contexts"]) == ["When a child's wellbeing is at stake"]
    chat = messages.merge(interviews, on="interview_id")
    assert list(chat["role"]) == ["assistant", "user", "assistant"] and list(chat["turn"]) == [1, 2, 3]
    assert "rumour" in chat.iloc[1]["content"] and (chat["mode"] == "llm").all()
    assert set(interviews["card_id"].dropna()) <= set(pd.read_parquet(out / "cards.parquet")["card_id"])

    with Store(demo_db) as s:  # a hidden card's interview leaves the export with it
        card = s.id_map("demo", "card").store(guided.iloc[0]["card_id"])
        s.hide_card(card, "test")
    try:
        run("export", "--db", demo_db, "--what", "interviews", "--out", tmp_path / "hidden")
        left = pd.read_parquet(tmp_path / "hidden" / "interviews.parquet")
        assert len(left) == 2 and guided.iloc[0]["title"] not in set(left["title"])
    finally:
        with Store(demo_db) as s:
            s._write(lambda cur: cur.execute("UPDATE values_cards SET status = 'active' WHERE id = ?", [card]))


def test_the_same_database_gives_the_same_files(demo_db, tmp_path):
    for name in ("a", "b"):
        run("export", "--db", demo_db, "--what", "all", "--format", "csv", "--out", tmp_path / name)
    for path in sorted((tmp_path / "a").rglob("*")):
        if path.is_file():
            twin = tmp_path / "b" / path.relative_to(tmp_path / "a")
            assert path.read_bytes() == twin.read_bytes(), path.name


def test_participants_export_holds_no_tokens_or_hashes(demo_db, tmp_path):
    run("export", "--db", demo_db, "--what", "participants", "--format", "csv", "--out", tmp_path / "p")
    text = (tmp_path / "p" / "participants.csv").read_text()
    with Store(demo_db) as s:
        hashes = [h for (h,) in s._rows("SELECT token_hash FROM participants WHERE token_hash IS NOT NULL")]
    assert hashes and not any(h in text for h in hashes)
    assert "token" not in text.splitlines()[0]
    frame = pd.read_csv(tmp_path / "p" / "participants.csv")
    assert {"participant_id", "political_leaning", "age_band"} <= set(frame.columns)


def test_preference_pairs_have_the_dpo_shape_and_group_columns(demo_db, tmp_path):
    run("export", "--db", demo_db, "--what", "preference-pairs", "--format", "jsonl", "--out", tmp_path / "pp")
    rows = [json.loads(line) for line in (tmp_path / "pp" / "preference-pairs.jsonl").read_text().splitlines()]
    assert rows and {"prompt", "chosen", "rejected", "participant_id", "context", "cluster_id", "cluster_prob",
                     "weight", "group_political_leaning"} <= set(rows[0])
    assert all(r["chosen"] != r["rejected"] for r in rows)
    assert {r["source"] for r in rows} == {"demo", "wiser", "compare"}


def test_hidden_cards_leave_the_exports(demo_db, tmp_path):
    with Store(demo_db) as s:
        card = int(s.cards("demo").iloc[0]["id"])
        public = s.id_map("demo", "card").public(card)
        s.hide_card(card, "test")
    try:
        run("export", "--db", demo_db, "--what", "cards", "--format", "csv", "--out", tmp_path / "c")
        assert public not in set(pd.read_csv(tmp_path / "c" / "cards.csv")["card_id"])
    finally:
        with Store(demo_db) as s:
            s._write(lambda cur: cur.execute("UPDATE values_cards SET status = 'active' WHERE id = ?", [card]))


def test_bad_arguments_fail_clearly_and_write_nothing(demo_db, tmp_path):
    result = runner.invoke(app, ["export", "--db", str(demo_db), "--what", "nonsense", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "--what: must be one of" in result.output
    result = runner.invoke(app, ["export", "--db", str(demo_db), "--what", "cards", "--format", "xlsx",
                                 "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "--format" in result.output
    result = runner.invoke(app, ["export", "--db", str(demo_db), "--what", "cards", "--out", str(tmp_path / "c.csv")])
    assert result.exit_code == 2 and "--out:" in result.output and "name a folder" in result.output
    assert list(tmp_path.iterdir()) == []


def test_polis_round_trip_gives_the_same_groups(tmp_path, shared_datasets):
    src = tmp_path / "src.duckdb"
    # 15-per-hour-seattle: small enough to replay twice quickly, with 23 comments moderated out.
    run("import", "polis", shared_datasets / "polis" / "15-per-hour-seattle", "--db", src, "--as", "seattle")
    run("groups", "--db", src, "--out", tmp_path / "g1.csv")
    run("export", "--db", src, "--what", "polis", "--format", "csv", "--out", tmp_path / "out")
    folder = tmp_path / "out" / "polis"
    # Polis's own participant and comment ids travel unchanged: no mapping files needed.
    assert not (folder / "participant-ids.csv").exists() and not (folder / "comment-ids.csv").exists()
    again = tmp_path / "again.duckdb"
    run("import", "polis", folder, "--db", again, "--as", "again")
    run("groups", "--db", again, "--out", tmp_path / "g2.csv")
    first = pd.read_csv(tmp_path / "g1.csv", dtype={"participant_id": str})
    second = pd.read_csv(tmp_path / "g2.csv", dtype={"participant_id": str})
    both = first.merge(second, on="participant_id", suffixes=("_first", "_again"))
    assert len(both) == len(first) == len(second)
    assert (both["group_first"] == both["group_again"]).all()
    polis = pd.read_csv(folder / "participants-votes.csv", dtype=str)
    original = pd.read_csv(shared_datasets / "polis" / "15-per-hour-seattle" / "participants-votes.csv", dtype=str)
    assert polis.set_index("participant")["group-id"].equals(
        original.set_index("participant")["group-id"].reindex(polis["participant"]))  # Polis's groups travel
    assert "Polis's own groups" in (tmp_path / "out" / "README.md").read_text()
    comments = pd.read_csv(folder / "comments.csv")
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
