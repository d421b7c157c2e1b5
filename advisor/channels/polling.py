"""The Bot API client the Telegram channel polls with: a python-telegram-bot ``ExtBot`` that never
lets one update, or one answer, stop the bot.

What python-telegram-bot 22 does by itself, measured against the fake Bot API in ``tests/``:
- one update it cannot parse (a ``date`` that is not a number, a ``callback_query`` without
  ``from``, ``entities: "x"``) fails the whole batch: the batch is fetched again at once, without
  back-off and without ever being confirmed (a restart is stuck on it too), and every pending
  update, names and texts included, is written to the log at CRITICAL;
- a 401 or 404 on getUpdates ends polling ("Invalid token. Aborting retry loop") while the process
  lives on, deaf, and no service manager restarts it.

Here, instead:
- an update that cannot be parsed is replaced by an empty one with the same ``update_id``, so the
  next getUpdates confirms it; only its id is logged; every other update of the batch is served;
- an answer whose ``result`` is not a list of updates (or a list of things that are not updates),
  and any other network failure, is waited out here with a back-off (1 s, growing to 30 s) that a
  stop ends at once (python-telegram-bot's own back-off sleep held SIGTERM for up to 30 s);
- a getUpdates ``retry_after`` is waited out inside the poll, where a stop interrupts it, and at
  most a minute at a time (python-telegram-bot slept it out where SIGTERM could not reach);
- a refused token (401 or 404) stops the application gracefully, once (the stop's own last
  getUpdates is refused too), and ``refused`` says why, so ``bot.py`` exits 1 with one line;
- once stopping, a retry_after on that last getUpdates is not waited out.
The happy path costs nothing: the raw answer is only kept by reference, and read again only when
python-telegram-bot's own parsing failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from telegram import Update
from telegram.error import Conflict, InvalidToken, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.ext import ExtBot

from advisor.pacer import retry_after_seconds as _seconds

log = logging.getLogger(__name__)

MAX_POLL_WAIT = 60.0  # the longest a getUpdates retry_after is waited before asking again
MAX_BACKOFF = 30.0  # the longest wait after a network failure, as python-telegram-bot's own

_PARSE_FAILURE = "Error while parsing updates!"


class _NoRawUpdatesInTheLog(logging.Filter):
    """python-telegram-bot logs a batch it could not parse whole, names and texts, at CRITICAL."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(_PARSE_FAILURE)


for _name in ("telegram.Bot", "telegram.ext.ExtBot"):
    logging.getLogger(_name).addFilter(_NoRawUpdatesInTheLog())


class GuardedBot(ExtBot):
    """``ExtBot`` whose ``get_updates`` survives bad updates and stops the bot on a refused token."""

    __slots__ = ("_backoff", "_on_refused", "_raw_updates", "_refused", "_stopped", "_stopping")

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        # PTB freezes a bot's public attributes; protected ones may be set
        self._raw_updates: Any = None
        self._refused: InvalidToken | None = None
        self._on_refused: Callable[[InvalidToken], None] | None = None
        self._stopping = False
        self._stopped: asyncio.Event | None = None  # set on stop: ends a back-off wait
        self._backoff = 0.0  # seconds before the next getUpdates after a network failure

    def stopping(self) -> None:
        """The bot is stopping: the last getUpdates (python-telegram-bot's, to confirm what was
        handled) does not wait out a retry_after (it made SIGTERM take a minute), and a back-off
        wait ends now."""
        self._stopping = True
        if self._stopped is not None:
            self._stopped.set()

    @property
    def refused(self) -> InvalidToken | None:
        """Why polling stopped, if the Bot API refused the token while polling."""
        return self._refused

    def when_refused(self, callback: Callable[[InvalidToken], None]) -> None:
        self._on_refused = callback

    async def _post(self, endpoint: str, *args: Any, **kwargs: Any) -> Any:
        result = await super()._post(endpoint, *args, **kwargs)
        if endpoint == "getUpdates":
            self._raw_updates = result  # kept, not copied: read only if parsing fails
        return result

    async def get_updates(self, *args: Any, **kwargs: Any) -> tuple[Update, ...]:
        try:
            updates = await super().get_updates(*args, **kwargs)
        except InvalidToken as error:
            # Raised, it would end python-telegram-bot's polling loop and leave the process running;
            # instead the application is stopped (gracefully: sessions closed) and bot.py says why.
            first = self._refused is None
            self._refused = error
            if first:  # once: the stop's own last getUpdates is refused too, and must not stop it again
                log.error("the Bot API refused the token while polling; stopping")
                self._stopping = True
                if self._on_refused is not None:
                    self._on_refused(error)
                await asyncio.sleep(1)  # until the stop arrives, not a tight loop of refusals
            return ()
        except RetryAfter as error:
            # python-telegram-bot sleeps out a getUpdates retry_after where a stop cannot interrupt it
            # (a retry_after of 100000 made SIGTERM hang); here the wait is part of the poll, which a
            # stop cancels, and is capped: then the next poll asks again.
            if self._stopping:
                return ()
            delay = min(_seconds(error), MAX_POLL_WAIT)
            log.warning("getUpdates: Telegram asks to wait; polling again in %.0f s", delay)
            await asyncio.sleep(delay)
            return ()
        except TimedOut:
            if self._stopping:
                return ()
            raise  # a long poll that timed out: python-telegram-bot asks again at once
        except (NetworkError, Conflict) as error:
            return await self._back_off(error)
        except TelegramError:
            raise
        except Exception:
            try:
                updates = self._salvage(self._raw_updates)
            except NetworkError as error:
                return await self._back_off(error)
        self._backoff = 0.0
        return updates

    async def _back_off(self, error: TelegramError) -> tuple[Update, ...]:
        """Wait before the next getUpdates, 1 s growing to 30 s, as python-telegram-bot would, but where
        a stop ends the wait (its own sleep held SIGTERM for up to 30 s while the network was down)."""
        if self._stopping:  # the stop's last getUpdates: nothing to confirm if the network is gone
            return ()
        self._backoff = 1.0 if not self._backoff else min(MAX_BACKOFF, self._backoff * 1.5)
        if isinstance(error, Conflict):
            log.warning("another process is polling with this token (Telegram answered 409); trying again in "
                        "%.1f s", self._backoff)
        else:
            log.warning("fetching updates failed (%s); trying again in %.1f s", type(error).__name__, self._backoff)
        if self._stopped is None:
            self._stopped = asyncio.Event()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopped.wait(), timeout=self._backoff)
        return ()

    def _salvage(self, raw: Any) -> tuple[Update, ...]:
        """Every update that parses, and an empty update in place of each one that does not."""
        if not isinstance(raw, list):
            raise NetworkError(f"getUpdates answered with {type(raw).__name__}, not a list of updates")
        if raw and not any(isinstance(item, dict) and isinstance(item.get("update_id"), int) for item in raw):
            # nothing to confirm, so asking again at once would get the same: back off instead
            raise NetworkError("getUpdates answered with a list of no updates")
        kept: list[Update] = []
        for item in raw:
            update_id = item.get("update_id") if isinstance(item, dict) else None
            if not isinstance(update_id, int) or isinstance(update_id, bool):
                log.warning("skipped an update without a usable update_id")
                continue
            try:
                update = Update.de_json(item, self)
            except Exception:
                log.warning("skipped update %d: Telegram sent it in a form that cannot be read", update_id)
                update = Update(update_id=update_id)
                update.set_bot(self)
            kept.append(update)
        return tuple(kept)
