"""The model server in-process (httpx's ASGI transport): protocols, input checks, errors,
auth, metrics and the prediction log, on real registered models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression

from shipyard.serving import InputPolicy, ServerConfig, build_server, create_app


def _cancer() -> tuple[pd.DataFrame, pd.Series]:
    frame = load_breast_cancer(as_frame=True).frame
    return frame.drop(columns="target"), frame["target"]


def _register(sy: Any, model: Any, X: pd.DataFrame, y: pd.Series, name: str) -> Any:
    with sy.start_run() as run:
        model.fit(X, y)
        sy.log_model(model, "model", input_example=X.head(5), signature=X)
    return sy.register_model(run.run_id, name)


@pytest.fixture
def served(sy: Any, tmp_path: Path) -> Iterator[tuple[Any, Any, Any]]:
    """A random forest as cancer@production, served in-process with a prediction log."""
    X, y = _cancer()
    model = RandomForestClassifier(n_estimators=10, random_state=0)
    version = _register(sy, model, X, y, "cancer")
    sy.promote_model("cancer", version.version, "production")
    server = build_server(
        sy.model_registry(), ["cancer@production"],
        ServerConfig(poll_interval=0, policy=InputPolicy(max_rows=100)), log_root=tmp_path / "log",
    )  # fmt: skip
    yield server, create_app(server), model
    server.prediction_log.close()


def _client(app: Any) -> _AsgiClient:
    return _AsgiClient(app)


class _AsgiClient:
    """A synchronous face over httpx's ASGI transport."""

    def __init__(self, app: Any) -> None:
        import asyncio

        self.loop = asyncio.new_event_loop()
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        )

    def request(self, method: str, url: str, **kw: Any) -> httpx.Response:
        return self.loop.run_until_complete(self.client.request(method, url, **kw))

    def get(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("GET", url, **kw)

    def post(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("POST", url, **kw)


def _records(X: pd.DataFrame) -> list[dict[str, Any]]:
    return orjson.loads(X.to_json(orient="records"))


def test_predict_and_predict_proba_match_the_model(served: tuple[Any, Any, Any]) -> None:
    _, app, model = served
    X, _ = _cancer()
    client = _client(app)
    rows = X.iloc[:20]
    got = client.post("/predict", json={"records": _records(rows)})
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["predictions"] == model.predict(rows).tolist()
    assert (body["model"], body["model_version"]) == ("cancer@production", 1)
    assert got.headers["x-request-id"] == body["request_id"]
    proba = client.post("/predict_proba", json={"columns": {c: rows[c].tolist() for c in X}})
    np.testing.assert_allclose(proba.json()["probabilities"], model.predict_proba(rows))
    assert proba.json()["classes"] == [0, 1]


def test_open_inference_protocol_v2(served: tuple[Any, Any, Any]) -> None:
    _, app, model = served
    X, _ = _cancer()
    client = _client(app)
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").status_code == 200
    meta = client.get("/v2/models/cancer").json()
    assert meta["versions"] == ["1"] and len(meta["inputs"]) == 30
    assert client.get("/v2/models/cancer/versions/1/ready").json()["ready"] is True
    rows = X.iloc[:3]
    matrix = {
        "name": "input",
        "shape": [3, 30],
        "datatype": "FP64",
        "data": rows.to_numpy().tolist(),
    }
    got = client.post("/v2/models/cancer/infer", json={"id": "r1", "inputs": [matrix]}).json()
    assert got["id"] == "r1" and got["model_version"] == "1"
    outputs = {o["name"]: o for o in got["outputs"]}
    assert outputs["predict"]["data"] == model.predict(rows).tolist()
    assert outputs["predict_proba"]["shape"] == [3, 2]
    named = [{"name": c, "shape": [3], "datatype": "FP64", "data": rows[c].tolist()} for c in X]
    again = client.post("/v2/models/cancer/versions/1/infer", json={"inputs": named}).json()
    assert again["outputs"][0]["data"] == outputs["predict"]["data"]
    assert (
        client.post("/v2/models/cancer/versions/7/infer", json={"inputs": named}).status_code == 404
    )
    assert client.post("/v2/models/nope/infer", json={"inputs": named}).status_code == 404


def test_bad_input_gets_a_4xx_naming_the_field_and_row(served: tuple[Any, Any, Any]) -> None:
    _, app, _ = served
    X, _ = _cancer()
    client = _client(app)
    rows = _records(X.iloc[:3])
    rows[1]["mean radius"] = "big"
    rows[2]["mean area"] = None
    del rows[0]["mean texture"]
    got = client.post("/predict", json={"records": rows})
    assert got.status_code == 422
    errors = got.json()["error"]["details"]["errors"]
    assert {"field": "mean texture", "row": 0, "problem": "missing"} in errors
    assert any(e["field"] == "mean radius" and e["row"] == 1 for e in errors)
    assert any(
        e["field"] == "mean area" and e["row"] == 2 and "null" in e["problem"] for e in errors
    )
    extra = _records(X.iloc[:1])
    extra[0]["surprise"] = 1
    assert client.post("/predict", json={"records": extra}).status_code == 422
    for body, status in [
        (b"{not json", 400), (b"[1, 2]", 400), (b'{"records": []}', 400),
        (b'{"records": [1]}', 400), (b'{"rows": []}', 400), (b"", 400),
    ]:  # fmt: skip
        answer = client.post("/predict", content=body)
        assert answer.status_code == status, (body, answer.text)
        assert answer.json()["error"]["code"] and "Traceback" not in answer.text
    too_many = client.post("/predict", json={"records": _records(X.iloc[:101])})
    assert too_many.status_code == 413 and "at most 100" in too_many.json()["error"]["message"]


def test_far_out_of_range_values_are_flagged_or_rejected(
    served: tuple[Any, Any, Any], sy: Any, tmp_path: Path
) -> None:
    _, app, _ = served
    X, _ = _cancer()
    row = _records(X.iloc[:1])
    row[0]["mean radius"] = 1e6
    flagged = _client(app).post("/predict", json={"records": row}).json()
    assert "mean radius: out_of_range" in flagged["flags"][0]
    strict = build_server(
        sy.model_registry(), ["cancer@production"],
        ServerConfig(poll_interval=0, policy=InputPolicy(out_of_range="reject")), log_root=None,
    )  # fmt: skip
    refused = _client(create_app(strict)).post("/predict", json={"records": row})
    assert refused.status_code == 422 and "training range" in refused.text
    normal = _records(X.iloc[:50])  # ranges come from the training data, not five rows
    assert "flags" not in _client(app).post("/predict", json={"records": normal}).json()


def test_body_size_limit(sy: Any, served: tuple[Any, Any, Any]) -> None:
    _, app, _ = served
    big = b'{"records": [' + b'{"a": 1},' * 1_000_000 + b'{"a": 1}]}'
    got = _client(app).post("/predict", content=big)
    assert got.status_code == 413 and got.json()["error"]["code"] == "BODY_TOO_LARGE"


def test_predictions_and_feedback_reach_the_log(
    served: tuple[Any, Any, Any], tmp_path: Path
) -> None:
    from shipyard.monitoring import read_predictions

    server, app, model = served
    X, _ = _cancer()
    client = _client(app)
    rid = client.post("/predict", json={"records": _records(X.iloc[:4])}).json()["request_id"]
    assert client.post("/feedback", json={"request_id": rid, "labels": [0, 1, 1, 0]}).json()[
        "accepted"
    ]
    assert server.prediction_log.flush()
    logged = read_predictions(tmp_path / "log", "cancer")
    assert list(logged["sy_request_id"]) == [rid] * 4
    assert list(logged["sy_prediction"]) == model.predict(X.iloc[:4]).tolist()
    assert (logged["sy_version"] == 1).all()  # probabilities only where they were asked for
    np.testing.assert_allclose(logged["mean radius"], X["mean radius"].iloc[:4])
    feedback = read_predictions(tmp_path / "log", "cancer", feedback=True)
    assert list(feedback["sy_label"]) == [0, 1, 1, 0]


def test_a_full_prediction_log_drops_and_counts_instead_of_blocking(tmp_path: Path) -> None:
    from shipyard.monitoring.prediction_log import PredictionLog, PredictionRecord

    log = PredictionLog(tmp_path, max_queue=1, flush_interval=60)
    record = PredictionRecord("m", 1, "r", 0, 1.0, pd.DataFrame({"a": [1]}), np.array([0]))
    results = [log.submit(record) for _ in range(200)]
    assert results.count(False) >= 1 and log.stats.dropped == results.count(False)
    log.close()


def test_metrics_count_requests_predictions_and_failures(served: tuple[Any, Any, Any]) -> None:
    _, app, _ = served
    X, _ = _cancer()
    client = _client(app)
    client.post("/predict", json={"records": _records(X.iloc[:5])})
    client.post("/predict", json={"records": [{"mean radius": "x"}]})
    text = client.get("/metrics").text
    assert 'shipyard_requests_total{route="/predict",status="200"} 1.0' in text
    assert 'shipyard_requests_total{route="/predict",status="422"} 1.0' in text
    assert "shipyard_predictions_total" in text and "shipyard_model_info{" in text
    assert "shipyard_validation_failures_total" in text
    assert "shipyard_prediction_log_queue_depth" in text


def test_tokens_401_without_403_with_the_wrong_role(sy: Any, tmp_path: Path) -> None:
    from shipyard.store.tokens_store import SqlTokenStore

    X, y = _cancer()
    _register(sy, RandomForestClassifier(5, random_state=0), X, y, "cancer")
    registry = sy.model_registry()
    server = build_server(registry, ["cancer@1"], ServerConfig(poll_interval=0, require_auth=True),
                          log_root=None)  # fmt: skip
    client = _client(create_app(server))
    tokens = SqlTokenStore(registry.tracker.db, actor="admin")
    predict_token, _ = tokens.create("checkout", "predict")
    viewer_token, record = tokens.create("dashboard", "viewer")
    body = {"records": _records(X.iloc[:1])}
    assert client.post("/predict", json=body).status_code == 401
    bad = {"Authorization": "Bearer sy_nope_nope"}
    assert client.post("/predict", json=body, headers=bad).status_code == 401
    viewer = {"Authorization": f"Bearer {viewer_token}"}
    assert client.post("/predict", json=body, headers=viewer).status_code == 403
    assert client.get("/v2/models/cancer", headers=viewer).status_code == 200
    ok = client.post("/predict", json=body, headers={"Authorization": f"Bearer {predict_token}"})
    assert ok.status_code == 200
    assert client.get("/v2/health/ready").status_code == 200  # probes need no token
    rows = (
        registry.tracker.db.engine.connect()
        .exec_driver_sql("SELECT secret_hash FROM api_tokens")
        .fetchall()
    )
    assert all(predict_token.split("_", 2)[2] not in r[0] for r in rows)  # only hashes stored
    tokens.revoke(record.token_id)
    assert tokens.verify(viewer_token) is None


def test_a_regressor_serves_values(sy: Any) -> None:
    frame = load_diabetes(as_frame=True).frame
    X, y = frame.drop(columns="target"), frame["target"]
    model = LinearRegression()
    _register(sy, model, X, y, "diabetes")
    server = build_server(sy.model_registry(), ["diabetes@1"], ServerConfig(poll_interval=0),
                          log_root=None)  # fmt: skip
    client = _client(create_app(server))
    got = client.post("/predict", json={"records": _records(X.iloc[:3])}).json()
    np.testing.assert_allclose(got["predictions"], model.predict(X.iloc[:3]))
    assert client.post("/predict_proba", json={"records": _records(X.iloc[:3])}).status_code == 400


def test_a_swap_keeps_the_old_model_when_the_new_one_fails_its_check(
    served: tuple[Any, Any, Any], sy: Any
) -> None:
    server, app, _ = served
    X, y = _cancer()
    slot = server.slots["cancer"]
    second = _register(sy, RandomForestClassifier(5, random_state=1), X, y, "cancer")
    sy.promote_model("cancer", second.version, "production")
    assert slot.refresh() and slot.current.version.version == 2
    assert not slot.refresh()  # nothing moved since
    # a version whose model file is damaged is refused at promotion, so break the check
    # instead: point the alias at a version whose example no longer loads
    third = _register(sy, RandomForestClassifier(5, random_state=2), X, y, "cancer")
    sy.promote_model("cancer", third.version, "production")
    registry = sy.model_registry()
    meta = registry.model_meta(registry.get_version("cancer@3"))
    path = next(Path(sy.settings().home).rglob(meta.files["model.skops"]["digest"][2:]))
    path.chmod(0o644)
    path.write_bytes(b"broken")
    assert not slot.refresh()
    assert slot.current.version.version == 2 and "cancer@3" in slot.last_error
    X_rows = _records(X.iloc[:2])
    assert _client(app).post("/predict", json={"records": X_rows}).json()["model_version"] == 2


def test_fast_serves_a_forest_through_onnxruntime_with_the_same_answers(sy: Any) -> None:
    X, y = _cancer()
    model = RandomForestClassifier(n_estimators=30, random_state=0)
    version = _register(sy, model, X, y, "forest")
    server = build_server(sy.model_registry(), [version.ref],
                          ServerConfig(poll_interval=0, fast=True), log_root=None)  # fmt: skip
    assert server.slots["forest"].current.engine == "onnx"
    client = _client(create_app(server))
    got = client.post("/predict_proba", json={"records": _records(X)}).json()
    np.testing.assert_allclose(got["probabilities"], model.predict_proba(X), atol=1e-5)
    meta = client.get("/v2/models/forest").json()
    assert meta["platform"] == "shipyard-onnx"


def test_micro_batching_scores_concurrent_requests_together_with_the_same_answers(
    sy: Any,
) -> None:
    import asyncio

    X, y = _cancer()
    model = RandomForestClassifier(n_estimators=10, random_state=0)
    version = _register(sy, model, X, y, "forest")
    config = ServerConfig(poll_interval=0, batch_max_rows=64, batch_timeout=0.05)
    server = build_server(sy.model_registry(), [version.ref], config, log_root=None)
    app = create_app(server)
    records = _records(X.iloc[:40])

    async def burst() -> list[Any]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            replies = await asyncio.gather(*(
                client.post("/predict_proba" if i % 2 else "/predict", json={"records": [r]})
                for i, r in enumerate(records)
            ))  # fmt: skip
            await server.batcher.close()
            return [r.json() for r in replies]

    replies = asyncio.run(burst())
    expected, proba = model.predict(X.iloc[:40]), model.predict_proba(X.iloc[:40])
    for i, reply in enumerate(replies):
        if i % 2:
            np.testing.assert_allclose(reply["probabilities"], proba[i : i + 1])
        else:
            assert reply["predictions"] == [expected[i]]
    assert server.batcher.batches < 40 and server.batcher.rows == 40
