"""The fake Telegram Bot API, tested against the real python-telegram-bot."""

from __future__ import annotations

import asyncio
import datetime as dtm
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import pytest
from telegram import Bot, BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, Conflict, Forbidden, InvalidToken, RetryAfter
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from tests.fake_telegram import NOT_MODIFIED, FakeBotAPI, HtmlParseError, parse_html, utf16_length

CHAT = 4242


@pytest.fixture
async def bot(fake_api: FakeBotAPI) -> AsyncIterator[Bot]:
    fake_api.add_chat(CHAT)
    async with Bot(fake_api.token, base_url=f"{fake_api.url}/bot", base_file_url=f"{fake_api.url}/file/bot") as b:
        yield b


def raw_call(fake: FakeBotAPI, method: str, token: str | None = None, **params: Any) -> tuple[int, dict[str, Any]]:
    """POST form-encoded params the way PTB does (non-strings JSON-encoded); returns (status, body)."""
    form = {k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items()}
    request = urllib.request.Request(
        f"{fake.url}/bot{token or fake.token}/{method}",
        data=urllib.parse.urlencode(form).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def keyboard(*data: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(f"button {d}", callback_data=d)] for d in data])


# ------------------------------------------------------------------ a real PTB Application


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await context.bot.send_chat_action(update.effective_chat.id, "typing")
    await update.message.reply_html(
        f"<b>Hello</b>, {update.effective_user.first_name}!", reply_markup=keyboard("yes", "no")
    )


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await update.message.reply_text(f"echo: {update.message.text}")


async def button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    await query.answer(f"you chose {query.data}")
    await query.edit_message_text(f"You chose <i>{query.data}</i>", parse_mode=ParseMode.HTML)


async def running_app(fake: FakeBotAPI) -> Application:
    app = (
        ApplicationBuilder()
        .token(fake.token)
        .base_url(f"{fake.url}/bot")
        .base_file_url(f"{fake.url}/file/bot")
        .build()
    )
    app.add_handler(CommandHandler("start", start))
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    app.add_handler(CallbackQueryHandler(button))
    await app.initialize()
    await app.start()
    await app.updater.start_polling(poll_interval=0, timeout=1)
    return app


async def stop_app(app: Application) -> None:
    await app.updater.stop()
    await app.stop()
    await app.shutdown()


async def test_a_real_ptb_application_talks_to_the_fake(fake_api: FakeBotAPI) -> None:
    app = await running_app(fake_api)
    try:
        assert app.bot.username == "advisor_test_bot"  # from getMe
        fake_api.send_text(CHAT, "/start", first_name="Lucía")
        greeting = await fake_api.wait_for_message_async(CHAT, contains="Hello")
        assert greeting["text"] == "<b>Hello</b>, Lucía!"
        assert greeting["plain"] == "Hello, Lucía!"
        assert greeting["parse_mode"] == "HTML"
        assert fake_api.buttons(greeting) == [("button yes", "yes"), ("button no", "no")]
        assert fake_api.chat_actions(CHAT) == ["typing"]

        fake_api.send_text(CHAT, "how are you?")
        reply = await fake_api.wait_for_message_async(CHAT, contains="echo:")
        assert reply["plain"] == "echo: how are you?"

        query_id = fake_api.press(CHAT, greeting["message_id"], "no")
        await fake_api.wait_for_async(lambda method, params: method == "editMessageText")
        assert fake_api.answered_callbacks[query_id]["text"] == "you chose no"
        edited = fake_api.messages(CHAT)[0]
        assert edited["message_id"] == greeting["message_id"]
        assert (edited["plain"], edited["edited"], edited["reply_markup"]) == ("You chose no", True, None)
        assert [m["plain"] for m in fake_api.messages(CHAT)] == ["You chose no", "echo: how are you?"]
    finally:
        await stop_app(app)
    assert fake_api.refusals == []
    assert fake_api.pending_updates == []  # PTB confirmed every update on its way out


async def test_the_bot_command_entity_lets_command_handlers_see_commands(fake_api: FakeBotAPI) -> None:
    fake_api.send_text(CHAT, "/start@advisor_test_bot now")
    update = fake_api.updates[-1]
    assert update["message"]["entities"] == [{"type": "bot_command", "offset": 0, "length": 23}]
    app = await running_app(fake_api)
    try:
        await fake_api.wait_for_message_async(CHAT, contains="Hello")
    finally:
        await stop_app(app)


