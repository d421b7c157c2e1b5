"""The one module that holds SQL: conversations, their transcripts, and the schema's migrations.

SQLite through sqlite-utils, in WAL mode with ``synchronous=NORMAL``: a commit survives a crash of
the application (the last ones could be lost on power loss). Every step of a conversation is written
in one transaction before the channel shows the next question, so nothing a person saw
acknowledged is ever lost.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlite_utils import Database, Migrations

from advisor import AdvisorError
from advisor.engine import ConversationState

log = logging.getLogger(__name__)
MAX_ID = 2**63 - 1  # the largest integer SQLite stores

STATUSES = ("in_progress", "completed", "abandoned")
migrations = Migrations("advisor")


@migrations()
def m001_conversations_and_turns(db: Database) -> None:
    db.table("conversations").create(
        {
            "id": int,
            "channel": str,
            "user_id": str,
            "ref": str,
            "status": str,
            "state": str,
            "answers": str,
            "context": str,
            "dialog_id": str,
            "dialog_version": int,
            "started_at": str,
            "updated_at": str,
            "completed_at": str,
            "recommendation": str,
            "summary": str,
        },
        pk="id",
        not_null={"channel", "user_id", "status", "state", "answers", "context", "started_at", "updated_at"},
        defaults={"status": "in_progress", "answers": "{}", "context": "{}"},
    )
    db.table("conversations").create_index(["channel", "user_id", "status"])
    db.table("conversations").create_index(["ref"])
    db.table("turns").create(
        {"id": int, "conversation_id": int, "seq": int, "at": str, "role": str, "question_id": str, "text": str},
        pk="id",
        foreign_keys=[("conversation_id", "conversations", "id")],
        not_null={"conversation_id", "seq", "at", "role", "text"},
    )
    db.table("turns").create_index(["conversation_id", "seq"], unique=True)


@migrations()
def m002_expert_contact(db: Database) -> None:
    """Contact details given after the recommendation, and when the person consented to it."""
    db.table("conversations").add_column("consent_at", str)
    db.table("conversations").add_column("contact", str)


@migrations()
def m003_reviews_nudges_search(db: Database) -> None:
    """Reviewers' marks, the reminder sent to idle conversations, full-text search."""
    db.table("conversations").add_column("nudged_at", str)
    db.table("reviews").create(
        {"conversation_id": int, "reviewed": int, "tags": str, "note": str, "verdict": str,
         "updated_at": str},
        pk="conversation_id",
        foreign_keys=[("conversation_id", "conversations", "id")],
        defaults={"reviewed": 0, "tags": "[]", "note": ""},
    )
    db.table("conversations").enable_fts(["answers", "summary"], create_triggers=True)
    db.table("conversations").create_index(["status", "updated_at"])


@migrations()
def m004_delivery(db: Database) -> None:
    """Updates already handled (a redelivered one is handled once), the message that asked the current
    question (a message typed before it answers nothing), people who blocked the bot."""
    db.table("processed_updates").create({"channel": str, "update_id": int, "at": str}, pk=("channel", "update_id"))
    db.table("processed_updates").create_index(["at"])
    db.table("conversations").add_column("asked_question", str)
    db.table("conversations").add_column("asked_message_id", int)
    db.table("blocked").create({"channel": str, "user_id": str, "at": str}, pk=("channel", "user_id"))


@migrations()
def m005_lead_alerts(db: Database) -> None:
    """Lead alerts not yet delivered to the sales chat (an outbox: queued with the turn that caused
    them, deleted once sent), so that a restart still sends them. Nothing personal: ids and the event."""
    db.table("lead_alerts").create({"id": int, "conversation_id": int, "event": str, "created_at": str}, pk="id",
                             not_null={"conversation_id", "event", "created_at"})


