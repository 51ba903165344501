"""Inline SVG drawings for the deliberation report: a moral graph's top values and a yes/not sure/no bar.

Each function returns SVG markup as `markupsafe.Markup`, every text in it escaped here (a value's
title may hold anything a participant typed), so the report template can place it as is. Drawings
use no script, no font file and no image: the page must open offline and print. Never reads the
store and computes nothing but the layout.
"""

from __future__ import annotations

import textwrap

from markupsafe import Markup, escape

NODE_W, NODE_H, GAP_X, GAP_Y, PAD = 190, 54, 70, 16, 10


def _layers(ids: list[str], edges: list[tuple[str, str]]) -> dict[str, int]:
    """Column of each value: the longest chain of "wiser than" arrows leading to it. Only arrows towards
    a better-ranked value count (`ids` is in rank order), so a cycle cannot stretch the drawing; the
    columns are then numbered without gaps."""
    order = {v: i for i, v in enumerate(ids)}
    forward = [(a, b) for a, b in edges if order[b] < order[a]]
    layer = dict.fromkeys(ids, 0)
    for _ in range(len(ids)):  # longest path in a DAG of at most len(ids) nodes
        changed = False
        for a, b in forward:
            if layer[b] < layer[a] + 1:
                layer[b], changed = layer[a] + 1, True
        if not changed:
            break
    used = {n: i for i, n in enumerate(sorted(set(layer.values())))}
    return {v: used[n] for v, n in layer.items()}


def graph_svg(values, edges, *, key: str = "g", label: str = "moral graph") -> Markup:
    """Values (ranked, best first; `.id`, `.title`) as boxes in columns, left to right along the arrows
    "people judged moving from this value to that one wiser"; an arrow's width grows with its likelihood."""
    ids = [v.id for v in values]
    titles = {v.id: v.title for v in values}
    pairs = [(e.source, e.wiser) for e in edges if e.source in titles and e.wiser in titles]
    layer = _layers(ids, pairs)
    columns: dict[int, list[str]] = {}
    for value_id in ids:  # in rank order, so the best-ranked value of a column comes first
        columns.setdefault(layer[value_id], []).append(value_id)
    n_cols = max(columns) + 1 if columns else 1
    n_rows = max((len(c) for c in columns.values()), default=1)
    width = PAD * 2 + n_cols * NODE_W + (n_cols - 1) * GAP_X
    height = PAD * 2 + n_rows * NODE_H + (n_rows - 1) * GAP_Y
    at = {}
    for col, members in columns.items():
        for row, value_id in enumerate(members):
            at[value_id] = (PAD + col * (NODE_W + GAP_X), PAD + row * (NODE_H + GAP_Y))
    rank = {v: i + 1 for i, v in enumerate(ids)}
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}"'
             f' height="{height}" role="img" aria-label="{escape(label)}" class="graph">',
             f'<defs><marker id="arrow-{escape(key)}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="9" markerHeight="9"'
             ' markerUnits="userSpaceOnUse" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#4a5a70"/></marker></defs>']
    for e in edges:
        if e.source not in at or e.wiser not in at:
            continue
        (x1, y1), (x2, y2) = at[e.source], at[e.wiser]
        if x2 > x1:
            sx, sy, tx, ty = x1 + NODE_W, y1 + NODE_H / 2, x2, y2 + NODE_H / 2
            mid = (sx + tx) / 2
        elif x2 == x1:  # same column: round the right-hand side
            sx, sy, tx, ty = x1 + NODE_W, y1 + NODE_H / 2, x2 + NODE_W, y2 + NODE_H / 2
            mid = sx + GAP_X / 2
        else:  # towards a worse-ranked value (against the drawing's direction): round the left-hand side
            sx, sy, tx, ty = x1, y1 + NODE_H / 2, x2 + NODE_W, y2 + NODE_H / 2
            mid = (sx + tx) / 2
        stroke = 1 + 3 * max(0.0, min(1.0, e.likelihood))
        parts.append(f'<path d="M{sx:.0f},{sy:.0f} C{mid:.0f},{sy:.0f} {mid:.0f},{ty:.0f} {tx - 2:.0f},{ty:.0f}"'
                     f' fill="none" stroke="#4a5a70" stroke-opacity="0.75" stroke-width="{stroke:.1f}"'
                     f' marker-end="url(#arrow-{escape(key)})"><title>'
                     + str(escape(f"{titles[e.source]} → {titles[e.wiser]}: wiser likelihood {e.likelihood:.2f}"))
                     + "</title></path>")
    for value_id, (x, y) in at.items():
        lines = textwrap.wrap(titles[value_id], 26)[:2] or [""]
        if len(textwrap.wrap(titles[value_id], 26)) > 2:
            lines[1] = lines[1][:24] + "…"
        parts.append(f'<g><rect x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="6" fill="#eef3fa"'
                     ' stroke="#7d93b2"/>')
        parts.append(f'<text x="{x + 8}" y="{y + 16}" class="rank">#{rank[value_id]}</text>')
        for i, line in enumerate(lines):
            parts.append(f'<text x="{x + 8}" y="{y + 31 + 14 * i}" class="node">{escape(line)}</text>')
        parts.append(f"<title>{escape(titles[value_id])}</title></g>")
    parts.append("</svg>")
    return Markup("".join(parts))


