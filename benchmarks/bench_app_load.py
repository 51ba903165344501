"""Benchmark: N real participants at once through the web app, from invite link to "Thank you".

The server exactly as `make run` starts it (`workbench serve --db DB --port PORT`, no extra
options) on a temporary copy of the demo deliberation (12 simulated
participants, so the rounds have values to show), and Debian's Chromium under Playwright (asyncio:
one browser, one context and page per participant, all driven concurrently). Each participant
consents, answers "about you", picks the homework question, walks the guided interview to a
confirmed card and then answers every question of the wiser-than, endorse and compare rounds
(the demo's rounds: 3, up to 6 and 4). Records the time of every step (click to the next step on
screen), p50/p95 per step, and every error (timeouts, exceptions shown on the page). After the
server stops, the DuckDB file is checked: every participant has exactly one card, exactly the
planned number of answers per round (the plan the app stored for them), and no duplicate answer,
vote or comparison. Bounded: whatever happens, participants still running after `--minutes` are
stopped and counted as unfinished.

Then the server's work per click, before and after, in the same run: `--alone` more participants walk
through one after another, each alone on the server, first on a server of the code at `--baseline`
(a git commit: `git archive` of its `workbench/` package, put first on PYTHONPATH and started in
that folder with the same `workbench serve` command, on a fresh copy of the same database), then on the server as it is
now (fresh copy too). The server's CPU time (user + system, from /proc) is read before and after each
step, and its resident memory (VmRSS) after each participant: server CPU seconds per participant
step (p50, p95, per step) and whether memory stays bounded over the long walk. With `--profile`,
py-spy samples the current server meanwhile and the report lists where its time goes. Prints a
Markdown section and writes it to `benchmarks/results/app_load.md`. Never touches the project's own
database.

Run: .venv/bin/python benchmarks/bench_app_load.py [--participants 20] [--ramp 10] [--minutes 15]
         [--alone 8] [--baseline e4b0f9b] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from browser import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    CONTEXT,
    DESCRIPTION,
    POLICIES,
    RESPONSE,
    RUN_COUNTER_JS,
    SETTLED_JS,
    STORY,
    VIEWPORT,
    chromium_missing_reason,
    workbench_server,
)

from workbench import config  # noqa: E402
from workbench.deliberation import load_deliberation  # noqa: E402
from workbench.demo import load_world, simulate  # noqa: E402
from workbench.store import Store  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "app_load.md"
TICK = os.sysconf("SC_CLK_TCK")
WAIT_MS = 180_000  # one step may queue behind many others' reruns on 2 cores; an error only past this
QUESTION_TITLE = "A child who refuses homework"
TITLES = ("Listening Before Pushing", "Patience Before Homework", "Hearing The Child First",
          "Curiosity About Resistance", "Calm Evenings Matter")


@dataclass
class Walk:
    """One participant's way through: step timings, the step they were on, what went wrong."""

    index: int
    token: str
    pid: int
    timings: list[tuple[str, float]] = field(default_factory=list)
    step: str = "not started"
    finished: bool = False
    error: str | None = None
    page_exceptions: list[str] = field(default_factory=list)
    server_pid: int | None = None  # set for the participants walking alone: server CPU per step
    cpu: list[tuple[str, float]] = field(default_factory=list)
    rss_after: float | None = None  # the server's resident memory (MB) when this walk ended
    done_at: list[float] = field(default_factory=list)  # time.perf_counter() at the end of each step
    worker: str | None = None  # the app worker nginx sent this participant to (its X-Workbench-Worker)


async def settled(page) -> None:
    """Wait until Streamlit has run, to the end, every rerun the page asked for (tests/browser.py's
    `settled`, on the counts RUN_COUNTER_JS keeps in the page)."""
    await page.wait_for_function(SETTLED_JS, timeout=WAIT_MS)
    await page.locator("[data-testid='stApp'][data-test-script-state='notRunning']").wait_for(timeout=WAIT_MS)


async def shown(page, text: str | re.Pattern) -> None:
    await page.get_by_text(text).first.wait_for(timeout=WAIT_MS)


async def heading(page, title: str) -> None:
    await page.get_by_role("heading", name=title).wait_for(timeout=WAIT_MS)


async def choose(page, label: str, option: str) -> None:
    await page.get_by_role("combobox", name=label).click()
    await page.get_by_role("option", name=option, exact=True).click()


