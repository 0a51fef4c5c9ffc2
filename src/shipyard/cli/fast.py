"""``shipyard pipeline run`` (and ``status``) when nothing changed, without Typer, Rich
or the store.

Only the plain form is handled here (``--file``, ``--json``, ``--jobs``): the spec is
read, every step's key is recomputed from the files and compared with ``shipyard.lock``,
and every output with its recorded digest. When all match, the steps are reported
cached and nothing else happens (nothing to run, nothing recorded). Anything else,
including any problem, returns False and the full command runs and reports it.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path


def _file_and_json(args: Sequence[str]) -> tuple[str, bool] | None:
    file, as_json, rest = "shipyard.yaml", False, list(args)
    while rest:
        arg = rest.pop(0)
        if arg == "--json":
            as_json = True
        elif arg in ("--file", "-f", "--jobs", "-j") and rest:
            value = rest.pop(0)
            if arg in ("--file", "-f"):
                file = value
        elif arg.startswith("--file="):
            file = arg.split("=", 1)[1]
        elif arg.startswith("--jobs="):
            continue
        else:
            return None  # an option the full command handles
    return file, as_json


def pipeline_unchanged(args: Sequence[str]) -> bool:
    """True when ``args`` is a plain ``pipeline run`` or ``status`` and nothing changed
    (reported)."""
    if len(args) < 2 or args[0] != "pipeline" or args[1] not in ("run", "status"):
        return False
    parsed = _file_and_json(args[2:])
    if parsed is None:
        return False
    file, as_json = parsed
    from shipyard.core.config import load_settings
    from shipyard.core.errors import ShipyardError
    from shipyard.data.folders import HASH_CACHE_FILENAME, HashCache
    from shipyard.pipelines.cache import InputHasher
    from shipyard.pipelines.lockfile import unchanged
    from shipyard.pipelines.spec import check_inputs, load_spec

    try:
        settings = load_settings(os.environ, cwd=Path.cwd())
        spec = load_spec(file)
        check_inputs(spec)
        cache = (
            HashCache(Path(settings.cache_dir) / HASH_CACHE_FILENAME) if settings.cache_dir
            else None
        )  # fmt: skip
        steps = unchanged(spec, InputHasher(spec.root, hash_cache=cache))
    except (ShipyardError, OSError):
        return False  # the full command says what is wrong
    if steps is None:
        return False
    if args[1] == "status":
        if as_json:
            print(json.dumps([{"step": n, "will_run": False, "reason": "unchanged (cached)",
                               "key": None} for n in steps]))  # fmt: skip
        else:
            sys.stdout.write("".join(f"skip  {n}: unchanged (cached)\n" for n in steps))
        return True
    if as_json:
        print(json.dumps({"pipeline": spec.name, "run_id": None, "status": "finished",
                          "failed_step": None, "recorded": False,
                          "steps": [{"name": n, "status": "cached"} for n in steps]}))  # fmt: skip
    else:
        out = sys.stdout
        for name in steps:
            out.write(f"[{name}] cached\n")
        out.write(f"pipeline {spec.name} finished: all {len(steps)} step(s) cached, nothing "
                  "changed since the last run (not recorded)\n")  # fmt: skip
    return True
