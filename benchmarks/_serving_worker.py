"""The helpers ``benchmarks/serving.py`` runs in subprocesses (standard library at the top:
the ``setup-mlflow`` step runs in MLflow's venv).

    setup-shipyard --models DIR    log, register and promote ``lr`` and ``rf`` (SHIPYARD_HOME)
    setup-mlflow --models DIR --dir OUT   ``mlflow.sklearn.save_model`` of each (cloudpickle)
    floor --model FILE --port P    the bare Starlette app: orjson -> DataFrame -> predict
    canned --port P                a raw asyncio server answering every request with a fixed
                                   200 (the load generator's own ceiling)
    profile --models DIR --model NAME   where a shipyard /predict request's time goes, in
                                   process (the store in SHIPYARD_HOME), against the floor's
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from _common import emit

MODELS = ("lr", "rf")


def _data() -> Any:
    from sklearn.datasets import load_breast_cancer

    X, _ = load_breast_cancer(return_X_y=True, as_frame=True)
    return X


def _load(models: Path, name: str) -> Any:
    import joblib

    return joblib.load(models / f"{name}.joblib")


def setup_shipyard(models: Path) -> dict[str, Any]:
    import shipyard as sy

    X = _data()
    out = {}
    for name in MODELS:
        model = _load(models, name)
        t0 = time.perf_counter()
        with sy.start_run(name=name):
            logged = sy.log_model(model, "model", input_example=X.head(5), signature=X)
        version = sy.register_model(logged.run_id, name)
        sy.promote_model(name, version.version, "production")
        out[name] = {"version": version.version, "seconds": time.perf_counter() - t0}
    return out


def setup_mlflow(models: Path, folder: Path) -> dict[str, Any]:
    import mlflow.sklearn

    X = _data()
    out = {}
    for name in MODELS:
        t0 = time.perf_counter()
        mlflow.sklearn.save_model(
            _load(models, name),
            str(folder / name),
            serialization_format="cloudpickle",
            input_example=X.head(5),
        )
        out[name] = {"seconds": time.perf_counter() - t0}
    return out


def floor_app(model: Any) -> Any:
    """The floor: read the body, orjson, a DataFrame in the model's column order, predict."""
    import orjson
    import pandas as pd
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    columns = [str(c) for c in model.feature_names_in_]

    async def predict(request: Request) -> Response:
        records = orjson.loads(await request.body())["records"]
        frame = pd.DataFrame([[r[c] for c in columns] for r in records], columns=columns)
        body = orjson.dumps({"predictions": model.predict(frame).tolist()})
        return Response(body, media_type="application/json")

    async def ping(request: Request) -> Response:
        return Response(b'{"ready":true}', media_type="application/json")

    return Starlette(routes=[Route("/predict", predict, methods=["POST"]), Route("/ping", ping)])


def floor(model_file: Path, port: int) -> None:
    import joblib
    import uvicorn

    app = floor_app(joblib.load(model_file))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


CANNED = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 19\r\n\r\n"
    b'{"predictions":[1]}'
)


class _Canned(asyncio.Protocol):
    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            length = 0
            for line in self.buf[:end].split(b"\r\n")[1:]:
                key, _, value = line.partition(b":")
                if key.strip().lower() == b"content-length":
                    length = int(value)
            if len(self.buf) < end + 4 + length:
                return
            self.buf = self.buf[end + 4 + length :]
            self.transport.write(CANNED)


def canned(port: int) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_Canned, "127.0.0.1", port)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


# -- where a shipyard request's time goes (in process) ----------------------------------


async def _asgi(app: Any, path: str, body: bytes) -> tuple[int, bytes]:
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "client": ("127.0.0.1", 9), "server": ("127.0.0.1", 80),
        "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode())],
    }  # fmt: skip
    sent = False
    status = 0
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


def _short(line: str) -> str:
    """A profile line with the long folder prefixes cut."""
    import sysconfig

    for prefix in (sysconfig.get_paths()["purelib"], sysconfig.get_paths()["stdlib"],
                   str(Path(__file__).resolve().parent.parent)):  # fmt: skip
        line = line.replace(prefix + "/", "")
    return line


def _median_us(fn: Any, repeat: int) -> float:
    fn()
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1e6


