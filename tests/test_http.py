"""AiohttpRequest (advisor/channels/http.py) over real sockets on 127.0.0.1 only.

Two local servers stand in for Telegram: a tornado Bot API (answers like Telegram, echoes what it
received, parses uploads with tornado's own multipart parser, holds a request as long as a test wants)
and a bare asyncio TCP server (never reads, hangs up, resets, or answers as an HTTP proxy would).
Most tests go through the real python-telegram-bot stack: ``telegram.Bot(..., request=AiohttpRequest())``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dtm
import io
import json
import shutil
import socket
import ssl
import subprocess
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, InputMediaPhoto, Message
from telegram.error import BadRequest, NetworkError, RetryAfter, TimedOut
from telegram.ext import ApplicationBuilder
from telegram.request import BaseRequest, HTTPXRequest
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application, RequestHandler

from advisor.channels.http import POOL_TIMEOUT_MESSAGE, AiohttpRequest, _bypasses_proxy

TOKEN = "123456:TEST-token"
CHAT = 42
BOT_USER = {"id": 123456, "is_bot": True, "first_name": "Advisor", "username": "advisor_bot"}
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")
GUARD = 3.0  # seconds: a test whose timeout does not fire fails after this, instead of hanging


@pytest.fixture(autouse=True)
def no_proxy_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests talk to 127.0.0.1 directly, whatever proxies the machine running them has set."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


# ------------------------------------------------------------------ the tornado Bot API


@dataclass
class Received:
    method: str
    headers: dict[str, str]
    fields: dict[str, str]
    files: dict[str, tuple[str, bytes, str]]  # name -> (file name, content, content type)


@dataclass
class BotApi:
    scheme: str = "http"
    port: int = 0
    requests: list[Received] = field(default_factory=list)
    held: asyncio.Event = field(default_factory=asyncio.Event)  # a "hold" request has arrived
    release: asyncio.Event = field(default_factory=asyncio.Event)  # let "hold" requests answer

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/bot"

    def bot(self, **request: Any) -> Bot:
        return Bot(TOKEN, base_url=self.base_url, request=AiohttpRequest(**request),
                   get_updates_request=AiohttpRequest(connection_pool_size=1))

    def last(self, method: str) -> Received:
        return [received for received in self.requests if received.method == method][-1]


class BotApiHandler(RequestHandler):
    """POST /bot<token>/<method>. sendMessage's text decides how it answers: "bad" -> 400,
    "flood" -> 429, "hold" -> waits for BotApi.release, "pause" -> answers after 0.4 s.
    "moved" redirects (302) to getMe, which a GET gets too."""

    def initialize(self, api: BotApi) -> None:
        self.api = api

    async def post(self, token: str, method: str) -> None:
        fields = {name: values[0].decode() for name, values in self.request.body_arguments.items()}
        files = {name: (upload[0].filename, upload[0].body, upload[0].content_type)
                 for name, upload in self.request.files.items()}
        self.api.requests.append(Received(method, dict(self.request.headers), fields, files))
        if token != TOKEN:
            return self.refuse(401, "Unauthorized")
        text = fields.get("text", "")
        if text == "bad":
            return self.refuse(400, "Bad Request: chat not found")
        if text == "flood":
            return self.refuse(429, "Too Many Requests: retry after 3", parameters={"retry_after": 3})
        if text == "hold":
            self.api.held.set()
            await self.api.release.wait()
        elif text == "pause":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.api.release.wait(), 0.4)
        if method == "getMe":
            return self.answer(BOT_USER)
        if method == "moved":
            return self.redirect(f"/bot{TOKEN}/getMe")
        if method == "huge":  # an answer no Bot API gives: 20 MiB, streamed without a length
            self.set_header("Content-Type", "application/json")
            for _ in range(20):
                self.write(b" " * (1 << 20))
                await self.flush()
            return self.finish(b'{"ok": true, "result": true}')
        if method == "echo":
            return self.answer({"fields": fields, "files": {name: upload[0] for name, upload in files.items()}})
        message: dict[str, Any] = {"message_id": len(self.api.requests), "date": 1_760_000_000,
                                   "chat": {"id": int(fields["chat_id"]), "type": "private"}}
        if method == "sendMessage":
            return self.answer({**message, "text": text})
        if method == "sendDocument":
            [(filename, content, content_type)] = files.values()
            document = {"file_id": "F1", "file_unique_id": "U1", "file_name": filename, "mime_type": content_type,
                        "file_size": len(content)}
            return self.answer({**message, "document": document, "caption": fields.get("caption")})
        return self.refuse(404, "Not Found")

    async def get(self, token: str, method: str) -> None:
        self.api.requests.append(Received(method, dict(self.request.headers), {}, {}))
        self.answer(BOT_USER)

    def answer(self, result: Any) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"ok": True, "result": result}))

    def refuse(self, status: int, description: str, **extra: Any) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"ok": False, "error_code": status, "description": description, **extra}))


@contextlib.asynccontextmanager
async def serve_bot_api(tls: ssl.SSLContext | None = None) -> AsyncIterator[BotApi]:
    api = BotApi(scheme="https" if tls else "http")
    sockets = bind_sockets(0, "127.0.0.1")
    api.port = sockets[0].getsockname()[1]
    server = HTTPServer(Application([(r"/bot([^/]+)/(\w+)", BotApiHandler, {"api": api})]), ssl_options=tls)
    server.add_sockets(sockets)
    try:
        yield api
    finally:
        api.release.set()
        await asyncio.sleep(0.01)  # held handlers answer (into connections the client may have closed)
        server.stop()
        await server.close_all_connections()


@pytest.fixture
async def api() -> AsyncIterator[BotApi]:
    async with serve_bot_api() as api:
        yield api


# ------------------------------------------------------------------ the bare TCP server


class RawProtocol(asyncio.Protocol):
    def __init__(self, server: RawServer) -> None:
        self.server = server
        self.buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server.transports.append(transport)
        if self.server.mode == "stall":
            transport.pause_reading()  # reads nothing: an upload fills the socket buffers and stops

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if b"\r\n\r\n" not in self.buffer or self.transport.is_closing():
            return
        self.server.heads.append(self.buffer.split(b"\r\n\r\n", 1)[0])
        if self.server.mode == "close":
            self.transport.close()
        elif self.server.mode == "reset":
            self.transport.abort()
        elif self.server.mode == "answer":
            body = json.dumps({"ok": True, "result": BOT_USER}).encode()
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
            self.transport.close()


@dataclass
class RawServer:
    mode: str  # "stall", "close" (hang up without an answer), "reset" (RST), "answer" (getMe, as a proxy)
    port: int = 0
    heads: list[bytes] = field(default_factory=list)
    transports: list[asyncio.Transport] = field(default_factory=list)


@pytest.fixture
async def raw(request: pytest.FixtureRequest) -> AsyncIterator[RawServer]:
    server = RawServer(request.param)
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)  # no autotuning to many MiB
    listener.bind(("127.0.0.1", 0))
    server.port = listener.getsockname()[1]
    tcp = await asyncio.get_running_loop().create_server(lambda: RawProtocol(server), sock=listener)
    yield server
    for transport in server.transports:
        transport.abort()
    tcp.close()
    await tcp.wait_closed()
    await asyncio.sleep(0.01)  # the client's side sees the reset and closes too


# ------------------------------------------------------------------ a recorder of raw requests

Captured = tuple[bytes, dict[str, str], bytes]  # request line, headers (names lower-cased), body


@dataclass
class Capture:
    port: int = 0
    requests: list[Captured] = field(default_factory=list)


@pytest.fixture
async def capture() -> AsyncIterator[Capture]:
    """Records every request as it came over the wire (keep-alive, Content-Length bodies) and answers
    getMe with the bot and anything else with a message."""
    recorder = Capture()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                line, *lines = (await reader.readuntil(b"\r\n\r\n"))[:-4].split(b"\r\n")
                headers = {}
                for header in lines:
                    name, _, value = header.decode().partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                recorder.requests.append((line, headers, body))
                message = {"message_id": 1, "date": 1_760_000_000, "chat": {"id": CHAT, "type": "private"}}
                result = BOT_USER if b"/getMe " in line else [message] if b"/sendMediaGroup " in line else message
                answer = json.dumps({"ok": True, "result": result}).encode()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                             % (len(answer), answer))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    recorder.port = server.sockets[0].getsockname()[1]
    yield recorder
    server.close()
    await server.wait_closed()


def without_boundary(*requests: Captured) -> tuple[Captured, ...]:
    """The requests with their (random) multipart boundary replaced by BOUNDARY."""
    replaced = []
    for line, headers, body in requests:
        boundary = headers.get("content-type", "").partition("boundary=")[2]
        if boundary:
            headers = {**headers, "content-type": headers["content-type"].replace(boundary, "BOUNDARY")}
            body = body.replace(boundary.encode(), b"BOUNDARY")
        replaced.append((line, headers, body))
    return tuple(replaced)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def refused(error: NetworkError) -> bool:
    """A transport error, reported like HTTPXRequest reports them ("httpx.ConnectError: ...")."""
    return not isinstance(error, TimedOut) and error.message.startswith("aiohttp.")


# ------------------------------------------------------------------ answers


async def test_send_message_returns_the_message_telegram_answered(api: BotApi) -> None:
    async with api.bot() as bot:
        assert bot.username == "advisor_bot"
        message = await bot.send_message(CHAT, "Hello, wörld & co")
    assert isinstance(message, Message)
    assert (message.chat.id, message.text) == (CHAT, "Hello, wörld & co")
    sent = api.last("sendMessage")
    assert sent.fields == {"chat_id": "42", "text": "Hello, wörld & co"}
    assert sent.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert sent.headers["User-Agent"] == BaseRequest.USER_AGENT
    get_me = api.last("getMe")  # no parameters: no body, as httpx sends it
    assert get_me.fields == {}
    assert "Content-Type" not in get_me.headers


async def test_parameters_arrive_as_form_fields_json_encoded_like_httpx_sends_them(api: BotApi) -> None:
    async with api.bot() as bot:
        echoed = await bot.do_api_request(
            "echo", api_kwargs={"chat_id": CHAT, "text": "a=b&c d", "flag": True, "markup": {"rows": [[1, 2]]}}
        )
    assert echoed == {"fields": {"chat_id": "42", "text": "a=b&c d", "flag": "true", "markup": '{"rows": [[1, 2]]}'},
                      "files": {}}


async def test_a_document_of_bytes_arrives_as_multipart_with_its_file_name(api: BotApi) -> None:
    content = b"%PDF-1.7\n" + bytes(range(256)) * 4
    async with api.bot() as bot:
        message = await bot.send_document(CHAT, InputFile(content, filename="отчёт за май 2026.pdf"), caption="Отчёт")
    assert message.document is not None
    assert message.document.file_name == "отчёт за май 2026.pdf"  # not percent-encoded, as aiohttp's FormData would
    sent = api.last("sendDocument")
    assert sent.files == {"document": ("отчёт за май 2026.pdf", content, "application/pdf")}
    assert sent.fields == {"chat_id": "42", "caption": "Отчёт"}
    assert sent.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert int(sent.headers["Content-Length"]) > len(content)  # a length, not chunked
    assert "Transfer-Encoding" not in sent.headers


async def test_requests_are_byte_for_byte_what_httpxrequest_sends(capture: Capture) -> None:
    """The same calls through PTB's HTTPXRequest and through AiohttpRequest, captured off the wire."""
    photo = InputFile(b"\x89PNG\r\n--not-a-boundary", filename="chart.png", attach=True)
    media = [InputMediaPhoto(photo, caption="1"), InputMediaPhoto(InputFile(b"GIF89a", filename="b.gif", attach=True))]
    handle = io.BytesIO(b"from a file handle")

    async def calls(request: BaseRequest) -> list[Captured]:
        capture.requests.clear()
        async with Bot(TOKEN, base_url=f"http://127.0.0.1:{capture.port}/bot", request=request) as bot:
            await bot.send_message(CHAT, "Hello & wörld", reply_markup=InlineKeyboardMarkup.from_button(
                InlineKeyboardButton("Да", callback_data="a:1:q:0")))
            await bot.send_document(CHAT, InputFile(b"DATA\r\n", filename='my "rep"\\ort\t ü.pdf'), caption="Отчёт")
            await bot.send_document(CHAT, InputFile(handle, filename="notes.txt", read_file_handle=False))
            await bot.send_media_group(CHAT, media)
        return list(capture.requests)

    expected, got = await calls(HTTPXRequest()), await calls(AiohttpRequest())
    assert [line for line, _, _ in got] == [line for line, _, _ in expected] == [
        b"POST /bot123456:TEST-token/%s HTTP/1.1" % method
        for method in (b"getMe", b"sendMessage", b"sendDocument", b"sendDocument", b"sendMediaGroup")
    ]
    for (_, got_headers, got_body), (_, headers, body) in map(without_boundary, got, expected):
        assert got_body == body
        for name in ("content-type", "content-length", "transfer-encoding", "user-agent"):
            assert got_headers.get(name) == headers.get(name), name
    assert got[2][1]["content-type"].startswith("multipart/form-data; boundary=")
    assert not got[2][1]["content-type"].endswith("boundary=BOUNDARY")
    disposition = 'Content-Disposition: form-data; name="document"; filename="my %22rep%22\\\\ort%09 ü.pdf"'
    assert f"{disposition}\r\nContent-Type: application/pdf\r\n\r\nDATA\r\n".encode() in got[2][2]


