"""``shipyard data``: add, inspect, validate, profile, graph, diff, split and clean datasets."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from shipyard.cli import _common as c
from shipyard.cli._common import JsonFlag

if TYPE_CHECKING:
    from shipyard.core.entities import DatasetVersion
    from shipyard.data._catalog import DataCatalog

app = typer.Typer(
    help="Version, validate, profile, relate, diff, split and clean datasets.",
    no_args_is_help=True,
)

RefArg = Annotated[str, typer.Argument(help="NAME, NAME@N, NAME@latest or NAME@ALIAS.")]
NameArg = Annotated[str, typer.Argument(help="Dataset name.")]


def _catalog(*, create: bool = False) -> DataCatalog:
    from shipyard import data

    c.open_stores(create=create)  # a clear error when there is no store here
    return data.catalog(c.settings())


def _version_row(v: DatasetVersion) -> list[Any]:
    shape = f"{v.num_rows} x {v.num_columns}" if v.kind == "table" else f"{v.num_files} files"
    return [v.ref, v.kind, shape, c.fmt_size(v.size_bytes), ", ".join(v.aliases),
            ", ".join(v.parents), c.fmt_time(v.created_at), v.digest[:12]]  # fmt: skip


def _print_versions(versions: list[DatasetVersion], title: str | None = None) -> None:
    table = c.new_table("Version", "Kind", "Shape", "Size", "Aliases", "Parents", "Created",
                        "Digest", title=title)  # fmt: skip
    for v in versions:
        table.add_row(*[c.text(x) for x in _version_row(v)])
    c.console().print(table)


def _tags(pairs: list[str]) -> dict[str, str]:
    from shipyard.core.errors import InvalidInputError

    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidInputError(f"--tag takes KEY=VALUE, got {pair!r}")
        out[key] = value
    return out


@app.command("add")
def add(
    name: NameArg,
    path: Annotated[Path, typer.Argument(help="A CSV, TSV or Parquet file, or a folder.")],
    description: Annotated[str, typer.Option(help="What this version is.")] = "",
    tag: Annotated[list[str], typer.Option(help="KEY=VALUE, repeatable.")] = [],  # noqa: B006
    alias: Annotated[list[str], typer.Option(help="Alias to point here, repeatable.")] = [],  # noqa: B006
    link: Annotated[
        bool,
        typer.Option(
            help="Folders: hard-link files of 256 KB and more into the local store instead "
            "of copying them. They become read-only; do not edit them in place afterwards."
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Add a file or folder as a new version (identical content gives the existing one)."""
    if not path.exists():  # before a store is made for nothing
        from shipyard.core.errors import InvalidInputError

        raise InvalidInputError(
            f"no such file or folder: {path} (relative paths are resolved against "
            f"{Path.cwd()}); give a CSV, TSV or Parquet file, or a folder"
        )
    cat = _catalog(create=True)
    before = {v.version for v in _safe_log(cat, name)}
    version = cat.add(
        name, path, description=description, tags=_tags(tag), aliases=alias, link=link
    )
    if as_json:
        c.print_json(version.to_dict() | {"created": version.version not in before})
        return
    verb = "added" if version.version not in before else "unchanged, already"
    c.console().print(c.text(f"{verb} {version.ref}  ({_version_row(version)[2]}, "
                             f"digest {version.digest[:12]})"))  # fmt: skip
    if version.kind == "table" and version.version == 1 and version.version not in before:
        c.note(f"expectations written to {cat.expectations_path(name)}; edit them, then "
               f"`shipyard data validate {name}`")  # fmt: skip


def _safe_log(cat: DataCatalog, name: str) -> list[DatasetVersion]:
    from shipyard.core.errors import NotFoundError

    try:
        return cat.store.list_versions(name)
    except NotFoundError:
        return []


@app.command("list")
def list_datasets(as_json: JsonFlag = False) -> None:
    """Every dataset with its number of versions."""
    rows = _catalog().store.list_datasets()
    if as_json:
        c.print_json([{"name": n, "versions": k, "latest": f"{n}@{v}"} for n, k, v in rows])
        return
    table = c.new_table("Dataset", "Versions", "Latest")
    for n, k, v in rows:
        table.add_row(c.text(n), c.text(k), c.text(f"{n}@{v}"))
    c.console().print(table)


