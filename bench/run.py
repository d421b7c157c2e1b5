#!/usr/bin/env python3
"""The advisor's performance benchmark, side by side with a plain python-telegram-bot baseline.

    python bench/run.py              the full run (about 11 minutes on 2 cores)
    python bench/run.py --quick      a few minutes: every figure, smaller or shorter where it can be
    python bench/run.py --smoke      a few seconds, tiny numbers: that the benchmark still works
    python bench/run.py --json FILE  also write the figures as JSON
    python bench/run.py --only 1,3   only those scenarios
    python bench/run.py --profile DIR   also profile the advisor (pyinstrument) in scenarios 1 and 2

Scenarios (bench/README.md says exactly what each one measures):
  1. cost per update, in-process, the request layer replaced by a stub (no network)
  2. many people at once against the fake Bot API (tests/fake_telegram.py) with 50 ms per call
  3. Telegram's ceiling: the same fake refusing more than 30 messages/s with 429
  4. memory per stored conversation touched once, and the time to the first getUpdates
  5. the pure engine's steps/s and the recommendation's render time

The baseline is bench/baseline.py: a ConversationHandler bot with the same questions, its state
in memory, updates handled one at a time (python-telegram-bot's default).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import html
import importlib.util
import itertools
import json
import os
import platform
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TOKEN = "123456:TEST-token"  # the fake's token
BOT_USER = {"id": 123456, "is_bot": True, "first_name": "Advisor Test Bot", "username": "advisor_test_bot"}
# a question's buttons: a|t:<conversation>:<question>:<n>[:...], d|k|b:<conversation>:<question>[:...]
QUESTION_DATA = re.compile(r"^(?P<kind>[atdkbr]):(?P<cid>\d+):(?P<qid>[a-z_]+)(?::|$)")
QUESTION_NUMBER = re.compile(r"Question (\d+) of (\d+)")
TAG = re.compile(r"<[^>]+>")
WHAT_NEXT = "What next?"
BASELINE_DONE = "Thank you!"

# How big each mode is. Scenario 2 and 3 stop when everyone is done or after *_seconds.
MODES: dict[str, dict[str, Any]] = {
    "smoke": dict(s1_people=4, s1_warmup=1, s2_people=4, s2_seconds=3.0, s3_people=10, s3_seconds=2.0,
                  s3_aio=False, s4_memory=300, s4_start=3000, s4_start_runs=1, s5_walks=20, s5_renders=50),
    "quick": dict(s1_people=80, s1_warmup=8, s2_people=200, s2_seconds=40.0, s3_people=300, s3_seconds=20.0,
                  s3_aio=True, s4_memory=10_000, s4_start=100_000, s4_start_runs=3, s5_walks=400, s5_renders=1000),
    "full": dict(s1_people=400, s1_warmup=20, s2_people=200, s2_seconds=240.0, s3_people=300, s3_seconds=60.0,
                 s3_aio=True, s4_memory=10_000, s4_start=100_000, s4_start_runs=5, s5_walks=2000, s5_renders=5000),
}


# ============================================================================================
# Figures, the table, the JSON
# ============================================================================================


@dataclass
class Figure:
    id: str
    label: str
    unit: str
    advisor: float | None
    baseline: float | None = None
    goal: str = ""
    met: bool | None = None  # None: no goal
    higher_is_better: bool = True
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.advisor is None or self.baseline in (None, 0):
            return None
        return self.advisor / self.baseline  # type: ignore[operator]


@dataclass
class Report:
    mode: str
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def add(self, figure: Figure) -> None:
        self.figures.append(figure)


def percentile(values: Iterable[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100)."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, min(len(ordered), int(-(-p * len(ordered) // 100))))
    return ordered[rank - 1]


def fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    magnitude = abs(value)
    if magnitude >= 1000:
        text = f"{value:,.0f}"
    elif magnitude >= 100:
        text = f"{value:.0f}"
    elif magnitude >= 10:
        text = f"{value:.1f}"
    elif magnitude == int(magnitude):
        text = f"{value:.0f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}".strip()


def table(report: Report) -> str:
    head = ("figure", "advisor", "baseline", "ratio", "goal", "met?")
    rows = []
    for f in report.figures:
        ratio = f.ratio
        rows.append((
            f.label, fmt(f.advisor, f.unit), fmt(f.baseline, f.unit),
            "-" if ratio is None else (f"{ratio:.2f}x" if ratio < 10 else f"{ratio:.0f}x"),
            f.goal or "-", {True: "yes", False: "NO", None: "-"}[f.met],
        ))
    widths = [max(len(str(r[i])) for r in (head, *rows)) for i in range(len(head))]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)) + " |"
    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows]
    return "\n".join([line, rule, *body])


def machine() -> dict[str, Any]:
    import sqlite3 as _sqlite3

    import telegram

    model = ""
    with contextlib.suppress(OSError):
        for text in Path("/proc/cpuinfo").read_text().splitlines():
            if text.startswith("model name"):
                model = text.split(":", 1)[1].strip()
                break
    memory = ""
    with contextlib.suppress(OSError):
        for text in Path("/proc/meminfo").read_text().splitlines():
            if text.startswith("MemTotal"):
                memory = f"{int(text.split()[1]) // 1024 // 1024} GiB"
    return {
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu": model or platform.processor(),
        "memory": memory,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "os": f"{platform.system()} {platform.release()}",
        "python-telegram-bot": telegram.__version__,
        "sqlite": _sqlite3.sqlite_version,
    }


def rss_kib() -> int:
    for text in Path("/proc/self/status").read_text().splitlines():
        if text.startswith("VmRSS:"):
            return int(text.split()[1])
    return 0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ============================================================================================
# A stub request layer: the Bot API answered in-process, as Telegram would answer it
# ============================================================================================


class StubRequest:
    """A ``telegram.request.BaseRequest`` that answers every call at once, with the JSON Telegram would
    return, and keeps each chat's messages so that the people can press the buttons they were sent."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:  # built lazily: telegram is imported late
        from telegram.request import BaseRequest

        class _Stub(BaseRequest):
            def __init__(self) -> None:
                self.chats: dict[int, dict[int, dict[str, Any]]] = {}
                self.next_id: dict[int, int] = {}
                self.sent: list[tuple[str, int, dict[str, Any]]] = []  # (method, chat, message) for the driver
                self.calls = 0
                self.keep = True  # False: remember no message (memory measurements)

            def new_message_id(self, chat: int) -> int:
                """Message ids count up per chat, the person's and the bot's messages alike."""
                message_id = self.next_id.get(chat, 1)
                self.next_id[chat] = message_id + 1
                return message_id

            @property
            def read_timeout(self) -> float | None:
                return 5.0

            async def initialize(self) -> None:
                pass

            async def shutdown(self) -> None:
                pass

            async def do_request(self, url: str, method: str, request_data: Any = None, read_timeout: Any = None,
                                 write_timeout: Any = None, connect_timeout: Any = None,
                                 pool_timeout: Any = None) -> tuple[int, bytes]:
                self.calls += 1
                endpoint = url.rsplit("/", 1)[-1]
                params: dict[str, Any] = {}
                if request_data is not None:
                    if request_data.contains_files:
                        request_data.multipart_data  # noqa: B018 - encoded as the real layer would
                    else:
                        request_data.json_parameters  # noqa: B018 - encoded as the real layer would
                    params = request_data.parameters
                result = self.answer(endpoint, params)
                return 200, json.dumps({"ok": True, "result": result}).encode()

            def answer(self, endpoint: str, params: dict[str, Any]) -> Any:
                if endpoint == "getMe":
                    return {**BOT_USER, "can_join_groups": True, "can_read_all_group_messages": False,
                            "supports_inline_queries": False}
                if endpoint == "getUpdates":
                    return []
                if endpoint in ("sendMessage", "sendDocument"):
                    chat = int(params["chat_id"])
                    message_id = self.new_message_id(chat)
                    markup = params.get("reply_markup")
                    message = {"message_id": message_id, "from": BOT_USER,
                               "chat": {"id": chat, "type": "private", "first_name": "Ana"},
                               "date": int(time.time())}
                    if endpoint == "sendDocument":
                        message["document"] = {"file_id": "BQAC", "file_unique_id": "AgAD", "file_name": "r.html"}
                    else:
                        message["text"] = html.unescape(TAG.sub("", str(params.get("text", ""))))
                    if isinstance(markup, dict) and "inline_keyboard" in markup:
                        message["reply_markup"] = markup
                    if self.keep:
                        self.chats.setdefault(chat, {})[message_id] = message
                        self.sent.append((endpoint, chat, {**message, "html": params.get("text", "")}))
                    else:
                        self.next_id.pop(chat, None)
                    return message
                if endpoint in ("editMessageText", "editMessageReplyMarkup"):
                    chat, message_id = int(params["chat_id"]), int(params["message_id"])
                    message = self.chats.get(chat, {}).get(message_id)
                    if message is None:
                        return True
                    if endpoint == "editMessageText":
                        message["text"] = html.unescape(TAG.sub("", str(params.get("text", ""))))
                    markup = params.get("reply_markup")
                    if isinstance(markup, dict) and "inline_keyboard" in markup:
                        message["reply_markup"] = markup
                    else:
                        message.pop("reply_markup", None)
                    message["edit_date"] = int(time.time())
                    self.sent.append((endpoint, chat, {**message, "html": params.get("text", "")}))
                    return message
                return True  # answerCallbackQuery, sendChatAction, setMyCommands, deleteWebhook ...

        return _Stub()


