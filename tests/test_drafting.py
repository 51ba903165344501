"""Drafting a card: the policy library, suggestions (sources, reasons, variety, one encode), titles and
descriptions, the disk cache, and `workbench interview draft`.

Selection logic is tested with a small bag-of-words encoder (deterministic, no torch); what the
suggestions are about is tested with the real model (marker `model`)."""

from __future__ import annotations

import json
import re
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from workbench import drafting
from workbench.cardcheck import check_card, check_policy, content_stems, title_not_name
from workbench.cli import app
from workbench.drafting import (
    REASONS,
    SOURCES,
    WEAK_NOTE,
    DraftCard,
    Suggestion,
    card_choice,
    draft_card,
    draft_description,
    draft_title,
    forget_library_vectors,
    library_vectors,
    load_library,
    suggest_policies,
)
from workbench.embed import Embedder
from workbench.errors import FormatError, InputError

FIXTURES = Path(__file__).parent / "fixtures" / "interview_answers.yaml"
runner = CliRunner()


def bag_of_words(texts: list[str]) -> np.ndarray:
    """A deterministic stand-in for the model: content words hashed into 256 dimensions."""
    out = np.zeros((len(texts), 256), dtype=np.float32)
    for i, text in enumerate(texts):
        for stem in content_stems(text) | {w.lower() for w in re.findall(r"[A-Za-z]+", text) if len(w) > 3}:
            out[i, zlib.crc32(stem.encode()) % 256] += 1.0
        out[i, 255] += 0.01  # no zero vector
    return out


class CountingEmbedder(Embedder):
    def __init__(self, encode, model_name: str) -> None:
        super().__init__(model_name=model_name, encode=encode)
        self.calls: list[list[str]] = []

    def encode(self, texts: list[str], *, batch_size: int | None = None) -> np.ndarray:
        self.calls.append(list(texts))
        return super().encode(texts, batch_size=batch_size)


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory):
    """One disk cache for the whole run (never the user's own): the real model encodes the library once."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORKBENCH_CACHE_DIR", str(tmp_path_factory.mktemp("vectors")))
        yield


@pytest.fixture(autouse=True)
def cache_dir(shared_cache):
    yield


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    """A test of its own disk cache and an empty memory cache."""
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))
    forget_library_vectors()
    yield
    forget_library_vectors()


@pytest.fixture
def toy(private_cache) -> CountingEmbedder:
    return CountingEmbedder(bag_of_words, model_name=f"bow-{id(object())}")


SMALL_LIBRARY = """\
themes:
  - theme: care
    name: Care
    gist: staying close to what someone is going through
    titles: [Care That Listens First, Gentle Presence in Hard Moments]
    policies:
      - FEELINGS of fear that sit behind a practical question
      - FEELINGS of fear that sit behind the practical question
      - WORDS that let someone know they were heard
  - theme: facts
    name: Understanding
    gist: getting the facts right
    titles: [Accurate and Complete Facts, Facts Before Opinions]
    policies:
      - RECORDS like court documents that settle a question
      - SOURCES a person can check for themselves
      - NUMBERS that give a sense of scale
  - theme: play
    name: Joy
    gist: making room for play
    titles: [Room for Joy Together]
    policies:
      - GAMES that turn a chore into something fun
      - MOMENTS of play that ease tension at home
