"""Benchmark: the store (DuckDB, and PostgreSQL) under 200 concurrent participants writing as fast as they can.

Each of 200 threads is an invited participant with long stored plans for the three judging rounds
and, until the time is up, submits round-robin through the store's use-case methods: a values card
(a new participant, invited before the run as staff would, chooses the question and confirms a card:
`choose_question`, `confirm_card`, two submissions; a tenth of the cards propose one of three new contexts that other
participants propose at the same moment), a wiser-than answer (`answer_wiser`), an endorsement
(`endorse`) and a comparison (`compare`), each answering the next item of the thread's plan. Every
acknowledged submission (the id the store returned) and its latency is recorded. Afterwards the store
is closed and reopened and every acknowledged write must be there exactly once with what was
submitted (cards with all their contexts and their step), and nothing a participant did not get an id
for may have appeared. The baseline is the same mix from one thread on a fresh file in the same run
(ratio of throughputs). Then the same 200-thread load on PostgreSQL (a throwaway PostgreSQL 15 server
with fsync on, started from Debian's binaries by tests/pgserver.py, or --postgres URL), verified the same
way, and its writes/s as a ratio to DuckDB's in the same run (target: >= 3x). The machine's load average
is sampled throughout. Prints a Markdown section and writes it to `benchmarks/results/store_load.md`.
Never touches the project's own database.

Run: .venv/bin/python benchmarks/bench_store_load.py [--threads 200] [--seconds 20] [--baseline-seconds 10]
     [--postgres postgresql://...]  (--no-postgres: DuckDB only)
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402
import psycopg  # noqa: E402

from workbench import config  # noqa: E402
from workbench.deliberation import load_deliberation  # noqa: E402
from workbench.demo import load_world, simulate  # noqa: E402
from workbench.models import ValuesCardIn, validated  # noqa: E402
from workbench.store import Store  # noqa: E402

DELIBERATION = "demo"
QUESTION = "demo/homework"
KINDS = ("card", "wiser", "endorse", "compare")
#: New contexts several participants propose at once (a unique-key race inside `confirm_card`).
SHARED_PROPOSALS = ("When a parent feels at the end of their rope", "When homework becomes a power struggle",
                    "When a teacher and a parent disagree")
RESULTS = ROOT / "benchmarks" / "results" / "store_load.md"


#: Items planned per round for each writer: more than any writer answers in the run (a real plan has a few,
#: at most 50 to 100 by the deliberation's limits); a writer that answered them all stops judging.
PLAN_ITEMS = 200
#: Invitees made before the run per writer, one per card (more than a writer writes in the run here).
AUTHORS_PER_WRITER = 40


@dataclass
class World:
    """What the writers need to know about the deliberation: values, contexts, public item ids, and each
    writer's stored plans (round → items)."""

    value_ids: list[int]
    items: list[str]
    contexts: dict[str, int]  # approved context name → id
    plans: dict[int, dict[str, list]] = field(default_factory=dict)
    authors: list[int] = field(default_factory=list)  # invited before the run, each writes one card
    lock: threading.Lock = field(default_factory=threading.Lock)

    def author(self, store: Store) -> int:
        """An invitee who has not written a card yet (invited now, inside the timed write, if none is left)."""
        with self.lock:
            if self.authors:
                return self.authors.pop()
        (author, _), = store.create_invites(DELIBERATION, 1)
        return author


@dataclass
class Ledger:
    """One writer's record: acknowledged writes (kind, id, payload), latencies, errors."""

    acked: list[tuple[str, int, dict]] = field(default_factory=list)
    latencies: list[tuple[str, float]] = field(default_factory=list)
    errors: list[tuple[str, str, dict]] = field(default_factory=list)


