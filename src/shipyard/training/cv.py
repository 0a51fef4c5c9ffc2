"""Cross-validation folds and scoring, and the Optuna storage beside shipyard's database.

Split from :mod:`shipyard.training.trainer`, which uses them; see its docstring for
where studies are stored.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.core.errors import InvalidInputError

if TYPE_CHECKING:
    import numpy as np
    import optuna
    import pandas as pd

CV_STRATEGIES = ("auto", "kfold", "stratified", "group", "time")
OPTUNA_SCHEMA = "shipyard_optuna"


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


def _predict(
    model: Any, X: pd.DataFrame, task: str, classes: Sequence[Any] | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Predictions and, for classifiers, probabilities with one column per ``classes``.

    A classifier's labels are taken from its probabilities (the most likely class),
    so the model predicts once, not twice. A class the model never saw in its
    training rows gets a probability column of zeros.
    """
    import numpy as np

    if task == "regression" or not hasattr(model, "predict_proba"):
        return model.predict(X), None
    proba = np.asarray(model.predict_proba(X), dtype=float)
    seen = list(model.classes_)
    pred = np.asarray(model.classes_)[proba.argmax(axis=1)]
    if classes is not None and seen != list(classes):
        aligned = np.zeros((len(proba), len(classes)))
        where = {c: i for i, c in enumerate(seen)}
        for j, c in enumerate(classes):
            if c in where:
                aligned[:, j] = proba[:, where[c]]
        proba = aligned
    return pred, proba


FOLD_PARALLEL_MIN_S = 0.5
"""Folds after the first run in parallel processes when the first fold's time times the
folds left is at least this many seconds (below it, starting work elsewhere costs more
than it saves)."""


@dataclass(frozen=True)
class _Folds:
    """What every fold of one cross-validation shares (pickled once per parallel fold)."""

    make_model: Callable[[], Any]
    X: pd.DataFrame
    y: pd.Series
    task: str
    classes: Sequence[Any] | None
    metrics: Sequence[str]

    def fit_and_score(self, rows: tuple[np.ndarray, np.ndarray]) -> tuple[dict[str, float], float]:
        """One fold: fit a fresh model on the training rows, score it on the held-out rows."""
        import numpy as np

        from shipyard.training.metrics import compute_metrics

        train_rows, valid_rows = rows
        model = self.make_model()
        started = time.perf_counter()
        model.fit(self.X.iloc[train_rows], self.y.iloc[train_rows])
        fit_time = time.perf_counter() - started
        pred, proba = _predict(model, self.X.iloc[valid_rows], self.task, self.classes)
        truth = self.y.iloc[valid_rows].to_numpy()
        scores = compute_metrics(
            self.task, truth, pred, proba, classes=self.classes, metrics=self.metrics
        )
        return {m: float(scores.get(m, np.nan)) for m in self.metrics}, fit_time


