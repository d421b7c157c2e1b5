"""What every channel does for a person beyond the questions: consent and contact, forgetting, reminders,
upkeep, and the admins' view. ``AdvisorService`` has these (it is a ``People``); a channel calls them
instead of the store, so that each rule lives here once:

- consent counts only where the advice was shown and the consent question asked;
- a shared contact is taken only after consent, and makes a lead card with it;
- ``forget`` deletes every row of the person and says which lead cards about them to remove;
- a reminder goes once to each conversation idle past a time, recorded before it is sent;
- upkeep: idle conversations count as abandoned, old update ids are forgotten, retention purges.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from advisor import AdvisorError
from advisor.store import Conversation, Filters, Store
from advisor.store.reviews import NO_REVIEW

PROCESSED_KEPT_SECONDS = 2 * 24 * 3600  # Telegram redelivers within hours, not days


def ago(seconds: float) -> str:
    """The store's timestamp format, ``seconds`` ago."""
    moment = datetime.now(UTC) - timedelta(seconds=seconds)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Forgotten:
    conversations: int  # how many were deleted
    cards: list[tuple[int, int]]  # (chat id, message id) of the lead cards about the person, to remove


class People:
    """Mixed into ``AdvisorService``: needs ``store`` and ``purge``."""

    store: Store

    def purge(self, before: str) -> int:  # see AdvisorService.purge
        raise NotImplementedError

    # -- a person's own ---------------------------------------------------------------------
    def owned(self, channel: str, user_id: str, conversation_id: int) -> Conversation | None:
        """The conversation, if it exists and belongs to this person on this channel."""
        try:
            conversation = self.store.get(conversation_id)
        except AdvisorError:  # an unknown id in forged data is just "not yours"
            return None
        return conversation if conversation.channel == channel and conversation.user_id == user_id else None

    def last_advice(self, channel: str, user_id: str) -> Conversation | None:
        """The person's last completed conversation with its recommendation, to show again."""
        latest = self.store.latest(channel, user_id, status="completed")
        return latest if latest is not None and latest.recommendation is not None else None

    def offer_expert(self, conversation: Conversation) -> None:
        """The consent question is about to be asked (consent counts only after it)."""
        self.store.ask_consent(conversation.id)

    def consent(self, conversation: Conversation, alert: tuple[str, int] | None) -> tuple[bool, int | None]:
        """The person agrees to be contacted: (taken, the lead card queued with it). Refused where the
        advice was not shown or the consent question not asked (a forged button)."""
        if conversation.recommendation is None or conversation.consent_asked_at is None:
            return False, None
        return True, self.store.record_consent(conversation.id, alert=alert)

    def share_contact(self, channel: str, user_id: str, contact: dict[str, Any],
                      alert: tuple[str, int] | None) -> tuple[bool, int | None]:
        """Contact details given after the advice: kept with the last conversation the person consented
        on, with a lead card; (kept, its card). Without consent nothing is kept."""
        latest = self.store.latest(channel, user_id, status="completed")
        if latest is None or latest.consent_at is None:
            return False, None
        return True, self.store.save_contact(latest.id, contact, alert=alert)

    def forget(self, channel: str, user_id: str) -> Forgotten:
        cards = self.store.cards_of(channel, user_id)
        return Forgotten(self.store.forget(channel, user_id), cards)

    def mark_blocked(self, channel: str, user_id: str, blocked: bool = True) -> None:
        self.store.set_blocked(channel, user_id, blocked)

    def seen(self, channel: str, user_id: str) -> None:
        """The person wrote or pressed: if they were marked as having blocked the bot, they unblocked it."""
        if self.store.is_blocked(channel, user_id):
            self.store.set_blocked(channel, user_id, False)

    def asked(self, conversation: Conversation, question_id: str, message_id: int) -> None:
        """Which message asked the question (so that a message typed before it is no answer to it)."""
        self.store.set_asked(conversation.id, question_id, message_id)

    # -- now and then -----------------------------------------------------------------------
    def upkeep(self, abandon_after: float, retention_days: float | None) -> int:
        """Conversations idle ``abandon_after`` seconds count as abandoned, old update ids are forgotten,
        and retention purges; returns how many conversations were purged."""
        self.store.abandon_idle(ago(abandon_after))
        self.store.forget_processed(ago(PROCESSED_KEPT_SECONDS))
        return 0 if retention_days is None else self.purge(ago(retention_days * 24 * 3600))

    def due_reminders(self, channel: str, idle_after: float) -> Iterator[Conversation]:
        """Each conversation idle past ``idle_after`` seconds, once: recorded before the channel sends
        it (and only by the process that wins), so a restart neither repeats nor loses a reminder."""
        for conversation in self.store.idle(channel, ago(idle_after)):
            if self.store.mark_nudged(conversation.id):
                yield conversation

    # -- the admins' view -------------------------------------------------------------------
    def stats(self, days: int) -> tuple[dict[str, Any], dict[str, int]]:
        """Counts and the funnel for the last ``days`` days."""
        since = ago(days * 24 * 3600)
        return self.store.stats(Filters(since=since)), self.store.funnel(Filters(since=since))

    def leads(self, count: int) -> list[Conversation]:
        return list(self.store.conversations(Filters(status="completed"), newest_first=True, limit=count))

    def lead(self, conversation_id: int | None) -> tuple[Conversation, list[dict[str, Any]]] | None:
        """A conversation and its transcript, or None."""
        try:
            conversation = self.store.get(conversation_id) if conversation_id else None
        except AdvisorError:
            return None
        return None if conversation is None else (conversation, self.store.transcript(conversation.id))

    def everyone(self) -> Iterator[tuple[Conversation, dict[str, Any]]]:
        """Every conversation with its review, for an export."""
        reviews = self.store.reviews()  # one query, not one a conversation
        for conversation in self.store.conversations():
            yield conversation, reviews.get(conversation.id) or NO_REVIEW
