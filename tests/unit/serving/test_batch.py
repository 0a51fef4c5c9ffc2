"""Batch scoring: chunked CSV and Parquet in, predictions out, nothing half-written."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shipyard.core.errors import InvalidInputError, SchemaMismatchError
from shipyard.serving.batch import BatchReport, score_file

N_ROWS = 569  # breast cancer


@pytest.fixture(scope="module")
def fitted() -> tuple[Any, pd.DataFrame]:
    """A scaled logistic regression on scikit-learn's bundled breast-cancer data."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y), X


@pytest.fixture
def registered(sy: Any, fitted: tuple[Any, pd.DataFrame]) -> Any:
    """The model, logged by a run and registered as cancer@1, loaded back."""
    model, X = fitted
    with sy.start_run() as run:
        sy.log_model(model, "model", input_example=X.head(5))
    version = sy.register_model(run.run_id, "cancer")
    return sy.load_model(version.ref)


def _with_ids(X: pd.DataFrame) -> pd.DataFrame:
    frame = X.copy()
    frame.insert(0, "id", [f"c{i:04d}" for i in range(len(X))])
    frame["comment"] = "ignored"  # extra columns are not the model's business
    return frame


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") or "out" in p.name)


def test_parquet_in_chunks_gives_the_models_predictions(
    registered: Any, fitted: tuple[Any, pd.DataFrame], tmp_path: Path
) -> None:
    model, X = fitted
    source = tmp_path / "customers.parquet"
    _with_ids(X).to_parquet(source, index=False)
    calls: list[tuple[int, int | None]] = []

    report = score_file(
        registered, source, tmp_path / "out.parquet", model_ref="cancer@1", version=1,
        chunk_rows=100, progress=lambda done, total: calls.append((done, total)),
    )  # fmt: skip

    out = pd.read_parquet(tmp_path / "out.parquet")
    assert list(out.columns) == [
        "id", "prediction", "proba_0", "proba_1", "model", "model_version"
    ]  # fmt: skip
    assert out["id"].tolist() == [f"c{i:04d}" for i in range(N_ROWS)]
    np.testing.assert_array_equal(out["prediction"].to_numpy(), model.predict(X))
    np.testing.assert_allclose(out[["proba_0", "proba_1"]].to_numpy(), model.predict_proba(X))
    assert set(out["model"]) == {"cancer@1"} and set(out["model_version"]) == {1}
    assert out["model_version"].dtype == np.int64
    assert isinstance(report, BatchReport)
    assert (report.rows, report.chunks, report.output) == (N_ROWS, 6, tmp_path / "out.parquet")
    assert report.columns == tuple(out.columns) and report.rows_per_second > 0
    assert calls == [(min(100 * i, N_ROWS), N_ROWS) for i in range(1, 7)]
    assert _leftovers(tmp_path) == ["out.parquet"], "no temporary file is left"


def test_csv_without_id_gets_row_numbers_and_writes_csv(
    registered: Any, fitted: tuple[Any, pd.DataFrame], tmp_path: Path
) -> None:
    model, X = fitted
    source = tmp_path / "customers.csv.gz"
    X.to_csv(source, index=False)
    calls: list[tuple[int, int | None]] = []

    report = score_file(
        registered, source, tmp_path / "out.csv", model_ref="cancer@1", version=1,
        chunk_rows=100, proba=False, progress=lambda done, total: calls.append((done, total)),
    )  # fmt: skip

    out = pd.read_csv(tmp_path / "out.csv")
    assert list(out.columns) == ["row", "prediction", "model", "model_version"]
    assert out["row"].tolist() == list(range(N_ROWS)), "one header, rows numbered across chunks"
    np.testing.assert_array_equal(out["prediction"].to_numpy(), model.predict(X))
    assert report.chunks == 6 and calls[-1] == (N_ROWS, None)


def test_csv_ids_are_kept_as_written(registered: Any, fitted: tuple[Any, pd.DataFrame],
                                     tmp_path: Path) -> None:  # fmt: skip
    model, X = fitted
    frame = X.copy()
    frame.insert(3, "customer", [f"{i:06d}" for i in range(len(X))])  # leading zeros
    frame.to_csv(tmp_path / "in.csv", index=False)

    score_file(registered, tmp_path / "in.csv", tmp_path / "out.parquet", model_ref="cancer@1",
               version=1, id_column="customer", chunk_rows=100)  # fmt: skip

    out = pd.read_parquet(tmp_path / "out.parquet")
    assert out.columns[0] == "customer"
    assert out["customer"].tolist() == [f"{i:06d}" for i in range(N_ROWS)]
    np.testing.assert_array_equal(out["prediction"].to_numpy(), model.predict(X))


