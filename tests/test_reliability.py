"""The delivery, failure and privacy guarantees of the Telegram bot, one test (or a few) per guarantee.

Most tests drive the real process (``python bot.py telegram``) through the fake Bot API
(tests/fake_telegram.py) as a person would, and look at what the person sees and what the database
holds; some put a :class:`FlakyGateway` between the bot and the fake to lose answers the way a
gateway does; a few run the Application in this process on the stub Bot API of
tests/test_update_fuzz.py, where a Telegram answer must be exact (a 400 "query is too old"). Nothing
sleeps to synchronise: the tests wait on the fake's calls, on the database, or on a port.

The long kill-and-restart soak test is tests/test_soak.py; :class:`Person` here is shared with it.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import random
import re
import signal
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port

from advisor import reports
from advisor.channels.review import build_review_app
from advisor.channels.telegram import CHANNEL, Options
from advisor.dialog import FINISH
from advisor.engine import ConversationState
from advisor.service import AdvisorService, build_service
from advisor.store import Store
from tests import telegram_walk as tw
from tests.conftest import FIXTURES, BotProcess, run_bot
from tests.fake_telegram import FakeBotAPI, utf16_length
from tests.personas import GROWING_TACTICAL, SALES_TEAM
from tests.test_update_fuzz import (
    DIALOG,
    ENGINE,
    RENDERER,
    InProcessBot,
    callback_query,
    message,
    private_chat,
)

ALICE = 42
BOB = 43
CAROL = 44
SALES_CHAT = -100500
ADMIN = 7
V = tw.VERSION
REVIEW_TOKEN = "review-token-for-reliability-tests-0123"
UNKNOWN = "I don't know that command"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "advisor.db"


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def wait_until(predicate: Callable[[], Any], timeout: float = 10, what: str = "the condition") -> Any:
    """Poll ``predicate`` (the database, a log file) until it is truthy; a retry loop, not a sleep."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        time.sleep(0.005)


def rows(db: Path, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> list[tuple[Any, ...]]:
    return tw.query(db, sql, params)


def gone_from_disk(db: Path, *words: bytes, within: float = 5) -> bool:
    """Whether none of ``words`` is in the database's files, waiting up to ``within`` seconds."""
    deadline = time.monotonic() + within
    while any(word in stored_bytes(db) for word in words):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def stored_bytes(db: Path) -> bytes:
    """The database as it lies on disk: the file, its write-ahead log and shared memory."""
    return b"".join(p.read_bytes() for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")) if p.exists())


def conversation_ids(db: Path, user: int) -> list[int]:
    return [r[0] for r in rows(db, "SELECT id FROM conversations WHERE user_id = ? ORDER BY id", [str(user)])]


def person_turns(db: Path, conversation_id: int) -> list[tuple[str, str]]:
    """(question, text) of each turn of the person, toggles of a multiple choice left out."""
    found = rows(db, "SELECT question_id, text FROM turns WHERE conversation_id = ? AND role = 'person' ORDER BY seq",
                 [conversation_id])
    return [(q, t) for q, t in found if not t.startswith("(toggled)")]


def log_is_clean(*bots: BotProcess) -> None:
    for bot in bots:
        output = bot.output()
        assert "Traceback" not in output, output
        assert "error while handling an update" not in output, output


def answered_once(fake: FakeBotAPI, query_id: str) -> dict[str, Any]:
    """The bot answered callback query ``query_id``, exactly once."""
    answer = tw.callback_answer(fake, query_id)
    attempts = [r for r in fake.requests if r.method == "answerCallbackQuery"
                and str(r.params.get("callback_query_id")) == query_id]
    assert len(attempts) == 1, attempts
    return answer


def sends_to(fake: FakeBotAPI, chat: int, method: str = "sendMessage") -> list[Any]:
    """Every attempt to call ``method`` for ``chat``, accepted or not."""
    return [r for r in fake.requests if r.method == method and r.params.get("chat_id") == chat]


def type_lines(fake: FakeBotAPI, chat: int, lines: list[str], first_name: str = "Ana") -> None:
    """Type each line (a blank one confirms what was understood) and wait for the bot's next step."""
    for line in lines:
        mark = fake.mark()
        fake.send_text(chat, line or "yes", first_name=first_name)
        tw.wait_step(fake, chat, mark)


def complete(fake: FakeBotAPI, chat: int, lines: list[str] = SALES_TEAM, first_name: str = "Ana") -> dict[str, Any]:
    """/start and type every line: the "What next?" message."""
    mark = fake.mark()
    fake.send_text(chat, "/start", first_name=first_name)
    tw.wait_step(fake, chat, mark)
    type_lines(fake, chat, lines[:-1], first_name)
    mark = fake.mark()
    fake.send_text(chat, lines[-1], first_name=first_name)
    return tw.wait_step(fake, chat, mark)


def sales_team_saying(pains: str, contact: str | None = None) -> list[str]:
    """SALES_TEAM's lines with ``pains`` typed at the pains question, telemarketing ("1") chosen at the
    tasks (the words need not name any), and ``contact``, when given, typed at the last question."""
    at = tw.at("pains")
    lines = [*SALES_TEAM[:at], pains, "1", *SALES_TEAM[at + 2:]]
    assert len(lines) == len(SALES_TEAM) and tw.ORDER[at + 1] == "tasks"
    return lines if contact is None else [*lines[:-1], contact]


def telegram_env(fake: FakeBotAPI, **extra: str) -> dict[str, str]:
    return {"TELEGRAM_BOT_TOKEN": fake.token, "TELEGRAM_API_URL": fake.url, **extra}


def set_idle(db: Path, user: int, days: float) -> None:
    with sqlite3.connect(db) as connection:
        connection.execute(
            "UPDATE conversations SET updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now', ?) WHERE user_id = ?",
            [f"-{days * 86400:.0f} seconds", str(user)])
    connection.close()


def in_process(db: Path | str = ":memory:") -> AdvisorService:
    """A service on the real dialog (loaded once for the module) and a store at ``db``."""
    return AdvisorService(DIALOG, ENGINE, RENDERER, Store.open(db))


@asynccontextmanager
async def dashboard(db: Path):
    """The review dashboard on a free port of this event loop: an httpx client factory for it."""
    service = build_service(db)
    sock, port = bind_unused_port()
    server = HTTPServer(build_review_app(service, REVIEW_TOKEN))
    server.add_sockets([sock])
    clients: list[httpx.AsyncClient] = []

    def client(**options: Any) -> httpx.AsyncClient:
        made = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", follow_redirects=False, timeout=10,
                                 **options)
        clients.append(made)
        return made

    try:
        yield client
    finally:
        for made in clients:
            await made.aclose()
        server.stop()
        await server.close_all_connections()
        service.store.close()


class FlakyGateway:
    """An HTTP hop between the bot and the fake Bot API that loses getUpdates answers as a gateway does.

    ``faults``: applied one by one to getUpdates answers that carry updates: "502"/"504" answers with
    that status instead (the fake delivered, the bot never heard), "drop" hangs up without an answer,
    "401"/"404" refuse the token as Telegram does, "not_a_list" answers ok with a result that is no list,
    "429" asks the bot to wait 100,000 s.
    ``hold(update_id)``: a getUpdates with a higher offset (the bot confirming that update) is held
    here and never reaches the fake, as if the bot died before confirming; ``release()`` ends that.
    ``events``: (monotonic time, what) for each getUpdates: "forwarded", a fault, or "held".
    ``from_now_on``: a fault given to every getUpdates from then on, with updates or not (also the last
    one the bot makes while it stops); "junk" answers a list of things that are not updates.
    """

    def __init__(self, target: str):
        self.target = urlsplit(target)
        self.faults: list[str] = []
        self.from_now_on: str | None = None
        self.hold_above: int | None = None
        self.released = threading.Event()
        self.events: list[tuple[float, str]] = []
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                gateway.serve(self)

            do_GET = do_POST

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def get_request(self) -> tuple[socket.socket, Any]:
                sock, address = super().get_request()
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no 40 ms per call (see the fake)
                return sock, address

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def hold(self, update_id: int) -> None:
        self.released = threading.Event()
        self.hold_above = update_id

    def release(self) -> None:
        self.hold_above = None
        self.released.set()

    def close(self) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()

    @staticmethod
    def reply(handler: BaseHTTPRequestHandler, status: int, body: bytes) -> None:
        with suppress(OSError):
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)

    def serve(self, handler: BaseHTTPRequestHandler) -> None:
        body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        content_type = handler.headers.get("Content-Type", "")
        polling = handler.path.rstrip("/").rsplit("/", 1)[-1].lower() == "getupdates"
        if polling:
            params: dict[str, Any] = (json.loads(body or b"{}") if content_type.startswith("application/json")
                                      else dict(parse_qsl(body.decode())))
            if self.hold_above is not None and int(params.get("offset") or 0) > self.hold_above:
                self.events.append((time.monotonic(), "held"))
                self.released.wait(30)
                self.reply(handler, 200, b'{"ok": true, "result": []}')
                return
        connection = http.client.HTTPConnection(self.target.hostname, self.target.port, timeout=60)
        try:
            connection.connect()
            connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connection.request("POST", handler.path, body, {"Content-Type": content_type})
            answer = connection.getresponse()
            status, payload = answer.status, answer.read()
        finally:
            connection.close()
        if polling and (self.from_now_on or (self.faults and json.loads(payload).get("result"))):
            fault = self.from_now_on or self.faults.pop(0)
            self.events.append((time.monotonic(), fault))
            if fault == "drop":
                handler.close_connection = True
                with suppress(OSError):
                    handler.connection.shutdown(socket.SHUT_RDWR)
                return
            if fault == "429":
                self.reply(handler, 429, json.dumps({"ok": False, "error_code": 429, "description":
                                                     "Too Many Requests: retry after 100000",
                                                     "parameters": {"retry_after": 100000}}).encode())
                return
            if fault == "not_a_list":
                self.reply(handler, 200, b'{"ok": true, "result": {"update_id": 1}}')
                return
            if fault == "junk":
                self.reply(handler, 200, b'{"ok": true, "result": [1, "x", null]}')
                return
            description = {"502": "Bad Gateway", "504": "Gateway Timeout", "401": "Unauthorized",
                           "404": "Not Found", "409": "Conflict: terminated by other getUpdates request"}[fault]
            self.reply(handler, int(fault), json.dumps(
                {"ok": False, "error_code": int(fault), "description": description}).encode())
            return
        if polling:
            self.events.append((time.monotonic(), "forwarded"))
        self.reply(handler, status, payload)