@migrations()
def m006_search_index_follows_answers_only(db: Database) -> None:
    """The full-text index was rewritten on every update of a conversation (sqlite-utils' trigger),
    also when only the asked message, a timestamp or a reminder changed: now only when the answers or
    the summary do."""
    db.execute('DROP TRIGGER IF EXISTS "conversations_au"')
    # named and quoted as sqlite-utils writes its own, so that its disable_fts() still finds it
    db.execute(
        'CREATE TRIGGER "conversations_au" AFTER UPDATE OF "answers", "summary" ON "conversations"'
        ' WHEN old."answers" IS NOT new."answers" OR old."summary" IS NOT new."summary" BEGIN\n'
        '  INSERT INTO "conversations_fts" ("conversations_fts", rowid, "answers", "summary")'
        ' VALUES(\'delete\', old.rowid, old."answers", old."summary");\n'
        '  INSERT INTO "conversations_fts" (rowid, "answers", "summary")'
        ' VALUES (new.rowid, new."answers", new."summary");\nEND')


@migrations()
def m007_consent_asked_and_cards_sent(db: Database) -> None:
    """When the consent question was put to the person: consent counts only where it was asked (a
    forged consent button on an unfinished conversation queued lead cards). And the lead cards sent
    to the sales chat (chat and message ids), so that /forget removes them there too."""
    db.table("conversations").add_column("consent_asked_at", str)
    cards = db.table("sent_cards")
    cards.create({"conversation_id": int, "chat_id": int, "message_id": int, "sent_at": str},
                 pk=("chat_id", "message_id"), not_null={"conversation_id", "sent_at"})
    cards.create_index(["conversation_id"])


@migrations()
def m008_ids_never_reused_and_cards_counted(db: Database) -> None:
    """Conversation ids are never given twice: after /forget deleted the newest conversation, SQLite
    gave its id to the next person (without AUTOINCREMENT), so old lead cards ("/lead 7") and links
    pointed at someone else. ``highest_ids`` keeps the highest id ever given (``begin()`` and
    ``forget()`` write it, in their transactions) and ``begin()`` goes past it. (Ids deleted before
    this migration cannot be known: it starts from the highest one left.)

    And the lead cards queued, kept for a day after they left the outbox: one person's cards a day are
    counted whatever their event (sharing a contact again and again queued a card each time). Nothing
    personal: a conversation id and a time, deleted with the conversation."""
    db.table("highest_ids").create({"table_name": str, "id": int}, pk="table_name", not_null={"id"})
    db.execute("INSERT INTO highest_ids (table_name, id) SELECT 'conversations', COALESCE(MAX(id), 0)"
               " FROM conversations")
    cards = db.table("cards_queued")
    cards.create({"id": int, "conversation_id": int, "at": str}, pk="id", not_null={"conversation_id", "at"})
    cards.create_index(["conversation_id", "at"])
    cards.create_index(["at"])


def _check_schema(db: Database, name: str) -> None:
    """Refuse a database of a newer advisor (it would be served with apologies, or changed) and a
    SQLite file of another program (it would gain the advisor's tables)."""
    tables = set(db.table_names())
    if not tables - {"_sqlite_migrations"}:
        return  # new and empty (or being made by another advisor process right now): the advisor's to make
    if "_sqlite_migrations" not in tables or "conversations" not in tables:
        raise AdvisorError(f"{name} is a SQLite database of another program, not the advisor's: "
                           "give the advisor a file of its own (ADVISOR_DB)")
    known = {m.name for m in migrations._migrations}
    applied = {row[0] for row in db.execute("SELECT name FROM _sqlite_migrations WHERE migration_set = ?",
                                            [migrations.name]).fetchall()}
    if applied - known:
        raise AdvisorError(f"{name} was written by a newer version of the advisor (schema {len(applied)}, "
                           f"this one knows {len(known)}): upgrade this one to use it")


SCHEMA_VERSION = 8  # the number of migrations: fixtures of each earlier version live in tests/fixtures/schema

# The update being handled, set by the channel around each update: every write of a conversation
# records it in the same transaction, so a crash either keeps both or neither.
current_update: ContextVar[tuple[str, int] | None] = ContextVar("current_update", default=None)

