"""DuckDB and PostgreSQL hold the same deliberation the same way: the same demo gives identical exports
from both, a snapshot of a PostgreSQL database analyses exactly like the live database, the command
line works on a PostgreSQL database another process is serving from, and a URL's password is never shown.

These run against a real PostgreSQL server (tests/conftest.py: $WORKBENCH_TEST_POSTGRES, or a throwaway
one started for the session).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from workbench.cli import app
from workbench.store import Store, open_store
from workbench.store.snapshots import LEFT_OUT, read_manifest

runner = CliRunner()


def run(*args) -> str:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


def demo(db) -> None:
    run("demo", "--db", db, "--participants", 40, "--seed", 0, "--invites", 0)


def assert_same_folder(a: Path, b: Path) -> None:
    """Every file of two export folders: Parquet compared as DataFrames (values and types), the rest as text."""
    files = sorted(str(p.relative_to(a)) for p in a.rglob("*") if p.is_file())
    assert files == sorted(str(p.relative_to(b)) for p in b.rglob("*") if p.is_file())
    assert len([f for f in files if f.endswith(".parquet")]) >= 10
    for name in files:
        if name.endswith(".parquet"):
            left, right = pd.read_parquet(a / name), pd.read_parquet(b / name)
            assert len(left) > 0 or name.startswith(("interview", "statements", "same-value-answers", "survey-answers")), name
            pd.testing.assert_frame_equal(left, right, obj=name)
        else:
            assert (a / name).read_text() == (b / name).read_text(), name


def test_the_same_demo_exports_identically_from_duckdb_and_postgresql(tmp_path, postgres_url):
    duck = tmp_path / "demo.duckdb"
    for db in (duck, postgres_url):
        demo(db)
    run("export", "--db", duck, "--what", "all", "--out", tmp_path / "from-duckdb")
    run("export", "--db", postgres_url, "--what", "all", "--out", tmp_path / "from-postgresql")
    assert_same_folder(tmp_path / "from-duckdb", tmp_path / "from-postgresql")
    cards = pd.read_parquet(tmp_path / "from-postgresql" / "cards.parquet")
    assert len(cards) == 40 and cards["contexts"].map(len).gt(0).all()


def test_a_snapshot_of_postgresql_analyses_exactly_like_the_live_database(tmp_path, postgres_url):
    demo(postgres_url)
    with Store(postgres_url) as store:
        store.add_user("alice", "facilitator", "$argon2id$not-a-real-hash")
    snap = tmp_path / "snap"
    run("snapshot", "--db", postgres_url, "--to", snap)
    manifest = read_manifest(snap)
    assert manifest.backend == "postgresql" and manifest.tables["wiser_answers"] == 120
    assert not set(LEFT_OUT) & set(manifest.tables), "no credentials in a snapshot"
    assert pd.read_parquet(snap / "participants.parquet")["token_hash"].isna().all()
    for source, name in ((postgres_url, "live"), (snap, "snap")):  # exports first: live analyses are recorded
        run("export", "--db", source, "--what", "all", "--out", tmp_path / f"{name}-export")
    for source, name in ((postgres_url, "live"), (snap, "snap")):
        run("graph", "--db", source, "--out", tmp_path / f"{name}-graph.json")
        run("groups", "--db", source, "--out", tmp_path / f"{name}-groups.csv")
        run("fit", "--db", source, "--question", "homework", "--max-k", 2, "--out", tmp_path / f"{name}-fit.json")
    live_graph = json.loads((tmp_path / "live-graph.json").read_text())
    assert live_graph["values"] and live_graph == json.loads((tmp_path / "snap-graph.json").read_text())
    assert (tmp_path / "live-groups.csv").read_text() == (tmp_path / "snap-groups.csv").read_text()
    live_fit, snap_fit = (json.loads((tmp_path / f"{n}-fit.json").read_text()) for n in ("live", "snap"))
    assert live_fit == snap_fit
    assert_same_folder(tmp_path / "live-export", tmp_path / "snap-export")
    # Nothing an analysis of the snapshot did went back to the database, and a snapshot cannot be written to.
    runs = open_store(postgres_url).runs()
    assert set(runs["kind"]) >= {"graph", "groups", "fit"} and len(runs) == 3, "only the live runs are recorded"
    result = runner.invoke(app, ["invite", "demo", "--db", str(snap)])
    assert result.exit_code == 2 and "is a snapshot, for analysis only" in result.output


def test_the_command_line_writes_and_reads_while_another_process_serves_postgresql(postgres_url):
    served = open_store(postgres_url)  # as `workbench serve` holds it: an open pool, sessions writing
    demo(postgres_url)
    (pid, _), = served.create_invites("demo", 1)
    served.give_consent(pid)
    out = run("invite", "demo", "-n", 2, "--db", postgres_url)
    assert out.count("?invite=") == 2
    assert len(served.participants("demo")) == 43
    assert served.steps(pid)[0]["step"] == "consent"


def test_a_url_password_is_never_shown():
    result = runner.invoke(app, ["init", "--db", "postgresql://bob:s3cret-pw@/nowhere?host=/nonexistent&port=1"])
    assert result.exit_code == 2
    assert "s3cret-pw" not in result.output and "bob:***@" in result.output
    assert "cannot connect to the database" in result.output


@pytest.mark.parametrize("url,shown", [
    ("postgresql://u:pw@db.example:5432/wb", "postgresql://u:***@db.example:5432/wb"),
    ("postgresql://u@/wb?host=/run/pg&password=pw", "postgresql://u@/wb?host=/run/pg&password=***"),
    ("data/workbench.duckdb", "data/workbench.duckdb"),
])
def test_masked_hides_passwords_in_either_place(url, shown):
    from workbench.store import masked

    assert masked(url) == shown


def test_the_stores_sql_is_rewritten_for_psycopg_outside_string_literals_only():
    from workbench.store.backends import postgres_sql

    text, names = postgres_sql("SELECT $d, ? FROM t WHERE a = $d AND s LIKE 'plan:%?$x' AND w < 5 % 2"
                               " AND CAST(x AS DOUBLE) > 0")
    assert text == ("SELECT %s, %s FROM t WHERE a = %s AND s LIKE 'plan:%%?$x' AND w < 5 %% 2"
                    " AND CAST(x AS DOUBLE PRECISION) > 0")
    assert names == ("d", "d")  # each use of a name is a parameter of its own (its type deduced there)


def test_sign_up_hiding_and_the_survey_run_on_postgresql(tmp_path, postgres_url):
    """The store methods of open sign-up, card hiding and the closing survey on PostgreSQL (their own
    tests run on DuckDB): the same answers as DuckDB gives."""
    results = {}
    for name, target in (("duckdb", str(tmp_path / "d.duckdb")), ("postgresql", postgres_url)):
        demo(target)
        with open_store(target) as store:
            store.create_invites("demo", 3, signup="open")  # what older versions left: empty sign-ups
            joined = store.sign_up("demo")
            counts = store.participant_counts("demo")
            removed = store.remove_empty_signups("demo")
            refusal = store.signup_refusal("demo")
            answers = store.answer_survey(joined.participant_id, {"position_fair": "yes"})
            again = store.answer_survey(joined.participant_id, {"position_fair": "no"})  # a repeat: the first stays
            survey = store.survey_answers("demo").query("participant_id == @joined.participant_id")
            card = int(store.cards("demo")["id"].iloc[0])
            store.hide_card(card, "test")
            shown = store.cards("demo")
            results[name] = (counts.empty_signups, counts.joined_by_link, removed, refusal, answers, again,
                             list(survey["answer"]), card in set(shown["id"]), len(shown))
    assert results["duckdb"] == results["postgresql"]
    assert results["postgresql"][:3] == (3, 4, 3) and results["postgresql"][6] == ["yes"]


SIGN_UP_IN_A_WORKER = """
import sys, threading
from workbench.errors import Conflict
from workbench.store import open_store
store = open_store(sys.argv[1])
store.participants("demo")  # connected and migrated before the start line
print("ready", flush=True)
sys.stdin.readline()  # the start line: every worker is ready
joined = []
def join():
    try:
        joined.append(store.sign_up("demo").participant_id)
    except Conflict:
        pass