async def test_escape_and_delete_in_a_file_name_are_percent_encoded(api: BotApi) -> None:
    """httpx sends them raw; aiohttp refuses them in a header (header injection), so they are encoded."""
    async with api.bot() as bot:
        await bot.send_document(CHAT, InputFile(b"x", filename="a\x1bb\x7f.txt"))
    assert api.last("sendDocument").files["document"][0] == "a%1Bb%7F.txt"


async def test_a_file_handle_is_sent_from_its_start_and_left_open(api: BotApi, tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    path.write_bytes(b"name,phone\n" * 10_000)
    async with api.bot() as bot:
        with path.open("rb") as handle:
            handle.read(5)
            for _ in range(2):  # httpx leaves it open, and sends it from its start each time
                await bot.send_document(CHAT, InputFile(handle, filename="leads.csv", read_file_handle=False))
                await asyncio.sleep(0.05)  # aiohttp itself would close it, from a worker thread
                assert not handle.closed
        memory = io.BytesIO(b"in memory")
        await bot.send_document(CHAT, InputFile(memory, filename="notes.txt", read_file_handle=False))
        assert not memory.closed
    uploads = [received.files["document"] for received in api.requests if received.method == "sendDocument"]
    assert uploads == [("leads.csv", path.read_bytes(), "text/csv")] * 2 + [("notes.txt", b"in memory", "text/plain")]


async def test_a_large_upload_arrives_whole_without_a_resource_warning(api: BotApi) -> None:
    content = bytes(range(256)) * (12 << 10)  # 3 MiB
    async with api.bot() as bot:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            await bot.send_document(CHAT, InputFile(content, filename="video.mp4"))
    assert api.last("sendDocument").files["document"] == ("video.mp4", content, "video/mp4")
    assert [str(warning.message) for warning in caught if issubclass(warning.category, ResourceWarning)] == []


# ------------------------------------------------------------------ Telegram's refusals


async def test_400_raises_bad_request_with_telegrams_description(api: BotApi) -> None:
    async with api.bot() as bot:
        with pytest.raises(BadRequest) as refused_:
            await bot.send_message(CHAT, "bad")
    assert refused_.value.message == "Chat not found"


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_429_raises_retry_after(api: BotApi) -> None:
    async with api.bot() as bot:
        with pytest.raises(RetryAfter) as limited:
            await bot.send_message(CHAT, "flood")
    assert limited.value.retry_after in (3, dtm.timedelta(seconds=3))


async def test_an_answer_over_16_mib_is_refused_not_read_whole(api: BotApi) -> None:
    async with api.bot() as bot:
        with pytest.raises(NetworkError) as refused:
            await bot.do_api_request("huge")
    assert "16777216 bytes" in refused.value.message


async def test_redirects_are_not_followed(api: BotApi) -> None:
    async with api.bot() as bot:
        with pytest.raises(NetworkError) as moved:
            await bot.do_api_request("moved")
    assert moved.value.message.startswith("Found (302)")
    assert [received.method for received in api.requests] == ["getMe", "moved"]


# ------------------------------------------------------------------ timeouts


async def test_a_server_slower_than_the_read_timeout_raises_timed_out(api: BotApi) -> None:
    async with api.bot(read_timeout=0.2) as bot:
        with pytest.raises(TimedOut) as timed_out:
            async with asyncio.timeout(GUARD):
                await bot.send_message(CHAT, "hold")
        assert timed_out.value.message == "Timed out"
        assert (await bot.send_message(CHAT, "still there")).text == "still there"


async def test_a_timeout_passed_to_the_call_overrides_the_default(api: BotApi) -> None:
    async with api.bot(read_timeout=5.0) as bot:
        with pytest.raises(TimedOut):
            async with asyncio.timeout(GUARD):
                await bot.send_message(CHAT, "hold", read_timeout=0.2)


async def test_a_read_timeout_of_none_passed_to_the_call_means_no_timeout(api: BotApi) -> None:
    async with api.bot(read_timeout=0.1) as bot:
        assert (await bot.send_message(CHAT, "pause", read_timeout=None)).text == "pause"
        with pytest.raises(TimedOut):
            await bot.send_message(CHAT, "pause")


async def test_all_connections_busy_raises_timed_out_with_the_pool_message(api: BotApi) -> None:
    async with api.bot(connection_pool_size=1, pool_timeout=0.1, read_timeout=5.0) as bot:
        first = asyncio.create_task(bot.send_message(CHAT, "hold"))
        await api.held.wait()
        with pytest.raises(TimedOut) as timed_out:
            async with asyncio.timeout(GUARD):
                await bot.send_message(CHAT, "second")
        assert timed_out.value.message == POOL_TIMEOUT_MESSAGE
        assert timed_out.value.message.startswith("Pool timeout: All connections in the connection pool are occupied")
        assert [received.fields.get("text") for received in api.requests] == [None, "hold"]  # not sent
        api.release.set()
        assert (await first).text == "hold"
        assert (await bot.send_message(CHAT, "third")).text == "third"  # the connection is free again


async def test_a_request_waits_for_a_free_connection_within_the_pool_timeout(api: BotApi) -> None:
    async with api.bot(connection_pool_size=1, pool_timeout=None, read_timeout=5.0) as bot:
        first = asyncio.create_task(bot.send_message(CHAT, "hold"))
        await api.held.wait()
        second = asyncio.create_task(bot.send_message(CHAT, "second"))
        await asyncio.sleep(0.05)
        assert not second.done()
        api.release.set()
        assert [(await first).text, (await second).text] == ["hold", "second"]


@pytest.mark.parametrize("raw", ["stall"], indirect=True)
@pytest.mark.parametrize(("defaults", "call"), [({"media_write_timeout": 0.2, "write_timeout": 60.0}, {}),
                                                ({"media_write_timeout": 60.0}, {"write_timeout": 0.2})],
                         ids=["media_write_timeout", "write_timeout-of-the-call"])
async def test_an_upload_the_server_does_not_read_raises_timed_out(
    raw: RawServer, defaults: dict[str, float], call: dict[str, float]
) -> None:
    async with AiohttpRequest(**defaults) as request:
        bot = Bot(TOKEN, base_url=f"http://127.0.0.1:{raw.port}/bot", request=request)
        with pytest.raises(TimedOut):
            async with asyncio.timeout(GUARD):
                await bot.send_document(CHAT, InputFile(bytes(32 << 20), filename="big.bin"), **call)


# ------------------------------------------------------------------ transport errors


async def test_a_refused_connection_raises_network_error() -> None:
    async with AiohttpRequest() as request:
        bot = Bot(TOKEN, base_url=f"http://127.0.0.1:{closed_port()}/bot", request=request)
        with pytest.raises(NetworkError) as failed:
            await bot.send_message(CHAT, "hello")
    assert refused(failed.value)
    assert failed.value.message.startswith("aiohttp.ClientConnectorError: ")


@pytest.mark.parametrize("raw", ["close", "reset"], indirect=True)
async def test_a_server_hanging_up_raises_network_error(raw: RawServer) -> None:
    async with AiohttpRequest() as request:
        bot = Bot(TOKEN, base_url=f"http://127.0.0.1:{raw.port}/bot", request=request)
        with pytest.raises(NetworkError) as failed:
            await bot.send_message(CHAT, "hello")
    assert refused(failed.value)
    assert raw.heads[0].startswith(b"POST /bot123456:TEST-token/sendMessage HTTP/1.1\r\n")


async def test_socket_options_are_set_on_the_connections_sockets(api: BotApi) -> None:
    async with api.bot(socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]) as bot:
        assert (await bot.send_message(CHAT, "hello")).text == "hello"
    bogus_option = (socket.SOL_SOCKET, 0x7BAD, 1)  # the kernel refuses it: proof the options are applied
    async with AiohttpRequest(socket_options=[bogus_option]) as request:
        bot = Bot(TOKEN, base_url=api.base_url, request=request)
        with pytest.raises(NetworkError) as failed:
            await bot.send_message(CHAT, "hello")
    assert refused(failed.value)


