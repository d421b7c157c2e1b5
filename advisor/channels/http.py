"""python-telegram-bot's request layer on aiohttp instead of httpx.

Why: in our benchmark (``bench/run.py``) httpx/httpcore's connection pool cost O(connections x idle
connections) of CPU per request: with 200 concurrent Bot API calls the bot spent ~60% of its CPU in
the pool. aiohttp's connector hands out a free connection in constant time and parses HTTP in C; a
``BaseRequest`` on aiohttp doubled the replies per second (116 -> 240/s) against sharded httpx clients.

How::

    from advisor.channels.http import AiohttpRequest

    application = (
        ApplicationBuilder()
        .token(token)
        .request(AiohttpRequest(connection_pool_size=32))
        .get_updates_request(AiohttpRequest(connection_pool_size=1, read_timeout=10.0))
        .build()
    )

An ``AiohttpRequest`` can be built anywhere, also in sync code before an event loop exists; its
``aiohttp.ClientSession`` is created by :meth:`AiohttpRequest.initialize` inside the running loop (PTB
calls it from ``Bot.initialize``) and closed by :meth:`AiohttpRequest.shutdown`; initialize -> shutdown
-> initialize works. Before ``initialize`` (and after ``shutdown``) requests raise ``RuntimeError``.

It behaves like PTB's own ``HTTPXRequest`` (telegram/request/_httpxrequest.py):

* same constructor arguments and defaults, except ``connection_pool_size`` (32 here, 256 there),
  ``http_version`` (aiohttp speaks HTTP/1.1 only) and ``httpx_kwargs``;
* the timeouts a caller passes override the instance's; ``BaseRequest.DEFAULT_NONE`` (any
  ``DefaultValue``) means "the instance's", an explicit ``None`` means "no timeout";
* uploads use ``media_write_timeout`` unless the caller passed a write timeout;
* plain requests are sent form-encoded, uploads as ``multipart/form-data`` with the parts encoded
  byte for byte like httpx encodes them (``http_upload.py``: aiohttp's own ``FormData`` would
  percent-encode file names, and Telegram would show ``my%20report.pdf``);
* a timeout raises ``telegram.error.TimedOut`` (waiting for a free connection with HTTPXRequest's
  "Pool timeout: ..." message), any other transport error ``NetworkError("aiohttp.<Error>: ...")``;
* redirects are not followed; TLS certificates are checked against certifi's bundle (or
  ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``), as httpx does, not against the system's store;
* proxies: ``proxy=`` (HTTP or HTTPS proxies only; aiohttp has no SOCKS), else the environment
  (``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY``, ``NO_PROXY``), read when the session is created, as
  httpx reads it when its client is created. aiohttp's own ``trust_env=True`` is not used: it reads
  the environment and ``~/.netrc`` again, in worker threads, on every request -- measured with 200
  concurrent sendMessage calls against a local server: +0.23 ms of CPU per request, -38% requests/s.

How the timeouts map onto aiohttp:

* ``pool_timeout``: the time to wait for one of the ``connection_pool_size`` slots. The slots are an
  ``asyncio.Semaphore`` in front of aiohttp's connector (whose ``limit`` and ``limit_per_host`` are the
  same size, so the connector itself never makes a request wait). A separate wait is what lets pool
  exhaustion -- the request was *not* sent -- be told apart from a slow connect, as httpx does.
  aiohttp's ``ClientTimeout.connect`` alone would cover both with one timer and one exception.
* ``connect_timeout``: ``ClientTimeout.connect`` (a new connection: DNS, TCP, proxy, TLS) and
  ``ClientTimeout.sock_connect`` (each TCP connect attempt).
* ``read_timeout``: ``ClientTimeout.sock_read``, the longest silence while waiting for the response,
  started once the request is sent (httpx: the longest wait for one read from the socket).
* ``write_timeout`` / ``media_write_timeout``: aiohttp has no write timeout. For uploads this module
  bounds every write of the body to the connection, like httpx: a file given as ``bytes`` (PTB's
  default) is one write, so the whole file must be handed to the kernel within the timeout; a file
  handle (``InputFile(..., read_file_handle=False)``) is written in chunks of 64 KiB, each within it.
  Plain requests are a few KiB, which the socket buffer takes at once: neither library can time out
  writing them, so no timer is set for them.
* ``total`` is ``None``: no bound on the whole request, as with httpx.
* aiohttp rounds a connect timeout of 5 s or more up to the next full second of the event loop's
  clock (``ClientTimeout.ceil_threshold``), so it may fire up to 1 s late.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import socket
import ssl
import urllib.request
from collections.abc import Callable, Collection
from typing import Any, Final

import aiohttp
import certifi
from aiohttp import hdrs
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData
from yarl import URL

from advisor.channels.http_upload import Upload, multipart

__all__ = ["POOL_TIMEOUT_MESSAGE", "AiohttpRequest"]

log = logging.getLogger(__name__)

POOL_TIMEOUT_MESSAGE: Final[str] = (
    "Pool timeout: All connections in the connection pool are occupied. Request was *not* sent to "
    "Telegram. Consider adjusting the connection pool size or the pool timeout."
)
# aiohttp gives a POST without a body "Content-Type: application/octet-stream"; httpx sends none.
NO_CONTENT_TYPE: Final[tuple[str, ...]] = (hdrs.CONTENT_TYPE,)
PROXY_SCHEMES: Final[frozenset[str]] = frozenset({"http", "https"})
# The Bot API answers in kilobytes (100 updates of getUpdates, a file's metadata); a reply larger than
# this is not Telegram's, and reading it whole would let whoever sits in between fill the memory.
MAX_RESPONSE_BYTES: Final[int] = 16 << 20


async def _read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The body, refused (NetworkError) once it passes ``limit`` bytes, declared or not."""
    declared = response.content_length
    if declared is not None and declared > limit:
        raise NetworkError(f"the Bot API's answer is {declared} bytes, over the {limit} this bot reads")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > limit:
            raise NetworkError(f"the Bot API's answer passed the {limit} bytes this bot reads")
        chunks.append(chunk)
    return b"".join(chunks)


