"""The Telegram plumbing: startup errors, the token kept out of logs, webhook mode, per-chat ordering,
message splitting, callback data and the log filter.

The process tests run ``python bot.py`` against the fake Bot API (tests/fake_telegram.py); the rest
call advisor.channels.telegram in-process. Nothing here sleeps to synchronise: the tests wait on
the fake's calls, on asyncio events, or on a port accepting connections.
"""

from __future__ import annotations

import asyncio
import html
import inspect
import io
import itertools
import json
import logging
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from telegram import Bot, Update

from advisor.channels.telegram import (
    MESSAGE_LIMIT,
    PerChatUpdateProcessor,
    Press,
    TokenFilter,
    hide_token_in_logs,
    parse_callback,
    split_message,
    visible_length,
)
from tests.conftest import ROOT, bot_env, run_bot
from tests.fake_telegram import DEFAULT_TOKEN, FakeBotAPI, parse_html, utf16_length
from tests.personas import PERSONAS

WELCOME = "Outsourcing Advisor"  # in the Telegram welcome (templates/telegram.html)
OTHER_TOKEN = "654321:Some-OTHER_token"  # well formed, but not the fake's: it answers 401


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_listening(port: int, process: subprocess.Popen, timeout: float = 15) -> None:
    """Wait until 127.0.0.1:port accepts a connection (or the process has died)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if process.poll() is not None:
                raise AssertionError(f"the bot exited ({process.returncode}) before listening on {port}") from None
            if time.monotonic() > deadline:
                raise AssertionError(f"nothing listens on 127.0.0.1:{port} after {timeout} s") from None
            time.sleep(0.02)  # a connect retry, not synchronisation by sleeping


def run_telegram(tmp_path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python bot.py telegram``, expected to fail at startup (the timeout only bounds a bot that runs)."""
    return run_bot("telegram", db=tmp_path / "a.db", env=env, timeout=30)


def telegram_env(fake: FakeBotAPI, **extra: str) -> dict[str, str]:
    return {"TELEGRAM_BOT_TOKEN": fake.token, "TELEGRAM_API_URL": fake.url, **extra}


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """The run failed with exactly one ``error: ...`` line on stderr, no traceback; returns that line."""
    assert result.returncode != 0, result
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{result.stderr}"
    line = lines[0]
    assert line.startswith("error: "), line
    for fragment in fragments:
        assert fragment in line, line
    return line


def start_update(update_id: int, chat_id: int, text: str = "/start") -> dict[str, Any]:
    """A private-chat text message update as Telegram would POST it to a webhook."""
    entities = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}] if text.startswith("/") else []
    user = {"id": chat_id, "is_bot": False, "first_name": "Ana"}
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id, "date": int(time.time()), "text": text, "entities": entities,
            "chat": {"id": chat_id, "type": "private", "first_name": "Ana"}, "from": user,
        },
    }


