"""``shipyard artifacts``: list a run's artifacts and copy them out (hash-checked)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shipyard.cli import _common as c
from shipyard.cli._common import JsonFlag

app = typer.Typer(help="List and download the artifacts of a run.", no_args_is_help=True)

RunArg = Annotated[str, typer.Argument(help="Run id, or a unique prefix of 6+ characters.")]


@app.command("list")
def list_artifacts(
    run: RunArg,
    path: Annotated[str, typer.Argument(help="Only this file or folder of the run.")] = "",
    as_json: JsonFlag = False,
) -> None:
    """List the artifacts of a run."""
    from shipyard.core.validation import check_artifact_path

    store = c.open_stores().store
    run_id = c.resolve_run_id(store, run)
    found = store.list_artifacts(run_id, check_artifact_path(path) if path else "")
    if as_json:
        c.print_json(
            [
                {"path": a.path, "digest": a.digest, "size": a.size, "created_at": a.created_at}
                for a in found
            ]
        )
        return
    if not found:
        c.note(f"run {run_id} has no artifacts" + (f" under {path!r}" if path else ""))
        return
    table = c.new_table("Path", "Size", "Digest", "Logged")
    for a in found:
        table.add_row(
            c.text(a.path),
            c.text(c.fmt_size(a.size)),
            c.text(a.digest),
            c.text(c.fmt_time(a.created_at)),
        )
    c.console().print(table)


@app.command("get")
def get(
    run: RunArg,
    path: Annotated[
        str, typer.Argument(help="File or folder of the run to copy; all artifacts when omitted.")
    ] = "",
    dest: Annotated[
        Path,
        typer.Option(
            "--dest",
            "-d",
            help="Folder to write into (keeping the artifact paths).",
            file_okay=False,
        ),
    ] = Path("."),
) -> None:
    """Copy artifacts to a folder; every file's hash is checked before it is written."""
    from shipyard.core.errors import NotFoundError
    from shipyard.core.validation import check_artifact_path
    from shipyard.tracking.artifacts import safe_destination

    stores = c.open_stores()
    run_id = c.resolve_run_id(stores.store, run)
    norm = check_artifact_path(path) if path else ""
    items = stores.store.list_artifacts(run_id, norm)
    if not items:
        raise NotFoundError(
            f"run {run_id} has no artifact {path!r}; `shipyard artifacts list {run_id}` "
            "shows what it has"
            if path
            else f"run {run_id} has no artifacts"
        )
    dest.mkdir(parents=True, exist_ok=True)
    out = c.console()
    for item in items:
        target = safe_destination(dest, item.path)
        stores.objects.get_to_path(item.digest, target)
        out.print(c.text(f"{target}  ({c.fmt_size(item.size)})"))