def available_cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


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
    fold_jobs: int = 1,
    expected_fold_s: float | None = None,
) -> tuple[dict[str, tuple[float, float]], float]:
    """Fit a fresh model per fold and score it on the fold's held-out rows.

    ``on_fold(i, running_mean_of_primary)`` is called after each fold, in fold order
    (tuning uses it to prune); it may raise to stop.

    With ``fold_jobs > 1``, folds run in up to ``fold_jobs`` processes (joblib's reusable
    process pool) when they would take at least :data:`FOLD_PARALLEL_MIN_S` in all: all
    of them when ``expected_fold_s`` (a fold's time in an earlier trial) says so, else
    the first runs here to time the work and the rest may follow in the pool. Results
    are consumed in fold order and ``on_fold`` sees exactly the values a sequential run
    gives, so a pruner decides the same and the scores are identical; folds started
    past a pruning point are abandoned.

    Returns:
        ``{metric: (mean, std)}`` and the mean fit time in seconds.
    """
    import numpy as np

    shared = _Folds(make_model, X, y, task, classes, metrics)

    def in_pool(rows: Sequence[tuple[np.ndarray, np.ndarray]]) -> Iterator[Any]:
        from joblib import Parallel, delayed

        parallel = Parallel(n_jobs=min(fold_jobs, len(rows)), return_as="generator")
        return iter(parallel(delayed(shared.fit_and_score)(r) for r in rows))

    def results() -> Generator[tuple[dict[str, float], float]]:
        expected = (expected_fold_s or 0.0) * len(splits)
        if fold_jobs > 1 and len(splits) > 1 and expected >= FOLD_PARALLEL_MIN_S:
            yield from in_pool(splits)
            return
        started = time.perf_counter()
        yield shared.fit_and_score(splits[0])
        rest = splits[1:]
        slow = (time.perf_counter() - started) * len(rest) >= FOLD_PARALLEL_MIN_S
        if fold_jobs > 1 and len(rest) > 1 and slow:
            yield from in_pool(rest)
        else:
            for rows in rest:
                yield shared.fit_and_score(rows)

    per_fold: dict[str, list[float]] = {m: [] for m in metrics}
    fit_times = []
    folds = results()
    try:
        for i, (scores, fit_time) in enumerate(folds):
            fit_times.append(fit_time)
            for m in metrics:
                per_fold[m].append(scores[m])
            if on_fold is not None:
                on_fold(i, float(np.nanmean(per_fold[primary])))
    finally:
        with warnings.catch_warnings():  # joblib reports the abandoned folds: expected here
            warnings.filterwarnings("ignore", message=r".*tasks .*(not used|cancelled)")
            folds.close()  # a pruned trial: stop the folds still running
    summary = {
        m: (float(np.nanmean(v)), float(np.nanstd(v)))
        for m, v in per_fold.items()
        if not np.all(np.isnan(v))
    }
    if primary not in summary:
        raise InvalidInputError(
            f"{primary} could not be computed on any fold (each validation fold lacks a class "
            "or the probabilities it needs); use fewer folds, another cv_strategy or metric"
        )
    return summary, float(np.mean(fit_times))


# -- Optuna storage ------------------------------------------------------------------------


def sqlalchemy_event() -> Any:
    from sqlalchemy import event

    return event


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """Optuna commits several times per trial: with WAL and synchronous=NORMAL each
    commit is a write to the log, not an fsync (durable against a crash of the
    process, as shipyard's own SQLite database)."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def close_storage(storage: Any) -> None:
    """Let go of the storage's database connections (a journal file holds none)."""
    engine = getattr(storage, "engine", None)
    if engine is not None:
        engine.dispose()


def _prepare_sqlite(path: Path) -> None:
    """Create the file in WAL mode (a property of the file, kept by every connection)."""
    import sqlite3

    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
    finally:
        conn.close()


JOURNAL_FILE = "optuna-journal.log"


def optuna_storage(db_url: str) -> optuna.storages.BaseStorage:
    """Optuna's storage beside shipyard's database.

    With SQLite, an append-only journal file (``optuna-journal.log`` beside the
    database; file locks make it safe for forked trial workers): a trial costs about
    5 ms of storage there against 22 ms in a SQLite study database. A store that already
    holds ``optuna.db`` (shipyard before 0.1) keeps using it, so its studies resume.
    With PostgreSQL, the schema ``shipyard_optuna`` of the same database.
    """
    import optuna
    from sqlalchemy.engine import make_url

    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        db_file = Path(url.database or "")
        if not url.database or url.database == ":memory:":
            return optuna.storages.InMemoryStorage()
        legacy = db_file.with_name("optuna.db")
        if legacy.exists() and not db_file.with_name(JOURNAL_FILE).exists():
            _prepare_sqlite(legacy)
            storage = optuna.storages.RDBStorage(
                f"sqlite:///{legacy}", engine_kwargs={"connect_args": {"timeout": 30}}
            )
            sqlalchemy_event().listen(storage.engine, "connect", _sqlite_pragmas)
            storage.engine.dispose()  # every later connection gets the pragmas
            return storage
        from optuna.storages.journal import JournalFileBackend

        db_file.parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(
            JournalFileBackend(str(db_file.with_name(JOURNAL_FILE)))
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
