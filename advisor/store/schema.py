"""The schema: its migrations (m001...), their count, and the check that a file is the advisor's."""

from __future__ import annotations

from sqlite_utils import Database, Migrations

from advisor import AdvisorError

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


@migrations()
def m009_what_reviewers_expected(db: Database) -> None:
    """What a reviewer who disagreed expected instead (``{"verdict", "profile", "approaches": {task:
    approach}}``, each part optional), so that the advice lab can measure and tune the rules against it."""
    db.table("reviews").add_column("expected", str)


@migrations()
def m010_language(db: Database) -> None:
    """The language of each conversation (``en``, ``de``, ``es``): its questions, advice, summary and
    transcript are in it. Conversations before it were all in English."""
    db.table("conversations").add_column("language", str, not_null_default="en")


@migrations()
def m011_outbox(db: Database) -> None:
    """The outbox of events for other systems (signed webhooks, HubSpot, Pipedrive): one row per event
    and target, delivered at least once with the same ``event_id`` (the ``webhook-id``). ``payload`` is
    the event as sent, written at the first attempt so every retry sends the same body, and emptied
    once delivered; ``conversation_id`` is not a foreign key: a forgotten conversation's rows go with it
    but its ``conversation.forgotten`` event stays to be sent. No secret or token is ever stored."""
    outbox = db.table("outbox")
    outbox.create({"id": int, "event_id": str, "event_type": str, "target": str, "conversation_id": int,
                   "created_at": str, "payload": str, "status": str, "attempts": int, "next_at": str,
                   "last_at": str, "last_status": int, "last_detail": str, "delivered_at": str},
                  pk="id", not_null={"event_id", "event_type", "target", "created_at", "status", "attempts",
                                     "next_at"}, defaults={"attempts": 0, "status": "pending"})
    outbox.create_index(["status", "next_at"])
    outbox.create_index(["conversation_id"])
    outbox.create_index(["event_id", "target"], unique=True)


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


SCHEMA_VERSION = 11  # the number of migrations: fixtures of each earlier version live in tests/fixtures/schema
