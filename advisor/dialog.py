"""The questionnaire: ``dialogs/*.yaml`` -> a typed, validated ``Dialog``.

Everything is checked before anything is used, and every problem is reported as
``file: key.path: message``; a broken dialog raises ``DialogError`` and never half-loads.
The files are read by ``read_yaml`` (``advisor/yamlfile.py``, with ``DialogError``), and the
questions checked as a graph in ``advisor/dialog_checks.py`` (with ``FINISH``); all three can be
imported from here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from advisor.conditions import Condition, parse_condition
from advisor.dialog_checks import FINISH as FINISH
from advisor.dialog_checks import _check_graph, _check_references
from advisor.dialog_checks import _find_cycle as _find_cycle
from advisor.dialog_checks import _known_targets as _known_targets
from advisor.phrase_groups import build_groups as _build_groups
from advisor.phrase_groups import expand as _expand
from advisor.yamlfile import DialogError as DialogError
from advisor.yamlfile import _UniqueKeyLoader as _UniqueKeyLoader
from advisor.yamlfile import read_yaml

QUESTION_TYPES = ("single", "multi", "number", "text", "contact")
ID_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
TEMPLATE_FORMATS = ("txt", "html")
"""Every channel's format of the finish template that must exist (console: txt, Telegram: html)."""


@dataclass(frozen=True)
class Option:
    value: str
    label: str
    keywords: tuple[str, ...] = ()
    next: str | None = None
    exclusive: bool = False  # "none of these": cannot be combined with other options
    unless: tuple[str, ...] = ()  # phrases in which the keywords mean another option ("CRM after a call")
    range: tuple[float, float] | None = None  # the quantities it stands for ("2-10" people), see `measures`


@dataclass(frozen=True)
class Branch:
    to: str
    when: Condition | None = None
    index: int = field(default=0, compare=False)  # its place in the file, for error messages


@dataclass(frozen=True)
class Check:
    """Answers that can't be right together: when ``when`` holds, the answer is read back first."""

    id: str
    when: Condition


@dataclass(frozen=True)
class Question:
    id: str
    type: str
    text: str
    options: tuple[Option, ...] = ()
    branches: tuple[Branch, ...] = ()
    hint: str = ""
    examples: tuple[str, ...] = ()
    skippable: bool = False
    minimum: float | None = None
    maximum: float | None = None
    unit: str = ""
    max_length: int = 500
    prefill_from: str | None = None  # a free-text question whose words pre-select options here
    checks: tuple[Check, ...] = ()  # tried after an answer; the first that holds reads it back
    measures: str | None = None  # "people" or "months": typed quantities pick the option whose range holds them

    @property
    def takes_options(self) -> bool:
        return self.type in ("single", "multi")

    def option(self, value: str) -> Option | None:
        return next((o for o in self.options if o.value == value), None)

    def targets(self) -> list[str]:
        """Every question (or FINISH) this question can lead to."""
        found = [o.next for o in self.options if o.next]
        found += [b.to for b in self.branches]
        return list(dict.fromkeys(found))


@dataclass(frozen=True)
class Dialog:
    id: str
    version: int
    title: str
    start: str
    questions: Mapping[str, Question]
    finish_template: str
    path: Path
    advice_path: Path
    order: tuple[str, ...] = field(default=())

    def question(self, question_id: str) -> Question:
        return self.questions[question_id]

    def of_type(self, qtype: str) -> list[str]:
        """The ids of the questions of a type, in order: a question's role comes from its type (the
        contact question is the one of type ``contact``), never from its id."""
        return [qid for qid, question in self.questions.items() if question.type == qtype]


def load_dialog(path: Path, templates_dir: Path) -> Dialog:
    """Load and validate the dialog at ``path``; raise DialogError listing every problem."""
    data = read_yaml(path)
    errors: list[str] = []
    dialog = _build(path, data, templates_dir, errors)
    if errors or dialog is None:
        raise DialogError(errors or [f"{path}: not a dialog"])
    return dialog


def _text(raw: Mapping[str, Any], key: str, where: str, errors: list[str], required: bool = True) -> str:
    value = raw.get(key)
    if value is None:
        if required:
            errors.append(f"{where}: missing '{key}'")
        return ""
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        errors.append(f"{where}.{key}: expected text")
        return ""
    return str(value).strip()


