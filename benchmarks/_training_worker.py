"""One side of ``benchmarks/training.py``: runs the tuning job once, prints one result line.

Run by the benchmark in a fresh folder, with ``OMP_NUM_THREADS=1``::

    .venv/bin/python benchmarks/_training_worker.py shipyard --recipe job.json --dir /tmp/x
    .venv/bin/python benchmarks/_training_worker.py optuna --recipe job.json --dir /tmp/x
    .bench-venv/mlflow/bin/python benchmarks/_training_worker.py optuna-mlflow --recipe ...

Sides:

shipyard       ``sy.train(frame, target, models=..., tune=N, cv=K, seed=S)`` into the store
               ``SHIPYARD_HOME`` points at, then ``sy.flush()``.
optuna         the same studies by hand, in memory, with no logging at all.
optuna-mlflow  the ``optuna`` script plus MLflow logging as a user would write it: a
               parent run, a nested run per trial (params, CV mean/std, fit time; pruned
               trials too), the refitted best model through ``mlflow.sklearn.log_model``.

The hand-written sides import neither shipyard nor anything beyond the standard library,
numpy, pandas, scikit-learn, Optuna (and MLflow): the recipe JSON that ``training.py``
derives from shipyard gives them the exact ``trial.suggest_*`` calls (names, order,
distributions) and the estimator and imputer parameters shipyard uses, so the same seed
draws the same trials. The clock starts after the top-level imports and loading the data;
whatever a tool imports lazily while it works is inside it. The last stdout line is
``@@RESULT {json}`` (see ``_common.py``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer
from sklearn.impute import SimpleImputer
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline

from _common import emit

SIDES = ("shipyard", "shipyard-1core", "optuna", "optuna-mlflow")
SKOPS_TRUSTED = [  # what MLflow's skops format asks a user to trust for these two families
    "numpy.dtype",
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
]


def load_data(target: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
    """The breast cancer data as shipped with scikit-learn: the frame, features and target."""
    frame = load_breast_cancer(as_frame=True).frame
    return frame, frame.drop(columns=[target]), frame[target]


def build_pipeline(family: dict[str, Any], columns: list[str], params: dict[str, Any]) -> Any:
    """The pipeline shipyard builds for an all-numeric frame, from the recipe."""
    module, _, name = family["estimator"].rpartition(".")
    estimator = getattr(importlib.import_module(module), name)(**family["estimator_params"])
    estimator.set_params(**params)
    impute = SimpleImputer(**family["imputer_params"])
    preprocess = ColumnTransformer(
        [("numeric", Pipeline([("impute", impute)]), columns)], **family["column_transformer"]
    )
    return Pipeline([("preprocess", preprocess), ("model", estimator)])


def suggest(trial: optuna.Trial, family: dict[str, Any]) -> dict[str, Any]:
    """Replay shipyard's ``trial.suggest_*`` calls for the family, in its order."""
    return {
        call["param"]: getattr(trial, call["method"])(call["name"], *call["args"], **call["kwargs"])
        for call in family["suggest"]
    }


class HandTuning:
    """The tuning job by hand: one Optuna study per family, as ``shipyard.train`` runs it.

    ``on_trial(family, number, params, *, mean, std, fit_time=0.0)`` is the logging hook,
    called after each trial (``std=None``: pruned; nothing for the plain side).
    """

    def __init__(
        self,
        recipe: dict[str, Any],
        X: pd.DataFrame,
        y: pd.Series,
        on_trial: Callable[..., None] | None = None,
    ) -> None:
        self.recipe = recipe
        self.X, self.y = X, y
        self.columns = [str(c) for c in X.columns]
        self.on_trial = on_trial
        splitter = StratifiedKFold(
            n_splits=recipe["folds"], shuffle=True, random_state=recipe["seed"]
        )
        self.splits = list(splitter.split(np.arange(len(y)), y))
        self.histories: dict[str, list[list[Any]]] = {}

    def cross_validate(
        self, family: dict[str, Any], params: dict[str, Any], trial: optuna.Trial
    ) -> tuple[float, float, float]:
        """Mean and std of the fold scores, mean fit seconds; prunes on the running mean."""
        scores, fit_times = [], []
        for i, (train_rows, valid_rows) in enumerate(self.splits):
            model = build_pipeline(family, self.columns, params)
            started = time.perf_counter()
            model.fit(self.X.iloc[train_rows], self.y.iloc[train_rows])
            fit_times.append(time.perf_counter() - started)
            proba = model.predict_proba(self.X.iloc[valid_rows])
            scores.append(float(roc_auc_score(self.y.iloc[valid_rows], proba[:, 1])))
            trial.report(float(np.mean(scores)), i)
            if trial.should_prune():
                if self.on_trial is not None:
                    running = float(np.mean(scores))
                    self.on_trial(family["name"], trial.number, params, mean=running, std=None)
                raise optuna.TrialPruned
        return float(np.mean(scores)), float(np.std(scores)), float(np.mean(fit_times))

    def tune(self, family: dict[str, Any]) -> tuple[float, dict[str, Any]]:
        """Run the family's study; its best (first highest) completed trial's score and params."""
        seed = self.recipe["seed"]
        study = optuna.create_study(
            direction="maximize",
            sampler=optuna.samplers.TPESampler(seed=seed),
            pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1),
        )
        trial_params: dict[int, dict[str, Any]] = {}

        def objective(trial: optuna.Trial) -> float:
            params = suggest(trial, family)
            trial_params[trial.number] = params
            mean, std, fit_time = self.cross_validate(family, params, trial)
            if self.on_trial is not None:
                self.on_trial(
                    family["name"], trial.number, params, mean=mean, std=std, fit_time=fit_time
                )
            return mean

        study.optimize(
            objective, n_trials=self.recipe["trials"], catch=(ValueError, ArithmeticError)
        )
        self.histories[family["name"]] = [[t.state.name, t.value] for t in study.trials]
        complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        best = max(complete, key=lambda t: t.value if t.value is not None else float("-inf"))
        return float(best.value or 0.0), trial_params[best.number]

    def run(self) -> tuple[dict[str, Any], float, dict[str, Any], Any]:
        """Tune every family, refit the best on all rows: (family, score, params, model)."""
        results = [(family, *self.tune(family)) for family in self.recipe["families"]]
        results.sort(key=lambda r: -r[1])  # stable: ties keep the family order, as shipyard
        family, score, params = results[0]
        model = build_pipeline(family, self.columns, params).fit(self.X, self.y)
        return family, score, params, model


