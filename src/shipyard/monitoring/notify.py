"""Alert notifications: send alert events to a webhook and to the log.

The alert store turns rule firings into alerts; each time an alert opens, resolves or
triggers an action it produces an :class:`AlertEvent`, and :func:`dispatch` hands the
event to every notifier whose ``min_severity`` it reaches. Notifiers never raise: a
webhook that cannot be reached is retried, then logged (host and status only, never
headers or the full URL, which may carry a token) and reported as not delivered.

Example::

    notifiers = build_notifiers(ruleset.notify)
    event = AlertEvent(
        event="opened", alert_id=7, monitor="churn-daily", model="churn",
        rule="dataset drift", severity="critical", message="drift_share = 0.40 > 0.3",
    )
    dispatch(notifiers, event)  # {'webhook:hooks.example.com': True, 'log': True}
"""

from __future__ import annotations

import http.client
import json
import logging
import math
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

from shipyard import __version__
from shipyard.core.errors import InvalidInputError
from shipyard.monitoring.rules import SEVERITIES, NotifySpec, severity_rank

__all__ = [
    "EVENTS",
    "AlertEvent",
    "LogNotifier",
    "Notifier",
    "WebhookNotifier",
    "build_notifiers",
    "dispatch",
]

logger = logging.getLogger(__name__)
alerts_logger = logging.getLogger("shipyard.alerts")

EVENTS = ("opened", "resolved", "action")
_LOG_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "critical": logging.ERROR}


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _jsonable(value: Any) -> Any:
    """``value`` with NaN/inf as ``None``, mappings and sequences copied, the rest as text."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return _jsonable(value.item())
    return str(value)


@dataclass(frozen=True)
class AlertEvent:
    """Something happened to an alert: it ``opened``, ``resolved``, or triggered an ``action``.

    Attributes:
        event: one of :data:`EVENTS`.
        alert_id: the alert store's id of the alert.
        monitor: the monitor's name; ``model`` the monitored model's name.
        rule: the name of the rule that fired; ``severity`` its severity.
        column: the column, for column rules.
        message: what was observed, e.g. ``"drift_share = 0.40 > 0.3"``.
        value: the observed value (``None`` when there is none, e.g. on resolve).
        at_ms: when, in milliseconds since the epoch (default: now).
        details: anything else worth sending (JSON-ready values).

    Raises:
        InvalidInputError: ``event`` or ``severity`` is not one of the accepted values.
    """

    event: str
    alert_id: int
    monitor: str
    model: str
    rule: str
    severity: str
    column: str | None = None
    message: str = ""
    value: float | None = None
    at_ms: int = field(default_factory=_now_ms)
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.event not in EVENTS:
            raise InvalidInputError(
                f"alert event {self.event!r} is not known; use one of {', '.join(EVENTS)}"
            )
        if self.severity not in SEVERITIES:
            raise InvalidInputError(
                f"alert event severity {self.severity!r} is not known; "
                f"use one of {', '.join(SEVERITIES)}"
            )

    def to_dict(self) -> dict[str, Any]:
        """The event as JSON-ready data (the webhook body); NaN and inf become ``None``."""
        return {
            "event": self.event,
            "alert_id": self.alert_id,
            "monitor": self.monitor,
            "model": self.model,
            "rule": self.rule,
            "severity": self.severity,
            "column": self.column,
            "message": self.message,
            "value": _jsonable(self.value),
            "at_ms": self.at_ms,
            "details": _jsonable(self.details),
        }


@runtime_checkable
class Notifier(Protocol):
    """Anything that can deliver an alert event.

    ``send`` returns whether the event was delivered and must not raise. A notifier may
    also have a ``name`` (the key in :func:`dispatch`'s result; default: its class name)
    and a ``min_severity`` (events below it are skipped; default ``"info"``).
    """

    def send(self, event: AlertEvent) -> bool:
        """Deliver ``event``; ``True`` when delivered."""
        ...


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Do not follow redirects: urllib would turn the POST into a GET and drop the body."""

    def redirect_request(  # noqa: PLR0917 (urllib's signature)
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        return None


def _check_severity(min_severity: str) -> str:
    if min_severity not in SEVERITIES:
        raise InvalidInputError(
            f"min_severity {min_severity!r} is not known; use one of {', '.join(SEVERITIES)}"
        )
    return min_severity


class WebhookNotifier:
    """POST each alert event as JSON to a URL, retrying connection errors and 5xx answers.

    Args:
        url: an http(s) URL.
        headers: extra request headers (e.g. ``Authorization``); never logged.
        timeout_s: how long one attempt may take.
        retries: how many more attempts after the first one fails with a connection
            error, a timeout, a 5xx or a 429 answer (other 4xx answers are not retried).
        backoff_s: the wait before the first retry; it doubles before each next one.
        min_severity: events less severe than this are not sent (see :func:`dispatch`).
        opener: the urllib opener to send with (a test seam); by default one that
            does not follow redirects.

    Raises:
        InvalidInputError: a parameter is not acceptable.

    Example::

        hook = WebhookNotifier("https://hooks.example.com/alerts", headers={"X-Token": "s"})
        hook.send(event)  # True when the receiver answered 2xx
    """

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout_s: float = 5.0,
        retries: int = 2,
        backoff_s: float = 0.5,
        min_severity: str = "info",
        opener: urllib.request.OpenerDirector | None = None,
    ) -> None:
        # NotifySpec checks the URL, headers and timeout with the same messages as YAML.
        spec = NotifySpec(
            kind="webhook",
            url=url,
            headers=dict(headers or {}),
            min_severity=min_severity,
            timeout_s=timeout_s,
        )
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise InvalidInputError(f"retries must be a whole number >= 0, got {retries!r}")
        if (
            isinstance(backoff_s, bool)
            or not isinstance(backoff_s, (int, float))
            or not (0 <= backoff_s < math.inf)
        ):
            raise InvalidInputError(f"backoff_s must be a number >= 0, got {backoff_s!r}")
        self.url = url
        self.headers: dict[str, str] = dict(spec.headers)
        self.timeout_s = spec.timeout_s
        self.retries = retries
        self.backoff_s = float(backoff_s)
        self.min_severity = spec.min_severity
        parts = urlsplit(url)
        self.host = parts.hostname or ""
        if parts.port is not None:
            self.host = f"{self.host}:{parts.port}"
        self.name = f"webhook:{self.host}"
        self._opener = opener or urllib.request.build_opener(_NoRedirect())

    def __repr__(self) -> str:
        # The path and query of a webhook URL are often a secret: show the host only.
        return f"WebhookNotifier(host={self.host!r}, min_severity={self.min_severity!r})"

    def send(self, event: AlertEvent) -> bool:
        """POST ``event`` as JSON; ``True`` on a 2xx answer. Never raises."""
        body = json.dumps(event.to_dict()).encode("utf-8")
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"shipyard/{__version__}",
            **self.headers,
        }
        problem = "not attempted"
        attempts = 0
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            attempts += 1
            request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
            try:
                with self._opener.open(request, timeout=self.timeout_s):
                    return True
            except urllib.error.HTTPError as exc:
                exc.close()
                problem = f"HTTP {exc.code}"
                if 300 <= exc.code < 400:
                    problem += " (a redirect, which is not followed: configure the final URL)"
                    break
                if exc.code < 500 and exc.code != 429:
                    break
            except urllib.error.URLError as exc:
                problem = f"cannot connect ({exc.reason})"
            except (OSError, http.client.HTTPException) as exc:  # timeouts, resets
                problem = f"{type(exc).__name__}: {exc}"
        logger.warning(
            "webhook to %s: alert %s event %r not delivered after %d attempt(s): %s",
            self.host,
            event.alert_id,
            event.event,
            attempts,
            problem,
        )
        return False


