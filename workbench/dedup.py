"""Canonical values: cards from many participants grouped into the values they share.

Pure analysis: a cards DataFrame and their embeddings in, a frozen `Dedup` out. It never embeds
(that is `workbench.embed`), never reads or writes the store, never calls an LLM and never imports
Streamlit. Evidence from outside (participants' "same value?" answers, an LLM's verdicts) comes in
as a DataFrame and is applied as data.

Method (the `DedupParams` defaults, "two-stage"). Cards are embedded as their title followed by
their sorted attentional policies (`workbench.embed.card_text`), and each policy line also gets a
vector of its own from the same forward pass.
1. Candidates by embedding: only pairs of cards within cosine similarity `candidate_similarity`
   (0.35) of each other can be the same value; every other pair is kept apart.
2. A merge decision that looks at what the cards attend to. For each candidate pair six features
   (`FEATURES`): the cosine of the card vectors; policy-to-policy matching (each policy's best match
   among the other card's policies, averaged both ways); the share of policies that have a close
   counterpart (cosine >= 0.75) on the other card (the smaller of the two shares); the Jaccard
   overlap of the attended-to noun phrases (the capitalised heads the study's policies start with,
   "MOMENTS", "OPPORTUNITIES", ...); of the policies' content words; of the titles' words. A logistic
   model (`MergeModel`, fitted per embedding model by `benchmarks/bench_dedup.py` on the even-id half
   of the MGE cards and checked on the odd half) turns them into a probability that the two cards
   are the same value. Cards are grouped by average linkage on 1 - probability: two groups merge
   while the mean probability between their cards stays at or above the model's `min_same`.
3. Evidence: where participants answered "Are these two the same value?" about two cards, their
   majority decides (a "same" joins the two cards' groups, a "different" splits a group between the
   two cards, each member going to the card it more probably shares a value with); where no
   participant decided, an LLM's verdict does; otherwise the model's decision stands.
`method="embedding"` is the earlier one-stage rule, kept as the naive baseline: average linkage on
the cosine distance of the card vectors, cut at `distance_threshold` (0.30).

`Dedup.candidates` lists the merges the model weighed (pairs of groups, each shown by its medoid
card) with their probability; `least_sure` picks those nearest the decision boundary, which is what
a participant or an LLM should be asked about.

Each value's title, description and policies come from its medoid (the member with the highest
mean cosine similarity to the other members; ties go to the smallest card id).

Stability and facilitator decisions. `previous` (card id -> canonical id) lets values keep their
ids across runs: clusters are matched to previous ids by largest member overlap (greedy, one id
per cluster), unmatched clusters get new ids above every id seen so far, in order of their
smallest card id. `Overrides` record what a facilitator decided and are re-applied on every run:
`Split` (this card leaves its value, alone or into another value). A facilitator's merge is a split
of each moved card into the merged value; a rename lives in the store, which keeps a value's text.
`anchors` are values decided elsewhere (an import's canonical values, whose member cards the import
does not know): each one's own text is clustered as a pseudo-card, so the cards that match it join
that value and keep its id; two anchors never share a value.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform

from .errors import InputError

CardId = Hashable
CanonicalId = int


class DedupInputError(InputError):
    """Cards, embeddings, previous assignment or overrides that cannot be deduplicated."""


#: The merge decision's features, in the order of `MergeModel.weights` (module docstring, step 2).
FEATURES = ("card_similarity", "policy_match", "policy_cover", "attended_nouns", "policy_words", "title_words")
POLICY_CLOSE = 0.75  # cosine at which a policy counts as having a counterpart on the other card
LINE_BLOCK = 2048  # policy lines per block of the line-by-line similarity (memory: block x all lines)
ANSWERS = ("same", "different", "not_sure")


@dataclass(frozen=True)
class MergeModel:
    """The learned merge decision for one embedding model: logistic weights over `FEATURES`, and the
    mean probability at or above which two groups merge (`min_same`)."""

    weights: tuple[float, ...]
    intercept: float
    min_same: float

    def __post_init__(self) -> None:
        if len(self.weights) != len(FEATURES):
            raise DedupInputError(f"a MergeModel needs {len(FEATURES)} weights ({', '.join(FEATURES)}), "
                                  f"got {len(self.weights)}")
        if not 0.0 < self.min_same < 1.0:
            raise DedupInputError(f"min_same must be in (0, 1), got {self.min_same}")


#: Fitted by `benchmarks/bench_dedup.py` (logistic regression on candidate pairs of even-id MGE cards,
#: `min_same` chosen on the same half); reproduced and checked there on the odd half.
MERGE_MODELS: dict[str, MergeModel] = {
    "sentence-transformers/all-MiniLM-L6-v2": MergeModel(
        weights=(3.62, 3.44, 5.56, 4.16, 2.93, 3.82), intercept=-9.93, min_same=0.4),
    "sentence-transformers/all-mpnet-base-v2": MergeModel(
        weights=(2.9, 2.88, 3.36, 6.32, 4.7, 4.7), intercept=-10.33, min_same=0.1),
}
DEFAULT_MERGE_MODEL = MERGE_MODELS["sentence-transformers/all-MiniLM-L6-v2"]


def merge_model_for(model_name: str) -> MergeModel:
    """The merge decision fitted for this embedding model, else MiniLM's (the bundled default)."""
    return MERGE_MODELS.get(model_name, DEFAULT_MERGE_MODEL)


