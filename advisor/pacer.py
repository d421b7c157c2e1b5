"""A rate limiter that keeps the bot under Telegram's flood limits without bursts: ``Pacer``.

Telegram refuses (429 Too Many Requests, with ``retry_after``) a bot that sends more than about 30
messages a second overall, about 20 a minute to one group, and more than about one a second to one
chat for long. python-telegram-bot's ``AIORateLimiter`` is a leaky bucket: after a quiet moment it
lets a burst through, so more than 30 messages can leave within one second, and by default it gives
a ``RetryAfter`` back to the handler. ``Pacer`` instead:

* spaces messages evenly: one every ``window / overall_per_second`` seconds at most, and never more
  than ``overall_per_second`` within any ``window`` seconds of their actual departure (a guard against
  messages that left late, e.g. after the event loop was busy, catching up in a clump). 28 a second,
  not 30: the network moves each message's arrival by a few milliseconds, and two arrivals squeezed
  together must not make a 31st within Telegram's second;
* limits each chat on top of that: a private chat may get a burst (``private_burst``, 20) and then
  one message per ``private_interval`` seconds; a group or channel ``group_per_minute``. Each answer
  costs two messages (the question edited to show the answer, then the next question), so a person
  who answers every second or two gets ~1.5 messages a second for the whole dialog (~30 messages);
  a burst of 20 lets even a fast reader through without waiting, while a runaway loop into one chat
  still settles at Telegram's one a second. (With a burst of 6, answers quicker than one every two
  seconds waited a second each after the third);
* leaves alone what is not a message: ``answerCallbackQuery``, ``sendChatAction``,
  ``editMessageReplyMarkup``, ``getUpdates``, ``getMe``, ``setMyCommands`` ... go at once;
* honours ``RetryAfter`` for what Telegram asked to pause: the request waits ``retry_after`` and is
  made again (``max_retries`` times), and the other messages to the same chat wait with it; other
  chats go on (before, a ``retry_after: 25`` on the sales group held an unrelated prospect's next
  question for 24.5 s). A 429 on a request without a chat pauses every message. A ``retry_after``
  over ``max_wait`` (30 s) is not waited out here: the request fails at once, and its caller decides
  (the lead-card outbox keeps the card and tries again later).

On shutdown (``close()``), a wait that would end more than a second later fails at once
(``TimedOut``) instead: SIGTERM must stop the bot within 5 s, and 15 lead cards queued for a group
(20 a minute) or a ``retry_after`` held it for up to 33 s. What fails stays where it was: a card in
the outbox, a person's answer committed (they see the question again when they come back).

Requests keep their order: each one reserves its departure time when it arrives (first come,
first served), so the messages of one chat leave in the order they were sent.

    ApplicationBuilder().rate_limiter(Pacer())
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any

from telegram.error import RetryAfter, TimedOut
from telegram.ext import BaseRateLimiter

log = logging.getLogger(__name__)

# What Telegram counts as a message: every send* but the chat action, copies, forwards, text edits.
PACED_METHODS = frozenset({
    "sendMessage", "sendDocument", "sendPhoto", "sendVideo", "sendAudio", "sendVoice", "sendAnimation",
    "sendVideoNote", "sendSticker", "sendMediaGroup", "sendLocation", "sendVenue", "sendContact", "sendPoll",
    "sendDice", "sendInvoice", "sendPaidMedia", "sendGame", "copyMessage", "copyMessages", "forwardMessage",
    "forwardMessages", "editMessageText", "editMessageCaption", "editMessageMedia",
})


class _Gcra:
    """A generic cell rate: ``burst`` requests at once, then one every ``interval`` seconds.

    ``reserve()`` books the next departure and returns it: callers that arrive together leave in the
    order they called, spaced by ``interval``.
    """

    __slots__ = ("burst", "interval", "tat")

    def __init__(self, interval: float, burst: int = 1):
        self.interval = interval
        self.burst = max(1, burst)
        self.tat = 0.0  # theoretical arrival time of the next request

    def reserve(self, now: float) -> float:
        tolerance = (self.burst - 1) * self.interval
        departure = max(now, self.tat - tolerance)
        self.tat = max(self.tat, now) + self.interval
        return departure

    def idle(self, now: float) -> bool:
        return self.tat <= now


class Pacer(BaseRateLimiter[int]):
    """Even spacing of messages overall and per chat; see the module's docstring.

    ``rate_limit_args`` (an int, e.g. ``send_message(..., rate_limit_args=5)``) is the number of
    retries for that request instead of ``max_retries``.
    """

    def __init__(
        self,
        overall_per_second: float = 28.0,
        window: float = 1.0,
        private_interval: float | None = 1.0,
        private_burst: int = 20,
        group_per_minute: float | None = 20.0,
        group_burst: int = 3,
        max_retries: int = 2,
        max_wait: float = 30.0,
        paced_methods: frozenset[str] = PACED_METHODS,
        clock: Callable[[], float] = time.monotonic,
    ):
        if overall_per_second <= 0:
            raise ValueError("overall_per_second must be positive")
        self.overall_per_second = overall_per_second
        self.window = window
        self.private_interval = private_interval
        self.private_burst = private_burst
        self.group_interval = 60.0 / group_per_minute if group_per_minute else None
        self.group_burst = group_burst
        self.max_retries = max_retries
        self.max_wait = max_wait
        self.paced_methods = paced_methods
        self._clock = clock
        self._overall = _Gcra(window / overall_per_second)
        self._limit = max(1, int(overall_per_second))
        self._departures: deque[float] = deque()  # actual departure times, newest last
        self._chats: dict[int | str, _Gcra] = {}
        self._paused_until = 0.0  # every message waits (a 429 without a chat)
        self._chat_paused: dict[int | str, float] = {}  # one chat waits (a 429 for that chat)
        self._close_by: float | None = None  # shutting down: no wait may end after this
        self._closing = asyncio.Event()  # wakes the waits in progress when closing
        self.waited = 0.0  # seconds requests spent waiting here, for the curious
        self.retries = 0  # RetryAfter errors seen

    def close(self, grace: float = 1.0) -> None:
        """Shutting down: from now on a wait that would end more than ``grace`` seconds later fails."""
        self._close_by = self._clock() + grace
        self._closing.set()

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to release."""

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        paced = endpoint in self.paced_methods
        retries = self.max_retries if rate_limit_args is None else int(rate_limit_args)
        chat = _chat_key(data.get("chat_id"))
        attempt = 0
        while True:
            if paced:
                await self._wait_turn(chat)
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as error:
                self.retries += 1
                delay = retry_after_seconds(error)
                if attempt >= retries or delay > self.max_wait:
                    raise
                attempt += 1
                log.warning("%s: Telegram asks to wait %.1f s (retry %d of %d)", endpoint, delay, attempt, retries)
                until = self._clock() + delay
                if self._close_by is not None and until > self._close_by:
                    raise
                if chat is None:
                    self._paused_until = max(self._paused_until, until)
                else:
                    self._chat_paused[chat] = max(self._chat_paused.get(chat, 0.0), until)
                await self._sleep_until(until)

    async def _wait_turn(self, chat: int | str | None) -> None:
        start = self._clock()
        if chat is not None and chat in self._chat_paused:
            await self._sleep_until(self._chat_paused[chat])
            if self._chat_paused.get(chat, 0.0) <= self._clock():
                self._chat_paused.pop(chat, None)
        if chat is not None:
            limiter = self._chat_limiter(chat, start)
            if limiter is not None:
                await self._sleep_until(limiter.reserve(start))
        while True:
            now = self._clock()
            if self._paused_until > now:
                await self._sleep_until(self._paused_until)
                continue
            await self._sleep_until(self._overall.reserve(now))
            # the guard: never more than the limit within one window of actual departures
            now = self._clock()
            departures = self._departures
            while departures and departures[0] <= now - self.window:
                departures.popleft()
            if len(departures) < self._limit:
                departures.append(now)
                break
            await self._sleep_until(departures[0] + self.window)
        self.waited += self._clock() - start

    def _chat_limiter(self, chat: int | str, now: float) -> _Gcra | None:
        private = isinstance(chat, int) and chat > 0
        interval, burst = ((self.private_interval, self.private_burst) if private
                           else (self.group_interval, self.group_burst))
        if interval is None:
            return None
        limiter = self._chats.get(chat)
        if limiter is None:
            if len(self._chats) >= 10_000:  # forget chats that are quiet again
                self._chats = {key: value for key, value in self._chats.items() if not value.idle(now)}
            limiter = self._chats[chat] = _Gcra(interval, burst)
        return limiter

    async def _sleep_until(self, moment: float) -> None:
        if self._close_by is not None and moment > self._close_by:
            raise TimedOut("the bot is stopping: not sent")
        delay = moment - self._clock()
        if delay <= 0:
            return
        if self._close_by is not None:
            await asyncio.sleep(delay)
            return
        nap = asyncio.ensure_future(asyncio.sleep(delay))
        closing = asyncio.ensure_future(self._closing.wait())  # a close() wakes it early...
        try:
            await asyncio.wait((nap, closing), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (nap, closing):
                task.cancel()
        if self._close_by is not None and moment > self._close_by:  # ... to fail at once
            raise TimedOut("the bot is stopping: not sent")


def _chat_key(chat_id: Any) -> int | str | None:
    if chat_id is None:
        return None
    if isinstance(chat_id, int):
        return chat_id
    with contextlib.suppress(ValueError, TypeError):
        return int(chat_id)
    return str(chat_id)  # @channelusername


def retry_after_seconds(error: RetryAfter) -> float:
    value = getattr(error, "_retry_after", None)  # a timedelta; the public attribute may warn
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value or 1.0)