_update_ids = itertools.count(1)
_query_ids = itertools.count(10_000_000)


def user(chat: int) -> dict[str, Any]:
    return {"id": chat, "is_bot": False, "first_name": "Ana", "language_code": "en"}


def text_update(chat: int, text: str, message_id: int) -> dict[str, Any]:
    message: dict[str, Any] = {"message_id": message_id, "from": user(chat),
                               "chat": {"id": chat, "type": "private", "first_name": "Ana"},
                               "date": int(time.time()), "text": text}
    if text.startswith("/"):
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
    return {"update_id": next(_update_ids), "message": message}


def press_update(chat: int, message: dict[str, Any], data: str) -> dict[str, Any]:
    shown = {k: v for k, v in message.items() if k != "html"}
    return {"update_id": next(_update_ids), "callback_query": {
        "id": str(next(_query_ids)), "from": user(chat), "message": shown,
        "chat_instance": str(chat * 7919), "data": data}}


# ============================================================================================
# The people: what they do when a message of the bot arrives
# ============================================================================================

Action = tuple[str, str]  # ("press", callback_data) or ("text", what they type)


def _buttons(markup: Any) -> list[tuple[str, str]]:
    if not isinstance(markup, dict):
        return []
    rows = markup.get("inline_keyboard") or []
    return [(b.get("text", ""), b.get("callback_data") or "") for row in rows for b in row if isinstance(b, dict)]


class AdvisorPerson:
    """Walks the advisor's dialog with a persona's lines (tests/personas.py), the Telegram way: a
    numbered choice by pressing its button, multi-choice options by ticking them (all at once,
    without waiting: the bot must keep them in order) then Done, "skip" by Skip, anything else typed."""

    def __init__(self, chat: int, lines: list[str]):
        from advisor.dialog import load_dialog
        from advisor.render import TEMPLATES_DIR
        from advisor.service import DEFAULT_DIALOG

        global _DIALOG
        if _DIALOG is None:
            _DIALOG = load_dialog(DEFAULT_DIALOG, TEMPLATES_DIR)
        self.dialog = _DIALOG
        self.chat = chat
        self.lines = list(lines)
        self.index = 0
        self.done = False
        self.last_number = 0
        self.violations: list[str] = []
        # question text -> the labels its "answered" edit must show, after a burst of ticks and Done (the
        # edit may arrive after the next question: the bot sends both at once)
        self.expect_labels: dict[str, list[str]] = {}

    def start(self) -> list[Action]:
        return [("text", "/start")]

    def is_step(self, message: dict[str, Any]) -> bool:
        text = message.get("text") or ""
        return WHAT_NEXT in text or any(QUESTION_DATA.match(d) for _t, d in _buttons(message.get("reply_markup")))

    def on_edit(self, text: str) -> None:
        text = html.unescape(text)  # in-process the stub sees the HTML sent; the fake gives plain text
        for question_text, labels in list(self.expect_labels.items()):
            if question_text in text:
                missing = [label for label in labels if label not in text]
                if missing:
                    self.violations.append(f"answer shown without {missing}: updates handled out of order")
                del self.expect_labels[question_text]

    def react(self, message: dict[str, Any]) -> list[Action]:
        """The actions answering a step (a question, or What next?), with the buttons' own data."""
        text = message.get("text") or ""
        if WHAT_NEXT in text:
            self.done = True
            return []
        found = QUESTION_NUMBER.search(text)
        buttons = _buttons(message.get("reply_markup"))
        read_back = any(data.startswith("r:") for _label, data in buttons)  # the same question, read back
        if found:
            number = int(found.group(1))
            if self.last_number and number != self.last_number + (0 if read_back else 1):
                self.violations.append(f"question {number} after question {self.last_number}")
            self.last_number = number
        by_kind: dict[str, list[tuple[str, list[str], str]]] = {}
        for label, data in buttons:
            parts = data.split(":")
            if QUESTION_DATA.match(data):
                by_kind.setdefault(parts[0], []).append((label, parts, data))
        qid = next(iter(by_kind.values()))[0][1][2]
        question = self.dialog.question(qid)

        def option(kind: str, n: int) -> tuple[str, str]:
            return next((label, data) for label, parts, data in by_kind.get(kind, []) if parts[3] == str(n))

        line = self.lines[self.index].strip() if self.index < len(self.lines) else "1"
        self.index += 1
        numbers = [int(n) for n in re.split(r"[,\s]+", line) if n] if re.fullmatch(r"[\d,\s]+", line) else []
        if read_back and line.lower() in ("", "yes"):
            return [("press", by_kind["r"][0][2])]
        if question.type == "multi" and (numbers or line.lower() in ("", "yes")):
            actions: list[Action] = []
            if numbers:
                wanted = {n - 1 for n in numbers}
                for n in range(len(question.options)):
                    label, data = option("t", n)
                    if (n in wanted) != label.startswith("✅"):
                        actions.append(("press", data))
                self.expect_labels[question.text] = [question.options[n].label for n in sorted(wanted)]
            return [*actions, ("press", by_kind["d"][0][2])]
        if question.type in ("single", "contact") and len(numbers) == 1:
            return [("press", option("a", numbers[0] - 1)[1])]
        if line.lower() == "skip" and "k" in by_kind:
            return [("press", by_kind["k"][0][2])]
        return [("text", line)]


