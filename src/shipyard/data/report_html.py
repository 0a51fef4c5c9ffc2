"""A self-contained HTML data report: profile tables, inline SVG plots and the relationship graph.

:func:`render_report` turns a :class:`~shipyard.data.profiling.Profile` (and
optionally a :class:`~shipyard.data.relationships.RelationshipGraph`) into one
HTML document that needs nothing else: no network, no fonts, no scripts. Plots
are SVG drawn here (histograms, bar charts of top values, an association
heatmap and the relationship graph laid out by a small deterministic
force-directed algorithm). The profile and graph are embedded as JSON in
``<script type="application/json" id="shipyard-data">`` for tools to read.

Every string that comes from the data (column names, category values, the
title) is escaped with :func:`html.escape`, the embedded JSON has ``<``, ``>``
and ``&`` escaped, and a Content-Security-Policy forbids scripts and any
outside resource, so a hostile column name cannot inject markup or code.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from shipyard.core.plain import format_number as _fmt
from shipyard.data.profiling import ColumnProfile, Histogram, Profile, TopValue
from shipyard.data.relationships import Edge, RelationshipGraph

_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
_POSITIVE = "#2563eb"
_NEGATIVE = "#dc2626"
_UNSIGNED = "#7c3aed"
_LEAK = "#dc2626"
_REDUNDANT = "#ea580c"
_TARGET = "#059669"
_FEATURE = "#60a5fa"
_UNUSED = "#cbd5e1"

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1e293b;
background:#f8fafc;font-size:14px}
header{background:#0f172a;color:#f8fafc;padding:18px 28px}
header h1{margin:0;font-size:22px}header p{margin:4px 0 0;color:#94a3b8}
nav{padding:8px 28px;background:#e2e8f0}nav a{margin-right:16px;color:#0f172a}
main{padding:12px 28px 40px}section{margin-top:18px}
h2{font-size:18px;border-bottom:1px solid #cbd5e1;padding-bottom:4px}
h3{font-size:15px;margin:0 0 6px;word-break:break-all}
.cards{display:flex;flex-wrap:wrap;gap:10px}
.card{background:#fff;border:1px solid #e2e8f0;border-radius:6px;padding:8px 14px;min-width:110px}
.card b{display:block;font-size:18px}.card span{color:#64748b;font-size:12px}
table{border-collapse:collapse;background:#fff;margin:6px 0}
td,th{border:1px solid #e2e8f0;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f1f5f9}td.num{text-align:right;font-variant-numeric:tabular-nums}
.alert{padding:6px 10px;margin:4px 0;border-left:4px solid #f59e0b;background:#fffbeb}
.alert.leak{border-color:#dc2626;background:#fef2f2}.alert.info{border-color:#3b82f6;
background:#eff6ff}
.grid{display:flex;flex-wrap:wrap;gap:14px}
.column{background:#fff;border:1px solid #e2e8f0;border-radius:6px;padding:10px;width:400px}
.kind{font-size:11px;background:#e2e8f0;border-radius:8px;padding:1px 7px;margin-left:6px}
svg text{font-family:inherit}.muted{color:#64748b}
.legend span{display:inline-block;margin-right:14px}
.swatch{display:inline-block;width:12px;height:12px;border-radius:6px;margin-right:4px;
vertical-align:middle}
"""


