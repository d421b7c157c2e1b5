"""What the store takes and gives: conversations, turns, filters, and the time stamps it writes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from advisor.engine import ConversationState

STATUSES = ("in_progress", "completed", "abandoned")


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
    language: str = "en"  # what its questions, advice, summary and transcript are in

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
            language=row.get("language") or "en",
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
