"""The ``shipyard`` Typer app: a sub-app per command group (``main`` is the entry point).

Only Typer and the (light) command modules are imported here; each command
imports the store, SQLAlchemy and Rich when it runs, so ``shipyard --help`` is fast.
A :class:`ShipyardError` ends the command with ``error: <message>`` on stderr and
exit code 2 for bad input (``InvalidInputError``), 1 otherwise; never a traceback.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from shipyard.cli import (
    artifacts,
    batch,
    config,
    data,
    experiments,
    governance,
    maintenance,
    models,
    monitor,
    pipeline,
    runs,
    serve,
    train,
)
from shipyard.core.errors import InvalidInputError, ShipyardError

app = typer.Typer(
    name="shipyard",
    help="shipyard: track experiments and runs, and keep the store healthy.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(experiments.app, name="experiments")
app.add_typer(runs.app, name="runs")
app.add_typer(artifacts.app, name="artifacts")
app.add_typer(data.app, name="data")
app.add_typer(config.app, name="config")
app.add_typer(models.app, name="models")
app.add_typer(governance.audit_app, name="audit")
app.add_typer(governance.users_app, name="users")
app.add_typer(serve.tokens_app, name="tokens")
app.add_typer(monitor.monitor_app, name="monitor", rich_help_panel="Monitoring")
app.add_typer(pipeline.pipeline_app, name="pipeline", rich_help_panel="Pipelines")
app.add_typer(monitor.alerts_app, name="alerts", rich_help_panel="Monitoring")
app.command("train", rich_help_panel="Models")(train.train)
app.command("eval", rich_help_panel="Models")(train.evaluate)
app.command("lineage", rich_help_panel="Models")(models.lineage)
app.command("serve", rich_help_panel="Serving")(serve.serve)
app.command("predict", rich_help_panel="Serving")(batch.predict)
deploy_app = typer.Typer(help="Deployment manifests for a model version.", no_args_is_help=True)
deploy_app.command("manifests")(batch.deploy_manifests)
app.add_typer(deploy_app, name="deploy", rich_help_panel="Serving")
app.command("doctor", rich_help_panel="Maintenance")(maintenance.doctor)
app.command("gc", rich_help_panel="Maintenance")(maintenance.gc)


def _version(value: bool) -> None:
    if value:
        from shipyard import __version__

        typer.echo(f"shipyard {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """shipyard: track experiments and runs, and keep the store healthy."""


def report_error(exc: BaseException) -> None:
    """Print ``error: message`` in red on stderr (further lines of the message plain)."""
    from rich.console import Console
    from rich.text import Text

    message = exc.message if isinstance(exc, ShipyardError) else str(exc)
    first, _, rest = message.partition("\n")
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    err.print(Text(f"error: {first}", style="bold red"))
    if rest:
        err.print(Text(rest))


def run(argv: list[str] | None = None) -> None:
    """Run the Typer app on ``argv``; errors become ``error: ...`` and an exit status."""
    try:
        app(args=argv, prog_name="shipyard")
    except ShipyardError as exc:
        report_error(exc)
        sys.exit(2 if isinstance(exc, InvalidInputError) else 1)
    except OSError as exc:  # a file the user named cannot be read or written
        report_error(exc)
        sys.exit(1)

