"""Alert notifications: a real local webhook receiver, retries, the log, severity filters."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

import shipyard
from shipyard.core.errors import InvalidInputError
from shipyard.monitoring.notify import (
    AlertEvent,
    LogNotifier,
    Notifier,
    WebhookNotifier,
    build_notifiers,
    dispatch,
)
from shipyard.monitoring.rules import parse_rules


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1: answers ``statuses`` in order, then 200."""

    url: str = ""
    statuses: list[int] = field(default_factory=list)
    delay_s: float = 0.0
    requests: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.requests.append(
                {
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": json.loads(body),
                }
            )
            if state.delay_s:
                time.sleep(state.delay_s)
            status = state.statuses.pop(0) if state.statuses else 200
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", "/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
            pass

    class QuietServer(ThreadingHTTPServer):
        def handle_error(self, request: Any, client_address: Any) -> None:
            pass  # a client that gave up (the timeout test) is expected

    server = QuietServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook/s3cret-path"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the notifier's back-off waits instead of waiting."""
    waits: list[float] = []
    monkeypatch.setattr(time, "sleep", waits.append)  # notify calls time.sleep
    return waits


def make_event(**changes: Any) -> AlertEvent:
    values: dict[str, Any] = {
        "event": "opened",
        "alert_id": 7,
        "monitor": "churn-daily",
        "model": "churn",
        "rule": "dataset drift",
        "severity": "critical",
        "column": None,
        "message": "drift_share = 0.40 > 0.3",
        "value": 0.4,
        "at_ms": 1_700_000_000_000,
        "details": {"window": "2026-11-24"},
    }
    values.update(changes)
    return AlertEvent(**values)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --------------------------------------------------------------------------- events


def test_an_event_is_json_ready() -> None:
    event = make_event(value=float("nan"), details={"p": float("inf"), "cols": ("a", "b")})
    data = event.to_dict()
    assert data["value"] is None
    assert data["details"] == {"p": None, "cols": ["a", "b"]}
    json.dumps(data, allow_nan=False)


def test_events_check_their_kind_and_severity() -> None:
    with pytest.raises(InvalidInputError, match="'closed' is not known; use one of opened"):
        make_event(event="closed")
    with pytest.raises(InvalidInputError, match=r"severity 'fatal'.*info, warning, critical"):
        make_event(severity="fatal")


# -------------------------------------------------------------------------- webhook


def test_the_webhook_posts_the_event_as_json_with_its_headers(
    receiver: Receiver, sleeps: list[float]
) -> None:
    hook = WebhookNotifier(receiver.url, headers={"Authorization": "Bearer xyz"})
    event = make_event()
    assert hook.send(event) is True
    (request,) = receiver.requests
    assert request["path"] == "/hook/s3cret-path"
    assert request["body"] == event.to_dict()
    assert request["headers"]["authorization"] == "Bearer xyz"
    assert request["headers"]["content-type"] == "application/json"
    assert request["headers"]["user-agent"] == f"shipyard/{shipyard.__version__}"
    assert sleeps == []
    assert isinstance(hook, Notifier)


def test_5xx_answers_are_retried_with_exponential_backoff(
    receiver: Receiver, sleeps: list[float]
) -> None:
    receiver.statuses = [500, 503]
    hook = WebhookNotifier(receiver.url, retries=2, backoff_s=0.5)
    assert hook.send(make_event()) is True
    assert len(receiver.requests) == 3
    assert sleeps == [0.5, 1.0]