def post_update(port: int, update: dict[str, Any], secret: str | None, path: str = "telegram") -> int:
    """POST an update to the bot's webhook; the HTTP status."""
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    request = urllib.request.Request(f"http://127.0.0.1:{port}/{path}", data=json.dumps(update).encode(),
                                     headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


# --------------------------------------------------------------------------------------------
# 1. startup errors: one line on stderr, a non-zero exit, no traceback
# --------------------------------------------------------------------------------------------


def test_telegram_without_a_token_says_where_to_get_one(tmp_path):
    result = run_telegram(tmp_path)
    assert_one_line_error(result, "TELEGRAM_BOT_TOKEN is not set", "@BotFather")
    assert not (tmp_path / "a.db").exists()


def test_a_malformed_token_is_refused_before_any_network_call(tmp_path, fake_api):
    result = run_telegram(tmp_path, {"TELEGRAM_BOT_TOKEN": "abc", "TELEGRAM_API_URL": fake_api.url})
    line = assert_one_line_error(result, "TELEGRAM_BOT_TOKEN does not look like a bot token")
    assert "abc" not in line  # the value itself is not echoed
    assert fake_api.requests == []


def test_a_token_the_api_refuses_is_one_line_naming_the_api(tmp_path, fake_api):
    result = run_telegram(tmp_path, {"TELEGRAM_BOT_TOKEN": OTHER_TOKEN, "TELEGRAM_API_URL": fake_api.url})
    assert_one_line_error(result, "refused TELEGRAM_BOT_TOKEN", fake_api.url)
    assert any(r.status == 401 for r in fake_api.requests)


@pytest.mark.parametrize("level", ["WARNING", "DEBUG"])
def test_the_error_for_a_refused_token_does_not_show_the_token(tmp_path, fake_api, level):
    result = run_telegram(tmp_path, {
        "TELEGRAM_BOT_TOKEN": OTHER_TOKEN, "TELEGRAM_API_URL": fake_api.url, "ADVISOR_LOG_LEVEL": level})
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert OTHER_TOKEN not in output
    assert OTHER_TOKEN.split(":", 1)[1] not in output


def test_an_unreachable_api_is_one_line_naming_the_url(tmp_path):
    url = f"http://127.0.0.1:{closed_port()}"
    result = run_telegram(tmp_path, {"TELEGRAM_BOT_TOKEN": DEFAULT_TOKEN, "TELEGRAM_API_URL": url})
    assert_one_line_error(result, "cannot reach the Telegram Bot API", url)


@pytest.mark.parametrize("url", ["127.0.0.1:8081", "ftp://api.telegram.org", "api.telegram.org"])
def test_an_api_url_without_http_is_refused(tmp_path, fake_api, url):
    result = run_telegram(tmp_path, {"TELEGRAM_BOT_TOKEN": fake_api.token, "TELEGRAM_API_URL": url})
    assert_one_line_error(result, "TELEGRAM_API_URL must start with http:// or https://")
    assert fake_api.requests == []


@pytest.mark.parametrize("secret", [None, "", "has spaces", "s3cret!", "x" * 257], ids=[
    "missing", "empty", "spaces", "punctuation", "too-long"])
def test_webhook_mode_needs_a_valid_secret(tmp_path, fake_api, secret):
    env = telegram_env(fake_api, TELEGRAM_WEBHOOK_URL="https://bot.example.com/telegram")
    if secret is not None:
        env["TELEGRAM_WEBHOOK_SECRET"] = secret
    result = run_telegram(tmp_path, env)
    assert_one_line_error(result, "TELEGRAM_WEBHOOK_SECRET")
    assert fake_api.requests == []


@pytest.mark.parametrize("port", ["99999", "0", "65536", "https", "-1", "", " 8443", "8443.0"])
def test_webhook_mode_refuses_a_bad_port(tmp_path, fake_api, port):
    env = telegram_env(fake_api, TELEGRAM_WEBHOOK_URL="https://bot.example.com/telegram",
                       TELEGRAM_WEBHOOK_SECRET="s3cret", TELEGRAM_WEBHOOK_PORT=port)
    result = run_telegram(tmp_path, env)
    assert_one_line_error(result, "TELEGRAM_WEBHOOK_PORT must be a port number")
    assert fake_api.requests == []


@pytest.mark.parametrize("burst", ["0", "lots", "-5", "20000", "2.5"])
def test_a_bad_chat_burst_is_a_one_line_error(tmp_path, fake_api, burst):
    result = run_telegram(tmp_path, telegram_env(fake_api, ADVISOR_CHAT_BURST=burst))
    assert_one_line_error(result, "ADVISOR_CHAT_BURST must be a whole number of messages from 1 to 10000")
    assert fake_api.requests == []


def test_webhook_mode_on_a_port_in_use_names_the_port_as_a_setting_not_a_bug(tmp_path, fake_api):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = telegram_env(fake_api, TELEGRAM_WEBHOOK_URL="https://bot.example.com/telegram",
                           TELEGRAM_WEBHOOK_SECRET="s3cret", TELEGRAM_WEBHOOK_LISTEN="127.0.0.1",
                           TELEGRAM_WEBHOOK_PORT=str(port))
        result = run_telegram(tmp_path, env)
    line = assert_one_line_error(result)
    assert "unexpected" not in line  # "unexpected" is main()'s wording for a bug in the advisor
    assert str(port) in line or "TELEGRAM_WEBHOOK_PORT" in line, line


def test_a_webhook_url_telegram_refuses_is_not_reported_as_an_unreachable_api(tmp_path, fake_api):
    # The fake, like Telegram, refuses a plain-http webhook URL with 400 "bad webhook".
    env = telegram_env(fake_api, TELEGRAM_WEBHOOK_URL="http://bot.example.com/telegram",
                       TELEGRAM_WEBHOOK_SECRET="s3cret", TELEGRAM_WEBHOOK_LISTEN="127.0.0.1",
                       TELEGRAM_WEBHOOK_PORT=str(closed_port()))
    result = run_telegram(tmp_path, env)
    line = assert_one_line_error(result, "https")
    assert "cannot reach" not in line  # the API was reached: it refused the webhook URL


def test_with_a_token_and_no_command_the_bot_runs_on_telegram(tmp_path, fake_api):
    mark = fake_api.mark()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "bot.py")], env=bot_env(tmp_path / "a.db", telegram_env(fake_api)), cwd=ROOT,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        fake_api.wait_for(lambda method, params: method == "getUpdates", since=mark, timeout=30)
        fake_api.send_text(42, "/start")
        fake_api.wait_for_message(42, contains=WELCOME, timeout=20)
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    assert stdout == ""  # the console would have written a question here
    assert "Traceback" not in stderr