async def step(walk: Walk, page, name: str, act, arrive) -> None:
    """Do `act`, wait for `arrive` (the next step on screen) and the rerun to end; time the whole."""
    walk.step = name
    cpu = server_cpu(walk.server_pid) if walk.server_pid else 0.0
    t = time.perf_counter()
    await act()
    await arrive()
    await settled(page)
    walk.timings.append((name, time.perf_counter() - t))
    walk.done_at.append(time.perf_counter())
    if walk.server_pid:
        walk.cpu.append((name, server_cpu(walk.server_pid) - cpu))
    errors = page.locator("[data-testid='stException']")
    if await errors.count():
        walk.page_exceptions.append(f"{name}: {(await errors.first.inner_text())[:200]}")


async def round_size(page, pattern: str) -> int:
    text = await page.get_by_text(re.compile(pattern)).first.inner_text()
    return int(re.search(r"of (\d+)", text).group(1))


@contextlib.asynccontextmanager
async def outcome(walk: Walk, close) -> AsyncIterator[None]:
    """Record how the walk inside ended: finished, stopped by the time limit (re-raised), or the error
    (counted and reported, not raised); then `close()` the participant's browser context or connection."""
    try:
        yield
        walk.step = "done"
        walk.finished = True
    except asyncio.CancelledError:
        walk.error = f"stopped by the time limit at step '{walk.step}'"
        raise
    except Exception as exc:  # noqa: BLE001 - every failure is counted and reported
        first = str(exc).splitlines()[0][:300] if str(exc).strip() else ""
        walk.error = f"{type(exc).__name__} at step '{walk.step}': {first}"
    finally:
        try:
            await close()
        except Exception:  # noqa: BLE001 - the browser or connection may already be gone at the time limit
            pass


async def participate(browser, base: str, walk: Walk, delay: float) -> None:
    await asyncio.sleep(delay)
    context = await browser.new_context(viewport=VIEWPORT)
    await context.add_init_script(RUN_COUNTER_JS)
    context.set_default_timeout(WAIT_MS)
    page = await context.new_page()
    cont = page.get_by_role("button", name="Continue", exact=True)
    async with outcome(walk, context.close):
        await step(walk, page, "open invite link", lambda: page.goto(f"{base}/?invite={walk.token}"),
                   lambda: shown(page, "Step 1 of 10: Welcome"))

        async def consent():
            await page.get_by_text("I have read this and agree to take part").click()
            await settled(page)
            await cont.click()
        await step(walk, page, "consent", consent, lambda: shown(page, "Step 2 of 10: About you"))

        async def about_you():
            await choose(page, "Your age", ["18-29", "30-44", "45-59", "60+"][walk.index % 4])
            await choose(page, "Your political leaning", ["Left", "Centre", "Right"][walk.index % 3])
            await cont.click()
        await step(walk, page, "about you", about_you, lambda: shown(page, "Step 3 of 10: Choose a question"))

        async def question():
            await page.get_by_text(QUESTION_TITLE).click()
            await settled(page)
            await cont.click()
        await step(walk, page, "choose question", question, lambda: heading(page, "Your answer"))

        async def text_stage(text: str):
            area = page.get_by_role("textbox", name=re.compile("^(Your words|Your own lines)"))
            await area.fill(text)
            await area.press("Control+Enter")
            await settled(page)
            await cont.click()
        await step(walk, page, "interview: answer", lambda: text_stage(RESPONSE),
                   lambda: heading(page, "A moment from your life"))
        await step(walk, page, "interview: story", lambda: text_stage(STORY),
                   lambda: heading(page, "What you noticed"))
        await step(walk, page, "interview: attention", lambda: text_stage(POLICIES),
                   lambda: heading(page, "Name it"))

        async def name_it():
            title = page.get_by_role("textbox", name=re.compile(r"^Name \(up to"))
            await title.fill(TITLES[walk.index % len(TITLES)])
            await title.press("Enter")
            await settled(page)
            description = page.get_by_role("textbox", name=re.compile("^What it is about"))
            await description.fill(DESCRIPTION)
            await description.press("Control+Enter")
            await settled(page)
            await cont.click()
        await step(walk, page, "interview: name", name_it, lambda: heading(page, "Where it matters"))

        async def contexts():
            await choose(page, "Situations", CONTEXT)
            await page.keyboard.press("Escape")
            await settled(page)
            await cont.click()
        await step(walk, page, "interview: contexts", contexts, lambda: heading(page, "Your card"))

        async def confirm():
            keep = page.get_by_text("Keep it as it is", exact=True)
            for i in range(await keep.count()):
                await keep.nth(i).click()
                await settled(page)
            await page.get_by_role("button", name="Confirm my card").click()
        await step(walk, page, "confirm card", confirm, lambda: shown(page, "Step 5 of 10: Who became wiser?"))

        n = await round_size(page, r"^Question 1 of \d+")
        for i in range(n):
            async def wiser(i=i):
                await page.get_by_text(["Yes, wiser", "No", "Not sure"][(walk.index + i) % 3], exact=True).click()
                await page.get_by_role("button", name="Submit").click()
            nxt = f"Question {i + 2} of {n}" if i + 1 < n else "Step 6 of 10"
            await step(walk, page, "wiser-than answer", wiser, lambda nxt=nxt: shown(page, nxt))

        n = await round_size(page, r"^Value 1 of \d+")
        for i in range(n):
            label = ["Agree", "Disagree", "Pass / unsure"][(walk.index + i) % 3]
            nxt = re.compile(rf"^Value {i + 2} of {n}") if i + 1 < n else "Step 7 of 10"
            await step(walk, page, "endorse vote", lambda label=label: page.get_by_role("button", name=label, exact=True).click(),
                       lambda nxt=nxt: shown(page, nxt))

        n = await round_size(page, r"^Pair 1 of \d+")
        for i in range(n):
            nxt = re.compile(rf"^Pair {i + 2} of {n}") if i + 1 < n else "Step 9 of 10: Where you sit"
            await step(walk, page, "compare choice",
                       lambda i=i: page.get_by_role("button", name="This one").nth(i % 2).click(),
                       lambda nxt=nxt: shown(page, nxt))


