"""A fake Telegram Bot API server for tests, using only the standard library.

It speaks the same HTTP protocol as ``api.telegram.org``, so a real python-telegram-bot
``Application`` talks to it unchanged::

    with FakeBotAPI() as fake:
        app = (ApplicationBuilder().token(fake.token)
               .base_url(f"{fake.url}/bot").base_file_url(f"{fake.url}/file/bot").build())
        ...
        fake.send_text(42, "/start")                  # a user writes to the bot
        msg = fake.wait_for_message(42, contains="Hi")  # what the bot answered
        fake.press(42, msg["message_id"], "yes")        # the user presses a button

How the fake behaves (and where it differs from Telegram):

* Every request is ``POST {url}/bot{token}/{method}`` (GET with a query string works too),
  form-encoded, JSON, or multipart for uploads. A different token gets 401 "Unauthorized",
  an unknown method 404 "Not Found". Method names are case-insensitive, as on Telegram.
* Values arrive as strings; the fake decodes them by *field*, like Telegram does: a message
  text of ``"true"`` or ``"42"`` stays a string, while ``reply_markup`` and ``commands`` are
  JSON-decoded and ``chat_id``/``message_id`` become ints.
* It refuses what Telegram refuses, with Telegram's status codes and descriptions, and records
  every refusal in :attr:`FakeBotAPI.refusals`. HTML (``parse_mode="HTML"``) is checked with a
  port of TDLib's parser, so unknown tags, unclosed or misnested tags and ``<br>`` are refused
  with Telegram's own wording. One deliberate difference: with ``strict_html_entities=True``
  (the default) a named entity other than ``&lt; &gt; &amp; &quot;`` (e.g. ``&nbsp;``) is
  refused, while real Telegram would silently show it literally -- which is a bug either way.
  Markdown parse modes are accepted without validation.
* Only chats the fake knows of exist: a chat becomes known when a user writes in it
  (:meth:`send_text` and friends) or through :meth:`add_chat`. Others get "chat not found".
* ``getUpdates`` follows Telegram: updates below ``offset`` are confirmed and dropped,
  unconfirmed ones are delivered again, a long poll waits up to ``timeout`` seconds and wakes
  as soon as an update is pushed, and a newer ``getUpdates`` ends an older one with
  409 Conflict (recorded in :attr:`conflicts`, not in :attr:`refusals`: PTB's own shutdown
  abandons a long poll and then polls once more, which produces exactly this).
* :attr:`calls` holds the calls that were *accepted* (refused ones are in :attr:`refusals`,
  everything is in :attr:`requests`), so ``wait_for`` only ever sees what really happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import json
import re
import socket
import string
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, urlsplit

__all__ = [
    "NOT_MODIFIED",
    "QUERY_TOO_OLD",
    "Call",
    "FakeBotAPI",
    "HtmlParseError",
    "Refusal",
    "Request",
    "UploadedFile",
    "parse_html",
    "texts",
    "utf16_length",
]

DEFAULT_TOKEN = "123456:TEST-token"
MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_DATA_BYTES = 64
MAX_CALLBACK_ANSWER_LENGTH = 200
RATE_LIMITED_METHODS = frozenset({"sendMessage", "editMessageText", "sendDocument"})

NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
QUERY_TOO_OLD = "Bad Request: query is too old and response timeout expired or query ID is invalid"
CONFLICT_OTHER_POLL = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
)
CONFLICT_WEBHOOK = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"
)

CHAT_ACTIONS = frozenset({
    "typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice",
    "upload_document", "choose_sticker", "find_location", "record_video_note", "upload_video_note",
})
INLINE_BUTTON_KINDS = (
    "callback_data", "url", "web_app", "login_url", "switch_inline_query", "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat", "copy_text", "callback_game", "pay",
)
# update types Telegram leaves out unless they are asked for in allowed_updates
NOT_DELIVERED_BY_DEFAULT = frozenset({"chat_member", "message_reaction", "message_reaction_count"})

# How string form values are decoded, by field name (Telegram decodes by the field's type too).
_JSON_FIELDS = frozenset({
    "reply_markup", "commands", "scope", "allowed_updates", "entities", "caption_entities",
    "link_preview_options", "reply_parameters", "suggested_post_parameters", "media", "results",
    "options", "permissions", "menu_button", "rights",
})
_INT_FIELDS = frozenset({
    "message_id", "offset", "limit", "message_thread_id", "user_id", "cache_time", "max_connections",
    "direct_messages_topic_id", "reply_to_message_id", "from_chat_id",
})
_FLOAT_FIELDS = frozenset({"timeout"})
_BOOL_FIELDS = frozenset({
    "disable_notification", "protect_content", "show_alert", "drop_pending_updates",
    "disable_web_page_preview", "allow_sending_without_reply", "allow_paid_broadcast",
    "disable_content_type_detection", "is_personal",
})


class Call(NamedTuple):
    """An accepted Bot API call: the canonical method name and its decoded parameters."""

    method: str
    params: dict[str, Any]


class Refusal(NamedTuple):
    """A refused Bot API call, with the description Telegram would give."""

    method: str
    description: str
    params: dict[str, Any]


class Request(NamedTuple):
    """Any request the fake received, whatever became of it."""

    method: str
    params: dict[str, Any]
    status: int
    description: str | None


class UploadedFile(NamedTuple):
    """A file part of a multipart request."""

    filename: str
    content: bytes
    mime_type: str


class _ApiError(Exception):
    def __init__(self, code: int, description: str, parameters: dict[str, Any] | None = None):
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters


def _bad(description: str) -> _ApiError:
    return _ApiError(400, f"Bad Request: {description}")


# --------------------------------------------------------------------------------------------
# Telegram's HTML: a port of TDLib's parse_html (td/telegram/MessageEntity.cpp)
# --------------------------------------------------------------------------------------------


class HtmlParseError(ValueError):
    """The text is not HTML that Telegram accepts; the message is Telegram's wording."""


