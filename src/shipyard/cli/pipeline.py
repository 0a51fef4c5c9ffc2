"""``shipyard pipeline``: run cached pipelines from ``shipyard.yaml``, see their DAG,
status and history, schedule them, export them to Airflow."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from shipyard.cli import _common as c
from shipyard.cli._common import JsonFlag

if TYPE_CHECKING:
    from shipyard.pipelines.runner import PipelineContext, PipelineResult
    from shipyard.pipelines.spec import PipelineSpec

pipeline_app = typer.Typer(
    help="Declared, cached pipelines (shipyard.yaml): run, status, dag, history, schedules.",
    no_args_is_help=True,
)
schedule_app = typer.Typer(help="Run pipelines on cron schedules or when a dataset changes.",
                           no_args_is_help=True)  # fmt: skip
pipeline_app.add_typer(schedule_app, name="schedule")

FileOption = Annotated[Path, typer.Option("--file", "-f", help="The pipeline spec.")]
SPEC = Path("shipyard.yaml")


def _spec(path: Path) -> PipelineSpec:
    from shipyard.pipelines.spec import load_spec

    return load_spec(path)


def context() -> PipelineContext:
    """The stores of this invocation, as a pipeline run needs them."""
    from shipyard.pipelines.runner import PipelineContext
    from shipyard.store.dataset_store import SqlDatasetStore
    from shipyard.store.pipeline_store import SqlPipelineStore

    stores = c.open_stores(create=True)
    cfg = c.settings()
    db = stores.store.db
    return PipelineContext(
        settings=cfg, runs=stores.store, objects=stores.objects,
        cache=SqlPipelineStore(db, actor=cfg.actor), datasets=SqlDatasetStore(db, actor=cfg.actor),
    )  # fmt: skip


@pipeline_app.command("run")
def run(
    file: FileOption = SPEC,
    force: Annotated[
        list[str] | None, typer.Option("--force", help="Rerun this step even if cached.")
    ] = None,
    force_downstream: Annotated[
        bool, typer.Option("--force-downstream", help="Also rerun what depends on --force.")
    ] = False,
    step: Annotated[
        list[str] | None, typer.Option("--step", help="Run only this step (an Airflow task).")
    ] = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Steps at once.")] = 1,
    no_retries: Annotated[
        bool, typer.Option("--no-retries", help="Run each step once (Airflow retries tasks).")
    ] = False,
    executor: Annotated[str, typer.Option(help="local or dask.")] = "local",
    scheduler: Annotated[
        str | None, typer.Option(help="Dask scheduler address: tcp://HOST:PORT.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Run what changed, skip the rest (cached); exit 1 if a step failed."""
    from shipyard.pipelines.spec import check_inputs

    spec = _spec(file)
    check_inputs(spec)
    from shipyard.pipelines.runner import run_pipeline

    ctx = context()
    progress = None if as_json else _printer()
    try:
        result = run_pipeline(
            spec, ctx, force=force or (), force_downstream=force_downstream, steps=step,
            jobs=jobs, executor=executor, scheduler=scheduler, progress=progress,
            retries=not no_retries,
        )  # fmt: skip
    except KeyboardInterrupt:
        c.err_console().print("pipeline cancelled: running steps stopped, the run is recorded "
                              "as killed; finished steps stay cached")  # fmt: skip
        raise typer.Exit(130) from None
    if as_json:
        c.print_json(_result_dict(result))
    else:
        _print_result(result)
    if result.status != "finished":
        raise typer.Exit(1)


def _printer() -> Any:
    from rich.markup import escape

    con = c.console()

    def say(message: str) -> None:
        con.print(escape(message), highlight=False, soft_wrap=True)

    return say


