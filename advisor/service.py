"""What every channel does for a person's input: load the conversation, ask the engine, commit, reply.

A channel translates its I/O into the calls here and renders the returned ``Step``; the console and
Telegram therefore share the dialog, the advice, the store and the words, and differ only in I/O.
Every call commits its step (state and transcript turns) before returning it, so what a channel
shows has already been saved.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from advisor.advice import load_advisor
from advisor.dialog import Dialog, load_dialog
from advisor.engine import Engine, Step
from advisor.people import People
from advisor.render import TEMPLATES_DIR, Renderer
from advisor.settings import DEFAULT_DIALOG as DEFAULT_DIALOG
from advisor.settings import DIALOGS_DIR as DIALOGS_DIR
from advisor.store import Conversation, Store, Turn


@dataclass(frozen=True)
class Outcome:
    """A committed step: the conversation as saved and what to show next."""

    conversation: Conversation
    step: Step
    resumed: bool = False
    completed: bool = False  # this step completed the conversation (the recommendation is new)
    alert_id: int | None = None  # the lead card queued with this step, if any


class AdvisorService(People):
    def __init__(self, dialog: Dialog, engine: Engine, renderer: Renderer, store: Store):
        self.dialog = dialog
        self.engine = engine
        self.renderer = renderer
        self.store = store
        # Lead cards: None (off), or how many of one person's conversations may make cards a day. When
        # on, a completion queues its card in the same transaction (a crash keeps both or neither).
        self.cards_per_person_a_day: int | None = None

    def open(self, channel: str, user_id: str, ref: str | None = None) -> Outcome:
        """Resume the person's conversation in progress, or begin a new one."""
        existing = self.store.find_open(channel, user_id)
        if existing is not None:
            return Outcome(existing, self.engine.resume(existing.state), resumed=True)
        return self._begin(channel, user_id, ref)

    def answer(self, conversation: Conversation, text: str) -> Outcome:
        step = self.engine.answer(conversation.state, text)
        said = text
        if step.hint is not None and step.hint.code == "too_long":  # refused: keep no more than the cap
            limit, typed = int(step.hint.params["limit"]), text.strip()
            said = self._said("refused", typed=typed[:limit], length=len(typed), limit=limit)
        if step.accepted is not None:  # "3" is kept as typed, with what it meant
            meant = self.describe(conversation.state.current, step.accepted)
            said = text if text.strip() == meant else self._said("typed_as", typed=text.strip(), meant=meant)
        return self._commit(conversation, step, Turn("person", said, conversation.state.current))

    def recommendation_of(self, conversation: Conversation) -> dict[str, Any] | None:
        """The stored recommendation to show again; one stored before the advice had a verdict (rules
        version 1) is made anew from the same answers, since today's templates word today's advice."""
        stored = conversation.recommendation
        if stored is None or "verdict" in stored:
            return stored
        rec = dict(self.engine.resume(conversation.state).recommendation)
        if "contact" in stored:
            rec["contact"] = stored["contact"]
        return rec

    def purge(self, before: str) -> int:
        """Retention, for conversations untouched since ``before``: the transcript, the contact details
        and the person's own words (free-text answers, quoted in the advice and the summary) go; the
        options chosen and the advice stay. Returns how many conversations were purged."""
        typed = [q.id for q in self.dialog.questions.values() if q.type == "text"]
        ids = self.store.purge_transcripts(before, typed)
        for conversation_id in ids:
            conversation = self.store.get(conversation_id)
            rec = self.recommendation_of(conversation)
            if conversation.summary is not None and rec is not None:
                self.store.set_summary(conversation_id, self.renderer.summary(rec, conversation.state.answers))
        if ids:
            self.store.wipe()
        return len(ids)

    def describe(self, question_id: str, value: Any) -> str:
        """An answer as a person reads it: option labels, or the contact details given."""
        if isinstance(value, dict):
            return ", ".join(str(v) for k, v in value.items() if k in ("name", "email", "phone") and v)
        return self.renderer.label(question_id, value)

    def choose(self, conversation: Conversation, values: list[str]) -> Outcome:
        step = self.engine.choose(conversation.state, values)
        label = self.renderer.label(conversation.state.current, values)
        return self._commit(conversation, step, Turn("person", label, conversation.state.current))

    def toggle(self, conversation: Conversation, value: str) -> Outcome:
        step = self.engine.toggle(conversation.state, value)
        label = self.renderer.label(conversation.state.current, value)
        said = self._said("toggled", label=label)
        return self._commit(conversation, step, Turn("person", said, conversation.state.current), log=False)

    def confirm(self, conversation: Conversation) -> Outcome:
        """The answer that was read back is right: keep it and go on."""
        pending = conversation.state.pending
        step = self.engine.confirm(conversation.state)
        what = self.describe(conversation.state.current, pending["value"]) if pending else ""
        said = self._said("confirmed", what=what)
        return self._commit(conversation, step, Turn("person", said, conversation.state.current))

    def back(self, conversation: Conversation) -> Outcome:
        step = self.engine.back(conversation.state)
        said = self._said("command", command="back")
        return self._commit(conversation, step, Turn("person", said, conversation.state.current))

    def skip(self, conversation: Conversation) -> Outcome:
        step = self.engine.skip(conversation.state)
        said = self._said("command", command="skip")
        return self._commit(conversation, step, Turn("person", said, conversation.state.current))

    def restart(self, conversation: Conversation) -> Outcome:
        """Abandon this conversation and begin a new one for the same person and ref."""
        said = self._said("command", command="restart")
        self.store.abandon(conversation.id, [Turn("person", said, conversation.state.current)])
        return self._begin(conversation.channel, conversation.user_id, conversation.ref)

    def _begin(self, channel: str, user_id: str, ref: str | None) -> Outcome:
        step = self.engine.start()
        conversation = self.store.begin(
            channel, user_id, step.state, self.dialog.id, self.dialog.version, ref=ref,
            turns=[self._advisor_turn(step)],
        )
        return Outcome(conversation, step)

    def _commit(self, conversation: Conversation, step: Step, person: Turn, log: bool = True) -> Outcome:
        """Save the step; ``log=False`` keeps only the person's turn (a toggle re-asks nothing)."""
        recommendation = summary = alert = None
        if step.kind == "finish" and not conversation.state.finished:
            recommendation = step.recommendation
            summary = self.renderer.summary(recommendation, step.state.answers)
            if self.cards_per_person_a_day is not None:  # a lead card, in the same transaction
                consented = any(isinstance(v, dict) and v.get("consent") for v in step.state.answers.values())
                alert = ("expert" if consented else "completed", self.cards_per_person_a_day)
        turns = [person, self._advisor_turn(step)] if log else [person]
        alert_id = self.store.save(conversation.id, step.state, turns, recommendation=recommendation,
                                   summary=summary, alert=alert)
        return Outcome(self.store.get(conversation.id), step, completed=recommendation is not None,
                       alert_id=alert_id)

    def _advisor_turn(self, step: Step) -> Turn:
        if step.kind == "finish":
            rec: Mapping[str, Any] = step.recommendation
            tasks = ", ".join(f"{f['name']} ({f['approach']['id']})" for f in rec["functions"])
            text = self._said("recommendation", rec=rec, tasks=tasks)
            return Turn("advisor", text, None)
        assert step.question is not None
        text = self._said("asked", text=step.question.text, hint=step.hint.code if step.hint else None)
        return Turn("advisor", text, step.question.id)

    def _said(self, kind: str, **context: Any) -> str:
        """A turn as the transcript records it (templates/transcript.txt)."""
        return self.renderer.macro("transcript.txt", kind, **context)


def build_service(db_path: str | Path, dialog_path: Path = DEFAULT_DIALOG,
                  templates_dir: Path = TEMPLATES_DIR) -> AdvisorService:
    """Load and check the dialog, its advice rules and templates, then open the store."""
    dialog = load_dialog(dialog_path, templates_dir)
    advisor = load_advisor(dialog)
    renderer = Renderer(dialog, templates_dir)
    engine = Engine(dialog, lambda answers: renderer.explain(advisor.recommend(answers)))
    return AdvisorService(dialog, engine, renderer, Store.open(db_path))