threads = [threading.Thread(target=join) for _ in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(len(joined))
"""


def test_signup_limits_hold_across_app_workers_on_postgresql(postgres_url):
    """`serve --workers N` runs N processes on one PostgreSQL database: sign-ups in different processes
    at the same moment must still stop exactly at the limit (a lock inside one process cannot see the
    others)."""
    import subprocess
    import sys

    import yaml

    from workbench import config
    from workbench.deliberation import parse_deliberation

    demo(postgres_url)
    with open_store(postgres_url) as store:
        data = yaml.safe_load(config.DEMO_DELIBERATION.read_text(encoding="utf-8"))
        store.save_deliberation(parse_deliberation(yaml.safe_dump(data | {"signup_limits": {"participants": 5}}),
                                                   where="definition"))
        before = store.participant_counts("demo").joined_by_link
    workers = [subprocess.Popen([sys.executable, "-c", SIGN_UP_IN_A_WORKER, postgres_url],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for _ in range(3)]
    for worker in workers:
        assert worker.stdout.readline().strip() == "ready"
    for worker in workers:
        worker.stdin.write("go\n")
        worker.stdin.flush()
    joined = [int(w.communicate(timeout=300)[0].split()[-1]) for w in workers]
    with open_store(postgres_url) as store:
        assert store.participant_counts("demo").joined_by_link == before + 5
    assert sum(joined) == 5, joined