# ------------------------------------------------------------------ what Telegram refuses


@pytest.mark.parametrize(
    ("html", "problem"),
    [
        ("line<br>break", 'Unsupported start tag "br" at byte offset 4'),
        ("<p>paragraph</p>", 'Unsupported start tag "p" at byte offset 0'),
        ("<b>bold", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b><i>x</b></i>", 'Unmatched end tag at byte offset 7, expected "</i>", found "</b>"'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ("a &nbsp; b", 'Unsupported HTML entity "&nbsp;" at byte offset 2'),
        ("1 < 2", 'Unsupported start tag "" at byte offset 2'),
        ("ends with <", "Unclosed start tag at byte offset 10"),
        ('<span class="red">x</span>', 'Tag "span" must have class "tg-spoiler" at byte offset 0'),
        ("é<b x>y</b>", 'Expected equal sign in declaration of an attribute of the tag "b" at byte offset 2'),
    ],
)
async def test_bad_html_is_refused_with_telegrams_words(
    fake_api: FakeBotAPI, bot: Bot, html: str, problem: str
) -> None:
    with pytest.raises(BadRequest) as refused:
        await bot.send_message(CHAT, html, parse_mode=ParseMode.HTML)
    # PTB strips "Bad Request: " and capitalize()s the rest, lowering every other letter
    assert str(refused.value) == f"Can't parse entities: {problem}".capitalize()
    [refusal] = fake_api.refusals
    assert refusal.method == "sendMessage"
    assert refusal.description == f"Bad Request: can't parse entities: {problem}"
    assert refusal.params == {"chat_id": CHAT, "text": html, "parse_mode": "HTML"}
    assert fake_api.messages(CHAT) == []


async def test_good_html_is_accepted_and_rendered(fake_api: FakeBotAPI, bot: Bot) -> None:
    html = (
        '<b>b</b><strong>s</strong><i>i</i><em>e</em><u>u</u><ins>n</ins><s>s</s><strike>k</strike><del>d</del>'
        '<a href="https://example.com/?a=1&amp;b=2">link</a><code>c</code>'
        '<pre><code class="language-python">p</code></pre><blockquote>q</blockquote>'
        '<blockquote expandable>x</blockquote><tg-spoiler>t</tg-spoiler><span class="tg-spoiler">h</span>'
        '<tg-emoji emoji-id="5368324170671202286">👍</tg-emoji> &lt;&gt;&amp;&quot;&#38;&#x41; Q&A <B>caps</B>'
    )
    message = await bot.send_message(CHAT, html, parse_mode=ParseMode.HTML)
    assert message.text == "bsieunskdlinkcpqxth👍 <>&\"&A Q&A caps"
    types = [entity.type for entity in message.entities]
    assert types[:3] == ["bold", "bold", "italic"]
    assert "text_link" in types and "expandable_blockquote" in types and "custom_emoji" in types
    pre = next(entity for entity in message.entities if entity.type == "pre")
    assert pre.language == "python"
    assert fake_api.refusals == []


def test_the_html_parser_counts_offsets_in_utf16() -> None:
    text, entities = parse_html("😀 <b>x</b>")
    assert text == "😀 x"
    assert entities == [{"type": "bold", "offset": 3, "length": 1}]
    with pytest.raises(HtmlParseError, match="byte offset 5"):
        parse_html("😀 <x>")  # the error offset counts UTF-8 bytes
    assert parse_html("a &nbsp; b", strict_entities=False) == ("a &nbsp; b", [])


async def test_length_is_counted_in_utf16_units_after_entity_parsing(fake_api: FakeBotAPI, bot: Bot) -> None:
    await bot.send_message(CHAT, "a" * 4096)
    await bot.send_message(CHAT, "😀" * 2048)  # 4096 UTF-16 units
    await bot.send_message(CHAT, f"<b>{'a' * 4096}</b>", parse_mode=ParseMode.HTML)  # tags do not count
    await bot.send_message(CHAT, "&lt;" * 4096, parse_mode=ParseMode.HTML)  # one character each
    for too_long in ("a" * 4097, "😀" * 2048 + "a", "é" * 4097):
        with pytest.raises(BadRequest, match="Message is too long"):
            await bot.send_message(CHAT, too_long)
    assert utf16_length("😀" * 2048 + "a") == 4097
    assert [r.description for r in fake_api.refusals] == ["Bad Request: message is too long"] * 3
    assert len(fake_api.messages(CHAT)) == 4


async def test_empty_texts_are_refused(fake_api: FakeBotAPI, bot: Bot) -> None:
    with pytest.raises(BadRequest, match="Message text is empty"):
        await bot.send_message(CHAT, "")
    with pytest.raises(BadRequest, match="Text must be non-empty"):
        await bot.send_message(CHAT, "<b> </b>", parse_mode=ParseMode.HTML)
    with pytest.raises(BadRequest, match="Text must be non-empty"):
        await bot.send_message(CHAT, "text", reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("", "x")]]))
    assert len(fake_api.refusals) == 3


