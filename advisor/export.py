"""Conversations as export records: exactly the fields PRODUCT.md promises to other tools."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, TextIO

from advisor.store import Conversation

FIELDS = ("id", "channel", "user_id", "ref", "status", "started_at", "completed_at", "dialog_version",
          "answers", "recommendation", "summary")


def record(conversation: Conversation) -> dict[str, Any]:
    recommendation = conversation.recommendation
    if recommendation is not None and conversation.contact is not None:
        recommendation = {**recommendation, "contact": conversation.contact}  # given after the advice
    return {
        "id": conversation.id,
        "channel": conversation.channel,
        "user_id": conversation.user_id,
        "ref": conversation.ref,
        "status": conversation.status,
        "started_at": conversation.started_at,
        "completed_at": conversation.completed_at,
        "dialog_version": conversation.dialog_version,
        "answers": dict(conversation.state.answers),
        "recommendation": recommendation,
        "summary": conversation.summary,
    }


def write_json(conversations: Iterable[Conversation], out: TextIO) -> int:
    """Write a JSON array, one conversation at a time (a large store never sits in memory)."""
    count = 0
    out.write("[")
    for conversation in conversations:
        out.write(",\n" if count else "\n")
        out.write(json.dumps(record(conversation), ensure_ascii=False))
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count
