"""A hidden (moderated) card's text appears nowhere a participant or researcher sees it (issue 17 item 4).

A canonical value is often named after one of its cards (dedup names it after its medoid, a split after
the card). Hiding that card used to leave its title, description and policies in the value, and from
there in the `canonical-values` export, every `preference-pairs` row about the value, the graph and the
rounds. Here two values are named after cards that a facilitator then hides: one value has another member
(it is renamed from that member), the other has none left (its text is withheld). Every file of an `all`
export in each format, the moral graph, the graph page and a participant's round are searched for every
piece of the hidden cards' text.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from apptest import participant_page, staff_page, staff_store, step_text
from walk import card_in, to_card

from workbench import analyses, exports
from workbench.errors import Conflict
from workbench.store import WITHHELD_TITLE

HIDDEN = {"title": "Quokka Lantern Vigil", "description": "Keeping the quokka lantern lit for the household.",
          "policies": ["MOMENTS when the quokka lantern flickers", "SIGNS the lantern oil runs low"]}
KEPT = {"title": "Steady Night Light", "description": "A light that stays on for whoever is still awake.",
        "policies": ["MOMENTS when someone is awake late", "PLACES where the dark frightens a child"]}
ALONE = {"title": "Marmot Whistle Warning", "description": "Whistling to warn the marmot colony.",
         "policies": ["SOUNDS of the marmot whistle", "MOMENTS the colony scatters"]}
READ = {"parquet": pd.read_parquet, "csv": lambda p: pd.read_csv(p, dtype=str),
        "jsonl": lambda p: pd.read_json(p, lines=True, dtype=False)}
SECRETS = [HIDDEN["title"], HIDDEN["description"], *HIDDEN["policies"], ALONE["title"], ALONE["description"],
           *ALONE["policies"]]


def _markers(text: str) -> list[str]:
    return [s for s in SECRETS if s in text or s.lower() in text.lower()]


@pytest.fixture
def world(tmp_path, monkeypatch, demo_spec):
    store = staff_store(tmp_path / "hidden.duckdb", monkeypatch, demo_spec, participants=12, seed=1)
    monkeypatch.delenv("WORKBENCH_LLM_BASE_URL", raising=False)
    (a, _), (b, _), (c, _), (judge, token) = store.create_invites("demo", 4)
    hidden = to_card(store, a, card_in(**HIDDEN))[1]
    kept = to_card(store, b, card_in(**KEPT))[1]
    alone = to_card(store, c, card_in(**ALONE))[1]
    # What dedup writes when the hidden card is its value's medoid, and a facilitator's split.
    named = store.apply_canonical_values("demo", [{"id": None, "title": HIDDEN["title"], "description":
                                                   HIDDEN["description"], "policies": HIDDEN["policies"],
                                                   "question_id": "demo/homework", "members": [hidden, kept]}],
                                         provenance="dedup")[0]
    solo = store.split_card(alone)
    # Wiser-than answers, votes and comparisons about both values (they feed preference-pairs and the graph).
    other = int(store.canonical_values("demo", question_id="demo/homework")["id"].iloc[0])
    to_card(store, judge)
    context = "When a child's wellbeing is at stake"
    store.plan_round(judge, "wiser", [{"from_id": other, "to_id": named, "context": context},
                                      {"from_id": other, "to_id": solo, "context": context}])
    store.answer_wiser(judge, 0, "upgrade")
    store.answer_wiser(judge, 1, "upgrade")
    store.plan_round(judge, "endorse", [named, solo])
    return store, {"hidden": hidden, "alone": alone, "named": named, "solo": solo, "judge": judge, "token": token}


def _exported_text(folder: Path) -> str:
    """Every cell and every text file of an export, as text."""
    pieces = []
    for path in sorted(folder.rglob("*")):
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path)
            pieces += [json.dumps(exports.records(frame), default=str)]
        elif path.is_file():
            pieces.append(path.read_text(encoding="utf-8"))
    return "\n".join(pieces)


def test_a_hidden_card_s_text_leaves_every_value_export_graph_and_page(world, tmp_path):
    store, w = world
    before = tmp_path / "before"
    exports.export(store, "demo", "all", "parquet", before)
    assert set(_markers(_exported_text(before))) == set(SECRETS)  # the search finds them while they are shown

    store.hide_card(w["hidden"], "named a real person", actor_id=None)
    store.hide_card(w["alone"], "off topic", actor_id=None)

    values = store.canonical_values("demo", include_retired=True).set_index("id")
    assert values.loc[w["named"], "title"] == KEPT["title"], "renamed from the value's other member"
    assert values.loc[w["named"], "description"] == KEPT["description"]
    assert list(values.loc[w["named"], "policies"]) == KEPT["policies"]
    assert values.loc[w["solo"], "title"] == WITHHELD_TITLE and values.loc[w["solo"], "description"] == ""
    assert list(values.loc[w["solo"], "policies"]) == []
    audit = store.audit_log("demo")
    assert all(not _markers(json.dumps(d, default=str)) for d in audit["details"])  # nor in the audit log

    for fmt in exports.FORMATS:
        out = tmp_path / fmt
        files = exports.export(store, "demo", "all", fmt, out)
        assert _markers(_exported_text(out)) == [], fmt
        pairs = READ[fmt](next(f.path for f in files if f.table == "preference-pairs"))
        value_ids = store.id_map("demo", "value")
        about = pairs[pairs["chosen_id"] == value_ids.public(w["named"])]
        assert len(about) == 1 and KEPT["title"] in about.iloc[0]["chosen"], "the answer stays, under the new text"
    for mode in ("mge", "default"):
        published = analyses.moral_graph(store, "demo", mode=mode).published
        assert _markers(json.dumps(published)) == []

    # The rounds: the participant asked about both values sees neither hidden text.
    at = participant_page(w["token"])
    assert "Other people's values" in step_text(at)
    shown = " ".join(str(e.proto) for kind in ("markdown", "caption", "text") for e in at.get(kind))
    assert KEPT["title"] in shown and _markers(shown) == []
    # The graph page (its component's arguments hold every label it draws).
    at = staff_page(store, "fran", "facilitator pass 1", "views/moral_graph.py")
    page = " ".join(str(e.proto) for kind in ("component_instance", "markdown", "metric") for e in at.get(kind))
    assert _markers(page) == []


def test_a_hidden_card_cannot_be_split_into_a_value(world):
    store, w = world
    store.hide_card(w["hidden"], "test")
    with pytest.raises(Conflict, match="is hidden"):
        store.split_card(w["hidden"])


def test_hiding_a_card_also_puts_right_values_named_after_cards_hidden_before(world):
    store, w = world
    # A card hidden by an older version, which left its text in the value named after it.
    store._write(lambda cur: cur.execute("UPDATE values_cards SET status = 'hidden' WHERE id = ?", [w["alone"]]))
    assert store.canonical_values("demo").set_index("id").loc[w["solo"], "title"] == ALONE["title"]
    store.hide_card(w["hidden"], "test")
    values = store.canonical_values("demo", include_retired=True).set_index("id")
    assert values.loc[w["solo"], "title"] == WITHHELD_TITLE and values.loc[w["named"], "title"] == KEPT["title"]
