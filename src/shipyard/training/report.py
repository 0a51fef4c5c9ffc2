"""A self-contained HTML evaluation report: context, warnings, metrics, tables and plots.

:func:`render_evaluation_report` builds one HTML page that needs nothing else to open:
no network, no fonts, no files next to it. CSS is inline; when there are plots, the
plotly.js bundle is inlined once in ``<head>`` and every plot adds one ``<div>`` and one
small ``<script>`` (:meth:`shipyard.training.plots.Plot.to_html_div`). A
Content-Security-Policy forbids loading anything from outside the page.

Every string from the caller (title, context, warnings, metric names, table headers,
index labels and cells) is escaped with :func:`html.escape`, so a hostile column name
cannot add markup or code. Numeric cells carry their exact value in ``data-value``.

:func:`write_report` writes the page atomically (a temporary file renamed into place).
"""

from __future__ import annotations

import contextlib
import math
import numbers
import os
import tempfile
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

import pandas as pd

from shipyard.core.errors import InvalidInputError, InvalidStateError
from shipyard.training.plots import Plot

__all__ = ["MAX_TABLE_ROWS", "render_evaluation_report", "write_report"]

MAX_TABLE_ROWS = 1_000
"""Tables show at most this many rows (the report says how many were left out)."""

_CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src data: blob:; font-src data:"
)

# auto-fill (not auto-fit) and a reserved scrollbar: plotly sizes each plot once, when its
# script runs, so a column's width must not change as later plots or the scrollbar arrive
_CSS = """
html{overflow-y:scroll}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1e293b;
background:#f8fafc;font-size:14px}
header{background:#0f172a;color:#f8fafc;padding:18px 28px}
header h1{margin:0;font-size:22px}header p{margin:4px 0 0;color:#94a3b8}
.badge{display:inline-block;margin-left:10px;padding:1px 9px;border-radius:9px;font-size:12px;
background:#f59e0b;color:#1e293b;text-decoration:none;vertical-align:middle}
nav{padding:8px 28px;background:#e2e8f0}nav a{margin-right:16px;color:#0f172a}
main{padding:12px 28px 40px}section{margin-top:18px}
h2{font-size:18px;border-bottom:1px solid #cbd5e1;padding-bottom:4px}
table{border-collapse:collapse;background:#fff;margin:6px 0}
td,th{border:1px solid #e2e8f0;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f1f5f9}td.num{text-align:right;font-variant-numeric:tabular-nums}
td.na{color:#94a3b8}
table.kv th{font-weight:600;background:#f8fafc}
tr.best td{background:#dcfce7;font-weight:600}
.warning{padding:8px 12px;margin:6px 0;border-left:5px solid #dc2626;background:#fef2f2;
font-weight:500}
.muted{color:#64748b}
.plots{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:16px}
figure.plot{margin:0;background:#fff;border:1px solid #e2e8f0;border-radius:6px;padding:6px}
"""


# -- checks ------------------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_metrics(metrics: Any) -> dict[str, float]:
    if not isinstance(metrics, Mapping):
        raise InvalidInputError(
            f"metrics must be a mapping of metric name to value; got {type(metrics).__name__}"
        )
    out = {}
    for name, value in metrics.items():
        if not _is_number(value):
            raise InvalidInputError(
                f"metric {str(name)!r} must be a number; got {type(value).__name__} {value!r}"
            )
        out[str(name)] = float(value)
    return out


def _check_intervals(intervals: Any) -> dict[str, tuple[float, float]]:
    if intervals is None:
        return {}
    if not isinstance(intervals, Mapping):
        raise InvalidInputError(
            "confidence_intervals must map metric names to (low, high); got "
            f"{type(intervals).__name__}"
        )
    out = {}
    for name, bounds in intervals.items():
        if (
            isinstance(bounds, str)
            or not isinstance(bounds, Sequence)
            or len(bounds) != 2
            or not all(_is_number(b) for b in bounds)
        ):
            raise InvalidInputError(
                f"the confidence interval of {str(name)!r} must be a (low, high) pair of "
                f"numbers; got {bounds!r}"
            )
        low, high = float(bounds[0]), float(bounds[1])
        if low > high:
            raise InvalidInputError(
                f"the confidence interval of {str(name)!r} has low {low} above high {high}; "
                "pass (low, high)"
            )
        out[str(name)] = (low, high)
    return out


