"""Model folders: a model's files plus ``shipyard-model.json``, checked before loading.

:func:`package_model` turns a fitted model into named files: the flavor's files, an
optional input example (``input_example.json``) and :data:`META_FILE`, which lists
every other file with its BLAKE3 digest and size, the flavor and its options, the
signature, the pinned requirements, the Python version and the class labels.

:func:`load_model_files` reads them back through any ``read(name) -> bytes`` (an
object store, a folder, a zip) and checks every digest *before* the flavor sees a
single byte, so a tampered file is refused and never deserialised.

Example:
    >>> from sklearn.linear_model import LinearRegression
    >>> import pandas as pd
    >>> X = pd.DataFrame({"x": [0.0, 1.0, 2.0]})
    >>> files = package_model(LinearRegression().fit(X, [0.0, 2.0, 4.0]), input_example=X)
    >>> sorted(files)
    ['input_example.json', 'model.skops', 'shipyard-model.json']
    >>> model = load_model_files(files.__getitem__, files[META_FILE])
    >>> model.flavor, model.predict(X).round(6).tolist()
    ('sklearn', [0.0, 2.0, 4.0])
"""

from __future__ import annotations

import copy
import dataclasses
import io
import json
import logging
import posixpath
import re
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shipyard.core.errors import (
    InvalidInputError,
    InvalidStateError,
    SchemaMismatchError,
)
from shipyard.registry.flavors import Flavor, detect_flavor, get_flavor
from shipyard.registry.signature import Signature, as_frame, check_input, infer_signature
from shipyard.store.objects import CorruptObjectError, hash_bytes

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
META_FILE = "shipyard-model.json"
EXAMPLE_FILE = "input_example.json"
_RESERVED = (META_FILE, EXAMPLE_FILE)
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_META_KEYS = (
    "format_version",
    "flavor",
    "files",
    "options",
    "signature",
    "requirements",
    "python_version",
    "task",
    "classes",
    "created_at",
)


def _bad_meta(message: str) -> InvalidStateError:
    return InvalidStateError(
        f"{META_FILE} is not valid: {message}; the model folder is damaged or was not written "
        "by shipyard: register the model again",
        details={"file": META_FILE},
    )


def check_file_name(name: object) -> str:
    """A relative POSIX path with no ``..``, ``.``, empty or absolute parts.

    Raises:
        InvalidInputError: Anything else; the message shows the name.
    """
    if (
        not isinstance(name, str)
        or not name
        or name.startswith("/")
        or "\\" in name
        or posixpath.normpath(name) != name
        or name.split("/", 1)[0] in ("..", ".")
    ):
        raise InvalidInputError(
            f"model file name {name!r} is not a plain relative path such as 'model.skops'"
        )
    return name