@dataclass(frozen=True)
class DedupParams:
    """How cards are grouped. The defaults are the documented, fixed method (module docstring)."""

    method: str = "two-stage"  # "two-stage" (candidates, then the merge decision) or "embedding" (baseline)
    distance_threshold: float = 0.30  # method "embedding": cosine distance cut of the average-linkage tree
    candidate_similarity: float = 0.35  # method "two-stage": pairs below this cosine are never merged
    merge_model: MergeModel = DEFAULT_MERGE_MODEL  # method "two-stage": the merge decision
    linkage: str = "average"  # scipy linkage method: "average", "complete" or "single"
    per_question: bool = False  # True: only cards answering the same question can share a value

    def __post_init__(self) -> None:
        if self.method not in {"two-stage", "embedding"}:
            raise DedupInputError(f"method must be 'two-stage' or 'embedding', got {self.method!r}")
        if not 0.0 < self.distance_threshold < 2.0:
            raise DedupInputError(f"distance_threshold must be in (0, 2), got {self.distance_threshold}")
        if not -1.0 <= self.candidate_similarity < 1.0:
            raise DedupInputError(f"candidate_similarity must be in [-1, 1), got {self.candidate_similarity}")
        if self.linkage not in {"average", "complete", "single"}:
            raise DedupInputError(f"linkage must be 'average', 'complete' or 'single', got {self.linkage!r}")

    @property
    def cut(self) -> float:
        """The height at which the linkage tree is cut (a distance: 1 - probability for two-stage)."""
        return self.distance_threshold if self.method == "embedding" else 1.0 - self.merge_model.min_same


@dataclass(frozen=True)
class Split:
    """A facilitator's decision that a card leaves its value: to value `into`, or alone if None."""

    card_id: CardId
    into: CanonicalId | None = None


@dataclass(frozen=True)
class Overrides:
    splits: tuple[Split, ...] = ()


@dataclass(frozen=True)
class CanonicalValue:
    id: CanonicalId
    title: str
    description: str
    policies: tuple[str, ...]
    member_ids: tuple[CardId, ...]  # sorted by card id
    representative_id: CardId  # the medoid whose text the value shows
    question_ids: tuple[Hashable, ...] = ()  # distinct questions of the members, if known


@dataclass(frozen=True)
class CandidateMerge:
    """Two groups of cards the merge decision weighed, each shown by its medoid card.

    `merged`: whether they ended in one value. `probability`: the mean probability between the two
    groups' cards that they are the same value (the model's, before any answer). `decided_by`:
    "model", or "participants" / "llm" when answers about these two cards decided.
    """

    card_a: CardId
    card_b: CardId
    value_a: CanonicalId
    value_b: CanonicalId
    probability: float
    merged: bool
    decided_by: str = "model"
    margin: float = 0.0  # |probability - the merge threshold|: how sure the model was