def profile(models: Path, name: str, repeat: int, fast: bool) -> dict[str, Any]:
    """Median microseconds of each step of a one-row /predict, shipyard's and the floor's,
    the whole in-process ASGI request of each, and a cProfile of shipyard's."""
    import cProfile
    import io
    import logging
    import pstats
    import tempfile

    import orjson

    import shipyard as sy
    from shipyard.serving import app as app_module
    from shipyard.serving.app import ServerConfig, create_app
    from shipyard.serving.server import build_server
    from shipyard.serving.validation import check_frame, frame_from_body

    # as `shipyard serve` sets it up: an access-log line per request (here to a null stream)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=io.StringIO())
    logging.getLogger("shipyard.serving.access").setLevel(logging.INFO)
    X = _data()
    row = {str(k): float(v) for k, v in X.iloc[7].items()}
    body = orjson.dumps({"records": [row]})
    registry = sy.model_registry()
    loop = asyncio.new_event_loop()
    out: dict[str, Any] = {"model": name, "fast": fast, "steps": {}, "floor_steps": {}}
    config = ServerConfig(log_predictions=False, fast=fast, poll_interval=0)
    server = build_server(registry, [f"{name}@production"], config, log_root=None)
    app = create_app(server)
    served = server.slot(None).current
    out["engine"] = served.engine
    sig, policy = served.model.signature, config.policy
    parsed = orjson.loads(body)
    frame = frame_from_body(parsed, sig, max_rows=policy.max_rows)
    checked = check_frame(frame, sig, policy)
    preds = served.model.predict_checked(checked.frame)
    steps = {
        "orjson.loads of the body": lambda: orjson.loads(body),
        "frame_from_body (records -> DataFrame)": lambda: frame_from_body(
            parsed, sig, max_rows=policy.max_rows
        ),
        "check_frame (signature, ranges)": lambda: check_frame(frame, sig, policy),
        f"model.predict_checked ({served.engine})": lambda: served.model.predict_checked(
            checked.frame
        ),
        "response: _plain_array + orjson.dumps": lambda: orjson.dumps(
            {"model": served.ref, "predictions": app_module._plain_array(preds)},
            option=orjson.OPT_SERIALIZE_NUMPY,
        ),
    }
    for label, fn in steps.items():
        out["steps"][label] = _median_us(fn, repeat)
    status, _ = loop.run_until_complete(_asgi(app, "/predict", body))
    if status != 200:
        raise RuntimeError(f"in-process /predict answered {status}")
    out["request_us"] = _median_us(
        lambda: loop.run_until_complete(_asgi(app, "/predict", body)), repeat
    )
    with tempfile.TemporaryDirectory() as logs:  # the prediction log on, as by default
        cfg = ServerConfig(log_predictions=True, fast=fast, poll_interval=0)
        logged_server = build_server(registry, [f"{name}@production"], cfg, log_root=logs)
        logged = create_app(logged_server)
        out["request_logged_us"] = _median_us(
            lambda: loop.run_until_complete(_asgi(logged, "/predict", body)), repeat
        )
        if logged_server.prediction_log is not None:
            logged_server.prediction_log.close()
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(repeat):
        loop.run_until_complete(_asgi(app, "/predict", body))
    prof.disable()
    text = io.StringIO()
    pstats.Stats(prof, stream=text).sort_stats("tottime").print_stats(14)
    out["profile"] = [_short(ln) for ln in text.getvalue().splitlines() if ln.strip()][-15:]
    text = io.StringIO()
    pstats.Stats(prof, stream=text).sort_stats("cumulative").print_stats(r"src/shipyard/", 18)
    out["profile_cumulative"] = [_short(ln) for ln in text.getvalue().splitlines() if ln.strip()][
        -19:
    ]

    import pandas as pd

    model = _load(models, name)
    columns = [str(c) for c in model.feature_names_in_]
    records = parsed["records"]
    df = pd.DataFrame([[r[c] for c in columns] for r in records], columns=columns)
    floor_preds = model.predict(df)
    floor_steps = {
        "orjson.loads of the body": lambda: orjson.loads(body),
        "records -> DataFrame": lambda: pd.DataFrame(
            [[r[c] for c in columns] for r in records], columns=columns
        ),
        "model.predict (scikit-learn)": lambda: model.predict(df),
        "response: orjson.dumps": lambda: orjson.dumps({"predictions": floor_preds.tolist()}),
    }
    for label, fn in floor_steps.items():
        out["floor_steps"][label] = _median_us(fn, repeat)
    floor = floor_app(model)
    loop.run_until_complete(_asgi(floor, "/predict", body))
    out["floor_request_us"] = _median_us(
        lambda: loop.run_until_complete(_asgi(floor, "/predict", body)), repeat
    )
    loop.close()
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("task", choices=["setup-shipyard", "setup-mlflow", "floor", "canned",
                                         "profile"])  # fmt: skip
    parser.add_argument("--models", type=Path, help="folder of lr.joblib and rf.joblib")
    parser.add_argument("--dir", type=Path, help="where setup-mlflow saves the models")
    parser.add_argument("--model", help="floor: the joblib file; profile: lr or rf")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=500)
    parser.add_argument("--fast", action="store_true", help="profile: the ONNX engine")
    args = parser.parse_args(argv)
    if args.task == "floor":
        floor(Path(args.model), args.port)
        return 0
    if args.task == "canned":
        canned(args.port)
        return 0
    if args.task == "setup-shipyard":
        result = setup_shipyard(args.models)
    elif args.task == "setup-mlflow":
        result = setup_mlflow(args.models, args.dir)
    else:
        result = profile(args.models, args.model, args.repeat, args.fast)
    emit("RESULT", result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