def _result_dict(result: PipelineResult) -> dict[str, Any]:
    return {
        "pipeline": result.pipeline, "run_id": result.run_id, "status": result.status,
        "duration_s": round(result.duration_s, 3), "failed_step": result.failed_step,
        "steps": [{"name": s.name, "status": s.status, "key": s.key, "run_id": s.run_id,
                   "step_run_id": s.step_run_id, "duration_s": round(s.duration_s, 3),
                   "attempts": s.attempts, "message": s.message} for s in result.steps],
    }  # fmt: skip


def _print_result(result: PipelineResult) -> None:
    counts: dict[str, int] = {}
    for s in result.steps:
        counts[s.status] = counts.get(s.status, 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in counts.items())
    style = {"finished": "green", "failed": "bold red", "cancelled": "yellow"}[result.status]
    c.console().print(
        f"[{style}]pipeline {result.pipeline} {result.status}[/] in {result.duration_s:.1f} s: "
        f"{summary}" + (f"; failed at {result.failed_step}" if result.failed_step else "")
        + (f" (run {result.run_id})" if result.run_id else ""),
        highlight=False,
    )  # fmt: skip


@pipeline_app.command("status")
def status(file: FileOption = SPEC, as_json: JsonFlag = False) -> None:
    """What a run would do now, and why."""
    from shipyard.pipelines.runner import plan

    plans = plan(_spec(file), context())
    if as_json:
        c.print_json([{"step": p.name, "will_run": p.will_run, "reason": p.reason, "key": p.key}
                      for p in plans])  # fmt: skip
        return
    for p in plans:
        mark = "[yellow]run [/]" if p.will_run else "[green]skip[/]"
        c.console().print(f"{mark}  {p.name}: {p.reason}", highlight=False)


@pipeline_app.command("dag")
def dag(
    file: FileOption = SPEC,
    dot: Annotated[bool, typer.Option("--dot", help="Graphviz DOT instead of text.")] = False,
) -> None:
    """The steps and what each depends on (text, or Graphviz DOT)."""
    from shipyard.pipelines.spec import dag_dot, dag_text

    spec = _spec(file)
    typer.echo(dag_dot(spec) if dot else dag_text(spec))


@pipeline_app.command("history")
def history(
    file: FileOption = SPEC,
    limit: Annotated[int, typer.Option(help="Newest runs shown.")] = 20,
    as_json: JsonFlag = False,
) -> None:
    """Past runs of the pipeline, newest first: status, steps ran and cached, time."""
    from shipyard.pipelines.runner import EXPERIMENT_PREFIX

    spec = _spec(file)
    stores = c.open_stores(create=True)
    experiment = stores.store.find_experiment(f"{EXPERIMENT_PREFIX}{spec.name}")
    runs = stores.store.search_runs(
        experiment_ids=[experiment.experiment_id], filter_string="tags.\"sy.kind\" = 'pipeline'",
        order_by=["attributes.start_time DESC"], max_results=limit,
    ).runs if experiment is not None else []  # fmt: skip
    rows: list[dict[str, Any]] = []
    for r in runs:
        tags = r.tags
        rows.append({
            "run_id": r.run_id, "status": tags.get("sy.status", str(r.status)),
            "started": r.start_time, "duration_s": ((r.end_time or r.start_time)
                                                    - r.start_time) / 1000,
            "ran": int(tags.get("sy.steps.ran", 0)),
            "cached": int(tags.get("sy.steps.cached", 0)) + int(tags.get("sy.steps.restored", 0)),
            "failed_step": tags.get("sy.failed_step"),
        })  # fmt: skip
    if as_json:
        c.print_json(rows)
        return
    table = c.new_table("run", "started", "status", "ran", "cached", "time", "failed step")
    for row in rows:
        table.add_row(c.text(row["run_id"][: c.SHORT_ID]), c.text(c.fmt_time(row["started"])),
                      c.text(row["status"]), c.text(row["ran"]), c.text(row["cached"]),
                      c.text(c.fmt_duration(row["duration_s"])),
                      c.text(row["failed_step"] or "-"))  # fmt: skip
    c.console().print(table)
    if not rows:
        c.note(f"pipeline {spec.name} has not run yet: `shipyard pipeline run`")


