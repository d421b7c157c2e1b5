"""The Telegram channel: python-telegram-bot 22.8 in front of the same AdvisorService as the console.

State lives only in the advisor's SQLite store (no PicklePersistence, no ConversationHandler): every
turn is committed by the service before the reply is sent, and a button carries the conversation and
question it belongs to, so after a restart a person simply goes on pressing buttons, and a button of
an older question answers "already answered" and changes nothing.

Updates of different chats run concurrently; updates of one chat strictly in order
(``PerChatUpdateProcessor``). ``advisor.pacer.Pacer`` keeps within Telegram's limits.

Callback data are short explicit strings (at most 64 bytes):

    a:<conversation>:<question>:<n>   choose option n (single choice, contact)
    t:<conversation>:<question>:<n>   toggle option n (multi choice)
    d:<conversation>:<question>       Done (multi choice)
    k:<conversation>:<question>       Skip
    b:<conversation>:<question>       Back
    r:<conversation>:<question>       Yes, the answer read back is right
    x:<conversation>:expert|report|new   after the recommendation
    c:<conversation>:yes|no           consent to be contacted by an expert
    f:yes|no                          /forget confirmation
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import re
import signal
import sqlite3
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from telegram import (
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from telegram.constants import ChatAction, ChatType, ParseMode
from telegram.error import BadRequest, Forbidden, InvalidToken, NetworkError, RetryAfter, TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    ApplicationHandlerStop,
    BaseUpdateProcessor,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from advisor import AdvisorError, reports
from advisor.channels.http import AiohttpRequest
from advisor.channels.polling import GuardedBot
from advisor.channels.port import Action, ChannelPort, Refused
from advisor.dialog import Question
from advisor.engine import Step
from advisor.pacer import Pacer
from advisor.service import AdvisorService, Outcome
from advisor.store import Conversation, Filters, Store, current_update, now

log = logging.getLogger(__name__)

CHANNEL = "telegram"
ALERT_RETRY_SECONDS = 5.0  # after a network failure, the outbox is tried again this much later
ALERT_FLUSH_SECONDS = 2.0  # on stop, this long to send what is queued (SIGTERM stops within 5 s)
ALERT_POLL_SECONDS = 5.0  # how often cards queued by another process (the web chat) are looked for
LOCK_WAIT_SECONDS = 60.0  # how long an update waits for another process's write lock, off the event loop
LOOP_BUSY_MS = 100  # the most one write blocks the event loop waiting for that lock; then the update waits off it
# Set while an update is handled: on_error marks it when a write found another process's lock.
_lock_hit: ContextVar[list[bool] | None] = ContextVar("lock_hit", default=None)


def _locked(error: object) -> bool:
    """Another process held SQLite's write lock past the busy timeout."""
    return isinstance(error, sqlite3.OperationalError) and ("locked" in str(error) or "busy" in str(error))
CARDS_PER_PERSON_A_DAY = 3  # conversations of one person that make lead cards in 24 hours (forged floods)
REF_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MESSAGE_LIMIT = 4096  # UTF-16 code units, after entity parsing
_TAG = re.compile(r"<[^>]+>")
COMMANDS = ("start", "back", "restart", "summary", "privacy", "forget", "help")


def utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def visible_length(html_text: str) -> int:
    """What Telegram counts: the text after entity parsing (tags gone, entities one character)."""
    return utf16_length(html.unescape(_TAG.sub("", html_text)))


