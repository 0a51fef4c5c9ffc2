"""``shipyard runs``: list, search, show, compare, delete, restore runs and read metric history."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer

from shipyard.cli import _common as c
from shipyard.cli._common import JsonFlag, View, ViewOption

if TYPE_CHECKING:
    from shipyard.core.entities import Run
    from shipyard.store.tracking_store import SqlTrackingStore

app = typer.Typer(help="Search, inspect, compare, delete and restore runs.", no_args_is_help=True)

ExperimentsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--experiment",
        "-e",
        help="Experiment name or id; repeat for several. Default: every experiment.",
    ),
]
MaxOption = Annotated[int, typer.Option("--max", "-n", min=1, help="Show at most this many runs.")]
RunArg = Annotated[str, typer.Argument(help="Run id, or a unique prefix of 6+ characters.")]
RunsArg = Annotated[list[str], typer.Argument(help="Run ids or unique prefixes.")]
_LIST_KEYS = 4


def _experiment_ids(store: SqlTrackingStore, names: Sequence[str] | None, view: View) -> list[str]:
    if names:
        return store.experiment_ids(list(names))
    if view is View.ACTIVE:
        return store.experiment_ids(None)
    return [e.experiment_id for e in store.list_experiments(view="all")]


def _compact(values: dict[str, Any], keys: list[str]) -> str:
    shown = [f"{k}={c.fmt_short(values[k])}" for k in keys if k in values]
    hidden = len(values) - len(shown)
    return ", ".join(shown) + (f", +{hidden}" if hidden > 0 else "")


def _top_keys(runs: Sequence[Run], attr: str) -> list[str]:
    counts: dict[str, int] = {}
    for run in runs:
        for key in getattr(run, attr):
            counts[key] = counts.get(key, 0) + 1
    return sorted(counts, key=lambda k: (-counts[k], k))[:_LIST_KEYS]


def _print_runs(
    store: SqlTrackingStore, runs: list[Run], next_token: str | None, *, as_json: bool, limit: int
) -> None:
    if as_json:
        c.print_json([r.to_dict() for r in runs])
        return
    if not runs:
        c.note("no runs match")
        return
    names = {e.experiment_id: e.name for e in store.list_experiments(view="all")}
    out = c.console()
    # Narrow terminals drop the least useful columns rather than fold every cell.
    shown = {
        "Experiment": len({r.experiment_id for r in runs}) > 1,
        "Duration": out.width >= 100,
        "Params": out.width >= 120,
    }
    metric_keys = _top_keys(runs, "metrics")
    param_keys = _top_keys(runs, "params")
    columns = ["Run ID", "Name", "Experiment", "Status", "Started", "Duration", "Metrics"]
    table = c.new_table(
        *[col for col in [*columns, "Params"] if shown.get(col, True)],
        no_wrap=("Run ID", "Status", "Started", "Duration"),
        min_width={"Name": 10, "Metrics": 20, "Params": 16},
    )
    status_style = {"FINISHED": "green", "FAILED": "red", "KILLED": "red", "RUNNING": "cyan"}
    for r in runs:
        deleted = " (deleted)" if str(r.lifecycle_stage) == "deleted" else ""
        cells = {
            "Run ID": c.text(r.run_id[: c.SHORT_ID]),
            "Name": c.text(r.name + deleted),
            "Experiment": c.text(names.get(r.experiment_id, r.experiment_id)),
            "Status": c.text(r.status, status_style.get(str(r.status), "")),
            "Started": c.text(c.fmt_time(r.start_time, seconds=False)),
            "Duration": c.text(c.fmt_duration(r.duration_s)),
            "Metrics": c.text(_compact(dict(r.metrics), metric_keys)),
            "Params": c.text(_compact(dict(r.params), param_keys)),
        }
        table.add_row(*[cell for col, cell in cells.items() if shown.get(col, True)])
    out.print(table)
    if next_token is not None:
        c.note(f"showing the first {limit} runs; raise --max to see more")


@app.command("list")
def list_runs(
    experiment: ExperimentsOption = None,
    view: ViewOption = View.ACTIVE,
    max_results: MaxOption = 100,
    as_json: JsonFlag = False,
) -> None:
    """List runs, newest first."""
    store = c.open_stores().store
    page = store.search_runs(
        experiment_ids=_experiment_ids(store, experiment, view),
        max_results=max_results,
        view=view.value,
    )
    _print_runs(store, page.runs, page.next_page_token, as_json=as_json, limit=max_results)


@app.command("search")
def search(
    filter_string: Annotated[
        str,
        typer.Argument(
            metavar="FILTER",
            help="e.g. \"metrics.f1 > 0.8 and params.model = 'rf'\".",
        ),
    ],
    *,
    experiment: ExperimentsOption = None,
    order_by: Annotated[
        list[str] | None,
        typer.Option("--order-by", "-o", help="e.g. 'metrics.f1 DESC'; repeat for several keys."),
    ] = None,
    view: ViewOption = View.ACTIVE,
    max_results: MaxOption = 100,
    as_json: JsonFlag = False,
) -> None:
    """Find runs matching a filter, e.g. `shipyard runs search "metrics.loss < 0.3"`.

    Compare metrics.KEY, params.KEY, tags.KEY or attributes (status, run_name,
    start_time, user, git_commit...) with = != < <= > >= LIKE ILIKE IN or IS [NOT] NULL;
    combine with AND, OR, NOT and parentheses. Quote strings: params.model = 'rf'.
    """
    store = c.open_stores().store
    page = store.search_runs(
        experiment_ids=_experiment_ids(store, experiment, view),
        filter_string=filter_string,
        order_by=order_by or [],
        max_results=max_results,
        view=view.value,
    )
    _print_runs(store, page.runs, page.next_page_token, as_json=as_json, limit=max_results)


def _environment(stores: c.Stores, digest: str | None) -> tuple[dict[str, Any] | None, str]:
    """The run's environment document, or None and why it is not available."""
    from shipyard.core.errors import ShipyardError

    if digest is None:
        return None, "not recorded"
    try:
        doc = json.loads(stores.objects.get_bytes(digest))
    except (ShipyardError, ValueError) as exc:
        return None, f"unavailable: {exc}"
    return (doc, "") if isinstance(doc, dict) else (None, "unavailable: not a JSON object")