def render_report(
    profile: Profile,
    graph: RelationshipGraph | None = None,
    *,
    title: str,
    edge_threshold: float = 0.5,
) -> str:
    """One self-contained HTML document describing a table.

    Args:
        profile: the table's profile (:func:`shipyard.data.profiling.profile`).
        graph: its relationship graph, if computed
            (:func:`shipyard.data.relationships.relationship_graph`).
        title: the page title (escaped).
        edge_threshold: edges at least this strong are drawn in the graph.

    Returns:
        The HTML text; write it to a ``.html`` file and open it in any browser.

    Example::

        >>> import pandas as pd
        >>> from shipyard.data.profiling import profile
        >>> page = render_report(profile(pd.DataFrame({"x": [1, 2, 3]})), title="demo")
        >>> page.startswith("<!DOCTYPE html>")
        True
    """
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<header><h1>{_e(title)}</h1><p>{_e(_subtitle(profile, graph))}</p></header>",
        '<nav><a href="#overview">Overview</a><a href="#alerts">Alerts</a>',
    ]
    if graph is not None:
        parts.append('<a href="#relationships">Relationships</a>')
        parts.append('<a href="#heatmap">Associations</a>')
    parts.append('<a href="#columns">Columns</a></nav><main>')
    parts.append(_overview(profile))
    parts.append(_alerts(profile, graph))
    if graph is not None:
        parts.append(_relationships(graph, edge_threshold))
        parts.append(_heatmap_section(graph))
    parts.append(_columns(profile))
    payload = {"profile": profile.to_dict(), "graph": graph.to_dict() if graph else None}
    data = json.dumps(payload, allow_nan=False)
    data = data.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    parts.append(f'</main><script type="application/json" id="shipyard-data">{data}</script>')
    parts.append("</body></html>\n")
    return "\n".join(parts)


# -- sections ---------------------------------------------------------------------------------


def _subtitle(profile: Profile, graph: RelationshipGraph | None) -> str:
    text = f"{profile.n_rows:,} rows x {profile.n_columns:,} columns"
    if profile.sampled:
        text += f" (profiled on a sample of {profile.rows_profiled:,} rows)"
    if graph is not None and graph.target is not None:
        text += f"; target {graph.target!r} ({graph.task})"
    return text


def _overview(profile: Profile) -> str:
    cells = profile.n_rows * profile.n_columns
    kinds: dict[str, int] = {}
    for c in profile.columns:
        kinds[c.kind] = kinds.get(c.kind, 0) + 1
    cards = [
        ("rows", f"{profile.n_rows:,}"),
        ("columns", f"{profile.n_columns:,}"),
        ("memory", _bytes(profile.memory_bytes)),
        ("duplicate rows", _fmt(profile.duplicate_rows)),
        ("missing cells", f"{profile.missing_cells:,}"),
        ("missing share", _pct(profile.missing_cells / cells if cells else 0.0)),
    ] + [(f"{kind} columns", str(n)) for kind, n in sorted(kinds.items())]
    body = "".join(f"<div class=card><b>{_e(v)}</b><span>{_e(k)}</span></div>" for k, v in cards)
    return f'<section id="overview"><h2>Overview</h2><div class=cards>{body}</div></section>'


def _alerts(profile: Profile, graph: RelationshipGraph | None) -> str:
    items: list[tuple[str, str]] = []
    if graph is not None:
        for s in graph.leakage_suspects:
            items.append(("leak", f"Leakage suspect <b>{_e(s.column)}</b>: {_e(s.reason)}"))
        for r in graph.redundant:
            items.append(("", f"Redundant: {_e(r.reason)}"))
    for c in profile.columns:
        if c.count and c.distinct == 1:
            items.append(("", f"<b>{_e(c.name)}</b> is constant"))
        if c.missing_rate >= 0.2:
            items.append(("", f"<b>{_e(c.name)}</b> is {_pct(c.missing_rate)} missing"))
        if c.kind == "numeric" and c.outliers_iqr and c.count:
            share = c.outliers_iqr / c.count
            if share >= 0.05:
                items.append(
                    (
                        "info",
                        f"<b>{_e(c.name)}</b> has {c.outliers_iqr:,} IQR outliers ({_pct(share)})",
                    )
                )
    if profile.duplicate_rows:
        items.append(("info", f"{profile.duplicate_rows:,} duplicate rows"))
    if graph is not None and graph.sampled_rows is not None:
        items.append(
            (
                "info",
                f"Spearman and predictive scores used a random sample of "
                f"{graph.sampled_rows:,} rows; mutual information {graph.mi_rows or 0:,}",
            )
        )
    if not items:
        items.append(("info", "Nothing to report."))
    body = "".join(f'<div class="alert {cls}">{text}</div>' for cls, text in items)
    return f'<section id="alerts"><h2>Alerts</h2>{body}</section>'


