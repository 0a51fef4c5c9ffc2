"""Deployment files for a registered model: a Dockerfile, its requirements and Kubernetes
manifests (Deployment, Service, HorizontalPodAutoscaler).

The image runs ``shipyard serve <name>@<alias>`` as a non-root user (uid 10001); the
server follows the alias, so promoting another version needs no new image as long as
its requirements match. Where the store is (``SHIPYARD_DB_URL``,
``SHIPYARD_ARTIFACT_URI``) is never baked into the image: the Deployment reads it from
the Secret ``<name>-shipyard``::

    kubectl create secret generic churn-shipyard \\
        --from-literal=SHIPYARD_DB_URL=postgresql+psycopg://... \\
        --from-literal=SHIPYARD_ARTIFACT_URI=s3://bucket/shipyard

Kubernetes names are DNS labels (:func:`dns_label`). YAML is written with
``yaml.safe_dump``, every file atomically (temporary file, then rename).

Example:
    >>> registry = sy.model_registry()  # doctest: +SKIP
    >>> version = registry.get_version("churn@production")  # doctest: +SKIP
    >>> write_manifests(version, registry.model_meta(version), Path("deploy"),
    ...                 shipyard_version="0.1.0")  # doctest: +SKIP
    [PosixPath('deploy/Dockerfile'), PosixPath('deploy/requirements.txt'), ...]
"""

from __future__ import annotations

import json
import logging
import os
import re
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from shipyard.core.errors import AlreadyExistsError, InvalidInputError, InvalidStateError
from shipyard.serving.dashboard import dashboard_json

if TYPE_CHECKING:
    from shipyard.core.entities import ModelVersion
    from shipyard.registry.model_folder import ModelMeta

logger = logging.getLogger(__name__)

UID = 10001
DNS_LABEL_MAX = 63
PREFERRED_ALIAS = "production"
LIVE_PATH = "/v2/health/live"
READY_PATH = "/v2/health/ready"
SUFFIX_MAX = 30  # of a Kubernetes name, for the alias; the model name gets the rest
SERVICE_PORT = 80
CPU_TARGET = 70  # percent of the CPU request, for the autoscaler
MAX_REPLICAS_FACTOR = 5
SECRET_KEYS = ("SHIPYARD_DB_URL", "SHIPYARD_ARTIFACT_URI")
"""Environment variables the Deployment takes from the Secret (the first one required)."""

_CPU = re.compile(r"^(\d+m|\d+(\.\d+)?)$")
_MEMORY = re.compile(r"^\d+(\.\d+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[A-Za-z0-9._,-]*\])?==[^\s=;]+$")
_VERSION = re.compile(r"^[0-9][0-9A-Za-z.+!-]*$")
_EXTRA = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_PYTHON = re.compile(r"^(\d+)\.(\d+)(\.\d+)?")


def dns_label(text: str, *, max_length: int = DNS_LABEL_MAX) -> str:
    """``text`` as a Kubernetes name (an RFC 1035 DNS label).

    Lowercased; every run of characters other than ``a-z`` and ``0-9`` (dashes
    included) becomes one ``-``; dashes are trimmed from both ends; a leading digit
    gets ``model-`` in front (Service names must start with a letter); cut to
    ``max_length``.

    Raises:
        InvalidInputError: Nothing usable is left (``"___"``, ``"模型"``).

    Example:
        >>> dns_label("Churn_Model v2"), dns_label("3d-scan")
        ('churn-model-v2', 'model-3d-scan')
    """
    label = _clean(text)
    if not label:
        raise InvalidInputError(
            f"{text!r} cannot be made a Kubernetes name: it has no letters a-z or digits; "
            "register the model under a name that has some",
            details={"name": text},
        )
    if label[0].isdigit():
        label = f"model-{label}"
    return label[:max_length].rstrip("-")


