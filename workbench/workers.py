"""Serving many participants: several app workers (Streamlit processes) behind nginx, one database.

`workbench serve --workers N` runs here. A Streamlit process uses one core at most, and DuckDB admits
one process per file, so many workers need PostgreSQL (`refuse_duckdb`). The database is migrated
once, before any worker starts; then N workers listen on internal ports of 127.0.0.1, and nginx
(Debian's, run as the current user with a config generated from `data/nginx.conf.template` into a
run folder that holds its pid, log and temporary files) listens on the public port and routes each
browser to one worker by a cookie, so that a page and its WebSocket meet the same Streamlit session.
A participant's state is in the database, not in a worker: if their worker goes, the next request
goes to another worker and they resume there. A worker that exits is started again; SIGTERM or
SIGINT stops nginx and every worker (killed if they linger) and removes the run folder.
This module never imports Streamlit and holds no SQL.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from . import config
from .errors import InputError, Unavailable
from .serving import streamlit_command

#: Debian's nginx; WORKBENCH_NGINX names another binary.
NGINX = Path(os.environ.get("WORKBENCH_NGINX", "/usr/sbin/nginx"))
TEMPLATE = config.DATA / "nginx.conf.template"
#: The cookie that keeps a browser on its worker (a random route key, nothing about the person).
ROUTE_COOKIE = "workbench_route"
#: How long a stop waits for nginx and the workers before it kills them.
STOP_GRACE = 3.0
#: A bound on a worker's start (a cold Streamlit imports pandas, DuckDB, psycopg): an error past this.
START_TIMEOUT = 120.0


def refuse_duckdb(target, workers: int) -> None:
    """An InputError saying why several workers cannot share a DuckDB file, and what to do instead."""
    if workers > 1 and not config.is_database_url(target):
        raise InputError(
            f"--workers {workers}: several app workers need a PostgreSQL database, and {target} is a DuckDB"
            " file, which DuckDB lets only one process open. Serve a PostgreSQL database instead"
            f" (`workbench serve --db postgresql://USER@HOST/DB --workers {workers}`; README, \"Serving many"
            " participants\"), or leave out --workers to serve this file with one process.")


def nginx_config(*, listen: str, worker_ports: Sequence[int], run_dir: Path | str, user: str | None = None) -> str:
    """The nginx config for workers on 127.0.0.1:`worker_ports`, listening on `listen` ("HOST:PORT").

    `user` is needed only when nginx starts as root (it would otherwise run its workers as nobody, who
    cannot write the run folder); None leaves the line out.
    """
    servers = "\n".join(f"        server 127.0.0.1:{port} max_fails=1 fail_timeout=2s;" for port in worker_ports)
    text = TEMPLATE.read_text()
    for name, value in (("USER", f"user {user};" if user else "# (nginx runs as the user who starts it)"),
                        ("RUN", str(run_dir)), ("COOKIE", ROUTE_COOKIE), ("SERVERS", servers),
                        ("LISTEN", listen)):
        text = text.replace(f"@@{name}@@", value)
    return text


@dataclass
class Worker:
    port: int
    process: subprocess.Popen
    restarts: int = 0


class Fleet:
    """nginx and N app workers, started and stopped together (`workbench serve --workers N`)."""

    def __init__(self, target: str, *, workers: int, host: str, port: int, secrets_file: Path | None = None,
                 run_dir: Path | None = None) -> None:
        self.target, self.count, self.host, self.port = str(target), workers, host, port
        self.secrets_file = secrets_file
        self.run_dir = Path(run_dir or tempfile.mkdtemp(prefix="workbench-serve-"))
        self.workers: list[Worker] = []
        self.nginx: subprocess.Popen | None = None
        self.stopping = threading.Event()
        # One cookie secret for every worker: Streamlit signs its XSRF and sign-on cookies with it, and a
        # browser may meet another worker than the one that set them.
        self.env = {**os.environ, "WORKBENCH_DB": self.target, "STREAMLIT_SERVER_COOKIE_SECRET": secrets.token_hex(32)}
        self.env.setdefault("WORKBENCH_BASE_URL", f"http://{_url_host(host)}:{port}")

    # -- starting ----------------------------------------------------------------------------------

    def start(self) -> None:
        if not NGINX.is_file():
            raise Unavailable(f"--workers needs nginx, and {NGINX} does not exist: install it (`apt-get install"
                              " nginx-light` or `nginx`), or name its binary in WORKBENCH_NGINX.")
        ports = [_free_port() for _ in range(self.count)]
        user = pwd.getpwuid(os.geteuid()).pw_name if os.geteuid() == 0 else None
        conf = self.run_dir / "nginx.conf"
        conf.write_text(nginx_config(listen=f"{_url_host(self.host)}:{self.port}", worker_ports=ports,
                                     run_dir=self.run_dir, user=user))
        checked = subprocess.run(self._nginx_command("-t", "-q"), capture_output=True, text=True)
        if checked.returncode != 0:
            raise Unavailable(f"nginx refused its generated config {conf}: {checked.stderr.strip()}")
        try:
            self.workers = [Worker(p, self._start_worker(p)) for p in ports]
            for worker in self.workers:
                self._wait_healthy(worker)
            self.nginx = _child(self._nginx_command())
            self._wait_listening()
        except BaseException:
            self.stop()
            raise

    def _nginx_command(self, *extra: str) -> list[str]:
        # -e: nginx opens its default error log before it reads the config; point it into the run folder.
        return [str(NGINX), "-p", str(self.run_dir), "-c", str(self.run_dir / "nginx.conf"),
                "-e", str(self.run_dir / "error.log"), *extra]

    def _start_worker(self, port: int) -> subprocess.Popen:
        command = streamlit_command(host="127.0.0.1", port=port, secrets_file=self.secrets_file)
        return _child(command, env=self.env)

    def _wait_healthy(self, worker: Worker) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while not _healthy(f"http://127.0.0.1:{worker.port}/_stcore/health"):
            if worker.process.poll() is not None:
                raise Unavailable(f"app worker on port {worker.port} exited with code {worker.process.returncode}"
                                  " while starting (its messages are above)")
            if time.monotonic() > deadline or self.stopping.wait(0.25):
                raise Unavailable(f"app worker on port {worker.port} did not start within {START_TIMEOUT:.0f} s")

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + 30
        while not _healthy(f"http://{_local(self.host)}:{self.port}/_stcore/health"):
            if self.nginx.poll() is not None:
                log = (self.run_dir / "error.log")
                detail = log.read_text()[-2000:] if log.exists() else ""
                raise Unavailable(f"nginx exited with code {self.nginx.returncode}: {detail.strip()}")
            if time.monotonic() > deadline or self.stopping.wait(0.25):
                raise Unavailable(f"nginx did not answer on {self.host}:{self.port} within 30 s")

    # -- running and stopping --------------------------------------------------------------------------

    def supervise(self) -> int:
        """Until asked to stop: start again a worker that exited; stop everything if nginx exits."""
        while not self.stopping.wait(0.5):
            if self.nginx is not None and self.nginx.poll() is not None:
                print(f"error: nginx exited with code {self.nginx.returncode}; stopping the workers"
                      f" (its log: {self.run_dir / 'error.log'})", file=sys.stderr, flush=True)
                return 1
            for worker in self.workers:
                if worker.process.poll() is not None and not self.stopping.is_set():
                    worker.restarts += 1
                    print(f"app worker on port {worker.port} exited with code {worker.process.returncode};"
                          f" starting it again (restart {worker.restarts})", file=sys.stderr, flush=True)
                    worker.process = self._start_worker(worker.port)
        return 0

    def stop(self) -> None:
        """nginx and every worker asked to stop (SIGTERM), killed after STOP_GRACE, the run folder removed."""
        self.stopping.set()
        running = [p for p in [self.nginx, *(w.process for w in self.workers)] if p is not None and p.poll() is None]
        for process in running:
            process.terminate()  # nginx: fast shutdown; Streamlit (uvicorn): closes its sockets and exits
        deadline = time.monotonic() + STOP_GRACE
        for process in running:
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.05))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(self.run_dir, ignore_errors=True)


def serve(target: str, *, workers: int, host: str, port: int, secrets_file: Path | None = None) -> int:
    """Run nginx and `workers` app workers until SIGTERM or SIGINT; the exit code."""
    from .store import Store

    Store(target).close()  # reachable, and migrated once before any worker starts
    fleet = Fleet(target, workers=workers, host=host, port=port, secrets_file=secrets_file)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: fleet.stopping.set())
    try:
        fleet.start()
        print(f"Serving {config.base_url()} with {workers} app workers behind nginx (internal ports"
              f" {', '.join(str(w.port) for w in fleet.workers)}); Ctrl-C or SIGTERM stops them all.", flush=True)
        return fleet.supervise()
    finally:
        fleet.stop()


def _child(command: list[str], env: dict | None = None) -> subprocess.Popen:
    """A process this one stops: in a session of its own (a Ctrl-C in the terminal reaches only `serve`,
    which stops everything in order), and told to end if `serve` itself dies (Linux: PR_SET_PDEATHSIG)."""
    return subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, start_new_session=True,
                            preexec_fn=_end_with_parent if sys.platform == "linux" else None)


def _end_with_parent() -> None:
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _local(host: str) -> str:
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else _url_host(host)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
