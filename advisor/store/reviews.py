"""What reviewers and sales see: reviewers' marks, and the counts behind the reports."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from advisor import AdvisorError
from advisor.store.base import StoreBase
from advisor.store.records import Filters, now

VERDICTS = ("agree", "disagree")


class ReviewsMixin(StoreBase):
    """Reviewers' marks on conversations, and the numbers of the reports."""

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
                    verdict: str | None, expected: Mapping[str, Any] | None = None) -> None:
        """A reviewer's marks on one conversation (replacing earlier ones). ``expected``: on a disagree,
        what the reviewer expected instead (checked by the caller against the rules); kept only then."""
        if verdict not in (None, *VERDICTS):
            raise AdvisorError(f"verdict must be one of {', '.join(VERDICTS)}")
        self.get(conversation_id)  # raises for an unknown id
        kept = json.dumps(dict(expected), ensure_ascii=False, sort_keys=True) \
            if expected and verdict == "disagree" else None
        self.db.execute(
            "INSERT INTO reviews (conversation_id, reviewed, tags, note, verdict, expected, updated_at)"
            " VALUES (:id, :reviewed, :tags, :note, :verdict, :expected, :at)"
            " ON CONFLICT (conversation_id) DO UPDATE SET"
            " reviewed = excluded.reviewed, tags = excluded.tags, note = excluded.note,"
            " verdict = excluded.verdict, expected = excluded.expected, updated_at = excluded.updated_at",
            {"id": conversation_id, "reviewed": int(reviewed), "tags": json.dumps(list(tags), ensure_ascii=False),
             "note": note, "verdict": verdict, "expected": kept, "at": now()},
        )

    def review(self, conversation_id: int) -> dict[str, Any]:
        rows = list(self.db.query("SELECT * FROM reviews WHERE conversation_id = ?", [conversation_id]))
        return _review(rows[0] if rows else None)

    def reviews(self) -> dict[int, dict[str, Any]]:
        """Every review, by conversation id, in one query (an export of every conversation)."""
        return {row["conversation_id"]: _review(row) for row in self.db.query("SELECT * FROM reviews")}


NO_REVIEW: dict[str, Any] = {"reviewed": False, "tags": [], "note": "", "verdict": None, "expected": None,
                             "updated_at": None}


def _review(row: dict[str, Any] | None) -> dict[str, Any]:
    if row is None:
        return {**NO_REVIEW, "tags": []}
    return {"reviewed": bool(row["reviewed"]), "tags": json.loads(row["tags"] or "[]"),
            "note": row["note"] or "", "verdict": row["verdict"],
            "expected": json.loads(row["expected"]) if row.get("expected") else None,
            "updated_at": row["updated_at"]}
