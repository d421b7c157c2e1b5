"""Conditions on answers, written as data in the dialog and the advice rules.

A condition is a small mapping, for example ``{question: tasks, includes: none}`` or
``{all: [{question: stage, equals: pre_launch}, {question: trigger, in: [planning, growth]}]}``.
Only the operators listed in ``OPERATORS`` exist: a YAML file cannot name arbitrary code
(transitions would otherwise import dotted names as paths).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Answers = Mapping[str, Any]


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple, set)) else [value]


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


# operator -> (test(answer, operand), describe template)
OPERATORS: dict[str, tuple[Callable[[Any, Any], bool], str]] = {
    "equals": (lambda answer, operand: answer == operand, "{q} = {v}"),
    "in": (lambda answer, operand: answer in _as_list(operand), "{q} in {v}"),
    "includes": (lambda answer, operand: operand in _as_list(answer), "{q} has {v}"),
    "includes_any": (
        lambda answer, operand: bool(set(_as_list(answer)) & set(_as_list(operand))),
        "{q} has any of {v}",
    ),
    "at_least": (
        lambda answer, operand: (n := _number(answer)) is not None and n >= operand,
        "{q} >= {v}",
    ),
    "at_most": (
        lambda answer, operand: (n := _number(answer)) is not None and n <= operand,
        "{q} <= {v}",
    ),
    "answered": (lambda answer, operand: (answer is not None) == bool(operand), "{q} answered={v}"),
}
COMBINATORS = ("all", "any", "not")


@dataclass(frozen=True)
class Condition:
    """A parsed condition: ``test(answers)`` says whether it holds."""

    kind: str  # an operator name or a combinator
    question: str | None = None
    operand: Any = None
    parts: tuple[Condition, ...] = ()

    def test(self, answers: Answers) -> bool:
        if self.kind == "all":
            return all(part.test(answers) for part in self.parts)
        if self.kind == "any":
            return any(part.test(answers) for part in self.parts)
        if self.kind == "not":
            return not self.parts[0].test(answers)
        check, _ = OPERATORS[self.kind]
        assert self.question is not None
        return check(answers.get(self.question), self.operand)

    def describe(self) -> str:
        if self.kind in ("all", "any"):
            joiner = " and " if self.kind == "all" else " or "
            return "(" + joiner.join(part.describe() for part in self.parts) + ")"
        if self.kind == "not":
            return "not " + self.parts[0].describe()
        _, template = OPERATORS[self.kind]
        operand = ",".join(map(str, self.operand)) if isinstance(self.operand, list) else self.operand
        return template.format(q=self.question, v=operand)

    def questions(self) -> set[str]:
        """Every question id this condition reads."""
        found = {self.question} if self.question else set()
        for part in self.parts:
            found |= part.questions()
        return found


def parse_condition(raw: Any, where: str, errors: list[str]) -> Condition | None:
    """Parse ``raw`` into a Condition; append ``where: message`` to ``errors`` when it is wrong."""
    if not isinstance(raw, Mapping):
        errors.append(f"{where}: a condition must be a mapping such as {{question: stage, equals: x}}")
        return None
    combinators = [key for key in raw if key in COMBINATORS]
    if combinators:
        kind = combinators[0]
        if len(raw) != 1:
            errors.append(f"{where}: '{kind}' stands alone in its condition")
            return None
        items = [raw[kind]] if kind == "not" else raw[kind]
        if not isinstance(items, list) or not items:
            errors.append(f"{where}.{kind}: expected a list of conditions")
            return None
        parts = [parse_condition(item, f"{where}.{kind}[{i}]", errors) for i, item in enumerate(items)]
        if any(part is None for part in parts):
            return None
        return Condition(kind=kind, parts=tuple(p for p in parts if p is not None))
    operators = [key for key in raw if key != "question"]
    if "question" not in raw:
        errors.append(f"{where}: a condition needs 'question' (or all / any / not)")
        return None
    if len(operators) != 1:
        errors.append(f"{where}: a condition takes exactly one operator, got {operators or 'none'}")
        return None
    kind = operators[0]
    if kind not in OPERATORS:
        known = ", ".join(sorted(OPERATORS) + list(COMBINATORS))
        errors.append(f"{where}: unknown condition '{kind}' (known: {known})")
        return None
    if kind in ("at_least", "at_most") and _number(raw[kind]) is None:
        errors.append(f"{where}.{kind}: expected a number")
        return None
    if any(isinstance(v, (Mapping, list)) for v in _as_list(raw[kind])) or (
            kind not in ("in", "includes_any") and isinstance(raw[kind], list)):
        many = kind in ("in", "includes_any")
        errors.append(f"{where}.{kind}: expected {'a value or a list of values' if many else 'one value'}")
        return None
    return Condition(kind=kind, question=str(raw["question"]), operand=raw[kind])