@app.command("show")
def show(run: RunArg, as_json: JsonFlag = False) -> None:
    """Show one run: attributes, params, metrics, tags, inputs, artifacts, git, environment."""
    stores = c.open_stores()
    store = stores.store
    run_id = c.resolve_run_id(store, run)
    r = store.get_run(run_id)
    arts = store.list_artifacts(run_id)
    env, env_problem = _environment(stores, r.environment_digest)
    from shipyard.store.dataset_store import SqlDatasetStore

    inputs = SqlDatasetStore(store.db).run_inputs(store.get_run_ref(run_id).pk)
    if as_json:
        data = r.to_dict()
        data["artifacts"] = [
            {"path": a.path, "digest": a.digest, "size": a.size, "created_at": a.created_at}
            for a in arts
        ]
        data["inputs"] = [
            {"dataset": v.ref, "digest": v.digest, "context": ctx} for v, ctx in inputs
        ]
        data["environment"] = env
        c.print_json(data)
        return
    exp = store.get_experiment(r.experiment_id)
    git = "-"
    if r.git_commit:
        git = r.git_commit + (" (uncommitted changes)" if r.git_dirty else "")
    rows: list[tuple[str, object]] = [
        ("run id", r.run_id),
        ("name", r.name),
        ("experiment", f"{exp.name} (id {exp.experiment_id})"),
        ("status", r.status),
        ("lifecycle", r.lifecycle_stage),
        ("started", c.fmt_time(r.start_time)),
        ("ended", c.fmt_time(r.end_time)),
        ("duration", c.fmt_duration(r.duration_s)),
        ("user", r.user or "-"),
        ("host / pid", f"{r.host or '-'} / {r.pid or '-'}"),
        ("entry point", r.entry_point or "-"),
        ("parent run", r.parent_run_id),
        ("description", r.description or "-"),
        ("git commit", git),
    ]
    if r.git_diff_hash:
        rows.append(("git diff sha256", r.git_diff_hash))
    rows.append(("python", r.python_version or "-"))
    if env is not None:
        packages = env.get("packages")
        count = len(packages) if isinstance(packages, dict) else 0
        rows.append(
            (
                "environment",
                f"{env.get('implementation', '')} {env.get('python', '')}"
                f" on {env.get('platform', '?')}, {count} packages",
            )
        )
    else:
        rows.append(("environment", env_problem))
    out = c.console()
    out.print(c.key_value_table(rows, title=f"Run {r.name}"))
    for title, values in (("Params", r.params), ("Metrics (latest)", r.metrics), ("Tags", r.tags)):
        out.print()
        if not values:
            out.print(c.text(f"{title}: none", "bold"))
            continue
        table = c.new_table("Key", "Value", title=title)
        for key, value in values.items():
            table.add_row(c.text(key), c.text(value))
        out.print(table)
    out.print()
    if inputs:
        table = c.new_table("Dataset", "Context", "Digest", title="Inputs")
        for v, ctx in inputs:
            table.add_row(c.text(v.ref), c.text(ctx or "-"), c.text(v.digest[: c.SHORT_ID]))
        out.print(table)
        out.print()
    if not arts:
        out.print(c.text("Artifacts: none", "bold"))
        return
    table = c.new_table("Path", "Size", "Digest", title="Artifacts")
    for a in arts:
        table.add_row(c.text(a.path), c.text(c.fmt_size(a.size)), c.text(a.digest[: c.SHORT_ID]))
    out.print(table)