@app.command("log")
def log(name: NameArg, as_json: JsonFlag = False) -> None:
    """The versions of a dataset, newest first."""
    versions = _catalog().store.list_versions(name)
    if as_json:
        c.print_json([v.to_dict() for v in versions])
        return
    _print_versions(versions, title=name)


@app.command("show")
def show(ref: RefArg, as_json: JsonFlag = False) -> None:
    """One version: counts, source, aliases, lineage, tags and schema."""
    cat = _catalog()
    v = cat.store.resolve(ref)
    runs = cat.store.runs_reading(v)
    if as_json:
        c.print_json(v.to_dict() | {"schema": v.schema, "read_by_runs": runs})
        return
    c.console().print(c.key_value_table(
        [("version", v.ref), ("kind", v.kind), ("shape", _version_row(v)[2]),
         ("size", c.fmt_size(v.size_bytes)), ("source", v.source), ("digest", v.digest),
         ("aliases", ", ".join(v.aliases)), ("parents", ", ".join(v.parents) or "-"),
         ("tags", ", ".join(f"{k}={x}" for k, x in v.tags.items()) or "-"),
         ("created", c.fmt_time(v.created_at)), ("read by runs", ", ".join(runs) or "-")],
        title=v.ref,
    ))  # fmt: skip
    if v.schema:
        table = c.new_table("Column", "Type", "Nullable", "Min", "Max", "Distinct", title="schema")
        for col in v.schema.get("columns", []):
            table.add_row(
                *[
                    c.text(col.get(k))
                    for k in ("name", "logical_type", "nullable", "min", "max", "n_distinct")
                ]
            )
        c.console().print(table)


@app.command("checkout")
def checkout(
    ref: RefArg,
    dest: Annotated[Path, typer.Argument(help="Folder to write into.")],
    as_json: JsonFlag = False,
) -> None:
    """Write a version out: a folder's files, or a table as DEST/NAME.parquet."""
    ds = _catalog().get(ref)
    if ds.version.kind == "files":
        ds.checkout(dest)
        written = [str((dest / p).resolve()) for p in ds.files()]
    else:
        dest.mkdir(parents=True, exist_ok=True)
        target = dest / f"{ds.version.name}.parquet"
        ds.to_pandas().to_parquet(target)
        written = [str(target.resolve())]
    if as_json:
        c.print_json({"ref": ds.ref, "written": written})
        return
    c.console().print(c.text(f"wrote {ds.ref} to {dest} ({len(written)} file(s))"))


