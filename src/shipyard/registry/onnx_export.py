"""Export a scikit-learn model to ONNX, and prove the export predicts what the model does.

:func:`export_onnx` converts with skl2onnx, runs the result with onnxruntime on an
example frame and compares predictions (and probabilities) with scikit-learn's, so a
graph that computes something else is never returned.

Inputs of the graph: a frame whose columns are all numeric (or boolean), for a model
without a ``ColumnTransformer``, becomes one float32 tensor ``input`` of shape
``[n, n_columns]`` (columns in the frame's order); any other frame becomes one
``[n, 1]`` input per column, named like the column (float32 for numbers, string
otherwise), which is what a ``ColumnTransformer`` selecting columns by name needs.
Classifiers are converted with ``options={"zipmap": False}``: probabilities come out
as one float tensor ``[n, k]`` instead of a list of dicts. Both shapes are what the
``onnx`` flavor (:mod:`shipyard.registry.flavors.onnx`) feeds and reads.

Needs the ``onnx`` extra: ``pip install 'shipyard[onnx]'``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from shipyard.core.errors import InvalidInputError, InvalidStateError
from shipyard.registry.flavors import import_for

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


def _leaf_steps(model: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every estimator inside pipelines, column transformers and feature unions."""
    here = path or type(model).__name__
    if hasattr(model, "steps"):
        for name, step in model.steps:
            yield from _leaf_steps(step, f"{here}/{name}")
    elif hasattr(model, "transformers"):
        fitted = getattr(model, "transformers_", model.transformers)
        for name, step, _ in fitted:
            yield from _leaf_steps(step, f"{here}/{name}")
    elif hasattr(model, "transformer_list"):
        for name, step in model.transformer_list:
            yield from _leaf_steps(step, f"{here}/{name}")
    elif not isinstance(model, str):  # "passthrough" / "drop"
        yield here, model


def _has_column_transformer(model: Any) -> bool:
    if hasattr(model, "transformers"):
        return True
    if hasattr(model, "steps"):
        return any(_has_column_transformer(step) for _, step in model.steps)
    if hasattr(model, "transformer_list"):
        return any(_has_column_transformer(step) for _, step in model.transformer_list)
    return False


def _initial_types(model: Any, example: pd.DataFrame) -> list[tuple[str, Any]]:
    import pandas as pd
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    def numeric(s: pd.Series) -> bool:
        return bool(pd.api.types.is_numeric_dtype(s.dtype)) and not isinstance(
            s.dtype, pd.CategoricalDtype
        )

    all_numeric = all(numeric(example[c]) for c in example.columns)
    if all_numeric and not _has_column_transformer(model):
        return [("input", FloatTensorType([None, example.shape[1]]))]
    return [
        (str(c), FloatTensorType([None, 1]) if numeric(example[c]) else StringTensorType([None, 1]))
        for c in example.columns
    ]


def _unsupported_steps(model: Any) -> list[str]:
    import skl2onnx

    known = set(skl2onnx.supported_converters(from_sklearn=True))
    return [
        f"{path} ({type(step).__name__})"
        for path, step in _leaf_steps(model)
        if type(step).__name__ not in known
    ]


def _convert(model: Any, example: pd.DataFrame) -> bytes:
    from skl2onnx import convert_sklearn
    from sklearn.base import is_classifier

    options = {id(model): {"zipmap": False}} if is_classifier(model) else None
    try:
        proto = convert_sklearn(
            model, initial_types=_initial_types(model, example), options=options
        )
    except (RuntimeError, TypeError, ValueError, NotImplementedError, KeyError) as exc:
        steps = _unsupported_steps(model)
        which = (
            f"step(s) skl2onnx has no converter for: {', '.join(steps)}"
            if steps
            else "a step could not be converted"
        )
        raise InvalidStateError(
            f"cannot export the {type(model).__name__} to ONNX: {which} ({type(exc).__name__}: "
            f"{exc}). Replace those steps with supported ones, register a converter with "
            "skl2onnx.update_registered_converter, or keep the model in the sklearn flavor",
            details={"unsupported": steps},
        ) from None
    return bytes(proto.SerializeToString())


