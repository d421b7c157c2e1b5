"""The questions of a dialog as a graph, checked: every target and every question a condition names
exists, every question is reachable from the start and has a way on to the recommendation
(``FINISH``), and no path loops. Problems are added to ``errors`` as ``file: key.path: message``.

``FINISH`` lives here, as the target the checks look for; import it from ``advisor.dialog``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from advisor.dialog import Question

FINISH = "recommendation"
"""The target that ends the questionnaire and gives the recommendation."""


def _check_references(f: str, questions: Mapping[str, Question], errors: list[str]) -> None:
    ids = set(questions)
    for q in questions.values():
        where = f"{f}: questions.{q.id}"
        for o in q.options:
            if o.next and o.next != FINISH and o.next not in ids:
                errors.append(f"{where}.options.{o.value}.next: unknown question '{o.next}'")
        for b in q.branches:
            if b.to != FINISH and b.to not in ids:
                errors.append(f"{where}.next[{b.index}].to: unknown question '{b.to}'")
            if b.when is not None:
                for name in sorted(b.when.questions() - ids):
                    errors.append(f"{where}.next[{b.index}].when: unknown question '{name}'")
        for i, check in enumerate(q.checks):
            for name in sorted(check.when.questions() - ids):
                errors.append(f"{where}.checks[{i}].when: unknown question '{name}'")
        if q.prefill_from is not None:
            source = questions.get(q.prefill_from)
            if source is None or source.type != "text":
                errors.append(f"{where}.prefill_from: '{q.prefill_from}' is not a text question")
            if q.type != "multi":
                errors.append(f"{where}.prefill_from: only a multi question can be pre-selected")


def _known_targets(question: Question, questions: Mapping[str, Question]) -> list[str]:
    """Targets that exist (unknown ones are reported once, by _check_references)."""
    return [t for t in question.targets() if t == FINISH or t in questions]


def _check_graph(f: str, start: str, questions: Mapping[str, Question], errors: list[str]) -> None:
    reachable: set[str] = set()
    stack = [start]
    while stack:
        qid = stack.pop()
        if qid == FINISH or qid in reachable:
            continue
        reachable.add(qid)
        stack.extend(_known_targets(questions[qid], questions))
    for qid in questions:
        if qid not in reachable:
            errors.append(f"{f}: questions.{qid}: unreachable from start '{start}'")
    finishing = {FINISH}
    changed = True
    while changed:
        changed = False
        for q in questions.values():
            unknown = [t for t in q.targets() if t != FINISH and t not in questions]
            if q.id not in finishing and (unknown or any(t in finishing for t in q.targets())):
                finishing.add(q.id)
                changed = True
    for qid in sorted(reachable - finishing):
        errors.append(f"{f}: questions.{qid}: no path from here reaches the {FINISH}")
    cycle = _find_cycle(start, questions)
    if cycle:
        errors.append(f"{f}: questions.{cycle[0]}.next: loops back ({' -> '.join(cycle)})")


def _find_cycle(start: str, questions: Mapping[str, Question]) -> list[str]:
    """A loop of questions reachable from start (a path could go round it forever), or []."""
    done: set[str] = set()
    path: list[str] = []

    def visit(qid: str) -> list[str]:
        if qid == FINISH or qid in done:
            return []
        if qid in path:
            return [*path[path.index(qid):], qid]
        path.append(qid)
        for target in _known_targets(questions[qid], questions):
            found = visit(target)
            if found:
                return found
        path.pop()
        done.add(qid)
        return []

    return visit(start)