# --------------------------------------------------------------------------------------------
# 2. the token never reaches the logs
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("level", ["DEBUG", "INFO"])
def test_the_token_never_appears_in_the_logs(fake_api, start_bot, level):
    bot = start_bot(fake_api, env={"ADVISOR_LOG_LEVEL": level})
    fake_api.send_text(42, "/start")
    question = fake_api.wait_for_message(42, contains="Question 1 of")
    mark = fake_api.mark()
    fake_api.press(42, question["message_id"], fake_api.buttons(question)[0][1])
    fake_api.wait_for(lambda method, params: method == "sendMessage" and "Question 2 of" in params["text"],
                      since=mark)
    assert bot.stop() == 0
    output = bot.output()
    secret_part = fake_api.token.split(":", 1)[1]
    assert fake_api.token not in output
    assert secret_part not in output
    if level == "DEBUG":
        assert "<token>" in output  # PTB logs the API URL at DEBUG: it was logged, redacted
        assert re.search(r" DEBUG (httpx|httpcore|telegram)[\w.]*: ", output), output[:2000]
    else:
        assert " INFO telegram.ext" in output, output
        assert " DEBUG " not in output


# --------------------------------------------------------------------------------------------
# 3. webhook mode
# --------------------------------------------------------------------------------------------


def webhook_env(port: int, **extra: str) -> dict[str, str]:
    # The public URL must be https (Telegram, and the fake, refuse http); the bot itself listens on
    # plain HTTP behind it, as behind a TLS-terminating proxy.
    return {"TELEGRAM_WEBHOOK_URL": f"https://127.0.0.1:{port}/telegram", "TELEGRAM_WEBHOOK_SECRET": "s3cret",
            "TELEGRAM_WEBHOOK_LISTEN": "127.0.0.1", "TELEGRAM_WEBHOOK_PORT": str(port), **extra}


def start_webhook_bot(fake: FakeBotAPI, start_bot, port: int, **extra: str):
    mark = fake.mark()
    bot = start_bot(fake, env=webhook_env(port, **extra))
    try:
        call = fake.wait_for(lambda method, params: method == "setWebhook", since=mark, timeout=30)
    except TimeoutError:
        bot.stop()
        raise AssertionError(f"the bot did not set its webhook:\n{bot.output()}") from None
    wait_until_listening(port, bot.process)
    return bot, call


