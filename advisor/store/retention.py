"""Forgetting and retention: deleting a person's conversations, and their words once too old."""

from __future__ import annotations

from collections.abc import Sequence

from advisor.store.base import StoreBase


class RetentionMixin(StoreBase):
    """/forget, and retention's purge of transcripts, contact details and typed words."""

    def forget(self, channel: str, user_id: str) -> int:
        """Delete every conversation and turn of one person; return how many conversations went."""
        ids = [row[0] for row in self.db.execute(
            "SELECT id FROM conversations WHERE channel = ? AND user_id = ?", [channel, user_id]).fetchall()]
        with self.db.atomic():
            self._used_ids_up_to(max(ids, default=0))
            self.db.conn.executemany("DELETE FROM turns WHERE conversation_id = ?", [(i,) for i in ids])
            self.db.conn.executemany("DELETE FROM reviews WHERE conversation_id = ?", [(i,) for i in ids])
            self.db.conn.executemany("DELETE FROM lead_alerts WHERE conversation_id = ?", [(i,) for i in ids])
            self.db.conn.executemany("DELETE FROM sent_cards WHERE conversation_id = ?", [(i,) for i in ids])
            self.db.conn.executemany("DELETE FROM cards_queued WHERE conversation_id = ?", [(i,) for i in ids])
            self._forget_outbox(ids)
            self.db.execute("DELETE FROM conversations WHERE channel = ? AND user_id = ?", [channel, user_id])
            self.db.execute("DELETE FROM blocked WHERE channel = ? AND user_id = ?", [channel, user_id])
            self._record_update()
        self._compact_search_index()
        return len(ids)

    def purge_transcripts(self, before: str, typed: Sequence[str] = ()) -> list[int]:
        """Retention: for conversations untouched since ``before``, delete the transcript, contact
        details, and the person's own words: the answers to the ``typed`` (free-text) questions and
        the advice's quote of them (``said``). Returns the ids purged: their summary, which quotes
        the words too, is the service's to write anew, before ``wipe()``."""
        words = " OR ".join(["json_type(answers, ?) = 'text'"] * len(typed)) or "0"
        paths = [f"$.{question}" for question in typed]
        with self.db.atomic():
            ids = [row[0] for row in self.db.execute(
                "SELECT id FROM conversations WHERE updated_at < ? AND (contact IS NOT NULL"
                " OR json_type(answers, '$.contact') = 'object'"
                " OR json_type(recommendation, '$.said') = 'text'"
                f" OR {words}"
                " OR EXISTS (SELECT 1 FROM turns WHERE conversation_id = conversations.id))",
                [before, *paths]).fetchall()]
            self.db.conn.executemany("DELETE FROM turns WHERE conversation_id = ?", [(i,) for i in ids])
            # an event kept in the outbox holds the same words: it is read anew if it is sent again
            self.db.conn.executemany("UPDATE outbox SET payload = NULL WHERE conversation_id = ?", [(i,) for i in ids])
            self.db.conn.executemany(
                "UPDATE conversations SET contact = NULL,"
                " answers = CASE WHEN json_type(answers, '$.contact') = 'object'"
                "   THEN json_remove(answers, '$.contact') ELSE answers END,"
                " recommendation = CASE WHEN json_type(recommendation, '$.contact') = 'object'"
                "   THEN json_set(recommendation, '$.contact', json('null')) ELSE recommendation END"
                " WHERE id = ?", [(i,) for i in ids])
            self.db.conn.executemany(
                "UPDATE conversations SET recommendation = json_set(recommendation, '$.said', json('null'))"
                " WHERE id = ? AND json_type(recommendation, '$.said') = 'text'", [(i,) for i in ids])
            for path in paths:
                self.db.conn.executemany(
                    "UPDATE conversations SET answers = json_remove(answers, ?) WHERE id = ?"
                    " AND json_type(answers, ?) = 'text'", [(path, i, path) for i in ids])
        return ids

    def wipe(self) -> None:
        """After deleting a person's words: leave no copy in the index's segments or the log."""
        self._compact_search_index()

    def set_summary(self, conversation_id: int, summary: str | None) -> None:
        """Write a conversation's summary anew (after retention took the person's words out of it)."""
        self.db.execute("UPDATE conversations SET summary = ? WHERE id = ?", [summary, conversation_id])
