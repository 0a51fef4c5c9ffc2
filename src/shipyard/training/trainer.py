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
``shipyard_optuna`` of the same database, on SQLite in ``optuna.db`` beside the
metadata file (Optuna keeps its own Alembic version table, which cannot share a
schema with shipyard's). A study is named after the data, target, family, metric,
folds and seed, so running the same command again resumes it: only the trials
still missing are run.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.core.errors import InvalidInputError
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
CV_STRATEGIES = ("auto", "kfold", "stratified", "group", "time")
OPTUNA_SCHEMA = "shipyard_optuna"


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


# -- cross-validation ----------------------------------------------------------------------


def cv_splits(
    task: str,
    y: pd.Series,
    *,
    folds: int,
    seed: int,
    strategy: str = "auto",
    groups: pd.Series | None = None,
    order: pd.Series | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (train rows, validation rows) index pairs of each fold, fixed by ``seed``.

    ``auto``: stratified k-fold for classification, shuffled k-fold for regression;
    ``group``: no group in two folds (needs ``groups``); ``time``: expanding-window
    splits in the order of ``order`` (validation rows always come after training rows).

    Raises:
        InvalidInputError: an unknown strategy, too few rows or classes for the folds,
            or a group/time strategy without its column.
    """
    import numpy as np
    from sklearn.model_selection import GroupKFold, KFold, StratifiedKFold, TimeSeriesSplit

    if strategy not in CV_STRATEGIES:
        raise InvalidInputError(
            f"cv strategy {strategy!r} is not one of {', '.join(CV_STRATEGIES)}"
        )
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise InvalidInputError(f"cv must be a whole number of folds >= 2, got {folds!r}")
    n = len(y)
    if n < 2 * folds:
        raise InvalidInputError(f"{n} rows are too few for {folds}-fold cross-validation")
    index = np.arange(n)
    if strategy == "group":
        if groups is None:
            raise InvalidInputError("cv='group' needs a group column (group_column=...)")
        if groups.nunique() < folds:
            raise InvalidInputError(
                f"cv='group' with {folds} folds needs at least {folds} groups; "
                f"{groups.name!r} has {groups.nunique()}"
            )
        return [(a, b) for a, b in GroupKFold(n_splits=folds).split(index, groups=groups)]
    if strategy == "time":
        if order is None:
            raise InvalidInputError("cv='time' needs a time column (time_column=...)")
        ranked = np.argsort(order.to_numpy(), kind="stable")
        return [(ranked[a], ranked[b]) for a, b in TimeSeriesSplit(n_splits=folds).split(ranked)]
    if task != "regression" and strategy in ("auto", "stratified"):
        smallest = int(y.value_counts().min())
        if smallest < folds:
            raise InvalidInputError(
                f"the rarest class of the target has {smallest} rows, fewer than the {folds} "
                "folds; lower cv, or merge rare classes"
            )
        splitter: Any = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        return [(a, b) for a, b in splitter.split(index, y)]
    splitter = KFold(n_splits=folds, shuffle=True, random_state=seed)
    return [(a, b) for a, b in splitter.split(index)]


def _predict(model: Any, X: pd.DataFrame, task: str) -> tuple[np.ndarray, np.ndarray | None]:
    pred = model.predict(X)
    proba = None
    if task != "regression" and hasattr(model, "predict_proba"):
        proba = model.predict_proba(X)
    return pred, proba


def cross_validate(
    make_model: Callable[[], Any],
    X: pd.DataFrame,
    y: pd.Series,
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    task: str,
    classes: Sequence[Any] | None,
    metrics: Sequence[str],
    primary: str,
    on_fold: Callable[[int, float], None] | None = None,
) -> tuple[dict[str, tuple[float, float]], float]:
    """Fit a fresh model per fold and score it on the fold's held-out rows.

    ``on_fold(i, running_mean_of_primary)`` is called after each fold (tuning uses it to
    prune); it may raise to stop.

    Returns:
        ``{metric: (mean, std)}`` and the mean fit time in seconds.
    """
    import numpy as np

    from shipyard.training.metrics import compute_metrics

    per_fold: dict[str, list[float]] = {m: [] for m in metrics}
    fit_times = []
    for i, (train_rows, valid_rows) in enumerate(splits):
        model = make_model()
        started = time.perf_counter()
        model.fit(X.iloc[train_rows], y.iloc[train_rows])
        fit_times.append(time.perf_counter() - started)
        pred, proba = _predict(model, X.iloc[valid_rows], task)
        scores = compute_metrics(
            task, y.iloc[valid_rows].to_numpy(), pred, proba, classes=classes, metrics=metrics
        )
        for m in metrics:
            per_fold[m].append(float(scores.get(m, np.nan)))
        if on_fold is not None:
            on_fold(i, float(np.nanmean(per_fold[primary])))
    summary = {
        m: (float(np.nanmean(v)), float(np.nanstd(v)))
        for m, v in per_fold.items()
        if not np.all(np.isnan(v))
    }
    return summary, float(np.mean(fit_times))


# -- Optuna storage ------------------------------------------------------------------------


def optuna_storage(db_url: str) -> optuna.storages.RDBStorage:
    """Optuna's storage beside shipyard's database (see the module docstring)."""
    import optuna
    from sqlalchemy.engine import make_url

    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        db_file = Path(url.database or "")
        if not url.database or url.database == ":memory:":
            return optuna.storages.RDBStorage("sqlite:///:memory:")
        target = db_file.with_name("optuna.db")
        return optuna.storages.RDBStorage(
            f"sqlite:///{target}", engine_kwargs={"connect_args": {"timeout": 30}}
        )
    if url.get_backend_name() == "postgresql":
        import sqlalchemy

        engine = sqlalchemy.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sqlalchemy.text(f"CREATE SCHEMA IF NOT EXISTS {OPTUNA_SCHEMA}"))
        engine.dispose()
        return optuna.storages.RDBStorage(
            url.render_as_string(hide_password=False),
            engine_kwargs={"connect_args": {"options": f"-csearch_path={OPTUNA_SCHEMA}"}},
        )
    return optuna.storages.RDBStorage(url.render_as_string(hide_password=False))


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
) -> _Job:
    """Check every argument and load the data, before any model is fitted."""
    import numpy as np

    from shipyard.data.catalog import table_digest
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
    splits = cv_splits(
        chosen, td.y, folds=cv, seed=seed, strategy=strategy, groups=td.groups, order=order
    )
    overrides = load_search_space_overrides(search_space) if search_space is not None else {}
    content = (
        td.version.digest
        if td.version is not None
        else table_digest(td.X.assign(**{f"__target_{target}": td.y}))
    )
    study_key = f"{content[:16]}-{target}-{primary}-cv{cv}{strategy[0]}-s{seed}"
    return _Job(
        data=td, target=target, task=chosen, classes=classes, families=families,
        metric=primary, metrics=names, splits=splits, folds=cv, seed=seed, tune=tune,
        timeout=timeout, overrides=overrides, study_key=study_key,
    )  # fmt: skip


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


def _tune_family(
    tracker: Tracker, job: _Job, family: Any, progress: Callable[[str], None] | None
) -> Candidate:
    """An Optuna study for one family; the best trial as a candidate."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna_storage(tracker.settings.db_url)
    try:
        return _run_study(tracker, job, family, storage, progress)
    finally:
        storage.engine.dispose()  # no connection left open to the database


def _objective(
    tracker: Tracker, job: _Job, family: Any, study_name: str, parent_run_id: str | None = None
) -> Callable[[optuna.Trial], float]:
    """The study's objective: cross-validate the suggested parameters; a nested run each."""
    import optuna

    from shipyard.training.models import build_pipeline

    X, y = job.data.X, job.data.y

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

        scores, fit_time = cross_validate(
            lambda: build_pipeline(family, job.task, X, params, job.seed),
            X, y, job.splits, task=job.task, classes=job.classes, metrics=job.metrics,
            primary=job.metric, on_fold=on_fold,
        )  # fmt: skip
        run_id = _candidate_run(
            tracker, family, params=params, scores=scores, fit_time=fit_time,
            name=f"{family.name} trial {trial.number}",
            tags={**tags, "shipyard.trial_state": "complete"}, parent_run_id=parent_run_id,
        )  # fmt: skip
        trial.set_user_attr("run_id", run_id)
        trial.set_user_attr("params", params)  # Optuna's own names carry a family prefix
        trial.set_user_attr("scores", {k: list(v) for k, v in scores.items()})
        trial.set_user_attr("fit_time_s", fit_time)
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


def _trial_worker(worker: int, n_trials: int) -> int:
    """In a forked process: run ``n_trials`` of the shared study; the number run."""
    import optuna

    import shipyard as sy

    job, family, study_name = _FORK_STATE["job"], _FORK_STATE["family"], _FORK_STATE["study"]
    tracker = sy.tracker()  # the parent's, reset for this process: runs nest under its run
    storage = optuna_storage(tracker.settings.db_url)
    try:
        study = optuna.load_study(
            study_name=study_name, storage=storage, sampler=_sampler(job, worker),
            pruner=_pruner(),
        )  # fmt: skip
        study.optimize(
            _objective(tracker, job, family, study_name), n_trials=n_trials,
            timeout=job.timeout, catch=(ValueError, ArithmeticError),
        )  # fmt: skip
    finally:
        storage.engine.dispose()
        tracker.flush()
    return n_trials


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
    import optuna

    import shipyard as sy
    from shipyard.training.models import get_family

    sy.configure(settings)
    tracker = sy.tracker()
    family = get_family(job.families[0])
    storage = optuna_storage(settings.db_url)
    try:
        study = optuna.load_study(
            study_name=study_name, storage=storage, sampler=_sampler(job, worker),
            pruner=_pruner(),
        )  # fmt: skip
        study.optimize(
            _objective(tracker, job, family, study_name, parent_run_id), n_trials=n_trials,
            timeout=job.timeout, catch=(ValueError, ArithmeticError),
        )  # fmt: skip
    finally:
        storage.engine.dispose()
        tracker.flush()
    return n_trials


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
    storage: optuna.storages.RDBStorage,
    progress: Callable[[str], None] | None,
) -> Candidate:
    import optuna

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
            best = study_.best_value if study_.best_trial is not None else float("nan")
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
            timeout=job.timeout, callbacks=[report], catch=(ValueError, ArithmeticError),
        )  # fmt: skip
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise InvalidInputError(
            f"no trial of {family.name} completed (all failed or were pruned); see the trial "
            "runs' status, or raise tune / timeout"
        )
    best = max(complete, key=lambda t: t.value if t.value is not None else float("-inf"))
    scores = {k: (float(v[0]), float(v[1])) for k, v in best.user_attrs["scores"].items()}
    return Candidate(
        family=family.name,
        params=dict(best.user_attrs["params"]),
        scores=scores,
        fit_time_s=float(best.user_attrs["fit_time_s"]),
        run_id=str(best.user_attrs["run_id"]),
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
        primary=job.metric,
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
        timeout=timeout, search_space=search_space,
    )  # fmt: skip
    job.n_jobs = _check_n_jobs(n_jobs)
    if scheduler is not None:
        import importlib.util

        if importlib.util.find_spec("distributed") is None:
            raise InvalidInputError(
                "a Dask scheduler was given but Dask is not installed; pip install 'shipyard[dask]'"
            )
        job.scheduler = scheduler
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
        for family in job.families:
            if tune:
                candidates.append(_tune_family(tracker, job, family, progress))
            else:
                candidates.append(_default_family(tracker, job, family))
            if progress is not None and not tune:
                progress(f"{family.name}: {job.metric} {candidates[-1].scores[job.metric][0]:.4f}")
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
            tracker.log_params({"model": best.family, **best.params})
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
    """The refitted pipeline (skops), its input schema and an input example."""
    import platform

    import sklearn
    import skops
    import skops.io

    from shipyard.data.schema import infer_schema

    tracker.log_bytes(skops.io.dumps(model), "model/model.skops")
    example = job.data.X.head(5)
    tracker.log_text(example.to_json(orient="split", date_format="iso"), "model/input_example.json")
    try:
        schema = infer_schema(job.data.X).to_dict()
    except InvalidInputError as exc:  # a column the schema cannot type: keep the names
        schema = {"columns": [str(c) for c in job.data.X.columns], "note": str(exc)}
    tracker.log_dict(
        {
            "flavor": "sklearn",
            "format": "skops",
            "model_file": "model.skops",
            "task": job.task,
            "target": job.target,
            "classes": job.classes,
            "input_schema": schema,
            "input_example": "input_example.json",
            "sklearn_version": sklearn.__version__,
            "skops_version": skops.__version__,
            "python_version": platform.python_version(),
        },
        "model/model.json",
    )