def test_webhook_mode_accepts_only_updates_with_the_secret_and_answers_through_the_api(fake_api, start_bot):
    port = closed_port()
    bot, call = start_webhook_bot(fake_api, start_bot, port)
    assert call.params["url"] == f"https://127.0.0.1:{port}/telegram"
    assert call.params["secret_token"] == "s3cret"
    fake_api.add_chat(42)

    assert post_update(port, start_update(1, 42), secret=None) == 403
    assert post_update(port, start_update(2, 42), secret="wrong") == 403
    assert post_update(port, start_update(3, 42), secret="s3cret") == 200

    welcome = fake_api.wait_for_message(42, contains=WELCOME, timeout=20)
    fake_api.wait_for_message(42, contains="Question 1 of", after=welcome["message_id"], timeout=20)
    welcomes = [m for m in fake_api.messages(42) if WELCOME in m["plain"]]
    assert len(welcomes) == 1  # the refused posts were not processed
    assert not any(c.method == "getUpdates" for c in fake_api.calls)  # no polling in webhook mode
    assert bot.stop() == 0
    assert fake_api.refusals == []


def test_webhook_mode_answers_200_only_once_the_update_is_handled_and_committed(fake_api, start_bot, tmp_path):
    port = closed_port()
    bot, _call = start_webhook_bot(fake_api, start_bot, port)
    fake_api.add_chat(42)
    fake_api.latency = 0.3  # every call to the Bot API takes a while: handling the update does too
    assert post_update(port, start_update(7, 42), secret="s3cret") == 200
    texts = [m["plain"] for m in fake_api.messages(42)]  # no waiting: it is done when acknowledged
    assert any(WELCOME in t for t in texts) and any("Question 1 of" in t for t in texts), texts
    with sqlite3.connect(tmp_path / "advisor.db") as connection:
        assert connection.execute("SELECT update_id FROM processed_updates").fetchall() == [(7,)]
    fake_api.latency = 0.0
    assert bot.stop() == 0


def test_the_webhook_path_is_matched_literally(fake_api, start_bot):
    port = closed_port()
    bot, _call = start_webhook_bot(fake_api, start_bot, port, TELEGRAM_WEBHOOK_PATH="tele.gram")
    fake_api.add_chat(42)
    assert post_update(port, start_update(1, 42), secret="s3cret", path="teleXgram") == 404
    assert post_update(port, start_update(2, 42), secret="s3cret", path="tele.gram") == 200
    assert bot.stop() == 0


def test_webhook_mode_keeps_the_webhook_secret_out_of_the_logs(fake_api, start_bot):
    port = closed_port()
    bot, _call = start_webhook_bot(fake_api, start_bot, port, ADVISOR_LOG_LEVEL="DEBUG")
    fake_api.add_chat(42)
    assert post_update(port, start_update(1, 42), secret="s3cret") == 200
    fake_api.wait_for_message(42, contains="Question 1 of", timeout=20)
    assert bot.stop() == 0
    output = bot.output()
    assert fake_api.token not in output
    assert "s3cret" not in output, [line[:200] for line in output.splitlines() if "s3cret" in line]


# --------------------------------------------------------------------------------------------
# 4. PerChatUpdateProcessor: in order within a chat, concurrent across chats
# --------------------------------------------------------------------------------------------

BOT = Bot("123:abc")  # de_json needs a bot; nothing here touches the network


def message_update(update_id: int, chat_id: int) -> Update:
    return Update.de_json(start_update(update_id, chat_id, text="hello"), BOT)


def chats_tracked(processor: PerChatUpdateProcessor) -> set[Any]:
    """The chats the processor keeps something for (locks, counters, queues: any per-chat table)."""
    return {key for value in vars(processor).values() if isinstance(value, dict) for key in value}


