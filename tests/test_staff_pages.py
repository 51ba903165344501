"""Each staff page under AppTest on the demo data, signed in as its role: setup, progress,
moderation, the moral graph, disagreement and exports do what a facilitator or researcher expects."""

from __future__ import annotations

import pytest
from apptest import button, staff_page, staff_store

from workbench import config


@pytest.fixture
def store(tmp_path, monkeypatch, demo_spec):
    return staff_store(tmp_path / "staff.duckdb", monkeypatch, demo_spec, participants=60, seed=2)


def facilitator(store, path):
    return staff_page(store, "fran", "facilitator pass 1", path)




def test_setup_reports_bad_yaml_by_field_and_saves_good_yaml(store):
    at = facilitator(store, "views/facilitator_setup.py")
    at.text_area[0].input("id: Not A Slug\ntitle: x\nconsent: c\nquestions: []\n")
    button(at, "Save the deliberation").click().run()
    assert any("definition: id:" in e.value and "questions:" in e.value for e in at.error)
    text = config.DEMO_DELIBERATION.read_text().replace("id: demo", "id: second", 1)
    at.text_area[0].input(text)
    button(at, "Save the deliberation").click().run()
    assert any("(second)" in s.value for s in at.success)
    assert "second" in set(store.deliberations()["id"])
    assert list(store.audit_log("second")["action"]) == ["save_deliberation"]


def test_setup_creates_and_revokes_invite_links(store):
    at = facilitator(store, "views/facilitator_setup.py")
    at.number_input[0].set_value(3)
    button(at, "Create invite links").click().run()
    links = at.dataframe[0].value
    assert len(links) == 3 and links["link"].str.contains(r"\?invite=").all()
    token = links["link"].iloc[0].split("invite=")[1]
    assert store.participant_by_token(token) is not None
    # The links and the list show public ids ("p61"); the choice is the participant behind one.
    at.multiselect[0].select(store.id_map("demo", "participant").store(links["participant_id"].iloc[0])).run()
    button(at, "Revoke").click().run()
    assert store.participant_by_token(token) is None


def test_progress_shows_the_deliberation_live(store):
    at = facilitator(store, "views/facilitator_progress.py")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Participants"] == "60" and metrics["Values cards"] == "60"
    assert metrics["Wiser-than answers"] == "180"


def test_moderation_hides_a_card_and_logs_it(store):
    at = facilitator(store, "views/facilitator_moderation.py")
    card = int(store.cards("demo").iloc[0]["id"])
    hide = next(s for s in at.selectbox if s.label == "Card to hide")
    hide.select(card)
    next(t for t in at.text_input if t.label.startswith("Reason")).input("off topic")
    next(b for b in at.button if b.label == "Hide card").click().run()
    assert any("is hidden" in s.value for s in at.success)
    assert store.card(card)["status"] == "hidden"
    log = store.audit_log("demo")
    assert list(log["action"]) == ["hide_card"] and log.iloc[0]["actor"] == "fran"


def test_moderation_merges_values_and_the_merge_survives_dedup(store):
    from workbench import analyses
    from workbench.embed import Embedder

    at = facilitator(store, "views/facilitator_moderation.py")
    values = store.canonical_values("demo", question_id="demo/riot")
    a, b = int(values.iloc[0]["id"]), int(values.iloc[1]["id"])
    next(m for m in at.multiselect if m.label.startswith("Merge these")).set_value([a, b])
    next(s for s in at.selectbox if s.label == "…into").select(a)
    next(x for x in at.button if x.label == "Merge").click().run()
    assert any(f"now belong to {store.id_map('demo', 'value').public(a)}." in s.value for s in at.success)
    assert list(store.audit_log("demo")["action"]) == ["merge_values"]
    merged = store.card_links("demo")
    moved = set(merged[merged["provenance"] == "merge"]["card_id"])
    assert moved

    def encode(texts):
        import numpy as np

        return np.eye(len(texts), 8)[:, :8] if len(texts) <= 8 else np.random.default_rng(0).normal(size=(len(texts), 8))

    analyses.deduplicate(store, "demo", embedder=Embedder(encode=encode, model_name="test"))
    after = store.card_links("demo").set_index("card_id")["canonical_id"]
    assert all(after[c] == a for c in moved)