@pytest.fixture
def gateway(fake_api: FakeBotAPI) -> Iterator[FlakyGateway]:
    made = FlakyGateway(fake_api.url)
    yield made
    made.close()


# -- a person who walks the dialog by what the bot shows, across kills ------------------------------
@dataclass(frozen=True)
class Action:
    kind: str  # "press" (an answer by a button), "toggle" (a multiple choice), "type"
    qid: str
    data: str  # the callback data, or the words typed
    message_id: int  # the question message


PLAN = {  # what the person means to answer: an option's index, the indexes to tick, words, None: Skip
    "stage": 2, "size": 2, "industry": 0, "core": 0, "pains": "our reps spend hours cold calling",
    "tasks": (0, 1), "hours": "30", "owners": 0, "process": 1, "trigger": 0, "horizon": 1, "goals": (0, 4),
    "past": 0, "relation": 1, "concern": (0,), "contact": 0,
}


class Person:
    """Answers the dialog to ``plan`` by what the bot shows (never by the database), and keeps what it
    saw acknowledged: every question followed on screen by the next one."""

    def __init__(self, fake: FakeBotAPI, chat: int, plan: dict[str, Any]):
        self.fake, self.chat, self.plan = fake, chat, plan
        self.ticks_seen: tuple[str, frozenset[str]] | None = None  # a multiple choice's ticks on screen
        self.idle = False  # told there is nothing in progress: the last answer was taken

    # -- what the plan means -----------------------------------------------------------------
    def intended(self, qid: str) -> Any:
        want, question = self.plan[qid], DIALOG.question(qid)
        if want is None:
            return None
        if question.type == "multi":
            return [question.options[n].value for n in sorted(want)]
        if question.type in ("single", "contact"):
            return question.options[want].value
        if question.type == "number":
            return int(want)
        return want

    def path(self) -> list[str]:
        answers = {qid: self.intended(qid) for qid in self.plan}
        path, qid = [], DIALOG.start
        while qid != FINISH:
            path.append(qid)
            qid = ENGINE.route(qid, answers)
        return path

    # -- what the person sees ----------------------------------------------------------------
    def advised(self) -> bool:
        return any(tw.WHAT_NEXT in m["plain"] for m in self.fake.messages(self.chat))

    def finished(self) -> bool:
        return self.idle or self.advised()

    def acknowledged(self) -> set[str]:
        """Questions answered as far as the screen tells: each question before the newest one asked."""
        asked = [tw.question_of(m)[1] for m in self.fake.messages(self.chat) if tw.question_of(m)]  # type: ignore[index]
        if self.advised():
            return set(asked)
        return set(asked) - {asked[-1]} if asked else set()

    def next_action(self) -> Action:
        shown = tw.current_question(self.fake, self.chat)
        cid, qid = tw.question_of(shown)  # type: ignore[misc]
        question, want = DIALOG.question(qid), self.plan[qid]
        if want is None:
            return Action("press", qid, f"k:{cid}:{qid}:{V}", shown["message_id"])
        if question.type == "multi":
            wanted = {question.options[n].value for n in want}
            ticked = set(tw.selected(shown))
            for n, option in enumerate(question.options):
                if (option.value in wanted) != (option.value in ticked):
                    return Action("toggle", qid, f"t:{cid}:{qid}:{n}:{V}", shown["message_id"])
            return Action("press", qid, f"d:{cid}:{qid}:{V}", shown["message_id"])
        if question.type in ("single", "contact") and isinstance(want, int):
            return Action("press", qid, f"a:{cid}:{qid}:{want}:{V}", shown["message_id"])
        return Action("type", qid, str(want), shown["message_id"])

    # -- acting ------------------------------------------------------------------------------
    def act(self, action: Action) -> int:
        """Do it, without waiting for the bot; the update_id of what was sent."""
        if action.kind == "type":
            return self.fake.send_text(self.chat, action.data)
        self.fake.press(self.chat, action.message_id, action.data)
        return self.fake.updates[-1]["update_id"]

    def settle(self) -> None:
        """Wait until the bot handled everything sent so far (updates of a chat are handled in order)."""
        tw.barrier(self.fake, self.chat)
        self.remember_ticks()

    def remember_ticks(self) -> None:
        shown = tw.current_question(self.fake, self.chat) if not self.finished() else None
        ref = tw.question_of(shown)
        if shown and ref and DIALOG.question(ref[1]).type == "multi":
            self.ticks_seen = (ref[1], frozenset(tw.selected(shown)))
        else:
            self.ticks_seen = None

    def resync(self) -> None:
        """After a restart, ask where things stand (an unknown command re-shows the question)."""
        mark = self.fake.mark()
        self.fake.send_text(self.chat, "/whereami")
        said = self.fake.wait_for(lambda m, p: m == "sendMessage" and p["chat_id"] == self.chat
                                  and UNKNOWN in p["text"], since=mark)
        self.idle = "where we are" not in said.params["text"]
        tw.barrier(self.fake, self.chat)

    def check_after_restart(self, db: Path, pending: Action | None) -> None:
        """Nothing acknowledged is lost: each answer seen taken is stored as meant, and a multiple
        choice shows the ticks seen before (give or take the one toggle that was on its way)."""
        [conversation] = conversation_ids(db, self.chat)
        answers = json.loads(rows(db, "SELECT answers FROM conversations WHERE id = ?", [conversation])[0][0])
        for qid in self.acknowledged():
            assert qid in answers and answers[qid] == self.intended(qid), (qid, answers)
        if self.ticks_seen is not None and not self.finished():
            qid, before = self.ticks_seen
            shown = tw.current_question(self.fake, self.chat)
            if tw.question_of(shown)[1] == qid:  # type: ignore[index]
                now = frozenset(tw.selected(shown))
                allowed = {before}
                if pending is not None and pending.kind == "toggle":  # it may or may not have been taken
                    value = DIALOG.question(qid).options[int(pending.data.split(":")[3])].value
                    toggled = ENGINE.toggle(ConversationState(current=qid, proposed=tuple(before)), value)
                    allowed.add(frozenset(toggled.state.proposed))
                assert now in allowed, (qid, before, now, pending)
        self.remember_ticks()

    def check_the_end(self, db: Path) -> None:
        """The answers stored are exactly the ones meant, each question answered once."""
        if not self.advised():  # the recommendation was due when the bot died: ask for it
            mark = self.fake.mark()
            self.fake.send_text(self.chat, "/summary")
            tw.wait_step(self.fake, self.chat, mark)
        [record] = tw.exported(db, self.chat)
        path = self.path()
        assert record["status"] == "completed"
        assert record["answers"] == {qid: self.intended(qid) for qid in path}
        turns = person_turns(db, record["id"])
        # A question with read-back checks may show twice in a row: the answer, read back as
        # implausible, then given again or confirmed (that is the yes). Nowhere else.
        asked = [q for i, (q, _t) in enumerate(turns)
                 if i == 0 or turns[i - 1][0] != q or not DIALOG.question(q).checks]
        assert asked == path, turns