@pipeline_app.command("export")
def export(
    target: Annotated[str, typer.Argument(help="airflow")],
    out: Annotated[Path, typer.Option(help="The DAG file to write.")],
    file: FileOption = SPEC,
    schedule: Annotated[str | None, typer.Option(help="The DAG's cron schedule.")] = None,
) -> None:
    """Write an Airflow DAG: one task per step running `shipyard pipeline run --step`."""
    from shipyard.core.errors import InvalidInputError
    from shipyard.pipelines.airflow import airflow_dag

    if target != "airflow":
        raise InvalidInputError(f"pipelines export to airflow, got {target!r}")
    spec = _spec(file)
    source = airflow_dag(spec, spec_path=str(file.resolve()), schedule=schedule)
    c.write_text_atomic(out, source)
    c.console().print(f"wrote {out}: {len(spec.steps)} task(s)")


@pipeline_app.command("reproduce")
def reproduce(
    run_id: Annotated[str, typer.Argument(help="A pipeline run id (or a unique prefix).")],
    file: FileOption = SPEC,
    as_json: JsonFlag = False,
) -> None:
    """Rerun a recorded pipeline run with its params and input versions; say whether the
    outputs match byte for byte."""
    from shipyard.pipelines.reproduce import reproduce_run

    ctx = context()
    full = c.resolve_run_id(ctx.runs, run_id)
    report = reproduce_run(full, ctx, spec_path=file, progress=None if as_json else _printer())
    if as_json:
        c.print_json(report.to_dict())
    else:
        for line in report.lines():
            c.console().print(line, highlight=False)
    if not report.identical:
        raise typer.Exit(1)


# -- schedules ----------------------------------------------------------------------------


@schedule_app.command("add")
def schedule_add(
    name: Annotated[str, typer.Argument(help="The pipeline's name (from its spec).")],
    cron: Annotated[str | None, typer.Option(help="Cron schedule: '0 3 * * *'.")] = None,
    on_dataset: Annotated[
        list[str] | None, typer.Option("--on-dataset", help="Rerun when this dataset changes.")
    ] = None,
    file: FileOption = SPEC,
    replace: Annotated[bool, typer.Option(help="Replace an existing schedule.")] = False,
) -> None:
    """Run the pipeline under `shipyard monitor serve-scheduler` (the same scheduler)."""
    from shipyard.pipelines.schedules import add_pipeline_schedule

    spec = _spec(file)
    ctx = context()
    made = add_pipeline_schedule(ctx, spec, name=name, cron=cron,
                                 datasets=on_dataset or (), replace=replace)  # fmt: skip
    c.console().print(
        f"pipeline {made.name}: {made.cron or 'no cron'}"
        + (f", on new versions of {', '.join(made.datasets)}" if made.datasets else ""),
        highlight=False,
    )  # fmt: skip


@schedule_app.command("list")
def schedule_list(as_json: JsonFlag = False) -> None:
    """Scheduled pipelines."""
    rows = context().cache.list_schedules()
    if as_json:
        c.print_json([{"name": s.name, "spec": s.spec_path, "cron": s.cron,
                       "datasets": list(s.datasets), "last_run_at": s.last_run_at,
                       "last_status": s.last_status} for s in rows])  # fmt: skip
        return
    table = c.new_table("pipeline", "cron", "on datasets", "spec", "last run", "status")
    for s in rows:
        table.add_row(c.text(s.name), c.text(s.cron or "-"), c.text(", ".join(s.datasets) or "-"),
                      c.text(s.spec_path), c.text(c.fmt_time(s.last_run_at)
                                                  if s.last_run_at else "never"),
                      c.text(s.last_status or "-"))  # fmt: skip
    c.console().print(table)


@schedule_app.command("remove")
def schedule_remove(name: str) -> None:
    """Stop scheduling a pipeline."""
    context().cache.remove_schedule(name)
    c.console().print(f"pipeline {name} unscheduled")