@app.command("validate")
def validate(
    data: Annotated[str, typer.Argument(help="A version reference or a CSV/Parquet file.")],
    expectations: Annotated[
        str | None,
        typer.Option(help="Dataset name or YAML file (default: the dataset's own file)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Check data against its expectations; exit code 1 when a check fails (gates CI).

    Custom checks (``module:function`` in the YAML) are imported with the current
    folder on the import path, as ``python -m`` and pytest do.
    """
    import os
    import sys

    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    report = _catalog().validate(data, expectations)
    if as_json:
        c.print_json(report.to_dict())
    else:
        table = c.new_table("Check", "Column", "Result", "Bad rows", "Examples", "Message")
        for r in report.results:
            style = "" if r.passed else "red"
            table.add_row(
                c.text(r.check, style), c.text(r.column, style),
                c.text("ok" if r.passed else "FAILED", style), c.text(r.bad_count, style),
                c.text(", ".join(str(i) for i in r.example_indices), style),
                c.text(r.message, style),
            )  # fmt: skip
        c.console().print(table)
        c.console().print(c.text("passed" if report.passed else "FAILED",
                                 "green" if report.passed else "bold red"))  # fmt: skip
    if not report.passed:
        raise typer.Exit(1)


@app.command("profile")
def profile(
    data: Annotated[str, typer.Argument(help="A version reference or a CSV/Parquet file.")],
    html: Annotated[Path | None, typer.Option(help="Write a self-contained HTML report.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Per-column missing values, distinct counts, quantiles, histograms and outliers."""
    cat = _catalog()
    prof = cat.profile(data)
    if html is not None:
        c.write_text_atomic(html, cat.report_html(data, with_graph=False))
    if as_json:
        c.print_json(prof.to_dict())
        return
    table = c.new_table("Column", "Kind", "Missing", "Distinct", "Min", "Median", "Max",
                        "Outliers (IQR)")  # fmt: skip
    for col in prof.columns:
        q = col.quantiles or {}
        table.add_row(*[c.text(x) for x in (
            col.name, col.kind, f"{col.missing_rate:.1%}", col.distinct,
            c.fmt_short(col.min), c.fmt_short(q.get("p50")), c.fmt_short(col.max),
            col.outliers_iqr,
        )])  # fmt: skip
    c.console().print(table)
    if html is not None:
        c.note(f"report written to {html}")


@app.command("graph")
def graph(
    data: Annotated[str, typer.Argument(help="A version reference or a CSV/Parquet file.")],
    target: Annotated[
        str | None, typer.Option(help="Target column for mutual information.")
    ] = None,
    html: Annotated[Path | None, typer.Option(help="Write a self-contained HTML report.")] = None,
    threshold: Annotated[float, typer.Option(help="Edges at least this strong.")] = 0.5,
    as_json: JsonFlag = False,
) -> None:
    """How the variables relate: strong associations, target MI, redundancy, leakage."""
    cat = _catalog()
    g = cat.graph(data, target=target)
    if html is not None:
        c.write_text_atomic(html, cat.report_html(data, target=target))
    if as_json:
        c.print_json(g.to_dict())
        return
    if target:
        table = c.new_table("Rank", "Feature", "Kind", "MI with " + target, "Alone predicts")
        ranked = sorted(
            (n for n in g.nodes if n.role != "target"),
            key=lambda n: n.importance_rank if n.importance_rank is not None else 10**9,
        )
        for node in ranked:
            table.add_row(*[c.text(x) for x in (
                node.importance_rank, node.name, node.kind,
                c.fmt_short(node.mutual_information), c.fmt_short(node.predictive_score),
            )])  # fmt: skip
        c.console().print(table)
    table = c.new_table("A", "B", "Method", "Association", title=f"edges >= {threshold}")
    for e in g.strong_edges(threshold):
        table.add_row(*[c.text(x) for x in (e.a, e.b, e.method, c.fmt_short(e.value))])
    c.console().print(table)
    for pair in g.redundant:
        c.console().print(c.text(f"redundant: {pair.reason}", "yellow"))
    for suspect in g.leakage_suspects:
        c.console().print(c.text(f"leakage suspect: {suspect.column}: {suspect.reason}", "red"))
    if html is not None:
        c.note(f"report written to {html}")


@app.command("diff")
def diff(old: RefArg, new: RefArg, as_json: JsonFlag = False) -> None:
    """Schema, row-count and per-column distribution changes between two versions."""
    d = _catalog().diff(old, new)
    if as_json:
        c.print_json(d.to_dict())
        return
    c.console().print(c.text(f"{d.old} -> {d.new}: rows {d.old_rows} -> {d.new_rows} "
                             f"({d.row_change:+d})"))  # fmt: skip
    for col in d.added_columns:
        c.console().print(c.text(f"+ column {col}", "green"))
    for col in d.removed_columns:
        c.console().print(c.text(f"- column {col}", "red"))
    table = c.new_table("Column", "Type", "Method", "Statistic", "p-value", "Missing", "Mean",
                        "Changed because")  # fmt: skip
    for ch in d.columns:
        style = "yellow" if ch.changed else ""
        dtype = (
            ch.old_dtype if ch.old_dtype == ch.new_dtype else f"{ch.old_dtype} -> {ch.new_dtype}"
        )
        table.add_row(*[c.text(x, style) for x in (
            ch.column, dtype, ch.method, f"{ch.statistic:.4f}",
            "-" if ch.p_value is None else f"{ch.p_value:.3g}",
            f"{ch.old_missing_rate:.1%} -> {ch.new_missing_rate:.1%}",
            f"{c.fmt_short(ch.old_mean)} -> {c.fmt_short(ch.new_mean)}",
            "; ".join(ch.reasons) or "-",
        )])  # fmt: skip
    c.console().print(table)
    changed = [ch.column for ch in d.columns if ch.changed]
    c.console().print(c.text(f"{len(changed)} of {len(d.columns)} shared columns changed"
                             + (f": {', '.join(changed)}" if changed else "")))  # fmt: skip


@app.command("split")
def split(
    ref: RefArg,
    target: Annotated[str | None, typer.Option(help="Target column (for --stratify).")] = None,
    stratify: Annotated[bool, typer.Option(help="Keep the target's class balance.")] = False,
    method: Annotated[str | None, typer.Option(help="random, stratified, time or group.")] = None,
    time_column: Annotated[str | None, typer.Option(help="For a time split.")] = None,
    group_column: Annotated[str | None, typer.Option(help="For a group split.")] = None,
    test: Annotated[float, typer.Option(help="Fraction for the test part.")] = 0.2,
    valid: Annotated[float, typer.Option(help="Fraction for the validation part.")] = 0.0,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    as_json: JsonFlag = False,
) -> None:
    """Split into NAME@train, NAME@valid and NAME@test versions, and check for leakage."""
    chosen = method or ("stratified" if stratify else "time" if time_column else
                        "group" if group_column else "random")  # fmt: skip
    made, leakage = _catalog().split(
        ref, method=chosen, target=target, time_column=time_column, group_column=group_column,
        test=test, valid=valid, seed=seed,
    )  # fmt: skip
    if as_json:
        c.print_json({"versions": {k: v.to_dict() for k, v in made.items()},
                      "leakage": leakage.to_dict()})  # fmt: skip
    else:
        _print_versions(list(made.values()), title=f"{chosen} split of {ref}")
        if leakage.ok:
            c.console().print(c.text("leakage check: no shared rows or groups", "green"))
        else:
            c.console().print(c.text(f"leakage check: {leakage.to_dict()}", "bold red"))
    if not leakage.ok:
        raise typer.Exit(1)


@app.command("clean")
def clean(
    ref: RefArg,
    spec: Annotated[Path, typer.Option(help="YAML file of cleaning steps.")],
    name: Annotated[str | None, typer.Option(help="Dataset for the result.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Apply declarative cleaning steps and add the result as a new version with lineage."""
    version, report = _catalog().clean(ref, spec, name=name)
    if as_json:
        c.print_json({"version": version.to_dict(), "report": report.to_dict()})
        return
    _print_versions([version], title=f"cleaned {ref}")
    table = c.new_table("#", "Step", "Columns", "What changed",
                        title=f"rows {report.rows_in} -> {report.rows_out}, columns "
                              f"{len(report.columns_in)} -> {len(report.columns_out)}")  # fmt: skip
    for step in report.steps:
        table.add_row(*[c.text(x) for x in (
            step.index + 1, step.step, _short_list(step.columns), _step_effect(step)
        )])  # fmt: skip
    c.console().print(table)


def _short_list(items: Sequence[str], limit: int = 6) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" (+{len(items) - limit} more)" if len(items) > limit else "") or "-"


def _step_effect(step: Any) -> str:
    """One line per kind of change a cleaning step made."""
    parts = []
    if step.values_imputed:
        parts.append(f"{sum(step.values_imputed.values())} values imputed")
    if step.values_clipped:
        parts.append(f"{sum(step.values_clipped.values())} values clipped")
    if step.rows_dropped:
        parts.append(f"{step.rows_dropped} rows dropped")
    if step.columns_added:
        parts.append(f"added {_short_list(step.columns_added, 4)}")
    if step.columns_removed:
        parts.append(f"removed {_short_list(step.columns_removed, 4)}")
    return "; ".join(parts) or "values transformed"


@app.command("status")
def status(
    name: NameArg,
    path: Annotated[Path, typer.Argument(help="The folder to compare.")],
    as_json: JsonFlag = False,
) -> None:
    """Which files under PATH changed since the latest version of folder dataset NAME."""
    changes = _catalog().status(name, path)
    groups = {"added": changes.added, "modified": changes.modified, "deleted": changes.deleted}
    if as_json:
        c.print_json({k: list(v) for k, v in groups.items()})
        return
    if not any(groups.values()):
        c.console().print(c.text(f"{path} matches {name}@latest", "green"))
        return
    for kind, style in (("added", "green"), ("modified", "yellow"), ("deleted", "red")):
        for p in groups[kind]:
            c.console().print(c.text(f"{kind:9s}{p}", style))


@app.command("alias")
def alias(
    ref: RefArg,
    name: Annotated[str, typer.Argument(help="Alias, e.g. train.")],
    as_json: JsonFlag = False,
) -> None:
    """Point NAME@ALIAS at the version REF names."""
    v = _catalog().store.set_alias(ref, name)
    if as_json:
        c.print_json(v.to_dict())
        return
    c.console().print(c.text(f"{v.name}@{name} -> {v.ref}"))