def _relationships(graph: RelationshipGraph, threshold: float) -> str:
    edges = graph.strong_edges(threshold)
    svg = _graph_svg(graph, edges)
    legend = (
        '<p class="legend">'
        f'<span><i class=swatch style="background:{_TARGET}"></i>target</span>'
        f'<span><i class=swatch style="background:{_FEATURE}"></i>feature</span>'
        f'<span><i class=swatch style="background:{_UNUSED}"></i>not in pairwise</span>'
        f'<span><i class=swatch style="border:3px solid {_LEAK}"></i>leakage suspect</span>'
        f'<span><i class=swatch style="border:3px dashed {_REDUNDANT}"></i>redundant '
        "(drop candidate)</span>"
        f'<span style="color:{_POSITIVE}">&#9644; positive</span>'
        f'<span style="color:{_NEGATIVE}">&#9644; negative</span>'
        f'<span style="color:{_UNSIGNED}">&#9644; unsigned (Cramer\'s V, eta)</span>'
        "</p>"
    )
    note = (
        f"<p class=muted>Edges: associations with strength &ge; {threshold:g} "
        f"({len(edges)} of {len(graph.strongest_edges())} pairs). Node size: normalised "
        "mutual information with the target.</p>"
    )
    head = [
        "variable",
        "kind",
        "role",
        "MI (nats)",
        "MI norm.",
        "rank",
        "target assoc.",
        "predictive",
        "note",
    ]
    rows = [
        [
            _e(n.name),
            _e(n.kind),
            _e(n.role),
            _num(n.mutual_information),
            _num(n.mi_normalised),
            _num(n.importance_rank),
            _num(n.target_association),
            _num(n.predictive_score),
            _e(n.note or ""),
        ]
        for n in sorted(graph.nodes, key=lambda n: (n.importance_rank or 10**9, n.name))
    ]
    edge_rows = [[_e(e.a), _e(e.b), _e(e.method), _num(e.value), _num(e.n)] for e in edges[:200]]
    return (
        '<section id="relationships"><h2>Relationship graph</h2>'
        f"{note}{legend}{svg}<h3>Variables</h3>{_table(head, rows)}"
        f"<h3>Strong associations</h3>{_table(['a', 'b', 'method', 'value', 'rows'], edge_rows)}"
        "</section>"
    )


def _heatmap_section(graph: RelationshipGraph) -> str:
    names, matrix = graph.strength_matrix()
    limit = 60
    note = ""
    if len(names) > limit:
        note = f"<p class=muted>Showing the first {limit} of {len(names)} variables.</p>"
        names, matrix = names[:limit], matrix[:limit, :limit]
    return (
        '<section id="heatmap"><h2>Association heatmap</h2>'
        "<p class=muted>Strongest association per pair: |Pearson|, |Spearman|, Cramer's V or "
        f"the correlation ratio; blank where none is defined.</p>{note}"
        f"{_heatmap_svg(names, matrix)}</section>"
    )


def _columns(profile: Profile) -> str:
    head = ["column", "kind", "dtype", "missing", "distinct", "mean", "std", "min", "max"]
    rows = [
        [
            f'<a href="#col-{i}">{_e(c.name)}</a>',
            _e(c.kind),
            _e(c.dtype),
            f"{c.missing:,} ({_pct(c.missing_rate)})",
            _num(c.distinct),
            _num(c.mean),
            _num(c.std),
            _num(c.min) if c.kind == "numeric" else _e(c.min_time or ""),
            _num(c.max) if c.kind == "numeric" else _e(c.max_time or ""),
        ]
        for i, c in enumerate(profile.columns)
    ]
    cards = "".join(_column_card(i, c) for i, c in enumerate(profile.columns))
    return (
        f'<section id="columns"><h2>Columns</h2>{_table(head, rows)}'
        f"<div class=grid>{cards}</div></section>"
    )