async def test_callback_data_is_1_to_64_bytes(fake_api: FakeBotAPI, bot: Bot) -> None:
    await bot.send_message(CHAT, "ok", reply_markup=keyboard("x" * 64))
    for bad in ("x" * 65, "é" * 33):  # 66 bytes in 33 characters
        with pytest.raises(BadRequest, match="Button_data_invalid"):
            await bot.send_message(CHAT, "no", reply_markup=keyboard(bad))
    assert [r.description for r in fake_api.refusals] == ["Bad Request: BUTTON_DATA_INVALID"] * 2


async def test_identical_edits_are_refused(fake_api: FakeBotAPI, bot: Bot) -> None:
    sent = await bot.send_message(CHAT, "<b>Pick</b>", parse_mode=ParseMode.HTML, reply_markup=keyboard("a"))
    message_id, same = sent.message_id, keyboard("a")
    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_text("<b>Pick</b>", CHAT, message_id, parse_mode="HTML", reply_markup=keyboard("a"))
    with pytest.raises(BadRequest, match="Message is not modified"):  # same rendering, different source
        await bot.edit_message_text("<strong>Pick</strong>", CHAT, message_id, parse_mode="html", reply_markup=same)
    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_reply_markup(CHAT, sent.message_id, reply_markup=keyboard("a"))
    assert [r.description for r in fake_api.refusals] == [NOT_MODIFIED] * 3

    await bot.edit_message_text("<b>Pick</b>", CHAT, sent.message_id, parse_mode=ParseMode.HTML)  # drops the keyboard
    assert fake_api.last_message(CHAT)["reply_markup"] is None
    await bot.edit_message_reply_markup(CHAT, sent.message_id, reply_markup=keyboard("b"))
    assert fake_api.buttons(fake_api.last_message(CHAT)) == [("button b", "b")]

    with pytest.raises(BadRequest, match="Message to edit not found"):
        await bot.edit_message_text("x", CHAT, 999)
    await bot.delete_message(CHAT, sent.message_id)
    assert fake_api.messages(CHAT) == []
    with pytest.raises(BadRequest, match="Message to delete not found"):
        await bot.delete_message(CHAT, sent.message_id)


async def test_unknown_chats_and_callback_queries_are_refused(fake_api: FakeBotAPI, bot: Bot) -> None:
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.send_message(777, "who?")
    with pytest.raises(BadRequest, match="Query is too old"):
        await bot.answer_callback_query("12345")
    sent = await bot.send_message(CHAT, "pick", reply_markup=keyboard("a"))
    query_id = fake_api.press(CHAT, sent.message_id, "a")
    with pytest.raises(BadRequest, match="Message_too_long"):
        await bot.answer_callback_query(query_id, text="x" * 201)
    assert await bot.answer_callback_query(query_id, text="x" * 200)
    with pytest.raises(BadRequest, match="Query is too old"):  # a query is answered once
        await bot.answer_callback_query(query_id)
    with pytest.raises(ValueError, match="no button with callback_data 'b'"):
        fake_api.press(CHAT, sent.message_id, "b")
    fake_api.block(CHAT)
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(CHAT, "still there?")


