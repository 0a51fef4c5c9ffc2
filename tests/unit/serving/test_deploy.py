"""Deployment files: a Dockerfile that runs as non-root, pinned requirements, and Kubernetes
manifests whose probes, ports, names and autoscaler agree with each other."""

from __future__ import annotations

import dataclasses
import doctest
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from shipyard.core.entities import ModelVersion
from shipyard.core.errors import AlreadyExistsError, InvalidInputError, InvalidStateError
from shipyard.registry.model_folder import ModelMeta
from shipyard.serving.deploy import dns_label, write_manifests

VERSION = ModelVersion(
    name="churn", version=3, run_id=None, artifact_path="model", flavor="sklearn",
    meta_digest="0" * 64, created_at=0, aliases=("production", "staging"),
)  # fmt: skip
META = ModelMeta(
    format_version=1, flavor="sklearn", files={}, options={}, signature=None,
    requirements=("scikit-learn==1.9.1", "numpy==2.3.4", "scipy==1.16.2"),
    python_version="3.11.7", task="classification", classes=(0, 1), created_at=0,
)  # fmt: skip


def _write(out: Path, version: ModelVersion = VERSION, **options: Any) -> list[Path]:
    return write_manifests(version, META, out, shipyard_version="0.1.0", **options)


def _load(path: Path) -> dict[str, Any]:
    documents = list(yaml.safe_load_all(path.read_text()))
    assert len(documents) == 1
    document: dict[str, Any] = documents[0]
    return document


def _instruction(dockerfile: str, keyword: str) -> list[str]:
    return [line.split(" ", 1)[1] for line in dockerfile.splitlines()
            if line.startswith(keyword + " ")]  # fmt: skip


def test_the_files_written(tmp_path: Path) -> None:
    paths = _write(tmp_path / "deploy")
    names = [p.relative_to(tmp_path / "deploy").as_posix() for p in paths]
    assert names == ["Dockerfile", "requirements.txt", "k8s/deployment.yaml", "k8s/service.yaml",
                     "k8s/hpa.yaml", "grafana/shipyard-monitoring.json"]  # fmt: skip
    assert all(p.is_file() for p in paths)
    leftovers = [p for p in (tmp_path / "deploy").rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []


def test_probes_ports_and_names_agree(tmp_path: Path) -> None:
    _write(tmp_path, port=9000, replicas=3, cpu="250m", memory="512Mi")
    deployment = _load(tmp_path / "k8s" / "deployment.yaml")
    service = _load(tmp_path / "k8s" / "service.yaml")
    hpa = _load(tmp_path / "k8s" / "hpa.yaml")

    assert (deployment["apiVersion"], deployment["kind"]) == ("apps/v1", "Deployment")
    assert deployment["metadata"]["name"] == "churn-production"
    pod = deployment["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    assert [p["containerPort"] for p in container["ports"]] == [9000]
    assert container["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": 9000}
    assert container["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": 9000}
    assert container["resources"] == {"requests": {"cpu": "250m", "memory": "512Mi"},
                                      "limits": {"cpu": "250m", "memory": "512Mi"}}  # fmt: skip
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod["metadata"]["labels"].items()

    assert (service["kind"], service["spec"]["type"]) == ("Service", "ClusterIP")
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": 9000, "protocol": "TCP"}
    ]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()

    assert (hpa["apiVersion"], hpa["kind"]) == ("autoscaling/v2", "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1", "kind": "Deployment", "name": "churn-production"
    }  # fmt: skip
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 15)
    assert deployment["spec"]["replicas"] == 3
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"] == {
        "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}
    }  # fmt: skip


def test_the_yaml_is_plain(tmp_path: Path) -> None:
    _write(tmp_path)
    for name in ("deployment", "service", "hpa"):
        text = (tmp_path / "k8s" / f"{name}.yaml").read_text()
        assert "&id" not in text and "*id" not in text, "no anchors: every tool reads it"
        assert text.startswith("# churn@production (registered as churn@3)")


