"""Reliability, part two: Telegram's errors and a hostile network, SIGTERM, a second instance, the
webhook, and the database (locks, every earlier schema). Part one and the shared helpers are in
tests/test_reliability.py; the two files run on two workers side by side.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest

from advisor.channels.telegram import CHANNEL
from advisor.service import build_service
from advisor.store import SCHEMA_VERSION
from tests import telegram_walk as tw
from tests.conftest import FIXTURES, run_bot
from tests.fake_telegram import NOT_MODIFIED, QUERY_TOO_OLD, FakeBotAPI
from tests.test_reliability import (  # the helpers both parts share
    ALICE,
    BOB,
    CAROL,
    SALES_CHAT,
    FlakyGateway,
    V,
    answered_once,
    committed,
    complete,
    conversation_ids,
    in_process,
    log_is_clean,
    person_turns,
    rows,
    sends_to,
    set_idle,
    telegram_env,
    wait_until,
)
from tests.test_telegram_run import closed_port, post_update, start_update, start_webhook_bot
from tests.test_update_fuzz import DATE, InProcessBot, private_chat

# ============================================================================================
# 9. Telegram's errors
# ============================================================================================


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "advisor.db"


@pytest.fixture
def gateway(fake_api: FakeBotAPI) -> Iterator[FlakyGateway]:
    made = FlakyGateway(fake_api.url)
    yield made
    made.close()


def test_a_429_waits_retry_after_and_delivers_once(fake_api, start_bot, db):
    fake = fake_api
    bot = start_bot(fake, db=db)
    fake.max_messages_per_second = 1  # the welcome and question 1 within a second: the second gets a 429
    fake.send_text(ALICE, "/start")
    wait_until(lambda: fake.too_many_requests >= 1, what="a 429")
    refused_at = time.monotonic()
    question = fake.wait_for_message(ALICE, contains="Question 1 of")
    assert time.monotonic() - refused_at >= 0.8, "retried before retry_after (1 s)"
    tw.barrier(fake, ALICE)
    texts = [m["plain"] for m in fake.messages(ALICE)]
    assert sum("Question 1 of" in t for t in texts) == 1 and sum(t.startswith("Hello Ana!") for t in texts) == 1
    assert texts.index(question["plain"]) == 1  # after the welcome, as sent
    assert len([r for r in sends_to(fake, ALICE) if r.status == 200]) == len(texts)
    log_is_clean(bot)


def test_errors_on_getupdates_back_off_and_lose_nothing(fake_api, gateway, start_bot, db):
    fake = fake_api
    bot = start_bot(fake, env={"TELEGRAM_API_URL": gateway.url, "ADVISOR_LOG_LEVEL": "INFO"}, db=db)
    gateway.faults = ["502", "drop", "504"]  # three answers carrying the update lost on the way
    fake.send_text(ALICE, "/start")
    fake.wait_for_message(ALICE, contains="Question 1 of", timeout=30)
    tw.barrier(fake, ALICE)
    texts = [m["plain"] for m in fake.messages(ALICE)]
    assert sum(t.startswith("Hello Ana!") for t in texts) == 1 and sum("Question 1 of" in t for t in texts) == 1
    assert [c.params["chat_id"] for c in fake.calls if c.method == "sendMessage"].count(ALICE) == len(texts)
    faults = [(at, what) for at, what in gateway.events if what != "held"]
    kinds = [what for _at, what in faults]
    assert kinds[kinds.index("502"):kinds.index("502") + 4] == ["502", "drop", "504", "forwarded"], kinds
    first = kinds.index("502")
    gaps = [faults[first + n + 1][0] - faults[first + n][0] for n in range(3)]
    assert all(gap >= 0.8 for gap in gaps), f"no back-off between attempts: {gaps}"
    output = bot.output()
    assert fake.token not in output and fake.token.split(":")[1] not in output  # not even in a traceback
    assert bot.stop() == 0


def test_an_update_that_cannot_be_parsed_is_skipped_confirmed_and_logged_by_id_only(fake_api, start_bot, db):
    fake = fake_api
    bot = start_bot(fake, env={"ADVISOR_LOG_LEVEL": "INFO"}, db=db)
    mallory = {"id": 666, "is_bot": False, "first_name": "Mallory"}
    chat = {"id": 666, "type": "private", "first_name": "Mallory"}
    bad = [
        {"message": {"message_id": 1, "date": "yesterday", "from": mallory, "chat": chat, "text": "secret words"}},
        {"message": {"message_id": 2, "from": mallory, "chat": chat, "text": "secret words"}},  # no date
        {"callback_query": {"id": "77", "chat_instance": "1", "data": "x", "message": {
            "message_id": 3, "date": 1, "chat": chat, "text": "secret words"}}},  # no from
        {"message": {"message_id": 4, "date": 1, "from": mallory, "chat": chat, "text": "secret words",
                     "entities": "x"}},
    ]
    ids = [fake.push_update(update) for update in bad]
    fake.send_text(ALICE, "/start")  # in the same batch as the bad ones
    fake.wait_for_message(ALICE, contains="Question 1 of", timeout=20)
    tw.barrier(fake, ALICE)
    confirmed = [c.params.get("offset") or 0 for c in fake.calls if c.method == "getUpdates"]
    assert max(confirmed) > max(ids)  # confirmed: a restart is not stuck on them either
    output = bot.output()
    assert "secret words" not in output and "Mallory" not in output and "CRITICAL" not in output, output
    unreadable = [ids[0], ids[1], ids[3]]  # the press without "from" parses, and is ignored downstream
    assert all(f"skipped update {i}" in output for i in unreadable), output
    polls = [c for c in fake.calls if c.method == "getUpdates"]
    assert len(polls) < 40, f"{len(polls)} getUpdates calls: fetching the same batch again and again"
    assert bot.stop() == 0
    log_is_clean(bot)


@pytest.mark.parametrize("fault", ["401", "404"])
def test_a_refused_token_while_polling_exits_non_zero_with_one_line_instead_of_living_on_deaf(
        fault, fake_api, gateway, start_bot, db):
    fake = fake_api
    bot = start_bot(fake, env={"TELEGRAM_API_URL": gateway.url}, db=db)
    gateway.faults = [fault]
    fake.send_text(ALICE, "/start")
    try:
        code = bot.process.wait(15)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"still running after the token was refused:\n{bot.output()}") from None
    output = bot.output()
    assert code == 1, output
    assert "refused TELEGRAM_BOT_TOKEN while polling" in output, output
    assert "Traceback" not in output and fake.token not in output, output


def test_a_getupdates_answer_that_is_not_a_list_is_retried_with_back_off(fake_api, gateway, start_bot, db):
    fake = fake_api
    bot = start_bot(fake, env={"TELEGRAM_API_URL": gateway.url}, db=db)
    gateway.faults = ["not_a_list", "not_a_list"]
    fake.send_text(ALICE, "/start")
    fake.wait_for_message(ALICE, contains="Question 1 of", timeout=30)
    kinds = [(at, what) for at, what in gateway.events if what != "held"]
    faults = [at for at, what in kinds if what == "not_a_list"]
    assert len(faults) == 2 and faults[1] - faults[0] >= 0.8  # backed off, not a tight loop
    assert bot.process.poll() is None
    assert bot.stop() == 0
    log_is_clean(bot)


def test_sigterm_exits_within_5_s_while_every_getupdates_answers_429(fake_api, gateway, start_bot, db):
    # a fresh attack: the stop's own last getUpdates got the 429 too, and waited it out (60 s)
    fake = fake_api
    bot = start_bot(fake, env={"TELEGRAM_API_URL": gateway.url}, db=db)
    tw.start(fake, ALICE)
    gateway.from_now_on = "429"
    wait_until(lambda: any(what == "429" for _at, what in gateway.events), what="a 429 on getUpdates")
    start = time.monotonic()
    code = bot.stop()
    assert code == 0 and time.monotonic() - start < 5, bot.output()
    log_is_clean(bot)


def test_a_token_refused_while_an_update_is_handled_exits_1_with_one_line(fake_api, gateway, start_bot, db):
    # a fresh attack: the refusal stopped the bot twice (the stop's own getUpdates was refused too):
    # "unexpected RuntimeError: Event loop stopped before Future completed" and ~85 lines of tracebacks
    fake = fake_api
    bot = start_bot(fake, env={"TELEGRAM_API_URL": gateway.url}, db=db)
    tw.start(fake, ALICE)
    fake.before_call = lambda method, params: time.sleep(1) if method == "sendMessage" else None
    fake.send_text(ALICE, "/restart")  # in flight (its message is slow) when the token is refused
    wait_until(lambda: any(what == "forwarded" for _at, what in gateway.events[-1:]), what="the update fetched")
    gateway.from_now_on = "401"
    try:
        code = bot.process.wait(15)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"still running after the token was refused:\n{bot.output()}") from None
    output = bot.output()
    assert code == 1 and "refused TELEGRAM_BOT_TOKEN while polling" in output, output
    assert "Traceback" not in output and "unexpected" not in output and "Unclosed" not in output, output


def test_a_getupdates_list_of_no_updates_is_retried_with_back_off(fake_api, gateway, start_bot, db):
    # a fresh attack: [1, "x", null] was fetched again at once, 9,527 times in 8 s
    fake = fake_api
    bot = start_bot(fake, env={"TELEGRAM_API_URL": gateway.url}, db=db)
    tw.start(fake, ALICE)
    gateway.from_now_on = "junk"
    fake.send_text(BOB, "/help")  # the poll in flight ends: with junk, and so does every poll after it
    wait_until(lambda: any(what == "junk" for _at, what in gateway.events), what="junk on getUpdates")
    time.sleep(3)
    junk = [at for at, what in gateway.events if what == "junk"]
    assert 2 <= len(junk) <= 5, len(junk)  # backed off: 1 s, 2 s, ...
    gateway.from_now_on = None
    mark = fake.mark()
    fake.send_text(ALICE, "/restart")
    tw.wait_question(fake, ALICE, mark, "stage")  # and it recovers
    fake.wait_for_message(BOB, contains="/forget")
    assert bot.stop() == 0


def test_sigterm_exits_within_5_s_while_the_bot_api_is_unreachable(fake_api, gateway, start_bot, db):
    # a fresh attack: python-telegram-bot's back-off sleep after network failures (growing to 30 s)
    # held SIGTERM for 20 s, then logged three tracebacks
    fake = fake_api
    bot = start_bot(fake, env={"TELEGRAM_API_URL": gateway.url}, db=db)
    tw.start(fake, ALICE)
    gateway.from_now_on = "502"
    fake.send_text(BOB, "/help")  # the poll in flight ends: with a 502, and so does every poll after it
    wait_until(lambda: sum(what == "502" for _at, what in gateway.events) >= 4, what="four 502s",
               timeout=20)  # the back-off has grown to 3.4 s by now
    start = time.monotonic()
    assert bot.stop() == 0
    assert time.monotonic() - start < 3, bot.output()
    log_is_clean(bot)


def test_another_poller_with_the_same_token_is_one_line_not_a_traceback_each_time(fake_api, gateway, start_bot, db):
    # a fresh attack: every 409 Conflict on getUpdates logged a full traceback (140 lines in 8 s)
    fake = fake_api
    bot = start_bot(fake, env={"TELEGRAM_API_URL": gateway.url}, db=db)
    tw.start(fake, ALICE)
    gateway.from_now_on = "409"
    fake.send_text(BOB, "/help")  # the poll in flight ends: with a 409, and so does every poll after it
    wait_until(lambda: sum(what == "409" for _at, what in gateway.events) >= 2, what="two 409s")
    gateway.from_now_on = None
    fake.wait_for_message(BOB, contains="/forget")  # it goes on once the other poller is gone
    assert bot.stop() == 0
    assert "another process is polling with this token" in bot.output()
    log_is_clean(bot)


def test_updates_of_odd_shapes_are_ignored_without_a_traceback_or_an_apology(fake_api, start_bot, db):
    # a fresh attack: callback data that is a number or holds a lone surrogate, a message without a
    # sender, a chat id given as text: tracebacks, an apology, presses left unanswered
    fake = fake_api
    bot = start_bot(fake, db=db)
    q1 = tw.start(fake, ALICE)
    shown = {"message_id": q1["message_id"], "date": DATE, "chat": private_chat(ALICE), "text": "x"}
    queries = []
    for n, data in enumerate((5, "a:1:stage:\ud800:1", ["a"])):
        query = {"id": f"77{n}", "from": {"id": ALICE, "is_bot": False, "first_name": "Ana"},
                 "chat_instance": "1", "data": data, "message": shown}
        fake.push_update({"callback_query": query})
        queries.append(f"77{n}")
    fake.push_update({"message": {"message_id": 900, "date": DATE, "chat": private_chat(BOB), "text": "/start"}})
    fake.push_update({"message": {"message_id": 901, "date": DATE, "from": {"id": CAROL, "is_bot": False,
                                  "first_name": "C"}, "chat": {"id": str(CAROL), "type": "private"}, "text": "hi"}})
    mark = fake.mark()
    fake.send_text(ALICE, "/back")  # and the bot goes on serving
    fake.wait_for(lambda m, p: m == "sendMessage" and p["chat_id"] == ALICE, since=mark)
    tw.barrier(fake, ALICE)
    assert fake.pending_updates == []  # each one confirmed
    for query in queries[:2]:  # the presses it could read as presses are answered
        tw.callback_answer(fake, query)
    assert not any("Sorry, something went wrong" in m["plain"] for chat in (ALICE, BOB, CAROL)
                   for m in fake.messages(chat))
    log_is_clean(bot)


def test_a_huge_retry_after_on_getupdates_does_not_stop_sigterm(fake_api, gateway, start_bot, db):
    fake = fake_api
    bot = start_bot(fake, env={"TELEGRAM_API_URL": gateway.url}, db=db)
    gateway.faults = ["429"]
    fake.send_text(ALICE, "/start")
    wait_until(lambda: any(what == "429" for _at, what in gateway.events), what="the 429 on getUpdates")
    time.sleep(0.5)  # the bot is waiting now
    start = time.monotonic()
    code = bot.stop()
    assert code == 0 and time.monotonic() - start < 5, bot.output()
    log_is_clean(bot)


def test_an_edited_old_command_does_not_run_again_and_a_business_message_starts_nothing(fake_api, start_bot, db):
    fake = fake_api
    bot = start_bot(fake, db=db)
    tw.start(fake, ALICE)
    tw.answer_line(fake, ALICE, "3")  # stage: Question 2 now
    fake.send_text(ALICE, "/back")
    fake.wait_for_message(ALICE, contains="Question 1 of", after=tw.newest_id(fake, ALICE) - 1)
    back = fake.last_user_message_id(ALICE)
    tw.answer_line(fake, ALICE, "3")
    tw.barrier(fake, ALICE)
    assert rows(db, "SELECT state FROM conversations") == [("size",)]
    before = tw.exported(db, ALICE)
    assert before[0]["answers"] == {"stage": "growing"} and before[0]["status"] == "in_progress"
    fake.send_text(ALICE, "hello")
    fake.edit_text(ALICE, fake.last_user_message_id(ALICE), "/restart")  # an edit: Telegram sends edited_message
    fake.edit_text(ALICE, back, "/back")
    tw.barrier(fake, ALICE)
    after = tw.exported(db, ALICE)
    assert [(c["status"], c["answers"]) for c in after] == [("in_progress", {"stage": "growing"})]
    assert rows(db, "SELECT state FROM conversations") == [("size",)]  # not moved back to the stage
    person = {"id": 555, "is_bot": False, "first_name": "Biz"}
    fake.push_update({"business_message": {
        "message_id": 1, "date": 1, "business_connection_id": "bc1", "from": person,
        "chat": {"id": 555, "type": "private", "first_name": "Biz"}, "text": "/start",
        "entities": [{"type": "bot_command", "offset": 0, "length": 6}]}})
    tw.barrier(fake, ALICE)
    assert rows(db, "SELECT COUNT(*) FROM conversations WHERE user_id = '555'") == [(0,)]
    log_is_clean(bot)


def test_a_400_is_not_retried(fake_api, start_bot, db):
    fake = fake_api  # the sales chat is one the fake does not know: 400 "chat not found"
    bot = start_bot(fake, env={"ADVISOR_SALES_CHAT_ID": str(SALES_CHAT)}, db=db)
    complete(fake, ALICE)
    fake.wait_for_refusal(lambda r: r.params.get("chat_id") == SALES_CHAT)
    tw.barrier(fake, ALICE)
    attempts = sends_to(fake, SALES_CHAT)
    assert [(r.status, r.description) for r in attempts] == [(400, "Bad Request: chat not found")]
    assert tw.exported(db, ALICE)[0]["status"] == "completed"
    log_is_clean(bot)


def test_message_is_not_modified_counts_as_success(fake_api, start_bot, db):
    fake = fake_api
    bot = start_bot(fake, db=db)
    tw.start(fake, ALICE)
    first_tasks = tw.answer_walk(fake, ALICE, ["3", "3", "1", "1", "skip"])  # nothing pre-ticked at "tasks"
    mark = fake.mark()
    fake.push_update({"message": {"message_id": 900, "date": 1, "from": {"id": ALICE, "is_bot": False,
                      "first_name": "Ana"}, "chat": {"id": ALICE, "type": "private", "first_name": "Ana"},
                      "sticker": {"file_id": "CAAC", "file_unique_id": "AgAD", "type": "regular", "width": 1,
                                  "height": 1, "is_animated": False, "is_video": False}}})
    second_tasks = tw.wait_question(fake, ALICE, mark, "tasks")  # the same question again, below
    tw.toggle(fake, ALICE, first_tasks, "Lead research")  # ticked on the first copy ...
    mark = fake.mark()
    query = tw.press_option(fake, ALICE, "Lead research", second_tasks)  # ... unticked on the second
    answer = answered_once(fake, query)
    fake.wait_for_refusal(lambda r: r.method == "editMessageReplyMarkup")
    tw.barrier(fake, ALICE)
    assert answer.get("text") is None
    assert [(r.method, r.description) for r in fake.refusals] == [("editMessageReplyMarkup", NOT_MODIFIED)]
    assert [c.method for c in fake.calls[mark:] if c.method not in ("getUpdates", "answerCallbackQuery")] == [
        "sendMessage"]  # /help's answer: no apology, nothing else
    [cid] = conversation_ids(db, ALICE)
    assert json.loads(rows(db, "SELECT context FROM conversations WHERE id = ?", [cid])[0][0])["proposed"] == []
    log_is_clean(bot)


def test_query_is_too_old_is_ignored():
    async def scenario() -> None:
        service = in_process()
        try:
            async with InProcessBot(service) as bot:
                await bot.text(ALICE, "/start")
                bot.stub.faults["answerCallbackQuery"] = [(400, QUERY_TOO_OLD)]  # the bot was down a while
                await bot.press(ALICE, f"a:1:stage:2:{V}", bot.last_keyboard(ALICE))
                assert bot.errors == []
                assert service.store.get(1).state.answers == {"stage": "growing"}
                assert "Question 2 of" in bot.stub.sent()[-1]["text"]
        finally:
            service.store.close()

    asyncio.run(scenario())


def test_a_person_who_blocked_the_bot_is_marked_not_retried_and_not_reminded(fake_api, start_bot, db):
    fake = fake_api
    bot = start_bot(fake, env={"ADVISOR_NUDGE_AFTER": "1h"}, db=db)
    tw.start(fake, ALICE)
    tw.start(fake, BOB)
    fake.block(ALICE)
    update_id = fake.send_text(ALICE, "3")  # taken, but the next question cannot be delivered
    wait_until(lambda: rows(db, "SELECT 1 FROM blocked WHERE user_id = ?", [str(ALICE)]), what="the block mark")
    wait_until(lambda: committed(db, update_id), what="the update's record")
    assert [r.status for r in sends_to(fake, ALICE) if "Question 2 of" in r.params.get("text", "")] == [403]
    assert tw.exported(db, ALICE)[0]["answers"] == {"stage": "growing"}
    assert bot.stop() == 0
    # a day later, the bot starts again: Bob (idle too) gets his one reminder, Alice nothing
    set_idle(db, ALICE, 1)
    set_idle(db, BOB, 1)
    tried = len(sends_to(fake, ALICE))
    restarted = start_bot(fake, env={"ADVISOR_NUDGE_AFTER": "1h"}, db=db)
    fake.wait_for_message(BOB, contains="Question 1 of", count=4)  # welcome, question, reminder, question
    assert len(sends_to(fake, ALICE)) == tried
    # she unblocks the bot and writes again: the mark goes, she is answered
    fake.block(ALICE, False)
    fake.send_text(ALICE, "/start")
    fake.wait_for_message(ALICE, contains="Question 2 of", timeout=20)
    assert rows(db, "SELECT 1 FROM blocked WHERE user_id = ?", [str(ALICE)]) == []
    log_is_clean(bot, restarted)


# ============================================================================================
# 10. SIGTERM: in-flight updates finish, everything is committed, exit 0 within 5 s
# ============================================================================================


def test_sigterm_finishes_the_update_in_flight_commits_and_exits_0_within_5_s(fake_api, start_bot, db):
    fake = fake_api
    bot = start_bot(fake, db=db)
    q1 = tw.start(fake, ALICE)
    fake.latency = 0.3  # each Bot API call takes 0.3 s: the answer takes about a second
    mark = fake.mark()
    tw.press_option(fake, ALICE, "Growing", q1)
    fake.wait_for(lambda m, p: m == "answerCallbackQuery", since=mark)  # the bot is answering
    stopped_at = time.monotonic()
    bot.process.send_signal(signal.SIGTERM)
    code = bot.process.wait(10)
    took = time.monotonic() - stopped_at
    assert code == 0, bot.output()
    assert took < 5, f"took {took:.1f} s to stop"
    assert "Question 2 of" in fake.messages(ALICE)[-1]["plain"], "the next question was not sent"
    [cid] = conversation_ids(db, ALICE)
    row = rows(db, "SELECT answers, state, asked_question FROM conversations WHERE id = ?", [cid])[0]
    assert (json.loads(row[0]), row[1], row[2]) == ({"stage": "growing"}, "size", "size")
    assert person_turns(db, cid) == [("stage", "Growing: scaling up")]
    assert fake.pending_updates == []  # confirmed: not delivered again to the next process
    bot.stop()
    log_is_clean(bot)


def test_sigterm_stops_within_5_s_with_lead_cards_queued_for_the_group(fake_api, start_bot, db):
    fake = fake_api
    fake.add_chat(SALES_CHAT, first_name="Sales", chat_type="supergroup")
    service = in_process(db)
    for n in range(15):  # fifteen cards for a group that takes 20 messages a minute: 40 s of sending
        outcome = service.open("telegram", str(5000 + n), None)
        service.store.queue_alert(outcome.conversation.id, "completed")
    service.store.close()
    bot = start_bot(fake, env={"ADVISOR_SALES_CHAT_ID": str(SALES_CHAT)}, db=db)
    fake.wait_for_message(SALES_CHAT, contains="New recommendation", count=2, timeout=20)
    stopped_at = time.monotonic()
    bot.process.send_signal(signal.SIGTERM)
    code = bot.process.wait(40)
    took = time.monotonic() - stopped_at
    assert code == 0, bot.output()
    assert took < 5, f"took {took:.1f} s to stop"
    sent = len(fake.messages(SALES_CHAT))
    assert rows(db, "SELECT COUNT(*) FROM lead_alerts") == [(15 - sent,)]  # the rest waits for the next start
    bot.stop()
    log_is_clean(bot)


# ============================================================================================
# 11. A second instance on the same database exits at once with a clear message
# ============================================================================================


def test_a_second_instance_on_the_same_database_exits_at_once(fake_api, start_bot, db):
    fake = fake_api
    first = start_bot(fake, db=db)
    started = time.monotonic()
    second = run_bot("telegram", env=telegram_env(fake), db=db, timeout=30)
    took = time.monotonic() - started
    assert second.returncode != 0
    assert took < 10, took
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1, second.stderr
    assert lines[0].startswith("error: another advisor bot") and f"pid {first.process.pid}" in lines[0], lines[0]
    assert str(db) in lines[0]
    assert fake.conflicts == []  # it never polled
    tw.start(fake, ALICE)  # the first goes on
    tw.assert_clean(fake, first)


# ============================================================================================
# 12. Webhook: missing or wrong secret 403, oversized body 413, not an update 400
# ============================================================================================


def raw_post(port: int, body: bytes | list[bytes], secret: str | None = "s3cret",
             headers: dict[str, str] | None = None) -> int:
    """POST to the webhook (a list of bytes: chunked, without a length); the status, or 0 if the
    server hung up on us before answering."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    sent = {"Content-Type": "application/json", **(headers or {})}
    if secret is not None:
        sent["X-Telegram-Bot-Api-Secret-Token"] = secret
    try:
        if isinstance(body, list):
            connection.request("POST", "/telegram", body=iter(body), headers=sent, encode_chunked=True)
        else:
            connection.request("POST", "/telegram", body=body, headers=sent)
        return connection.getresponse().status
    except (BrokenPipeError, ConnectionResetError):
        with suppress(Exception):
            return connection.getresponse().status
        return 0
    finally:
        connection.close()