# python-telegram-bot's own names for these live in its private telegram._utils; the public API gives
# the sentinel (BaseRequest.DEFAULT_NONE), and so its class, and the shapes are written out here.
DefaultValue = type(BaseRequest.DEFAULT_NONE)  # what a caller who passed nothing passes
ODVInput = Any  # a value, DefaultValue (the instance's), or None (no limit)
SocketOpt = tuple[int, int, int | bytes] | tuple[int, int, None, int]  # as socket.setsockopt takes it


def _ssl_context() -> ssl.SSLContext:
    """The SSL context httpx builds by default (httpx.create_ssl_context with trust_env=True)."""
    if cafile := os.environ.get("SSL_CERT_FILE"):
        return ssl.create_default_context(cafile=cafile)
    if capath := os.environ.get("SSL_CERT_DIR"):
        return ssl.create_default_context(capath=capath)
    return ssl.create_default_context(cafile=certifi.where())


def _socket_factory(options: Collection[SocketOpt]) -> Callable[[Any], socket.socket]:
    """A socket factory for aiohttp's TCPConnector that sets ``options`` (``setsockopt`` arguments)."""

    def factory(addr_info: Any) -> socket.socket:
        family, kind, proto = addr_info[0], addr_info[1], addr_info[2]
        sock = socket.socket(family=family, type=kind, proto=proto)
        try:
            for option in options:
                sock.setsockopt(*option)
        except BaseException:
            sock.close()
            raise
        return sock

    return factory


def _proxy_url(proxy: str | URL) -> URL:
    url = URL(proxy if isinstance(proxy, URL) or "://" in proxy else f"http://{proxy}")
    if url.scheme not in PROXY_SCHEMES:
        raise ValueError(f"aiohttp supports only HTTP and HTTPS proxies, not {str(url)!r}")
    return url