@dataclass(frozen=True)
class ModelMeta:
    """What :data:`META_FILE` holds.

    Args:
        format_version: Layout version of this file (:data:`FORMAT_VERSION`).
        flavor: The flavor name.
        files: Every other file of the folder: ``name -> {"digest": blake3 hex, "size"}``.
        options: The flavor's JSON-safe options.
        signature: Input and output columns, or None.
        requirements: Pinned ``package==version`` strings loading needs.
        python_version: ``major.minor.micro`` of the Python that saved it.
        task: ``"classification"``, ``"regression"``, another word, or None.
        classes: Class labels in probability-column order, or None.
        created_at: Milliseconds since the epoch.
    """

    format_version: int
    flavor: str
    files: Mapping[str, Mapping[str, Any]]
    options: Mapping[str, Any]
    signature: Signature | None
    requirements: tuple[str, ...]
    python_version: str
    task: str | None
    classes: tuple[Any, ...] | None
    created_at: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict of all fields."""
        return {
            "format_version": self.format_version,
            "flavor": self.flavor,
            "files": {name: dict(entry) for name, entry in self.files.items()},
            "options": dict(self.options),
            "signature": None if self.signature is None else self.signature.to_dict(),
            "requirements": list(self.requirements),
            "python_version": self.python_version,
            "task": self.task,
            "classes": None if self.classes is None else list(self.classes),
            "created_at": self.created_at,
        }

    def to_json(self) -> bytes:
        """Canonical JSON: sorted keys, no spaces, UTF-8 (equal metas give equal bytes).

        Raises:
            InvalidInputError: Some value is not JSON (NaN, an array, an object).
        """
        try:
            text = json.dumps(
                self.to_dict(), sort_keys=True, separators=(",", ":"), allow_nan=False
            )
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(
                f"the model metadata is not JSON-safe ({exc}); flavor options and class labels "
                "must be strings, finite numbers, booleans, lists and dicts"
            ) from None
        return text.encode()

    @classmethod
    def from_json(cls, data: bytes) -> ModelMeta:
        """Parse :meth:`to_json` output.

        Raises:
            InvalidStateError: Not JSON, a missing or malformed key, or a format version
                newer than this shipyard reads (the message says to upgrade).
        """
        try:
            raw = json.loads(data)
        except (UnicodeDecodeError, ValueError) as exc:
            raise _bad_meta(f"not JSON ({exc})") from None
        if not isinstance(raw, dict):
            raise _bad_meta(f"expected an object, got {type(raw).__name__}")
        missing = [k for k in _META_KEYS if k not in raw]
        if missing:
            raise _bad_meta(f"missing key(s) {', '.join(missing)}")
        version = raw["format_version"]
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise _bad_meta(f"format_version must be a whole number >= 1, got {version!r}")
        if version > FORMAT_VERSION:
            raise InvalidStateError(
                f"the model folder has format version {version}, newer than this shipyard reads "
                f"(up to {FORMAT_VERSION}); upgrade shipyard (pip install -U shipyard) to load it",
                details={"format_version": version},
            )
        return cls(
            format_version=version,
            flavor=_field(raw, "flavor", str),
            files=_files(raw["files"]),
            options=_field(raw, "options", dict),
            signature=_signature(raw["signature"]),
            requirements=tuple(map(str, _field(raw, "requirements", list))),
            python_version=_field(raw, "python_version", str),
            task=None if raw["task"] is None else _field(raw, "task", str),
            classes=None if raw["classes"] is None else tuple(_field(raw, "classes", list)),
            created_at=_field(raw, "created_at", int),
        )


def _field(raw: Mapping[str, Any], key: str, kind: type) -> Any:
    value = raw[key]
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise _bad_meta(f"{key!r} must be a {kind.__name__}, got {value!r:.80}")
    return value


def _files(value: object) -> dict[str, dict[str, Any]]:
    if not isinstance(value, dict):
        raise _bad_meta(f"'files' must be an object, got {type(value).__name__}")
    out: dict[str, dict[str, Any]] = {}
    for name, entry in value.items():
        try:
            check_file_name(name)
        except InvalidInputError as exc:
            raise _bad_meta(exc.message) from None
        if name == META_FILE or not isinstance(entry, dict):
            raise _bad_meta(f"file entry {name!r} is malformed")
        digest, size = entry.get("digest"), entry.get("size")
        if not isinstance(digest, str) or not _DIGEST.match(digest):
            raise _bad_meta(f"file {name!r} has no valid BLAKE3 digest")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise _bad_meta(f"file {name!r} has no valid size")
        out[name] = {"digest": digest, "size": size}
    return out


def _signature(value: object) -> Signature | None:
    if value is None:
        return None
    try:
        return Signature.from_dict(value)
    except InvalidInputError as exc:
        raise _bad_meta(exc.message) from None


# --------------------------------------------------------------------------------------
# packaging


def _example_json(frame: pd.DataFrame) -> bytes:
    text: str = frame.to_json(orient="split", date_format="iso")
    return text.encode()


def package_model(
    model: Any,
    *,
    flavor: str | None = None,
    input_example: Any = None,
    signature: Signature | None = None,
    task: str | None = None,
) -> dict[str, bytes]:
    """All files of a model folder, :data:`META_FILE` included.

    The flavor saves the model; the saved bytes are loaded back once (so a model that
    cannot be loaded is refused now, not in production) and, when ``input_example`` is
    given without a ``signature``, the loaded model's predictions on it complete the
    inferred signature (:func:`~shipyard.registry.signature.infer_signature`).

    Args:
        model: A fitted model.
        flavor: A flavor name; default: :func:`~shipyard.registry.flavors.detect_flavor`.
        input_example: A few input rows (DataFrame, or 2-D array with columns
            ``"0"``, ``"1"``...), stored as :data:`EXAMPLE_FILE`.
        signature: The signature; default: inferred from ``input_example``, else none.
        task: ``"classification"``, ``"regression"``...; default: ``"classification"``
            when the model has class labels, else None.

    Returns:
        ``name -> bytes`` for every file of the folder.

    Raises:
        InvalidInputError: Unknown flavor, a flavor that cannot save this model, bad
            files or options from the flavor, or a bad ``task``.
        SchemaMismatchError: ``input_example`` does not match ``signature``.
        NotFittedError: The model is not fitted.
        InvalidStateError: The saved model cannot be loaded back safely.
    """
    flav = detect_flavor(model) if flavor is None else get_flavor(flavor)
    if flavor is not None and not flav.accepts(model):
        raise InvalidInputError(
            f"the {flav.name} flavor cannot save a {type(model).__name__}; leave flavor=None "
            "to pick one automatically",
            details={"flavor": flav.name},
        )
    if task is not None and (not isinstance(task, str) or not task):
        raise InvalidInputError(f"task must be a non-empty string or None, got {task!r}")
    training = None
    if signature is not None and not isinstance(signature, Signature):
        import pandas as pd

        if not isinstance(signature, pd.DataFrame):
            raise InvalidInputError(
                f"signature must be a Signature or the training data (a DataFrame), got "
                f"{type(signature).__name__}; build one with infer_signature(X)"
            )
        training, signature = signature, None
    files, options = flav.save(model)
    for name in files:
        if check_file_name(name) in _RESERVED:
            raise InvalidInputError(f"the {flav.name} flavor wrote {name!r}, a reserved name")

    native = flav.load(files, options)  # proves the saved bytes load, before anyone relies on it
    classes = flav.classes(native)
    if training is not None:  # ranges and categories seen in training, not in five rows
        head = training.head(256)
        outputs = infer_signature(head, flav.predict(native, head)).outputs
        signature = dataclasses.replace(infer_signature(training), outputs=outputs)
    folder = dict(files)
    if input_example is not None:
        frame = as_frame(input_example)
        if signature is None:
            predictions = flav.predict(native, input_example)
            signature = infer_signature(frame, predictions)
        else:
            problems = check_input(signature, frame)
            if problems:
                raise SchemaMismatchError(
                    f"the input example does not match the signature: {'; '.join(problems)}",
                    details={"problems": problems},
                )
        folder[EXAMPLE_FILE] = _example_json(frame)
    meta = ModelMeta(
        format_version=FORMAT_VERSION,
        flavor=flav.name,
        files={n: {"digest": hash_bytes(b), "size": len(b)} for n, b in sorted(folder.items())},
        options=options,
        signature=signature,
        requirements=tuple(flav.requirements(options)),
        python_version=".".join(map(str, sys.version_info[:3])),
        task=task if task is not None else ("classification" if classes else None),
        classes=None if classes is None else tuple(classes),
        created_at=time.time_ns() // 1_000_000,
    )
    folder[META_FILE] = meta.to_json()
    logger.debug("packaged a %s model: %d files", flav.name, len(folder))
    return folder


# --------------------------------------------------------------------------------------
# loading


def load_model_files(read: Callable[[str], bytes], meta_bytes: bytes) -> LoadedModel:
    """Load a model folder, checking every file's digest before deserialising anything.

    Args:
        read: Returns the bytes of a file of the folder by its name.
        meta_bytes: The bytes of :data:`META_FILE`.

    Returns:
        The :class:`LoadedModel`.

    Raises:
        InvalidStateError: The metadata is bad, names a flavor not known here, or the
            flavor refuses the files (untrusted types, a class that is not installed).
        CorruptObjectError: A file's bytes do not match the digest in the metadata (the
            message names the file and both digests); nothing was deserialised.
    """
    meta = ModelMeta.from_json(meta_bytes)
    try:
        flavor = get_flavor(meta.flavor)
    except InvalidInputError as exc:
        raise InvalidStateError(
            f"the model was saved with flavor {meta.flavor!r}, not known here ({exc.message})",
            details={"flavor": meta.flavor},
        ) from None
    contents: dict[str, bytes] = {}
    for name, entry in meta.files.items():
        data = bytes(read(name))
        digest = hash_bytes(data)
        if digest != entry["digest"] or len(data) != entry["size"]:
            raise CorruptObjectError(
                f"model file {name!r} has BLAKE3 {digest} ({len(data):,} bytes) but the model's "
                f"metadata lists {entry['digest']} ({entry['size']:,} bytes); it was changed "
                "after the model was saved, so it is not loaded. Restore it from a backup or "
                "register the model again",
                details={"file": name, "expected": entry["digest"], "actual": digest},
            )
        contents[name] = data
    example = contents.pop(EXAMPLE_FILE, None)
    if not flavor.cacheable:
        return LoadedModel(meta=meta, flavor=flavor, native=flavor.load(contents, meta.options),
                           example=example)  # fmt: skip
    key = hash_bytes(meta_bytes)  # names every file's digest: same key, same bytes
    native = _LOADED.get(key)
    if native is None:
        native = flavor.load(contents, meta.options)
        _LOADED.put(key, native, sum(len(b) for b in contents.values()))
    # a copy per load: a caller changing its model (set_params, refit) changes no one else's
    return LoadedModel(meta=meta, flavor=flavor, native=copy.deepcopy(native), example=example)


class _LoadedModels:
    """Models this process loaded, by metadata digest, least recently used out first.

    Only what a flavor loaded here from hash-checked bytes is kept; every load still
    reads and checks every file before a copy is handed out, so a file changed on disk
    is refused exactly as on a first load.
    """

    def __init__(self, *, max_models: int = 8, max_bytes: int = 512 * 2**20) -> None:
        self.max_models, self.max_bytes = max_models, max_bytes
        self._items: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Any:
        with self._lock:
            found = self._items.get(key)
            if found is None:
                return None
            self._items.move_to_end(key)
            return found[0]

    def put(self, key: str, native: Any, size: int) -> None:
        if size > self.max_bytes:
            return
        with self._lock:
            self._items[key] = (native, size)
            self._items.move_to_end(key)
            while len(self._items) > self.max_models or (
                sum(n for _, n in self._items.values()) > self.max_bytes
            ):
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_LOADED = _LoadedModels()


class LoadedModel:
    """A model loaded from its folder, with its metadata and signature.

    Args:
        meta: The parsed :data:`META_FILE`.
        flavor: The flavor that loaded it.
        native: The native model the flavor returned.
        example: The bytes of :data:`EXAMPLE_FILE`, if any.
    """

    def __init__(
        self, *, meta: ModelMeta, flavor: Flavor, native: Any, example: bytes | None = None
    ) -> None:
        self.meta = meta
        self.native = native
        self._flavor = flavor
        self._example = example

    def __repr__(self) -> str:
        return f"<LoadedModel flavor={self.flavor!r} task={self.meta.task!r}>"

    @property
    def flavor(self) -> str:
        """The flavor name."""
        return self._flavor.name

    @property
    def example_bytes(self) -> bytes | None:
        """The stored input example as saved (JSON), or None."""
        return self._example

    @property
    def signature(self) -> Signature | None:
        """The signature, or None if the model was saved without one."""
        return self.meta.signature

    @property
    def classes_(self) -> list[Any] | None:
        """Class labels in probability-column order, or None."""
        labels = self._flavor.classes(self.native)
        if labels is None and self.meta.classes is not None:
            labels = list(self.meta.classes)
        return labels

    def _conform(self, X: Any) -> Any:
        """``X`` checked against the signature; a DataFrame gets its columns selected."""
        import numpy as np
        import pandas as pd

        sig = self.signature
        if isinstance(X, np.ndarray):
            if sig is None or not sig.inputs:
                return X
            if X.ndim != 2 or X.shape[1] != len(sig.inputs):
                raise SchemaMismatchError(
                    f"the model takes {len(sig.inputs)} input columns "
                    f"({', '.join(sig.input_names[:20])}); got an array of shape {X.shape}",
                    details={"problems": ["wrong shape"]},
                )
            frame = pd.DataFrame(X, columns=sig.input_names)
            self._raise_problems(check_input(sig, frame))
            return X
        if not isinstance(X, pd.DataFrame):
            raise InvalidInputError(
                f"predict expects a pandas DataFrame (or a 2-D numpy array), got "
                f"{type(X).__name__}; build one with pd.DataFrame(rows)"
            )
        if sig is None or not sig.inputs:
            return X
        self._raise_problems(check_input(sig, X))
        by_name = {str(c): c for c in X.columns}
        out = X[[by_name[name] for name in sig.input_names]]
        for spec in sig.inputs:
            col = by_name[spec.name]
            if spec.type == "category" and not isinstance(out[col].dtype, pd.CategoricalDtype):
                dtype = (
                    pd.CategoricalDtype(list(spec.categories)) if spec.categories else "category"
                )
                out = out.assign(**{col: out[col].astype(dtype)})
            elif spec.type == "datetime" and not pd.api.types.is_datetime64_any_dtype(out[col]):
                out = out.assign(**{col: pd.to_datetime(out[col], format="ISO8601")})
        return out

    @staticmethod
    def _raise_problems(problems: list[str]) -> None:
        if problems:
            raise SchemaMismatchError(
                f"the input does not match the model's signature: {'; '.join(problems)}",
                details={"problems": problems},
            )

    def predict(self, X: Any) -> np.ndarray:
        """Predictions for ``X``.

        Args:
            X: A DataFrame (columns are selected and ordered by the signature; extra
                columns are ignored) or a 2-D array in the signature's column order.

        Returns:
            One prediction per row.

        Raises:
            SchemaMismatchError: ``X`` does not match the signature; the message lists
                every problem :func:`~shipyard.registry.signature.check_input` found.
            InvalidInputError: ``X`` is not a DataFrame or 2-D array.
        """
        return self._flavor.predict(self.native, self._conform(X))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities for ``X``, one column per class in :attr:`classes_` order.

        Raises:
            SchemaMismatchError: ``X`` does not match the signature.
            InvalidStateError: The model has no probabilities (a regressor, or a flavor
                or model that does not give them).
        """
        proba = self._flavor.predict_proba(self.native, self._conform(X))
        if proba is None:
            raise InvalidStateError(
                f"flavor {self.flavor} has no probabilities for this model "
                f"({type(self.native).__name__}); use predict",
                details={"flavor": self.flavor},
            )
        return proba

    def predict_checked(self, X: Any) -> np.ndarray:
        """Predictions for ``X`` that the caller already checked and typed against the
        signature, columns in signature order (a server validates each request itself,
        naming the field and row of every problem, and needs no second pass)."""
        return self._flavor.predict(self.native, X)

    def predict_proba_checked(self, X: Any) -> np.ndarray | None:
        """Probabilities for already checked ``X`` (see :meth:`predict_checked`), or None."""
        return self._flavor.predict_proba(self.native, X)

    def input_example(self) -> pd.DataFrame | None:
        """The stored input example, with the signature's types restored, or None."""
        if self._example is None:
            return None
        import pandas as pd

        frame = pd.read_json(
            io.StringIO(self._example.decode()), orient="split", dtype=False, convert_axes=False
        )
        sig = self.signature
        if sig is None:
            return frame
        by_name = {str(c): c for c in frame.columns}
        for spec in sig.inputs:
            col = by_name.get(spec.name)
            if col is None:
                continue
            if spec.type == "datetime":
                frame[col] = pd.to_datetime(frame[col], format="ISO8601")
            elif spec.type == "category":
                cats = list(spec.categories) if spec.categories else None
                frame[col] = pd.Categorical(frame[col], categories=cats)
            elif spec.type == "float":
                frame[col] = frame[col].astype("float64")
        return frame
