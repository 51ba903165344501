"""A throwaway PostgreSQL 15 server for the tests, the benchmarks and CI (standard library only).

`start(directory)` runs Debian's initdb into `directory` and starts the server on a Unix socket in
it (no TCP port, so runs never collide); as root it runs them as the `postgres` user, since the server
refuses to run as root. `stop(directory)` stops it. From the shell (.ci/run):

    python3 tests/pgserver.py start DIR   # prints the server's URL
    python3 tests/pgserver.py stop DIR
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

BIN = Path(os.environ.get("WORKBENCH_POSTGRES_BIN", "/usr/lib/postgresql/15/bin"))
PORT = 5432  # only names the socket file inside the server's own directory


def available() -> bool:
    return (BIN / "initdb").is_file() and (BIN / "pg_ctl").is_file()


def _run(command: list[str]) -> None:
    """Run a server program (as `postgres` when root: the server refuses to run as root); fail with its output."""
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")


def url(directory: str | Path, database: str = "postgres") -> str:
    return f"postgresql://postgres@/{database}?host={Path(directory).resolve()}&port={PORT}"


def start(directory: str | Path, *, durable: bool = False) -> str:
    """Initialise and start a server in `directory` (created; must not hold one already); its URL.

    Without `durable` the server skips fsync (a test server's data need not survive a power cut);
    benchmarks pass durable=True so that a commit costs what it costs in production.
    """
    directory = Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres")
        os.chmod(directory, 0o700)
    data = directory / "data"
    _run([str(BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C"])
    options = [f"-p {PORT}", f"-k {directory}", "-c listen_addresses=''", "-c max_connections=300"]
    if not durable:
        options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
    _run([str(BIN / "pg_ctl"), "-D", str(data), "-l", str(directory / "server.log"), "-o", " ".join(options),
          "-w", "-t", "120", "start"])
    return url(directory)


def stop(directory: str | Path) -> None:
    data = Path(directory).resolve() / "data"
    if (data / "postmaster.pid").exists():
        _run([str(BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"])


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("start", "stop"):
        sys.exit("usage: pgserver.py start|stop DIR")
    if sys.argv[1] == "start":
        print(start(sys.argv[2]))
    else:
        stop(sys.argv[2])
