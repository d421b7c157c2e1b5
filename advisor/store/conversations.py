"""Conversations and their transcripts: starting, saving each step, reading, and reminders."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from advisor import AdvisorError
from advisor.engine import ConversationState
from advisor.store.base import StoreBase
from advisor.store.records import Conversation, Filters, Turn, _state_columns, now

MAX_ID = 2**63 - 1  # the largest integer SQLite stores


class ConversationsMixin(StoreBase):
    """Conversations and turns: each step written in one transaction."""

    def begin(
        self,
        channel: str,
        user_id: str,
        state: ConversationState,
        dialog_id: str,
        dialog_version: int,
        ref: str | None = None,
        turns: Sequence[Turn] = (),
        language: str = "en",
    ) -> Conversation:
        """Create a conversation with its first turns, in one transaction. Its id was never used
        before, also not by a conversation since forgotten (see m008)."""
        stamp = now()
        with self.db.atomic():
            cursor = self.db.execute(  # the id is chosen within the write itself: two processes never clash
                "INSERT INTO conversations (id, channel, user_id, ref, status, state, answers, context,"
                " dialog_id, dialog_version, started_at, updated_at, language)"
                " VALUES ((SELECT MAX(COALESCE((SELECT id FROM highest_ids WHERE table_name = 'conversations'), 0),"
                "                     COALESCE((SELECT MAX(id) FROM conversations), 0)) + 1),"
                " :channel, :user_id, :ref, 'in_progress', :state, :answers, :context,"
                " :dialog_id, :dialog_version, :stamp, :stamp, :language)",
                {"channel": channel, "user_id": user_id, "ref": ref, "dialog_id": dialog_id, "language": language,
                 "dialog_version": dialog_version, "stamp": stamp, **_state_columns(state)},
            )
            conversation_id = int(cursor.lastrowid or 0)
            self._used_ids_up_to(conversation_id)
            self._add_turns(conversation_id, turns, stamp)
        return self.get(conversation_id)

    def set_language(self, conversation_id: int, language: str) -> None:
        """What the conversation is in from now on (the person chose another language)."""
        self.db.execute("UPDATE conversations SET language = ?, updated_at = ? WHERE id = ?",
                        [language, now(), conversation_id])

    def _used_ids_up_to(self, conversation_id: int) -> None:
        """Conversation ids up to this one were given: never again (inside the caller's transaction)."""
        self.db.execute("UPDATE highest_ids SET id = ? WHERE table_name = 'conversations' AND id < ?",
                        [conversation_id, conversation_id])

    def save(
        self,
        conversation_id: int,
        state: ConversationState,
        turns: Sequence[Turn] = (),
        recommendation: dict[str, Any] | None = None,
        summary: str | None = None,
        alert: tuple[str, int] | None = None,
        events: Sequence[str] = (),
    ) -> int | None:
        """Commit one step: the new state and its turns; a recommendation completes it. ``alert``
        (event, cards a person may make a day) queues a lead card in the same transaction, so a
        crash keeps both or neither; returns its id, if one was queued. ``events`` are queued in the
        outbox in the same transaction (``conversation.completed``, ``contact.requested``)."""
        stamp = now()
        columns = {**_state_columns(state), "updated_at": stamp, "id": conversation_id}
        sets = "state = :state, answers = :answers, context = :context, updated_at = :updated_at"
        if recommendation is not None:
            columns.update(
                recommendation=json.dumps(recommendation, ensure_ascii=False),
                summary=summary,
                completed_at=stamp,
            )
            sets += (", status = 'completed', recommendation = :recommendation, summary = :summary,"
                     " completed_at = :completed_at")
        with self.db.atomic():
            self.db.execute(f"UPDATE conversations SET {sets} WHERE id = :id", columns)
            self._add_turns(conversation_id, turns, stamp)
            for event in events:
                self.queue_event(event, conversation_id)
            return self.queue_alert(conversation_id, *alert) if alert is not None else None

    def abandon(self, conversation_id: int, turns: Sequence[Turn] = ()) -> None:
        stamp = now()
        with self.db.atomic():
            changed = self.db.execute(
                "UPDATE conversations SET status = 'abandoned', updated_at = ? WHERE id = ? AND status != 'abandoned'",
                [stamp, conversation_id],
            ).rowcount
            self._add_turns(conversation_id, turns, stamp)
            if changed:
                self.queue_event("conversation.abandoned", conversation_id)

    def _add_turns(self, conversation_id: int, turns: Sequence[Turn], stamp: str) -> None:
        """Add turns (inside the caller's transaction), and record the update being handled."""
        self._record_update(stamp)
        if not turns:
            return
        row = self.db.execute(
            "SELECT COALESCE(MAX(seq), 0) FROM turns WHERE conversation_id = ?", [conversation_id]
        ).fetchone()
        seq = int(row[0])
        self.db.conn.executemany(
            "INSERT INTO turns (conversation_id, seq, at, role, question_id, text) VALUES (?, ?, ?, ?, ?, ?)",
            [(conversation_id, seq + i, stamp, t.role, t.question_id, t.text) for i, t in enumerate(turns, 1)],
        )

    def get(self, conversation_id: int) -> Conversation:
        if not 0 < conversation_id <= MAX_ID:  # SQLite's integers end there: past it, no such row
            raise AdvisorError(f"no conversation {conversation_id}")
        rows = list(self.db.query("SELECT * FROM conversations WHERE id = ?", [conversation_id]))
        if not rows:
            raise AdvisorError(f"no conversation {conversation_id}")
        return Conversation.from_row(rows[0])

    def find_open(self, channel: str, user_id: str) -> Conversation | None:
        """The person's conversation still in progress on this channel, if any."""
        rows = list(self.db.query(
            "SELECT * FROM conversations WHERE channel = ? AND user_id = ? AND status = 'in_progress'"
            " ORDER BY id DESC LIMIT 1",
            [channel, user_id],
        ))
        return Conversation.from_row(rows[0]) if rows else None

    def latest(self, channel: str, user_id: str, status: str | None = None) -> Conversation | None:
        """The person's most recent conversation (with that status, if given)."""
        where, params = "channel = ? AND user_id = ?", [channel, user_id]
        if status is not None:
            where, params = where + " AND status = ?", [*params, status]
        rows = list(self.db.query(f"SELECT * FROM conversations WHERE {where} ORDER BY id DESC LIMIT 1", params))
        return Conversation.from_row(rows[0]) if rows else None

    def conversations(self, filters: Filters | None = None, newest_first: bool = False,
                      limit: int | None = None, offset: int = 0) -> Iterator[Conversation]:
        """Conversations matching ``filters``, oldest first unless ``newest_first``."""
        where, params = (filters or Filters()).where()
        order = "DESC" if newest_first else "ASC"
        sql = f"SELECT * FROM conversations WHERE {where} ORDER BY id {order}"
        if limit is not None:
            sql += " LIMIT :limit OFFSET :offset"
            params.update(limit=limit, offset=offset)
        for row in self.db.query(sql, params):
            yield Conversation.from_row(row)

    def count(self, filters: Filters | None = None) -> int:
        where, params = (filters or Filters()).where()
        return int(self.db.execute(f"SELECT COUNT(*) FROM conversations WHERE {where}", params).fetchone()[0])

    def transcript(self, conversation_id: int) -> list[dict[str, Any]]:
        return list(self.db.query(
            "SELECT seq, at, role, question_id, text FROM turns WHERE conversation_id = ? ORDER BY seq",
            [conversation_id],
        ))

    # -- reminders ---------------------------------------------------------------------------
    def idle(self, channel: str, idle_since: str) -> list[Conversation]:
        """Conversations in progress, untouched since ``idle_since`` and not reminded yet."""
        rows = self.db.query(
            "SELECT * FROM conversations WHERE channel = ? AND status = 'in_progress' AND nudged_at IS NULL"
            " AND updated_at < ? AND NOT EXISTS (SELECT 1 FROM blocked b WHERE b.channel = conversations.channel"
            " AND b.user_id = conversations.user_id) ORDER BY id", [channel, idle_since])
        return [Conversation.from_row(row) for row in rows]

    def mark_nudged(self, conversation_id: int) -> bool:
        """Record the reminder; False if another instance already did (so it is sent once)."""
        cursor = self.db.execute(
            "UPDATE conversations SET nudged_at = ? WHERE id = ? AND nudged_at IS NULL", [now(), conversation_id])
        return cursor.rowcount == 1

    def abandon_idle(self, idle_since: str) -> int:
        """Mark conversations in progress and untouched since ``idle_since`` abandoned."""
        with self.db.atomic():  # one statement that writes first: no read before the write to go stale
            ids = [row[0] for row in self.db.execute(
                "UPDATE conversations SET status = 'abandoned' WHERE status = 'in_progress' AND updated_at < ?"
                " RETURNING id", [idle_since]).fetchall()]
            for conversation_id in ids:
                self.queue_event("conversation.abandoned", conversation_id)
        return len(ids)