def test_the_webhook_refuses_what_is_not_an_update_from_telegram(fake_api, start_bot):
    fake = fake_api
    port = closed_port()
    bot, _call = start_webhook_bot(fake, start_bot, port)
    fake.add_chat(ALICE)
    big = json.dumps({"update_id": 1, "message": {"text": "x" * (2 << 20)}}).encode()
    assert raw_post(port, big, secret=None) == 403
    assert raw_post(port, big, secret="wrong") == 403
    assert raw_post(port, b"{}", secret="S3CRET") == 403
    assert raw_post(port, big) == 413
    assert raw_post(port, b'{"update_id": 1, "x": "' + b"x" * (5 << 20) + b'"}') == 413  # over tornado's own cap
    assert raw_post(port, [b"x" * (256 << 10)] * 5) == 413  # chunked, no Content-Length: counted as it comes
    for body in (b"", b"not json", b"[1, 2]", b'"update"', b"{}", b'{"update_id": "1"}', b'{"update_id": 1.5}',
                 b'{"update_id": 7, "message": {"message_id": "x"}}', b"\xff\xfe"):
        assert raw_post(port, body) == 400, body
    # a real update: handled; Telegram sending it again (no answer in time): handled once
    update = start_update(1001, ALICE)
    assert post_update(port, update, secret="s3cret") == 200
    fake.wait_for_message(ALICE, contains="Question 1 of", timeout=20)
    assert post_update(port, update, secret="s3cret") == 200
    mark = fake.mark()
    assert post_update(port, start_update(1002, ALICE, "/help"), secret="s3cret") == 200
    fake.wait_for(lambda m, p: m == "sendMessage" and "/forget:" in p["text"], since=mark, timeout=20)
    assert sum("Question 1 of" in m["plain"] for m in fake.messages(ALICE)) == 1
    assert sum(m["plain"].startswith("Hello Ana!") for m in fake.messages(ALICE)) == 1
    assert bot.stop() == 0
    log_is_clean(bot)




