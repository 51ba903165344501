"""`workbench serve` as users run it: quiet, stoppable, alone on its database, and the CLI beside it.

Real servers (`workbench serve`, the command `make run` runs) on temporary DuckDB files, real
signals, real HTTP; a second process really holding the file. Every wait is on a state (the process
has exited, the page shows a text), never on a clock.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import pandas as pd
import pytest
from browser import (
    WORKBENCH,
    chromium,
    free_port,
    port_is_free,
    processes_under,
    require_chromium,
    workbench_server,
)
from streamlit.testing.v1 import AppTest

from workbench import config, serving, web
from workbench.deliberation import load_deliberation
from workbench.demo import load_world, simulate
from workbench.store import DatabaseLocked, Store

pytestmark = pytest.mark.timeout(300)
ENV = {"WORKBENCH_LLM_BASE_URL": None}


@pytest.fixture
def demo_file(tmp_path) -> Path:
    """A demo database with 30 simulated participants, closed (a server may open it)."""
    db = tmp_path / "served.duckdb"
    with Store(db) as s:
        s.import_bundle(simulate(load_deliberation(config.DEMO_DELIBERATION),
                                 load_world(config.DATA / "demo_values.yaml"), 30, seed=3))
    return db


def workbench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(WORKBENCH), *args], capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          env={k: v for k, v in os.environ.items() if k != "WORKBENCH_LLM_BASE_URL"})


# -- quiet serving --------------------------------------------------------------------------------


def test_serve_passes_every_option_itself_and_the_checkout_config_says_the_same():
    command = serving.streamlit_command(host="127.0.0.1", port=8501)
    flags = dict(zip(command[5::2], command[6::2], strict=True))
    assert command[1:5] == ["-m", "streamlit", "run", str(config.SERVER)]
    assert flags["--server.fileWatcherType"] == "none" and flags["--server.runOnSave"] == "false"
    assert {f"--{k}": v for k, v in serving.STREAMLIT_OPTIONS.items()}.items() <= flags.items()
    # .streamlit/config.toml (read by a bare `streamlit run` in the checkout) says the same, no more.
    checkout = tomllib.loads((config.ROOT / ".streamlit" / "config.toml").read_text())
    flat = {f"{section}.{key}": str(value).lower() if isinstance(value, bool) else str(value)
            for section, values in checkout.items() for key, value in values.items()}
    assert flat == serving.STREAMLIT_OPTIONS


@pytest.mark.browser
def test_the_server_stops_streamlits_own_file_polling(tmp_path, monkeypatch):
    # Streamlit polls config.toml and secrets files five times a second whatever fileWatcherType says.
    from streamlit.watcher import path_watcher, polling_path_watcher

    from workbench.webapp import server

    monkeypatch.setattr(path_watcher, "watch_file", path_watcher.watch_file)  # put back after the test
    monkeypatch.setattr(path_watcher, "watch_dir", path_watcher.watch_dir)
    secrets = tmp_path / "secrets.toml"
    secrets.write_text("a = 1\n")
    polling = polling_path_watcher.PollingPathWatcher(str(secrets), lambda _path: None)
    assert polling._active

    assert server.stop_polling_watchers() >= 1
    assert not polling._active  # its next poll does not look again
    assert path_watcher.watch_file(str(secrets), lambda _path: None, watcher_type="poll") is False
    assert path_watcher.watch_dir(str(tmp_path), lambda _path: None, watcher_type="poll") is False


def test_sigterm_stops_the_server_and_frees_its_port_and_database(demo_file):
    require_chromium()
    port = free_port()
    with workbench_server(demo_file, ENV, port) as (url, process), chromium() as browser:
        # `workbench serve` became the server: the process we started is Streamlit itself.
        assert "streamlit run" in Path(f"/proc/{process.pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        assert serving.read_record(demo_file).pid == process.pid
        page = browser.new_page()  # an open session (a WebSocket) must not keep the server alive
        page.goto(f"{url}/?join=demo")  # agreeing by the open sign-up link writes a participant: the log has it
        page.get_by_text("Step 1 of 10").wait_for(timeout=120_000)
        page.get_by_text("I have read this and agree to take part").click()
        page.get_by_role("button", name="Continue").click()
        page.get_by_text("Step 2 of 10").wait_for(timeout=120_000)
        assert Path(f"{demo_file}.wal").stat().st_size > 0
        family = processes_under(process.pid)
        process.send_signal(signal.SIGTERM)
        # uvicorn shuts down, then re-raises the signal it caught: the exit status says "SIGTERM".
        assert process.wait() in (0, -signal.SIGTERM)
    assert not processes_under(process.pid) and not any(Path(f"/proc/{p}").exists() for p in family)
    assert port_is_free(port)
    assert serving.read_record(demo_file) is None  # removed on the way out: the shutdown was orderly
    assert not Path(f"{demo_file}.wal").exists()  # closed, so DuckDB folded its log into the file
    with Store(demo_file) as s:  # the lock is gone, and the new participant is in the file
        assert len(s.participants("demo")) == 31


def test_a_second_server_on_the_same_database_refuses_at_start_naming_the_first(demo_file):
    with workbench_server(demo_file, ENV) as (url, process):
        second = workbench("serve", "--db", str(demo_file), "--port", str(free_port()))
        assert second.returncode == 2
        message = " ".join(second.stderr.split())
        assert f"already served by the workbench app at {url} (process {process.pid}" in message
        assert f"kill {process.pid}" in message
        assert "IO Error" not in message and "Conflicting lock" not in message
        # ... and the first server is untouched.
        assert serving.read_record(demo_file).pid == process.pid


def test_serve_refuses_a_port_in_use_before_starting(demo_file):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = workbench("serve", "--db", str(demo_file), "--port", str(taken.getsockname()[1]))
    assert result.returncode == 2 and "is already in use" in result.stderr


# -- the command line beside a running app --------------------------------------------------------


def test_read_commands_work_beside_the_app_and_writes_say_what_to_do(demo_file, tmp_path):
    out = tmp_path / "out"
    with workbench_server(demo_file, ENV) as (url, process):
        exported = workbench("export", "--what", "cards", "--format", "csv", "--out", str(out / "cards"),
                             "--db", str(demo_file))
        assert exported.returncode == 0, exported.stderr
        assert "reading a snapshot it took just now" in exported.stderr
        graph = workbench("graph", "--out", str(out / "graph.json"), "--db", str(demo_file))
        assert graph.returncode == 0, graph.stderr
        fit = workbench("fit", "--out", str(out / "fit.json"), "--latent", "1", "--db", str(demo_file))
        assert fit.returncode == 0, fit.stderr
        groups = workbench("groups", "--out", str(out / "groups.csv"), "--db", str(demo_file))
        assert groups.returncode == 0, groups.stderr
        backup = workbench("backup", "--to", str(out / "backup.duckdb"), "--db", str(demo_file))
        assert backup.returncode == 0 and "verified by reopening it" in backup.stdout, backup.stderr
        for command in (["invite", "demo", "--db", str(demo_file)],
                        ["user", "ensure-demo", "--db", str(demo_file)],
                        ["dedup", "--db", str(demo_file)]):
            refused = workbench(*command)
            message = " ".join(refused.stderr.split())
            assert refused.returncode == 2, (command, refused.stderr)
            assert f"served by the workbench app at {url} (process {process.pid}" in message
            assert "cannot write to it" in message and f"kill {process.pid}" in message
            assert "IO Error" not in message and "Traceback" not in message
        # No snapshot is left behind next to the database.
        assert not list(demo_file.parent.glob(".workbench-snapshot-*"))
    # The snapshot read the same data the file holds; nothing was recorded while the app served it.
    with Store(demo_file) as s:
        assert s.runs().empty
    again = workbench("export", "--what", "cards", "--format", "csv", "--out", str(out / "after"),
                      "--db", str(demo_file))
    assert again.returncode == 0 and "snapshot" not in again.stderr
    pd.testing.assert_frame_equal(pd.read_csv(out / "cards" / "cards.csv", dtype=str),
                                  pd.read_csv(out / "after" / "cards.csv", dtype=str))
    with Store(out / "backup.duckdb") as copy:
        assert len(copy.participants("demo")) == 30 and copy.runs().empty


@pytest.mark.timeout(600)
def test_on_postgresql_every_command_works_while_the_app_serves_it(postgres_url, tmp_path):
    """No lock on PostgreSQL: the CLI writes and reads the database a running app serves, no snapshot needed."""
    with Store(postgres_url) as s:
        s.import_bundle(simulate(load_deliberation(config.DEMO_DELIBERATION),
                                 load_world(config.DATA / "demo_values.yaml"), 30, seed=3))
    out = tmp_path / "out"
    with workbench_server(postgres_url, ENV):
        for command in (["invite", "demo", "-n", "2"], ["user", "ensure-demo"],
                        ["graph", "--out", str(out / "graph.json")], ["snapshot", "--to", str(out / "snap")]):
            done = workbench(*command, "--db", postgres_url)
            assert done.returncode == 0, (command, done.stderr)
            assert "snapshot it took" not in done.stderr
    with Store(postgres_url) as s:
        assert len(s.participants("demo")) == 32 and "graph" in set(s.runs()["kind"])
        assert s.user("facilitator") is not None


HOLDER = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
print("holding", flush=True)
sys.stdin.readline()
"""


def test_a_database_held_by_another_program_fails_at_once_naming_it(demo_file, tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(demo_file)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        for command in (["export", "--what", "cards", "--out", str(tmp_path / "c.parquet")],
                        ["invite", "demo"], ["serve", "--port", str(free_port())]):
            result = workbench(*command, "--db", str(demo_file))
            message = " ".join(result.stderr.split())
            assert result.returncode == 2, (command, result.stderr)
            assert f"is open in process {holder.pid}" in message, message
            assert "Close that program" in message and "IO Error" not in message
    finally:
        holder.communicate("\n")


def test_a_visitor_gets_a_short_message_not_a_lock_traceback(demo_file, monkeypatch):
    monkeypatch.setenv("WORKBENCH_DB", str(demo_file))
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(demo_file)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(DatabaseLocked):
            Store(demo_file)
        at = AppTest.from_file(str(config.APP), default_timeout=60)
        at.query_params["join"] = "demo"
        at.run()
        assert not at.exception
        assert [e.value for e in at.error] == [web.DATABASE_BUSY]
    finally:
        holder.communicate("\n")
