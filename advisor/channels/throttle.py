"""What keeps the review dashboard standing before anyone has signed in.

Measured against the dashboard as it was (tornado's defaults): bodies of up to 100 MB were read
before the token was checked (three 95 MB POSTs took the process from 43 to 398 MB); half-sent
requests were held for an hour each (250 of them made ``/login`` fail with "too many open files");
``Authorization: Bearer`` guesses were never limited (2,000 in 1.4 s); behind ``--behind-proxy`` a
client-sent ``X-Real-Ip`` gave every guess a new address; and after ten wrong tokens from one address
the right token was refused too, so one guesser behind a shared NAT locked every reviewer out.

Then, against the first version of this module (``python bot.py review`` on loopback, 2 cores): one
client holding 130 idle sockets (reopening each one closed after 10 s) had all 128 connections, and 29 of
a signed-in reviewer's 30 requests in 30 s were refused; and as every token check waited its turn, the
right token waited 52 s while seven other addresses guessed (the overall budget used up), 60 s from an
address right after its own ten wrong tokens, and 52 s from an address eight threads were guessing from.

Now:
- ``LIMITS``: bodies over 64 KiB and headers over 16 KiB are refused before they are read whole, a
  connection idle (or a request half-sent) for 10 s is closed, and at most 128 connections are open
  at once, at most 16 of them from one TCP peer address (an IPv6 /64 counts as one address): a
  connection over either cap is closed at once, so the process keeps its file descriptors and one
  client never has the whole pool (the reviewer above: 30 of 30 answered). Behind ``--behind-proxy``
  every connection is the proxy's, so there the cap per address is off and the proxy has to limit
  connections per client (``CappedHTTPServer``);
- ``Guesses``: the token is judged first (in constant time) and the right one passes at once. A wrong
  one is answered at once too, until ``per_address`` wrong tokens in ``window`` seconds from one
  address, or ``overall`` from all; then it *waits* until the window allows it. An address's checks
  are judged one at a time, in turn: while one waits, the others from that address wait behind it,
  unjudged, since a right token passing at once beside waiting wrong ones would show a guesser
  sending many at a time which one is right; hanging up on a waiting check does not free its turn
  either. So guessing learns about ten tokens a minute per address and sixty overall. Measured: the
  right token got in in 0.03 s while seven other addresses guessed, and 0.02 s right after its own
  address's ten wrong ones. Someone on the very address a guesser is sending from (a shared NAT)
  waits their turn behind the guesser's checks (at most ``MAX_QUEUE``, each held at most until the
  window allows it) and then gets in: never refused, unlike in the first version, where ten wrong
  tokens locked the address out. Past ``MAX_QUEUE`` checks waiting (possible only behind a proxy,
  where connections are not capped per client), 429 at once. A signed-in reviewer's cookie needs no
  token check;
- behind a proxy the address is the last ``X-Forwarded-For`` entry (the one the proxy appended);
  ``X-Real-Ip`` and earlier entries come from the client and are not trusted.
Written here: tornado has no connection cap and no login throttle.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from tornado.httpserver import HTTPServer
from tornado.iostream import IOStream
from tornado.web import RequestHandler

LIMITS = {
    "max_body_size": 64 * 1024,
    "max_header_size": 16 * 1024,
    "idle_connection_timeout": 10.0,  # also how long tornado waits for a request's headers
    "body_timeout": 10.0,
}
MAX_CONNECTIONS = 128
MAX_PER_ADDRESS = 16  # a few browsers behind one NAT (a browser opens up to 6), not the whole pool
MAX_QUEUE = 16  # token checks one address may have waiting their turn (more: 429 at once)


def address_key(address: str) -> str:
    """Whom a limit counts: an IPv4 address, or the /64 network of an IPv6 one (one subscriber gets a
    whole /64, so one address each would be no limit at all); anything else as it is."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))
    return str(ip)


def _peer(address: Any) -> str | None:
    """The TCP peer's key, or None for a peer without an IP address (a Unix socket)."""
    if isinstance(address, tuple) and address and isinstance(address[0], str) and address[0]:
        return address_key(address[0])
    return None


