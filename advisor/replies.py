"""Reading replies: what a typed reply to a question means, as one of the engine's moves.

Numbers, option numbers and labels, words understood as options, quantities typed at a question whose
options are ranges, free text and contact details. ``Replies`` is a mixin of the ``Engine``: each parser
returns the ``Step`` the engine's own moves (accept, arrive, re-ask) make of the reply. Nothing here
does I/O, and an invalid reply is a ``Hint``, never an exception.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from advisor.dialog import Question
from advisor.language import Language
from advisor.understand import match_options, quantity, understand

if TYPE_CHECKING:  # for annotations only: the engine imports this module, never the other way at run time
    from advisor.engine import ConversationState, Step


_DIGITS = re.compile(r"[0-9]+")  # not str.isdigit(): "²" is a digit to Python, not a number here
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"\+?\(?\d[\d\s().-]{5,}\d")


@dataclass(frozen=True)
class Hint:
    """Why a reply was not taken, as a code the templates word (``templates/hints.txt``)."""

    code: str
    params: Mapping[str, Any] = field(default_factory=dict)
    examples: tuple[str, ...] = ()  # shown from the second invalid reply on
    offer_skip: bool = False  # from the third, where the question allows skipping


class Replies:
    """The parsers of typed replies, one per question type; mixed into the ``Engine``."""

    language: Language  # the words replies are read with (the engine's)

    if TYPE_CHECKING:  # the engine's moves the parsers end in (defined by ``Engine``)
        def skip(self, state: ConversationState) -> Step: ...

        def _accept(self, state: ConversationState, question: Question, value: Any,
                    confirmed: bool = False) -> Step: ...

        def _arrive(self, state: ConversationState, hint: Hint | None = None) -> Step: ...

        def _reask(self, state: ConversationState, code: str, **params: Any) -> Step: ...

    def _parse_choice(self, state: ConversationState, question: Question, text: str) -> Step:
        count = len(question.options)
        if not text or text.lower() in self.language.yes:
            if state.proposed:
                return self._take_choice(state, question, list(state.proposed))
            if not text and state.answers.get(question.id) is not None:
                kept = state.answers[question.id]
                return self._take_choice(state, question, kept if isinstance(kept, list) else [kept])
            # "yes" may be an option's word
            if not text or not understand(text, question.options, self.language).values:
                return self._reask(state, "empty", count=count)
        if state.proposed and text.lower() in self.language.no:
            return self._arrive(replace(state, proposed=(), failures=0), hint=Hint("proposal_cleared"))
        by_label = [o.value for o in question.options if text.lower() in (o.label.lower(), o.value)]
        if by_label:
            return self._take_choice(state, question, by_label)
        measured = self._measured(state, question, text)
        if measured is not None:
            return measured
        pieces = [p for p in re.split(r"[,;\s]+", text) if p]
        if all(_DIGITS.fullmatch(p) for p in pieces):
            numbers = [int(p) for p in pieces]
            if any(not 1 <= n <= count for n in numbers):
                return self._reask(state, "out_of_range", low=1, high=count)
            if question.type == "single" and len(set(numbers)) > 1:
                return self._reask(state, "one_only", count=count)
            return self._take_choice(state, question, [question.options[n - 1].value for n in numbers])
        found = understand(text, question.options, self.language, loose=True, several=question.type == "multi")
        understood = list(found.values)
        if question.type == "single" and len(understood) > 1:  # two answers in one: ask which
            return self._arrive(replace(state, proposed=(), failures=0), hint=Hint(
                "ambiguous", params={"words": text, "values": understood}))
        if understood:
            return self._arrive(replace(state, proposed=tuple(understood), failures=0),
                                hint=Hint("understood"))
        if found.ambiguous:  # words that could mean two options: ask, never guess
            words, values = found.ambiguous[0]
            return self._arrive(replace(state, proposed=(), failures=0),
                                hint=Hint("ambiguous", params={"words": words, "values": list(values)}))
        return self._reask(state, "not_an_option", count=count)

    def _measured(self, state: ConversationState, question: Question, text: str) -> Step | None:
        """A quantity typed at a question whose options are ranges: "5 people" -> 2-10, "two years".

        A bare number that could be an option's number or a head count is asked about, not guessed.
        """
        if question.measures is None:
            return None
        found = quantity(text, question.measures, self.language)
        if found is None:
            return None
        value, said_unit = found.value, found.said
        bare = _DIGITS.fullmatch(text.strip()) is not None
        # At a head count any number is people ("we're 40ish"); a duration needs its unit ("18" what?).
        if not said_unit and question.measures != "people":
            return None

        def holding(number: float) -> Any:
            return next((o for o in question.options if o.range and o.range[0] <= number <= o.range[1]), None)

        fitting = holding(value)
        if fitting is None:
            return None
        ends = [o.value for o in question.options if o in (holding(found.low), holding(found.high))]
        if len(ends) > 1:  # "between 10 and 15 people": a range across two options is asked about
            return self._arrive(replace(state, proposed=(), failures=0),
                                hint=Hint("ambiguous", params={"words": text.strip(), "values": ends}))
        if bare and 1 <= int(value) <= len(question.options):
            numbered = question.options[int(value) - 1]
            if numbered.value == fitting.value:
                return None  # the option number and the head count agree
            # A typed number is an option's number (the console's contract); say so, so that someone
            # who meant a head count sees it and can go back.
            step = self._take_choice(state, question, [numbered.value])
            if step.kind == "finish" or step.state.current == question.id:
                return step
            return replace(step, hint=Hint(  # still "ask": a new question, with a note above it
                "took_number", params={"number": int(value), "option": numbered.value, "quantity": fitting.value,
                                       "question": question.id}))
        return self._arrive(replace(state, proposed=(fitting.value,), failures=0),
                            hint=Hint("understood", params={"quantity": text.strip()}))

    def _take_choice(self, state: ConversationState, question: Question, values: list[str]) -> Step:
        values = list(dict.fromkeys(values))  # "2,2" is one choice
        if question.type in ("single", "contact"):
            if len(values) != 1:
                return self._reask(state, "one_only", count=len(question.options))
            return self._accept(state, question, values[0])
        exclusive = [v for v in values if (o := question.option(v)) is not None and o.exclusive]
        if exclusive and len(values) > 1:
            label = question.option(exclusive[0]).label  # type: ignore[union-attr]
            return self._reask(state, "exclusive", label=label)
        return self._accept(state, question, values)

    def _parse_number(self, state: ConversationState, question: Question, text: str) -> Step:
        if not text and state.answers.get(question.id) is not None:
            return self._accept(state, question, state.answers[question.id])
        found = _NUMBER.search(text)
        if found is None:
            return self._reask(state, "not_a_number", unit=question.unit)
        raw = found.group()
        if re.fullmatch(r"-?\d{1,3}(,\d{3})+(\.\d+)?", raw):
            raw = raw.replace(",", "")  # 1,200 is twelve hundred
        elif re.fullmatch(r"-?\d+,\d{1,2}", raw):
            raw = raw.replace(",", ".")  # 12,5 is a decimal comma
        else:
            raw = raw.split(",")[0]
        value = float(raw)
        low, high = question.minimum, question.maximum
        if (low is not None and value < low) or (high is not None and value > high):
            return self._reask(state, "number_range", low=_plain(low), high=_plain(high), unit=question.unit)
        return self._accept(state, question, _plain(value))

    def _parse_text(self, state: ConversationState, question: Question, text: str) -> Step:
        if not text:
            kept = state.answers.get(question.id)
            if kept:
                return self._accept(state, question, kept)
            return self._reask(state, "empty_text")
        return self._accept(state, question, text)

    def _parse_contact(self, state: ConversationState, question: Question, text: str) -> Step:
        if question.options and (_DIGITS.fullmatch(text) or any(
            text.lower() in (o.label.lower(), o.value) for o in question.options
        )):
            return self._parse_choice(state, question, text)
        if not text and state.answers.get(question.id) is not None:
            return self._accept(state, question, state.answers[question.id])
        if not text and question.skippable:  # Enter at the optional last step: nothing to pass on
            return self.skip(state)
        email = _EMAIL.search(text)
        phone = _PHONE.search(text)
        if email is None and phone is None:
            declined = match_options(text, question.options, self.language)  # "no thanks"
            if len(declined) == 1:
                return self._accept(state, question, declined[0])
            return self._reask(state, "no_contact")
        rest = text
        for found in (email, phone):
            if found is not None:
                rest = rest.replace(found.group(), " ")
        name = re.sub(r"\s+", " ", re.sub(r"[,;:|/()]+", " ", rest)).strip(" .-")
        contact = {
            "name": name[:100] or None,
            "email": email.group() if email else None,
            "phone": re.sub(r"[^\d+]", "", phone.group()) if phone else None,
            "consent": True,
        }
        return self._accept(state, question, contact)


def _plain(value: float | None) -> float | int | None:
    if value is None:
        return None
    return int(value) if float(value).is_integer() else value
