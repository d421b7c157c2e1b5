"""Loading and validating the advice rules in ``dialogs/advice.yaml`` (numbers and ids, no wording).

This module holds what the rules are (the sourcing approaches, verdicts, and the frozen dataclasses
``Rules`` is built from) and ``load_rules``, which reads the file and checks it against the dialog,
raising one ``DialogError`` that lists every problem. Applying the rules is ``advisor.advice``'s job;
the cash and capacity estimate is ``advisor.advice_cash``'s.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from advisor import AdvisorError
from advisor.conditions import Condition, parse_condition
from advisor.dialog import Dialog, DialogError, read_yaml

Answers = Mapping[str, Any]
Range = tuple[float, float]

APPROACHES = ("strategic_partner", "managed_service", "specialist_vendor", "automate_first",
              "keep_in_house", "not_yet")
"""Every sourcing approach a task can get; the first three hand the task over."""
HAND_OVER = APPROACHES[:3]
VERDICTS = ("hand_over", "prepare_first", "not_now")
MODEL_OF = {"strategic_partner": "strategic_partnership", "managed_service": "managed_service",
            "specialist_vendor": "one_off_project"}
"""The engagement model when every task handed over has this approach; several make a ``mixed`` one."""
DERIVED = frozenset({"net_cash", "approaches", "verdict"})
"""What tension conditions may test besides the answers: facts the advice works out."""
CASH_STOPS = ("none", "staff", "vendors")


@dataclass(frozen=True)
class Rule:
    """``points`` (or a score) given for reason ``id`` when ``when`` holds (always, without one)."""

    id: str
    points: float
    when: Condition | None = None

    def holds(self, answers: Answers) -> bool:
        return self.when is None or self.when.test(answers)


@dataclass(frozen=True)
class Threshold:
    id: str
    minimum: float


@dataclass(frozen=True)
class ApproachRule:
    """Source a task by ``approach`` for reason ``because`` when ``when`` holds."""

    approach: str
    because: str
    when: Condition | None = None

    def holds(self, answers: Answers) -> bool:
        return self.when is None or self.when.test(answers)


@dataclass(frozen=True)
class Task:
    id: str
    base: float
    partner_rate: Range
    staff_rate: Range
    boosts: tuple[Rule, ...]
    approach: tuple[ApproachRule, ...]


@dataclass(frozen=True)
class Suggestion:
    id: str
    task: str
    approach: str
    score: float
    when: Condition | None


@dataclass(frozen=True)
class OwnerCash:
    """For who does the tasks today: the share of their hours that comes back, and which cash stops."""

    hours_back: Range
    cash_stops: str


@dataclass(frozen=True)
class Capacity:
    currency: str
    weeks_per_month: float
    hours_by_size: Mapping[str, Range]
    owners: Mapping[str, OwnerCash]
    partner_hours: Range
    transition_months: Range
    growth_by_stage: Mapping[str, Range]
    same_cash_band: float
    exchange: Mapping[str, float] = field(default_factory=dict)  # units of another currency for one of ``currency``


@dataclass(frozen=True)
class Rules:
    version: str  # "<the file's version>-<a hash of its content>": see rules_version()
    base: float
    drivers: tuple[Rule, ...]
    profiles: tuple[Threshold, ...]
    prepare_steps: tuple[Rule, ...]
    tasks_question: str
    hours_question: str
    owners_question: str
    core_question: str
    size_question: str
    said_question: str
    said_points: float
    common_boosts: tuple[Rule, ...]
    approach_first: tuple[ApproachRule, ...]
    tasks: Mapping[str, Task]
    core_owns: Mapping[str, tuple[str, ...]]
    suggestions: tuple[Suggestion, ...]
    tensions: tuple[Rule, ...]
    safeguards: tuple[Rule, ...]
    capacity: Capacity
    concern_question: str
    known_concerns: tuple[str, ...]
    default_risks: tuple[str, ...]
    keep_in_house: tuple[str, ...]


class _Reader:
    """Reads one rules file, collecting every problem as ``file: key: message``."""

    def __init__(self, path: Path, dialog: Dialog):
        self.f = str(path)
        self.dialog = dialog
        self.errors: list[str] = []

    def fail(self, key: str, message: str) -> None:
        self.errors.append(f"{self.f}: {key}: {message}")

    def section(self, data: Any, key: str) -> Mapping[str, Any]:
        value = data.get(key) if isinstance(data, Mapping) else None
        if not isinstance(value, Mapping):
            self.fail(key, "missing or not a mapping")
            return {}
        return value

    def number(self, data: Mapping[str, Any], key: str, where: str, default: float | None = None) -> float:
        value = data.get(key, default)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not abs(value) <= LARGEST:
            self.fail(f"{where}.{key}", f"expected a number (at most {LARGEST:,} either way)")
            return 0.0
        return float(value)

    def range(self, data: Mapping[str, Any], key: str, where: str) -> Range:
        value = data.get(key)
        if (not isinstance(value, list) or len(value) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= LARGEST for v in value)
                or value[0] > value[1]):
            self.fail(f"{where}.{key}", f"expected [low, high]: two numbers from 0 to {LARGEST:,}, the low one first")
            return (0.0, 0.0)
        return (float(value[0]), float(value[1]))

    def ranges(self, data: Mapping[str, Any], key: str, where: str) -> dict[str, Range]:
        raw = data.get(key)
        if not isinstance(raw, Mapping) or not raw:
            self.fail(f"{where}.{key}", "expected a mapping of id -> [low, high]")
            return {}
        return {str(k): self.range(raw, k, f"{where}.{key}") for k in raw}

    def question(self, data: Mapping[str, Any], key: str, where: str) -> str:
        value = data.get(key)
        if value not in self.dialog.questions:
            self.fail(f"{where}.{key}", f"unknown question '{value}'")
            return ""
        return str(value)

    def condition(self, raw: Mapping[str, Any], where: str, derived: bool = False) -> Condition | None:
        if "when" not in raw:
            return None
        parsed = parse_condition(raw["when"], f"{self.f}: {where}.when", self.errors)
        if parsed is not None:
            known = set(self.dialog.questions) | (DERIVED if derived else set())
            for name in sorted(parsed.questions() - known):
                self.fail(f"{where}.when", f"unknown question '{name}'")
        return parsed

    def rules(self, raw: Any, where: str, points: bool = True, derived: bool = False) -> tuple[Rule, ...]:
        if not isinstance(raw, list):
            self.fail(where, "expected a list of {id, points, when}" if points else "expected a list of {id, when}")
            return ()
        found = []
        for i, item in enumerate(raw):
            at = f"{where}[{i}]"
            if not isinstance(item, Mapping) or not isinstance(item.get("id"), str):
                self.fail(at, "expected a mapping with id, points and when" if points else "expected {id, when}")
                continue
            value = self.number(item, "points", at) if points else 0.0
            found.append(Rule(item["id"], value, self.condition(item, at, derived)))
        return tuple(found)

    def approaches(self, raw: Any, where: str, last_unconditional: bool) -> tuple[ApproachRule, ...]:
        if not isinstance(raw, list) or (last_unconditional and not raw):
            self.fail(where, "expected a list of {id: <approach>, because: <reason>, when}")
            return ()
        found = []
        for i, item in enumerate(raw):
            at = f"{where}[{i}]"
            if not isinstance(item, Mapping) or not isinstance(item.get("because"), str):
                self.fail(at, "expected {id: <approach>, because: <reason>, when}")
                continue
            if item.get("id") not in APPROACHES:
                self.fail(f"{at}.id", f"unknown approach '{item.get('id')}' (known: {', '.join(APPROACHES)})")
                continue
            found.append(ApproachRule(item["id"], item["because"], self.condition(item, at)))
        if last_unconditional and found and found[-1].when is not None:
            self.fail(where, "the last entry needs no 'when', so every answer gives the task an approach")
        return tuple(found)

    def thresholds(self, raw: Any, where: str) -> tuple[Threshold, ...]:
        if not isinstance(raw, list) or not raw:
            self.fail(where, "expected a list of {id, min}")
            return ()
        found = []
        for i, item in enumerate(raw):
            at = f"{where}[{i}]"
            if not isinstance(item, Mapping) or not isinstance(item.get("id"), str):
                self.fail(at, "expected a mapping with id and min")
                continue
            found.append(Threshold(item["id"], self.number(item, "min", at)))
        if found and found[-1].minimum > 0:
            self.fail(where, "the last entry needs min: 0, so every score has one")
        return tuple(found)

    def options_of(self, question_id: str) -> set[str]:
        question = self.dialog.questions.get(question_id)
        return {o.value for o in question.options} if question else set()

    def capacity(self, raw: Mapping[str, Any]) -> Capacity:
        owners: dict[str, OwnerCash] = {}
        raw_owners = raw.get("owners")
        if not isinstance(raw_owners, Mapping) or not raw_owners:
            self.fail("capacity.owners", "expected a mapping of who does the tasks -> {hours_back, cash_stops}")
            raw_owners = {}
        for owner, item in raw_owners.items():
            at = f"capacity.owners.{owner}"
            if not isinstance(item, Mapping):
                self.fail(at, "expected {hours_back: [low, high], cash_stops: none|staff|vendors}")
                continue
            if item.get("cash_stops") not in CASH_STOPS:
                self.fail(f"{at}.cash_stops", f"expected one of {', '.join(CASH_STOPS)}")
            owners[str(owner)] = OwnerCash(self.range(item, "hours_back", at), str(item.get("cash_stops")))
        if not isinstance(raw.get("currency"), str):
            self.fail("capacity.currency", "expected text such as USD")
        exchange = raw.get("exchange") or {}
        if not isinstance(exchange, Mapping) or not all(
                isinstance(k, str) and re.fullmatch(r"[A-Z]{3}", k) and isinstance(v, (int, float))
                and not isinstance(v, bool) and 0 < v <= LARGEST for k, v in exchange.items()):
            self.fail("capacity.exchange", "expected currency codes with how many of each one unit buys, "
                      "e.g. {EUR: 0.86}")
            exchange = {}
        return Capacity(
            currency=str(raw.get("currency")),
            weeks_per_month=self.number(raw, "weeks_per_month", "capacity"),
            hours_by_size=self.ranges(raw, "hours_by_size", "capacity"),
            owners=owners,
            partner_hours=self.range(raw, "partner_hours", "capacity"),
            transition_months=self.range(raw, "transition_months", "capacity"),
            growth_by_stage=self.ranges(raw, "growth_by_stage", "capacity"),
            same_cash_band=self.number(raw, "same_cash_band", "capacity"),
            exchange={str(k): float(v) for k, v in exchange.items()},
        )


def in_currency(rules: Rules, currency: str, rate: float | None = None) -> Rules:
    """The rules with every rate converted into ``currency``: at ``rate`` (units of it for one unit of
    the rules' currency) if given, else at the rules' ``capacity.exchange``. The figures are rounded
    after conversion, so they read as estimates in the new currency too."""
    c = rules.capacity
    if currency == c.currency and rate is None:
        return rules
    factor = rate if rate is not None else c.exchange.get(currency)
    if factor is None:
        known = ", ".join(sorted(c.exchange)) or "none"
        raise AdvisorError(f"ADVISOR_CURRENCY={currency}: the advice rates are in {c.currency} and no exchange rate "
                           f"to {currency} is known (capacity.exchange has {known}); set ADVISOR_CURRENCY_RATE to "
                           f"how many {currency} one {c.currency} buys")

    def scaled(r: Range) -> Range:
        return (r[0] * factor, r[1] * factor)

    tasks = {tid: replace(t, partner_rate=scaled(t.partner_rate), staff_rate=scaled(t.staff_rate))
             for tid, t in rules.tasks.items()}
    return replace(rules, tasks=tasks, capacity=replace(c, currency=currency))


LARGEST = 1_000_000
"""The largest number a rule may hold (a rate, a weight): beyond it, cash sums overflow (1e308)."""


def rules_version(version: int, data: Any) -> str:
    """``2-1a2b3c4d5e6f``: the file's ``version``, then a hash of its content read as data (numbers,
    conditions and the ids that name the wording), so that any change of a weight, threshold or
    rule gives another version, while comments, layout and the wording's sentences (in templates/)
    do not. Every recommendation keeps the version that made it."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return f"{version}-{hashlib.sha256(canonical.encode()).hexdigest()[:12]}"