def kill_and_restart(bot: BotProcess, start_bot: Callable[..., BotProcess], fake: FakeBotAPI, db: Path,
                     env: dict[str, str] | None = None) -> BotProcess:
    if bot.process.poll() is None:
        bot.kill()
    assert bot.process.returncode == -signal.SIGKILL
    fake.latency = 0
    return start_bot(fake, env=env, db=db)


def committed(db: Path, update_id: int) -> bool:
    return bool(rows(db, "SELECT 1 FROM processed_updates WHERE channel = 'telegram' AND update_id = ?", [update_id]))


# ============================================================================================
# 1. The same update delivered twice (same update_id) is handled once
# ============================================================================================


async def test_the_same_update_delivered_twice_is_handled_once():
    service = in_process()
    try:
        async with InProcessBot(service) as bot:
            await bot.text(ALICE, "/start")
            question = bot.last_keyboard(ALICE)
            typed = bot.update("message", message(ALICE, bot.stub.new_message_id(ALICE), text="3"))
            press = bot.update("callback_query", callback_query(
                ALICE, "77", f"a:1:stage:2:{V}", bot.stub.message_json(ALICE, question["message_id"])))
            for update in (press, typed):
                mark = bot.stub.mark()
                await bot.feed(update)
                handled = bot.stub.calls[mark:]
                conversation, turns = service.store.get(1), service.store.transcript(1)
                await bot.feed(update)  # Telegram delivers it again (the bot crashed before confirming it)
                assert bot.stub.calls[mark + len(handled):] == [], "the second delivery did something"
                assert (service.store.get(1), service.store.transcript(1)) == (conversation, turns)
            assert service.store.get(1).state.answers == {"stage": "growing"}  # "3" came after: not an answer
            assert bot.stub.answered["77"] == 1
            assert bot.errors == []
    finally:
        service.store.close()


def test_an_update_redelivered_after_a_kill_is_handled_once(fake_api, gateway, start_bot, db):
    """The real process, killed after it committed a typed answer and before it confirmed the update:
    Telegram delivers it again, and the new process must not take it as the answer to the next question."""
    fake = fake_api
    bot = start_bot(fake, env={"TELEGRAM_API_URL": gateway.url}, db=db)
    tw.start(fake, ALICE)
    fake.latency = 0.3  # the reply takes a while: the kill lands after the commit, before the reply
    gateway.hold(fake.updates[-1]["update_id"] + 1)  # the confirmation of the next update
    update_id = fake.send_text(ALICE, "3")  # Growing, typed
    wait_until(lambda: committed(db, update_id), what="the commit of the typed answer")
    bot.kill()
    assert update_id in [u["update_id"] for u in fake.pending_updates], "Telegram would not deliver it again"

    fake.latency = 0
    restarted = start_bot(fake, db=db)  # straight to the fake: the update comes again
    tw.barrier(fake, ALICE)
    # confirmed with the restarted bot's next getUpdates, which may come just after the barrier
    wait_until(lambda: update_id not in [u["update_id"] for u in fake.pending_updates],
               what="the confirmation of the redelivered update")
    [cid] = conversation_ids(db, ALICE)
    assert tw.exported(db, ALICE)[0]["answers"] == {"stage": "growing"}, "the redelivered '3' answered again"
    assert person_turns(db, cid) == [("stage", "3 -> Growing: scaling up")]
    Person(fake, ALICE, PLAN).resync()
    assert tw.question_of(tw.current_question(fake, ALICE))[1] == "size"
    log_is_clean(bot, restarted)


# ============================================================================================
# 2. A hard kill (SIGKILL) at any point, then a restart: the person continues; no answer they saw
#    acknowledged is lost, none applied twice (the long version: tests/test_soak.py)
# ============================================================================================


