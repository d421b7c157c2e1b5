"""What keeps the review dashboard standing before anyone has signed in.

Measured against the dashboard as it was (tornado's defaults): bodies of up to 100 MB were read
before the token was checked (three 95 MB POSTs took the process from 43 to 398 MB); half-sent
requests were held for an hour each (250 of them made ``/login`` fail with "too many open files");
``Authorization: Bearer`` guesses were never limited (2,000 in 1.4 s); behind ``--behind-proxy`` a
client-sent ``X-Real-Ip`` gave every guess a new address; and after ten wrong tokens from one address
the right token was refused too, so one guesser behind a shared NAT locked every reviewer out.

Now:
- ``LIMITS``: bodies over 64 KiB and headers over 16 KiB are refused before they are read whole, a
  connection idle (or a request half-sent) for 10 s is closed, and at most 128 connections are open
  at once (the next ones are closed at once, so the process keeps its file descriptors);
- ``Guesses``: every token check (the sign-in form and ``Authorization: Bearer``) is judged one at a
  time per address, and after ``per_address`` wrong tokens in ``window`` seconds from one address, or
  ``overall`` from all, the next check *waits* until the window allows it instead of being refused:
  a guesser gets ten tries a minute, and the right token still gets in, later, never locked out;
- behind a proxy the address is the last ``X-Forwarded-For`` entry (the one the proxy appended);
  ``X-Real-Ip`` and earlier entries come from the client and are not trusted.
Written here: tornado has no connection cap and no login throttle, and a throttle that waits
(rather than refuses) is what keeps the right token working.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from tornado.httpserver import HTTPServer
from tornado.iostream import IOStream

LIMITS = {
    "max_body_size": 64 * 1024,
    "max_header_size": 16 * 1024,
    "idle_connection_timeout": 10.0,  # also how long tornado waits for a request's headers
    "body_timeout": 10.0,
}
MAX_CONNECTIONS = 128


class CappedHTTPServer(HTTPServer):
    """tornado's HTTPServer with at most ``max_connections`` open connections."""

    def initialize(self, *args: Any, max_connections: int = MAX_CONNECTIONS, **kwargs: Any) -> None:  # type: ignore[override]
        super().initialize(*args, **kwargs)
        self.max_connections = max_connections

    def handle_stream(self, stream: IOStream, address: tuple[Any, ...]) -> None:
        if len(self._connections) >= self.max_connections:
            stream.close()  # refused before a byte is read: the busy ones keep their descriptors
            return
        super().handle_stream(stream, address)


class Guesses:
    """Wrong tokens per address and overall, for ``window`` seconds; see the module's docstring."""

    def __init__(self, per_address: int = 10, overall: int = 60, window: float = 60.0,
                 clock: Callable[[], float] = time.monotonic):
        self.per_address = per_address
        self.overall = overall
        self.window = window
        self._clock = clock
        self._wrong: dict[str, deque[float]] = {}
        self._all: deque[float] = deque()
        self._judging = asyncio.Lock()
        self._queues: dict[str, asyncio.Lock] = {}
        self._waiting: dict[str, int] = {}

    @property
    def addresses(self) -> int:
        """Addresses with wrong tokens still remembered (the table is pruned as the window passes)."""
        self._prune(self._clock())
        return len(self._wrong)

    async def judge(self, address: str, right: Callable[[], bool]) -> bool:
        """``right()`` once this address may have a token checked; a wrong one is remembered."""
        queue = self._queues.setdefault(address, asyncio.Lock())
        self._waiting[address] = self._waiting.get(address, 0) + 1
        try:
            async with queue:  # one check at a time per address, in arrival order
                while True:
                    async with self._judging:
                        now = self._clock()
                        wait = self._wait(address, now)
                        if wait <= 0:
                            if right():
                                return True
                            self._wrong.setdefault(address, deque()).append(now)
                            self._all.append(now)
                            return False
                    await asyncio.sleep(wait)
        finally:
            self._waiting[address] -= 1
            if not self._waiting[address]:
                del self._waiting[address], self._queues[address]

    def _wait(self, address: str, now: float) -> float:
        self._prune(now)
        waits = []
        mine = self._wrong.get(address)
        if mine is not None and len(mine) >= self.per_address:
            waits.append(mine[-self.per_address] + self.window - now)
        if len(self._all) >= self.overall:
            waits.append(self._all[-self.overall] + self.window - now)
        return max(waits, default=0.0)

    def _prune(self, now: float) -> None:
        horizon = now - self.window
        while self._all and self._all[0] <= horizon:
            self._all.popleft()
        for address in [a for a, times in self._wrong.items() if not times or times[-1] <= horizon]:
            del self._wrong[address]
        for times in self._wrong.values():
            while times and times[0] <= horizon:
                times.popleft()


def client_address(remote_ip: str | None, forwarded_for: str | None, behind_proxy: bool) -> str:
    """Who is asking: the connection's address, or behind a proxy the last ``X-Forwarded-For`` hop."""
    if behind_proxy and forwarded_for:
        last = forwarded_for.split(",")[-1].strip()
        if last:
            return last
    return remote_ip or "?"
