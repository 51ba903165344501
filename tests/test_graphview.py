"""Unit tests of `workbench.graphview.graph_view` and static checks of the moral-graph component page."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from workbench.graphview import (
    EDGE_WIDTH_MAX,
    EDGE_WIDTH_MIN,
    NODE_RADIUS_MAX,
    NODE_RADIUS_MIN,
    GraphViewInputError,
    graph_view,
)

COMPONENT_DIR = Path(__file__).resolve().parents[1] / "workbench" / "components" / "moral_graph"


def _value(i: int, rank: float | None = 0.1, **extra) -> dict:
    return {"id": i, "title": f"Value {i} title", "description": f"About value {i}.",
            "policies": [f"MOMENTS of {i}", f"CHOICES about {i}"], "pageRank": rank, **extra}


def _edge(s: int, w: int, likelihood: float | None = 0.6, entropy: float | None = 1.0,
          contexts: tuple[str, ...] = ("When seeking clarity",)) -> dict:
    return {"sourceValueId": s, "wiserValueId": w, "contexts": list(contexts),
            "counts": {"markedWiser": 3, "markedNotWiser": 1, "markedLessWise": 0, "markedUnsure": 0,
                       "impressions": 4},
            "summary": {"wiserLikelihood": likelihood, "entropy": entropy}}


@pytest.fixture
def graph() -> dict:
    return {
        "values": [_value(1, 0.05), _value(2, 0.30), _value(3, 0.12, title="<script>alert(1)</script>"),
                   _value(4, 0.08), _value(5, None)],
        "edges": [_edge(1, 2, 0.9), _edge(3, 2, 0.4), _edge(4, 3, 0.6, contexts=("When in conflict",)),
                  _edge(1, 4, 0.7, contexts=("When in conflict", "When seeking clarity"))],
    }


def test_counts_labels_and_text_pass_through_unchanged(graph):
    view = graph_view(graph)
    assert len(view.nodes) == 5 and len(view.edges) == 4
    assert [n.label for n in view.nodes][2] == "<script>alert(1)</script>"  # data, never escaped here
    assert view.node(1).policies == ("MOMENTS of 1", "CHOICES about 1")
    assert view.node(2).description == "About value 2."
    assert [(e.source, e.wiser) for e in view.edges] == [(1, 2), (3, 2), (4, 3), (1, 4)]
    assert view.contexts == ("When in conflict", "When seeking clarity")
    data = json.loads(json.dumps(view.to_dict()))
    assert data["nodes"][1]["id"] == 2 and data["edges"][0]["wiser"] == 2
    assert "wiser likelihood 0.90" in view.edges[0].tooltip


def test_context_filter_keeps_its_edges_and_their_values(graph):
    view = graph_view(graph, context="When in conflict")
    assert {(e.source, e.wiser) for e in view.edges} == {(4, 3), (1, 4)}
    assert sorted(n.id for n in view.nodes) == [1, 3, 4]
    assert view.context == "When in conflict"
    assert view.contexts == ("When in conflict", "When seeking clarity")  # all, for a picker
    with pytest.raises(GraphViewInputError, match="When in conflict"):
        graph_view(graph, context="When on holiday")


def test_edge_width_grows_with_certainty():
    values = [_value(i) for i in range(1, 7)]
    edges = [_edge(1, 2, 0.34), _edge(3, 4, 0.6), _edge(5, 6, 1.0)]
    widths = [e.width for e in graph_view({"values": values, "edges": edges}).edges]
    assert widths[0] < widths[1] < widths[2] == EDGE_WIDTH_MAX

    # Without a likelihood, lower entropy (more agreement) draws a thicker edge.
    by_entropy = [_edge(1, 2, None, 2.0), _edge(3, 4, None, 1.0), _edge(5, 6, None, 0.2)]
    widths = [e.width for e in graph_view({"values": values, "edges": by_entropy}).edges]
    assert widths[0] < widths[1] < widths[2]
    # A negative likelihood is no certainty at all, not a negative width.
    low = graph_view({"values": values[:2], "edges": [_edge(1, 2, -0.5)]}).edges[0]
    assert low.width == EDGE_WIDTH_MIN and low.certainty == 0.0


def test_node_size_grows_with_page_rank(graph):
    view = graph_view(graph)
    radius = {n.id: n.radius for n in view.nodes}
    assert radius[2] == NODE_RADIUS_MAX  # the top-ranked value
    assert radius[1] < radius[4] < radius[3] < radius[2]
    assert radius[5] == NODE_RADIUS_MIN  # no rank


def test_positions_are_deterministic_and_independent_of_row_order(graph):
    first = {n.id: (n.x, n.y) for n in graph_view(graph).nodes}
    assert first == {n.id: (n.x, n.y) for n in graph_view(graph).nodes}
    shuffled = {"values": list(graph["values"]), "edges": list(graph["edges"])}
    random.Random(3).shuffle(shuffled["values"])
    random.Random(4).shuffle(shuffled["edges"])
    assert {n.id: (n.x, n.y) for n in graph_view(shuffled).nodes} == first
    assert all(0.0 <= x <= 1.0 and 0.0 <= y <= 1.0 for x, y in first.values())
    assert len(set(first.values())) == len(first)  # no two values drawn on the same spot


def test_wiser_values_are_drawn_higher_up():
    # A chain 1 → 2 → 3 → 4 (each target wiser): screen y grows downward, so y must fall along it.
    # The reversed chain has the same undirected shape, so only the orientation can tell them apart.
    values = [_value(i) for i in range(1, 5)]
    up = {n.id: n.y for n in graph_view({"values": values, "edges": [_edge(1, 2), _edge(2, 3), _edge(3, 4)]}).nodes}
    down = {n.id: n.y for n in graph_view({"values": values, "edges": [_edge(4, 3), _edge(3, 2), _edge(2, 1)]}).nodes}
    assert up[4] < up[1]
    assert down[1] < down[4]
    for source, wiser in ((1, 2), (2, 1)):
        pair = graph_view({"values": values[:2], "edges": [_edge(source, wiser)]})
        assert pair.node(wiser).y < pair.node(source).y


def test_member_cards_and_group_ranks_are_attached(graph):
    members = {"2": [{"id": 21, "title": "Own choices", "instructionsShort": "Let them choose.",
                      "evaluationCriteria": ["OPTIONS they have"]}],
               3: [{"title": "Plain", "description": "d", "policies": []}]}
    view = graph_view(graph, members=members,
                      group_ranks={"Group A": {1: 0.2, "2": 0.5}, "Group B": {2: 0.1}})
    m = view.node(2).members
    assert len(m) == 1 and m[0].title == "Own choices" and m[0].description == "Let them choose."
    assert m[0].policies == ("OPTIONS they have",)
    assert view.node(3).members[0].title == "Plain" and view.node(1).members == ()
    assert view.groups == ("Group A", "Group B")
    assert dict(view.node(2).group_ranks) == {"Group A": 0.5, "Group B": 0.1}
    assert dict(view.node(1).group_ranks) == {"Group A": 0.2, "Group B": None}
    assert view.to_dict()["nodes"][1]["group_ranks"] == {"Group A": 0.5, "Group B": 0.1}


def test_mge_dump_field_names_and_missing_titles():
    values = [{"id": 7, "title": "Dump card", "instructionsShort": "Short.", "evaluationCriteria": ["A", "B"]},
              {"id": 8, "pageRank": 0.2}]
    view = graph_view({"values": values, "edges": [_edge(7, 8)]})
    assert view.node(7).description == "Short." and view.node(7).policies == ("A", "B")
    assert view.node(8).label == "Value 8" and view.node(8).policies == ()


def test_bad_input_names_the_field(graph):
    bad = {"values": graph["values"], "edges": [*graph["edges"], _edge(1, 99)]}
    with pytest.raises(GraphViewInputError, match=r"edges'\]\[4\]\.wiserValueId = 99"):
        graph_view(bad)
    with pytest.raises(GraphViewInputError, match="duplicate value id 1"):
        graph_view({"values": [_value(1), _value(1)], "edges": []})
    with pytest.raises(GraphViewInputError, match="no 'edges'"):
        graph_view({"values": []})
    with pytest.raises(GraphViewInputError, match="wiserLikelihood"):
        graph_view({"values": [_value(1), _value(2)], "edges": [_edge(1, 2, "high")]})


def test_empty_graph_draws_nothing():
    view = graph_view({"values": [], "edges": []})
    assert view.nodes == () and view.edges == () and view.to_dict()["nodes"] == []


def test_real_study_graph(shared_datasets):
    """The MGE study's canonical values with every pair someone called wiser at least twice."""
    mge = shared_datasets / "mge-dft"
    cards = json.loads((mge / "canonicalValuesCard.json").read_text())
    answers = json.loads((mge / "edge.json").read_text())
    upgrades: dict[tuple[int, int], list[str]] = {}
    for a in answers:
        if a["relationship"] == "upgrade":
            upgrades.setdefault((a["fromId"], a["toId"]), []).append(a["contextId"])
    edges = [{"sourceValueId": s, "wiserValueId": w, "contexts": sorted(set(c)),
              "counts": {"markedWiser": len(c)}, "summary": {"wiserLikelihood": None, "entropy": None}}
             for (s, w), c in sorted(upgrades.items()) if len(c) >= 2]
    values = [{"id": c["id"], "title": c["title"], "instructionsShort": c["instructionsShort"],
               "evaluationCriteria": c["evaluationCriteria"]} for c in cards]
    view = graph_view({"values": values, "edges": edges})
    assert len(view.nodes) == 115 and len(view.edges) == len(edges) > 50
    assert all(0.0 <= n.x <= 1.0 and 0.0 <= n.y <= 1.0 for n in view.nodes)
    assert all(n.policies for n in view.nodes)
    context = view.contexts[0]
    sub = graph_view({"values": values, "edges": edges}, context=context)
    assert 0 < len(sub.edges) < len(view.edges) and all(context in e.contexts for e in sub.edges)


def test_component_page_is_offline_and_sets_text_only():
    html = (COMPONENT_DIR / "index.html").read_text()
    # No network at run time: nothing loaded from another origin.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "@import" not in html and "fetch(" not in html
    # Card text may contain markup: the page must never parse strings as HTML.
    script = "".join(re.findall(r"<script>(.*?)</script>", html, flags=re.S))
    assert "textContent" in script
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script
    for message in ("streamlit:componentReady", "streamlit:setComponentValue", "streamlit:render"):
        assert message in html


def test_component_rejects_what_it_cannot_draw(graph):
    from workbench.components.moral_graph import moral_graph

    with pytest.raises(TypeError, match="GraphView"):
        moral_graph(graph)  # the raw published dict, not a view
    with pytest.raises(ValueError, match="height"):
        moral_graph(graph_view(graph), height=50)