def test_a_hard_kill_at_any_point_loses_no_acknowledged_answer_and_applies_none_twice(fake_api, start_bot, db):
    fake = fake_api
    bots = [start_bot(fake, db=db)]
    person = Person(fake, ALICE, PLAN)
    tw.start(fake, ALICE)
    kills = {  # at which of the person's actions, and when
        "pains": "after the commit, before the reply",
        "trigger": "as soon as it is sent",
        "goals": "after the query is answered",
    }
    while not person.finished():
        action = person.next_action()
        when = kills.pop(action.qid, None)
        if when is None:
            person.act(action)
            person.settle()
            continue
        if when == "after the commit, before the reply":
            fake.latency = 0.3
        mark = fake.mark()
        update_id = person.act(action)
        if when == "after the commit, before the reply":
            wait_until(lambda uid=update_id: committed(db, uid), what="the commit")
        elif when == "after the query is answered":
            fake.wait_for(lambda m, p: m == "answerCallbackQuery", since=mark)
        bots.append(kill_and_restart(bots[-1], start_bot, fake, db))
        person.resync()
        person.check_after_restart(db, action)
    assert kills == {}, f"never got to kill at {kills}"
    person.check_the_end(db)
    log_is_clean(*bots)


# ============================================================================================
# 3. A double-tapped button or two quick messages from one person cause one transition
# ============================================================================================


def test_two_quick_messages_cause_one_transition(fake_api, start_bot, db):
    fake = fake_api
    bot = start_bot(fake, db=db)
    tw.start(fake, ALICE)
    fake.latency = 0.2  # the bot cannot have asked question 2 before the second message is sent
    mark = fake.mark()
    fake.send_text(ALICE, "3")  # Growing
    fake.send_text(ALICE, "2")  # typed before question 2 was on screen: not its answer
    tw.wait_question(fake, ALICE, mark, "size")
    fake.latency = 0
    tw.barrier(fake, ALICE)
    [cid] = conversation_ids(db, ALICE)
    assert tw.exported(db, ALICE)[0]["answers"] == {"stage": "growing"}
    assert person_turns(db, cid) == [("stage", "3 -> Growing: scaling up")]
    assert sum("Question 2 of" in m["plain"] for m in fake.messages(ALICE)) == 1
    # typed once question 2 is on screen, the same words answer it
    mark = fake.mark()
    fake.send_text(ALICE, "2")
    tw.wait_question(fake, ALICE, mark, "industry")
    assert tw.exported(db, ALICE)[0]["answers"] == {"stage": "growing", "size": "small"}
    tw.assert_clean(fake, bot)


def test_a_double_tap_on_start_over_causes_one_transition(fake_api, start_bot, db):
    """(Double taps on an option and on Done are in tests/test_telegram.py.) Start over twice: one new
    conversation, not two."""
    fake = fake_api
    bot = start_bot(fake, db=db)
    what_next = complete(fake, ALICE)
    data = tw.data_for(what_next, tw.START_OVER)
    mark = fake.mark()
    first = tw.press(fake, ALICE, what_next, data)
    second = tw.press(fake, ALICE, what_next, data)
    tw.wait_question(fake, ALICE, mark, "stage")
    tw.barrier(fake, ALICE)
    answered_once(fake, first)
    answered_once(fake, second)
    records = tw.exported(db, ALICE)
    assert [r["status"] for r in records] == ["completed", "in_progress"], records
    tw.assert_clean(fake, bot)


# ============================================================================================
# 4. A button from an older question -- here an older *conversation* -- answers "Already answered"
# ============================================================================================


def test_a_button_of_an_older_conversation_after_restart_answers_already_answered(fake_api, start_bot, db):
    fake = fake_api
    bot = start_bot(fake, db=db)
    q1 = tw.start(fake, ALICE)
    mark = fake.mark()
    tw.press_option(fake, ALICE, "Growing", q1)
    old_size = tw.wait_question(fake, ALICE, mark, "size")  # conversation 1, question "size"
    mark = fake.mark()
    fake.send_text(ALICE, "/restart")
    new_q1 = tw.wait_question(fake, ALICE, mark, "stage")
    mark = fake.mark()
    tw.press_option(fake, ALICE, "Early", new_q1)
    tw.wait_question(fake, ALICE, mark, "size")  # conversation 2 is at the same question as the old button
    old, new = conversation_ids(db, ALICE)
    before = (tw.conversation_row(db, old), tw.conversation_row(db, new), tw.turn_count(db, old),
              tw.turn_count(db, new))
    shown = fake.messages(ALICE)
    for label in ("Just me", tw.BACK):
        query = tw.press_option(fake, ALICE, label, old_size)
        assert answered_once(fake, query)["text"] == "Already answered: that question is behind you."
    tw.barrier(fake, ALICE)
    after = (tw.conversation_row(db, old), tw.conversation_row(db, new), tw.turn_count(db, old),
             tw.turn_count(db, new))
    assert after == before
    assert fake.messages(ALICE)[:len(shown)] == shown  # nothing edited
    tw.assert_clean(fake, bot)


# ============================================================================================
# 5. Forged callback data is refused without a traceback; the callback is still answered
# ============================================================================================


def test_forged_callback_data_is_refused_without_a_traceback_and_answered(fake_api, start_bot, db):
    fake = fake_api
    bot = start_bot(fake, db=db)
    q1 = tw.start(fake, ALICE)
    tw.start(fake, BOB)
    alice, bob = conversation_ids(db, ALICE)[0], conversation_ids(db, BOB)[0]
    noise = random.Random(5)
    forged = [
        noise.randbytes(40).decode("latin-1"),  # random bytes
        bytes(noise.randrange(256) for _ in range(30)).decode("utf-8", "replace"),
        f"a:{alice}:stage:0:{V}" + "x" * 60,  # too long
        "é" * 40,
        f"a:{alice}:stage:4:{V}",  # an option number of another question (size has 5 options)
        f"a:{alice}:size:4:{V}",  # another question's option
        f"a:{alice}:tasks:0:{V}",
        f"a:{bob}:stage:0:{V}",  # another person's conversation
        f"x:{bob}:report",
        "x:999999:expert",
        "\x00\x01\x02",
        f"a:{alice}:stage:0:{V}\x00",
    ]
    row = tw.conversation_row(db, alice)
    for data in forged:
        query = fake.press(ALICE, q1["message_id"], data, strict=False)
        answer = answered_once(fake, query)
        assert answer.get("text") in (None, "Already answered: that question is behind you."), (data, answer)
    # a button made for another dialog version: told so, shown the current question, nothing stored
    mark = fake.mark()
    query = fake.press(ALICE, q1["message_id"], f"a:{alice}:stage:0:99", strict=False)
    assert answered_once(fake, query)["text"] == "These questions were updated: here is the current one."
    tw.wait_question(fake, ALICE, mark, "stage")
    tw.barrier(fake, ALICE)
    assert tw.conversation_row(db, alice) == row
    assert tw.exported(db, BOB)[0]["answers"] == {}
    assert fake.documents(ALICE) == []
    # the real button still works
    mark = fake.mark()
    tw.press_option(fake, ALICE, "Growing", q1)
    tw.wait_question(fake, ALICE, mark, "size")
    tw.assert_clean(fake, bot)


# ============================================================================================
# 6. HTML in names and free text is escaped in Telegram messages, the HTML report and the dashboard
# ============================================================================================

SCRIPT = "<script>alert(1)</script>"
NAME_HTML = f"<b>Ana</b> & {SCRIPT}"
PAINS_HTML = f'our <i>reps</i> & <a href="javascript:alert(1)">cold calls</a> {SCRIPT}'
CONTACT_HTML = "<img src=x onerror=alert(1)> Zed zed@example.org"


