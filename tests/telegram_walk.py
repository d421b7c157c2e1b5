"""Driving the real bot process (``python bot.py telegram``) through the fake Bot API as a person does.

A person presses the buttons the bot sent and types where a question asks for it; these helpers do
the same through :class:`tests.fake_telegram.FakeBotAPI`, and wait on what the bot does in return
(never on time). Used by tests/test_telegram.py.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from advisor.dialog import Dialog, Question, load_dialog
from advisor.render import TEMPLATES_DIR
from advisor.service import DEFAULT_DIALOG
from tests.conftest import BotProcess, run_bot
from tests.fake_telegram import FakeBotAPI, utf16_length

DIALOG: Dialog = load_dialog(DEFAULT_DIALOG, TEMPLATES_DIR)
VERSION = DIALOG.version  # the last part of a question button's data
ORDER = DIALOG.order  # the questions in the file's order: the longest path, the one every persona with tasks takes
TOTAL = len(ORDER)  # "Question N of TOTAL" on that path (16)

# a:/t:<conversation>:<question>:<n>:<version>, d:/k:/b:/r:<conversation>:<question>:<version>
# (see advisor/channels/telegram.py)
QUESTION_DATA = re.compile(r"^(?P<kind>[atdkbrm]):(?P<cid>\d+):(?P<qid>[a-z_]+)(?::(?P<n>\d+))?:(?P<v>\d+)$")
MARKS = ("✅ ", "▫️ ", "• ", "❔ ")

BACK = "⬅ Back"
SKIP = "Skip"
READ_BACK_YES = "✔ Yes, that's right"
SOMETHING_ELSE = "Something else…"
DONE = "Done"
EXPERT = "💬 Talk to an expert"
REPORT = "📄 Full report"
START_OVER = "🔄 Start over"
CONSENT_YES = "Yes, I agree"
CONSENT_NO = "No, thanks"
FORGET_YES = "Yes, delete everything"
FORGET_NO = "No, keep it"
ALREADY_ANSWERED = "Already answered"
WHAT_NEXT = "What next?"
RECOMMENDATION_TITLE = "Your outsourcing recommendation"  # one screen, one HTML message
NUDGE = "I can only read text answers and button presses here."
UNKNOWN_COMMAND = "I don't know that command."
MESSAGE_LIMIT = 4096
SCREEN_WORDS = 300  # the most words the recommendation takes on one screen
COMMANDS = {"start", "restart", "back", "help", "summary", "language", "privacy", "forget"}


def at(qid: str) -> int:
    """Where question ``qid`` is on the longest path, from 0: the index of its line in a persona that
    answers every question (tests/personas.py), one less than its "Question N"."""
    return ORDER.index(qid)


# -- reading what the bot sent ---------------------------------------------------------------
def label(text: str) -> str:
    """A button's caption without the bot's selection marks (✅, ▫️, •, ❔)."""
    for mark in MARKS:
        if text.startswith(mark):
            return text[len(mark):]
    return text


def buttons(message: dict[str, Any] | None) -> list[tuple[str, str | None]]:
    return FakeBotAPI.buttons(message)


def question_of(message: dict[str, Any] | None) -> tuple[int, str] | None:
    """(conversation id, question id) that a question message's buttons carry, or None."""
    for _text, data in buttons(message):
        match = QUESTION_DATA.match(data or "")
        if match:
            return int(match["cid"]), match["qid"]
    return None


def is_question_markup(markup: Any) -> bool:
    """Whether a reply_markup (as sent) is a question's inline keyboard."""
    if not isinstance(markup, dict) or "inline_keyboard" not in markup:
        return False
    return question_of({"message_id": 0, "reply_markup": markup}) is not None


def current_question(fake: FakeBotAPI, chat: int) -> dict[str, Any]:
    """The newest bot message in the chat that asks a question (has question buttons)."""
    for message in reversed(fake.messages(chat)):
        if question_of(message) is not None:
            return message
    raise AssertionError(f"no question message in chat {chat}: {[m['plain'][:60] for m in fake.messages(chat)]}")


def last_with_keyboard(fake: FakeBotAPI, chat: int) -> dict[str, Any]:
    for message in reversed(fake.messages(chat)):
        if buttons(message) and "inline_keyboard" in (message["reply_markup"] or {}):
            return message
    raise AssertionError(f"no bot message with an inline keyboard in chat {chat}")


def message_by_id(fake: FakeBotAPI, chat: int, message_id: int) -> dict[str, Any]:
    for message in fake.messages(chat):
        if message["message_id"] == message_id:
            return message
    raise AssertionError(f"chat {chat} has no bot message {message_id}")


def data_for(message: dict[str, Any], label_prefix: str) -> str:
    """The callback data of the button whose caption (marks left out) starts with ``label_prefix``."""
    found = [data for text, data in buttons(message) if label(text).startswith(label_prefix) and data]
    if not found:
        raise AssertionError(f"no button {label_prefix!r} on message {message['message_id']}: {buttons(message)}")
    return found[0]


