"""Benchmark: embedding overhead, re-run cost and clustering quality on the 625 valid MGE cards.

Run: .venv/bin/python benchmarks/bench_dedup.py
Prints a Markdown section and writes it to benchmarks/results/dedup.md.

Quality is scored with the adjusted Rand index against a *proxy* of the study's withheld
card -> canonical mapping, built from the published canonical values (see `proxy_labels`):
  A        the card's policies equal a canonical card's policies (the study's interview replaced a
           participant's draft by an existing canonical card when one was close, so most cards are
           word-for-word copies of their canonical value);
  B-title  the card's title equals a canonical title (canonical cards were created from, and
           titled after, a member; several were later edited on 2023-09-27);
  B-sim    the card's sorted policies are within MiniLM cosine similarity 0.80 of a canonical's;
  C        none of these: no defensible canonical value.
Three scores: "matched" over A+B cards only; "strict" over all cards with each C card its own
value; "full" over all cards with each C card given the canonical value nearest by TF-IDF
(title+instructions+policies) among those that existed by the card's next deduplication run
(created no later than 3.5 h after the card; canonical values were created by an hourly job).
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import pdist
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import adjusted_rand_score

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from workbench.dedup import DedupParams, canonical_values  # noqa: E402
from workbench.embed import Embedder, InMemoryEmbeddingCache, card_text, default_model_path, load_model  # noqa: E402

MGE = ROOT.parent / "shared" / "datasets" / "mge-dft"
RESULTS = ROOT / "benchmarks" / "results" / "dedup.md"
STUDY_EPS = (0.11, 0.30)  # REFERENCE.md §1: the study's DBSCAN eps range
NAIVE_SWEEP = (0.05, 0.10, 0.15, 0.20, 0.25, 0.30, 0.35, 0.40, 0.45)


def load_cards() -> tuple[pd.DataFrame, list[dict]]:
    raw = json.loads((MGE / "valuesCard.json").read_text())
    canonical = json.loads((MGE / "canonicalValuesCard.json").read_text())
    cards = pd.DataFrame(
        [
            {
                "id": c["id"],
                "title": c["title"],
                "description": c["instructionsShort"],
                "policies": c["evaluationCriteria"],
                "created_at": pd.Timestamp(c["createdAt"]),
                "full_text": _full_text(c),
            }
            for c in raw
            if c["quality"] == "ok"
        ]
    )
    return cards.sort_values("id").reset_index(drop=True), canonical


def _full_text(card: dict) -> str:
    return "\n".join(
        [card["title"], card["instructionsShort"], card["instructionsDetailed"], *card["evaluationCriteria"]]
    )


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9 ]", "", " ".join(text.lower().split()))


def _policies_key(policies: list[str]) -> str:
    return "\n".join(sorted(_norm(p) for p in policies))


def policies_text(policies: list[str]) -> str:
    """The naive baseline's text: the sorted policies, as the study embedded them."""
    return "\n".join(sorted(p.strip() for p in policies))


def proxy_labels(
    cards: pd.DataFrame, canonical: list[dict], card_pol: np.ndarray, canon_pol: np.ndarray
) -> tuple[list[str], dict[int, int], dict[int, int]]:
    """Per card: its tier, the strict label (A/B only) and the full label (A/B plus C guesses)."""
    similarity = card_pol @ canon_pol.T
    by_policies, by_title = defaultdict(list), defaultdict(list)
    for j, c in enumerate(canonical):
        by_policies[_policies_key(c["evaluationCriteria"])].append(j)
        by_title[_norm(c["title"])].append(j)
    tiers, strict = [], {}
    for i, card in cards.iterrows():
        same_policies = by_policies.get(_policies_key(card["policies"]))
        same_title = by_title.get(_norm(card["title"]))
        best = int(np.argmax(similarity[i]))
        if same_policies:
            tiers.append("A")
            strict[i] = sorted(
                same_policies, key=lambda j: (_norm(canonical[j]["title"]) != _norm(card["title"]), j)
            )[0]
        elif same_title:
            tiers.append("B-title")
            strict[i] = max(same_title, key=lambda j: similarity[i, j])
        elif similarity[i, best] >= 0.80:
            tiers.append("B-sim")
            strict[i] = best
        else:
            tiers.append("C")

    tfidf = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2))
    tfidf.fit(list(cards["full_text"]) + [_full_text(c) for c in canonical])
    text_similarity = (
        tfidf.transform(cards["full_text"]) @ tfidf.transform([_full_text(c) for c in canonical]).T
    ).toarray()
    created = np.array([pd.Timestamp(c["createdAt"]) for c in canonical])
    seeded = pd.Timestamp("2023-09-11T17:05Z")  # the first canonical values were seeded from earlier cards
    full = dict(strict)
    for i, tier in enumerate(tiers):
        if tier == "C":
            t = cards["created_at"].iloc[i]
            existing = np.array([t < seeded or c <= t + pd.Timedelta(hours=3.5) for c in created])
            full[i] = int(np.argmax(np.where(existing, text_similarity[i], -1.0)))
    return tiers, strict, full