VERDICTS = ("agree", "disagree")


@dataclass(frozen=True)
class Filters:
    """Which conversations: every field that is set must match."""

    ref: str | None = None  # a ref, also matching its campaigns: "alice" matches "alice--spring"
    status: str | None = None
    since: str | None = None  # an ISO date or time: started at or after it
    search: str | None = None  # words to find in the answers and summaries
    channel: str | None = None

    def where(self) -> tuple[str, dict[str, Any]]:
        """The SQL condition and its parameters (always parameterised)."""
        clauses: list[str] = ["1 = 1"]
        params: dict[str, Any] = {}
        if self.ref:
            clauses.append("(ref = :ref OR ref LIKE :ref_campaigns ESCAPE '\\')")
            escaped = self.ref.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            params.update(ref=self.ref, ref_campaigns=f"{escaped}--%")
        if self.status:
            clauses.append("status = :status")
            params["status"] = self.status
        if self.since:
            clauses.append("started_at >= :since")
            params["since"] = self.since
        if self.channel:
            clauses.append("channel = :channel")
            params["channel"] = self.channel
        words = (self.search or "").split()
        if words:
            clauses.append("id IN (SELECT rowid FROM conversations_fts WHERE conversations_fts MATCH :search)")
            params["search"] = " ".join('"' + word.replace('"', '""') + '"' for word in words)
        return " AND ".join(clauses), params


def _checkpoint_until(path: str, every: float, stop: threading.Event) -> None:
    connection = sqlite3.connect(path, check_same_thread=False)
    try:
        connection.execute("PRAGMA busy_timeout = 1000")
        while True:
            stopping = stop.wait(every)
            try:
                connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error as error:  # busy or locked: the next round catches up
                log.debug("WAL checkpoint skipped: %s", error)
            if stopping:
                return
    finally:
        connection.close()


TRUNCATE_RETRY_SECONDS = 0.2  # how often the log is tried again, once a wipe could not empty it


def _truncated(connection: sqlite3.Connection) -> bool:
    """Copy the write-ahead log into the file and empty it (to 0 bytes); False when a reader still
    holds an older snapshot or a writer is busy (with ``busy_timeout = 0`` that is known at once)."""
    try:
        busy, _frames, _done = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()[0]
    except sqlite3.Error as error:
        log.debug("WAL truncation not possible now: %s", error)
        return False
    return not busy


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _day_before(stamp: str) -> str:
    """The time 24 hours before ``stamp`` (as ``now()`` writes it), written the same way."""
    then = datetime.fromisoformat(stamp.replace("Z", "+00:00")) - timedelta(days=1)
    return then.isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Turn:
    role: str  # "person" or "advisor"
    text: str
    question_id: str | None = None


@dataclass(frozen=True)
class Conversation:
    id: int
    channel: str
    user_id: str
    ref: str | None
    status: str
    state: ConversationState
    dialog_id: str
    dialog_version: int
    started_at: str
    updated_at: str
    completed_at: str | None
    recommendation: dict[str, Any] | None
    summary: str | None
    consent_at: str | None = None
    consent_asked_at: str | None = None
    contact: dict[str, Any] | None = None
    nudged_at: str | None = None
    asked_question: str | None = None
    asked_message_id: int | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Conversation:
        context = json.loads(row["context"] or "{}")
        state = ConversationState.from_dict(
            {"current": row["state"], "answers": json.loads(row["answers"] or "{}"), **context}
        )
        return cls(
            id=row["id"],
            channel=row["channel"],
            user_id=row["user_id"],
            ref=row["ref"],
            status=row["status"],
            state=state,
            dialog_id=row["dialog_id"],
            dialog_version=row["dialog_version"],
            started_at=row["started_at"],
            updated_at=row["updated_at"],
            completed_at=row["completed_at"],
            recommendation=json.loads(row["recommendation"]) if row["recommendation"] else None,
            summary=row["summary"],
            consent_at=row.get("consent_at"),
            consent_asked_at=row.get("consent_asked_at"),
            contact=json.loads(row["contact"]) if row.get("contact") else None,
            nudged_at=row.get("nudged_at"),
            asked_question=row.get("asked_question"),
            asked_message_id=row.get("asked_message_id"),
        )


