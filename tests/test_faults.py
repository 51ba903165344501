"""Faults a real deliberation meets: a process killed mid-write, a crashed server, a failing embedder, races.

- A writer process is killed with SIGKILL while participant after participant confirms a card and
  answers a wiser-than question, a vote and a comparison (the store's use-case methods): the DuckDB
  file must reopen (replaying its write-ahead log), hold every submission the writer was told was
  saved, and nothing half-written (a card without its contexts or its step, a proposed context without
  its card, an answer without the round it closed).
  A participant who had consented and answered "about you" must then resume at the question step.
- The real Streamlit server is killed with SIGKILL mid-flow (browser test): restarted, it resumes the
  participant where they were.
- The embedding model fails part-way through `deduplicate`: what was embedded stays cached, and the
  next run embeds only the rest.
- Participants proposing the same new context at the same moment must all have their cards saved.
- The killed writer's write-ahead log is then damaged (cut short, overwritten, a checksum broken): the
  store and `workbench serve` refuse to open it instead of silently losing acknowledged writes, and
  `workbench recover` keeps every whole commit. `workbench backup` makes a verified copy; a clean exit
  leaves no log behind.
(The LLM endpoint failing mid-interview is covered by tests/test_llm_app.py.)
No timing assertions: waits are generous bounds, never measurements.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import duckdb
import numpy as np
import pytest
from browser import free_port, require_chromium, wait_until_healthy
from streamlit.testing.v1 import AppTest
from typer.testing import CliRunner
from walk import to_question

from workbench import analyses, config
from workbench.cli import app
from workbench.deliberation import load_deliberation
from workbench.demo import load_world, simulate
from workbench.embed import Embedder
from workbench.models import ValuesCardIn, validated
from workbench.store import Store
from workbench.store.durability import DamagedDatabase

APP = config.APP
QUESTION = "demo/homework"
#: Acknowledged writes to wait for before the kill: enough that many transactions are in the log.
ACKS_BEFORE_KILL = 60

# The writer runs in its own process so it can be killed like a crashed server: it prints each id
# only after the store returned it (the write committed), so every printed line is an acknowledgement.
WRITER = r"""
import json, sys
from workbench.models import ValuesCardIn, validated
from workbench.cli import app
from workbench.store import Store
from workbench.store.durability import DamagedDatabase

path, setup = sys.argv[1], json.loads(sys.argv[2])
store = Store(path)
values, items, contexts = setup["values"], setup["items"], setup["contexts"]
store.give_consent(setup["resumer"])
store.record_about_you(setup["resumer"], {"age_band": "30-44", "political_leaning": "Centre"})
print("resumer ready", flush=True)
i = 0
while True:  # one new participant after another, through the whole flow
    (pid, _), = store.create_invites("demo", 1)
    store.give_consent(pid)
    store.record_about_you(pid, {"age_band": "30-44"})
    interview = store.choose_question(pid, setup["question"])
    card = validated(ValuesCardIn, {
        "title": f"Listening Before Pushing {i}", "description": "Understanding the refusal first.",
        "policies": ["MOMENTS when the child asks their own questions", "SIGNS of exhaustion after school"],
        "question_id": setup["question"], "contexts": [contexts[0][1], f"Proposed by the writer {i}"]})
    print("card", store.confirm_card(pid, interview, card, {"title": card.title}), pid, flush=True)
    a, b = values[i % len(values)], values[(i + 1) % len(values)]
    store.plan_round(pid, "wiser", [{"from_id": a, "to_id": b, "context": contexts[0][1]}])
    print("wiser", store.answer_wiser(pid, 0, "upgrade", f"w{i}"), pid, flush=True)
    store.plan_round(pid, "endorse", [a])
    print("endorse", store.endorse(pid, 0, "agree"), pid, flush=True)
    store.plan_round(pid, "compare", [{"item_a": items[i % len(items)], "item_b": items[(i + 1) % len(items)]}])
    print("compare", store.compare(pid, 0, "a"), pid, flush=True)
    i += 1