def split_message(html_text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Split HTML into messages Telegram accepts: at blank lines, else at line ends.

    The templates close every tag within its line, so a split between lines never cuts a tag. A
    single line over the limit (only long text a person typed can make one) is cut as plain text.
    """
    pieces: list[tuple[str, str]] = []  # (separator before it, piece)
    for block in html_text.split("\n\n"):
        if visible_length(block) <= limit:
            pieces.append(("\n\n", block))
            continue
        for n, line in enumerate(block.split("\n")):
            separator = "\n\n" if n == 0 else "\n"
            if visible_length(line) <= limit:
                pieces.append((separator, line))
                continue
            plain = html.unescape(_TAG.sub("", line))
            step = limit // 2  # UTF-16: a character may count 2
            pieces.extend((separator if i == 0 else "\n", html.escape(plain[i:i + step], quote=False))
                          for i in range(0, len(plain), step))
    chunks: list[str] = []
    current = ""
    for separator, piece in pieces:
        candidate = f"{current}{separator}{piece}" if current else piece
        if visible_length(candidate) <= limit:
            current = candidate
        else:
            chunks.append(current)
            current = piece
    if current.strip():
        chunks.append(current)
    return [chunk for chunk in chunks if chunk.strip()]


class PerChatUpdateProcessor(BaseUpdateProcessor):
    """Concurrent across chats, strictly ordered within one chat, and each update handled once.

    asyncio locks are fair (first come, first served), and updates reach this method in the order
    the Updater fetched them, so a chat's updates run one after another in arrival order. With a
    store, an update already handled (Telegram redelivers the last batch after a crash) is skipped,
    and each update's writes record it in the same transaction (``advisor.store.current_update``).
    """

    def __init__(self, max_concurrent_updates: int = 256, store: Store | None = None):
        super().__init__(max_concurrent_updates)
        self.store = store
        # handles an update again (the application's process_update), after a write lock
        self.again: Callable[[object], Awaitable[Any]] | None = None
        # tells the person their message could not be handled (the lock was held too long)
        self.sorry: Callable[[Update], Awaitable[None]] | None = None
        self._locks: dict[int, asyncio.Lock] = {}
        self._waiting: dict[int, int] = {}

    async def process_update(self, update: object, coroutine: Awaitable[Any]) -> None:  # type: ignore[misc]
        """Wait for the chat's turn *before* taking one of the concurrency slots, so that one
        person's backlog never holds every other chat back."""
        key = _chat_key(update)
        if key is None:
            await self._once(update, coroutine)
            return
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._waiting[key] = self._waiting.get(key, 0) + 1
        try:
            async with lock:
                await self._once(update, coroutine)
        finally:
            self._waiting[key] -= 1
            if not self._waiting[key]:
                del self._waiting[key], self._locks[key]

    async def _once(self, update: object, coroutine: Awaitable[Any]) -> None:
        if self.store is None or not isinstance(update, Update):
            await super().process_update(update, coroutine)
            return
        if self.store.processed(CHANNEL, update.update_id):
            log.debug("update %s was handled already: skipped", update.update_id)
            if asyncio.iscoroutine(coroutine):
                coroutine.close()
            return
        token = current_update.set((CHANNEL, update.update_id))
        started = time.monotonic()
        try:
            while True:
                while not self.store.writable() and time.monotonic() - started < LOCK_WAIT_SECONDS:
                    await asyncio.sleep(0.05)  # another process writes: wait here, the event loop stays free
                hit: list[bool] = []
                marker = _lock_hit.set(hit)
                try:
                    await super().process_update(update, coroutine)
                finally:
                    _lock_hit.reset(marker)
                if not hit:
                    self.store.mark_processed()
                    return
                # A write found another process's lock (taken after this update began) and failed
                # after LOOP_BUSY_MS instead of blocking every chat for seconds. Handle the update
                # again once the lock is free, as Telegram would redeliver it after a crash: if its
                # turn was committed, it counts as handled and is not applied twice.
                if self.store.processed(CHANNEL, update.update_id):
                    log.warning("update %s: its last write waited for another process's lock and was dropped",
                                update.update_id)
                    return
                if self.again is None or time.monotonic() - started >= LOCK_WAIT_SECONDS:
                    log.warning("update %s: not handled, another process held the database's write lock for "
                                "over %.0f s", update.update_id, LOCK_WAIT_SECONDS)
                    if self.sorry is not None:  # the answer was not kept: say so, never lose it silently
                        await self.sorry(update)
                    return
                coroutine = self.again(update)
        finally:
            current_update.reset(token)

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        await coroutine

    async def initialize(self) -> None:
        """Nothing to set up: locks are made per chat as updates arrive."""

    async def shutdown(self) -> None:
        """Nothing to release."""


def _chat_key(update: object) -> int | None:
    if not isinstance(update, Update):
        return None
    if update.effective_chat is not None:
        return update.effective_chat.id
    return update.effective_user.id if update.effective_user is not None else None


# callback data kind -> the port's action ("more": show every option, this channel's own)
PRESSES: dict[str, Any] = {"a": "choose", "t": "toggle", "d": "done", "k": "skip", "r": "confirm", "b": "back",
                           "m": "more"}


@dataclass(frozen=True)
class Press:
    kind: str
    conversation_id: int | None
    target: str
    index: int | None
    version: int | None = None  # the dialog version a question's button was made for


_ID = re.compile(r"0|[1-9][0-9]{0,17}")


def parse_callback(data: str | None) -> Press | None:
    """Callback data -> Press, or None for anything this bot did not send (forged, garbled)."""
    if not isinstance(data, str) or not data:
        return None
    try:
        if len(data.encode()) > 64:
            return None
    except UnicodeEncodeError:  # a lone surrogate: not something this bot wrote
        return None
    parts = data.split(":")
    kind = parts[0]
    numbers = parts[1:2] + (parts[3:] if kind in ("a", "t", "d", "k", "b", "r", "m") else [])
    if kind != "f" and not all(_ID.fullmatch(n) for n in numbers):
        return None  # only the digits this bot writes: no " 12", "+12", "1_2", "012"
    try:
        if kind in ("a", "t") and len(parts) == 5:
            return Press(kind, int(parts[1]), parts[2], int(parts[3]), int(parts[4]))
        if kind in ("d", "k", "b", "r", "m") and len(parts) == 4:
            return Press(kind, int(parts[1]), parts[2], None, int(parts[3]))
        if kind == "x" and len(parts) == 3 and parts[2] in ("expert", "report", "new"):
            return Press(kind, int(parts[1]), parts[2], None)
        if kind == "c" and len(parts) == 3 and parts[2] in ("yes", "no"):
            return Press(kind, int(parts[1]), parts[2], None)
        if kind == "f" and len(parts) == 2 and parts[1] in ("yes", "no"):
            return Press(kind, None, parts[1], None)
    except ValueError:
        return None
    return None


@dataclass(frozen=True)
class Options:
    """What the people running the bot configure (see bot.py for the environment variables)."""

    sales_chat_id: int | None = None  # lead alerts go there
    admin_ids: frozenset[int] = frozenset()  # may use /stats, /leads, /lead, /export
    nudge_after: float | None = 24 * 3600  # seconds idle before the one reminder; None: never
    abandon_after: float = 7 * 24 * 3600  # seconds idle before a conversation counts as abandoned
    retention_days: float | None = None  # transcripts untouched this long are deleted; None: kept
    chat_burst: int = 20  # messages one private chat may get at once before the one-a-second pace


class HasBot(Protocol):
    """What sending needs of a context: a handler's, or ``_Context`` for work outside handlers."""

    @property
    def bot(self) -> Any: ...


@dataclass(frozen=True)
class _Context:
    """What send() needs of a handler's context, for work outside handlers (reminders)."""

    bot: Any


class TelegramChannel:
    """Handlers that turn updates into AdvisorService calls and steps into Telegram messages."""

    def __init__(self, service: AdvisorService, options: Options | None = None):
        self.service = service
        self.port = ChannelPort(service, CHANNEL)
        self.renderer = service.renderer
        self.engine = service.engine
        self.options = options or Options()
        if self.options.sales_chat_id is not None:  # completions queue their lead card as they commit
            service.cards_per_person_a_day = CARDS_PER_PERSON_A_DAY
        self._reminders: asyncio.Task[None] | None = None
        self._alerts: asyncio.Task[None] | None = None
        self._alerts_waiting = asyncio.Event()  # set when an alert is queued
        self._alert_names: dict[int, str | None] = {}  # alert id -> Telegram first name (memory only)

    # -- composition ---------------------------------------------------------------------
    def register(self, app: Application) -> None:
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
        await app.bot.set_my_commands(
            [BotCommand(name, self.renderer.plain("command", name=name)) for name in COMMANDS]
        )
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

    # -- reminders -------------------------------------------------------------------------
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
        store.abandon_idle(_ago(self.options.abandon_after))
        store.forget_processed(_ago(2 * 24 * 3600))  # Telegram redelivers within hours, not days
        if self.options.retention_days is not None:
            purged = self.service.purge(_ago(self.options.retention_days * 24 * 3600))
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
        for conversation in store.idle(CHANNEL, _ago(self.options.nudge_after)):
            if not store.mark_nudged(conversation.id):
                continue
            chat_id = int(conversation.user_id)
            try:
                await self.send(chat_id, self.renderer.telegram("reminder"), _Context(bot))
                await self.show(chat_id, Outcome(conversation, self.engine.resume(conversation.state), True),
                                _Context(bot))
                sent += 1
            except Forbidden:
                store.set_blocked(CHANNEL, conversation.user_id, True)
                log.info("reminder to conversation %s not delivered: blocked", conversation.id)
            except BadRequest as error:
                log.info("reminder to conversation %s not delivered: %s", conversation.id, error)
        return sent

    # -- lead alerts -----------------------------------------------------------------------
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
        store = self.service.store
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
                        rec=conversation.recommendation or {},
                        top=reports.top_functions(conversation), contact=reports.contact_of(conversation))
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

    # -- admin commands --------------------------------------------------------------------
    def admin_only(self, handler: Any) -> Any:
        """Admins get the command; anyone else the same answer as for an unknown command."""

        async def guarded(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            user = update.effective_user
            if user is None or user.id not in self.options.admin_ids:
                await self.on_unknown_command(update, context)
                return
            await handler(update, context)

        return guarded

    async def on_stats(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        days = _whole_number(context.args, default=30, high=3650)
        since = reports.parse_since(f"{days}d")
        stats = self.service.store.stats(Filters(since=since))
        funnel = self.service.store.funnel(Filters(since=since))
        order = list(self.service.dialog.order)
        stopped = [{**row, "text": self._question_text(row["question"])} for row in stats["stopped_at"]]
        await self.send(self._chat(update), self.renderer.telegram(
            "stats", days=days, stats=stats, stopped=stopped,
            funnel=[(qid, funnel.get(qid, 0)) for qid in order if qid in funnel]), context)

    async def on_leads(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        count = _whole_number(context.args, default=10, high=50)
        leads = list(self.service.store.conversations(Filters(status="completed"), newest_first=True, limit=count))
        rows = [{"id": c.id, "name": reports.name_of(c), "ref": c.ref, "score": (c.recommendation or {}).get(
            "readiness_score"), "profile": (c.recommendation or {}).get("profile"),
                 "top": reports.top_functions(c, 2), "at": _readable(c.completed_at or c.started_at)}
                for c in leads]
        await self.send(self._chat(update), self.renderer.telegram("leads", leads=rows), context)

    async def on_lead(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat = self._chat(update)
        conversation_id = _whole_number(context.args, default=None, high=2**62)
        try:
            conversation = self.service.store.get(conversation_id) if conversation_id else None
        except AdvisorError:
            conversation = None
        if conversation is None:
            await self.send(chat, self.renderer.telegram("no_lead", given=" ".join(context.args or [])), context)
            return
        text = self.renderer.telegram(
            "lead", c=conversation, contact=reports.contact_of(conversation),
            transcript=self.service.store.transcript(conversation.id))
        for chunk in split_message(text):
            await self.send(chat, chunk, context)

    async def on_export(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat = self._chat(update)
        store = self.service.store
        await context.bot.send_chat_action(chat, ChatAction.UPLOAD_DOCUMENT)
        rows = [reports.csv_row(c, store.review(c.id)) for c in store.conversations()]
        await context.bot.send_document(
            chat, InputFile(reports.csv_text(rows).encode("utf-8"), filename=f"conversations-{now()[:10]}.csv"),
            caption=self.renderer.telegram("export_caption", count=len(rows)), parse_mode=ParseMode.HTML)

    def _question_text(self, question_id: str) -> str:
        question = self.service.dialog.questions.get(question_id)
        return question.text if question else question_id

    # -- sending -------------------------------------------------------------------------
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
        self.service.store.set_asked(outcome.conversation.id, step.question.id, message.message_id)

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

    # -- commands ------------------------------------------------------------------------
    async def on_start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        user, chat = update.effective_user, update.effective_chat
        assert user is not None and chat is not None
        payload = " ".join(context.args or ())  # a payload with spaces is not one Telegram would send
        ref = payload if REF_PATTERN.match(payload) else None
        outcome = self.port.act(str(user.id), Action("start", ref=ref))
        assert isinstance(outcome, Outcome)
        if outcome.resumed:
            await self.send(chat.id, self.renderer.telegram("resumed", number=outcome.step.number), context)
        else:
            low, high = self.engine.path_lengths()
            await self.send(chat.id, self.renderer.telegram("welcome", name=_whole(user.first_name),
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
        latest = self.service.store.latest(CHANNEL, user_id, status="completed")
        if latest is None or latest.recommendation is None:
            await self.send(chat, self.renderer.telegram("no_summary"), context)
            return
        await self.send_recommendation(chat, latest, self.service.recommendation_of(latest) or {}, context)

    async def on_forget(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        keyboard = InlineKeyboardMarkup([[self.button("forget_yes", "f:yes"), self.button("forget_no", "f:no")]])
        await self.send(self._chat(update), self.renderer.telegram("forget_confirm"), context,
                        reply_markup=keyboard)

    async def on_cancel(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self.send(self._chat(update), self.renderer.telegram("contact_cancelled"), context,
                        reply_markup=ReplyKeyboardRemove())

    async def on_unknown_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self.nudge(update, context, "unknown_command")

    # -- answers -------------------------------------------------------------------------
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
        outcome = self.port.act(self._user(update), Action("text", _whole(update.message.text) or "",
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
        name = _whole(" ".join(filter(None, (shared.first_name, shared.last_name))))
        if current is not None and current.state.current == "contact":
            await self.show(chat, self.service.answer(current, f"{name} +{shared.phone_number.lstrip('+')}"),
                            context, telegram_name=self._first_name(update))
            return
        latest = self.service.store.latest(CHANNEL, self._user(update), status="completed")
        if latest is None or latest.consent_at is None:
            await self.nudge(update, context, "nudge")
            return
        alert_id = self.service.store.save_contact(latest.id, {
            "name": name or None, "email": None, "phone": "+" + shared.phone_number.lstrip("+"),
            "consent": True, "given_at": now(),
        }, alert=self.alerts("contact"))
        self.queued(alert_id, self._first_name(update))  # queued with the contact: the reply may fail
        await self.send(chat, self.renderer.telegram("contact_thanks", name=_whole(shared.first_name)), context,
                        reply_markup=ReplyKeyboardRemove())

    async def on_press(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        press = parse_callback(query.data)
        if press is None or update.effective_chat is None:  # forged, or pressed on an inline message
            await self._answer(query)
            return
        handler = {"x": self._after, "c": self._consent, "f": self._forget}.get(press.kind, self._answer_press)
        await handler(update, context, press)

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
            await _together(self._answer(query),
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
            await _together(self._answer(query), self._edit_markup(query.message, keyboard))
            return
        # The answer is committed: acknowledge the press, mark the question answered and show the next
        # one at once, not one round trip after another (they touch different messages).
        calls = [self._answer(query)]
        moved = outcome.step.kind == "finish" or outcome.step.state.history != current.state.history
        if moved:
            if kind == "back":
                done = self.renderer.telegram("went_back", number=before.number, total=before.total, text=question.text)
            else:
                done = self.renderer.telegram("answered", number=before.number, total=before.total,
                                              text=question.text, answer=self._answer_label(question, outcome))
            calls.append(self._edit_text(query.message, done))
        calls.append(self.show(chat, outcome, context, telegram_name=self._first_name(update)))
        await _together(*calls)

    def _answer_label(self, question: Question, outcome: Outcome) -> str:
        value = outcome.step.accepted
        if value is None:
            return self.renderer.plain("skipped")
        return self.service.describe(question.id, value)

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
            self.service.store.ask_consent(conversation.id)
            keyboard = InlineKeyboardMarkup([[self.button("consent_yes", f"c:{conversation.id}:yes"),
                                              self.button("consent_no", f"c:{conversation.id}:no")]])
            await self.send(chat, self.renderer.telegram("consent"), context, reply_markup=keyboard)
        elif press.target == "report":
            await context.bot.send_chat_action(chat, ChatAction.UPLOAD_DOCUMENT)
            document = self.renderer.report(self.service.recommendation_of(conversation) or {},
                                            conversation.state.answers,
                                            generated_at=_readable(conversation.completed_at or now()))
            await context.bot.send_document(
                chat, InputFile(document.encode("utf-8"), filename="outsourcing-recommendation.html"),
                caption=self.renderer.telegram("report_caption"), parse_mode=ParseMode.HTML)
        else:
            current = self.service.store.find_open(CHANNEL, user_id)
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
        if conversation is not None and (conversation.recommendation is None
                                         or conversation.consent_asked_at is None):
            conversation = None  # consent counts only where the advice was shown and the question asked
        await self._answer(query)
        await self._edit_markup(query.message, None)
        if conversation is None:
            return
        if press.target == "no":
            await self.send(chat, self.renderer.telegram("no_consent"), context)
            return
        self.queued(self.service.store.record_consent(conversation.id, alert=self.alerts("expert")),
                    self._first_name(update))
        keyboard = ReplyKeyboardMarkup([[KeyboardButton(self.renderer.button("share_contact"), request_contact=True)]],
                                       one_time_keyboard=True, resize_keyboard=True)
        await self.send(chat, self.renderer.telegram("share_contact"), context, reply_markup=keyboard)

    async def _forget(self, update: Update, context: ContextTypes.DEFAULT_TYPE, press: Press) -> None:
        query = update.callback_query
        assert query is not None
        await self._answer(query)
        if press.target == "yes":
            cards = self.service.store.cards_of(CHANNEL, self._user(update))
            count = self.service.store.forget(CHANNEL, self._user(update))
            await self._edit_text(query.message, self.renderer.telegram("forgotten", count=count))
            for chat_id, message_id in cards:  # the sales chat's cards about them go too
                await self._remove_card(context.bot, chat_id, message_id)
        else:
            await self._edit_text(query.message, self.renderer.telegram("forget_cancelled"))

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

    # -- everything else -----------------------------------------------------------------
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
            self.service.store.set_blocked(CHANNEL, str(member.from_user.id), blocked)
            return  # blocked or unblocked: nothing to say (a blocked person cannot be told anyway)
        if chat is None or chat.type != ChatType.PRIVATE or update.effective_user is None:
            return  # channel posts, polls ...: nobody to talk to
        if update.effective_message is None:
            return  # reactions and the like: nothing to answer
        await self.nudge(update, context, "nudge")

    async def nudge(self, update: Update, context: ContextTypes.DEFAULT_TYPE, lead: str | None) -> None:
        """Say why that was not understood, then re-ask the current question (or point to /start)."""
        chat, current = self._current(update)
        if current is None:
            latest = self.service.store.latest(CHANNEL, self._user(update))
            name = "completed" if latest is not None and latest.status == "completed" else "no_conversation"
            if lead == "unknown_command":
                name = "unknown_command_idle"
            await self.send(chat, self.renderer.telegram(name), context)
            return
        if lead:
            await self.send(chat, self.renderer.telegram(lead), context)
        await self.show(chat, Outcome(current, self.engine.resume(current.state), resumed=True), context)

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
                and (update.message is not None or update.callback_query is not None)
                and self.service.store.is_blocked(CHANNEL, str(user.id))):
            self.service.store.set_blocked(CHANNEL, str(user.id), False)

    async def busy(self, update: Update, bot: Any) -> None:
        """The database stayed locked by another process: the person's message was not kept."""
        if update.effective_chat is None or update.effective_chat.type != ChatType.PRIVATE:
            return
        try:
            await self.send(update.effective_chat.id, self.renderer.telegram("busy"), _Context(bot))
        except TelegramError:
            log.warning("could not tell chat %s that its message was not kept", update.effective_chat.id)

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        if _locked(context.error):  # another process (a sqlite3 shell, a backup) holds the write lock
            hit = _lock_hit.get()
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
                self.service.store.set_blocked(CHANNEL, str(user.id), True)
            log.info("a person blocked the bot; marked, no more messages to them")
            return
        if isinstance(context.error, InvalidToken):  # the token was revoked: the stop is under way
            log.error("the Bot API refused the token while handling an update")
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

    # -- helpers -------------------------------------------------------------------------
    def _chat(self, update: Update) -> int:
        assert update.effective_chat is not None
        return update.effective_chat.id

    def _first_name(self, update: Update) -> str | None:
        return _whole(update.effective_user.first_name) if update.effective_user else None

    def _user(self, update: Update) -> str:
        assert update.effective_user is not None
        return str(update.effective_user.id)

    def _current(self, update: Update) -> tuple[int, Conversation | None]:
        return self._chat(update), self.service.store.find_open(CHANNEL, self._user(update))

    def _own(self, conversation_id: int, user_id: str) -> Conversation | None:
        """The conversation, if it exists and belongs to this person on this channel."""
        try:
            conversation = self.service.store.get(conversation_id)
        except AdvisorError:  # an unknown id in forged data is just "not yours"
            return None
        if conversation.channel != CHANNEL or conversation.user_id != user_id:
            return None
        return conversation

    async def _edit_text(self, message: Any, text: str) -> None:
        if not isinstance(message, Message):
            return
        try:
            await message.edit_text(text, parse_mode=ParseMode.HTML, reply_markup=None)
        except BadRequest as error:
            if not _harmless_edit_failure(error):
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
            if not _harmless_edit_failure(error):
                raise


async def _together(*calls: Awaitable[Any]) -> None:
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


def _whole(text: str | None) -> str | None:
    """Text with any lone surrogate (JSON lets a client send "\ud800") replaced: it can be neither
    stored nor sent back, and a name holding one broke the welcome."""
    if text is None:
        return None
    return text.encode("utf-8", "replace").decode("utf-8")


def _harmless_edit_failure(error: BadRequest) -> bool:
    """Editing an old message failed in a way that changes nothing for the person: it already shows
    that content, or it is gone (deleted, too old to edit)."""
    text = str(error).lower()
    return any(part in text for part in ("not modified", "message to edit not found", "can't be edited"))


def _ago(seconds: float) -> str:
    """The store's timestamp format, ``seconds`` ago."""
    moment = datetime.now(UTC) - timedelta(seconds=seconds)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _whole_number(args: list[str] | None, default: Any, high: int) -> Any:
    """The first argument of a command as a whole number from 1 to ``high``, else ``default``."""
    if args and args[0].isdecimal() and 1 <= int(args[0]) <= high:
        return int(args[0])
    return default


def _readable(stamp: str) -> str:
    """2026-11-29T20:21:34Z -> 2026-11-29 20:21 UTC"""
    return stamp[:16].replace("T", " ") + " UTC"


def build_application(service: AdvisorService, token: str, api_url: str, options: Options | None = None,
                      rate_limit: bool = True, requests: tuple[Any, Any] | None = None,
                      updater: bool = True) -> Application:
    """The python-telegram-bot Application for the advisor, calling ``{api_url}/bot{token}/{method}``.

    ``requests`` (the request layer for calls and for getUpdates) and ``updater=False`` are for the
    benchmark, which feeds updates itself and answers calls in memory."""
    api_url = api_url.rstrip("/")
    channel = TelegramChannel(service, options)
    # aiohttp instead of httpx: httpcore's pool costs CPU per request that grows with its size, the
    # most of the bot's CPU with a few hundred people at once (see advisor/channels/http.py)
    requests = requests or (AiohttpRequest(connection_pool_size=64, pool_timeout=30.0),
                            AiohttpRequest(connection_pool_size=1))

    async def post_shutdown(app: Application) -> None:
        await channel.post_stop(app)  # PTB skips post_stop when starting failed, but not post_shutdown
        for request in requests:  # closed by PTB after a clean run; not when getMe failed at the start
            await request.shutdown()

    bot = GuardedBot(
        token=token, base_url=f"{api_url}/bot", base_file_url=f"{api_url}/file/bot",
        request=requests[0], get_updates_request=requests[1],
        # even spacing, no 429; a 429 still waits and delivers once
        rate_limiter=Pacer(private_burst=channel.options.chat_burst) if rate_limit else None,
    )
    processor = PerChatUpdateProcessor(store=service.store)
    builder = (
        ApplicationBuilder()
        .bot(bot)
        .concurrent_updates(processor)
        .post_init(channel.post_init)
        .post_stop(channel.post_stop)
        .post_shutdown(post_shutdown)
    )
    app = (builder if updater else builder.updater(None)).build()
    processor.again = app.process_update
    processor.sorry = lambda update: channel.busy(update, app.bot)
    service.store.wait_for_writers(LOOP_BUSY_MS)  # a write blocks every chat: never long (see processor)
    bot.when_refused(lambda _error: app.stop_running())  # polling ended: stop, never live on deaf
    channel.register(app)
    return app


class TokenFilter(logging.Filter):
    """Replaces a secret (the bot token, the webhook secret) in every log record, traceback included:
    httpx logs request URLs, which contain the token, and PTB's errors quote it."""

    def __init__(self, token: str, label: str = "<token>"):
        super().__init__()
        self.token = token
        self.label = label

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.token:
            return True
        message = record.getMessage()
        if self.token in message:
            record.msg = message.replace(self.token, self.label)
            record.args = ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text and self.token in record.exc_text:
            record.exc_text = record.exc_text.replace(self.token, self.label)
        return True


class _StartupFailureFilter(logging.Filter):
    """PTB logs a failed start (bad token, unreachable API) with a traceback; bot.py says it in one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Network Retry Loop (Bootstrap")


def hide_token_in_logs(token: str, *secrets: str) -> None:
    """Install TokenFilter on every handler of the root logger, and quiet httpx's request lines."""
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("telegram.ext").addFilter(_StartupFailureFilter())
    for handler in logging.getLogger().handlers:
        handler.addFilter(TokenFilter(token))
        for secret in secrets:
            handler.addFilter(TokenFilter(secret, "<secret>"))