def assert_no_markup_from_people(page: str) -> None:
    lowered = page.lower()
    for markup in ("<script", "<img", 'href="javascript', "<i>reps"):
        assert markup not in lowered, (markup, page[:2000])


def test_html_in_names_and_free_text_is_escaped_in_messages_the_report_and_the_dashboard(fake_api, start_bot, db):
    fake = fake_api
    fake.add_chat(SALES_CHAT, first_name="Sales", chat_type="supergroup")
    bot = start_bot(fake, env={"ADVISOR_SALES_CHAT_ID": str(SALES_CHAT)}, db=db)
    lines = sales_team_saying(PAINS_HTML, contact=CONTACT_HTML)
    what_next = complete(fake, ALICE, lines, first_name=NAME_HTML)
    # Telegram: the fake parses HTML as Telegram does; a tag from a person would be refused or shown
    assert fake.refusals == []
    welcome = fake.messages(ALICE)[0]
    assert welcome["plain"].startswith(f"Hello {NAME_HTML}!")
    # their words are left to the full report (the one screen does not quote them): none became markup
    entities = [(m["plain"][e["offset"]:e["offset"] + e["length"]], e) for m in fake.messages(ALICE)
                for e in m["entities"]]
    assert not [e for _text, e in entities if e.get("url", "").startswith("javascript")]
    assert not [e for text, e in entities if text in ("reps", "cold calls")]
    card = fake.wait_for_message(SALES_CHAT, contains="wants to talk to an expert")
    assert "<img src=x onerror=alert" in card["plain"]  # the name, as text
    assert not [e for e in card["entities"] if e.get("url", "").startswith("javascript")]
    # the HTML report
    tw.press_option(fake, ALICE, tw.REPORT, what_next)
    fake.wait_for(lambda m, p: m == "sendDocument")
    [(_name, report)] = fake.documents(ALICE)
    page = report.decode()
    assert_no_markup_from_people(page)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "our &lt;i&gt;reps&lt;/i&gt; &amp; &lt;a href=" in page  # quoted, as text
    # the dashboard
    [cid] = conversation_ids(db, ALICE)

    async def pages() -> list[str]:
        async with dashboard(db) as client:
            script = client(headers={"Authorization": f"Bearer {REVIEW_TOKEN}"})
            found = [await script.get(path) for path in ("/", f"/conversations/{cid}", "/funnel", "/?q=reps")]
            assert [r.status_code for r in found] == [200] * 4
            return [r.text for r in found]

    found = asyncio.run(pages())
    for page in found:
        assert_no_markup_from_people(page)
    listing, conversation = found[:2]
    assert "&lt;img src=x onerror=alert" in listing  # the contact's name
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in conversation
    tw.assert_clean(fake, bot)


# ============================================================================================
# 7. Text over Telegram's limits is split; a person's input is capped and the cap is said
# ============================================================================================


def test_input_over_the_cap_is_refused_saying_the_cap_and_long_text_is_split(fake_api, start_bot, db):
    fake = fake_api
    bot = start_bot(fake, env={"ADVISOR_ADMIN_IDS": str(ADMIN)}, db=db)
    tw.start(fake, ALICE)
    tw.answer_walk(fake, ALICE, ["3", "3", "1", "1"])
    mark = fake.mark()
    fake.send_text(ALICE, "cold calling " * 46)  # 598 characters at the pains question, whose cap is 500
    again = tw.wait_question(fake, ALICE, mark, "pains")
    assert "longer than the 500 characters this answer takes" in again["plain"]
    assert "pains" not in tw.exported(db, ALICE)[0]["answers"]
    # many long answers make a transcript far over one message: /lead sends it in pieces
    for n in range(8):
        mark = fake.mark()
        fake.send_text(ALICE, f"{n} " + "é😀 long words " * 40)
        tw.wait_question(fake, ALICE, mark, "pains")
    [cid] = conversation_ids(db, ALICE)
    mark = fake.mark()
    fake.send_text(ADMIN, f"/lead {cid}")
    tw.barrier(fake, ADMIN)
    pieces = [c.params["text"] for c in fake.calls[mark:] if c.method == "sendMessage" and c.params["chat_id"] == ADMIN
              and "/forget:" not in c.params["text"]]
    assert len(pieces) >= 2
    visible = [m["plain"] for m in fake.messages(ADMIN)]
    assert all(utf16_length(text) <= tw.MESSAGE_LIMIT for text in visible)
    assert sum(text.count("👤") for text in visible) >= 9  # every turn of the person is there
    tw.assert_clean(fake, bot)


# ============================================================================================
# 8. Any kind of update is handled without a traceback; "kicked" marks the person blocked,
#    "member" clears it
# ============================================================================================


def test_any_kind_of_update_is_handled_without_a_traceback(fake_api, start_bot, db):
    fake = fake_api
    bot = start_bot(fake, db=db)
    tw.start(fake, ALICE)
    user = {"id": ALICE, "is_bot": False, "first_name": "Ana"}
    chat = {"id": ALICE, "type": "private", "first_name": "Ana"}
    me = {"id": 123456, "is_bot": True, "first_name": "Advisor Test Bot", "username": "advisor_test_bot"}

    def member(status: str) -> dict[str, Any]:
        return {"user": me, "status": status, **({"until_date": 0} if status == "kicked" else {})}

    others = [
        {"message": {"message_id": 9001, "date": 1, "from": user, "chat": chat, "dice": {"emoji": "🎲", "value": 3}}},
        {"message": {"message_id": 9002, "date": 1, "from": user, "chat": chat, "document": {
            "file_id": "BQAD", "file_unique_id": "AgAD", "file_name": "cv.pdf"}}},
        {"message": {"message_id": 9003, "date": 1, "from": user, "chat": chat, "video_note": {
            "file_id": "DQAD", "file_unique_id": "AgAE", "length": 240, "duration": 3}}},
        {"channel_post": {"message_id": 5, "date": 1, "text": "news", "chat": {
            "id": -1001, "type": "channel", "title": "News"}}},
        {"edited_channel_post": {"message_id": 5, "date": 1, "edit_date": 2, "text": "news!", "chat": {
            "id": -1001, "type": "channel", "title": "News"}}},
        {"message": {"message_id": 7, "date": 1, "from": user, "chat": {"id": -4001, "type": "group", "title": "G"},
                     "new_chat_members": [me]}},
        {"inline_query": {"id": "66", "from": user, "query": "advice", "offset": ""}},
        {"message_reaction": {"chat": chat, "message_id": 2, "user": user, "date": 1, "old_reaction": [],
                              "new_reaction": [{"type": "emoji", "emoji": "👍"}]}},
        {"chat_join_request": {"chat": {"id": -4001, "type": "supergroup", "title": "G"}, "from": user,
                               "user_chat_id": ALICE, "date": 1}},
    ]
    for update in others:
        fake.push_update(update)
    mark = fake.mark()
    fake.send_contact(ALICE, "+34600111222", "Ana")  # a contact card, with no consent asked
    tw.wait_question(fake, ALICE, mark, "stage")
    tw.barrier(fake, ALICE)
    # the person blocks the bot, then unblocks it
    fake.push_update({"my_chat_member": {"chat": chat, "from": user, "date": 1,
                                         "old_chat_member": member("member"), "new_chat_member": member("kicked")}})
    # (no barrier here: a message from her would say she unblocked the bot)
    wait_until(lambda: rows(db, "SELECT user_id FROM blocked") == [(str(ALICE),)], what="the block mark")
    fake.push_update({"my_chat_member": {"chat": chat, "from": user, "date": 2,
                                         "old_chat_member": member("kicked"), "new_chat_member": member("member")}})
    tw.barrier(fake, ALICE)
    assert rows(db, "SELECT user_id FROM blocked") == []
    assert tw.exported(db, ALICE)[0]["answers"] == {}
    assert rows(db, "SELECT contact FROM conversations") == [(None,)]
    tw.assert_clean(fake, bot)