def _bypasses_proxy(scheme: str, host: str, no_proxy: str) -> bool:
    """Whether ``NO_PROXY`` (comma-separated) exempts ``host`` from the proxy, read as httpx reads it:
    ``*`` exempts every host; ``example.com`` it and its subdomains; ``.example.com`` its subdomains;
    an IP address or ``localhost`` only itself; ``http://example.com`` it, for ``http://`` only."""
    host = host.lower()
    for entry in no_proxy.lower().split(","):
        entry_scheme, _, entry = entry.strip().rpartition("://")
        entry = entry.strip("[]")
        if entry == "*":
            return True
        if not entry or (entry_scheme and entry_scheme != scheme):
            continue
        if entry.startswith("."):
            if host.endswith(entry):
                return True
        elif host == entry or (not _is_address(entry) and host.endswith(f".{entry}")):
            return True
    return False


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host == "localhost"
    return True


class AiohttpRequest(BaseRequest):
    """A :class:`telegram.request.BaseRequest` on aiohttp; see the module's docstring.

    Args:
        connection_pool_size: how many requests may be in flight at once: the number of slots, and
            aiohttp's connector's ``limit`` and ``limit_per_host``.
        read_timeout: seconds to wait for (each part of) the response, ``None`` for ever.
        write_timeout: seconds for each write of the body of a request without files (it cannot
            fire for those few KiB, with httpx neither; see the module), and of an upload whose caller
            passed ``write_timeout``.
        connect_timeout: seconds to open a new connection (DNS, TCP, proxy and TLS).
        pool_timeout: seconds to wait for a free slot when all ``connection_pool_size`` are in use;
            then ``TimedOut`` with the "Pool timeout" message, and the request was not sent.
        socket_options: ``setsockopt`` arguments for every new socket, as for ``HTTPXRequest``.
        proxy: ``"http://[user:password@]host:port"`` or an ``https://`` one. Without it the
            environment's ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``ALL_PROXY`` / ``NO_PROXY`` apply.
        media_write_timeout: seconds for each write of an upload's body, unless the caller passed
            ``write_timeout``.
    """

    __slots__ = (
        "_client_timeout",
        "_connect_timeout",
        "_connection_pool_size",
        "_env_proxies",
        "_media_write_timeout",
        "_pool_timeout",
        "_proxy",
        "_proxy_cache",
        "_read_timeout",
        "_session",
        "_slots",
        "_socket_options",
        "_ssl_context",
        "_write_timeout",
        "max_response_bytes",
    )

    def __init__(
        self,
        connection_pool_size: int = 32,
        read_timeout: float | None = 5.0,
        write_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        pool_timeout: float | None = 1.0,
        socket_options: Collection[SocketOpt] | None = None,
        proxy: str | URL | None = None,
        media_write_timeout: float | None = 20.0,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        if connection_pool_size < 1:
            raise ValueError("connection_pool_size must be at least 1")
        self._connection_pool_size = connection_pool_size
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._connect_timeout = connect_timeout
        self._pool_timeout = pool_timeout
        self._media_write_timeout = media_write_timeout
        self.max_response_bytes = max_response_bytes
        self._socket_options = tuple(socket_options) if socket_options else ()
        self._proxy = _proxy_url(proxy) if proxy is not None else None
        self._ssl_context = _ssl_context()
        self._client_timeout = self._make_client_timeout(connect_timeout, read_timeout)
        self._session: aiohttp.ClientSession | None = None
        self._slots: asyncio.Semaphore | None = None
        self._env_proxies: dict[str, str] = {}
        self._proxy_cache: dict[tuple[str, str | None, int | None], URL | None] = {}

    @property
    def read_timeout(self) -> float | None:
        """The default read timeout in seconds, as passed to the constructor (see BaseRequest)."""
        return self._read_timeout

    @staticmethod
    def _make_client_timeout(connect: float | None, read: float | None) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(total=None, connect=connect, sock_connect=connect, sock_read=read)

    async def initialize(self) -> None:
        """Create the ClientSession (in the running event loop), unless it is open already."""
        if self._session is not None and not self._session.closed:
            return
        connector = aiohttp.TCPConnector(
            limit=self._connection_pool_size,
            limit_per_host=self._connection_pool_size,
            ssl=self._ssl_context,
            socket_factory=_socket_factory(self._socket_options) if self._socket_options else None,
        )
        self._slots = asyncio.Semaphore(self._connection_pool_size)
        self._env_proxies = {} if self._proxy is not None else urllib.request.getproxies()
        self._proxy_cache = {}
        # trust_env stays False: the environment's proxies are read here, once (see the module).
        self._session = aiohttp.ClientSession(connector=connector, headers={hdrs.USER_AGENT: self.USER_AGENT})

    async def shutdown(self) -> None:
        """Close the ClientSession and its connections; a later initialize() opens a new one."""
        if self._session is None or self._session.closed:
            log.debug("This AiohttpRequest is already shut down. Returning.")
            return
        await self._session.close()

    def _proxy_for(self, url: URL) -> URL | None:
        """The proxy for ``url``: ``proxy=``, else the environment's (as httpx resolves them)."""
        if self._proxy is not None or not self._env_proxies:
            return self._proxy
        key = (url.scheme, url.host, url.port)
        if key in self._proxy_cache:
            return self._proxy_cache[key]
        proxy: URL | None = None
        found = self._env_proxies.get(url.scheme) or self._env_proxies.get("all")
        if found and not _bypasses_proxy(url.scheme, url.host or "", self._env_proxies.get("no", "")):
            try:
                proxy = _proxy_url(found)
            except ValueError as error:
                log.warning("Ignoring the proxy from the environment: %s", error)
        self._proxy_cache[key] = proxy
        return proxy

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """See :meth:`telegram.request.BaseRequest.do_request`. Returns (HTTP status, body)."""
        session, slots = self._session, self._slots
        if session is None or slots is None or session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")

        files = request_data.multipart_data if request_data is not None and request_data.contains_files else None
        data = request_data.json_parameters if request_data is not None else None

        # What the caller did not pass (a DefaultValue) is this instance's; None means no timeout.
        if isinstance(read_timeout, DefaultValue):
            read_timeout = self._read_timeout
        if isinstance(connect_timeout, DefaultValue):
            connect_timeout = self._connect_timeout
        if isinstance(pool_timeout, DefaultValue):
            pool_timeout = self._pool_timeout
        if isinstance(write_timeout, DefaultValue):
            write_timeout = self._media_write_timeout if files else self._write_timeout

        if read_timeout == self._read_timeout and connect_timeout == self._connect_timeout:
            timeout = self._client_timeout
        else:
            timeout = self._make_client_timeout(connect_timeout, read_timeout)

        # Like httpx: files -> multipart/form-data; parameters -> form-encoded; none -> no body (no Content-Type).
        body = Upload(multipart(data or {}, files), write_timeout) if files else data or None
        skip_headers = NO_CONTENT_TYPE if body is None else None

        target = URL(url)
        proxy = self._proxy_for(target)

        if slots.locked():
            try:
                async with asyncio.timeout(pool_timeout):
                    await slots.acquire()
            except TimeoutError as error:
                raise TimedOut(message=POOL_TIMEOUT_MESSAGE) from error
        else:
            await slots.acquire()
        try:
            async with session.request(
                method,
                target,
                data=body,
                timeout=timeout,
                proxy=proxy,
                allow_redirects=False,
                skip_auto_headers=skip_headers,
            ) as response:
                return response.status, await _read_capped(response, self.max_response_bytes)
        except TimeoutError as error:  # aiohttp's timeouts are TimeoutErrors (and ClientErrors)
            raise TimedOut from error
        except (aiohttp.ClientError, OSError) as error:
            raise NetworkError(f"aiohttp.{type(error).__name__}: {error}") from error
        finally:
            slots.release()