@dataclass(frozen=True)
class Dedup:
    values: tuple[CanonicalValue, ...]  # sorted by id
    assignment: Mapping[CardId, CanonicalId] = field(repr=False)  # card id -> canonical id
    params: DedupParams = DedupParams()
    candidates: tuple[CandidateMerge, ...] = field(default=(), repr=False)  # least sure first

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
        `representative_id`, one row per canonical value."""
        return pd.DataFrame(
            {
                "canonical_id": [v.id for v in self.values],
                "title": [v.title for v in self.values],
                "description": [v.description for v in self.values],
                "policies": [list(v.policies) for v in self.values],
                "n_members": [len(v.member_ids) for v in self.values],
                "representative_id": [v.representative_id for v in self.values],
            }
        )


def canonical_values(
    cards: pd.DataFrame,
    embeddings: np.ndarray | Mapping[CardId, np.ndarray],
    *,
    policy_embeddings: Mapping[CardId, np.ndarray] | None = None,
    previous: Mapping[CardId, CanonicalId] | None = None,
    overrides: Overrides | None = None,
    judgements: pd.DataFrame | None = None,
    anchors: Mapping[CardId, CanonicalId] | None = None,
    params: DedupParams = DedupParams(),
) -> Dedup:
    """Group `cards` into canonical values.

    `cards` needs columns `id`, `title`, `policies` (list of str); `description` and `question_id`
    are used when present (`question_id` is required with `params.per_question`). `embeddings` is
    an (n_cards, d) array aligned with the rows of `cards`, or a mapping card id -> vector.
    `policy_embeddings` maps a card id to a (k, d) array, one row per policy in the order of the
    card's sorted policies (`workbench.embed.CardVectors.lines`); without it each card's own vector
    stands in for its policies. `judgements` has columns `card_a`, `card_b`, `answer` (same /
    different / not_sure), `source` (participant / llm / wiser) and optionally `weight` (default 1).

    `anchors` maps rows of `cards` that stand for existing values (an imported value's own text, as a
    pseudo-card) to those values' ids: they are clustered like cards, so the cards that match an
    existing value join it and keep its id, but two anchors never share a value (a value decided
    elsewhere stays distinct, whatever the answers), an anchor is never a value's representative or a
    candidate's card, and anchors are left out of the result (a value holding only its anchor is not
    listed).
    """
    overrides = overrides or Overrides()
    anchors = dict(anchors or {})
    previous = {**dict(previous or {}), **anchors}
    frame, vectors = _validated(cards, embeddings, params)
    ids: list[CardId] = frame["id"].tolist()
    row_of = {card_id: i for i, card_id in enumerate(ids)}
    evidence = _evidence(judgements, row_of)
    fixed = sorted((a for a in anchors if a in row_of), key=_sort_key)
    evidence.update({(a, b): ("different", "anchors") for i, a in enumerate(fixed) for b in fixed[i + 1:]})

    affinity = _affinity(frame, vectors, _lines(frame, vectors, policy_embeddings), params)
    clusters, weighed = _clusters(frame, affinity, params)
    clusters, decided = _apply_evidence(clusters, evidence, affinity, row_of)

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

    cluster_ids = _match_previous(clusters, previous)

    known_ids = set(previous.values()) | set(split_into.values())
    next_id = max((i for i in known_ids if isinstance(i, int | np.integer)), default=0) + 1

    members: dict[CanonicalId, list[CardId]] = defaultdict(list)
    for cluster, canonical_id in zip(clusters, cluster_ids, strict=True):
        if canonical_id is None:
            canonical_id, next_id = next_id, next_id + 1
        members[canonical_id].extend(cluster)
    for card_id, into in split_into.items():
        members[into].append(card_id)

    has_question = "question_id" in frame.columns
    values = []
    for canonical_id in sorted(members):
        member_ids = sorted((c for c in members[canonical_id] if c not in anchors), key=_sort_key)
        if not member_ids:
            continue  # an existing value nothing joined
        rows = [row_of[c] for c in member_ids]
        representative = member_ids[_medoid(vectors[rows])]
        card = frame.iloc[row_of[representative]]
        questions: tuple[Hashable, ...] = ()
        if has_question:
            questions = tuple(
                sorted({q for q in frame["question_id"].iloc[rows] if not pd.isna(q)}, key=_sort_key)
            )
        values.append(
            CanonicalValue(
                id=canonical_id,
                title=str(card["title"]),
                description=_text(card.get("description")),
                policies=tuple(str(p) for p in card["policies"]),
                member_ids=tuple(member_ids),
                representative_id=representative,
                question_ids=questions,
            )
        )
    assignment = {card_id: value.id for value in values for card_id in value.member_ids}
    ordered = {card_id: assignment[card_id] for card_id in sorted(assignment, key=_sort_key)}
    candidates = []
    for rows_a, rows_b, probability in weighed:
        rows_a = np.array([r for r in rows_a if ids[r] not in anchors], dtype=int)
        rows_b = np.array([r for r in rows_b if ids[r] not in anchors], dtype=int)
        if not len(rows_a) or not len(rows_b):
            continue  # an anchor alone: nobody can be asked about a value's own text
        card_a, card_b = ids[rows_a[_medoid(vectors[rows_a])]], ids[rows_b[_medoid(vectors[rows_b])]]
        pair = _pair(card_a, card_b)
        candidates.append(CandidateMerge(
            card_a=pair[0], card_b=pair[1], value_a=assignment[pair[0]], value_b=assignment[pair[1]],
            probability=round(float(probability), 4), merged=assignment[pair[0]] == assignment[pair[1]],
            decided_by=decided.get(pair, "model"),
            margin=round(abs((1.0 - params.cut) - float(probability)), 4)))
    candidates.sort(key=lambda c: (c.margin, _sort_key(c.card_a), _sort_key(c.card_b)))
    return Dedup(values=tuple(values), assignment=MappingProxyType(ordered), params=params,
                 candidates=tuple(candidates))


def least_sure(candidates: Sequence[CandidateMerge], limit: int,
               exclude: Iterable[tuple[CardId, CardId]] = ()) -> list[CandidateMerge]:
    """The `limit` candidate merges the model is least sure of (nearest its threshold), skipping the
    card pairs in `exclude` (e.g. those a participant already answered, or every judged pair when
    choosing what to ask an LLM) and pairs participants already decided; one question per card pair."""
    skip = {_pair(a, b) for a, b in exclude}
    out: list[CandidateMerge] = []
    for candidate in sorted(candidates, key=lambda c: (c.margin, _sort_key(c.card_a), _sort_key(c.card_b))):
        pair = (candidate.card_a, candidate.card_b)
        if candidate.decided_by == "participants" or pair in skip or candidate.card_a == candidate.card_b:
            continue
        skip.add(pair)
        out.append(candidate)
        if len(out) >= limit:
            break
    return out


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


def _lines(frame: pd.DataFrame, vectors: np.ndarray,
           policy_embeddings: Mapping[CardId, np.ndarray] | None) -> list[np.ndarray]:
    """One (k, d) array of unit vectors per card (its policies), or the card's own vector."""
    if policy_embeddings is None:
        return [vectors[i : i + 1] for i in range(len(vectors))]
    out = []
    for i, card_id in enumerate(frame["id"]):
        lines = policy_embeddings.get(card_id)
        if lines is None:
            raise DedupInputError(f"no policy embeddings for card {card_id!r}")
        lines = np.asarray(lines, dtype=np.float64).reshape(-1, vectors.shape[1]) if np.size(lines) else vectors[i : i + 1]
        norms = np.linalg.norm(lines, axis=1, keepdims=True)
        out.append(lines / np.where(norms > 0, norms, 1.0))
    return out


