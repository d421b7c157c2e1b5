#!/usr/bin/env python3
"""The baseline the benchmark compares the advisor with: a plain python-telegram-bot bot.

What python-telegram-bot's own examples do (``conversationbot.py``, ``inlinekeyboard2.py``): one
``ConversationHandler`` with a state per question, the answers in ``context.user_data`` (memory
only), updates handled one at a time (the default ``concurrent_updates=False``), no rate limiter.
It asks the same questions as the advisor (texts and options read from dialogs/outsourcing.yaml),
each as a message with an inline keyboard (one button per option), or a typed answer for the text and
number questions. A press is answered like the advisor answers it: answerCallbackQuery, the question
message edited to show the answer, then the next question; the end is a short thank-you.

    TELEGRAM_BOT_TOKEN=... TELEGRAM_API_URL=http://127.0.0.1:PORT python bench/baseline.py
"""

from __future__ import annotations

import html
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import yaml
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    ConversationHandler,
    MessageHandler,
    filters,
)
from telegram.warnings import PTBUserWarning

DIALOG = Path(__file__).resolve().parent.parent / "dialogs" / "outsourcing.yaml"


@dataclass(frozen=True)
class Question:
    text: str
    options: tuple[str, ...]  # empty: a typed answer

    @property
    def typed(self) -> bool:
        return not self.options


def load_questions(path: Path = DIALOG) -> list[Question]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [Question(q["text"], tuple(o["label"] for o in q.get("options") or ())) for q in data["questions"]]


QUESTIONS = load_questions()


def question_text(n: int) -> str:
    q = QUESTIONS[n]
    how = "Type your answer." if q.typed else "Choose one."
    return f"<i>Question {n + 1} of {len(QUESTIONS)}</i>\n<b>{html.escape(q.text)}</b>\n{how}"


def keyboard(n: int) -> InlineKeyboardMarkup | None:
    q = QUESTIONS[n]
    if q.typed:
        return None
    return InlineKeyboardMarkup([[InlineKeyboardButton(label, callback_data=f"{n}:{i}")]
                                 for i, label in enumerate(q.options)])


async def ask(chat_id: int, n: int, context: ContextTypes.DEFAULT_TYPE) -> int:
    if n >= len(QUESTIONS):
        answers = context.user_data.get("answers", {})  # type: ignore[union-attr]
        await context.bot.send_message(chat_id, f"<b>Thank you!</b> {len(answers)} answers noted.",
                                       parse_mode=ParseMode.HTML)
        return ConversationHandler.END
    await context.bot.send_message(chat_id, question_text(n), parse_mode=ParseMode.HTML, reply_markup=keyboard(n))
    return n


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    context.user_data["answers"] = {}  # type: ignore[index]
    return await ask(update.effective_chat.id, 0, context)  # type: ignore[union-attr]


def pressed(n: int):
    async def handler(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        query = update.callback_query
        assert query is not None and query.data is not None
        number, _, index = query.data.partition(":")
        if number != str(n) or not index.isdecimal() or int(index) >= len(QUESTIONS[n].options):
            await query.answer("Already answered")
            return n
        label = QUESTIONS[n].options[int(index)]
        context.user_data.setdefault("answers", {})[n] = label  # type: ignore[union-attr]
        await query.answer()
        await query.edit_message_text(f"<i>Question {n + 1} of {len(QUESTIONS)}</i>\n"
                                      f"<b>{html.escape(QUESTIONS[n].text)}</b>\n✔ {html.escape(label)}",
                                      parse_mode=ParseMode.HTML)
        return await ask(query.message.chat.id, n + 1, context)  # type: ignore[union-attr]

    return handler


def typed(n: int):
    async def handler(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        assert update.message is not None
        context.user_data.setdefault("answers", {})[n] = update.message.text  # type: ignore[union-attr]
        return await ask(update.message.chat.id, n + 1, context)

    return handler


async def cancel(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    await context.bot.send_message(update.effective_chat.id, "Bye.")  # type: ignore[union-attr]
    return ConversationHandler.END


def conversation() -> ConversationHandler:
    states = {
        n: [MessageHandler(filters.TEXT & ~filters.COMMAND, typed(n))] if q.typed
        else [CallbackQueryHandler(pressed(n))]
        for n, q in enumerate(QUESTIONS)
    }
    with warnings.catch_warnings():  # per_message=False with CallbackQueryHandlers: what the examples do
        warnings.simplefilter("ignore", PTBUserWarning)
        return ConversationHandler(
            entry_points=[CommandHandler("start", start)],
            states=states,
            fallbacks=[CommandHandler("cancel", cancel), CommandHandler("start", start)],
        )


def build_baseline(token: str, api_url: str | None = None, builder: ApplicationBuilder | None = None) -> Application:
    """The baseline Application; ``builder`` lets the benchmark replace the request layer."""
    builder = builder or ApplicationBuilder()
    builder = builder.token(token)
    if api_url:
        builder = builder.base_url(f"{api_url.rstrip('/')}/bot").base_file_url(f"{api_url.rstrip('/')}/file/bot")
    app = builder.build()
    app.add_handler(conversation())
    return app


def main() -> int:
    token = os.environ.get("TELEGRAM_BOT_TOKEN", "")
    if not token:
        print("TELEGRAM_BOT_TOKEN is not set", file=sys.stderr)
        return 1
    app = build_baseline(token, os.environ.get("TELEGRAM_API_URL") or "https://api.telegram.org")
    app.run_polling(allowed_updates=Update.ALL_TYPES)
    return 0


if __name__ == "__main__":
    sys.exit(main())