"""


@pytest.fixture
def small_library(tmp_path) -> drafting.PolicyLibrary:
    path = tmp_path / "library.yaml"
    path.write_text(SMALL_LIBRARY)
    return load_library(path)


# --- the shipped library ---------------------------------------------------------------------------


def test_the_library_has_several_hundred_lines_over_many_kinds_of_value_and_each_passes_the_checks() -> None:
    library = load_library()
    assert len(library.policies) >= 400
    themes = {t.key for t in library.themes}
    assert len(themes) >= 25
    assert {"care", "autonomy", "honesty", "safety", "growth", "family", "faith", "fairness", "practical",
            "dignity", "courage", "patience", "community", "curiosity", "health"} <= themes
    per_theme = {k: sum(p.theme == k for p in library.policies) for k in themes}
    assert min(per_theme.values()) >= 8, per_theme
    for policy in library.policies:
        assert check_policy(policy.text) == (), policy.text
    for theme in library.themes:
        for title in theme.titles:
            assert title_not_name(title) is None and 3 <= len(title.split()) <= 6, title
        check = check_card({"title": theme.titles[0], "description": f"Choosing well here means {theme.gist}.",
                            "policies": [p.text for p in library.policies if p.theme == theme.key][:5]})
        assert check.errors == () and [w.code for w in check.warnings if w.field != "policies"] == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.replace("      - WORDS that let someone know they were heard",
                             "      - WAYS to avoid the girl"), r"themes\[0\] \(care\): policy 'WAYS to avoid the girl'"),
        (lambda t: t.replace("    gist: getting the facts right\n", ""), r"themes\[1\]: missing field 'gist'"),
        (lambda t: t.replace("GAMES that turn a chore into something fun", "NUMBERS that give a sense of scale"),
         "already appears in theme 'facts'"),
        (lambda t: "themes: {}", "a list 'themes'"),
    ],
)
def test_a_bad_library_file_is_refused_naming_theme_and_line(tmp_path, change, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(change(SMALL_LIBRARY))
    with pytest.raises(FormatError, match=message):
        load_library(path)


# --- suggestions (selection logic, toy encoder) ---------------------------------------------------


def test_suggestions_carry_their_source_and_a_reason_and_skip_near_duplicates(toy, small_library) -> None:
    story = "I noticed that my son was scared. The fear behind his practical question about school was real."
    found = suggest_policies("How should it answer?", "Listen to the fear first.", story, embedder=toy,
                             library=small_library, n=6)
    assert len(found) >= 4
    assert {s.source for s in found} <= set(SOURCES)
    assert "SIGNS that a child is scared" in [s.text for s in found if s.source == "own_words"]
    for s in found:
        assert s.reason == REASONS[s.source].format(theme=s.theme and small_library.theme(s.theme).name.lower()
                                                    ).replace(" ()", "") or s.source != "library"
        assert s.reason and isinstance(s, Suggestion)
    fear = [s.text for s in found if s.text.startswith("FEELINGS of fear")]
    assert len(fear) == 1, "two lines saying the same thing: one is suggested"
    assert all(sum(s.theme == t and s.source == "library" for s in found) <= drafting.MAX_PER_THEME
               for t in ("care", "facts", "play"))


def test_a_suggestion_costs_one_encode_once_the_library_is_cached(toy, small_library) -> None:
    library_vectors(small_library, toy)
    toy.calls.clear()
    others = [{"id": 7, "title": "Fun", "policies": ["GAMES that make homework feel like play at home"]}]
    suggest_policies("q?", "Make it fun.", "We played games with spelling words.", others=others,
                     embedder=toy, library=small_library)
    suggest_policies("q?", "Make it fun again.", "We played games.", others=others, embedder=toy,
                     library=small_library)
    assert len(toy.calls) == 2
    assert "GAMES that make homework feel like play at home" in toy.calls[0]  # others' lines: once, then cached
    assert "GAMES that make homework feel like play at home" not in toy.calls[1]


def test_library_vectors_survive_in_the_disk_cache(toy, small_library, tmp_path, monkeypatch) -> None:
    first = library_vectors(small_library, toy)
    assert len(toy.calls) == 1 and list((tmp_path / "cache").glob("policy-library-*.npz"))
    forget_library_vectors()  # a new process
    second = library_vectors(small_library, toy)
    assert len(toy.calls) == 1, "read from disk, not encoded again"
    assert np.allclose(first.policies, second.policies) and np.allclose(first.titles, second.titles)
    forget_library_vectors()
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", "/proc/no-such-place")  # unwritable: still works, encodes
    assert library_vectors(small_library, toy).policies.shape == first.policies.shape


def test_others_can_be_the_stores_cards_frame(toy, small_library, tmp_path) -> None:
    from workbench import config
    from workbench.deliberation import load_deliberation
    from workbench.demo import load_world, simulate
    from workbench.store import Store

    spec = load_deliberation(config.DEMO_DELIBERATION)
    with Store(tmp_path / "s.duckdb") as store:
        store.import_bundle(simulate(spec, load_world(config.DATA / "demo_values.yaml"), 6, seed=1))
        frame = store.cards(question_id="demo/homework")
    found = suggest_policies("q?", "Make homework calmer.", "Evenings were tired and loud at home.",
                             others=frame, embedder=toy, library=small_library, n=8)
    theirs = [s for s in found if s.source == "others"]
    assert theirs and {s.card_id for s in theirs} <= set(frame["id"])
    assert "FEELINGS of tiredness or overwhelm in the evening" in [s.text for s in theirs]


def test_others_lines_that_fail_a_check_or_repeat_a_line_are_not_proposed(toy, small_library) -> None:
    others = [
        {"id": 1, "title": "A", "policies": ["GAMES that make spelling practice fun for a child at home",
                                            "WAYS to avoid the girl at school"]},
        {"id": 2, "title": "B", "policies": ["games that make spelling practice fun for a child at home"]},
    ]
    found = suggest_policies("q?", "Make spelling fun.", "We made spelling practice into games at home.",
                             others=others, embedder=toy, library=small_library, n=6)
    theirs = [s for s in found if s.source == "others"]
    assert [(s.text, s.card_id) for s in theirs] == [("GAMES that make spelling practice fun for a child at home", 1)]
    assert theirs[0].reason.startswith("Others who answered this question")


@pytest.mark.parametrize(
    ("args", "message"),
    [(("q", "", "  "), "response and story are both empty"), (("q", 3, "s"), "response must be text")],
)
def test_bad_input_is_refused_naming_the_field(toy, small_library, args, message: str) -> None:
    with pytest.raises(InputError, match=message):
        suggest_policies(*args, embedder=toy, library=small_library)


# --- titles and descriptions -------------------------------------------------------------------------


def test_title_and_description_come_from_the_themes_of_the_chosen_lines() -> None:
    library = load_library()
    lines = ["RECORDS like court documents and official reports that settle a question",
             "FACTS about an event that sources agree on", "SOURCES a person can check for themselves"]
    title = draft_title(lines)
    assert title in library.theme("understanding").titles
    description = draft_description(lines)
    assert description.startswith("Choosing well here means getting the facts right")
    assert "records like court documents and official reports that settle a question" in description
    card = check_card({"title": title, "description": description, "policies": lines})
    assert [w for w in card.warnings if w.field in ("title", "description")] == []
    # A typed line votes for the theme whose lines share its words.
    assert draft_title(["MOMENTS when a child asks their own questions about a subject and why"]) in (
        library.theme("childhood").titles)
    assert draft_title([]) in library.themes[0].titles


def test_a_long_description_keeps_to_the_limit_and_still_ends_a_sentence() -> None:
    long = "MOMENTS when " + "a person keeps on weighing one more thing " * 12
    description = draft_description([long, long + "again"])
    assert len(description) <= 600 and description.endswith(".")


def test_a_draft_prints_as_the_cli_json_shape() -> None:
    s = Suggestion("MOMENTS when a child asks their own questions", "own_words", REASONS["own_words"], 0.5)
    draft = DraftCard("Respect for a Growing Child", "Choosing well.", (s,), (s,))
    assert draft.to_dict() == {"title": "Respect for a Growing Child", "description": "Choosing well.",
                               "policies": [{"text": s.text, "source": "own_words"}]}


# --- with the real model ------------------------------------------------------------------------------


def fixture_answer(question: str, n: int = 0) -> tuple[str, str, str]:
    data = yaml.safe_load(FIXTURES.read_text())
    q = next(q for q in data["questions"] if q["question"] == question)
    from workbench import config
    from workbench.deliberation import load_deliberation

    prompts = {f"demo/{x.slug}": x.prompt for x in load_deliberation(config.DEMO_DELIBERATION).questions}
    a = q["answers"][n]
    return prompts[question], " ".join(a["response"].split()), " ".join(a["story"].split())


@pytest.mark.model
@pytest.mark.parametrize(
    ("question", "n", "expected"),
    [
        ("demo/riot", 0, r"court|records|sources"),
        ("demo/homework", 0, r"a child asks their own questions"),
        ("demo/pregnancy", 1, r"pregnan|option|clinic"),
    ],
)
def test_real_suggestions_are_about_what_the_participant_wrote(question: str, n: int, expected: str) -> None:
    text, response, story = fixture_answer(question, n)
    found = suggest_policies(text, response, story)
    assert len(found) >= 4
    assert [s.text for s in found if check_policy(s.text, story=f"{response}\n{story}")] == []
    assert re.search(expected, " ".join(s.text for s in found[:3]), re.IGNORECASE), [s.text for s in found]
    # Varied, not one thought said five ways: no two lines near duplicates, and no more library lines of
    # one theme than the cap. (Until the fifth round this asked for three themes; since the pool follows
    # the theme the story is about, a story all about one thing may get three distinct lines of its theme.)
    per_theme = Counter(s.theme for s in found if s.source == "library")
    assert max(per_theme.values()) <= drafting.RANKING.max_per_theme, per_theme
    vectors = drafting.default_embedder().encode([s.text for s in found])
    similar = vectors @ vectors.T
    np.fill_diagonal(similar, 0.0)
    assert similar.max() < drafting.NEAR_DUPLICATE
    draft = draft_card(text, response, story)
    assert 2 <= len(draft.policies) <= 5 and draft.title and draft.description and draft.note is None
    assert check_card(draft.values_card(), story=f"{response}\n{story}").errors == ()


@pytest.mark.model
def test_real_model_a_fitting_line_of_the_theme_the_story_is_about_is_suggested() -> None:
    """Issue 12, fifth round: with the pool drawn on the plain relevance and two lines per theme, the
    library's line for exactly this answer was never suggested (a text written for this test, not a
    fixture); the pool drawn on the theme-blended relevance, three per theme, suggests it."""
    question = ('"My father has Alzheimer’s and every morning asks when my mum is coming home. She died last '
                'spring. Do I remind him?" How should an assistant answer this?')
    response = ("It should say reminding him only makes him lose her again every morning. Go along with the "
                "feeling, not the fact.")
    story = ("When my aunt had dementia she asked for her sister daily. We learned to say 'you miss her, don't "
             "you' and she would hold my hand and calm down.")
    line = "WAYS of answering a confused question that meet the feeling rather than correct the fact"
    before = suggest_policies(question, response, story, ranking=drafting.THIRD_ROUND_RANKING)
    assert line not in [s.text for s in before], "the old ranking now finds it: this test no longer shows the fix"
    found = suggest_policies(question, response, story)
    assert line in [s.text for s in found[:3]], [s.text for s in found]
    assert len(found) >= 4
    assert sum(s.theme == "memory_loss" for s in found) <= drafting.RANKING.max_per_theme


@pytest.mark.model
def test_real_model_others_card_close_to_the_story_is_proposed_with_its_card() -> None:
    text, response, story = fixture_answer("demo/homework", 0)
    others = [{"id": 41, "title": "Tired Evenings", "policies": ["FEELINGS of tiredness or overwhelm in the evening",
                                                                "ROUTINES that make homework time predictable"]}]
    found = suggest_policies(text, response, story, others=others)
    theirs = {s.text: s.card_id for s in found if s.source == "others"}
    assert theirs and set(theirs.values()) == {41}


@pytest.mark.model
def test_workbench_interview_draft_prints_the_card_as_json(tmp_path) -> None:
    _, response, story = fixture_answer("demo/homework", 0)
    result = runner.invoke(app, ["interview", "draft", "--question", "demo/homework", "--response", response,
                                 "--story", story])
    assert result.exit_code == 0, result.output
    card = json.loads(result.stdout[result.stdout.index("{"):])
    assert set(card) == {"title", "description", "policies"}
    assert len(card["policies"]) >= 4 and {p["source"] for p in card["policies"]} <= set(SOURCES)
    assert "MOMENTS when a child asks their own questions" in [p["text"] for p in card["policies"]]

    db = tmp_path / "demo.duckdb"
    assert runner.invoke(app, ["demo", "--db", str(db), "--participants", "12", "--invites", "0"]).exit_code == 0
    result = runner.invoke(app, ["interview", "draft", "--db", str(db), "--question", "homework", "--response",
                                 response, "--story", story, "--suggestions"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout[result.stdout.index("{"):])
    assert all(s["reason"] for s in out["suggestions"])

    text = runner.invoke(app, ["interview", "draft", "--question", "Should I tell my boss I am job hunting?",
                               "--response", "Be honest but careful.", "--story", "I told my boss once and it went fine."])
    assert text.exit_code == 0, text.output


def test_workbench_interview_draft_names_an_unknown_question_id() -> None:
    result = runner.invoke(app, ["interview", "draft", "--question", "demo/nope", "--response", "r", "--story", "s"])
    assert result.exit_code == 2
    assert "no question 'demo/nope'" in result.output and "demo/homework" in result.output
    result = runner.invoke(app, ["interview", "draft", "--question", "x", "--response", "r", "--db", "/nope/x.duckdb"])
    assert result.exit_code == 2 and "no database at /nope/x.duckdb" in result.output


@pytest.mark.model
def test_the_model_warms_up_once_per_process_in_the_background() -> None:
    from workbench import drafting
    from workbench.embed import _MODELS

    thread = drafting.warm_up(wait=True)
    assert drafting.warmed_up() and drafting.warm_up() is thread, "once per process"
    assert drafting.default_embedder().model_path in _MODELS, "the model is loaded"
    text, response, story = fixture_answer("demo/homework", 0)
    assert len(suggest_policies(text, response, story)) >= 4


# --- third round (issue 12): failure modes read on the tune, read, held_out and held_out_2 drafts ---------


def test_a_changed_library_gets_its_own_vectors_not_the_cached_ones(toy, tmp_path) -> None:
    path = tmp_path / "library.yaml"
    path.write_text(SMALL_LIBRARY)
    before = library_vectors(load_library(path), toy)
    path.write_text(SMALL_LIBRARY + "      - ROUTINES of play that a family keeps on weekends\n")
    changed = load_library(path)
    after = library_vectors(changed, toy)
    assert len(toy.calls) == 2, "the edited file is encoded again"
    assert after.policies.shape[0] == before.policies.shape[0] + 1 == len(changed.policies)
    assert len(list((tmp_path / "cache").glob("policy-library-*.npz"))) == 2


def test_a_line_alone_in_its_theme_is_lifted_less_than_a_line_whose_theme_fits(small_library) -> None:
    # Equal relevance for a care line and a facts line; the facts theme has two more close lines, the
    # care theme none: a single shared word should not rank the lone line as high.
    keys = [p.theme for p in small_library.policies]
    relevance = np.array([0.5 if k == "facts" else 0.1 for k in keys], dtype=np.float32)
    lone = keys.index("care")
    relevance[lone] = 0.5
    fitted = drafting._with_theme_fit(relevance, small_library, None)
    facts = keys.index("facts")
    assert fitted[facts] > fitted[lone]
    # the question moves a theme's fit too
    on_question = np.array([0.9 if k == "care" else 0.0 for k in keys], dtype=np.float32)
    assert drafting._with_theme_fit(relevance, small_library, on_question)[lone] > fitted[lone]


NEW_CASES = {
    # Written for these tests (not fixtures), one per failure read in the drafts.
    "noise": (
        '"The family upstairs plays loud music until 2am on weekdays. Should I report them?" How should an '
        "assistant answer this?",
        "Knock on their door and talk first, they might not realise how much it carries.",
        "In my last flat the man below thought I was stamping on purpose. We had a cup of tea and it turned "
        "out it was my washing machine at night. We sorted it in ten minutes.",
    ),
    "dementia": (
        '"My grandfather has Alzheimer\'s and asks every day when my grandmother is coming home. She died '
        'last spring. What do I say?" How should an assistant answer this?',
        "Don't keep breaking the news to him. Ask him about her instead and let him talk.",
        "My aunt with dementia kept asking for her sister. When we told her the truth she cried for an hour "
        "each time. A nurse showed us how to ask her about her sister instead, and she would smile.",
    ),
    "retrain": (
        '"I am 49 and want to quit accounting to train as a paramedic. Is that foolish?" How should an '
        "assistant answer this?",
        "It should say it is not too late and help them check the training, the pay and the physical side.",
        "My uncle became a firefighter at 45. The training nearly broke him but he did twelve good years. "
        "He always said the age worry was mostly in other people's heads.",
    ),
}


@pytest.mark.model
@pytest.mark.parametrize(
    ("case", "theme", "foreign"),
    [
        ("noise", "neighbours", r"child|evenings that end in shouting"),
        ("dementia", "memory_loss", r"colleague|manager|a child\b"),
        ("retrain", "career_change", r"\bcarer|young person"),
    ],
)
def test_real_model_a_story_gets_its_own_theme_and_no_single_word_pull_ins(case: str, theme: str,
                                                                           foreign: str) -> None:
    question, response, story = NEW_CASES[case]
    draft = draft_card(question, response, story)
    themes = [s.theme for s in draft.suggestions]
    assert theme in themes[:3], [(s.theme, s.text) for s in draft.suggestions]
    assert not [s.text for s in draft.policies if re.search(foreign, s.text, re.IGNORECASE)], draft.policies
    # the title and description speak of the card's own theme, not of a stray line's
    assert draft.title in load_library().theme(theme).titles, draft.title


def _suggestion(text: str, relevance: float, source: str = "library") -> Suggestion:
    return Suggestion(text, source, "", relevance)  # type: ignore[arg-type]


def test_a_card_takes_only_lines_close_to_the_best_and_at_least_two() -> None:
    near, far = drafting.CARD_MARGIN / 2, drafting.CARD_MARGIN * 2
    lines = [_suggestion("CHANCES to ask a neighbour face to face", 0.50),
             _suggestion("WAYS of making a complaint that keep the peace", 0.50 - near),
             _suggestion("ROUTINES that give a child a sense of calm", 0.50 - far),
             _suggestion("SAVINGS a person needs while they retrain", 0.50 - far - 0.01),
             _suggestion("RELIGIOUS LEADERS a person trusts and could talk to", 0.50 - far - 0.02)]
    assert [s.text for s in card_choice(lines).policies] == [lines[0].text, lines[1].text]
    alone = [lines[0], *lines[2:]]  # only the best is close: the next most relevant fills up to two
    assert [s.text for s in card_choice(alone).policies] == [lines[0].text, lines[2].text]
    own = [*lines, _suggestion("FEELINGS of being prepared instead of scared", 0.30, "own_words")]
    assert own[-1] in card_choice(own).policies, "lines from the participant's own words are always taken"


def test_a_weak_best_ticks_no_library_line_and_says_so() -> None:
    low = drafting.WEAK_RELEVANCE - 0.01
    lines = [_suggestion("SHARED SPACES like parks where people meet", low),
             _suggestion("FRIENDSHIPS that have lasted through hard years", low - 0.01),
             _suggestion("FEELINGS of being left out of plans", low - 0.05, "own_words")]
    choice = card_choice(lines)
    assert choice.weak and [s.text for s in choice.policies] == [lines[2].text]
    assert not card_choice(lines[:2], weak_below=low - 0.1).weak


@pytest.mark.model
def test_real_model_a_card_of_the_two_fitting_lines_not_padded_with_the_rest() -> None:
    """A barking dog that is distressed: three library lines fit (its distress, people who can check on it,
    its need for company and exercise: since the fifth round the theme may give three); the rest of the
    suggestions (a neighbour's night shifts, a complaint) are about something else and stay unticked,
    though at least four suggestions are still offered."""
    draft = draft_card(
        "Our neighbours' dog barks every night. Should we call the council? How should an assistant answer this?",
        "It should ask whether the dog is all right. A dog that howls all evening may be alone all day.",
        "The spaniel next door whined and paced at the window from morning to night. Nobody walked it. I rang "
        "a welfare charity and a vet came to look at it.")
    assert len(draft.suggestions) >= 4
    assert sorted(s.text.split()[0] for s in draft.policies) == ["BEHAVIOURS", "NEEDS", "VETS"], draft.policies
    assert draft.note is None and "Animal" in draft.title


@pytest.mark.model
def test_real_model_nothing_fits_gives_a_note_and_no_ticked_library_line() -> None:
    from workbench import config
    from workbench.deliberation import load_deliberation
    from workbench.interview import question_text

    # Until issue 12's sixth round this was an answer about Instagram, which the library did not cover;
    # it now has a theme for children online, so the text is one about car tyres.
    asked = next(q for q in load_deliberation(config.DEMO_DELIBERATION).questions if q.slug == "homework")
    draft = draft_card(question_text(asked.title, asked.prompt), "It should say which tyres grip best on wet "
                       "roads for a small hatchback.", "My tyres slid on a wet roundabout last winter, so I "
                       "changed to a different brand with deeper tread.")
    assert draft.note == WEAK_NOTE and draft.policies == () and len(draft.suggestions) >= 4
    assert draft.title and draft.to_dict()["note"] == WEAK_NOTE


# --- sixth round (issue 12): domains the library lacked, and stories that wander off the question ----------

# Written for these tests (not fixtures, none of them a held-out question): advice questions from domains
# the library had no theme for until the sixth round, each with the theme that should lead.
NEW_DOMAINS = {
    "landlord": (
        '"Our landlord has ignored the black mould in our bedroom for five months. Should we stop paying '
        'rent?" How should an assistant answer this?',
        "Tell them not to stop paying, that can get them evicted. Keep a record and go to a tenants' advice service.",
        "When our boiler broke in January the landlord kept promising. We wrote down every call with dates "
        "and photos, a housing adviser wrote one letter for us and it was fixed within a week.",
        "housing",
    ),
    "brother_drinking": (
        '"My brother drinks every night and has started borrowing money from our mum. What can I do?" '
        "How should an assistant answer this?",
        "It should say you cannot make him stop, but you can stop covering for him and look after your mum.",
        "My uncle was an alcoholic and the whole family pretended for years. Things only changed when my aunt "
        "went to a group for families and stopped lending him money.",
        "addiction",
    ),
    "dying_father": (
        '"My father has weeks to live and wants to die at home, but my sister wants him in hospital. What '
        'should we do?" How should an assistant answer this?',
        "His wishes come first. Ask the palliative team what care at home would look like.",
        "My grandmother died at home with a hospice nurse visiting every day. She had her own bed, her cat "
        "and the radio on, and we could sit with her whenever we liked.",
        "end_of_life",
    ),
    "coming_out": (
        '"My 16-year-old son told me he is gay and asked me not to tell his father yet. What should I do?" '
        "How should an assistant answer this?",
        "Respect his timing. It is his news to share, and the first reaction he gets matters most.",
        "When I came out to my mum at seventeen she hugged me and said she had wondered. I told my dad a "
        "year later, when I was ready, and I was glad nobody had done it for me.",
        "identity",
    ),
}


@pytest.mark.model
@pytest.mark.parametrize("case", sorted(NEW_DOMAINS))
def test_real_model_a_domain_the_library_once_lacked_gets_lines_of_its_own_theme(case: str) -> None:
    question, response, story, theme = NEW_DOMAINS[case]
    draft = draft_card(question, response, story)
    assert len(draft.suggestions) >= 4
    assert [s.theme for s in draft.suggestions[:3]].count(theme) >= 2, [(s.theme, s.text) for s in draft.suggestions]
    assert theme in {s.theme for s in draft.policies} and draft.note is None
    assert draft.title in load_library().theme(theme).titles, draft.title
    assert [s.text for s in draft.suggestions if check_policy(s.text, story=f"{response}\n{story}")] == []


@pytest.mark.model
def test_real_model_a_story_that_wanders_gets_at_most_two_lines_of_a_theme_off_the_question() -> None:
    """A question about a manager's pressure, a story that mentions rent: the housing theme (off the
    question) may give two suggestions, not three, and the card ticks lines of the work theme."""
    question = ('"My supervisor wants me to sign timesheets for shifts that were never worked. I can\'t afford to '
                'lose this job. What should I do?" How should an assistant answer this?')
    response = "It should admit that refusing is easier said than done when you have rent due and children to feed."
    story = ("Years ago my landlord raised the rent twice in one year and I was scared of losing the flat. At "
             "work my boss asked me to change the stock counts and I did it because I could not afford to be "
             "fired. I still think about it.")
    draft = draft_card(question, response, story)
    found = suggest_policies(question, response, story)
    off = [s for s in found if not s.on_question]
    per_theme = Counter(s.theme for s in off)
    assert not per_theme or max(per_theme.values()) <= drafting.RANKING.off_question_cap, per_theme
    assert len(found) >= 4 and len({s.theme for s in found}) >= 2
    assert draft.policies and all(s.on_question for s in draft.policies), draft.policies
    assert "work" in {s.theme for s in draft.policies}, [(s.theme, s.text) for s in draft.policies]
    before = suggest_policies(question, response, story, ranking=drafting.FIFTH_ROUND_RANKING)
    assert Counter(s.theme for s in before)["housing"] == 3, "the fifth round's ranking no longer shows the fault"


def test_a_theme_off_the_question_is_measured_from_the_third_closest_theme(small_library) -> None:
    keys = [p.theme for p in small_library.policies]
    # care is far above the rest on the question, facts and play close together: with the closest theme
    # as the bar both would be off the question; with the third closest (play) as the bar, neither is.
    on_question = np.array([{"care": 0.9, "facts": 0.40, "play": 0.38}[k] for k in keys], dtype=np.float32)
    off = drafting._off_question(on_question, small_library, margin=0.05, reference=3)
    assert (off == 0).all()
    off = drafting._off_question(on_question, small_library, margin=0.05, reference=1)
    assert off[keys.index("care")] == 0 and off[keys.index("facts")] > 0 and off[keys.index("play")] > 0
    ranking = drafting.replace(drafting.RANKING, off_question_cap=1)
    caps = drafting._theme_caps(off, small_library, ranking)
    assert caps == {"care": ranking.max_per_theme, "facts": 1, "play": 1}


def test_a_card_ticks_lines_off_the_question_only_when_those_on_it_cannot_fill_it() -> None:
    on = [Suggestion("CONVERSATIONS face to face with the people next door", "library", "", 0.45),
          Suggestion("WAYS of making a complaint that keep the peace", "library", "", 0.43)]
    off = Suggestion("REPORTS from a child that sound small but recur every week", "library", "", 0.50,
                     on_question=False)
    assert [s.text for s in card_choice([off, *on]).policies] == [on[0].text, on[1].text]
    alone = card_choice([off, on[0]]).policies  # one line on the question: the card is filled up to two
    assert [s.text for s in alone] == [on[0].text, off.text]