def prepare(path: Path, participants: int) -> tuple[Store, World, list[int]]:
    """A fresh store with the demo deliberation, 12 simulated participants' values, and invitees."""
    store = Store(path)
    spec = load_deliberation(config.DEMO_DELIBERATION)
    store.import_bundle(simulate(spec, load_world(config.DATA / "demo_values.yaml"), 12, seed=1))
    values = store.canonical_values(DELIBERATION, question_id=QUESTION)
    from workbench.analyses import value_table

    table = value_table(store, DELIBERATION, question_id=QUESTION)
    contexts = store.contexts(DELIBERATION, question_id=QUESTION)
    world = World(value_ids=[int(v) for v in values["id"]], items=[str(i) for i in table["public_id"]],
                  contexts=dict(zip(contexts["name"], contexts["id"].astype(int), strict=True)))
    pids = [pid for pid, _ in store.create_invites(DELIBERATION, participants)]
    # Invites are made by staff before participants arrive: not part of the participants' load.
    world.authors = [pid for pid, _ in store.create_invites(DELIBERATION, AUTHORS_PER_WRITER * participants)]
    for pid in pids:  # each writer chose the question and got long plans for the three rounds
        rng = random.Random(pid)
        store.choose_question(pid, QUESTION)
        world.plans[pid] = {
            "wiser": [dict(zip(("from_id", "to_id"), rng.sample(world.value_ids, 2), strict=True),
                           context=rng.choice(sorted(world.contexts))) for _ in range(PLAN_ITEMS)],
            "endorse": [rng.choice(world.value_ids) for _ in range(PLAN_ITEMS)],
            "compare": [dict(zip(("item_a", "item_b"), rng.sample(world.items, 2), strict=True))
                        for _ in range(PLAN_ITEMS)]}
        for round_name, items in world.plans[pid].items():
            store.plan_round(pid, round_name, items)
    return store, world, pids


def payload(kind: str, pid: int, n: int, rng: random.Random, world: World) -> dict:
    """The n-th submission of writer `pid`: a card's content, or the answer to the next item of a round."""
    if kind == "card":
        contexts = [rng.choice(sorted(world.contexts))]
        if rng.random() < 0.1:
            contexts.append(rng.choice(SHARED_PROPOSALS))
        return {"title": f"Listening Before Pushing {pid}-{n}", "description": "Understanding the refusal first.",
                "policies": ["MOMENTS when the child asks their own questions", "SIGNS of exhaustion after school",
                             f"FRUSTRATIONS not yet put into words ({n})"],
                "question_id": QUESTION, "contexts": contexts}
    item = n // len(KINDS)  # the writer's next item of this round
    if kind == "wiser":
        return {"participant_id": pid, "item": item, "answer": rng.choice(["upgrade", "no_upgrade", "not_sure"]),
                "comment": f"w{n}", **world.plans[pid]["wiser"][item]}
    if kind == "endorse":
        return {"participant_id": pid, "item": item, "vote": rng.choice(["agree", "disagree", "pass"]),
                "canonical_id": world.plans[pid]["endorse"][item]}
    return {"participant_id": pid, "item": item, "winner": rng.choice(["a", "b", "tie"]),
            **world.plans[pid]["compare"][item]}


def write(store: Store, world: World, kind: str, pid: int, data: dict) -> int:
    if kind == "card":  # a new participant chooses the question and confirms their card
        author = world.author(store)
        interview = store.choose_question(author, QUESTION)
        return store.confirm_card(author, interview, validated(ValuesCardIn, data), {"title": data["title"]})
    if kind == "wiser":
        return store.answer_wiser(pid, data["item"], data["answer"], data["comment"])
    if kind == "endorse":
        return store.endorse(pid, data["item"], data["vote"])
    return store.compare(pid, data["item"], data["winner"])


def writer(store: Store, pid: int, world: World, start: threading.Barrier, deadline: list[float],
           ledger: Ledger) -> None:
    rng = random.Random(pid)
    start.wait()
    n = 0
    while time.perf_counter() < deadline[0] and n // len(KINDS) < PLAN_ITEMS:
        kind = KINDS[n % len(KINDS)]
        data = payload(kind, pid, n, rng, world)
        t = time.perf_counter()
        try:
            new_id = write(store, world, kind, pid, data)
        except Exception as exc:  # noqa: BLE001 - every failure is counted and reported, none hidden
            ledger.errors.append((kind, f"{type(exc).__name__}: {str(exc)[:160]}", data))
        else:
            ledger.latencies.append((kind, time.perf_counter() - t))
            ledger.acked.append((kind, int(new_id), data))
        n += 1


