"""Canonical values: cards from many participants grouped into the values they share.

Pure analysis: a cards DataFrame and their embeddings in, a frozen `Dedup` out. It never embeds
(that is `workbench.embed`), never reads or writes the store, and never imports Streamlit.

Method (fixed parameters, the `DedupParams` defaults). Cards are embedded as their title followed
by their sorted attentional policies (`workbench.embed.card_text`). Cards are grouped by
average-linkage agglomerative clustering on cosine distance, cut at 0.30: two groups merge while
their mean pairwise distance stays under 0.30. The study (REFERENCE.md §1) ran DBSCAN at
eps 0.11-0.3 and let an LLM confirm pairs; without the LLM, average linkage is the safer rule
(single-linkage DBSCAN chains near-duplicates into long strings of different values). On a proxy
of the study's mapping (benchmarks/results/dedup.md) the adjusted Rand index is flat for cuts
0.25-0.35 and collapses from 0.375-0.40 (big values start to merge), so 0.30 is the middle of the
plateau, not its peak; the study's low eps (0.11) splits many values (ARI 0.89 vs 0.97).
Cards with no close neighbour stay values of their own rather than being forced into the nearest
value: on the proxy, forcing them lowered the score for every attach threshold tried.

Each value's title, description and policies come from its medoid (the member with the highest
mean cosine similarity to the other members; ties go to the smallest card id).

Stability and facilitator decisions. `previous` (card id -> canonical id) lets values keep their
ids across runs: clusters are matched to previous ids by largest member overlap (greedy, one id
per cluster), unmatched clusters get new ids above every id seen so far, in order of their
smallest card id. `Overrides` record what a facilitator decided and are re-applied on every run:
`Merge` (these canonical ids are one value), `Split` (this card leaves its value, alone or into
another value), `Rename` (keep this title, and optionally description and policies).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import pdist

CardId = Hashable
CanonicalId = int


class DedupInputError(ValueError):
    """Cards, embeddings, previous assignment or overrides that cannot be deduplicated."""


@dataclass(frozen=True)
class DedupParams:
    """How cards are grouped. The defaults are the documented, fixed method (module docstring)."""

    distance_threshold: float = 0.30  # cosine distance cut of the average-linkage tree
    linkage: str = "average"  # scipy linkage method: "average", "complete" or "single"
    per_question: bool = False  # True: only cards answering the same question can share a value

    def __post_init__(self) -> None:
        if not 0.0 < self.distance_threshold < 2.0:
            raise DedupInputError(f"distance_threshold must be in (0, 2), got {self.distance_threshold}")
        if self.linkage not in {"average", "complete", "single"}:
            raise DedupInputError(f"linkage must be 'average', 'complete' or 'single', got {self.linkage!r}")


@dataclass(frozen=True)
class Merge:
    """A facilitator's decision that these canonical values are one; they all become `into`."""

    canonical_ids: tuple[CanonicalId, ...]
    into: CanonicalId | None = None  # default: the smallest of canonical_ids

    @property
    def target(self) -> CanonicalId:
        return self.into if self.into is not None else min(self.canonical_ids)


@dataclass(frozen=True)
class Split:
    """A facilitator's decision that a card leaves its value: to value `into`, or alone if None."""

    card_id: CardId
    into: CanonicalId | None = None


@dataclass(frozen=True)
class Rename:
    """A facilitator's wording for a value, kept whatever its medoid becomes."""

    canonical_id: CanonicalId
    title: str
    description: str | None = None
    policies: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Overrides:
    merges: tuple[Merge, ...] = ()
    splits: tuple[Split, ...] = ()
    renames: tuple[Rename, ...] = ()


@dataclass(frozen=True)
class CanonicalValue:
    id: CanonicalId
    title: str
    description: str
    policies: tuple[str, ...]
    member_ids: tuple[CardId, ...]  # sorted by card id
    representative_id: CardId  # the medoid whose text the value shows (unless renamed)
    question_ids: tuple[Hashable, ...] = ()  # distinct questions of the members, if known
    renamed: bool = False


