"""Store round trips on a temporary DuckDB file and on a real PostgreSQL server: migrations, events,
latest-wins, as-of, concurrency."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import duckdb
import pandas as pd
import pytest
from walk import to_card

from workbench.deliberation import load_deliberation
from workbench.io.bundle import ImportBundle
from workbench.models import (
    EndorsementIn,
    InputError,
    ValuesCardIn,
    WiserAnswerIn,
    validated,
)
from workbench.store import NotFound, Store, migrations
from workbench.store.core import utcnow

pytestmark = pytest.mark.both_backends


@pytest.fixture
def store(db_target, demo_spec):
    s = Store(db_target)
    s.save_deliberation(demo_spec)
    yield s
    s.close()


def test_migrations_apply_once_and_reopen_is_a_no_op(db_target):
    path = db_target
    s = Store(path)
    assert s.schema_version() == len(migrations())
    assert s.migrate() == []  # running again changes nothing
    s.close()
    s = Store(path)
    assert s.migrate() == []
    assert s.schema_version() == len(migrations())
    s.close()


def test_older_file_is_migrated_on_open(tmp_path):
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name VARCHAR NOT NULL,"
                " applied_at TIMESTAMP NOT NULL)")
    con.close()
    s = Store(path)
    assert s.schema_version() == len(migrations())
    assert s.deliberations().empty
    s.close()


def test_deliberation_round_trip(store, demo_spec):
    d = store.deliberation("demo")
    assert d["title"] == demo_spec.title
    assert d["settings"]["rounds"] == {"wiser": 3, "endorse": 6, "compare": 4, "same_value": 3}
    assert [q["key"] for q in d["settings"]["demographics"]] == ["age_band", "gender", "political_leaning", "country"]
    qs = store.questions("demo")
    assert list(qs["slug"]) == ["pregnancy", "homework", "riot"]
    ctx = store.contexts("demo", question_id="demo/homework")
    assert set(ctx["name"]) == {"When helping a parent with a conflict", "When a child's wellbeing is at stake"}
    store.save_deliberation(demo_spec)  # saving again duplicates nothing
    assert len(store.questions("demo")) == 3
    with pytest.raises(NotFound):
        store.deliberation("nope")


def test_invites_store_only_hashes_and_revoke(store):
    (pid, token), = store.create_invites("demo", 1)
    assert store.participant_by_token(token) == {"id": pid, "deliberation_id": "demo"}
    assert store.participant_by_token(token + "x") is None
    assert store.participant_by_token("") is None
    raw = store._rows("SELECT token_hash FROM participants")
    assert all(token not in (h or "") for (h,) in raw)
    store.revoke_invites([pid])
    assert store.participant_by_token(token) is None
    assert list(store.audit_log("demo")["action"]) == ["save_deliberation", "create_invites", "revoke_invites"]


def _card(question="demo/pregnancy", **kw):
    data = {"title": "Informed Personal Choice", "description": "Helping the person see every option.",
            "policies": ["OPTIONS the person may not know about", "MOMENTS when the person names what they want"],
            "question_id": question, "contexts": ["When giving medical information"]}
    data.update(kw)
    return validated(ValuesCardIn, data)


def test_card_round_trip_with_contexts_and_canonical_link(store):
    (pid, _), = store.create_invites("demo", 1)
    _, card_id = to_card(store, pid, _card(contexts=["When giving medical information", "A brand new context"]))
    card = store.card(card_id)
    assert card["title"] == "Informed Personal Choice"
    assert list(card["policies"]) == ["OPTIONS the person may not know about",
                                      "MOMENTS when the person names what they want"]
    assert sorted(card["contexts"]) == ["A brand new context", "When giving medical information"]
    # A context the participant proposed waits for a facilitator.
    assert "A brand new context" not in set(store.contexts("demo")["name"])
    assert "A brand new context" in set(store.contexts("demo", include_proposed=True)["name"])
    vid = store.add_canonical_value("demo", title="Choice", description="d", policies=["A", "B"], origin="manual",
                                    members=[card_id])
    assert store.card(card_id)["canonical_id"] == vid
    assert store.canonical_values("demo").set_index("id").loc[vid, "members"] == 1
    store.hide_card(card_id, "off topic")
    assert store.cards("demo").empty
    assert store.cards("demo", include_hidden=True).iloc[0]["hidden_reason"] == "off topic"


T0 = datetime(2026, 1, 5, 9, 0)


def _judgements(spec, **frames) -> ImportBundle:
    """Two imported values and one imported participant "u1", plus the given judgement rows."""
    values = pd.DataFrame({"source_id": ["a", "b"], "question": "pregnancy", "title": ["A", "B"], "description": "",
                           "policies": [["x", "y"], ["x", "z"]], "origin": "import", "created_at": T0})
    people = pd.DataFrame({"source_id": ["u1"], "signup": "import", "created_at": T0})
    return ImportBundle(spec=spec, source="demo", canonical=values, participants=people,
                        **{k: pd.DataFrame(v) for k, v in frames.items()})


def test_latest_answer_wins_and_as_of(store, demo_spec):
    context = "When giving medical information"
    wiser = [{"source_key": f"w{i}", "participant": "u1", "from_value": "a", "to_value": "b", "context": context,
              "answer": answer, "story": None, "comment": None, "created_at": T0 + timedelta(hours=i)}
             for i, answer in enumerate(["no_upgrade", "upgrade"])]
    votes = [{"source_key": f"e{i}", "participant": "u1", "canonical": "a", "card": None, "card_kind": None,
              "question": None, "vote": vote, "created_at": T0 + timedelta(hours=i)}
             for i, vote in enumerate(["agree", "disagree"])]
    made = [{"source_key": f"c{i}", "participant": "u1", "item_a": "a", "item_b": "b", "winner": winner,
             "context": None, "prompt": None, "question": None, "weight": 1.0, "created_at": T0 + timedelta(hours=i)}
            for i, winner in enumerate(["b", "tie"])]
    store.import_bundle(_judgements(demo_spec, wiser=wiser, endorsements=votes, comparisons=made), merge=True)
    between = T0 + timedelta(minutes=30)
    assert list(store.wiser_answers("demo")["answer"]) == ["no_upgrade", "upgrade"]
    assert list(store.wiser_answers("demo", latest=True)["answer"]) == ["upgrade"]
    assert list(store.wiser_answers("demo", latest=True, until=between)["answer"]) == ["no_upgrade"]
    assert store.wiser_answers("demo", until=between - timedelta(days=1)).empty

    a = store.id_map("demo", "value").store("a")
    votes = store.endorsements("demo")
    assert list(votes["vote"]) == [-1] and list(votes["canonical_id"]) == [a]
    assert list(votes["target_kind"]) == ["value"] and list(votes["target_source_id"]) == ["a"]
    assert len(store.endorsements("demo", latest=False)) == 2

    assert len(store.comparisons("demo")) == 1
    assert len(store.comparisons("demo", include_ties=True)) == 2


def test_attributes_latest_value_wins(store, demo_spec):
    def attributes(**values):
        return [{"participant": "u1", "key": k, "value": v} for k, v in values.items()]

    store.import_bundle(_judgements(demo_spec, attributes=attributes(age_band="18-29", country="Other")), merge=True)
    store.import_bundle(_judgements(demo_spec, attributes=attributes(age_band="30-44", country=None)), merge=True)
    pid = store.id_map("demo", "participant").store("u1")
    attrs = store.attributes("demo").set_index("participant_id")
    assert attrs.loc[pid, "age_band"] == "30-44"
    assert pd.isna(attrs.loc[pid, "country"])  # cleared: a missing latest value wins too (was "Other")


def test_concurrent_submissions_lose_nothing_and_duplicate_nothing(store):
    """16 participants answer 30 wiser-than items each, every item submitted twice at once (a double
    click on two threads): every answer is stored exactly once."""
    pids = [p for p, _ in store.create_invites("demo", 16)]
    context = "When giving medical information"
    a = store.add_canonical_value("demo", title="A", description="", policies=["x", "y"], origin="manual")
    b = store.add_canonical_value("demo", title="B", description="", policies=["x", "z"], origin="manual")
    for pid in pids:
        store.plan_round(pid, "wiser", [{"from_id": a, "to_id": b, "context": context}] * 30)
    errors, ids = [], {}

    def participant(pid):
        try:
            for i in range(30):
                ids[(pid, i, threading.get_ident())] = store.answer_wiser(
                    pid, i, ("upgrade", "no_upgrade", "not_sure")[i % 3])
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=participant, args=(p,)) for p in pids for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    answers = store.wiser_answers("demo")
    assert len(answers) == 16 * 30
    assert answers.groupby("participant_id").size().eq(30).all()
    assert answers["id"].is_unique
    # Both threads of a participant got the same id back for each item: the stored answer.
    by_item: dict = {}
    for (pid, i, _), answer_id in ids.items():
        by_item.setdefault((pid, i), set()).add(answer_id)
    assert all(len(found) == 1 for found in by_item.values())
    assert all(store.answered_items(pid, "wiser") == set(range(30)) for pid in pids)
    assert [s["step"] for s in store.steps(pids[0])] == ["plan:wiser", "wiser"]  # the last answer closed the round


def test_bad_input_names_the_field_and_writes_nothing(store):
    with pytest.raises(InputError, match=r"policies\[1\].*repeats policies\[0\]"):
        _card(policies=["MOMENTS of doubt", "moments  of DOUBT"])
    with pytest.raises(InputError, match="policies: List should have at least 2 items"):
        _card(policies=["only one"])
    with pytest.raises(InputError, match="title: String should have at most 80 characters"):
        _card(title="x" * 81)
    with pytest.raises(InputError, match="answer: Input should be 'upgrade', 'no_upgrade' or 'not_sure'"):
        validated(WiserAnswerIn, {"participant_id": 1, "from_value_id": 1, "to_value_id": 2, "context_id": 1,
                                  "answer": "maybe"})
    with pytest.raises(InputError, match="description: contains control characters"):
        _card(description="bad\x00text")
    with pytest.raises(InputError, match="exactly one of canonical_id and card_id"):
        validated(EndorsementIn, {"participant_id": 1, "vote": "agree"})
    assert store.cards("demo", include_hidden=True).empty


def test_a_failed_write_leaves_nothing_half_written(store):
    before = store._one("SELECT count(*) FROM contexts")[0]
    bad = _card(contexts=["A context that will not survive"])

    def boom():
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        store._write(lambda cur: (store._ensure_context(cur, "demo", "Half-written", now=utcnow()), boom()))
    assert store._one("SELECT count(*) FROM contexts")[0] == before
    (pid, _), = store.create_invites("demo", 1)
    to_card(store, pid, bad)
    assert store._one("SELECT count(*) FROM contexts")[0] == before + 1


def test_demo_deliberation_file_is_valid():
    from workbench import config

    spec = load_deliberation(config.DEMO_DELIBERATION)
    assert len(spec.questions) == 3
    for d in spec.demographics:
        assert "Prefer not to say" in d.options
