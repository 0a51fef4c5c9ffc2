"""Export a pipeline as an Airflow DAG file: one BashOperator task per step.

Each task runs ``shipyard pipeline run --file SPEC --step NAME``, so caching, lineage and
records stay shipyard's; Airflow only orders, schedules and retries the steps. The file
imports with Airflow 2 (2.4 or later) and Airflow 3.
"""

from __future__ import annotations

import re
import shlex
from datetime import UTC, datetime

from shipyard.core.errors import InvalidInputError
from shipyard.pipelines.spec import PipelineSpec

__all__ = ["airflow_dag"]

_START = datetime(2024, 1, 1, tzinfo=UTC)
_DAG_ID = re.compile(r"[A-Za-z0-9_.-]+")
_DAG_ID_MAX = 250
_JINJA = ("{{", "{%", "{#")  # BashOperator renders its command as a Jinja template


def _dag_id(spec: PipelineSpec, dag_id: str | None) -> str:
    if dag_id is None:
        return re.sub(r"[^A-Za-z0-9_.-]", "_", f"shipyard_{spec.name}")[:_DAG_ID_MAX]
    if not _DAG_ID.fullmatch(dag_id) or len(dag_id) > _DAG_ID_MAX:
        raise InvalidInputError(
            f"dag_id {dag_id!r} may hold only letters, digits, '_', '-' and '.' (at most "
            f"{_DAG_ID_MAX}); pick another or leave it out for 'shipyard_{spec.name}'",
            details={"dag_id": dag_id},
        )
    return dag_id


def _command(shipyard: str, spec_path: str, step: str) -> str:
    try:
        prefix = shlex.split(shipyard)
    except ValueError as exc:
        raise InvalidInputError(
            f"shipyard command {shipyard!r} does not parse as a shell command ({exc}); "
            "give the path of the `shipyard` executable, e.g. '/opt/venv/bin/shipyard'",
            details={"shipyard": shipyard},
        ) from None
    if not prefix:
        raise InvalidInputError(
            "the shipyard command is empty; give the `shipyard` executable (the default) "
            "or its path",
            details={"shipyard": shipyard},
        )
    if any(mark in word for word in (*prefix, spec_path) for mark in _JINJA):
        raise InvalidInputError(
            f"the spec path {spec_path!r} or shipyard command {shipyard!r} holds a Jinja "
            f"mark ({', '.join(_JINJA)}), which Airflow would expand in the task's command; "
            "move the spec to a path without one",
            details={"spec_path": spec_path, "shipyard": shipyard},
        )
    # Airflow retries the task (its UI shows each try), so shipyard does not retry inside it
    words = [*prefix, "pipeline", "run", "--file", spec_path, "--step", step, "--no-retries"]
    return " ".join(shlex.quote(word) for word in words)


def airflow_dag(
    spec: PipelineSpec,
    *,
    spec_path: str,
    shipyard: str = "shipyard",
    schedule: str | None = None,
    dag_id: str | None = None,
) -> str:
    """The Python source of an Airflow DAG file that runs ``spec`` one step per task.

    Tasks are named after the steps and wired from :meth:`PipelineSpec.upstream`; each
    takes its step's ``retries`` and ``retry_backoff_s`` (as ``retry_delay``). The DAG
    starts on 2024-01-01 UTC with ``catchup=False``, so it never backfills.

    Args:
        spec: the pipeline.
        spec_path: the spec file as the Airflow workers see it (best absolute).
        shipyard: the command that runs shipyard on the workers, e.g.
            ``/opt/venv/bin/shipyard`` or ``python -m shipyard``; split like a shell would.
        schedule: an Airflow schedule (cron ``"0 3 * * *"`` or a preset like ``"@daily"``);
            None runs the DAG only when triggered.
        dag_id: the DAG's id; by default ``shipyard_<pipeline>`` with characters Airflow
            does not accept replaced by ``_``.

    Returns:
        The file's source; write it into Airflow's ``dags/`` folder.

    Raises:
        InvalidInputError: ``dag_id`` or ``shipyard`` is not usable, or ``spec_path``
            holds a Jinja mark (``{{``) that Airflow would expand.

    Example::

        Path("dags/churn.py").write_text(
            airflow_dag(load_spec(), spec_path="/srv/churn/shipyard.yaml")
        )
    """
    name = _dag_id(spec, dag_id)
    description = spec.description or f"The shipyard pipeline {spec.name!r}."
    lines = [
        f'"""Airflow DAG of the shipyard pipeline {spec.name!r}, one task per step.',
        "",
        "Written by `shipyard pipeline export airflow`; export again after changing the spec.",
        "Each task runs `shipyard pipeline run --file SPEC --step NAME`.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "import datetime",
        "",
        "try:  # Airflow 3",
        "    from airflow.sdk import DAG",
        "except ImportError:  # Airflow 2",
        "    from airflow import DAG",
        "try:  # Airflow 3, or Airflow 2 with the standard provider",
        "    from airflow.providers.standard.operators.bash import BashOperator",
        "except ImportError:  # Airflow 2",
        "    from airflow.operators.bash import BashOperator",
        "",
        "with DAG(",
        f"    dag_id={name!r},",
        f"    description={description!r},",
        f"    schedule={schedule!r},",
        f"    start_date=datetime.datetime({_START.year}, {_START.month}, {_START.day}, "
        "tzinfo=datetime.timezone.utc),",
        "    catchup=False,",
        '    tags=["shipyard"],',
        ") as dag:",
        "    tasks = {}",
    ]
    order = spec.order()
    for step_name in order:
        step = spec.steps[step_name]
        command = _command(shipyard, spec_path, step_name)
        lines += [
            f"    tasks[{step_name!r}] = BashOperator(",
            f"        task_id={step_name!r},",
            f"        bash_command={command!r},",
            f"        retries={step.retries},",
            f"        retry_delay=datetime.timedelta(seconds={step.retry_backoff_s!r}),",
        ]
        if step.description:
            lines.append(f"        doc_md={step.description!r},")
        lines.append("    )")
    edges = [(up, step_name) for step_name in order for up in spec.upstream(step_name)]
    if edges:
        lines.append("")
    lines += [f"    tasks[{up!r}] >> tasks[{down!r}]" for up, down in edges]
    return "\n".join(lines) + "\n"