def _column_card(index: int, c: ColumnProfile) -> str:
    stats: list[tuple[str, str]] = [
        ("count", _num(c.count)),
        ("missing", f"{c.missing:,} ({_pct(c.missing_rate)})"),
        ("distinct", _num(c.distinct)),
    ]
    chart = ""
    if c.kind == "numeric":
        stats += [
            ("mean", _num(c.mean)),
            ("std", _num(c.std)),
            ("min", _num(c.min)),
            ("max", _num(c.max)),
            ("zeros", _num(c.zeros)),
            ("outliers (IQR)", _num(c.outliers_iqr)),
            ("outliers (|z|>3)", _num(c.outliers_z)),
        ]
        if c.infinite:
            stats.append(("infinite", _num(c.infinite)))
        stats += [(k, _num(v)) for k, v in (c.quantiles or {}).items()]
        if c.histogram is not None:
            chart = _histogram_svg(c.histogram, c.name)
    elif c.kind == "datetime":
        stats += [("min", _e(c.min_time or "")), ("max", _e(c.max_time or ""))]
        if c.histogram is not None:
            chart = _histogram_svg(c.histogram, c.name)
    else:
        if c.mean_length is not None:
            stats.append(("mean length", _num(c.mean_length)))
        if c.top:
            chart = _bars_svg(c.top, c.count, c.name)
    table = "".join(f"<tr><th>{_e(k)}</th><td class=num>{v}</td></tr>" for k, v in stats)
    return (
        f'<div class=column id="col-{index}"><h3>{_e(c.name)}<span class=kind>'
        f"{_e(c.kind)}</span></h3>{chart}<table>{table}</table></div>"
    )


# -- charts -----------------------------------------------------------------------------------


def _histogram_svg(hist: Histogram, name: str) -> str:
    width, height, pad_l, pad_b = 380, 150, 44, 30
    counts = hist.counts
    top = max(max(counts, default=0), 1)
    plot_w, plot_h = width - pad_l - 8, height - pad_b - 10
    bar_w = plot_w / max(len(counts), 1)
    labels = hist.labels or tuple(_fmt(e) for e in hist.edges)
    bars = []
    for i, count in enumerate(counts):
        h = plot_h * count / top
        x = pad_l + i * bar_w
        tip = f"[{labels[i]}, {labels[i + 1]}]: {count:,}"
        bars.append(
            f'<rect class="bar" x="{x:.2f}" y="{10 + plot_h - h:.2f}" '
            f'width="{max(bar_w - 1, 1):.2f}" height="{h:.2f}" fill="{_POSITIVE}">'
            f"<title>{_e(tip)}</title></rect>"
        )
    first, last = _short(labels[0]), _short(labels[-1])
    return (
        f'<svg class="histogram" data-column="{_e(name)}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="histogram of {_e(name)}">'
        f'<line x1="{pad_l}" y1="{10 + plot_h}" x2="{width - 8}" y2="{10 + plot_h}" '
        'stroke="#94a3b8"/>'
        f"{''.join(bars)}"
        f'<text x="{pad_l - 4}" y="16" font-size="10" text-anchor="end">{top:,}</text>'
        f'<text x="{pad_l - 4}" y="{10 + plot_h}" font-size="10" text-anchor="end">0</text>'
        f'<text x="{pad_l}" y="{height - 8}" font-size="10">{_e(first)}</text>'
        f'<text x="{width - 8}" y="{height - 8}" font-size="10" text-anchor="end">'
        f"{_e(last)}</text></svg>"
    )


