"""The dialogue engine: pure functions of (dialog, conversation state, reply) -> Step.

One transitions ``Machine`` per dialog is shared by every conversation: a conversation's state is a
plain value loaded from the store, handed to the machine's ``advance`` event for the one transition
it needs, and saved again by the channel. Nothing here does I/O.

This module makes the moves (start, answer, choose, toggle, back, skip, confirm) and routes between
questions; what a typed reply means is read by the ``Replies`` mixin (``advisor.replies``).

Invalid answers are values (a re-ask with a hint), never exceptions: the first time a specific hint,
the second time examples too, the third time an offer to skip where the question allows it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from transitions import Machine

from advisor.dialog import FINISH, Dialog, Question
from advisor.language import ENGLISH, Language
from advisor.replies import Hint, Replies
from advisor.understand import match_options, understand


@dataclass(frozen=True)
class ConversationState:
    """Where one conversation stands; the store keeps it, the engine returns a new one each step."""

    current: str  # a question id, or FINISH once the recommendation is given
    answers: Mapping[str, Any] = field(default_factory=dict)
    history: tuple[str, ...] = ()  # the questions answered on the way here, in order
    failures: int = 0  # invalid replies in a row at the current question
    proposed: tuple[str, ...] = ()  # options understood from free text, waiting for a confirmation
    pending: Mapping[str, Any] | None = None  # an answer read back ({check, value}), waiting for a yes

    @property
    def finished(self) -> bool:
        return self.current == FINISH

    def to_dict(self) -> dict[str, Any]:
        return {
            "current": self.current,
            "answers": dict(self.answers),
            "history": list(self.history),
            "failures": self.failures,
            "proposed": list(self.proposed),
            "pending": dict(self.pending) if self.pending is not None else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ConversationState:
        return cls(
            current=str(data["current"]),
            answers=dict(data.get("answers") or {}),
            history=tuple(data.get("history") or ()),
            failures=int(data.get("failures") or 0),
            proposed=tuple(data.get("proposed") or ()),
            pending=dict(data["pending"]) if data.get("pending") else None,
        )


@dataclass(frozen=True)
class Step:
    """What the engine decided: ask a question, re-ask it with a hint, or finish with advice."""

    kind: Literal["ask", "reask", "finish"]
    state: ConversationState
    question: Question | None = None
    number: int = 0  # the question's position on this person's path, from 1
    total: int = 0  # the path's length as far as the answers so far tell
    hint: Hint | None = None
    previous: Any = None  # the answer given before a "back", kept unless changed
    proposed: tuple[str, ...] = ()  # options pre-selected from the person's own words
    accepted: Any = None  # the answer just taken, when this step follows one
    recommendation: Any = None


class _Cursor:
    """The one attribute transitions needs on a model; built per step, never kept."""

    __slots__ = ("state",)

    def __init__(self, state: str):
        self.state = state


def _condition(test: Callable[[Mapping[str, Any]], bool], name: str) -> Callable[..., bool]:
    def check(event: Any) -> bool:
        return test(event.kwargs["answers"])

    check.__name__ = name  # shown in diagrams
    return check


def build_machine(dialog: Dialog, machine_class: type[Machine] = Machine, **options: Any) -> Machine:
    """The dialog as one transitions Machine: states are questions, ``advance`` follows answers.

    ``machine_class`` and ``options`` let ``bot.py diagram`` build a GraphMachine from the same code.
    """
    machine = machine_class(
        model=options.pop("model", None),
        states=[*dialog.order, FINISH],
        initial=dialog.start,
        auto_transitions=False,
        send_event=True,
        **options,
    )
    for question in dialog.questions.values():
        for option in question.options:
            if option.next:
                test = _option_test(question.id, option.value)
                machine.add_transition(
                    "advance", question.id, option.next,
                    conditions=[_condition(test, f"{question.id} = {option.value}")],
                )
        for branch in question.branches:
            conditions: list[Any] = []
            if branch.when is not None:
                conditions = [_condition(branch.when.test, branch.when.describe())]
            machine.add_transition("advance", question.id, branch.to, conditions=conditions)
    return machine


def _option_test(question_id: str, value: str) -> Callable[[Mapping[str, Any]], bool]:
    return lambda answers: answers.get(question_id) == value


class Engine(Replies):
    """Walks conversations through one dialog. ``advise(answers)`` makes the recommendation."""

    def __init__(self, dialog: Dialog, advise: Callable[[Mapping[str, Any]], Any],
                 language: Language = ENGLISH):
        self.dialog = dialog
        self.advise = advise
        self.language = language
        self.machine = build_machine(dialog)
        self._advance = self.machine.events["advance"]
        # The way on from a question depends only on the answers its transitions read, so the rest of
        # a path is remembered per (question, those answers): a handful of combinations for everyone.
        self._routing_questions = tuple(sorted(_routing_questions(dialog)))
        self._ahead: dict[tuple[Any, ...], int] = {}

    # -- the four moves -------------------------------------------------------------------
    def start(self) -> Step:
        return self._arrive(self._enter(ConversationState(current=self.dialog.start)))

    def resume(self, state: ConversationState) -> Step:
        """The step to show a person coming back: their current question, or their advice."""
        if state.finished:
            return self._finish(state)
        if state.pending is not None:  # still waiting for a yes: say again what is being checked
            return self._arrive(state, hint=Hint("read_back", params=state.pending))
        return self._arrive(state)

    def restart(self) -> Step:
        return self.start()

    def back(self, state: ConversationState) -> Step:
        """Return to the previously answered question, keeping every answer given so far."""
        if not state.history:
            return self._reask(state, "at_start")
        previous = state.history[-1]
        return self._arrive(self._enter(replace(state, current=previous, history=state.history[:-1],
                                                failures=0, proposed=(), pending=None)))

    def skip(self, state: ConversationState) -> Step:
        question = self._question(state)
        if question is None:
            return self._finish(state)
        if not question.skippable:
            return self._reask(state, "cannot_skip")
        return self._accept(replace(state, pending=None), question, None)

    def confirm(self, state: ConversationState) -> Step:
        """Keep the answer that was read back (the person says it is right)."""
        question = self._question(state)
        if question is None:
            return self._finish(state)
        if state.pending is None:
            return self._arrive(state)  # nothing waits for a yes (a stale button): ask again
        return self._accept(state, question, state.pending["value"], confirmed=True)

    def answer(self, state: ConversationState, reply: str) -> Step:
        """Take a typed reply to the current question."""
        question = self._question(state)
        if question is None:
            return self._finish(state)
        text = reply.strip()
        if state.pending is not None:  # an answer was read back: yes keeps it, no asks again
            if not text or text.lower() in self.language.yes:
                return self.confirm(state)
            if text.lower() in self.language.no:
                return self._arrive(replace(state, pending=None, failures=0), hint=Hint("change_it"))
            # another answer instead: parsed as usual; the same one again is a yes (see _accept)
        if len(text) > question.max_length:
            return self._reask(state, "too_long", limit=question.max_length)
        parse = {
            "single": self._parse_choice, "multi": self._parse_choice,
            "number": self._parse_number, "text": self._parse_text, "contact": self._parse_contact,
        }[question.type]
        return parse(state, question, text)

    def choose(self, state: ConversationState, values: list[str]) -> Step:
        """Take options chosen by value (a button press); refuse values the question lacks."""
        question = self._question(state)
        if question is None:
            return self._finish(state)
        if not question.options or not values:
            return self._reask(state, "empty")
        if any(question.option(v) is None for v in values):
            return self._reask(state, "not_an_option", count=len(question.options))
        return self._take_choice(state, question, list(dict.fromkeys(values)))

    def toggle(self, state: ConversationState, value: str) -> Step:
        """Select or unselect one option of a multi-choice question (a button press)."""
        question = self._question(state)
        if question is None:
            return self._finish(state)
        option = question.option(value)
        if question.type != "multi" or option is None:
            return self._reask(state, "not_an_option", count=len(question.options))
        state = replace(state, pending=None)
        selected = [v for v in state.proposed if v != value]
        if value not in state.proposed:
            exclusive = {o.value for o in question.options if o.exclusive}
            selected = [value] if option.exclusive else [v for v in selected if v not in exclusive] + [value]
        order = [o.value for o in question.options]
        selected.sort(key=order.index)
        return self._arrive(replace(state, proposed=tuple(selected)))

    # -- moving on ------------------------------------------------------------------------
    def _accept(self, state: ConversationState, question: Question, value: Any,
                confirmed: bool = False) -> Step:
        answers = {**state.answers, question.id: value}
        if state.pending is not None and state.pending.get("value") == value:
            confirmed = True  # the same answer again, after it was read back: that is a yes
        if value is not None and not confirmed:
            check = next((c for c in question.checks if c.when.test(answers)), None)
            if check is not None:
                pending = {"check": check.id, "value": value}
                return self._arrive(replace(state, pending=pending, failures=0, proposed=()),
                                    hint=Hint("read_back", params=pending))
        target = self.route(question.id, answers)
        assert target is not None, f"dialog validation guarantees a way on from {question.id}"
        moved = ConversationState(current=target, answers=answers,
                                  history=(*state.history, question.id))
        if target == FINISH:
            return replace(self._finish(moved), accepted=value)
        entered = self._enter(moved)
        doubt = self._doubt(entered)  # a note on arrival: still "ask", nothing was refused
        return replace(self._arrive(entered, hint=doubt), kind="ask", accepted=value)

    def route(self, question_id: str, answers: Mapping[str, Any]) -> str | None:
        """Where ``answers`` lead from ``question_id``, by the shared machine; None if nowhere."""
        cursor = _Cursor(question_id)
        if not self._advance.trigger(cursor, answers=answers):
            return None
        return cursor.state

    def _enter(self, state: ConversationState) -> ConversationState:
        """Arriving at a multi-choice question: pre-select the earlier answer, or what the person said."""
        question = self.dialog.question(state.current)
        if question.type != "multi":
            return state
        if isinstance(state.answers.get(question.id), list):  # back here: start from the answer
            return replace(state, proposed=tuple(state.answers[question.id]))
        said = state.answers.get(question.prefill_from) if question.prefill_from else None
        if isinstance(said, str):
            return replace(state, proposed=tuple(match_options(said, question.options, self.language)))
        return state

    def _doubt(self, state: ConversationState) -> Hint | None:
        """Arriving at a question pre-selected from the person's words: words that could mean two
        options are asked about."""
        question = self.dialog.question(state.current)
        said = state.answers.get(question.prefill_from) if question.prefill_from else None
        if not isinstance(said, str) or state.answers.get(question.id) is not None:
            return None
        ambiguous = understand(said, question.options, self.language).ambiguous
        if not ambiguous:
            return None
        words, values = ambiguous[0]
        return Hint("ambiguous", params={"words": words, "values": list(values)})

    def _arrive(self, state: ConversationState, hint: Hint | None = None) -> Step:
        question = self.dialog.question(state.current)
        proposed = state.proposed
        number, total = self._progress(state)
        kind: Literal["ask", "reask"] = "reask" if hint is not None else "ask"
        return Step(kind=kind, state=state, question=question, number=number, total=total,
                    hint=hint, previous=state.answers.get(question.id), proposed=proposed)

    def _reask(self, state: ConversationState, code: str, **params: Any) -> Step:
        failures = state.failures + 1
        question = self._question(state)
        examples: tuple[str, ...] = ()
        if question is not None and failures >= 2:
            examples = question.examples or _default_examples(question)
        hint = Hint(code=code, params=params, examples=examples,
                    offer_skip=bool(question and question.skippable and failures >= 3))
        if code in ("at_start", "cannot_skip"):
            failures = state.failures  # not the person's mistake in answering
        # a reply that can't be taken drops an answer waiting to be confirmed: a later yes keeps nothing
        return self._arrive(replace(state, failures=failures, pending=None), hint=hint)

    def _finish(self, state: ConversationState) -> Step:
        on_path = {qid: state.answers[qid] for qid in state.history if qid in state.answers}
        total = len(state.history)
        return Step(kind="finish", state=replace(state, answers=on_path, failures=0, proposed=()),
                    number=total, total=total, recommendation=self.advise(on_path))

    def _question(self, state: ConversationState) -> Question | None:
        return None if state.finished else self.dialog.question(state.current)

    def _progress(self, state: ConversationState) -> tuple[int, int]:
        """This question's number and the expected number of questions on the path."""
        number = len(state.history) + 1
        try:
            routing = (state.answers.get(q) for q in self._routing_questions)
            key: tuple[Any, ...] | None = _frozen((state.current, *routing))
        except TypeError:
            key = None
        ahead = self._ahead.get(key) if key is not None else None
        if ahead is None:
            ahead = self._questions_ahead(state.current, state.answers)
            if key is not None:
                if len(self._ahead) >= 4096:  # answers that route are choices: this is rarely reached
                    self._ahead.clear()
                self._ahead[key] = ahead
        return number, number + ahead

    def _questions_ahead(self, current: str, answers: Mapping[str, Any]) -> int:
        """How many questions follow ``current`` on the path ``answers`` take (walked by the machine)."""
        ahead, qid, seen = 0, current, set()
        while qid not in seen:
            seen.add(qid)
            target = self.route(qid, answers) or self.dialog.question(qid).targets()[0]
            if target == FINISH:
                break
            ahead, qid = ahead + 1, target
        return ahead

    def path_lengths(self) -> tuple[int, int]:
        """The fewest and the most questions any path through the dialog asks."""
        lengths: dict[str, tuple[int, int]] = {FINISH: (0, 0)}

        def walk(qid: str) -> tuple[int, int]:
            if qid not in lengths:
                below = [walk(t) for t in self.dialog.question(qid).targets()]
                lengths[qid] = (1 + min(b[0] for b in below), 1 + max(b[1] for b in below))
            return lengths[qid]

        return walk(self.dialog.start)


def _routing_questions(dialog: Dialog) -> set[str]:
    """The questions whose answers any ``advance`` transition reads (options' own ``next``, branches)."""
    found: set[str] = set()
    for question in dialog.questions.values():
        if any(option.next for option in question.options):
            found.add(question.id)
        for branch in question.branches:
            if branch.when is not None:
                found |= branch.when.questions()
    return found


def _frozen(value: Any) -> Any:
    """``value`` usable as a dict key: lists become tuples, dicts sorted tuples; TypeError if it cannot."""
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(item) for item in value)
    if isinstance(value, dict):
        return tuple(sorted((key, _frozen(item)) for key, item in value.items()))
    hash(value)
    return value


def _default_examples(question: Question) -> tuple[str, ...]:
    if question.type == "multi":
        return ("1", "1,3") if len(question.options) >= 3 else ("1",)
    if question.type == "single":
        return ("1", str(len(question.options)))
    return ()