_STOP = frozenset(
    "a an the of to for and or in on at by with from that this these those which who whom what when where how as is"
    " are be been being it its their they them she he her his him user users person people individual can could"
    " would should may might will about into through over between own other others such more most very not no"
    " s".split())


def _stem(word: str) -> str:
    # Enough to make "MOMENTS"/"moment" and "choices"/"choice" one term; not a linguistic stemmer.
    return word.lower()[:6].rstrip("s")


def _attended_nouns(policy: str) -> set[str]:
    """The thing a policy attends to: its leading capitalised words ("MOMENTS where ...", the study's
    format), else its first content word."""
    match = re.match(r"^[^A-Za-z]*((?:[A-Z][A-Z'\-]+\b[\s,/&]*(?:and\s+|or\s+)?)+)", policy)
    if match:
        words = [w for w in re.findall(r"[A-Z][A-Z'\-]+", match.group(1)) if w.lower() not in _STOP]
        if words:
            return {_stem(w) for w in words}
    words = [w for w in re.findall(r"[a-zA-Z]+", policy.lower()) if w not in _STOP]
    return {_stem(words[0])} if words else set()


def _content_words(text: str) -> set[str]:
    return {_stem(w) for w in re.findall(r"[a-z]+", text.lower()) if w not in _STOP and len(w) > 2}


