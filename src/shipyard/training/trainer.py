"""Cross-validated training, Optuna tuning and model selection, all tracked as runs.

:func:`train` checks everything that can fail first (data, target, task, model
families, metric), then for each model family cross-validates its default
parameters or, with ``tune=N``, runs an Optuna study of N trials (TPE sampler,
median pruning on the folds). Every candidate or trial is a nested run under one
training run; the best family's best parameters are refitted on the whole training
data, logged with the model, its input schema and an input example, and evaluated
once on the validation data if given.

Preprocessing is part of every pipeline (``training.models.build_pipeline``), so
each fold fits its imputers, scalers and encoders on its own training rows only.

Studies are stored next to shipyard's metadata: on PostgreSQL in the schema
``shipyard_optuna`` of the same database (Optuna keeps its own Alembic version table,
which cannot share a schema with shipyard's), with SQLite in the journal file
``optuna-journal.log`` beside the metadata file (see ``cv.optuna_storage``). A study
is named after the data, target, family, metric, folds and seed, so running the same
command again resumes it: only the trials still missing are run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shipyard.core.errors import InvalidInputError, ShipyardError
from shipyard.registry import ModelRegistry
from shipyard.training.cv import (
    available_cores,
    close_storage,
    cross_validate,
    cv_splits,
    optuna_storage,
)
from shipyard.training.data_input import TrainingData, load_frame, split_target

if TYPE_CHECKING:
    import numpy as np
    import optuna
    import pandas as pd

    from shipyard.tracking.tracker import Tracker
    from shipyard.training.evaluation import EvaluationReport
    from shipyard.training.metrics import Task

logger = logging.getLogger(__name__)

DEFAULT_MODELS = ("linear", "random_forest", "hist_gradient_boosting")


@dataclass(frozen=True)
class Candidate:
    """One model family's result: its best parameters and their cross-validated scores.

    ``scores`` maps each metric (scikit-learn scorer name) to (mean, std) over the folds.
    """

    family: str
    params: dict[str, Any]
    scores: dict[str, tuple[float, float]]
    fit_time_s: float
    run_id: str
    trials: int = 1
    pruned: int = 0


@dataclass(eq=False)
class TrainResult:
    """What :func:`train` produced.

    Attributes:
        task: ``binary``, ``multiclass`` or ``regression``.
        metric: the primary metric (scikit-learn scorer name; greater is better).
        candidates: one per model family, best first.
        model: the best family refitted on all training rows (a scikit-learn Pipeline).
        run_id: the training run (parent of every candidate and trial run).
        best_run_id: the run holding the refitted model.
        evaluation: the best model on the validation data, if some was given.
        warnings: what the guards noticed (also recorded on the runs).
    """

    task: str
    metric: str
    candidates: list[Candidate]
    model: Any
    run_id: str
    best_run_id: str
    evaluation: EvaluationReport | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def best(self) -> Candidate:
        return self.candidates[0]

    @property
    def leaderboard(self) -> pd.DataFrame:
        """One row per candidate, best first: CV mean and std of each metric, fit time."""
        return leaderboard_frame(self.candidates, self.metric)


def leaderboard_frame(candidates: Sequence[Candidate], metric: str) -> pd.DataFrame:
    """The leaderboard as a DataFrame (primary metric first)."""
    import pandas as pd

    rows = []
    for rank, c in enumerate(candidates, start=1):
        row: dict[str, Any] = {"rank": rank, "model": c.family}
        names = [metric, *sorted(k for k in c.scores if k != metric)]
        for name in names:
            if name in c.scores:
                row[f"{name}_mean"], row[f"{name}_std"] = c.scores[name]
        row.update(
            fit_time_s=c.fit_time_s,
            trials=c.trials,
            pruned=c.pruned,
            run_id=c.run_id,
            params=json.dumps(c.params, sort_keys=True, default=str),
        )
        rows.append(row)
    return pd.DataFrame(rows)


# -- training ------------------------------------------------------------------------------


@dataclass
class _Job:
    """Everything one training call needs, checked."""

    data: TrainingData
    target: str
    task: Task
    classes: list[Any] | None
    families: list[Any]
    metric: str
    metrics: list[str]
    splits: list[tuple[np.ndarray, np.ndarray]]
    folds: int
    seed: int
    tune: int
    timeout: float | None
    overrides: dict[str, Any]
    study_key: str
    n_jobs: int = 1
    scheduler: Any = None  # a Dask scheduler address or distributed.Client
    fold_jobs: int = 1  # processes for the folds of one trial (1 where trials run in parallel)


def _prepare(
    data: Any,
    target: str,
    *,
    task: str | None,
    models: Sequence[str],
    metric: str | None,
    cv: int,
    cv_strategy: str,
    group_column: str | None,
    time_column: str | None,
    seed: int,
    tune: int,
    timeout: float | None,
    search_space: Any,
    valid: Any = None,
) -> _Job:
    """Check every argument and load the data, before any model is fitted."""
    import numpy as np

    from shipyard.data._catalog import table_digest
    from shipyard.training.metrics import DEFAULT_METRIC, check_target, infer_task, scorer_names
    from shipyard.training.models import get_family, load_search_space_overrides

    if isinstance(models, str):
        models = [m.strip() for m in models.split(",") if m.strip()]
    if not models:
        raise InvalidInputError("models is empty; name at least one model family")
    families = [get_family(name) for name in models]
    if isinstance(tune, bool) or not isinstance(tune, int) or tune < 0:
        raise InvalidInputError(f"tune must be a whole number of trials >= 0, got {tune!r}")
    if timeout is not None and timeout <= 0:
        raise InvalidInputError(f"timeout must be a positive number of seconds, got {timeout!r}")
    frame, version, label = load_frame(data)
    if len(frame) == 0:
        raise InvalidInputError(f"{label} has no rows to train on")
    order = None
    if time_column is not None:
        if time_column not in frame.columns:
            raise InvalidInputError(f"time column {time_column!r} is not a column of {label}")
        order = frame[time_column]
    X, y, groups = split_target(
        frame, target, label=label, group_column=group_column,
        drop=(time_column,) if time_column else (),
    )  # fmt: skip
    td = TrainingData(X=X, y=y, groups=groups, version=version, label=label)
    chosen = task or infer_task(td.y)
    chosen = check_target(td.y, chosen)
    for family in families:
        if chosen not in family.tasks:
            raise InvalidInputError(
                f"model family {family.name!r} does not do {chosen}; it does "
                f"{', '.join(sorted(family.tasks))}"
            )
        if family.max_rows is not None and len(td.y) > family.max_rows:
            raise InvalidInputError(
                f"model family {family.name!r} is for data of at most {family.max_rows:,} rows "
                f"and this has {len(td.y):,}; leave it out or sample the data"
            )
    names = list(scorer_names(chosen))
    primary = metric or DEFAULT_METRIC[chosen]
    if primary not in names:
        raise InvalidInputError(
            f"metric {primary!r} does not fit a {chosen} task; choose one of {', '.join(names)}"
        )
    classes = sorted(np.unique(td.y.to_numpy()).tolist()) if chosen != "regression" else None
    strategy = cv_strategy
    if strategy == "auto" and group_column is not None:
        strategy = "group"
    if strategy == "auto" and time_column is not None:
        strategy = "time"
    if group_column is not None and strategy != "group":
        raise InvalidInputError(
            f"group_column {group_column!r} is given but cv_strategy is {strategy!r}: rows of "
            "one group would straddle folds and leak; use cv_strategy='group' (or 'auto')"
        )
    if order is not None and order.isna().any():
        raise InvalidInputError(
            f"time column {time_column!r} has {int(order.isna().sum())} missing values; "
            "time folds need every row's time: fill or drop them"
        )
    splits = cv_splits(
        chosen, td.y, folds=cv, seed=seed, strategy=strategy, groups=td.groups, order=order
    )
    overrides = load_search_space_overrides(search_space) if search_space is not None else {}
    if valid is not None:
        _check_valid(valid, target)
    content = (
        td.version.digest
        if td.version is not None
        else table_digest(td.X.assign(**{f"__target_{target}": td.y}))
    )
    # Everything that changes what a trial means is in the name: another search space,
    # task or fold layout starts another study instead of resuming an incompatible one.
    layout = json.dumps(
        [chosen, strategy, group_column, time_column,
         {f: {k: v.to_dict() for k, v in p.items()} for f, p in sorted(overrides.items())}],
        sort_keys=True, default=str,
    )  # fmt: skip
    variant = hashlib.blake2b(layout.encode(), digest_size=4).hexdigest()
    study_key = f"{content[:16]}-{target}-{primary}-cv{cv}-s{seed}-{variant}"
    return _Job(
        data=td, target=target, task=chosen, classes=classes, families=families,
        metric=primary, metrics=names, splits=splits, folds=cv, seed=seed, tune=tune,
        timeout=timeout, overrides=overrides, study_key=study_key,
    )  # fmt: skip


def _check_valid(valid: Any, target: str) -> None:
    """The validation data exists and holds the target (read without loading the table)."""
    import pandas as pd

    import shipyard.data as sy_data
    from shipyard.core.entities import DatasetVersion

    if isinstance(valid, pd.DataFrame):
        columns = [str(c) for c in valid.columns]
        label = "the validation DataFrame"
    else:
        ref = valid.ref if isinstance(valid, DatasetVersion) else valid
        if not isinstance(ref, str):
            raise InvalidInputError(
                f"valid must be a dataset reference, a DatasetVersion or a DataFrame, got "
                f"{type(valid).__name__}"
            )
        version = sy_data.get(ref).version  # NotFoundError names the versions there are
        if version.kind != "table":
            raise InvalidInputError(f"valid data {version.ref} is a folder of files, not a table")
        columns = [c["name"] for c in (version.schema or {}).get("columns", [])]
        label = version.ref
    if columns and target not in columns:
        raise InvalidInputError(f"the validation data {label} has no target column {target!r}")


def _check_n_jobs(n_jobs: int) -> int:
    import multiprocessing

    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 1:
        raise InvalidInputError(f"n_jobs must be a whole number >= 1, got {n_jobs!r}")
    if n_jobs > 1 and "fork" not in multiprocessing.get_all_start_methods():
        raise InvalidInputError(
            "n_jobs > 1 runs trials in forked processes, which this platform does not have; "
            "use n_jobs=1, or start several `shipyard train` commands: they share the study"
        )
    return n_jobs


def _check_fold_jobs(fold_jobs: int | None, *, trials_in_parallel: bool) -> int:
    if fold_jobs is None:
        return 1 if trials_in_parallel else available_cores()
    if isinstance(fold_jobs, bool) or not isinstance(fold_jobs, int) or fold_jobs < 1:
        raise InvalidInputError(f"fold_jobs must be a whole number >= 1, got {fold_jobs!r}")
    return fold_jobs


def _candidate_run(
    tracker: Tracker,
    family: Any,
    *,
    params: Mapping[str, Any],
    scores: Mapping[str, tuple[float, float]],
    fit_time: float,
    name: str,
    tags: Mapping[str, Any],
    parent_run_id: str | None = None,
) -> str:
    """Record one cross-validated candidate (or trial) as a nested run; its id.

    Under ``parent_run_id`` if given (a Dask worker has no active run), else under the
    active run. Everything is logged by run id, so threads sharing a process do not mix
    their runs.
    """
    with tracker.start_run(
        name=name, nested=True, tags=dict(tags), parent_run_id=parent_run_id
    ) as run:
        tracker.log_params({"model": family.name, **params}, run_id=run.run_id)
        values = {f"cv_{m}": mean for m, (mean, _) in scores.items()}
        values.update({f"cv_{m}_std": std for m, (_, std) in scores.items() if not math.isnan(std)})
        values["fit_time_s"] = fit_time
        tracker.log_metrics(values, run_id=run.run_id)
    return run.run_id


class _TrialFailed(Exception):
    """A trial's model could not be fitted or scored (recorded; the study goes on)."""


