"""The data benchmarks, in one process run: validation, then versioning folders.

Usage (from the repository root, with the project's venv)::

    .venv/bin/python benchmarks/data.py               # both, full size (~15 minutes)
    .venv/bin/python benchmarks/data.py --quick       # both, small sizes (~2 minutes)
    .venv/bin/python benchmarks/data.py --write-docs  # also update docs/benchmarks.md

It runs ``validation.py`` (shipyard against plain pandas, pandera and Great
Expectations on a 1,000,000 x 20 DataFrame) and then ``data_folders.py``
(shipyard against ``dvc add`` / ``dvc status`` on 2,000 x 512 KB and
100,000 x 1 KB folders) with the same flags; each can also run on its own, with
more options (see their ``--help``). The exit status is 0 only when every target
of both is met.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import data_folders
import validation


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, one round")
    parser.add_argument("--write-docs", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args(argv)
    flags = [f for f, on in (("--quick", args.quick), ("--write-docs", args.write_docs)) if on]
    print("== validation: shipyard vs pandas, pandera, Great Expectations ==", flush=True)
    validated = validation.main(flags)
    print("\n== folders: shipyard vs DVC ==", flush=True)
    folders = data_folders.main(flags)
    return validated or folders


if __name__ == "__main__":
    sys.exit(main())