def server_rss(pid: int) -> float:
    """The server's resident memory in MB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def server_cpu(pid: int) -> float:
    """User + system CPU seconds the server process has used so far: to the nanosecond while it is in a
    `CpuGroup` of its own, else from /proc/PID/stat in clock ticks (10 ms)."""
    group = CpuGroup.of.get(pid)
    if group is not None:
        return group.seconds()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


class CpuGroup:
    """A control group of the kernel's CPU accounting holding one server process (all its threads, and
    any it starts), so its CPU time reads in nanoseconds instead of /proc's 10 ms ticks, which a click of
    about 0.04 s cannot be measured with (the p50 of 0.04-0.05 s steps read as 0.04 or 0.05). Needs
    root and a writable cgroup (v1 `cpuacct`, or v2's `cpu.stat`); `CpuGroup.start` returns None where
    there is none, and the caller falls back to ticks and says so."""

    of: dict[int, CpuGroup] = {}
    HIERARCHIES = (Path("/sys/fs/cgroup/cpuacct"), Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup"))

    def __init__(self, pid: int, folder: Path) -> None:
        self.pid, self.folder = pid, folder
        self.v1 = (folder / "cpuacct.usage").exists()

    @classmethod
    def start(cls, pid: int) -> CpuGroup | None:
        for root in cls.HIERARCHIES:
            if not ((root / "cpuacct.usage").exists() or (root / "cgroup.controllers").exists()):
                continue
            folder = root / f"workbench-bench-{os.getpid()}-{pid}"
            try:
                folder.mkdir()
                (folder / "cgroup.procs").write_text(str(pid))
            except OSError:
                with contextlib.suppress(OSError):
                    folder.rmdir()
                continue
            group = cls.of[pid] = cls(pid, folder)
            return group
        return None

    def seconds(self) -> float:
        if self.v1:
            return int((self.folder / "cpuacct.usage").read_text()) / 1e9
        stat = (self.folder / "cpu.stat").read_text().splitlines()
        usage = next(line for line in stat if line.startswith("usage_usec"))
        return int(usage.split()[1]) / 1e6

    def stop(self) -> None:
        """Move what is left back to the parent group and remove this one."""
        CpuGroup.of.pop(self.pid, None)
        with contextlib.suppress(OSError):
            for pid in (self.folder / "cgroup.procs").read_text().split():
                with contextlib.suppress(OSError):
                    (self.folder.parent / "cgroup.procs").write_text(pid)
            self.folder.rmdir()


def wait_until_idle(root: int, *, every: float = 1.0, below: float = 0.02, limit: float = 180.0) -> float:
    """Wait until a server has stopped working on its own (its start: imports, and the embedding model
    `workbench serve` warms up in the background): its processes (`root` and what it started: workers,
    nginx) used under `below` CPU seconds in `every` seconds, so that a measurement counts the
    participants' steps only. Bounded by `limit`; returns the seconds waited."""
    started = time.monotonic()

    def cpu() -> float:
        every_process = list(processes())
        tree = {root}
        for _ in range(4):  # serve → streamlit / nginx → nginx workers
            tree |= {pid for pid, parent, _, _ in every_process if parent in tree}
        return sum(seconds for pid, _, _, seconds in every_process if pid in tree)

    before = cpu()
    while time.monotonic() - started < limit:
        time.sleep(every)
        now = cpu()
        if now - before < below:
            break
        before = now
    return time.monotonic() - started


def processes() -> Iterator[tuple[int, int, str, float]]:
    """Every process on the machine now: (pid, parent pid, command line, CPU seconds used so far), from /proc."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        yield int(entry.name), int(fields[1]), cmd, (int(fields[11]) + int(fields[12])) / TICK


class CpuSampler:
    """CPU seconds used by this process's descendants, by role (app server, browser, Playwright driver).

    Reads /proc every second and keeps each process's last utime + stime, so processes that exit
    between samples lose at most a second. Tells whether the app or the simulated participants'
    browser used the machine.
    """

    def __init__(self) -> None:
        self.last: dict[int, tuple[str, float]] = {}
        self.highest_load = os.getloadavg()[0]  # the machine is shared: how busy it got meanwhile
        self.own = 0.0  # CPU seconds the sampling thread itself used
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            started = time.thread_time()
            self.sample()
            self.highest_load = max(self.highest_load, os.getloadavg()[0])
            self.own += time.thread_time() - started

    def sample(self) -> None:
        parents, info = {}, {}
        for pid, parent, cmd, seconds in processes():
            parents[pid] = parent
            info[pid] = (cmd, seconds)
        me = os.getpid()
        for pid, (cmd, seconds) in info.items():
            p, depth = parents.get(pid), 0
            while p not in (None, 0, me) and depth < 50:
                p, depth = parents.get(p), depth + 1
            if p == me:
                role = ("app server" if "streamlit" in cmd else "browser (chromium)" if "chrom" in cmd
                        else "playwright driver" if "node" in cmd or "playwright" in cmd else "other")
                self.last[pid] = (role, seconds)

    def by_role(self) -> dict[str, float]:
        self.sample()
        out: dict[str, float] = defaultdict(float)
        for role, seconds in self.last.values():
            out[role] += seconds
        return dict(out)


async def drive(base: str, walks: list[Walk], ramp: float, limit: float) -> float:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
                                                   headless=True)
        t = time.perf_counter()
        tasks = [asyncio.create_task(participate(browser, base, w, ramp * i / max(len(walks) - 1, 1)))
                 for i, w in enumerate(walks)]
        done, pending = await asyncio.wait(tasks, timeout=limit)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        elapsed = time.perf_counter() - t
        await browser.close()
    return elapsed


def verify(path: Path, walks: list[Walk]) -> list[dict]:
    """Per participant: cards, planned vs stored answers per round, duplicates (from the DuckDB file)."""
    store = Store(path)
    try:
        rows = []
        for w in walks:
            steps = store.steps(w.pid)
            plans = Counter(s["step"] for s in steps if s["step"].startswith("plan:"))
            planned = {s["step"].removeprefix("plan:"): len(s["payload"].get("items", []))
                       for s in steps if s["step"].startswith("plan:")}
            wiser = store.wiser_answers_by(w.pid)
            votes = store.endorsements_by(w.pid)
            made = store.comparisons_by(w.pid)
            flow_steps = Counter(s["step"] for s in steps if not s["step"].startswith("plan:"))
            rows.append({
                "pid": w.pid, "finished": w.finished, "cards": len(store.cards_by(w.pid)),
                "planned": planned,
                "stored": {"wiser": len(wiser), "endorse": len(votes), "compare": len(made)},
                "dup_wiser": int(wiser.duplicated(["from_value_id", "to_value_id", "context_id"]).sum()),
                "dup_endorse": int(votes.duplicated(["canonical_id", "card_id"]).sum()),
                "dup_compare": int(made.assign(lo=made[["item_a", "item_b"]].min(axis=1),
                                               hi=made[["item_a", "item_b"]].max(axis=1))
                                   .duplicated(["lo", "hi"]).sum()) if len(made) else 0,
                "dup_plans": sum(c - 1 for c in plans.values()),
                "dup_steps": sum(c - 1 for c in flow_steps.values()),
            })
        return rows
    finally:
        store.close()


def check(row: dict) -> list[str]:
    """What is wrong with a finished participant's rows (empty when all is as planned)."""
    problems = []
    if row["cards"] != 1:
        problems.append(f"{row['cards']} cards")
    for name in ("wiser", "endorse", "compare"):
        if row["planned"].get(name) is None:
            problems.append(f"no {name} plan")
        elif row["stored"][name] != row["planned"][name]:
            problems.append(f"{name}: {row['stored'][name]} stored, {row['planned'][name]} planned")
        if row[f"dup_{name}"]:
            problems.append(f"{row[f'dup_{name}']} duplicate {name}")
    for key in ("dup_plans", "dup_steps"):
        if row[key]:
            problems.append(f"{row[key]} {key.replace('dup_', 'duplicate ')} events")
    return problems


def report(walks: list[Walk], rows: list[dict], elapsed: float, args) -> str:
    finished = [w for w in walks if w.finished]
    times = defaultdict(list)
    for w in walks:
        for name, seconds in w.timings:
            times[name].append(seconds)
    order = list(dict.fromkeys(name for w in walks for name, _ in w.timings))
    lines = [
        "## The web app under load (bench_app_load.py)",
        "",
        f"{len(walks)} participants at once (starts spread over {args.ramp:g} s) through the server as `make run`"
        " starts it (`workbench serve`), each in its own context of one headless Chromium (Playwright, asyncio), server and"
        " browser on the same machine. Each participant: consent, about you, the homework question, the guided"
        " interview to a confirmed card, then every question of the wiser-than, endorse and compare rounds of"
        f" the demo deliberation. Python {platform.python_version()}, {os.cpu_count()} cores, load average at"
        f" start {args.load_at_start:.1f}, {args.highest_load:.1f} at its highest during the run (shared machine)."
        f" Limit {args.minutes:g} min.",
        "",
        f"Finished: **{len(finished)} of {len(walks)}** in {elapsed:.0f} s of wall time"
        f" ({sum(len(w.timings) for w in walks):,} steps;"
        f" {sum(len(w.timings) for w in walks) / elapsed:.1f} steps/s overall).",
        "",
        "Seconds per step (from the click to the next step on screen, rerun finished):",
        "",
        "| step | count | p50 s | p95 s | max s |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in order:
        v = np.array(times[name])
        lines.append(f"| {name} | {len(v)} | {np.percentile(v, 50):.2f} | {np.percentile(v, 95):.2f} |"
                     f" {v.max():.2f} |")
    steps = sum(len(w.timings) for w in walks)
    cpu = args.cpu
    lines += ["", "CPU seconds used while the participants ran (from /proc, server start included): "
              + ", ".join(f"{role} {seconds:.0f} s" for role, seconds in sorted(cpu.items(), key=lambda x: -x[1]))
              + f"; app server {cpu.get('app server', 0.0) / max(steps, 1):.2f} CPU s per step, out of"
              f" {os.cpu_count() * elapsed:.0f} core-seconds of wall time."]
    per_walk = [sum(s for _, s in w.timings) for w in finished]
    if per_walk:
        lines += ["", f"Whole walk per finished participant: p50 {np.percentile(per_walk, 50):.0f} s,"
                  f" p95 {np.percentile(per_walk, 95):.0f} s."]
    errors = [w for w in walks if w.error]
    exceptions = [e for w in walks for e in w.page_exceptions]
    lines += ["", f"Errors: {len(errors)} participants stopped by an error or the limit;"
              f" {len(exceptions)} exceptions shown on a page."]
    for w in errors[:10]:
        lines.append(f"- participant {w.pid}: {w.error}")
    for e in exceptions[:10]:
        lines.append(f"- page exception: {e}")
    bad = {r["pid"]: check(r) for r in rows if r["finished"] and check(r)}
    planned = Counter(tuple(sorted(r["planned"].items())) for r in rows if r["finished"])
    lines += ["", "Checked in the DuckDB file after the server stopped (finished participants):", "",
              f"- exactly one card: {sum(r['cards'] == 1 for r in rows if r['finished'])} of {len(finished)}",
              "- answers stored = answers planned, every round: "
              f"{sum(all(r['stored'][k] == r['planned'].get(k) for k in r['stored']) for r in rows if r['finished'])}"
              f" of {len(finished)} (plans: "
              + "; ".join(f"{dict(p)} ×{n}" for p, n in planned.items()) + ")",
              "- duplicate wiser-than answers / votes / comparisons / plan or step events: "
              f"{sum(r['dup_wiser'] for r in rows)} / {sum(r['dup_endorse'] for r in rows)} /"
              f" {sum(r['dup_compare'] for r in rows)} / {sum(r['dup_plans'] + r['dup_steps'] for r in rows)}",
              f"- verdict: {'every finished participant is stored exactly as planned' if not bad else 'PROBLEMS'}"]
    for pid, problems in list(bad.items())[:10]:
        lines.append(f"  - participant {pid}: {', '.join(problems)}")
    unfinished = [r for r in rows if not r["finished"]]
    if unfinished:
        lines.append(f"- unfinished participants' cards: {[r['cards'] for r in unfinished]}")
    return "\n".join(lines) + "\n"


def walk_alone(servers: dict[str, tuple[str, int]], alone: dict[str, list[Walk]],
               profile: Path | None) -> list[tuple[str, int]]:
    """Participants one after another, each alone on its server, the servers taking turns (baseline,
    current, baseline, ...: whatever else the machine does then weighs on both alike), each server's CPU
    read around each step and its memory after each walk; with `profile`, py-spy samples the current
    server meanwhile. Returns py-spy's collapsed stacks ([] without a profile)."""
    for _, pid in servers.values():
        wait_until_idle(pid)
    groups = [CpuGroup.start(pid) for _, pid in servers.values()]
    CPU_SOURCE.update("cgroup" if group else "ticks" for group in groups)
    spy = None
    if profile is not None:
        # Non-blocking sampling (100 Hz), so the profiler barely slows the server it measures; only the
        # thread holding the GIL, so a sample is Python at work, not a thread waiting for its turn.
        spy = subprocess.Popen([str(PY_SPY), "record", "--pid", str(servers["current"][1]), "--nonblocking", "--gil",
                                "--full-filenames", "--format", "raw", "--output", str(profile)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for turn in zip(*(alone[name] for name in servers), strict=True):
            for name, walk in zip(servers, turn, strict=True):
                base, pid = servers[name]
                walk.server_pid = pid
                asyncio.run(drive(base, [walk], 0.0, 15 * 60))
                walk.rss_after = server_rss(pid)
    finally:
        for group in groups:
            if group is not None:
                group.stop()
        if spy is not None:
            spy.send_signal(signal.SIGINT)  # py-spy writes its file on Ctrl-C
            spy.wait(timeout=60)
    if profile is None or not profile.exists():
        return []
    if os.environ.get("BENCH_KEEP_PROFILE"):  # the raw py-spy stacks, for a closer look
        shutil.copy(profile, os.environ["BENCH_KEEP_PROFILE"])
    stacks = []
    for line in profile.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if count.isdigit():
            stacks.append((stack, int(count)))
    return stacks


PY_SPY = Path(sys.executable).parent / "py-spy"
#: How the lone walks' server CPU was read ("cgroup": nanoseconds; "ticks": /proc, 10 ms).
CPU_SOURCE: set[str] = set()


def where_time_goes(stacks: list[tuple[str, int]], top: int = 12) -> list[str]:
    """Markdown lines: the workbench functions (and the libraries they call) holding the server's samples."""
    total = sum(n for _, n in stacks)
    if not total:
        return []
    inclusive: dict[str, int] = defaultdict(int)
    leaf: dict[str, int] = defaultdict(int)
    self_time: dict[str, int] = defaultdict(int)
    for stack, n in stacks:
        frames = stack.split(";")
        seen = set()
        for frame in frames:
            match = re.match(r"(.+?) \((.+?)(?::\d+)?\)$", frame.strip())
            if not match:
                continue
            function, filename = match.groups()
            if "/workbench/" in filename:
                name = f"{filename.split('/workbench/', 1)[1]}:{function}"
                if name not in seen:
                    inclusive[name] += n
                    seen.add(name)
        last = re.match(r"(.+?) \((.+?)(?::\d+)?\)$", frames[-1].strip())
        if last:
            function, filename = last.groups()
            package = (filename.split("site-packages/", 1)[1].split("/", 1)[0] if "site-packages/" in filename
                       else "workbench" if "/workbench/" in filename else "python")
            leaf[package] += n
            short = filename.split("site-packages/", 1)[-1].split("/workbench/", 1)[-1]
            self_time[f"{short}:{function}"] += n
    lines = [f"Where the current server's Python time went during the lone walks (py-spy, {total} samples at 100 Hz of"
             " the thread holding the GIL):", "",
             "| workbench function (inclusive) | share of samples |", "|---|---:|"]
    for name, n in sorted(inclusive.items(), key=lambda x: -x[1])[:top]:
        lines.append(f"| `{name}` | {100 * n / total:.0f}% |")
    lines += ["", "Innermost frame by package (self time): " + ", ".join(
        f"{package} {100 * n / total:.0f}%" for package, n in sorted(leaf.items(), key=lambda x: -x[1])[:8]) + ".",
        "", "| innermost function (self time) | share of samples |", "|---|---:|"]
    for name, n in sorted(self_time.items(), key=lambda x: -x[1])[:top]:
        lines.append(f"| `{name}` | {100 * n / total:.0f}% |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=20)
    parser.add_argument("--ramp", type=float, default=10.0, help="seconds over which the participants start")
    parser.add_argument("--minutes", type=float, default=15.0, help="stop everything after this long")
    parser.add_argument("--keep-db", type=Path, help="copy the DuckDB file here afterwards")
    parser.add_argument("--alone", type=int, default=8, help="participants walking alone, one after another,"
                        " on each of the baseline and the current server (CPU per step, memory)")
    parser.add_argument("--baseline", default=BASELINE, help="the git commit whose server is the baseline")
    parser.add_argument("--profile", action="store_true", help="sample the server with py-spy during the lone walk"
                        " (pip install py-spy)")
    args = parser.parse_args()
    reason = chromium_missing_reason()
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    if args.profile and not PY_SPY.exists():
        print(f"cannot profile: {PY_SPY} not found (.venv/bin/pip install py-spy)", file=sys.stderr)
        return 2
    args.load_at_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-app-load-") as tmp:
        path, prepared = Path(tmp) / "app_load.duckdb", Path(tmp) / "prepared.duckdb"
        store = Store(prepared)
        try:
            store.import_bundle(simulate(load_deliberation(config.DEMO_DELIBERATION),
                                         load_world(config.DATA / "demo_values.yaml"), 12, seed=1))
            invites = store.create_invites("demo", args.participants + args.alone)
        finally:
            store.close()  # the server must be the file's only writer
        walks = [Walk(i, token, pid) for i, (pid, token) in enumerate(invites[:args.participants])]
        alone = {name: [Walk(args.participants + i, token, pid)
                        for i, (pid, token) in enumerate(invites[args.participants:])]
                 for name in ("baseline", "current")}
        env = {"WORKBENCH_LLM_BASE_URL": None}
        # Each server of the lone walks gets its own fresh copy of the same database (the current one
        # not the file the participants at once have just filled).
        baseline_db, current_db = Path(tmp) / "baseline.duckdb", Path(tmp) / "current.duckdb"
        for copy in (baseline_db, current_db, path):
            shutil.copy(prepared, copy)
        baseline_code = checkout(args.baseline, Path(tmp) / "baseline-code")
        elapsed, args.cpu, args.highest_load = 0.0, {}, os.getloadavg()[0]
        if walks:  # --participants 0: only the lone walks
            with CpuSampler() as cpu, workbench_server(path, env) as (base, server):
                elapsed = asyncio.run(drive(base, walks, args.ramp, args.minutes * 60))
                args.cpu, args.highest_load = cpu.by_role(), cpu.highest_load
        # Fresh server processes, memory from their start. The baseline in its own folder: `python -m
        # streamlit` puts the working directory first on sys.path.
        with (workbench_server(baseline_db, {**env, "PYTHONPATH": str(baseline_code)},
                               cwd=baseline_code) as (baseline_base, baseline_server),
              workbench_server(current_db, env) as (current_base, current_server)):
            args.baseline_rss_start = server_rss(baseline_server.pid)
            args.current_rss_start = server_rss(current_server.pid)
            args.stacks = walk_alone({"baseline": (baseline_base, baseline_server.pid),
                                      "current": (current_base, current_server.pid)}, alone,
                                     Path(tmp) / "profile.txt" if args.profile else None)
        rows = verify(path, walks) + verify(current_db, alone["current"])
        baseline_rows = verify(baseline_db, alone["baseline"])
        if args.keep_db:
            shutil.copy(path, args.keep_db)
    text = (report(walks, rows[:len(walks)], elapsed, args) if walks else "") + solo_report(
        alone, {"baseline": baseline_rows, "current": rows[len(walks):]}, args)
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    ok = all(w.finished for w in [*walks, *alone["current"], *alone["baseline"]]) and not any(
        check(r) for r in [*rows, *baseline_rows])
    return 0 if ok else 1


#: The baseline server of the lone walks: main before the second round of issue 15's "less work per click"
#: (the first round, against 7effc81, took the p50 from 0.525 to 0.080 s; an older commit cannot open a
#: database of today's schema).
BASELINE = "e4b0f9b"


def checkout(ref: str, into: Path) -> Path:
    """The `workbench/` package as commit `ref` has it, extracted under `into` (for PYTHONPATH)."""
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "workbench"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    found = subprocess.run([sys.executable, "-c", "import workbench; print(workbench.__file__)"], cwd=into,
                           env={**os.environ, "PYTHONPATH": str(into)}, capture_output=True, text=True, check=True)
    assert found.stdout.strip().startswith(str(into)), f"the baseline imports {found.stdout.strip()}, not its own code"
    return into


def cpu_source() -> str:
    if CPU_SOURCE == {"cgroup"}:
        return "the kernel's CPU accounting of a control group holding only the server, in nanoseconds"
    if CPU_SOURCE == {"ticks"}:
        return "/proc, 10 ms ticks: no control group could be made here (needs root), so a p50 reads 0.04 or 0.05"
    return "a control group for some servers and /proc's 10 ms ticks for others"


def solo_report(alone: dict[str, list[Walk]], rows: dict[str, list[dict]], args) -> str:
    def cpu(name: str) -> list[float]:
        return [seconds for walk in alone[name] for _, seconds in walk.cpu]

    def state(name: str) -> str:
        walks = alone[name]
        good = sum(w.finished and not check(r) for w, r in zip(walks, rows[name], strict=True))
        return f"{good} of {len(walks)} finished and stored as planned"

    lines = ["", "### Server CPU per participant step, before and after (participants alone)", "",
             f"{args.alone} more participants walked the same way one after another, each alone on the server:"
             f" the baseline, the code at commit `{args.baseline}` ({state('baseline')}), and the"
             f" current code ({state('current')}), taking turns (baseline, current, baseline, ...), so that"
             " whatever else the machine did weighed on both alike; each server started with `workbench serve`"
             " on its own fresh copy of the same database. The server's CPU time (user + system; "
             + cpu_source() + ") read before and"
             " after each step (the click to the next step on screen, its rerun finished; a step is one click,"
             " or a few where the participant also types or ticks).", "",
             "| server | steps | p50 CPU s | p95 CPU s | mean CPU s |", "|---|---:|---:|---:|---:|"]
    for name in ("baseline", "current"):
        every = cpu(name)
        if every:
            lines.append(f"| {name} | {len(every)} | {np.percentile(every, 50):.3f} | {np.percentile(every, 95):.3f}"
                         f" | {np.mean(every):.3f} |")
    before, after = cpu("baseline"), cpu("current")
    if before and after:
        lines += ["", f"Server CPU per step, current: **p50 {np.percentile(after, 50):.3f} s**"
                  f" (baseline {np.percentile(before, 50):.3f} s, {np.percentile(before, 50) / max(np.percentile(after, 50), 1e-9):.1f}×"
                  " less), target for issue 15 item 2: p50 <= 0.05 s."]
    per_step: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for name in ("baseline", "current"):
        for walk in alone[name]:
            for step_name, seconds in walk.cpu:
                per_step[step_name][name].append(seconds)
    lines += ["", "| step | count | baseline CPU s (mean) | current CPU s (mean) |", "|---|---:|---:|---:|"]
    for step_name, by in per_step.items():
        lines.append(f"| {step_name} | {len(by['current'])} | {np.mean(by['baseline']) if by['baseline'] else float('nan'):.3f}"
                     f" | {np.mean(by['current']) if by['current'] else float('nan'):.3f} |")
    lines += ["", "Server memory (VmRSS, MB) at start and after each lone participant, i.e. every"
              f" {len(alone['current'][0].cpu) if alone['current'] and alone['current'][0].cpu else '~22'} steps"
              " (the current server runs without Streamlit's full garbage collection after every run,"
              " `runner.postScriptGC = false`; the baseline with it):", ""]
    for name in ("baseline", "current"):
        trail = [getattr(args, f"{name}_rss_start")] + [w.rss_after for w in alone[name]]
        lines.append(f"- {name}: " + " → ".join(f"{m:.0f}" for m in trail if m is not None))
    for name in ("baseline", "current"):
        for walk in alone[name]:
            if walk.error or walk.page_exceptions:
                lines.append(f"- {name}, participant {walk.pid}: {walk.error or ''} {' '.join(walk.page_exceptions)[:300]}")
    if args.stacks:
        lines += [""] + where_time_goes(args.stacks)
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
