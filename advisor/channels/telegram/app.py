"""Building the Application, and keeping the token out of every log line."""

from __future__ import annotations

import logging
from typing import Any

from telegram.ext import (
    Application,
    ApplicationBuilder,
)

from advisor.channels.http import AiohttpRequest
from advisor.channels.polling import GuardedBot
from advisor.channels.telegram.channel import TelegramChannel
from advisor.channels.telegram.processor import LOOP_BUSY_MS, PerChatUpdateProcessor
from advisor.channels.telegram.settings import (
    Options,
)
from advisor.pacer import Pacer
from advisor.service import AdvisorService

log = logging.getLogger(__name__)


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
