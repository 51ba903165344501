"""Write benchmarks/RESULTS.md from the sections each benchmark leaves in benchmarks/results/."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = ["graph", "dedup", "polis_groups", "prefs", "store_load", "serve", "app_load", "workers", "interview"]

INTRO = """# Benchmark results

Measured on this project's 2-core, 24 GB machine, which other work shares: absolute seconds are
noisy, so every speed target is also reported as a ratio to a baseline run in the same process.
Run everything with `make bench` (or one script: `.venv/bin/python benchmarks/bench_<name>.py`);
each script rewrites its section in `benchmarks/results/`, and `make bench` rebuilds this file.

| benchmark | target | result |
|---|---|---|
| moral graph summary + PageRank, 100k answers / 1,000 values | < 2 s | 0.17 s (MGE mode), 0.49-0.58 s (default mode) |
| whole dedup (card + policy vectors, two-stage decision) vs embedding alone, 625 MGE cards | <= 2x | 0.79x (1.05x in an earlier, busier run) |
| dedup re-run after one new card | 1 text embedded | 1 |
| dedup quality, MGE cards, held-out odd ids (proxy built from text identity, not embeddings) | ARI >= 0.90 vs the real mapping (checked outside) | covered cards 0.997 (one-stage 0.988, naive 0.989); 'scattered' 0.861 (one-stage 0.853, ceiling 0.870); 178 values vs the study's 108 |
| Polis groups vs Polis's own `group-id`, median ARI on held-out conversations (split B, 4 of 9), through `workbench import polis` + `workbench groups` | >= 0.80, ahead of red-dwarf and a baseline | 0.817 replay (red-dwarf 0.552, baseline 0.558); all nine: 0.898 (0.619, 0.318) |
| Polis replay on football-concussions (1,487 participants, 13,547 updates) | < 60 s | incremental replay: 40.0 s CPU, 620 s wall at load 20-27 (177x the single update in the same run; before: 80.7 s CPU, 415 s wall, 374x); 25.6 s CPU vs 58.8 s before at load 2-14: wall target not shown on this machine |
| Bradley-Terry vs choix, max abs delta theta | equal | 4.7e-7, time ratio 0.90 (point fit) |
| latent mixture, 200k comparisons / 1,000 items / 3 planted classes, K = 1..6 | < 30 s, < 2 GB, K = 3, ARI >= 0.95 | 19.7 s, 349 MB, K = 3, ARI 1.000 |
| store load: 200 writer threads for 20 s through the use-case methods (cards, answers, votes, comparisons), PostgreSQL vs DuckDB in the same run | PostgreSQL >= 3x DuckDB's writes/s; every acknowledged write present once on both | PostgreSQL 8,998 writes, 436/s (p50/p95 333/1,008 ms); DuckDB 234 writes, 6/s (p50 31.6 s): 73.6x; 0 lost or duplicated on both; machine load average 20-26 on 2 cores |
| guided interview, offline: 122 answers over 27 questions (held_out_4 and held_out_5: 40 over 10 questions written before the sixth round, read blind by two readers) | >= 4 suggestions, >= 90% pass the policy checks, 0 story fragments, p95 <= 300 ms; suggestions a participant would sign | 4-8 suggestions, 100% (861/861) pass, 0 fragments; p95 126 ms (`--repeats 1`, quiet machine): met; read blind (both readers agree, kappa 0.74-0.91), main's drafter before -> after the sixth round (22 more library domains, off-question cap) in the same run: held_out_4 suggestions signable 14/142 -> 21/138, held_out_5 (domains its writer chose) 11/154 -> 17/157 (11%); drafted cards signable 0/20 and 0/20 for both; relevance does not separate signable lines (AUC 0.55-0.56), so the page no longer pre-ticks library lines. Read by the authors of the changes: held_out_3 30/117 -> 38/116, cards 7/18 -> 7/18: done-when not met |
| serving: idle `workbench serve` (as `make run` starts it), 60 s once it has finished starting | < 2% of a core | 0.30% (the old command, same run: 0.80%); Streamlit's own polling of config and secrets files is stopped |
| serving: burst of 200 sessions opening `?join=demo` at once, health watched | every session gets its page, health answers throughout | 200 of 200; time to first page p95 3.7 s (p50 3.7 s; old command 2.8 / 1.6 s), 0.02 CPU s per page for both; 8 of 8 health checks answered, slowest 0.05 s |
| serving: SIGTERM with 20 sessions open | no process left, port free within 5 s | exited after 0.72 s, 0 processes left, port free |
| many app workers: 2 vs 1 behind nginx on PostgreSQL, 40 participants as light Streamlit-protocol clients (benchmarks/stream_client.py, no browser), runs 1, 2, 2, 1 (`bench_workers.py --client protocol --participants 40 --ramp 5 --minutes 15 --rounds 2`) | >= 1.6x steps/s, 0 lost answers | **1.44x** (59.9 vs 41.5 steps/s; 1.41x while all 40 were walking), 0 lost or duplicated, on the machine with no other work (load 4-8 from the benchmark itself): not met. The one worker used 1.10 cores (the event loop and work outside the GIL); PostgreSQL, nginx and the clients (0.001 CPU s per step) left 1.70 cores for two workers, so at most ~1.55x was reachable on 2 cores; steps per core-second were the same with 1 and 2 workers (37.8, 39.3: no lock). 1.6x needs 3+ cores. An earlier run with other people's work on the machine (load 5-14): 0.88x |
| app load: real participants in Chromium, card + all rounds | >= 20, zero lost or duplicated | 30 of 30 finished, 0 errors, 0 lost or duplicated; per step p50 16-98 s with the machine at load 5-42 (latest run: 10 of 10, 0 lost or duplicated, 0.11 app-server CPU s per step against 0.49 before) |
| app load: server CPU per participant step, participants alone (p50), current vs main at e4b0f9b in the same run, the two servers taking turns walk by walk (`bench_app_load.py --participants 10 --ramp 5 --alone 6`), CPU from a control group in nanoseconds | <= 0.05 s | **0.067 s** vs 0.088 s (1.3x less; judging clicks 0.052-0.060 s) in the run kept here; the same code measured 0.050 s (baseline 0.066 s, judging clicks 0.041-0.044 s) an hour earlier with `--profile`, and 0.057 and 0.064 s in between: the machine's speed moved that much within the hour (both servers alike), so the target is met only when the machine is at its fastest: not robustly met. Current is 1.1-1.3x below the baseline in every run. Memory with `runner.postScriptGC` off and `gc.freeze` after the warm-up stays bounded (see the section) |

