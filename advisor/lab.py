"""The advice lab: stored conversations replayed through candidate rules, and reviewers' marks.

``replay`` re-runs each stored conversation's answers through a candidate ``Advisor`` (rules, and
dialog if it changed) and compares the outcome with a baseline: what the person was told (the
stored recommendation, as a decision log is replayed) or what the current rules give today. The
engine and the rules are pure, so a replay is exact and deterministic, and it writes nothing.

An outcome is the part of a recommendation a change of rules moves: ``verdict``, ``readiness_score``,
``profile``, ``functions`` (each task with its approach), ``engagement_model`` and ``net_cash`` (the
monthly range). Conversations whose answers do not fit the candidate dialog (a question it asks that
was never answered, an answer that is no longer an option) are set apart, with why.

A reviewer's mark says agree or disagree; a disagree may say what was expected instead (a verdict,
a profile, a task's approach). The recommendation *matches the reviewer* when it is the advice
agreed with (same verdict, profile and approaches as stored), or, on a disagree, when it meets every
expectation given. A disagree without an expectation says what is wrong but not what is right: it
counts as disagreed, and is left out of agreement (nothing could ever match it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from advisor import AdvisorError
from advisor.advice import APPROACHES, VERDICTS, Advisor
from advisor.dialog import FINISH, Dialog
from advisor.engine import Engine
from advisor.keywords import spoken
from advisor.store import Conversation

FIELDS = ("verdict", "readiness_score", "profile", "functions", "engagement_model", "net_cash")
"""What a replay compares, in this order."""
MARKS = ("agree", "disagree")


# -- outcomes ---------------------------------------------------------------------------------------
def outcome(advice: Mapping[str, Any]) -> dict[str, Any]:
    """The comparable part of a recommendation, from ``Advisor.recommend`` or as stored (explained:
    an approach and an engagement model are ``{id, name, ...}`` there, plain ids here)."""
    functions = [{"id": f["id"], "approach": _id(f.get("approach")), "suggested": bool(f.get("suggested"))}
                 for f in advice.get("functions") or ()]
    net = (advice.get("capacity") or {}).get("net_cash_month")
    return {
        "verdict": advice.get("verdict"),
        "readiness_score": advice.get("readiness_score"),
        "profile": advice.get("profile"),
        "functions": functions,
        "engagement_model": _id(advice.get("engagement_model")),
        "net_cash": None if not net else {"low": net.get("low"), "high": net.get("high")},
        "rules_version": advice.get("rules_version"),
    }


def _id(value: Any) -> Any:
    return value.get("id") if isinstance(value, Mapping) else value


def approaches(result: Mapping[str, Any]) -> dict[str, str]:
    """Each task the person named, with its approach (tasks the advice suggested left out)."""
    return {f["id"]: f["approach"] for f in result["functions"] if not f["suggested"]}


def changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    return [name for name in FIELDS if before.get(name) != after.get(name)]


# -- marks ------------------------------------------------------------------------------------------
def expectation(mark: Mapping[str, Any] | None, told: Mapping[str, Any]) -> dict[str, Any] | None:
    """What the reviewer holds to be right, from a review (``verdict`` agree/disagree, ``expected``)
    and the outcome they reviewed; None when there is no mark or it says nothing testable."""
    if not mark or mark.get("verdict") not in MARKS:
        return None
    if mark["verdict"] == "agree":
        return {"verdict": told["verdict"], "profile": told["profile"], "approaches": approaches(told)}
    expected = mark.get("expected") or {}
    wanted = {k: expected[k] for k in ("verdict", "profile") if expected.get(k)}
    if expected.get("approaches"):
        wanted["approaches"] = dict(expected["approaches"])
    return wanted or None


def meets(result: Mapping[str, Any], expected: Mapping[str, Any] | None) -> bool:
    """Whether an outcome is what the reviewer expected (every part given)."""
    if not expected:
        return False
    if "verdict" in expected and result["verdict"] != expected["verdict"]:
        return False
    if "profile" in expected and result["profile"] != expected["profile"]:
        return False
    given = approaches(result)
    return all(given.get(task) == approach for task, approach in (expected.get("approaches") or {}).items())


def check_expected(advisor: Advisor, verdict: str | None = None, profile: str | None = None,
                   task_approaches: Iterable[str] = ()) -> dict[str, Any]:
    """A reviewer's expectation, checked against the rules: ``TASK=APPROACH`` pairs as typed."""
    expected: dict[str, Any] = {}
    if verdict is not None:
        if verdict not in VERDICTS:
            raise AdvisorError(f"expected verdict must be one of {', '.join(VERDICTS)}, got {verdict!r}")
        expected["verdict"] = verdict
    if profile is not None:
        known = [p.id for p in advisor.rules.profiles]
        if profile not in known:
            raise AdvisorError(f"expected profile must be one of {', '.join(known)}, got {profile!r}")
        expected["profile"] = profile
    pairs: dict[str, str] = {}
    for pair in task_approaches:
        task, sep, approach = pair.partition("=")
        task, approach = task.strip(), approach.strip()
        if not sep or not task or not approach:
            raise AdvisorError(f"expected approach must be TASK=APPROACH, got {pair!r}")
        if task not in advisor.rules.tasks:
            raise AdvisorError(f"expected approach: {task!r} is no task; tasks: {', '.join(advisor.rules.tasks)}")
        if approach not in APPROACHES:
            raise AdvisorError(f"expected approach for {task}: {approach!r} is no approach; approaches: "
                               f"{', '.join(APPROACHES)}")
        pairs[task] = approach
    if pairs:
        expected["approaches"] = pairs
    return expected


