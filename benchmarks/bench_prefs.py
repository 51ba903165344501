"""Benchmark the preference models: pooled BT against choix, and the latent-class mixture at scale.

Run: ``.venv/bin/python benchmarks/bench_prefs.py`` (about a minute on 2 cores). Prints a Markdown
section and writes it to ``benchmarks/results/prefs.md``. Data are simulated (seeded), so the
numbers other than timings are reproducible; timings are medians of repeated runs in this process
and the machine's load average is printed beside them because the machine is shared.
"""

from __future__ import annotations

import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

import choix
import numpy as np
from sklearn.metrics import adjusted_rand_score
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the test-only simulator

from simulate import simulate_planted_classes  # noqa: E402

from workbench import prefs  # noqa: E402
from workbench.prefs.data import encode  # noqa: E402
from workbench.prefs.newton import fit_map  # noqa: E402


def _median_time(fn, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def bench_bt_vs_choix(repeats: int = 5) -> list[str]:
    n_items, n_comparisons = 1000, 100_000
    comparisons, _, _ = simulate_planted_classes(
        n_items=n_items, n_classes=1, n_comparisons=n_comparisons, per_participant=(100, 200), seed=11
    )
    enc = encode(prefs.validate_comparisons(comparisons))
    n = len(enc.items)

    def choix_fit():
        counts = np.zeros((n, n))
        np.add.at(counts, (enc.win, enc.lose), enc.weight)
        return choix.ilsr_pairwise_dense(counts, alpha=0.0, tol=1e-10)

    def our_point_fit():
        theta, _ = fit_map(enc.win, enc.lose, enc.weight, n, tau=1e-6)
        return theta

    def our_full_fit():
        return prefs.bradley_terry(comparisons, alpha=1e-6)

    def run(threads: int | None) -> list[str]:
        # Interleave the three so that load changes on the shared machine hit them alike.
        t_choix, t_point, t_full = [], [], []
        reference = point = full = None
        with threadpool_limits(limits=threads, user_api="blas"):
            for _ in range(repeats):
                t, reference = _median_time(choix_fit, 1)
                t_choix.append(t)
                t, point = _median_time(our_point_fit, 1)
                t_point.append(t)
                t, full = _median_time(our_full_fit, 1)
                t_full.append(t)
        reference = reference - reference.mean()
        delta_point = float(np.max(np.abs((point - point.mean()) - reference)))
        delta_full = float(np.max(np.abs(full.theta - reference)))
        c, p, f = statistics.median(t_choix), statistics.median(t_point), statistics.median(t_full)
        label = "default BLAS threads" if threads is None else f"BLAS limited to {threads} thread"
        return [
            f"| choix `ilsr_pairwise_dense` | {label} | {c:.3f} | 1.00 | — |",
            f"| ours, point fit (Newton, dense Cholesky) | {label} | {p:.3f} | {p / c:.2f} | {delta_point:.1e} |",
            f"| ours, `bradley_terry` (validation + point fit + Laplace intervals) | {label} | {f:.3f} | "
            f"{f / c:.2f} | {delta_full:.1e} |",
        ]

    return [
        f"### Pooled Bradley–Terry vs choix ({n_items:,} items, {len(comparisons):,} comparisons)",
        "",
        "choix baseline: `ilsr_pairwise_dense` (ML, alpha=0) on the count matrix, matrix build included. "
        "Ours at prior precision 1e-6 (≈ ML). Median of "
        f"{repeats} interleaved runs, once with default BLAS threading and once with BLAS limited to one "
        "thread (both fits use LAPACK; on a busy 2-core machine two BLAS threads often contend). "
        f"1-minute load average at start: {os.getloadavg()[0]:.1f}.",
        "",
        "| fit | threads | seconds | ratio ours / choix | max abs Δθ vs choix |",
        "|---|---|---:|---:|---:|",
        *run(None),
        *run(1),
        "",
    ]


def bench_mixture() -> list[str]:
    n_items, n_classes, n_comparisons = 1000, 3, 200_000
    comparisons, truth, _ = simulate_planted_classes(
        n_items=n_items, n_classes=n_classes, n_comparisons=n_comparisons, per_participant=(100, 200), seed=0
    )
    load = os.getloadavg()[0]
    wall0, cpu0 = time.perf_counter(), time.process_time()
    fit = prefs.latent_mixture(comparisons, max_k=6, seed=0)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux
    labels = dict(zip(fit.participants, fit.component, strict=True))
    ari = adjusted_rand_score(truth["true_class"], truth["participant_id"].map(labels))
    bic = ", ".join(f"K={k}: {v:,.0f}" for k, v in sorted(fit.bic.items()))
    ok = "yes" if (wall < 30 and peak_mb < 2048 and fit.k == n_classes and ari >= 0.95) else "NO"
    return [
        f"### Latent-class mixture ({n_items:,} items, {len(comparisons):,} comparisons, "
        f"{len(truth):,} participants, {n_classes} planted classes)",
        "",
        "`latent_mixture(comparisons, max_k=6, seed=0)`: K = 1…6 by BIC, 3 seeded restarts per K "
        "(defaults). Peak memory is the whole benchmark process's max RSS (includes the BT section "
        "and the simulation).",
        "",
        "| measure | value | target |",
        "|---|---:|---|",
        f"| wall seconds (K = 1…6 in total) | {wall:.1f} | < 30 |",
        f"| CPU seconds | {cpu:.1f} | |",
        f"| peak memory (max RSS, MB) | {peak_mb:,.0f} | < 2,048 |",
        f"| chosen K | {fit.k} | {n_classes} |",
        f"| participant recovery (ARI) | {ari:.4f} | ≥ 0.95 |",
        f"| EM iterations (chosen K) | {fit.iterations} | |",
        f"| 1-minute load average at start | {load:.1f} | (2 cores, shared) |",
        "",
        f"BIC: {bic}.",
        "",
        f"All targets met: **{ok}**.",
        "",
    ]


def main() -> None:
    lines = [
        "## Preference models (`workbench.prefs`)",
        "",
        f"Python {platform.python_version()}, numpy {np.__version__}, {os.cpu_count()} CPUs, shared with "
        "other jobs (timings vary run to run by up to ~2×; the ratios are what to read). "
        "Command: `.venv/bin/python benchmarks/bench_prefs.py`.",
        "",
    ]
    lines += bench_bt_vs_choix()
    lines += bench_mixture()
    text = "\n".join(lines)
    print(text)
    out = ROOT / "benchmarks" / "results" / "prefs.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