def test_graph_page_shows_the_graph_with_group_ranks(store):
    at = facilitator(store, "views/moral_graph.py")
    default_edges = {m.label: int(m.value) for m in at.metric}["Wiser-than edges"]
    at.radio[0].set_value("mge").run()
    metrics = {m.label: int(m.value) for m in at.metric}
    # The study's statistic keeps edges the credible-bound statistic finds too uncertain.
    assert metrics["Wiser-than edges"] > default_edges
    next(s for s in at.selectbox if s.label == "Rank per group of").select("political_leaning").run()
    assert not at.exception
    # The component gets each value's rank within each group's own graph (AppTest sees its arguments).
    import json

    from workbench import analyses

    view = json.loads(at.get("component_instance")[0].proto.json_args)["view"]
    leanings = sorted(store.attributes("demo")["political_leaning"].dropna().unique())
    assert view["groups"] == leanings
    expected = analyses.group_page_ranks(store, "demo", "political_leaning", mode="mge")
    shown = {g: {n["id"]: n["group_ranks"][g] for n in view["nodes"] if n["group_ranks"][g] is not None}
             for g in leanings}
    on_graph = {n["id"] for n in view["nodes"]}
    assert shown == {g: {v: r for v, r in ranks.items() if v in on_graph} for g, ranks in expected.items()}
    assert max(len(ranks) for ranks in shown.values()) >= 2, "some group ranks several values"


def test_disagreement_runs_stores_and_reopens(store):
    at = facilitator(store, "views/disagreement.py")
    assert any("Run the analyses" in i.value for i in at.info)
    # Across all questions few reach Polis's participation threshold (each votes on their own
    # question's values), so, as Polis does, the 15 most active are put in the conversation.
    next(n for n in at.number_input if n.label == "Bootstrap replicates").set_value(0).run()
    button(at, "Run the analyses").click().run()
    assert not at.exception, at.exception
    assert any("Laplace" in c.value for c in at.caption)
    next(s for s in at.selectbox if s.label == "Question").select("demo/pregnancy").run()
    next(n for n in at.number_input if n.label == "Bootstrap replicates").set_value(50).run()
    button(at, "Run the analyses").click().run()
    assert not at.exception, at.exception
    assert any("50 bootstrap replicates over participants" in c.value for c in at.caption)
    headers = [h.value for h in at.header]
    assert "Opinion groups (from agree / disagree votes)" in headers
    subheaders = [h.value for h in at.subheader]
    assert "How each group votes on each value" in subheaders
    assert "What sets each group apart (Polis's report)" in subheaders
    assert any(e.label.startswith("Group A — ") for e in at.expander)
    assert any("of this group agreed" in m.value or "of this group disagreed" in m.value for m in at.markdown)
    assert "Divisive and bridging values — groups by political_leaning" in subheaders, subheaders
    assert "Who is in each latent class" in subheaders
    runs = store.runs(deliberation_id="demo", kind="disagreement")
    assert list(runs["status"]) == ["done", "done"]
    fit = store.run(int(runs["id"].max()))["result"]["fit"]
    assert fit["bootstrap"]["n_boot"] == 50 and fit["bootstrap"]["by"] == "political_leaning"
    assert set(fit["bootstrap"]["groups"]) == set(fit["groups"])
    again = facilitator(store, "views/disagreement.py")  # a new session reopens the stored run
    assert "Opinion groups (from agree / disagree votes)" in [h.value for h in again.header]


def test_researcher_prepares_a_documented_export(store):
    at = staff_page(store, "rhea", "researcher pass 1", "views/researcher_exports.py")
    button(at, "Prepare the export").click().run()
    assert not at.exception, at.exception
    assert any("Values Workbench export" in m.value for m in at.markdown)
    assert at.get("download_button")


@pytest.mark.model
def test_moderation_clusters_cards_with_a_progress_bar(store):
    at = facilitator(store, "views/facilitator_moderation.py")
    button(at, "Cluster cards into canonical values").click().run()
    assert not at.exception, at.exception
    assert any("60 cards →" in s.value and "60 embedded" in s.value for s in at.success)
    runs = store.runs(deliberation_id="demo", kind="dedup")
    assert list(runs["status"]) == ["done"]
    assert "dedup" in set(store.audit_log("demo")["action"])


def test_progress_shows_failed_runs_and_interviewer_failures(store):
    (pid, _), = store.create_invites("demo", 1)
    store.give_consent(pid)
    interview = store.choose_question(pid, "demo/riot", mode="llm")
    store.continue_guided(pid, interview, draft={}, error="timeout: the language model did not answer within 30 s")
    run = store.start_run("dedup", {}, deliberation_id="demo")
    store.finish_run(run, error="ConnectionError: embedding server went away")
    at = facilitator(store, "views/facilitator_progress.py")
    warnings = " ".join(w.value for w in at.warning)
    assert "1 analysis run(s) failed" in warnings and "LLM interviewer failed 1 time(s)" in warnings
