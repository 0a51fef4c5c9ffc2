"""``shipyard serve`` as a user runs it: a real server on 127.0.0.1 under load while the
alias it serves moves, then SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

SETUP = """
import shipyard as sy
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

frame = load_breast_cancer(as_frame=True).frame
X, y = frame.drop(columns="target"), frame["target"]
for model in (make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)),
              RandomForestClassifier(n_estimators=10, random_state=0)):
    with sy.start_run() as run:
        model.fit(X, y)
        sy.log_model(model, "model", input_example=X.head(5), signature=X)
    sy.register_model(run.run_id, "cancer")
sy.promote_model("cancer", 1, "production")
X.head(40).to_json("rows.json", orient="records")
"""


def _env(cwd: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env.update({"COLUMNS": "200", "NO_COLOR": "1", "SHIPYARD_HOME": str(cwd / ".shipyard")})
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    subprocess.run([sys.executable, "-c", SETUP], cwd=tmp_path, env=_env(tmp_path), check=True,
                   timeout=180)  # fmt: skip
    return tmp_path


def _start(project: Path, port: int, *extra: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "shipyard.cli.main", "serve", "cancer@production",
           "--port", str(port), "--poll-interval", "0.3", *extra]  # fmt: skip
    log = (project / f"serve-{port}.log").open("w")  # a file: a full pipe would block the server
    proc = subprocess.Popen(cmd, cwd=project, env=_env(project), stdout=log, stderr=log,
                            text=True)  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v2/health/ready", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {(project / f'serve-{port}.log').read_text()}")
    proc.kill()
    raise AssertionError("server did not become ready in 60 s")


async def _load(port: int, records: list[Any], seconds: float, connections: int) -> list[Any]:
    results: list[Any] = []
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=connections)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits,
                                 timeout=30) as client:  # fmt: skip

        async def worker(i: int) -> None:
            while time.monotonic() < deadline:
                body = {"records": records[i % len(records) : i % len(records) + 2]}
                try:
                    r = await client.post("/predict", json=body)
                    results.append((time.monotonic(), r.status_code, r.json()))
                except httpx.HTTPError as exc:
                    results.append((time.monotonic(), 0, repr(exc)))

        await asyncio.gather(*(worker(i) for i in range(connections)))
    return results


LOAD_SECONDS = 60.0
SWAP_AFTER = 20.0


def test_alias_moves_under_load_without_a_failed_request_then_sigterm_flushes(
    project: Path,
) -> None:
    """A minute at 16 connections: no failed request, a swap in the middle, flat memory."""
    port = _free_port()
    proc = _start(project, port)
    records = json.loads((project / "rows.json").read_text())
    rss: list[tuple[float, float]] = []
    stop = threading.Event()

    def sample() -> None:
        started = time.monotonic()
        while not stop.wait(1.0):
            rss.append((time.monotonic() - started, _rss_mb(proc.pid)))

    try:
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()

        def promote() -> None:
            time.sleep(SWAP_AFTER)
            cmd = [sys.executable, "-m", "shipyard.cli.main", "models", "promote", "cancer", "2",
                   "--alias", "production"]  # fmt: skip
            subprocess.run(cmd, cwd=project, env=_env(project), check=True, capture_output=True,
                           timeout=60)  # fmt: skip

        mover = threading.Thread(target=promote)
        mover.start()
        results = asyncio.run(_load(port, records, LOAD_SECONDS, 16))
        mover.join()
        stop.set()
        failed = [r for r in results if r[1] != 200]
        assert not failed, failed[:3]
        versions = [body["model_version"] for _, _, body in sorted(results, key=lambda r: r[0])]
        assert versions[0] == 1 and versions[-1] == 2
        assert versions == sorted(versions)  # once swapped, never back
        assert len(results) > 1000
        # memory stays flat once warm: the new model loaded at the swap, nothing after
        settled = [mb for t, mb in rss if t >= SWAP_AFTER + 10]
        assert settled and max(settled) - min(settled) < 25, rss

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal
    finally:
        if proc.poll() is None:
            proc.kill()
    from shipyard.monitoring import read_predictions

    logged = read_predictions(project / ".shipyard", "cancer")
    assert set(logged["sy_request_id"]) == {body["request_id"] for _, _, body in results}
    assert set(logged["sy_version"]) == {1, 2}


def test_binding_beyond_loopback_requires_tokens(project: Path) -> None:
    from shipyard.serving.server import needs_auth

    assert needs_auth("0.0.0.0", None) and needs_auth("10.0.0.5", None)
    assert not needs_auth("127.0.0.1", None) and not needs_auth("0.0.0.0", False)
    port = _free_port()
    proc = _start(project, port, "--auth")
    try:
        body = {"records": json.loads((project / "rows.json").read_text())[:1]}
        assert httpx.post(f"http://127.0.0.1:{port}/predict", json=body).status_code == 401
        made = subprocess.run([sys.executable, "-m", "shipyard.cli.main", "tokens", "create",
                               "ci", "--role", "predict"], cwd=project, env=_env(project),
                              capture_output=True, text=True, check=True)  # fmt: skip
        token = made.stdout.strip()
        ok = httpx.post(f"http://127.0.0.1:{port}/predict", json=body,
                        headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        assert ok.status_code == 200, ok.text
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_two_workers_serve_the_same_model(project: Path) -> None:
    port = _free_port()
    proc = _start(project, port, "--workers", "2", "--fast", "--batch-max-size", "32")
    try:
        body = {"records": json.loads((project / "rows.json").read_text())[:3]}
        replies = [httpx.post(f"http://127.0.0.1:{port}/predict", json=body) for _ in range(20)]
        assert all(r.status_code == 200 for r in replies), replies[0].text
        assert {r.json()["model_version"] for r in replies} == {1}
        meta = httpx.get(f"http://127.0.0.1:{port}/v2/models/cancer").json()
        assert meta["platform"] == "shipyard-onnx"  # --fast reached every worker
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _self_signed(folder: Path) -> tuple[Path, Path]:
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ))  # fmt: skip
    return cert_file, key_file


def test_tls_and_no_cors_by_default(project: Path) -> None:
    cert, key = _self_signed(project)
    port = _free_port()
    cmd = [sys.executable, "-m", "shipyard.cli.main", "serve", "cancer@production", "--port",
           str(port), "--ssl-certfile", str(cert), "--ssl-keyfile", str(key)]  # fmt: skip
    log = (project / "tls.log").open("w")
    proc = subprocess.Popen(cmd, cwd=project, env=_env(project), stdout=log, stderr=log)
    import ssl

    trust = ssl.create_default_context(cafile=str(cert))
    try:
        url = f"https://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                ready = httpx.get(f"{url}/v2/health/ready", verify=trust, timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, (project / "tls.log").read_text()
                time.sleep(0.2)
        assert ready.status_code == 200
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/v2/health/ready", timeout=2)  # TLS only
        body = {"records": json.loads((project / "rows.json").read_text())[:1]}
        reply = httpx.post(f"{url}/predict", json=body, verify=trust,
                           headers={"Origin": "https://evil.example"})  # fmt: skip
        assert reply.status_code == 200
        assert "access-control-allow-origin" not in reply.headers
    finally:
        proc.terminate()
        proc.wait(timeout=30)