def load_rules(path: Path, dialog: Dialog) -> Rules:
    """Load and validate the advice rules for ``dialog``; raise DialogError listing every problem.

    A value of a shape no check expected (``keep_in_house: 5``, a mapping where a list of ids goes)
    is one DialogError naming the file too, not a traceback."""
    data = read_yaml(path)
    try:
        return _load_rules(path, dialog, data)
    except (TypeError, AttributeError, ValueError, KeyError) as error:
        raise DialogError([f"{path}: a value of a shape the rules do not take ({type(error).__name__}: "
                           f"{error}); compare it with dialogs/advice.yaml"]) from None


def _load_rules(path: Path, dialog: Dialog, data: Any) -> Rules:
    r = _Reader(path, dialog)
    if not isinstance(data, Mapping):
        raise DialogError([f"{path}: expected a mapping with readiness, profiles, functions ..."])
    readiness = r.section(data, "readiness")
    functions = r.section(data, "functions")
    capacity = r.section(data, "capacity")
    risks = r.section(data, "risks")
    verdict = r.section(data, "verdict")

    tasks_question = r.question(functions, "question", "functions")
    task_ids = r.options_of(tasks_question)
    tasks: dict[str, Task] = {}
    raw_tasks = functions.get("tasks")
    if not isinstance(raw_tasks, Mapping):
        r.fail("functions.tasks", "expected a mapping of task id -> {base, partner_rate, staff_rate, boosts, approach}")
        raw_tasks = {}
    for task_id, raw in raw_tasks.items():
        at = f"functions.tasks.{task_id}"
        if task_id not in task_ids:
            r.fail(at, f"'{task_id}' is not an option of question '{tasks_question}'")
        if not isinstance(raw, Mapping):
            r.fail(at, "expected a mapping with base, partner_rate, staff_rate, boosts and approach")
            continue
        tasks[task_id] = Task(task_id, r.number(raw, "base", at), r.range(raw, "partner_rate", at),
                              r.range(raw, "staff_rate", at), r.rules(raw.get("boosts", []), f"{at}.boosts"),
                              r.approaches(raw.get("approach"), f"{at}.approach", last_unconditional=True))
    exclusive = {o.value for o in dialog.questions[tasks_question].options if o.exclusive} if tasks_question else set()
    for missing in sorted(task_ids - set(tasks) - exclusive):
        r.fail("functions.tasks", f"no rules for task '{missing}'")

    core_owns: dict[str, tuple[str, ...]] = {}
    for core, owned in (functions.get("core_owns") or {}).items():
        if not isinstance(owned, list) or any(t not in tasks for t in owned):
            r.fail(f"functions.core_owns.{core}", "expected a list of known task ids")
            continue
        core_owns[str(core)] = tuple(owned)

    suggestions = []
    for i, raw in enumerate(functions.get("suggestions") or []):
        at = f"functions.suggestions[{i}]"
        if (not isinstance(raw, Mapping) or raw.get("task") not in tasks or not isinstance(raw.get("id"), str)
                or raw.get("approach") not in HAND_OVER):
            r.fail(at, f"expected {{id, task (a known task id), approach ({', '.join(HAND_OVER)}), score, when}}")
            continue
        suggestions.append(Suggestion(raw["id"], raw["task"], raw["approach"], r.number(raw, "score", at),
                                      r.condition(raw, at)))

    concern_question = r.question(risks, "question", "risks")
    known = tuple(risks.get("known") or ())
    for concern in known:
        if concern not in r.options_of(concern_question):
            r.fail("risks.known", f"'{concern}' is not an option of question '{concern_question}'")
    version = data.get("version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        r.fail("version", "expected a whole number from 1")
        version = 1

    rules = Rules(
        version=rules_version(version, data),
        base=r.number(readiness, "base", "readiness"),
        drivers=r.rules(readiness.get("drivers"), "readiness.drivers"),
        profiles=r.thresholds(data.get("profiles"), "profiles"),
        prepare_steps=r.rules(verdict.get("prepare_steps", []), "verdict.prepare_steps", points=False),
        tasks_question=tasks_question,
        hours_question=r.question(functions, "hours_question", "functions"),
        owners_question=r.question(functions, "owners_question", "functions") if "owners_question" in functions else "",
        core_question=r.question(functions, "core_question", "functions"),
        size_question=r.question(capacity, "size_question", "capacity"),
        said_question=r.question(functions, "said_question", "functions"),
        said_points=r.number(functions, "said_points", "functions", default=0),
        common_boosts=r.rules(functions.get("common_boosts", []), "functions.common_boosts"),
        approach_first=r.approaches(functions.get("approach_first", []), "functions.approach_first",
                                    last_unconditional=False),
        tasks=tasks,
        core_owns=core_owns,
        suggestions=tuple(suggestions),
        tensions=r.rules(data.get("tensions", []), "tensions", points=False, derived=True),
        safeguards=r.rules(data.get("safeguards", []), "safeguards", points=False),
        capacity=r.capacity(capacity),
        concern_question=concern_question,
        known_concerns=known,
        default_risks=tuple(risks.get("default") or ()),
        keep_in_house=tuple(data.get("keep_in_house") or ()),
    )
    if r.errors:
        raise DialogError(r.errors)
    return rules
