"""Integration fixtures: child processes started together, and an S3 server (moto) on 127.0.0.1."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

# Every child script starts with this: it reads the gate folder and its index from argv,
# and ``wait_for_go()`` says "ready" then blocks until the parent opens the gate.
CHILD_PRELUDE = """\
import os, sys, time
from pathlib import Path
GATE = Path(sys.argv[1])
INDEX = int(sys.argv[2])

def wait_for_go():
    (GATE / f"ready-{INDEX}").touch()
    while not (GATE / "go").exists():
        time.sleep(0.002)

"""


@dataclass
class ChildResult:
    index: int
    returncode: int
    stdout: str
    stderr: str


@dataclass
class Fleet:
    """Starts child Python processes that block on a go-file, then releases them together."""

    workdir: Path
    started: list[subprocess.Popen[str]] = field(default_factory=list)

    def env(self, db_url: str, home: Path, **extra: str) -> dict[str, str]:
        """The parent's environment without ``SHIPYARD_*``, plus the store's settings."""
        environ = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
        environ.update({"SHIPYARD_HOME": str(home), "SHIPYARD_DB_URL": db_url})
        environ.update(extra)
        return environ

    def launch(
        self, script: str, count: int, env: Mapping[str, str], *, ready_timeout: float = 60.0
    ) -> list[subprocess.Popen[str]]:
        """Start ``count`` children running ``script``; return once all are past the gate."""
        gate = self.workdir / f"gate-{uuid.uuid4().hex[:8]}"
        gate.mkdir(parents=True)
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", CHILD_PRELUDE + script, str(gate), str(i)],
                env=dict(env),
                cwd=self.workdir,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in range(count)
        ]
        self.started.extend(procs)
        deadline = time.monotonic() + ready_timeout
        while len(list(gate.glob("ready-*"))) < count:
            for i, proc in enumerate(procs):
                if proc.poll() is not None and not (gate / f"ready-{i}").exists():
                    _, err = proc.communicate()
                    pytest.fail(f"child {i} exited {proc.returncode} before the gate:\n{err}")
            if time.monotonic() > deadline:
                pytest.fail(f"children not ready after {ready_timeout}s")
            time.sleep(0.005)
        (gate / "go").touch()
        return procs

    def finish(
        self, procs: list[subprocess.Popen[str]], *, timeout: float = 120.0
    ) -> list[ChildResult]:
        results = []
        for i, proc in enumerate(procs):
            out, err = proc.communicate(timeout=timeout)
            results.append(ChildResult(i, proc.returncode, out, err))
        return results

    def kill_leftovers(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    """Factory for groups of child processes; any child still alive at the end is killed."""
    f = Fleet(tmp_path / "work")
    f.workdir.mkdir()
    yield f
    f.kill_leftovers()


# -- S3 (moto) ---------------------------------------------------------------------------


@dataclass(frozen=True)
class S3Bucket:
    name: str
    endpoint: str
    client: Any  # boto3 S3 client

    def uri(self, prefix: str) -> str:
        return f"s3://{self.name}/{prefix}"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server on 127.0.0.1 (free port), with fake credentials in the environment."""
    pytest.importorskip("s3fs")
    from moto.server import ThreadedMotoServer

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        mp.delenv("AWS_PROFILE", raising=False)
        mp.delenv("AWS_SESSION_TOKEN", raising=False)
        no_proxy = ",".join(
            p for p in (os.environ.get("NO_PROXY", ""), "127.0.0.1", "localhost") if p
        )
        mp.setenv("NO_PROXY", no_proxy)
        mp.setenv("no_proxy", no_proxy)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            host, port = server.get_host_and_port()
            yield f"http://{host}:{port}"
        finally:
            server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> Iterator[S3Bucket]:
    """A new, empty bucket on the moto server; fsspec's filesystem cache is cleared around it."""
    import boto3
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    name = f"shipyard-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    yield S3Bucket(name, s3_endpoint, client)
    s3fs.S3FileSystem.clear_instance_cache()


@pytest.fixture
def bucket_keys() -> Callable[[S3Bucket, str], list[str]]:
    """Every key under a prefix of a bucket, read with boto3 (not through fsspec's caches)."""

    def keys(bucket: S3Bucket, prefix: str) -> list[str]:
        pages = bucket.client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket.name, Prefix=prefix
        )
        return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))

    return keys
