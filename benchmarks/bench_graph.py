"""Benchmark: moral-graph summary + PageRank on 100k synthetic wiser-than answers over 1,000 values.

Times `summarize_mge` and `summarize_default` (both include their PageRank) against a baseline
run in the same process: a bare `groupby(["context", "from_id", "to_id"]).size()` over the same
answers — the least any summary must do. Prints a Markdown section and writes it to
`benchmarks/results/graph.md`. Target: each mode under 2 s on the 2-core machine.

Run: .venv/bin/python benchmarks/bench_graph.py
"""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from workbench.moralgraph import summarize_default, summarize_mge  # noqa: E402

N_ANSWERS = 100_000
N_VALUES = 1_000
N_CONTEXTS = 12
N_PARTICIPANTS = 5_000
REPEATS = 5
SEED = 20231018


def synthetic_answers(seed: int, *, n_pairs: int | None) -> pd.DataFrame:
    """Answers drawn from a latent 'wisdom' score per value and context.

    `n_pairs` candidate ordered pairs are shown (like the study's hypothesis list), so a pair gets
    ~N_ANSWERS / n_pairs answers; None shows uniformly random pairs (almost every pair distinct:
    the worst case for grouping, and almost no kept edges).
    """
    rng = np.random.default_rng(seed)
    score = rng.normal(size=(N_CONTEXTS, N_VALUES))
    if n_pairs is None:
        a = rng.integers(0, N_VALUES, N_ANSWERS)
        b = (a + rng.integers(1, N_VALUES, N_ANSWERS)) % N_VALUES
        ctx = rng.integers(0, N_CONTEXTS, N_ANSWERS)
    else:
        pa = rng.integers(0, N_VALUES, n_pairs)
        pb = (pa + rng.integers(1, N_VALUES, n_pairs)) % N_VALUES
        pc = rng.integers(0, N_CONTEXTS, n_pairs)
        pick = rng.integers(0, n_pairs, N_ANSWERS)
        # a fifth of the answers see the move the other way round, as reverse answers
        flip = rng.random(N_ANSWERS) < 0.2
        a = np.where(flip, pb[pick], pa[pick])
        b = np.where(flip, pa[pick], pb[pick])
        ctx = pc[pick]
    p_up = 1 / (1 + np.exp(-2 * (score[ctx, b] - score[ctx, a])))
    u = rng.random(N_ANSWERS)
    unsure = rng.random(N_ANSWERS) < 0.2
    answer = np.where(unsure, "not_sure", np.where(u < p_up, "upgrade", "no_upgrade"))
    return pd.DataFrame({
        "participant_id": rng.integers(0, N_PARTICIPANTS, N_ANSWERS),
        "from_id": a,
        "to_id": b,
        "context": np.array([f"When context {i}" for i in range(N_CONTEXTS)])[ctx],
        "answer": answer,
        "created_at": pd.Timestamp("2023-09-01") + pd.to_timedelta(rng.integers(0, 40 * 86_400, N_ANSWERS), "s"),
    })


def best_of(fn: Callable[[], object], repeats: int = REPEATS) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return min(times), result


def main() -> str:
    lines = [
        "## Moral graph (bench_graph.py)",
        "",
        f"{N_ANSWERS:,} synthetic answers, {N_VALUES:,} values, {N_CONTEXTS} contexts, "
        f"{N_PARTICIPANTS:,} participants; best of {REPEATS}; Python {platform.python_version()}, "
        f"pandas {pd.__version__}, numpy {np.__version__}. Baseline: "
        "`answers.groupby(['context', 'from_id', 'to_id']).size()` in the same run. "
        f"Load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
        "(the machine is shared, so absolute seconds are noisy; the ratios less so).",
        "",
        "| scenario | step | seconds | × baseline | kept edges | pairs |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for label, n_pairs in (("5,000 candidate pairs (~20 answers each)", 5_000), ("random pairs (worst case)", None)):
        answers = synthetic_answers(SEED, n_pairs=n_pairs)
        base, _ = best_of(lambda a=answers: a.groupby(["context", "from_id", "to_id"]).size())
        t_mge, g_mge = best_of(lambda a=answers: summarize_mge(a, until="2023-10-18"))
        t_def, g_def = best_of(lambda a=answers: summarize_default(a, until="2023-10-18"))
        lines.append(f"| {label} | baseline groupby.size | {base:.3f} | 1.0 | | |")
        lines.append(f"| {label} | summarize_mge (+PageRank) | {t_mge:.3f} | {t_mge / base:.1f} | "
                     f"{len(g_mge.edges):,} | {len(g_mge.pairs):,} |")
        lines.append(f"| {label} | summarize_default (+PageRank ×{len(g_def.page_rank_by_context) + 1}) | "
                     f"{t_def:.3f} | {t_def / base:.1f} | {len(g_def.edges):,} | {len(g_def.pairs):,} |")
    lines += ["", "Target: under 2 s per mode on the 2-core machine (met when every `seconds` cell is < 2).", ""]
    text = "\n".join(lines)
    out = ROOT / "benchmarks" / "results" / "graph.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    print(text)
    return text


if __name__ == "__main__":
    main()