async def test_one_chats_updates_run_one_at_a_time_in_arrival_order():
    processor = PerChatUpdateProcessor()
    log: list[str] = []
    running = 0
    overlaps = 0

    async def handle(n: int) -> None:
        nonlocal running, overlaps
        running += 1
        overlaps += running > 1
        log.append(f"start {n}")
        for _ in range(5):  # hand the loop to everyone else a few times
            await asyncio.sleep(0)
        log.append(f"end {n}")
        running -= 1

    tasks = [asyncio.create_task(processor.process_update(message_update(n, 42), handle(n))) for n in range(6)]
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=10)
    assert overlaps == 0
    assert log == [entry for n in range(6) for entry in (f"start {n}", f"end {n}")]


async def test_a_later_update_of_a_chat_waits_even_when_it_could_finish_first():
    processor = PerChatUpdateProcessor()
    started = [asyncio.Event() for _ in range(3)]
    release = [asyncio.Event() for _ in range(3)]
    finished: list[int] = []

    async def handle(n: int) -> None:
        started[n].set()
        await release[n].wait()
        finished.append(n)

    tasks = [asyncio.create_task(processor.process_update(message_update(n, 7), handle(n))) for n in range(3)]
    await asyncio.wait_for(started[0].wait(), timeout=5)
    release[2].set()
    release[1].set()
    for _ in range(20):
        await asyncio.sleep(0)
    assert not started[1].is_set() and not started[2].is_set()  # update 0 still holds the chat
    release[0].set()
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=5)
    assert finished == [0, 1, 2]


async def test_different_chats_are_handled_concurrently():
    processor = PerChatUpdateProcessor()
    a_started, b_started = asyncio.Event(), asyncio.Event()

    async def handle_a() -> None:
        a_started.set()
        await b_started.wait()  # finishes only once chat 2's update has started

    async def handle_b() -> None:
        b_started.set()
        await a_started.wait()

    await asyncio.wait_for(asyncio.gather(processor.process_update(message_update(1, 1), handle_a()),
                                          processor.process_update(message_update(2, 2), handle_b())), timeout=5)


async def test_a_backlog_in_one_chat_does_not_hold_other_chats_back():
    # With max_concurrent_updates=N, N queued updates of one busy chat must not keep every other chat
    # waiting (the default is 256: one person sending 256 messages quickly would stall everybody).
    processor = PerChatUpdateProcessor(max_concurrent_updates=2)
    release_a = asyncio.Event()
    b_started = asyncio.Event()

    async def slow_a() -> None:
        await release_a.wait()

    async def handle_b() -> None:
        b_started.set()

    tasks = [asyncio.create_task(processor.process_update(message_update(n, 1), slow_a())) for n in (1, 2)]
    tasks.append(asyncio.create_task(processor.process_update(message_update(3, 2), handle_b())))
    try:
        await asyncio.wait_for(b_started.wait(), timeout=2)
    except TimeoutError:
        pytest.fail("chat 2's update waited for chat 1's backlog")
    finally:
        release_a.set()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=5)


async def test_the_processor_forgets_a_chat_once_its_updates_are_done():
    processor = PerChatUpdateProcessor()
    gate = asyncio.Event()

    async def handle() -> None:
        await gate.wait()

    async def fail() -> None:
        raise RuntimeError("handler bug")

    tasks = [asyncio.create_task(processor.process_update(message_update(n, 42 + n % 2), handle()))
             for n in range(4)]
    failing = asyncio.create_task(processor.process_update(message_update(9, 42), fail()))
    for _ in range(5):
        await asyncio.sleep(0)
    assert chats_tracked(processor) == {42, 43}
    gate.set()
    await asyncio.wait_for(asyncio.gather(*tasks, failing, return_exceptions=True), timeout=5)
    assert chats_tracked(processor) == set()
    assert processor.current_concurrent_updates == 0


async def test_a_cancelled_update_leaves_no_lock_behind():
    processor = PerChatUpdateProcessor()
    gate = asyncio.Event()

    async def handle() -> None:
        await gate.wait()

    first = asyncio.create_task(processor.process_update(message_update(1, 5), handle()))
    waiting_coroutine = handle()
    second = asyncio.create_task(processor.process_update(message_update(2, 5), waiting_coroutine))
    for _ in range(5):
        await asyncio.sleep(0)
    second.cancel()  # cancelled while queued behind the first
    await asyncio.gather(second, return_exceptions=True)
    gate.set()
    await asyncio.wait_for(first, timeout=5)
    if inspect.getcoroutinestate(waiting_coroutine) == inspect.CORO_CREATED:
        waiting_coroutine.close()  # never to run: no "never awaited" warning
    assert chats_tracked(processor) == set()
    assert processor.current_concurrent_updates == 0


