"""What every outgoing target shares: the event it is given and what one attempt came to.

An ``Event`` is what the outbox holds: the same id on every attempt (the ``webhook-id``, so receivers
deduplicate), its type (``conversation.completed``, ``contact.requested``, ``conversation.abandoned``,
``conversation.forgotten``), when it happened and its data. A ``Target`` (a signed webhook endpoint,
HubSpot, Pipedrive) sends one event with an ``httpx.Client`` and says what came of it as a ``Result``:
delivered, worth another try (5xx, 408, 429, a timeout, a connection error; with the server's
``Retry-After`` when it gave one) or refused for good (any other 4xx). ``result_of`` and
``result_of_error`` read an HTTP response or an exception that way, for every target alike.
"""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

EVENT_TYPES = ("conversation.completed", "contact.requested", "conversation.abandoned", "conversation.forgotten")
RETRIED = frozenset({408, 429})  # the 4xx answers that say "later", not "never"
TIMEOUT = httpx.Timeout(10.0, connect=5.0)  # seconds: one attempt never holds a pass for long


@dataclass(frozen=True)
class Event:
    id: str  # "msg_..." (the webhook-id): the same on every attempt
    type: str
    timestamp: str  # ISO 8601, when it happened
    data: dict[str, Any]


@dataclass(frozen=True)
class Result:
    ok: bool
    retry: bool = False  # not delivered, worth another attempt
    status: int | None = None  # the HTTP status that decided it (None: no answer)
    retry_after: float | None = None  # seconds the server asked to wait
    detail: str = ""  # one line for `deliveries` and the dashboard; never a secret

    @classmethod
    def delivered(cls, status: int | None = None, detail: str = "") -> Result:
        return cls(True, status=status, detail=detail)


class Target(Protocol):
    name: str  # "webhook", "hubspot", "pipedrive": what `deliveries` shows

    def accepts(self, event_type: str) -> bool: ...

    def send(self, event: Event, client: httpx.Client) -> Result: ...


def retry_after(value: str | None, clock: float | None = None) -> float | None:
    """``Retry-After`` as seconds: a number of seconds or an HTTP date; None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if clock is None else clock))


def result_of(response: httpx.Response, what: str = "") -> Result:
    """What an HTTP answer means for the event: 2xx delivered; 5xx, 408 and 429 later (honouring
    ``Retry-After``); any other 4xx never (a request that is wrong stays wrong)."""
    status = response.status_code
    label = f"{what} {status}".strip()
    if 200 <= status < 300:
        return Result.delivered(status, label)
    reason = response.reason_phrase or ""
    detail = f"{label} {reason}".strip()
    if status >= 500 or status in RETRIED:
        return Result(False, retry=True, status=status, retry_after=retry_after(response.headers.get("Retry-After")),
                      detail=detail)
    return Result(False, retry=False, status=status, detail=detail)


def result_of_error(error: Exception, what: str = "") -> Result:
    """A timeout or a connection error: worth another attempt; named without the URL's query (a token
    may travel there)."""
    kind = "timeout" if isinstance(error, httpx.TimeoutException) else "connection error"
    return Result(False, retry=True, detail=f"{what} {kind}: {type(error).__name__}".strip())