def _objective(
    tracker: Tracker, job: _Job, family: Any, study_name: str, parent_run_id: str | None = None
) -> Callable[[optuna.Trial], float]:
    """The study's objective: cross-validate the suggested parameters; a nested run each."""
    import optuna
    from numpy.linalg import LinAlgError

    from shipyard.training.models import build_pipeline

    X, y = job.data.X, job.data.y
    fold_seconds: dict[str, float] = {}  # a fold's fit time in the last finished trial

    def objective(trial: optuna.Trial) -> float:
        params = family.suggest(trial, job.task, job.overrides.get(family.name))
        tags = {"shipyard.role": "trial", "shipyard.trial": trial.number,
                "shipyard.study": study_name}  # fmt: skip

        def on_fold(i: int, running: float) -> None:
            trial.report(running, i)
            if trial.should_prune():  # recorded too: a nested run for every trial
                partial = {job.metric: (running, float("nan"))}
                _candidate_run(
                    tracker, family, params=params, scores=partial, fit_time=0.0,
                    name=f"{family.name} trial {trial.number} (pruned after fold {i + 1})",
                    tags={**tags, "shipyard.trial_state": "pruned"}, parent_run_id=parent_run_id,
                )  # fmt: skip
                raise optuna.TrialPruned

        try:
            scores, fit_time = cross_validate(
                lambda: build_pipeline(family, job.task, X, params, job.seed),
                X, y, job.splits, task=job.task, classes=job.classes, metrics=job.metrics,
                primary=job.metric, on_fold=on_fold, fold_jobs=job.fold_jobs,
                expected_fold_s=fold_seconds.get("last"),
            )  # fmt: skip
            fold_seconds["last"] = fit_time  # the next trial's guess
        except ShipyardError:
            raise  # bad input or settings: every trial would fail the same way
        except (ValueError, ArithmeticError, LinAlgError) as exc:  # these parameters fail
            _candidate_run(
                tracker, family, params=params, scores={}, fit_time=0.0,
                name=f"{family.name} trial {trial.number} (failed)",
                tags={**tags, "shipyard.trial_state": "failed",
                      "shipyard.error": f"{type(exc).__name__}: {exc}"[:500]},
                parent_run_id=parent_run_id,
            )  # fmt: skip
            trial.set_user_attr("error", f"{type(exc).__name__}: {exc}"[:500])
            raise _TrialFailed(str(exc)) from exc
        run_id = _candidate_run(
            tracker, family, params=params, scores=scores, fit_time=fit_time,
            name=f"{family.name} trial {trial.number}",
            tags={**tags, "shipyard.trial_state": "complete"}, parent_run_id=parent_run_id,
        )  # fmt: skip
        trial.set_user_attr(  # one write: each is a transaction in the stored study
            "shipyard",
            {
                "run_id": run_id,
                "params": params,  # Optuna's own names carry a family prefix
                "scores": {k: list(v) for k, v in scores.items()},
                "fit_time_s": fit_time,
            },
        )
        return scores[job.metric][0]

    return objective


