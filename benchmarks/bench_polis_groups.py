"""How closely `workbench.groups.opinion_groups` reproduces Polis's own opinion groups.

For every conversation under ../shared/datasets/polis/ this scores our groups against Polis's
exported `group-id` with the adjusted Rand index, over the participants both Polis and we clustered,
and times the pipeline. Three pipelines run in the same process:
- polis-faithful: votes on moderated-out statements kept and zeroed, as Polis does (the default
  way the benchmark calls `opinion_groups`);
- caller-filtered: moderated-out statements dropped before the call (the brief's input contract);
- baseline: plain mean-imputed PCA + k-means (k = 2..5 by silhouette) on the same participants.
Run: .venv/bin/python benchmarks/bench_polis_groups.py
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score, silhouette_score

from workbench import analyses
from workbench.groups import opinion_groups
from workbench.io.polis import latest_votes, polis_bundle, read_polis_export
from workbench.store import Store

ROOT = Path(__file__).resolve().parents[1]
POLIS = ROOT.parent / "shared" / "datasets" / "polis"
OUT = ROOT / "benchmarks" / "results" / "polis_groups.md"

ATTRIBUTION = (
    "Data was gathered using the Polis software (compdemocracy.org/polis) and is sub-licensed under "
    "CC BY 4.0 with Attribution to The Computational Democracy Project. The data and more information "
    "about how the data was collected can be found at the following link(s): "
    "https://compdemocracy.org/case-studies/2014-seattle-15-per-hour, "
    "https://compdemocracy.org/case-studies/2017-brexit-consensus, "
    "https://compdemocracy.org/case-studies/2016-canadian-electoral-reform, "
    "https://compdemocracy.org/case-studies/2017-scoop-hivemind-affordable-housing, "
    "https://compdemocracy.org/case-studies/2019-scoop-hivemind-biodiversity, "
    "https://compdemocracy.org/case-studies/2018-scoop-hivemind-taxes"
)


def baseline_groups(votes: pd.DataFrame, seed: int = 0) -> pd.Series:
    """Plain PCA + k-means: mean-imputed matrix, 2 components, k = 2..5 by silhouette."""
    matrix = votes.pivot(index="participant_id", columns="statement_id", values="vote")
    matrix = matrix[matrix.notna().sum(axis=1) >= min(7, matrix.shape[1])]
    xy = PCA(2, random_state=seed).fit_transform(matrix.fillna(matrix.mean()).fillna(0).to_numpy())
    best = None
    for k in range(2, 6):
        labels = KMeans(k, n_init=10, random_state=seed).fit_predict(xy)
        score = silhouette_score(xy, labels)
        if best is None or score > best[0]:
            best = (score, labels)
    return pd.Series(best[1], index=matrix.index)


def ari_on_shared(theirs: pd.Series, ours: pd.Series) -> tuple[float, int]:
    ours = ours.reindex(theirs.index)
    both = ours.notna() & (ours >= 0)
    return adjusted_rand_score(theirs[both], ours[both]), int(both.sum())


def groups_via_import(export, folder: Path) -> pd.Series:
    """The product's own path: import the export into a DuckDB file, then `workbench groups`."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "bench.duckdb") as store:
        store.import_bundle(polis_bundle(export, deliberation_id="bench"))
        _, table = analyses.opinion_groups(store, "bench", seed=0)
    return table.set_index(table["source_id"].astype(str))["group"]


def main() -> None:
    rows = []
    for folder in sorted(p for p in POLIS.iterdir() if p.is_dir()):
        export = read_polis_export(folder)
        votes = latest_votes(export.votes).rename(columns={"comment_id": "statement_id"})
        moderated = export.moderated_out()
        theirs = export.participants.dropna(subset=["polis_group"]).set_index("participant_id")["polis_group"]

        start = time.perf_counter()
        faithful = opinion_groups(votes, seed=0, moderated_out=moderated)
        seconds = time.perf_counter() - start
        filtered_votes = votes[~votes["statement_id"].isin(moderated)]
        start = time.perf_counter()
        filtered = opinion_groups(filtered_votes, seed=0)
        seconds_filtered = time.perf_counter() - start
        start = time.perf_counter()
        baseline = baseline_groups(filtered_votes)
        seconds_baseline = time.perf_counter() - start

        ari_import, _ = ari_on_shared(theirs, groups_via_import(export, folder))
        ari, n_both = ari_on_shared(theirs, faithful.group_of())
        ari_filtered, _ = ari_on_shared(theirs, filtered.group_of())
        ari_baseline, _ = ari_on_shared(theirs, baseline)
        rows.append(
            {
                "conversation": folder.name,
                "ARI": ari,
                "ARI via import": ari_import,
                "k": faithful.k,
                "Polis k": theirs.nunique(),
                "compared": f"{n_both}/{len(theirs)}",
                "ARI caller-filtered": ari_filtered,
                "k caller-filtered": filtered.k,
                "ARI baseline": ari_baseline,
                "seconds": seconds,
                "seconds caller-filtered": seconds_filtered,
                "seconds baseline": seconds_baseline,
            }
        )
    table = pd.DataFrame(rows)
    medians = {c: float(np.median(table[c])) for c in ("ARI", "ARI via import", "ARI caller-filtered", "ARI baseline")}
    lines = [
        "## Polis opinion groups vs Polis's own groups (adjusted Rand index)",
        "",
        "Command: `.venv/bin/python benchmarks/bench_polis_groups.py` (seed 0; 2-core shared machine, so "
        "seconds are indicative only).",
        "ARI over participants clustered by both Polis (non-blank `group-id`) and us; `compared` = that "
        "count / participants Polis clustered. `ARI` = polis-faithful call (votes on moderated-out "
        "statements kept and zeroed via `moderated_out=`); `caller-filtered` = moderated-out statements "
        "dropped before the call; `baseline` = mean-imputed PCA + sklearn k-means, k by silhouette; "
        "`via import` = the product's path: `workbench import polis` into a DuckDB file, then "
        "`workbench groups` (statements keyed by the store's ids, so k-means sees another column order).",
        "",
        "| conversation | ARI | ARI via import | k | Polis k | compared | ARI caller-filtered (k) | ARI baseline "
        "| seconds (filtered / baseline) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['conversation']} | {r['ARI']:.3f} | {r['ARI via import']:.3f} | {r['k']} | {r['Polis k']} | {r['compared']} | "
            f"{r['ARI caller-filtered']:.3f} ({r['k caller-filtered']}) | {r['ARI baseline']:.3f} | "
            f"{r['seconds']:.2f} ({r['seconds caller-filtered']:.2f} / {r['seconds baseline']:.2f}) |"
        )
    lines += [
        f"| **median** | **{medians['ARI']:.3f}** | **{medians['ARI via import']:.3f}** | | | | "
        f"{medians['ARI caller-filtered']:.3f} | "
        f"{medians['ARI baseline']:.3f} | |",
        "",
        f"Target: median ARI >= 0.80 -> {'reached' if medians['ARI'] >= 0.80 else 'NOT reached'} "
        f"({medians['ARI']:.3f}); {medians['ARI'] / max(medians['ARI baseline'], 1e-9):.2f}x the baseline median.",
        "",
        f"_{ATTRIBUTION}_",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text)


if __name__ == "__main__":
    main()
