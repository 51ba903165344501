"""Card checks: every hard limit and every soft rule has a card that passes and a card that fails."""

from __future__ import annotations

import json
from dataclasses import replace
from types import SimpleNamespace

import pytest

from workbench.cardcheck import (
    DESCRIPTION_MAX_CHARS,
    ERROR_CODES,
    MAX_POLICIES,
    OUTCOME_MESSAGE,
    POLICY_MAX_CHARS,
    TITLE_MAX_CHARS,
    WARNING_CODES,
    CardShapeError,
    ValuesCard,
    begins_with_plural_noun,
    check_card,
    check_policy,
    title_not_name,
)

GOOD = ValuesCard(
    title="Honest Care for Hard Choices",
    description="Helping someone see their situation clearly while they make a hard choice. "
    "The choice stays in their hands.",
    policies=(
        "MOMENTS when someone is ready to hear the whole picture",
        "FEELINGS of fear behind a practical question",
        "OPTIONS the person has yet to consider",
    ),
)


def with_line(line: str) -> ValuesCard:
    return replace(GOOD, policies=(*GOOD.policies, line))


def codes_on(card: ValuesCard, field: str) -> set[str]:
    return {i.code for i in check_card(card).for_field(field)}


def test_a_good_card_has_no_errors_and_no_warnings() -> None:
    check = check_card(GOOD)
    assert check.errors == ()
    assert check.warnings == ()
    assert check.ok()


def test_dicts_and_objects_are_accepted_like_cards() -> None:
    as_dict = {"title": GOOD.title, "description": GOOD.description, "policies": list(GOOD.policies)}
    as_object = SimpleNamespace(**as_dict)
    assert check_card(as_dict) == check_card(GOOD) == check_card(as_object)


@pytest.mark.parametrize(
    ("card", "message_part"),
    [
        ({"title": "x", "description": "y"}, "'policies'"),
        ({"title": "x", "description": "y", "policies": "MOMENTS when"}, "list of lines"),
        ({"title": 3, "description": "y", "policies": []}, "'title' must be text"),
        ({"title": "x", "description": "y", "policies": ["ok", 4]}, "policies[1]"),
        (SimpleNamespace(title="x"), "no field 'description'"),
    ],
)
def test_a_shapeless_card_raises_a_clear_error(card: object, message_part: str) -> None:
    with pytest.raises(CardShapeError, match=message_part.replace("[", r"\[").replace("]", r"\]")):
        check_card(card)


# --- hard errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"title": "   "}, "title_empty", "title"),
        ({"title": "W" * (TITLE_MAX_CHARS + 1)}, "title_too_long", "title"),
        ({"description": ""}, "description_empty", "description"),
        ({"description": "Long. " + "x" * DESCRIPTION_MAX_CHARS}, "description_too_long", "description"),
        ({"policies": (*GOOD.policies, "  ")}, "policy_empty", "policies[3]"),
        (
            {"policies": (*GOOD.policies, "MOMENTS " + "x" * POLICY_MAX_CHARS)},
            "policy_too_long",
            "policies[3]",
        ),
        ({"policies": GOOD.policies[:1]}, "too_few_policies", "policies"),
        (
            {"policies": tuple(f"MOMENTS number {i} with topic{i}" for i in range(MAX_POLICIES + 1))},
            "too_many_policies",
            "policies",
        ),
        (
            {"policies": (*GOOD.policies, "  moments WHEN someone is   ready to hear the whole picture.")},
            "duplicate_policy",
            "policies[3]",
        ),
    ],
)
def test_hard_errors_block_even_when_every_code_is_overridden(change: dict, code: str, field: str) -> None:
    check = check_card(replace(GOOD, **change))
    assert code in {e.code for e in check.errors if e.field == field}
    assert not check.ok(overridden=set(ERROR_CODES) | set(WARNING_CODES))


def test_limits_themselves_are_allowed() -> None:
    card = replace(
        GOOD,
        title="Care " * 15 + "Care",  # 79 characters, 16 words: too many words is only a warning
        description="x" * DESCRIPTION_MAX_CHARS,
        policies=("MOMENTS " + "y" * (POLICY_MAX_CHARS - 8), *GOOD.policies[1:]),
    )
    assert len(card.policies[0]) == POLICY_MAX_CHARS
    assert check_card(card).errors == ()
    two = check_card(replace(GOOD, policies=GOOD.policies[:2]))
    assert two.errors == () and {w.code for w in two.warnings} == {"policy_count"}


def test_the_duplicate_message_names_the_line_it_repeats() -> None:
    check = check_card(with_line("FEELINGS of Fear behind a practical question "))
    [dup] = [e for e in check.errors if e.code == "duplicate_policy"]
    assert "Line 4 repeats line 2" in dup.message