def _build(path: Path, data: Any, templates_dir: Path, errors: list[str]) -> Dialog | None:
    f = str(path)
    if not isinstance(data, Mapping):
        errors.append(f"{f}: expected a mapping with version, start and questions")
        return None
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        errors.append(f"{f}: version: expected a whole number from 1")
    raw_questions = data.get("questions")
    if not isinstance(raw_questions, list) or not raw_questions:
        errors.append(f"{f}: questions: expected a list of questions")
        return None

    groups = _build_groups(f, data.get("words"), errors)
    questions: dict[str, Question] = {}
    for index, raw in enumerate(raw_questions):
        question = _build_question(f, index, raw, questions, errors, groups)
        if question is not None:
            questions[question.id] = question

    start = data.get("start", next(iter(questions), None))
    if not isinstance(start, str) or start not in questions:
        errors.append(f"{f}: start: unknown question '{start}'")

    _check_references(f, questions, errors)
    if isinstance(start, str) and start in questions:
        _check_graph(f, start, questions, errors)
    title = data.get("title", path.stem)
    if not isinstance(title, str):
        errors.append(f"{f}: title: expected text")

    finish = data.get("finish")
    template = ""
    if not isinstance(finish, Mapping) or not isinstance(finish.get("template"), str):
        errors.append(f"{f}: finish.template: expected the name of the recommendation template")
    else:
        template = finish["template"]
        for fmt in TEMPLATE_FORMATS:
            if not (templates_dir / f"{template}.{fmt}").is_file():
                errors.append(f"{f}: finish.template: missing template '{template}.{fmt}' in {templates_dir}")

    advice = data.get("advice", "advice.yaml")
    if not isinstance(advice, str):
        errors.append(f"{f}: advice: expected the file name of the advice rules")
        advice = "advice.yaml"
    if errors:
        return None
    return Dialog(
        id=path.stem,
        version=int(version),  # type: ignore[arg-type]  # checked above: a whole number from 1
        title=str(title).strip() or path.stem,
        start=str(start),
        questions=questions,
        finish_template=template,
        path=path,
        advice_path=path.parent / advice,
        order=tuple(questions),
    )


def _build_question(
    f: str, index: int, raw: Any, known: Mapping[str, Question], errors: list[str],
    groups: Mapping[str, tuple[str, ...]],
) -> Question | None:
    where = f"{f}: questions[{index}]"
    if not isinstance(raw, Mapping):
        errors.append(f"{where}: expected a mapping with id, type and text")
        return None
    qid = raw.get("id")
    if not isinstance(qid, str) or not ID_PATTERN.match(qid):
        errors.append(f"{where}.id: expected a lower-case id such as 'team_size'")
        return None
    where = f"{f}: questions.{qid}"
    if qid in known:
        errors.append(f"{where}: duplicate id '{qid}'")
        return None
    if qid == FINISH:
        errors.append(f"{where}: '{FINISH}' is reserved for the end of the dialog")
        return None
    allowed = {
        "id", "type", "text", "options", "next", "hint", "examples", "skippable",
        "min", "max", "unit", "max_length", "prefill_from", "checks", "measures",
    }
    for key in raw:
        if key not in allowed:
            errors.append(f"{where}.{key}: unknown key (known: {', '.join(sorted(allowed))})")
    qtype = raw.get("type")
    if qtype not in QUESTION_TYPES:
        errors.append(f"{where}.type: unknown type '{qtype}' (known: {', '.join(QUESTION_TYPES)})")
        return None
    text = _text(raw, "text", where, errors)
    options = _build_options(where, qtype, raw.get("options"), errors, groups)
    branches = _build_branches(where, raw.get("next"), errors)
    if qtype == "single":
        if not branches and any(o.next is None for o in options):
            missing = [o.value for o in options if o.next is None]
            errors.append(f"{where}.options: options without a target ({', '.join(missing)}) and no 'next'")
    elif not branches:
        errors.append(f"{where}: missing 'next'")
    if branches and branches[-1].when is not None:
        errors.append(f"{where}.next: the last branch needs no 'when', so every answer has a way on")
    examples = raw.get("examples") or []
    if not isinstance(examples, list):
        errors.append(f"{where}.examples: expected a list")
        examples = []
    limits = {}
    for key in ("min", "max"):
        value = raw.get(key)
        if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool)):
            errors.append(f"{where}.{key}: expected a number")
            value = None
        limits[key] = value
    max_length = raw.get("max_length", 500)
    if not isinstance(max_length, int) or not 1 <= max_length <= 4000:
        errors.append(f"{where}.max_length: expected a whole number from 1 to 4000")
        max_length = 500
    return Question(
        id=qid,
        type=qtype,
        text=text,
        options=tuple(options),
        branches=tuple(branches),
        hint=_text(raw, "hint", where, errors, required=False),
        examples=tuple(str(e) for e in examples),
        skippable=bool(raw.get("skippable", False)),
        minimum=limits["min"],
        maximum=limits["max"],
        unit=_text(raw, "unit", where, errors, required=False),
        max_length=max_length,
        prefill_from=raw.get("prefill_from"),
        checks=tuple(_build_checks(where, raw.get("checks"), errors)),
        measures=_measures(where, raw, options, errors),
    )


