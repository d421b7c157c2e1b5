"""What every part of the Telegram channel shares: the output side (a step as messages with
keyboards), the person and chat of an update, and safe edits."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from contextvars import ContextVar
from typing import Any

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
)
from telegram.constants import ChatAction, ParseMode
from telegram.error import BadRequest, Forbidden, TelegramError
from telegram.ext import (
    ContextTypes,
)

from advisor.channels.port import ChannelPort
from advisor.channels.telegram.processor import PerChatUpdateProcessor
from advisor.channels.telegram.settings import (
    CARDS_PER_PERSON_A_DAY,
    CHANNEL,
    HasBot,
    Options,
)
from advisor.channels.telegram.text import split_message, whole
from advisor.engine import Engine, Step
from advisor.i18n import SOURCE, pick
from advisor.render import Renderer
from advisor.service import AdvisorService, Outcome
from advisor.store import Conversation

log = logging.getLogger(__name__)

SPEAKING: ContextVar[str] = ContextVar("telegram_language", default=SOURCE)
"""The language of the update being handled (set first, in ``on_seen``), or of the work outside
updates (a reminder: its conversation's; a lead card: the sales team's). Every task has its own."""


class ChannelBase:
    """Sending steps and reading updates; the handlers are in the mixins beside this module."""

    def __init__(self, service: AdvisorService, options: Options | None = None):
        self.service = service
        self.port = ChannelPort(service, CHANNEL)
        self.options = options or Options()
        if self.options.sales_chat_id is not None:  # completions queue their lead card as they commit
            service.cards_per_person_a_day = CARDS_PER_PERSON_A_DAY
        self._reminders: asyncio.Task[None] | None = None
        self._alerts: asyncio.Task[None] | None = None
        self._alerts_waiting = asyncio.Event()  # set when an alert is queued
        self._alert_names: dict[int, str | None] = {}  # alert id -> Telegram first name (memory only)
        self.processor: PerChatUpdateProcessor | None = None  # the Application's, once registered

    @property
    def renderer(self) -> Renderer:
        """The words of the language being spoken (``SPEAKING``)."""
        return self.service.speaking(SPEAKING.get())[1]

    @property
    def engine(self) -> Engine:
        return self.service.speaking(SPEAKING.get())[0]

    def language_of(self, user: Any) -> str:
        """A person's language: their conversation's, else their Telegram app's, else English."""
        user_id = str(user.id)
        conversation = self.service.store.find_open(CHANNEL, user_id) or self.service.store.latest(CHANNEL, user_id)
        if conversation is not None:
            return conversation.language
        return pick(getattr(user, "language_code", None)) or SOURCE

    def turn(self, chat_id: int) -> contextlib.AbstractAsyncContextManager[None]:
        """The chat's turn in the update processor (per-chat order), where there is one."""
        if self.processor is None:
            return contextlib.nullcontext()
        return self.processor.turn(chat_id)

    async def send(self, chat_id: int, text: str, context: HasBot, **kwargs: Any) -> Message:
        return await context.bot.send_message(chat_id, text, parse_mode=ParseMode.HTML,
                                              disable_web_page_preview=True, **kwargs)

    async def show(self, chat_id: int, outcome: Outcome, context: HasBot,
                   telegram_name: str | None = None) -> None:
        """Send a step: a question with its keyboard, or the recommendation and what next."""
        step = outcome.step
        if step.kind == "finish":
            if outcome.completed:  # queued with the completion: the card survives a crash
                self.queued(outcome.alert_id, telegram_name)
            await self.send_recommendation(chat_id, outcome.conversation, step.recommendation, context,
                                           preparing=True)
            return
        message = await self.send(chat_id, self.renderer.step(step, "html"), context,
                                  reply_markup=self.keyboard(outcome.conversation.id, step))
        assert step.question is not None
        self.service.asked(outcome.conversation, step.question.id, message.message_id)

    async def send_recommendation(self, chat_id: int, conversation: Conversation, rec: dict[str, Any],
                                  context: HasBot, preparing: bool = False) -> None:
        if preparing:
            await self.send(chat_id, self.renderer.telegram("preparing"), context)
        await context.bot.send_chat_action(chat_id, ChatAction.TYPING)
        text = self.renderer.recommendation(rec, "html")
        for chunk in split_message(text):
            await self.send(chat_id, chunk, context)
        contact = conversation.contact or rec.get("contact")
        await self.send(chat_id, self.renderer.telegram("what_next", contact=contact), context,
                        reply_markup=self.after_keyboard(conversation.id, has_contact=bool(contact)))

    def keyboard(self, conversation_id: int, step: Step, everything: bool = False) -> InlineKeyboardMarkup | None:
        """The question's buttons. Words that could mean two options are asked about with those
        options first: alone at a one-answer question (with "Something else" for the rest), marked
        ❔ at a several-answer one (where the other options' ticks must stay in view)."""
        question = step.question
        assert question is not None
        v = self.service.dialog.version
        rows: list[list[InlineKeyboardButton]] = []
        if step.state.pending is not None:  # an answer read back: one press says it is right
            rows.append([self.button("read_back_yes", f"r:{conversation_id}:{question.id}:{v}")])
        prefix = "t" if question.type == "multi" else "a"
        asked = step.hint.params.get("values", []) if step.hint and step.hint.code == "ambiguous" else []
        asked = [] if everything else [value for value in asked if value not in step.proposed]
        shown = sorted(enumerate(question.options), key=lambda item: item[1].value not in asked)
        if asked and question.type == "single":
            shown = [(n, option) for n, option in shown if option.value in asked]
        for n, option in shown:
            label = option.label
            if question.type == "multi":
                mark = "✅ " if option.value in step.proposed else "❔ " if option.value in asked else "▫️ "
                label = mark + label
            elif option.value in step.proposed:  # understood from the person's words: press to confirm
                label = "✅ " + label
            elif option.value == step.previous:
                label = "• " + label
            data = f"{prefix}:{conversation_id}:{question.id}:{n}:{v}"
            rows.append([InlineKeyboardButton(label, callback_data=data)])
        if len(shown) < len(question.options):
            rows.append([self.button("other_options", f"m:{conversation_id}:{question.id}:{v}")])
        last: list[InlineKeyboardButton] = []
        if step.state.history:
            last.append(self.button("back", f"b:{conversation_id}:{question.id}:{v}"))
        if question.skippable:
            last.append(self.button("skip", f"k:{conversation_id}:{question.id}:{v}"))
        if question.type == "multi":
            last.append(self.button("done", f"d:{conversation_id}:{question.id}:{v}"))
        if last:
            rows.append(last)
        return InlineKeyboardMarkup(rows) if rows else None

    def after_keyboard(self, conversation_id: int, has_contact: bool) -> InlineKeyboardMarkup:
        names = ("report", "new") if has_contact else ("expert", "report", "new")
        return InlineKeyboardMarkup([[self.button(name, f"x:{conversation_id}:{name}")] for name in names])

    def button(self, name: str, data: str) -> InlineKeyboardButton:
        return InlineKeyboardButton(self.renderer.button(name), callback_data=data)

    def alerts(self, event: str) -> tuple[str, int] | None:
        """The lead card to queue with a change (in its transaction), if a sales chat is set. Cards go
        from the outbox in the database, sent by a task of its own: the prospect never waits for the
        sales chat's pace (Telegram allows a group 20 messages a minute), and a crash or restart
        delays a card instead of losing it."""
        return None if self.options.sales_chat_id is None else (event, CARDS_PER_PERSON_A_DAY)

    def queued(self, alert_id: int | None, telegram_name: str | None) -> None:
        """A card was queued: its Telegram first name (memory only), and wake the sender."""
        if alert_id is not None:
            self._alert_names[alert_id] = telegram_name
            self._alerts_waiting.set()

    async def _remove_card(self, bot: Any, chat_id: int, message_id: int) -> None:
        """Delete a lead card; Telegram lets a bot delete in a group only for 48 hours, after that
        the card's text is replaced."""
        try:
            await bot.delete_message(chat_id, message_id)
        except TelegramError:
            try:
                await bot.edit_message_text(self.renderer.telegram("card_forgotten"), chat_id=chat_id,
                                            message_id=message_id, parse_mode=ParseMode.HTML)
            except TelegramError as error:
                log.warning("a lead card in chat %s stays after /forget: %s", chat_id, error)

    async def on_unknown_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self.nudge(update, context, "unknown_command")

    async def nudge(self, update: Update, context: ContextTypes.DEFAULT_TYPE, lead: str | None) -> None:
        """Say why that was not understood, then re-ask the current question (or point to /start)."""
        chat, current = self._current(update)
        if current is None:
            name = "completed" if self.service.last_advice(CHANNEL, self._user(update)) else "no_conversation"
            if lead == "unknown_command":
                name = "unknown_command_idle"
            await self.send(chat, self.renderer.telegram(name), context)
            return
        if lead:
            await self.send(chat, self.renderer.telegram(lead), context)
        await self.show(chat, Outcome(current, self.engine.resume(current.state), resumed=True), context)

    def _chat(self, update: Update) -> int:
        assert update.effective_chat is not None
        return update.effective_chat.id

    def _first_name(self, update: Update) -> str | None:
        return whole(update.effective_user.first_name) if update.effective_user else None

    def _user(self, update: Update) -> str:
        assert update.effective_user is not None
        return str(update.effective_user.id)

    def _current(self, update: Update) -> tuple[int, Conversation | None]:
        return self._chat(update), self.port.current(self._user(update))

    def _own(self, conversation_id: int, user_id: str) -> Conversation | None:
        """The conversation, if it exists and belongs to this person on this channel."""
        return self.service.owned(CHANNEL, user_id, conversation_id)

    async def _edit_text(self, message: Any, text: str) -> None:
        if not isinstance(message, Message):
            return
        try:
            await message.edit_text(text, parse_mode=ParseMode.HTML, reply_markup=None)
        except BadRequest as error:
            if not harmless_edit_failure(error):
                raise

    async def _answer(self, query: Any, text: str | None = None) -> None:
        """Answer a callback query; one too old to answer (the bot was down) is no error."""
        try:
            await query.answer(text)
        except BadRequest as error:
            if "query is too old" not in str(error).lower() and "query id is invalid" not in str(error).lower():
                raise
            log.debug("callback query too old to answer")

    async def _edit_markup(self, message: Any, markup: InlineKeyboardMarkup | None) -> None:
        if not isinstance(message, Message):
            return
        try:
            await message.edit_reply_markup(reply_markup=markup)
        except BadRequest as error:
            if not harmless_edit_failure(error):
                raise


async def together(*calls: Awaitable[Any]) -> None:
    """Run Bot API calls concurrently and return when all have ended (so that the chat's next update
    starts after them); then raise the first error, if any."""
    results = await asyncio.gather(*calls, return_exceptions=True)
    errors = [result for result in results if isinstance(result, BaseException)]
    if not errors:
        return
    # the person blocked the bot: that is what the error handler must hear, whichever call saw it first
    first = next((error for error in errors if isinstance(error, Forbidden)), errors[0])
    for error in errors:
        if error is not first:
            log.warning("a Bot API call made together with another failed too: %r", error)
    raise first


def harmless_edit_failure(error: BadRequest) -> bool:
    """Editing an old message failed in a way that changes nothing for the person: it already shows
    that content, or it is gone (deleted, too old to edit)."""
    text = str(error).lower()
    return any(part in text for part in ("not modified", "message to edit not found", "can't be edited"))