# ------------------------------------------------------------------ TLS


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (made by the openssl command)."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


async def test_tls_certificates_are_checked_against_certifi_or_ssl_cert_file(
    certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(*certificate)
    async with serve_bot_api(tls) as api:
        with pytest.raises(NetworkError) as untrusted:
            async with api.bot():
                pass
        assert refused(untrusted.value)
        assert "certificate verify failed" in untrusted.value.message
        monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))  # read when the request is built, as httpx
        async with api.bot() as bot:
            assert (await bot.send_message(CHAT, "over TLS")).text == "over TLS"


# ------------------------------------------------------------------ proxies


@pytest.mark.parametrize("raw", ["answer"], indirect=True)
async def test_the_proxy_from_the_environment_is_used(raw: RawServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{raw.port}")
    nowhere = f"http://127.0.0.1:{closed_port()}/bot"  # refuses a direct connection
    async with Bot(TOKEN, base_url=nowhere, request=AiohttpRequest()) as bot:
        assert bot.username == "advisor_bot"
    assert raw.heads[0].startswith(f"POST {nowhere}{TOKEN}/getMe HTTP/1.1\r\n".encode())


@pytest.mark.parametrize("raw", ["answer"], indirect=True)
async def test_a_proxy_argument_overrides_the_environment(raw: RawServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALL_PROXY", f"http://127.0.0.1:{closed_port()}")
    nowhere = f"http://127.0.0.1:{closed_port()}/bot"
    async with Bot(TOKEN, base_url=nowhere, request=AiohttpRequest(proxy=f"127.0.0.1:{raw.port}")) as bot:
        assert bot.username == "advisor_bot"
    assert raw.heads[0].startswith(f"POST {nowhere}{TOKEN}/getMe HTTP/1.1\r\n".encode())


async def test_no_proxy_in_the_environment_is_honoured(api: BotApi, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(NetworkError) as failed:
        async with api.bot():
            pass
    assert refused(failed.value)  # the (closed) proxy was used
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    async with api.bot() as bot:
        assert (await bot.send_message(CHAT, "direct")).text == "direct"


@pytest.mark.parametrize(("scheme", "host", "no_proxy", "bypassed"), [
    ("https", "api.telegram.org", "", False),
    ("https", "api.telegram.org", "*", True),
    ("https", "api.telegram.org", "example.com, telegram.org", True),
    ("https", "telegram.org", "telegram.org", True),
    ("https", "faketelegram.org", "telegram.org", False),
    ("https", "api.telegram.org", ".telegram.org", True),
    ("https", "telegram.org", ".telegram.org", False),
    ("https", "API.Telegram.org", "api.telegram.ORG", True),
    ("https", "10.0.0.1", "10.0.0.1", True),
    ("https", "10.0.0.12", "10.0.0.1", False),
    ("https", "::1", "[::1]", True),
    ("http", "api.telegram.org", "http://api.telegram.org", True),
    ("https", "api.telegram.org", "http://api.telegram.org", False),
])
def test_no_proxy_entries_are_read_as_httpx_reads_them(scheme: str, host: str, no_proxy: str, bypassed: bool) -> None:
    assert _bypasses_proxy(scheme, host, no_proxy) is bypassed


def test_only_http_and_https_proxies_are_accepted() -> None:
    with pytest.raises(ValueError, match="socks5"):
        AiohttpRequest(proxy="socks5://127.0.0.1:1080")
    AiohttpRequest(proxy="https://127.0.0.1:3128")


# ------------------------------------------------------------------ life cycle


def test_it_is_built_in_sync_code_before_an_event_loop_exists() -> None:
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        application = (ApplicationBuilder().token(TOKEN)
                       .request(AiohttpRequest(connection_pool_size=32))
                       .get_updates_request(AiohttpRequest(connection_pool_size=1, read_timeout=10.0))
                       .build())
    assert isinstance(application.bot.request, AiohttpRequest)
    assert application.bot.request.read_timeout == 5.0


async def test_initialize_shutdown_initialize(api: BotApi) -> None:
    bot = api.bot()
    for text in ("first run", "second run"):
        async with bot:
            assert (await bot.send_message(CHAT, text)).text == text
    request = bot.request
    await request.shutdown()  # again: nothing happens
    with pytest.raises(RuntimeError, match="not initialized"):
        await request.do_request(f"{api.base_url}{TOKEN}/getMe", "POST")
    await request.initialize()
    await request.initialize()  # again: harmless
    assert (await bot.send_message(CHAT, "third run")).text == "third run"
    await request.shutdown()


async def test_using_it_before_initialize_raises_runtime_error(api: BotApi) -> None:
    request = AiohttpRequest()
    with pytest.raises(RuntimeError, match="This AiohttpRequest is not initialized!"):
        await request.do_request(f"{api.base_url}{TOKEN}/getMe", "POST")
    assert api.requests == []


def test_read_timeout_is_the_default_passed_to_the_constructor() -> None:
    assert AiohttpRequest().read_timeout == 5.0
    assert AiohttpRequest(read_timeout=None).read_timeout is None
    assert AiohttpRequest(read_timeout=0.5).read_timeout == 0.5