def _check_frame(frame: Any, name: str) -> pd.DataFrame | None:
    if frame is not None and not isinstance(frame, pd.DataFrame):
        raise InvalidInputError(
            f"{name} must be a pandas DataFrame or None; got {type(frame).__name__}"
        )
    return frame


def _check_plots(plots: Any) -> list[Plot]:
    if isinstance(plots, Plot) or not isinstance(plots, Sequence):
        raise InvalidInputError("plots must be a sequence of Plot objects (use [plot] for one)")
    seen: set[str] = set()
    for plot in plots:
        if not isinstance(plot, Plot):
            raise InvalidInputError(
                "plots must hold Plot objects from shipyard.training.plots; got "
                f"{type(plot).__name__}"
            )
        if plot.name in seen:
            raise InvalidInputError(
                f"two plots are named {plot.name!r}; names become element ids and must be "
                "distinct. Rename one with dataclasses.replace(plot, name='...')"
            )
        seen.add(plot.name)
    return list(plots)


def _check_texts(values: Any, name: str) -> list[str]:
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise InvalidInputError(f"{name} must be a sequence of strings (use [text] for one)")
    return [str(v) for v in values]


# -- formatting --------------------------------------------------------------------------------


def _fmt_number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    size = abs(value)
    if size == 0:
        return "0"
    if size < 1e-3 or size >= 1e9:
        return f"{value:.3e}"
    if size >= 1000:
        return f"{value:,.1f}"
    return f"{value:.4f}"


def _number_cell(value: float) -> str:
    return f'<td class="num" data-value="{escape(repr(float(value)))}">{_fmt_number(value)}</td>'


def _cell(value: Any) -> str:
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return '<td class="na">&mdash;</td>'
    if isinstance(value, bool | bytes) or pd.api.types.is_bool(value):
        return f"<td>{escape(str(value))}</td>"
    if isinstance(value, numbers.Integral):
        return f'<td class="num" data-value="{int(value)}">{int(value)}</td>'
    if isinstance(value, numbers.Real):
        return _number_cell(float(value))
    return f"<td>{escape(str(value))}</td>"


def _label(value: Any) -> str:
    if isinstance(value, tuple):
        return " / ".join(str(v) for v in value)
    return "" if value is None else str(value)


def _default_index(index: pd.Index) -> bool:
    return (
        isinstance(index, pd.RangeIndex)
        and index.start == 0
        and index.step == 1
        and index.name is None
    )


