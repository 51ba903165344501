"""Turn a moral graph (the study's published JSON shape) into what the graph component draws.

Pure presentation data: a `{"values": [...], "edges": [...]}` dict in (the shape
`workbench.moralgraph.to_published_json` writes and the MGE study published), a frozen `GraphView`
out — nodes with labels, sizes, tooltips, full card text, member cards, per-group ranks and
deterministic layout positions; edges with widths and arrows toward the wiser value. It never
imports Streamlit, never reads the store or files, never renders HTML and never escapes or
interprets text: every title, description and policy is passed through unchanged as data, and the
component must set it with `textContent` (cards may contain `<script>`).

Visual encodings (documented here because a facilitator reads them off the screen):
- node radius grows with the square root of `pageRank` (so node *area* is proportional to rank),
  from `NODE_RADIUS_MIN` for values with no or zero rank to `NODE_RADIUS_MAX` for the top value;
- edge width is linear in the edge's *certainty*: `wiserLikelihood` clipped to [0, 1] (the share of
  decided answers, net of reverse "upgrade"s, that call the target wiser — the number the study's
  PageRank weighs edges by). When an edge has no usable `wiserLikelihood`, certainty is
  `1 − entropy / log2(5)` (the study's entropy is over five counts, so log2 5 is its maximum);
  when it has neither, certainty is 0.5. Width runs from `EDGE_WIDTH_MIN` (certainty 0) to
  `EDGE_WIDTH_MAX` (certainty 1);
- positions are in the unit square (y grows downward, as on screen): each connected component is
  laid out on its own (networkx Kamada–Kawai, or a seeded spring layout above 150 nodes) over the
  nodes sorted by id, flipped so that arrows toward wiser values point upward on balance, and the
  components are packed in rows, biggest first. The same graph draws the same way whatever the
  order of its rows.

Context filtering keeps the edges whose `contexts` list the context and the values on them;
PageRank stays the graph's own (pooled, in the study's export) — pass per-context ranks through
`group_ranks` to show them.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import networkx as nx

from .errors import InputError

NODE_RADIUS_MIN = 7.0
NODE_RADIUS_MAX = 22.0
EDGE_WIDTH_MIN = 1.0
EDGE_WIDTH_MAX = 8.0
# Components up to this size get Kamada-Kawai (deterministic, clearer); bigger ones a seeded spring layout.
_KAMADA_KAWAI_UP_TO = 150
_MAX_ENTROPY = math.log2(5)  # five counts in the study's entropy
_COUNT_KEYS = ("markedWiser", "markedNotWiser", "markedLessWise", "markedUnsure", "impressions")


class GraphViewInputError(InputError):
    """The graph dict (or the ranks / member cards passed with it) does not have the expected shape."""


@dataclass(frozen=True)
class MemberCard:
    """One participant's card merged into a canonical value (shown under the value's card)."""

    id: Any
    title: str
    description: str
    policies: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "description": self.description,
                "policies": list(self.policies)}


@dataclass(frozen=True)
class GraphNode:
    """A value as drawn: `x`, `y` in the unit square (y grows downward, as on screen)."""

    id: Any
    label: str
    description: str
    policies: tuple[str, ...]
    page_rank: float | None
    radius: float
    x: float
    y: float
    tooltip: str
    members: tuple[MemberCard, ...]
    group_ranks: tuple[tuple[str, float | None], ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "label": self.label,
            "description": self.description,
            "policies": list(self.policies),
            "page_rank": self.page_rank,
            "radius": self.radius,
            "x": self.x,
            "y": self.y,
            "tooltip": self.tooltip,
            "members": [m.to_dict() for m in self.members],
            "group_ranks": dict(self.group_ranks),
        }


@dataclass(frozen=True)
class GraphEdge:
    """A wiser-than edge as drawn, from `source` toward the wiser value `wiser` (the arrowhead's end)."""

    source: Any
    wiser: Any
    certainty: float
    width: float
    wiser_likelihood: float | None
    entropy: float | None
    contexts: tuple[str, ...]
    counts: tuple[tuple[str, int], ...]
    tooltip: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "wiser": self.wiser,
            "certainty": self.certainty,
            "width": self.width,
            "wiser_likelihood": self.wiser_likelihood,
            "entropy": self.entropy,
            "contexts": list(self.contexts),
            "counts": dict(self.counts),
            "tooltip": self.tooltip,
        }


