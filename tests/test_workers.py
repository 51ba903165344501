"""`workbench serve --workers N`: nginx in front of N app workers on one PostgreSQL database.

Real processes throughout: Debian's nginx run as the current user from a generated config, two real
Streamlit workers, a real PostgreSQL server (the session's throwaway one, tests/pgserver.py), and
Debian's Chromium for a participant who loses their worker mid-walk and resumes on the other. Every
wait is for a state (a health check answering, a process gone, a step on screen), bounded generously.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from browser import (
    VIEWPORT,
    WAIT_MS,
    WORKBENCH,
    chromium,
    continue_button,
    expect_step,
    free_port,
    healthy,
    port_is_free,
    processes_under,
    require_chromium,
)
from walk import demo_with_invite

from workbench import config, workers
from workbench.store import Store

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
DEPLOY = config.ROOT / "deploy" / "nginx.conf"
#: deploy/nginx.conf is the template filled in with these (two workers on ports 8601 and 8602).
EXAMPLE = {"listen": "0.0.0.0:8501", "worker_ports": (8601, 8602), "run_dir": "/run/workbench"}


def require_nginx() -> None:
    """Skip without Debian's nginx; fail instead in CI (.ci/run installs it and sets WORKBENCH_REQUIRE_NGINX)."""
    if not workers.NGINX.is_file():
        message = f"{workers.NGINX} not found (apt-get install nginx)"
        if os.environ.get("CI") or os.environ.get("WORKBENCH_REQUIRE_NGINX"):
            pytest.fail(message + "; $CI or $WORKBENCH_REQUIRE_NGINX requires it")
        pytest.skip(message)


def test_several_workers_refuse_a_duckdb_file_saying_why_and_what_to_do(tmp_path):
    done = subprocess.run([str(WORKBENCH), "serve", "--db", str(tmp_path / "x.duckdb"), "--workers", "2"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    message = " ".join(done.stderr.split())
    assert "--workers 2" in message and "PostgreSQL" in message and "one process" in message
    assert "postgresql://" in message and "leave out --workers" in message
    assert not (tmp_path / "x.duckdb").exists(), "nothing is created on refusal"


def test_the_shipped_nginx_config_is_the_template_filled_in():
    assert DEPLOY.read_text() == workers.nginx_config(**EXAMPLE), (
        "deploy/nginx.conf is out of date: regenerate it with workers.nginx_config(**EXAMPLE)")


def test_nginx_accepts_the_generated_config(tmp_path):
    require_nginx()
    (tmp_path / "nginx.conf").write_text(workers.nginx_config(listen=f"127.0.0.1:{free_port()}",
                                                              worker_ports=(free_port(), free_port()),
                                                              run_dir=tmp_path, user=None))
    checked = subprocess.run([str(workers.NGINX), "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"),
                              "-e", str(tmp_path / "error.log")], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stderr


def _fetch(url: str, cookie: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, dict(response.headers)


def _until(condition, what: str, bound: float = 120.0):
    """Wait for `condition()` to be truthy (a state, re-checked), failing after `bound` seconds."""
    deadline = time.monotonic() + bound
    while not (value := condition()):
        assert time.monotonic() < deadline, f"{what}: not reached within {bound:.0f} s"
        time.sleep(0.2)
    return value


def _worker_pid(serve_pid: int, port: int) -> int | None:
    for pid in processes_under(serve_pid) - {serve_pid}:
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"--server.port" in command and command[command.index(b"--server.port") + 1] == str(port).encode():
            return pid
    return None


@pytest.mark.browser
def test_two_workers_behind_nginx_serve_and_a_participant_resumes_after_their_worker_is_killed(
        postgres_url, demo_spec, tmp_path):
    require_chromium()
    require_nginx()
    pid, token = demo_with_invite(postgres_url, demo_spec)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k != "WORKBENCH_LLM_BASE_URL"}  # offline interview
    log = (tmp_path / "serve.log").open("w")
    serve = subprocess.Popen([str(WORKBENCH), "serve", "--db", postgres_url, "--port", str(port), "--workers", "2"],
                             env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        _until(lambda: healthy(f"{base}/_stcore/health") or serve.poll() is not None, "nginx answers", 240)
        assert serve.poll() is None, (tmp_path / "serve.log").read_text()
        # Pages through nginx; browsers without the route cookie are spread over both workers, and the
        # cookie a browser got keeps it on its worker.
        seen = set()

        def both_seen():
            status, headers = _fetch(f"{base}/")
            assert status == 200 and "<html" in urllib.request.urlopen(f"{base}/", timeout=30).read().decode().lower()
            seen.add(headers["X-Workbench-Worker"])
            return len(seen) == 2
        _until(both_seen, "both workers answer through nginx")
        _, first = _fetch(f"{base}/")
        cookie = first["Set-Cookie"].split(";")[0]
        assert cookie.startswith(workers.ROUTE_COOKIE + "=") and "HttpOnly" in first["Set-Cookie"]
        assert {_fetch(f"{base}/", cookie)[1]["X-Workbench-Worker"] for _ in range(6)} == {first["X-Workbench-Worker"]}

        with chromium() as browser:
            page = browser.new_page(viewport=VIEWPORT)
            page.set_default_timeout(WAIT_MS)
            response = page.goto(f"{base}/?invite={token}")
            worker = response.headers["x-workbench-worker"]
            expect_step(page, "Step 1 of 10: Welcome")
            page.get_by_text("I have read this and agree to take part").click()
            continue_button(page).click()
            expect_step(page, "Step 2 of 10: About you")

            # Their worker goes (killed, as by a crash): the participant reopens their link and is
            # where they were, served by the other worker (or by theirs, started again).
            victim = _worker_pid(serve.pid, int(worker.rsplit(":", 1)[1]))
            assert victim is not None, f"no worker process listens on {worker}"
            os.kill(victim, signal.SIGKILL)
            _until(lambda: not Path(f"/proc/{victim}").exists()
                   or Path(f"/proc/{victim}/stat").read_text().split(")")[1].split()[0] == "Z", "the worker is gone")
            page.reload()
            expect_step(page, "Step 2 of 10: About you")
            page.get_by_role("combobox", name="Your age").click()
            page.get_by_role("option", name="30-44", exact=True).click()
            page.get_by_role("combobox", name="Your political leaning").click()
            page.get_by_role("option", name="Prefer not to say", exact=True).click()
            continue_button(page).click()
            expect_step(page, "Step 3 of 10: Choose a question")
            page.close()
        assert serve.poll() is None, "the server keeps running after losing a worker"
        store = Store(postgres_url)
        try:
            steps = [s["step"] for s in store.steps(pid)]
        finally:
            store.close()
        assert steps == ["consent", "demographics"], steps

        # SIGTERM stops nginx and both workers; the port is free again.
        family = processes_under(serve.pid)
        assert len(family) >= 4, family  # serve, nginx (master + workers), two app workers
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=120)
        _until(lambda: not any(Path(f"/proc/{p}").exists() and "Z" not in
                               Path(f"/proc/{p}/stat").read_text().split(")")[1].split()[0] for p in family),
               "every process of the server has gone")
        _until(lambda: port_is_free(port), "the port is free")
        assert not re.search(r"Traceback", (tmp_path / "serve.log").read_text())
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()
        log.close()
