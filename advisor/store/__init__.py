"""The one package that holds SQL: conversations, their transcripts, and the schema's migrations.

SQLite through sqlite-utils, in WAL mode with ``synchronous=NORMAL``: a commit survives a crash of
the application (the last ones could be lost on power loss). Every step of a conversation is written
in one transaction before the channel shows the next question, so nothing a person saw
acknowledged is ever lost.

Its parts, each with one job: ``schema`` (the migrations), ``records`` (what goes in and comes out),
``base`` (opening the file), and the parts of ``Store``: ``conversations``, ``delivery``, ``leads``,
``outbox``, ``reviews``, ``retention`` and ``wal``. Everything is importable from ``advisor.store`` as before.
"""

from __future__ import annotations

from advisor.store._fast_import import sqlite_utils as _sqlite_utils  # noqa: F401 - first, see its module
from advisor.store.base import StoreBase, log
from advisor.store.conversations import MAX_ID, ConversationsMixin
from advisor.store.delivery import DeliveryMixin, current_update
from advisor.store.leads import LeadsMixin
from advisor.store.outbox import OUTBOX_STATUSES, Delivery, OutboxMixin
from advisor.store.records import STATUSES, Conversation, Filters, Turn, _day_before, _state_columns, now
from advisor.store.retention import RetentionMixin
from advisor.store.reviews import VERDICTS, ReviewsMixin, _review
from advisor.store.schema import (
    SCHEMA_VERSION,
    _check_schema,
    m001_conversations_and_turns,
    m002_expert_contact,
    m003_reviews_nudges_search,
    m004_delivery,
    m005_lead_alerts,
    m006_search_index_follows_answers_only,
    m007_consent_asked_and_cards_sent,
    m008_ids_never_reused_and_cards_counted,
    migrations,
)
from advisor.store.wal import TRUNCATE_RETRY_SECONDS, WalMixin, _checkpoint_until, _truncated


class Store(ConversationsMixin, DeliveryMixin, LeadsMixin, OutboxMixin, ReviewsMixin, RetentionMixin, WalMixin,
            StoreBase):
    """Conversations and turns in one SQLite file."""


__all__ = [
    "MAX_ID",
    "OUTBOX_STATUSES",
    "SCHEMA_VERSION",
    "STATUSES",
    "TRUNCATE_RETRY_SECONDS",
    "VERDICTS",
    "Conversation",
    "Delivery",
    "Filters",
    "Store",
    "Turn",
    "_check_schema",
    "_checkpoint_until",
    "_day_before",
    "_review",
    "_state_columns",
    "_truncated",
    "current_update",
    "log",
    "m001_conversations_and_turns",
    "m002_expert_contact",
    "m003_reviews_nudges_search",
    "m004_delivery",
    "m005_lead_alerts",
    "m006_search_index_follows_answers_only",
    "m007_consent_asked_and_cards_sent",
    "m008_ids_never_reused_and_cards_counted",
    "migrations",
    "now",
]