def _bars_svg(top: Sequence[TopValue], total: int, name: str) -> str:
    row_h, label_w, width = 20, 130, 380
    height = row_h * len(top) + 8
    biggest = max((t.count for t in top), default=1) or 1
    bar_space = width - label_w - 70
    rows = []
    for i, t in enumerate(top):
        y = 4 + i * row_h
        w = bar_space * t.count / biggest
        share = t.count / total if total else 0.0
        rows.append(
            f'<text x="{label_w - 6}" y="{y + 14}" font-size="11" text-anchor="end">'
            f"{_e(_clip(t.value, 20))}</text>"
            f'<rect class="bar" x="{label_w}" y="{y + 2}" width="{w:.2f}" height="{row_h - 5}" '
            f'fill="{_UNSIGNED}"><title>{_e(t.value)}: {t.count:,} ({_pct(share)})</title></rect>'
            f'<text x="{label_w + w + 4:.2f}" y="{y + 14}" font-size="10">{t.count:,}</text>'
        )
    return (
        f'<svg class="bars" data-column="{_e(name)}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="top values of {_e(name)}">'
        f"{''.join(rows)}</svg>"
    )


def _heatmap_svg(names: Sequence[str], matrix: npt.NDArray[np.float64]) -> str:
    n = len(names)
    label = 120
    cell = max(8.0, min(28.0, 620.0 / max(n, 1)))
    size = label + cell * n + 10
    cells = []
    for i in range(n):
        for j in range(n):
            v = matrix[i, j]
            if not math.isfinite(v):
                continue
            shade = round(245 - 200 * v)
            cells.append(
                f'<rect class="cell" x="{label + j * cell:.1f}" y="{label + i * cell:.1f}" '
                f'width="{cell:.1f}" height="{cell:.1f}" fill="rgb({shade},{shade},255)">'
                f"<title>{_e(names[i])} / {_e(names[j])}: {v:.3f}</title></rect>"
            )
    font = min(11.0, cell * 0.8)
    labels = []
    for i, name in enumerate(names):
        mid = label + (i + 0.5) * cell + font / 3
        labels.append(
            f'<text x="{label - 4}" y="{mid:.1f}" font-size="{font:.1f}" text-anchor="end">'
            f"{_e(_clip(name, 18))}</text>"
            f'<text transform="translate({mid:.1f},{label - 4}) rotate(-90)" '
            f'font-size="{font:.1f}">{_e(_clip(name, 18))}</text>'
        )
    return (
        f'<svg id="association-heatmap" width="{size:.0f}" height="{size:.0f}" '
        f'viewBox="0 0 {size:.0f} {size:.0f}" role="img" aria-label="association heatmap">'
        f"{''.join(labels)}{''.join(cells)}</svg>"
    )


def _graph_svg(graph: RelationshipGraph, edges: Sequence[Edge]) -> str:
    width, height, margin = 860, 560, 60
    names = [n.name for n in graph.nodes]
    index = {name: i for i, name in enumerate(names)}
    pairs = [(index[e.a], index[e.b], e.strength) for e in edges]
    pos = force_layout(len(names), pairs)
    pos[:, 0] = margin + pos[:, 0] * (width - 2 * margin)
    pos[:, 1] = margin + pos[:, 1] * (height - 2 * margin)
    suspects = {s.column for s in graph.leakage_suspects}
    drops = {r.drop for r in graph.redundant}
    lines = []
    for e in edges:
        (x1, y1), (x2, y2) = pos[index[e.a]], pos[index[e.b]]
        if e.method in ("pearson", "spearman"):
            color = _POSITIVE if e.value >= 0 else _NEGATIVE
        else:
            color = _UNSIGNED
        lines.append(
            f'<g class="edge"><line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
            f'stroke="{color}" stroke-width="{1 + 6 * e.strength:.2f}" '
            f'stroke-opacity="{0.25 + 0.6 * e.strength:.2f}"><title>{_e(e.a)} - {_e(e.b)}: '
            f"{_e(e.method)} {e.value:.3f}</title></line></g>"
        )
    circles = []
    for i, node in enumerate(graph.nodes):
        x, y = pos[i]
        if node.role == "target":
            radius, fill = 18.0, _TARGET
        else:
            radius = 7.0 + 15.0 * (node.mi_normalised or 0.0)
            fill = _FEATURE if node.used else _UNUSED
        stroke, dash, stroke_w = "#334155", "", 1.0
        if node.name in drops:
            stroke, dash, stroke_w = _REDUNDANT, ' stroke-dasharray="4 2"', 3.0
        if node.name in suspects:
            stroke, dash, stroke_w = _LEAK, "", 4.0
        tip = f"{node.name} ({node.kind})"
        if node.mutual_information is not None:
            tip += f", MI {node.mutual_information:.3f}, rank {node.importance_rank}"
        if node.note:
            tip += f"; {node.note}"
        circles.append(
            f'<g class="node" data-name="{_e(node.name)}" data-role="{node.role}">'
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{radius:.1f}" fill="{fill}" stroke="{stroke}" '
            f'stroke-width="{stroke_w}"{dash}><title>{_e(tip)}</title></circle>'
            f'<text x="{x:.1f}" y="{y + radius + 12:.1f}" font-size="11" text-anchor="middle">'
            f"{_e(_clip(node.name, 22))}</text></g>"
        )
    return (
        f'<svg id="relationship-graph" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="relationship graph" '
        f'style="background:#fff;border:1px solid #e2e8f0">{"".join(lines)}'
        f"{''.join(circles)}</svg>"
    )