async def test_updates_without_a_chat_or_user_run_without_a_lock():
    processor = PerChatUpdateProcessor()
    seen: list[str] = []

    async def handle() -> None:
        seen.append("ran")
        assert chats_tracked(processor) == set()

    await processor.process_update(Update(update_id=1), handle())
    await processor.process_update("not an update", handle())
    assert seen == ["ran", "ran"]


# --------------------------------------------------------------------------------------------
# 5. split_message
# --------------------------------------------------------------------------------------------


def recommendation_html(engine, renderer, persona: str) -> str:
    step = engine.start()
    for line in PERSONAS[persona]:
        step = engine.answer(step.state, line)
    assert step.kind == "finish"
    return renderer.recommendation(step.recommendation, "html")  # what the bot sends: one screen


def check_chunks(chunks: list[str], limit: int = MESSAGE_LIMIT) -> list[str]:
    """Every chunk is Telegram HTML within the limit; returns their visible texts."""
    visible = []
    for chunk in chunks:
        assert chunk.strip()
        assert visible_length(chunk) <= limit
        text, _entities = parse_html(chunk)  # raises on a cut tag
        assert utf16_length(text) <= limit
        visible.append(text)
    return visible


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def test_a_long_recommendation_is_split_at_blank_lines_into_valid_messages(engine, renderer):
    one = recommendation_html(engine, renderer, "growing_tactical").strip()
    assert split_message(one) == [one]  # one screen is one message
    # copies of it, enough for more than three messages: its blocks, tags and entities, many times over
    copies = 3 * MESSAGE_LIMIT // visible_length(one) + 2
    text = "\n\n".join(f"<b>Copy {n} 🚀</b>\n{one}" for n in range(copies))
    assert visible_length(text) > 3 * MESSAGE_LIMIT
    chunks = split_message(text)
    check_chunks(chunks)
    assert len(chunks) >= 4
    assert "\n\n".join(chunks) == text  # cut only at blank lines, nothing lost or added
    blocks = text.split("\n\n")
    for chunk, following in itertools.pairwise(chunks):
        next_block = following.split("\n\n")[0]
        assert visible_length(f"{chunk}\n\n{next_block}") > MESSAGE_LIMIT  # chunks are filled greedily
        assert next_block in blocks


def test_emoji_count_as_two_towards_the_limit():
    block = "😀" * 1500  # 3000 UTF-16 units, 1500 code points
    chunks = split_message("\n\n".join([block] * 3))
    assert chunks == [block] * 3  # two blocks would be 6002 units, though only 3002 code points
    check_chunks(chunks)


def test_a_block_over_the_limit_is_split_at_line_ends_without_cutting_tags():
    lines = [f"<b>Line {n}</b> <i>{'words & more ' * 20}</i> <code>x&lt;{n}</code>" for n in range(60)]
    block = "\n".join(lines)
    assert visible_length(block) > MESSAGE_LIMIT
    chunks = split_message(f"<u>Intro</u>\n\n{block}\n\n<b>Outro</b>")
    visible = check_chunks(chunks)
    assert squash("".join(visible)) == squash(parse_html(f"<u>Intro</u>\n\n{block}\n\n<b>Outro</b>")[0])
    assert all(chunk.startswith(("<u>", "<b>")) for chunk in chunks)  # every chunk starts at a line start