@dataclass(frozen=True)
class Dedup:
    values: tuple[CanonicalValue, ...]  # sorted by id
    assignment: Mapping[CardId, CanonicalId] = field(repr=False)  # card id -> canonical id
    params: DedupParams = DedupParams()

    def value(self, canonical_id: CanonicalId) -> CanonicalValue:
        for value in self.values:
            if value.id == canonical_id:
                return value
        raise KeyError(f"no canonical value with id {canonical_id}")

    def assignment_frame(self) -> pd.DataFrame:
        """Columns `card_id`, `canonical_id`, one row per card."""
        return pd.DataFrame(
            {"card_id": list(self.assignment.keys()), "canonical_id": list(self.assignment.values())}
        )

    def values_frame(self) -> pd.DataFrame:
        """Columns `canonical_id`, `title`, `description`, `policies`, `n_members`,
        `representative_id`, `renamed`, one row per canonical value."""
        return pd.DataFrame(
            {
                "canonical_id": [v.id for v in self.values],
                "title": [v.title for v in self.values],
                "description": [v.description for v in self.values],
                "policies": [list(v.policies) for v in self.values],
                "n_members": [len(v.member_ids) for v in self.values],
                "representative_id": [v.representative_id for v in self.values],
                "renamed": [v.renamed for v in self.values],
            }
        )


def canonical_values(
    cards: pd.DataFrame,
    embeddings: np.ndarray | Mapping[CardId, np.ndarray],
    *,
    previous: Mapping[CardId, CanonicalId] | None = None,
    overrides: Overrides | None = None,
    params: DedupParams = DedupParams(),
) -> Dedup:
    """Group `cards` into canonical values.

    `cards` needs columns `id`, `title`, `policies` (list of str); `description` and `question_id`
    are used when present (`question_id` is required with `params.per_question`). `embeddings` is
    an (n_cards, d) array aligned with the rows of `cards`, or a mapping card id -> vector.
    """
    overrides = overrides or Overrides()
    previous = dict(previous or {})
    frame, vectors = _validated(cards, embeddings, params)
    ids: list[CardId] = frame["id"].tolist()
    row_of = {card_id: i for i, card_id in enumerate(ids)}

    clusters = _clusters(frame, vectors, params)

    # Splits are card-level, so they survive any change in the clustering around the card.
    split_into: dict[CardId, CanonicalId] = {}
    for split in overrides.splits:
        if split.card_id not in row_of:
            continue  # the card was withdrawn since the decision: nothing left to split
        clusters = [[c for c in cluster if c != split.card_id] for cluster in clusters]
        clusters = [cluster for cluster in clusters if cluster]
        if split.into is None:
            clusters.append([split.card_id])
        else:
            split_into[split.card_id] = split.into
    clusters.sort(key=lambda cluster: _sort_key(cluster[0]))

    alias = _merge_aliases(overrides.merges)
    cluster_ids = _match_previous(clusters, previous, alias)

    known_ids = set(previous.values()) | set(split_into.values())
    for merge in overrides.merges:
        known_ids |= set(merge.canonical_ids) | {merge.target}
    known_ids |= {rename.canonical_id for rename in overrides.renames}
    next_id = max((i for i in known_ids if isinstance(i, int | np.integer)), default=0) + 1

    members: dict[CanonicalId, list[CardId]] = defaultdict(list)
    for cluster, canonical_id in zip(clusters, cluster_ids, strict=True):
        if canonical_id is None:
            canonical_id, next_id = next_id, next_id + 1
        members[alias.get(canonical_id, canonical_id)].extend(cluster)
    for card_id, into in split_into.items():
        members[alias.get(into, into)].append(card_id)

    renames = {alias.get(r.canonical_id, r.canonical_id): r for r in overrides.renames}
    has_question = "question_id" in frame.columns
    values = []
    for canonical_id in sorted(members):
        member_ids = sorted(members[canonical_id], key=_sort_key)
        rows = [row_of[c] for c in member_ids]
        representative = member_ids[_medoid(vectors[rows])]
        card = frame.iloc[row_of[representative]]
        rename = renames.get(canonical_id)
        questions: tuple[Hashable, ...] = ()
        if has_question:
            questions = tuple(
                sorted({q for q in frame["question_id"].iloc[rows] if not pd.isna(q)}, key=_sort_key)
            )
        values.append(
            CanonicalValue(
                id=canonical_id,
                title=rename.title if rename else str(card["title"]),
                description=(
                    rename.description
                    if rename and rename.description is not None
                    else _text(card.get("description"))
                ),
                policies=(
                    tuple(rename.policies)
                    if rename and rename.policies is not None
                    else tuple(str(p) for p in card["policies"])
                ),
                member_ids=tuple(member_ids),
                representative_id=representative,
                question_ids=questions,
                renamed=rename is not None,
            )
        )
    assignment = {card_id: value.id for value in values for card_id in value.member_ids}
    ordered = {card_id: assignment[card_id] for card_id in sorted(assignment, key=_sort_key)}
    return Dedup(values=tuple(values), assignment=MappingProxyType(ordered), params=params)