# -- fitting a dialog -------------------------------------------------------------------------------
def misfit(dialog: Dialog, engine: Engine, answers: Mapping[str, Any]) -> str | None:
    """Why ``answers`` cannot be replayed through ``dialog``, or None: on the path they take, a
    question that must be answered and was not, or an answer the question no longer takes."""
    qid: str | None = dialog.start
    seen: set[str] = set()
    while qid is not None and qid != FINISH and qid not in seen:
        seen.add(qid)
        question = dialog.question(qid)
        value = answers.get(qid)
        if value is None:
            if not question.skippable:
                return f"no answer to '{qid}', which this dialog asks and does not let be skipped"
        elif question.takes_options:
            values = value if isinstance(value, list) else [value]
            if question.type == "single" and isinstance(value, list):
                return f"'{qid}' takes one answer here, the stored one has {len(values)}"
            unknown = [v for v in values if question.option(str(v)) is None]
            if unknown:
                return f"the answer {unknown[0]!r} to '{qid}' is no option of this dialog"
        elif question.type == "number":
            if isinstance(value, bool) or not isinstance(value, int | float):
                return f"the answer to '{qid}' is no number"
            if (question.minimum is not None and value < question.minimum) or (
                    question.maximum is not None and value > question.maximum):
                return f"the answer {value:g} to '{qid}' is outside this dialog's limits"
        targets = question.targets()
        qid = engine.route(qid, answers) or (targets[0] if targets else None)
    return None


# -- replay -----------------------------------------------------------------------------------------
@dataclass
class Item:
    id: int
    before: dict[str, Any]
    after: dict[str, Any]
    changes: list[str]
    review: str | None
    expected: dict[str, Any] | None = None  # what the reviewer holds to be right (see expectation())
    ref: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "ref": self.ref, "before": self.before, "after": self.after,
                "changes": self.changes, "review": self.review, "expected": self.expected}


@dataclass
class Report:
    conversations: int = 0
    items: list[Item] = field(default_factory=list)  # every replayed conversation, changed or not
    not_replayable: list[dict[str, Any]] = field(default_factory=list)  # {id, ref, why}
    rules_version: str = ""  # the candidate's

    @property
    def changed(self) -> list[Item]:
        return [item for item in self.items if item.changes]

    def reviewed(self) -> dict[str, Any]:
        agreed = [i for i in self.items if i.review == "agree"]
        disagreed = [i for i in self.items if i.review == "disagree"]
        testable = [i for i in self.items if i.expected]
        return {
            "agreed": len(agreed),
            "disagreed": len(disagreed),
            "agreed_changed": sum(1 for i in agreed if i.changes),
            "disagreed_changed": sum(1 for i in disagreed if i.changes),
            "marks_with_expectation": len(testable),
            "agreement_before": _share(meets(i.before, i.expected) for i in testable),
            "agreement_after": _share(meets(i.after, i.expected) for i in testable),
        }

    def as_json(self, all_items: bool = False) -> dict[str, Any]:
        shown = self.items if all_items else self.changed
        return {
            "conversations": self.conversations,
            "changed": len(self.changed),
            "not_replayable": len(self.not_replayable),
            "rules_version": self.rules_version,
            "items": [i.as_json() for i in shown],
            "not_replayable_items": self.not_replayable,
            "reviewed": self.reviewed(),
        }


def _share(hits: Iterable[bool]) -> float | None:
    values = list(hits)
    return round(sum(values) / len(values), 4) if values else None


def replay(conversations: Iterable[Conversation], reviews: Mapping[int, Mapping[str, Any]],
           candidate: Advisor, baseline: Advisor | None = None,
           progress: Callable[[int], None] | None = None) -> Report:
    """Each conversation with a recommendation, re-run through ``candidate``; compared with what the
    person was told, or with ``baseline``'s advice for the same answers when one is given."""
    engine = Engine(candidate.dialog, candidate.recommend)
    report = Report(rules_version=candidate.rules.version)
    speakers: dict[tuple[int, str], Advisor] = {}

    def speaking(advisor: Advisor, language: str) -> Advisor:  # the person's own words read in their language
        key = (id(advisor), language)
        if key not in speakers:
            speakers[key] = advisor.in_language(*spoken(advisor.dialog, language))
        return speakers[key]

    for count, conversation in enumerate(conversations, 1):
        if progress is not None:
            progress(count)
        stored = conversation.recommendation
        if not stored:
            continue  # in progress, or stopped before the advice: nothing to replay
        report.conversations += 1
        answers = conversation.state.answers
        told = outcome(stored)
        why = misfit(candidate.dialog, engine, answers)
        if why is not None:
            report.not_replayable.append({"id": conversation.id, "ref": conversation.ref, "why": why})
            continue
        language = conversation.language
        before = told if baseline is None else outcome(speaking(baseline, language).recommend(answers))
        after = outcome(speaking(candidate, language).recommend(answers))
        review = reviews.get(conversation.id)
        mark = review.get("verdict") if review else None
        report.items.append(Item(conversation.id, before, after, changes(before, after), mark,
                                 expectation(review, told), conversation.ref))
    return report


def agreement(report: Report) -> tuple[int, int]:
    """(marks the candidate matches, marks with an expectation) of a replay."""
    testable = [i for i in report.items if i.expected]
    return sum(1 for i in testable if meets(i.after, i.expected)), len(testable)