_DIALOG: Any = None


class BaselinePerson:
    """Answers the baseline's questions: presses the first button, or types a number."""

    def __init__(self, chat: int):
        self.chat = chat
        self.done = False
        self.last_number = 0
        self.violations: list[str] = []

    def start(self) -> list[Action]:
        return [("text", "/start")]

    def is_step(self, message: dict[str, Any]) -> bool:
        text = message.get("text") or ""
        return BASELINE_DONE in text or (QUESTION_NUMBER.search(text) is not None and "✔" not in text)

    def on_edit(self, text: str) -> None:
        pass

    def react(self, message: dict[str, Any]) -> list[Action]:
        text = message.get("text") or ""
        if BASELINE_DONE in text:
            self.done = True
            return []
        found = QUESTION_NUMBER.search(text)
        assert found is not None
        number = int(found.group(1))
        if self.last_number and number != self.last_number + 1:
            self.violations.append(f"question {number} after question {self.last_number}")
        self.last_number = number
        buttons = _buttons(message.get("reply_markup"))
        if buttons:
            return [("press", buttons[0][1])]
        return [("text", "10")]


def make_people(kind: str, chats: Iterable[int]) -> dict[int, AdvisorPerson | BaselinePerson]:
    from tests.personas import PERSONAS

    personas = list(PERSONAS.values())
    if kind == "baseline":
        return {chat: BaselinePerson(chat) for chat in chats}
    return {chat: AdvisorPerson(chat, personas[i % len(personas)]) for i, chat in enumerate(chats)}


# ============================================================================================
# Building the two bots in-process, on the stub request layer
# ============================================================================================


def inprocess_app(kind: str, stub: Any, db: Path | None = None) -> tuple[Any, Any]:
    """(Application, AdvisorService or None). The advisor's is build_application's own Application,
    with only the request layer (and the updater) replaced."""
    from telegram.ext import ApplicationBuilder

    if kind == "baseline":
        from bench.baseline import build_baseline

        builder = ApplicationBuilder().request(stub).get_updates_request(StubRequest()).updater(None)
        return build_baseline(TOKEN, builder=builder), None

    import advisor.channels.telegram as tg
    from advisor.service import build_service

    service = build_service(db or ":memory:")
    app = tg.build_application(service, TOKEN, "http://stub.invalid", tg.Options(nudge_after=None),
                               rate_limit=False, requests=(stub, StubRequest()), updater=False)
    return app, service


class InProcessDriver:
    """Feeds updates to an Application one at a time, as its updater would, timing each; the people
    react to what the stub request layer saw the bot send."""

    def __init__(self, app: Any, stub: Any, people: dict[int, Any]):
        self.app = app
        self.stub = stub
        self.people = people
        self.timings: list[float] = []
        self.seen = 0
        self.updates = 0

    async def feed(self, data: dict[str, Any], timed: bool) -> None:
        from telegram import Update

        app = self.app
        start = time.perf_counter()
        update = Update.de_json(data, app.bot)
        await app.update_processor.process_update(update, app.process_update(update))
        elapsed = time.perf_counter() - start
        self.updates += 1
        if timed:
            self.timings.append(elapsed)

    def _action_update(self, person: Any, action: Action, message: dict[str, Any] | None) -> dict[str, Any]:
        kind, value = action
        if kind == "press":
            assert message is not None
            current = self.stub.chats[person.chat][message["message_id"]]
            return press_update(person.chat, current, value)
        return text_update(person.chat, value, self.stub.new_message_id(person.chat))

    async def run(self, timed: bool) -> None:
        """Everyone starts, then round robin: each person does their next action(s) in turn."""
        queue: dict[int, list[dict[str, Any]]] = {}
        for chat, person in self.people.items():
            queue[chat] = [self._action_update(person, a, None) for a in person.start()]
        while queue:
            for chat in list(queue):
                pending = queue[chat]
                if not pending:
                    del queue[chat]
                    continue
                data = pending.pop(0)
                await self.feed(data, timed)
                for update in self._reactions():
                    queue.setdefault(update[0], []).extend(update[1])
                if not queue.get(chat) and self.people[chat].done:
                    queue.pop(chat, None)

    def _reactions(self) -> list[tuple[int, list[dict[str, Any]]]]:
        found = []
        sent = self.stub.sent
        while self.seen < len(sent):
            method, chat, message = sent[self.seen]
            self.seen += 1
            person = self.people.get(chat)
            if person is None:
                continue
            if method == "editMessageText":
                person.on_edit(message.get("text") or "")
                continue
            if method != "sendMessage" or not person.is_step(message):
                continue
            actions = person.react(message)
            found.append((chat, [self._action_update(person, a, message) for a in actions]))
        return found


# ============================================================================================
# Scenario 1: cost per update, in-process
# ============================================================================================