def _clean(text: str) -> str:
    """Lowercased, each run of characters other than ``a-z0-9`` as one ``-``, no end dashes."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _pinned(requirements: Sequence[str], shipyard_pin: str) -> list[str]:
    """``shipyard==<version>`` first, then the model's pins; every line ``name==version``."""
    lines = [shipyard_pin]
    seen = {"shipyard": shipyard_pin}
    for line in requirements:
        match = _PIN.match(line.strip())
        if match is None:
            raise InvalidInputError(
                f"the model's requirement {line!r} is not pinned as 'package==version'; the "
                "image would not install what the model was saved with. Register the model "
                "again with a shipyard that pins its requirements",
                details={"requirement": line},
            )
        key = re.sub(r"[-_.]+", "-", match.group(1)).lower()
        if key == "shipyard":
            continue  # this shipyard serves it
        if key in seen:
            if seen[key] != line.strip():
                raise InvalidInputError(
                    f"the model's requirements pin {key} twice ({seen[key]!r} and {line!r})",
                    details={"requirement": line},
                )
            continue
        seen[key] = line.strip()
        lines.append(line.strip())
    return lines


def _served_ref(version: ModelVersion, alias: str | None) -> tuple[str, str]:
    """``(ref to serve, its name suffix)``: the alias given, else the one the version holds
    (production first), else the version number."""
    if alias is None and version.aliases:
        held = sorted(version.aliases)
        alias = PREFERRED_ALIAS if PREFERRED_ALIAS in held else held[0]
    if alias is None:
        return f"{version.name}@{version.version}", f"v{version.version}"
    if alias not in version.aliases:
        raise InvalidInputError(
            f"{version.ref} does not hold alias {alias!r} (it holds: "
            f"{', '.join(version.aliases) or 'none'}); promote it first, or leave alias unset",
            details={"alias": alias},
        )
    return f"{version.name}@{alias}", alias


def _check_options(
    *, port: int, replicas: int, cpu: str, memory: str, image: str | None, shipyard_version: str
) -> None:
    if isinstance(port, bool) or not isinstance(port, int) or not 1024 <= port <= 65535:
        raise InvalidInputError(
            f"port must be a whole number from 1024 to 65535, got {port!r} (the container runs "
            "as a non-root user, who cannot listen on lower ports; the Service maps port 80)"
        )
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 1:
        raise InvalidInputError(f"replicas must be a whole number >= 1, got {replicas!r}")
    if not isinstance(cpu, str) or not _CPU.match(cpu):
        raise InvalidInputError(
            f"cpu must be a Kubernetes CPU quantity like 500m or 2, got {cpu!r}"
        )
    if not isinstance(memory, str) or not _MEMORY.match(memory):
        raise InvalidInputError(
            f"memory must be a Kubernetes memory quantity like 512Mi or 1Gi, got {memory!r}"
        )
    if image is not None and (not image or any(ch.isspace() for ch in image)):
        raise InvalidInputError(
            f"image must be an image reference like registry.example.com/churn:3, got {image!r}"
        )
    if not isinstance(shipyard_version, str) or not _VERSION.match(shipyard_version):
        raise InvalidInputError(
            f"shipyard_version must be a version like 0.1.0, got {shipyard_version!r}"
        )


def _dockerfile(
    *, python: str, ref: str, version: ModelVersion, flavor: str, port: int, shipyard: str
) -> str:
    health = (
        "import urllib.request; "
        f"urllib.request.urlopen('http://127.0.0.1:{port}{LIVE_PATH}', timeout=4)"
    )
    cmd = ["shipyard", "serve", ref, "--host", "0.0.0.0", "--port", str(port)]
    lines = [
        f"# Serves {ref} (registered as {version.ref}, {flavor} flavor) with shipyard {shipyard}.",
        "# Written by shipyard; the requirements are those the model was saved with.",
        "#",
        "# The store is configured when the container runs, never baked into the image:",
        "#   SHIPYARD_DB_URL        the metadata database (e.g. postgresql+psycopg://...)",
        "#   SHIPYARD_ARTIFACT_URI  the object store holding the model files (e.g. s3://...)",
        "# The Kubernetes Deployment reads both from a Secret (see k8s/deployment.yaml).",
        "# The server follows the alias: a version promoted later is loaded by this image, so",
        "# rebuild it when that version's requirements differ.",
        f"FROM python:{python}-slim",
        "ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1",
        f"RUN useradd --uid {UID} --user-group --create-home --shell /usr/sbin/nologin shipyard",
        "WORKDIR /home/shipyard",
        "COPY requirements.txt /tmp/requirements.txt",
        "RUN pip install --no-cache-dir -r /tmp/requirements.txt && rm /tmp/requirements.txt",
        f"USER {UID}",
        f"EXPOSE {port}",
        "HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \\",
        f"    CMD {json.dumps(['python', '-c', health])}",
        f"CMD {json.dumps(cmd)}",
    ]
    return "\n".join(lines) + "\n"