def selected(message: dict[str, Any]) -> list[str]:
    """The values a multi-choice question message shows ticked (✅)."""
    ref = question_of(message)
    assert ref is not None
    question = DIALOG.question(ref[1])
    values = []
    for text, data in buttons(message):
        match = QUESTION_DATA.match(data or "")
        if match and match["kind"] == "t" and text.startswith("✅"):
            values.append(question.options[int(match["n"])].value)
    return values


def bot_texts(fake: FakeBotAPI, chat: int, after: int = 0) -> list[str]:
    return [m["plain"] for m in fake.messages(chat) if m["message_id"] > after]


def newest_id(fake: FakeBotAPI, chat: int) -> int:
    found = fake.messages(chat)
    return found[-1]["message_id"] if found else 0


# -- acting ----------------------------------------------------------------------------------
def press(fake: FakeBotAPI, chat: int, message: dict[str, Any], data: str, *, strict: bool = True) -> str:
    """Press the button with ``data`` on ``message``; returns the callback query id."""
    return fake.press(chat, message["message_id"], data, strict=strict)


def press_option(fake: FakeBotAPI, chat: int, label_prefix: str, message: dict[str, Any] | None = None) -> str:
    """Press the button captioned ``label_prefix...`` on ``message`` (default: the newest message with an
    inline keyboard); returns the callback query id."""
    message = message or last_with_keyboard(fake, chat)
    return press(fake, chat, message, data_for(message, label_prefix))


def callback_answer(fake: FakeBotAPI, query_id: str, timeout: float = 10) -> dict[str, Any]:
    """Wait until the bot answered callback query ``query_id``; its answerCallbackQuery params."""
    call = fake.wait_for(lambda m, p: m == "answerCallbackQuery" and str(p["callback_query_id"]) == query_id,
                         timeout=timeout)
    return call.params


def toggle(fake: FakeBotAPI, chat: int, message: dict[str, Any], label_prefix: str,
           data: str | None = None) -> dict[str, Any]:
    """Tick or untick one option of a multi-choice question (by its caption, or its callback ``data``:
    captions differ in every language); the message once its keyboard is edited."""
    mark = fake.mark()
    query = press(fake, chat, message, data or data_for(message, label_prefix))
    fake.wait_for(lambda m, p: m == "editMessageReplyMarkup" and p["chat_id"] == chat
                  and p["message_id"] == message["message_id"], since=mark)
    assert callback_answer(fake, query).get("text") is None
    return message_by_id(fake, chat, message["message_id"])


def _after_buttons(params: dict[str, Any]) -> bool:
    """The "What next?" message in any language: its buttons are the x:<conversation>:... ones."""
    rows = (params.get("reply_markup") or {}).get("inline_keyboard") or []
    return any(str(b.get("callback_data", "")).startswith("x:") for row in rows for b in row)


def wait_step(fake: FakeBotAPI, chat: int, since: int, timeout: float = 10) -> dict[str, Any]:
    """Wait (from call ``since`` on) for the bot's next step in the chat: a question message (with its
    buttons) or, after the recommendation, the "What next?" message. Returns that message."""
    call = fake.wait_for(
        lambda m, p: m == "sendMessage" and p["chat_id"] == chat
        and (is_question_markup(p.get("reply_markup")) or WHAT_NEXT in p["text"] or _after_buttons(p)),
        since=since, timeout=timeout,
    )
    matching = [m for m in fake.messages(chat) if m["text"] == call.params["text"]]
    assert matching, f"the message sent is gone: {call.params['text']!r}"
    return matching[-1]


def wait_question(fake: FakeBotAPI, chat: int, since: int, qid: str) -> dict[str, Any]:
    step = wait_step(fake, chat, since)
    assert question_of(step) is not None and question_of(step)[1] == qid, (  # type: ignore[index]
        f"expected question {qid}, got {step['plain']!r}")
    return step


def start(fake: FakeBotAPI, chat: int, text: str = "/start", **kwargs: Any) -> dict[str, Any]:
    """/start (or ``text``) in a private chat; the first question message."""
    mark = fake.mark()
    fake.send_text(chat, text, **kwargs)
    return wait_step(fake, chat, mark)


