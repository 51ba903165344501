"""The deliberation report and the closing survey: the published MGE legitimacy figure and graph, a
Polis conversation's groups, hostile text shown as text, the report as of a time, the survey's
definition and its one-transaction store method, and where a participant sits.

Golden tests read the real data from ../shared/datasets; the report is built by the same function
the CLI and the Report page call (workbench.report.deliberation_report) and read back as HTML.
"""

from __future__ import annotations

import html as html_lib
import re
from pathlib import Path

import pandas as pd
import pytest

from workbench import analyses, report
from workbench.cli import app
from workbench.deliberation import parse_deliberation
from workbench.errors import InputError
from workbench.io.mge import mge_bundle, read_mge_dump
from workbench.io.polis import polis_bundle, read_polis_export
from workbench.moralgraph import summarize_mge
from workbench.position import where_you_sit
from workbench.store import Store
from workbench.survey import survey_summary

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


def _text(html: str) -> str:
    """The report as a reader sees it: tags dropped, entities decoded, spaces collapsed."""
    return " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", html)).split())


# -- the MGE study: 158 of 180 found their value's position fair --------------------------------------


@pytest.fixture(scope="module")
def mge(tmp_path_factory):
    folder = SHARED / "mge-dft"
    if not folder.is_dir():
        pytest.skip(f"MGE dump not found at {folder}")
    dump = read_mge_dump(folder)
    store = Store(tmp_path_factory.mktemp("mge") / "mge.duckdb")
    store.import_bundle(mge_bundle(dump))
    made = report.deliberation_report(store, "mge-dft", by="us_political_affiliation", bootstrap=0)
    yield dump, store, made, report.render_html(made)
    store.close()


def test_the_mge_import_brings_in_the_position_checks_as_survey_answers(mge):
    dump, store, _, _ = mge
    answers = store.survey_answers("mge-dft")
    assert len(answers) == 180 and set(answers["question"]) == {"position_fair"}
    assert (answers["answer"] == "yes").sum() == 158
    # each answer names the value the participant was shown, where the dump still has it
    named = answers.dropna(subset=["value_source_id"])
    assert len(named) == 153
    checks = dump.position_checks.set_index("participant_id")["deduplicated_card_id"].astype(str)
    assert (named["value_source_id"] == named["participant_source_id"].astype(int).map(checks)).all()


def test_the_survey_answers_are_an_export_table_that_joins(mge):
    """A researcher gets the position checks as `survey-answers`, joinable on participant_id and value_id
    without a cast (the same ids as every other table)."""
    from workbench import exports

    _, store, _, _ = mge
    frames = exports.tables(store, "mge-dft", exports.tables_for("survey-answers"))
    answers = frames["survey-answers"]
    assert len(answers) == 180 and (answers["answer"] == "yes").sum() == 158
    joined = answers.merge(frames["participants"], on="participant_id", how="left", indicator=True)
    assert (joined["_merge"] == "both").all()
    valued = answers.dropna(subset=["value_id"]).merge(frames["canonical-values"], on="value_id", how="left",
                                                       indicator=True)
    assert len(valued) == 153 and (valued["_merge"] == "both").all()
    by_party = joined.groupby("us_political_affiliation")["answer"].apply(lambda a: (a == "yes").sum())
    assert by_party.to_dict() == {"DATA_EXPIRED": 2, "Democrat": 37, "Independent": 68, "Republican": 50}


def test_the_mge_report_says_158_of_180_found_their_position_fair(mge):
    _, _, made, html = mge
    fair = next(q for q in made.survey.questions if q.key == "position_fair")
    assert (fair.overall.yes, fair.overall.no, fair.overall.answered) == (158, 22, 180)
    text = _text(html)
    assert "Where my value sits in the graph is fair. 158 of 180 (87.8%)" in text
    assert "87.8% found their value’s place fair (158 of 180)" in text
    # per group, the counts add up to the respondents who gave a political affiliation
    by_party = [g for g in fair.by_group if g.grouping == "us_political_affiliation"]
    assert {g.group for g in by_party} >= {"Democrat", "Republican", "Independent"}
    assert sum(g.tally.answered for g in by_party) <= 180


def test_the_mge_report_lists_the_published_graphs_top_values(mge):
    dump, _, made, html = mge
    published = summarize_mge(dump.edges, dump.canonical_values, until="2023-10-18")
    top = list(published.values["title"][:4])
    assert top[0] == "Information Empowerment"
    listed = [v.title for v in made.graph.overall]
    assert listed[:4] == top  # the same four values lead, in the same order
    listing = _text(html).split("The top 10 values overall", 1)[1].split("Top values in each situation", 1)[0]
    at = [listing.index(f"{title} value {value_id} ") for title, value_id in
          zip(top, published.values["id"].astype(str)[:4], strict=True)]
    assert at == sorted(at)  # listed in the published order, each with its study id
    assert made.graph.n_values == 60 and made.graph.answers == 1592
    assert made.attribution is None  # not Polis data