def scenario_1(report: Report, cfg: dict[str, Any], workdir: Path, profile_dir: Path | None) -> None:
    log("scenario 1: cost per update, in-process ...")
    results: dict[str, dict[str, Any]] = {}
    for kind in ("baseline", "advisor"):
        results[kind] = asyncio.run(_inprocess(kind, cfg, workdir / f"s1-{kind}.db", profile_dir))
        r = results[kind]
        log(f"  {kind}: {r['updates']} updates, {r['per_s']:.0f}/s, p50 {r['p50'] * 1e3:.2f} ms, "
            f"p99 {r['p99'] * 1e3:.2f} ms")
    a, b = results["advisor"], results["baseline"]
    ratio = a["per_s"] / b["per_s"]
    report.add(Figure("s1.updates_per_s", "1. updates/s in-process (sequential)", "/s", a["per_s"], b["per_s"],
                      ">= 0.7x baseline", ratio >= 0.7))
    report.add(Figure("s1.p50_ms", "1. handling time p50", "ms", a["p50"] * 1e3, b["p50"] * 1e3, "", None, False))
    report.add(Figure("s1.p99_ms", "1. handling time p99", "ms", a["p99"] * 1e3, b["p99"] * 1e3, "< 5 ms",
                      a["p99"] * 1e3 < 5, False))
    report.add(Figure("s1.api_calls_per_update", "1. Bot API calls per update", "", a["api_calls"] / a["updates"],
                      b["api_calls"] / b["updates"], "", None, False))
    committed = a["committed"]
    report.add(Figure("s1.committed_turns", "1. turns committed to SQLite", "", committed["turns"], None,
                      "every turn", committed["completed"] == a["people"] and committed["turns"] > 0,
                      note=f"{committed['completed']} of {a['people']} conversations completed in SQLite"))
    report.details["s1"] = results


async def _inprocess(kind: str, cfg: dict[str, Any], db: Path, profile_dir: Path | None) -> dict[str, Any]:
    stub = StubRequest()
    app, service = inprocess_app(kind, stub, db)
    people_count, warmup = cfg["s1_people"], cfg["s1_warmup"]
    async with app:
        if app.post_init:  # as run_polling does: the advisor starts its checkpoint thread and maintenance there
            await app.post_init(app)
        # warm up (templates compiled, caches filled), then time a fresh crowd
        await InProcessDriver(app, stub, make_people(kind, range(900_001, 900_001 + warmup))).run(timed=False)
        driver = InProcessDriver(app, stub, make_people(kind, range(1_000_001, 1_000_001 + people_count)))
        driver.seen = len(stub.sent)
        calls_before = stub.calls
        profiler = _profiler(profile_dir)
        gc.collect()
        start = time.perf_counter()
        await driver.run(timed=True)
        wall = time.perf_counter() - start
        if profiler is not None:
            profiler.stop()
            (profile_dir / f"s1-{kind}.txt").write_text(profiler.output_text(unicode=True, show_all=True))  # type: ignore[operator]
        if app.post_stop:
            await app.post_stop(app)
    timings = driver.timings
    result: dict[str, Any] = {
        "people": people_count, "updates": len(timings), "wall_s": wall, "per_s": len(timings) / sum(timings),
        "p50": percentile(timings, 50), "p99": percentile(timings, 99), "max": max(timings),
        "api_calls": stub.calls - calls_before, "violations": sum(len(p.violations) for p in driver.people.values()),
        "done": sum(p.done for p in driver.people.values()),
    }
    if service is not None:
        store = service.store
        ids = [str(chat) for chat in driver.people]
        marks = ",".join("?" * len(ids))
        completed = store.db.execute(
            f"SELECT COUNT(*) FROM conversations WHERE status = 'completed' AND user_id IN ({marks})", ids
        ).fetchone()[0]
        turns = store.db.execute(
            f"SELECT COUNT(*) FROM turns WHERE conversation_id IN (SELECT id FROM conversations WHERE user_id IN"
            f" ({marks}))", ids).fetchone()[0]
        result["committed"] = {"completed": int(completed), "turns": int(turns)}
        store.close()
    return result


def _profiler(profile_dir: Path | None) -> Any:
    if profile_dir is None:
        return None
    try:
        from pyinstrument import Profiler
    except ImportError:
        log("  (pyinstrument is not installed: pip install pyinstrument; no profile)")
        return None
    profile_dir.mkdir(parents=True, exist_ok=True)
    profiler = Profiler(interval=0.0005, async_mode="disabled")
    profiler.start()
    return profiler


# ============================================================================================
# Scenarios 2 and 3: the bots as processes of their own, against the fake Bot API
# ============================================================================================


def bench_fake(latency: float, max_messages_per_second: int | None) -> Any:
    """tests/fake_telegram.FakeBotAPI, noting when it accepted each call the people react to."""
    from tests.fake_telegram import FakeBotAPI

    class BenchFake(FakeBotAPI):
        def __init__(self, *args: Any, **kwargs: Any):
            super().__init__(*args, **kwargs)
            # socketserver listens with a backlog of 5: hundreds of connections opening at once would
            # overflow it, and a dropped SYN is retried after a second. Telegram's backlog is not 5.
            self._server.socket.listen(4096)
            self.events: list[tuple[float, str, int, dict[str, Any]]] = []  # (accepted at, method, chat, message)

        def _note(self, method: str, params: dict[str, Any], result: Any) -> Any:
            chat = params.get("chat_id")
            message = result if isinstance(result, dict) else {}
            self.events.append((time.monotonic(), method, chat if isinstance(chat, int) else 0,
                                {"message_id": message.get("message_id"), "text": params.get("text"),
                                 "reply_markup": params.get("reply_markup")}))
            return result

        def _send_message(self, params: dict[str, Any]) -> Any:
            return self._note("sendMessage", params, super()._send_message(params))

        def _edit_message_text(self, params: dict[str, Any]) -> Any:
            return self._note("editMessageText", params, super()._edit_message_text(params))

        def _send_document(self, params: dict[str, Any]) -> Any:
            return self._note("sendDocument", params, super()._send_document(params))

    return BenchFake(latency=latency, max_messages_per_second=max_messages_per_second)