def answer_line(fake: FakeBotAPI, chat: int, line: str) -> dict[str, Any]:
    """Answer the current question with a console persona's line, the Telegram way: numbered choices
    by pressing their buttons (ticking multi-choice options, then Done), "" or "yes" on a
    pre-selected multi-choice by pressing Done, "skip" by pressing Skip, anything else typed.
    Returns the next step (question or "What next?" message)."""
    message = current_question(fake, chat)
    ref = question_of(message)
    assert ref is not None
    cid, qid = ref
    question: Question = DIALOG.question(qid)
    text = line.strip()
    numbers = [int(n) for n in re.split(r"[,\s]+", text) if n] if re.fullmatch(r"[\d,\s]+", text) else []
    read_back = [data for caption, data in buttons(message) if caption == READ_BACK_YES and data]
    if read_back and text.lower() in ("", "yes"):  # an answer read back: press "Yes, that's right"
        mark = fake.mark()
        query = press(fake, chat, message, read_back[0])
    elif question.type == "multi" and (numbers or text.lower() in ("", "yes")):
        if numbers:
            wanted = {question.options[n - 1].value for n in numbers}
            for index, option in enumerate(question.options):
                if (option.value in wanted) != (option.value in selected(message)):
                    message = toggle(fake, chat, message, option.label, f"t:{cid}:{qid}:{index}:{VERSION}")
        mark = fake.mark()
        query = press(fake, chat, message, f"d:{cid}:{qid}:{VERSION}")
    elif question.type in ("single", "contact") and len(numbers) == 1:
        mark = fake.mark()
        query = press(fake, chat, message, f"a:{cid}:{qid}:{numbers[0] - 1}:{VERSION}")
    elif text.lower() == "skip" and question.skippable:
        mark = fake.mark()
        query = press(fake, chat, message, f"k:{cid}:{qid}:{VERSION}")
    else:
        mark = fake.mark()
        fake.send_text(chat, line)
        return wait_step(fake, chat, mark)
    step = wait_step(fake, chat, mark)
    assert callback_answer(fake, query).get("text") is None
    return step


def answer_walk(fake: FakeBotAPI, chat: int, lines: Sequence[str]) -> dict[str, Any]:
    """Answer the current and following questions with ``lines``; the last step reached."""
    step: dict[str, Any] = {}
    for line in lines:
        step = answer_line(fake, chat, line)
    return step


def walk(fake: FakeBotAPI, chat: int, lines: Sequence[str], start_text: str = "/start") -> dict[str, Any]:
    """/start and answer every line; the "What next?" message after the recommendation."""
    start(fake, chat, start_text)
    step = answer_walk(fake, chat, lines)
    assert WHAT_NEXT in step["plain"], step["plain"]
    return step


def recommendation_messages(fake: FakeBotAPI, chat: int, after: int = 0) -> list[dict[str, Any]]:
    """The messages of the newest recommendation sent after message ``after``: from its title up to,
    not including, "What next?"."""
    found = [m for m in fake.messages(chat) if m["message_id"] > after]
    starts = [i for i, m in enumerate(found) if RECOMMENDATION_TITLE in m["plain"]]
    assert starts, f"no recommendation in chat {chat} after message {after}"
    chunks = []
    for message in found[starts[-1]:]:
        if WHAT_NEXT in message["plain"]:
            return chunks
        chunks.append(message)
    raise AssertionError("the recommendation was not followed by 'What next?'")


def wait_confirmed(fake: FakeBotAPI, timeout: float = 10) -> None:
    """Wait until the bot confirmed (by a getUpdates offset) every update pushed so far."""
    last = fake.updates[-1]["update_id"]
    fake.wait_for(lambda m, p: m == "getUpdates" and (p.get("offset") or 0) > last, timeout=timeout)


def barrier(fake: FakeBotAPI, chat: int) -> None:
    """Updates of one chat are handled in order: once /help is answered, all before it are done."""
    mark = fake.mark()
    fake.send_text(chat, "/help")
    fake.wait_for(lambda m, p: m == "sendMessage" and p["chat_id"] == chat and "/forget:" in p["text"], since=mark)


# -- what was stored -------------------------------------------------------------------------
def export(db: Path) -> list[dict[str, Any]]:
    result = run_bot("export", "--format", "json", db=db)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def exported(db: Path, user_id: int | str, channel: str = "telegram") -> list[dict[str, Any]]:
    return [r for r in export(db) if r["channel"] == channel and r["user_id"] == str(user_id)]


def query(db: Path, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    connection = sqlite3.connect(db)
    try:
        return connection.execute(sql, params).fetchall()
    finally:
        connection.close()


def conversation_row(db: Path, conversation_id: int) -> tuple[Any, ...]:
    """The conversation's state as stored (not which message asked it: that is written after sending)."""
    rows = query(db, "SELECT id, channel, user_id, ref, status, state, answers, context, dialog_version,"
                     " started_at, updated_at, completed_at, recommendation, summary, consent_at, contact"
                     " FROM conversations WHERE id = ?", [conversation_id])
    assert len(rows) == 1
    return rows[0]


def turn_count(db: Path, conversation_id: int) -> int:
    return query(db, "SELECT COUNT(*) FROM turns WHERE conversation_id = ?", [conversation_id])[0][0]


# -- the checks at the end of every test -----------------------------------------------------
def assert_clean(fake: FakeBotAPI, *bots: BotProcess) -> None:
    """Nothing the bot sent was refused, every callback query was answered, no message was over the
    limit, and no bot process logged a traceback."""
    for update in fake.updates:
        if "callback_query" in update:
            callback_answer(fake, str(update["callback_query"]["id"]))
    assert fake.refusals == []
    for chat in {c.params["chat_id"] for c in fake.calls if c.method == "sendMessage"}:
        for message in fake.messages(chat):
            assert utf16_length(message["plain"]) <= MESSAGE_LIMIT
    for bot in bots:
        log = Path(bot.log).read_text(encoding="utf-8")
        assert "Traceback" not in log, log
        assert "error while handling an update" not in log, log
