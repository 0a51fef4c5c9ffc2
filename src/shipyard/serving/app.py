"""The model server: an ASGI app (FastAPI) for one or several registered models.

Routes: the Open Inference Protocol v2 REST API (``/v2/health/live|ready``, ``/v2``,
``/v2/models/{name}[/versions/{v}]``, ``.../ready``, ``.../infer``), ``/predict`` and
``/predict_proba`` taking ``records`` or ``columns`` JSON, ``/feedback`` for ground
truth by request id, and ``/metrics`` for Prometheus. Request bodies are read raw and
parsed once with orjson (the OpenAPI document still describes them); each is checked
against the model's signature before the model sees it (:mod:`.validation`). Every
error is a JSON body ``{"error": {"code", "message", "details"}}`` with a 4xx status;
an unexpected failure is a 500 with only the request id, its traceback goes to the log.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import FastAPI, Request, Response

from shipyard.core.errors import InvalidInputError, NotFoundError, ShipyardError
from shipyard.core.plain import jsonable
from shipyard.serving.auth import TokenCheck
from shipyard.serving.batching import MicroBatcher, score
from shipyard.serving.metrics import ServerMetrics
from shipyard.serving.models import ModelSlot, ServedModel, SwapPoller
from shipyard.serving.validation import InputPolicy, check_frame, frame_from_body

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from shipyard.monitoring.prediction_log import PredictionLog

logger = logging.getLogger(__name__)
access_log = logging.getLogger("shipyard.serving.access")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PREDICT_ROLES = frozenset({"predict", "editor", "approver", "admin"})


@dataclass
class ServerConfig:
    """What :func:`create_app` serves and how.

    Attributes:
        policy: input checks (:class:`~shipyard.serving.validation.InputPolicy`).
        max_body_bytes: larger bodies get 413 before they are read.
        poll_interval: seconds between checks whether a served alias moved (0: never).
        require_auth: requests need ``Authorization: Bearer <token>``.
        log_predictions: write every request to the prediction log.
        cors_origins: origins allowed by CORS (none by default).
        fast: serve scikit-learn models through onnxruntime where the conversion gives
            the same outputs on the model's input example.
        batch_max_rows: rows that close a micro-batch (0: no batching, the default).
        batch_timeout: seconds a request waits for others to batch with, at most.
    """

    policy: InputPolicy = field(default_factory=InputPolicy)
    max_body_bytes: int = 8 * 2**20
    poll_interval: float = 5.0
    require_auth: bool = False
    log_predictions: bool = True
    cors_origins: Sequence[str] = ()
    fast: bool = False
    batch_max_rows: int = 0
    batch_timeout: float = 0.002

    def __post_init__(self) -> None:
        if self.max_body_bytes < 1:
            raise InvalidInputError(f"max_body_bytes must be at least 1, got {self.max_body_bytes}")
        if self.poll_interval < 0:
            raise InvalidInputError(f"poll_interval must be >= 0 seconds, got {self.poll_interval}")
        if self.batch_max_rows < 0 or not (0 < self.batch_timeout <= 1):
            raise InvalidInputError(
                "micro-batching takes batch_max_rows >= 0 (0: off) and a timeout above 0 and "
                f"at most 1 second, got {self.batch_max_rows} rows, {self.batch_timeout} s"
            )


class BodyLimit:
    """Pure ASGI middleware: a request id on every response, 413 for bodies over the limit,
    and access-log lines; cheaper than Starlette's BaseHTTPMiddleware on the hot path."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, metrics: ServerMetrics) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _header(scope, b"x-request-id") or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        status = {"code": 500}
        length = _header(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await _send_json(send, 413, _error_body(
                "BODY_TOO_LARGE", f"the body has {int(length):,} bytes; the limit is "
                f"{self.max_bytes:,} (send fewer rows per request)", request_id,
            ), request_id)  # fmt: skip
            self._done(scope, 413, started, request_id)
            return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _BodyTooLarge
            return message

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_id)
        except _BodyTooLarge:
            status["code"] = 413
            await _send_json(send, 413, _error_body(
                "BODY_TOO_LARGE", f"the body is over the limit of {self.max_bytes:,} bytes",
                request_id,
            ), request_id)  # fmt: skip
        self._done(scope, status["code"], started, request_id)

    def _done(self, scope: Scope, status: int, started: float, request_id: str) -> None:
        seconds = time.perf_counter() - started
        route = scope.get("route")
        path = getattr(route, "path", None) or "unmatched"
        self.metrics.observe_request(path, status, seconds)
        if access_log.isEnabledFor(logging.INFO):
            access_log.info(orjson.dumps({
                "request_id": request_id, "method": scope.get("method"), "path": scope.get("path"),
                "route": path, "status": status, "ms": round(seconds * 1000, 3),
            }).decode())  # fmt: skip


