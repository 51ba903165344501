"""A tiny Streamlit app that shows the moral-graph component on a fixed graph, for the browser test.

One card's title is `<script>alert(1)</script>` and another's description carries an `<img onerror>`:
the component must show both as text. The app writes the value the component returns, so the test
can see that the selection reached Python.
"""

from __future__ import annotations

import streamlit as st

from workbench.components.moral_graph import moral_graph
from workbench.graphview import graph_view

SCRIPT_TITLE = "<script>alert(1)</script>"


def _edge(source: int, wiser: int, likelihood: float, context: str) -> dict:
    return {
        "sourceValueId": source,
        "wiserValueId": wiser,
        "contexts": [context],
        "counts": {"markedWiser": 3, "markedNotWiser": 0, "markedLessWise": 0, "markedUnsure": 1,
                   "impressions": 4},
        "summary": {"wiserLikelihood": likelihood, "entropy": 0.8},
    }


GRAPH = {
    "values": [
        {"id": 1, "title": "Honest Uncertainty", "description": "Say what you do not know.",
         "policies": ["MOMENTS where the evidence runs out", "FEELINGS of false confidence"], "pageRank": 0.05},
        {"id": 2, "title": "Informed Autonomy", "description": "Help people decide for themselves.",
         "policies": ["OPTIONS the person has not yet considered", "CHOICES that are theirs to make"],
         "pageRank": 0.30},
        {"id": 3, "title": SCRIPT_TITLE, "description": 'Shown as text: <img src=x onerror="alert(2)">',
         "policies": ["<b>not bold</b>"], "pageRank": 0.12},
        {"id": 4, "title": "Caring Presence", "description": "Stay with the person's feelings first.",
         "policies": ["SIGNS that someone feels unheard"], "pageRank": 0.08},
    ],
    "edges": [
        _edge(1, 2, 0.9, "When seeking clarity"),
        _edge(3, 2, 0.4, "When seeking clarity"),
        _edge(4, 3, 0.6, "When in conflict"),
        _edge(1, 4, 0.7, "When in conflict"),
    ],
}

st.set_page_config(page_title="Moral graph component", layout="wide")
view = graph_view(
    GRAPH,
    group_ranks={"Group A": {1: 0.2, 2: 0.5}, "Group B": {2: 0.1, 3: 0.4}},
    members={2: [{"id": 21, "title": "Own Decisions", "description": "Let them choose.", "policies": []}]},
)
value = moral_graph(view, height=480, key="graph")
st.write(f"selected: {value}")
