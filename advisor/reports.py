"""Views of stored conversations for the people behind the bot: tables, CSV rows, one conversation.

Pure formatting over what ``advisor.store`` returns: the command line, the admin commands in
Telegram and the review dashboard all use these, so a reviewer sees the same thing everywhere.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any, TextIO

from advisor import AdvisorError
from advisor.export import UNSAFE, json_text, record
from advisor.store import Conversation, Delivery

CSV_FIELDS = ("id", "channel", "user_id", "ref", "status", "started_at", "completed_at", "dialog_version", "language",
              "readiness_score", "profile", "advice_verdict", "engagement_model", "top_functions", "contact_name",
              "contact_email", "contact_phone", "reviewed", "verdict", "tags", "note", "summary", "answers")
REF_PART = re.compile(r"^[A-Za-z0-9_]{1,40}$")


def parse_since(value: str | None, today: date | None = None) -> str | None:
    """``2026-11-01``, a full ISO time, or ``7d`` (the last 7 days) -> an ISO timestamp to compare with."""
    if not value:
        return None
    value = value.strip()
    days = re.fullmatch(r"(\d{1,4})d", value)
    if days:
        start = (today or datetime.now(UTC).date()) - timedelta(days=int(days.group(1)))
        return start.isoformat()
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    except (ValueError, OverflowError):  # (0001-01-01T00:00+14:00 is before the year 1 in UTC)
        raise AdvisorError(f"--since: expected a date such as 2026-11-01 or a number of days such as 7d, "
                           f"got {value!r}") from None
    return parsed.isoformat() if len(value) > 10 else parsed.date().isoformat()


def deep_link(username: str, ref: str, campaign: str | None = None) -> str:
    """``https://t.me/<bot>?start=<ref>[--<campaign>]``; refuses what Telegram would refuse."""
    for name, part in (("REF", ref), ("--campaign", campaign)):
        if part is not None and not REF_PART.match(part):
            raise AdvisorError(f"{name} must be 1-40 characters of A-Z a-z 0-9 _, got {part!r}")
    payload = ref if campaign is None else f"{ref}--{campaign}"
    if len(payload) > 64:
        raise AdvisorError(f"the link's payload {payload!r} is longer than Telegram's 64 characters")
    return f"https://t.me/{username.lstrip('@')}?start={payload}"


def contact_of(conversation: Conversation) -> dict[str, Any] | None:
    """Contact details the person gave with consent (at the last question or after the advice)."""
    if conversation.contact:
        return conversation.contact
    # the answer to the contact question: the one answer that is details given with consent
    return next((given for given in conversation.state.answers.values()
                 if isinstance(given, dict) and given.get("consent")), None)


def name_of(conversation: Conversation) -> str | None:
    contact = contact_of(conversation)
    return (contact or {}).get("name") or None


def top_functions(conversation: Conversation, count: int = 3, name: Callable[[str], str] | None = None) -> list[str]:
    """The first tasks handed over, by the names stored (the person's language) or, with ``name``, by
    the names ``name`` gives their ids (a reader's language: a sales team's lead card)."""
    rec = conversation.recommendation or {}
    return [name(f["id"]) if name else f["name"] for f in rec.get("functions", []) if not f.get("suggested")][:count]


def csv_row(conversation: Conversation, review: Mapping[str, Any]) -> dict[str, Any]:
    rec = conversation.recommendation or {}
    contact = contact_of(conversation) or {}
    return {
        "id": conversation.id,
        "channel": conversation.channel,
        "user_id": conversation.user_id,
        "ref": conversation.ref or "",
        "status": conversation.status,
        "started_at": conversation.started_at,
        "completed_at": conversation.completed_at or "",
        "dialog_version": conversation.dialog_version,
        "language": conversation.language,
        "readiness_score": rec.get("readiness_score", ""),
        "profile": rec.get("profile", ""),
        "advice_verdict": rec.get("verdict") or "",
        "engagement_model": (rec.get("engagement_model") or {}).get("id", ""),
        "top_functions": "; ".join(top_functions(conversation)),
        "contact_name": contact.get("name") or "",
        "contact_email": contact.get("email") or "",
        "contact_phone": contact.get("phone") or "",
        "reviewed": "yes" if review.get("reviewed") else "no",
        "verdict": review.get("verdict") or "",
        "tags": ", ".join(review.get("tags") or []),
        "note": review.get("note") or "",
        "summary": conversation.summary or "",
        "answers": json.dumps(dict(conversation.state.answers), ensure_ascii=False),
    }


