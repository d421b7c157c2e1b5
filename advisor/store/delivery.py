"""Delivery: the updates already handled, the message that asked the current question, blocked people."""

from __future__ import annotations

from contextvars import ContextVar

from advisor.store.base import StoreBase
from advisor.store.records import now

# The update being handled, set by the channel around each update: every write of a conversation
# records it in the same transaction, so a crash either keeps both or neither.
current_update: ContextVar[tuple[str, int] | None] = ContextVar("current_update", default=None)

class DeliveryMixin(StoreBase):
    """Each update handled once, questions matched to the message that asked them, blocked people."""

    def _record_update(self, stamp: str | None = None) -> None:
        handling = current_update.get()
        if handling is not None:
            self.db.execute("INSERT OR IGNORE INTO processed_updates (channel, update_id, at) VALUES (?, ?, ?)",
                            [handling[0], handling[1], stamp or now()])
            self._recorded = handling

    def processed(self, channel: str, update_id: int) -> bool:
        """Whether this update was handled already (Telegram may deliver it again after a crash)."""
        row = self.db.execute("SELECT 1 FROM processed_updates WHERE channel = ? AND update_id = ?",
                              [channel, update_id]).fetchone()
        return row is not None

    def mark_processed(self) -> None:
        """Record the update being handled, for updates that wrote nothing else."""
        handling = current_update.get()
        if handling is None or handling == self._recorded:  # its turn's transaction recorded it
            return
        with self.db.atomic():
            self._record_update()

    def forget_processed(self, before: str) -> int:
        return self.db.execute("DELETE FROM processed_updates WHERE at < ?", [before]).rowcount

    def set_asked(self, conversation_id: int, question_id: str, message_id: int) -> None:
        """The message that first asked this question (re-asks keep the first one)."""
        self.db.execute(
            "UPDATE conversations SET asked_question = ?, asked_message_id = ? WHERE id = ?"
            " AND (asked_question IS NULL OR asked_question != ?)",
            [question_id, message_id, conversation_id, question_id])

    def set_blocked(self, channel: str, user_id: str, blocked: bool) -> None:
        if blocked:
            self.db.execute("INSERT OR IGNORE INTO blocked (channel, user_id, at) VALUES (?, ?, ?)",
                            [channel, user_id, now()])
        else:
            self.db.execute("DELETE FROM blocked WHERE channel = ? AND user_id = ?", [channel, user_id])

    def is_blocked(self, channel: str, user_id: str) -> bool:
        return self.db.execute("SELECT 1 FROM blocked WHERE channel = ? AND user_id = ?",
                               [channel, user_id]).fetchone() is not None
