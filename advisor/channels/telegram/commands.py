"""What a person types: commands, answers in words, a shared contact."""

from __future__ import annotations

import logging

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from telegram.ext import (
    ContextTypes,
)

from advisor.channels.port import Action, Refused
from advisor.channels.telegram.base import SPEAKING, ChannelBase
from advisor.channels.telegram.settings import (
    CHANNEL,
    REF_PATTERN,
)
from advisor.channels.telegram.text import whole
from advisor.i18n import LANGUAGES, NAMES
from advisor.service import Outcome
from advisor.store import now

log = logging.getLogger(__name__)


class PersonCommands(ChannelBase):
    """/start, /restart, /back, /help, /privacy, /summary, /forget, /cancel, and typed answers."""

    async def on_start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        user, chat = update.effective_user, update.effective_chat
        assert user is not None and chat is not None
        payload = " ".join(context.args or ())  # a payload with spaces is not one Telegram would send
        ref = payload if REF_PATTERN.match(payload) else None
        outcome = self.port.act(str(user.id), Action("start", ref=ref, language=SPEAKING.get()))
        if not isinstance(outcome, Refused) and outcome.conversation.language != SPEAKING.get():
            SPEAKING.set(outcome.conversation.language)
        assert isinstance(outcome, Outcome)
        if outcome.resumed:
            await self.send(chat.id, self.renderer.telegram("resumed", number=outcome.step.number), context)
        else:
            low, high = self.engine.path_lengths()
            await self.send(chat.id, self.renderer.telegram("welcome", name=whole(user.first_name),
                                                            count_low=low, count_high=high), context,
                            reply_markup=ReplyKeyboardRemove())
        await self.show(chat.id, outcome, context)

    async def on_restart(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        outcome = self.port.act(self._user(update), Action("restart"))
        assert isinstance(outcome, Outcome)
        await self.show(self._chat(update), outcome, context)

    async def on_back(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        outcome = self.port.act(self._user(update), Action("back"))
        if isinstance(outcome, Refused):
            await self.send(self._chat(update), self.renderer.telegram("no_conversation"), context)
            return
        await self.show(self._chat(update), outcome, context)

    async def on_help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self.send(self._chat(update), self.renderer.telegram("help"), context)

    async def on_privacy(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self.send(self._chat(update), self.renderer.telegram(
            "privacy", retention_days=self.options.retention_days), context)

    async def on_summary(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat, user_id = self._chat(update), self._user(update)
        latest = self.service.last_advice(CHANNEL, user_id)
        if latest is None:
            await self.send(chat, self.renderer.telegram("no_summary"), context)
            return
        await self.send_recommendation(chat, latest, self.service.recommendation_of(latest) or {}, context)

    async def on_forget(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        keyboard = InlineKeyboardMarkup([[self.button("forget_yes", "f:yes"), self.button("forget_no", "f:no")]])
        await self.send(self._chat(update), self.renderer.telegram("forget_confirm"), context,
                        reply_markup=keyboard)

    async def on_language(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/language: a button for each language the advisor speaks, each in its own words."""
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton(NAMES[lang], callback_data=f"l:{lang}")
                                          for lang in LANGUAGES]])
        await self.send(self._chat(update), self.renderer.telegram("language_choose"), context,
                        reply_markup=keyboard)

    async def on_cancel(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self.send(self._chat(update), self.renderer.telegram("contact_cancelled"), context,
                        reply_markup=ReplyKeyboardRemove())


    async def on_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None and update.message.text is not None
        chat, current = self._current(update)
        if current is None:
            await self.nudge(update, context, None)
            return
        if (current.asked_question == current.state.current and current.asked_message_id is not None
                and update.message.message_id < current.asked_message_id):
            # typed before this question was on screen: a second quick message, not an answer to it
            log.debug("message typed before question %s was asked: ignored", current.state.current)
            return
        outcome = self.port.act(self._user(update), Action("text", whole(update.message.text) or "",
                                                           conversation=current.id, question=current.state.current))
        if isinstance(outcome, Outcome):
            await self.show(chat, outcome, context, telegram_name=self._first_name(update))

    async def on_contact(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.message
        assert message is not None and message.contact is not None
        chat, current = self._current(update)
        shared = message.contact
        if shared.user_id is None or str(shared.user_id) != self._user(update):
            await self.nudge(update, context, "nudge")  # someone else's card: not consent from its owner
            return
        name = whole(" ".join(filter(None, (shared.first_name, shared.last_name))))
        if current is not None and current.state.current in self.service.dialog.of_type("contact"):
            await self.show(chat, self.service.answer(current, f"{name} +{shared.phone_number.lstrip('+')}"),
                            context, telegram_name=self._first_name(update))
            return
        kept, alert_id = self.service.share_contact(CHANNEL, self._user(update), {
            "name": name or None, "email": None, "phone": "+" + shared.phone_number.lstrip("+"),
            "consent": True, "given_at": now(),
        }, alert=self.alerts("contact"))
        if not kept:  # no consent given: nothing kept
            await self.nudge(update, context, "nudge")
            return
        self.queued(alert_id, self._first_name(update))  # queued with the contact: the reply may fail
        await self.send(chat, self.renderer.telegram("contact_thanks", name=whole(shared.first_name)), context,
                        reply_markup=ReplyKeyboardRemove())
