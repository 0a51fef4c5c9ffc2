"""The models a server serves, and swapping one when its alias moves.

A :class:`ModelSlot` holds one immutable :class:`ServedModel` for a reference such as
``churn@production``. A request reads ``slot.current`` once and uses that snapshot to
the end, so replacing it (one attribute assignment) never disturbs a request in
flight. :meth:`ModelSlot.refresh` asks the registry which version the reference names
now; a new version is loaded (every hash checked), tried on its stored input example
and swapped in only if that works; otherwise the old model stays and the reason is
kept in ``last_error``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shipyard.core.errors import InvalidStateError, ShipyardError

if TYPE_CHECKING:
    from shipyard.core.entities import ModelVersion
    from shipyard.registry.model_folder import LoadedModel
    from shipyard.registry.registry import ModelRegistry

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServedModel:
    """A loaded version and what requests need of it."""

    ref: str  # as configured: churn@production
    name: str
    version: ModelVersion
    model: LoadedModel
    classes: list[Any] | None
    has_proba: bool
    engine: str = "native"  # or "onnx": the same model converted, outputs checked
    loaded_at: float = field(default_factory=time.time)

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version.version}"


def load_served(registry: ModelRegistry, ref: str, *, fast: bool = False) -> ServedModel:
    """Load ``ref`` and try it on its input example; with ``fast``, serve a scikit-learn
    model through onnxruntime when it converts and gives the same outputs on the example
    (else the model itself, and the reason is logged).

    Raises:
        InvalidStateError: the model fails on its own input example.
    """
    version = registry.get_version(ref)
    model = registry.load(version)
    engine = "native"
    if fast and model.flavor == "sklearn":
        converted = _onnx_engine(model)
        if converted is not None:
            model, engine = converted, "onnx"
    classes = list(model.classes_) if model.classes_ is not None else None
    has_proba = True
    example = model.input_example()
    if example is not None and len(example):
        try:
            predictions = model.predict(example)
        except (ShipyardError, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise InvalidStateError(
                f"{version.ref} fails on its own input example ({type(exc).__name__}: {exc}); "
                "it is not served"
            ) from None
        if len(predictions) != len(example):
            raise InvalidStateError(
                f"{version.ref} returned {len(predictions)} predictions for "
                f"{len(example)} example rows; it is not served"
            )
        try:
            model.predict_proba(example)
        except (ShipyardError, AttributeError, NotImplementedError):
            has_proba = False
    elif classes is None:
        has_proba = False
    return ServedModel(ref, version.name, version, model, classes, has_proba, engine)


def _onnx_engine(model: LoadedModel) -> LoadedModel | None:
    """The model converted to ONNX, or None (with the reason logged) if it cannot be, or
    if onnxruntime disagrees with scikit-learn on the stored input example."""
    import dataclasses

    from shipyard.registry.flavors import get_flavor
    from shipyard.registry.model_folder import LoadedModel as Loaded
    from shipyard.registry.onnx_export import export_onnx

    example = model.input_example()
    if example is None or not len(example):
        logger.info("fast path: %s has no input example to check ONNX on", model.flavor)
        return None
    try:
        data = export_onnx(model.native, example)
        flavor = get_flavor("onnx")
        files, options = flavor.save(data)
        native = flavor.load(files, options)
    except ShipyardError as exc:
        logger.warning("fast path off: %s", exc)
        return None
    meta = dataclasses.replace(model.meta, flavor="onnx", options=options)
    return Loaded(meta=meta, flavor=flavor, native=native, example=model.example_bytes)


class ModelSlot:
    """One served reference; ``current`` is replaced whole when the alias moves."""

    def __init__(self, registry: ModelRegistry, ref: str, *, fast: bool = False) -> None:
        self.registry = registry
        self.ref = ref
        self.fast = fast
        self.current: ServedModel = load_served(registry, ref, fast=fast)
        self.swaps = 0
        self.failed_swaps = 0
        self.last_error = ""
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.current.name

    def refresh(self) -> bool:
        """Swap in the version ``ref`` names now, if it changed and passes its check.

        Returns:
            True if the served version changed.
        """
        with self._lock:  # one refresh at a time; requests never take this lock
            try:
                version = self.registry.get_version(self.ref)
            except ShipyardError as exc:
                self.last_error = f"cannot resolve {self.ref}: {exc}"
                logger.warning("model swap: %s", self.last_error)
                return False
            if version.version == self.current.version.version:
                return False
            try:
                fresh = load_served(self.registry, self.ref, fast=self.fast)
            except (ShipyardError, OSError) as exc:
                self.failed_swaps += 1
                self.last_error = f"kept {self.current.label}: {version.ref} failed: {exc}"
                logger.warning("model swap: %s", self.last_error)
                return False
            old = self.current.label
            self.current = fresh
            self.swaps += 1
            self.last_error = ""
            logger.info("model swap: %s -> %s", old, fresh.label)
            return True


class SwapPoller:
    """A daemon thread refreshing every slot each ``interval`` seconds."""

    def __init__(
        self,
        slots: Sequence[ModelSlot],
        interval: float,
        on_swap: Callable[[ModelSlot], None] | None = None,
    ) -> None:
        self.slots = slots
        self.interval = interval
        self.on_swap = on_swap
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="shipyard-model-swap", daemon=True)

    def start(self) -> None:
        if self.interval > 0:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for slot in self.slots:
                if slot.refresh() and self.on_swap is not None:
                    self.on_swap(slot)