def _sampler(job: _Job, worker: int = 0) -> optuna.samplers.BaseSampler:
    import optuna

    return optuna.samplers.TPESampler(seed=job.seed + worker)


def _pruner() -> optuna.pruners.BasePruner:
    import optuna

    return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)


# What forked trial workers inherit (set just before the fork, cleared after).
_FORK_STATE: dict[str, Any] = {}


def _share_of_trials(
    tracker: Tracker,
    job: _Job,
    family: Any,
    *,
    study_name: str,
    worker: int,
    n_trials: int,
    parent_run_id: str | None = None,
) -> int:
    """Run ``n_trials`` of the stored study in this process (a forked or Dask worker)."""
    import optuna

    storage = optuna_storage(tracker.settings.db_url)
    try:
        study = optuna.load_study(
            study_name=study_name, storage=storage, sampler=_sampler(job, worker),
            pruner=_pruner(),
        )  # fmt: skip
        study.optimize(
            _objective(tracker, job, family, study_name, parent_run_id), n_trials=n_trials,
            timeout=job.timeout, catch=(_TrialFailed,),
        )  # fmt: skip
    finally:
        close_storage(storage)
        tracker.flush()
    return n_trials


def _trial_worker(worker: int, n_trials: int) -> int:
    """In a forked process: the tracker is the parent's, reset for this process, so trial
    runs nest under the training run on its stack."""
    import shipyard as sy

    job, family, study_name = _FORK_STATE["job"], _FORK_STATE["family"], _FORK_STATE["study"]
    return _share_of_trials(
        sy.tracker(), job, family, study_name=study_name, worker=worker, n_trials=n_trials
    )


