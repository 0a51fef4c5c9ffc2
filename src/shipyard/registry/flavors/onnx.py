"""The ONNX flavor: an ONNX graph run with onnxruntime, loaded from bytes.

Inputs. A graph with one 2-D input is fed the whole frame as one array of the input's
element type (float32 for ``tensor(float)``); a graph with several inputs is fed one
``[n, 1]`` column per input, taken from the DataFrame column of the same name (what
skl2onnx builds for a ``ColumnTransformer`` over named columns).

Outputs follow skl2onnx's conventions. A regressor has one output (``variable``,
shape ``[n, 1]``, flattened to ``[n]``). A classifier has a label output first and a
probability output second, either a tensor ``[n, k]`` (converted with
``options={"zipmap": False}``, which :func:`shipyard.registry.onnx_export.export_onnx`
uses: faster) or a list of ``{label: probability}`` dicts (the default ``ZipMap``).
The class labels are read from the graph when the model is saved.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shipyard.core.errors import InvalidInputError, InvalidStateError
from shipyard.registry.flavors import Flavor, import_for, one_file, pinned

if TYPE_CHECKING:
    import numpy as np

MODEL_FILE = "model.onnx"
_LABEL_ATTRS = ("classlabels_strings", "classlabels_int64s", "classlabels_ints")
_NUMPY_TYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(bool)": "bool",
    "tensor(string)": "object",
}


def _runtime_errors(ort: Any) -> tuple[type[BaseException], ...]:
    state = ort.capi.onnxruntime_pybind11_state
    names = ("Fail", "InvalidArgument", "InvalidProtobuf", "InvalidGraph", "RuntimeException")
    found = tuple(getattr(state, n) for n in names if hasattr(state, n))
    return (*found, NotImplementedError)


def graph_classes(proto: Any) -> list[Any] | None:
    """Class labels stored in an ONNX graph's classifier (or ZipMap) node, or None.

    Args:
        proto: An ``onnx.ModelProto``.

    Returns:
        The labels of the last node that lists them, in probability-column order.
    """
    import onnx.helper

    found: list[Any] | None = None
    for node in proto.graph.node:
        for attr in node.attribute:
            if attr.name in _LABEL_ATTRS:
                values = onnx.helper.get_attribute_value(attr)
                labels = [v.decode() if isinstance(v, bytes) else int(v) for v in values]
                if labels:
                    found = labels
    return found


@dataclass(frozen=True)
class OnnxModel:
    """What the onnx flavor loads: an ``onnxruntime.InferenceSession`` and the class labels.

    Args:
        session: The inference session.
        classes: Class labels in probability-column order, or None (regressors, or
            graphs that do not name them).
    """

    session: Any
    classes: tuple[Any, ...] | None = None

    def run(self, X: Any) -> list[Any]:
        """All outputs of the graph for ``X`` (a DataFrame or a 2-D array).

        Raises:
            InvalidInputError: ``X`` does not fit the graph's inputs.
        """
        import onnxruntime as ort

        feed = self._feed(X)
        try:
            return list(self.session.run(None, feed))
        except _runtime_errors(ort) as exc:
            raise InvalidInputError(
                f"onnxruntime refused the input ({exc}); send the columns the model's "
                "signature lists, with its types",
            ) from None

    def _feed(self, X: Any) -> dict[str, Any]:
        import numpy as np
        import pandas as pd

        inputs = self.session.get_inputs()
        if len(inputs) == 1 and (
            not isinstance(X, pd.DataFrame) or inputs[0].name not in X.columns or X.shape[1] > 1
        ):
            spec = inputs[0]
            return {spec.name: _as_type(np.asarray(X), spec.type, spec.name)}
        if not isinstance(X, pd.DataFrame):
            raise InvalidInputError(
                f"this ONNX model takes {len(inputs)} named inputs "
                f"({', '.join(i.name for i in inputs)}); pass a DataFrame with those columns"
            )
        missing = [i.name for i in inputs if i.name not in X.columns]
        if missing:
            raise InvalidInputError(
                f"the ONNX model needs columns {', '.join(map(repr, missing))} that the input "
                "does not have; add them"
            )
        return {
            i.name: _as_type(X[i.name].to_numpy().reshape(-1, 1), i.type, i.name) for i in inputs
        }

    def predict(self, X: Any) -> np.ndarray:
        """The label output of a classifier, or the (flattened) output of a regressor."""
        import numpy as np

        out = np.asarray(self.run(X)[0])
        return out.ravel() if out.ndim == 2 and out.shape[1] == 1 else out

    def predict_proba(self, X: Any) -> np.ndarray | None:
        """The probability output as an ``[n, k]`` array, or None if the graph has none."""
        outputs = self.run(X)
        if len(outputs) < 2:
            return None
        return _probabilities(outputs[1], self.classes)


def _as_type(values: np.ndarray, onnx_type: str, name: str) -> np.ndarray:
    import numpy as np

    dtype = _NUMPY_TYPES.get(onnx_type)
    if dtype is None:
        raise InvalidStateError(
            f"the ONNX model's input {name!r} has type {onnx_type}, which shipyard cannot feed; "
            f"use one of {', '.join(_NUMPY_TYPES)}"
        )
    if dtype == "object":
        return values.astype(str).astype(object)
    try:
        return values.astype(np.dtype(dtype))
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"the ONNX model's input {name!r} takes {onnx_type} values; converting the input "
            f"failed ({exc}); send numbers"
        ) from None


def _probabilities(out: Any, classes: Sequence[Any] | None) -> np.ndarray:
    import numpy as np

    if isinstance(out, list):  # ZipMap: one {label: probability} dict per row
        if not out:
            return np.empty((0, len(classes or ())))
        labels = list(classes) if classes is not None else list(out[0])
        return np.array([[row[c] for c in labels] for row in out], dtype=np.float64)
    return np.asarray(out)


class OnnxFlavor(Flavor):
    """ONNX models given as bytes or as an ``onnx.ModelProto``."""

    name = "onnx"
    extra = "onnx"

    def accepts(self, model: Any) -> bool:
        """Whether ``model`` is an ``onnx.ModelProto`` or bytes that parse as one."""
        if type(model).__name__ == "ModelProto" and type(model).__module__.startswith("onnx"):
            return True
        if not isinstance(model, (bytes, bytearray)):
            return False
        try:
            _parse(bytes(model))
        except (InvalidInputError, InvalidStateError):
            return False
        return True

    def save(self, model: Any) -> tuple[dict[str, bytes], dict[str, Any]]:
        """``model.onnx`` and the class labels found in the graph.

        Raises:
            InvalidInputError: Bytes that are not an ONNX model.
        """
        if isinstance(model, (bytes, bytearray)):
            data = bytes(model)
            proto = _parse(data)
        else:
            proto = model
            data = model.SerializeToString()
        options: dict[str, Any] = {
            "opset": {o.domain or "ai.onnx": o.version for o in proto.opset_import}
        }
        labels = graph_classes(proto)
        if labels is not None:
            options["classes"] = labels
        return {MODEL_FILE: data}, options

    def load(self, files: Mapping[str, bytes], options: Mapping[str, Any]) -> OnnxModel:
        """An :class:`OnnxModel` around an ``InferenceSession`` built from the bytes.

        Raises:
            InvalidStateError: onnxruntime is missing or cannot load the graph.
        """
        ort = import_for("onnxruntime", flavor=self.name, extra=self.extra)
        data = one_file(files, MODEL_FILE, flavor=self.name)
        try:
            session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
        except _runtime_errors(ort) as exc:
            raise InvalidStateError(
                f"onnxruntime {ort.__version__} could not load the ONNX model ({exc}); install "
                "the onnxruntime version in the model's requirements and try again",
                details={"flavor": self.name},
            ) from None
        labels = options.get("classes")
        return OnnxModel(session=session, classes=None if labels is None else tuple(labels))

    def requirements(self, options: Mapping[str, Any] | None = None) -> list[str]:
        """onnxruntime and NumPy."""
        return pinned("onnxruntime", "numpy")

    def predict(self, native: Any, X: Any) -> np.ndarray:
        """:meth:`OnnxModel.predict`."""
        return _wrap(native).predict(X)

    def predict_proba(self, native: Any, X: Any) -> np.ndarray | None:
        """:meth:`OnnxModel.predict_proba`."""
        return _wrap(native).predict_proba(X)

    def classes(self, native: Any) -> list[Any] | None:
        """The class labels read from the graph, or None."""
        labels = _wrap(native).classes
        return None if labels is None else list(labels)


def _parse(data: bytes) -> Any:
    onnx = import_for("onnx", flavor="onnx", extra="onnx")
    from google.protobuf.message import DecodeError

    try:
        proto = onnx.load_model_from_string(data)
    except DecodeError as exc:
        raise InvalidInputError(f"the bytes are not an ONNX model ({exc})") from None
    if proto.ir_version <= 0 or not proto.graph.node:
        raise InvalidInputError(
            "the bytes parse as protobuf but hold no ONNX graph; pass the bytes of an .onnx file"
        )
    return proto


def _wrap(native: Any) -> OnnxModel:
    if isinstance(native, OnnxModel):
        return native
    if type(native).__name__ == "InferenceSession":
        return OnnxModel(session=native)
    raise InvalidInputError(
        f"the onnx flavor predicts with an OnnxModel or an InferenceSession, got "
        f"{type(native).__name__}; load the model with load_model_files first"
    )


FLAVOR = OnnxFlavor()