# --- soft warnings --------------------------------------------------------------------------------

RULES = [
    # (code, failing lines, passing lines)
    (
        "policy_not_plural_noun",
        [
            "Being honest about the options",
            "The moments when someone hesitates",
            "Listens before advising",
            "UNDERSTANDING of the person's fears",
            "His worries about money",
        ],
        [
            "moments when someone hesitates",
            "OPPORTUNITIES for a second opinion",
            "SMALL SIGNS of worry",
            "PEOPLE who could offer support",
            "Children asking about the change",
        ],
    ),
    (
        "policy_too_short",
        [
            "SIGNS of safety",  # the old drafter's lines: two or three words, or one content word
            "FEELINGS of being right",
            "MOMENTS when someone close",
            "CHANCES to grow",
        ],
        [
            "SIGNS someone slept badly",
            "WAYS to disagree kindly",
            "FEELINGS of safety at home",
            "IMPACTS of one's actions on others",  # six words: enough, though "others" is a stop word
        ],
    ),
    (
        "policy_fragment",
        [
            "MOMENTS when a child after a long day at school",  # no verb in the clause
            "SIGNS that the quiet evenings at home",
            "PEOPLE who the family around them",
            "CHANCES to slow down first and rush their toward any decision",  # a word went missing
            "MOMENTS of the and calm at the end of a day",
        ],
        [
            "MOMENTS when the child asks their own questions",
            "PEOPLE who could offer support",
            "MOMENTS when facing a choice nobody else can make",
            "SIGNS that a parent apologised",
            "ACCOMPLISHMENTS that result from sticking to a routine",
            "MOMENTS when someone close calls late at night",
        ],
    ),
    (
        "policy_dangling",
        [
            "MOMENTS that touch on ten minutes without",  # the old drafter's cut-off lines
            "MOMENTS that touch on sitting next",
            "QUESTIONS a child asks about school and",
            "WORRIES a parent has about the",
            "CHANCES to talk it over with the",
        ],
        [
            "IDEAS the person is excited about",
            "PEOPLE someone can turn to",
            "MOMENTS when a child asks for help",
            "WORRIES a parent keeps coming back to",
        ],
    ),
    (
        "policy_names_person",
        [
            "MOMENTS when the girl feels judged",
            "WORRIES my older sister had about leaving",
            "MOMENTS when John felt heard",
            "FEELINGS her husband keeps to himself",
        ],
        [
            "MOMENTS when a person feels judged",
            "MOMENTS when someone turns to God for strength",
            "WORRIES someone has about leaving home",
        ],
    ),
    (
        "policy_vague",
        [
            "MOMENTS of deep connection",
            "CONVERSATIONS that are really honest",
            "MEANINGFUL chances to talk",
            "SIGNS someone is very tired",
        ],
        ["MOMENTS when someone repeats back what they heard", "SIGNS someone slept badly"],
    ),
    (
        "policy_outcome",
        [
            "OPPORTUNITIES to make sure everyone is safe",
            "STEPS that ensure fairness",
            "CHOICES made so that nobody gets hurt",
            "PLANS drawn up in order to protect the family",
        ],
        ["SIGNS that everyone feels safe", "MOMENTS when fairness is at stake"],
    ),
    (
        "policy_negative",
        [
            "MOMENTS when I do not interrupt",
            "WAYS to avoid conflict",
            "TIMES someone could never lie",
            "ANSWERS that don't lecture",
        ],
        ["WAYS to disagree kindly", "PAUSES that leave room to think"],
    ),
    (
        "policy_instrumental",
        [
            "FRIENDSHIPS worth keeping because it leads to a better job",
            "FAVOURS done in order to get ahead",
            "HABITS that help me achieve my goals",
            "CONNECTIONS that pay off later",
        ],
        ["FRIENDSHIPS that last through hard times", "HABITS that bring calm to a morning"],
    ),
    (
        "policy_expectations",
        [
            "CHOICES that match what others expect of me",
            "BEHAVIOURS that are socially acceptable",
            "SIGNS of approval from the community",
            "WAYS of fitting in at a new school",
        ],
        ["CHOICES that fit someone's own sense of right", "SIGNS of respect between neighbours"],
    ),
]


@pytest.mark.parametrize(("code", "failing", "passing"), RULES, ids=[r[0] for r in RULES])
def test_each_policy_rule_flags_failing_lines_and_spares_passing_ones(
    code: str, failing: list[str], passing: list[str]
) -> None:
    for line in failing:
        assert code in codes_on(with_line(line), "policies[3]"), line
    for line in passing:
        assert code not in codes_on(with_line(line), "policies[3]"), line


