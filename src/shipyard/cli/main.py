"""The ``shipyard`` command's entry point.

A rerun of a pipeline where nothing changed is answered here, before Typer, Rich or the
store are imported (:mod:`shipyard.cli.fast`): it is the command people run most and
want instant. Everything else goes to the Typer app (:mod:`shipyard.cli.app`), which
imports each command's heavy modules only when the command runs. A
:class:`~shipyard.core.errors.ShipyardError` ends the command with ``error: <message>``
on stderr and exit code 2 for bad input, 1 otherwise; never a traceback.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``shipyard`` script."""
    from shipyard.cli.fast import pipeline_unchanged

    args = sys.argv[1:] if argv is None else argv
    if pipeline_unchanged(args):
        return
    from shipyard.cli.app import run

    run(argv)


if __name__ == "__main__":
    main()