def test_a_single_enormous_line_is_cut_as_escaped_plain_text():
    source = html.escape("Tom & Jerry <3 😀 " * 900, quote=False)  # escaped, as a template would
    chunks = split_message(f"<i>Before</i>\n\n<b>{source}</b>\n\n<i>After</i>")
    visible = check_chunks(chunks)
    middle = [c for c in chunks if "Jerry" in c]
    assert len(middle) >= 2
    assert all("<b>" not in c and "</b>" not in c for c in middle)  # formatting dropped, not cut
    assert all("&amp;" in c and "&lt;3" in c for c in middle)
    assert squash("".join(visible)) == squash("Before" + "Tom & Jerry <3 😀 " * 900 + "After")


def test_short_text_is_one_message_unchanged():
    assert split_message("<b>Hi</b>\n\nthere") == ["<b>Hi</b>\n\nthere"]
    assert split_message("") == []
    assert split_message("\n\n\n\n") == []


WORD = st.text(alphabet=st.sampled_from("abcxyz&<>\"'😀é "), min_size=1, max_size=12).filter(str.strip)


@st.composite
def html_documents(draw) -> str:
    blocks = []
    for _ in range(draw(st.integers(1, 6))):
        lines = []
        for _ in range(draw(st.integers(1, 5))):
            words = [html.escape(w, quote=False) for w in draw(st.lists(WORD, min_size=1, max_size=8))]
            tag = draw(st.sampled_from(["", "b", "i", "code", "u"]))
            body = " ".join(words)
            lines.append(f"<{tag}>{body}</{tag}>" if tag else body)
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=html_documents(), limit=st.integers(min_value=4, max_value=120))
def test_split_message_always_gives_valid_chunks_with_the_same_visible_text(text, limit):
    chunks = split_message(text, limit)
    visible = check_chunks(chunks, limit)
    assert squash("".join(visible)) == squash(parse_html(text)[0])


# --------------------------------------------------------------------------------------------
# 6. parse_callback
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("data", "press"), [
    ("a:12:stage:0:1", Press("a", 12, "stage", 0, 1)),
    ("t:1:tasks:3:1", Press("t", 1, "tasks", 3, 1)),
    ("d:1:tasks:1", Press("d", 1, "tasks", None, 1)),
    ("k:1:hours:2", Press("k", 1, "hours", None, 2)),
    ("b:1:size:1", Press("b", 1, "size", None, 1)),
    ("x:5:report", Press("x", 5, "report", None)),
    ("x:5:expert", Press("x", 5, "expert", None)),
    ("x:5:new", Press("x", 5, "new", None)),
    ("c:5:yes", Press("c", 5, "yes", None)),
    ("c:5:no", Press("c", 5, "no", None)),
    ("f:no", Press("f", None, "no", None)),
    ("f:yes", Press("f", None, "yes", None)),
    ("m:12:size:1", Press("m", 12, "size", None, 1)),
])
def test_the_callback_data_the_bot_sends_parse(data, press):
    assert parse_callback(data) == press


@pytest.mark.parametrize("data", [
    None, "", ":", "a", "a:12:stage", "a:12:stage:0", "a:12:stage:0:1:1", "t:1:tasks:1", "d:1", "d:1:tasks",
    "d:1:tasks:0:1", "k:1", "b:1:size", "b:1:size:2:1", "a:12:stage:0:v1", "d:1:tasks:x",
    "x:5", "x:5:delete", "x:5:report:1", "c:5:maybe", "c:5", "f:maybe", "f", "f:yes:1",
    "z:1:stage:0", "A:12:stage:0", "a:twelve:stage:0", "a:12:stage:zero", "a:1.5:stage:0", "a:0x1:stage:0",
    "d:one:tasks", "x:five:report", "c::yes", "a:" + "9" * 70 + ":s:0", "a:1:" + "q" * 60 + ":0",
    "f:" + "😀" * 20, "\x00\xff\ufffd", "m:1:size", "m:1:size:0:1", "m:x:size:1",
])
def test_forged_callback_data_is_ignored(data):
    assert parse_callback(data) is None