STORY = (
    "When my sister got pregnant at 22 she called me at midnight. I noticed that she kept asking what "
    "our parents would think, and I wanted to listen before saying anything."
)


@pytest.mark.parametrize(
    ("line", "copied"),
    [
        # The old drafter's verbatim chunk, people made general: still a copy.
        (
            "MOMENTS when someone close got pregnant at 22 someone called them at midnight",
            "got pregnant at 22 someone called them at midnight",
        ),
        (
            "SIGNS that someone kept asking what their parents would think",
            "that someone kept asking what their parents would think",
        ),
        ("CHANCES to listen before saying anything at all", None),  # five shared words: not a copy
        ("MOMENTS when someone worries what family will think", None),
        ("FEELINGS of fear behind a practical question", None),
    ],
)
def test_a_line_copying_the_story_is_flagged_with_the_copied_words(line: str, copied: str | None) -> None:
    card = with_line(line)
    issues = [w for w in check_card(card, story=STORY).warnings if w.code == "policy_copies_story"]
    assert [w.match for w in issues] == ([copied] if copied else [])
    assert "policy_copies_story" not in check_card(card).warning_codes  # no story, no copy check
    if copied:
        assert "word for word" in issues[0].message and issues[0].field == "policies[3]"


@pytest.mark.parametrize(
    ("title", "flagged"),
    [
        ("Paying Attention to Stop", "Paying Attention"),  # the old drafter's titles
        ("Paying Attention to Confidential", "Paying Attention"),
        ("What I Pay Attention To", "What I"),
        ("It should listen first", "should"),
        ("Care for the person.", "."),
        ("Honest Care for the", "the"),
        ("Listening Before Advising Without", "without"),
        ("Honest Care for Hard Choices", None),
        ("Sanctity of Life Above All", None),
        ("Patient Presence With a Tired Child", None),
    ],
)
def test_a_title_that_is_not_a_name_is_flagged(title: str, flagged: str | None) -> None:
    issues = [w for w in check_card(replace(GOOD, title=title)).warnings if w.code == "title_not_name"]
    assert [w.match for w in issues] == ([flagged] if flagged else [])


def test_the_studys_titles_read_as_names_and_its_lines_are_rarely_called_fragments(shared_datasets) -> None:
    rows = [r for r in json.loads((shared_datasets / "mge-dft" / "valuesCard.json").read_text())
            if r["quality"] == "ok"]
    titles = {r["title"] for r in rows}
    assert [t for t in titles if title_not_name(t)] == []
    lines = {p for r in rows for p in r["evaluationCriteria"]}
    shape = {"policy_too_short", "policy_fragment", "policy_dangling"}
    flagged = [p for p in lines if shape & {i.code for i in check_policy(p)}]
    # 835 distinct human lines; the new shape rules flag one of them ("RISE in anti-populism").
    assert len(lines) == 835 and flagged == ["RISE in anti-populism"]


def test_outcome_warning_uses_the_agreed_message() -> None:
    check = check_card(with_line("OPPORTUNITIES to make sure everyone is safe"))
    [outcome] = [w for w in check.warnings if w.code == "policy_outcome"]
    assert outcome.message == OUTCOME_MESSAGE
    assert outcome.message == (
        "This sounds like an outcome. What do you notice in the moment that tells you it matters?"
    )


def test_instrumental_phrases_are_not_also_called_outcomes() -> None:
    codes = codes_on(with_line("FAVOURS done in order to get ahead"), "policies[3]")
    assert "policy_instrumental" in codes and "policy_outcome" not in codes


def test_messages_quote_the_words_that_triggered_them() -> None:
    check = check_card(with_line("MOMENTS when the girl has a really hard time"))
    by_code = {w.code: w for w in check.warnings}
    assert "“the girl”" in by_code["policy_names_person"].message
    assert by_code["policy_names_person"].match == "the girl"
    assert "“really”" in by_code["policy_vague"].message


def test_overlapping_lines_warn_on_the_covered_line() -> None:
    card = with_line("FEELINGS of fear behind a question about money")
    # Line 2 ("fear behind a practical question") is not contained in line 4: different words.
    assert "policy_overlap" not in check_card(card).warning_codes
    covered = replace(
        GOOD,
        policies=(
            "FEELINGS of safety and trust",
            "MOMENTS when someone is ready to hear the whole picture",
            "FEELINGS of safety and trust at home",
        ),
    )
    [warning] = [w for w in check_card(covered).warnings if w.code == "policy_overlap"]
    assert warning.field == "policies[0]"
    assert "line 3" in warning.message