def test_a_webhook_that_keeps_failing_is_logged_without_secrets(
    receiver: Receiver, sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    receiver.statuses = [500, 500, 500, 500]
    hook = WebhookNotifier(receiver.url, headers={"Authorization": "Bearer xyz"}, retries=2)
    with caplog.at_level(logging.WARNING, logger="shipyard.monitoring.notify"):
        assert hook.send(make_event()) is False
    assert len(receiver.requests) == 3
    (record,) = caplog.records
    text = record.getMessage()
    assert "127.0.0.1:" in text and "HTTP 500" in text and "3 attempt(s)" in text
    assert "xyz" not in text and "s3cret" not in text
    assert "s3cret" not in repr(hook) and "xyz" not in repr(hook)


def test_4xx_answers_are_not_retried(receiver: Receiver, sleeps: list[float]) -> None:
    receiver.statuses = [404]
    assert WebhookNotifier(receiver.url).send(make_event()) is False
    assert len(receiver.requests) == 1


def test_redirects_are_not_followed(receiver: Receiver, sleeps: list[float]) -> None:
    receiver.statuses = [302]
    assert WebhookNotifier(receiver.url).send(make_event()) is False
    assert len(receiver.requests) == 1


def test_an_unreachable_url_returns_false_quickly() -> None:
    hook = WebhookNotifier(
        f"http://127.0.0.1:{_closed_port()}/hook", retries=2, backoff_s=0.01, timeout_s=1.0
    )
    started = time.monotonic()
    assert hook.send(make_event()) is False
    assert time.monotonic() - started < 2.0


def test_a_slow_receiver_times_out(receiver: Receiver) -> None:
    receiver.delay_s = 1.0
    hook = WebhookNotifier(receiver.url, timeout_s=0.2, retries=0)
    started = time.monotonic()
    assert hook.send(make_event()) is False
    assert time.monotonic() - started < 0.9


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"url": "ftp://example.com/x"}, "not an http"),
        ({"url": "https://example.com/x", "retries": -1}, "retries must be"),
        ({"url": "https://example.com/x", "backoff_s": -1}, "backoff_s must be"),
        ({"url": "https://example.com/x", "timeout_s": 0}, "timeout_s` must be a positive"),
        ({"url": "https://example.com/x", "min_severity": "all"}, "unknown min_severity"),
        ({"url": "https://example.com/x", "headers": {"A": "b\r\nX: y"}}, "line break"),
    ],
)
def test_webhook_parameters_are_checked(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        WebhookNotifier(**kwargs)


# ------------------------------------------------------------------------------ log


@pytest.mark.parametrize(
    ("event", "severity", "level"),
    [
        ("opened", "info", logging.INFO),
        ("opened", "warning", logging.WARNING),
        ("action", "critical", logging.ERROR),
        ("resolved", "critical", logging.INFO),
    ],
)
def test_the_log_notifier_logs_by_severity(
    caplog: pytest.LogCaptureFixture, event: str, severity: str, level: int
) -> None:
    with caplog.at_level(logging.INFO, logger="shipyard.alerts"):
        assert LogNotifier().send(make_event(event=event, severity=severity, column="age"))
    (record,) = caplog.records
    assert record.name == "shipyard.alerts"
    assert record.levelno == level
    assert "alert 7" in record.getMessage() and "column 'age'" in record.getMessage()


# ------------------------------------------------------------------------- dispatch


def test_notifiers_are_built_from_the_rules_notify_section(receiver: Receiver) -> None:
    ruleset = parse_rules(
        f"rules: []\nnotify:\n  - webhook: {receiver.url}\n"
        "    headers: {X-Token: abc}\n    min_severity: warning\n  - log\n"
    )
    hook, log = build_notifiers(ruleset.notify)
    assert isinstance(hook, WebhookNotifier) and isinstance(log, LogNotifier)
    assert (hook.min_severity, hook.headers, hook.timeout_s) == ("warning", {"X-Token": "abc"}, 5)
    assert log.min_severity == "info"


def test_dispatch_respects_each_notifiers_min_severity(receiver: Receiver) -> None:
    notifiers = build_notifiers(
        parse_rules(
            f"rules: []\nnotify:\n  - webhook: {receiver.url}\n    min_severity: warning\n  - log\n"
        ).notify
    )
    name = f"webhook:{receiver.url.split('/')[2]}"
    assert dispatch(notifiers, make_event(severity="info")) == {"log": True}
    assert receiver.requests == []
    assert dispatch(notifiers, make_event(severity="warning")) == {name: True, "log": True}
    assert len(receiver.requests) == 1


def test_dispatch_reports_failures_and_survives_a_broken_notifier(
    sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    class Broken:
        def send(self, event: AlertEvent) -> bool:
            raise RuntimeError("boom")

    unreachable = WebhookNotifier(f"http://127.0.0.1:{_closed_port()}/h", retries=0)
    with caplog.at_level(logging.WARNING):
        results = dispatch([Broken(), unreachable, LogNotifier(), LogNotifier()], make_event())
    assert results == {
        "Broken": False,
        unreachable.name: False,
        "log": True,
        "log#2": True,
    }
