"""How well free text is understood: labelled phrases scored for precision and recall per option,
and words typed at button questions scored for how often they are understood.

The corpus (``dialogs/understanding.yaml``) has two parts:
- ``phrases``: what a founder might type at the free-text question, each with the options a person
  really means. ``score`` runs every phrase through ``advisor.understand`` against the question's
  options and counts, per option, what was understood rightly (true positives), wrongly (false
  positives) and missed (false negatives). Words reported as ambiguous are asked about, not
  understood: they count as missed, never as wrong.
- ``answers``: words typed where buttons are offered ("about 30 of us" at the head count), each with
  the option(s) meant, or none where the advisor should ask. ``score_answers`` gives every answer to
  the engine itself, at its question, and reads what the advisor proposed or took.
``python bot.py check --understanding`` prints both tables; the tests hold them to the goals.

A corpus named ``<name>.<language>.yaml`` (``understanding.de.yaml``) is in that language: it is read
against the dialog as that language speaks it (``advisor/keywords.py``), with its ``Language``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from advisor.dialog import Dialog, DialogError, Question, read_yaml
from advisor.engine import ConversationState, Engine
from advisor.i18n import LANGUAGES, SOURCE
from advisor.keywords import spoken
from advisor.language import ENGLISH, Language
from advisor.understand import understand

PRECISION_GOAL = 0.95
RECALL_GOAL = 0.9
ANSWERS_GOAL = 0.9  # typed answers at button questions understood (or rightly asked about)


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
    if raw is None and isinstance(data, Mapping) and "answers" in data:
        return []  # typed answers only
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


def score(phrases: Sequence[Phrase], question: Question, language: Language = ENGLISH) -> Score:
    result = Score({o.value: Tally() for o in question.options})
    result.phrases = len(phrases)
    for phrase in phrases:
        got = set(understand(phrase.text, question.options, language).values)
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


def language_of(path: Path) -> str:
    """The language of a corpus: ``understanding.de.yaml`` is German; without a code, English."""
    code = path.name.split(".")[-2] if path.name.count(".") >= 2 else SOURCE
    return code if code in LANGUAGES else SOURCE


def report(dialog: Dialog, path: Path) -> tuple[Score | None, AnswerScore | None]:
    """Both parts of the corpus at ``path`` scored; None for a part the file does not have."""
    dialog, language = spoken(dialog, language_of(path))
    question = understanding_question(dialog)
    phrases = load_corpus(path, question)
    answers = load_answers(path, dialog)
    return (score(phrases, question, language) if phrases else None,
            score_answers(answers, dialog, language) if answers else None)


def met(phrases: Score | None, answers: AnswerScore | None) -> bool:
    return (phrases is None or (phrases.total.precision >= PRECISION_GOAL and phrases.total.recall >= RECALL_GOAL)
            ) and (answers is None or answers.total.rate >= ANSWERS_GOAL)


# -- typed answers at button questions -------------------------------------------------------------
@dataclass(frozen=True)
class Answer:
    question: str
    text: str
    expect: tuple[str, ...]  # the option(s) meant; () where the advisor should ask, not guess


@dataclass
class AnswerTally:
    answers: int = 0
    right: int = 0  # understood as meant (or, where nothing clear was meant, asked about)
    wrong: int = 0  # another option proposed or taken
    missed: int = 0  # meant an option, but the advisor asked or did not understand

    @property
    def rate(self) -> float:
        return self.right / self.answers if self.answers else 1.0


@dataclass
class AnswerScore:
    per_question: dict[str, AnswerTally] = field(default_factory=dict)
    total: AnswerTally = field(default_factory=AnswerTally)
    # (question, text, expected, got)
    mistakes: list[tuple[str, str, list[str], list[str]]] = field(default_factory=list)


def load_answers(path: Path, dialog: Dialog) -> list[Answer]:
    """The labelled typed answers of ``path`` (its ``answers`` list; none if it has no such list)."""
    data = read_yaml(path)
    raw = data.get("answers") if isinstance(data, Mapping) else None
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise DialogError([f"{path}: answers: expected a list of {{question, text, expect}}"])
    errors: list[str] = []
    answers = []
    for i, item in enumerate(raw):
        at = f"{path}: answers[{i}]"
        if not isinstance(item, Mapping) or not isinstance(item.get("text"), str) or not isinstance(
                item.get("expect"), list):
            errors.append(f"{at}: expected {{question, text, expect: [...]}}")
            continue
        question = dialog.questions.get(str(item.get("question")))
        if question is None or question.type not in ("single", "multi"):
            errors.append(f"{at}.question: {item.get('question')!r} is not a button question of the dialog")
            continue
        known = {o.value for o in question.options}
        unknown = [v for v in item["expect"] if v not in known]
        if unknown:
            errors.append(f"{at}.expect: unknown option(s) {', '.join(map(str, unknown))} of '{question.id}'")
            continue
        if question.type == "single" and len(item["expect"]) > 1:
            errors.append(f"{at}.expect: '{question.id}' takes one option")
            continue
        answers.append(Answer(question.id, item["text"], tuple(item["expect"])))
    if errors:
        raise DialogError(errors)
    return answers


def read_answer(engine: Engine, question: Question, text: str) -> tuple[str, ...]:
    """What the advisor makes of ``text`` typed at ``question``: the options it proposes for a yes or
    takes at once (an option's number or label); () when it asks which was meant or does not know."""
    step = engine.answer(ConversationState(current=question.id), text)
    if step.state.current != question.id or step.state.pending is not None:
        taken = step.state.answers.get(question.id) if step.state.pending is None else step.state.pending["value"]
        return tuple(taken) if isinstance(taken, list) else (str(taken),)
    if step.hint is not None and step.hint.code == "understood":
        return step.state.proposed
    return ()


def score_answers(answers: Sequence[Answer], dialog: Dialog, language: Language = ENGLISH) -> AnswerScore:
    engine = Engine(dialog, lambda _answers: None, language)
    result = AnswerScore({q.id: AnswerTally() for q in dialog.questions.values() if q.type in ("single", "multi")})
    for answer in answers:
        question = dialog.question(answer.question)
        got = read_answer(engine, question, answer.text)
        tally = result.per_question[question.id]
        for t in (tally, result.total):
            t.answers += 1
        order = [o.value for o in question.options]
        if set(got) == set(answer.expect):
            kind = "right"
        else:
            kind = "missed" if not got else "wrong"
            result.mistakes.append((question.id, answer.text, sorted(answer.expect, key=order.index),
                                    sorted(got, key=order.index)))
        for t in (tally, result.total):
            setattr(t, kind, getattr(t, kind) + 1)
    return result


def answers_table(result: AnswerScore) -> list[str]:
    lines = [f"{'question':<24} {'understood':>10} {'answers':>8} {'wrong':>6} {'missed':>7}"]
    for qid, t in result.per_question.items():
        if t.answers:
            lines.append(f"{qid:<24} {t.rate:>10.2f} {t.answers:>8} {t.wrong:>6} {t.missed:>7}")
    t = result.total
    lines.append(f"{'overall':<24} {t.rate:>10.2f} {t.answers:>8} {t.wrong:>6} {t.missed:>7}")
    return lines
