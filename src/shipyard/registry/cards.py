"""Model cards: what a model version is for, what it learned from, how well it does, who let
it through and what it rests on, as Markdown and as one self-contained HTML page.

:func:`build_card` gathers everything first into ``ModelCard.data`` (JSON-safe): the
version, the metrics its run logged (with the bootstrap intervals ``<metric>_ci_low`` /
``_ci_high``), the ``evaluation/<stem>.json`` files :func:`shipyard.training.evaluate`
logs (slices, per-class metrics, permutation importance), the ``shipyard.warnings`` tag,
the stored gate checks and alias moves, the lineage and the citations. Both renderings
are made from that. The HTML page loads nothing: inline CSS, no scripts or images, and a
Content-Security-Policy that forbids outside resources; its only links are references
(doi.org, arxiv.org, cited URLs). Every string is escaped with :func:`html.escape`.
"""

from __future__ import annotations

import html
import json
import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from shipyard.core.errors import NotFoundError, ShipyardError

if TYPE_CHECKING:
    from shipyard.core.entities import Run
    from shipyard.registry.registry import ModelRegistry
    from shipyard.store.registry_store import Citation

logger = logging.getLogger(__name__)

TOP_FEATURES = 10
MAX_TABLE_ROWS = 50
METRIC_GROUPS = {"valid": "Validation", "test": "Test", "cv": "Cross-validation"}
_CSP = "default-src 'none'; style-src 'unsafe-inline'"
_CSS = """body{font-family:system-ui,sans-serif;margin:0;color:#1e293b;background:#f8fafc;
font-size:14px}header{background:#0f172a;color:#f8fafc;padding:18px 28px}header h1{margin:0}
nav{padding:8px 28px;background:#e2e8f0}nav a{margin-right:16px;color:#0f172a}
main{padding:12px 28px 40px;max-width:1100px}h2{border-bottom:1px solid #cbd5e1}
table{border-collapse:collapse;background:#fff;margin:6px 0}th{background:#f1f5f9}
td,th{border:1px solid #e2e8f0;padding:3px 8px;text-align:left;vertical-align:top}
pre{background:#f1f5f9;padding:8px;overflow-x:auto}
.note{padding:6px 10px;border-left:4px solid #f59e0b;background:#fffbeb}"""

Item = tuple[str, str | None, list[Any]]
"""A list item: its text, a link (or None) and its child items."""
Block = tuple[Any, ...]
"""``("p", text)``, ``("note", text, command)``, ``("h3", text)``, ``("table", head, rows)``,
``("list", items)`` or ``("code", text)``: rendered as Markdown and as HTML."""


@dataclass(frozen=True)
class ModelCard:
    """A version's card: ``markdown``, a self-contained ``html`` page, and ``data``
    (everything the card shows, JSON-safe)."""

    markdown: str
    html: str
    data: dict[str, Any]


def build_card(registry: ModelRegistry, ref: str) -> ModelCard:
    """The model card of the version ``ref`` names (``churn@3``, ``churn@production``).

    Sections without evidence (slice or per-class metrics, feature importance) are left
    out; intended use and limitations, when not written yet, say how to write them.

    Raises:
        NotFoundError: no such model, version or alias.

    Example::

        card = build_card(sy.model_registry(), "churn@production")
        Path("card.html").write_text(card.html)
    """
    version = registry.store.get_version(ref)
    run = _get_run(registry, version.run_id)
    best = _get_run(registry, run.tags.get("shipyard.best_run")) if run else None
    runs = [r for r in (run, best) if r is not None]
    evaluations = _evaluations(registry, runs)
    tables = {
        key: {s: p[key] for s, p in evaluations.items() if _is_records(p.get(key))}
        for key in ("slices", "per_class", "importance")
    }
    warnings = (w.strip() for r in runs for w in r.tags.get("shipyard.warnings", "").split(" | "))
    data = {
        **version.to_dict(),
        "created": _when(version.created_at),
        "metric_groups": _metric_groups(version.metrics),
        "evaluated_on": {s: p.get("data") for s, p in evaluations.items()},
        "slices": tables["slices"],
        "per_class": tables["per_class"],
        "importance": {
            s: rows[:TOP_FEATURES] for s, rows in list(tables["importance"].items())[:1]
        },
        "warnings": list(dict.fromkeys(w for w in warnings if w)),
        "gate_checks": [asdict(c) for c in registry.store.gate_checks(version)],
        "alias_moves": [
            asdict(m)
            for m in registry.store.alias_moves(version.name)
            if version.version in (m.from_version, m.to_version)
        ],
        "lineage": registry.lineage(version.ref),
        "references": [_reference(c) for c in registry.store.citations(version)],
    }
    # JSON-safe: NaN and infinities become null, tuples lists, anything else its str
    data = json.loads(json.dumps(data, default=str), parse_constant=lambda _: None)
    sections = [(title, blocks) for title, blocks in _sections(data) if blocks]
    title = f"Model card: {version.ref}"
    return ModelCard(_markdown(title, sections), _html(title, sections), data)


