"""``shipyard.lock``: each step's key, run and outputs after the last run, beside the spec.

Like ``dvc.lock``, it lets a rerun where nothing changed finish without opening the
metadata store: every step's key is recomputed from the files (through the stat cache)
and compared with the lock, and every output is checked against its recorded digest. If
all match, nothing runs and nothing is recorded; anything else takes the full path (the
store's cache, which the lock only mirrors). Commit it with the spec to share what was
run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shipyard.core.errors import InvalidInputError
from shipyard.pipelines.cache import (
    InputHasher,
    OutputManifest,
    code_fingerprint,
    step_key,
)
from shipyard.pipelines.spec import PipelineSpec, StepSpec, interpolate

LOCK_NAME = "shipyard.lock"
FORMAT = "shipyard.pipeline-lock"


def lock_path(spec: PipelineSpec) -> Path:
    return spec.root / LOCK_NAME


def write_lock(spec: PipelineSpec, steps: Mapping[str, Mapping[str, Any]]) -> None:
    """Write the lock (temp file and rename), steps in DAG order."""
    order = [n for n in spec.order() if n in steps]
    body = {"format": FORMAT, "version": 1, "pipeline": spec.name,
            "steps": {n: dict(steps[n]) for n in order}}  # fmt: skip
    path = lock_path(spec)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(body, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_lock(spec: PipelineSpec) -> dict[str, Any] | None:
    try:
        body = json.loads(lock_path(spec).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        return None
    if body.get("pipeline") != spec.name:
        return None
    steps = body.get("steps")
    return steps if isinstance(steps, dict) else None


def compute_key(
    spec: PipelineSpec,
    step: StepSpec,
    *,
    hasher: InputHasher,
    run_ids: Mapping[str, str],
    dataset: tuple[str, str] | None = None,
) -> tuple[str, dict[str, str]]:
    """A step's key and the input digests it is made of: its code (the interpolated
    command, a function's source, a built-in's name), its deps' digests, the dataset
    version it reads (``(ref, digest)``, resolved by the caller) and its params."""
    inputs = {dep: hasher.digest(dep).digest for dep in step.deps}
    if dataset is not None:
        inputs[f"dataset:{dataset[0]}"] = dataset[1]
    target = step.target
    if step.kind == "run":
        target = interpolate(step.target, params=spec.params, run_ids=run_ids, step=step.name)
    extra = {
        "options": dict(step.options), "register": step.register, "dataset": step.dataset,
        "env": dict(step.env), "outs": list(step.outs),
    }  # fmt: skip
    key = step_key(code=code_fingerprint(step.kind, target, root=spec.root), inputs=inputs,
                   params=spec.step_params(step.name), extra=extra)  # fmt: skip
    return key, inputs


def unchanged(spec: PipelineSpec, hasher: InputHasher) -> list[str] | None:
    """The steps, in order, when every one is unchanged with its outputs in place (nothing
    to run); None when anything differs or the lock cannot say (a built-in reads a dataset
    version, which only the store knows)."""
    steps = read_lock(spec)
    if steps is None:
        return None
    run_ids: dict[str, str] = {}
    order = spec.order()
    for name in order:
        step = spec.steps[name]
        entry = steps.get(name)
        if entry is None or step.kind == "uses":
            return None
        try:
            key, _inputs = compute_key(spec, step, hasher=hasher, run_ids=run_ids)
        except InvalidInputError:
            return None
        if key != entry.get("key"):
            return None
        try:
            manifest = OutputManifest.from_dict(entry["outputs"])
        except (KeyError, InvalidInputError, TypeError, ValueError):
            return None
        for out in manifest.outputs:  # cheap: one stat per file through the stat cache
            now = hasher.digest(out.path)
            if now.kind == "missing" or now.digest != out.digest:
                return None
        run_ids[name] = str(entry.get("run_id") or "")
    return order