def _text(value: Any) -> str:
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def _sort_key(value: Any) -> tuple[int, Any]:
    """Total order over card ids that may be ints or strings (numbers first)."""
    if isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool):
        return (0, value)
    return (1, str(value))


def _validated(
    cards: pd.DataFrame, embeddings: np.ndarray | Mapping[CardId, np.ndarray], params: DedupParams
) -> tuple[pd.DataFrame, np.ndarray]:
    """Cards sorted by id (so row order never changes the result) and their unit vectors."""
    required = {"id", "title", "policies"} | ({"question_id"} if params.per_question else set())
    missing = required - set(cards.columns)
    if missing:
        raise DedupInputError(f"cards frame lacks column(s) {sorted(missing)}; it has {list(cards.columns)}")
    duplicated = cards["id"][cards["id"].duplicated()].tolist()
    if duplicated:
        raise DedupInputError(f"card id(s) {duplicated[:5]} appear more than once in the cards frame")
    for row, (card_id, title, policies) in enumerate(
        zip(cards["id"], cards["title"], cards["policies"], strict=True)
    ):
        if not isinstance(title, str):
            raise DedupInputError(
                f"card {card_id!r} (row {row}): field 'title' must be a string, got {title!r}"
            )
        if isinstance(policies, str) or not isinstance(policies, list | tuple | np.ndarray):
            raise DedupInputError(
                f"card {card_id!r} (row {row}): field 'policies' must be a list of strings, got {policies!r}"
            )

    if isinstance(embeddings, Mapping):
        absent = [card_id for card_id in cards["id"] if card_id not in embeddings]
        if absent:
            raise DedupInputError(f"no embedding for card(s) {absent[:5]} ({len(absent)} missing)")
        rows = [np.asarray(embeddings[card_id], dtype=np.float64) for card_id in cards["id"]]
        matrix = np.stack(rows) if rows else np.zeros((0, 1))
    else:
        matrix = np.asarray(embeddings, dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[0] != len(cards):
            raise DedupInputError(
                f"embeddings must be an array of shape ({len(cards)}, d) aligned with the cards, got {matrix.shape}"
            )
    norms = np.linalg.norm(matrix, axis=1)
    zero = [card_id for card_id, norm in zip(cards["id"], norms, strict=True) if not norm > 0]
    if zero:
        raise DedupInputError(f"embedding of card(s) {zero[:5]} is zero or not finite")

    order = sorted(range(len(cards)), key=lambda i: _sort_key(cards["id"].iloc[i]))
    frame = cards.iloc[order].reset_index(drop=True)
    return frame, (matrix / norms[:, None])[order]


def _clusters(frame: pd.DataFrame, vectors: np.ndarray, params: DedupParams) -> list[list[CardId]]:
    """Card ids per cluster, each list sorted by card id."""
    if params.per_question:
        groups = defaultdict(list)
        for i, question in enumerate(frame["question_id"]):
            groups[None if pd.isna(question) else question].append(i)
        row_groups = list(groups.values())
    else:
        row_groups = [list(range(len(frame)))]
    ids = frame["id"].tolist()
    clusters: list[list[CardId]] = []
    for rows in row_groups:
        if len(rows) == 1:
            clusters.append([ids[rows[0]]])
            continue
        # Identical texts have cosine distance 0 up to rounding; clip so scipy sees a metric.
        distances = np.clip(pdist(vectors[rows], metric="cosine"), 0.0, 2.0)
        labels = fcluster(
            linkage(distances, method=params.linkage), t=params.distance_threshold, criterion="distance"
        )
        by_label: dict[int, list[CardId]] = defaultdict(list)
        for row, label in zip(rows, labels, strict=True):
            by_label[int(label)].append(ids[row])
        clusters.extend(by_label.values())
    return [sorted(cluster, key=_sort_key) for cluster in clusters]


def _merge_aliases(merges: Iterable[Merge]) -> dict[CanonicalId, CanonicalId]:
    """canonical id -> the id it was merged into, following chains (a->b, b->c gives a->c)."""
    parent: dict[CanonicalId, CanonicalId] = {}

    def find(x: CanonicalId) -> CanonicalId:
        seen = []
        while x in parent and parent[x] != x:
            seen.append(x)
            x = parent[x]
        for y in seen:
            parent[y] = x
        return x

    for merge in merges:
        if not merge.canonical_ids:
            raise DedupInputError("a Merge needs at least one canonical id")
        target = find(merge.target)
        for canonical_id in (*merge.canonical_ids, merge.target):
            root = find(canonical_id)
            if root != target:
                parent[root] = target
        parent.setdefault(target, target)
    return {x: find(x) for x in list(parent) if find(x) != x}


def _match_previous(
    clusters: list[list[CardId]],
    previous: Mapping[CardId, CanonicalId],
    alias: Mapping[CanonicalId, CanonicalId],
) -> list[CanonicalId | None]:
    """The previous id each cluster keeps (None for new clusters).

    Greedy on member overlap: the largest overlap claims its id first, ties go to the smaller id
    and then to the cluster with the smaller first card. A cluster whose members mostly carried a
    merged id may share it with another cluster: the facilitator said they are one value.
    """
    if not previous:
        return [None] * len(clusters)
    overlaps: list[tuple[int, Any, int]] = []
    plurality: list[CanonicalId | None] = []
    for index, cluster in enumerate(clusters):
        counts = Counter(alias.get(previous[c], previous[c]) for c in cluster if c in previous)
        for canonical_id, overlap in counts.items():
            overlaps.append((overlap, canonical_id, index))
        best = sorted(counts.items(), key=lambda item: (-item[1], _sort_key(item[0])))
        plurality.append(best[0][0] if best else None)
    overlaps.sort(key=lambda item: (-item[0], _sort_key(item[1]), item[2]))
    chosen: list[CanonicalId | None] = [None] * len(clusters)
    taken: set[CanonicalId] = set()
    for _overlap, canonical_id, index in overlaps:
        if chosen[index] is None and canonical_id not in taken:
            chosen[index] = canonical_id
            taken.add(canonical_id)
    merge_targets = set(alias.values())
    for index, canonical_id in enumerate(plurality):
        if chosen[index] is None and canonical_id in merge_targets:
            chosen[index] = canonical_id
    return chosen


def _medoid(vectors: np.ndarray) -> int:
    """Index of the member most similar on average to the others (first one on ties)."""
    if len(vectors) <= 2:
        return 0
    similarity = vectors @ vectors.T
    mean = (similarity.sum(axis=1) - np.diag(similarity)) / (len(vectors) - 1)
    # Round so that float noise between identical texts cannot pick a later card over an earlier one.
    return int(np.argmax(np.round(mean, 9)))