# ============================================================================================
# 16. The database: a busy timeout; every earlier schema version migrates without loss; an unusable
#     path fails at start with a clear message
# ============================================================================================


def hold_write_lock(db: Path, longest: float) -> tuple[threading.Thread, threading.Event]:
    """Another connection takes SQLite's write lock and holds it until ``release`` is set (at most
    ``longest`` seconds); returns once the lock is held: (its thread, release)."""
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        connection = sqlite3.connect(db, timeout=5)
        connection.execute("BEGIN IMMEDIATE")
        locked.set()
        release.wait(longest)
        connection.commit()
        connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    assert locked.wait(5)
    return holder, release


def test_a_write_waits_for_another_writer_instead_of_failing(db):
    service = build_service(db)  # the store exactly as the bot opens it
    try:
        assert service.store.db.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000
        outcome = service.open(CHANNEL, str(ALICE))
        # another process (an export, the dashboard) writing for a moment
        holder, release = hold_write_lock(db, longest=10)
        threading.Timer(0.4, release.set).start()
        started = time.monotonic()
        service.answer(outcome.conversation, "3")  # blocked until the other commits: then it goes through
        assert time.monotonic() - started >= 0.3
        holder.join(5)
        assert service.store.get(outcome.conversation.id).state.answers == {"stage": "growing"}
    finally:
        service.store.close()