# -- gathering ------------------------------------------------------------------------


def _get_run(registry: ModelRegistry, run_id: str | None) -> Run | None:
    if not run_id:
        return None
    try:
        return registry.tracker.get_run(run_id)
    except NotFoundError:
        return None


def _evaluations(registry: ModelRegistry, runs: Sequence[Run]) -> dict[str, dict[str, Any]]:
    """``{stem: evaluation/<stem>.json}`` of the runs: test first, then valid, then others."""
    found: dict[str, dict[str, Any]] = {}
    for run in runs:
        for artifact in registry.tracker.list_artifacts(run.run_id, "evaluation"):
            match = re.fullmatch(r"evaluation/([^/]+)\.json", artifact.path)
            if match is None or match.group(1) in found:
                continue
            try:
                payload = json.loads(registry.tracker.load_artifact(run.run_id, artifact.path))
            except (ShipyardError, ValueError) as exc:  # the card renders without it
                logger.warning("card: %s of run %s unread: %s", artifact.path, run.run_id, exc)
                continue
            if isinstance(payload, dict):
                found[match.group(1)] = payload
    order = sorted(found, key=lambda s: ({"test": 0, "valid": 1}.get(s, 2), s))
    return {stem: found[stem] for stem in order}


def _metric_groups(metrics: Mapping[str, float]) -> dict[str, list[dict[str, Any]]]:
    """``{"valid"|"test"|"cv"|"other": [{name, value, ci: [low, high] | None}]}``."""
    ends = ("_ci_low", "_ci_high")
    bounds = {k for k in metrics for e in ends if k.endswith(e) and k[: -len(e)] in metrics}
    groups: dict[str, list[dict[str, Any]]] = {}
    for name in sorted(set(metrics) - bounds):
        low, high = (metrics.get(name + e) for e in ends)
        ci = [low, high] if low is not None and high is not None else None
        group = next((g for g in METRIC_GROUPS if name.startswith(g + "_")), "other")
        groups.setdefault(group, []).append({"name": name, "value": metrics[name], "ci": ci})
    return groups


def _is_records(value: Any) -> bool:
    """A non-empty list of row dicts (how ``EvaluationReport.to_dict`` writes a table)."""
    return isinstance(value, list) and bool(value) and all(isinstance(r, dict) for r in value)


def _reference(citation: Citation) -> dict[str, Any]:
    base = {"doi": "https://doi.org/", "arxiv": "https://arxiv.org/abs/", "url": ""}
    url = base[citation.kind] + citation.key if citation.kind in base else None
    return {"kind": citation.kind, "key": citation.key, "text": citation.text, "url": url}


# -- sections -------------------------------------------------------------------------