@pytest.mark.parametrize(
    ("title", "warned"),
    [
        ("Care", True),
        ("Honest Care", True),
        ("Honest Care Now", False),
        ("Honest Care for Hard Choices", False),
        ("Honest Care for the Hard Choices We Face", True),
    ],
)
def test_title_word_count_outside_three_to_six_warns(title: str, warned: bool) -> None:
    assert ("title_length" in codes_on(replace(GOOD, title=title), "title")) is warned


@pytest.mark.parametrize(("sentences", "warned"), [(1, False), (3, False), (4, True)])
def test_more_than_three_description_sentences_warns(sentences: int, warned: bool) -> None:
    description = " ".join(f"Sentence number {i} is here." for i in range(sentences))
    assert (
        "description_sentences" in codes_on(replace(GOOD, description=description), "description")
    ) is warned


@pytest.mark.parametrize(("n", "warned"), [(2, True), (3, False), (7, False), (8, True)])
def test_policy_count_outside_three_to_seven_warns(n: int, warned: bool) -> None:
    lines = tuple(f"MOMENTS about topic{i} and theme{i}" for i in range(n))
    check = check_card(replace(GOOD, policies=lines))
    assert check.errors == ()
    assert ("policy_count" in check.warning_codes) is warned


# --- confirming -----------------------------------------------------------------------------------


def test_ok_needs_every_warning_code_overridden() -> None:
    check = check_card(with_line("WAYS to avoid the girl at school"))
    assert check.errors == ()
    assert check.warning_codes == {"policy_negative", "policy_names_person"}
    assert not check.ok()
    assert not check.ok(overridden={"policy_negative"})
    assert [w.code for w in check.outstanding({"policy_negative"})] == ["policy_names_person"]
    assert check.ok(overridden={"policy_negative", "policy_names_person"})


def test_every_issue_has_a_known_code_a_field_and_a_message() -> None:
    card = replace(
        GOOD,
        title="Care",
        description="One. Two. Three. Four.",
        policies=("the girl should not", "the girl should not", "MOMENTS to make sure of deep approval"),
    )
    check = check_card(card)
    for issue in (*check.errors, *check.warnings):
        assert issue.code in (ERROR_CODES if issue.severity == "error" else WARNING_CODES)
        assert issue.field in ("title", "description", "policies") or issue.field.startswith("policies[")
        assert len(issue.message) > 20


# --- the heuristic on the study's own data ----------------------------------------------------------


def test_study_cards_pass_the_hard_checks_and_plural_leads_are_recognised(shared_datasets) -> None:
    rows = json.loads((shared_datasets / "mge-dft" / "valuesCard.json").read_text())
    cards = [r for r in rows if r["quality"] == "ok"]
    assert len(cards) == 625
    for r in cards:
        check = check_card(
            {"title": r["title"], "description": r["instructionsShort"], "policies": r["evaluationCriteria"]}
        )
        assert check.errors == (), (r["id"], check.errors)
    plural_leads = {"OPPORTUNITIES", "MOMENTS", "FEELINGS", "SIGNS", "ACTIONS", "EMOTIONS", "WAYS"}
    lines = [p for r in cards for p in r["evaluationCriteria"] if p.split()[0] in plural_leads]
    assert len(lines) > 300
    assert all(begins_with_plural_noun(p) for p in lines)
    # The study's singular mass-noun leads ("UNDERSTANDING of ...") are what the rule asks to change.
    singular = [p for r in cards for p in r["evaluationCriteria"] if p.split()[0] == "UNDERSTANDING"]
    assert singular and not any(begins_with_plural_noun(p) for p in singular)


@pytest.mark.parametrize(("line", "question", "flagged"), [
    # The role a question names is the situation's, not someone from the participant's story.
    ("FRUSTRATIONS the child cannot yet put into words",
     "A child who refuses homework. My 10-year-old refuses to do his homework.", False),
    ("WORRIES the father has about leaving his own home", "My father is 84 and can't live alone.", False),
    ("REASONS the kids give for staying up late", "How much screen time should my kids get?", False),
    # Without the question, or for a person the question does not name, the check stays.
    ("FRUSTRATIONS the child cannot yet put into words", "", True),
    ("SIGNS the girl is scared of her parents", "I'm 19 and pregnant. My parents are very religious.", True),
    ("MOMENTS when my son asks his own questions", "A child who refuses homework.", True),
])
def test_the_person_check_knows_the_roles_a_question_names(line, question, flagged):
    codes = {i.code for i in check_policy(line, question=question)}
    assert ("policy_names_person" in codes) == flagged
    card = {"title": "A Name For It", "description": "What it is.", "policies": [line, "MOMENTS of calm after school"]}
    assert ("policy_names_person" in check_card(card, question=question).warning_codes) == flagged