class _BodyTooLarge(Exception):
    pass


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _error_body(code: str, message: str, request_id: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {},
                      "request_id": request_id}}  # fmt: skip


async def _send_json(send: Send, status: int, body: Any, request_id: str) -> None:
    data = orjson.dumps(body)
    await send({
        "type": "http.response.start", "status": status,
        "headers": [(b"content-type", b"application/json"),
                    (b"content-length", str(len(data)).encode()),
                    (b"x-request-id", request_id.encode())],
    })  # fmt: skip
    await send({"type": "http.response.body", "body": data})


# -- the app ---------------------------------------------------------------------------------


class Server:
    """The state behind one app: slots, prediction log, tokens, metrics."""

    def __init__(
        self,
        slots: Sequence[ModelSlot],
        config: ServerConfig,
        *,
        prediction_log: PredictionLog | None = None,
        tokens: TokenCheck | None = None,
    ) -> None:
        if not slots:
            raise InvalidInputError("a server needs at least one model to serve")
        names = [s.name for s in slots]
        if len(set(names)) != len(names):
            raise InvalidInputError(
                f"each served model needs its own name, got {', '.join(names)}; serve "
                "versions of one model from separate servers"
            )
        self.slots = {s.name: s for s in slots}
        self.config = config
        self.prediction_log = prediction_log
        self.tokens = tokens
        self.metrics = ServerMetrics(self)
        self.batcher = (
            MicroBatcher(max_rows=config.batch_max_rows, timeout=config.batch_timeout)
            if config.batch_max_rows > 0
            else None
        )
        self.poller = SwapPoller(list(slots), config.poll_interval, on_swap=self.metrics.swapped)

    def slot(self, name: str | None) -> ModelSlot:
        if name is None:
            if len(self.slots) == 1:
                return next(iter(self.slots.values()))
            raise InvalidInputError(
                f'this server has several models ({", ".join(self.slots)}): name one with "model"'
            )
        found = self.slots.get(name)
        if found is None:
            raise NotFoundError(
                f"this server has no model {name!r}; it serves {', '.join(self.slots)}"
            )
        return found


def create_app(server: Server) -> FastAPI:
    """The FastAPI app of ``server`` (wrapped in the body-limit/request-id middleware)."""

    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from shipyard import __version__

    config = server.config

    async def lifespan(app: FastAPI) -> Any:
        server.poller.start()
        yield
        server.poller.stop()
        if server.batcher is not None:
            await server.batcher.close()
        if server.prediction_log is not None:
            server.prediction_log.close()

    app = FastAPI(
        title="shipyard model server", version=__version__, lifespan=lifespan,
        description="Open Inference Protocol v2 and plain JSON predictions for "
        + ", ".join(f"{s.ref} (version {s.current.version.version})"
                    for s in server.slots.values()),
    )  # fmt: skip
    app.state.server = server

    @app.exception_handler(ShipyardError)
    async def shipyard_error(request: Request, exc: ShipyardError) -> Response:
        if exc.http_status == 422:
            server.metrics.validation_failed(request, exc)
        status = exc.http_status if exc.http_status < 500 else 503
        return _json(request, status, _error_body(exc.code, exc.message, _rid(request),
                                                  exc.details))  # fmt: skip

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        errors = [{"field": ".".join(map(str, e.get("loc", ()))), "problem": e.get("msg")}
                  for e in exc.errors()[:20]]  # fmt: skip
        message = "the request does not match the API (see details)"
        body = _error_body("INVALID_REQUEST", message, _rid(request), {"errors": errors})
        return _json(request, 422, body)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.status_code, "HTTP_ERROR")
        return _json(request, exc.status_code, _error_body(code, str(exc.detail), _rid(request)))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        logger.exception("request %s failed", _rid(request))
        return _json(request, 500, _error_body(
            "INTERNAL", f"internal error; the server log has request {_rid(request)}",
            _rid(request)))  # fmt: skip

    _routes(app, server)
    if config.cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(config.cors_origins),
                           allow_methods=["GET", "POST"], allow_headers=["*"])  # fmt: skip
    app.add_middleware(BodyLimit, max_bytes=config.max_body_bytes, metrics=server.metrics)
    return app