@dataclass(frozen=True)
class GraphView:
    """Everything the moral-graph component needs; `to_dict()` is what it receives as JSON."""

    nodes: tuple[GraphNode, ...]
    edges: tuple[GraphEdge, ...]
    context: str | None
    contexts: tuple[str, ...]  # every context named on the graph's edges, before filtering
    groups: tuple[str, ...]

    def node(self, value_id: Any) -> GraphNode | None:
        return next((n for n in self.nodes if n.id == value_id), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "nodes": [n.to_dict() for n in self.nodes],
            "edges": [e.to_dict() for e in self.edges],
            "context": self.context,
            "contexts": list(self.contexts),
            "groups": list(self.groups),
        }


def graph_view(
    graph_json: Mapping[str, Any],
    *,
    context: str | None = None,
    group_ranks: Mapping[str, Mapping[Hashable, float]] | None = None,
    members: Mapping[Hashable, Sequence[Mapping[str, Any]]] | None = None,
    seed: int = 0,
) -> GraphView:
    """The drawable view of a moral graph in the published JSON shape.

    `context`: keep only edges whose `contexts` include it (and the values on them); an unknown
    context is an error listing the known ones. `group_ranks`: `{group name: {value id: rank}}`,
    shown on each value's card (None where a group has no rank for it). `members`:
    `{value id: [card dicts]}`, the participants' cards merged into each value. Ids in both are
    matched to value ids by their string form, so keys that went through JSON (always strings)
    still match integer ids. `seed` fixes the layout.
    Card dicts may use the published names (`title`, `description`, `policies`) or the MGE dump's
    (`instructionsShort`, `evaluationCriteria`).
    """
    if not isinstance(graph_json, Mapping):
        raise GraphViewInputError(f"graph_json must be a dict with 'values' and 'edges', got {type(graph_json).__name__}")
    values = _list_field(graph_json, "values")
    raw_edges = _list_field(graph_json, "edges")

    by_key: dict[str, Mapping[str, Any]] = {}
    for i, value in enumerate(values):
        if not isinstance(value, Mapping) or "id" not in value or value["id"] is None:
            raise GraphViewInputError(f"graph_json['values'][{i}] has no 'id': {value!r:.200}")
        key = _key(value["id"])
        if key in by_key:
            raise GraphViewInputError(f"graph_json['values'][{i}]: duplicate value id {value['id']!r}")
        by_key[key] = value

    edges = [_edge(i, e, by_key) for i, e in enumerate(raw_edges)]
    all_contexts = tuple(sorted({c for e in edges for c in e["contexts"]}))

    if context is not None:
        if context not in all_contexts:
            known = ", ".join(repr(c) for c in all_contexts) or "none"
            raise GraphViewInputError(f"context {context!r} is on no edge of this graph; contexts on edges: {known}")
        edges = [e for e in edges if context in e["contexts"]]
        on_edges = {_key(e["source"]) for e in edges} | {_key(e["wiser"]) for e in edges}
        values = [v for v in values if _key(v["id"]) in on_edges]

    group_names, ranks_by_key = _group_ranks(group_ranks)
    members_by_key = _members(members)
    titles = {_key(v["id"]): _title(v) for v in values}
    positions = _layout(values, edges, seed)
    max_rank = max((r for r in (_page_rank(v) for v in values) if r is not None), default=0.0)

    nodes = []
    for v in values:
        key = _key(v["id"])
        rank = _page_rank(v)
        description = _description(v)
        tooltip = titles[key] + (f"\n{description}" if description else "")
        if rank is not None:
            tooltip += f"\nPageRank {rank:.3f}"
        x, y = positions[key]
        nodes.append(GraphNode(
            id=v["id"],
            label=titles[key],
            description=description,
            policies=_policies(v, f"value {v['id']!r}"),
            page_rank=rank,
            radius=_radius(rank, max_rank),
            x=x,
            y=y,
            tooltip=tooltip,
            members=tuple(members_by_key.get(key, ())),
            group_ranks=tuple((g, ranks_by_key[g].get(key)) for g in group_names),
        ))

    drawn = [_drawn_edge(e, titles) for e in edges]
    return GraphView(nodes=tuple(nodes), edges=tuple(drawn), context=context, contexts=all_contexts,
                     groups=group_names)