def _frame_table(frame: pd.DataFrame, *, table_id: str, highlight_first: bool = False) -> str:
    show_index = not _default_index(frame.index)
    headers = [_label(n) for n in frame.index.names] if show_index else []
    headers += [_label(c) for c in frame.columns]
    head = "".join(f'<th scope="col">{escape(h)}</th>' for h in headers)
    rows = []
    shown = frame.iloc[:MAX_TABLE_ROWS]
    for position, (label, values) in enumerate(
        zip(shown.index, shown.itertuples(index=False, name=None), strict=True)
    ):
        cells = []
        if show_index:
            labels = label if isinstance(label, tuple) else (label,)
            cells += [f'<th scope="row">{escape(_label(v))}</th>' for v in labels]
        cells += [_cell(v) for v in values]
        css = ' class="best" title="best"' if highlight_first and position == 0 else ""
        rows.append(f"<tr{css}>{''.join(cells)}</tr>")
    if not rows:
        span = max(1, len(headers))
        rows.append(f'<tr><td colspan="{span}" class="muted">No rows.</td></tr>')
    table = (
        f'<table id="{table_id}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
    if len(frame) > MAX_TABLE_ROWS:
        table += f'<p class="muted">First {MAX_TABLE_ROWS:,} of {len(frame):,} rows shown.</p>'
    return table


# -- sections ----------------------------------------------------------------------------------


def _context_section(context: Mapping[str, str]) -> str:
    if not context:
        body = '<p class="muted">No context given.</p>'
    else:
        rows = "".join(
            f'<tr><th scope="row">{escape(str(k))}</th><td>{escape(str(v))}</td></tr>'
            for k, v in context.items()
        )
        body = f'<table class="kv" id="context-table"><tbody>{rows}</tbody></table>'
    return f'<section id="context"><h2>Context</h2>{body}</section>'


def _warnings_section(warnings: list[str]) -> str:
    if not warnings:
        body = '<p class="muted">No warnings.</p>'
    else:
        body = "".join(f'<div class="warning" role="alert">{escape(w)}</div>' for w in warnings)
    heading = f"Warnings ({len(warnings)})" if warnings else "Warnings"
    return f'<section id="warnings"><h2>{heading}</h2>{body}</section>'


def _metrics_section(metrics: dict[str, float], intervals: dict[str, tuple[float, float]]) -> str:
    names = list(metrics) + [n for n in intervals if n not in metrics]
    rows = []
    for name in names:
        value = _number_cell(metrics[name]) if name in metrics else '<td class="na">&mdash;</td>'
        if name in intervals:
            low, high = intervals[name]
            bounds = _number_cell(low) + _number_cell(high)
        else:
            bounds = '<td class="na">&mdash;</td>' * 2
        rows.append(f'<tr><th scope="row">{escape(name)}</th>{value}{bounds}</tr>')
    if not rows:
        rows.append('<tr><td colspan="4" class="muted">No metrics.</td></tr>')
    return (
        '<section id="metrics"><h2>Metrics</h2><table id="metrics-table"><thead><tr>'
        '<th scope="col">Metric</th><th scope="col">Value</th><th scope="col">CI low</th>'
        f'<th scope="col">CI high</th></tr></thead><tbody>{"".join(rows)}</tbody></table>'
        "</section>"
    )


def _frame_section(
    frame: pd.DataFrame, *, section_id: str, heading: str, note: str = "", best: bool = False
) -> str:
    note_html = f'<p class="muted">{escape(note)}</p>' if note else ""
    table = _frame_table(frame, table_id=f"{section_id}-table", highlight_first=best)
    return f'<section id="{section_id}"><h2>{escape(heading)}</h2>{note_html}{table}</section>'


def _plots_section(plots: list[Plot]) -> str:
    figures = "".join(
        f'<figure class="plot" id="plot-{plot.name}">{plot.to_html_div()}</figure>'
        for plot in plots
    )
    return (
        '<section id="plots"><h2>Plots</h2>'
        '<noscript><p class="muted">The plots need JavaScript.</p></noscript>'
        f'<div class="plots">{figures}</div></section>'
    )


def _plotly_bundle() -> str:
    try:
        from plotly.offline import get_plotlyjs
    except ImportError as exc:
        raise InvalidStateError(
            f"a report with plots needs plotly, which is not installed ({exc}); run "
            "pip install 'shipyard[plots]' (or pass plots=[])"
        ) from exc
    bundle = str(get_plotlyjs())
    # the bundle must not end its own <script> element early
    return bundle.replace("</script", "<\\/script").replace("</SCRIPT", "<\\/SCRIPT")


# -- the page ----------------------------------------------------------------------------------


def render_evaluation_report(
    *,
    title: str,
    metrics: Mapping[str, float],
    confidence_intervals: Mapping[str, tuple[float, float]] | None = None,
    per_class: pd.DataFrame | None = None,
    slices: pd.DataFrame | None = None,
    leaderboard: pd.DataFrame | None = None,
    plots: Sequence[Plot] = (),
    warnings: Sequence[str] = (),
    context: Mapping[str, str] | None = None,
) -> str:
    """One self-contained HTML page describing a model's evaluation.

    Sections, in order: context (run id, model, dataset versions...), warnings (each in
    a red ``role="alert"`` box, counted in the header), metrics with their confidence
    intervals, per-class metrics, slices, the leaderboard (its first row, the best model,
    highlighted: pass it sorted best first) and the plots. A section whose input is None
    is left out; context and warnings always show. Tables show at most
    :data:`MAX_TABLE_ROWS` rows; an index other than the default 0..n-1 is shown.

    Args:
        title: the page title.
        metrics: metric name to value, in display order.
        confidence_intervals: metric name to ``(low, high)``; metrics without one show a
            dash, and an interval for a metric not in ``metrics`` gets its own row.
        per_class: one row per class (such as precision, recall, f1, support).
        slices: one row per data slice (such as a segment's size and metrics).
        leaderboard: one row per candidate model, best first.
        plots: the plots to embed, with distinct names; with any, the page inlines
            plotly.js (about 4.5 MB) once.
        warnings: messages for the reader (leakage suspected, few test rows...).
        context: facts such as run id, model, dataset versions; values are shown as text.

    Returns:
        The HTML text (UTF-8 when written; see :func:`write_report`).

    Raises:
        InvalidInputError: a metric value or interval that is not numbers, an interval
            with low above high, a table that is not a DataFrame, a plot that is not a
            :class:`~shipyard.training.plots.Plot`, or two plots with one name.
        InvalidStateError: there are plots and plotly is not installed.

    Example::

        >>> page = render_evaluation_report(
        ...     title="churn model", metrics={"roc_auc": 0.91},
        ...     confidence_intervals={"roc_auc": (0.88, 0.94)}, context={"run": "r1"})
        >>> page.startswith("<!DOCTYPE html>"), "<script" in page, "0.9100" in page
        (True, False, True)
    """
    if not isinstance(title, str):
        raise InvalidInputError(f"title must be a string; got {type(title).__name__}")
    metric_values = _check_metrics(metrics)
    intervals = _check_intervals(confidence_intervals)
    frames = {
        "per_class": _check_frame(per_class, "per_class"),
        "slices": _check_frame(slices, "slices"),
        "leaderboard": _check_frame(leaderboard, "leaderboard"),
    }
    plot_list = _check_plots(plots)
    warning_list = _check_texts(warnings, "warnings")
    if context is not None and not isinstance(context, Mapping):
        raise InvalidInputError(f"context must be a mapping of name to text; got {context!r}")
    facts = {str(k): str(v) for k, v in (context or {}).items()}

    sections = [
        ("context", "Context", _context_section(facts)),
        ("warnings", "Warnings", _warnings_section(warning_list)),
        ("metrics", "Metrics", _metrics_section(metric_values, intervals)),
    ]
    if frames["per_class"] is not None:
        section = _frame_section(frames["per_class"], section_id="per-class", heading="Per class")
        sections.append(("per-class", "Per class", section))
    if frames["slices"] is not None:
        section = _frame_section(frames["slices"], section_id="slices", heading="Slices")
        sections.append(("slices", "Slices", section))
    if frames["leaderboard"] is not None:
        section = _frame_section(
            frames["leaderboard"],
            section_id="leaderboard",
            heading="Leaderboard",
            note="Best first; the best model is highlighted.",
            best=True,
        )
        sections.append(("leaderboard", "Leaderboard", section))
    if plot_list:
        sections.append(("plots", "Plots", _plots_section(plot_list)))

    badge = (
        f'<a class="badge" href="#warnings">{len(warning_list)} warning'
        f"{'s' if len(warning_list) != 1 else ''}</a>"
        if warning_list
        else ""
    )
    head = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{_CSS}</style>",
    ]
    if plot_list:
        head.append(
            f"<script>window.PlotlyConfig={{MathJaxConfig:'local'}};\n{_plotly_bundle()}</script>"
        )
    body = [
        "</head><body>",
        f"<header><h1>{escape(title)}{badge}</h1><p>shipyard evaluation report</p></header>",
        "<nav>" + "".join(f'<a href="#{sid}">{label}</a>' for sid, label, _ in sections) + "</nav>",
        "<main>",
        *(html for _, _, html in sections),
        "</main></body></html>\n",
    ]
    return "\n".join(head + body)


def write_report(path: str | os.PathLike[str], html: str) -> Path:
    """Write a report atomically: a temporary file in the same folder renamed over ``path``.

    A reader sees the old file or the new one, never a partial page; on failure the
    temporary file is removed and any old file is left as it was. Missing parent folders
    are created.

    Args:
        path: the ``.html`` file to write.
        html: the page, as from :func:`render_evaluation_report`.

    Returns:
        The path written.

    Raises:
        InvalidInputError: ``html`` is not a string or ``path`` is a folder.
        OSError: the file cannot be written (permissions, disk full).

    Example::

        >>> import pathlib, tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     write_report(pathlib.Path(folder) / "eval.html", "<p>hi</p>").read_text()
        '<p>hi</p>'
    """
    if not isinstance(html, str):
        raise InvalidInputError(f"html must be the page as a string; got {type(html).__name__}")
    target = Path(path)
    if target.is_dir():
        raise InvalidInputError(
            f"{target} is a folder; pass a file path such as {target / 'report.html'}"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            out.write(html)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return target