def scores(
    pred: np.ndarray, tiers: list[str], strict: dict[int, int], full: dict[int, int]
) -> dict[str, float]:
    pred = np.asarray(pred)
    matched = [i for i, t in enumerate(tiers) if t != "C"]
    n = len(tiers)
    return {
        "matched": adjusted_rand_score([strict[i] for i in matched], pred[matched]),
        "strict": adjusted_rand_score([strict.get(i, 10_000 + i) for i in range(n)], pred),
        "full": adjusted_rand_score([full[i] for i in range(n)], pred),
        "clusters": len(set(pred.tolist())),
        "clusters_matched": len(set(pred[matched].tolist())),
    }


def naive_baseline(vectors: np.ndarray, threshold: float) -> np.ndarray:
    """Average-linkage over the MiniLM embeddings of the sorted policies, cut at `threshold`."""
    distances = np.clip(pdist(vectors, metric="cosine"), 0.0, 2.0)
    return fcluster(linkage(distances, method="average"), t=threshold, criterion="distance")


def main() -> None:
    if not MGE.is_dir():
        sys.exit(f"MGE data not found at {MGE}")
    cards, canonical = load_cards()
    texts = [card_text(row) for _, row in cards.iterrows()]
    frame = pd.DataFrame({"id": cards["id"], "text": texts})
    model_path = default_model_path()
    model = load_model(model_path)
    model.encode(texts[:64], batch_size=32)  # warm-up: first-call costs are not what we compare

    # 1. Overhead of Embedder.embed_cards over a bare encode of the same texts (alternating rounds).
    bare_times, ours_times = [], []
    for _ in range(3):
        start = time.perf_counter()
        bare = model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
        bare_times.append(time.perf_counter() - start)
        embedder = Embedder()
        start = time.perf_counter()
        ours = embedder.embed_cards(frame, InMemoryEmbeddingCache())
        ours_times.append(time.perf_counter() - start)
    max_diff = float(np.max(np.abs(np.stack([ours[i] for i in cards["id"]]) - bare)))
    bare_s, ours_s = min(bare_times), min(ours_times)

    # 2. Re-run after one new card: the latest card arrives after the other 624 were embedded.
    newest = int(cards["created_at"].idxmax())
    cache = InMemoryEmbeddingCache()
    embedder = Embedder()
    earlier = cards.drop(index=newest)
    first_vectors = embedder.embed_cards(frame.drop(index=newest), cache)
    first = canonical_values(earlier, first_vectors)
    before = embedder.texts_embedded
    start = time.perf_counter()
    vectors = embedder.embed_cards(frame, cache)
    embed_s = time.perf_counter() - start
    start = time.perf_counter()
    second = canonical_values(cards, vectors, previous=first.assignment)
    dedup_s = time.perf_counter() - start
    rerun_embedded = embedder.texts_embedded - before
    kept = sum(second.assignment[c] == k for c, k in first.assignment.items())

    # 3. Quality against the proxy.
    card_pol = model.encode(
        [policies_text(p) for p in cards["policies"]], batch_size=32, normalize_embeddings=True
    )
    canon_pol = model.encode(
        [policies_text(c["evaluationCriteria"]) for c in canonical], batch_size=32, normalize_embeddings=True
    )
    tiers, strict, full = proxy_labels(cards, canonical, card_pol, canon_pol)
    result = canonical_values(cards, vectors)
    ours_pred = np.array([result.assignment[c] for c in cards["id"]])
    rows = [
        (
            "**ours**: title + sorted policies, average linkage, cut 0.30 (DedupParams())",
            scores(ours_pred, tiers, strict, full),
        )
    ]
    for eps in STUDY_EPS:
        rows.append(
            (
                f"naive: sorted policies, average linkage, cut {eps:.2f}",
                scores(naive_baseline(card_pol, eps), tiers, strict, full),
            )
        )
    sweep = []
    for threshold in NAIVE_SWEEP:
        ours_t = canonical_values(cards, vectors, params=DedupParams(distance_threshold=threshold))
        pred = np.array([ours_t.assignment[c] for c in cards["id"]])
        sweep.append(
            (
                threshold,
                scores(pred, tiers, strict, full),
                scores(naive_baseline(card_pol, threshold), tiers, strict, full),
            )
        )
    perfect_strict = np.array([strict.get(i, 10_000 + i) for i in range(len(cards))])
    perfect_full = np.array([full[i] for i in range(len(cards))])

    tier_counts = Counter(tiers)
    lines = [
        "## Dedup: embeddings and canonical values (MGE, 625 valid cards)",
        "",
        f"Model: `{embedder.model_name}` from `{model_path}`, CPU, torch threads {_torch_threads()}. "
        "Reproduce: `.venv/bin/python benchmarks/bench_dedup.py`.",
        "",
        "### Embedding throughput",
        "",
        "| run | seconds (best of 3) | texts/s |",
        "|---|---:|---:|",
        f"| bare `SentenceTransformer.encode` (batch 32) | {bare_s:.2f} | {len(texts) / bare_s:.0f} |",
        f"| `Embedder.embed_cards` (empty cache) | {ours_s:.2f} | {len(texts) / ours_s:.0f} |",
        "",
        f"Overhead ratio ours/bare: **{ours_s / bare_s:.3f}** (target ≤ 1.10); all rounds bare "
        f"{', '.join(f'{t:.2f}' for t in bare_times)} s, ours {', '.join(f'{t:.2f}' for t in ours_times)} s. "
        f"Max |difference| between the two sets of vectors: {max_diff:.1e}.",
        "",
        "### Re-run after one new card",
        "",
        f"624 cards embedded and deduplicated, then the newest card (id {cards['id'][newest]}) added: "
        f"**{rerun_embedded} text embedded** (target 1), embed {embed_s:.3f} s + canonical_values "
        f"{dedup_s:.3f} s; {kept} of 624 cards kept their canonical id.",
        "",
        "### Quality: adjusted Rand index against the proxy mapping",
        "",
        f"Proxy tiers: A {tier_counts['A']}, B-title {tier_counts['B-title']}, B-sim {tier_counts['B-sim']}, "
        f"C {tier_counts['C']} cards; A+B cards use {len(set(strict.values()))} of the "
        f"{len(canonical)} published canonical values. A perfect copy of the strict proxy scores "
        f"{adjusted_rand_score(perfect_full, perfect_strict):.3f} on the full one (how much the C guesses matter).",
        "",
        "| method | ARI matched (A+B) | ARI strict (all) | ARI full (all) | clusters (all) | clusters over A+B cards |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, s in rows:
        lines.append(
            f"| {name} | {s['matched']:.3f} | {s['strict']:.3f} | {s['full']:.3f} | {s['clusters']} | {s['clusters_matched']} |"
        )
    lines += [
        "",
        "Threshold sweep (ours / naive), ARI matched · strict · full, clusters:",
        "",
        "| cut | ours | naive |",
        "|---:|---|---|",
    ]
    for threshold, s_ours, s_naive in sweep:
        lines.append(
            f"| {threshold:.2f} | {s_ours['matched']:.3f} · {s_ours['strict']:.3f} · {s_ours['full']:.3f}, {s_ours['clusters']} "
            f"| {s_naive['matched']:.3f} · {s_naive['strict']:.3f} · {s_naive['full']:.3f}, {s_naive['clusters']} |"
        )
    section = "\n".join(lines) + "\n"
    print(section)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(section)


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


if __name__ == "__main__":
    main()