def _deployment(
    name: str, labels: dict[str, str], *, image: str, port: int, replicas: int, cpu: str,
    memory: str, secret: str,
) -> dict[str, Any]:  # fmt: skip
    def probe(path: str, **timing: int) -> dict[str, Any]:
        return {"httpGet": {"path": path, "port": port}, **timing}

    env = [
        {"name": key, "valueFrom": {"secretKeyRef": {"name": secret, "key": key,
                                                     "optional": i > 0}}}
        for i, key in enumerate(SECRET_KEYS)
    ]  # fmt: skip
    resources = {"cpu": cpu, "memory": memory}
    container = {
        "name": "model-server",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
        "env": env,
        # model loading can take a while: liveness starts once the server answers
        "startupProbe": probe(LIVE_PATH, periodSeconds=5, failureThreshold=60),
        "readinessProbe": probe(READY_PATH, periodSeconds=10, failureThreshold=3),
        "livenessProbe": probe(LIVE_PATH, periodSeconds=20, failureThreshold=3, timeoutSeconds=5),
        "resources": {"requests": dict(resources), "limits": dict(resources)},
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": UID,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    selector = {"app.kubernetes.io/name": labels["app.kubernetes.io/name"]}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": UID,
                        "runAsGroup": UID,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                },
            },
        },
    }


def _service(name: str, labels: dict[str, str], *, port: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "type": "ClusterIP",
            "selector": {"app.kubernetes.io/name": labels["app.kubernetes.io/name"]},
            "ports": [
                {"name": "http", "port": SERVICE_PORT, "targetPort": port, "protocol": "TCP"}
            ],
        },
    }


def _autoscaler(name: str, labels: dict[str, str], *, replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": replicas,
            "maxReplicas": replicas * MAX_REPLICAS_FACTOR,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": CPU_TARGET},
                    },
                }
            ],
        },
    }


def _yaml(document: dict[str, Any], comment: str) -> str:
    plain = json.loads(json.dumps(document))  # no shared objects: no YAML anchors (&id001)
    body = yaml.safe_dump(plain, sort_keys=False, default_flow_style=False)
    return "".join(f"# {line}\n" for line in comment.splitlines()) + body