def write_csv(rows: Iterable[Mapping[str, Any]], out: TextIO, printable: bool = False) -> int:
    """CSV rows, kept from running as formulas in a spreadsheet. ``printable``: for a terminal, what a
    terminal would act on (escape sequences, bidirectional overrides) is written as visible codes
    such as ``\x1b`` (see printable()); files and pipes get the data as it is."""
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS)
    writer.writeheader()
    count = 0
    for row in rows:
        writer.writerow({key: _shown(_cell(value)) if printable else _cell(value) for key, value in row.items()})
        count += 1
    return count


_PHONE = re.compile(r"\+[0-9 ()./-]{6,30}")


def _cell(value: Any) -> Any:
    """Keep a spreadsheet from running what a prospect typed (CSV formula injection). A phone number
    ("+34 600 111 222") is no formula and stays as it is: a spreadsheet reads it as text or a number."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r") and not _PHONE.fullmatch(value):
        return "'" + value
    return value


def _shown(value: Any) -> Any:
    return printable(value) if isinstance(value, str) else value


def csv_text(rows: Iterable[Mapping[str, Any]]) -> str:
    buffer = io.StringIO()
    write_csv(rows, buffer)
    return buffer.getvalue()


def write_jsonl(conversations: Iterable[Conversation], out: TextIO, printable: bool = False) -> int:
    """One JSON object a line; ``printable``: for a terminal (see advisor.export.json_text)."""
    count = 0
    for conversation in conversations:
        out.write(json_text(record(conversation), printable) + "\n")
        count += 1
    return count


_UNSAFE = UNSAFE


def printable(text: str) -> str:
    """``text`` safe for a terminal: control characters (escape sequences that recolour, move the
    cursor or retitle the window), bidirectional overrides (which reorder what is shown) and lone
    surrogates become visible codes such as ``\x1b`` or ``\u202e``."""
    return _UNSAFE.sub(lambda m: m.group().encode("unicode_escape", "backslashreplace").decode("ascii"), text)


def table_rows(conversations: Iterable[Conversation]) -> list[list[Any]]:
    rows = []
    for c in conversations:
        rec = c.recommendation or {}
        rows.append([
            c.id, c.started_at[:16].replace("T", " "), c.channel, printable(c.ref or ""), c.status,
            rec.get("readiness_score", ""), rec.get("profile", ""), ", ".join(top_functions(c, 2)),
            printable(name_of(c) or ""),
        ])
    return rows


TABLE_HEADERS = ["id", "started", "channel", "ref", "status", "score", "profile", "top functions", "name"]


class Progress:
    """``exported 1,000 of 12,000`` on standard error, for work long enough to wonder about."""

    def __init__(self, total: int, verb: str, every: int = 1000) -> None:
        self.total, self.verb, self.every, self.done = total, verb, every, 0
        self.shown = total >= every

    def tick(self) -> None:
        self.done += 1
        if self.shown and (self.done % self.every == 0 or self.done == self.total):
            end = "\n" if self.done == self.total or not sys.stderr.isatty() else "\r"
            print(f"{self.verb} {self.done:,} of {self.total:,}", end=end, file=sys.stderr, flush=True)


DELIVERY_HEADERS = ["id", "event", "type", "to", "conversation", "status", "attempts", "last attempt", "result",
                    "next"]


def deliveries_table(deliveries: Iterable[Delivery], counts: Mapping[str, int]) -> str:
    """The outbox as ``python bot.py deliveries`` prints it: one row per event and target, then counts."""
    from tabulate import tabulate

    rows = [[d.id, d.event_id[:16], d.event_type, d.target, d.conversation_id or "", d.status, d.attempts,
             (d.last_at or "")[:16].replace("T", " "), printable(d.last_detail or ""),
             d.next_at[:16].replace("T", " ") if d.status == "pending" else ""] for d in deliveries]
    totals = ", ".join(f"{count} {status}" for status, count in counts.items())
    if not rows:
        return f"No events in the outbox ({totals})."
    return (tabulate(rows, headers=DELIVERY_HEADERS, tablefmt="simple") + f"\n\n{totals}. Resend a failed or dead "
            "one: python bot.py deliveries --resend ID")
