"""Leads: consent and contact details, the outbox of lead cards for the sales chat, cards sent and counted."""

from __future__ import annotations

import json
from typing import Any

from advisor.store.base import StoreBase, log
from advisor.store.records import _day_before, now


class LeadsMixin(StoreBase):
    """Consent, contact details, and the lead cards they queue for the sales chat."""

    def queue_alert(self, conversation_id: int, event: str, per_person_a_day: int | None = None) -> int | None:
        """Queue a lead alert (``completed``, ``expert``, ``contact``) for the sales chat, in the caller's
        transaction if there is one; returns its id, or None when the conversation's person (same
        channel and user id) already had ``per_person_a_day`` cards queued in the last 24 hours, for
        any of their conversations and whatever the event: one person never makes more than that."""
        stamp = now()
        with self.db.atomic():
            if per_person_a_day is not None:
                person = self.db.execute("SELECT channel, user_id FROM conversations WHERE id = ?",
                                         [conversation_id]).fetchone()
                if person is not None and self.cards_today(*person) >= per_person_a_day:
                    log.info("no lead card for conversation %s: its person had %d today", conversation_id,
                             per_person_a_day)
                    return None
            cursor = self.db.execute(
                "INSERT INTO lead_alerts (conversation_id, event, created_at) VALUES (?, ?, ?)",
                [conversation_id, event, stamp])
            alert_id = int(cursor.lastrowid or 0)
            # counted for a day, also once delivered (the outbox row goes then); older counts go now
            self.db.execute("DELETE FROM cards_queued WHERE at < ?", [_day_before(stamp)])
            self.db.execute("INSERT INTO cards_queued (conversation_id, at) VALUES (?, ?)", [conversation_id, stamp])
            self._record_update()
        return alert_id

    def pending_alerts(self, limit: int = 100) -> list[tuple[int, int, str]]:
        """Alerts not yet delivered, oldest first: (alert id, conversation id, event)."""
        return [(int(a), int(c), str(e)) for a, c, e in self.db.execute(
            "SELECT id, conversation_id, event FROM lead_alerts ORDER BY id LIMIT ?", [limit]).fetchall()]

    def card_sent(self, conversation_id: int, chat_id: int, message_id: int) -> None:
        """A lead card about this conversation is in the sales chat (removed there on /forget)."""
        self.db.execute("INSERT OR IGNORE INTO sent_cards (conversation_id, chat_id, message_id, sent_at)"
                        " VALUES (?, ?, ?, ?)", [conversation_id, chat_id, message_id, now()])

    def cards_of(self, channel: str, user_id: str) -> list[tuple[int, int]]:
        """(chat id, message id) of every lead card sent about the person's conversations."""
        return [(int(c), int(m)) for c, m in self.db.execute(
            "SELECT chat_id, message_id FROM sent_cards WHERE conversation_id IN"
            " (SELECT id FROM conversations WHERE channel = ? AND user_id = ?)", [channel, user_id]).fetchall()]

    def alert_done(self, alert_id: int) -> None:
        """Delivered (or given up on): the alert leaves the outbox."""
        self.db.execute("DELETE FROM lead_alerts WHERE id = ?", [alert_id])

    def ask_consent(self, conversation_id: int) -> None:
        """The consent question was put to the person, for this conversation's advice."""
        with self.db.atomic():
            self.db.execute("UPDATE conversations SET consent_asked_at = COALESCE(consent_asked_at, ?)"
                            " WHERE id = ?", [now(), conversation_id])

    def cards_today(self, channel: str, user_id: str) -> int:
        """How many lead cards were queued in the last 24 hours about the person's conversations
        (this channel and user id), whatever the event, delivered since or not."""
        return int(self.db.execute(
            "SELECT COUNT(*) FROM cards_queued WHERE at >= ? AND conversation_id IN"
            " (SELECT id FROM conversations WHERE channel = ? AND user_id = ?)",
            [_day_before(now()), channel, user_id]).fetchone()[0])

    def record_consent(self, conversation_id: int, alert: tuple[str, int] | None = None) -> int | None:
        """The person agreed that an expert may contact them about this conversation's advice; with
        ``alert``, its lead card is queued in the same transaction (its id is returned)."""
        with self.db.atomic():
            self.db.execute("UPDATE conversations SET consent_at = ?, updated_at = ? WHERE id = ?",
                            [now(), now(), conversation_id])
            self._record_update()
            self.queue_event("contact.requested", conversation_id)
            return self.queue_alert(conversation_id, *alert) if alert is not None else None

    def save_contact(self, conversation_id: int, contact: dict[str, Any],
                     alert: tuple[str, int] | None = None) -> int | None:
        """Keep contact details, only for a conversation whose person consented; with ``alert``, its
        lead card is queued in the same transaction (its id is returned)."""
        with self.db.atomic():
            saved = self.db.execute(
                "UPDATE conversations SET contact = ?, updated_at = ? WHERE id = ? AND consent_at IS NOT NULL",
                [json.dumps(contact, ensure_ascii=False), now(), conversation_id],
            ).rowcount
            self._record_update()
            if saved:  # the details to reach them by, given after the advice
                self.queue_event("contact.requested", conversation_id)
            return self.queue_alert(conversation_id, *alert) if alert is not None and saved else None
