"""What every channel does for a person's input: load the conversation, ask the engine, commit, reply.

A channel translates its I/O into the calls here and renders the returned ``Step``; the console and
Telegram therefore share the dialog, the advice, the store and the words, and differ only in I/O.
Every call commits its step (state and transcript turns) before returning it, so what a channel
shows has already been saved.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from advisor.advice import Advisor, load_advisor
from advisor.dialog import Dialog, load_dialog
from advisor.engine import Engine, Step
from advisor.i18n import LANGUAGES, SOURCE
from advisor.keywords import in_language, keywords_of
from advisor.language import LANGUAGE_OF
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
    def __init__(self, dialog: Dialog, engine: Engine, renderer: Renderer, store: Store,
                 advisor: Advisor | None = None):
        self.dialog = dialog
        self.engine = engine  # in English, the source language; speaking() gives the others
        self.renderer = renderer
        self.store = store
        self.advisor = advisor  # needed to speak another language than English
        self._languages: dict[str, tuple[Engine, Renderer]] = {SOURCE: (engine, renderer)}
        # Lead cards: None (off), or how many of one person's conversations may make cards a day. When
        # on, a completion queues its card in the same transaction (a crash keeps both or neither).
        self.cards_per_person_a_day: int | None = None

    def speaking(self, language: str) -> tuple[Engine, Renderer]:
        """The engine and the renderer of one language: the same rules, ids and advice; its words."""
        found = self._languages.get(language)
        if found is None:
            if self.advisor is None or language not in LANGUAGES:
                return self._languages[SOURCE]
            renderer = Renderer(self.dialog, self.renderer.templates_dir, language)
            # its questions in words of the language (a typed label is understood), its own keywords
            # for free text (dialogs/keywords.<language>.yaml), the ids the same
            spoken = in_language(self.dialog, language, renderer.question)
            advisor = self.advisor.in_language(spoken, LANGUAGE_OF[language])
            engine = Engine(spoken,
                            lambda answers: renderer.explain(advisor.recommend(answers)), LANGUAGE_OF[language])
            found = self._languages[language] = (engine, renderer)
        return found

    def task_names(self, language: str) -> Callable[[str], str]:
        """A task's name by its id in ``language`` (a lead card in the sales team's, whatever the prospect's)."""
        renderer = self.speaking(language)[1]
        question = self.advisor.rules.tasks_question if self.advisor else ""
        return lambda task: renderer.label(question, task)

    def renderer_of(self, conversation: Conversation) -> Renderer:
        return self.speaking(conversation.language)[1]

    def open(self, channel: str, user_id: str, ref: str | None = None, language: str | None = None) -> Outcome:
        """Resume the person's conversation in progress (in its language, or in ``language`` when one is
        given and differs), or begin a new one (in ``language``, English when None)."""
        existing = self.store.find_open(channel, user_id)
        if existing is not None:
            if language is not None and language != existing.language:
                return self.set_language(existing, language)
            return Outcome(existing, self.speaking(existing.language)[0].resume(existing.state), resumed=True)
        return self._begin(channel, user_id, ref, language or SOURCE)

    def set_language(self, conversation: Conversation, language: str) -> Outcome:
        """Go on in another language: the same answers and question, its words from now on."""
        self.store.set_language(conversation.id, language)
        changed = self.store.get(conversation.id)
        return Outcome(changed, self.speaking(changed.language)[0].resume(changed.state), resumed=True)

    def answer(self, conversation: Conversation, text: str) -> Outcome:
        step = self.speaking(conversation.language)[0].answer(conversation.state, text)
        said = text
        if step.hint is not None and step.hint.code == "too_long":  # refused: keep no more than the cap
            limit, typed = int(step.hint.params["limit"]), text.strip()
            said = self._said(conversation, "refused", typed=typed[:limit], length=len(typed), limit=limit)
        if step.accepted is not None:  # "3" is kept as typed, with what it meant
            meant = self.describe(conversation.state.current, step.accepted, conversation)
            said = text if text.strip() == meant else self._said(conversation, "typed_as", typed=text.strip(),
                                                                 meant=meant)
        return self._commit(conversation, step, Turn("person", said, conversation.state.current))

    def recommendation_of(self, conversation: Conversation) -> dict[str, Any] | None:
        """The stored recommendation to show again; one stored before the advice had a verdict (rules
        version 1) is made anew from the same answers, since today's templates word today's advice."""
        stored = conversation.recommendation
        if stored is None or "verdict" in stored:
            return stored
        rec = dict(self.speaking(conversation.language)[0].resume(conversation.state).recommendation)
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
                summary = self.renderer_of(conversation).summary(rec, conversation.state.answers)
                self.store.set_summary(conversation_id, summary)
        if ids:
            self.store.wipe()
        return len(ids)

    def describe(self, question_id: str, value: Any, conversation: Conversation | None = None) -> str:
        """An answer as a person reads it (in the conversation's language): option labels, or the
        contact details given."""
        if isinstance(value, dict):
            return ", ".join(str(v) for k, v in value.items() if k in ("name", "email", "phone") and v)
        renderer = self.renderer if conversation is None else self.renderer_of(conversation)
        return renderer.label(question_id, value)

    def choose(self, conversation: Conversation, values: list[str]) -> Outcome:
        engine, renderer = self.speaking(conversation.language)
        step = engine.choose(conversation.state, values)
        label = renderer.label(conversation.state.current, values)
        return self._commit(conversation, step, Turn("person", label, conversation.state.current))

    def toggle(self, conversation: Conversation, value: str) -> Outcome:
        engine, renderer = self.speaking(conversation.language)
        step = engine.toggle(conversation.state, value)
        label = renderer.label(conversation.state.current, value)
        said = self._said(conversation, "toggled", label=label)
        return self._commit(conversation, step, Turn("person", said, conversation.state.current), log=False)

    def confirm(self, conversation: Conversation) -> Outcome:
        """The answer that was read back is right: keep it and go on."""
        pending = conversation.state.pending
        step = self.speaking(conversation.language)[0].confirm(conversation.state)
        what = self.describe(conversation.state.current, pending["value"], conversation) if pending else ""
        said = self._said(conversation, "confirmed", what=what)
        return self._commit(conversation, step, Turn("person", said, conversation.state.current))

    def back(self, conversation: Conversation) -> Outcome:
        step = self.speaking(conversation.language)[0].back(conversation.state)
        said = self._said(conversation, "command", command="back")
        return self._commit(conversation, step, Turn("person", said, conversation.state.current))

    def skip(self, conversation: Conversation) -> Outcome:
        step = self.speaking(conversation.language)[0].skip(conversation.state)
        said = self._said(conversation, "command", command="skip")
        return self._commit(conversation, step, Turn("person", said, conversation.state.current))

    def restart(self, conversation: Conversation) -> Outcome:
        """Abandon this conversation and begin a new one for the same person and ref."""
        said = self._said(conversation, "command", command="restart")
        self.store.abandon(conversation.id, [Turn("person", said, conversation.state.current)])
        return self._begin(conversation.channel, conversation.user_id, conversation.ref, conversation.language)

    def _begin(self, channel: str, user_id: str, ref: str | None, language: str = SOURCE) -> Outcome:
        engine, renderer = self.speaking(language)
        step = engine.start()
        conversation = self.store.begin(
            channel, user_id, step.state, self.dialog.id, self.dialog.version, ref=ref,
            turns=[self._advisor_turn(step, renderer)], language=renderer.language,
        )
        return Outcome(conversation, step)

    def _commit(self, conversation: Conversation, step: Step, person: Turn, log: bool = True) -> Outcome:
        """Save the step; ``log=False`` keeps only the person's turn (a toggle re-asks nothing)."""
        recommendation = summary = alert = None
        events: list[str] = []
        if step.kind == "finish" and not conversation.state.finished:
            recommendation = step.recommendation
            summary = self.renderer_of(conversation).summary(recommendation, step.state.answers)
            consented = any(isinstance(v, dict) and v.get("consent") for v in step.state.answers.values())
            # for other systems (webhooks, CRMs), in the same transaction
            events = ["conversation.completed", *(["contact.requested"] if consented else [])]
            if self.cards_per_person_a_day is not None:  # a lead card, in the same transaction
                alert = ("expert" if consented else "completed", self.cards_per_person_a_day)
        turns = [person, self._advisor_turn(step, self.renderer_of(conversation))] if log else [person]
        alert_id = self.store.save(conversation.id, step.state, turns, recommendation=recommendation,
                                   summary=summary, alert=alert, events=events)
        return Outcome(self.store.get(conversation.id), step, completed=recommendation is not None,
                       alert_id=alert_id)

    def _advisor_turn(self, step: Step, renderer: Renderer) -> Turn:
        if step.kind == "finish":
            rec: Mapping[str, Any] = step.recommendation
            tasks = ", ".join(f"{f['name']} ({f['approach']['id']})" for f in rec["functions"])
            text = renderer.macro("transcript.txt", "recommendation", rec=rec, tasks=tasks)
            return Turn("advisor", text, None)
        assert step.question is not None
        text = renderer.macro("transcript.txt", "asked", text=renderer.question(step.question).text,
                              hint=step.hint.code if step.hint else None)
        return Turn("advisor", text, step.question.id)

    def _said(self, conversation: Conversation, kind: str, **context: Any) -> str:
        """A turn as the transcript records it (templates/transcript.txt), in the conversation's language."""
        return self.renderer_of(conversation).macro("transcript.txt", kind, **context)


def build_service(db_path: str | Path, dialog_path: Path = DEFAULT_DIALOG,
                  templates_dir: Path = TEMPLATES_DIR,
                  currency: tuple[str | None, float | None] = (None, None),
                  events_for: Mapping[str, frozenset[str]] | None = None) -> AdvisorService:
    """Load and check the dialog, its advice rules (the cash in ``currency``: a code and a rate, see
    ``Settings.currency``) and templates, then open the store; ``events_for`` (target -> the event types
    it takes, ``advisor.outbound.targets.takes``) is what the store's outbox queues."""
    dialog = load_dialog(dialog_path, templates_dir)
    advisor = load_advisor(dialog, *currency)
    renderer = Renderer(dialog, templates_dir)
    engine = Engine(dialog, lambda answers: renderer.explain(advisor.recommend(answers)))
    for language in LANGUAGES:  # a broken keywords file stops the start, not a German person's first answer
        if language != SOURCE:
            keywords_of(dialog, language)
    store = Store.open(db_path)
    store.targets = dict(events_for or {})
    return AdvisorService(dialog, engine, renderer, store, advisor)