async def test_a_wrong_token_and_an_unknown_method(fake_api: FakeBotAPI) -> None:
    assert raw_call(fake_api, "getMe", token="999:wrong") == (
        401,
        {"ok": False, "error_code": 401, "description": "Unauthorized"},
    )
    assert raw_call(fake_api, "sendPigeon") == (404, {"ok": False, "error_code": 404, "description": "Not Found"})
    with pytest.raises(InvalidToken):
        async with Bot("999:wrong", base_url=f"{fake_api.url}/bot"):
            pass
    assert [(r.method, r.description) for r in fake_api.refusals] == [
        ("getMe", "Unauthorized"),
        ("sendPigeon", "Not Found"),
        ("getMe", "Unauthorized"),
    ]


# PTB 22 warns that RetryAfter.retry_after will become a timedelta; both are accepted below
@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_too_many_messages_get_429_with_retry_after() -> None:
    with FakeBotAPI(max_messages_per_second=3) as fake:
        fake.add_chat(CHAT)
        async with Bot(fake.token, base_url=f"{fake.url}/bot") as bot:
            for n in range(3):
                await bot.send_message(CHAT, f"message {n}")
            with pytest.raises(RetryAfter) as limited:
                await bot.send_message(CHAT, "one too many")
            assert limited.value.retry_after in (1, dtm.timedelta(seconds=1))
            await bot.send_chat_action(CHAT, "typing")  # not rate limited
        assert raw_call(fake, "editMessageText", chat_id=CHAT, message_id=1, text="changed") == (
            429,
            {
                "ok": False,
                "error_code": 429,
                "description": "Too Many Requests: retry after 1",
                "parameters": {"retry_after": 1},
            },
        )
        assert fake.too_many_requests == 2
        assert fake.refusals == []
        assert len(fake.messages(CHAT)) == 3


# ------------------------------------------------------------------ updates, uploads, commands


async def test_get_updates_follows_telegrams_offset_and_long_poll(fake_api: FakeBotAPI, bot: Bot) -> None:
    first = fake_api.send_text(CHAT, "one")
    fake_api.send_text(CHAT, "two")
    assert [u.update_id for u in await bot.get_updates()] == [first, first + 1]
    assert [u.update_id for u in await bot.get_updates()] == [first, first + 1]  # not confirmed yet
    assert [u.update_id for u in await bot.get_updates(offset=first + 1)] == [first + 1]
    assert await bot.get_updates(offset=first + 2) == ()
    assert fake_api.pending_updates == []

    since = fake_api.mark()
    poll = asyncio.create_task(bot.get_updates(offset=first + 2, timeout=8))
    await fake_api.wait_for_async(lambda method, params: method == "getUpdates", since=since)
    started = time.monotonic()
    contact = fake_api.send_contact(CHAT, "+34 600 000 000", "Ana")
    [update] = await poll
    assert time.monotonic() - started < 4  # woken by the update, not by the timeout
    assert update.update_id == contact
    assert update.message.contact.phone_number == "+34 600 000 000"
    assert update.message.contact.user_id == CHAT


async def test_edits_contacts_and_custom_updates_reach_ptb(fake_api: FakeBotAPI, bot: Bot) -> None:
    fake_api.send_text(CHAT, "helo")
    user_message_id = fake_api.updates[-1]["message"]["message_id"]
    fake_api.edit_text(CHAT, user_message_id, "hello")
    fake_api.push_update({"my_chat_member": {
        "chat": {"id": CHAT, "type": "private", "first_name": "Ana"},
        "from": {"id": CHAT, "is_bot": False, "first_name": "Ana"},
        "date": 1_700_000_000,
        "old_chat_member": {"status": "member", "user": fake_api.bot_user},
        "new_chat_member": {"status": "kicked", "user": fake_api.bot_user, "until_date": 0},
    }})
    updates = await bot.get_updates()
    assert updates[1].edited_message.text == "hello"
    assert updates[1].edited_message.message_id == user_message_id
    assert updates[2].my_chat_member.new_chat_member.status == "kicked"
    assert len({u.update_id for u in updates}) == 3


async def test_a_second_poller_ends_the_first_with_409(fake_api: FakeBotAPI, bot: Bot) -> None:
    since = fake_api.mark()
    first = asyncio.create_task(bot.get_updates(timeout=8))
    await fake_api.wait_for_async(lambda method, params: method == "getUpdates", since=since)
    async with Bot(fake_api.token, base_url=f"{fake_api.url}/bot") as other:
        assert await other.get_updates(timeout=0) == ()
    with pytest.raises(Conflict, match="terminated by other getUpdates request"):
        await first
    assert len(fake_api.conflicts) == 1
    assert fake_api.refusals == []


