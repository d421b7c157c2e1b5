"""Advice cases: people (their answers) with what a consultant expects the advice to say.

The cases live in ``dialogs/cases.yaml``. Each one is walked through the real engine, question by
question as a person would answer (an answer read back is confirmed), and its recommendation is
compared with the expectation: the verdict, each task's approach, the tensions named, the answers
read back, the sign of the net cash, and the profile or safeguards where given. Every case also
checks what must hold for anyone: nothing of the core handed over, no engagement model with
"not now", at most 300 words on screen in every channel format, and no sentence twice there.
``python bot.py check --cases`` and the tests run them, so whoever tunes a rule sees what it breaks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from advisor.advice import HAND_OVER, VERDICTS, Advisor
from advisor.dialog import Dialog, DialogError, read_yaml
from advisor.engine import Engine, Step
from advisor.render import SCREEN_WORDS, Renderer, screen_text

EXPECTATIONS = ("verdict", "approaches", "tensions", "read_back", "cash", "profile", "safeguards", "says",
                "never_says")
CASH_SIGNS = ("more", "less", "about_same", "none")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class Case:
    id: str
    description: str
    answers: Mapping[str, Any]
    expect: Mapping[str, Any] = field(default_factory=dict)


def load_cases(path: Path, dialog: Dialog) -> list[Case]:
    """Read and check the cases file against ``dialog``; DialogError lists every problem."""
    data = read_yaml(path)
    f = str(path)
    errors: list[str] = []
    raw_cases = data.get("cases") if isinstance(data, Mapping) else None
    if not isinstance(raw_cases, list) or not raw_cases:
        raise DialogError([f"{f}: cases: expected a list of {{id, description, answers, expect}}"])
    cases: list[Case] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_cases):
        at = f"{f}: cases[{i}]"
        if not isinstance(raw, Mapping) or not isinstance(raw.get("id"), str):
            errors.append(f"{at}: expected a mapping with id, description, answers and expect")
            continue
        at = f"{f}: cases.{raw['id']}"
        if raw["id"] in seen:
            errors.append(f"{at}: duplicate id")
        seen.add(raw["id"])
        answers = raw.get("answers")
        expect = raw.get("expect") or {}
        if not isinstance(answers, Mapping) or not isinstance(expect, Mapping):
            errors.append(f"{at}: answers and expect must be mappings")
            continue
        errors += _check_answers(at, answers, dialog)
        for key in expect:
            if key not in EXPECTATIONS:
                errors.append(f"{at}.expect.{key}: unknown (known: {', '.join(EXPECTATIONS)})")
        if expect.get("verdict") not in VERDICTS:
            errors.append(f"{at}.expect.verdict: expected one of {', '.join(VERDICTS)}")
        for key in ("says", "never_says"):
            phrases = expect.get(key, [])
            if not isinstance(phrases, list) or not all(isinstance(t, str) for t in phrases):
                errors.append(f"{at}.expect.{key}: expected a list of phrases")
        if "cash" in expect and expect["cash"] not in CASH_SIGNS:
            errors.append(f"{at}.expect.cash: expected one of {', '.join(CASH_SIGNS)}")
        cases.append(Case(raw["id"], str(raw.get("description", "")), dict(answers), dict(expect)))
    if errors:
        raise DialogError(errors)
    return cases


def _check_answers(at: str, answers: Mapping[str, Any], dialog: Dialog) -> list[str]:
    errors = []
    for qid, value in answers.items():
        question = dialog.questions.get(qid)
        if question is None:
            errors.append(f"{at}.answers.{qid}: unknown question")
            continue
        values = value if isinstance(value, list) else [value]
        if question.takes_options and any(question.option(str(v)) is None for v in values):
            errors.append(f"{at}.answers.{qid}: {value!r} is not an option of '{qid}'")
    return errors


class CaseRunner:
    """Walks cases through one engine and renderer and says what differs from the expectation."""

    def __init__(self, dialog: Dialog, advisor: Advisor, renderer: Renderer):
        self.dialog = dialog
        self.advisor = advisor
        self.renderer = renderer
        self.engine = Engine(dialog, lambda answers: renderer.explain(advisor.recommend(answers)))

    def walk(self, case: Case) -> tuple[Step, list[str], list[str]]:
        """The finishing step, the checks that read an answer back, and problems on the way."""
        step = self.engine.start()
        read_back: list[str] = []
        problems: list[str] = []
        for _ in range(4 * len(self.dialog.questions)):
            if step.kind == "finish":
                return step, read_back, problems
            assert step.question is not None
            if step.hint is not None and step.hint.code == "read_back":
                read_back.append(str(step.hint.params["check"]))
                step = self.engine.confirm(step.state)
                continue
            if step.hint is not None:
                problems.append(f"question '{step.state.current}' refused the answer ({step.hint.code})")
                return step, read_back, problems
            step = self._answer(step, case.answers)
        problems.append("the walk never reached the recommendation")
        return step, read_back, problems

    def _answer(self, step: Step, answers: Mapping[str, Any]) -> Step:
        question = step.question
        assert question is not None
        if question.id not in answers:
            return self.engine.skip(step.state)
        value = answers[question.id]
        if question.takes_options or (question.type == "contact" and question.option(str(value))):
            return self.engine.choose(step.state, value if isinstance(value, list) else [value])
        return self.engine.answer(step.state, str(value))

    def run(self, case: Case) -> list[str]:
        """Every way the advice for ``case`` differs from what is expected; empty when it passes."""
        step, read_back, problems = self.walk(case)
        if step.kind != "finish":
            return problems
        rec = step.recommendation
        expect = case.expect
        if rec["verdict"] != expect.get("verdict"):
            problems.append(f"verdict {rec['verdict']}, expected {expect.get('verdict')}")
        got = {f["id"]: f["approach"]["id"] for f in rec["functions"] if not f["suggested"]}
        for task, approach in (expect.get("approaches") or {}).items():
            if got.get(task) != approach:
                problems.append(f"{task}: {got.get(task, 'not among the tasks')}, expected {approach}")
        if "tensions" in expect:
            tensions = sorted(t["id"] for t in rec["tensions"])
            if tensions != sorted(expect["tensions"] or []):
                problems.append(f"tensions {tensions}, expected {sorted(expect['tensions'] or [])}")
        if sorted(read_back) != sorted(expect.get("read_back") or []):
            problems.append(f"read back {sorted(read_back)}, expected {sorted(expect.get('read_back') or [])}")
        if "cash" in expect and rec["net_cash"] != expect["cash"]:
            problems.append(f"net cash {rec['net_cash']}, expected {expect['cash']}")
        if "profile" in expect and rec["profile"] != expect["profile"]:
            problems.append(f"profile {rec['profile']}, expected {expect['profile']}")
        if "safeguards" in expect:
            safeguards = sorted(g["id"] for g in rec["safeguards"])
            if safeguards != sorted(expect["safeguards"] or []):
                problems.append(f"safeguards {safeguards}, expected {sorted(expect['safeguards'] or [])}")
        screen = " ".join(screen_text(self.renderer.recommendation(rec, "txt")).split())
        for phrase in expect.get("says") or ():
            if " ".join(phrase.split()) not in screen:
                problems.append(f"the screen does not say {phrase!r}")
        for phrase in expect.get("never_says") or ():
            if " ".join(phrase.split()) in screen:
                problems.append(f"the screen says {phrase!r}")
        return problems + self.invariants(rec, step.state.answers)

    def invariants(self, rec: Mapping[str, Any], answers: Mapping[str, Any]) -> list[str]:
        """What must hold for anyone, whatever they answered."""
        problems = []
        core = str(answers.get(self.advisor.rules.core_question))
        owned = set(self.advisor.rules.core_owns.get(core, ()))
        for f in rec["functions"]:
            if f["id"] in owned and f["approach"]["id"] in HAND_OVER:
                problems.append(f"{f['id']} is core work for '{core}' but is handed over")
        if (rec["engagement_model"] is None) != (rec["verdict"] == "not_now"):
            problems.append("an engagement model must be given exactly when the verdict is not 'not_now'")
        for fmt in ("txt", "html"):
            text = screen_text(self.renderer.recommendation(rec, fmt))
            words = len(text.split())
            if words > SCREEN_WORDS:
                problems.append(f"{words} words on screen ({fmt}), at most {SCREEN_WORDS}")
            repeated = repeated_sentences(text)
            if repeated:
                problems.append(f"said twice on screen ({fmt}): {repeated[0]!r}")
        return problems


def repeated_sentences(text: str) -> list[str]:
    seen: set[str] = set()
    repeated = []
    for sentence in _SENTENCE.split(" ".join(text.split())):
        key = sentence.strip().lower()
        if len(key.split()) < 4:  # headings and "Net:" labels, not sentences
            continue
        if key in seen:
            repeated.append(sentence)
        seen.add(key)
    return repeated
