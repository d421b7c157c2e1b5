"""Upkeep: abandoned conversations, retention, old update ids, and the one reminder."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from telegram.error import BadRequest, Forbidden

from advisor.channels.telegram.base import SPEAKING, ChannelBase
from advisor.channels.telegram.settings import (
    CHANNEL,
    Context,
)
from advisor.service import Outcome

log = logging.getLogger(__name__)


class Upkeep(ChannelBase):
    """What runs now and then, beside the updates."""

    async def maintain_forever(self, bot: Any) -> None:
        """Now (a restart may have missed something), then regularly: mark conversations idle for days
        abandoned, remind idle ones, apply the retention period, forget old update ids."""
        interval = 300.0 if self.options.nudge_after is None else max(1.0, min(self.options.nudge_after / 4, 300.0))
        while True:
            try:
                await self.maintain(bot)
            except Exception:
                log.exception("maintenance failed; trying again in %.0f s", interval)
            await asyncio.sleep(interval)

    async def maintain(self, bot: Any) -> None:
        purged = self.service.upkeep(self.options.abandon_after, self.options.retention_days)
        if purged:
            log.info("retention: transcripts of %d conversation(s) deleted", purged)
        if self.options.nudge_after is not None:
            await self.remind(bot)

    async def remind(self, bot: Any) -> int:
        """One reminder to each conversation idle past ``nudge_after`` (not to people who blocked the bot).

        The reminder is recorded before it is sent (and only by the instance whose update wins), so a
        restart neither repeats nor loses it: at worst one reminder is lost to a crash mid-send.
        """
        assert self.options.nudge_after is not None
        sent = 0
        for conversation in self.service.due_reminders(CHANNEL, self.options.nudge_after):
            chat_id = int(conversation.user_id)
            SPEAKING.set(conversation.language)  # this task's: the reminder in the conversation's words
            try:
                async with self.turn(chat_id):  # never between an update's messages in that chat
                    await self.send(chat_id, self.renderer.telegram("reminder"), Context(bot))
                    await self.show(chat_id, Outcome(conversation, self.engine.resume(conversation.state), True),
                                    Context(bot))
                sent += 1
            except Forbidden:
                self.service.mark_blocked(CHANNEL, conversation.user_id)
                log.info("reminder to conversation %s not delivered: blocked", conversation.id)
            except BadRequest as error:
                log.info("reminder to conversation %s not delivered: %s", conversation.id, error)
        return sent
