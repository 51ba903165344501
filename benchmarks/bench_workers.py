"""Benchmark: participant steps per second with 2 app workers behind nginx against 1, on PostgreSQL.

A throwaway PostgreSQL 15 server (tests/pgserver.py, durable: fsync on) holds the demo deliberation
(12 simulated participants). Each configuration gets a fresh database of its own with the same
contents, and the server exactly as a user starts it: `workbench serve --db URL --workers N` (nginx in
front in both, so the only difference is the number of workers). The same load both times: the same
number of real participants in Debian's Chromium (bench_app_load.py's walk: consent to the last
comparison), all at once, started over `--ramp` seconds; runs in the order 1, 2, 2, 1 workers (the
machine is shared: alternating spreads its changing load over both). Reports participant steps per
second (steps finished / wall time until the last participant finished, pooled over the runs of
each configuration), the ratio 2 workers : 1,
lost answers (stored vs planned, checked in PostgreSQL after the server stopped), and how the
machine's CPU was shared between the browsers, the app workers, nginx and PostgreSQL (from /proc).
Writes `benchmarks/results/workers.md`.

Run: .venv/bin/python benchmarks/bench_workers.py [--participants 12] [--ramp 5] [--minutes 15] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import pgserver  # noqa: E402
from bench_app_load import Walk, check, drive, processes, verify  # noqa: E402
from browser import WORKBENCH, chromium_missing_reason, free_port, healthy, port_is_free  # noqa: E402

from workbench import config  # noqa: E402
from workbench.deliberation import load_deliberation  # noqa: E402
from workbench.demo import load_world, simulate  # noqa: E402
from workbench.store import Store, close_stores  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "workers.md"


def role_of(cmd: str) -> str:
    return ("app workers" if "streamlit" in cmd else "browsers (chromium)" if "chrom" in cmd
            else "nginx" if "nginx" in cmd else "postgresql" if "postgres" in cmd
            else "playwright driver" if "playwright" in cmd or "node" in cmd else "everything else")


class MachineSampler:
    """CPU seconds every process on the machine used while this ran, by role: /proc read every second,
    each process's last reading kept (a browser that exits between readings loses at most a second)."""

    def __init__(self) -> None:
        self.start = {pid: seconds for pid, _, _, seconds in processes()}
        self.last: dict[int, tuple[str, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MachineSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self.sample()

    def sample(self) -> None:
        for pid, _, cmd, seconds in processes():
            self.last[pid] = (role_of(cmd), seconds)

    def by_role(self) -> dict[str, float]:
        out: dict[str, float] = defaultdict(float)
        for pid, (role, seconds) in self.last.items():
            out[role] += seconds - self.start.get(pid, 0.0)
        return dict(out)


def fresh_database(server: str, name: str, participants: int) -> tuple[str, list[tuple[int, str]]]:
    """A new database on `server` with the demo and `participants` invites: its URL and the invites."""
    import psycopg

    with psycopg.connect(server, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    url = server.replace("/postgres?", f"/{name}?")
    store = Store(url)
    try:
        store.import_bundle(simulate(load_deliberation(config.DEMO_DELIBERATION),
                                     load_world(config.DATA / "demo_values.yaml"), 12, seed=1))
        invites = store.create_invites("demo", participants)
    finally:
        store.close()
        close_stores()
    return url, invites


def run(url: str, invites, workers: int, args) -> dict:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k != "WORKBENCH_LLM_BASE_URL"}
    serve = subprocess.Popen([str(WORKBENCH), "serve", "--db", url, "--port", str(port), "--workers", str(workers)],
                             env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not healthy(f"{base}/_stcore/health"):
            if serve.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"workbench serve --workers {workers} did not start")
            time.sleep(0.5)
        walks = [Walk(i, token, pid) for i, (pid, token) in enumerate(invites)]
        load = os.getloadavg()[0]
        with MachineSampler() as sampler:
            elapsed = asyncio.run(drive(base, walks, args.ramp, args.minutes * 60))
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=60)
        stopped = port_is_free(port)
    rows = verify(url, walks)
    close_stores()
    steps = sum(len(w.timings) for w in walks)
    return {"workers": workers, "walks": walks, "rows": rows, "elapsed": elapsed, "steps": steps,
            "rate": steps / elapsed, "cpu": sampler.by_role(),
            "load": load, "port_free": stopped}


def report(results: list[dict], args) -> str:
    def pooled(n: int) -> dict:
        runs = [r for r in results if r["workers"] == n]
        cpu: dict[str, float] = defaultdict(float)
        for r in runs:
            for role, seconds in r["cpu"].items():
                cpu[role] += seconds
        steps, elapsed = sum(r["steps"] for r in runs), sum(r["elapsed"] for r in runs)
        return {"workers": n, "rate": steps / elapsed, "cpu": cpu, "elapsed": elapsed,
                "port_free": all(r["port_free"] for r in runs)}
    one, two = pooled(1), pooled(2)
    lines = ["## Many app workers on PostgreSQL (bench_workers.py)", "",
             f"{args.participants} real participants in Chromium at once (started over {args.ramp:g} s), each walking"
             " from the invite link through the card and every judging round, against `workbench serve --workers N`"
             " (nginx in front, PostgreSQL 15 behind, a fresh database with the same demo for each N), everything"
             f" on this {os.cpu_count()}-core machine. Python {platform.python_version()}.", "",
             "| workers | finished | steps | wall s | steps/s | lost or duplicated answers | load at start |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        finished = sum(w.finished for w in r["walks"])
        lost = sum(bool(check(row)) for row in r["rows"] if row["finished"])
        lines.append(f"| {r['workers']} | {finished} of {len(r['walks'])} | {r['steps']} | {r['elapsed']:.0f} |"
                     f" {r['rate']:.3f} | {lost} | {r['load']:.1f} |")
    lines += ["", f"Steps per second over all runs of each, 2 workers : 1 = **{two['rate'] / one['rate']:.2f}×**"
              " (target >= 1.6×).", "",
              "Where the machine's CPU went while the participants ran (CPU seconds, every process on the machine;"
              " other people's work included in 'everything else'):", "",
              "| role | 1 worker | 2 workers |", "|---|---:|---:|"]
    for role in sorted(set(one["cpu"]) | set(two["cpu"]), key=lambda k: -two["cpu"].get(k, 0.0)):
        lines.append(f"| {role} | {one['cpu'].get(role, 0.0):.0f} | {two['cpu'].get(role, 0.0):.0f} |")
    for r in (one, two):
        total = os.cpu_count() * r["elapsed"]
        clients = r["cpu"].get("browsers (chromium)", 0.0) + r["cpu"].get("playwright driver", 0.0)
        lines.append(f"\nWith {r['workers']} worker(s), all runs: the browsers and their driver took {clients:.0f} of"
                     f" {total:.0f} core-seconds ({100 * clients / total:.0f}% of the machine), the app workers"
                     f" {r['cpu'].get('app workers', 0.0):.0f} ({100 * r['cpu'].get('app workers', 0.0) / total:.0f}%);"
                     f" port free after SIGTERM: {r['port_free']}.")
    errors = [f"{r['workers']} worker(s), participant {w.pid}: {w.error}" for r in results for w in r["walks"] if w.error]
    if errors:
        lines += ["", "Errors:"] + [f"- {e}" for e in errors[:10]]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=12)
    parser.add_argument("--ramp", type=float, default=5.0)
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--rounds", type=int, default=2, choices=(1, 2), help="1: 1 then 2 workers; 2: 1, 2, 2, 1")
    args = parser.parse_args()
    reason = chromium_missing_reason()
    if reason or not pgserver.available():
        print(f"cannot run: {reason or 'PostgreSQL 15 binaries not found'}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp:
        os.chmod(tmp, 0o755)  # the server runs as the postgres user when this runs as root
        server = pgserver.start(Path(tmp) / "pg", durable=True)
        try:
            results = []
            # 1, 2, 2, 1: the machine is shared, and alternating spreads its changing load over both.
            for round_, workers in enumerate((1, 2, 2, 1)[:2 * args.rounds]):
                url, invites = fresh_database(server, f"workers_{workers}_{round_}", args.participants)
                results.append(run(url, invites, workers, args))
        finally:
            pgserver.stop(Path(tmp) / "pg")
    text = report(results, args)
    print(text)
    RESULTS.write_text(text)
    return 0 if all(w.finished for r in results for w in r["walks"]) else 1


if __name__ == "__main__":
    sys.exit(main())