def utf16_length(text: str) -> int:
    """Length in UTF-16 code units, the unit of every Telegram length limit and entity offset."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


_HTML_TAGS = frozenset({
    "a", "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "code", "pre", "blockquote",
    "tg-spoiler", "tg-emoji", "span",
})
_SPACES = frozenset(" \t\r\n\0\v\f")
_ALPHA = frozenset(string.ascii_letters)
_DIGITS = frozenset(string.digits)
_HEX = frozenset(string.hexdigits)
_NAME_TOKEN = frozenset(string.ascii_letters + string.digits + ".-")
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_LOOKS_LIKE_NAMED_ENTITY = re.compile(r"&[A-Za-z][A-Za-z0-9]*;")
_SIMPLE_ENTITY_TYPES = {
    "b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline", "ins": "underline",
    "s": "strikethrough", "strike": "strikethrough", "del": "strikethrough", "tg-spoiler": "spoiler",
    "span": "spoiler",
}


def _decode_html_entity(s: str, pos: int) -> tuple[str | None, int]:
    """Decode the character reference at ``s[pos] == "&"``; ``s`` ends with a NUL sentinel."""
    end = pos + 1
    if s[end] == "#":
        end += 1
        value = 0
        if s[end] == "x":
            end += 1
            while s[end] in _HEX:
                value = value * 16 + int(s[end], 16)
                end += 1
        else:
            while s[end] in _DIGITS:
                value = value * 10 + int(s[end])
                end += 1
        if value == 0 or value >= 0x10FFFF or end - pos >= 10:
            return None, pos
        if 0xD800 <= value <= 0xDFFF:
            raise HtmlParseError(
                "Text contains invalid Unicode characters after decoding HTML entities, "
                "check for unmatched surrogate code units"
            )
        char = chr(value)
    else:
        while s[end] in _ALPHA:
            end += 1
        char = _NAMED_ENTITIES.get(s[pos + 1 : end])
        if char is None:
            return None, pos
    if s[end] == ";":
        end += 1
    return char, end


@dataclass
class _OpenTag:
    tag: str
    argument: str
    utf16_offset: int
    out_position: int


def _close_entity(tag: _OpenTag, length: int, out: list[str], entities: list[dict[str, Any]]) -> None:
    offset = tag.utf16_offset
    entity: dict[str, Any] | None
    if tag.tag in _SIMPLE_ENTITY_TYPES:
        entity = {"type": _SIMPLE_ENTITY_TYPES[tag.tag]}
    elif tag.tag == "tg-emoji":
        entity = {"type": "custom_emoji", "custom_emoji_id": tag.argument} if tag.argument else None
    elif tag.tag == "blockquote":
        entity = {"type": "expandable_blockquote" if tag.argument else "blockquote"}
    elif tag.tag == "a":
        url = tag.argument or "".join(out[tag.out_position :])
        mention = re.fullmatch(r"tg://user\?id=(\d+)", url)
        if mention:
            entity = {"type": "text_mention", "user": {"id": int(mention.group(1)), "is_bot": False, "first_name": ""}}
        else:
            entity = {"type": "text_link", "url": url} if url else None
    elif tag.tag == "pre":
        last = entities[-1] if entities else None
        same_span = last is not None and (last["offset"], last["length"]) == (offset, length)
        if last and same_span and last["type"] == "code" and last.get("_lang"):
            last["type"] = "pre"
            last["language"] = last.pop("_lang")
            return
        entity = {"type": "pre"}
    else:  # code
        last = entities[-1] if entities else None
        if last and last["type"] == "pre" and (last["offset"], last["length"]) == (offset, length) and tag.argument:
            last["language"] = tag.argument
            return
        entity = {"type": "code", "_lang": tag.argument} if tag.argument else {"type": "code"}
    if entity is not None:
        entities.append({**entity, "offset": offset, "length": length})


def parse_html(text: str, *, strict_entities: bool = True) -> tuple[str, list[dict[str, Any]]]:
    """Parse Telegram-flavoured HTML into (visible text, entities), refusing what Telegram refuses.

    Raises :class:`HtmlParseError` with the message Telegram puts after "can't parse entities: ".
    With ``strict_entities`` a named entity Telegram does not know (``&nbsp;``) is refused too.
    """
    s = text + "\0"
    n = len(text)
    out: list[str] = []
    entities: list[dict[str, Any]] = []
    stack: list[_OpenTag] = []
    utf16 = 0

    def at(i: int) -> int:
        return len(text[:i].encode("utf-8", "surrogatepass"))

    i = 0
    while i < n:
        c = s[i]
        if c == "&":
            char, end = _decode_html_entity(s, i)
            if char is not None:
                out.append(char)
                utf16 += utf16_length(char)
                i = end
                continue
            bad = _LOOKS_LIKE_NAMED_ENTITY.match(text, i) if strict_entities else None
            if bad:
                raise HtmlParseError(f'Unsupported HTML entity "{bad.group(0)}" at byte offset {at(i)}')
        if c != "<":
            out.append(c)
            utf16 += 2 if ord(c) > 0xFFFF else 1
            i += 1
            continue

        begin = i
        i += 1
        if s[i] != "/":
            while s[i] not in _SPACES and s[i] != ">":
                i += 1
            if i >= n:
                raise HtmlParseError(f"Unclosed start tag at byte offset {at(begin)}")
            tag = s[begin + 1 : i].lower()
            if tag not in _HTML_TAGS:
                raise HtmlParseError(f'Unsupported start tag "{tag}" at byte offset {at(begin)}')
            argument = ""
            while s[i] != ">":
                while i < n and s[i] in _SPACES:
                    i += 1
                if s[i] == ">":
                    break
                name_begin = i
                while s[i] not in _SPACES and s[i] not in "=>":
                    i += 1
                name = s[name_begin:i].lower()
                if not name:
                    raise HtmlParseError(f'Empty attribute name in the tag "{tag}" at byte offset {at(begin)}')
                while i < n and s[i] in _SPACES:
                    i += 1
                if s[i] != "=":
                    if tag == "blockquote" and name == "expandable":
                        argument = "expandable"
                        continue
                    raise HtmlParseError(
                        f'Expected equal sign in declaration of an attribute of the tag "{tag}" '
                        f"at byte offset {at(begin)}"
                    )
                i += 1
                while i < n and s[i] in _SPACES:
                    i += 1
                if i >= n:
                    raise HtmlParseError(f'Unclosed start tag "{tag}" at byte offset {at(begin)}')
                if s[i] not in "'\"":
                    token_begin = i
                    while s[i] in _NAME_TOKEN:
                        i += 1
                    value = s[token_begin:i].lower()
                    if s[i] not in _SPACES and s[i] != ">":
                        raise HtmlParseError(f"Unexpected end of name token at byte offset {at(token_begin)}")
                else:
                    quote = s[i]
                    i += 1
                    chars: list[str] = []
                    while i < n and s[i] != quote:
                        if s[i] == "&":
                            char, end = _decode_html_entity(s, i)
                            if char is not None:
                                chars.append(char)
                                i = end
                                continue
                        chars.append(s[i])
                        i += 1
                    if s[i] == quote:
                        i += 1
                    value = "".join(chars)
                if i >= n:
                    raise HtmlParseError(f"Unclosed start tag at byte offset {at(begin)}")
                if tag == "a" and name == "href":
                    argument = value
                elif tag == "code" and name == "class" and value.startswith("language-"):
                    argument = value[len("language-") :]
                elif tag == "span" and name == "class" and value.startswith("tg-"):
                    argument = value[len("tg-") :]
                elif tag == "tg-emoji" and name == "emoji-id":
                    argument = value
            if tag == "span" and argument != "spoiler":
                raise HtmlParseError(f'Tag "span" must have class "tg-spoiler" at byte offset {at(begin)}')
            stack.append(_OpenTag(tag, argument, utf16, len(out)))
        else:
            if not stack:
                raise HtmlParseError(f"Unexpected end tag at byte offset {at(begin)}")
            while s[i] not in _SPACES and s[i] != ">":
                i += 1
            end_tag = s[begin + 2 : i].lower()
            while i < n and s[i] in _SPACES:
                i += 1
            if s[i] != ">":
                raise HtmlParseError(f"Unclosed end tag at byte offset {at(begin)}")
            open_tag = stack[-1]
            if end_tag and end_tag != open_tag.tag:
                raise HtmlParseError(
                    f'Unmatched end tag at byte offset {at(begin)}, expected "</{open_tag.tag}>", found "</{end_tag}>"'
                )
            if utf16 > open_tag.utf16_offset:
                _close_entity(open_tag, utf16 - open_tag.utf16_offset, out, entities)
            stack.pop()
        i += 1  # past '>'

    if stack:
        raise HtmlParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1].tag}"')
    for entity in entities:
        entity.pop("_lang", None)
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


# --------------------------------------------------------------------------------------------
# Request decoding
# --------------------------------------------------------------------------------------------


def _decode_value(name: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if name in _JSON_FIELDS:
        try:
            return json.loads(value)
        except ValueError:
            if name == "reply_markup":
                raise _bad("can't parse reply keyboard markup JSON object") from None
            raise _bad(f"can't parse {name} JSON object") from None
    if name == "chat_id":
        return int(value) if re.fullmatch(r"-?\d+", value.strip()) else value
    if name in _INT_FIELDS and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    if name in _FLOAT_FIELDS:
        try:
            number = float(value)
        except ValueError:
            return value
        return int(number) if number.is_integer() else number
    if name in _BOOL_FIELDS and value in ("true", "false"):
        return value == "true"
    return value


def _disposition_param(disposition: str, name: str) -> str | None:
    match = re.search(rf'(?:^|;)\s*{name}="((?:[^"\\]|\\.)*)"', disposition)
    if match is None:
        match = re.search(rf"(?:^|;)\s*{name}=([^;]*)", disposition)
        return match.group(1).strip() if match else None
    # httpx escapes '"' as %22, control characters as %XX and '\' as '\\'
    value = re.sub(r"%(22|[01][0-9A-F])", lambda m: chr(int(m.group(1), 16)), match.group(1))
    return value.replace("\\\\", "\\")


def _parse_multipart(body: bytes, content_type: str) -> tuple[dict[str, str], dict[str, UploadedFile]]:
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if match is None:
        raise _bad("can't parse multipart/form-data request: no boundary")
    delimiter = b"--" + match.group(1).encode("latin-1")
    fields: dict[str, str] = {}
    files: dict[str, UploadedFile] = {}
    for part in body.split(delimiter)[1:]:
        if part.startswith(b"--"):
            break
        part = part.removeprefix(b"\r\n")
        head, _, content = part.partition(b"\r\n\r\n")
        content = content.removesuffix(b"\r\n")
        headers: dict[str, str] = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        disposition = headers.get("content-disposition", "")
        name = _disposition_param(disposition, "name")
        if not name:
            continue
        filename = _disposition_param(disposition, "filename")
        if filename is None:
            fields[name] = content.decode("utf-8", "replace")
        else:
            files[name] = UploadedFile(filename, content, headers.get("content-type", "application/octet-stream"))
    return fields, files


# --------------------------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------------------------


@dataclass
class _Message:
    message_id: int
    from_bot: bool
    user_id: int | None
    date: int
    kind: str  # text | document | contact
    text: str | None = None  # as sent (HTML source for the bot's messages), caption for documents
    plain: str = ""  # what the user sees
    entities: list[dict[str, Any]] = field(default_factory=list)
    parse_mode: str | None = None
    reply_markup: dict[str, Any] | None = None
    edit_date: int | None = None
    document: dict[str, Any] | None = None
    content: bytes | None = None
    contact: dict[str, Any] | None = None
    reply_to: int | None = None


@dataclass
class _Chat:
    info: dict[str, Any]
    messages: dict[int, _Message] = field(default_factory=dict)
    next_message_id: int = 1
    blocked: bool = False
    actions: list[str] = field(default_factory=list)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeBotAPI):
        self.fake = fake
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        # headers and body go out in separate writes: without this, Nagle's algorithm meets the
        # client's delayed ACK and every call takes ~40 ms
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.sockets_lock:
            self.open_sockets.add(sock)
        return sock, address

    def shutdown_request(self, request: Any) -> None:
        with self.sockets_lock:
            self.open_sockets.discard(request)
        super().shutdown_request(request)

    def close_open_sockets(self) -> None:
        with self.sockets_lock:
            sockets = list(self.open_sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # a client that hung up (an abandoned long poll, a stopped bot) is not an error
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_POST(self) -> None:
        self.server.fake._serve(self)

    do_GET = do_POST

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def reply(self, status: int, payload: dict[str, Any]) -> None:
        try:
            body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate, as Telegram sends it: escaped ("\ud800")
            body = json.dumps(payload).encode("ascii")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
        except OSError:
            self.close_connection = True


# --------------------------------------------------------------------------------------------
# The fake
# --------------------------------------------------------------------------------------------


class FakeBotAPI:
    """A Telegram Bot API server on 127.0.0.1 (a free port), running in a background thread.

    It starts serving on construction; :meth:`stop` (or leaving the ``with`` block) shuts it
    down. All public methods are thread-safe and may be called from the test while the bot
    runs. Blocking waits have ``*_async`` twins for use inside an asyncio test.
    """

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        username: str = "advisor_test_bot",
        latency: float = 0.0,
        max_messages_per_second: int | None = None,
        *,
        first_name: str = "Advisor Test Bot",
        strict_html_entities: bool = True,
    ):
        """Start serving at once on 127.0.0.1 and a free port (see :attr:`url`).

        ``latency`` seconds are added to every call. With ``max_messages_per_second`` = N, a
        sendMessage/editMessageText/sendDocument call gets 429 (``retry_after`` = 1) when N such
        calls were already accepted within the last second; refused calls do not count.
        """
        self.token = token
        self.username = username
        self.latency = latency
        self.clock_offset = 0.0  # seconds added to the fake's clock (message dates, the 48-hour rule)
        # called with (method, params) before a call is carried out: a test acts at an exact moment
        self.before_call: Callable[[str, dict[str, Any]], None] | None = None
        self.max_messages_per_second = max_messages_per_second
        self.strict_html_entities = strict_html_entities
        bot_id = token.split(":", 1)[0]
        self.bot_user: dict[str, Any] = {
            "id": int(bot_id) if bot_id.isdigit() else 123456,
            "is_bot": True,
            "first_name": first_name,
            "username": username,
        }

        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._stopped = threading.Event()
        self._active = 0  # requests being handled

        self._calls: list[Call] = []
        self._requests: list[Request] = []
        self._refusals: list[Refusal] = []
        self._conflicts: list[Call] = []
        self._too_many_requests = 0
        self._rate_window: deque[float] = deque()

        self._chats: dict[int, _Chat] = {}
        self._users: dict[int, dict[str, Any]] = {}
        self._pending: list[dict[str, Any]] = []
        self._all_updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(700_000_001)
        self._query_ids = itertools.count(4_200_000_000_001)
        self._file_ids = itertools.count(1)
        self._poller: object | None = None
        self._allowed_updates: list[str] | None = None
        self._webhook_url = ""
        self._open_queries: dict[str, dict[str, Any]] = {}
        self._answered: dict[str, dict[str, Any]] = {}
        self._commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._files: dict[str, tuple[str, bytes, str]] = {}

        self._methods: dict[str, tuple[str, Callable[[dict[str, Any]], Any]]] = {
            name.lower(): (name, handler)
            for name, handler in {
                "getMe": self._get_me,
                "logOut": lambda params: True,
                "close": lambda params: True,
                "deleteWebhook": self._delete_webhook,
                "setWebhook": self._set_webhook,
                "getWebhookInfo": self._get_webhook_info,
                "getUpdates": self._get_updates,
                "sendMessage": self._send_message,
                "editMessageText": self._edit_message_text,
                "editMessageReplyMarkup": self._edit_message_reply_markup,
                "deleteMessage": self._delete_message,
                "answerCallbackQuery": self._answer_callback_query,
                "sendChatAction": self._send_chat_action,
                "sendDocument": self._send_document,
                "setMyCommands": self._set_my_commands,
                "getMyCommands": self._get_my_commands,
                "deleteMyCommands": self._delete_my_commands,
            }.items()
        }

        self._server = _Server(self)
        self.port: int = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="FakeBotAPI", daemon=True
        )
        self._thread.start()

    # ---------------------------------------------------------------- lifecycle

    def __enter__(self) -> FakeBotAPI:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<FakeBotAPI {self.url} @{self.username}>"

    def stop(self) -> None:
        """Stop serving: pending long polls return at once, open connections are closed."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        with self._cond:
            self._cond.notify_all()
        self._server.shutdown()
        with self._cond:  # let requests in flight (woken long polls) send their reply
            self._cond.wait_for(lambda: self._active == 0, timeout=2)
        self._server.close_open_sockets()
        self._server.server_close()
        self._thread.join(timeout=5)

    @property
    def bot_url(self) -> str:
        """The full base of every method URL, ``{url}/bot{token}``."""
        return f"{self.url}/bot{self.token}"

    # ---------------------------------------------------------------- HTTP

    def _serve(self, handler: _Handler) -> None:
        with self._cond:
            self._active += 1
        try:
            try:
                status, payload = self._respond(handler)
            except Exception as exc:  # a bug in the fake: say so instead of hanging up
                status, payload = self._fail(handler.path, {}, _ApiError(500, f"Internal Server Error: fake {exc!r}"))
            handler.reply(status, payload)
        finally:
            with self._cond:
                self._active -= 1
                self._cond.notify_all()

    def _respond(self, handler: _Handler) -> tuple[int, dict[str, Any]]:
        split = urlsplit(handler.path)
        raw: dict[str, Any] = dict(parse_qsl(split.query, keep_blank_values=True))
        files: dict[str, UploadedFile] = {}
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        content_type = handler.headers.get("Content-Type", "")
        match = re.fullmatch(r"/bot([^/]*)/([A-Za-z0-9_]+)/?", split.path)
        method = match.group(2) if match else split.path
        try:
            if content_type.startswith("multipart/form-data"):
                fields, files = _parse_multipart(body, content_type)
                raw.update(fields)
            elif content_type.startswith("application/json") and body:
                try:
                    decoded = json.loads(body)
                except ValueError:
                    raise _bad("can't parse JSON encoded request") from None
                raw.update(decoded if isinstance(decoded, dict) else {})
            elif body:
                raw.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
            params = {name: _decode_value(name, value) for name, value in raw.items()}
        except _ApiError as error:
            return self._fail(method, dict(raw), error)
        params.update(files)

        if match is None:
            return self._fail(method, params, _ApiError(404, "Not Found"))
        if match.group(1) != self.token:
            return self._fail(method, params, _ApiError(401, "Unauthorized"))
        if self.latency:
            self._stopped.wait(self.latency)
        known = self._methods.get(method.lower())
        if known is None:
            return self._fail(method, params, _ApiError(404, "Not Found"))
        method, implementation = known
        if self.before_call is not None:
            self.before_call(method, params)
        with self._cond:
            try:
                result = implementation(params)
            except _ApiError as error:
                self._record_error(method, params, error)
                payload = self._error_payload(error)
            else:
                if method != "getUpdates":  # getUpdates records itself when it starts waiting
                    self._calls.append(Call(method, params))
                self._requests.append(Request(method, params, 200, None))
                self._cond.notify_all()
                payload = {"ok": True, "result": result}
        return (200 if payload["ok"] else payload["error_code"]), payload

    def _fail(self, method: str, params: dict[str, Any], error: _ApiError) -> tuple[int, dict[str, Any]]:
        with self._cond:
            self._record_error(method, params, error)
        return error.code, self._error_payload(error)

    @staticmethod
    def _error_payload(error: _ApiError) -> dict[str, Any]:
        payload: dict[str, Any] = {"ok": False, "error_code": error.code, "description": error.description}
        if error.parameters:
            payload["parameters"] = error.parameters
        return payload

    def _record_error(self, method: str, params: dict[str, Any], error: _ApiError) -> None:
        self._requests.append(Request(method, params, error.code, error.description))
        if error.code == 429:
            self._too_many_requests += 1
        elif error.code == 409:
            self._conflicts.append(Call(method, params))
        else:
            self._refusals.append(Refusal(method, error.description, params))
        self._cond.notify_all()

    # ---------------------------------------------------------------- helpers (lock held)

    def _now(self) -> int:
        return int(time.time() + self.clock_offset)

    def _chat(self, params: dict[str, Any]) -> tuple[int, _Chat]:
        chat_id = params.get("chat_id")
        if chat_id is None or chat_id == "":
            raise _bad("chat_id is empty")
        chat = self._chats.get(chat_id) if isinstance(chat_id, int) else None
        if chat is None:
            raise _bad("chat not found")
        if chat.blocked:
            raise _ApiError(403, "Forbidden: bot was blocked by the user")
        return chat_id, chat

    def _check_rate(self) -> None:
        if not self.max_messages_per_second:
            return
        now = time.monotonic()
        window = self._rate_window
        while window and now - window[0] >= 1.0:
            window.popleft()
        if len(window) >= self.max_messages_per_second:
            raise _ApiError(429, "Too Many Requests: retry after 1", {"retry_after": 1})
        window.append(now)

    def _render(self, text: Any, parse_mode: Any, entities: Any, *, caption: bool = False) -> tuple[str, list[dict]]:
        """Telegram's checks on a text or caption; returns (visible text, entities)."""
        if caption and (text is None or text == ""):
            return "", []
        if text is None or text == "":
            raise _bad("message text is empty")
        text = str(text)
        mode = str(parse_mode or "").lower()
        if mode == "html":
            try:
                plain, parsed = parse_html(text, strict_entities=self.strict_html_entities)
            except HtmlParseError as error:
                raise _bad(f"can't parse entities: {error}") from None
        elif mode in ("", "markdown", "markdownv2"):
            plain = text
            parsed = [dict(e) for e in entities] if isinstance(entities, list) and not mode else []
        else:
            raise _bad("unsupported parse_mode")
        plain = plain.rstrip()
        if not plain.strip():
            if caption:
                return "", []
            raise _bad("text must be non-empty")
        limit = MAX_CAPTION_LENGTH if caption else MAX_TEXT_LENGTH
        if utf16_length(plain) > limit:
            raise _bad("message caption is too long" if caption else "message is too long")
        return plain, parsed

    def _check_markup(self, markup: Any) -> dict[str, Any] | None:
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise _bad("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in markup:
            rows = markup["inline_keyboard"]
            if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
                raise _bad('field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays')
            for button in itertools.chain.from_iterable(rows):
                if not isinstance(button, dict):
                    raise _bad("can't parse inline keyboard button: InlineKeyboardButton must be an Object")
                text = button.get("text")
                if not isinstance(text, str) or not text.strip():
                    raise _bad("text must be non-empty")
                kinds = [kind for kind in INLINE_BUTTON_KINDS if kind in button]
                if not kinds:
                    raise _bad("can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard")
                if "callback_data" in button:
                    data = button["callback_data"]
                    if not isinstance(data, str) or not 1 <= len(data.encode("utf-8")) <= MAX_CALLBACK_DATA_BYTES:
                        raise _bad("BUTTON_DATA_INVALID")
                if "url" in button:
                    url = button["url"]
                    if not isinstance(url, str) or not re.fullmatch(r"(?i)(https?|tg)://[^\s/$.?#][^\s]*", url):
                        raise _bad(f"inline keyboard button URL '{url}' is invalid: Wrong HTTP URL")
        elif "keyboard" in markup:
            rows = markup["keyboard"]
            if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
                raise _bad('field "keyboard" of the ReplyKeyboardMarkup must be an Array of Arrays')
            for button in itertools.chain.from_iterable(rows):
                text = button.get("text") if isinstance(button, dict) else button
                if not isinstance(text, str) or not text.strip():
                    raise _bad("text must be non-empty")
        elif not ("remove_keyboard" in markup or "force_reply" in markup):
            raise _bad("can't parse reply keyboard markup JSON object")
        return copy.deepcopy(markup)

    def _new_message(self, chat: _Chat, **fields: Any) -> _Message:
        message = _Message(message_id=chat.next_message_id, date=self._now(), **fields)
        chat.next_message_id += 1
        chat.messages[message.message_id] = message
        return message

    def _message_json(self, chat_id: int, message: _Message, *, with_reply: bool = True) -> dict[str, Any]:
        chat = self._chats[chat_id]
        sender = self.bot_user if message.from_bot else self._users.get(message.user_id or chat_id)
        result: dict[str, Any] = {
            "message_id": message.message_id,
            "from": copy.deepcopy(sender),
            "chat": copy.deepcopy(chat.info),
            "date": message.date,
        }
        if message.edit_date is not None:
            result["edit_date"] = message.edit_date
        if with_reply and message.reply_to in chat.messages:
            result["reply_to_message"] = self._message_json(chat_id, chat.messages[message.reply_to], with_reply=False)
        if message.kind == "text":
            result["text"] = message.plain
            if message.entities:
                result["entities"] = copy.deepcopy(message.entities)
        elif message.kind == "document":
            result["document"] = dict(message.document or {})
            if message.plain:
                result["caption"] = message.plain
                if message.entities:
                    result["caption_entities"] = copy.deepcopy(message.entities)
        elif message.kind == "contact":
            result["contact"] = dict(message.contact or {})
        if message.reply_markup and "inline_keyboard" in message.reply_markup:
            result["reply_markup"] = copy.deepcopy(message.reply_markup)
        return result

    def _reply_to(self, chat: _Chat, params: dict[str, Any]) -> int | None:
        reply = params.get("reply_parameters")
        if isinstance(reply, dict):
            target, lenient = reply.get("message_id"), bool(reply.get("allow_sending_without_reply"))
        else:
            target, lenient = params.get("reply_to_message_id"), bool(params.get("allow_sending_without_reply"))
        if target is None:
            return None
        if target not in chat.messages:
            if lenient:
                return None
            raise _bad("message to be replied not found")
        return target

    def _target_message(self, params: dict[str, Any], *, editing: bool) -> tuple[int, _Chat, _Message]:
        if "inline_message_id" in params and "chat_id" not in params:
            raise _bad("MESSAGE_ID_INVALID")
        chat_id, chat = self._chat(params)
        message_id = params.get("message_id")
        if message_id is None or message_id == "":
            raise _bad("message identifier is not specified")
        message = chat.messages.get(message_id) if isinstance(message_id, int) else None
        if message is None:
            raise _bad("message to edit not found" if editing else "message to delete not found")
        if editing and not message.from_bot:
            raise _bad("message can't be edited")
        return chat_id, chat, message

    # ---------------------------------------------------------------- Bot API methods (lock held)

    def _get_me(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def _delete_webhook(self, params: dict[str, Any]) -> bool:
        self._webhook_url = ""
        if params.get("drop_pending_updates"):
            self._pending.clear()
        return True

    def _set_webhook(self, params: dict[str, Any]) -> bool:
        url = str(params.get("url") or "")
        if url and not url.lower().startswith("https://"):
            raise _bad("bad webhook: An HTTPS URL must be provided for webhook")
        self._webhook_url = url
        if params.get("drop_pending_updates"):
            self._pending.clear()
        return True

    def _get_webhook_info(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"url": self._webhook_url, "has_custom_certificate": False, "pending_update_count": len(self._pending)}

    def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        if self._webhook_url:
            raise _ApiError(409, CONFLICT_WEBHOOK)
        offset = params.get("offset")
        limit = params.get("limit", 100)
        timeout = params.get("timeout", 0)
        if not isinstance(offset, int | None) or not isinstance(limit, int):
            raise _bad("wrong parameter offset or limit")
        if not isinstance(timeout, int | float):
            raise _bad("wrong parameter timeout")
        limit = min(max(limit, 1), 100)
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = list(allowed) or None

        me = object()
        self._poller = me  # a newer poll ends an older one with 409
        self._cond.notify_all()
        if offset is not None and offset > 0:
            self._pending = [update for update in self._pending if update["update_id"] >= offset]
        elif offset is not None and offset < 0:
            self._pending = self._pending[offset:]
        self._calls.append(Call("getUpdates", params))
        self._cond.notify_all()

        deadline = time.monotonic() + max(float(timeout), 0.0)
        while True:
            if self._poller is not me:
                raise _ApiError(409, CONFLICT_OTHER_POLL)
            self._pending = [update for update in self._pending if self._deliverable(update)]
            batch = self._pending[:limit]
            remaining = deadline - time.monotonic()
            if batch or remaining <= 0 or self._stopped.is_set():
                break
            self._cond.wait(remaining)
        if self._poller is me:
            self._poller = None
        return copy.deepcopy(batch)

    def _deliverable(self, update: dict[str, Any]) -> bool:
        kinds = [key for key in update if key != "update_id"]
        if self._allowed_updates is None:
            return not any(kind in NOT_DELIVERED_BY_DEFAULT for kind in kinds)
        return any(kind in self._allowed_updates for kind in kinds)

    def _send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id, chat = self._chat(params)
        plain, entities = self._render(params.get("text"), params.get("parse_mode"), params.get("entities"))
        markup = self._check_markup(params.get("reply_markup"))
        reply_to = self._reply_to(chat, params)
        self._check_rate()
        message = self._new_message(
            chat, from_bot=True, user_id=None, kind="text", text=params["text"], plain=plain, entities=entities,
            parse_mode=params.get("parse_mode"), reply_markup=markup, reply_to=reply_to,
        )
        return self._message_json(chat_id, message)

    def _edit_message_text(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id, _chat, message = self._target_message(params, editing=True)
        if message.kind != "text":
            raise _bad("there is no text in the message to edit")
        plain, entities = self._render(params.get("text"), params.get("parse_mode"), params.get("entities"))
        markup = self._check_markup(params.get("reply_markup"))
        if (plain, entities, markup) == (message.plain, message.entities, message.reply_markup):
            raise _bad(NOT_MODIFIED.removeprefix("Bad Request: "))
        self._check_rate()
        message.text, message.plain, message.entities = params["text"], plain, entities
        message.parse_mode, message.reply_markup, message.edit_date = params.get("parse_mode"), markup, self._now()
        return self._message_json(chat_id, message)

    def _edit_message_reply_markup(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id, _chat, message = self._target_message(params, editing=True)
        markup = self._check_markup(params.get("reply_markup"))
        if markup == message.reply_markup:
            raise _bad(NOT_MODIFIED.removeprefix("Bad Request: "))
        message.reply_markup, message.edit_date = markup, self._now()
        return self._message_json(chat_id, message)

    def _delete_message(self, params: dict[str, Any]) -> bool:
        _chat_id, chat, message = self._target_message(params, editing=False)
        if message.date < self._now() - 48 * 3600:  # Telegram: only messages sent in the last 48 hours
            raise _bad("message can't be deleted")
        del chat.messages[message.message_id]
        return True

    def _answer_callback_query(self, params: dict[str, Any]) -> bool:
        query_id = str(params.get("callback_query_id") or "")
        if query_id not in self._open_queries:
            raise _ApiError(400, QUERY_TOO_OLD)
        text = params.get("text")
        if text is not None and len(str(text)) > MAX_CALLBACK_ANSWER_LENGTH:
            raise _bad("MESSAGE_TOO_LONG")
        del self._open_queries[query_id]
        self._answered[query_id] = params
        return True

    def _send_chat_action(self, params: dict[str, Any]) -> bool:
        _chat_id, chat = self._chat(params)
        action = params.get("action")
        if action not in CHAT_ACTIONS:
            raise _bad("wrong parameter action in request")
        chat.actions.append(action)
        return True

    def _send_document(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id, chat = self._chat(params)
        document = params.get("document")
        if isinstance(document, UploadedFile):
            if not document.content:
                raise _bad("file must be non-empty")
            filename, content, mime_type = document
            file_id = None
        elif isinstance(document, str) and document in self._files:
            file_id = document
            filename, content, mime_type = self._files[document]
        elif isinstance(document, str) and document.lower().startswith(("http://", "https://")):
            raise _bad("failed to get HTTP URL content")
        elif document:
            raise _bad("wrong file identifier/HTTP URL specified")
        else:
            raise _bad("there is no document in the request")
        plain, entities = self._render(
            params.get("caption"), params.get("parse_mode"), params.get("caption_entities"), caption=True
        )
        markup = self._check_markup(params.get("reply_markup"))
        reply_to = self._reply_to(chat, params)
        self._check_rate()
        if file_id is None:
            number = next(self._file_ids)
            file_id = f"BQACAgIAAxkDAAI{number:06d}fake"
            self._files[file_id] = (filename, content, mime_type)
        info = {
            "file_name": filename,
            "mime_type": mime_type,
            "file_id": file_id,
            "file_unique_id": f"AgAD{file_id[-10:]}",
            "file_size": len(content),
        }
        message = self._new_message(
            chat, from_bot=True, user_id=None, kind="document", text=params.get("caption"), plain=plain,
            entities=entities, parse_mode=params.get("parse_mode"), reply_markup=markup, document=info,
            content=content, reply_to=reply_to,
        )
        return self._message_json(chat_id, message)

    @staticmethod
    def _commands_key(params: dict[str, Any]) -> tuple[str, str]:
        scope = params.get("scope") or {"type": "default"}
        return json.dumps(scope, sort_keys=True), str(params.get("language_code") or "")

    def _set_my_commands(self, params: dict[str, Any]) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise _bad("can't parse commands JSON object")
        if len(commands) > 100:
            raise _bad("too many commands specified")
        for command in commands:
            if not isinstance(command, dict):
                raise _bad("can't parse BotCommand: BotCommand must be an Object")
            name, description = command.get("command"), command.get("description")
            if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9_]{1,32}", name.removeprefix("/")):
                raise _bad("BOT_COMMAND_INVALID")
            if not isinstance(description, str) or not 1 <= len(description.strip()) <= 256:
                raise _bad("BOT_COMMAND_DESCRIPTION_INVALID")
        self._commands[self._commands_key(params)] = [
            {"command": c["command"].removeprefix("/"), "description": c["description"]} for c in commands
        ]
        return True

    def _get_my_commands(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        return copy.deepcopy(self._commands.get(self._commands_key(params), []))

    def _delete_my_commands(self, params: dict[str, Any]) -> bool:
        self._commands.pop(self._commands_key(params), None)
        return True

    # ---------------------------------------------------------------- driving users (thread-safe)

    def _ensure_user(self, user_id: int, first_name: str | None) -> dict[str, Any]:
        user = self._users.get(user_id)
        if user is None:
            user = self._users[user_id] = {"id": user_id, "is_bot": False, "first_name": first_name or "Ana"}
        elif first_name:
            user["first_name"] = first_name
        return user

    def _ensure_chat(self, chat_id: int, first_name: str, chat_type: str) -> _Chat:
        chat = self._chats.get(chat_id)
        if chat is None:
            if chat_type == "private":
                info: dict[str, Any] = {"id": chat_id, "type": "private", "first_name": first_name}
            else:
                info = {"id": chat_id, "type": chat_type, "title": f"{first_name}'s {chat_type}"}
            chat = self._chats[chat_id] = _Chat(info)
        return chat

    def _push(self, kind: str, payload: dict[str, Any]) -> int:
        update_id = next(self._update_ids)
        update = {"update_id": update_id, kind: payload}
        self._pending.append(update)
        self._all_updates.append(copy.deepcopy(update))
        self._cond.notify_all()
        return update_id

    def add_chat(self, chat_id: int, first_name: str = "Ana", chat_type: str = "private") -> None:
        """Make a chat known (as if its user had started the bot) without sending an update."""
        with self._cond:
            self._ensure_chat(chat_id, first_name, chat_type)
            if chat_type == "private":
                self._ensure_user(chat_id, first_name)

    def set_language(self, user_id: int, language_code: str | None) -> None:
        """The user's Telegram app language (``language_code`` on their messages), or none."""
        with self._cond:
            user = self._ensure_user(user_id, None)
            if language_code is None:
                user.pop("language_code", None)
            else:
                user["language_code"] = language_code

    def block(self, chat_id: int, blocked: bool = True) -> None:
        """The user blocks (or unblocks) the bot: sending there gets 403 Forbidden."""
        with self._cond:
            self._ensure_chat(chat_id, "Ana", "private").blocked = blocked

    def _user_message(
        self, chat_id: int, user_id: int | None, first_name: str | None, chat_type: str, **fields: Any
    ) -> tuple[_Chat, _Message]:
        user_id = chat_id if user_id is None else user_id
        self._ensure_user(user_id, first_name)
        chat = self._ensure_chat(chat_id, self._users[user_id]["first_name"], chat_type)
        return chat, self._new_message(chat, from_bot=False, user_id=user_id, **fields)

    def send_text(
        self, chat_id: int, text: str, user_id: int | None = None, first_name: str = "Ana", chat_type: str = "private"
    ) -> int:
        """A user writes ``text``; returns the update_id. A leading "/command" gets a bot_command entity."""
        with self._cond:
            entities = []
            if text.startswith("/"):
                command = text.split(maxsplit=1)[0]
                entities.append({"type": "bot_command", "offset": 0, "length": utf16_length(command)})
            _chat, message = self._user_message(
                chat_id, user_id, first_name, chat_type, kind="text", text=text, plain=text, entities=entities
            )
            return self._push("message", self._message_json(chat_id, message))

    def send_contact(self, chat_id: int, phone_number: str, first_name: str, user_id: int | None = None) -> int:
        """A user shares a contact (their own by default: contact.user_id is the sender)."""
        with self._cond:
            sender = chat_id if user_id is None else user_id
            contact = {"phone_number": phone_number, "first_name": first_name, "user_id": sender}
            known = self._users.get(sender)
            _chat, message = self._user_message(
                chat_id, sender, None if known else first_name, "private", kind="contact", contact=contact
            )
            return self._push("message", self._message_json(chat_id, message))

    def edit_text(self, chat_id: int, message_id: int, text: str) -> int:
        """A user edits one of their text messages; returns the update_id of the edited_message update."""
        with self._cond:
            chat = self._chats.get(chat_id)
            message = chat.messages.get(message_id) if chat else None
            if message is None or message.from_bot or message.kind != "text":
                raise ValueError(f"chat {chat_id} has no user text message {message_id} to edit")
            message.text = message.plain = text
            message.entities = []
            if text.startswith("/"):  # Telegram parses the edited text's entities anew
                command = text.split(maxsplit=1)[0]
                message.entities = [{"type": "bot_command", "offset": 0, "length": utf16_length(command)}]
            message.edit_date = self._now()
            return self._push("edited_message", self._message_json(chat_id, message))

    def press(
        self, chat_id: int, message_id: int, data: str, user_id: int | None = None, *, strict: bool = True
    ) -> str:
        """A user presses an inline button of a bot message; returns the callback query id.

        With ``strict`` the button must be on the message as it is now, as in a real client.
        """
        with self._cond:
            chat = self._chats.get(chat_id)
            message = chat.messages.get(message_id) if chat else None
            if message is None or not message.from_bot:
                raise ValueError(f"chat {chat_id} has no bot message {message_id} to press a button on")
            available = [d for _text, d in self.buttons(message.reply_markup)]
            if strict and data not in available:
                raise ValueError(f"message {message_id} has no button with callback_data {data!r}; it has {available}")
            user_id = chat_id if user_id is None else user_id
            user = self._ensure_user(user_id, None)
            query_id = str(next(self._query_ids))
            query = {
                "id": query_id,
                "from": copy.deepcopy(user),
                "message": self._message_json(chat_id, message),
                "chat_instance": str(-(abs(chat_id) * 7919 + 13)),
                "data": data,
            }
            self._open_queries[query_id] = query
            self._push("callback_query", query)
            return query_id

    def push_update(self, update: dict[str, Any]) -> int:
        """Queue any update (the fake fills update_id); returns the update_id."""
        with self._cond:
            update = copy.deepcopy(update)
            update.pop("update_id", None)
            if len(update) != 1:
                raise ValueError(f"an update has exactly one field besides update_id, got {sorted(update)}")
            [(kind, payload)] = update.items()
            if isinstance(payload, dict):
                chat = payload.get("chat") or (payload.get("message") or {}).get("chat")
                if isinstance(chat, dict) and isinstance(chat.get("id"), int) and chat["id"] not in self._chats:
                    self._chats[chat["id"]] = _Chat(dict(chat))
                if kind == "callback_query" and "id" in payload:
                    self._open_queries[str(payload["id"])] = payload
            return self._push(kind, payload)

    # ---------------------------------------------------------------- inspecting (thread-safe)

    @property
    def calls(self) -> list[Call]:
        """Accepted calls in arrival order, as (method, params) with JSON fields decoded."""
        with self._lock:
            return list(self._calls)

    @property
    def requests(self) -> list[Request]:
        """Every request, accepted or not: (method, params, status, description)."""
        with self._lock:
            return list(self._requests)

    @property
    def refusals(self) -> list[Refusal]:
        """Calls refused as Telegram would refuse them (not 409 Conflict nor 429): (method, description, params)."""
        with self._lock:
            return list(self._refusals)

    @property
    def conflicts(self) -> list[Call]:
        """getUpdates calls ended by 409 Conflict."""
        with self._lock:
            return list(self._conflicts)

    @property
    def too_many_requests(self) -> int:
        """How many calls got 429 Too Many Requests."""
        with self._lock:
            return self._too_many_requests

    @property
    def updates(self) -> list[dict[str, Any]]:
        """Every update pushed so far (delivered or not)."""
        with self._lock:
            return copy.deepcopy(self._all_updates)

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates not yet confirmed by a getUpdates offset."""
        with self._lock:
            return copy.deepcopy(self._pending)

    @property
    def answered_callbacks(self) -> dict[str, dict[str, Any]]:
        """callback_query_id -> the answerCallbackQuery params."""
        with self._lock:
            return copy.deepcopy(self._answered)

    @property
    def commands(self) -> list[dict[str, Any]]:
        """The commands set for the default scope and no language."""
        with self._lock:
            return copy.deepcopy(self._commands.get(self._commands_key({}), []))

    def commands_for(self, scope: dict[str, Any] | None = None, language_code: str = "") -> list[dict[str, Any]]:
        with self._lock:
            key = self._commands_key({"scope": scope, "language_code": language_code})
            return copy.deepcopy(self._commands.get(key, []))

    def chat_actions(self, chat_id: int) -> list[str]:
        with self._lock:
            chat = self._chats.get(chat_id)
            return list(chat.actions) if chat else []

    def _as_dict(self, message: _Message) -> dict[str, Any]:
        result: dict[str, Any] = {
            "message_id": message.message_id,
            "kind": message.kind,
            "text": message.text,
            "plain": message.plain,
            "entities": copy.deepcopy(message.entities),
            "parse_mode": message.parse_mode,
            "reply_markup": copy.deepcopy(message.reply_markup),
            "edited": message.edit_date is not None,
            "reply_to_message_id": message.reply_to,
        }
        if message.document is not None:
            result["document"] = dict(message.document)
        return result

    def messages(self, chat_id: int) -> list[dict[str, Any]]:
        """The bot's messages in the chat as they are now (after edits and deletions).

        Each is a dict: message_id, kind ("text" or "document"), text (as sent, e.g. HTML;
        the caption for a document), plain (what the user sees), entities, parse_mode,
        reply_markup (decoded), edited, reply_to_message_id, and document for documents.
        """
        with self._lock:
            chat = self._chats.get(chat_id)
            if chat is None:
                return []
            return [self._as_dict(m) for m in chat.messages.values() if m.from_bot]

    def last_user_message_id(self, chat_id: int) -> int:
        """The message_id of the newest message a user sent in the chat (to edit it later)."""
        with self._lock:
            chat = self._chats.get(chat_id)
            ids = [m.message_id for m in chat.messages.values() if not m.from_bot] if chat else []
            if not ids:
                raise ValueError(f"no user message in chat {chat_id}")
            return max(ids)

    def last_message(self, chat_id: int) -> dict[str, Any] | None:
        found = self.messages(chat_id)
        return found[-1] if found else None

    @staticmethod
    def buttons(message: dict[str, Any] | None) -> list[tuple[str, str | None]]:
        """The buttons of a message dict (or of a reply_markup dict), flattened: (text, callback_data)."""
        if not message:
            return []
        markup = message.get("reply_markup", message) if "message_id" in message else message
        if not isinstance(markup, dict):
            return []
        rows = markup.get("inline_keyboard") or markup.get("keyboard") or []
        flat: list[tuple[str, str | None]] = []
        for button in itertools.chain.from_iterable(rows):
            if isinstance(button, str):
                flat.append((button, None))
            else:
                flat.append((button.get("text", ""), button.get("callback_data")))
        return flat

    def documents(self, chat_id: int) -> list[tuple[str, bytes]]:
        """Documents the bot sent to the chat (and did not delete): (filename, bytes)."""
        with self._lock:
            chat = self._chats.get(chat_id)
            if chat is None:
                return []
            return [
                (m.document["file_name"], m.content or b"")
                for m in chat.messages.values()
                if m.from_bot and m.kind == "document" and m.document
            ]

    # ---------------------------------------------------------------- waiting (thread-safe)

    @staticmethod
    def _short(value: Any, limit: int = 160) -> str:
        text = repr(value)
        return text if len(text) <= limit else text[: limit - 3] + "..."

    def _recent(self) -> str:
        lines = [f"  {c.method} {self._short(c.params)}" for c in self._calls if c.method != "getUpdates"][-15:]
        refused = [f"  {r.method}: {r.description} {self._short(r.params)}" for r in self._refusals][-5:]
        text = "recent calls (getUpdates left out, newest last):\n" + ("\n".join(lines) or "  (none)")
        if refused:
            text += "\nrefused:\n" + "\n".join(refused)
        return text

    def mark(self) -> int:
        """The number of accepted calls so far; pass it as ``since`` to wait only for newer calls."""
        with self._lock:
            return len(self._calls)

    def wait_for(
        self, predicate: Callable[[str, dict[str, Any]], bool], timeout: float = 10.0, since: int = 0
    ) -> Call:
        """Wait until an accepted call (from index ``since`` on) satisfies ``predicate(method, params)``.

        Calls that happened before this wait count too (use ``since=fake.mark()`` to skip them).
        A predicate raising KeyError/TypeError/AttributeError/IndexError counts as no match, so
        ``lambda m, p: "hi" in p["text"]`` is fine. Raises TimeoutError listing the recent calls.
        """
        deadline = time.monotonic() + timeout
        index = since
        with self._cond:
            while True:
                while index < len(self._calls):
                    call = self._calls[index]
                    index += 1
                    try:
                        if predicate(call.method, call.params):
                            return call
                    except (KeyError, TypeError, AttributeError, IndexError):
                        pass
                remaining = deadline - time.monotonic()
                if self._stopped.is_set():
                    raise RuntimeError(f"{self!r} was stopped while waiting for a call")
                if remaining <= 0:
                    raise TimeoutError(f"no matching Bot API call within {timeout} s; {self._recent()}")
                self._cond.wait(remaining)

    def wait_for_message(
        self,
        chat_id: int,
        contains: str | None = None,
        count: int | None = None,
        timeout: float = 10.0,
        after: int | None = None,
    ) -> dict[str, Any]:
        """Wait until the bot's current messages in the chat match, and return the newest match.

        ``contains`` is looked for in the text as sent and in the visible text; ``count`` is a
        minimum number of bot messages; ``after`` only considers messages with a larger message_id.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [m for m in self.messages(chat_id) if after is None or m["message_id"] > after]
                enough = count is None or len(found) >= count
                if contains is not None:
                    found = [m for m in found if contains in (m["text"] or "") or contains in m["plain"]]
                if enough and found:
                    return found[-1]
                remaining = deadline - time.monotonic()
                if self._stopped.is_set():
                    raise RuntimeError(f"{self!r} was stopped while waiting for a message")
                if remaining <= 0:
                    current = "\n".join(
                        f"  {m['message_id']}: {self._short(m['text'])}" for m in self.messages(chat_id)
                    )
                    raise TimeoutError(
                        f"no bot message in chat {chat_id} with contains={contains!r} count={count} after={after} "
                        f"within {timeout} s; messages now:\n{current or '  (none)'}\n{self._recent()}"
                    )
                self._cond.wait(remaining)

    def wait_for_refusal(self, predicate: Callable[[Refusal], bool] | None = None, timeout: float = 10.0) -> Refusal:
        """Wait until a refusal (satisfying ``predicate``, if given) has been recorded."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for refusal in self._refusals:
                    if predicate is None or predicate(refusal):
                        return refusal
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stopped.is_set():
                    raise TimeoutError(f"no matching refusal within {timeout} s; {self._recent()}")
                self._cond.wait(remaining)

    async def wait_for_async(
        self, predicate: Callable[[str, dict[str, Any]], bool], timeout: float = 10.0, since: int = 0
    ) -> Call:
        """:meth:`wait_for` without blocking the event loop the bot runs on."""
        return await asyncio.to_thread(self.wait_for, predicate, timeout, since)

    async def wait_for_message_async(
        self,
        chat_id: int,
        contains: str | None = None,
        count: int | None = None,
        timeout: float = 10.0,
        after: int | None = None,
    ) -> dict[str, Any]:
        """:meth:`wait_for_message` without blocking the event loop the bot runs on."""
        return await asyncio.to_thread(self.wait_for_message, chat_id, contains, count, timeout, after)


def texts(messages: Iterable[dict[str, Any]]) -> list[str]:
    """The visible texts of message dicts, handy in assertions."""
    return [m["plain"] for m in messages]