def terminate(process: subprocess.Popen) -> None:
    """SIGTERM, as a service manager would; SIGKILL if it has not exited within 30 s."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


class BotProcess:
    """One bot as a process of its own: ``python bench/run.py --serve KIND`` (see serve())."""

    def __init__(self, kind: str, fake: Any, db: Path, profile: Path | None = None):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "ADVISOR_"))}
        env.update(TELEGRAM_BOT_TOKEN=fake.token, PYTHONPATH=str(ROOT))
        command = [sys.executable, str(Path(__file__).resolve()), "--serve", kind, "--api-url", fake.url,
                   "--db", str(db)]
        if profile is not None:
            command += ["--serve-profile", str(profile)]
        self.log = db.with_suffix(".log")
        self._log_file = open(self.log, "w", encoding="utf-8")  # noqa: SIM115 - closed in stop()
        mark = fake.mark()
        self.started = time.monotonic()
        self.process = subprocess.Popen(command, env=env, cwd=ROOT, stdin=subprocess.DEVNULL,
                                        stdout=self._log_file, stderr=subprocess.STDOUT)
        try:
            fake.wait_for(lambda method, params: method == "getUpdates", since=mark, timeout=60)
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"{kind} did not start polling:\n{self.output()}") from None
        self.ready = time.monotonic()

    def output(self) -> str:
        if not self._log_file.closed:
            self._log_file.flush()
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> int | None:
        terminate(self.process)
        self._log_file.close()
        return self.process.returncode


def serve(kind: str, api_url: str, db: str, profile: str | None) -> int:
    """The bot process of scenarios 2 and 3 (``--serve``): long polling against ``api_url``.

    advisor         build_application(..., rate_limit=False): no outbound limit (scenario 2)
    advisor-pacer   build_application(...) as it is: advisor.pacer.Pacer (scenario 3)
    advisor-aio     build_application(...) with PTB's AIORateLimiter(max_retries=3) in place of the
                    Pacer (scenario 3, for comparison)
    baseline        bench/baseline.py
    """
    import logging

    from telegram import Update

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    token = os.environ["TELEGRAM_BOT_TOKEN"]
    if kind != "baseline":
        apply_patches(os.environ.get("BENCH_PATCHES", "").split(","))
    if kind == "baseline":
        from bench.baseline import build_baseline

        app = build_baseline(token, api_url)
    else:
        import advisor.channels.telegram as tg
        from advisor.service import build_service

        if kind == "advisor-aio":
            from telegram.ext import AIORateLimiter

            import advisor.channels.telegram.app as tg_app  # where build_application finds its pacer

            tg_app.Pacer = lambda *args, **kwargs: AIORateLimiter(max_retries=3)  # type: ignore[assignment,misc]
        service = build_service(db)
        app = tg.build_application(service, token, api_url, tg.Options(nudge_after=None),
                                   rate_limit=kind != "advisor")
    profiler = None
    if profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.001, async_mode="disabled")
        profiler.start()
    try:
        app.run_polling(allowed_updates=Update.ALL_TYPES, poll_interval=0.0)
    finally:
        if profiler is not None:
            profiler.stop()
            Path(profile).write_text(profiler.output_text(unicode=True, show_all=True))  # type: ignore[arg-type]
        limiter = app.bot.rate_limiter
        if limiter is not None and hasattr(limiter, "retries"):
            print(f"pacer: waited {limiter.waited:.1f} s in all, {limiter.retries} RetryAfter", flush=True)
    return 0


@dataclass
class CrowdResult:
    people: int
    done: int
    seconds: float
    replies: int
    latencies: list[float]
    pending: list[float]  # presses not answered at the end: how long they had waited
    violations: list[str]
    too_many_requests: int
    messages: int  # accepted sendMessage/editMessageText/sendDocument
    message_seconds: float
    refusals: list[str]
    errors: list[str]

    @property
    def replies_per_s(self) -> float:
        return self.replies / self.seconds if self.seconds else 0.0

    @property
    def messages_per_s(self) -> float:
        return self.messages / self.message_seconds if self.message_seconds else 0.0

    def latency(self, p: float) -> float | None:
        """Percentile of press -> next question; a press still unanswered counts with its wait so far."""
        return percentile(self.latencies + self.pending, p)

    def summary(self) -> dict[str, Any]:
        return {"people": self.people, "done": self.done, "seconds": self.seconds, "replies": self.replies,
                "replies_per_s": self.replies_per_s, "p50_s": self.latency(50), "p99_s": self.latency(99),
                "unanswered": len(self.pending), "violations": self.violations[:10],
                "order_violations": len(self.violations), "too_many_requests": self.too_many_requests,
                "messages": self.messages, "messages_per_s": self.messages_per_s, "refusals": self.refusals[:10],
                "errors": self.errors[:10]}


def crowd(kind: str, people_count: int, seconds: float, latency: float, limit: int | None, workdir: Path,
          profile: Path | None = None) -> CrowdResult:
    """N people start at once and each answers every question as soon as it arrives, until all are done
    or ``seconds`` have passed. The bot runs in its own process; the fake and the people in this one."""
    fake = bench_fake(latency, limit)
    bot_kind = kind
    people = make_people("baseline" if kind == "baseline" else "advisor",
                         range(2_000_001, 2_000_001 + people_count))
    for chat in people:
        fake.add_chat(chat)
    db = workdir / f"crowd-{kind}-{people_count}.db"
    with contextlib.suppress(FileNotFoundError):
        db.unlink()
    bot = BotProcess(bot_kind, fake, db, profile)
    asked_at: dict[int, float] = {}
    latencies: list[float] = []
    errors: list[str] = []
    replies = 0
    first_action = last_reply = 0.0

    def act(person: Any, actions: list[Action], message_id: int | None) -> None:
        nonlocal first_action
        now = time.monotonic()
        first_action = first_action or now
        for kind_, value in actions:
            try:
                if kind_ == "press":
                    assert message_id is not None
                    fake.press(person.chat, message_id, value)
                else:
                    fake.send_text(person.chat, value)
            except ValueError as error:  # a button that is not there: the bot sent something else
                errors.append(f"chat {person.chat}: {error}")
        asked_at[person.chat] = now

    try:
        for person in people.values():
            act(person, person.start(), None)
        deadline = time.monotonic() + seconds
        seen = 0
        while time.monotonic() < deadline and not all(p.done for p in people.values()):
            with fake._cond:
                if seen >= len(fake.events):
                    fake._cond.wait(0.1)
                batch = fake.events[seen:]
                seen += len(batch)
            for at, method, chat, message in batch:
                person = people.get(chat)
                if person is None:
                    continue
                plain = {**message, "text": html.unescape(TAG.sub("", message.get("text") or ""))}
                if method == "editMessageText":
                    person.on_edit(plain["text"])
                    continue
                if method != "sendMessage":
                    continue
                if not person.is_step(plain):
                    continue
                if chat in asked_at:
                    latencies.append(at - asked_at.pop(chat))
                replies += 1
                last_reply = at
                try:
                    actions = person.react(plain)
                except Exception as error:
                    errors.append(f"chat {chat}: {type(error).__name__}: {error}")
                    person.done = True
                    continue
                if actions:
                    act(person, actions, message["message_id"])
        end = time.monotonic()
        everyone = all(p.done for p in people.values())
    finally:
        bot.stop()
        fake.stop()
    if "Traceback" in bot.output():
        errors.append("the bot logged a traceback: " + bot.output()[-2000:])
    pacer = [line for line in bot.output().splitlines() if line.startswith("pacer:")]
    if pacer:
        errors.append(pacer[-1])  # not an error: what the pacer did, kept with the result
    span = (last_reply if everyone else end) - first_action
    limited = [at for at, method, _chat, _m in fake.events if method in ("sendMessage", "editMessageText",
                                                                          "sendDocument")]
    window = [at for at in limited if first_action <= at <= end]
    return CrowdResult(
        people=people_count, done=sum(p.done for p in people.values()), seconds=span, replies=replies,
        latencies=latencies, pending=[end - t for t in asked_at.values()],
        violations=[v for p in people.values() for v in p.violations], too_many_requests=fake.too_many_requests,
        messages=len(window), message_seconds=(max(window) - min(window)) if len(window) > 1 else 0.0,
        refusals=[f"{r.method}: {r.description}" for r in fake.refusals], errors=errors,
    )


def scenario_2(report: Report, cfg: dict[str, Any], workdir: Path, profile_dir: Path | None) -> None:
    n, seconds = cfg["s2_people"], cfg["s2_seconds"]
    log(f"scenario 2: {n} people at once, 50 ms per call, no outbound limit (up to {seconds:.0f} s each) ...")
    results = {}
    for kind in ("baseline", "advisor"):
        profile = profile_dir / "s2-advisor.txt" if profile_dir and kind == "advisor" else None
        if profile is not None:
            profile_dir.mkdir(parents=True, exist_ok=True)  # type: ignore[union-attr]
        results[kind] = crowd(kind, n, seconds, 0.05, None, workdir, profile)
        r = results[kind]
        log(f"  {kind}: {r.done}/{n} done in {r.seconds:.1f} s, {r.replies_per_s:.1f} replies/s, "
            f"p50 {fmt(r.latency(50))} s, p99 {fmt(r.latency(99))} s, {len(r.pending)} unanswered, "
            f"{len(r.violations)} order violations, {len(r.errors)} errors")
    a, b = results["advisor"], results["baseline"]
    report.add(Figure("s2.replies_per_s", f"2. replies/s, {n} people, 50 ms/call", "/s", a.replies_per_s,
                      b.replies_per_s, ">= 10x baseline",
                      bool(b.replies_per_s) and a.replies_per_s >= 10 * b.replies_per_s))
    p50a, p50b = a.latency(50), b.latency(50)
    p99a, p99b = a.latency(99), b.latency(99)
    report.add(Figure("s2.p50_ms", "2. press -> next question p50", "ms", p50a and p50a * 1e3,
                      p50b and p50b * 1e3, "", None, False))
    report.add(Figure("s2.p99_ms", "2. press -> next question p99", "ms", p99a and p99a * 1e3,
                      p99b and p99b * 1e3, "< 1000 ms", p99a is not None and p99a < 1.0, False))
    report.add(Figure("s2.order_violations", "2. order violations within a chat", "", len(a.violations),
                      len(b.violations), "0", not a.violations, False))
    report.add(Figure("s2.completed", "2. people who completed", "", a.done, b.done, f"all {n}", a.done == n))
    if b.done < n:
        report.notes.append(f"Scenario 2: the baseline was stopped after {seconds:.0f} s with {b.done} of {n} people "
                            f"done; its latency percentiles count each unanswered press with its wait so far.")
    report.details["s2"] = {k: v.summary() for k, v in results.items()}


def scenario_3(report: Report, cfg: dict[str, Any], workdir: Path, profile_dir: Path | None) -> None:
    n, seconds = cfg["s3_people"], cfg["s3_seconds"]
    log(f"scenario 3: {n}-person burst, the fake refuses > 30 messages/s ({seconds:.0f} s each) ...")
    compare = cfg["s3_aio"] and importlib.util.find_spec("aiolimiter") is not None
    if cfg["s3_aio"] and not compare:
        log("  (PTB's AIORateLimiter needs aiolimiter: pip install 'python-telegram-bot[rate-limiter]==22.8';"
            " its comparison rows are left out)")
    kinds = ["baseline", "advisor-pacer"] + (["advisor-aio"] if compare else [])
    results = {}
    for kind in kinds:
        results[kind] = crowd(kind, n, seconds, 0.05, 30, workdir)
        r = results[kind]
        log(f"  {kind}: {r.messages_per_s:.1f} messages/s, {r.too_many_requests} x 429, "
            f"{r.replies_per_s:.1f} replies/s, {r.done}/{n} done, {len(r.errors)} notes/errors")
    a, b = results["advisor-pacer"], results["baseline"]
    report.add(Figure("s3.too_many_requests", f"3. 429 responses, {n}-person burst (Pacer)", "",
                      a.too_many_requests, b.too_many_requests, "0", a.too_many_requests == 0, False))
    report.add(Figure("s3.messages_per_s", "3. messages/s accepted (limit 30/s)", "/s", a.messages_per_s,
                      b.messages_per_s, ">= 27/s (0.9 x 30)", a.messages_per_s >= 27))
    if "advisor-aio" in results:
        c = results["advisor-aio"]
        report.add(Figure("s3.aio_too_many_requests", "3. 429 responses with PTB's AIORateLimiter", "",
                          c.too_many_requests, b.too_many_requests, "(for comparison)", None, False))
        report.add(Figure("s3.aio_messages_per_s", "3. messages/s with PTB's AIORateLimiter", "/s",
                          c.messages_per_s, b.messages_per_s, "(for comparison)", None))
    report.details["s3"] = {k: v.summary() for k, v in results.items()}


# ============================================================================================
# Scenario 4: memory per stored conversation touched once, time to the first getUpdates
# ============================================================================================


def seed(db: Path, count: int, first_user: int) -> None:
    """``count`` conversations in progress (at various questions, two turns each) for users
    ``first_user``, ``first_user + 1`` ..., written straight into the store's tables."""
    from advisor.service import build_service
    from advisor.store import Store, _state_columns, now
    from tests.personas import PERSONAS

    Store.open(db).close()  # the schema, migrated
    service = build_service(":memory:")
    engine, dialog = service.engine, service.dialog
    states = []
    for lines in PERSONAS.values():
        state = engine.start().state
        for line in lines[:-1]:
            states.append(state)
            step = engine.skip(state) if line == "skip" else engine.answer(state, line)
            if step.kind == "finish":
                break
            state = step.state
    service.store.close()
    stamp = now()
    connection = sqlite3.connect(db)
    with connection:
        connection.execute("PRAGMA synchronous = OFF")
        start_id = connection.execute("SELECT COALESCE(MAX(id), 0) FROM conversations").fetchone()[0] + 1
        rows, turns = [], []
        for i in range(count):
            columns = _state_columns(states[i % len(states)])
            rows.append((start_id + i, "telegram", str(first_user + i), None, "in_progress", columns["state"],
                         columns["answers"], columns["context"], dialog.id, dialog.version, stamp, stamp))
            turns.append((start_id + i, 1, stamp, "advisor", columns["state"], "Question"))
            turns.append((start_id + i, 2, stamp, "person", columns["state"], "an answer"))
        connection.executemany(
            "INSERT INTO conversations (id, channel, user_id, ref, status, state, answers, context, dialog_id,"
            " dialog_version, started_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        connection.executemany("INSERT INTO turns (conversation_id, seq, at, role, question_id, text)"
                               " VALUES (?, ?, ?, ?, ?, ?)", turns)
    connection.close()


