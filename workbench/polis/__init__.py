"""A port of Polis's conversation math (compdemocracy/polis, `math/src/polismath/math/`).

Read from Polis's Clojure source, not from summaries: `pca.clj` (power iteration, sparsity-aware
projection) is in `pca`, `clusters.clj` (k-means with Polis's starts, silhouette) in `clusters`,
`conversation.clj` (who is in the conversation, base clusters, group k range, the group-k smoother,
the update a math worker runs on each batch of votes, and a replay of a vote history in the worker's
cadence) in `conversation`, and `repness.clj` / `stats.clj` (representative and consensus statements,
group-informed consensus) in `repness`. Everything here is pure and seeded: arrays and DataFrames in,
frozen dataclasses out; no file, no SQL, no Streamlit. It must never decide what a caller's data
means (which statements are moderated out, who Polis already clustered): the caller says so.
"""

from .conversation import ConversationMath, replay_conversation, single_shot
from .repness import PolisReport, polis_report

__all__ = ["ConversationMath", "PolisReport", "polis_report", "replay_conversation", "single_shot"]
