"""Answers -> recommendation: applies the rules of ``dialogs/advice.yaml`` (numbers and ids, no wording).

The method is a consultant's make-or-buy: each task gets a sourcing approach from its own rules
(strategic partner, managed service, specialist vendor, automate first, keep in-house, not yet);
the verdict follows from the tasks worth handing over and the steps still missing; tensions between
answers and the safeguards an industry needs are named. ``Advisor.recommend`` returns plain data;
``advisor.render`` words it from templates. Loading and validating the rules is in
``advisor.advice_rules``, the cash and capacity estimate (money that really changes hands, as ranges)
in ``advisor.advice_cash``; every name of both that callers use is importable from here as before.
"""

from __future__ import annotations

from typing import Any

from advisor.advice_cash import _mean_range as _mean_range
from advisor.advice_cash import _span as _span
from advisor.advice_cash import estimate_capacity
from advisor.advice_cash import round_hours as round_hours
from advisor.advice_cash import round_money as round_money
from advisor.advice_rules import APPROACHES as APPROACHES
from advisor.advice_rules import CASH_STOPS as CASH_STOPS
from advisor.advice_rules import DERIVED as DERIVED
from advisor.advice_rules import HAND_OVER as HAND_OVER
from advisor.advice_rules import MODEL_OF as MODEL_OF
from advisor.advice_rules import VERDICTS as VERDICTS
from advisor.advice_rules import Answers as Answers
from advisor.advice_rules import ApproachRule as ApproachRule
from advisor.advice_rules import Capacity as Capacity
from advisor.advice_rules import OwnerCash as OwnerCash
from advisor.advice_rules import Range as Range
from advisor.advice_rules import Rule as Rule
from advisor.advice_rules import Rules as Rules
from advisor.advice_rules import Suggestion as Suggestion
from advisor.advice_rules import Task as Task
from advisor.advice_rules import Threshold as Threshold
from advisor.advice_rules import _Reader as _Reader
from advisor.advice_rules import in_currency
from advisor.advice_rules import load_rules as load_rules
from advisor.dialog import Dialog, Question
from advisor.language import ENGLISH, Language
from advisor.understand import match_options


def _clamp(value: float) -> int:
    return round(max(0.0, min(100.0, value)))


