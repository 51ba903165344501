"""Embedding cache behaviour and card text (fake encoder; one test loads the real model)."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from workbench.embed import (
    BUNDLED_MODEL_NAME,
    Embedder,
    EmbeddingError,
    InMemoryEmbeddingCache,
    card_text,
    text_hash,
)


class CountingEncoder:
    """Deterministic pseudo-embeddings; remembers every text it was asked to encode."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        rows = []
        for text in texts:
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")
            rows.append(np.random.default_rng(seed).normal(size=8))
        return np.array(rows)

    @property
    def texts(self) -> list[str]:
        return [t for call in self.calls for t in call]


def cards_frame(texts: dict[int, str]) -> pd.DataFrame:
    return pd.DataFrame({"id": list(texts), "text": list(texts.values())})


def test_second_embed_of_unchanged_cards_embeds_nothing() -> None:
    encoder = CountingEncoder()
    embedder = Embedder(encode=encoder, model_name="fake")
    cache = InMemoryEmbeddingCache()
    cards = cards_frame({1: "alpha", 2: "beta", 3: "gamma"})

    first = embedder.embed_cards(cards, cache)
    second = embedder.embed_cards(cards, cache)

    assert sorted(encoder.texts) == ["alpha", "beta", "gamma"]
    assert embedder.texts_embedded == 3
    assert len(cache) == 3
    for card_id in (1, 2, 3):
        np.testing.assert_array_equal(first[card_id], second[card_id])


def test_edited_and_new_cards_are_the_only_ones_embedded_again() -> None:
    encoder = CountingEncoder()
    embedder = Embedder(encode=encoder, model_name="fake")
    cache = InMemoryEmbeddingCache()
    embedder.embed_cards(cards_frame({1: "alpha", 2: "beta"}), cache)
    encoder.calls.clear()

    result = embedder.embed_cards(cards_frame({1: "alpha", 2: "beta, edited", 3: "new"}), cache)

    assert sorted(encoder.texts) == ["beta, edited", "new"]
    assert list(result) == [1, 2, 3]  # input order, not embedding order
    expected = encoder(["beta, edited"])[0]
    np.testing.assert_allclose(result[2], expected / np.linalg.norm(expected), rtol=1e-5)


def test_cache_is_keyed_by_model_name() -> None:
    cache = InMemoryEmbeddingCache()
    first, second = CountingEncoder(), CountingEncoder()
    Embedder(encode=first, model_name="model-a").embed_cards(cards_frame({1: "alpha"}), cache)
    Embedder(encode=second, model_name="model-b").embed_cards(cards_frame({1: "alpha"}), cache)
    assert second.texts == ["alpha"]
    key = (1, "model-b", text_hash("alpha"))
    assert key in cache.get([key])


def test_vectors_are_unit_length_and_in_input_order() -> None:
    embedder = Embedder(encode=CountingEncoder(), model_name="fake")
    result = embedder.embed_cards(cards_frame({5: "e", 4: "dd", 9: "ccc"}), InMemoryEmbeddingCache())
    assert list(result) == [5, 4, 9]
    for vector in result.values():
        assert vector.dtype == np.float32
        assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-6)


def test_progress_reports_cached_cards_as_done_and_ends_at_total() -> None:
    embedder = Embedder(encode=CountingEncoder(), model_name="fake", batch_size=2, chunk_size=2)
    cache = InMemoryEmbeddingCache()
    embedder.embed_cards(cards_frame({1: "a", 2: "b"}), cache)
    calls: list[tuple[int, int]] = []
    embedder.embed_cards(
        cards_frame({1: "a", 2: "b", 3: "c", 4: "d", 5: "e"}),
        cache,
        progress=lambda d, t: calls.append((d, t)),
    )
    assert calls == [(2, 5), (4, 5), (5, 5)]


def test_bad_cards_frames_name_the_problem() -> None:
    embedder = Embedder(encode=CountingEncoder(), model_name="fake")
    with pytest.raises(EmbeddingError, match="'text'"):
        embedder.embed_cards(pd.DataFrame({"id": [1]}), InMemoryEmbeddingCache())
    with pytest.raises(EmbeddingError, match="card id 1 appears twice"):
        embedder.embed_cards(
            cards_frame({1: "a"}).pipe(lambda f: pd.concat([f, f])), InMemoryEmbeddingCache()
        )
    with pytest.raises(EmbeddingError, match="card 7"):
        embedder.embed_cards(cards_frame({7: "  "}), InMemoryEmbeddingCache())


def test_card_text_is_title_then_sorted_policies() -> None:
    card = {"id": 3, "title": " Honest Care ", "policies": ["MOMENTS of b", "FEELINGS of a"]}
    assert card_text(card) == "Honest Care\nFEELINGS of a\nMOMENTS of b"
    reordered = {**card, "policies": ["FEELINGS of a", "MOMENTS of b"]}
    assert card_text(reordered) == card_text(card)
    with pytest.raises(EmbeddingError, match="card 3: field 'policies'"):
        card_text({**card, "policies": "MOMENTS of b"})
    with pytest.raises(EmbeddingError, match="card 3: field 'title'"):
        card_text({**card, "title": ""})


def test_missing_model_folder_fails_without_downloading(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("WORKBENCH_EMBED_MODEL", str(tmp_path / "nowhere"))
    embedder = Embedder()
    assert embedder.model_name == str(tmp_path / "nowhere")
    with pytest.raises(EmbeddingError, match="does not exist"):
        embedder.embed_cards(cards_frame({1: "alpha"}), InMemoryEmbeddingCache())


@pytest.mark.model
def test_bundled_model_embeds_similar_texts_close() -> None:
    embedder = Embedder()
    assert embedder.model_name == BUNDLED_MODEL_NAME
    vectors = embedder.embed_cards(
        cards_frame(
            {
                1: "Honest information\nFACTS presented without spin",
                2: "Honest information\nFACTS presented without any spin",
                3: "Playful parenting\nGAMES that turn homework into fun",
            }
        ),
        InMemoryEmbeddingCache(),
    )
    assert vectors[1].shape == (384,)
    assert float(vectors[1] @ vectors[2]) > 0.9
    assert float(vectors[1] @ vectors[3]) < 0.5