MEMORY_FIRST_USER = 3_000_001


def memory_worker(kind: str, db: str, count: int, warmup: int) -> int:
    """``--memory KIND``: the resident memory one more conversation touched once costs, in this process.

    The advisor: ``count`` stored conversations each get a /start (found in SQLite, resumed: the
    current question is sent again). The baseline: ``count`` people each send /start (a new
    conversation in ConversationHandler's memory). Printed as JSON.
    """
    async def run() -> dict[str, Any]:
        stub = StubRequest()
        stub.keep = False  # the stub remembers nothing: only the bot's memory is measured
        app, service = inprocess_app(kind, stub, Path(db))
        async with app:
            async def touch(first: int, n: int) -> None:
                for chat in range(first, first + n):
                    update = Update.de_json(text_update(chat, "/start", 10_000), app.bot)
                    await app.update_processor.process_update(update, app.process_update(update))

            from telegram import Update

            await touch(MEMORY_FIRST_USER, warmup)
            gc.collect()
            before = rss_kib()
            started = time.perf_counter()
            await touch(MEMORY_FIRST_USER + warmup, count)
            elapsed = time.perf_counter() - started
            gc.collect()
            after = rss_kib()
            sent = stub.calls
        if service is not None:
            service.store.close()
        return {"kind": kind, "count": count, "rss_before_kib": before, "rss_after_kib": after,
                "kib_per_conversation": (after - before) / count, "seconds": elapsed, "api_calls": sent}

    print(json.dumps(asyncio.run(run())))
    return 0


