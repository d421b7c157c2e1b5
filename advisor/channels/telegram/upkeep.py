"""Upkeep: abandoned conversations, retention, old update ids, and the one reminder."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from telegram.error import BadRequest, Forbidden

from advisor.channels.telegram.base import ChannelBase
from advisor.channels.telegram.settings import (
    CHANNEL,
    Context,
)
from advisor.channels.telegram.text import ago
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
        store = self.service.store
        store.abandon_idle(ago(self.options.abandon_after))
        store.forget_processed(ago(2 * 24 * 3600))  # Telegram redelivers within hours, not days
        if self.options.retention_days is not None:
            purged = self.service.purge(ago(self.options.retention_days * 24 * 3600))
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
        store = self.service.store
        sent = 0
        for conversation in store.idle(CHANNEL, ago(self.options.nudge_after)):
            if not store.mark_nudged(conversation.id):
                continue
            chat_id = int(conversation.user_id)
            try:
                await self.send(chat_id, self.renderer.telegram("reminder"), Context(bot))
                await self.show(chat_id, Outcome(conversation, self.engine.resume(conversation.state), True),
                                Context(bot))
                sent += 1
            except Forbidden:
                store.set_blocked(CHANNEL, conversation.user_id, True)
                log.info("reminder to conversation %s not delivered: blocked", conversation.id)
            except BadRequest as error:
                log.info("reminder to conversation %s not delivered: %s", conversation.id, error)
        return sent
