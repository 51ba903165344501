"""Benchmark: participant steps per second with 2 app workers behind nginx against 1, on PostgreSQL.

A throwaway PostgreSQL 15 server (tests/pgserver.py, durable: fsync on) holds the demo deliberation
(12 simulated participants). Each configuration gets a fresh database of its own with the same
contents, and the server exactly as a user starts it: `workbench serve --db URL --workers N` (nginx in
front in both, so the only difference is the number of workers). The same load both times: the same
number of real participants in Debian's Chromium (bench_app_load.py's walk: consent to the last
comparison), all at once, started over `--ramp` seconds. Reports participant steps per second over
the run (steps finished / wall time until the last participant finished), the ratio 2 workers : 1,
lost answers (stored vs planned, checked in PostgreSQL after the server stopped), and how the
machine's CPU was shared between the browsers, the app workers, nginx and PostgreSQL (from /proc).
Writes `benchmarks/results/workers.md`.

Run: .venv/bin/python benchmarks/bench_workers.py [--participants 12] [--ramp 5] [--minutes 15]
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


def machine_cpu() -> dict[str, float]:
    """CPU seconds used so far by every process on the machine, by role (from /proc)."""
    out: dict[str, float] = defaultdict(float)
    for _, _, cmd, seconds in processes():
        role = ("app workers" if "streamlit" in cmd else "browsers (chromium)" if "chrom" in cmd
                else "nginx" if "nginx" in cmd else "postgresql" if "postgres" in cmd
                else "playwright driver" if "playwright" in cmd or "node" in cmd else "everything else")
        out[role] += seconds
    return out


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
        before, load = machine_cpu(), os.getloadavg()[0]
        elapsed = asyncio.run(drive(base, walks, args.ramp, args.minutes * 60))
        after = machine_cpu()
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=60)
        stopped = port_is_free(port)
    rows = verify(url, walks)
    close_stores()
    steps = sum(len(w.timings) for w in walks)
    return {"workers": workers, "walks": walks, "rows": rows, "elapsed": elapsed, "steps": steps,
            "rate": steps / elapsed, "cpu": {k: after[k] - before.get(k, 0.0) for k in after},
            "load": load, "port_free": stopped}


def report(results: list[dict], args) -> str:
    one, two = results
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
    lines += ["", f"Steps per second, 2 workers : 1 = **{two['rate'] / one['rate']:.2f}×** (target >= 1.6×).", "",
              "Where the machine's CPU went while the participants ran (CPU seconds, every process on the machine;"
              " other people's work included in 'everything else'):", "",
              "| role | 1 worker | 2 workers |", "|---|---:|---:|"]
    for role in sorted(set(one["cpu"]) | set(two["cpu"]), key=lambda k: -two["cpu"].get(k, 0.0)):
        lines.append(f"| {role} | {one['cpu'].get(role, 0.0):.0f} | {two['cpu'].get(role, 0.0):.0f} |")
    for r in results:
        total = os.cpu_count() * r["elapsed"]
        clients = r["cpu"].get("browsers (chromium)", 0.0) + r["cpu"].get("playwright driver", 0.0)
        lines.append(f"\nWith {r['workers']} worker(s): the browsers and their driver took {clients:.0f} of"
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
    args = parser.parse_args()
    reason = chromium_missing_reason()
    if reason or not pgserver.available():
        print(f"cannot run: {reason or 'PostgreSQL 15 binaries not found'}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp:
        server = pgserver.start(Path(tmp) / "pg", durable=True)
        try:
            results = []
            for workers in (1, 2):
                url, invites = fresh_database(server, f"workers_{workers}", args.participants)
                results.append(run(url, invites, workers, args))
        finally:
            pgserver.stop(Path(tmp) / "pg")
    text = report(results, args)
    print(text)
    RESULTS.write_text(text)
    return 0 if all(w.finished for r in results for w in r["walks"]) else 1


if __name__ == "__main__":
    sys.exit(main())
