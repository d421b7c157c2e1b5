"""The outbox of events for other systems: queued in the transaction of what caused them, delivered at
least once by ``advisor.outbound.deliver``, kept with their last attempt for ``deliveries``.

``targets`` (set by the service from the settings: which target takes which events) decides the rows an
event makes; with none configured nothing is queued. A row is ``pending`` until it is ``delivered``;
``failed`` when a target refused it for good (a 4xx), ``dead`` when it could not be delivered within a
day. ``resend`` puts either back, with the same event id.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from advisor.store.base import StoreBase
from advisor.store.records import now

OUTBOX_STATUSES = ("pending", "delivered", "failed", "dead")


@dataclass(frozen=True)
class Delivery:
    """One event for one target, as the outbox holds it."""

    id: int
    event_id: str
    event_type: str
    target: str
    conversation_id: int | None
    created_at: str
    payload: dict[str, Any] | None  # written at the first attempt; emptied once delivered
    status: str
    attempts: int
    next_at: str
    last_at: str | None
    last_status: int | None
    last_detail: str | None
    delivered_at: str | None


_COLUMNS = ("id, event_id, event_type, target, conversation_id, created_at, payload, status, attempts, next_at,"
            " last_at, last_status, last_detail, delivered_at")


def _delivery(row: Sequence[Any]) -> Delivery:
    return Delivery(int(row[0]), row[1], row[2], row[3], row[4], row[5], json.loads(row[6]) if row[6] else None,
                    row[7], int(row[8]), row[9], row[10], row[11], row[12], row[13])


class OutboxMixin(StoreBase):
    """Events for other systems, one row per target, and what became of each."""

    targets: Mapping[str, frozenset[str]] = {}  # target name -> the event types it takes

    def queue_event(self, event_type: str, conversation_id: int | None, data: dict[str, Any] | None = None) -> str:
        """Queue an event for every target that takes it, in the caller's transaction if there is one;
        ``data`` is its payload's data when known now (a forgotten conversation's), else it is read
        from the conversation at the first attempt. Returns the event id (empty if no target takes it)."""
        names = [name for name, types in self.targets.items() if event_type in types]
        if not names:
            return ""
        event_id = f"msg_{uuid.uuid4().hex}"
        stamp = now()
        payload = None if data is None else json.dumps(
            {"type": event_type, "timestamp": stamp, "data": data}, ensure_ascii=False)
        with self.db.atomic():
            self.db.conn.executemany(
                "INSERT INTO outbox (event_id, event_type, target, conversation_id, created_at, payload, status,"
                " attempts, next_at) VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?)",
                [(event_id, event_type, name, conversation_id, stamp, payload, stamp) for name in names])
        return event_id

    def due_deliveries(self, at: str, targets: Sequence[str] | None = None, limit: int = 100) -> list[Delivery]:
        """Pending rows whose time has come, oldest first; only for ``targets`` when given (a process
        without a target's settings leaves its rows to one that has them)."""
        where, args = "", []
        if targets is not None:
            where = f" AND target IN ({', '.join('?' * len(targets))})" if targets else " AND 0"
            args = list(targets)
        return [_delivery(r) for r in self.db.execute(
            f"SELECT {_COLUMNS} FROM outbox WHERE status = 'pending' AND next_at <= ?{where} ORDER BY id LIMIT ?",
            [at, *args, limit]).fetchall()]

    def delivered_since(self, conversation_id: int | None, target: str, since: str) -> str | None:
        """When an event about this conversation last reached ``target``, if at or after ``since``."""
        if conversation_id is None:
            return None
        row = self.db.execute("SELECT MAX(delivered_at) FROM outbox WHERE conversation_id = ? AND target = ?"
                              " AND status = 'delivered' AND delivered_at >= ?",
                              [conversation_id, target, since]).fetchone()
        return row[0] if row and row[0] else None

    def claim_delivery(self, delivery: Delivery, until: str) -> bool:
        """Take a due row for one attempt, until ``until``: False if another process took it first (the
        Telegram bot, the web chat and the dashboard may all deliver from one database). A process that
        dies mid-attempt leaves it due again at ``until``: still at least once."""
        return self.db.execute(
            "UPDATE outbox SET next_at = ? WHERE id = ? AND status = 'pending' AND next_at = ?",
            [until, delivery.id, delivery.next_at]).rowcount == 1

    def next_delivery_at(self) -> str | None:
        """When the next pending row is due (None: nothing pending)."""
        row = self.db.execute("SELECT MIN(next_at) FROM outbox WHERE status = 'pending'").fetchone()
        return row[0] if row and row[0] else None

    def set_payload(self, delivery_id: int, payload: dict[str, Any]) -> None:
        """The event as it is sent, kept so that every retry sends the same body."""
        self.db.execute("UPDATE outbox SET payload = ? WHERE id = ? AND payload IS NULL",
                        [json.dumps(payload, ensure_ascii=False), delivery_id])

    def delivery_done(self, delivery_id: int, status: str, http_status: int | None, detail: str,
                      next_at: str | None = None, claimed_until: str | None = None) -> bool:
        """What an attempt came to: ``delivered`` (the payload goes), ``pending`` again at ``next_at``,
        ``failed`` or ``dead``. With ``claimed_until`` (the lease the attempt took), only while the row
        is still that attempt's: an attempt that outlived its lease never overwrites a newer result."""
        stamp = now()
        guard, args = ("", []) if claimed_until is None else (" AND status = 'pending' AND next_at = ?",
                                                              [claimed_until])
        return self.db.execute(
            "UPDATE outbox SET status = ?, attempts = attempts + 1, last_at = ?, last_status = ?, last_detail = ?,"
            " next_at = COALESCE(?, next_at), delivered_at = CASE WHEN ? = 'delivered' THEN ? END,"
            f" payload = CASE WHEN ? = 'delivered' THEN NULL ELSE payload END WHERE id = ?{guard}",
            [status, stamp, http_status, detail[:300], next_at, status, stamp, status, delivery_id, *args]
        ).rowcount == 1

    def hold(self, delivery_id: int, until: str) -> None:
        """Not now: the row waits until ``until`` without an attempt counted."""
        self.db.execute("UPDATE outbox SET next_at = ? WHERE id = ? AND status = 'pending'", [until, delivery_id])

    def deliveries(self, status: str | None = None, limit: int = 50) -> list[Delivery]:
        """The outbox, newest first; only one status when given."""
        where, args = ("WHERE status = ?", [status]) if status else ("", [])
        return [_delivery(r) for r in self.db.execute(
            f"SELECT {_COLUMNS} FROM outbox {where} ORDER BY id DESC LIMIT ?", [*args, limit]).fetchall()]

    def delivery_counts(self) -> dict[str, int]:
        found = dict(self.db.execute("SELECT status, COUNT(*) FROM outbox GROUP BY status").fetchall())
        return {status: int(found.get(status, 0)) for status in OUTBOX_STATUSES}

    def resend(self, delivery_id: int | None = None) -> int:
        """A failed or dead row (or, without an id, every one) back to pending now, with the same event
        id and body; returns how many."""
        where, args = ("AND id = ?", [delivery_id]) if delivery_id is not None else ("", [])
        return self.db.execute(
            f"UPDATE outbox SET status = 'pending', next_at = ?, created_at = ?, last_detail = 'resent' WHERE status"
            f" IN ('failed', 'dead') {where}", [now(), now(), *args]).rowcount  # a new day to get it there

    def _forget_outbox(self, ids: Sequence[int]) -> None:
        """In ``forget``'s transaction: what is queued about these conversations goes (a completed event
        holds their answers and contact), delivered rows keep no body; each conversation's
        ``conversation.forgotten`` is queued, so that a CRM can erase too."""
        self.db.conn.executemany("DELETE FROM outbox WHERE conversation_id = ? AND status != 'delivered'",
                                 [(i,) for i in ids])
        for conversation_id in ids:
            self.queue_event("conversation.forgotten", None, {"id": conversation_id})