def test_a_missing_column_is_named_before_anything_is_written(
    registered: Any, fitted: tuple[Any, pd.DataFrame], tmp_path: Path
) -> None:
    _, X = fitted
    source = tmp_path / "partial.parquet"
    X.drop(columns=["mean radius"]).to_parquet(source, index=False)

    with pytest.raises(SchemaMismatchError, match=r"partial\.parquet lacks column\(s\) 'mean "
                       r"radius'") as caught:  # fmt: skip
        score_file(registered, source, tmp_path / "out.parquet", model_ref="cancer@1", version=1)
    assert caught.value.details["missing"] == ["mean radius"]
    assert _leftovers(tmp_path) == [], "no output and no temporary file"


def test_a_bad_chunk_midway_leaves_no_output(
    registered: Any, fitted: tuple[Any, pd.DataFrame], tmp_path: Path
) -> None:
    _, X = fitted
    frame = X.astype({"mean area": object})
    frame.loc[350, "mean area"] = "oops"
    frame.to_csv(tmp_path / "in.csv", index=False)
    (tmp_path / "out.csv").write_text("previous output\n")

    with pytest.raises(SchemaMismatchError, match=r"rows 300-399 of .*in\.csv.*'mean area'"):
        score_file(registered, tmp_path / "in.csv", tmp_path / "out.csv", model_ref="cancer@1",
                   version=1, chunk_rows=100)  # fmt: skip
    assert (tmp_path / "out.csv").read_text() == "previous output\n", "the old output stays"
    assert _leftovers(tmp_path) == ["out.csv"]


@pytest.mark.parametrize(
    ("input_name", "output_name", "options", "message"),
    [
        ("nowhere.parquet", "out.parquet", {}, "does not exist"),
        ("in.txt", "out.parquet", {}, r"unknown extension; use \.parquet, \.csv or \.csv\.gz"),
        ("in.parquet", "out.json", {}, "output file .*out.json has an unknown extension"),
        ("in.parquet", "out.parquet", {"id_column": "nope"}, "id column 'nope' is not in"),
        ("in.parquet", "out.parquet", {"chunk_rows": 0}, "chunk_rows must be"),
        ("in.parquet", "in.parquet", {}, "is the input file"),
    ],
)
def test_bad_paths_and_options_say_what_to_do(
    registered: Any, fitted: tuple[Any, pd.DataFrame], tmp_path: Path, *, input_name: str,
    output_name: str, options: dict[str, Any], message: str,
) -> None:  # fmt: skip
    _, X = fitted
    X.to_parquet(tmp_path / "in.parquet", index=False)
    (tmp_path / "in.txt").write_text("a,b\n1,2\n")
    with pytest.raises(InvalidInputError, match=message):
        score_file(registered, tmp_path / input_name, tmp_path / output_name,
                   model_ref="cancer@1", version=1, **options)  # fmt: skip


@pytest.mark.filterwarnings("ignore:The inplace keyword in DataFrame.reset_index")  # dask's
@pytest.mark.skipif(
    importlib.util.find_spec("distributed") is None,
    reason="Dask (distributed) is not installed: pip install 'shipyard[dask]'",
)
def test_a_dask_cluster_gives_the_same_output(
    registered: Any, fitted: tuple[Any, pd.DataFrame], tmp_path: Path
) -> None:
    from distributed import Client, LocalCluster

    _, X = fitted
    source = tmp_path / "in.parquet"
    X.to_parquet(source, index=False, row_group_size=100)
    local = score_file(registered, source, tmp_path / "local.parquet", model_ref="cancer@1",
                       version=1, chunk_rows=100)  # fmt: skip
    calls: list[tuple[int, int | None]] = []
    with (
        LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        report = score_file(
            registered, source, tmp_path / "dask.parquet", model_ref="cancer@1", version=1,
            chunk_rows=100, scheduler=client,
            progress=lambda done, total: calls.append((done, total)),
        )  # fmt: skip
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "dask.parquet"), pd.read_parquet(tmp_path / "local.parquet")
    )
    assert report.rows == local.rows == N_ROWS and report.columns == local.columns
    assert report.chunks == 6, "a partition per row group: their order and row numbers hold"
    assert calls == [(min(100 * i, N_ROWS), N_ROWS) for i in range(1, 7)]


def test_a_model_without_signature_gets_every_column_but_the_id(
    sy: Any, fitted: tuple[Any, pd.DataFrame], tmp_path: Path
) -> None:
    model, X = fitted
    with sy.start_run() as run:
        sy.log_model(model, "model")  # no input example: no signature
    loaded = sy.load_model(sy.register_model(run.run_id, "bare").ref)
    assert loaded.signature is None
    frame = X.copy()
    frame.insert(0, "ID", range(100, 100 + len(X)))
    frame.to_parquet(tmp_path / "in.parquet", index=False)

    score_file(loaded, tmp_path / "in.parquet", tmp_path / "out.parquet", model_ref="bare@1",
               version=1)  # fmt: skip

    out = pd.read_parquet(tmp_path / "out.parquet")
    assert out.columns[0] == "ID" and out["ID"].tolist() == list(range(100, 100 + N_ROWS))
    np.testing.assert_array_equal(out["prediction"].to_numpy(), model.predict(X))