def edge_certainty(wiser_likelihood: float | None, entropy: float | None) -> float:
    """How sure the crowd is that the target is wiser, in [0, 1] (see the module docstring)."""
    if _finite(wiser_likelihood):
        return min(1.0, max(0.0, float(wiser_likelihood)))
    if _finite(entropy):
        return min(1.0, max(0.0, 1.0 - float(entropy) / _MAX_ENTROPY))
    return 0.5


def edge_width(certainty: float) -> float:
    return EDGE_WIDTH_MIN + (EDGE_WIDTH_MAX - EDGE_WIDTH_MIN) * certainty


def _key(value_id: Any) -> str:
    # Ids are one type per graph (moralgraph.py), so their string forms identify them; matching on
    # strings lets JSON-keyed rank and member dicts (keys always strings) find integer ids.
    return str(value_id)


def _list_field(graph_json: Mapping[str, Any], name: str) -> list[Any]:
    if name not in graph_json:
        raise GraphViewInputError(f"graph_json has no {name!r} list (keys: {sorted(graph_json)})")
    items = graph_json[name]
    if not isinstance(items, list | tuple):
        raise GraphViewInputError(f"graph_json[{name!r}] must be a list, got {type(items).__name__}")
    return list(items)


def _edge(i: int, edge: Any, by_key: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    where = f"graph_json['edges'][{i}]"
    if not isinstance(edge, Mapping):
        raise GraphViewInputError(f"{where} must be a dict, got {type(edge).__name__}")
    ends = {}
    for field in ("sourceValueId", "wiserValueId"):
        if edge.get(field) is None:
            raise GraphViewInputError(f"{where} has no {field!r}")
        if _key(edge[field]) not in by_key:
            raise GraphViewInputError(f"{where}.{field} = {edge[field]!r} is not the id of any value in graph_json['values']")
        ends[field] = by_key[_key(edge[field])]["id"]
    contexts = edge.get("contexts") or []
    if isinstance(contexts, str) or not all(isinstance(c, str) for c in contexts):
        raise GraphViewInputError(f"{where}.contexts must be a list of strings, got {contexts!r:.200}")
    summary = edge.get("summary") or {}
    counts = edge.get("counts") or {}
    if not isinstance(summary, Mapping) or not isinstance(counts, Mapping):
        raise GraphViewInputError(f"{where}: 'summary' and 'counts' must be dicts")
    return {
        "source": ends["sourceValueId"],
        "wiser": ends["wiserValueId"],
        "contexts": tuple(contexts),
        "wiser_likelihood": _number(summary.get("wiserLikelihood"), f"{where}.summary.wiserLikelihood"),
        "entropy": _number(summary.get("entropy"), f"{where}.summary.entropy"),
        "counts": tuple((k, int(counts[k])) for k in _COUNT_KEYS if counts.get(k) is not None),
    }


def _drawn_edge(edge: Mapping[str, Any], titles: Mapping[str, str]) -> GraphEdge:
    certainty = edge_certainty(edge["wiser_likelihood"], edge["entropy"])
    counts = dict(edge["counts"])
    lines = [f"{titles[_key(edge['source'])]} → {titles[_key(edge['wiser'])]} (wiser)"]
    if edge["wiser_likelihood"] is not None:
        lines.append(f"wiser likelihood {edge['wiser_likelihood']:.2f}")
    if edge["entropy"] is not None:
        lines.append(f"entropy {edge['entropy']:.2f}")
    if "markedWiser" in counts:
        seen = f" of {counts['impressions']} answers" if "impressions" in counts else ""
        lines.append(f"{counts['markedWiser']} said wiser{seen}")
    if edge["contexts"]:
        lines.append("contexts: " + "; ".join(edge["contexts"]))
    return GraphEdge(
        source=edge["source"],
        wiser=edge["wiser"],
        certainty=certainty,
        width=edge_width(certainty),
        wiser_likelihood=edge["wiser_likelihood"],
        entropy=edge["entropy"],
        contexts=edge["contexts"],
        counts=edge["counts"],
        tooltip="\n".join(lines),
    )


def _group_ranks(
    group_ranks: Mapping[str, Mapping[Hashable, float]] | None,
) -> tuple[tuple[str, ...], dict[str, dict[str, float | None]]]:
    if group_ranks is None:
        return (), {}
    if not isinstance(group_ranks, Mapping):
        raise GraphViewInputError(f"group_ranks must be {{group: {{value id: rank}}}}, got {type(group_ranks).__name__}")
    out: dict[str, dict[str, float | None]] = {}
    for group, ranks in group_ranks.items():
        if not isinstance(ranks, Mapping):
            raise GraphViewInputError(f"group_ranks[{group!r}] must be {{value id: rank}}, got {type(ranks).__name__}")
        out[str(group)] = {_key(k): _number(r, f"group_ranks[{group!r}][{k!r}]") for k, r in ranks.items()}
    return tuple(out), out


def _members(members: Mapping[Hashable, Sequence[Mapping[str, Any]]] | None) -> dict[str, list[MemberCard]]:
    if members is None:
        return {}
    if not isinstance(members, Mapping):
        raise GraphViewInputError(f"members must be {{value id: [card dicts]}}, got {type(members).__name__}")
    out: dict[str, list[MemberCard]] = {}
    for value_id, cards in members.items():
        if isinstance(cards, Mapping | str) or not isinstance(cards, Iterable):
            raise GraphViewInputError(f"members[{value_id!r}] must be a list of card dicts, got {type(cards).__name__}")
        for j, card in enumerate(cards):
            where = f"members[{value_id!r}][{j}]"
            if not isinstance(card, Mapping):
                raise GraphViewInputError(f"{where} must be a card dict, got {type(card).__name__}")
            out.setdefault(_key(value_id), []).append(MemberCard(
                id=card.get("id"),
                title=_title(card),
                description=_description(card),
                policies=_policies(card, where),
            ))
    return out


def _title(card: Mapping[str, Any]) -> str:
    title = card.get("title")
    # Values exported without metadata (moralgraph.py without a values table) only carry ids.
    return str(title) if title not in (None, "") else f"Value {card.get('id')}"


def _description(card: Mapping[str, Any]) -> str:
    for field in ("description", "instructionsShort", "instructionsDetailed"):
        if card.get(field):
            return str(card[field])
    return ""


def _policies(card: Mapping[str, Any], where: str) -> tuple[str, ...]:
    raw = card.get("policies")
    if raw is None:
        raw = card.get("evaluationCriteria")
    if raw is None:
        return ()
    if isinstance(raw, str) or not isinstance(raw, Iterable):
        raise GraphViewInputError(f"{where}: 'policies' must be a list of strings, got {raw!r:.200}")
    return tuple(str(p) for p in raw)


def _page_rank(value: Mapping[str, Any]) -> float | None:
    return _number(value.get("pageRank"), f"value {value.get('id')!r}.pageRank")


def _number(x: Any, where: str) -> float | None:
    if x is None:
        return None
    if isinstance(x, bool) or not isinstance(x, int | float):
        raise GraphViewInputError(f"{where} must be a number or null, got {x!r:.100}")
    return float(x) if math.isfinite(x) else None


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def _radius(rank: float | None, max_rank: float) -> float:
    if rank is None or rank <= 0 or max_rank <= 0:
        return NODE_RADIUS_MIN
    return NODE_RADIUS_MIN + (NODE_RADIUS_MAX - NODE_RADIUS_MIN) * math.sqrt(rank / max_rank)


def _layout(values: Sequence[Mapping[str, Any]], edges: Sequence[Mapping[str, Any]], seed: int) -> dict[str, tuple[float, float]]:
    keys = sorted(_key(v["id"]) for v in values)
    if not keys:
        return {}
    # Undirected and sorted: the layout must not depend on row order or on edge direction.
    g = nx.Graph()
    g.add_nodes_from(keys)
    g.add_edges_from(sorted(tuple(sorted((_key(e["source"]), _key(e["wiser"])))) for e in edges))
    wiser_pairs = sorted((_key(e["source"]), _key(e["wiser"])) for e in edges)

    # One spring layout over a disconnected graph pushes the small components to the corners and
    # crushes the big one into the middle, so each component is laid out alone and the components
    # are packed in rows, each in a square cell whose area is proportional to its node count.
    components = sorted((sorted(c) for c in nx.connected_components(g)), key=lambda c: (-len(c), c[0]))
    sides = [math.sqrt(len(c)) for c in components]
    row_width = max(sides[0], 1.3 * math.sqrt(sum(s * s for s in sides)))  # a landscape frame
    placed: dict[str, tuple[float, float]] = {}
    x0 = y0 = row_height = 0.0
    for component, side in zip(components, sides, strict=True):
        if x0 > 0 and x0 + side > row_width + 1e-9:
            x0, y0, row_height = 0.0, y0 + row_height, 0.0
        local = _component_layout(g.subgraph(component), wiser_pairs, seed)
        for k, (x, y) in local.items():
            placed[k] = (x0 + side * (0.1 + 0.8 * x), y0 + side * (0.1 + 0.8 * y))
        x0 += side
        row_height = max(row_height, side)
    return _unit_square(placed)


def _component_layout(g: nx.Graph, wiser_pairs: Sequence[tuple[str, str]], seed: int) -> dict[str, tuple[float, float]]:
    nodes = sorted(g.nodes)
    if len(nodes) == 1:
        return {nodes[0]: (0.5, 0.5)}
    if len(nodes) == 2:
        # Stacked, so the orientation step below puts the wiser value on top.
        pos = {nodes[0]: (0.0, 0.0), nodes[1]: (0.0, 1.0)}
    elif len(nodes) <= _KAMADA_KAWAI_UP_TO:
        # Kamada-Kawai starts from a circle, so it needs no randomness and spreads small graphs well.
        sub = nx.Graph()
        sub.add_nodes_from(nodes)
        sub.add_edges_from(sorted(g.edges))
        pos = nx.kamada_kawai_layout(sub)
    else:
        sub = nx.Graph()
        sub.add_nodes_from(nodes)
        sub.add_edges_from(sorted(g.edges))
        pos = nx.spring_layout(sub, seed=seed, iterations=200)
    local = {k: (float(pos[k][0]), float(pos[k][1])) for k in nodes}
    # Screen y grows downward: flip so that arrows toward the wiser value point up on balance.
    inside = set(nodes)
    climb = sum(local[w][1] - local[s][1] for s, w in wiser_pairs if s in inside and w in inside)
    if climb > 0:
        local = {k: (x, -y) for k, (x, y) in local.items()}
    return _unit_square(local)


def _unit_square(pos: Mapping[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
    xs = [p[0] for p in pos.values()]
    ys = [p[1] for p in pos.values()]

    def scale(v: float, lo: float, hi: float) -> float:
        return 0.5 if hi - lo < 1e-12 else (v - lo) / (hi - lo)

    # round() so tiny floating-point differences between platforms do not move nodes between runs
    return {k: (round(scale(x, min(xs), max(xs)), 6), round(scale(y, min(ys), max(ys)), 6))
            for k, (x, y) in pos.items()}