Caveats worth reading before quoting a number: the dedup ARI is against a *proxy* (the study's
mapping is withheld; the dedup section says how the proxy is built, which 12% of cards it cannot
place, and why the pessimistic 'scattered' figure is the one that resembles the real 0.856); the Polis replay misses Polis's groups on scoop-hivemind.ubi (0.05, Polis
shows 4 groups) and football-concussions (0.43, k = 5 against Polis's 2), and only split B of the Polis
conversations was held out (see the protocol in the Polis section).
The interview's pass rate is a weak proxy: the checks are ours and the library was written to pass
them. Read blind by two readers (who had not seen the code, the library or each other's labels) on ten
questions written before the sixth round's changes, about one suggested line in seven to ten would be
signed by the participant who wrote the answer, and no drafted card would (0 of 40, with main's
drafter before the round and after it); the same kind of reading by the people who made each change,
on questions that guided them, gave two to three times more (held_out_3: 38 of 116 lines, 7 of 18
cards). The library fits the questions it was written for and little else. All cards and the reading
protocol are in the interview section.
"""


def main() -> None:
    parts = [INTRO]
    for name in ORDER:
        path = HERE / "results" / f"{name}.md"
        if path.exists():
            parts.append(path.read_text().strip())
    (HERE / "RESULTS.md").write_text("\n\n".join(parts) + "\n")
    print(f"wrote {HERE / 'RESULTS.md'}")


if __name__ == "__main__":
    main()
