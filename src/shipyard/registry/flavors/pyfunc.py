"""The pyfunc flavor: your own Python class, saved as its import path plus state files.

Nothing is pickled. Saving records the class as ``"module:QualName"``, its JSON
``config`` and the bytes :meth:`PythonModel.get_state` returns; loading imports that
class from the code installed where the model is loaded, checks it is a
:class:`PythonModel`, and calls :meth:`PythonModel.from_state`. The class must
therefore live in an importable module (not ``__main__``, not inside a function).

Example:
    >>> class Doubler(PythonModel):   # in real code: at the top level of a module
    ...     def predict(self, X):
    ...         return [2 * x for x in X]
    >>> Doubler(config={"factor": 2}).predict([1, 2])
    [2, 4]
"""

from __future__ import annotations

import importlib
import json
import posixpath
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self

from shipyard.core.errors import InvalidInputError, InvalidStateError
from shipyard.registry.flavors import Flavor, pinned, plain_labels

if TYPE_CHECKING:
    import numpy as np

STATE_DIR = "state/"


class PythonModel:
    """Base class of custom models the pyfunc flavor can save.

    Subclasses implement :meth:`predict` and, for classifiers, may define
    ``predict_proba(self, X)`` (one column per class) and a ``classes_`` attribute.
    Whatever the model learned goes in :meth:`get_state` as named bytes (e.g. arrays
    saved with ``numpy.save`` to a ``BytesIO``), and comes back through
    :meth:`from_state`; settings go in :attr:`config` (JSON: strings, numbers,
    booleans, lists, dicts).

    Args:
        config: JSON-safe settings, saved with the model.

    Example::

        class Threshold(PythonModel):          # at module level, in an installed module
            def predict(self, X):
                return (X["score"] > self.config["cut"]).to_numpy()

        package_model(Threshold(config={"cut": 0.5}))
    """

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        self.config: dict[str, Any] = dict(config or {})

    def predict(self, X: Any) -> Any:
        """Predictions for ``X``; subclasses must implement it.

        Raises:
            NotImplementedError: Always, here.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement predict(self, X)")

    def get_state(self) -> dict[str, bytes]:
        """What the model learned, as named bytes (default: nothing)."""
        return {}

    @classmethod
    def from_state(cls, state: dict[str, bytes], config: dict[str, Any]) -> Self:
        """Rebuild the model from :meth:`get_state` output and :attr:`config`.

        The default builds ``cls(config=config)`` and accepts no state: a subclass that
        returns state from :meth:`get_state` overrides this too.

        Raises:
            InvalidStateError: There is state but ``from_state`` was not overridden.
        """
        if state:
            raise InvalidStateError(
                f"{cls.__qualname__} saved state files ({', '.join(sorted(state))}) but does not "
                "override from_state; add a classmethod from_state(cls, state, config) that "
                "rebuilds the model from them"
            )
        return cls(config=config)


def class_path(cls: type) -> str:
    """``"module:QualName"`` of an importable class.

    Args:
        cls: A class.

    Returns:
        The import path.

    Raises:
        InvalidInputError: The class lives in ``__main__`` or a local scope, or importing
            the path does not give the class back; the message says to move it into a
            module.
    """
    module, qualname = cls.__module__, cls.__qualname__
    fix = (
        f"move class {qualname.split('.')[-1]} to the top level of an importable module "
        "(a .py file of your project) and import it from there"
    )
    if module == "__main__" or "<locals>" in qualname:
        where = "the __main__ script" if module == "__main__" else "a function"
        raise InvalidInputError(
            f"class {qualname} is defined in {where}, so it cannot be imported when the model "
            f"is loaded; {fix}",
            details={"class": f"{module}:{qualname}"},
        )
    path = f"{module}:{qualname}"
    if _resolve(path) is not cls:
        raise InvalidInputError(
            f"importing {path} does not give back the class being saved; {fix}",
            details={"class": path},
        )
    return path


def _resolve(path: str) -> Any:
    module, _, qualname = path.partition(":")
    try:
        target: Any = importlib.import_module(module)
    except ImportError:
        return None
    for attr in qualname.split("."):
        target = getattr(target, attr, None)
    return target


def _check_state_name(name: object) -> str:
    if (
        not isinstance(name, str)
        or not name
        or name.startswith("/")
        or "\\" in name
        or posixpath.normpath(name) != name
        or name.startswith("..")
    ):
        raise InvalidInputError(
            f"state file name {name!r} is not a plain relative path; use names such as "
            "'weights.npy' or 'tables/lookup.parquet'"
        )
    return name


class PyfuncFlavor(Flavor):
    """Subclasses of :class:`PythonModel`."""

    name = "pyfunc"
    extra = ""

    def accepts(self, model: Any) -> bool:
        """Whether ``model`` is a :class:`PythonModel` instance."""
        return isinstance(model, PythonModel)

    def save(self, model: Any) -> tuple[dict[str, bytes], dict[str, Any]]:
        """The state under ``state/``, and the class path and config in the options.

        Raises:
            InvalidInputError: Not a PythonModel, a class that cannot be imported back, a
                config that is not JSON, or state that is not named bytes.
        """
        if not isinstance(model, PythonModel):
            raise InvalidInputError(
                f"the pyfunc flavor saves PythonModel subclasses, got {type(model).__name__}"
            )
        path = class_path(type(model))
        try:
            config = json.loads(json.dumps(model.config, allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(
                f"{type(model).__qualname__}.config must be JSON (strings, numbers, booleans, "
                f"lists, dicts): {exc}; keep arrays and objects in get_state() instead"
            ) from None
        state = model.get_state()
        if not isinstance(state, Mapping):
            raise InvalidInputError(
                f"{type(model).__qualname__}.get_state() must return a dict of name -> bytes, "
                f"got {type(state).__name__}"
            )
        files: dict[str, bytes] = {}
        for name, data in state.items():
            if not isinstance(data, (bytes, bytearray, memoryview)):
                raise InvalidInputError(
                    f"{type(model).__qualname__}.get_state()[{name!r}] must be bytes, got "
                    f"{type(data).__name__}; serialise it (numpy.save to io.BytesIO, json...)"
                )
            files[STATE_DIR + _check_state_name(name)] = bytes(data)
        options: dict[str, Any] = {"class": path, "config": config}
        labels = getattr(model, "classes_", None)
        if labels is not None:
            options["classes"] = plain_labels(labels)
        return files, options

    def load(self, files: Mapping[str, bytes], options: Mapping[str, Any]) -> PythonModel:
        """Import the saved class and call its ``from_state``.

        Raises:
            InvalidStateError: The class cannot be imported here, or is not a PythonModel.
        """
        path = str(options.get("class", ""))
        cls = _resolve(path) if ":" in path else None
        if cls is None:
            raise InvalidStateError(
                f"the pyfunc model's class {path!r} cannot be imported here; install the code "
                "that defines it (the same version it was saved with) and try again",
                details={"class": path},
            )
        if not (isinstance(cls, type) and issubclass(cls, PythonModel)):
            raise InvalidStateError(
                f"{path} is not a PythonModel subclass, so shipyard will not call it; the "
                "model folder may have been tampered with",
                details={"class": path},
            )
        state = {
            name[len(STATE_DIR) :]: data
            for name, data in files.items()
            if name.startswith(STATE_DIR)
        }
        config = options.get("config") or {}
        return cls.from_state(state, dict(config))

    def requirements(self, options: Mapping[str, Any] | None = None) -> list[str]:
        """NumPy and the distribution that provides the class's top-level module, if any."""
        module = str((options or {}).get("class", "")).partition(":")[0].split(".", 1)[0]
        return pinned("numpy", *([module] if module else []))

    def predict(self, native: Any, X: Any) -> np.ndarray:
        """``native.predict(X)`` as a NumPy array."""
        import numpy as np

        return np.asarray(native.predict(X))

    def predict_proba(self, native: Any, X: Any) -> np.ndarray | None:
        """``native.predict_proba(X)`` if the class defines it, else None."""
        import numpy as np

        method = getattr(native, "predict_proba", None)
        return None if method is None else np.asarray(method(X))

    def classes(self, native: Any) -> list[Any] | None:
        """``native.classes_`` as a list, or None."""
        labels = getattr(native, "classes_", None)
        return None if labels is None else plain_labels(labels)


FLAVOR = PyfuncFlavor()