def _sections(d: Mapping[str, Any]) -> list[tuple[str, list[Block]]]:
    def edit(option: str) -> str:
        return f'shipyard models edit {d["ref"]} --{option} "..."'

    run = d["lineage"].get("run") or {}
    header = [
        ["Model", d["name"]],
        ["Version", str(d["version"])],
        ["Aliases", ", ".join(d["aliases"]) or "none"],
        ["Flavor", d["flavor"]],
        ["Status", d["status"]],
        ["Created", f"{d['created']} by {d['created_by'] or 'unknown'}"],
        ["Run", f"{d['run_id']} ({run.get('name')})" if run.get("name") else d["run_id"]],
        *([["Description", d["description"]]] if d["description"] else []),
        *[[f"Tag {k}", v] for k, v in sorted(d["tags"].items())],
    ]
    intended: list[Block] = [("p", d["intended_use"])] if d["intended_use"] else []
    limits: list[Block] = [("p", d["limitations"])] if d["limitations"] else []
    if d["warnings"]:
        limits += [
            ("h3", "Warnings from training and evaluation"),
            ("list", [(w, None, []) for w in d["warnings"]]),
        ]
    return [
        ("", [("table", ["Field", "Value"], header)]),
        ("Intended use", intended or [("note", "Not written yet. Set it:", edit("intended-use"))]),
        ("Training data", _training_data(d["lineage"])),
        ("Metrics", _metrics(d["metric_groups"])),
        ("Slice metrics", _eval_tables(d["slices"], d["evaluated_on"])),
        ("Per-class metrics", _eval_tables(d["per_class"], d["evaluated_on"])),
        ("Feature importance", _eval_tables(d["importance"], d["evaluated_on"])),
        ("Signature", _signature(d["signature"])),
        ("Promotion gates", _gates(d["gate_checks"], d["alias_moves"])),
        ("Lineage", _lineage(d["lineage"])),
        ("Limitations", limits or [("note", "Not written yet. Set them:", edit("limitations"))]),
        ("References", _references(d["references"])),
    ]


def _training_data(lineage: Mapping[str, Any]) -> list[Block]:
    run = lineage.get("run") or {}
    blocks: list[Block] = []
    if run.get("run_id"):
        commit = _commit(run.get("git_commit"), run.get("git_dirty"))
        blocks.append(("p", f"Trained by run {run['run_id']} at git commit {commit}."))
    rows = [
        [
            node["ref"],
            node.get("context") or "",
            ", ".join(p["ref"] for p in node.get("parents", [])) or "none",
            node.get("created_by_run_id") or "",
            (node.get("digest") or "")[:12],
        ]
        for node in lineage.get("datasets", [])
    ]
    if not rows:
        return [*blocks, ("note", "The run logged no dataset versions.", "sy.log_input(version)")]
    head = ["Dataset version", "Used as", "Parents", "Made by run", "Digest"]
    return [*blocks, ("table", head, rows)]


def _metrics(groups: Mapping[str, list[dict[str, Any]]]) -> list[Block]:
    if not groups:
        return [("note", "No metrics recorded. Log some in the run:", "sy.evaluate(model, ...)")]
    blocks: list[Block] = []
    for group, label in [*METRIC_GROUPS.items(), ("other", "Other")]:
        rows = [[m["name"], _with_ci(m["value"], m["ci"])] for m in groups.get(group, [])]
        blocks += [("h3", label), ("table", ["Metric", "Value"], rows)] if rows else []
    if any(m["ci"] for g in groups.values() for m in g):
        blocks.append(("p", "[low, high]: 95% bootstrap confidence interval on the same data."))
    return blocks


def _eval_tables(
    tables: Mapping[str, list[dict[str, Any]]], data: Mapping[str, Any]
) -> list[Block]:
    """A table per evaluation file (``stem``) that logged these records."""
    blocks: list[Block] = []
    for stem, records in tables.items():
        label = {"valid": "validation", "test": "test"}.get(stem, stem)
        head = list(records[0])
        rows = [[_fmt(r.get(h)) for h in head] for r in records[:MAX_TABLE_ROWS]]
        title = f"On the {label} data {data.get(stem) or ''}".strip()
        blocks += [("h3", title), ("table", head, rows)]
        if len(records) > MAX_TABLE_ROWS:
            blocks.append(("p", f"{len(records) - MAX_TABLE_ROWS} more in evaluation/{stem}.json"))
    return blocks


