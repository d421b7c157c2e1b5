"""Delivering the outbox: one pass over what is due (``deliver_due``), and the thread that makes a pass
every few seconds in a long-running process (``Deliverer``).

At least once, with the same event id and body on every attempt. A 5xx, a timeout or a connection error
is tried again after an exponential backoff with jitter (30 s, 1, 2, 4 ... minutes, at most an hour,
each between half and all of it); 408 and 429 too, no sooner than their ``Retry-After``. Any other 4xx is
``failed`` at once: the same request would be refused again. What is not delivered within a day of the
event is ``dead``. Failed and dead rows stay visible (``python bot.py deliveries``, the dashboard) and
can be resent. The body is read from the conversation at the first attempt and kept, so retries send
the same bytes; it is emptied once delivered. Rows of a target this process has no settings for are
left to one that has them. A CRM's search lags a few seconds behind its writes (``search_lag``): an
event about a conversation whose last event reached that CRM less than that ago waits, so that the
second one finds what the first made instead of making it twice.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from advisor import AdvisorError
from advisor.export import record
from advisor.outbound.base import TIMEOUT, Event, Result, Target, result_of_error
from advisor.store import Delivery, Store

log = logging.getLogger("advisor.outbound")

FIRST_DELAY = 30.0  # seconds before the first retry
LONGEST_DELAY = 3600.0  # the backoff's cap
DEAD_AFTER = timedelta(days=1)
POLL_SECONDS = 3.0  # how often a long-running process looks at the outbox
LEASE = timedelta(minutes=3)  # a row taken for an attempt is nobody else's this long (a CRM's few calls)


def backoff(attempts: int, rng: Callable[[], float] = random.random) -> float:
    """Seconds before attempt ``attempts + 1``: doubling from FIRST_DELAY up to LONGEST_DELAY, each
    between half and all of it (jitter, so that many retries do not arrive together)."""
    delay = min(LONGEST_DELAY, FIRST_DELAY * 2 ** max(0, attempts - 1))
    return delay / 2 + rng() * delay / 2


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


@dataclass
class PassReport:
    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    dead: int = 0

    @property
    def attempted(self) -> int:
        return self.delivered + self.retrying + self.failed + self.dead


def event_of(store: Store, delivery: Delivery) -> Event | None:
    """The event as it is sent: its kept body, or (first attempt) the conversation read now and kept.
    None when the conversation is gone (forgotten since: nothing is sent about it)."""
    payload = delivery.payload
    if payload is None:
        if delivery.conversation_id is None:
            return None
        try:
            conversation = store.get(delivery.conversation_id)
        except AdvisorError:
            return None
        payload = {"type": delivery.event_type, "timestamp": delivery.created_at, "data": record(conversation)}
        store.set_payload(delivery.id, payload)
    return Event(delivery.event_id, str(payload["type"]), str(payload["timestamp"]), dict(payload["data"]))


def deliver_due(store: Store, targets: Mapping[str, Target], client: httpx.Client,
                clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                rng: Callable[[], float] = random.random, stop: threading.Event | None = None) -> PassReport:
    """One pass: every row due now, oldest first, tried once."""
    report = PassReport()
    for delivery in store.due_deliveries(_stamp(clock()), list(targets)):
        if stop is not None and stop.is_set():
            break
        target = targets[delivery.target]
        lag = float(getattr(target, "search_lag", 0.0))
        recent = store.delivered_since(delivery.conversation_id, delivery.target,
                                       _stamp(clock() - timedelta(seconds=lag))) if lag else None
        if recent is not None:  # the CRM's search would not find yet what the last event made
            store.hold(delivery.id, _stamp(_parse(recent) + timedelta(seconds=lag)))
            continue
        lease = _stamp(clock() + LEASE)
        if not store.claim_delivery(delivery, lease):
            continue  # another process is sending it
        event = event_of(store, delivery)
        if event is None:
            store.delivery_done(delivery.id, "failed", None, "the conversation was forgotten: nothing sent",
                                claimed_until=lease)
            report.failed += 1
            continue
        try:
            result = target.send(event, client)
        except httpx.HTTPError as error:
            result = result_of_error(error, target.name)
        except Exception as error:
            log.exception("delivery %s to %s failed", delivery.id, target.name)
            result = Result(False, retry=True, detail=f"{target.name} error: {type(error).__name__}")
        _settle(store, delivery, result, clock(), rng, report, lease)
    return report


def _settle(store: Store, delivery: Delivery, result: Result, moment: datetime, rng: Callable[[], float],
            report: PassReport, lease: str) -> None:
    if result.ok:
        store.delivery_done(delivery.id, "delivered", result.status, result.detail or "delivered", claimed_until=lease)
        report.delivered += 1
    elif not result.retry:
        store.delivery_done(delivery.id, "failed", result.status, result.detail, claimed_until=lease)
        report.failed += 1
    else:
        wait = max(backoff(delivery.attempts + 1, rng), result.retry_after or 0.0)
        due = moment + timedelta(seconds=wait)
        if due - _parse(delivery.created_at) > DEAD_AFTER:
            store.delivery_done(delivery.id, "dead", result.status, f"{result.detail} (gave up after a day)",
                                claimed_until=lease)
            report.dead += 1
        else:
            store.delivery_done(delivery.id, "pending", result.status, result.detail, _stamp(due), claimed_until=lease)
            report.retrying += 1


def client() -> httpx.Client:
    """The HTTP client of a pass: short timeouts, no redirects followed (a webhook answers itself)."""
    return httpx.Client(timeout=TIMEOUT, follow_redirects=False)


class Deliverer:
    """Makes a pass every POLL_SECONDS on a thread of its own, with its own connection to the database,
    in a process that runs for long (the Telegram bot, the web chat, the dashboard)."""

    def __init__(self, db_path: str, targets: Mapping[str, Target], poll: float = POLL_SECONDS) -> None:
        self.db_path = db_path
        self.targets = dict(targets)
        self.poll = poll
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Deliverer:
        if self.targets and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="deliverer", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        store = Store.open(self.db_path)
        try:
            with client() as http:
                while not self._stop.is_set():
                    try:
                        deliver_due(store, self.targets, http, stop=self._stop)
                    except Exception:
                        log.exception("a delivery pass failed")
                    self._stop.wait(self.poll)
        finally:
            store.close()


def summary(report: PassReport, waiting: Any) -> str:
    """One line about a pass, for ``deliver``."""
    later = f"; the next retry is due at {waiting}" if waiting else ""
    return (f"delivered {report.delivered}, retrying {report.retrying}, failed {report.failed}, "
            f"dead {report.dead}{later}")
