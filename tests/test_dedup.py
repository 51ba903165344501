"""Canonical values: grouping, stable ids across re-runs, facilitator overrides, real-model check."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workbench.dedup import (
    DedupInputError,
    DedupParams,
    Overrides,
    Split,
    canonical_values,
    least_sure,
)

DIM = 16


def topic_vector(topic: int, jitter: int) -> np.ndarray:
    """A unit vector near basis axis `topic`; cards of one topic are within ~0.02 cosine distance."""
    vector = np.zeros(DIM)
    vector[topic] = 1.0
    vector += np.random.default_rng(1000 * topic + jitter).normal(scale=0.1, size=DIM)
    return vector / np.linalg.norm(vector)


def make_cards(topics: dict[int, int], questions: dict[int, str] | None = None) -> tuple[pd.DataFrame, dict]:
    """Cards `id -> topic`; titles name the topic and card so representatives are recognisable."""
    rows, vectors = [], {}
    for card_id, topic in topics.items():
        rows.append(
            {
                "id": card_id,
                "title": f"Topic {topic} card {card_id}",
                "description": f"About topic {topic}",
                "policies": [f"MOMENTS of topic {topic}", f"CHOICES of card {card_id}"],
                "question_id": (questions or {}).get(card_id, "q1"),
            }
        )
        vectors[card_id] = topic_vector(topic, card_id)
    return pd.DataFrame(rows), vectors


BASE = {1: 0, 2: 0, 3: 0, 4: 1, 5: 1, 6: 2, 7: 3, 8: 3}


def groups(result) -> set[frozenset]:
    return {frozenset(v.member_ids) for v in result.values}


def test_cards_group_by_topic_and_ids_follow_first_card() -> None:
    cards, vectors = make_cards(BASE)
    result = canonical_values(cards, vectors)
    assert groups(result) == {frozenset({1, 2, 3}), frozenset({4, 5}), frozenset({6}), frozenset({7, 8})}
    assert [v.id for v in result.values] == [1, 2, 3, 4]
    assert dict(result.assignment) == {1: 1, 2: 1, 3: 1, 4: 2, 5: 2, 6: 3, 7: 4, 8: 4}
    assert result.assignment_frame().shape == (8, 2)
    assert result.values_frame()["n_members"].tolist() == [3, 2, 1, 2]


def test_array_embeddings_aligned_with_rows_give_the_same_result() -> None:
    cards, vectors = make_cards(BASE)
    matrix = np.stack([vectors[i] for i in cards["id"]])
    assert canonical_values(cards, matrix).assignment == canonical_values(cards, vectors).assignment


def test_representative_is_the_medoid() -> None:
    cards, _ = make_cards({1: 0, 2: 0, 3: 0})
    angle = 0.1
    vectors = {  # card 3 lies between cards 1 and 2
        1: np.array([np.cos(angle), np.sin(angle)]),
        2: np.array([np.cos(angle), -np.sin(angle)]),
        3: np.array([1.0, 0.0]),
    }
    (value,) = canonical_values(cards, vectors).values
    assert value.representative_id == 3
    assert value.title == "Topic 0 card 3"
    assert value.policies == ("MOMENTS of topic 0", "CHOICES of card 3")
    assert value.description == "About topic 0"


def test_same_input_in_any_row_order_gives_the_same_ids() -> None:
    cards, vectors = make_cards(BASE)
    first = canonical_values(cards, vectors)
    shuffled = cards.sample(frac=1.0, random_state=3)
    second = canonical_values(shuffled, vectors, previous=None)
    again = canonical_values(cards, vectors, previous=first.assignment)
    assert dict(first.assignment) == dict(second.assignment) == dict(again.assignment)


def test_one_new_card_keeps_every_old_id() -> None:
    cards, vectors = make_cards(BASE)
    first = canonical_values(cards, vectors)
    # Card 0 sorts before every other card: without `previous` it would take id 1 and shift the rest.
    more_cards, more_vectors = make_cards({**BASE, 0: 2, 9: 5})
    second = canonical_values(more_cards, more_vectors, previous=first.assignment)
    for card_id, canonical_id in first.assignment.items():
        assert second.assignment[card_id] == canonical_id
    assert second.assignment[0] == first.assignment[6]  # joined card 6's value
    assert second.assignment[9] == 5  # a new value gets the next free id
    assert canonical_values(more_cards, more_vectors).assignment[0] == 1  # what previous prevented


def test_ids_follow_the_larger_part_when_a_value_breaks_up() -> None:
    cards, vectors = make_cards(BASE)
    first = canonical_values(cards, vectors)
    moved = dict(vectors)
    moved[3] = topic_vector(7, 3)  # card 3 edited into something else
    second = canonical_values(cards, moved, previous=first.assignment)
    assert second.assignment[1] == second.assignment[2] == first.assignment[1]
    assert second.assignment[3] == 5


def test_split_to_a_new_value_survives_reruns() -> None:
    cards, vectors = make_cards(BASE)
    first = canonical_values(cards, vectors)
    overrides = Overrides(splits=(Split(card_id=2),))
    split = canonical_values(cards, vectors, previous=first.assignment, overrides=overrides)
    assert split.assignment[2] == 5
    assert split.assignment[1] == split.assignment[3] == 1
    assert split.value(5).member_ids == (2,)

    rerun = canonical_values(cards, vectors, previous=split.assignment, overrides=overrides)
    assert dict(rerun.assignment) == dict(split.assignment)


def test_split_into_another_value_survives_reruns() -> None:
    cards, vectors = make_cards(BASE)
    first = canonical_values(cards, vectors)
    overrides = Overrides(splits=(Split(card_id=2, into=first.assignment[6]),))
    split = canonical_values(cards, vectors, previous=first.assignment, overrides=overrides)
    assert split.value(3).member_ids == (2, 6)
    rerun = canonical_values(cards, vectors, previous=split.assignment, overrides=overrides)
    assert dict(rerun.assignment) == dict(split.assignment)


def test_split_of_a_withdrawn_card_is_ignored() -> None:
    cards, vectors = make_cards(BASE)
    overrides = Overrides(splits=(Split(card_id=99),))
    assert (
        canonical_values(cards, vectors, overrides=overrides).assignment
        == canonical_values(cards, vectors).assignment
    )


def test_per_question_keeps_questions_apart() -> None:
    cards, vectors = make_cards({1: 0, 2: 0, 3: 0}, questions={1: "abortion", 2: "abortion", 3: "parenting"})
    across = canonical_values(cards, vectors)
    apart = canonical_values(cards, vectors, params=DedupParams(per_question=True))
    assert len(across.values) == 1 and across.values[0].question_ids == ("abortion", "parenting")
    assert groups(apart) == {frozenset({1, 2}), frozenset({3})}


def test_threshold_controls_granularity() -> None:
    cards, vectors = make_cards(BASE)
    coarse, fine = DedupParams(method="embedding", distance_threshold=1.5), DedupParams(method="embedding",
                                                                                         distance_threshold=0.001)
    assert len(canonical_values(cards, vectors, params=coarse).values) == 1
    assert len(canonical_values(cards, vectors, params=fine).values) == 8


def test_bad_input_names_the_problem() -> None:
    cards, vectors = make_cards(BASE)
    with pytest.raises(DedupInputError, match="no embedding for card"):
        canonical_values(cards, {k: v for k, v in vectors.items() if k != 5})
    with pytest.raises(DedupInputError, match=r"shape \(8, d\)"):
        canonical_values(cards, np.ones((7, DIM)))
    with pytest.raises(DedupInputError, match="'policies'"):
        canonical_values(cards.drop(columns=["policies"]), vectors)
    with pytest.raises(DedupInputError, match="appear more than once"):
        canonical_values(pd.concat([cards, cards.head(1)]), vectors)
    with pytest.raises(DedupInputError, match="card 4 .*'policies' must be a list"):
        canonical_values(cards.assign(policies=[["a"]] * 3 + ["just text"] + [["a"]] * 4), vectors)
    with pytest.raises(DedupInputError, match="question_id"):
        canonical_values(cards.drop(columns=["question_id"]), vectors, params=DedupParams(per_question=True))
    with pytest.raises(DedupInputError, match="distance_threshold"):
        DedupParams(distance_threshold=0)


# --- evidence: participants' answers and LLM verdicts -------------------------------------------


def answers(*rows: tuple) -> pd.DataFrame:
    """(card_a, card_b, answer[, source]) rows as the judgements frame canonical_values takes."""
    return pd.DataFrame([{"card_a": r[0], "card_b": r[1], "answer": r[2],
                          "source": r[3] if len(r) > 3 else "participant"} for r in rows])


def test_participants_saying_same_join_two_values_the_model_kept_apart() -> None:
    cards, vectors = make_cards(BASE)
    plain = canonical_values(cards, vectors)
    assert plain.assignment[4] != plain.assignment[6]
    joined = canonical_values(cards, vectors, judgements=answers((4, 6, "same"), (6, 4, "same"), (4, 6, "not_sure")))
    assert joined.assignment[4] == joined.assignment[5] == joined.assignment[6]
    # One "same" against two "different": the majority keeps them apart.
    outvoted = canonical_values(cards, vectors, judgements=answers((4, 6, "same"), (4, 6, "different"),
                                                                    (6, 4, "different")))
    assert outvoted.assignment[4] != outvoted.assignment[6]
    # "not sure" alone decides nothing.
    assert canonical_values(cards, vectors, judgements=answers((4, 6, "not_sure"))).assignment == plain.assignment


def test_participants_saying_different_split_a_value_between_the_two_cards() -> None:
    cards, vectors = make_cards(BASE)
    assert len({canonical_values(cards, vectors).assignment[c] for c in (1, 2, 3)}) == 1
    split = canonical_values(cards, vectors, judgements=answers((1, 2, "different"), (1, 2, "different")))
    assert split.assignment[1] != split.assignment[2]
    assert split.assignment[3] in (split.assignment[1], split.assignment[2])  # each member goes with one of them
    decided = {(c.card_a, c.card_b): c.decided_by for c in split.candidates}
    assert set(decided.values()) <= {"model", "participants"}


def test_an_llm_verdict_decides_only_where_participants_did_not() -> None:
    cards, vectors = make_cards(BASE)
    llm_same = answers((4, 6, "same", "llm"))
    assert canonical_values(cards, vectors, judgements=llm_same).assignment[4] == \
        canonical_values(cards, vectors, judgements=llm_same).assignment[6]
    overruled = pd.concat([llm_same, answers((4, 6, "different"))])
    result = canonical_values(cards, vectors, judgements=overruled)
    assert result.assignment[4] != result.assignment[6]


def test_answers_keep_ids_stable_across_reruns() -> None:
    cards, vectors = make_cards(BASE)
    said = answers((4, 6, "same"))
    first = canonical_values(cards, vectors, judgements=said)
    more_cards, more_vectors = make_cards({**BASE, 9: 2})
    second = canonical_values(more_cards, more_vectors, previous=first.assignment, judgements=said)
    assert all(second.assignment[c] == v for c, v in first.assignment.items())
    assert second.assignment[9] == second.assignment[6]


def test_bad_judgements_name_the_problem() -> None:
    cards, vectors = make_cards(BASE)
    with pytest.raises(DedupInputError, match="answer must be one of"):
        canonical_values(cards, vectors, judgements=answers((1, 2, "maybe")))
    with pytest.raises(DedupInputError, match="lacks column"):
        canonical_values(cards, vectors, judgements=pd.DataFrame({"card_a": [1], "card_b": [2]}))


def test_least_sure_orders_by_margin_and_skips_answered_pairs() -> None:
    cards, vectors = make_cards({**BASE, 9: 0, 10: 1})
    # The embedding baseline: its affinities (cosines) are never exactly 0 or 1, so every merge is weighed.
    result = canonical_values(cards, vectors, params=DedupParams(method="embedding"))
    assert result.candidates, "the linkage's merges are reported as candidates"
    margins = [c.margin for c in result.candidates]
    assert margins == sorted(margins)
    for candidate in result.candidates:
        assert candidate.merged == (result.assignment[candidate.card_a] == result.assignment[candidate.card_b])
        assert (candidate.value_a, candidate.value_b) == (result.assignment[candidate.card_a],
                                                          result.assignment[candidate.card_b])
    first = least_sure(result.candidates, 2)
    assert len(first) == 2 and first[0].margin <= first[1].margin
    skipped = least_sure(result.candidates, 2, exclude=[(first[0].card_b, first[0].card_a)])
    assert (first[0].card_a, first[0].card_b) not in {(c.card_a, c.card_b) for c in skipped}


def test_policy_vectors_change_the_decision_only_through_the_policy_features() -> None:
    cards, vectors = make_cards(BASE)
    # Each card's policies embedded as its own vector: the same as giving no policy vectors.
    as_card = {c: np.stack([v, v]) for c, v in vectors.items()}
    assert canonical_values(cards, vectors, policy_embeddings=as_card).assignment == \
        canonical_values(cards, vectors).assignment
    with pytest.raises(DedupInputError, match="no policy embeddings for card 5"):
        canonical_values(cards, vectors, policy_embeddings={c: v for c, v in as_card.items() if c != 5})


def test_anchors_give_matching_cards_their_value_and_never_share_one() -> None:
    # Two imported values of one topic (-100, -101: their own texts as pseudo-cards), one of topic 1.
    imported, vectors = make_cards({100: 0, 101: 0, 102: 1})
    cards, card_vectors = make_cards(BASE)
    cards = pd.concat([cards, imported.assign(id=-imported["id"])], ignore_index=True)
    vectors = {**card_vectors, **{-c: v for c, v in vectors.items()}}
    anchors = {-100: 100, -101: 101, -102: 102}
    result = canonical_values(cards, vectors, anchors=anchors)
    value = result.assignment
    assert set(value) == set(BASE), "anchors are not members"
    assert value[4] == value[5] == 102, "cards that match an imported value join it and keep its id"
    assert {value[1], value[2], value[3]} <= {100, 101}, "two anchors of one topic split it, never merge"
    assert value[6] not in (100, 101, 102) and value[7] == value[8] not in (100, 101, 102)
    every_card = {c for v in result.values for c in v.member_ids} | {v.representative_id for v in result.values}
    assert every_card <= set(BASE)
    assert all(c.card_a in BASE and c.card_b in BASE for c in result.candidates)
    # Participants saying two imported values are the same cannot join them.
    same = pd.DataFrame([{"card_a": -100, "card_b": -101, "answer": "same", "source": "participant"}])
    assert canonical_values(cards, vectors, anchors=anchors, judgements=same).assignment == result.assignment


# --- the real model on a handful of real MGE cards ---------------------------------------------


def mge_cards(shared_datasets: Path, ids: list[int]) -> pd.DataFrame:
    raw = json.loads((shared_datasets / "mge-dft" / "valuesCard.json").read_text())
    by_id = {card["id"]: card for card in raw}
    return pd.DataFrame(
        [
            {
                "id": i,
                "title": by_id[i]["title"],
                "description": by_id[i]["instructionsShort"],
                "policies": by_id[i]["evaluationCriteria"],
            }
            for i in ids
        ]
    )


@pytest.mark.model
def test_real_cards_near_duplicates_together_unrelated_apart(shared_datasets: Path) -> None:
    from workbench.embed import Embedder, InMemoryEmbeddingCache, card_text

    # 483 carries the study's "Nurturing Discipline" card word for word; 352 is that card with a
    # fifth policy added. 109 is about engaging with a child's confusion, 646 about weapons.
    cards = mge_cards(shared_datasets, [352, 483, 109, 646])
    texts = pd.DataFrame({"id": cards["id"], "text": [card_text(row) for _, row in cards.iterrows()]})
    assert texts["text"].nunique() == 4  # no two cards are the same text
    vectors = Embedder().embed_cards(texts, InMemoryEmbeddingCache())
    result = canonical_values(cards, vectors)
    assert result.assignment[352] == result.assignment[483]
    assert len({result.assignment[352], result.assignment[109], result.assignment[646]}) == 3
    assert result.value(result.assignment[352]).title == "Nurturing Discipline"


@pytest.mark.model
def test_real_variants_the_embedding_kept_apart_are_joined_by_what_they_attend_to(shared_datasets: Path) -> None:
    from workbench.embed import Embedder, InMemoryEmbeddingCache, card_text

    # 586 is the study's "Thorough Evaluation" (91) with two policies added; 114 keeps three of the
    # four policies of "Truth Seeking" (223), shortened. Their card vectors are at cosine 0.67 and 0.70:
    # one-stage average linkage at 0.30 keeps 586 apart (and, among all 625 cards, 114 too).
    cards = mge_cards(shared_datasets, [91, 586, 114, 223, 646, 109])
    texts = pd.DataFrame({"id": cards["id"], "text": [card_text(row) for _, row in cards.iterrows()]})
    parts = Embedder().embed_card_parts(texts, InMemoryEmbeddingCache())
    one_stage = canonical_values(cards, parts.cards, params=DedupParams(method="embedding"))
    assert one_stage.assignment[586] != one_stage.assignment[91]
    two_stage = canonical_values(cards, parts.cards, policy_embeddings=parts.lines)
    assert two_stage.assignment[586] == two_stage.assignment[91]
    assert two_stage.assignment[114] == two_stage.assignment[223]
    assert len({two_stage.assignment[c] for c in (91, 114, 646, 109)}) == 4
