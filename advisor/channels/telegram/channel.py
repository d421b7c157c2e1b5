"""The Telegram channel: python-telegram-bot 22.8 in front of the same AdvisorService as the console.

State lives only in the advisor's SQLite store (no PicklePersistence, no ConversationHandler): every
turn is committed by the service before the reply is sent, and a button carries the conversation and
question it belongs to, so after a restart a person simply goes on pressing buttons, and a button of
an older question answers "already answered" and changes nothing.

Updates of different chats run concurrently; updates of one chat strictly in order
(``PerChatUpdateProcessor``). ``advisor.pacer.Pacer`` keeps within Telegram's limits.

The channel is composed of one class per concern (``base``: sending; ``commands``, ``presses``,
``admin``: handlers; ``alerts``: lead cards; ``upkeep``: reminders and retention), ``processor``
keeps per-chat order, ``callbacks`` the button format, ``app`` builds the Application.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Any

from telegram import (
    BotCommand,
    Update,
)
from telegram.constants import ChatType
from telegram.error import Conflict, Forbidden, InvalidToken, NetworkError, TelegramError
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from advisor.channels.polling import GuardedBot
from advisor.channels.telegram.admin import AdminCommands
from advisor.channels.telegram.alerts import LeadCards
from advisor.channels.telegram.base import SPEAKING
from advisor.channels.telegram.commands import PersonCommands
from advisor.channels.telegram.presses import Presses
from advisor.channels.telegram.processor import PerChatUpdateProcessor, lock_hit, locked
from advisor.channels.telegram.settings import (
    ALERT_FLUSH_SECONDS,
    CHANNEL,
    COMMANDS,
    Context,
)
from advisor.channels.telegram.upkeep import Upkeep
from advisor.i18n import LANGUAGES, SOURCE
from advisor.pacer import Pacer

log = logging.getLogger(__name__)


class TelegramChannel(PersonCommands, Presses, AdminCommands, LeadCards, Upkeep):
    """Handlers that turn updates into AdvisorService calls and steps into Telegram messages."""

    def register(self, app: Application) -> None:
        if isinstance(app.update_processor, PerChatUpdateProcessor):
            self.processor = app.update_processor  # reminders take the chat's turn too
        # New messages only: an edited old "/restart" must not run again, nor a business message start
        # a conversation (a CommandHandler given filters no longer limits itself to messages).
        private = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE
        app.add_handler(TypeHandler(Update, self.on_seen), group=-1)  # before the others, for every update
        app.add_handler(MessageHandler(~filters.ChatType.PRIVATE, self.on_group))
        app.add_handler(CommandHandler("start", self.on_start, filters=private))
        app.add_handler(CommandHandler("restart", self.on_restart, filters=private))
        app.add_handler(CommandHandler("back", self.on_back, filters=private))
        app.add_handler(CommandHandler("help", self.on_help, filters=private))
        app.add_handler(CommandHandler("summary", self.on_summary, filters=private))
        app.add_handler(CommandHandler("privacy", self.on_privacy, filters=private))
        app.add_handler(CommandHandler("forget", self.on_forget, filters=private))
        app.add_handler(CommandHandler("cancel", self.on_cancel, filters=private))
        app.add_handler(CommandHandler("language", self.on_language, filters=private))
        for name, handler in (("stats", self.on_stats), ("leads", self.on_leads), ("lead", self.on_lead),
                              ("export", self.on_export)):
            app.add_handler(CommandHandler(name, self.admin_only(handler), filters=private))
        app.add_handler(CallbackQueryHandler(self.on_press))
        app.add_handler(MessageHandler(private & filters.CONTACT, self.on_contact))
        app.add_handler(MessageHandler(private & filters.TEXT & ~filters.COMMAND, self.on_text))
        app.add_handler(MessageHandler(private & filters.COMMAND, self.on_unknown_command))
        app.add_handler(TypeHandler(Update, self.on_anything_else))
        app.add_error_handler(self.on_error)

    async def post_init(self, app: Application) -> None:
        for language in LANGUAGES:  # the menu in each language Telegram shows it in (English by default)
            SPEAKING.set(language)
            await app.bot.set_my_commands(
                [BotCommand(name, self.renderer.plain("command", name=name)) for name in COMMANDS],
                language_code=None if language == SOURCE else language)
        SPEAKING.set(SOURCE)
        self.service.store.start_checkpoints()
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError):  # (no signals off the main thread)
            for sig in (signal.SIGINT, signal.SIGTERM):  # in place of PTB's: stop the pacer's waits first
                loop.add_signal_handler(sig, self.stopping, app)
        self._reminders = asyncio.create_task(self.maintain_forever(app.bot), name="advisor-maintenance")
        if self.options.sales_chat_id is not None:
            self._alerts = asyncio.create_task(self.deliver_alerts_forever(app.bot), name="advisor-lead-alerts")

    def stopping(self, app: Application) -> None:
        """SIGTERM or SIGINT while polling: messages still waiting for their turn fail at once instead
        of holding the stop (a queue of lead cards for a group, a retry_after), then the stop begins."""
        limiter = getattr(app.bot, "rate_limiter", None)
        if isinstance(limiter, Pacer):
            limiter.close()
        if isinstance(app.bot, GuardedBot):
            app.bot.stopping()
        app.stop_running()

    async def post_stop(self, app: Application) -> None:
        if self._alerts is not None:  # a few seconds to send what is queued; the rest waits in the outbox
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._outbox_empty(), timeout=ALERT_FLUSH_SECONDS)
        for task in (self._reminders, self._alerts):
            if task is not None:
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
                except Exception:
                    log.exception("background task %s had failed", task.get_name())
        self._reminders = self._alerts = None
        self.service.store.stop_checkpoints()

    async def on_group(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat = update.effective_chat
        if chat is None or chat.type == ChatType.CHANNEL or update.effective_message is None:
            return  # channel posts: nobody to talk to
        await self.send(chat.id, self.renderer.telegram("private_only", username=context.bot.username), context)

    async def on_anything_else(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat = update.effective_chat
        member = update.my_chat_member
        if member is not None and chat is not None and chat.type == ChatType.PRIVATE:
            blocked = member.new_chat_member.status in ("kicked", "left")
            self.service.mark_blocked(CHANNEL, str(member.from_user.id), blocked)
            return  # blocked or unblocked: nothing to say (a blocked person cannot be told anyway)
        if chat is None or chat.type != ChatType.PRIVATE or update.effective_user is None:
            return  # channel posts, polls ...: nobody to talk to
        if update.effective_message is None:
            return  # reactions and the like: nothing to answer
        await self.nudge(update, context, "nudge")

    async def on_seen(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Someone marked as having blocked the bot writes or presses again: they unblocked it (one
        stray 403 marked a person blocked for good)."""
        chat, user = update.effective_chat, update.effective_user
        if (update.message is not None or update.callback_query is not None) and (
                user is None or not isinstance(user.id, int) or (chat is not None and not isinstance(chat.id, int))):
            # a message without a sender, or ids that are not numbers: Telegram never sends such, so
            # nobody to answer; ignored (and confirmed) rather than an error and an apology
            log.warning("update %s ignored: no usable sender or chat", update.update_id)
            raise ApplicationHandlerStop
        if (chat is not None and user is not None and chat.type == ChatType.PRIVATE
                and (update.message is not None or update.callback_query is not None)):
            self.service.seen(CHANNEL, str(user.id))
            SPEAKING.set(self.language_of(user))  # for the handlers of this update (its own task)

    async def busy(self, update: Update, bot: Any) -> None:
        """The database stayed locked by another process: the person's message was not kept."""
        if update.effective_chat is None or update.effective_chat.type != ChatType.PRIVATE:
            return
        try:
            if update.callback_query is not None:  # a press is answered too: no spinner left turning
                await self._answer(update.callback_query)
            await self.send(update.effective_chat.id, self.renderer.telegram("busy"), Context(bot))
        except TelegramError:
            log.warning("could not tell chat %s that its message was not kept", update.effective_chat.id)

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        if locked(context.error):  # another process (a sqlite3 shell, a backup) holds the write lock
            hit = lock_hit.get()
            if hit is not None:
                hit.append(True)  # the update processor handles the update again once it is free
            log.warning("another process holds the database's write lock; %s",
                        "the update waits for it" if hit is not None else "this runs again at its next turn")
            return
        if isinstance(context.error, Forbidden):  # the person blocked the bot: nothing can reach them
            chat = update.effective_chat if isinstance(update, Update) else None
            user = update.effective_user if isinstance(update, Update) else None
            if chat is not None and chat.type == ChatType.PRIVATE and user is not None:
                # (a 403 in a group says the bot left the group, nothing about the member who wrote)
                self.service.mark_blocked(CHANNEL, str(user.id))
            log.info("a person blocked the bot; marked, no more messages to them")
            return
        if isinstance(context.error, InvalidToken):  # the token was revoked: the stop is under way
            log.error("the Bot API refused the token while handling an update")
            return
        if update is None and isinstance(context.error, Conflict):  # another process polls with this token
            log.warning("another process is polling with this token (Telegram answered 409); retrying")
            return
        if update is None and isinstance(context.error, NetworkError):  # polling hiccup: PTB retries
            log.warning("fetching updates failed (%s); retrying", type(context.error).__name__)
            return
        log.error("error while handling an update", exc_info=context.error)
        if isinstance(update, Update) and update.effective_chat is not None:
            try:
                await self.send(update.effective_chat.id, self.renderer.telegram("apology"), context)
            except Exception:  # the apology is best effort; the error is logged above
                log.warning("could not send the apology", exc_info=True)