def test_an_outside_write_lock_longer_than_the_busy_timeout_loses_no_answer_and_freezes_nothing(
        fake_api, start_bot, db):
    fake = fake_api
    bot = start_bot(fake, db=db)
    q1 = tw.start(fake, ALICE)
    mark = fake.mark()
    last = fake.send_text(ALICE, "/help")
    fake.wait_for(lambda m, p: m == "sendMessage" and "/forget:" in p["text"], since=mark)
    wait_until(lambda: committed(db, last), what="the last update's record")  # every write done
    holder, release = hold_write_lock(db, longest=20)  # e.g. someone in the sqlite3 shell, a transaction open
    mark = fake.mark()
    tw.press_option(fake, ALICE, "Growing", q1)  # needs the database: waits for the lock ...
    time.sleep(6.5)  # ... longer than SQLite's busy timeout (5 s), which failed the update before
    assert fake.pending_updates == []  # the bot kept fetching: its event loop was not blocked
    release.set()
    holder.join(10)
    tw.wait_question(fake, ALICE, mark, "size")  # then it went through
    assert tw.exported(db, ALICE)[0]["answers"] == {"stage": "growing"}
    log_is_clean(bot)


def lock_when(fake: FakeBotAPI, db: Path, method: str, text: str = "") -> dict[str, Any]:
    """Take SQLite's write lock from another connection the first time the bot calls ``method``
    (with ``text`` in its text), before the fake carries the call out: mid-update."""
    taken: dict[str, Any] = {}

    def hook(called: str, params: dict[str, Any]) -> None:
        if called == method and text in str(params.get("text", "")) and not taken:
            taken["holder"], taken["release"] = hold_write_lock(db, longest=20)

    fake.before_call = hook
    return taken


