"""``shipyard config``: the effective settings and where each one came from."""

from __future__ import annotations

import re

import typer

from shipyard.cli import _common as c
from shipyard.cli._common import JsonFlag

app = typer.Typer(help="Show the effective settings.", no_args_is_help=True)

_PASSWORD_RE = re.compile(r"(?P<head>://[^/@:]*:)[^/@]*@")


def mask_secrets(value: str) -> str:
    """Hide the password of a URL (``postgresql://user:***@host/db``)."""
    return _PASSWORD_RE.sub(r"\g<head>***@", value)


@app.command("show")
def show(as_json: JsonFlag = False) -> None:
    """Each setting, its value and its source (default, shipyard.toml or env variable)."""
    from shipyard.core.config import OPTIONS

    rows = [(name, mask_secrets(value), source) for name, value, source in c.settings().describe()]
    if as_json:
        c.print_json(
            [
                {"name": n, "value": v, "source": s, "env": o.env}
                for (n, v, s), o in zip(rows, OPTIONS, strict=True)
            ]
        )
        return
    table = c.new_table("Setting", "Value", "Source", "Variable")
    for (name, value, source), opt in zip(rows, OPTIONS, strict=True):
        table.add_row(
            c.text(name),
            c.text(value),
            c.text(source, "dim" if source == "default" else "bold"),
            c.text(opt.env),
        )
    c.console().print(table)