def _signature(signature: Mapping[str, Any] | None) -> list[Block]:
    if not signature:
        return [("p", "No signature recorded: inputs are not checked before predicting.")]
    blocks: list[Block] = []
    for side in ("inputs", "outputs"):
        rows = [
            [str(c.get("name")), str(c.get("type")), _fmt(bool(c.get("nullable"))), _domain(c)]
            for c in signature.get(side) or []
        ]
        head = ["Column", "Type", "Nullable", "Categories / range in the example"]
        blocks += [("h3", side.capitalize()), ("table", head, rows)] if rows else []
    return blocks


def _gates(checks: Sequence[Mapping[str, Any]], moves: Sequence[Mapping[str, Any]]) -> list[Block]:
    blocks: list[Block] = []
    for check in checks:
        verdict = "passed" if check["passed"] else "FAILED"
        when = f"{_when(check['at'])}, {check['actor']}"
        blocks.append(("h3", f"{check['alias']}: {verdict} ({when})"))
        rows = [
            [str(r.get("gate")), _fmt(bool(r.get("passed"))), str(r.get("detail", "")), _scores(r)]
            for r in check["results"]
        ]
        blocks.append(("table", ["Gate", "Passed", "Detail", "Scores"], rows))
    if moves:
        head = ["When", "Alias", "Action", "From", "To", "By", "Forced", "Reason"]
        keys = ("alias", "action", "from_version", "to_version", "actor", "forced", "reason")
        rows = [[_when(m["at"]), *(_fmt(m[k]) for k in keys)] for m in moves]
        blocks += [("h3", "Alias moves"), ("table", head, rows)]
    return blocks or [("p", "No promotion gates were checked for this version.")]


def _lineage(lineage: Mapping[str, Any]) -> list[Block]:
    def dataset(node: Mapping[str, Any]) -> Item:
        text = f"dataset {node['ref']}" + (f" ({node['context']})" if node.get("context") else "")
        text += " (missing)" if node.get("missing") else ""
        return (text, None, [dataset(p) for p in node.get("parents", [])])

    run, children = lineage.get("run"), []
    if run:
        text = f"run {run['run_id']}" + (
            " (missing)"
            if run.get("missing")
            else f" ({run['name']}), git {_commit(run['git_commit'], run['git_dirty'])}"
        )
        children = [(text, None, [dataset(d) for d in lineage.get("datasets", [])])]
    return [("list", [(f"model {lineage['model']['ref']}", None, children)])]


def _references(references: Sequence[Mapping[str, Any]]) -> list[Block]:
    items: list[Item] = []
    entries: list[Block] = []
    for ref in references:
        if ref["kind"] == "bibtex":
            entries += [("h3", f"BibTeX {ref['key']}"), ("code", ref["text"] or ref["key"])]
            continue
        url = ref["url"] or ref["key"]
        link = url if re.match(r"https?://[^\s]+$", url) else None
        items.append((url, link, [(ref["text"], None, [])] if ref["text"] else []))
    return ([("list", items)] if items else []) + entries


# -- formatting -----------------------------------------------------------------------


def _when(ms: int | None) -> str:
    at = datetime.fromtimestamp(ms / 1000, tz=UTC) if ms is not None else None
    return at.strftime("%Y-%m-%d %H:%M UTC") if at else "-"


