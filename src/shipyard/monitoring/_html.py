"""HTML pieces of the monitor report: escaping, number and time formatting, tables, chips, CSS.

Private to :mod:`shipyard.monitoring.report_html` (and its charts in
:mod:`shipyard.monitoring._charts`). Every helper that puts text into markup
escapes it with :func:`_e` (:func:`html.escape`); :func:`_table` takes cells
that are already escaped HTML. :func:`_truthy` and :func:`_status_ok` read the
drift flags of a result row, for the verdict chips and the report's verdict.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from shipyard.core.plain import format_number

_SEVERITY_COLOURS = {
    "critical": "#7f1d1d",
    "high": "#dc2626",
    "error": "#dc2626",
    "warning": "#d97706",
    "medium": "#d97706",
    "low": "#2563eb",
    "info": "#2563eb",
}
_NOT_ENOUGH = "Not enough data yet"

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1e293b;
background:#f8fafc;font-size:14px}
header{background:#0f172a;color:#f8fafc;padding:18px 28px}
header h1{margin:0;font-size:22px;word-break:break-all}header p{margin:4px 0 0;color:#94a3b8}
nav{padding:8px 28px;background:#e2e8f0}nav a{margin-right:16px;color:#0f172a}
main{padding:12px 28px 40px}section{margin-top:18px}
h2{font-size:18px;border-bottom:1px solid #cbd5e1;padding-bottom:4px}
h3{font-size:15px;margin:0 0 6px;word-break:break-all}h4{font-size:13px;margin:8px 0 2px}
.cards{display:flex;flex-wrap:wrap;gap:10px}
.card{background:#fff;border:1px solid #e2e8f0;border-radius:6px;padding:8px 14px;min-width:110px}
.card b{display:block;font-size:18px;word-break:break-all}.card span{color:#64748b;font-size:12px}
.card.drift{border-color:#dc2626;background:#fef2f2}.card.ok{border-color:#059669;background:#ecfdf5}
table{border-collapse:collapse;background:#fff;margin:6px 0}
td,th{border:1px solid #e2e8f0;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f1f5f9}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.drifted td{background:#fef2f2}tr.issue td{background:#fffbeb}
.empty{padding:8px 12px;margin:6px 0;border-left:4px solid #94a3b8;background:#f1f5f9}
.grid{display:flex;flex-wrap:wrap;gap:14px}
.column{background:#fff;border:1px solid #e2e8f0;border-radius:6px;padding:10px;width:400px}
.column.drifted{border-color:#dc2626}.column:target{outline:3px solid #2563eb}
.chart{background:#fff;border:1px solid #e2e8f0;border-radius:6px;padding:8px;
display:inline-block}
.kind{font-size:11px;background:#e2e8f0;border-radius:8px;padding:1px 7px;margin-left:6px}
.chip{display:inline-block;font-size:11px;border-radius:8px;padding:1px 8px;color:#fff;
margin-left:6px;white-space:nowrap}
.chip.drift{background:#dc2626}.chip.ok{background:#059669}.chip.na{background:#64748b}
svg text{font-family:inherit}.muted{color:#64748b}.new{color:#dc2626;font-weight:600}
.legend{margin:2px 0}.legend span{display:inline-block;margin-right:14px;font-size:12px}
.swatch{display:inline-block;width:12px;height:12px;border-radius:3px;margin-right:4px;
vertical-align:middle}
"""


def _truthy(value: Any) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def _status_ok(row: Mapping[str, Any]) -> bool:
    return str(row.get("status") or "ok") == "ok"


def _table(
    head: Sequence[str],
    rows: Sequence[Sequence[str]],
    classes: Sequence[str] = (),
    *,
    table_id: str = "",
) -> str:
    """An HTML table; ``head`` is plain text, row cells are HTML that is already escaped."""
    th = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join(
        (f'<tr class="{classes[i]}">' if i < len(classes) and classes[i] else "<tr>")
        + "".join(f"<td>{c}</td>" for c in row)
        + "</tr>"
        for i, row in enumerate(rows)
    )
    ident = f' id="{table_id}"' if table_id else ""
    return f"<table{ident}><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _empty(text: str) -> str:
    return f'<p class="empty"><b>{_NOT_ENOUGH}</b>: {_e(text)}</p>'


def _verdict_chip(row: Mapping[str, Any]) -> str:
    if _truthy(row.get("drifted")):
        return '<span class="chip drift">drift</span>'
    if _status_ok(row):
        return '<span class="chip ok">no drift</span>'
    return f'<span class="chip na">{_e(row.get("status"))}</span>'


def _severity_chip(severity: str) -> str:
    colour = _SEVERITY_COLOURS.get(severity.lower(), "#64748b")
    return f'<span class="chip severity" style="background:{colour}">{_e(severity)}</span>'


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _num(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "-" if value is None else _e(value)
    return _e(_fmt(value))


def _pct(share: Any) -> str:
    if isinstance(share, bool) or not isinstance(share, int | float) or not math.isfinite(share):
        return "-"
    return f"{100 * share:.1f}%"


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")


def _duration(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


_fmt = format_number  # the report modules' short name