def test_a_press_on_a_message_telegram_no_longer_shows_still_answers_and_moves_on():
    """Telegram sends an inaccessible message (date 0) with a press on a message it no longer gives
    the bot (deleted, for one): it cannot be edited, yet the answer counts and the next question comes."""

    async def scenario() -> None:
        service = in_process()
        try:
            async with InProcessBot(service) as bot:
                await bot.text(ALICE, "/start")
                question = bot.last_keyboard(ALICE)
                del bot.stub.messages[ALICE][question["message_id"]]  # the person deleted it
                gone = {"chat": private_chat(ALICE), "message_id": question["message_id"], "date": 0}
                update = bot.update("callback_query", callback_query(ALICE, "91", f"a:1:stage:2:{V}", gone))
                await bot.feed(update)
                assert bot.errors == [], bot.errors
                assert bot.stub.answered["91"] == 1
                assert service.store.get(1).state.answers == {"stage": "growing"}
                assert "Question 2 of" in bot.stub.sent()[-1]["text"], "the next question was not sent"
        finally:
            service.store.close()

    asyncio.run(scenario())


def test_a_press_on_an_inline_message_is_answered_without_a_traceback():
    """A callback query without a message (a message sent in inline mode) has no chat."""

    async def scenario() -> None:
        service = in_process()
        try:
            async with InProcessBot(service) as bot:
                await bot.text(ALICE, "/start")
                pressed = {data: await bot.press(ALICE, data, None)
                           for data in (f"a:1:stage:2:{V}", "x:1:report", "c:1:yes", "f:no", "nonsense")}
                assert bot.errors == [], bot.errors
                assert {data: bot.stub.answered[query] for data, query in pressed.items()} == dict.fromkeys(pressed, 1)
                assert service.store.get(1).state.answers == {}
        finally:
            service.store.close()

    asyncio.run(scenario())


# ============================================================================================
# 13. The token never appears in logs, exceptions or the database; no personal data in logs at INFO
# ============================================================================================

PII = {"first_name": "Quillonia", "words": "our zanzibarian flamingo wranglers do cold calling",
       "email": "quill.zorb@example.org", "phone": "+447700900123", "shared": "34699887766"}


def test_no_token_in_the_database_and_no_personal_data_in_logs_at_info(fake_api, start_bot, db):
    fake = fake_api
    bot = start_bot(fake, env={"ADVISOR_LOG_LEVEL": "INFO"}, db=db)
    # Alice types her name, email and phone at the last question; Bob agrees and shares his phone
    lines = sales_team_saying(PII["words"], contact=f"Zorb, {PII['email']}, {PII['phone']}")
    complete(fake, ALICE, lines, first_name=PII["first_name"])
    what_next = complete(fake, BOB, first_name=PII["first_name"])
    tw.press_option(fake, BOB, tw.EXPERT, what_next)
    tw.press_option(fake, BOB, tw.CONSENT_YES, fake.wait_for_message(BOB, contains="Do you agree?"))
    fake.wait_for_message(BOB, contains="share your phone number")
    fake.send_contact(BOB, "+" + PII["shared"], PII["first_name"])
    fake.wait_for_message(BOB, contains="An expert will contact you soon")
    saved = stored_bytes(db)
    assert PII["shared"].encode() in saved and PII["email"].encode() in saved  # what is searched for is there
    assert bot.stop() == 0
    secret = fake.token.split(":", 1)[1]
    for stored in (saved, stored_bytes(db), Path(f"{db}.lock").read_bytes()):
        assert fake.token.encode() not in stored and secret.encode() not in stored
    output = bot.output()
    assert " INFO " in output  # INFO lines were written
    assert fake.token not in output and secret not in output
    for value in (*PII.values(), "flamingo", PII["shared"][-6:], PII["phone"][-6:]):
        assert value not in output, value


# ============================================================================================
# 14. Admin commands and the dashboard reveal nothing without the right id or token; dashboard forms
#     are CSRF-safe; filters are parameterised SQL; answers are escaped on every page
# ============================================================================================

DROP = "'; DROP TABLE conversations; --"


def test_admin_commands_and_the_dashboard_reveal_nothing_without_the_right_id_or_token(fake_api, start_bot, db):
    fake = fake_api
    fake.add_chat(-4001, first_name="Team", chat_type="group")
    bot = start_bot(fake, env={"ADVISOR_ADMIN_IDS": str(ADMIN)}, db=db)
    complete(fake, ALICE, sales_team_saying(PAINS_HTML))
    [cid] = conversation_ids(db, ALICE)
    # a non-admin, and the admin in a group, learn nothing of Alice's conversation
    for chat, user, text in ((BOB, BOB, f"/lead {cid}"), (BOB, BOB, "/export"), (BOB, BOB, f"/lead {DROP}"),
                             (-4001, ADMIN, f"/lead {cid}"), (-4001, ADMIN, "/stats")):
        mark = fake.mark()
        fake.send_text(chat, text, user_id=user, chat_type="private" if chat > 0 else "group")
        call = fake.wait_for(lambda m, p, c=chat: m == "sendMessage" and p["chat_id"] == c, since=mark)
        assert "cold calls" not in call.params["text"] and "Conversation" not in call.params["text"], text
    assert fake.documents(BOB) == [] and fake.documents(-4001) == []
    # the admin, in private, with an argument that looks like SQL
    mark = fake.mark()
    fake.send_text(ADMIN, f"/lead {cid}{DROP}")
    fake.wait_for(lambda m, p: m == "sendMessage" and p["chat_id"] == ADMIN, since=mark)
    assert rows(db, "SELECT COUNT(*) FROM conversations") == [(1,)]

    async def check() -> None:
        async with dashboard(db) as client:
            anonymous, wrong = client(), client(headers={"Authorization": "Bearer wrong-token"})
            for path in ("/", f"/conversations/{cid}", "/export.csv", "/funnel"):
                assert (await anonymous.get(path)).status_code == 302
                refused = await wrong.get(path)
                assert refused.status_code == 401 and "cold calls" not in refused.text
            assert (await anonymous.post(f"/conversations/{cid}/review", data={"note": "x"})).status_code in (401, 403)
            # a signed-in reviewer's browser: a form posted without the form's XSRF token is refused
            browser = client()
            login = await browser.get("/login")
            xsrf = re.search(r'name="_xsrf" value="([^"]+)"', login.text).group(1)  # type: ignore[union-attr]
            assert (await browser.post("/login", data={"token": REVIEW_TOKEN, "_xsrf": xsrf})).status_code == 302
            forged = await browser.post(f"/conversations/{cid}/review", data={"reviewed": "1", "note": "forged"})
            assert forged.status_code == 403
            script = client(headers={"Authorization": f"Bearer {REVIEW_TOKEN}"})
            for params in ({"q": DROP}, {"ref": DROP}, {"status": DROP}, {"since": DROP}):
                for path in ("/", "/funnel", "/export.csv"):
                    assert (await script.get(path, params=params)).status_code == 200, (path, params)
            for path in ("/", f"/conversations/{cid}", "/funnel"):
                page = (await script.get(path)).text
                assert "<script" not in page.lower() and 'href="javascript' not in page.lower(), path

    asyncio.run(check())
    assert rows(db, "SELECT COUNT(*) FROM conversations") == [(1,)]
    assert rows(db, "SELECT note FROM reviews") == []
    tw.assert_clean(fake, bot)


