"""The interactive moral-graph view for Streamlit pages: an offline custom component.

Draws a `workbench.graphview.GraphView` (nodes sized by PageRank, edges thick by certainty with
arrowheads toward the wiser value), lets the user zoom, pan and click a value, shows the clicked
value's card in a side panel, and returns the clicked value's id to Python. The frontend is the
plain JS + SVG page `index.html` next to this file — nothing is fetched from the network, and all
card text is inserted as text, never as HTML. This module holds no analysis: build the view with
`graph_view(...)` first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from streamlit.components.v1 import declare_component

from workbench.graphview import GraphView

_FRONTEND = Path(__file__).resolve().parent
_component = declare_component("moral_graph", path=str(_FRONTEND))


def moral_graph(view: GraphView | dict[str, Any], *, height: int = 600, key: str | None = None) -> Any:
    """Draw the moral graph; return the id of the value the user last clicked, or None.

    `view` is a `GraphView` or its `to_dict()`. The id keeps its JSON type (an `int` id comes back
    as `int`). Clicking empty space clears the selection (returns None); a selection whose value is
    not in the current view (the graph or context changed) also returns None. Give a `key` when a
    page draws more than one graph, and keep it stable so the selection survives reruns.
    """
    data = view.to_dict() if isinstance(view, GraphView) else view
    if not isinstance(data, dict) or "nodes" not in data or "edges" not in data:
        raise TypeError("moral_graph(view=...) needs a GraphView or GraphView.to_dict(), "
                        f"got {type(view).__name__}")
    if height < 200:
        raise ValueError(f"moral_graph(height={height}) is too small to draw a graph; use at least 200")
    selected = _component(view=data, height=int(height), key=key, default=None)
    ids = {str(node["id"]): node["id"] for node in data["nodes"]}
    # The frontend sends the id it was given; mapping through the view drops stale selections.
    return None if selected is None else ids.get(str(selected))
