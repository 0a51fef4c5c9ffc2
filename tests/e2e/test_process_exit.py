"""What a script leaves behind when it exits without ending its run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def _run_script(tmp_path: Path, body: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env["SHIPYARD_HOME"] = str(tmp_path / "store")
    return subprocess.run(
        [sys.executable, "-c", body],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _only_run(tmp_path: Path) -> object:
    from shipyard import client
    from shipyard.core.config import load_settings

    client.configure(load_settings({"SHIPYARD_HOME": str(tmp_path / "store")}, cwd=tmp_path))
    runs = client.search_runs(output_format="list")
    assert len(runs) == 1
    return runs[0]


@pytest.mark.parametrize(
    ("tail", "status", "exit_ok"),
    [("pass", "FINISHED", True), ("raise ValueError('diverged')", "FAILED", False)],
)
def test_open_run_is_ended_and_points_flushed_at_exit(
    tmp_path: Path, tail: str, status: str, exit_ok: bool
) -> None:
    script = (
        "import shipyard as sy\n"
        "sy.start_run(name='script')\n"
        "for i in range(5000):\n"
        "    sy.log_metric('loss', 1.0 / (i + 1))\n"
        f"{tail}\n"
    )
    result = _run_script(tmp_path, script)
    assert (result.returncode == 0) is exit_ok, result.stderr
    run = _only_run(tmp_path)
    import shipyard as sy

    assert str(run.status) == status  # type: ignore[attr-defined]
    assert len(sy.get_metric_history(run.run_id, "loss")) == 5000  # type: ignore[attr-defined]