# ============================================================================================
# 15. Privacy
# ============================================================================================


def test_contact_details_are_stored_only_after_consent(fake_api, start_bot, db):
    fake = fake_api
    bot = start_bot(fake, db=db)
    phone = "34611222333"
    what_next = complete(fake, ALICE)

    def shared(card_owner: int = ALICE) -> None:
        mark = fake.mark()
        fake.send_contact(ALICE, "+" + phone, "Ana", user_id=card_owner)
        fake.wait_for(lambda m, p: m == "sendMessage" and p["chat_id"] == ALICE, since=mark)
        tw.barrier(fake, ALICE)

    def nothing_kept() -> None:
        assert rows(db, "SELECT contact, consent_at FROM conversations")[0][0] is None
        assert phone.encode() not in stored_bytes(db)

    shared()  # before anything was asked
    nothing_kept()
    query = tw.press_option(fake, ALICE, tw.EXPERT, what_next)
    consent = fake.wait_for_message(ALICE, contains="Do you agree?")
    tw.callback_answer(fake, query)
    tw.press_option(fake, ALICE, tw.CONSENT_NO, consent)
    fake.wait_for_message(ALICE, contains="nothing was stored")
    shared()  # after saying no
    nothing_kept()
    tw.press_option(fake, ALICE, tw.EXPERT, what_next)
    consent = fake.wait_for_message(ALICE, contains="Do you agree?", after=consent["message_id"])
    tw.press_option(fake, ALICE, tw.CONSENT_YES, consent)
    fake.wait_for_message(ALICE, contains="share your phone number")
    shared(card_owner=BOB)  # someone else's card is not consent from its owner
    assert rows(db, "SELECT contact FROM conversations") == [(None,)]
    assert phone.encode() not in stored_bytes(db)
    shared()  # their own, after agreeing: kept
    contact = json.loads(rows(db, "SELECT contact FROM conversations")[0][0])
    assert contact["phone"] == "+" + phone and contact["consent"] is True
    # someone in the middle of the questions, who never agreed to anything: a card is kept nowhere
    tw.start(fake, CAROL)
    tw.answer_walk(fake, CAROL, ["3"])
    mark = fake.mark()
    fake.send_contact(CAROL, "+34600000999", "Carol")
    tw.wait_question(fake, CAROL, mark, "size")
    assert b"34600000999" not in stored_bytes(db)
    tw.assert_clean(fake, bot)


def tables_about_people(db: Path) -> dict[str, list[str]]:
    """Every table with a column naming a person or a conversation: {table: those columns}."""
    found: dict[str, list[str]] = {}
    for (table,) in rows(db, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
                         " AND name NOT LIKE 'conversations_fts%'"):
        columns = [r[1] for r in rows(db, f'PRAGMA table_info("{table}")')]
        keys = [c for c in columns if c in ("user_id", "conversation_id")]
        keys += ["id"] if table == "conversations" else []
        if keys:
            found[table] = keys
    return found


def rows_of(db: Path, user: int, ids: list[int]) -> dict[str, int]:
    counts = {}
    for table, keys in tables_about_people(db).items():
        clauses = [f"{k} = ?" if k == "user_id" else f"{k} IN ({','.join('?' * len(ids)) or 'NULL'})" for k in keys]
        params: list[Any] = []
        for k in keys:
            params.extend([str(user)] if k == "user_id" else ids)
        counts[table] = rows(db, f'SELECT COUNT(*) FROM "{table}" WHERE {" OR ".join(clauses)}', params)[0][0]
    return counts


def test_forget_removes_every_row_of_that_person_in_every_table(fake_api, start_bot, db):
    fake = fake_api
    bot = start_bot(fake, db=db)
    what_next = complete(fake, ALICE, sales_team_saying("zebrafishing eats our week"))
    tw.press_option(fake, ALICE, tw.EXPERT, what_next)
    tw.press_option(fake, ALICE, tw.CONSENT_YES, fake.wait_for_message(ALICE, contains="Do you agree?"))
    fake.wait_for_message(ALICE, contains="share your phone number")
    fake.send_contact(ALICE, "+34611222333", "Ana")
    fake.wait_for_message(ALICE, contains="An expert will contact you soon")
    tw.start(fake, ALICE)  # a second conversation, in progress
    complete(fake, BOB, sales_team_saying("zebrafishing too"))
    alice, bob = conversation_ids(db, ALICE), conversation_ids(db, BOB)
    with sqlite3.connect(db) as connection:  # a reviewer's marks, and stale "blocked" marks
        for cid in (*alice, *bob):
            connection.execute("INSERT INTO reviews (conversation_id, reviewed, tags, note, verdict, updated_at)"
                               " VALUES (?, 1, '[\"hot\"]', 'call them', 'agree', '2026-01-01T00:00:00Z')", [cid])
        for user in (ALICE, BOB):
            connection.execute("INSERT INTO blocked (channel, user_id, at) VALUES ('telegram', ?, 'x')", [str(user)])
    connection.close()
    assert set(tables_about_people(db)) >= {"conversations", "turns", "reviews", "blocked"}
    assert all(rows_of(db, ALICE, alice)[t] > 0 for t in ("conversations", "turns", "reviews", "blocked"))
    bob_before = rows_of(db, BOB, bob)

    mark = fake.mark()
    fake.send_text(ALICE, "/forget")
    confirm = fake.wait_for_message(ALICE, contains="This cannot be undone.")
    tw.press_option(fake, ALICE, tw.FORGET_YES, confirm)
    fake.wait_for(lambda m, p: m == "editMessageText" and p["message_id"] == confirm["message_id"], since=mark)
    assert rows_of(db, ALICE, alice) == dict.fromkeys(tables_about_people(db), 0)
    assert rows_of(db, BOB, bob) == bob_before
    # the search index forgot Alice's words too (Bob's stay findable)
    found = rows(db, "SELECT rowid FROM conversations_fts WHERE conversations_fts MATCH 'zebrafishing'")
    assert [r[0] for r in found] == bob
    # and no copy is left on disk while the bot runs: not in free pages, not in the write-ahead log
    # (the index is merged and the log emptied off the event loop, within moments)
    assert gone_from_disk(db, b"zebrafishing eats", b"+34611222333")
    tw.assert_clean(fake, bot)


