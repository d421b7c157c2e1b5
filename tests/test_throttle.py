"""What keeps the dashboard standing before sign-in (advisor/channels/throttle.py), with small limits.

A real ``CappedHTTPServer`` on 127.0.0.1 in this test's event loop; clients connect from other loopback
addresses (127.0.0.2, ...) to be other people. Token windows are a second here (a minute in production).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from tornado.testing import bind_unused_port
from tornado.web import Application, RequestHandler

from advisor.channels import throttle
from advisor.channels.review import build_review_app
from advisor.channels.throttle import LIMITS, CappedHTTPServer, Guesses

TOKEN = "throttle-token-for-tests-0123456789"
FAST = 0.3  # "at once": well under the one-second window
WAITED = 0.8  # "waited for the window"


class Hello(RequestHandler):
    def get(self) -> None:
        self.write("hello")


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., tuple[CappedHTTPServer, int]]]:
    """serve(app=None, **options) -> (server, port): a CappedHTTPServer on 127.0.0.1."""
    made: list[CappedHTTPServer] = []

    def start(app: Application | None = None, **options: Any) -> tuple[CappedHTTPServer, int]:
        sock, port = bind_unused_port()
        server = CappedHTTPServer(app or Application([(r"/", Hello)]), **{**LIMITS, **options})
        server.add_sockets([sock])
        made.append(server)
        return server, port

    yield start
    for server in made:
        server.stop()
        await server.close_all_connections()


async def hold(port: int, source: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """An idle connection from ``source`` (what the attacker kept ~130 of)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    await asyncio.sleep(0.02)  # the server's loop (this one) accepts it
    return reader, writer


async def closed_at_once(reader: asyncio.StreamReader) -> bool:
    try:
        return await asyncio.wait_for(reader.read(), 0.5) == b""
    except TimeoutError:
        return False  # still open: nobody closed it
    except ConnectionError:
        return True