def _mismatch(
    what: str, expected: np.ndarray, got: np.ndarray, *, rtol: float, atol: float
) -> str | None:
    """How ``got`` differs from ``expected`` beyond the tolerance, or None."""
    import numpy as np

    if expected.shape != got.shape:
        return f"{what} have shape {got.shape} in ONNX but {expected.shape} in scikit-learn"
    if expected.dtype.kind in "fc" or got.dtype.kind in "fc":
        exp = expected.astype(np.float64)
        close = np.isclose(got.astype(np.float64), exp, rtol=rtol, atol=atol, equal_nan=True)
        if close.all():
            return None
        diff = np.abs(got.astype(np.float64) - exp)
        diff = np.where(np.isnan(diff), np.inf, diff)
        rows = int((~close).reshape(len(close), -1).any(axis=1).sum())
        worst = np.unravel_index(int(np.argmax(diff)), diff.shape)
        return (
            f"{what} differ on {rows} of {len(close)} rows (largest difference "
            f"{float(diff[worst]):.3g} at {tuple(int(i) for i in worst)}; tolerance rtol={rtol}, "
            f"atol={atol})"
        )
    same = expected.astype(str) == got.astype(str)
    if same.all():
        return None
    first = int(np.argmin(same))
    return (
        f"{what} differ on {int((~same).sum())} of {len(same)} rows (first at row {first}: "
        f"scikit-learn {expected[first]!r}, ONNX {got[first]!r})"
    )


def export_onnx(
    model: Any, example: pd.DataFrame, *, rtol: float = 1e-4, atol: float = 1e-5
) -> bytes:
    """Convert a fitted scikit-learn model to ONNX and check it against the original.

    Args:
        model: A fitted estimator or pipeline whose steps skl2onnx can convert.
        example: Input rows to compare on (also fixes the graph's inputs, see the
            module docstring); use rows like the ones the model will see.
        rtol: Relative tolerance for numeric outputs (ONNX computes in float32).
        atol: Absolute tolerance for numeric outputs.

    Returns:
        The ONNX model as bytes (for ``package_model(..., flavor="onnx")``).

    Raises:
        InvalidInputError: ``example`` is not a non-empty DataFrame.
        InvalidStateError: The onnx extra is missing, a step cannot be converted (the
            message names it), or ONNX outputs differ from scikit-learn's (the message
            says which outputs, on how many rows and by how much).

    Example::

        onnx_bytes = export_onnx(pipeline, X_test.head(200))
        files = package_model(onnx_bytes, flavor="onnx", input_example=X_test.head(5))
    """
    import numpy as np
    import pandas as pd

    if not isinstance(example, pd.DataFrame) or example.empty:
        raise InvalidInputError(
            f"example must be a non-empty pandas DataFrame, got {type(example).__name__}; pass "
            "a few rows of the data the model predicts on"
        )
    import_for("skl2onnx", flavor="onnx", extra="onnx")
    from shipyard.registry.flavors import get_flavor
    from shipyard.registry.flavors.onnx import MODEL_FILE, graph_classes

    data = _convert(model, example)
    onnx = import_for("onnx", flavor="onnx", extra="onnx")
    labels = graph_classes(onnx.load_model_from_string(data))
    flavor = get_flavor("onnx")
    native = flavor.load({MODEL_FILE: data}, {"classes": labels} if labels else {})

    problems = []
    got = flavor.predict(native, example)
    expected = np.asarray(model.predict(example))
    if expected.ndim == 2 and expected.shape[1] == 1:
        expected = expected.ravel()
    problem = _mismatch("predictions", expected, got, rtol=rtol, atol=atol)
    if problem:
        problems.append(problem)
    if hasattr(model, "predict_proba"):
        proba = flavor.predict_proba(native, example)
        if proba is None:
            problems.append("probabilities are missing from the ONNX graph")
        else:
            expected_proba = np.asarray(model.predict_proba(example))
            problem = _mismatch("probabilities", expected_proba, proba, rtol=rtol, atol=atol)
            if problem:
                problems.append(problem)
    if problems:
        raise InvalidStateError(
            f"the ONNX export of the {type(model).__name__} does not match it on the example: "
            f"{'; '.join(problems)}. Rows near a decision boundary can flip in float32: widen "
            "rtol/atol if the differences are acceptable, otherwise keep the sklearn flavor",
            details={"problems": problems},
        )
    return data