MEASURES = ("people", "months")


def _measures(where: str, raw: Mapping[str, Any], options: list[Option], errors: list[str]) -> str | None:
    measures = raw.get("measures")
    if measures is None:
        if any(o.range for o in options):
            errors.append(f"{where}.measures: options have a range, so say what it measures ({', '.join(MEASURES)})")
        return None
    if measures not in MEASURES:
        errors.append(f"{where}.measures: expected one of {', '.join(MEASURES)}")
        return None
    if not any(o.range for o in options):
        errors.append(f"{where}.measures: no option has a range")
    return str(measures)


def _build_checks(where: str, raw: Any, errors: list[str]) -> list[Check]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        errors.append(f"{where}.checks: expected a list of {{id, when}}")
        return []
    checks: list[Check] = []
    for i, item in enumerate(raw):
        at = f"{where}.checks[{i}]"
        if not isinstance(item, Mapping) or not isinstance(item.get("id"), str) or not ID_PATTERN.match(item["id"]):
            errors.append(f"{at}: expected a mapping with a lower-case id and 'when'")
            continue
        if "when" not in item:
            errors.append(f"{at}: missing 'when'")
            continue
        when = parse_condition(item["when"], f"{at}.when", errors)
        if when is not None:
            checks.append(Check(item["id"], when))
    return checks


def _build_options(where: str, qtype: str, raw: Any, errors: list[str],
                   groups: Mapping[str, tuple[str, ...]]) -> list[Option]:
    if raw is None:
        if qtype in ("single", "multi"):
            errors.append(f"{where}: missing 'options'")
        return []
    if not isinstance(raw, list) or (qtype in ("single", "multi") and not raw):
        errors.append(f"{where}.options: expected a list of options")
        return []
    if qtype in ("number", "text"):
        errors.append(f"{where}.options: a {qtype} question takes no options")
        return []
    options: list[Option] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        at = f"{where}.options[{i}]"
        if not isinstance(item, Mapping) or not isinstance(item.get("value"), str):
            errors.append(f"{at}: expected a mapping with value and label")
            continue
        value = item["value"]
        at = f"{where}.options.{value}"
        if value in seen:
            errors.append(f"{at}: duplicate option '{value}'")
            continue
        seen.add(value)
        keywords = item.get("keywords") or []
        if not isinstance(keywords, list):
            errors.append(f"{at}.keywords: expected a list")
            keywords = []
        for keyword in keywords:
            if not isinstance(keyword, str):
                errors.append(f"{at}.keywords: {keyword!r} is not text (quote it: \"{str(keyword).lower()}\")")
        keywords = _expand([k for k in keywords if isinstance(k, str)], groups, f"{at}.keywords", errors)
        span = item.get("range")
        if span is not None and (not isinstance(span, list) or len(span) != 2 or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in span) or span[0] > span[1]):
            errors.append(f"{at}.range: expected [low, high], two numbers, the low one first")
            span = None
        unless = item.get("unless") or []
        if not isinstance(unless, list) or not all(isinstance(u, str) for u in unless):
            errors.append(f"{at}.unless: expected a list of phrases")
            unless = []
        unless = _expand(unless, groups, f"{at}.unless", errors)
        target = item.get("next")
        if target is not None and not isinstance(target, str):
            errors.append(f"{at}.next: expected a question id")
            target = None
        if target is not None and qtype != "single":
            errors.append(f"{at}.next: only options of a single-choice question can have their own 'next'")
            target = None
        options.append(
            Option(
                value=value,
                label=_text(item, "label", at, errors),
                keywords=tuple(str(k).lower() for k in keywords),
                next=target,
                exclusive=bool(item.get("exclusive", False)),
                unless=tuple(str(u).lower() for u in unless),
                range=(float(span[0]), float(span[1])) if span else None,
            )
        )
    return options


def _build_branches(where: str, raw: Any, errors: list[str]) -> list[Branch]:
    if raw is None:
        return []
    if isinstance(raw, str):
        return [Branch(to=raw)]
    if not isinstance(raw, list):
        errors.append(f"{where}.next: expected a question id or a list of {{to, when}}")
        return []
    branches: list[Branch] = []
    for i, item in enumerate(raw):
        at = f"{where}.next[{i}]"
        if not isinstance(item, Mapping) or not isinstance(item.get("to"), str):
            errors.append(f"{at}: expected a mapping with 'to' (and 'when')")
            continue
        when = None
        if "when" in item:
            when = parse_condition(item["when"], f"{at}.when", errors)
        branches.append(Branch(to=item["to"], when=when, index=i))
    return branches
