"""The advice lab on the command line: ``replay`` and ``mark`` (``calibrate`` is ``advisor.calibrate``).

``bot.py`` parses the arguments; these functions load what they need, call ``advisor.lab`` and print.
Replay opens the database read-only: it never writes. Its words are in ``templates/lab/replay.txt``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tabulate import tabulate

from advisor import AdvisorError
from advisor.advice import Advisor, load_advisor
from advisor.advice_rules import load_rules
from advisor.dialog import load_dialog
from advisor.lab import Report, check_expected, replay
from advisor.render import TEMPLATES_DIR, build_environment
from advisor.reports import Progress, parse_since, printable
from advisor.settings import Settings
from advisor.store import Filters, Store


def candidate_advisor(rules: str | Path, dialog: str | Path) -> Advisor:
    """The rules of ``rules`` for the dialog of ``dialog`` (both checked: DialogError lists problems)."""
    candidate = load_dialog(Path(dialog), TEMPLATES_DIR)
    path = Path(rules)
    if not path.is_file():
        raise AdvisorError(f"--rules: no file {path}")
    return Advisor(candidate, load_rules(path, candidate))


def open_store(settings: Settings, writable: bool = False) -> Store | None:
    if not Path(settings.db).exists():
        return None
    return Store.open(settings.db, read_only=not writable)


def run_replay(store: Store | None, candidate: Advisor, baseline: Advisor | None, filters: Filters,
               quiet: bool = False) -> Report:
    """Replay the matching conversations (progress on standard error for long runs)."""
    if store is None:
        return replay([], {}, candidate, baseline)
    total = store.count(filters)
    progress = Progress(0 if quiet else total, "replayed")
    return replay(store.conversations(filters), store.reviews(), candidate, baseline,
                  progress=lambda _count: progress.tick())


def replay_command(args: argparse.Namespace, settings: Settings) -> int:
    candidate = candidate_advisor(args.rules, args.candidate_dialog or settings.dialog)
    baseline = load_advisor(load_dialog(settings.dialog, TEMPLATES_DIR)) if args.baseline == "current" else None
    filters = Filters(ref=args.ref, status=args.status, since=parse_since(args.since))
    store = open_store(settings)
    try:
        report = run_replay(store, candidate, baseline, filters)
    finally:
        if store is not None:
            store.close()
    if args.format == "json":
        print(json.dumps(report.as_json(all_items=args.all), ensure_ascii=False, indent=2))
        return 0
    print(printable(render_table(report, str(args.rules), args.baseline, args.all)))
    return 0


def render_table(report: Report, rules: str, baseline: str, all_items: bool = False) -> str:
    rows = []
    for item in report.items if all_items else report.changed:
        before, after = item.before, item.after
        rows.append([item.id, item.ref or "", ", ".join(item.changes) or "-",
                     _outcome(before), _outcome(after), item.review or ""])
        for task in _task_changes(before, after):
            rows.append(["", "", "", *task, ""])
    table = tabulate(rows, headers=["id", "ref", "changes", "before", "after", "review"], tablefmt="simple") \
        if rows else ""
    template = build_environment().get_template("lab/replay.txt")
    return template.render(report=report, reviewed=report.reviewed(), table=table, rules=rules,
                           baseline=baseline).strip("\n")


def _outcome(result: dict[str, Any]) -> str:
    model = result["engagement_model"] or "-"
    net = result["net_cash"]
    cash = "" if not net else f", net {net['low']:+,.0f}..{net['high']:+,.0f}/mo"
    return f"{result['verdict']} {result['readiness_score']} {result['profile']}, {model}{cash}"


def _task_changes(before: dict[str, Any], after: dict[str, Any]) -> list[tuple[str, str]]:
    """Each task whose approach differs: (before, after) as ``task=approach`` (or ``-``)."""
    was = {f["id"]: f["approach"] for f in before["functions"]}
    now = {f["id"]: f["approach"] for f in after["functions"]}
    return [(f"  {task}={was.get(task, '-')}", f"  {task}={now.get(task, '-')}")
            for task in dict.fromkeys([*was, *now]) if was.get(task) != now.get(task)]


def mark_command(args: argparse.Namespace, settings: Settings) -> int:
    """A reviewer's verdict on one conversation's advice, with what they expected on a disagree."""
    expected_given = args.expected_verdict or args.expected_profile or args.expected_approach
    if expected_given and not args.disagree:
        raise AdvisorError("--expected-verdict, --expected-profile and --expected-approach go with --disagree")
    advisor = load_advisor(load_dialog(settings.dialog, TEMPLATES_DIR))
    expected = check_expected(advisor, args.expected_verdict, args.expected_profile, args.expected_approach or ())
    if not Path(settings.db).exists():
        raise AdvisorError(f"no conversation {args.id}: nothing is stored yet")
    store = Store.open(settings.db)
    try:
        conversation = store.get(args.id)
        if conversation.recommendation is None:
            raise AdvisorError(f"conversation {args.id} has no recommendation yet: there is nothing to mark")
        named = [f["id"] for f in conversation.recommendation.get("functions") or () if not f.get("suggested")]
        for task in expected.get("approaches") or {}:  # a task they did not name could never be met
            if task not in named:
                raise AdvisorError(f"expected approach: {task!r} is not among conversation {args.id}'s tasks "
                                   f"({', '.join(named) or 'none'})")
        review = store.review(args.id)
        tags = _merged(review["tags"], args.tag or ())
        note = review["note"] if args.note is None else args.note
        verdict = "agree" if args.agree else "disagree"
        store.save_review(args.id, True, tags, note, verdict, expected)
    finally:
        store.close()
    wanted = "; ".join(f"{k} {v}" for k, v in expected.items() if k != "approaches")
    tasks = ", ".join(f"{t}={a}" for t, a in (expected.get("approaches") or {}).items())
    said = "; ".join(part for part in (wanted, tasks and f"approaches {tasks}") if part)
    print(f"conversation {args.id}: {verdict}" + (f", expected {said}" if said else ""), file=sys.stderr)
    return 0


def _merged(tags: Sequence[str], more: Sequence[str]) -> list[str]:
    return list(dict.fromkeys([*tags, *(t.strip() for t in more if t.strip())]))
