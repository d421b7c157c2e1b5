"""How well free text is understood: labelled phrases scored for precision and recall per option.

The corpus (``dialogs/understanding.yaml``) lists phrases a founder might type at the free-text
question, each with the options a person really means. ``score`` runs every phrase through
``advisor.understand`` against the question's options and counts, per option, what was understood
rightly (true positives), wrongly (false positives) and missed (false negatives). Words reported as
ambiguous are asked about, not understood: they count as missed, never as wrong.
``python bot.py check --understanding`` prints the table; the tests hold it to the goals.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from advisor.dialog import Dialog, DialogError, Question, read_yaml
from advisor.understand import understand

PRECISION_GOAL = 0.95
RECALL_GOAL = 0.9


@dataclass(frozen=True)
class Phrase:
    text: str
    values: frozenset[str]


@dataclass
class Tally:
    right: int = 0
    wrong: int = 0
    missed: int = 0

    @property
    def precision(self) -> float:
        return self.right / (self.right + self.wrong) if self.right + self.wrong else 1.0

    @property
    def recall(self) -> float:
        return self.right / (self.right + self.missed) if self.right + self.missed else 1.0


@dataclass
class Score:
    per_option: dict[str, Tally] = field(default_factory=dict)
    total: Tally = field(default_factory=Tally)
    phrases: int = 0
    mistakes: list[tuple[str, list[str], list[str]]] = field(default_factory=list)  # (text, expected, got)


def load_corpus(path: Path, question: Question) -> list[Phrase]:
    """The labelled phrases of ``path``; DialogError names every phrase whose labels are unknown."""
    data = read_yaml(path)
    raw = data.get("phrases") if isinstance(data, Mapping) else None
    if not isinstance(raw, list) or not raw:
        raise DialogError([f"{path}: phrases: expected a list of {{text, tasks}}"])
    known = {o.value for o in question.options}
    errors: list[str] = []
    phrases = []
    for i, item in enumerate(raw):
        at = f"{path}: phrases[{i}]"
        if not isinstance(item, Mapping) or not isinstance(item.get("text"), str) or not isinstance(
                item.get("tasks"), list):
            errors.append(f"{at}: expected {{text, tasks: [...]}}")
            continue
        unknown = [v for v in item["tasks"] if v not in known]
        if unknown:
            errors.append(f"{at}.tasks: unknown option(s) {', '.join(map(str, unknown))} of '{question.id}'")
            continue
        phrases.append(Phrase(item["text"], frozenset(item["tasks"])))
    if errors:
        raise DialogError(errors)
    return phrases


def score(phrases: Sequence[Phrase], question: Question) -> Score:
    result = Score({o.value: Tally() for o in question.options})
    result.phrases = len(phrases)
    for phrase in phrases:
        got = set(understand(phrase.text, question.options).values)
        for value in got | phrase.values:
            tally = result.per_option[value]
            if value in got and value in phrase.values:
                tally.right += 1
                result.total.right += 1
            elif value in got:
                tally.wrong += 1
                result.total.wrong += 1
            else:
                tally.missed += 1
                result.total.missed += 1
        if got != phrase.values:
            order = [o.value for o in question.options]
            result.mistakes.append((phrase.text, sorted(phrase.values, key=order.index),
                                    sorted(got, key=order.index)))
    return result


def table(result: Score, question: Question) -> list[str]:
    """The score as lines of text: one per option, then overall."""
    lines = [f"{'option':<24} {'precision':>9} {'recall':>7} {'right':>6} {'wrong':>6} {'missed':>7}"]
    for option in question.options:
        t = result.per_option[option.value]
        lines.append(f"{option.value:<24} {t.precision:>9.2f} {t.recall:>7.2f} {t.right:>6} {t.wrong:>6} {t.missed:>7}")
    t = result.total
    lines.append(f"{'overall':<24} {t.precision:>9.2f} {t.recall:>7.2f} {t.right:>6} {t.wrong:>6} {t.missed:>7}")
    return lines


def understanding_question(dialog: Dialog) -> Question:
    """The multi-choice question that free text pre-selects (the one with ``prefill_from``)."""
    found = [q for q in dialog.questions.values() if q.prefill_from]
    if not found:
        raise DialogError([f"{dialog.path}: no question has prefill_from, so no free text is understood"])
    return found[0]


def report(dialog: Dialog, path: Path) -> tuple[list[str], Score]:
    question = understanding_question(dialog)
    result = score(load_corpus(path, question), question)
    return table(result, question), result