def test_stop_ends_a_long_poll_at_once() -> None:
    fake = FakeBotAPI()
    result: list[Any] = []

    def poll() -> None:
        result.append(raw_call(fake, "getUpdates", timeout=30))

    poller = threading.Thread(target=poll)
    poller.start()
    fake.wait_for(lambda method, params: method == "getUpdates")
    started = time.monotonic()
    fake.stop()
    poller.join(timeout=10)
    assert not poller.is_alive()
    assert time.monotonic() - started < 5
    assert result == [(200, {"ok": True, "result": []})]  # the long poll got its (empty) answer


async def test_documents_are_uploaded_as_multipart(fake_api: FakeBotAPI, bot: Bot) -> None:
    content = b"line one\r\nline two\n\x00\xff binary"
    sent = await bot.send_document(
        CHAT, content, filename='résumé "final".txt', caption="<b>Your report</b>", parse_mode=ParseMode.HTML
    )
    assert sent.document.file_name == 'résumé "final".txt'
    assert sent.document.file_size == len(content)
    assert sent.caption == "Your report"
    assert fake_api.documents(CHAT) == [('résumé "final".txt', content)]
    [(_method, params)] = [c for c in fake_api.calls if c.method == "sendDocument"]
    assert params["document"].content == content
    assert params["chat_id"] == CHAT  # form fields of a multipart request are decoded too
    again = await bot.send_document(CHAT, sent.document.file_id)  # a file_id is resent without upload
    assert again.document.file_name == sent.document.file_name
    with pytest.raises(BadRequest, match="File must be non-empty"):
        await bot.send_document(CHAT, b"", filename="empty.txt")
    with pytest.raises(BadRequest, match="Message caption is too long"):
        await bot.send_document(CHAT, b"x", filename="x.txt", caption="c" * 1025)


async def test_commands_are_kept_and_checked(fake_api: FakeBotAPI, bot: Bot) -> None:
    commands = [BotCommand("start", "Start over"), BotCommand("help", "What I can do")]
    assert await bot.set_my_commands(commands)
    assert fake_api.commands == [
        {"command": "start", "description": "Start over"},
        {"command": "help", "description": "What I can do"},
    ]
    assert await bot.get_my_commands() == tuple(commands)
    with pytest.raises(BadRequest, match="Bot_command_invalid"):
        await bot.set_my_commands([BotCommand("Start-Over", "no")])
    assert await bot.delete_my_commands()
    assert fake_api.commands == []


async def test_values_are_decoded_by_field_not_by_look(fake_api: FakeBotAPI, bot: Bot) -> None:
    await bot.send_message(CHAT, "true")
    await bot.send_message(CHAT, "42")
    await bot.send_message(CHAT, '{"a": 1}', disable_notification=True)
    assert [m["text"] for m in fake_api.messages(CHAT)] == ["true", "42", '{"a": 1}']
    last = fake_api.wait_for(lambda method, params: params["text"] == '{"a": 1}')
    assert last.params["disable_notification"] is True
    assert last.params["chat_id"] == CHAT


async def test_waiting_in_vain_says_what_happened(fake_api: FakeBotAPI, bot: Bot) -> None:
    await bot.send_message(CHAT, "something else")
    with pytest.raises(TimeoutError, match=r"sendMessage .*something else"):
        fake_api.wait_for(lambda method, params: "never" in params["text"], timeout=0.1)
    with pytest.raises(TimeoutError, match="something else"):
        fake_api.wait_for_message(CHAT, contains="never", timeout=0.1)
    assert fake_api.wait_for_message(CHAT, count=1)["plain"] == "something else"


async def test_latency_is_added_to_every_call() -> None:
    with FakeBotAPI(latency=0.05) as fake:
        fake.add_chat(CHAT)
        async with Bot(fake.token, base_url=f"{fake.url}/bot") as bot:
            started = time.monotonic()
            for _ in range(4):
                await bot.send_message(CHAT, "slow")
            assert time.monotonic() - started >= 0.2
