"""Answers -> recommendation, by the rules in ``dialogs/advice.yaml`` (numbers and ids, no wording).

``recommend`` returns plain data: the readiness score with the drivers that moved it, the profile,
the ranked functions with the ids of their reasons, the engagement model, capacity and cost with
their assumptions, risks and what stays in-house. ``advisor.render`` words it from templates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from advisor.conditions import Condition, parse_condition
from advisor.dialog import Dialog, DialogError, read_yaml
from advisor.understand import match_options

Answers = Mapping[str, Any]


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
    when: Condition | None = None


@dataclass(frozen=True)
class Task:
    id: str
    base: float
    partner_rate: float
    boosts: tuple[Rule, ...]


@dataclass(frozen=True)
class Suggestion:
    id: str
    task: str
    score: float
    when: Condition | None


@dataclass(frozen=True)
class Rules:
    version: int
    base: float
    drivers: tuple[Rule, ...]
    profiles: tuple[Threshold, ...]
    engagement: tuple[Threshold, ...]
    tasks_question: str
    hours_question: str
    core_question: str
    size_question: str
    said_question: str
    said_points: float
    common_boosts: tuple[Rule, ...]
    tasks: Mapping[str, Task]
    core_owns: Mapping[str, tuple[str, ...]]
    suggestions: tuple[Suggestion, ...]
    capacity: Mapping[str, Any]
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
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            self.fail(f"{where}.{key}", "expected a number")
            return 0.0
        return float(value)

    def question(self, data: Mapping[str, Any], key: str, where: str) -> str:
        value = data.get(key)
        if value not in self.dialog.questions:
            self.fail(f"{where}.{key}", f"unknown question '{value}'")
            return ""
        return str(value)

    def condition(self, raw: Mapping[str, Any], where: str) -> Condition | None:
        if "when" not in raw:
            return None
        parsed = parse_condition(raw["when"], f"{self.f}: {where}.when", self.errors)
        if parsed is not None:
            for name in sorted(parsed.questions() - set(self.dialog.questions)):
                self.fail(f"{where}.when", f"unknown question '{name}'")
        return parsed

    def rules(self, raw: Any, where: str) -> tuple[Rule, ...]:
        if not isinstance(raw, list):
            self.fail(where, "expected a list of {id, points, when}")
            return ()
        found = []
        for i, item in enumerate(raw):
            at = f"{where}[{i}]"
            if not isinstance(item, Mapping) or not isinstance(item.get("id"), str):
                self.fail(at, "expected a mapping with id, points and when")
                continue
            found.append(Rule(item["id"], self.number(item, "points", at), self.condition(item, at)))
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
            found.append(Threshold(item["id"], self.number(item, "min", at), self.condition(item, at)))
        if found and (found[-1].minimum > 0 or found[-1].when is not None):
            self.fail(where, "the last entry needs min: 0 and no 'when', so every score has one")
        return tuple(found)

    def options_of(self, question_id: str) -> set[str]:
        question = self.dialog.questions.get(question_id)
        return {o.value for o in question.options} if question else set()


def load_rules(path: Path, dialog: Dialog) -> Rules:
    """Load and validate the advice rules for ``dialog``; raise DialogError listing every problem."""
    data = read_yaml(path)
    r = _Reader(path, dialog)
    if not isinstance(data, Mapping):
        raise DialogError([f"{path}: expected a mapping with readiness, profiles, functions ..."])
    readiness = r.section(data, "readiness")
    functions = r.section(data, "functions")
    capacity = r.section(data, "capacity")
    risks = r.section(data, "risks")

    tasks_question = r.question(functions, "question", "functions")
    task_ids = r.options_of(tasks_question)
    tasks: dict[str, Task] = {}
    raw_tasks = functions.get("tasks")
    if not isinstance(raw_tasks, Mapping):
        r.fail("functions.tasks", "expected a mapping of task id -> {base, partner_rate, boosts}")
        raw_tasks = {}
    for task_id, raw in raw_tasks.items():
        at = f"functions.tasks.{task_id}"
        if task_id not in task_ids:
            r.fail(at, f"'{task_id}' is not an option of question '{tasks_question}'")
        if not isinstance(raw, Mapping):
            r.fail(at, "expected a mapping with base, partner_rate and boosts")
            continue
        tasks[task_id] = Task(task_id, r.number(raw, "base", at), r.number(raw, "partner_rate", at),
                              r.rules(raw.get("boosts", []), f"{at}.boosts"))
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
        if not isinstance(raw, Mapping) or raw.get("task") not in tasks or not isinstance(raw.get("id"), str):
            r.fail(at, "expected {id, task (a known task id), score, when}")
            continue
        suggestions.append(Suggestion(raw["id"], raw["task"], r.number(raw, "score", at), r.condition(raw, at)))

    concern_question = r.question(risks, "question", "risks")
    known = tuple(risks.get("known") or ())
    for concern in known:
        if concern not in r.options_of(concern_question):
            r.fail("risks.known", f"'{concern}' is not an option of question '{concern_question}'")

    for key in ("weeks_per_month", "freed_share", "partner_efficiency", "management_share",
                "default_hours_per_task"):
        r.number(capacity, key, "capacity")
    hourly = capacity.get("in_house_hourly_cost")
    if not isinstance(hourly, Mapping) or not hourly:
        r.fail("capacity.in_house_hourly_cost", "expected a mapping of company size -> cost per hour")
    else:
        for size in hourly:
            r.number(hourly, size, "capacity.in_house_hourly_cost")
    if not isinstance(capacity.get("currency"), str):
        r.fail("capacity.currency", "expected text such as USD")
    version = data.get("version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        r.fail("version", "expected a whole number from 1")
        version = 1

    rules = Rules(
        version=version,
        base=r.number(readiness, "base", "readiness"),
        drivers=r.rules(readiness.get("drivers"), "readiness.drivers"),
        profiles=r.thresholds(data.get("profiles"), "profiles"),
        engagement=r.thresholds(data.get("engagement"), "engagement"),
        tasks_question=tasks_question,
        hours_question=r.question(functions, "hours_question", "functions"),
        core_question=r.question(functions, "core_question", "functions"),
        size_question=r.question(capacity, "size_question", "capacity"),
        said_question=r.question(functions, "said_question", "functions"),
        said_points=r.number(functions, "said_points", "functions", default=0),
        common_boosts=r.rules(functions.get("common_boosts", []), "functions.common_boosts"),
        tasks=tasks,
        core_owns=core_owns,
        suggestions=tuple(suggestions),
        capacity=dict(capacity),
        concern_question=concern_question,
        known_concerns=known,
        default_risks=tuple(risks.get("default") or ()),
        keep_in_house=tuple(data.get("keep_in_house") or ()),
    )
    if r.errors:
        raise DialogError(r.errors)
    return rules


def _clamp(value: float) -> int:
    return round(max(0.0, min(100.0, value)))


class Advisor:
    """Applies one set of rules to answers. Pure: the same answers always give the same advice."""

    def __init__(self, dialog: Dialog, rules: Rules):
        self.dialog = dialog
        self.rules = rules

    def recommend(self, answers: Answers) -> dict[str, Any]:
        rules = self.rules
        drivers = [{"id": d.id, "points": d.points} for d in rules.drivers if d.holds(answers)]
        score = _clamp(rules.base + sum(d["points"] for d in drivers))
        profile = next(p.id for p in rules.profiles if score >= p.minimum)
        engagement = next(
            e.id for e in rules.engagement
            if score >= e.minimum and (e.when is None or e.when.test(answers))
        )
        functions, owned_by_core = self._functions(answers)
        concerns = [c for c in _as_list(answers.get(rules.concern_question)) if c in rules.known_concerns]
        return {
            "readiness_score": score,
            "base": rules.base,
            "drivers": sorted(drivers, key=lambda d: -abs(d["points"])),
            "profile": profile,
            "engagement_model": engagement,
            "functions": functions,
            "owned_by_core": owned_by_core,
            "keep_in_house": list(rules.keep_in_house),
            "capacity": self._capacity(answers, [f for f in functions if not f["suggested"]]),
            "risks": concerns or list(rules.default_risks),
            "answers": dict(answers),
            "rules_version": rules.version,
        }

    def _functions(self, answers: Answers) -> tuple[list[dict[str, Any]], list[str]]:
        rules = self.rules
        chosen = [t for t in _as_list(answers.get(rules.tasks_question)) if t in rules.tasks]
        owned = set(rules.core_owns.get(str(answers.get(rules.core_question)), ()))
        said = self._said(answers)
        ranked: list[dict[str, Any]] = []
        for task_id in chosen:
            if task_id in owned:
                continue
            task = rules.tasks[task_id]
            boosts = [b for b in (*task.boosts, *rules.common_boosts) if b.holds(answers)]
            reasons = [{"id": b.id, "points": b.points} for b in boosts]
            if task_id in said:
                reasons.insert(0, {"id": "in_your_words", "points": rules.said_points})
            score = task.base + sum(r["points"] for r in reasons)
            ranked.append({"id": task_id, "name": self._name(task_id), "score": _clamp(score),
                           "reasons": reasons, "suggested": False})
        for suggestion in rules.suggestions:
            if suggestion.task in chosen or suggestion.task in owned:
                continue
            if any(f["id"] == suggestion.task for f in ranked):
                continue
            if suggestion.when is None or suggestion.when.test(answers):
                ranked.append({"id": suggestion.task, "name": self._name(suggestion.task),
                               "score": _clamp(suggestion.score),
                               "reasons": [{"id": suggestion.id, "points": suggestion.score}],
                               "suggested": True})
        ranked.sort(key=lambda f: (f["suggested"], -f["score"]))
        return ranked, [self._name(t) for t in chosen if t in owned]

    def _name(self, task_id: str) -> str:
        option = self.dialog.question(self.rules.tasks_question).option(task_id)
        return option.label if option else task_id

    def _said(self, answers: Answers) -> set[str]:
        text = answers.get(self.rules.said_question)
        question = self.dialog.questions.get(self.rules.tasks_question)
        if not isinstance(text, str) or question is None:
            return set()
        return set(match_options(text, question.options))

    def _capacity(self, answers: Answers, functions: list[dict[str, Any]]) -> dict[str, Any] | None:
        if not functions:
            return None
        c = self.rules.capacity
        stated = answers.get(self.rules.hours_question)
        hours_said = isinstance(stated, (int, float)) and not isinstance(stated, bool)
        hours = float(stated) if hours_said else c["default_hours_per_task"] * len(functions)
        sizes = c["in_house_hourly_cost"]
        size = answers.get(self.rules.size_question)
        in_house_rate = float(sizes.get(size, max(sizes.values())))
        partner_rate = sum(self.rules.tasks[f["id"]].partner_rate for f in functions) / len(functions)
        handed_over = hours * c["freed_share"]
        steering = handed_over * c["management_share"]
        weeks = c["weeks_per_month"]
        in_house = hours * in_house_rate * weeks
        outsourced = (handed_over * c["partner_efficiency"] * partner_rate + steering * in_house_rate) * weeks
        outsourced += (hours - handed_over) * in_house_rate * weeks  # what stays with the team
        return {
            "hours_per_week": round(hours, 1),
            "hours_said": hours_said,
            "hours_freed_per_week": round(handed_over - steering, 1),
            "in_house_monthly": round(in_house),
            "outsourced_monthly": round(outsourced),
            "difference_monthly": round(in_house - outsourced),
            "currency": c["currency"],
            "in_house_rate": in_house_rate,
            "partner_rate": round(partner_rate, 2),
            "freed_share": c["freed_share"],
            "partner_efficiency": c["partner_efficiency"],
            "management_share": c["management_share"],
            "weeks_per_month": weeks,
            "default_hours_per_task": c["default_hours_per_task"],
        }


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def load_advisor(dialog: Dialog) -> Advisor:
    return Advisor(dialog, load_rules(dialog.advice_path, dialog))