def start_time(command: list[str], env: dict[str, str], fake: Any) -> float:
    """Seconds from starting ``command`` to its first getUpdates on ``fake``; the process is then stopped."""
    mark = fake.mark()
    started = time.monotonic()
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
    try:
        fake.wait_for(lambda method, params: method == "getUpdates", since=mark, timeout=60)
        return time.monotonic() - started
    except TimeoutError:
        process.kill()
        raise RuntimeError(f"{command} did not poll: {process.communicate()[0][-2000:]!r}") from None
    finally:
        terminate(process)


def scenario_4(report: Report, cfg: dict[str, Any], workdir: Path, profile_dir: Path | None) -> None:
    from tests.fake_telegram import FakeBotAPI

    count, warmup = cfg["s4_memory"], 200
    log(f"scenario 4: memory of {count:,} conversations touched once; start with {cfg['s4_start']:,} stored ...")
    memory: dict[str, dict[str, Any]] = {}
    for kind in ("baseline", "advisor"):
        db = workdir / f"s4-memory-{kind}.db"
        if kind == "advisor":
            seed(db, count + warmup, MEMORY_FIRST_USER)
        out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--memory", kind, "--db", str(db),
                              "--count", str(count), "--warmup", str(warmup)], capture_output=True, text=True,
                             cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=600)
        if out.returncode != 0:
            raise RuntimeError(f"memory worker failed: {out.stderr[-3000:]}")
        memory[kind] = json.loads(out.stdout.strip().splitlines()[-1])
        log(f"  {kind}: {memory[kind]['kib_per_conversation']:.2f} KiB per conversation "
            f"({memory[kind]['rss_before_kib'] / 1024:.0f} -> {memory[kind]['rss_after_kib'] / 1024:.0f} MiB)")
    a, b = memory["advisor"]["kib_per_conversation"], memory["baseline"]["kib_per_conversation"]
    report.add(Figure("s4.kib_per_conversation", f"4. memory per conversation ({count:,} touched)", "KiB", a, b,
                      "< 2 KiB", a < 2, False))

    stored = cfg["s4_start"]
    db = workdir / "s4-start.db"
    seeded = time.monotonic()
    seed(db, stored, 5_000_001)
    log(f"  {stored:,} conversations stored in {time.monotonic() - seeded:.1f} s "
        f"({db.stat().st_size / 1e6:.0f} MB)")
    empty = workdir / "s4-empty.db"
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "ADVISOR_"))}
    times: dict[str, list[float]] = {"advisor": [], "advisor-empty": [], "baseline": []}
    with FakeBotAPI() as fake:
        env = {**base_env, "TELEGRAM_BOT_TOKEN": fake.token, "TELEGRAM_API_URL": fake.url, "PYTHONPATH": str(ROOT)}
        for _ in range(cfg["s4_start_runs"]):
            times["advisor"].append(start_time([sys.executable, str(ROOT / "bot.py"), "telegram"],
                                               {**env, "ADVISOR_DB": str(db)}, fake))
            times["advisor-empty"].append(start_time([sys.executable, str(ROOT / "bot.py"), "telegram"],
                                                     {**env, "ADVISOR_DB": str(empty)}, fake))
            times["baseline"].append(start_time([sys.executable, str(ROOT / "bench" / "baseline.py")], env, fake))
    median = {k: sorted(v)[len(v) // 2] for k, v in times.items()}
    log(f"  to the first getUpdates: advisor {median['advisor']:.2f} s ({stored:,} stored), "
        f"{median['advisor-empty']:.2f} s (empty), baseline {median['baseline']:.2f} s")
    report.add(Figure("s4.start_s", f"4. start -> first getUpdates ({stored:,} stored)", "s", median["advisor"],
                      median["baseline"], "< 1.5 s", median["advisor"] < 1.5, False,
                      note=f"advisor with an empty database: {median['advisor-empty']:.2f} s"))
    report.notes.append(f"Scenario 4: `python bot.py telegram` with {stored:,} stored conversations took "
                        f"{median['advisor']:.2f} s to its first getUpdates, {median['advisor-empty']:.2f} s with an "
                        f"empty database (median of {cfg['s4_start_runs']}; the fake answers at once here).")
    report.details["s4"] = {"memory": memory, "start_s": times}


# ============================================================================================
# Scenario 5: the pure engine and the templates
# ============================================================================================


def scenario_5(report: Report, cfg: dict[str, Any], workdir: Path, profile_dir: Path | None) -> None:
    from advisor.service import build_service
    from tests.personas import PERSONAS

    log("scenario 5: engine steps/s, recommendation render time ...")
    service = build_service(":memory:")
    engine, renderer = service.engine, service.renderer
    personas = list(PERSONAS.values())
    finishes = []

    def walk(lines: list[str]) -> int:
        state = engine.start().state
        steps = 1
        for line in lines:
            step = engine.skip(state) if line == "skip" else engine.answer(state, line)
            steps += 1
            if step.kind == "finish":
                finishes.append(step)
                break
            state = step.state
        return steps

    for lines in personas:  # warm up
        walk(lines)
    steps = 0
    started = time.perf_counter()
    for n in range(cfg["s5_walks"]):
        steps += walk(personas[n % len(personas)])
    engine_rate = steps / (time.perf_counter() - started)
    renders: dict[str, list[float]] = {"html": [], "txt": []}
    for fmt_ in renders:
        for step in finishes[:len(personas)]:  # templates compiled before timing
            renderer.step(step, fmt_)
        for n in range(cfg["s5_renders"]):
            step = finishes[n % len(personas)]
            start = time.perf_counter()
            renderer.step(step, fmt_)
            renders[fmt_].append(time.perf_counter() - start)
    service.store.close()
    log(f"  {engine_rate:,.0f} steps/s; recommendation p99 html {percentile(renders['html'], 99) * 1e3:.2f} ms, "
        f"txt {percentile(renders['txt'], 99) * 1e3:.2f} ms")
    report.add(Figure("s5.engine_steps_per_s", "5. engine steps/s (pure, whole walks)", "/s", engine_rate, None,
                      "(no goal)"))
    report.add(Figure("s5.render_html_p99_ms", "5. recommendation render p99, html", "ms",
                      percentile(renders["html"], 99) * 1e3, None, "(no goal)", None, False))
    report.add(Figure("s5.render_txt_p99_ms", "5. recommendation render p99, txt", "ms",
                      percentile(renders["txt"], 99) * 1e3, None, "(no goal)", None, False))
    report.details["s5"] = {"steps": steps, "steps_per_s": engine_rate,
                            "render_ms": {k: {"p50": percentile(v, 50) * 1e3, "p99": percentile(v, 99) * 1e3}
                                          for k, v in renders.items()}}


# ============================================================================================
# Patches: variants of the advisor, applied by monkeypatching (``--patch``) to compare them
# ============================================================================================


def apply_patches(names: Iterable[str]) -> list[str]:
    """Apply the named variants to this process (and, through BENCH_PATCHES, to the bot processes);
    returns those applied."""
    applied = []
    for name in names:
        if not name:
            continue
        if name not in PATCHES:
            raise SystemExit(f"unknown patch {name!r}; known: {', '.join(PATCHES)}")
        try:
            PATCHES[name]()
        except ImportError as error:
            raise SystemExit(f"patch {name!r} needs {error.name}: pip install {error.name}") from None
        applied.append(name)
    return applied


def _patch_httpx() -> None:
    """The advisor with python-telegram-bot's own request layer (HTTPXRequest, a pool of 32 and a 30 s
    pool timeout: what it used before AiohttpRequest), to compare the two request layers."""
    from telegram.request import HTTPXRequest

    import advisor.channels.telegram.app as tg  # where build_application finds its request class

    def httpx_request(connection_pool_size: int = 32, **kwargs: Any) -> Any:
        return HTTPXRequest(connection_pool_size=min(connection_pool_size, 32), **kwargs)

    tg.AiohttpRequest = httpx_request  # type: ignore[assignment,misc]


def _patch_uvloop() -> None:
    """uvloop as the event loop (libuv's sockets and timers instead of asyncio's pure-Python ones).
    Needs uvloop (not a dependency of the advisor)."""
    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


PATCHES: dict[str, Callable[[], None]] = {
    "httpx": _patch_httpx,
    "uvloop": _patch_uvloop,
}
ALL_PATCHES = ",".join(PATCHES)


# ============================================================================================
# main
# ============================================================================================

SCENARIOS: dict[str, Callable[..., None]] = {"1": scenario_1, "2": scenario_2, "3": scenario_3,
                                             "4": scenario_4, "5": scenario_5}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="a few minutes on 2 cores")
    size.add_argument("--smoke", action="store_true", help="a few seconds: that the benchmark works")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    parser.add_argument("--only", help="comma-separated scenarios to run (1-5)")
    parser.add_argument("--profile", type=Path, help="write pyinstrument profiles of the advisor to this folder")
    parser.add_argument("--patch", help="measure a variant of the advisor, by monkeypatching: httpx (PTB's own"
                        " request layer), uvloop; comma-separated or 'all' (see bench/README.md)")
    parser.add_argument("--serve", help=argparse.SUPPRESS)  # the bot process of scenarios 2-3
    parser.add_argument("--api-url", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--serve-profile", help=argparse.SUPPRESS)
    parser.add_argument("--memory", help=argparse.SUPPRESS)  # the memory process of scenario 4
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory:
        return memory_worker(args.memory, args.db, args.count, args.warmup)
    if args.serve:
        return serve(args.serve, args.api_url, args.db, args.serve_profile)
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    cfg = MODES[mode]
    patches = ALL_PATCHES if args.patch == "all" else (args.patch or "")
    applied = apply_patches(patches.split(","))
    if applied:
        os.environ["BENCH_PATCHES"] = ",".join(applied)  # for the bot processes too
    warnings.simplefilter("ignore")
    report = Report(mode)
    if applied:
        report.notes.append(f"Measured WITH these variants applied by monkeypatching: {', '.join(applied)}.")
    chosen = [s.strip() for s in (args.only or ",".join(SCENARIOS)).split(",") if s.strip()]
    started = time.monotonic()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="advisor-bench-") as tmp:
        for name in chosen:
            SCENARIOS[name](report, cfg, Path(tmp), args.profile)
    report.details["elapsed_s"] = time.monotonic() - started
    report.details["machine"] = {**machine(), "load average before, after": [round(load_before[0], 2),
                                                                               round(os.getloadavg()[0], 2)]}
    print(table(report))
    for note in report.notes:
        print(f"- {note}")
    facts = report.details["machine"]
    print(f"- Machine: {facts['cores']} cores ({facts['cpu']}), {facts['memory']}, {facts['implementation']} "
          f"{facts['python']}, python-telegram-bot {facts['python-telegram-bot']}, SQLite {facts['sqlite']}, "
          f"{facts['os']}; 1-minute load average {facts['load average before, after'][0]} before, "
          f"{facts['load average before, after'][1]} after; {report.details['elapsed_s']:.0f} s in all.")
    if args.json:
        args.json.write_text(json.dumps(as_json(report), indent=2, default=str) + "\n", encoding="utf-8")
        log(f"figures written to {args.json}")
    return 0


def as_json(report: Report) -> dict[str, Any]:
    return {
        "mode": report.mode,
        "machine": report.details.get("machine"),
        "elapsed_s": report.details.get("elapsed_s"),
        "figures": {f.id: {"figure": f.label, "unit": f.unit, "advisor": f.advisor, "baseline": f.baseline,
                           "ratio": f.ratio, "goal": f.goal, "met": f.met, "note": f.note} for f in report.figures},
        "notes": report.notes,
        "details": {k: v for k, v in report.details.items() if k not in ("machine", "elapsed_s")},
    }


if __name__ == "__main__":
    sys.exit(main())
