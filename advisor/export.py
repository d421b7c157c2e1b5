"""Conversations as export records: exactly the fields PRODUCT.md promises to other tools."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any, TextIO

from advisor.store import Conversation

FIELDS = ("id", "channel", "user_id", "ref", "status", "started_at", "completed_at", "dialog_version",
          "language", "answers", "recommendation", "summary")


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
        "language": conversation.language,
        "answers": dict(conversation.state.answers),
        "recommendation": recommendation,
        "summary": conversation.summary,
    }


# What a terminal would act on rather than show: control characters (escape sequences that recolour,
# move the cursor or retitle the window; C1 controls such as CSI), bidirectional overrides (which
# reorder what is shown) and lone surrogates
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def json_text(value: Any, printable: bool = False) -> str:
    """``value`` as JSON (UTF-8 text kept as it is); ``printable`` (for a terminal) also writes what a
    terminal would act on as ``\\uXXXX`` escapes: still valid JSON, read back as the same data."""
    text = json.dumps(value, ensure_ascii=False)
    return UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text) if printable else text


def write_json(conversations: Iterable[Conversation], out: TextIO, printable: bool = False) -> int:
    """Write a JSON array, one conversation at a time (a large store never sits in memory).
    ``printable``: for a terminal (see json_text); files and pipes get the data as it is."""
    count = 0
    out.write("[")
    for conversation in conversations:
        out.write(",\n" if count else "\n")
        out.write(json_text(record(conversation), printable))
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count