async def answered(port: int, source: str) -> bool:
    """A GET from ``source`` gets its 200."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        await writer.drain()
        reply = await asyncio.wait_for(reader.read(), 2.0)
        writer.close()
    except (ConnectionError, TimeoutError):
        return False
    return reply.startswith(b"HTTP/1.1 200")


async def closed(held: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]) -> list[bool]:
    """Which of ``held`` the server closed at once (all checked together: the idle timeout is 10 s)."""
    return list(await asyncio.gather(*(closed_at_once(reader) for reader, _ in held)))


def close(held: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]) -> None:
    for _reader, writer in held:
        writer.close()


# -- connections ---------------------------------------------------------------------------------
async def test_one_address_cannot_take_every_connection(serve):
    server, port = serve(max_connections=8, max_per_address=3)
    mine = [await hold(port, "127.0.0.2") for _ in range(3)]
    more = [await hold(port, "127.0.0.2") for _ in range(20)]  # the attack: more than the whole pool
    assert await closed(more) == [True] * 20
    assert await closed(mine) == [False] * 3  # the first three are kept
    assert await answered(port, "127.0.0.3")  # someone else still gets in
    assert server.peers == {"127.0.0.2": 3}
    # the overall cap still holds: 3 + 3 + 2 = 8 open, the 9th (from a fourth address) is closed
    others = [await hold(port, "127.0.0.3") for _ in range(3)] + [await hold(port, "127.0.0.4") for _ in range(2)]
    assert await closed_at_once((await hold(port, "127.0.0.5"))[0])
    close(others)
    # a connection that ends gives its address its slot back, and the table forgets empty addresses
    close(mine[:1])
    await asyncio.sleep(0.1)
    assert await answered(port, "127.0.0.2")
    close(mine[1:])
    close(more)
    await asyncio.sleep(0.1)
    assert server.peers == {}


@pytest.mark.parametrize("behind_proxy", [False, True])
async def test_the_cap_per_address_is_off_behind_a_proxy_where_every_connection_is_the_proxys(serve, behind_proxy):
    app = Application([(r"/", Hello)], behind_proxy=behind_proxy)
    _server, port = serve(app, max_connections=40)  # the default cap per address: 16
    held = [await hold(port, "127.0.0.2") for _ in range(20)]
    assert sum(await closed(held)) == (0 if behind_proxy else 20 - throttle.MAX_PER_ADDRESS)
    close(held)


def test_ipv6_addresses_of_one_network_share_a_cap_and_a_throttle():
    assert throttle.address_key("2001:db8:1:2:aaaa::1") == throttle.address_key("2001:db8:1:2:bbbb::9")
    assert throttle.address_key("2001:db8:1:2::1") != throttle.address_key("2001:db8:1:3::1")
    assert throttle.address_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert throttle.address_key("192.0.2.7") == "192.0.2.7"
    assert throttle.address_key("not an address") == "not an address"


# -- token checks --------------------------------------------------------------------------------
def checker(correct: bool, calls: list[bool] | None = None) -> Callable[[], bool]:
    def right() -> bool:
        if calls is not None:
            calls.append(correct)
        return correct
    return right


async def timed(call: Awaitable[Any]) -> tuple[Any, float]:
    start = time.monotonic()
    result = await call
    return result, time.monotonic() - start


async def test_the_right_token_is_not_delayed_while_other_addresses_and_its_own_guess():
    guesses = Guesses(per_address=2, overall=4, window=1.0)
    for _ in range(2):  # 127.0.0.2 uses up its own budget
        assert await guesses.judge("127.0.0.2", checker(False)) is False
    for _ in range(2):  # 127.0.0.3 uses up what is left of the overall one
        assert await guesses.judge("127.0.0.3", checker(False)) is False
    waiting = [asyncio.create_task(guesses.judge(a, checker(False))) for a in ("127.0.0.3", "127.0.0.4")]
    await asyncio.sleep(0.05)
    # the right token, from the address that guessed and from one that never did: at once
    for address in ("127.0.0.2", "127.0.0.9"):
        right, took = await timed(guesses.judge(address, checker(True)))
        assert right is True and took < FAST
    # while guessing is still held to the budget: the wrong ones waited for the window
    start = time.monotonic()
    assert await asyncio.gather(*waiting) == [False, False]
    assert time.monotonic() - start >= WAITED - 0.05


async def test_an_address_has_its_checks_judged_one_at_a_time_and_a_right_token_waits_its_turn():
    guesses = Guesses(per_address=1, overall=100, window=1.0)
    assert await guesses.judge("127.0.0.2", checker(False)) is False
    start = time.monotonic()
    pending = asyncio.create_task(guesses.judge("127.0.0.2", checker(False)))  # waits for the window
    await asyncio.sleep(0.05)
    assert guesses.pending == 1
    calls: list[bool] = []
    behind = asyncio.create_task(guesses.judge("127.0.0.2", checker(True, calls)))  # the right token, same NAT
    await asyncio.sleep(0.2)
    assert calls == [] and not behind.done()  # not judged while the guess ahead of it waits: nothing learnt early
    right, took = await timed(guesses.judge("127.0.0.3", checker(True)))  # another address: at once
    assert right is True and took < FAST
    assert await pending is False
    assert await behind is True and calls == [True]  # then its turn: in, never refused
    assert time.monotonic() - start < 1.0 + FAST
    assert guesses.pending == 0
    await asyncio.sleep(1.05)
    assert guesses.addresses == 0  # the tables are pruned as the window passes


async def test_past_the_queue_an_address_gets_busy_at_once_unjudged(monkeypatch):
    monkeypatch.setattr(throttle, "MAX_QUEUE", 2)
    guesses = Guesses(per_address=1, overall=100, window=1.0)
    assert await guesses.judge("127.0.0.2", checker(False)) is False
    waiting = [asyncio.create_task(guesses.judge("127.0.0.2", checker(False))) for _ in range(2)]
    await asyncio.sleep(0.05)
    calls: list[bool] = []
    with pytest.raises(throttle.Busy) as busy:
        await asyncio.wait_for(guesses.judge("127.0.0.2", checker(True, calls)), FAST)
    assert calls == [] and 0 < busy.value.retry_after <= 1.0
    assert await asyncio.gather(*waiting) == [False, False]


async def test_a_check_that_ends_any_way_leaves_no_pending_entry():
    guesses = Guesses(per_address=1, overall=100, window=1.0)
    assert await guesses.judge("127.0.0.2", checker(False)) is False
    task = asyncio.create_task(guesses.judge("127.0.0.2", checker(False)))
    await asyncio.sleep(0.05)
    task.cancel()  # what an abandoned request could do; tornado lets prepare() run on
    with pytest.raises(asyncio.CancelledError):
        await task
    # (tornado does not cancel it when the client hangs up: see the last test over HTTP)
    assert guesses.pending == 0


# -- through the dashboard ------------------------------------------------------------------------
@pytest.fixture
async def dashboard(service, serve) -> AsyncIterator[Callable[[str], httpx.AsyncClient]]:
    """client(source_address) -> an httpx client of the dashboard (3 wrong tokens a second, 100 overall)."""
    guesses = Guesses(per_address=3, overall=100, window=1.0)
    _server, port = serve(build_review_app(service, TOKEN, guesses=guesses))
    clients: list[httpx.AsyncClient] = []

    def client(source: str, token: str | None = None) -> httpx.AsyncClient:
        made = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", follow_redirects=False, timeout=10,
                                 transport=httpx.AsyncHTTPTransport(local_address=source),
                                 headers={"Authorization": f"Bearer {token}"} if token else {})
        clients.append(made)
        return made

    client.port = port  # type: ignore[attr-defined]
    yield client
    for made in clients:
        await made.aclose()


async def sign_in(client: httpx.AsyncClient, token: str) -> httpx.Response:
    page = await client.get("/login")
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
    assert xsrf, page.text
    return await client.post("/login", data={"token": token, "_xsrf": xsrf.group(1), "next": "/"})


async def test_over_http_the_right_token_gets_in_at_once_and_from_a_guessing_address_after_its_turn(dashboard):
    guesser = dashboard("127.0.0.2", token="wrong")
    for _ in range(3):
        response, took = await timed(guesser.get("/export.csv"))
        assert response.status_code == 401 and took < FAST
    # 127.0.0.2 guesses on (every fourth of its guesses waits for the window) ...
    pending = asyncio.create_task(guesser.get("/export.csv"))
    await asyncio.sleep(0.1)
    # ... a reviewer elsewhere is not held up at all, with the form or with Bearer: in before the guess
    response = await sign_in(dashboard("127.0.0.3"), TOKEN)
    assert response.status_code == 302 and not pending.done()
    response = await dashboard("127.0.0.4", token=TOKEN).get("/export.csv")
    assert response.status_code == 200 and not pending.done()
    # a reviewer behind the guesser's address (a shared NAT) waits for the guess ahead, then gets in
    response = await dashboard("127.0.0.2", token=TOKEN).get("/export.csv")
    assert response.status_code == 200 and pending.done()  # judged after the guess, never refused
    assert (await pending).status_code == 401
    response = await sign_in(dashboard("127.0.0.2"), TOKEN)
    assert response.status_code == 302


async def test_over_http_a_guess_whose_connection_is_closed_still_holds_its_address_until_answered(dashboard):
    guesser = dashboard("127.0.0.2", token="wrong")
    for _ in range(3):
        assert (await guesser.get("/export.csv")).status_code == 401
    _reader, writer = await asyncio.open_connection("127.0.0.1", dashboard.port, local_addr=("127.0.0.2", 0))
    writer.write(b"GET /export.csv HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong-4\r\n\r\n")
    await writer.drain()
    await asyncio.sleep(0.1)  # no answer at once: wrong, so the guesser hangs up and tries the next
    writer.close()
    response, took = await timed(dashboard("127.0.0.2", token="wrong-5").get("/export.csv"))
    # not judged before the abandoned guess is answered: hanging up does not buy a faster next guess
    assert response.status_code == 401 and took > 0.5
    await asyncio.sleep(1.0)
    assert (await dashboard("127.0.0.2", token=TOKEN).get("/export.csv")).status_code == 200
