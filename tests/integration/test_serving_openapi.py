"""Property-based tests of the model server against its own OpenAPI document
(schemathesis): whatever the generated requests, no 5xx and no response that breaks the
document."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

from shipyard.serving import ServerConfig, build_server, create_app


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    import shipyard as sy
    from shipyard.core.config import load_settings

    home = tmp_path_factory.mktemp("openapi")
    sy.configure(load_settings({"SHIPYARD_HOME": str(home / "store")}, cwd=Path(home)))
    frame = load_breast_cancer(as_frame=True).frame
    X, y = frame.drop(columns="target").iloc[:, :4], frame["target"]  # a small signature
    with sy.start_run() as run:
        sy.log_model(LogisticRegression(max_iter=500).fit(X, y), "model",
                     input_example=X.head(5), signature=X)  # fmt: skip
    sy.register_model(run.run_id, "cancer")
    server = build_server(sy.model_registry(), ["cancer@1"], ServerConfig(poll_interval=0),
                          log_root=home / "log")  # fmt: skip
    yield schemathesis.openapi.from_asgi("/openapi.json", create_app(server))
    server.prediction_log.close()
    sy.configure()


def test_no_request_gets_a_server_error(api: Any) -> None:
    # schemathesis's own pytest plugin does not run under this pytest; drive Hypothesis
    # over each operation's strategy instead
    from hypothesis import given

    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 10
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck),
                  database=None)  # fmt: skip
        def check(case: Any) -> None:
            response = case.call()
            assert response.status_code < 500, (case.method, case.path, response.text[:500])
            if response.status_code >= 400:
                error = response.json()["error"]
                assert error["code"] and error["message"] and "Traceback" not in response.text

        check()