def _rid(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", ""))


def _json(request: Request | None, status: int, body: Any) -> Response:
    from starlette.responses import Response

    return Response(orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY), status_code=status,
                    media_type="application/json")  # fmt: skip


async def _body(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        raise InvalidInputError("the body is empty: send JSON")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidInputError(f"the body is not valid JSON: {exc}") from None


RECORDS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "records": {"type": "array", "items": {"type": "object"}, "minItems": 1},
        "columns": {"type": "object", "additionalProperties": {"type": "array"}},
        "model": {"type": "string"},
    },
    "additionalProperties": False,
}
OIP_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["inputs"],
    "properties": {
        "id": {"type": "string"},
        "parameters": {"type": "object"},
        "inputs": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["name", "shape", "datatype", "data"],
            "properties": {"name": {"type": "string"},
                           "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                           "datatype": {"type": "string"}, "parameters": {"type": "object"},
                           "data": {"type": "array"}},
        }},
        "outputs": {"type": "array", "items": {"type": "object"}},
    },
}  # fmt: skip
FEEDBACK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["request_id"],
    "properties": {
        "request_id": {"type": "string"}, "label": {}, "labels": {"type": "array"},
        "model": {"type": "string"},
    },
}  # fmt: skip


def _body_doc(schema: Mapping[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True,
                            "content": {"application/json": {"schema": dict(schema)}}}}  # fmt: skip