@app.command("compare")
def compare(
    runs: Annotated[list[str], typer.Argument(help="Two or more run ids (or prefixes).")],
    diff_only: Annotated[
        bool, typer.Option("--diff-only", help="Show only the fields that differ.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Compare runs side by side: attributes, params, latest metrics and tags."""
    from shipyard.core.errors import InvalidInputError
    from shipyard.tracking.results import compare_rows

    if len(runs) < 2:
        raise InvalidInputError(f"compare needs at least two runs, got {len(runs)}")
    store = c.open_stores().store
    loaded = [store.get_run(c.resolve_run_id(store, r)) for r in runs]
    rows = [row for row in compare_rows(loaded) if row[2] or not diff_only]
    if as_json:
        c.print_json(
            {
                "runs": [r.run_id for r in loaded],
                "fields": [
                    {"field": name, "values": values, "differs": differs}
                    for name, values, differs in rows
                ],
            }
        )
        return
    table = c.new_table("Field", *[f"{r.name}\n{r.run_id[: c.SHORT_ID]}" for r in loaded], "")
    for name, values, differs in rows:
        style = "yellow" if differs else ""
        table.add_row(
            c.text(name, style),
            *[c.text(v, style) for v in values],
            c.text("≠" if differs else "", style),
        )
    c.console().print(table)
    if not rows:
        c.note("the runs do not differ" if diff_only else "nothing to compare")


@app.command("delete")
def delete(runs: RunsArg) -> None:
    """Soft-delete runs (`shipyard runs restore` undoes it until `shipyard gc` runs)."""
    store = c.open_stores().store
    for run in runs:
        run_id = c.resolve_run_id(store, run)
        store.delete_run(run_id)
        c.console().print(c.text(f"deleted run {run_id}"))


@app.command("restore")
def restore(runs: RunsArg) -> None:
    """Restore soft-deleted runs."""
    store = c.open_stores().store
    for run in runs:
        run_id = c.resolve_run_id(store, run)
        store.restore_run(run_id)
        c.console().print(c.text(f"restored run {run_id}"))


@app.command("history")
def history(
    run: RunArg,
    key: Annotated[str, typer.Argument(help="Metric key.")],
    max_points: Annotated[
        int | None,
        typer.Option(
            "--max",
            "-n",
            min=0,
            help="Show at most this many points (0 = all). Default: 1000 in the table, all with "
            "--json.",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Every logged point of one metric of a run, by step."""
    store = c.open_stores().store
    points = store.get_metric_history(c.resolve_run_id(store, run), key)
    limit = max_points if max_points is not None else (0 if as_json else 1000)
    shown = points[:limit] if limit else points
    if as_json:
        c.print_json([{"step": p.step, "value": p.value, "timestamp": p.timestamp} for p in shown])
        return
    table = c.new_table("Step", "Value", "Time", title=f"{key}")
    for p in shown:
        table.add_row(c.text(p.step), c.text(p.value), c.text(c.fmt_time(p.timestamp)))
    c.console().print(table)
    if len(shown) < len(points):
        c.note(f"showing {len(shown)} of {len(points)} points; use --max 0 for all")
