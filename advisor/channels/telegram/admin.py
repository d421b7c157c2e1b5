"""Admin commands in Telegram (/stats, /leads, /lead, /export) for the ids in ADVISOR_ADMIN_IDS."""

from __future__ import annotations

import logging
from typing import Any

from telegram import (
    InputFile,
    Update,
)
from telegram.constants import ChatAction, ParseMode
from telegram.ext import (
    ContextTypes,
)

from advisor import reports
from advisor.channels.telegram.base import SPEAKING, ChannelBase
from advisor.channels.telegram.text import split_message, whole_number
from advisor.store import now

log = logging.getLogger(__name__)


class AdminCommands(ChannelBase):
    """Admins get the commands; anyone else the same answer as for an unknown command."""

    def admin_only(self, handler: Any) -> Any:
        """Admins get the command; anyone else the same answer as for an unknown command."""

        async def guarded(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            user = update.effective_user
            if user is None or user.id not in self.options.admin_ids:
                await self.on_unknown_command(update, context)
                return
            await handler(update, context)

        return guarded

    async def on_stats(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        days = whole_number(context.args, default=30, high=3650)
        stats, funnel = self.service.stats(days)
        order = list(self.service.dialog.order)
        stopped = [{**row, "text": self._question_text(row["question"])} for row in stats["stopped_at"]]
        await self.send(self._chat(update), self.renderer.telegram(
            "stats", days=days, stats=stats, stopped=stopped,
            funnel=[(qid, funnel.get(qid, 0)) for qid in order if qid in funnel]), context)

    async def on_leads(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        count = whole_number(context.args, default=10, high=50)
        leads = self.service.leads(count)
        names = self.service.task_names(SPEAKING.get())  # in the reader's language
        when = self.renderer.env.filters["when"]  # a date as the reader's language writes it
        rows = [{"id": c.id, "name": reports.name_of(c), "ref": c.ref, "score": (c.recommendation or {}).get(
            "readiness_score"), "profile": (c.recommendation or {}).get("profile"),
                 "top": reports.top_functions(c, 2, names), "at": when(c.completed_at or c.started_at)}
                for c in leads]
        await self.send(self._chat(update), self.renderer.telegram("leads", leads=rows), context)

    async def on_lead(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat = self._chat(update)
        conversation_id = whole_number(context.args, default=None, high=2**62)
        found = self.service.lead(conversation_id)
        if found is None:
            await self.send(chat, self.renderer.telegram("no_lead", given=" ".join(context.args or [])), context)
            return
        conversation, transcript = found
        text = self.renderer.telegram(
            "lead", c=conversation, contact=reports.contact_of(conversation), transcript=transcript)
        for chunk in split_message(text):
            await self.send(chat, chunk, context)

    async def on_export(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat = self._chat(update)
        await context.bot.send_chat_action(chat, ChatAction.UPLOAD_DOCUMENT)
        rows = [reports.csv_row(c, review) for c, review in self.service.everyone()]  # one query for reviews
        await context.bot.send_document(
            chat, InputFile(reports.csv_text(rows).encode("utf-8"), filename=f"conversations-{now()[:10]}.csv"),
            caption=self.renderer.telegram("export_caption", count=len(rows)), parse_mode=ParseMode.HTML)

    def _question_text(self, question_id: str) -> str:
        question = self.service.dialog.questions.get(question_id)
        return self.renderer.question(question).text if question else question_id