def write_manifests(
    version: ModelVersion,
    meta: ModelMeta,
    out_dir: str | os.PathLike[str],
    *,
    image: str | None = None,
    port: int = 8080,
    replicas: int = 2,
    cpu: str = "500m",
    memory: str = "1Gi",
    shipyard_version: str,
    alias: str | None = None,
    extras: Sequence[str] = (),
    overwrite: bool = False,
) -> list[Path]:
    """Write a Dockerfile, requirements.txt and Kubernetes manifests serving a model version.

    Args:
        version: The registered version (``registry.get_version(ref)``).
        meta: Its model metadata (``registry.model_meta(version)``): Python version and
            pinned requirements.
        out_dir: The folder to write into (created if missing); the manifests go to
            ``out_dir/k8s/``.
        image: The image the Deployment runs; default ``<name>:<version>``.
        port: The port the server listens on in the container (1024-65535).
        replicas: Replicas of the Deployment and the autoscaler's minimum (its maximum
            is 5 times that).
        cpu: CPU request and limit per replica (``500m``).
        memory: Memory request and limit per replica (``1Gi``).
        shipyard_version: The shipyard release the image installs (``shipyard.__version__``).
        alias: The alias to serve; default: the one the version holds (``production``
            first), else the version number itself.
        extras: shipyard extras to install with it (``("postgres", "s3")`` for a store on
            PostgreSQL and S3).
        overwrite: Replace files that exist; without it, nothing is written if any does.

    Returns:
        The files written: Dockerfile, requirements.txt, k8s/deployment.yaml,
        k8s/service.yaml, k8s/hpa.yaml.

    Raises:
        InvalidInputError: A bad option, a name that cannot become a Kubernetes name, an
            alias the version does not hold, or requirements that are not pinned.
        InvalidStateError: The version is archived.
        AlreadyExistsError: A file exists and ``overwrite`` is False (nothing written).
    """
    _check_options(port=port, replicas=replicas, cpu=cpu, memory=memory, image=image,
                   shipyard_version=shipyard_version)  # fmt: skip
    if version.status == "archived":
        raise InvalidStateError(
            f"{version.ref} is archived; make it active again (`shipyard models archive "
            f"{version.ref} --undo`) or deploy another version"
        )
    if isinstance(extras, str):
        extras = (extras,)
    bad_extras = [e for e in extras if not isinstance(e, str) or not _EXTRA.match(e)]
    if bad_extras:
        raise InvalidInputError(f"extras must be names like 'postgres', got {bad_extras!r}")
    python = _PYTHON.match(meta.python_version)
    if python is None:
        raise InvalidInputError(
            f"the model's metadata names Python {meta.python_version!r}, not a version like "
            "3.11.7; register the model again",
            details={"python_version": meta.python_version},
        )
    ref, suffix = _served_ref(version, alias)
    if not ref.isprintable():
        raise InvalidInputError(
            f"the model reference {ref!r} has control characters; it cannot go into a "
            "Dockerfile. Register the model under a plain name",
            details={"ref": ref},
        )
    suffix_label = _clean(suffix)[:SUFFIX_MAX].strip("-") or f"v{version.version}"
    base = dns_label(version.name, max_length=DNS_LABEL_MAX - len(suffix_label) - 1)
    name = f"{base}-{suffix_label}"
    secret = f"{dns_label(version.name, max_length=DNS_LABEL_MAX - len('-shipyard'))}-shipyard"
    image = image or f"{name}:{version.version}"
    labels = {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/component": "model-server",
        "app.kubernetes.io/part-of": "shipyard",
        "app.kubernetes.io/managed-by": "shipyard",
        "app.kubernetes.io/version": str(version.version),
    }
    pin = (
        f"shipyard[{','.join(sorted(set(extras)))}]=={shipyard_version}"
        if extras
        else f"shipyard=={shipyard_version}"
    )
    requirements = _pinned(meta.requirements, pin)
    about = f"{ref} (registered as {version.ref}), written by shipyard {shipyard_version}"
    deployment_note = (
        f"{about}\nThe store comes from the Secret {secret}; create it with:\n"
        f"  kubectl create secret generic {secret} \\\n"
        "    --from-literal=SHIPYARD_DB_URL=postgresql+psycopg://... \\\n"
        "    --from-literal=SHIPYARD_ARTIFACT_URI=s3://..."
    )
    out = Path(out_dir)
    files: dict[Path, str] = {
        out / "Dockerfile": _dockerfile(
            python=f"{python.group(1)}.{python.group(2)}", ref=ref, version=version,
            flavor=meta.flavor, port=port, shipyard=shipyard_version,
        ),
        out / "requirements.txt": "\n".join(requirements) + "\n",
        out / "k8s" / "deployment.yaml": _yaml(_deployment(
            name, labels, image=image, port=port, replicas=replicas, cpu=cpu, memory=memory,
            secret=secret,
        ), deployment_note),
        out / "k8s" / "service.yaml": _yaml(_service(name, labels, port=port), about),
        out / "k8s" / "hpa.yaml": _yaml(_autoscaler(name, labels, replicas=replicas), about),
        out / "grafana" / "shipyard-monitoring.json": dashboard_json(),
    }  # fmt: skip
    existing = [p for p in files if p.exists()]
    if existing and not overwrite:
        raise AlreadyExistsError(
            f"{', '.join(map(str, existing))} exist(s) already; nothing was written. Pass "
            "overwrite=True (--overwrite) to replace them, or choose another folder",
            details={"files": [str(p) for p in existing]},
        )
    _write_all(files)
    logger.info("wrote deployment files for %s to %s", version.ref, out)
    return list(files)


def _write_all(files: dict[Path, str]) -> None:
    """Write each file to a temporary file next to it, then rename them all into place."""
    temps: dict[Path, Path] = {}
    try:
        for path, content in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            temp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
            temps[path] = temp
            temp.write_text(content, encoding="utf-8")
        for path, temp in temps.items():
            os.replace(temp, path)
    finally:
        for temp in temps.values():
            temp.unlink(missing_ok=True)
