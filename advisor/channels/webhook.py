"""Webhook mode: Telegram posts updates to a small tornado server that refuses everything else.

python-telegram-bot's own webhook server answers a body that is not JSON with a 500, takes any size,
and logs the whole update at DEBUG. This one answers:

* 403 without the secret (``X-Telegram-Bot-Api-Secret-Token``, compared in constant time),
* 413 for a body over 1 MiB (Telegram's updates are a few KiB),
* 400 for a body that is not an update,
* 200 once the update is handled, and its turn committed, by the same Application the polling
  mode uses (the update processor: per-chat order, once only).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
import signal
from typing import Any

from telegram import Update
from telegram.ext import Application
from tornado.httpserver import HTTPServer
from tornado.web import Application as WebApplication
from tornado.web import HTTPError, RequestHandler, stream_request_body

log = logging.getLogger(__name__)

MAX_BODY = 1 << 20


@stream_request_body
class TelegramWebhook(RequestHandler):
    def initialize(self, bot_app: Application, secret: str) -> None:
        self.bot_app = bot_app
        self.secret = secret
        self.chunks: list[bytes] = []
        self.size = 0

    def prepare(self) -> None:
        given = self.request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
        if not hmac.compare_digest(given.encode(), self.secret.encode()):
            raise HTTPError(403)
        length = self.request.headers.get("Content-Length", "")
        if length.isdecimal() and int(length) > MAX_BODY:
            raise HTTPError(413)

    def data_received(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size <= MAX_BODY:
            self.chunks.append(chunk)

    async def post(self) -> None:
        if self.size > MAX_BODY:
            raise HTTPError(413)
        try:
            data = json.loads(b"".join(self.chunks))
        except ValueError:
            raise HTTPError(400) from None
        if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
            raise HTTPError(400)
        try:
            update = Update.de_json(data, self.bot_app.bot)
        except Exception:  # whatever de_json trips over in a malformed update
            raise HTTPError(400) from None
        # Handled, and its turn committed, before the 200: Telegram does not send an acknowledged
        # update again, so a crash after an early 200 lost it (6 of 40 after a SIGKILL). Without the
        # 200, Telegram sends it again, and the once-only check skips it if it was committed after all.
        app = self.bot_app
        await app.update_processor.process_update(update, app.process_update(update))
        self.finish()

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.finish({"ok": False, "status": status_code})

    def log_exception(self, *args: Any) -> None:
        """Refusals are answers, not errors worth a traceback."""


async def serve_webhook(app: Application, listen: str, port: int, path: str, url: str, secret: str) -> None:
    """Run ``app`` on a webhook until SIGINT or SIGTERM, then stop it cleanly (updates in flight finish)."""
    try:
        async with app:  # initialize ... shutdown
            if app.post_init:
                await app.post_init(app)
            # the path is a path, not a pattern: "tele.gram" must not also answer at "/teleXgram"
            web = WebApplication([(rf"/{re.escape(path)}", TelegramWebhook, {"bot_app": app, "secret": secret})])
            server = HTTPServer(web, max_body_size=4 * MAX_BODY)
            server.listen(port, listen)
            try:
                await app.bot.set_webhook(url=url, secret_token=secret, allowed_updates=Update.ALL_TYPES)
                await app.start()
                stop = asyncio.Event()
                loop = asyncio.get_running_loop()
                for sig in (signal.SIGINT, signal.SIGTERM):  # (in place of the channel's polling ones)
                    loop.add_signal_handler(sig, stop.set)
                log.info("webhook server on %s:%s/%s", listen, port, path)
                await stop.wait()
                limiter = getattr(app.bot, "rate_limiter", None)
                if limiter is not None and hasattr(limiter, "close"):
                    limiter.close()  # waits for a turn fail at once: the stop takes seconds, not minutes
            finally:
                server.stop()
                if app.running:
                    await app.stop()
                    if app.post_stop:
                        await app.post_stop(app)
    finally:  # also when starting failed (getMe refused): the request layer is closed there
        if app.post_shutdown:
            await app.post_shutdown(app)