def test_callback_data_over_64_bytes_is_ignored_even_when_well_formed():
    data = "a:1:" + "é" * 29 + ":0:1"  # 37 characters, 66 bytes
    assert len(data) <= 64 < len(data.encode())
    assert parse_callback(data) is None
    assert parse_callback("a:1:" + "e" * 56 + ":0:1") == Press("a", 1, "e" * 56, 0, 1)  # exactly 64 bytes


@pytest.mark.parametrize("data", ["a: 12:stage:0:1", "a:+12:stage:0:1", "a:1_2:stage:0:1", "a:١٢:stage:0:1",
                                  "a:12:stage:0:1 ", "a:1:stage:0:1\n", "x: 5:report", "a:1:stage:0:01",
                                  "c:٥:yes", "a:012:stage:0:1", "d:1:tasks:+1"])
def test_only_the_exact_digits_the_bot_writes_are_accepted_as_numbers(data):
    # The docstring: None "for anything this bot did not send"; int() also takes spaces, signs,
    # underscores and non-ASCII digits.
    assert parse_callback(data) is None


@settings(max_examples=400, deadline=None)
@given(st.one_of(
    st.text(max_size=80),
    st.binary(max_size=80).map(lambda b: b.decode("latin-1")),
    st.builds(lambda kind, parts: ":".join([kind, *parts]), st.sampled_from("atdkbmxcfz"),
              st.lists(st.text(alphabet="0123456789-+ _x:yesnoreport", max_size=8), max_size=4)),
))
def test_parse_callback_never_raises_on_random_text(data):
    press = parse_callback(data)
    if press is not None:
        assert len(data.encode()) <= 64
        assert press.kind in "atdkbmxcf"
        assert data.startswith(press.kind + ":")


# --------------------------------------------------------------------------------------------
# 7. TokenFilter
# --------------------------------------------------------------------------------------------

TOKEN = DEFAULT_TOKEN  # "123456:TEST-token"


def record(msg: Any, args: Any = (), exc_info: Any = None) -> logging.LogRecord:
    return logging.LogRecord("httpx", logging.INFO, __file__, 1, msg, args, exc_info)


def formatted(rec: logging.LogRecord) -> str:
    assert TokenFilter(TOKEN).filter(rec) is True  # it redacts, never drops
    return logging.Formatter("%(message)s").format(rec)


def test_token_filter_redacts_the_token_in_the_message():
    out = formatted(record(f"POST https://api.telegram.org/bot{TOKEN}/getMe 200 OK"))
    assert out == "POST https://api.telegram.org/bot<token>/getMe 200 OK"


def test_token_filter_redacts_the_token_in_the_arguments():
    out = formatted(record('HTTP Request: %s %s "%s"', ("POST", f"https://x/bot{TOKEN}/getUpdates", "200 OK")))
    assert out == 'HTTP Request: POST https://x/bot<token>/getUpdates "200 OK"'
    out = formatted(record("%(url)s with 100%% of %(n)d", ({"url": f"/bot{TOKEN}/x", "n": 3},)))
    assert out == "/bot<token>/x with 100% of 3"


def test_token_filter_leaves_other_records_alone():
    rec = record("Application started %s", ("now",))
    assert formatted(rec) == "Application started now"
    assert rec.args == ("now",)


def test_token_filter_redacts_the_token_in_a_logged_exception():
    try:
        raise RuntimeError(f"The token `{TOKEN}` was rejected by the server.")  # as PTB's InvalidToken says
    except RuntimeError:
        rec = record("Network Retry Loop: Invalid token. Aborting.", exc_info=sys.exc_info())
    out = formatted(rec)
    assert "RuntimeError" in out
    assert TOKEN not in out


def test_hide_token_in_logs_filters_every_root_handler():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    httpx_level = logging.getLogger("httpx").level
    root.addHandler(handler)
    try:
        hide_token_in_logs(TOKEN)
        logging.getLogger("telegram.ext.ExtBot").warning("Set Bot API URL: %s", f"http://h/bot{TOKEN}")
    finally:
        root.removeHandler(handler)
        logging.getLogger("httpx").setLevel(httpx_level)
    assert stream.getvalue() == "Set Bot API URL: http://h/bot<token>\n"