def intervals_svg(intervals, domain: tuple[float, float], *, width: int = 330) -> Markup:
    """A small forest plot: one row per group (`.group`, `.theta`, `.lower`, `.upper`), a dot at the
    strength and a line across its interval, on the shared `domain` so rows and values compare."""
    label_w, row_h, pad = 118, 16, 6
    lo, hi = domain
    span = (hi - lo) or 1.0
    height = pad * 2 + row_h * max(len(intervals), 1)

    def x(v: float) -> float:
        return label_w + (width - label_w - pad) * (min(max(v, lo), hi) - lo) / span

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" class="forest"'
             f' aria-label="{escape("; ".join(f"{i.group}: {i.theta:.2f} [{i.lower:.2f}, {i.upper:.2f}]" for i in intervals))}">']
    if lo < 0 < hi:
        parts.append(f'<line x1="{x(0):.1f}" x2="{x(0):.1f}" y1="{pad - 2}" y2="{height - pad + 2}" stroke="#b9c2cf"'
                     ' stroke-dasharray="3,2"/>')
    for row, i in enumerate(intervals):
        y = pad + row_h * row + row_h / 2
        name = i.group if len(i.group) <= 18 else i.group[:17] + "…"
        parts.append(f'<text x="0" y="{y + 4:.1f}" class="label">{escape(name)}</text>')
        parts.append(f'<line x1="{x(i.lower):.1f}" x2="{x(i.upper):.1f}" y1="{y:.1f}" y2="{y:.1f}" stroke="#2f4f7f"'
                     ' stroke-width="2"/>')
        parts.append(f'<circle cx="{x(i.theta):.1f}" cy="{y:.1f}" r="3.5" fill="#2f4f7f"><title>'
                     f'{escape(f"{i.group}: {i.theta:.2f} [{i.lower:.2f}, {i.upper:.2f}]")}</title></circle>')
    parts.append("</svg>")
    return Markup("".join(parts))


def share_bar_svg(yes: int, not_sure: int, no: int, *, width: int = 160) -> Markup:
    """A bar split into yes (dark), not sure (light) and no (grey), proportional to the counts."""
    total = yes + not_sure + no
    label = escape(f"{yes} yes, {not_sure} not sure, {no} no")
    if not total:
        return Markup(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="12" role="img"'
                      f' aria-label="{label}"></svg>')
    x, parts = 0.0, []
    for count, colour in ((yes, "#2f6b4f"), (not_sure, "#a8c8b4"), (no, "#c9c9c9")):
        w = width * count / total
        if w > 0:
            parts.append(f'<rect x="{x:.1f}" y="0" width="{w:.1f}" height="12" fill="{colour}"/>')
        x += w
    return Markup(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="12" role="img"'
                  f' aria-label="{label}">{"".join(parts)}</svg>')
