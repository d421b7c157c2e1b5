"""The channel port: what every channel does with a person's action, so that channels only translate.

Input side: a channel turns what a person did (a typed line, a button, a JSON request) into an
``Action`` and calls :meth:`ChannelPort.act`, which applies the rules every channel shares and
returns the committed ``Outcome`` (or ``Refused``, saying why nothing changed):
- ``start`` resumes the person's conversation in progress or begins one, attributed to ``ref``;
- ``restart`` abandons it and begins again with the same ref; ``back``, ``skip``, ``confirm``;
- ``text`` is a typed answer; ``choose`` takes options at once (a one-answer button, or a
  several-answer question's list); ``toggle`` ticks or unticks one; ``done`` takes what is ticked;
- a button made for another question, conversation or dialog version changes nothing.
Output side: the channel renders the ``Outcome`` in its medium (``Output``): Telegram sends messages
with keyboards, the web answers JSON, the console prints. The words come from ``templates/``.

How to add a channel (the web chat in ``advisor/channels/web.py`` is one, ~300 lines): give it a
name for the store, map its input to ``Action``s, render ``Outcome.step`` with ``Renderer.step``,
and for the rest use the service (summary, forget, consent).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from advisor.service import AdvisorService, Outcome
from advisor.store import Conversation

Kind = Literal["start", "restart", "back", "skip", "confirm", "text", "choose", "toggle", "done"]
Reason = Literal["no_conversation", "already_answered", "questions_changed", "choose_one_first", "not_an_option"]


@dataclass(frozen=True)
class Action:
    """What a person did. ``conversation``, ``question`` and ``version`` say what a button was made
    for (None: whatever is current), so that a press on an old message changes nothing."""

    kind: Kind
    text: str = ""
    values: tuple[str, ...] = ()
    ref: str | None = None
    conversation: int | None = None
    question: str | None = None
    version: int | None = None
    language: str | None = None  # start: the language of a new conversation (the person's last, else this)


@dataclass(frozen=True)
class Refused:
    """Nothing changed, and why; ``outcome`` is where the person is, when the channel should show it."""

    reason: Reason
    outcome: Outcome | None = None


class Output(Protocol):
    """The output side of a channel: a committed step shown to the person, in the channel's medium."""

    async def show(self, person: str, outcome: Outcome) -> None: ...


class ChannelPort:
    """The input side, for one channel: a person's action -> a committed step."""

    def __init__(self, service: AdvisorService, channel: str):
        self.service = service
        self.channel = channel

    def current(self, user_id: str) -> Conversation | None:
        return self.service.store.find_open(self.channel, user_id)

    def act(self, user_id: str, action: Action) -> Outcome | Refused:
        service = self.service
        current = self.current(user_id)
        if action.kind == "start":
            if current is not None:  # resumed in its own language
                return service.open(self.channel, user_id, action.ref)
            latest = service.store.latest(self.channel, user_id)
            language = latest.language if latest is not None else action.language
            return service.open(self.channel, user_id, action.ref, language)
        if action.kind == "restart":
            if current is not None:
                return service.restart(current)
            latest = service.store.latest(self.channel, user_id)
            return service.open(self.channel, user_id, latest.ref if latest else action.ref,
                                latest.language if latest else action.language)
        if current is None:
            return Refused("no_conversation")
        if (action.conversation is not None and action.conversation != current.id) or (
                action.question is not None and action.question != current.state.current):
            return Refused("already_answered")
        if action.version is not None and action.version != service.dialog.version:
            engine = service.speaking(current.language)[0]
            return Refused("questions_changed", Outcome(current, engine.resume(current.state), resumed=True))
        if action.kind == "back":
            return service.back(current)
        if action.kind == "skip":
            return service.skip(current)
        if action.kind == "confirm":
            return service.confirm(current)
        if action.kind == "text":
            return service.answer(current, action.text)
        question = service.dialog.questions.get(current.state.current)
        known = {o.value for o in question.options} if question is not None else set()
        if any(value not in known for value in action.values):
            return Refused("not_an_option")
        if action.kind == "toggle":
            if len(action.values) != 1:
                return Refused("not_an_option")
            return service.toggle(current, action.values[0])
        values = list(action.values) if action.kind == "choose" else list(current.state.proposed)
        if not values:
            return Refused("choose_one_first")
        return service.choose(current, values)

    def latest_completed(self, user_id: str) -> Conversation | None:
        """The person's last recommendation, to show again."""
        latest = self.service.store.latest(self.channel, user_id, status="completed")
        return latest if latest is not None and latest.recommendation is not None else None