def _jaccard(sets: list[set[str]], rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Jaccard overlap of sets[rows[i]] and sets[cols[i]], through a sparse term matrix."""
    vocabulary: dict[str, int] = {}
    indices, indptr = [], [0]
    for terms in sets:
        indices += [vocabulary.setdefault(t, len(vocabulary)) for t in sorted(terms)]
        indptr.append(len(indices))
    matrix = sparse.csr_matrix((np.ones(len(indices)), indices, indptr), shape=(len(sets), max(len(vocabulary), 1)))
    sizes = np.diff(matrix.indptr)
    inter = np.asarray(matrix[rows].multiply(matrix[cols]).sum(axis=1)).ravel()
    union = sizes[rows] + sizes[cols] - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 0.0)


def pair_features(frame: pd.DataFrame, vectors: np.ndarray, lines: list[np.ndarray],
                  rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """The merge decision's `FEATURES` for the card pairs (rows[i], cols[i]): an (m, 6) array.

    `frame` and `vectors` as `canonical_values` validates them (sorted by id, unit vectors), `lines`
    one (k, d) unit array per card. Public so the benchmark fits the decision on exactly these.
    """
    counts = np.array([len(x) for x in lines])
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    every = np.vstack(lines).astype(np.float32)
    # Per policy line, its best cosine among each card's policies: (lines, cards), in row blocks so one
    # BLAS call does the work and memory stays at a block of line-by-line similarities.
    best = np.empty((len(every), len(lines)), dtype=np.float32)
    for start in range(0, len(every), LINE_BLOCK):
        block = every[start : start + LINE_BLOCK] @ every.T
        best[start : start + LINE_BLOCK] = np.maximum.reduceat(block, starts, axis=1)
    # mean over card i's policies of their best match in card j, and the share with a close counterpart
    best_mean = np.add.reduceat(best, starts, axis=0) / counts[:, None]
    close_share = np.add.reduceat((best >= POLICY_CLOSE).astype(np.float32), starts, axis=0) / counts[:, None]
    policies = [[str(p) for p in ps] for ps in frame["policies"]]
    return np.column_stack([
        np.einsum("ij,ij->i", vectors[rows], vectors[cols]),
        (best_mean[rows, cols] + best_mean[cols, rows]) / 2,
        np.minimum(close_share[rows, cols], close_share[cols, rows]),
        _jaccard([set().union(*map(_attended_nouns, ps)) for ps in policies], rows, cols),
        _jaccard([_content_words(" ".join(ps)) for ps in policies], rows, cols),
        _jaccard([_content_words(str(t)) for t in frame["title"]], rows, cols),
    ])


def _affinity(frame: pd.DataFrame, vectors: np.ndarray, lines: list[np.ndarray], params: DedupParams) -> np.ndarray:
    """(n, n): for two-stage, the probability that two cards are the same value (0 outside the
    candidates); for the embedding baseline, the cosine similarity. 1 - affinity is the linkage distance."""
    n = len(frame)
    similarity = np.clip(vectors @ vectors.T, -1.0, 1.0)
    if params.per_question:
        question = frame["question_id"].map(lambda q: None if pd.isna(q) else q).to_numpy()
        apart = question[:, None] != question[None, :]
    else:
        apart = np.zeros((n, n), dtype=bool)
    if params.method == "embedding":
        affinity = np.where(apart, -1.0, similarity)
    else:
        # Cards with the same title and policies are the same text: score each distinct text once.
        keys = [(str(t), tuple(sorted(map(str, p)))) for t, p in zip(frame["title"], frame["policies"], strict=True)]
        first: dict[tuple, int] = {}
        of = np.array([first.setdefault(key, i) for i, key in enumerate(keys)])
        distinct = np.array(sorted(first.values()))
        position = np.zeros(n, dtype=int)
        position[distinct] = np.arange(len(distinct))
        rows, cols = np.triu_indices(len(distinct), 1)
        rows, cols = distinct[rows], distinct[cols]
        rows, cols = rows[similarity[rows, cols] >= params.candidate_similarity], cols[similarity[rows, cols] >=
                                                                                       params.candidate_similarity]
        model = params.merge_model
        logits = pair_features(frame.iloc[distinct].reset_index(drop=True), vectors[distinct],
                               [lines[i] for i in distinct], position[rows], position[cols])
        probability = np.zeros((len(distinct), len(distinct)))
        probability[position[rows], position[cols]] = 1.0 / (1.0 + np.exp(-(logits @ np.asarray(model.weights)
                                                                             + model.intercept)))
        probability = np.maximum(probability, probability.T)
        np.fill_diagonal(probability, 1.0)
        affinity = probability[np.ix_(position[of], position[of])]
        affinity[apart] = 0.0
    np.fill_diagonal(affinity, 1.0)
    return affinity


def _clusters(frame: pd.DataFrame, affinity: np.ndarray, params: DedupParams
              ) -> tuple[list[list[CardId]], list[tuple[np.ndarray, np.ndarray, float]]]:
    """Card ids per cluster (each list sorted by card id), and the merges weighed: (rows of one group,
    rows of the other, mean affinity) for every merge the linkage made under the cut and for every
    pair of resulting clusters with some affinity between them."""
    if params.per_question:
        groups = defaultdict(list)
        for i, question in enumerate(frame["question_id"]):
            groups[None if pd.isna(question) else question].append(i)
        row_groups = list(groups.values())
    else:
        row_groups = [list(range(len(frame)))]
    ids = frame["id"].tolist()
    clusters: list[list[int]] = []
    weighed: list[tuple[np.ndarray, np.ndarray, float]] = []
    for rows in row_groups:
        if len(rows) == 1:
            clusters.append(rows)
            continue
        # Identical texts have distance 0 up to rounding; clip so scipy sees a metric.
        block = np.clip(1.0 - affinity[np.ix_(rows, rows)], 0.0, 2.0)
        np.fill_diagonal(block, 0.0)
        tree = linkage(squareform(block, checks=False), method=params.linkage)
        labels = fcluster(tree, t=params.cut, criterion="distance")
        members: list[list[int]] = [[r] for r in rows]
        for left, right, height, _ in tree:
            a, b = members[int(left)], members[int(right)]
            members.append(a + b)
            if height <= params.cut and 0 < 1.0 - height < CERTAIN:
                weighed.append((np.array(a), np.array(b), 1.0 - float(height)))
        by_label: dict[int, list[int]] = defaultdict(list)
        for row, label in zip(rows, labels, strict=True):
            by_label[int(label)].append(row)
        clusters.extend(by_label.values())
    # Pairs of clusters the cut kept apart, with their mean affinity (the average-linkage criterion).
    if len(clusters) > 1:
        indicator = sparse.csr_matrix((np.ones(len(frame)), (np.concatenate(clusters),
                                       np.repeat(np.arange(len(clusters)), [len(c) for c in clusters]))),
                                      shape=(len(frame), len(clusters)))
        sizes = np.array([len(c) for c in clusters], dtype=float)
        mean = np.asarray((indicator.T @ sparse.csr_matrix(np.maximum(affinity, 0.0)) @ indicator).todense())
        mean /= np.outer(sizes, sizes)
        a, b = np.triu_indices(len(clusters), 1)
        order = np.argsort(-mean[a, b], kind="stable")[:MAX_APART_CANDIDATES]
        for k in order:
            if mean[a[k], b[k]] > 0:
                weighed.append((np.array(clusters[a[k]]), np.array(clusters[b[k]]), float(mean[a[k], b[k]])))
    return [sorted((ids[r] for r in cluster), key=_sort_key) for cluster in clusters], weighed


#: Merges at or above this mean affinity (copies of one text) are not worth reporting as candidates.
CERTAIN = 0.999
#: How many pairs of clusters the cut kept apart are reported as candidates (the most similar ones).
MAX_APART_CANDIDATES = 500


def _pair(a: CardId, b: CardId) -> tuple[CardId, CardId]:
    return (a, b) if _sort_key(a) <= _sort_key(b) else (b, a)


def _evidence(judgements: pd.DataFrame | None, row_of: Mapping[CardId, int]) -> dict[tuple, tuple[str, str]]:
    """Card pair -> (decision "same" / "different", "participants" or "llm").

    Participants' answers (and wiser-than answers, source "wiser") are summed, same +weight and
    different -weight; a non-zero sum decides. Otherwise the latest LLM verdict decides. "not_sure"
    answers count for nothing. Pairs naming a card that is not among the cards are ignored.
    """
    if judgements is None or judgements.empty:
        return {}
    missing = {"card_a", "card_b", "answer", "source"} - set(judgements.columns)
    if missing:
        raise DedupInputError(f"judgements frame lacks column(s) {sorted(missing)}")
    bad = set(judgements["answer"]) - set(ANSWERS)
    if bad:
        raise DedupInputError(f"judgements: answer must be one of {', '.join(ANSWERS)}, got {sorted(bad)}")
    weights = judgements["weight"] if "weight" in judgements.columns else pd.Series(1.0, index=judgements.index)
    score: dict[tuple, float] = defaultdict(float)
    llm: dict[tuple, str] = {}
    for a, b, answer, source, weight in zip(judgements["card_a"], judgements["card_b"], judgements["answer"],
                                            judgements["source"], weights, strict=True):
        if a not in row_of or b not in row_of or a == b or answer == "not_sure":
            continue
        pair = _pair(a, b)
        if source == "llm":
            llm[pair] = answer
        else:
            score[pair] += float(weight) * (1.0 if answer == "same" else -1.0)
    out = {pair: (answer, "llm") for pair, answer in llm.items()}
    out.update({pair: ("same" if total > 0 else "different", "participants")
                for pair, total in score.items() if total != 0})
    return out


def _apply_evidence(clusters: list[list[CardId]], evidence: Mapping[tuple, tuple[str, str]],
                    affinity: np.ndarray, row_of: Mapping[CardId, int]
                    ) -> tuple[list[list[CardId]], dict[tuple, str]]:
    """Join the groups of pairs decided "same", then split groups holding a pair decided "different"."""
    if not evidence:
        return clusters, {}
    cluster_of = {c: k for k, cluster in enumerate(clusters) for c in cluster}
    groups = {k: set(cluster) for k, cluster in enumerate(clusters)}
    for (a, b), (decision, _) in sorted(evidence.items(), key=lambda item: (_sort_key(item[0][0]), _sort_key(item[0][1]))):
        if decision == "same" and cluster_of[a] != cluster_of[b]:
            keep, gone = sorted((cluster_of[a], cluster_of[b]))
            groups[keep] |= groups.pop(gone)
            for c in groups[keep]:
                cluster_of[c] = keep
    next_key = max(groups) + 1
    for (a, b), (decision, _) in sorted(evidence.items(), key=lambda item: (_sort_key(item[0][0]), _sort_key(item[0][1]))):
        if decision == "different" and cluster_of[a] == cluster_of[b]:
            k = cluster_of[a]
            # Each member goes with the card it more probably shares a value with (ties: card a).
            to_b = {c for c in groups[k] if c == b or (c != a and affinity[row_of[c], row_of[b]] > affinity[row_of[c], row_of[a]])}
            groups[k] -= to_b
            groups[next_key] = to_b
            for c in to_b:
                cluster_of[c] = next_key
            next_key += 1
    out = [sorted(group, key=_sort_key) for group in groups.values() if group]
    return out, {pair: source for pair, (_, source) in evidence.items()}


def _match_previous(clusters: list[list[CardId]], previous: Mapping[CardId, CanonicalId]) -> list[CanonicalId | None]:
    """The previous id each cluster keeps (None for new clusters).

    Greedy on member overlap: the largest overlap claims its id first, ties go to the smaller id
    and then to the cluster with the smaller first card.
    """
    if not previous:
        return [None] * len(clusters)
    overlaps: list[tuple[int, Any, int]] = []
    for index, cluster in enumerate(clusters):
        counts = Counter(previous[c] for c in cluster if c in previous)
        for canonical_id, overlap in counts.items():
            overlaps.append((overlap, canonical_id, index))
    overlaps.sort(key=lambda item: (-item[0], _sort_key(item[1]), item[2]))
    chosen: list[CanonicalId | None] = [None] * len(clusters)
    taken: set[CanonicalId] = set()
    for _overlap, canonical_id, index in overlaps:
        if chosen[index] is None and canonical_id not in taken:
            chosen[index] = canonical_id
            taken.add(canonical_id)
    return chosen


def _medoid(vectors: np.ndarray) -> int:
    """Index of the member most similar on average to the others (first one on ties)."""
    if len(vectors) <= 2:
        return 0
    similarity = vectors @ vectors.T
    mean = (similarity.sum(axis=1) - np.diag(similarity)) / (len(vectors) - 1)
    # Round so that float noise between identical texts cannot pick a later card over an earlier one.
    return int(np.argmax(np.round(mean, 9)))