def test_privacy_says_what_is_kept_and_no_more_is_kept(fake_api, start_bot, db):
    fake = fake_api
    bot = start_bot(fake, env={"ADVISOR_RETENTION_DAYS": "30"}, db=db)
    fake.send_text(ALICE, "/privacy")
    privacy = fake.wait_for_message(ALICE, contains="What I keep, and why")["plain"]
    for promise in ("Your answers and this conversation", "Your Telegram user id", "Not your name or username",
                    "Contact details only if you give them and agree", "/forget deletes all of it",
                    "Transcripts are deleted 30 days after a conversation's last message",
                    "with what you typed in your own words"):
        assert promise in privacy, promise
    # "not your name or username": a person with both, through a whole conversation
    profile = {"id": BOB, "is_bot": False, "first_name": "Quillonia", "last_name": "Zorbington",
               "username": "quill_zorb_42", "language_code": "en"}
    mark = fake.mark()
    fake.push_update({"message": {"message_id": 1, "date": 1, "from": profile, "text": "/start",
                                  "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
                                  "chat": {"id": BOB, "type": "private", "first_name": "Quillonia",
                                           "last_name": "Zorbington", "username": "quill_zorb_42"}}})
    tw.wait_question(fake, BOB, mark, "stage")
    tw.answer_walk(fake, BOB, SALES_TEAM)
    assert bot.stop() == 0
    saved = stored_bytes(db)
    for value in ("Quillonia", "Zorbington", "quill_zorb_42"):
        assert value.encode() not in saved, value
    assert rows(db, "SELECT user_id FROM conversations") == [(str(BOB),)]


def test_retention_purges_old_transcripts_and_keeps_the_rows(fake_api, start_bot, db):
    fake = fake_api
    bot = start_bot(fake, db=db)
    what_next = complete(fake, ALICE)
    tw.press_option(fake, ALICE, tw.EXPERT, what_next)
    tw.press_option(fake, ALICE, tw.CONSENT_YES, fake.wait_for_message(ALICE, contains="Do you agree?"))
    fake.wait_for_message(ALICE, contains="share your phone number")
    fake.send_contact(ALICE, "+34611222333", "Ana")
    fake.wait_for_message(ALICE, contains="An expert will contact you soon")
    tw.start(fake, BOB)
    tw.answer_walk(fake, BOB, ["3"])
    assert bot.stop() == 0
    [old], [recent] = conversation_ids(db, ALICE), conversation_ids(db, BOB)
    set_idle(db, ALICE, 40)
    before = tw.exported(db, ALICE)[0]
    bob_turns = tw.turn_count(db, recent)

    restarted = start_bot(fake, env={"ADVISOR_RETENTION_DAYS": "30"}, db=db)
    tw.barrier(fake, CAROL)  # maintenance runs before the first update is handled
    assert tw.turn_count(db, old) == 0
    assert rows(db, "SELECT contact FROM conversations WHERE id = ?", [old]) == [(None,)]
    after = tw.exported(db, ALICE)[0]
    kept = {k: v for k, v in before["answers"].items() if k != "pains"}  # the person's own words go
    assert (after["status"], after["answers"], after["recommendation"]["readiness_score"]) == (
        "completed", kept, before["recommendation"]["readiness_score"])
    assert after["recommendation"]["contact"] is None and after["recommendation"]["said"] is None
    assert "close fewer deals" in before["summary"] and "close fewer deals" not in after["summary"]
    assert "Verdict:" in after["summary"]  # written anew, without the words
    assert gone_from_disk(db, b"close fewer deals")  # nor in the search index
    assert rows(db, "SELECT COUNT(*) FROM conversations_fts WHERE conversations_fts MATCH 'fewer'") == [(0,)]
    assert tw.turn_count(db, recent) == bob_turns  # not old: kept
    log_is_clean(bot, restarted)


def test_retention_also_clears_contact_details_typed_at_the_contact_question():
    """The last question takes a name and an email or phone: they are contact details too, kept in the
    answers, the recommendation and the summary; the retention period must clear them like the others."""

    async def scenario() -> None:
        service = in_process()
        try:
            async with InProcessBot(service, Options(nudge_after=None, retention_days=30)) as bot:
                await bot.text(ALICE, "/start")
                for line in GROWING_TACTICAL:  # ends with "Maria Lopez, maria@example.com"
                    await bot.text(ALICE, line)
                conversation = service.store.latest(CHANNEL, str(ALICE))
                assert conversation.status == "completed" and reports.contact_of(conversation)
                service.store.db.execute("UPDATE conversations SET updated_at = '2020-01-01T00:00:00Z'")
                await bot.channel.maintain(bot.app.bot)
                purged = service.store.get(conversation.id)
                assert service.store.transcript(purged.id) == []
                assert purged.recommendation is not None
                assert reports.contact_of(purged) is None, reports.contact_of(purged)
                row = service.store.db.execute("SELECT answers, recommendation, summary FROM conversations").fetchone()
                assert "maria@example.com" not in json.dumps(row)
        finally:
            service.store.close()

    asyncio.run(scenario())


# ============================================================================================
# 17. A broken dialog file stops the start, naming the file and the key
# ============================================================================================


def test_a_broken_dialog_stops_the_start_naming_the_file_and_key(fake_api, tmp_path):
    broken = FIXTURES / "broken" / "unknown_target.yaml"
    result = run_bot("telegram", env=telegram_env(fake_api, ADVISOR_DIALOG=str(broken)), db=tmp_path / "a.db",
                     timeout=30)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"{broken}: questions.tasks.next[0].to: unknown question 'foo'" in result.stderr
    assert fake_api.requests == []  # no getUpdates, nor anything else
    assert not (tmp_path / "a.db").exists()



def test_refused_input_over_the_cap_is_kept_in_the_transcript_only_up_to_the_cap(service):
    """Text over a question's cap is refused; the transcript keeps its first `cap` characters and says
    how long it was, not the whole of it (people paste whole documents)."""
    outcome = service.open("console", "ana")
    for line in ["3", "3", "1", "1"]:
        outcome = service.answer(outcome.conversation, line)
    assert outcome.step.question.id == "pains" and outcome.step.question.max_length == 500
    pasted = "cold calling " * 400 + "SECRET-TAIL"
    outcome = service.answer(outcome.conversation, pasted)
    assert outcome.step.kind == "reask" and outcome.step.hint.code == "too_long"
    said = [turn["text"] for turn in service.store.transcript(outcome.conversation.id) if turn["role"] == "person"][-1]
    assert said.startswith(pasted[:500]) and "SECRET-TAIL" not in said
    assert f"{len(pasted)} characters" in said and len(said) < 600


def test_a_lone_surrogate_in_a_name_or_a_message_breaks_nothing(fake_api, start_bot, db):
    fake = fake_api
    bot = start_bot(fake, db=db)
    person = {"id": ALICE, "is_bot": False, "first_name": "An\ud800a"}
    chat = {"id": ALICE, "type": "private", "first_name": "An\ud800a"}
    fake.push_update({"message": {"message_id": 1, "date": 1, "from": person, "chat": chat, "text": "/start",
                                  "entities": [{"type": "bot_command", "offset": 0, "length": 6}]}})
    fake.wait_for_message(ALICE, contains="Question 1 of", timeout=20)
    fake.push_update({"message": {"message_id": 2, "date": 1, "from": person, "chat": chat,
                                  "text": "we are growing \udfff fast"}})
    tw.barrier(fake, ALICE)
    assert any(m["plain"].startswith("Hello An") for m in fake.messages(ALICE))
    log_is_clean(bot)