def _commit(commit: str | None, dirty: bool | None) -> str:
    return "unknown" if not commit else commit[:12] + (" (uncommitted changes)" if dirty else "")


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _with_ci(value: float | None, ci: Sequence[float | None] | None) -> str:
    """``0.9935 [0.9871, 0.9982]``, or the bare value without an interval."""
    return _fmt(value) + (f" [{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci else "")


def _domain(column: Mapping[str, Any]) -> str:
    categories = column.get("categories")
    if categories:
        more = f", ... ({len(categories) - 20} more)" if len(categories) > 20 else ""
        return ", ".join(map(str, categories[:20])) + more
    low, high = column.get("minimum"), column.get("maximum")
    return "" if low is None and high is None else f"[{_fmt(low)}, {_fmt(high)}]"


def _scores(result: Mapping[str, Any]) -> str:
    """Champion and challenger scores of a ``beat_champion`` result."""
    if result.get("gate") != "beat_champion" or "challenger" not in result:
        return ""
    champion = result.get("champion")
    versus = "none" if champion is None else f"{_fmt(champion)} (v{result['champion_version']})"
    where = f"{result.get('metric')} on {result.get('data')}"
    return f"challenger {_fmt(result['challenger'])} vs champion {versus}, {where}"


# -- rendering ------------------------------------------------------------------------


def _href(url: str) -> str:
    """``url`` with parentheses, quotes, spaces and angle brackets percent-encoded."""
    return quote(url, safe=":/?#[]@!$&'*+,;=%~")


def _md_cell(text: object) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _md_block(block: Block) -> list[str]:
    kind, arg = block[0], block[1]
    if kind == "h3":
        return [f"### {arg}"]
    if kind == "note":
        return [f"> {arg} `{block[2]}`"]
    if kind == "table":
        lines = ["| " + " | ".join(map(_md_cell, arg)) + " |", "|" + " --- |" * len(arg)]
        return lines + ["| " + " | ".join(map(_md_cell, row)) + " |" for row in block[2]]
    if kind == "list":

        def walk(items: Sequence[Item], indent: str) -> list[str]:
            out = []
            for text, link, children in items:
                label = re.sub(r"([\\\[\]])", r"\\\1", text)
                out.append(f"{indent}- " + (f"[{label}]({_href(link)})" if link else text))
                out += walk(children, indent + "  ")
            return out

        return walk(arg, "")
    if kind == "code":
        fence = "`" * max([3, *(len(m) + 1 for m in re.findall(r"`+", arg))])
        return [fence, arg.rstrip("\n"), fence]
    return [str(arg)]


def _markdown(title: str, sections: Sequence[tuple[str, list[Block]]]) -> str:
    out = [f"# {title}", ""]
    for heading, blocks in sections:
        out += [f"## {heading}", ""] if heading else []
        for block in blocks:
            out += [*_md_block(block), ""]
    return "\n".join(out).rstrip() + "\n"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _html_block(block: Block) -> str:
    kind, arg = block[0], block[1]
    if kind == "h3":
        return f"<h3>{_e(arg)}</h3>"
    if kind == "note":
        return f"<p class=note>{_e(arg)} <code>{_e(block[2])}</code></p>"
    if kind == "table":
        head = "".join(f"<th>{_e(h)}</th>" for h in arg)
        rows = "".join(
            "<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in block[2]
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
    if kind == "list":

        def walk(items: Sequence[Item]) -> str:
            parts = []
            for text, link, children in items:
                label = _e(text)
                if link:
                    label = f'<a href="{_e(_href(link))}" rel="noreferrer">{label}</a>'
                parts.append(f"<li>{label}{walk(children) if children else ''}</li>")
            return "<ul>" + "".join(parts) + "</ul>"

        return walk(arg)
    if kind == "code":
        return f"<pre><code>{_e(arg)}</code></pre>"
    return "".join(f"<p>{_e(part)}</p>" for part in str(arg).split("\n\n"))


def _html(title: str, sections: Sequence[tuple[str, list[Block]]]) -> str:
    def slug(text: str) -> str:
        return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")

    nav = "".join(f'<a href="#{slug(h)}">{_e(h)}</a>' for h, _ in sections if h)
    body = "\n".join(
        (f'<section id="{slug(h)}"><h2>{_e(h)}</h2>' if h else "<section>")
        + "".join(map(_html_block, blocks))
        + "</section>"
        for h, blocks in sections
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>{_e(title)}</h1></header><nav>{nav}</nav><main>\n{body}\n</main>"
        "</body></html>\n"
    )
