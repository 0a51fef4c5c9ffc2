"""``shipyard experiments``: list, create, rename, delete and restore experiments."""

from __future__ import annotations

from typing import Annotated

import typer

from shipyard.cli import _common as c
from shipyard.cli._common import JsonFlag, View, ViewOption

app = typer.Typer(
    help="List, create, rename, delete and restore experiments.", no_args_is_help=True
)

ExperimentArg = Annotated[str, typer.Argument(help="Experiment name or id.")]


@app.command("list")
def list_experiments(view: ViewOption = View.ACTIVE, as_json: JsonFlag = False) -> None:
    """List experiments."""
    stores = c.open_stores()
    found = stores.store.list_experiments(view=view.value)
    if as_json:
        c.print_json(
            [
                {
                    "experiment_id": e.experiment_id,
                    "name": e.name,
                    "lifecycle_stage": str(e.lifecycle_stage),
                    "created_at": e.created_at,
                    "updated_at": e.updated_at,
                    "description": e.description,
                }
                for e in found
            ]
        )
        return
    if not found:
        c.note("no experiments" if view is View.ALL else f"no {view.value} experiments")
        return
    table = c.new_table("ID", "Name", "Stage", "Created", "Description")
    for e in found:
        table.add_row(
            c.text(e.experiment_id),
            c.text(e.name),
            c.text(e.lifecycle_stage),
            c.text(c.fmt_time(e.created_at)),
            c.text(e.description),
        )
    c.console().print(table)


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Name of the new experiment.")],
    description: Annotated[str, typer.Option("--description", "-d", help="What it is for.")] = "",
) -> None:
    """Create an experiment (creating the store if there is none yet)."""
    exp = c.open_stores(create=True).store.create_experiment(name, description=description)
    c.console().print(c.text(f"created experiment {exp.name} (id {exp.experiment_id})"))


@app.command("rename")
def rename(
    experiment: ExperimentArg,
    new_name: Annotated[str, typer.Argument(help="The new name.")],
) -> None:
    """Rename an experiment."""
    exp = c.open_stores().store.rename_experiment(experiment, new_name)
    c.console().print(c.text(f"renamed experiment {experiment} to {exp.name}"))


@app.command("delete")
def delete(experiment: ExperimentArg) -> None:
    """Soft-delete an experiment and hide its runs (`shipyard gc` purges it for good)."""
    exp = c.open_stores().store.delete_experiment(experiment)
    c.console().print(
        c.text(
            f"deleted experiment {exp.name} (id {exp.experiment_id}); restore it with "
            f"`shipyard experiments restore {exp.experiment_id}` until `shipyard gc` runs"
        )
    )


@app.command("restore")
def restore(experiment: ExperimentArg) -> None:
    """Restore a soft-deleted experiment."""
    exp = c.open_stores().store.restore_experiment(experiment)
    c.console().print(c.text(f"restored experiment {exp.name} (id {exp.experiment_id})"))