def _state_columns(state: ConversationState) -> dict[str, Any]:
    data = state.to_dict()
    return {
        "state": data.pop("current"),
        "answers": json.dumps(data.pop("answers"), ensure_ascii=False),
        "context": json.dumps(data, ensure_ascii=False),
    }


class Store:
    """Conversations and turns in one SQLite file."""

    def __init__(self, db: Database, path: str):
        self.db = db
        self.path = path
        self._recorded: tuple[str, int] | None = None  # the update a transaction last recorded
        self._checkpoints: tuple[threading.Thread, threading.Event] | None = None
        # emptying the write-ahead log after a wipe, off the caller's thread, until it works
        self._truncate_lock = threading.Lock()
        self._truncate_wanted = False
        self._truncating: threading.Thread | None = None
        self._closing = threading.Event()

    @classmethod
    def open(cls, path: str | Path, read_only: bool = False) -> Store:
        """Open the database at ``path`` (creating and migrating it as needed), or raise AdvisorError.

        A database written by a newer version of the advisor, or a SQLite file of another program,
        is refused rather than served or changed. ``read_only`` (``summaries``, ``show``, ``export``):
        nothing is written, so nothing is migrated either; an older database is read as it is."""
        name = str(path) if str(path) == ":memory:" else str(Path(path).expanduser())
        if name != ":memory:":
            parent = Path(name).resolve().parent
            if not parent.is_dir():
                raise AdvisorError(f"cannot open database {name}: folder {parent} does not exist")
        for attempt in range(50):  # two processes creating one new file at once: one waits its turn
            try:
                return cls._open(name, read_only)
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or attempt == 49:
                    raise AdvisorError(f"cannot open database {name}: {error}") from None
                time.sleep(0.1)
        raise AssertionError("unreachable")

    @classmethod
    def _open(cls, name: str, read_only: bool) -> Store:
        """One try at opening (see open); busy_timeout does not cover switching to WAL mode or the
        first migration's schema lock, which another process making the same file may hold."""
        db: Database | None = None
        try:
            if read_only and name != ":memory:":
                db = Database(sqlite3.connect(f"{Path(name).resolve().as_uri()}?mode=ro", uri=True))
            else:
                db = Database(name)
            db.execute("PRAGMA busy_timeout = 5000")
            _check_schema(db, name)
            if not read_only:
                if name != ":memory:":
                    db.enable_wal()
                db.execute("PRAGMA synchronous = NORMAL")
                db.execute("PRAGMA foreign_keys = ON")
                db.execute("PRAGMA secure_delete = ON")  # forgotten words do not linger in free pages
                if migrations.pending(db):
                    # one process migrates at a time (the others wait here), each migration still its
                    # own savepoint: two processes making one new file both applied m001 before
                    db.execute("BEGIN IMMEDIATE")
                    try:
                        migrations.apply(db)
                        db.execute("COMMIT")
                    except BaseException:
                        db.conn.rollback()
                        raise
        except sqlite3.OperationalError as error:
            if "locked" in str(error):
                if db is not None:
                    db.close()
                raise
            raise AdvisorError(f"cannot open database {name}: {error}") from None
        except sqlite3.DatabaseError as error:
            raise AdvisorError(f"cannot open database {name}: {error}") from None
        return cls(db, name)

    def close(self) -> None:
        self._closing.set()
        with self._truncate_lock:
            truncating = self._truncating
        if truncating is not None:  # a reader still holds the log: closing does not wait for it
            truncating.join(timeout=2)
        self.stop_checkpoints()
        self.db.close()

    def start_checkpoints(self, every: float = 1.0) -> None:
        """Move WAL checkpoints off the caller's thread (for the bot: its event loop).

        SQLite checkpoints inside whichever commit takes the log past 1,000 pages, and syncs the file
        there: a few milliseconds, every few hundred turns, in the middle of someone's update. Here
        that commit no longer checkpoints (``wal_autocheckpoint = 0``); a thread with its own
        connection makes a PASSIVE checkpoint every ``every`` seconds, which never blocks a writer.
        """
        if self.path == ":memory:" or self._checkpoints is not None:
            return
        self.db.execute("PRAGMA wal_autocheckpoint = 0")
        stop = threading.Event()
        thread = threading.Thread(target=_checkpoint_until, args=(self.path, every, stop),
                                  name="advisor-wal-checkpoints", daemon=True)
        thread.start()
        self._checkpoints = (thread, stop)

    def stop_checkpoints(self) -> None:
        """Stop the checkpoint thread (after one last checkpoint); commits checkpoint again themselves."""
        if self._checkpoints is None:
            return
        thread, stop = self._checkpoints
        stop.set()
        thread.join(timeout=10)
        self._checkpoints = None
        self.db.execute("PRAGMA wal_autocheckpoint = 1000")

    # -- conversations ---------------------------------------------------------------------
    def begin(
        self,
        channel: str,
        user_id: str,
        state: ConversationState,
        dialog_id: str,
        dialog_version: int,
        ref: str | None = None,
        turns: Sequence[Turn] = (),
    ) -> Conversation:
        """Create a conversation with its first turns, in one transaction. Its id was never used
        before, also not by a conversation since forgotten (see m008)."""
        stamp = now()
        with self.db.atomic():
            cursor = self.db.execute(  # the id is chosen within the write itself: two processes never clash
                "INSERT INTO conversations (id, channel, user_id, ref, status, state, answers, context,"
                " dialog_id, dialog_version, started_at, updated_at)"
                " VALUES ((SELECT MAX(COALESCE((SELECT id FROM highest_ids WHERE table_name = 'conversations'), 0),"
                "                     COALESCE((SELECT MAX(id) FROM conversations), 0)) + 1),"
                " :channel, :user_id, :ref, 'in_progress', :state, :answers, :context,"
                " :dialog_id, :dialog_version, :stamp, :stamp)",
                {"channel": channel, "user_id": user_id, "ref": ref, "dialog_id": dialog_id,
                 "dialog_version": dialog_version, "stamp": stamp, **_state_columns(state)},
            )
            conversation_id = int(cursor.lastrowid or 0)
            self._used_ids_up_to(conversation_id)
            self._add_turns(conversation_id, turns, stamp)
        return self.get(conversation_id)

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
    ) -> int | None:
        """Commit one step: the new state and its turns; a recommendation completes it. ``alert``
        (event, cards a person may make a day) queues a lead card in the same transaction, so a
        crash keeps both or neither; returns its id, if one was queued."""
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
            return self.queue_alert(conversation_id, *alert) if alert is not None else None

    def abandon(self, conversation_id: int, turns: Sequence[Turn] = ()) -> None:
        stamp = now()
        with self.db.atomic():
            self.db.execute(
                "UPDATE conversations SET status = 'abandoned', updated_at = ? WHERE id = ?",
                [stamp, conversation_id],
            )
            self._add_turns(conversation_id, turns, stamp)

    # -- delivery ----------------------------------------------------------------------------
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

    busy_ms = 5000  # how long a write waits, blocking its caller, for another process's write lock

    def wait_for_writers(self, ms: int) -> None:
        """How long a write waits (blocking) for another process's write lock before it fails with
        "database is locked"; the bot keeps this short, as the wait blocks its event loop."""
        self.busy_ms = ms
        self.db.execute(f"PRAGMA busy_timeout = {int(ms)}")

    def writable(self) -> bool:
        """Whether a write could start now, asked without waiting: another process may hold SQLite's
        write lock (a long ``sqlite3`` session, a backup), and SQLite's own busy wait would block the
        caller (for the bot: its event loop, so every chat) for up to the busy timeout."""
        if self.path == ":memory:" or self.db.conn.in_transaction:
            return True
        self.db.execute("PRAGMA busy_timeout = 0")
        try:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("ROLLBACK")
            return True
        except sqlite3.OperationalError as error:
            if "locked" in str(error) or "busy" in str(error):
                return False
            raise
        finally:
            self.db.execute(f"PRAGMA busy_timeout = {int(self.busy_ms)}")

    def forget_processed(self, before: str) -> int:
        return self.db.execute("DELETE FROM processed_updates WHERE at < ?", [before]).rowcount

    # -- lead alerts -----------------------------------------------------------------------
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
            return self.queue_alert(conversation_id, *alert) if alert is not None and saved else None

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
            self.db.execute("DELETE FROM conversations WHERE channel = ? AND user_id = ?", [channel, user_id])
            self.db.execute("DELETE FROM blocked WHERE channel = ? AND user_id = ?", [channel, user_id])
            self._record_update()
        self._compact_search_index()
        return len(ids)

    def _compact_search_index(self) -> None:
        """Merge the full-text index, so deleted words leave its on-disk segments too; then empty the
        write-ahead log into the file (``secure_delete`` zeroes the pages freed there), so the words
        do not stay in the log's older frames. A reader holding an older snapshot (the dashboard, a
        backup) keeps that from working now: then it is tried again off this thread until it works
        (a passive checkpoint never empties the log, and its frames are reused from the start)."""
        self.db.execute("INSERT INTO conversations_fts(conversations_fts) VALUES('optimize')")
        if self.path == ":memory:":
            return
        self.db.execute("PRAGMA busy_timeout = 0")  # waiting for a reader here would block the caller
        try:
            emptied = _truncated(self.db.conn)
        finally:
            self.db.execute(f"PRAGMA busy_timeout = {int(self.busy_ms)}")
        if not emptied:
            log.info("the write-ahead log could not be emptied now (a reader is busy): trying again "
                     "every %.1f s", TRUNCATE_RETRY_SECONDS)
            self._truncate_soon()

    def _truncate_soon(self) -> None:
        """Have the log emptied off the caller's thread, as soon as readers let go."""
        with self._truncate_lock:
            self._truncate_wanted = True
            if self._truncating is None and not self._closing.is_set():
                self._truncating = threading.Thread(target=self._truncate_until_done, name="advisor-wal-truncate",
                                                    daemon=True)
                self._truncating.start()

    def _truncate_until_done(self) -> None:
        """Try to empty the log every TRUNCATE_RETRY_SECONDS until it works and no wipe asks again
        (then the thread ends: passive checkpoints only), or the store closes."""
        this = threading.current_thread()
        connection: sqlite3.Connection | None = None
        try:
            connection = sqlite3.connect(self.path, check_same_thread=False)
            # never wait for readers while holding the write lock (that would hold up every write)
            connection.execute("PRAGMA busy_timeout = 0")
            while not self._closing.wait(TRUNCATE_RETRY_SECONDS):
                with self._truncate_lock:
                    self._truncate_wanted = False
                emptied = _truncated(connection)
                with self._truncate_lock:
                    if not emptied:
                        self._truncate_wanted = True
                    elif not self._truncate_wanted:  # no wipe since this try began: done
                        self._truncating = None
                        log.info("the write-ahead log was emptied")
                        return
        except sqlite3.Error as error:
            log.warning("the write-ahead log could not be emptied: %s", error)
        finally:
            with self._truncate_lock:
                if self._truncating is this:
                    self._truncating = None
            if connection is not None:
                connection.close()

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

    # -- what reviewers and sales see -------------------------------------------------------
    def stats(self, filters: Filters | None = None) -> dict[str, Any]:
        """Started, completed, the completion rate, where the others stopped, and the same by ref."""
        where, params = (filters or Filters()).where()
        row = self.db.execute(
            f"SELECT COUNT(*), COALESCE(SUM(status = 'completed'), 0) FROM conversations WHERE {where}", params
        ).fetchone()
        started, completed = int(row[0]), int(row[1])
        stopped = self.db.execute(
            f"SELECT state, COUNT(*) FROM conversations WHERE {where} AND status != 'completed'"
            " GROUP BY state ORDER BY COUNT(*) DESC, state", params).fetchall()
        by_ref = self.db.execute(
            f"SELECT COALESCE(ref, ''), COUNT(*), COALESCE(SUM(status = 'completed'), 0) FROM conversations"
            f" WHERE {where} GROUP BY COALESCE(ref, '') ORDER BY COUNT(*) DESC, 1", params).fetchall()
        return {
            "started": started,
            "completed": completed,
            "completion_rate": completed / started if started else 0.0,
            "stopped_at": [{"question": q, "count": n} for q, n in stopped],
            "by_ref": [{"ref": r or None, "started": n, "completed": c,
                        "completion_rate": c / n if n else 0.0} for r, n, c in by_ref],
        }

    def funnel(self, filters: Filters | None = None) -> dict[str, int]:
        """How many of the matching conversations reached each question (were asked it)."""
        where, params = (filters or Filters()).where()
        rows = self.db.execute(
            "SELECT question_id, COUNT(DISTINCT conversation_id) FROM turns WHERE role = 'advisor'"
            f" AND question_id IS NOT NULL AND conversation_id IN (SELECT id FROM conversations WHERE {where})"
            " GROUP BY question_id", params).fetchall()
        return {question: int(count) for question, count in rows}

    def save_review(self, conversation_id: int, reviewed: bool, tags: Sequence[str], note: str,
                    verdict: str | None) -> None:
        """A reviewer's marks on one conversation (replacing earlier ones)."""
        if verdict not in (None, *VERDICTS):
            raise AdvisorError(f"verdict must be one of {', '.join(VERDICTS)}")
        self.get(conversation_id)  # raises for an unknown id
        self.db.execute(
            "INSERT INTO reviews (conversation_id, reviewed, tags, note, verdict, updated_at)"
            " VALUES (:id, :reviewed, :tags, :note, :verdict, :at) ON CONFLICT (conversation_id) DO UPDATE SET"
            " reviewed = excluded.reviewed, tags = excluded.tags, note = excluded.note,"
            " verdict = excluded.verdict, updated_at = excluded.updated_at",
            {"id": conversation_id, "reviewed": int(reviewed), "tags": json.dumps(list(tags), ensure_ascii=False),
             "note": note, "verdict": verdict, "at": now()},
        )

    def review(self, conversation_id: int) -> dict[str, Any]:
        rows = list(self.db.query("SELECT * FROM reviews WHERE conversation_id = ?", [conversation_id]))
        return _review(rows[0] if rows else None)

    def reviews(self) -> dict[int, dict[str, Any]]:
        """Every review, by conversation id, in one query (an export of every conversation)."""
        return {row["conversation_id"]: _review(row) for row in self.db.query("SELECT * FROM reviews")}

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
        cursor = self.db.execute(
            "UPDATE conversations SET status = 'abandoned' WHERE status = 'in_progress' AND updated_at < ?",
            [idle_since])
        return cursor.rowcount

    def transcript(self, conversation_id: int) -> list[dict[str, Any]]:
        return list(self.db.query(
            "SELECT seq, at, role, question_id, text FROM turns WHERE conversation_id = ? ORDER BY seq",
            [conversation_id],
        ))


def _review(row: dict[str, Any] | None) -> dict[str, Any]:
    if row is None:
        return {"reviewed": False, "tags": [], "note": "", "verdict": None, "updated_at": None}
    return {"reviewed": bool(row["reviewed"]), "tags": json.loads(row["tags"] or "[]"),
            "note": row["note"] or "", "verdict": row["verdict"], "updated_at": row["updated_at"]}