"""

def demo_store(path: Path) -> Store:
    store = Store(path)
    store.import_bundle(simulate(load_deliberation(config.DEMO_DELIBERATION),
                                 load_world(config.DATA / "demo_values.yaml"), 12, seed=1))
    return store


@pytest.fixture
def killed_writer(tmp_path):
    """Run the writer until it has acknowledged ACKS_BEFORE_KILL writes, then SIGKILL it.

    Returns (db path, the first participant id the writer makes: every writer participant's id is at least
    that, the resumer's invite token, acknowledged lines, writer rc).
    """
    path = tmp_path / "killed.duckdb"
    store = demo_store(path)
    try:
        (resumer, token), = store.create_invites("demo", 1)
        table = analyses.value_table(store, "demo", question_id=QUESTION)
        contexts = store.contexts("demo", question_id=QUESTION)
        setup = {"resumer": resumer, "question": QUESTION,
                 "values": [int(v) for v in table["id"]], "items": [str(i) for i in table["public_id"]],
                 "contexts": [[int(c), n] for c, n in zip(contexts["id"], contexts["name"], strict=True)]}
    finally:
        store.close()  # DuckDB allows one writing process per file: the writer's, now
    env = {**os.environ, "PYTHONPATH": str(config.ROOT)}
    child = subprocess.Popen([sys.executable, "-c", WRITER, str(path), json.dumps(setup)], cwd=config.ROOT,
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while len([line for line in lines if line.split()[0] in ("card", "wiser", "endorse", "compare")]) \
                < ACKS_BEFORE_KILL:
            line = child.stdout.readline()
            if not line:
                pytest.fail(f"the writer stopped before it was killed: {child.stderr.read()[-2000:]}")
            lines.append(line)
            assert time.monotonic() < deadline, "the writer did not write 60 rows within a minute"
        os.kill(child.pid, signal.SIGKILL)
        rest, _ = child.communicate(timeout=30)  # what it printed before it died was acknowledged too
        lines += rest.splitlines(keepends=True)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    acked = [line.split() for line in lines if line.strip() and line.split()[0] != "resumer"]
    return path, resumer + 1, token, acked, child.returncode


def test_a_writer_killed_mid_run_loses_no_acknowledged_write_and_leaves_nothing_half_written(killed_writer):
    path, _, _, acked, returncode = killed_writer
    assert returncode == -signal.SIGKILL
    wal = Path(f"{path}.wal")
    assert wal.exists() and wal.stat().st_size > 0, "a killed writer leaves its log for the next open to replay"

    store = Store(path)  # opening replays the log; it must not raise
    try:
        assert store.schema_version() >= 1
        writers = {int(a[2]) for a in acked}
        cards = store.cards("demo", include_hidden=True)
        mine = cards[cards["title"].str.startswith("Listening Before Pushing ")]
        wiser = store.wiser_answers("demo")
        votes = store.endorsements("demo", latest=False)
        made = store.comparisons("demo", include_ties=True)
        found = {"card": list(mine["id"]), "wiser": list(wiser[wiser["participant_id"].isin(writers)]["id"]),
                 "endorse": list(votes[votes["participant_id"].isin(writers)]["id"]),
                 "compare": list(made[made["participant_id"].isin(writers)]["id"])}
        for kind, ids in found.items():
            want = [int(a[1]) for a in acked if a[0] == kind]
            assert len(ids) == len(set(ids))
            assert set(want) <= set(map(int, ids)), f"{kind}: acknowledged writes lost: {set(want) - set(ids)}"
        # One submission was in flight when the process died: it may have committed before it was printed.
        unacked = sum(len(set(map(int, ids)) - {int(a[1]) for a in acked if a[0] == kind})
                      for kind, ids in found.items())
        assert unacked <= 1

        # Nothing half-written: every card has both its contexts and its author's interview step (one
        # transaction), every proposed context has its card, every answer closed its one-item round.
        assert all(len(c) == 2 for c in mine["contexts"]), mine[["id", "contexts"]]
        for card_id, author in zip(mine["id"], mine["author_id"], strict=True):
            steps = [s for s in store.steps(int(author)) if s["step"] == "interview"]
            assert [s["payload"]["card_id"] for s in steps] == [card_id]
        proposed = store.proposed_contexts("demo")
        ours = proposed[proposed["name"].str.startswith("Proposed by the writer")]
        assert len(ours) == len(mine) and (ours["cards"] == 1).all()
        for pid in set(wiser["participant_id"]) & writers:
            assert "wiser" in {s["step"] for s in store.steps(int(pid))}

        # The file is writable again after the crash.
        (after, _), = store.create_invites("demo", 1)
        assert store.participant(after)["deliberation_id"] == "demo"
    finally:
        store.close()


def test_after_the_crash_a_participant_resumes_at_the_step_they_reached(killed_writer, monkeypatch):
    path, _, token, _, _ = killed_writer
    monkeypatch.setenv("WORKBENCH_DB", str(path))
    monkeypatch.delenv("WORKBENCH_LLM_BASE_URL", raising=False)
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.query_params["invite"] = token
    at.run()
    assert not at.exception, at.exception
    progress = " ".join(str(p.proto.text) for p in at.get("progress"))
    assert "Step 3 of 10: Choose a question" in progress
    assert [r.label for r in at.radio] == ["Question"]


# -- a damaged write-ahead log, recovery, backups ----------------------------------------------------

FLUSH_ENTRY_END = bytes([0x64, 0x00, 0x64, 0xFF, 0xFF])  # DuckDB's flush entry ends each commit in the log


def _cut_mid_entry(data: bytes) -> bytes:
    """Half the log, cut inside an entry (not just after a commit, which no reader could tell from a
    log that was simply shorter)."""
    cut = len(data) // 2
    while data[cut - len(FLUSH_ENTRY_END):cut] == FLUSH_ENTRY_END:
        cut -= 1
    return data[:cut]


def _broken_checksum(data: bytes) -> bytes:
    """The last byte of the entry before the final flush entry (16-byte frame + 5-byte payload) flipped."""
    at = len(data) - 21 - 1
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1:]


#: (how the log is damaged, whether DuckDB on its own opens the file without some committed writes)
LOG_DAMAGE = {
    "the last byte lost": (lambda data: data[:-1], True),
    "cut in the middle of an entry": (_cut_mid_entry, True),
    "garbage over its header": (lambda data: b"\xa5" * 32 + data[32:], True),
    "garbage appended": (lambda data: data + b"\xa5" * 100, False),
}
#: Where the writer's rows are (table, participant column): what a lost commit would lack.
WRITER_ROWS = (("values_cards", "author_id"), ("wiser_answers", "participant_id"),
               ("endorsements", "participant_id"), ("comparisons", "participant_id"))


def _damage(path: Path, how) -> bytes:
    wal = Path(f"{path}.wal")
    damaged = how(wal.read_bytes())
    wal.write_bytes(damaged)
    return damaged


def _rows_duckdb_alone_opens(path: Path, wal: bytes, pid: int, folder: Path) -> int:
    """The writer's rows (its participants' ids are `pid` and up) DuckDB replays on its own from a copy of
    the file with this log."""
    folder.mkdir()
    (folder / "copy.duckdb").write_bytes(path.read_bytes())
    (folder / "copy.duckdb.wal").write_bytes(wal)
    con = duckdb.connect(str(folder / "copy.duckdb"), read_only=True)
    try:
        return sum(con.execute(f"SELECT count(*) FROM {table} WHERE {column} >= ?", [pid]).fetchall()[0][0]
                   for table, column in WRITER_ROWS)
    finally:
        con.close()


def _acked(acked, kind: str) -> set[int]:
    return {int(a[1]) for a in acked if a[0] == kind}


@pytest.mark.parametrize("damage", list(LOG_DAMAGE))
def test_a_log_duckdb_would_silently_cut_short_stops_the_store_from_opening(killed_writer, tmp_path, damage):
    path, pid, *_ = killed_writer
    how, duckdb_loses_commits = LOG_DAMAGE[damage]
    whole = _rows_duckdb_alone_opens(path, Path(f"{path}.wal").read_bytes(), pid, tmp_path / "whole")
    damaged, file = _damage(path, how), path.read_bytes()
    # DuckDB on its own opens the damaged copy without a word, and without the commits after the damage.
    assert (_rows_duckdb_alone_opens(path, damaged, pid, tmp_path / "alone") < whole) == duckdb_loses_commits

    with pytest.raises(DamagedDatabase) as refused:
        Store(path)
    message = str(refused.value)
    assert f"{path}.wal is damaged" in message and "Nothing was changed" in message
    assert f"workbench recover --db {path}" in message and "workbench backup" in message
    assert Path(f"{path}.wal").read_bytes() == damaged, "a refused open leaves the log as it was"
    assert path.read_bytes() == file, "...and the file"


def test_a_log_entry_failing_its_checksum_stops_the_store_with_what_to_do(killed_writer):
    path, *_ = killed_writer
    damaged, file = _damage(path, _broken_checksum), path.read_bytes()
    with pytest.raises(DamagedDatabase, match=r"refuses its write-ahead log .*checksum.*workbench recover --db"):
        Store(path)
    assert Path(f"{path}.wal").read_bytes() == damaged and path.read_bytes() == file


@pytest.mark.parametrize("how", [_broken_checksum, _cut_mid_entry])
@pytest.mark.timeout(240)
def test_serve_refuses_to_start_on_a_database_that_does_not_open_cleanly(killed_writer, how):
    path, *_ = killed_writer
    _damage(path, how)
    env = {k: v for k, v in os.environ.items() if k != "WORKBENCH_DB"}
    serve = subprocess.Popen([sys.executable, "-m", "workbench.cli", "serve", "--db", str(path), "--port",
                              str(free_port())], cwd=config.ROOT, env=env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = serve.communicate(timeout=120)  # a bound on a refusal, never a measurement
    except subprocess.TimeoutExpired:
        os.killpg(serve.pid, signal.SIGKILL)
        serve.communicate()
        pytest.fail("workbench serve started on a database whose log is damaged")
    assert serve.returncode == 2, (out, err)
    assert "write-ahead log" in err and f"workbench recover --db {path}" in err, err


@pytest.mark.parametrize("how", [lambda data: data[:-1], _broken_checksum])
def test_recover_keeps_every_whole_commit_and_a_copy_of_the_damaged_log(killed_writer, how):
    path, pid, _, acked, _ = killed_writer
    damaged = _damage(path, how)
    result = CliRunner().invoke(app, ["recover", "--db", str(path)])
    assert result.exit_code == 0, result.output
    assert "every whole commit before the damage" in result.output and "what came after is lost" in result.output
    copies = list(path.parent.glob(f"{path.name}.wal.damaged-*"))
    assert len(copies) == 1 and copies[0].read_bytes() == damaged
    assert not Path(f"{path}.wal").exists(), "what was kept is folded into the file"
    store = Store(path)
    try:
        for kind, ids in (("card", store.cards("demo", include_hidden=True).query("author_id >= @pid")["id"]),
                          ("compare", store.comparisons("demo", include_ties=True)
                           .query("participant_id >= @pid")["id"])):
            missing = _acked(acked, kind) - set(map(int, ids))
            assert len(missing) <= 1, f"{kind}: only the damaged last commit may be lost, not {missing}"
    finally:
        store.close()
    again = CliRunner().invoke(app, ["recover", "--db", str(path)])
    assert again.exit_code == 0 and "nothing to recover" in again.output


def test_backup_is_a_verified_copy_holding_every_acknowledged_write(killed_writer, tmp_path):
    path, pid, _, acked, _ = killed_writer
    (tmp_path / "saved").mkdir()
    result = CliRunner().invoke(app, ["backup", "--db", str(path), "--to", str(tmp_path / "saved")])
    assert result.exit_code == 0, result.output
    copy, = (tmp_path / "saved").iterdir()  # a folder gets killed-YYYYmmddTHHMMSSZ.duckdb
    assert re.fullmatch(r"killed-\d{8}T\d{6}Z\.duckdb", copy.name)
    assert "verified by reopening it" in result.output and str(copy) in result.output
    assert not Path(f"{copy}.wal").exists(), "the copy stands alone: no log to replay"
    con = duckdb.connect(str(copy), read_only=True)
    try:
        cards = {r[0] for r in con.execute("SELECT id FROM values_cards WHERE author_id >= ?", [pid]).fetchall()}
        assert _acked(acked, "card") <= cards
    finally:
        con.close()
    again = CliRunner().invoke(app, ["backup", "--db", str(path), "--to", str(copy)])
    assert again.exit_code == 2 and "already exists" in again.output


def test_backup_refuses_while_another_process_has_the_database(tmp_path):
    path = tmp_path / "served.duckdb"
    demo_store(path).close()
    holder = subprocess.Popen([sys.executable, "-c", "import sys; from workbench.store import Store;"
                               " s = Store(sys.argv[1]); print('open', flush=True); sys.stdin.read()", str(path)],
                              cwd=config.ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        result = CliRunner().invoke(app, ["backup", "--db", str(path), "--to", str(tmp_path / "b.duckdb")])
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    assert result.exit_code == 2 and "lock" in result.output, result.output
    assert list(tmp_path.iterdir()) == [path], "nothing half-written"


def test_a_clean_exit_folds_the_log_into_the_file(tmp_path):
    path = tmp_path / "clean.duckdb"
    demo_store(path).close()
    script = ("import sys; from workbench.store import open_store;"
              " print(open_store(sys.argv[1]).create_invites('demo', 1)[0][0])")
    made = subprocess.run([sys.executable, "-c", script, str(path)], cwd=config.ROOT, capture_output=True,
                          text=True, check=True)
    assert not Path(f"{path}.wal").exists()
    alone = tmp_path / "alone.duckdb"
    alone.write_bytes(path.read_bytes())  # the file without any log
    store = Store(alone)
    try:
        assert store.participant(int(made.stdout))["deliberation_id"] == "demo"
    finally:
        store.close()


# -- the real server killed mid-flow ------------------------------------------------------------


@contextmanager
def server(port: int, db: Path, *, hook: Path | None = None):
    """`streamlit run app.py` on `port`; yields the process so a test can SIGKILL it. `hook`: a folder
    whose sitecustomize.py the server runs first."""
    command = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.port", str(port),
               "--server.headless", "true", "--server.address", "127.0.0.1", "--browser.gatherUsageStats",
               "false", "--server.fileWatcherType", "none"]
    env = {k: v for k, v in os.environ.items() if k != "WORKBENCH_LLM_BASE_URL"} | {"WORKBENCH_DB": str(db)}
    if hook is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(hook), env.get("PYTHONPATH")) if p)
    process = subprocess.Popen(command, cwd=config.ROOT, env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}", process)
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def invited_demo(path: Path) -> tuple[int, str]:
    """A demo database at `path` with one invited participant, closed so a server can open it."""
    store = demo_store(path)
    try:
        (pid, token), = store.create_invites("demo", 1)
    finally:
        store.close()
    return pid, token


def consent(page) -> None:
    """Step 1 of the participant flow in the browser: agree and continue."""
    page.get_by_text("I have read this and agree to take part").click()
    page.get_by_role("button", name="Continue", exact=True).click()
    page.get_by_text("Step 2 of 10: About you").wait_for()


@pytest.mark.browser
@pytest.mark.timeout(240)
def test_a_server_killed_mid_flow_resumes_the_participant_after_a_restart(tmp_path):
    require_chromium()
    from browser import chromium

    path = tmp_path / "server.duckdb"
    pid, token = invited_demo(path)
    port = free_port()
    wait_ms = 30_000
    with chromium() as browser:
        with server(port, path) as process:
            page = browser.new_page()
            page.set_default_timeout(wait_ms)
            page.goto(f"http://127.0.0.1:{port}/?invite={token}")
            page.get_by_text("Step 1 of 10: Welcome").wait_for()
            consent(page)
            for label, option in (("Your age", "45-59"), ("Your political leaning", "Centre")):
                page.get_by_role("combobox", name=label).click()
                page.get_by_role("option", name=option, exact=True).click()
            page.get_by_role("button", name="Continue", exact=True).click()
            page.get_by_text("Step 3 of 10: Choose a question").wait_for()
            page.get_by_text("A child who refuses homework").click()  # chosen, not yet submitted
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
            page.close()

        store = Store(path)  # the crashed server's log is replayed here
        try:
            steps = [s["step"] for s in store.steps(pid)]
            attrs = store.attributes("demo").set_index("participant_id").loc[pid]
        finally:
            store.close()
        assert steps == ["consent", "demographics"]
        assert (attrs["age_band"], attrs["political_leaning"]) == ("45-59", "Centre")

        with server(port, path):
            page = browser.new_page()
            page.set_default_timeout(wait_ms)
            page.goto(f"http://127.0.0.1:{port}/?invite={token}")
            page.get_by_text("Step 3 of 10: Choose a question").wait_for()
            assert page.get_by_text("Step 1 of 10").count() == 0
            page.close()


@pytest.mark.browser
@pytest.mark.timeout(240)
def test_a_server_stopped_with_sigterm_folds_the_log_into_the_file(tmp_path):
    """A clean stop checkpoints: the database is one file again, holding the last participant's step."""
    require_chromium()
    from browser import chromium

    path, port = tmp_path / "stopped.duckdb", free_port()
    pid, token = invited_demo(path)
    assert not Path(f"{path}.wal").exists()
    with chromium() as browser, server(port, path) as process:
        page = browser.new_page()
        page.set_default_timeout(30_000)
        page.goto(f"http://127.0.0.1:{port}/?invite={token}")
        consent(page)
        assert Path(f"{path}.wal").stat().st_size > 0, "the consent is in the log, not yet in the file"
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    assert not Path(f"{path}.wal").exists(), "a clean stop leaves no log to replay"
    alone = tmp_path / "alone.duckdb"
    alone.write_bytes(path.read_bytes())
    store = Store(alone)
    try:
        assert [s["step"] for s in store.steps(pid)] == ["consent"]
    finally:
        store.close()