def test_the_pod_runs_as_non_root_with_the_store_from_a_secret(tmp_path: Path) -> None:
    _write(tmp_path)
    deployment = _load(tmp_path / "k8s" / "deployment.yaml")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert container["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]}
    assert env["SHIPYARD_DB_URL"] == {"name": "churn-shipyard", "key": "SHIPYARD_DB_URL",
                                      "optional": False}  # fmt: skip
    assert env["SHIPYARD_ARTIFACT_URI"]["name"] == "churn-shipyard"
    assert container["image"] == "churn-production:3"


def test_the_dockerfile(tmp_path: Path) -> None:
    _write(tmp_path, port=8081)
    dockerfile = (tmp_path / "Dockerfile").read_text()
    assert _instruction(dockerfile, "FROM") == ["python:3.11-slim"]
    assert _instruction(dockerfile, "USER") == ["10001"]
    assert _instruction(dockerfile, "EXPOSE") == ["8081"]
    assert "useradd --uid 10001" in dockerfile
    assert "pip install --no-cache-dir -r" in dockerfile
    assert "curl" not in dockerfile
    (health,) = [line for line in dockerfile.splitlines() if line.strip().startswith('CMD ["py')]
    assert "http://127.0.0.1:8081/v2/health/live" in json.loads(health.strip()[4:])[2]
    (cmd,) = _instruction(dockerfile, "CMD")
    assert json.loads(cmd) == ["shipyard", "serve", "churn@production", "--host", "0.0.0.0",
                               "--port", "8081"]  # fmt: skip
    for variable in ("SHIPYARD_DB_URL", "SHIPYARD_ARTIFACT_URI"):
        assert f"#   {variable}" in dockerfile, "documented, not set"
        assert f"ENV {variable}" not in dockerfile


def test_requirements_are_pinned(tmp_path: Path) -> None:
    _write(tmp_path)
    lines = (tmp_path / "requirements.txt").read_text().splitlines()
    assert lines == ["shipyard==0.1.0", *META.requirements]
    assert all("==" in line for line in lines)

    _write(tmp_path / "extras", extras=("s3", "postgres"))
    first = (tmp_path / "extras" / "requirements.txt").read_text().splitlines()[0]
    assert first == "shipyard[postgres,s3]==0.1.0"

    loose = dataclasses.replace(META, requirements=("scikit-learn>=1.4",))
    with pytest.raises(InvalidInputError, match=r"'scikit-learn>=1\.4' is not pinned"):
        write_manifests(VERSION, loose, tmp_path / "loose", shipyard_version="0.1.0")
    assert not (tmp_path / "loose").exists()


def test_existing_files_are_kept_unless_overwrite(tmp_path: Path) -> None:
    _write(tmp_path)
    before = (tmp_path / "Dockerfile").read_text()
    with pytest.raises(AlreadyExistsError, match="overwrite"):
        _write(tmp_path, port=9000)
    assert (tmp_path / "Dockerfile").read_text() == before

    _write(tmp_path, port=9000, overwrite=True)
    assert "EXPOSE 9000" in (tmp_path / "Dockerfile").read_text()


def test_which_ref_is_served(tmp_path: Path) -> None:
    _write(tmp_path / "a", alias="staging")
    assert _load(tmp_path / "a" / "k8s" / "service.yaml")["metadata"]["name"] == "churn-staging"
    bare = dataclasses.replace(VERSION, aliases=())
    _write(tmp_path / "b", bare)
    assert _load(tmp_path / "b" / "k8s" / "hpa.yaml")["metadata"]["name"] == "churn-v3"
    assert '"churn@3"' in (tmp_path / "b" / "Dockerfile").read_text()
    with pytest.raises(InvalidInputError, match="does not hold alias 'canary'"):
        _write(tmp_path / "c", alias="canary")


def test_names_are_sanitised(tmp_path: Path) -> None:
    assert dns_label("Churn_Model.V2") == "churn-model-v2"
    assert dns_label("--a  b--") == "a-b"
    assert dns_label("3d-scan") == "model-3d-scan"
    assert dns_label("x" * 100) == "x" * 63
    with pytest.raises(InvalidInputError, match="cannot be made a Kubernetes name"):
        dns_label("__")

    odd = dataclasses.replace(VERSION, name="Fraud_Detector." + "x" * 80, aliases=("champion_a",))
    _write(tmp_path, odd)
    name = _load(tmp_path / "k8s" / "deployment.yaml")["metadata"]["name"]
    assert len(name) <= 63 and name.startswith("fraud-detector-xxx")
    assert name.endswith("-champion-a"), "the alias survives the cut"
    assert '"Fraud_Detector.' in (tmp_path / "Dockerfile").read_text(), "serve uses the real name"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"port": 80}, "port must be a whole number from 1024"),
        ({"replicas": 0}, "replicas must be"),
        ({"cpu": "half"}, "cpu must be"),
        ({"memory": "1 GB"}, "memory must be"),
        ({"image": "my image"}, "image must be"),
    ],
)
def test_bad_options_are_refused(tmp_path: Path, options: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        _write(tmp_path, **options)
    assert list(tmp_path.iterdir()) == []


def test_an_archived_version_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidStateError, match="archived"):
        _write(tmp_path, dataclasses.replace(VERSION, status="archived"))


def test_the_documented_examples_run() -> None:
    from shipyard.serving import deploy

    result = doctest.testmod(deploy, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 1 and result.failed == 0


def test_the_grafana_dashboard_charts_only_metrics_the_server_exports(tmp_path: Path) -> None:
    import json
    import re

    from shipyard.serving.dashboard import dashboard_json

    _write(tmp_path)
    written = (tmp_path / "grafana" / "shipyard-monitoring.json").read_text()
    repo_copy = Path(__file__).parents[3] / "deploy" / "grafana" / "shipyard-monitoring.json"
    assert written == dashboard_json() == repo_copy.read_text()  # the repo's copy is current
    dashboard = json.loads(written)
    assert dashboard["uid"] == "shipyard-monitoring"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)) >= 10
    source = (Path(__file__).parents[3] / "src/shipyard/serving/metrics.py").read_text()
    exported = set(re.findall(r'"(shipyard_[a-z_]+)"', source))
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            for name in re.findall(r"shipyard_[a-z_]+", target["expr"]):
                base = re.sub(r"_(total|bucket|count|sum)$", "", name)
                assert base in exported, f"panel {panel['title']!r} charts unknown {name}"