def _optimize_in_processes(job: _Job, family: Any, study_name: str, remaining: int) -> None:
    """Run ``remaining`` trials on ``job.n_jobs`` forked processes sharing the study."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    workers = min(job.n_jobs, remaining)
    shares = [remaining // workers + (1 if i < remaining % workers else 0) for i in range(workers)]
    _FORK_STATE.update(job=job, family=family, study=study_name)
    try:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            for future in [pool.submit(_trial_worker, i + 1, n) for i, n in enumerate(shares)]:
                future.result()
    finally:
        _FORK_STATE.clear()


def _dask_trial_worker(
    settings: Any, *, parent_run_id: str, study_name: str, job: _Job, worker: int, n_trials: int
) -> int:
    """On a Dask worker: run ``n_trials`` of the shared study, logging under the parent."""
    import shipyard as sy
    from shipyard.training.models import get_family

    sy.configure(settings)
    return _share_of_trials(
        sy.tracker(), job, get_family(job.families[0]), study_name=study_name, worker=worker,
        n_trials=n_trials, parent_run_id=parent_run_id,
    )  # fmt: skip


def _optimize_on_dask(
    tracker: Tracker, job: _Job, family: Any, study_name: str, remaining: int
) -> None:
    """Run ``remaining`` trials as tasks on the Dask cluster ``job.scheduler`` names."""
    import dataclasses

    import distributed

    client_type: Any = distributed.Client
    parent = tracker.active_run()
    if parent is None:  # pragma: no cover - train() always has its run active here
        raise InvalidInputError("Dask trials need the training run to be active")
    owned = not isinstance(job.scheduler, client_type)
    client: Any = client_type(job.scheduler) if owned else job.scheduler
    try:
        slots = max(1, sum(client.nthreads().values()))
        workers = min(slots, remaining)
        shares = [remaining // workers + (i < remaining % workers) for i in range(workers)]
        # Families hold functions: workers look theirs up by name.
        payload = dataclasses.replace(job, families=[family.name], scheduler=None)
        futures = [
            client.submit(
                _dask_trial_worker,
                tracker.settings,
                parent_run_id=parent.run_id,
                study_name=study_name,
                job=payload,
                worker=i + 1,
                n_trials=n,
                pure=False,
            )
            for i, n in enumerate(shares)
        ]
        client.gather(futures)
    finally:
        if owned:
            client.close()


def _run_study(
    tracker: Tracker,
    job: _Job,
    family: Any,
    storage: optuna.storages.BaseStorage,
    progress: Callable[[str], None] | None,
) -> Candidate:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=f"shipyard-{job.study_key}-{family.name}",
        storage=storage,
        direction="maximize",
        sampler=_sampler(job),
        pruner=_pruner(),
        load_if_exists=True,
    )
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    done = sum(1 for t in study.trials if t.state in finished)

    def report(study_: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if progress is not None:
            values = [
                t.value
                for t in study_.get_trials(deepcopy=False)
                if t.state == optuna.trial.TrialState.COMPLETE and t.value is not None
            ]
            best = max(values) if values else float("nan")
            progress(f"{family.name}: trial {trial.number + 1}, best {job.metric} {best:.4f}")

    remaining = max(0, job.tune - done)
    if remaining and job.scheduler is not None:
        tracker.flush()
        if progress is not None:
            progress(f"{family.name}: {remaining} trials on the Dask cluster")
        _optimize_on_dask(tracker, job, family, study.study_name, remaining)
        study = optuna.load_study(study_name=study.study_name, storage=storage)
    elif remaining and job.n_jobs > 1 and remaining > 1:
        tracker.flush()  # nothing queued may be written twice by the children
        if progress is not None:
            progress(f"{family.name}: {remaining} trials on {job.n_jobs} processes")
        _optimize_in_processes(job, family, study.study_name, remaining)
        study = optuna.load_study(study_name=study.study_name, storage=storage)
    elif remaining:
        study.optimize(
            _objective(tracker, job, family, study.study_name), n_trials=remaining,
            timeout=job.timeout, callbacks=[report], catch=(_TrialFailed,),
        )  # fmt: skip
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        errors = [t.user_attrs["error"] for t in study.trials if "error" in t.user_attrs]
        why = f"; the first error: {errors[0]}" if errors else " (all were pruned)"
        raise InvalidInputError(
            f"no trial of {family.name} completed{why}. The trial runs (tag "
            "shipyard.trial_state) say more; or raise tune / timeout"
        )
    best = max(complete, key=lambda t: t.value if t.value is not None else float("-inf"))
    attrs = best.user_attrs["shipyard"]
    scores = {k: (float(v[0]), float(v[1])) for k, v in attrs["scores"].items()}
    return Candidate(
        family=family.name,
        params=dict(attrs["params"]),
        scores=scores,
        fit_time_s=float(attrs["fit_time_s"]),
        run_id=str(attrs["run_id"]),
        trials=len(complete),
        pruned=sum(1 for t in study.trials if t.state == optuna.trial.TrialState.PRUNED),
    )


def _default_family(tracker: Tracker, job: _Job, family: Any) -> Candidate:
    from shipyard.training.models import build_pipeline

    params = dict(family.default_params(job.task))
    X, y = job.data.X, job.data.y
    scores, fit_time = cross_validate(
        lambda: build_pipeline(family, job.task, X, params, job.seed),
        X, y, job.splits, task=job.task, classes=job.classes, metrics=job.metrics,
        primary=job.metric, fold_jobs=job.fold_jobs,
    )  # fmt: skip
    run_id = _candidate_run(
        tracker, family, params=params, scores=scores, fit_time=fit_time,
        name=f"{family.name} (defaults)", tags={"shipyard.role": "candidate"},
    )  # fmt: skip
    return Candidate(family.name, params, scores, fit_time, run_id)


def train(
    data: Any,
    target: str,
    *,
    task: str | None = None,
    models: Sequence[str] = DEFAULT_MODELS,
    tune: int = 0,
    cv: int = 5,
    cv_strategy: str = "auto",
    group_column: str | None = None,
    time_column: str | None = None,
    metric: str | None = None,
    valid: Any = None,
    seed: int = 0,
    timeout: float | None = None,
    search_space: Any = None,
    n_jobs: int = 1,
    scheduler: Any = None,
    fold_jobs: int | None = None,
    run_name: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> TrainResult:
    """Cross-validate (and with ``tune`` tune) each model family; refit and log the best.

    Args:
        data: training data: ``"customers@train"``, a DatasetVersion or a DataFrame.
        target: the column to predict.
        task: ``binary``, ``multiclass`` or ``regression`` (default: inferred from the target).
        models: model family names (``training.models.FAMILIES``), or one comma-separated string.
        tune: Optuna trials per family (0: each family's default parameters, once).
        cv: number of folds.
        cv_strategy: ``auto`` (stratified for classification), ``kfold``, ``stratified``,
            ``group`` (with ``group_column``) or ``time`` (with ``time_column``).
        group_column: rows sharing a value never straddle folds; not a feature.
        time_column: order for ``time`` folds (validation after training); not a feature.
        metric: the primary metric, a scikit-learn scorer name (default per task:
            ``training.metrics.DEFAULT_METRIC``).
        valid: data to evaluate the refitted best model on, once.
        seed: fixes folds, samplers and models, so a run reproduces exactly.
        timeout: seconds per family's study, at most.
        search_space: search-space overrides (a mapping or a YAML file path).
        n_jobs: processes running trials of a study at once (forked; Linux and macOS).
            Trials then finish in any order, so the result may vary between runs
            even with the same seed.
        scheduler: a Dask scheduler address (``tcp://host:8786``) or a
            ``distributed.Client``: trials run as tasks on its workers (the ``dask``
            extra), which must reach the same store and database.
        fold_jobs: processes for the folds of one trial or candidate (default: every
            core when trials run one at a time, else 1). Folds after the first go to
            other processes only when they would take a second or more; the results,
            and pruning decisions, are the same as one fold after the other.
        run_name: name of the training run.
        progress: called with a line of text after each trial (the CLI's progress bar).

    Returns:
        The :class:`TrainResult`.

    Raises:
        InvalidInputError: an unknown target column, model family or metric; a target
            with one class; a non-numeric regression target; a dataset that does not
            exist (NotFoundError). All before any model is fitted.

    Example::

        result = sy.train("customers@train", "churn", models=["random_forest"], tune=20)
        result.leaderboard
    """
    import shipyard as sy
    from shipyard.training.evaluation import evaluate
    from shipyard.training.guards import training_warnings
    from shipyard.training.models import build_pipeline

    job = _prepare(
        data, target, task=task, models=models, metric=metric, cv=cv, cv_strategy=cv_strategy,
        group_column=group_column, time_column=time_column, seed=seed, tune=tune,
        timeout=timeout, search_space=search_space, valid=valid,
    )  # fmt: skip
    job.n_jobs = _check_n_jobs(n_jobs)
    if scheduler is not None:
        import importlib.util

        if importlib.util.find_spec("distributed") is None:
            raise InvalidInputError(
                "a Dask scheduler was given but Dask is not installed; pip install 'shipyard[dask]'"
            )
        job.scheduler = scheduler
    job.fold_jobs = _check_fold_jobs(
        fold_jobs, trials_in_parallel=job.n_jobs > 1 or bool(scheduler)
    )
    tracker = sy.tracker()
    warnings = training_warnings(job.data.X, job.data.y, task=job.task)
    nested = sy.active_run() is not None
    name = run_name or f"train {target} ({job.data.label})"
    with tracker.start_run(name=name, nested=nested, tags={"shipyard.role": "train"}) as parent:
        if job.data.version is not None:
            tracker.log_input(job.data.version, context="training")
        tracker.log_params({
            "task": job.task, "target": target, "models": ",".join(f.name for f in job.families),
            "tune": tune, "cv": cv, "cv_strategy": cv_strategy, "metric": job.metric,
            "seed": seed, "data": job.data.label, "rows": len(job.data.y),
        })  # fmt: skip
        candidates = []
        storage = optuna_storage(tracker.settings.db_url) if tune else None
        try:
            for family in job.families:
                if storage is not None:
                    candidates.append(_run_study(tracker, job, family, storage, progress))
                else:
                    candidates.append(_default_family(tracker, job, family))
                if progress is not None and not tune:
                    score = candidates[-1].scores[job.metric][0]
                    progress(f"{family.name}: {job.metric} {score:.4f}")
        finally:
            if storage is not None:
                close_storage(storage)  # no connection left open to the database
        candidates.sort(key=lambda c: -c.scores[job.metric][0])
        best = candidates[0]
        board = leaderboard_frame(candidates, job.metric)
        tracker.log_table(board, "leaderboard.json")
        tracker.log_metrics({f"best_cv_{job.metric}": best.scores[job.metric][0]})
        family = next(f for f in job.families if f.name == best.family)
        with tracker.start_run(
            name=f"best: {best.family}", nested=True,
            tags={"shipyard.role": "best", "shipyard.candidate_run": best.run_id},
        ) as best_run:  # fmt: skip
            if job.data.version is not None:
                tracker.log_input(job.data.version, context="training")
            tracker.log_params({"model": best.family, "target": target, **best.params})
            tracker.log_metrics({f"cv_{m}": mean for m, (mean, _) in best.scores.items()})
            model = build_pipeline(family, job.task, job.data.X, best.params, seed)
            model.fit(job.data.X, job.data.y)
            _log_model(tracker, model, job)
            evaluation = None
            if valid is not None:
                evaluation = evaluate(
                    model, valid, target, task=job.task, prefix="valid_",
                    train_data=job.data.X, warnings=warnings, leaderboard=board,
                    extra_plots=_learning_curve(family, best.params, job),
                )  # fmt: skip
                warnings = list(evaluation.warnings)
            if warnings:
                tracker.set_tags({"shipyard.warnings": " | ".join(warnings)})
                tracker.log_dict({"warnings": warnings}, "warnings.json")
        tracker.set_tags({"shipyard.best_run": best_run.run_id, "shipyard.best_model": best.family})
        if warnings:
            tracker.set_tags({"shipyard.warnings": " | ".join(warnings)})
    return TrainResult(
        task=job.task, metric=job.metric, candidates=candidates, model=model,
        run_id=parent.run_id, best_run_id=best_run.run_id, evaluation=evaluation,
        warnings=warnings,
    )  # fmt: skip


LEARNING_CURVE_ROWS = 20_000


def _learning_curve(family: Any, params: Mapping[str, Any], job: _Job) -> list[Any]:
    """The best family's learning curve (3 training sizes, 3 of the job's folds), as a plot.

    Skipped (an empty list) above 20,000 rows, where it would cost more than the
    training itself, and when the plots extra is missing.
    """
    import numpy as np
    from sklearn.model_selection import learning_curve

    from shipyard.training.models import build_pipeline

    if len(job.data.y) > LEARNING_CURVE_ROWS:
        return []
    try:
        from shipyard.training.plots import learning_curve_plot
    except ImportError:
        return []
    sizes, train_scores, valid_scores = learning_curve(
        build_pipeline(family, job.task, job.data.X, dict(params), job.seed),
        job.data.X, job.data.y, train_sizes=[0.25, 0.5, 1.0], cv=job.splits[:3],
        scoring=job.metric, shuffle=True, random_state=job.seed, error_score=np.nan,
    )  # fmt: skip
    return [learning_curve_plot(sizes, train_scores, valid_scores, job.metric)]


def _log_model(tracker: Tracker, model: Any, job: _Job) -> None:
    """The refitted pipeline as a model folder (skops, signature, input example, hashes)."""
    ModelRegistry(tracker).log_model(
        model,
        "model",
        flavor="sklearn",
        input_example=job.data.X.head(5),
        task=job.task,
        signature=job.data.X,  # ranges and categories seen in training
    )