class CappedHTTPServer(HTTPServer):
    """tornado's HTTPServer with at most ``max_connections`` open connections, and at most
    ``max_per_address`` of them from one TCP peer address; a connection over either is closed at once.

    ``max_per_address`` defaults to ``MAX_PER_ADDRESS``, but to ``max_connections`` (no cap of its own)
    when the application has ``behind_proxy`` set: every connection then comes from the proxy, so a cap
    per peer would only shrink the pool for everyone (and the client's address is in a header that is
    not read yet when the connection is accepted). Behind a proxy, the proxy must limit connections per
    client (nginx: ``limit_conn``), and the port should be reachable from the proxy only."""

    def initialize(self, *args: Any, max_connections: int = MAX_CONNECTIONS,
                   max_per_address: int | None = None, **kwargs: Any) -> None:
        super().initialize(*args, **kwargs)
        self.max_connections = max_connections
        if max_per_address is None:
            behind_proxy = getattr(self.request_callback, "settings", {}).get("behind_proxy", False)
            max_per_address = max_connections if behind_proxy else MAX_PER_ADDRESS
        self.max_per_address = max_per_address
        self._open: dict[str, int] = {}

    @property
    def peers(self) -> dict[str, int]:
        """Open connections per peer address (an address leaves the table with its last connection)."""
        return dict(self._open)

    def handle_stream(self, stream: IOStream, address: tuple[Any, ...]) -> None:
        peer = _peer(address)
        if len(self._connections) >= self.max_connections or (
                peer is not None and self._open.get(peer, 0) >= self.max_per_address):
            stream.close()  # refused before a byte is read: the busy ones keep their descriptors
            return
        if peer is not None:
            self._open[peer] = self._open.get(peer, 0) + 1
        try:
            super().handle_stream(stream, address)
        except BaseException:
            self._forget(peer)
            raise

    def on_close(self, server_conn: object) -> None:
        super().on_close(server_conn)
        self._forget(_peer(getattr(getattr(server_conn, "context", None), "address", None)))

    def _forget(self, peer: str | None) -> None:
        if peer is None or peer not in self._open:
            return
        self._open[peer] -= 1
        if self._open[peer] <= 0:
            del self._open[peer]


class Busy(Exception):
    """A token check from this address is still waiting: this one is refused without being judged."""

    def __init__(self, retry_after: float):
        super().__init__(f"a token check from this address is still waiting (about {retry_after:.1f} s)")
        self.retry_after = retry_after


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
        self._pending: dict[str, float] = {}  # address -> when its waiting wrong token may be answered
        self._turns: dict[str, asyncio.Lock] = {}  # address -> its checks, one at a time
        self._queued: dict[str, int] = {}  # address -> its checks judged or waiting their turn

    @property
    def addresses(self) -> int:
        """Addresses with wrong tokens still remembered (the table is pruned as the window passes)."""
        self._prune(self._clock())
        return len(self._wrong)

    @property
    def pending(self) -> int:
        """Addresses with a wrong token waiting to be answered (each leaves with its answer)."""
        return len(self._pending)

    async def judge(self, address: str, right: Callable[[], bool]) -> bool:
        """True for the right token, False for a wrong one once the budget allows it. An address's
        checks are judged one at a time, in turn: one waiting to be answered holds the others back,
        unjudged (so that guesses sent side by side learn nothing early), and a right token from a
        guesser's address waits its turn, never refused. ``Busy`` at once only past ``MAX_QUEUE``
        checks waiting from one address (behind a proxy, where connections are not capped per client)."""
        key = address_key(address)
        if self._queued.get(key, 0) >= MAX_QUEUE:
            raise Busy(max(self._pending.get(key, self._clock()) - self._clock(), 0.0))
        self._queued[key] = self._queued.get(key, 0) + 1
        try:
            async with self._turns.setdefault(key, asyncio.Lock()):
                now = self._clock()
                if right():  # judged first (in constant time, by the caller): the right token never waits
                    return True
                wait = self._wait(key, now)
                if wait <= 0:
                    self._remember(key, now)
                    return False
                # the address's one pending check, until it is answered (even if its client has hung up:
                # tornado runs prepare() on, so hanging up on a slow "wrong" does not free a faster guess)
                self._pending[key] = now + wait
                try:
                    while wait > 0:
                        await asyncio.sleep(wait)
                        now = self._clock()
                        wait = self._wait(key, now)  # others may have used the overall budget meanwhile
                        self._pending[key] = now + wait
                    self._remember(key, now)
                    return False
                finally:
                    del self._pending[key]
        finally:
            self._queued[key] -= 1
            if not self._queued[key]:
                del self._queued[key], self._turns[key]

    def _remember(self, key: str, now: float) -> None:
        self._wrong.setdefault(key, deque()).append(now)
        self._all.append(now)

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


class HardenedHandler(RequestHandler):
    """What the dashboard's and the web chat's handlers share: no ``Server`` header, the class's
    ``security_headers``, and the client's address and scheme, from the proxy only behind one
    (``behind_proxy`` in the application's settings)."""

    security_headers: dict[str, str] = {}  # noqa: RUF012 (read only; each app's handlers set their own)

    def set_default_headers(self) -> None:
        self.clear_header("Server")  # no name and version for a scanner to match
        for name, value in self.security_headers.items():
            self.set_header(name, value)

    def address(self) -> str:
        return client_address(self.request.remote_ip, self.request.headers.get("X-Forwarded-For"),
                              self.settings["behind_proxy"])

    def https(self) -> bool:
        forwarded = self.request.headers.get("X-Forwarded-Proto", "") if self.settings["behind_proxy"] else ""
        return self.request.protocol == "https" or forwarded.lower() == "https"


def client_address(remote_ip: str | None, forwarded_for: str | None, behind_proxy: bool) -> str:
    """Who is asking: the connection's address, or behind a proxy the last ``X-Forwarded-For`` hop."""
    if behind_proxy and forwarded_for:
        last = forwarded_for.split(",")[-1].strip()
        if last:
            return last
    return remote_ip or "?"
