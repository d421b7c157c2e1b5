"""What a person presses: a question's buttons, what next after the advice, consent, /forget's yes."""

from __future__ import annotations

import logging

from telegram import (
    InlineKeyboardMarkup,
    InputFile,
    KeyboardButton,
    ReplyKeyboardMarkup,
    Update,
)
from telegram.constants import ChatAction, ParseMode
from telegram.ext import (
    ContextTypes,
)

from advisor.channels.port import Action, Refused
from advisor.channels.telegram.base import SPEAKING, ChannelBase, together
from advisor.channels.telegram.callbacks import PRESSES, Press, parse_callback
from advisor.channels.telegram.settings import (
    CHANNEL,
)
from advisor.dialog import Question
from advisor.service import Outcome
from advisor.store import now

log = logging.getLogger(__name__)


class Presses(ChannelBase):
    """Callback queries, read with ``parse_callback`` and answered once each."""

    async def on_press(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        press = parse_callback(query.data)
        if press is None or update.effective_chat is None:  # forged, or pressed on an inline message
            await self._answer(query)
            return
        handler = {"x": self._after, "c": self._consent, "f": self._forget,
                   "l": self._language}.get(press.kind, self._answer_press)
        await handler(update, context, press)

    async def _language(self, update: Update, context: ContextTypes.DEFAULT_TYPE, press: Press) -> None:
        """Go on in the chosen language: the question in progress again in its words, with the answers
        kept; with none in progress, the person's last conversation keeps it, or a new one begins."""
        query = update.callback_query
        assert query is not None
        chat, user_id = self._chat(update), self._user(update)
        await self._answer(query)
        current = self.port.current(user_id)
        latest = current or self.service.store.latest(CHANNEL, user_id)
        SPEAKING.set(press.target)
        await self._edit_text(query.message, self.renderer.telegram("language_set"))
        if current is not None:
            await self.show(chat, self.service.set_language(current, press.target), context)
        elif latest is not None:
            self.service.store.set_language(latest.id, press.target)
        else:
            outcome = self.port.act(user_id, Action("start", language=press.target))
            if not isinstance(outcome, Refused):
                await self.show(chat, outcome, context)

    async def _answer_press(self, update: Update, context: ContextTypes.DEFAULT_TYPE, press: Press) -> None:
        query = update.callback_query
        assert query is not None
        chat, current = self._current(update)
        if current is None or current.id != press.conversation_id or current.state.current != press.target:
            await self._answer(query, self.renderer.plain("already_answered"))
            return
        question = self.service.dialog.question(current.state.current)
        if press.index is not None and not 0 <= press.index < len(question.options):
            await self._answer(query)
            return
        before = self.engine.resume(current.state)
        kind = PRESSES[press.kind]
        values = (question.options[press.index].value,) if press.index is not None else ()
        if kind == "more" and press.version == self.service.dialog.version:  # "Something else": every option
            await together(self._answer(query),
                            self._edit_markup(query.message, self.keyboard(current.id, before, everything=True)))
            return
        outcome = self.port.act(self._user(update), Action(
            "confirm" if kind == "more" else kind, values=values, conversation=press.conversation_id,
            question=press.target, version=press.version))
        if isinstance(outcome, Refused):
            await self._answer(query, self.renderer.plain(outcome.reason))
            if outcome.outcome is not None:  # made for other questions: show the current ones
                await self.show(chat, outcome.outcome, context)
            return
        if kind == "toggle":
            keyboard = self.keyboard(current.id, outcome.step)
            await together(self._answer(query), self._edit_markup(query.message, keyboard))
            return
        # The answer is committed: acknowledge the press, mark the question answered and show the next
        # one at once, not one round trip after another (they touch different messages).
        calls = [self._answer(query)]
        moved = outcome.step.kind == "finish" or outcome.step.state.history != current.state.history
        if moved:
            if kind == "back":
                done = self.renderer.telegram("went_back", number=before.number, total=before.total,
                                              text=self.renderer.question(question).text)
            else:
                done = self.renderer.telegram("answered", number=before.number, total=before.total,
                                              text=self.renderer.question(question).text,
                                              answer=self._answer_label(question, outcome))
            calls.append(self._edit_text(query.message, done))
        calls.append(self.show(chat, outcome, context, telegram_name=self._first_name(update)))
        await together(*calls)

    def _answer_label(self, question: Question, outcome: Outcome) -> str:
        value = outcome.step.accepted
        if value is None:
            return self.renderer.plain("skipped")
        return self.service.describe(question.id, value, outcome.conversation)

    async def _after(self, update: Update, context: ContextTypes.DEFAULT_TYPE, press: Press) -> None:
        query = update.callback_query
        assert query is not None and press.conversation_id is not None
        chat, user_id = self._chat(update), self._user(update)
        conversation = self._own(press.conversation_id, user_id)
        await self._answer(query)
        if conversation is None or conversation.recommendation is None:
            await self.nudge(update, context, None)
            return
        if press.target == "expert":
            self.service.offer_expert(conversation)
            keyboard = InlineKeyboardMarkup([[self.button("consent_yes", f"c:{conversation.id}:yes"),
                                              self.button("consent_no", f"c:{conversation.id}:no")]])
            await self.send(chat, self.renderer.telegram("consent"), context, reply_markup=keyboard)
        elif press.target == "report":
            await context.bot.send_chat_action(chat, ChatAction.UPLOAD_DOCUMENT)
            document = self.renderer.report(self.service.recommendation_of(conversation) or {},
                                            conversation.state.answers,
                                            generated_at=conversation.completed_at or now())
            await context.bot.send_document(
                chat, InputFile(document.encode("utf-8"), filename="outsourcing-recommendation.html"),
                caption=self.renderer.telegram("report_caption"), parse_mode=ParseMode.HTML)
        else:
            current = self.port.current(user_id)
            if current is None:
                outcome = self.service.open(CHANNEL, user_id, conversation.ref)
            elif current.id > conversation.id:  # started over already (a double tap): show where it is
                outcome = Outcome(current, self.engine.resume(current.state), resumed=True)
            else:
                outcome = self.service.restart(current)
            await self.show(chat, outcome, context)

    async def _consent(self, update: Update, context: ContextTypes.DEFAULT_TYPE, press: Press) -> None:
        query = update.callback_query
        assert query is not None and press.conversation_id is not None
        chat = self._chat(update)
        conversation = self._own(press.conversation_id, self._user(update))
        if conversation is not None and conversation.consent_at is not None:
            await self._answer(query, self.renderer.plain("already_answered"))  # a double tap
            return
        await self._answer(query)
        await self._edit_markup(query.message, None)
        if conversation is None or conversation.recommendation is None or conversation.consent_asked_at is None:
            return  # consent counts only where the advice was shown and the question asked (the service's rule)
        if press.target == "no":
            await self.send(chat, self.renderer.telegram("no_consent"), context)
            return
        taken, alert_id = self.service.consent(conversation, self.alerts("expert"))
        if not taken:
            return
        self.queued(alert_id, self._first_name(update))
        keyboard = ReplyKeyboardMarkup([[KeyboardButton(self.renderer.button("share_contact"), request_contact=True)]],
                                       one_time_keyboard=True, resize_keyboard=True)
        await self.send(chat, self.renderer.telegram("share_contact"), context, reply_markup=keyboard)

    async def _forget(self, update: Update, context: ContextTypes.DEFAULT_TYPE, press: Press) -> None:
        query = update.callback_query
        assert query is not None
        await self._answer(query)
        if press.target == "yes":
            forgotten = self.service.forget(CHANNEL, self._user(update))
            await self._edit_text(query.message, self.renderer.telegram("forgotten", count=forgotten.conversations))
            for chat_id, message_id in forgotten.cards:  # the sales chat's cards about them go too
                await self._remove_card(context.bot, chat_id, message_id)
        else:
            await self._edit_text(query.message, self.renderer.telegram("forget_cancelled"))