def test_a_report_as_of_a_time_leaves_out_what_came_later(mge):
    dump, store, _, _ = mge
    before = report.deliberation_report(store, "mge-dft", until="2023-12-31", bootstrap=0)
    assert before.survey.respondents == 0  # the position checks were made in January 2024
    assert before.graph.answers == int((dump.edges["created_at"] < pd.Timestamp("2023-12-31")).sum()) == 1555
    stored = store.run(before.run_id)
    assert stored["kind"] == "report" and stored["params"]["until"].startswith("2023-12-31")
    again = report.stored_report(store, before.run_id)
    assert report.render_html(again) == report.render_html(before)


# -- a Polis conversation: each group's representative statements -------------------------------------


@pytest.fixture(scope="module")
def polis(tmp_path_factory):
    folder = SHARED / "polis" / "scoop-hivemind.ubi"
    if not folder.is_dir():
        pytest.skip(f"Polis export not found at {folder}")
    store = Store(tmp_path_factory.mktemp("polis") / "polis.duckdb")
    store.import_bundle(polis_bundle(read_polis_export(folder), deliberation_id="ubi"))
    made = report.deliberation_report(store, "ubi", bootstrap=0)
    yield store, made, report.render_html(made)
    store.close()


def test_the_polis_report_lists_each_groups_representative_statements(polis):
    store, made, html = polis
    # the same groups and statements the Disagreement page's analysis finds, run again on its own
    groups = analyses.opinion_groups(store, "ubi").groups
    expected = analyses.polis_report_json(store, "ubi", groups)
    assert made.groups.k == expected["k"] >= 2
    assert [(g.label, g.size) for g in made.groups.groups] == [(g["label"], g["size"]) for g in expected["groups"]]
    text = _text(html)
    comments = pd.read_csv(SHARED / "polis" / "scoop-hivemind.ubi" / "comments.csv")
    by_id = dict(zip(comments["comment-id"].astype(str), comments["comment-body"], strict=True))
    sections = re.split(r"Group ([A-Z]) · ", text)
    for group, statements in zip(made.groups.groups, expected["groups"], strict=True):
        assert statements["statements"], f"group {group.label} has no representative statement"
        section = sections[sections.index(group.label) + 1]
        for mine, theirs in zip(group.statements, statements["statements"], strict=True):
            assert mine.id == theirs["statement_id"]
            assert " ".join(by_id[mine.id].split()) in section  # the comment's own text, from Polis's file
            # agree / disagree counts beside the percentages agree with the z-test's own counts
            side = mine.agree if mine.repful == "agree" else mine.disagree
            assert (side, mine.votes) == (theirs["n_success"], theirs["n_trials"])
            assert f"{100 * mine.agree_share:.1f}% ({mine.agree})" in section


def test_a_polis_report_carries_the_attribution(polis):
    _, made, html = polis
    assert made.attribution == report.POLIS_ATTRIBUTION
    assert "Attribution to The Computational Democracy Project" in _text(html)


# -- hostile text, and the file being self-contained --------------------------------------------------

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)> & “quotes”'


def test_hostile_titles_are_escaped_everywhere(demo_db):
    demo_db._write(lambda cur: cur.execute("UPDATE deliberations SET title = ? WHERE id = 'demo'", [HOSTILE]))
    value = int(demo_db.canonical_values("demo").iloc[0]["id"])
    demo_db.update_canonical_value(value, title='</svg><script>alert(2)</script>')
    made = report.deliberation_report(demo_db, "demo", bootstrap=0)
    html = report.render_html(made)
    assert "<script" not in html.lower() and "onerror=alert" not in html.replace("onerror=alert(1)&gt;", "")
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert _text(html).count(HOSTILE) >= 2  # the page title and the heading, as text
    assert "&lt;/svg&gt;&lt;script&gt;alert(2)&lt;/script&gt;" in html  # inside the SVG drawing too


def test_the_report_file_has_nothing_from_elsewhere(demo_db):
    html = report.render_html(report.deliberation_report(demo_db, "demo", bootstrap=0))
    assert not re.search(r"<(script|link|iframe|object|embed|img)\b", html, re.IGNORECASE)
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", html, re.IGNORECASE)
    assert "@import" not in html and "url(http" not in html and "@font-face" not in html


# -- the closing survey: definition, store, summary ---------------------------------------------------


