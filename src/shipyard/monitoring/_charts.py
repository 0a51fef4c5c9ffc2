"""SVG charts of the monitor report: lines over time, sparklines, distribution overlays.

Private to :mod:`shipyard.monitoring.report_html`. Each function returns one
``<svg>`` element (or a short muted note when there is nothing to draw), drawn
here with no script and no outside resource; every label from the data is
escaped. A series is a pair of parallel arrays: epoch milliseconds and values,
where NaN marks a window without a value (it breaks the line).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

from shipyard.monitoring._html import _clip, _day, _e, _fmt, _pct, _when

_REF = "#2563eb"
_CUR = "#ea580c"
_DRIFT = "#dc2626"
_OK = "#059669"
_LINE = "#0f172a"
_GRID = "#e2e8f0"
_AXIS = "#94a3b8"
_SERIES = ("#2563eb", "#7c3aed", "#059669", "#ea580c", "#0891b2", "#be185d")
_TOP = 10  # categories drawn in a categorical overlay; the rest are summed as "other"
_BINS = 20
_SPARK_FLOOR = 0.1  # sparkline scale: 0 to max(largest distance, this), so noise stays low

_Series = tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]
"""One series over time: epoch milliseconds and values (NaN where missing)."""


# -- charts -----------------------------------------------------------------------------------


def _time_chart(
    series: Sequence[tuple[str, str, _Series]],
    *,
    refs: Sequence[tuple[str, float, str]],
    chart_id: str,
    label: str,
    y_range: tuple[float, float] | None = None,
    percent: bool = False,
) -> str:
    """Lines over time (gaps at missing values) with dashed horizontal reference lines."""
    width, height, pad_l, pad_r, pad_t, pad_b = 440, 170, 48, 92, 10, 26
    plot_w, plot_h = width - pad_l - pad_r, height - pad_t - pad_b
    xs_all = np.concatenate([s[0] for _, _, s in series])
    x0, x1 = float(xs_all.min()), float(xs_all.max())
    if x1 <= x0:
        x0, x1 = x0 - 1.0, x1 + 1.0
    if y_range is None:
        finite = np.concatenate([s[1][np.isfinite(s[1])] for _, _, s in series])
        values = [*finite.tolist(), *(v for _, v, _ in refs)]
        lo, hi = min(values), max(values)
        span = hi - lo if hi > lo else max(abs(hi), 1.0)
        lo, hi = lo - 0.08 * span, hi + 0.08 * span
    else:
        lo, hi = y_range

    def px(x: float) -> float:
        return pad_l + plot_w * (x - x0) / (x1 - x0)

    def py(y: float) -> float:
        return float(pad_t + plot_h * (1 - (min(max(y, lo), hi) - lo) / (hi - lo)))

    fmt = _pct if percent else _fmt
    out = [
        f'<svg class="timechart" id="{chart_id}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{_e(label)}">'
    ]
    for y in (lo, (lo + hi) / 2, hi):
        out.append(
            f'<line x1="{pad_l}" y1="{py(y):.1f}" x2="{pad_l + plot_w}" y2="{py(y):.1f}" '
            f'stroke="{_GRID}"/><text x="{pad_l - 4}" y="{py(y) + 3:.1f}" font-size="10" '
            f'text-anchor="end">{_e(fmt(y))}</text>'
        )
    for text, value, colour in refs:
        y = py(value)
        out.append(
            f'<line class="ref-line" x1="{pad_l}" y1="{y:.1f}" x2="{pad_l + plot_w}" '
            f'y2="{y:.1f}" stroke="{colour}" stroke-width="1.5" stroke-dasharray="6 4">'
            f"<title>{_e(text)}</title></line>"
            f'<text x="{pad_l + plot_w + 4}" y="{y + 3:.1f}" font-size="10" fill="{colour}">'
            f"{_e(_clip(text, 16))}</text>"
        )
    for name, colour, (xs, ys) in series:
        for segment in _segments(xs, ys):
            points = " ".join(f"{px(float(x)):.1f},{py(float(y)):.1f}" for x, y in segment)
            out.append(
                f'<polyline class="series" points="{points}" fill="none" stroke="{colour}" '
                'stroke-width="1.8"/>'
            )
        dots = [
            f'<circle cx="{px(float(x)):.1f}" cy="{py(float(y)):.1f}" r="2.2" fill="{colour}">'
            f"<title>{_e(_when(int(x)))}: {_e(name)} {_e(fmt(float(y)))}</title></circle>"
            for x, y in zip(xs.tolist(), ys.tolist(), strict=True)
            if math.isfinite(y)
        ]
        out.append("".join(dots))
    base = pad_t + plot_h
    out.append(
        f'<line x1="{pad_l}" y1="{base}" x2="{pad_l + plot_w}" y2="{base}" stroke="{_AXIS}"/>'
        f'<text x="{pad_l}" y="{height - 8}" font-size="10">{_e(_day(int(x0)))}</text>'
        f'<text x="{pad_l + plot_w}" y="{height - 8}" font-size="10" text-anchor="end">'
        f"{_e(_day(int(x1)))}</text></svg>"
    )
    return "".join(out)


def _sparkline(name: str, distance: _Series, flags: _Series | None) -> str:
    """The column's drift distance per window; windows where it drifted get a red dot.

    The scale runs from 0 to the larger of the largest distance and 0.1, so a
    column whose distance only wobbles near 0 draws a low line, not a full-height one.
    """
    width, height, pad = 380, 56, 6
    xs, ys = distance
    finite = ys[np.isfinite(ys)]
    lo, hi = 0.0, max(float(finite.max()), _SPARK_FLOOR)
    x0, x1 = float(xs.min()), float(xs.max())
    if x1 <= x0:
        x0, x1 = x0 - 1.0, x1 + 1.0

    def px(x: float) -> float:
        return pad + (width - 2 * pad) * (x - x0) / (x1 - x0)

    def py(y: float) -> float:
        return pad + (height - 2 * pad - 10) * (1 - (min(max(y, lo), hi) - lo) / (hi - lo))

    lines = [
        '<polyline points="'
        + " ".join(f"{px(float(x)):.1f},{py(float(y)):.1f}" for x, y in segment)
        + f'" fill="none" stroke="{_LINE}" stroke-width="1.4"/>'
        for segment in _segments(xs, ys)
    ]
    drifted: set[int] = set()
    if flags is not None:
        drifted = {int(x) for x, f in zip(*flags, strict=True) if math.isfinite(f) and f > 0}
    dots = [
        f'<circle class="drifted" cx="{px(float(x)):.1f}" cy="{py(float(y)):.1f}" r="2.6" '
        f'fill="{_DRIFT}"><title>{_e(_when(int(x)))}: drifted, distance '
        f"{_e(_fmt(float(y)))}</title></circle>"
        for x, y in zip(xs.tolist(), ys.tolist(), strict=True)
        if x in drifted and math.isfinite(y)
    ]
    return (
        f'<svg class="sparkline" data-column="{_e(name)}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="drift distance of {_e(name)}">'
        f"{''.join(lines)}{''.join(dots)}"
        f'<text x="{pad}" y="{height - 2}" font-size="9" fill="#64748b">{_e(_day(int(x0)))}'
        f'</text><text x="{width - pad}" y="{height - 2}" font-size="9" fill="#64748b" '
        f'text-anchor="end">{_e(_day(int(x1)))}; max {_e(_fmt(hi))}</text></svg>'
    )


def _overlay(name: str, kind: str, ref: pd.Series | None, cur: pd.Series | None) -> str:
    legend = (
        '<p class="legend">'
        f'<span><i class=swatch style="background:{_REF};opacity:.55"></i>reference</span>'
        f'<span><i class=swatch style="background:{_CUR};opacity:.55"></i>current</span></p>'
    )
    if ref is None and cur is None:
        return "<p class=muted>No reference or current values to draw.</p>"
    if kind == "numeric":
        svg = _numeric_overlay(name, ref, cur)
    else:
        svg = _category_overlay(name, ref, cur)
    return legend + svg if svg.startswith("<svg") else svg


def _numeric_overlay(name: str, ref: pd.Series | None, cur: pd.Series | None) -> str:
    """Reference and current densities on shared bins, drawn over each other.

    The bins span the 0.5% to 99.5% quantiles of both samples together; values
    beyond are counted in the end bins, so one outlier does not squash the picture.
    """
    a, b = _finite_values(ref), _finite_values(cur)
    both = np.concatenate([a, b])
    if not len(both):
        return "<p class=muted>No numeric values to draw.</p>"
    lo, hi = (float(v) for v in np.quantile(both, [0.005, 0.995]))
    if hi <= lo:
        lo, hi = float(both.min()), float(both.max())
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, _BINS + 1)
    width_bin = edges[1] - edges[0]

    def density(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        if not len(values):
            return np.zeros(_BINS)
        counts, _ = np.histogram(np.clip(values, lo, hi), bins=edges)
        return np.asarray(counts / (len(values) * width_bin), dtype=np.float64)

    dens = [
        ("ref", "reference", _REF, density(a), len(a)),
        ("cur", "current", _CUR, density(b), len(b)),
    ]
    width, height, pad_l, pad_b = 380, 150, 58, 30
    plot_w, plot_h = width - pad_l - 8, height - pad_b - 10
    top = max(float(max(d.max() for _, _, _, d, _ in dens)), 1e-300)
    bar_w = plot_w / _BINS
    bars = []
    for cls, label, colour, d, n in dens:
        if not n:
            continue
        for i, v in enumerate(d.tolist()):
            h = plot_h * v / top
            span = f"[{_fmt(float(edges[i]))}, {_fmt(float(edges[i + 1]))}]"
            tip = f"{label} {span}: density {_fmt(v)}"
            bars.append(
                f'<rect class="bar {cls}" x="{pad_l + i * bar_w:.2f}" y="{10 + plot_h - h:.2f}" '
                f'width="{max(bar_w - 1, 1):.2f}" height="{h:.2f}" fill="{colour}" '
                f'fill-opacity="0.5"><title>{_e(tip)}</title></rect>'
            )
    return (
        f'<svg class="overlay numeric" data-column="{_e(name)}" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="reference and current distribution of {_e(name)}">'
        f'<line x1="{pad_l}" y1="{10 + plot_h}" x2="{width - 8}" y2="{10 + plot_h}" '
        f'stroke="{_AXIS}"/>{"".join(bars)}'
        f'<text x="{pad_l - 4}" y="16" font-size="10" text-anchor="end">{_e(_fmt(top))}</text>'
        f'<text x="{pad_l - 4}" y="{10 + plot_h}" font-size="10" text-anchor="end">0</text>'
        f'<text x="{pad_l}" y="{height - 8}" font-size="10">{_e(_fmt(lo))}</text>'
        f'<text x="{width - 8}" y="{height - 8}" font-size="10" text-anchor="end">'
        f"{_e(_fmt(hi))}</text>"
        f'<text x="{pad_l + plot_w / 2:.0f}" y="{height - 8}" font-size="10" '
        f'text-anchor="middle" fill="#64748b">n = {len(a):,} / {len(b):,}</text></svg>'
    )


def _category_overlay(name: str, ref: pd.Series | None, cur: pd.Series | None) -> str:
    """Grouped bars of the top categories' shares; values absent from the reference are new."""
    ref_share, cur_share = _shares(ref), _shares(cur)
    if not ref_share and not cur_share:
        return "<p class=muted>No values to draw.</p>"
    categories = set(ref_share) | set(cur_share)
    ranked = sorted(categories, key=lambda c: (-(ref_share.get(c, 0.0) + cur_share.get(c, 0.0)), c))
    rows: list[tuple[str, float, float, bool]] = [
        (c, ref_share.get(c, 0.0), cur_share.get(c, 0.0), bool(ref_share) and c not in ref_share)
        for c in ranked[:_TOP]
    ]
    labels = [_clip(c, 18) + (" (new)" if new else "") for c, _, _, new in rows]
    if len(ranked) > _TOP:
        rest_ref = max(0.0, 1.0 - sum(r for _, r, _, _ in rows)) if ref_share else 0.0
        rest_cur = max(0.0, 1.0 - sum(c for _, _, c, _ in rows)) if cur_share else 0.0
        rows.append((f"{len(ranked) - _TOP:,} other values", rest_ref, rest_cur, False))
        labels.append("(other)")
    row_h, label_w, width = 30, 130, 380
    height = row_h * len(rows) + 8
    biggest = max(max(r, c) for _, r, c, _ in rows) or 1.0
    space = width - label_w - 52
    out = []
    for i, ((cat, r, c, new), label) in enumerate(zip(rows, labels, strict=True)):
        y = 4 + i * row_h
        marker = f' class="new" fill="{_DRIFT}" font-weight="600"' if new else ""
        stroke = f' stroke="{_DRIFT}"' if new else ""
        out.append(
            f'<text x="{label_w - 6}" y="{y + 17}" font-size="11" text-anchor="end"{marker}>'
            f"{_e(label)}<title>{_e(cat)}</title></text>"
        )
        bars = (("ref", r, _REF, "reference"), ("cur", c, _CUR, "current"))
        for j, (cls, share, colour, who) in enumerate(bars):
            w = space * share / biggest
            out.append(
                f'<rect class="bar {cls}" x="{label_w}" y="{y + 2 + j * 12}" width="{w:.2f}" '
                f'height="11" fill="{colour}"{stroke}>'
                f"<title>{_e(cat)}: {who} {_pct(share)}</title></rect>"
                f'<text x="{label_w + w + 4:.2f}" y="{y + 11 + j * 12}" font-size="9">'
                f"{_pct(share)}</text>"
            )
    return (
        f'<svg class="overlay categorical" data-column="{_e(name)}" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="reference and current categories of {_e(name)}">{"".join(out)}</svg>'
    )


def _segments(
    xs: npt.NDArray[np.int64], ys: npt.NDArray[np.float64]
) -> Iterable[list[tuple[int, float]]]:
    """Runs of consecutive finite points (a missing value breaks the line)."""
    run: list[tuple[int, float]] = []
    for x, y in zip(xs.tolist(), ys.tolist(), strict=True):
        if math.isfinite(y):
            run.append((x, y))
        elif run:
            yield run
            run = []
    if run:
        yield run


# -- values -----------------------------------------------------------------------------------


def _floats(values: pd.Series) -> npt.NDArray[np.float64]:
    """Numbers as a float array; text, None and pd.NA become NaN."""
    array = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return np.asarray(array, dtype=np.float64)


def _finite_values(values: pd.Series | None) -> npt.NDArray[np.float64]:
    if values is None:
        return np.zeros(0)
    array = _floats(values)
    return array[np.isfinite(array)]


def _shares(values: pd.Series | None) -> dict[str, float]:
    if values is None:
        return {}
    counts = values.dropna().astype(str).value_counts()
    total = float(counts.sum())
    return {str(k): float(v) / total for k, v in counts.items()} if total else {}
