"""What both benchmark workers share (standard library only: it also runs in MLflow's venv).

The workload data (W4's runs, the metric values), the result protocol (``@@RESULT
{json}`` as the last stdout line) and the W3 start barrier live here, so the
shipyard and MLflow sides are fed and timed identically.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FILTER = "metrics.f1 > 0.5 and params.model = 'rf'"
ORDER = "metrics.f1 DESC"
RESULT = "@@RESULT "


def emit(tag: str, payload: Any) -> None:
    print(f"@@{tag} {json.dumps(payload)}", flush=True)


def value(i: int) -> float:
    """The value of point ``i`` of every metric series."""
    return 1.0 / (i + 1)


def w4_run(i: int) -> tuple[dict[str, Any], dict[str, float], dict[str, str]]:
    """Params (3), metrics (3) and tags (1-2) of run ``i`` of W4."""
    rng = random.Random(i)
    params = {
        "model": ("rf", "gbm", "lr")[i % 3],
        "max_depth": rng.randint(2, 12),
        "learning_rate": round(rng.uniform(0.01, 0.3), 4),
    }
    metrics = {"f1": rng.random(), "accuracy": rng.random(), "loss": rng.random()}
    tags = {"team": ("vision", "tabular")[i % 2]}
    if i % 2 == 0:
        tags["stage"] = "dev"
    return params, metrics, tags


def parse_result(out: str) -> dict[str, Any]:
    """The payload of the last ``@@RESULT`` line of a worker's stdout."""
    for line in reversed(out.splitlines()):
        if line.startswith(RESULT):
            return dict(json.loads(line[len(RESULT) :]))
    raise RuntimeError(f"no {RESULT.strip()} line in the worker's output:\n{out[-2000:]}")


def run_concurrently(args: argparse.Namespace, worker: str) -> list[dict[str, Any]]:
    """Start ``--procs`` ``w3-child`` processes of ``worker``; release them together.

    Each child sets up its run, prints ``@@READY``, and starts its clock when it
    reads ``GO`` on stdin; the results are the children's ``@@RESULT`` payloads.
    """
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                worker,
                "w3-child",
                "--dir",
                str(args.dir),
                "--points",
                str(args.points),
                "--index",
                str(i),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(args.procs)
    ]
    for p in procs:
        assert p.stdout is not None
        while True:
            line = p.stdout.readline()
            if not line:
                raise RuntimeError(f"a w3 child exited before it was ready (rc={p.wait()})")
            if line.startswith("@@READY"):
                break
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("GO\n")
        p.stdin.flush()
    results = []
    for p in procs:
        out, _ = p.communicate()
        if p.returncode != 0:
            raise RuntimeError(f"a w3 child failed (rc={p.returncode})")
        results.append(parse_result(out))
    return results


def w3_summary(children: list[dict[str, Any]], stored: int, points: int) -> dict[str, Any]:
    return {
        "points": points,
        "seconds": max(c["t1"] for c in children) - min(c["t0"] for c in children),
        "stored": stored,
        "lost": points - stored,
        "errors": sum(c["errors"] for c in children),
    }


def time_searches(
    args: argparse.Namespace, filtered: Callable[[], Any], everything: Callable[[], Any]
) -> dict[str, Any]:
    """Warm up once, then time each search ``--repeat`` times, alternating the two."""
    t0 = time.perf_counter()
    first = filtered()
    first_s = time.perf_counter() - t0
    everything()
    a: list[float] = []
    b: list[float] = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        df_a = filtered()
        a.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        df_b = everything()
        b.append(time.perf_counter() - t0)
    return {
        "filtered_s": statistics.median(a),
        "all_s": statistics.median(b),
        "filtered_samples": a,
        "all_samples": b,
        "first_filtered_s": first_s,
        "filtered_rows": len(df_a),
        "all_rows": len(df_b),
        "top_f1": round(float(first["metrics.f1"].iloc[0]), 9),
    }


def parse_args(workloads: list[str], doc: str | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=doc)
    parser.add_argument("workload", choices=workloads)
    parser.add_argument("--dir", type=Path, required=True, help="fresh folder for the store")
    parser.add_argument("--points", type=int, default=1000, help="points (per process in w3)")
    parser.add_argument("--chunk", type=int, default=1000, help="points per log_batch call")
    parser.add_argument("--procs", type=int, default=4, help="concurrent processes (w3)")
    parser.add_argument("--index", type=int, default=0, help="child number (w3-child)")
    parser.add_argument("--runs", type=int, default=5000, help="runs to create (w4-setup)")
    parser.add_argument("--repeat", type=int, default=5, help="timed searches (w4-search)")
    return parser.parse_args()


def replace_section(doc: Path, begin: str, end: str, section: str) -> None:
    """Put ``section`` (which starts with ``begin`` and ends with ``end``) into ``doc``:
    in place of the old one between the markers, or appended; a new file gets a title."""
    if doc.exists():
        text = doc.read_text()
        if begin in text and end in text:
            head, rest = text.split(begin, 1)
            tail = rest.split(end, 1)[1].lstrip("\n")
            text = head + section + ("\n" + tail if tail else "")
        else:
            text = text.rstrip("\n") + "\n\n" + section
    else:
        text = (
            "# Benchmarks\n\nHot paths measured against the tool a user would otherwise pick, "
            "side by side in one run on one machine (see `benchmarks/`).\n\n" + section
        )
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text)


@dataclass(frozen=True)
class Target:
    """One benchmark target: what it says, what was measured, and whether it was met."""

    label: str
    measured: str
    met: bool | None  # None: could not be judged


def verdict(met: bool | None) -> str:
    """A target's cell in the Markdown tables."""
    return {True: "yes", False: "**no**", None: "n/a"}[met]