def test_a_write_lock_taken_in_the_middle_of_an_update_freezes_no_chat(fake_api, start_bot, db):
    fake = fake_api
    bot = start_bot(fake, db=db)
    q1 = tw.start(fake, ALICE)
    taken = lock_when(fake, db, "sendMessage", "Question 2")  # after the answer's turn, before the rest
    mark = fake.mark()
    tw.press_option(fake, ALICE, "Growing", q1)
    size = tw.wait_question(fake, ALICE, mark, "size")
    wait_until(lambda: "holder" in taken, what="the lock taken")
    fake.send_text(BOB, "/start")  # someone else, while the lock is held
    time.sleep(2)  # SQLite's busy wait (5 s) on the event loop held every chat before
    assert fake.pending_updates == []  # the bot kept fetching: its event loop was not blocked
    mark = fake.mark()
    taken["release"].set()
    taken["holder"].join(10)
    tw.wait_question(fake, BOB, 0, "stage")  # Bob's update waited off the loop, then went through
    tw.press_option(fake, ALICE, "11-50", size)
    tw.wait_question(fake, ALICE, mark, "industry")
    assert tw.exported(db, ALICE)[0]["answers"] == {"stage": "growing", "size": "medium"}  # once each
    assert not any("Sorry, something went wrong" in m["plain"] for m in fake.messages(ALICE))
    assert "write lock" in bot.output()
    log_is_clean(bot)