# The server dies the instant it writes the step "Confirm my card" completes (whatever else it has written
# before): a deterministic stand-in for a SIGKILL ~140 ms after the click, which is where issue 17 found a
# card stored without its step.
KILL_AT_THE_CARD_STEP = """
import os, signal
from contextlib import contextmanager

from workbench.store import core

_cursor = core.StoreCore._cursor


class _DiesAtTheStep:
    def __init__(self, cursor):
        self._cursor = cursor

    def execute(self, sql, *args, **kwargs):
        params = args[0] if args else kwargs.get("parameters") or []
        if "INSERT INTO participant_steps" in sql and "interview" in [p for p in params if isinstance(p, str)]:
            os.kill(os.getpid(), signal.SIGKILL)
        return self._cursor.execute(sql, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._cursor, name)


@contextmanager
def _dying_cursor(self):
    with _cursor(self) as cursor:
        yield _DiesAtTheStep(cursor)


core.StoreCore._cursor = _dying_cursor
"""


@pytest.mark.browser
@pytest.mark.timeout(900)  # a bound: the walk now waits for suggestions and unticks them, on a shared machine
def test_a_server_killed_as_a_card_is_confirmed_leaves_one_card_after_confirming_again(tmp_path):
    """Issue 17 item 3: SIGKILL right after "Confirm my card" stored the card but not the step; after the
    restart the participant confirmed again and had two cards. The card and its step are one transaction."""
    require_chromium()
    from browser import WAIT_MS, accept_warnings, chromium, expect_step, walk_to_review

    path = tmp_path / "confirm.duckdb"
    pid, token = invited_demo(path)
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(KILL_AT_THE_CARD_STEP)
    port = free_port()
    with chromium() as browser:
        with server(port, path, hook=hook) as process:
            page = browser.new_page()
            page.set_default_timeout(WAIT_MS)
            walk_to_review(page, f"http://127.0.0.1:{port}", token)
            page.get_by_role("button", name="Confirm my card").click()
            assert process.wait(timeout=60) == -signal.SIGKILL
            page.close()
        with server(port, path):  # restarted as it was, without the hook
            page = browser.new_page()
            page.set_default_timeout(WAIT_MS)
            page.goto(f"http://127.0.0.1:{port}/?invite={token}")
            expect_step(page, "Step 4 of 10: Your values card")  # the card was not confirmed: confirm again
            accept_warnings(page)
            page.get_by_role("button", name="Confirm my card").click()
            expect_step(page, "Step 5 of 10: Who became wiser?")
            page.close()
    store = Store(path)
    try:
        cards = store.cards("demo", include_hidden=True)
        mine = cards[cards["author_id"] == pid]
        steps = [s["step"] for s in store.steps(pid)]
    finally:
        store.close()
    assert len(mine) == 1, mine[["id", "title", "created_at"]]
    assert steps.count("interview") == 1