def force_layout(
    n: int, edges: Sequence[tuple[int, int, float]], *, iterations: int = 300
) -> npt.NDArray[np.float64]:
    """Deterministic force-directed positions in the unit square (Fruchterman-Reingold).

    Nodes start evenly on a circle; every pair repels, edges (``(i, j,
    weight)``) attract in proportion to their weight, a pull to the centre
    keeps unconnected nodes from drifting off, and the step size cools
    linearly. A last pass pushes apart nodes closer than a minimum distance so
    that circles and labels do not pile up. Same input, same picture.
    """
    if n == 0:
        return np.zeros((0, 2))
    if n == 1:
        return np.full((1, 2), 0.5)
    angles = 2 * np.pi * np.arange(n) / n
    pos = np.column_stack([np.cos(angles), np.sin(angles)]) * 0.5
    k = math.sqrt(1.0 / n)
    weights = np.zeros((n, n))
    for i, j, w in edges:
        weights[i, j] = weights[j, i] = max(weights[i, j], w)
    for step in range(iterations):
        delta = pos[:, None, :] - pos[None, :, :]
        dist = np.maximum(np.linalg.norm(delta, axis=2), 1e-3)
        force = k * k / dist**2 - weights * dist / k
        np.fill_diagonal(force, 0.0)
        disp = (delta * force[:, :, None]).sum(axis=1) - 1.5 * pos / k
        length = np.maximum(np.linalg.norm(disp, axis=1, keepdims=True), 1e-9)
        temperature = 0.1 * (1 - step / iterations) + 1e-3
        pos = pos + disp / length * np.minimum(length, temperature)
    pos = _unit_square(pos)
    min_dist = min(0.12, 0.9 / math.sqrt(n))
    for _ in range(100):
        delta = pos[:, None, :] - pos[None, :, :]
        dist = np.linalg.norm(delta, axis=2)
        np.fill_diagonal(dist, np.inf)
        close = dist < min_dist
        if not close.any():
            break
        near = np.where(close, dist, min_dist)  # far pairs (and the inf diagonal) push 0
        push = (min_dist - near) / np.maximum(near, 1e-6) / 2
        pos = _unit_square(pos + (delta * push[:, :, None]).sum(axis=1))
    return pos


def _unit_square(pos: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    span = pos.max(axis=0) - pos.min(axis=0)
    return np.asarray((pos - pos.min(axis=0)) / np.where(span > 0, span, 1.0), dtype=np.float64)


# -- formatting -------------------------------------------------------------------------------


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """An HTML table; ``head`` is plain text, row cells are HTML that is already escaped."""
    if not rows:
        return "<p class=muted>None.</p>"
    th = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _num(value: float | int | None) -> str:
    return _e(_fmt(value))


def _pct(share: float) -> str:
    return f"{100 * share:.1f}%"


def _bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _short(label: str) -> str:
    """A histogram edge label short enough for an axis: dates lose their time of day."""
    return label[:10] if len(label) > 10 and label[4:5] == "-" else label