class Advisor:
    """Applies one set of rules to answers. Pure: the same answers always give the same advice."""

    def __init__(self, dialog: Dialog, rules: Rules, language: Language = ENGLISH, tasks_said: Question | None = None):
        self.dialog = dialog
        self.rules = rules
        self.language = language  # the words the person's own description of their tasks is read in
        self._tasks_said = tasks_said  # the tasks question with that language's keywords

    def in_language(self, spoken: Dialog, language: Language) -> Advisor:
        """The same rules, reading the person's own words in ``language`` (``spoken``: the dialog with
        that language's keywords), so that a task named in German counts as named."""
        return Advisor(self.dialog, self.rules, language, spoken.questions.get(self.rules.tasks_question))

    def recommend(self, answers: Answers) -> dict[str, Any]:
        rules = self.rules
        drivers: list[dict[str, Any]] = [{"id": d.id, "points": d.points} for d in rules.drivers if d.holds(answers)]
        score = _clamp(rules.base + sum(d["points"] for d in drivers))
        profile = next(p.id for p in rules.profiles if score >= p.minimum)
        functions = self._functions(answers)
        handed = [f for f in functions if f["approach"] in HAND_OVER]
        steps = [s.id for s in rules.prepare_steps if s.holds(answers)] if handed else []
        verdict = "not_now" if not handed else "prepare_first" if steps else "hand_over"
        if verdict != "not_now":
            functions += self._suggestions(answers, functions)
        capacity = self._capacity(answers, functions, handed)
        approaches = sorted({f["approach"] for f in functions if f["approach"] in HAND_OVER})
        facts = {"verdict": verdict, "approaches": approaches, "net_cash": capacity["net_cash"]}
        known = {**answers, **facts}
        concerns = [c for c in _as_list(answers.get(rules.concern_question)) if c in rules.known_concerns]
        return {
            "readiness_score": score,
            "base": rules.base,
            "drivers": sorted(drivers, key=lambda d: -abs(d["points"])),
            "profile": profile,
            "verdict": verdict,
            "prepare_steps": steps,
            "functions": functions,
            "keep_in_house": list(rules.keep_in_house),
            "engagement_model": None if verdict == "not_now" else self._model(functions),
            "tensions": [t.id for t in rules.tensions if t.holds(known)],
            "safeguards": [] if verdict == "not_now" else [s.id for s in rules.safeguards if s.holds(answers)],
            "capacity": capacity,
            "net_cash": facts["net_cash"],
            "strategic_version": profile != "strategic" and verdict != "not_now",
            "risks": concerns or ([] if verdict == "not_now" else list(rules.default_risks)),
            "said": said if isinstance(said := answers.get(rules.said_question), str) else None,
            "answers": dict(answers),
            "rules_version": rules.version,
        }

    def _functions(self, answers: Answers) -> list[dict[str, Any]]:
        """Every task ticked, with its approach and rank: what is handed over first, best fit first."""
        rules = self.rules
        chosen = [t for t in _as_list(answers.get(rules.tasks_question)) if t in rules.tasks]
        owned = set(rules.core_owns.get(str(answers.get(rules.core_question)), ()))
        said = self._said(answers)
        ranked: list[dict[str, Any]] = []
        for task_id in chosen:
            task = rules.tasks[task_id]
            boosts = [b for b in (*task.boosts, *rules.common_boosts) if b.holds(answers)]
            reasons: list[dict[str, Any]] = [{"id": b.id, "points": b.points} for b in boosts]
            if task_id in said:
                reasons.insert(0, {"id": "in_your_words", "points": rules.said_points})
            if task_id in owned:
                approach, because = "keep_in_house", "core_owns"
            else:
                rule = next(a for a in (*rules.approach_first, *task.approach) if a.holds(answers))
                approach, because = rule.approach, rule.because
            if approach in ("keep_in_house", "not_yet"):
                reasons = []  # why it would be handed over does not apply to work that stays or does not exist
            ranked.append({"id": task_id, "name": self._name(task_id),
                           "score": _clamp(task.base + sum(r["points"] for r in reasons)),
                           "reasons": reasons, "approach": approach, "because": because, "suggested": False})
        ranked.sort(key=lambda f: (APPROACHES.index(f["approach"]) >= len(HAND_OVER), -f["score"]))
        return ranked

    def _suggestions(self, answers: Answers, functions: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Tasks not ticked that the strategic view adds, once something is handed over."""
        chosen = set(_as_list(answers.get(self.rules.tasks_question)))
        owned = set(self.rules.core_owns.get(str(answers.get(self.rules.core_question)), ()))
        found: list[dict[str, Any]] = []
        for suggestion in self.rules.suggestions:
            taken = chosen | owned | {f["id"] for f in (*functions, *found)}
            if suggestion.task in taken or not (suggestion.when is None or suggestion.when.test(answers)):
                continue
            found.append({"id": suggestion.task, "name": self._name(suggestion.task),
                          "score": _clamp(suggestion.score),
                          "reasons": [{"id": suggestion.id, "points": suggestion.score}],
                          "approach": suggestion.approach, "because": suggestion.id, "suggested": True})
        return found

    @staticmethod
    def _model(functions: list[dict[str, Any]]) -> dict[str, Any]:
        """How to engage follows from the tasks handed over; several approaches make a mix."""
        by_approach: dict[str, list[str]] = {}
        for f in functions:
            if f["approach"] in HAND_OVER:
                by_approach.setdefault(f["approach"], []).append(f["id"])
        ids = {MODEL_OF[a] for a in by_approach}
        return {"id": ids.pop() if len(ids) == 1 else "mixed", "parts": by_approach}

    def _name(self, task_id: str) -> str:
        option = self.dialog.question(self.rules.tasks_question).option(task_id)
        return option.label if option else task_id

    def _said(self, answers: Answers) -> set[str]:
        text = answers.get(self.rules.said_question)
        question = self._tasks_said or self.dialog.questions.get(self.rules.tasks_question)
        if not isinstance(text, str) or question is None:
            return set()
        return set(match_options(text, question.options, self.language))

    def _capacity(self, answers: Answers, functions: list[dict[str, Any]],
                  handed: list[dict[str, Any]]) -> dict[str, Any]:
        """Hours back and cash as ranges; see ``advisor.advice_cash.estimate_capacity``."""
        return estimate_capacity(self.rules, answers, functions, handed)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def load_advisor(dialog: Dialog, currency: str | None = None, rate: float | None = None) -> Advisor:
    """The dialog's advice rules; with ``currency``, its cash shown in that currency (see ``in_currency``)."""
    rules = load_rules(dialog.advice_path, dialog)
    return Advisor(dialog, in_currency(rules, currency, rate) if currency else rules)
