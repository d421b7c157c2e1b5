"""Lead cards: from the outbox in the database to the sales chat, in order, at the group's pace."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from telegram import (
    Message,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

from advisor import AdvisorError, reports
from advisor.channels.telegram.base import SPEAKING, ChannelBase
from advisor.channels.telegram.settings import (
    ALERT_POLL_SECONDS,
    ALERT_RETRY_SECONDS,
)

log = logging.getLogger(__name__)


class LeadCards(ChannelBase):
    """The sales chat's lead cards (queued by the service with the change that made them)."""

    async def deliver_alerts_forever(self, bot: Any) -> None:
        """Send the queued lead cards in order, now (a restart may have left some) and as they come."""
        while True:
            self._alerts_waiting.clear()
            try:
                retry = await self.deliver_alerts(bot)
            except Exception:
                log.exception("lead alerts failed; trying again in %.0f s", ALERT_RETRY_SECONDS)
                retry = True
            if retry:
                await asyncio.sleep(ALERT_RETRY_SECONDS)
            else:  # woken by a card queued here, or now and then for those the web chat's process queued
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._alerts_waiting.wait(), timeout=ALERT_POLL_SECONDS)

    async def deliver_alerts(self, bot: Any) -> bool:
        """Send every queued card; True when the network failed and the rest must be tried again later."""
        SPEAKING.set(self.options.sales_language)  # this task's: the cards in the sales team's language
        store = self.service.store
        names = self.service.task_names(self.options.sales_language)
        tasks_question = self.service.advisor.rules.tasks_question if self.service.advisor else ""
        while pending := store.pending_alerts():
            for alert_id, conversation_id, event in pending:
                name = self._alert_names.pop(alert_id, None)
                try:
                    conversation = store.get(conversation_id)
                except AdvisorError:  # forgotten since
                    store.alert_done(alert_id)
                    continue
                try:
                    card = self.renderer.telegram(
                        "lead_card", event=event, id=conversation.id, ref=conversation.ref,
                        # the Telegram first name only with consent (declined contact: no name)
                        name=reports.name_of(conversation) or (name if conversation.consent_at else None),
                        # the verdict and the tasks named in the sales team's language, not the prospect's
                        rec=self.renderer.in_words(conversation.recommendation or {}, tasks_question),
                        top=reports.top_functions(conversation, name=names), contact=reports.contact_of(conversation))
                except Exception:  # a card that cannot be made must not hold back the ones behind it
                    log.exception("lead alert for conversation %s dropped: its card cannot be made", conversation.id)
                    store.alert_done(alert_id)
                    continue
                try:
                    sent = await bot.send_message(self.options.sales_chat_id, card, parse_mode=ParseMode.HTML,
                                                  disable_web_page_preview=True)
                    if isinstance(sent, Message):
                        try:
                            store.get(conversation.id)
                        except AdvisorError:  # /forget while the card waited for the group's pace
                            await self._remove_card(bot, sent.chat_id, sent.message_id)
                        else:
                            store.card_sent(conversation.id, sent.chat_id, sent.message_id)
                except (BadRequest, Forbidden) as error:  # refused: sending it again changes nothing
                    log.warning("lead alert for conversation %s not delivered: %s", conversation.id, error)
                except (NetworkError, RetryAfter) as error:  # the network or the pace: it stays queued
                    log.warning("lead alert for conversation %s delayed: %s", conversation.id, error)
                    self._alert_names[alert_id] = name
                    return True
                except TelegramError as error:  # e.g. the group became a supergroup: a new ADVISOR_SALES_CHAT_ID
                    log.warning("lead alert for conversation %s not delivered: %s", conversation.id, error)
                store.alert_done(alert_id)
        return False

    async def _outbox_empty(self) -> None:
        while self.service.store.pending_alerts(limit=1):
            await asyncio.sleep(0.05)