def side_shipyard(
    recipe: dict[str, Any], folder: Path, *, fold_jobs: int | None = None
) -> dict[str, Any]:
    """``sy.train`` with its defaults (a trial's folds on every core), or ``fold_jobs=1``."""
    import shipyard as sy

    frame, _, _ = load_data(recipe["target"])
    names = [f["name"] for f in recipe["families"]]
    t0 = time.perf_counter()
    result = sy.train(
        frame,
        recipe["target"],
        models=names,
        tune=recipe["trials"],
        cv=recipe["folds"],
        seed=recipe["seed"],
        fold_jobs=fold_jobs,
    )
    sy.flush()
    seconds = time.perf_counter() - t0

    from shipyard.training.cv import close_storage, optuna_storage

    storage = optuna_storage(sy.tracker().settings.db_url)
    histories = {}
    for name in names:
        [study_name] = [
            s for s in optuna.get_all_study_names(storage=storage) if s.endswith(f"-{name}")
        ]
        study = optuna.load_study(study_name=study_name, storage=storage)
        histories[name] = [[t.state.name, t.value] for t in study.trials]
    close_storage(storage)
    return {
        "seconds": seconds,
        "best_family": result.best.family,
        "best_score": result.best.scores[result.metric][0],
        "best_params": result.best.params,
        "histories": histories,
        "runs": len(sy.search_runs(output_format="list")),
    }


def side_optuna(recipe: dict[str, Any], folder: Path) -> dict[str, Any]:
    _, X, y = load_data(recipe["target"])
    t0 = time.perf_counter()
    job = HandTuning(recipe, X, y)
    family, score, params, _ = job.run()
    seconds = time.perf_counter() - t0
    return {
        "seconds": seconds,
        "best_family": family["name"],
        "best_score": score,
        "best_params": params,
        "histories": job.histories,
        "runs": 0,
    }


def side_optuna_mlflow(recipe: dict[str, Any], folder: Path) -> dict[str, Any]:
    import mlflow
    import mlflow.sklearn

    _, X, y = load_data(recipe["target"])
    metric = recipe["metric"]
    t0 = time.perf_counter()
    mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
    experiment = mlflow.MlflowClient().create_experiment(
        "tuning", artifact_location=(folder / "artifacts").as_uri()
    )
    mlflow.set_experiment(experiment_id=experiment)

    def log_trial(
        family: str,
        number: int,
        params: dict[str, Any],
        *,
        mean: float,
        std: float | None,
        fit_time: float = 0.0,
    ) -> None:
        state = "pruned" if std is None else "complete"
        with mlflow.start_run(run_name=f"{family} trial {number}", nested=True):
            mlflow.log_params({"model": family, **params})
            values = {f"cv_{metric}": mean}
            if std is not None:
                values.update({f"cv_{metric}_std": std, "fit_time_s": fit_time})
            mlflow.log_metrics(values)
            mlflow.set_tags({"trial": number, "state": state})

    with mlflow.start_run(run_name=f"tune {recipe['target']}"):
        mlflow.log_params(
            {
                "models": ",".join(f["name"] for f in recipe["families"]),
                "trials": recipe["trials"],
                "cv": recipe["folds"],
                "seed": recipe["seed"],
                "metric": metric,
            }
        )
        job = HandTuning(recipe, X, y, on_trial=log_trial)
        family, score, params, model = job.run()  # the refit is inside
        mlflow.log_metric(f"best_cv_{metric}", score)
        with mlflow.start_run(run_name=f"best: {family['name']}", nested=True):
            mlflow.log_params({"model": family["name"], **params})
            mlflow.log_metric(f"cv_{metric}", score)
            mlflow.sklearn.log_model(
                model, name="model", input_example=X.head(5), skops_trusted_types=SKOPS_TRUSTED
            )
    seconds = time.perf_counter() - t0
    runs = len(mlflow.search_runs(experiment_ids=[experiment], output_format="list"))
    return {
        "seconds": seconds,
        "best_family": family["name"],
        "best_score": score,
        "best_params": params,
        "histories": job.histories,
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("side", choices=SIDES)
    parser.add_argument("--recipe", type=Path, required=True, help="job JSON from training.py")
    parser.add_argument("--dir", type=Path, required=True, help="fresh folder for the store")
    args = parser.parse_args()
    recipe = json.loads(args.recipe.read_text())
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    run = {
        "shipyard": side_shipyard,
        "shipyard-1core": lambda recipe, folder: side_shipyard(recipe, folder, fold_jobs=1),
        "optuna": side_optuna,
        "optuna-mlflow": side_optuna_mlflow,
    }
    emit("RESULT", run[args.side](recipe, args.dir))


if __name__ == "__main__":
    sys.exit(main())