# -- the embedding model failing part-way ---------------------------------------------------------


class FlakyEncoder:
    """A stand-in embedding model: hashed bag of words (similar cards land near each other),
    raising on the call numbered `fail_on` (1-based) as a model server that went away would."""

    def __init__(self, fail_on: int | None = None) -> None:
        self.fail_on = fail_on
        self.calls: list[list[str]] = []

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        if len(self.calls) == self.fail_on:
            raise ConnectionError("embedding server went away")
        out = np.zeros((len(texts), 64), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                out[row, sum(map(ord, word)) % 64] += 1.0
        return out


def flaky_embedder(encoder: FlakyEncoder) -> Embedder:
    # chunk_size 4 on the 12 demo cards: three calls to the model, the second one fails.
    return Embedder(encode=encoder, model_name="fake-bag-of-words", batch_size=1, chunk_size=4)


@pytest.fixture
def dedup_store(tmp_path):
    store = demo_store(tmp_path / "dedup.duckdb")
    yield store
    store.close()


def test_an_embedder_failing_mid_run_keeps_what_it_embedded_and_the_rerun_embeds_only_the_rest(dedup_store):
    store = dedup_store
    n_cards = len(store.cards("demo"))
    links_before = store.card_links("demo")
    failing = FlakyEncoder(fail_on=2)
    with pytest.raises(ConnectionError, match="embedding server went away"):
        analyses.deduplicate(store, "demo", embedder=flaky_embedder(failing))
    assert len(failing.calls) == 2
    assert store.embedding_count("fake-bag-of-words") == 4, "the first chunk is cached"
    assert store.card_links("demo").equals(links_before), "a failed run changes no card's value"

    working = FlakyEncoder()
    run = analyses.deduplicate(store, "demo", embedder=flaky_embedder(working))
    result, run_id, embedded = run.result, run.run_id, run.embedded
    assert embedded == n_cards - 4
    # Each request carries the chunk's card texts and then their policy lines ("\n" only in card texts).
    assert sum(len([t for t in c if "\n" in t]) for c in working.calls) == n_cards - 4
    cards_sent = {t for c in working.calls for t in c if "\n" in t}
    assert not set(failing.calls[0]) & cards_sent, "cached cards are not re-embedded"
    assert store.embedding_count("fake-bag-of-words") == n_cards
    assert store.run(run_id)["status"] == "done"
    assert sum(len(v.member_ids) for v in result.values) == n_cards


def test_an_embedder_failing_mid_run_is_recorded_as_a_failed_run(dedup_store):
    with pytest.raises(ConnectionError):
        analyses.deduplicate(dedup_store, "demo", embedder=flaky_embedder(FlakyEncoder(fail_on=2)))
    runs = dedup_store.runs(deliberation_id="demo", kind="dedup")
    assert list(runs["status"]) == ["failed"]
    assert "embedding server went away" in runs.iloc[0]["error"]


# -- a race between participants -------------------------------------------------------------------


def test_participants_proposing_the_same_new_context_at_once_all_get_their_cards_saved(tmp_path):
    """Each card's new context is inserted in the card's transaction; the unique (deliberation, name)
    key makes all but the first committer clash. The store retries them, so none is lost."""
    store = demo_store(tmp_path / "race.duckdb")
    try:
        people = [pid for pid, _ in store.create_invites("demo", 16)]
        start = threading.Barrier(len(people))
        saved, failed = [], []
        card = validated(ValuesCardIn, {
            "title": "Listening Before Pushing", "description": "Understanding the refusal first.",
            "policies": ["MOMENTS when the child asks their own questions", "SIGNS of exhaustion after school"],
            "question_id": QUESTION, "contexts": ["When a parent feels at the end of their rope"]})

        interviews = {pid: to_question(store, pid) for pid in people}

        def submit(pid: int) -> None:
            start.wait()
            try:
                saved.append(store.confirm_card(pid, interviews[pid], card, {}))
            except Exception as exc:  # noqa: BLE001 - the assertion below shows what failed
                failed.append(repr(exc))

        threads = [threading.Thread(target=submit, args=(pid,)) for pid in people]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert failed == []
        assert len(saved) == len(people)
        proposed = store.proposed_contexts("demo")
        assert list(proposed["name"]) == ["When a parent feels at the end of their rope"]
        assert list(proposed["cards"]) == [len(people)]
    finally:
        store.close()
