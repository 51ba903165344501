"""Comparisons from planted latent classes: the test-only simulator the preference tests and benchmarks use."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit


def simulate_planted_classes(
    *,
    n_items: int,
    n_classes: int,
    n_comparisons: int,
    per_participant: tuple[int, int] = (100, 200),
    spread: float = 1.0,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """Comparisons from ``n_classes`` planted BT classes with strengths ~ N(0, spread²) per class.

    Each participant belongs to one class (uniformly at random) and makes between
    ``per_participant[0]`` and ``per_participant[1]`` comparisons of uniformly random distinct item
    pairs, until ``n_comparisons`` in total. Returns ``(comparisons, truth, theta)``: ``truth`` has
    ``participant_id, true_class``; ``theta`` is ``(n_classes, n_items)``; items are ``v0000``....
    """
    low, high = per_participant
    if not 1 <= low <= high or n_items < 2 or n_classes < 1 or n_comparisons < 1:
        raise ValueError("simulate_planted_classes: bad sizes")
    rng = np.random.default_rng(seed)
    theta = rng.normal(0.0, spread, size=(n_classes, n_items))
    counts: list[int] = []
    total = 0
    while total < n_comparisons:
        count = min(int(rng.integers(low, high + 1)), n_comparisons - total)
        counts.append(count)
        total += count
    n_participants = len(counts)
    classes = rng.integers(0, n_classes, size=n_participants)
    participant = np.repeat(np.arange(n_participants), counts)
    a = rng.integers(0, n_items, size=total)
    b = (a + rng.integers(1, n_items, size=total)) % n_items
    row_class = classes[participant]
    a_wins = rng.random(total) < expit(theta[row_class, a] - theta[row_class, b])
    width = max(4, len(str(n_items - 1)))
    items = np.array([f"v{i:0{width}d}" for i in range(n_items)], dtype=object)
    ids = np.array([f"p{u:05d}" for u in range(n_participants)], dtype=object)
    comparisons = pd.DataFrame(
        {
            "participant_id": ids[participant],
            "item_a": items[a],
            "item_b": items[b],
            "winner": np.where(a_wins, "a", "b").astype(object),
        }
    )
    truth = pd.DataFrame({"participant_id": ids, "true_class": classes})
    return comparisons, truth, theta