class LoadWatch:
    """The machine's 1-minute load average, sampled every second while a run goes on."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(1.0):
            self.samples.append(os.getloadavg()[0])

    def __enter__(self) -> LoadWatch:
        self.samples.append(os.getloadavg()[0])
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(os.getloadavg()[0])

    def text(self) -> str:
        return f"{min(self.samples):.1f}-{max(self.samples):.1f} (mean {np.mean(self.samples):.1f})"


def run_load(path: Path | str, threads: int, seconds: float) -> dict:
    store, world, pids = prepare(path, threads)
    ledgers = [Ledger() for _ in pids]
    start = threading.Barrier(len(pids) + 1)
    deadline = [0.0]
    workers = [threading.Thread(target=writer, args=(store, pid, world, start, deadline, ledger), daemon=True)
               for pid, ledger in zip(pids, ledgers, strict=True)]
    for w in workers:
        w.start()
    deadline[0] = time.perf_counter() + seconds
    with LoadWatch() as load:
        t0 = time.perf_counter()
        start.wait()
        for w in workers:
            w.join()
        elapsed = time.perf_counter() - t0
    store.close()
    # Reopen the database: what a participant was told is saved must be there for the next process too.
    verdict = verify(Store(path), pids, ledgers)
    return {"ledgers": ledgers, "elapsed": elapsed, "verdict": verdict, "threads": threads, "load": load.text(),
            "backend": "PostgreSQL" if str(path).startswith("postgresql://") else "DuckDB"}


def verify(store: Store, pids: list[int], ledgers: list[Ledger]) -> dict:
    """Every acknowledged write present exactly once with its content; nothing unacknowledged."""
    try:
        mine = set(pids)
        acked: dict[str, dict[int, dict]] = defaultdict(dict)
        duplicate_acks = 0
        for ledger in ledgers:
            for kind, new_id, data in ledger.acked:
                duplicate_acks += new_id in acked[kind]
                acked[kind][new_id] = data
        cards = store.cards(DELIBERATION, include_hidden=True)
        cards = cards[cards["title"].str.startswith("Listening Before Pushing ")]
        steps = {int(c): [s["payload"].get("card_id") for s in store.steps(int(a)) if s["step"] == "interview"]
                 for c, a in zip(cards["id"], cards["author_id"], strict=True)}
        wiser = store.wiser_answers(DELIBERATION)
        wiser = wiser[wiser["participant_id"].isin(mine)]
        votes = store.endorsements(DELIBERATION, latest=False, include_hidden=True)
        votes = votes[votes["participant_id"].isin(mine)]
        made = store.comparisons(DELIBERATION, include_ties=True)
        made = made[made["participant_id"].isin(mine)]
        found = {"card": cards, "wiser": wiser, "endorse": votes, "compare": made}
        vote_code = {"agree": 1, "disagree": -1, "pass": 0}
        out = {"duplicate_acks": duplicate_acks}
        for kind, rows in found.items():
            ids = Counter(int(i) for i in rows["id"])
            want = acked[kind]
            missing = [i for i in want if ids[i] == 0]
            twice = [i for i, c in ids.items() if c > 1]
            extra = [i for i in ids if i not in want]
            wrong = 0
            for row in rows.to_dict("records"):
                data = want.get(int(row["id"]))
                if data is None:
                    continue
                if kind == "card":  # with its contexts, and the step it completes in the same transaction
                    ok = (row["title"] == data["title"] and list(row["policies"]) == data["policies"]
                          and sorted(row["contexts"]) == sorted(data["contexts"])
                          and steps[int(row["id"])] == [int(row["id"])])
                elif kind == "wiser":
                    ok = (int(row["from_id"]), int(row["to_id"]), row["answer"], row["comment"]) == (
                        data["from_id"], data["to_id"], data["answer"], data["comment"])
                elif kind == "endorse":
                    ok = (int(row["canonical_id"]), int(row["vote"])) == (data["canonical_id"],
                                                                          vote_code[data["vote"]])
                else:
                    ok = (row["item_a"], row["item_b"], row["winner"]) == (data["item_a"], data["item_b"],
                                                                           data["winner"])
                wrong += not ok
            out[kind] = {"acked": len(want), "rows": len(rows), "missing": len(missing), "twice": len(twice),
                         "unacknowledged": len(extra), "content_mismatch": wrong}
        proposed = store.proposed_contexts(DELIBERATION)
        out["proposed_contexts"] = sorted(proposed["name"])
        out["proposed_context_rows"] = {name: int((proposed["name"] == name).sum()) for name in SHARED_PROPOSALS}
        return out
    finally:
        store.close()


def summarize(run: dict) -> dict:
    lat = defaultdict(list)
    errors = Counter()
    acked = 0
    for ledger in run["ledgers"]:
        for kind, seconds in ledger.latencies:
            lat[kind].append(seconds)
            lat["all"].append(seconds)
        for kind, message, _ in ledger.errors:
            errors[(kind, message.split(":")[0])] += 1
        acked += len(ledger.acked)
    pct = {k: np.percentile(np.array(v) * 1000, [50, 95, 99]) if v else [np.nan] * 3 for k, v in lat.items()}
    return {"acked": acked, "throughput": acked / run["elapsed"], "pct": pct, "errors": errors,
            "counts": {k: len(v) for k, v in lat.items()}, "examples": [e[1] for ld in run["ledgers"]
                                                                        for e in ld.errors][:3]}


def verdict_ok(verdict: dict) -> bool:
    return verdict["duplicate_acks"] == 0 and all(
        verdict[k]["missing"] == verdict[k]["twice"] == verdict[k]["unacknowledged"]
        == verdict[k]["content_mismatch"] == 0 for k in KINDS) and all(
        n <= 1 for n in verdict["proposed_context_rows"].values())


def report(load: dict, base: dict, args, pg: dict | None = None) -> str:
    s_load, s_base = summarize(load), summarize(base)
    ratio = s_load["throughput"] / s_base["throughput"]
    s_pg = summarize(pg) if pg else None
    lines = [
        "## Store under load (bench_store_load.py)",
        "",
        f"{load['threads']} threads, each an invited participant submitting through the store's use-case methods"
        " round-robin as fast as they can: a card (a new participant, invited before the run, chooses the question"
        " and confirms a card: two submissions, two transactions, one latency), then the next item of its wiser-than, endorse and"
        f" compare plans (one transaction each), for {args.seconds:g} s; a tenth of the"
        " cards propose one of three new contexts that other participants propose at the same time."
        f" Baseline: the same write mix from 1 thread on a fresh file for {args.baseline_seconds:g} s, same run."
        f" One `Store` (one DuckDB connection, a cursor and transaction per write). DuckDB {duckdb.__version__},"
        f" Python {platform.python_version()}, {os.cpu_count()} cores, load average at start"
        f" {args.load_at_start:.1f} (shared machine)."
        + (f" PostgreSQL: {pg['server']}, the same `Store` methods and SQL through a psycopg pool of"
           f" {pg['pool']} connections, each write a REPEATABLE READ transaction retried on conflict."
           if pg else ""),
        "",
        "| run | acknowledged writes | seconds | writes/s | × baseline | p50 ms | p95 ms | p99 ms | errors |"
        " load average during the run |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    runs = [(f"DuckDB, {load['threads']} threads", load, s_load, ratio),
            ("DuckDB, 1 thread (baseline)", base, s_base, 1.0)]
    if pg:
        runs.insert(0, (f"PostgreSQL, {pg['threads']} threads", pg, s_pg, s_pg["throughput"] / s_base["throughput"]))
    for name, run, s, r in runs:
        p = s["pct"]["all"]
        lines.append(f"| {name} | {s['acked']:,} | {run['elapsed']:.1f} | {s['throughput']:,.0f} | {r:.2f} |"
                     f" {p[0]:.1f} | {p[1]:.1f} | {p[2]:.1f} | {sum(s['errors'].values())} | {run['load']} |")
    if pg:
        times = s_pg["throughput"] / s_load["throughput"]
        lines += ["", f"PostgreSQL / DuckDB at {load['threads']} threads, same run: **{times:.1f}x** the writes/s"
                  f" (target >= 3x: {'met' if times >= 3 else 'NOT met'})."]
    for run, s in ([(pg, s_pg)] if pg else []) + [(load, s_load)]:
        lines += ["", f"Latency per kind of write, {run['backend']}, {run['threads']} threads (ms):", "",
                  "| write | count | p50 | p95 | p99 |", "|---|---:|---:|---:|---:|"]
        for kind in KINDS:
            p = s["pct"].get(kind, [np.nan] * 3)
            lines.append(f"| {kind} | {s['counts'].get(kind, 0):,} | {p[0]:.1f} | {p[1]:.1f} | {p[2]:.1f} |")
    if s_load["errors"]:
        lines += ["", "Errors: " + "; ".join(f"{k[0]} {k[1]} ×{n}" for k, n in s_load["errors"].items())
                  + ". Examples: " + " | ".join(s_load["examples"])]
    if s_pg and s_pg["errors"]:
        lines += ["", "PostgreSQL errors: " + "; ".join(f"{k[0]} {k[1]} ×{n}" for k, n in s_pg["errors"].items())
                  + ". Examples: " + " | ".join(s_pg["examples"])]
    for run in ([pg] if pg else []) + [load]:
        v = run["verdict"]
        lines += ["", f"Verification after closing and reopening the database ({run['backend']}, {run['threads']}"
                  " threads):", "",
                  "| write | acknowledged | rows in DB | missing | present twice | unacknowledged rows |"
                  " content differs |", "|---|---:|---:|---:|---:|---:|---:|"]
        for kind in KINDS:
            k = v[kind]
            lines.append(f"| {kind} | {k['acked']:,} | {k['rows']:,} | {k['missing']} | {k['twice']} |"
                         f" {k['unacknowledged']} | {k['content_mismatch']} |")
        lines += ["", "Each shared new context stored once: " + ", ".join(
            f"\"{n}\" ×{c}" for n, c in v["proposed_context_rows"].items()) + ".",
            "", f"Verdict ({run['backend']}): "
            f"{'every acknowledged write is stored exactly once, nothing else appeared' if verdict_ok(v) else 'FAILED (see the table)'}"
            + (f" (baseline run: {'ok' if verdict_ok(base['verdict']) else 'FAILED'})" if run is load else "") + "."]
    return "\n".join(lines + [""])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--baseline-seconds", type=float, default=10.0)
    parser.add_argument("--postgres", help="a PostgreSQL URL to run on (a new schema is made in it and dropped);"
                        " default: a throwaway server started from /usr/lib/postgresql/15/bin")
    parser.add_argument("--no-postgres", action="store_true", help="DuckDB only")
    args = parser.parse_args()
    args.load_at_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-store-load-") as tmp:
        base = run_load(Path(tmp) / "baseline.duckdb", 1, args.baseline_seconds)
        load = run_load(Path(tmp) / "load.duckdb", args.threads, args.seconds)
        pg = None if args.no_postgres else run_postgres(args)
    text = report(load, base, args, pg)
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    runs = [load, base] + ([pg] if pg else [])
    return 0 if all(verdict_ok(r["verdict"]) for r in runs) else 1


def run_postgres(args) -> dict:
    """The load on PostgreSQL: in a schema of its own on --postgres, or on a throwaway durable server."""
    sys.path.insert(0, str(ROOT / "tests"))
    import pgserver

    from workbench.store.backends import PostgreSQL

    started = args.postgres is None
    directory = Path(tempfile.mkdtemp(prefix="bench-pg-"))  # in /tmp: the postgres user must reach it
    server = pgserver.start(directory, durable=True) if started else args.postgres
    schema = f"bench_{os.getpid()}"
    try:
        with psycopg.connect(server, autocommit=True) as connection:
            version = connection.execute("SHOW server_version").fetchall()[0][0]
            connection.execute(f"CREATE SCHEMA {schema}")
        url = server + ("&" if "?" in server else "?") + f"options=-csearch_path%3D{schema}"
        run = run_load(url, args.threads, args.seconds)
        with psycopg.connect(server, autocommit=True) as connection:
            connection.execute(f"DROP SCHEMA {schema} CASCADE")
    finally:
        if started:
            pgserver.stop(directory)
        shutil.rmtree(directory, ignore_errors=True)
    run["server"] = (f"PostgreSQL {version}" + (" (throwaway server on a Unix socket, fsync on)" if started else ""))
    run["pool"] = PostgreSQL.POOL_SIZE
    return run


if __name__ == "__main__":
    sys.exit(main())