def test_the_survey_is_defined_in_the_yaml_with_our_defaults(demo_spec):
    assert [q.key for q in demo_spec.closing.survey] == ["expresses_me", "clarified", "learned_others",
                                                          "respect_others", "position_fair"]
    text = "id: d\ntitle: t\nconsent: c\nquestions:\n  - {slug: q, title: Q, prompt: P, contexts: [x]}\n"
    assert [q.key for q in parse_deliberation(text).closing.survey][-1] == "position_fair"  # the defaults
    mine = parse_deliberation(text + "closing:\n  open: false\n  survey:\n    - {key: heard, text: I felt heard.}\n")
    assert not mine.closing.open and [q.text for q in mine.closing.survey] == ["I felt heard."]
    with pytest.raises(InputError, match=r"closing\.survey: .*distinct"):
        parse_deliberation(text + "closing:\n  survey:\n    - {key: a, text: A}\n    - {key: a, text: B}\n")
    with pytest.raises(InputError, match=r"closing\.survey\[0\]\.text: String should have at most 300"):
        parse_deliberation(text + "closing:\n  survey:\n    - {key: a, text: '" + "x" * 301 + "'}\n")
    with pytest.raises(InputError, match=r"closing\.survey: .*at most 20"):
        parse_deliberation(text + "closing:\n  survey:\n" + "".join(f"    - {{key: k{i}, text: T}}\n" for i in range(21)))


def test_a_survey_answer_names_a_question_of_the_deliberation(demo_db):
    from walk import to_card

    (pid, _), = demo_db.create_invites("demo", 1)
    to_card(demo_db, pid)
    with pytest.raises(InputError, match=r"survey\.made_up: not a question of the closing survey"):
        demo_db.answer_survey(pid, {"made_up": "yes"})
    with pytest.raises(InputError, match=r"survey: answers\.position_fair"):
        demo_db.answer_survey(pid, {"position_fair": "maybe"})
    assert demo_db.answer_survey(pid, {"position_fair": "no"}) == {"position_fair": "no"}
    assert demo_db.answer_survey(pid, {"position_fair": "yes"}) == {"position_fair": "no"}  # a repeat: the first
    mine = demo_db.survey_answers("demo").query("participant_id == @pid")
    assert list(mine["answer"]) == ["no"]
    # the answer names the participant's value at the time: none yet, as the new card is not clustered yet
    assert pd.isna(mine.iloc[0]["canonical_id"])
    (other, _), = demo_db.create_invites("demo", 1)
    _, card = to_card(demo_db, other)
    value = demo_db.split_card(card)
    demo_db.answer_survey(other, {"position_fair": "yes"})
    assert demo_db.survey_answers("demo").query("participant_id == @other")["canonical_id"].tolist() == [value]


def test_skipping_the_survey_records_the_step_only(demo_db):
    from walk import to_card

    (pid, _), = demo_db.create_invites("demo", 1)
    to_card(demo_db, pid)
    before = len(demo_db.survey_answers("demo"))
    assert demo_db.answer_survey(pid, {}) == {}
    assert len(demo_db.survey_answers("demo")) == before
    assert "survey" in [s["step"] for s in demo_db.steps(pid)]


def test_survey_summary_counts_beside_percentages():
    answers = pd.DataFrame({"participant_id": ["a", "b", "c", "d", "a"],
                            "question": ["fair", "fair", "fair", "fair", "heard"],
                            "answer": ["yes", "yes", "not_sure", "no", "yes"]})
    summary = survey_summary(answers, [("fair", "Fair?"), ("heard", "Heard?"), ("unasked", "Nobody")],
                             {"group": {"a": "A", "b": "A", "c": "B"}})
    fair, heard, unasked = summary.questions
    assert fair.overall.in_words() == "2 of 4 (50.0%)" and fair.overall.not_sure == 1
    assert [(g.group, g.tally.in_words()) for g in fair.by_group] == [("A", "2 of 2 (100.0%)"), ("B", "0 of 1 (0.0%)")]
    assert heard.overall.in_words() == "1 of 1 (100.0%)" and unasked.overall.in_words() == "no answers"
    assert summary.respondents == 4


# -- where a participant sits -------------------------------------------------------------------------