def test_an_update_whose_first_write_met_a_write_lock_is_handled_again_once_it_is_free(fake_api, start_bot, db):
    fake = fake_api
    bot = start_bot(fake, db=db)
    what_next = complete(fake, ALICE)
    # "Start over" answers the press first, then writes: the lock comes in between
    taken = lock_when(fake, db, "answerCallbackQuery")
    mark = fake.mark()
    query = tw.press(fake, ALICE, what_next, tw.data_for(what_next, tw.START_OVER))
    wait_until(lambda: "holder" in taken, what="the lock taken")
    time.sleep(1)  # the write failed after the short busy wait; the update waits for the lock ...
    assert [r["status"] for r in tw.exported(db, ALICE)] == ["completed"]
    taken["release"].set()
    taken["holder"].join(10)
    tw.wait_question(fake, ALICE, mark, "stage")  # ... and is handled again, once it is free
    tw.barrier(fake, ALICE)
    assert [r["status"] for r in tw.exported(db, ALICE)] == ["completed", "in_progress"]  # one new, not two
    tw.callback_answer(fake, query)
    assert not any("Sorry, something went wrong" in m["plain"] for m in fake.messages(ALICE))
    log_is_clean(bot)


def test_a_write_lock_held_past_the_wait_tells_the_person_their_answer_was_not_kept(tmp_path, monkeypatch):
    # a fresh attack: after a lock of 70 s the press was never answered, the answer not stored, the
    # update confirmed: gone without a word (the wait is cut to half a second here)
    from advisor.channels import telegram
    from advisor.channels.telegram import processor

    monkeypatch.setattr(processor, "LOCK_WAIT_SECONDS", 0.5)
    path = tmp_path / "advisor.db"

    async def scenario() -> None:
        service = in_process(path)
        service.store.wait_for_writers(telegram.LOOP_BUSY_MS)  # as build_application does
        try:
            async with InProcessBot(service) as bot:
                bot.app.error_handlers.clear()  # the channel's own error handler, not the recorder
                bot.app.add_error_handler(telegram.TelegramChannel.on_error.__get__(bot.channel))
                processor = bot.app.update_processor
                processor.again = bot.app.process_update  # type: ignore[attr-defined]
                processor.sorry = lambda update: bot.channel.busy(update, bot.app.bot)  # type: ignore[attr-defined]
                await bot.text(ALICE, "/start")
                holder, release = hold_write_lock(path, longest=10)
                try:
                    mark = bot.stub.mark()
                    await bot.text(ALICE, "3")
                finally:
                    release.set()
                    holder.join(10)
                said = [m["text"] for m in bot.stub.sent(since=mark)]
                assert len(said) == 1 and "couldn't save that just now" in said[0], said
                assert service.store.latest(CHANNEL, str(ALICE)).state.answers == {}
                mark = bot.stub.mark()
                await bot.text(ALICE, "3")  # sent again, as asked: taken
                assert service.store.latest(CHANNEL, str(ALICE)).state.answers == {"stage": "growing"}
        finally:
            service.store.close()

    asyncio.run(scenario())


