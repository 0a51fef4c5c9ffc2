"""``shipyard pipeline reproduce RUN_ID``: rerun a recorded pipeline run and compare.

The run's params (as recorded) replace the spec's, and every built-in step reads the
dataset version it read then (``customers@latest`` becomes ``customers@3``). Every step
is forced to run; each output's digest is then compared with the digest the recorded
step wrote, so the report says, output by output, whether the rerun is byte-identical.
Declared file inputs are compared too: a changed input explains a changed output. Steps
that read a params file themselves (``params: params.yaml``) get the recorded values in
it for the rerun; the file is put back afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from shipyard.core.errors import InvalidInputError
from shipyard.pipelines.runner import PipelineContext, run_pipeline
from shipyard.pipelines.spec import PipelineSpec, load_spec


@dataclass(frozen=True)
class OutputCheck:
    step: str
    path: str
    recorded: str | None
    now: str | None

    @property
    def same(self) -> bool:
        return self.recorded is not None and self.recorded == self.now


@dataclass(frozen=True)
class ReproduceReport:
    """What a reproduction found."""

    run_id: str
    new_run_id: str | None
    status: str
    outputs: tuple[OutputCheck, ...]
    changed_inputs: tuple[str, ...] = ()
    pinned: dict[str, str] = field(default_factory=dict)

    @property
    def identical(self) -> bool:
        return self.status == "finished" and all(o.same for o in self.outputs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "new_run_id": self.new_run_id, "status": self.status,
            "identical": self.identical, "changed_inputs": list(self.changed_inputs),
            "pinned": dict(self.pinned),
            "outputs": [{"step": o.step, "path": o.path, "recorded": o.recorded, "now": o.now,
                         "same": o.same} for o in self.outputs],
        }  # fmt: skip

    def lines(self) -> list[str]:
        head = (f"reproduced {self.run_id[:12]} as {str(self.new_run_id)[:12]}: "
                f"{'identical' if self.identical else 'DIFFERENT'}")  # fmt: skip
        out = [head]
        out += [f"  input changed since: {p}" for p in self.changed_inputs]
        out += [f"  dataset pinned: {k} -> {v}" for k, v in self.pinned.items()]
        out += [f"  {'same' if o.same else 'DIFF'}  {o.step}: {o.path}" for o in self.outputs]
        return out


def _recorded_params(params: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, text in params.items():
        try:
            out[key] = json.loads(text)
        except ValueError:
            out[key] = text
    return out


def _params_files(spec: PipelineSpec) -> list[Path]:
    """The params files the spec reads (``params: FILE`` and ``params_file: FILE``)."""
    import yaml

    if spec.path is None:
        return []
    raw = yaml.safe_load(Path(spec.path).read_text(encoding="utf-8")) or {}
    files = [raw.get("params"), raw.get("params_file")]
    return [spec.root / f for f in files if isinstance(f, str) and (spec.root / f).is_file()]


@contextlib.contextmanager
def _params_files_as(spec: PipelineSpec, params: Mapping[str, Any]) -> Iterator[None]:
    """Write the recorded values into the params files for the rerun; put them back after."""
    import yaml

    saved: dict[Path, bytes] = {}
    try:
        for path in _params_files(spec):
            saved[path] = path.read_bytes()
            current = yaml.safe_load(saved[path]) or {}
            recorded = {k: params[k] for k in current if k in params}
            tmp = path.with_name(f".{path.name}.reproduce")
            tmp.write_text(yaml.safe_dump({**current, **recorded}, sort_keys=False))
            os.replace(tmp, path)
        yield
    finally:
        for path, body in saved.items():
            path.write_bytes(body)


def reproduce_run(
    run_id: str,
    ctx: PipelineContext,
    *,
    spec_path: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> ReproduceReport:
    """Rerun pipeline run ``run_id`` with its recorded params and dataset versions.

    Raises:
        InvalidInputError: the run is not a pipeline run, or the spec is another pipeline.
    """
    recorded = ctx.runs.get_run(run_id)
    name = recorded.tags.get("sy.pipeline")
    if recorded.tags.get("sy.kind") != "pipeline" or not name:
        raise InvalidInputError(
            f"run {run_id} is not a pipeline run; `shipyard pipeline history` lists them"
        )
    path = Path(spec_path) if spec_path else Path(recorded.tags.get("sy.spec") or "shipyard.yaml")
    spec = load_spec(path)
    if spec.name != name:
        raise InvalidInputError(
            f"run {run_id} is of pipeline {name!r} but {path} defines {spec.name!r}; pass --file"
        )
    children = [
        r for r in ctx.runs.search_runs(
            experiment_ids=[recorded.experiment_id],
            filter_string="tags.\"sy.kind\" = 'pipeline-step'", max_results=None,
        ).runs if r.parent_run_id == run_id
    ]  # fmt: skip
    pinned: dict[str, str] = {}
    steps = dict(spec.steps)
    recorded_outputs: dict[str, dict[str, str]] = {}
    changed: list[str] = []
    for child in children:
        step = steps.get(child.name)
        if step is None:
            continue
        for key, value in child.params.items():
            if key.startswith("input:dataset:") and step.dataset:
                pinned[step.dataset] = key[len("input:dataset:") :]
                steps[child.name] = replace(step, dataset=pinned[step.dataset])
            elif key.startswith("input:"):
                dep = key[len("input:") :]
                if (spec.root / dep).exists():
                    from shipyard.pipelines.cache import InputHasher

                    if InputHasher(spec.root).digest(dep).digest != value:
                        changed.append(dep)
        entry = ctx.cache.cache_get(child.tags.get("sy.key", ""))
        if entry is not None:
            for item in entry.manifest.get("outputs", {}).get("outputs", []):
                recorded_outputs.setdefault(child.name, {})[item["path"]] = item["digest"]
    params = {**spec.params, **_recorded_params(dict(recorded.params))}
    pinned_spec: PipelineSpec = replace(spec, params=params, steps=steps)
    with _params_files_as(spec, params):  # steps read params files themselves, as with DVC
        result = run_pipeline(pinned_spec, ctx, force=list(spec.steps), progress=progress)
    checks = []
    from shipyard.pipelines.cache import InputHasher

    hasher = InputHasher(spec.root)
    for step_name, outputs in recorded_outputs.items():
        for out_path, digest in outputs.items():
            now = hasher.digest(out_path)
            checks.append(OutputCheck(step_name, out_path, digest,
                                      None if now.kind == "missing" else now.digest))  # fmt: skip
    return ReproduceReport(run_id, result.run_id, result.status, tuple(checks),
                           tuple(sorted(set(changed))), pinned)  # fmt: skip