def _routes(app: FastAPI, server: Server) -> None:  # one place for the API
    from fastapi import Depends

    auth = server.tokens.dependency(PREDICT_ROLES) if server.tokens else None
    read_auth = server.tokens.dependency(None) if server.tokens else None
    guarded = [Depends(auth)] if auth else []
    read_guarded = [Depends(read_auth)] if read_auth else []

    @app.get("/v2/health/live", tags=["health"])
    async def live() -> dict[str, bool]:
        return {"live": True}

    @app.get("/v2/health/ready", tags=["health"])
    async def ready(request: Request) -> Response:
        ok = all(s.current is not None for s in server.slots.values())
        return _json(request, 200 if ok else 503, {"ready": ok})

    @app.get("/v2", tags=["v2"], dependencies=read_guarded)
    async def server_metadata() -> dict[str, Any]:
        from shipyard import __version__

        return {"name": "shipyard", "version": __version__, "extensions": ["predict", "feedback"]}

    def model_metadata(name: str, version: str | None) -> dict[str, Any]:
        served = _version_of(server.slot(name), version)
        sig = served.model.signature
        inputs = [{"name": c.name, "datatype": _oip_type(c.type), "shape": [-1]}
                  for c in (sig.inputs if sig else ())]  # fmt: skip
        outputs = [{"name": "predict", "datatype": "BYTES" if _is_text(served) else "FP64",
                    "shape": [-1]}]  # fmt: skip
        if served.has_proba and served.classes is not None:
            outputs.append({"name": "predict_proba", "datatype": "FP64",
                            "shape": [-1, len(served.classes)]})  # fmt: skip
        return {"name": served.name, "versions": [str(served.version.version)],
                "platform": f"shipyard-{served.model.flavor}", "inputs": inputs,
                "outputs": outputs, "parameters": {"ref": served.ref,
                                                   "classes": served.classes}}  # fmt: skip

    @app.get("/v2/models/{name}", tags=["v2"], dependencies=read_guarded)
    async def metadata(name: str) -> dict[str, Any]:
        return model_metadata(name, None)

    @app.get("/v2/models/{name}/versions/{version}", tags=["v2"], dependencies=read_guarded)
    async def version_metadata(name: str, version: str) -> dict[str, Any]:
        return model_metadata(name, version)

    @app.get("/v2/models/{name}/ready", tags=["v2"], dependencies=read_guarded)
    async def model_ready(name: str) -> dict[str, Any]:
        served = server.slot(name).current
        return {"name": served.name, "ready": True, "version": str(served.version.version)}

    @app.get("/v2/models/{name}/versions/{version}/ready", tags=["v2"], dependencies=read_guarded)
    async def version_ready(name: str, version: str) -> dict[str, Any]:
        served = _version_of(server.slot(name), version)
        return {"name": served.name, "ready": True, "version": str(served.version.version)}

    async def infer(request: Request, name: str, version: str | None) -> Response:
        served = _version_of(server.slot(name), version)
        body = await _body(request)
        frame = _oip_frame(body, served, server.config.policy.max_rows)
        want = _wants_proba(body, served)
        result = await _predict(server, served, frame, request, want_proba=want)
        outputs = [_tensor("predict", result.predictions)]
        if result.probabilities is not None:
            outputs.append(_tensor("predict_proba", result.probabilities))
        parameters: dict[str, Any] = {"request_id": result.request_id}
        if any(result.flags):
            parameters["flags"] = result.flags
        payload = {"model_name": served.name, "model_version": str(served.version.version),
                   "id": str(body.get("id") or result.request_id), "outputs": outputs,
                   "parameters": parameters}  # fmt: skip
        return _json(request, 200, payload)

    @app.post("/v2/models/{name}/infer", tags=["v2"], dependencies=guarded,
              openapi_extra=_body_doc(OIP_SCHEMA))  # fmt: skip
    async def infer_latest(request: Request, name: str) -> Response:
        return await infer(request, name, None)

    @app.post("/v2/models/{name}/versions/{version}/infer", tags=["v2"], dependencies=guarded,
              openapi_extra=_body_doc(OIP_SCHEMA))  # fmt: skip
    async def infer_version(request: Request, name: str, version: str) -> Response:
        return await infer(request, name, version)

    async def plain(request: Request, *, proba: bool) -> Response:
        body = await _body(request)
        if not isinstance(body, Mapping):
            raise InvalidInputError('the body is a JSON object with "records" or "columns"')
        served = server.slot(
            body.get("model") if isinstance(body.get("model"), str) else None
        ).current
        frame = frame_from_body(
            body, served.model.signature, max_rows=server.config.policy.max_rows
        )
        if proba and not served.has_proba:
            raise InvalidInputError(f"{served.label} gives no probabilities; use /predict")
        result = await _predict(server, served, frame, request, want_proba=proba)
        payload: dict[str, Any] = {"model": served.ref, "model_version": served.version.version,
                                   "request_id": result.request_id}  # fmt: skip
        if proba:
            payload["classes"] = _plain(served.classes)
            payload["probabilities"] = result.probabilities
        else:
            payload["predictions"] = result.predictions
        if any(result.flags):
            payload["flags"] = result.flags
        return _json(request, 200, payload)

    @app.post("/predict", tags=["predict"], dependencies=guarded,
              openapi_extra=_body_doc(RECORDS_SCHEMA))  # fmt: skip
    async def predict(request: Request) -> Response:
        return await plain(request, proba=False)

    @app.post("/predict_proba", tags=["predict"], dependencies=guarded,
              openapi_extra=_body_doc(RECORDS_SCHEMA))  # fmt: skip
    async def predict_proba(request: Request) -> Response:
        return await plain(request, proba=True)

    @app.post("/feedback", tags=["predict"], dependencies=guarded, status_code=202,
              openapi_extra=_body_doc(FEEDBACK_SCHEMA))  # fmt: skip
    async def feedback(request: Request) -> Response:
        from shipyard.monitoring.prediction_log import FeedbackRecord

        body = await _body(request)
        if not isinstance(body, Mapping) or not isinstance(body.get("request_id"), str):
            raise InvalidInputError('feedback is {"request_id": "...", "label": value} '
                                    '(or "labels": [one per row of that request])')  # fmt: skip
        if ("label" in body) == ("labels" in body):
            raise InvalidInputError('give exactly one of "label" or "labels"')
        labels = body["labels"] if "labels" in body else [body["label"]]
        if not isinstance(labels, list) or not labels:
            raise InvalidInputError('"labels" is a non-empty list')
        served = server.slot(
            body.get("model") if isinstance(body.get("model"), str) else None
        ).current
        accepted = False
        if server.prediction_log is not None:
            accepted = server.prediction_log.submit(FeedbackRecord(
                served.name, body["request_id"], time.time_ns() // 1_000_000, labels))  # fmt: skip
        return _json(request, 202, {"accepted": accepted, "request_id": body["request_id"]})

    @app.get("/metrics", tags=["health"], dependencies=read_guarded)
    async def metrics() -> Response:
        from starlette.concurrency import run_in_threadpool
        from starlette.responses import Response

        # off the event loop: the monitor gauges may read the store
        body, content_type = await run_in_threadpool(server.metrics.render)
        return Response(body, media_type=content_type)


@dataclass(frozen=True)
class _Result:
    request_id: str
    predictions: Any
    probabilities: Any
    flags: list[str]


async def _predict(
    server: Server, served: ServedModel, frame: pd.DataFrame, request: Request, *, want_proba: bool
) -> _Result:
    """Check, predict, count, log. Without batching the model runs on the event loop: the
    models are CPU-bound and fast, and a thread hop costs more than it saves for the
    request sizes a server sees; with batching, batches run in a worker thread."""
    from shipyard.monitoring.prediction_log import PredictionRecord

    started = time.perf_counter()
    checked = check_frame(frame, served.model.signature, server.config.policy)
    if checked.flag_reasons:
        server.metrics.flagged(served.name, checked.flag_reasons)
    try:
        # probabilities cost a second pass through the model: only when asked for (the
        # prediction log then keeps them too)
        if server.batcher is not None:
            predictions, proba = await server.batcher.score(served, checked.frame, want_proba)
        else:
            predictions, proba = score(served, checked.frame, want_proba)
    except (ValueError, TypeError) as exc:  # data the model cannot take after all
        raise InvalidInputError(f"{served.label} could not score this input: {exc}") from None
    request_id = _rid(request) or uuid.uuid4().hex
    latency = (time.perf_counter() - started) * 1000
    server.metrics.predicted(served, predictions)
    if server.prediction_log is not None and server.config.log_predictions:
        server.prediction_log.submit(PredictionRecord(
            served.name, served.version.version, request_id, time.time_ns() // 1_000_000,
            latency, checked.frame, predictions, proba, served.classes, checked.flags,
        ))  # fmt: skip
    return _Result(request_id, _plain_array(predictions),
                   _plain_array(proba) if want_proba and proba is not None else None,
                   checked.flags)  # fmt: skip


def _plain_array(values: np.ndarray) -> Any:
    """A numpy array as JSON-ready lists (NaN and infinities as null)."""
    import numpy as np

    arr = np.asarray(values)
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        return jsonable(arr.tolist())
    return arr.tolist()


def _plain(values: Sequence[Any] | None) -> list[Any] | None:
    import numpy as np

    return (
        None if values is None else [v.item() if isinstance(v, np.generic) else v for v in values]
    )


def _version_of(slot: ModelSlot, version: str | None) -> ServedModel:
    served = slot.current
    if version is not None and version != str(served.version.version):
        raise NotFoundError(
            f"{served.name} version {version} is not served here; this server serves version "
            f"{served.version.version} ({served.ref})"
        )
    return served


def _is_text(served: ServedModel) -> bool:
    return bool(served.classes) and any(isinstance(c, str) for c in served.classes or [])


_OIP_TYPES = {"integer": "INT64", "float": "FP64", "boolean": "BOOL", "string": "BYTES",
              "category": "BYTES", "datetime": "BYTES"}  # fmt: skip


def _oip_type(kind: str) -> str:
    return _OIP_TYPES.get(kind, "BYTES")


def _wants_proba(body: Any, served: ServedModel) -> bool:
    outputs = body.get("outputs") if isinstance(body, Mapping) else None
    if not outputs:
        return served.has_proba
    names = {o.get("name") for o in outputs if isinstance(o, Mapping)}
    return "predict_proba" in names and served.has_proba


def _oip_frame(body: Any, served: ServedModel, max_rows: int) -> pd.DataFrame:
    """OIP inputs as a frame: one tensor per column (shape [n] or [n, 1]), or one [n, k]
    tensor holding every column in signature order."""
    import numpy as np
    import pandas as pd

    from shipyard.serving.validation import TooManyRows

    if (
        not isinstance(body, Mapping)
        or not isinstance(body.get("inputs"), list)
        or not body["inputs"]
    ):
        raise InvalidInputError('an inference request is {"inputs": [{"name", "shape", '
                                '"datatype", "data"}, ...]}')  # fmt: skip
    sig = served.model.signature
    names = [c.name for c in sig.inputs] if sig else []
    columns: dict[str, Any] = {}
    rows: int | None = None
    for i, tensor in enumerate(body["inputs"]):
        if not isinstance(tensor, Mapping):
            raise InvalidInputError(f"inputs[{i}] is an object with name, shape, datatype, data")
        shape, data = tensor.get("shape"), tensor.get("data")
        name = tensor.get("name")
        if not isinstance(name, str) or not isinstance(shape, list) or not isinstance(data, list):
            raise InvalidInputError(f"inputs[{i}] needs a name, a shape (list) and data (list)")
        if not shape or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                for d in shape):  # fmt: skip
            raise InvalidInputError(f"inputs[{i}].shape must be whole numbers >= 0, got {shape}")
        flat = _flatten(data)
        if math.prod(shape) != len(flat):
            raise InvalidInputError(
                f"inputs[{i}] ({name}): shape {shape} holds {math.prod(shape)} values, data has "
                f"{len(flat)}"
            )
        n = shape[0]
        if n > max_rows:
            raise TooManyRows(f"{n:,} rows in one request; this server takes at most {max_rows:,}")
        if rows is not None and n != rows:
            raise InvalidInputError(f"inputs[{i}] ({name}) has {n} rows, the others {rows}")
        rows = n
        width = math.prod(shape[1:]) if len(shape) > 1 else 1
        if width == 1:
            columns[name] = flat
        elif names and width == len(names) and len(body["inputs"]) == 1:
            matrix = np.asarray(flat, dtype=object).reshape(n, width)
            return pd.DataFrame(matrix, columns=names)
        else:
            raise InvalidInputError(
                f"inputs[{i}] ({name}) has shape {shape}: send one tensor per column "
                f"(shape [n] or [n, 1]), or a single [n, {len(names)}] tensor with the columns "
                f"in order: {', '.join(names[:10])}"
            )
    return pd.DataFrame({k: pd.Series(v, dtype=object) for k, v in columns.items()})


def _flatten(data: list[Any]) -> list[Any]:
    if data and isinstance(data[0], list):
        out: list[Any] = []
        for item in data:
            out.extend(_flatten(item) if isinstance(item, list) else [item])
        return out
    return data


def _tensor(name: str, values: Any) -> dict[str, Any]:
    import numpy as np

    arr = np.asarray(values, dtype=object) if values is not None else np.asarray([])
    shape = list(arr.shape)
    flat = arr.reshape(-1).tolist()
    kind = "BYTES" if any(isinstance(v, str) for v in flat[:10]) else (
        "INT64" if all(isinstance(v, int) and not isinstance(v, bool) for v in flat[:10])
        else "FP64"
    )  # fmt: skip
    return {"name": name, "shape": shape, "datatype": kind, "data": flat}