def test_where_you_sit_names_wiser_and_less_wise_values_in_plain_words():
    answers = pd.DataFrame([
        {"participant_id": p, "from_id": a, "to_id": b, "context": "When unsure", "answer": "upgrade",
         "created_at": pd.Timestamp("2024-01-01")}
        for p in range(6) for a, b in (("A", "B"), ("B", "C"))])
    graph = summarize_mge(answers)
    titles = {"A": "Plain Facts", "B": "Careful Listening", "C": "Shared Judgement"}
    place = where_you_sit(graph, "B", titles)
    assert place.rank is not None and place.ranked == 3
    assert [n.title for n in place.wiser_than_yours] == ["Shared Judgement"]
    assert [n.title for n in place.yours_wiser_than] == ["Plain Facts"]
    words = " ".join(place.sentences())
    assert "People judged your value wiser than: “Plain Facts” (when unsure)" in words
    assert "People judged these values wiser than yours: “Shared Judgement”" in words
    lonely = where_you_sit(graph, "Z", {"Z": "Unlinked"})
    assert lonely.rank is None and "not linked to other values" in lonely.sentences()[0]


def test_the_participant_sees_where_they_sit_and_answers_the_survey(tmp_path, monkeypatch, demo_spec):
    from apptest import participant_page, staff_store, step_text
    from walk import to_card

    demo_db = staff_store(tmp_path / "app.duckdb", monkeypatch, demo_spec, participants=150, seed=4)
    (pid, token), = demo_db.create_invites("demo", 1)
    _, card = to_card(demo_db, pid)
    for round_name in ("wiser", "endorse", "compare"):
        demo_db.finish_round(pid, round_name)
    # the card joins the homework value that ranks highest in the graph of its question
    graph = analyses.moral_graph(demo_db, "demo", question_id="demo/homework").graph
    top = demo_db.id_map("demo", "value").store(graph.values.iloc[0]["id"])
    demo_db.merge_canonical_values([demo_db.split_card(card)], into=top)
    at = participant_page(token)
    assert "Where you sit" in step_text(at)
    shown = " ".join(m.value for m in at.markdown)
    assert f"comes 1st of the {len(graph.values)} values in the graph" in shown.replace("\\", "")
    assert [r.label for r in at.radio][-1] == "Where my value sits in the graph is fair."
    at.radio[-1].set_value("yes")
    at.button[0].click().run()
    assert not at.exception
    assert "Thank you" in step_text(participant_page(token))
    assert list(demo_db.survey_answers("demo").query("participant_id == @pid")["question"]) == ["position_fair"]


def test_a_closed_closing_holds_the_survey_back(demo_db, demo_spec):
    from apptest import participant_page, step_text
    from walk import to_card

    demo_db.save_deliberation(demo_spec.model_copy(update={"closing": demo_spec.closing.model_copy(update={"open": False})}))
    (pid, token), = demo_db.create_invites("demo", 1)
    to_card(demo_db, pid)
    for round_name in ("wiser", "endorse", "compare"):
        demo_db.finish_round(pid, round_name)
    at = participant_page(token)
    assert "Where you sit" in step_text(at) and not at.radio and not at.button
    assert any("come back with the same link" in i.value for i in at.info)


# -- the command line and the Report page -------------------------------------------------------------


def test_the_cli_writes_the_report_and_renders_a_stored_one_again(demo_db, tmp_path):
    from typer.testing import CliRunner

    path = demo_db.path
    demo_db.close()
    from workbench.store import close_stores

    close_stores()
    out = tmp_path / "report.html"
    result = CliRunner().invoke(app, ["report", "--out", str(out), "--db", path, "--bootstrap", "0"])
    assert result.exit_code == 0, result.output
    run = int(re.search(r"analysis run (\d+)", result.output).group(1))
    first = out.read_text(encoding="utf-8")
    assert first.startswith("<!DOCTYPE html>") and "Did participants feel represented?" in first
    again = tmp_path / "again.html"
    result = CliRunner().invoke(app, ["report", "--out", str(again), "--db", path, "--run", str(run)])
    assert result.exit_code == 0, result.output
    assert again.read_text(encoding="utf-8") == first
    result = CliRunner().invoke(app, ["report", "--out", str(again), "--db", path, "--run", "999"])
    assert result.exit_code == 2 and "no analysis run 999" in result.output


def test_the_report_page_makes_a_report_and_offers_the_download(tmp_path, monkeypatch, demo_spec):
    from apptest import button, staff_page, staff_store

    store = staff_store(tmp_path / "staff.duckdb", monkeypatch, demo_spec, participants=40, seed=3)
    at = staff_page(store, "fran", "facilitator pass 1", "views/report.py")
    assert any("No report yet" in i.value for i in at.info)
    at.number_input[0].set_value(0)
    button(at, "Make the report").click().run()
    assert not at.exception and not at.error
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["People who took part"] == "40"
    assert re.fullmatch(r"\d+ of 40 \(\d+\.\d%\)", metrics["Found their value's place fair"])
    runs = store.runs(deliberation_id="demo", kind="report")
    assert list(runs["status"]) == ["done"]
