"""Lines from the participant's own words: sound rewrites only, never what the old drafter produced."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.cardcheck import check_policy
from workbench.ownwords import generalise, own_words_lines

PREGNANCY = (
    "It should listen first and ask what she wants, because only she knows her situation. It shouldn't "
    "lecture her.",
    "When my sister got pregnant at 17, I noticed that she was scared of being judged by our parents. I "
    "felt relieved when she finally told me. I wanted to be honest with her without pushing her. What "
    "mattered was her freedom to choose.",
)
MOVING = (
    "The assistant should give clear facts about the options.",
    "I had to decide whether to move across the country for a job. I paid attention to how my kids felt "
    "about leaving their friends. I felt torn between loyalty and ambition.",
)
HOMEWORK = (
    "It should help the parent understand why the child resists.",
    "When my son was nine he cried over maths. I noticed he was exhausted after school and I paid "
    "attention to the moments when he asked his own questions.",
)


def lines(response: str, story: str) -> list[str]:
    return [line.text for line in own_words_lines(response, story)]


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        (
            PREGNANCY,
            [
                "SIGNS that someone is scared of being judged by their parents",
                "CHANCES to be honest with them without pushing them",
                "MOMENTS when someone's freedom to choose is at stake",
            ],
        ),
        (MOVING, ["SIGNS of how children feel about leaving their friends",
                  "FEELINGS of being torn between loyalty and ambition"]),
        (HOMEWORK, ["MOMENTS when a child asks their own questions", "SIGNS that a child is exhausted after school"]),
        (("", "My friend Maria was in an abusive relationship. I kept thinking about her safety."),
         ["MOMENTS when someone's safety is at stake"]),
    ],
    ids=["pregnancy", "moving", "homework", "named-friend"],
)
def test_cue_sentences_become_lines_in_the_studys_form(answers: tuple[str, str], expected: list[str]) -> None:
    assert lines(*answers) == expected


# Stories of the kind that made the old drafter write the bad lines; none may come back.
OLD_BAD = [
    ("", "We sat next to him for ten minutes without his phone. I noticed he was sitting next to me."),
    ("It feels right.", "When my sister got pregnant at 22 someone called her at midnight. It feels right to slow "
     "down first and not rush her toward any decision."),
    ("", "I noticed she started saying she was stupid."),  # "a child ... a child": pronoun soup
    ("", "I learned that what matters is having people around you."),  # "you" left in
    ("", "I wanted to quit basketball at thirteen."),  # an age: a particular of one story
    ("", "I noticed that I was tired."),  # the narrator left in
    ("", "I felt that."),
]


@pytest.mark.parametrize(("response", "story"), OLD_BAD)
def test_fragments_soup_narrators_and_particulars_give_no_line(response: str, story: str) -> None:
    assert lines(response, story) == []


def test_people_become_roles_anyone_could_have() -> None:
    assert generalise("my son said", "someone") == "a child said"
    assert generalise("I called my parents", "someone") == "I called their parents"
    assert generalise("her fear of my sister's anger") == "their fear of someone close's anger"
    assert generalise("when Maria called him") == "when someone called them"
    assert generalise("she was tired", "a child") == "a child was tired"


VOCAB = (
    "I noticed that felt like wanted to when my sister John the girl chance for to really deep not "
    "make sure safety her him their freedom honest , . ; ? ! — was scared judged choose 17 café "
    "paid attention cared about moments kids son was were is asked helped me we us it someone".split()
)


@settings(max_examples=120, deadline=None)
@given(st.lists(st.sampled_from(VOCAB), max_size=60), st.text(max_size=120))
def test_every_line_from_any_text_passes_every_card_check(tokens: list[str], noise: str) -> None:
    text = " ".join(tokens)
    response, story = text + noise, noise + text
    found = lines(response, story)
    assert len(found) <= 3
    for line in found:
        assert check_policy(line, story=f"{response}\n{story}") == (), line