SCHEMA_VERSIONS = list(range(1, SCHEMA_VERSION))


@pytest.mark.parametrize("version", SCHEMA_VERSIONS, ids=[f"v{v}" for v in SCHEMA_VERSIONS])
def test_the_bot_goes_on_with_a_database_of_every_earlier_schema_version(version, tmp_path):
    fixture = FIXTURES / "schema" / f"v{version}.db"
    if not fixture.exists():
        pytest.skip(f"{fixture} is not there yet (tests/fixtures/schema/make_fixtures.py writes it)")
    path = tmp_path / "old.db"
    shutil.copyfile(fixture, path)

    async def scenario() -> None:
        service = in_process(path)
        try:
            before = [(c.id, c.status, dict(c.state.answers), c.recommendation) for c in service.store.conversations()]
            assert len(before) == 2
            async with InProcessBot(service) as bot:
                await bot.text(1001, "/start")  # the person of the completed conversation 1 comes back
                assert "Question 1 of" in bot.stub.sent()[-1]["text"]
                await bot.text(1001, "3")
                assert service.store.latest(CHANNEL, "1001").state.answers == {"stage": "growing"}
                assert "Question 2 of" in bot.stub.sent()[-1]["text"]
                kept = [(c.id, c.status, dict(c.state.answers), c.recommendation)
                        for c in service.store.conversations() if c.id <= 2]
                assert kept == before
                await bot.text(1001, "/forget")
                await bot.press(1001, "f:yes", bot.last_keyboard(1001))
                assert [c.id for c in service.store.conversations()] == [2]  # the console one stays
                count = service.store.db.execute
                assert count("SELECT COUNT(*) FROM turns WHERE conversation_id = 1").fetchone() == (0,)
                if version >= 3:
                    assert count("SELECT COUNT(*) FROM reviews").fetchone() == (0,)
                assert bot.errors == []
        finally:
            service.store.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("where", ["proc", "directory"])