class LogNotifier:
    """Log each alert event on the ``shipyard.alerts`` logger.

    ``opened`` and ``action`` events are logged at INFO, WARNING or ERROR for severity
    info, warning or critical; ``resolved`` events (good news) at INFO.
    """

    name = "log"

    def __init__(self, *, min_severity: str = "info") -> None:
        self.min_severity = _check_severity(min_severity)

    def __repr__(self) -> str:
        return f"LogNotifier(min_severity={self.min_severity!r})"

    def send(self, event: AlertEvent) -> bool:
        """Log ``event``; always ``True``."""
        level = logging.INFO if event.event == "resolved" else _LOG_LEVELS[event.severity]
        where = f", column {event.column!r}" if event.column is not None else ""
        alerts_logger.log(
            level,
            "alert %s %s [%s] monitor %r, model %r, rule %r%s: %s",
            event.alert_id,
            event.event,
            event.severity,
            event.monitor,
            event.model,
            event.rule,
            where,
            event.message,
        )
        return True


def build_notifiers(specs: Sequence[NotifySpec]) -> list[Notifier]:
    """One notifier per :class:`NotifySpec` (e.g. ``RuleSet.notify``), in order."""
    notifiers: list[Notifier] = []
    for spec in specs:
        if spec.kind == "webhook" and spec.url is not None:
            notifiers.append(
                WebhookNotifier(
                    spec.url,
                    headers=spec.headers,
                    timeout_s=spec.timeout_s,
                    min_severity=spec.min_severity,
                )
            )
        else:
            notifiers.append(LogNotifier(min_severity=spec.min_severity))
    return notifiers


def dispatch(notifiers: Iterable[Notifier], event: AlertEvent) -> dict[str, bool]:
    """Send ``event`` to each notifier whose ``min_severity`` it reaches.

    Returns:
        For each notifier that was attempted, by name (``name`` attribute, or the class
        name; repeated names get ``#2``, ``#3``...), whether the event was delivered.
        Notifiers skipped for severity are left out.

    Example::

        dispatch([LogNotifier(min_severity="warning")], event)  # {} for an info event
    """
    results: dict[str, bool] = {}
    rank = severity_rank(event.severity)
    for notifier in notifiers:
        min_severity = getattr(notifier, "min_severity", "info")
        if min_severity in SEVERITIES and rank < severity_rank(min_severity):
            continue
        base = str(getattr(notifier, "name", type(notifier).__name__))
        name, number = base, 1
        while name in results:
            number += 1
            name = f"{base}#{number}"
        try:
            delivered = bool(notifier.send(event))
        except Exception:  # a plug-in boundary: one broken notifier must not stop the rest
            logger.exception("notifier %s raised on alert %s", name, event.alert_id)
            delivered = False
        results[name] = delivered
    return results
