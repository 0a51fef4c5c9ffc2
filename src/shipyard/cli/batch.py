"""``shipyard predict`` (batch scoring of a file) and ``shipyard deploy manifests``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shipyard.cli import _common as c
from shipyard.cli._common import JsonFlag

RefArgument = Annotated[str, typer.Argument(help="The model: NAME@VERSION or NAME@ALIAS.")]


def predict(
    ref: RefArgument,
    input: Annotated[
        Path, typer.Option("--input", "-i", help="The rows to score: .parquet, .csv or .csv.gz.")
    ],
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="Where to write the predictions (same formats)."),
    ],
    id_column: Annotated[
        str | None,
        typer.Option(
            help="Input column copied to the output (default: 'id' if present, else a row number)."
        ),
    ] = None,
    chunk_rows: Annotated[int, typer.Option(min=1, help="Rows scored at a time.")] = 50_000,
    no_proba: Annotated[
        bool, typer.Option("--no-proba", help="No proba_<class> columns for classifiers.")
    ] = False,
    dask: Annotated[
        str | None,
        typer.Option(
            "--dask",
            metavar="SCHEDULER",
            help="Dask scheduler address: score partitions on its workers.",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Score every row of a file with a registered model; write one prediction per row."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from shipyard.serving.batch import score_file

    registry = c.open_registry()
    version = registry.get_version(ref)
    model = registry.load(version)
    with Progress(
        TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TextColumn("rows"),
        TimeElapsedColumn(), console=c.err_console(), transient=True, disable=as_json,
    ) as bar:  # fmt: skip
        line = bar.add_task("scoring", total=None)
        report = score_file(
            model, input, output, model_ref=version.ref, version=version.version,
            id_column=id_column, chunk_rows=chunk_rows, proba=not no_proba, scheduler=dask,
            progress=lambda done, total: bar.update(line, completed=done, total=total),
        )  # fmt: skip
    if as_json:
        c.print_json(report.to_dict())
        return
    c.console().print(
        c.text(
            f"scored {report.rows:,} rows with {report.model} in {report.seconds:.1f}s "
            f"({report.rows_per_second:,.0f} rows/s) -> {report.output}"
        )
    )


def deploy_manifests(
    ref: RefArgument,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the files into.")],
    image: Annotated[
        str | None, typer.Option(help="Image the Deployment runs (default: NAME-ALIAS:VERSION).")
    ] = None,
    port: Annotated[int, typer.Option(help="Port the server listens on in the container.")] = 8080,
    replicas: Annotated[int, typer.Option(help="Replicas (the autoscaler's minimum).")] = 2,
    cpu: Annotated[str, typer.Option(help="CPU request and limit per replica.")] = "500m",
    memory: Annotated[str, typer.Option(help="Memory request and limit per replica.")] = "1Gi",
    extra: Annotated[
        list[str],
        typer.Option(help="shipyard extra to install (postgres, s3...); repeatable."),
    ] = [],  # noqa: B006
    overwrite: Annotated[bool, typer.Option(help="Replace files that exist.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Write a Dockerfile, requirements.txt and Kubernetes manifests that serve a model."""
    from shipyard import __version__
    from shipyard.serving.deploy import write_manifests

    registry = c.open_registry()
    version = registry.get_version(ref)
    selector = ref.rpartition("@")[2] if "@" in ref else None
    # serve the alias named (the server follows it); a number or "latest" serves that version
    alias = selector if selector in version.aliases else None
    paths = write_manifests(
        version, registry.model_meta(version), out, image=image, port=port, replicas=replicas,
        cpu=cpu, memory=memory, shipyard_version=__version__, alias=alias, extras=extra,
        overwrite=overwrite,
    )  # fmt: skip
    if as_json:
        c.print_json({"version": version.ref, "files": [str(p) for p in paths]})
        return
    for path in paths:
        c.console().print(c.text(f"wrote {path}"))
    c.note(
        f"next: docker build -t IMAGE {out} && kubectl apply -f {out / 'k8s'} "
        "(after creating the Secret named in k8s/deployment.yaml)"
    )