def test_an_unusable_database_path_fails_at_start_with_a_clear_message(fake_api, tmp_path, where):
    path = Path("/proc/advisor-test.db") if where == "proc" else tmp_path / "folder.db"
    if where == "directory":
        path.mkdir()
    result = run_bot("telegram", env=telegram_env(fake_api), db=path, timeout=30)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: cannot ") and str(path) in line, line
    assert fake_api.requests == []


def test_a_reminder_waits_for_the_chats_turn_and_never_comes_between_an_updates_messages():
    # issue 13: reminders were sent outside the per-chat order, so one could land inside an update's reply
    from advisor.channels.telegram import Options

    async def scenario() -> None:
        service = in_process()
        try:
            async with InProcessBot(service, Options(nudge_after=3600)) as bot:
                await bot.text(ALICE, "/start")
                service.store.db.execute("UPDATE conversations SET updated_at = '2020-01-01T00:00:00Z'")
                processor = bot.app.update_processor
                assert bot.channel.processor is processor
                mark = bot.stub.mark()
                async with processor.turn(ALICE):  # an update of that chat is being handled
                    reminding = asyncio.create_task(bot.channel.remind(bot.app.bot))
                    await asyncio.sleep(0.2)
                    assert not reminding.done() and bot.stub.sent(since=mark) == []  # it waits its turn
                assert await reminding == 1
                said = [m["text"] for m in bot.stub.sent(since=mark)]
                assert "Still there?" in said[0] and "Question 1 of" in said[1]
        finally:
            service.store.close()

    asyncio.run(scenario())
