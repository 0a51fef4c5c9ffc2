"""``shipyard train`` and ``shipyard eval``: cross-validated training, tuning, evaluation."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from shipyard.cli import _common as c
from shipyard.cli._common import JsonFlag

if TYPE_CHECKING:
    from shipyard.training.evaluation import EvaluationReport


def _configure() -> None:
    import shipyard as sy

    c.open_stores()  # a clear error when there is no store here
    sy.configure(c.settings())


def train(
    data: Annotated[str, typer.Argument(help="Training data: NAME@VERSION or NAME@ALIAS.")],
    target: Annotated[str, typer.Option(help="The column to predict.")],
    task: Annotated[
        str | None, typer.Option(help="binary, multiclass or regression (default: inferred).")
    ] = None,
    models: Annotated[
        str, typer.Option(help="Comma-separated model families.")
    ] = "linear,random_forest,hist_gradient_boosting",
    tune: Annotated[int, typer.Option(help="Optuna trials per family (0: defaults).")] = 0,
    cv: Annotated[int, typer.Option(help="Cross-validation folds.")] = 5,
    cv_strategy: Annotated[
        str, typer.Option(help="auto, kfold, stratified, group or time.")
    ] = "auto",
    group_column: Annotated[str | None, typer.Option(help="Group column (no leaks).")] = None,
    time_column: Annotated[str | None, typer.Option(help="Time column (time folds).")] = None,
    metric: Annotated[str | None, typer.Option(help="Primary metric (scorer name).")] = None,
    valid: Annotated[str | None, typer.Option(help="Data to evaluate the best on.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for folds, samplers and models.")] = 0,
    timeout: Annotated[float | None, typer.Option(help="Seconds per family, at most.")] = None,
    search_space: Annotated[
        Path | None, typer.Option(help="YAML file overriding search spaces.")
    ] = None,
    n_jobs: Annotated[int, typer.Option(help="Processes running trials at once.")] = 1,
    fold_jobs: Annotated[
        int | None, typer.Option(help="Processes for one trial's folds (default: all cores).")
    ] = None,
    scheduler: Annotated[
        str | None, typer.Option(help="Dask scheduler address: trials run on its workers.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Cross-validate (and tune) model families; refit the best and log it with its runs."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from shipyard.training.trainer import train as run_training

    _configure()
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
        console=c.err_console(), transient=True, disable=as_json,
    ) as bar:  # fmt: skip
        line = bar.add_task("checking the data", total=None)
        result = run_training(
            data, target, task=task, models=models.split(","), tune=tune, cv=cv,
            cv_strategy=cv_strategy, group_column=group_column, time_column=time_column,
            metric=metric, valid=valid, seed=seed, timeout=timeout,
            search_space=search_space, n_jobs=n_jobs, scheduler=scheduler, fold_jobs=fold_jobs,
            progress=lambda text: bar.update(line, description=text),
        )  # fmt: skip
    board = result.leaderboard
    if as_json:
        c.print_json(
            {
                "task": result.task,
                "metric": result.metric,
                "run_id": result.run_id,
                "best_run_id": result.best_run_id,
                "leaderboard": board.to_dict(orient="records"),
                "evaluation": None if result.evaluation is None else result.evaluation.to_dict(),
                "warnings": result.warnings,
            }
        )
        return
    table = c.new_table("#", "Model", f"CV {result.metric}", "std", "Fit s", "Trials", "Run",
                        title=f"leaderboard ({result.task}, {len(board)} candidates)")  # fmt: skip
    for row in board.itertuples(index=False):
        r: Any = row._asdict()
        table.add_row(*[c.text(x, "bold green" if r["rank"] == 1 else "") for x in (
            r["rank"], r["model"], f"{r[f'{result.metric}_mean']:.4f}",
            f"{r[f'{result.metric}_std']:.4f}", f"{r['fit_time_s']:.2f}", r["trials"],
            r["run_id"][: c.SHORT_ID],
        )])  # fmt: skip
    c.console().print(table)
    c.console().print(c.text(f"best: {result.best.family}, refitted in run {result.best_run_id}"))
    if result.evaluation is not None:
        _print_evaluation(result.evaluation)
    for warning in result.warnings:
        c.note(f"warning: {warning}")


def _print_evaluation(report: EvaluationReport) -> None:
    from shipyard.training.metrics import display_value

    table = c.new_table("Metric", "Value", "95% interval", title=f"on {report.data}")
    for name, value in report.metrics.items():
        shown, positive = display_value(name, value)
        interval = report.confidence_intervals.get(name)
        ci = "-"
        if interval is not None:
            low = display_value(name, interval[0])[1]
            high = display_value(name, interval[1])[1]
            ci = f"{min(low, high):.4f} - {max(low, high):.4f}"
        table.add_row(c.text(shown), c.text(f"{positive:.4f}"), c.text(ci))
    c.console().print(table)


def evaluate(
    run: Annotated[str, typer.Argument(help="The run that logged the model (id or prefix).")],
    data: Annotated[str, typer.Option(help="Data to evaluate on: NAME@VERSION or NAME@ALIAS.")],
    target: Annotated[
        str | None, typer.Option(help="Target column (default: the one it was trained on).")
    ] = None,
    slices: Annotated[
        list[str], typer.Option(help="Column to report metrics per value of; repeatable.")
    ] = [],  # noqa: B006
    html: Annotated[Path | None, typer.Option(help="Also write the HTML report here.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Evaluate a run's model on a dataset version; logged as a child run of that run."""
    import shipyard as sy
    from shipyard.core.errors import InvalidInputError
    from shipyard.training.evaluation import evaluate as run_evaluation

    _configure()
    tracker = sy.tracker()
    run_id = c.resolve_run_id(tracker.store, run)
    best = tracker.store.get_run(run_id).tags.get("shipyard.best_run")
    if best:  # a training run: its refitted best holds the model
        run_id = best
    model = sy.model_registry().load_from_run(run_id)
    column = target or tracker.store.get_run(run_id).params.get("target")
    if not column:
        raise InvalidInputError("the model does not record its target; pass --target")
    with tracker.start_run(
        name=f"eval on {data}", parent_run_id=run_id, tags={"shipyard.role": "evaluation"}
    ):
        report = run_evaluation(
            model.native if model.flavor == "sklearn" else model,
            data,
            column,
            task=model.meta.task,
            slices=slices or None,
            prefix="eval_",
        )
    if html is not None:
        from shipyard.training.report import write_report

        write_report(html, report.html)
    if as_json:
        c.print_json(report.to_dict())
        return
    _print_evaluation(report)
    if report.slices is not None:
        c.console().print(c.text(report.slices.to_string(index=False)))
    for warning in report.warnings:
        c.note(f"warning: {warning}")
    if html is not None:
        c.note(f"report written to {html}")
