"""The dialog and its advice rules are checked before use: every problem is named as ``file: key: message``.

Broken dialogs live in ``tests/fixtures/broken/``: each ``*.yaml`` there is a dialog with one kind of
problem (``rules_*.yaml`` are the broken advice rules that ``advice_*.yaml`` dialogs point to).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from advisor import AdvisorError
from advisor.advice import Advisor, load_rules
from advisor.dialog import FINISH, QUESTION_TYPES, TEMPLATE_FORMATS, Dialog, DialogError, load_dialog
from advisor.engine import Engine
from advisor.render import TEMPLATES_DIR
from advisor.service import DEFAULT_DIALOG, build_service
from tests.conftest import FIXTURES, run_bot

BROKEN = FIXTURES / "broken"
UNKNOWN_CONDITION = (
    "unknown condition 'contains' "
    "(known: answered, at_least, at_most, equals, in, includes, includes_any, all, any, not)"
)

# Each broken dialog -> every problem it must be refused with, as "file: key: message" with the file
# relative to tests/fixtures/broken/. The lists are complete: no other problem may be reported.
DIALOG_PROBLEMS = {
    "unknown_target.yaml": [
        "unknown_target.yaml: questions.tasks.next[0].to: unknown question 'foo'",
    ],
    "unknown_option_target.yaml": [
        "unknown_option_target.yaml: questions.stage.options.growing.next: unknown question 'bar'",
    ],
    "unreachable.yaml": [
        "unreachable.yaml: questions.orphan: unreachable from start 'stage'",
    ],
    "never_finishes.yaml": [
        "never_finishes.yaml: questions.stage: no path from here reaches the recommendation",
        "never_finishes.yaml: questions.first: no path from here reaches the recommendation",
        "never_finishes.yaml: questions.second: no path from here reaches the recommendation",
        "never_finishes.yaml: questions.first.next: loops back (first -> second -> first)",
    ],
    "loop.yaml": [
        "loop.yaml: questions.again.next: loops back (again -> more -> again)",
    ],
    "duplicate_id.yaml": [
        "duplicate_id.yaml: questions.stage: duplicate id 'stage'",
    ],
    "duplicate_option.yaml": [
        "duplicate_option.yaml: questions.stage.options.early: duplicate option 'early'",
    ],
    "duplicate_key.yaml": [
        "duplicate_key.yaml: line 13: duplicate key 'next'",
    ],
    "unknown_condition.yaml": [
        f"unknown_condition.yaml: questions.tasks.next[0].when: {UNKNOWN_CONDITION}",
    ],
    "condition_unknown_question.yaml": [
        "condition_unknown_question.yaml: questions.tasks.next[0].when: unknown question 'budget'",
    ],
    "options_without_target.yaml": [
        "options_without_target.yaml: questions.stage.options: "
        "options without a target (growing, established) and no 'next'",
    ],
    "last_branch_when.yaml": [
        "last_branch_when.yaml: questions.tasks.next: the last branch needs no 'when', so every answer has a way on",
    ],
    "missing_template.yaml": [
        f"missing_template.yaml: finish.template: missing template 'verdict.txt' in {TEMPLATES_DIR}",
        f"missing_template.yaml: finish.template: missing template 'verdict.html' in {TEMPLATES_DIR}",
    ],
    "bad_condition_branch.yaml": [
        f"bad_condition_branch.yaml: questions.tasks.next[0].when: {UNKNOWN_CONDITION}",
        "bad_condition_branch.yaml: questions.tasks.next[1].to: unknown question 'foo'",
    ],
    "title_not_text.yaml": [
        "title_not_text.yaml: title: expected text",
    ],
}
# Problems that must be among those reported: a question with no way on, or one left out for its
# unknown type, may also be reported by what follows from it (nothing beyond it reaches the end ...).
DIALOG_PROBLEMS_AMONG = {
    "no_next.yaml": [
        "no_next.yaml: questions.notes: missing 'next'",
    ],
    "unknown_type.yaml": [
        "unknown_type.yaml: questions.stage.type: unknown type 'dropdown' "
        "(known: single, multi, number, text, contact)",
    ],
}
# Valid dialogs whose advice rules are broken: load_rules must refuse them.
RULES_PROBLEMS = {
    "advice_unknown_question.yaml": [
        "rules_unknown_question.yaml: readiness.drivers[1].when: unknown question 'budget'",
        "rules_unknown_question.yaml: functions.hours_question: unknown question 'effort'",
    ],
    "advice_unknown_task.yaml": [
        "rules_unknown_task.yaml: functions.tasks.payroll: 'payroll' is not an option of question 'tasks'",
        "rules_unknown_task.yaml: functions.core_owns.large: expected a list of known task ids",
        "rules_unknown_task.yaml: functions.suggestions[0]: expected {id, task (a known task id), approach "
        "(strategic_partner, managed_service, specialist_vendor), score, when}",
    ],
}
DIALOG_IDS = {
    "unknown_target.yaml": "unknown target in next",
    "unknown_option_target.yaml": "unknown target in an option's next",
    "unreachable.yaml": "unreachable question",
    "no_next.yaml": "question with no way on",
    "never_finishes.yaml": "loop that never reaches the recommendation",
    "loop.yaml": "loop with a way out",
    "duplicate_id.yaml": "duplicate question id",
    "duplicate_option.yaml": "duplicate option value",
    "duplicate_key.yaml": "duplicate yaml key",
    "unknown_condition.yaml": "unknown condition name",
    "condition_unknown_question.yaml": "condition on an unknown question",
    "options_without_target.yaml": "single options without targets and no next",
    "last_branch_when.yaml": "last branch with a when",
    "missing_template.yaml": "missing finish template",
    "bad_condition_branch.yaml": "each branch named by its own index",
    "title_not_text.yaml": "title not text",
    "unknown_type.yaml": "unknown question type",
    "advice_unknown_question.yaml": "advice rules naming an unknown question",
    "advice_unknown_task.yaml": "advice rules naming an unknown task",
}
PROBLEM_LINE = re.compile(r"^(?P<file>\S+\.yaml): (?P<key>[^:]+): (?P<message>.+)$")


def _full(problems: list[str]) -> list[str]:
    return [f"{BROKEN}/{problem}" for problem in problems]


def _refusal(path: Path) -> list[str]:
    """Every problem load_dialog (then load_rules) reports for ``path``; fails the test if it loads."""
    with pytest.raises(DialogError) as caught:
        dialog = load_dialog(path, TEMPLATES_DIR)
        load_rules(dialog.advice_path, dialog)
    return caught.value.errors


def _cases(table: dict[str, list[str]]) -> list[pytest.ParameterSet]:
    return [pytest.param(name, problems, id=DIALOG_IDS[name]) for name, problems in sorted(table.items())]


def _broken_dialogs() -> list[str]:
    return sorted(p.name for p in BROKEN.glob("*.yaml") if not p.name.startswith("rules_"))


# -- each problem, named with file and key --------------------------------------------------------

@pytest.mark.parametrize(("name", "problems"), _cases(DIALOG_PROBLEMS))
def test_each_dialog_problem_is_named_with_file_and_key(name: str, problems: list[str]) -> None:
    with pytest.raises(DialogError) as caught:
        load_dialog(BROKEN / name, TEMPLATES_DIR)
    assert sorted(caught.value.errors) == sorted(_full(problems))


@pytest.mark.parametrize(("name", "problems"), _cases(DIALOG_PROBLEMS_AMONG))
def test_dialog_problem_is_among_those_named(name: str, problems: list[str]) -> None:
    with pytest.raises(DialogError) as caught:
        load_dialog(BROKEN / name, TEMPLATES_DIR)
    for problem in _full(problems):
        assert problem in caught.value.errors


@pytest.mark.parametrize(("name", "problems"), _cases(RULES_PROBLEMS))
def test_advice_rules_problem_is_named_with_rules_file_and_key(name: str, problems: list[str]) -> None:
    dialog = load_dialog(BROKEN / name, TEMPLATES_DIR)  # the dialog itself is fine
    assert dialog.advice_path == BROKEN / problems[0].split(":")[0]
    with pytest.raises(DialogError) as caught:
        load_rules(dialog.advice_path, dialog)
    assert sorted(caught.value.errors) == sorted(_full(problems))


def test_yaml_syntax_error_is_named_with_file_and_line() -> None:
    path = BROKEN / "yaml_syntax.yaml"
    with pytest.raises(DialogError) as caught:
        load_dialog(path, TEMPLATES_DIR)
    [error] = caught.value.errors
    assert error.startswith(f"{path}: line 12: ")
    assert len(error.splitlines()) == 1


@pytest.mark.parametrize("missing", TEMPLATE_FORMATS)
def test_finish_template_is_needed_in_every_channel_format(tmp_path: Path, missing: str) -> None:
    for fmt in TEMPLATE_FORMATS:
        if fmt != missing:
            (tmp_path / f"recommendation.{fmt}").write_text("{{ rec }}", encoding="utf-8")
    with pytest.raises(DialogError) as caught:
        load_dialog(DEFAULT_DIALOG, tmp_path)
    assert caught.value.errors == [
        f"{DEFAULT_DIALOG}: finish.template: missing template 'recommendation.{missing}' in {tmp_path}"
    ]


# -- a broken dialog never half-loads ---------------------------------------------------------------

def test_broken_dialog_reports_every_problem_not_only_the_first() -> None:
    path = BROKEN / "many_problems.yaml"
    with pytest.raises(DialogError) as caught:
        load_dialog(path, TEMPLATES_DIR)
    error = caught.value
    assert isinstance(error, AdvisorError)
    assert sorted(error.errors) == sorted(_full([
        "many_problems.yaml: version: expected a whole number from 1",
        "many_problems.yaml: questions.stage.options.early: duplicate option 'early'",
        "many_problems.yaml: questions.stage.options.growing.next: unknown question 'bar'",
        "many_problems.yaml: questions.tasks.next[0].when: unknown question 'budget'",
        "many_problems.yaml: questions.tasks.next: the last branch needs no 'when', so every answer has a way on",
        f"many_problems.yaml: questions.notes.next[0].when: {UNKNOWN_CONDITION}",
        "many_problems.yaml: questions.extra.type: unknown type 'essay' (known: single, multi, number, text, contact)",
        f"many_problems.yaml: finish.template: missing template 'verdict.txt' in {TEMPLATES_DIR}",
        f"many_problems.yaml: finish.template: missing template 'verdict.html' in {TEMPLATES_DIR}",
    ]))
    assert str(error) == f"{error.errors[0]} (and {len(error.errors) - 1} more)"


def test_graph_problems_are_reported_alongside_reference_problems() -> None:
    path = BROKEN / "target_and_unreachable.yaml"
    with pytest.raises(DialogError) as caught:
        load_dialog(path, TEMPLATES_DIR)
    assert sorted(caught.value.errors) == sorted(_full([
        "target_and_unreachable.yaml: questions.notes.next[0].to: unknown question 'foo'",
        "target_and_unreachable.yaml: questions.orphan: unreachable from start 'stage'",
    ]))


def test_service_is_not_built_from_a_broken_dialog(fresh_db: Path) -> None:
    with pytest.raises(DialogError):
        build_service(fresh_db, BROKEN / "many_problems.yaml")
    assert not fresh_db.exists()


@pytest.mark.parametrize("name", ["unhashable_key.yaml", "start_not_id.yaml"])
def test_odd_yaml_values_are_problems_not_crashes(name: str) -> None:
    errors = _refusal(BROKEN / name)
    assert errors and all(e.startswith(f"{BROKEN / name}: ") for e in errors)
    expected_key = {"unhashable_key.yaml": "line 9", "start_not_id.yaml": "start"}[name]
    assert any(e.startswith(f"{BROKEN / name}: {expected_key}: ") for e in errors)


def test_file_that_is_not_utf8_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"version: 1\ntitle: Caf\xe9 check-up\n")
    with pytest.raises(DialogError) as caught:
        load_dialog(path, TEMPLATES_DIR)
    [error] = caught.value.errors
    assert error.startswith(f"{path}: ")


def test_option_target_on_a_multi_question_is_refused_or_followed(tmp_path: Path) -> None:
    path = tmp_path / "multi_next.yaml"
    path.write_text(
        "version: 1\nstart: tasks\nfinish: {template: recommendation}\nquestions:\n"
        "  - id: tasks\n    type: multi\n    text: Which tasks?\n    options:\n"
        "      - {value: support, label: Support, next: notes}\n"
        "      - {value: payroll, label: Payroll}\n"
        "    next: recommendation\n"
        "  - {id: notes, type: text, text: Tell us about support., next: recommendation}\n",
        encoding="utf-8",
    )
    try:
        dialog = load_dialog(path, TEMPLATES_DIR)
    except DialogError as error:  # refusing it is fine, if the option is named
        assert any(f"{path}: questions.tasks.options.support.next" in e for e in error.errors)
        return
    engine = Engine(dialog, lambda answers: dict(answers))
    step = engine.choose(engine.start().state, ["support"])
    assert step.kind == "ask" and step.question is not None
    assert step.question.id == "notes"  # validation counted `notes` as reachable through this option


@pytest.mark.parametrize(
    ("checks", "problem"),
    [
        ("[{id: odd, when: {question: budget, at_least: 5}}]",
         "questions.hours.checks[0].when: unknown question 'budget'"),
        ("[{id: odd}]", "questions.hours.checks[0]: missing 'when'"),
        ("[{id: Odd Check, when: {question: hours, at_least: 5}}]",
         "questions.hours.checks[0]: expected a mapping with a lower-case id and 'when'"),
        ("{id: odd}", "questions.hours.checks: expected a list of {id, when}"),
        ("[{id: odd, when: {question: hours, bigger: 5}}]", "questions.hours.checks[0].when"),
    ],
)
def test_a_broken_check_is_named_with_file_and_key(tmp_path: Path, checks: str, problem: str) -> None:
    path = tmp_path / "checks.yaml"
    path.write_text(
        "version: 1\nstart: hours\nfinish: {template: recommendation}\nquestions:\n"
        f"  - {{id: hours, type: number, text: 'How many hours', checks: {checks}, next: recommendation}}\n",
        encoding="utf-8",
    )
    with pytest.raises(DialogError) as raised:
        load_dialog(path, TEMPLATES_DIR)
    assert any(e.startswith(f"{path}: {problem}") for e in raised.value.errors), raised.value.errors


def test_the_real_dialog_reads_back_what_cannot_be_right(dialog: Dialog) -> None:
    checks = {q.id: [c.id for c in q.checks] for q in dialog.questions.values() if q.checks}
    assert checks == {"size": ["pre_launch_but_large"], "hours": ["hours_beyond_team"], "owners": ["staff_but_solo"],
                      "process": ["owned_but_undone"], "past": ["partner_but_never"]}


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        pytest.param("  currency: USD\n", "", "capacity.currency", id="no currency"),
        pytest.param("\nversion: 2\n", "\nversion: one\n", "version", id="version not a number"),
        pytest.param("    solo: [5, 15]\n", "    solo: lots\n", "capacity.hours_by_size", id="hours not a range"),
        pytest.param("  partner_hours: [0.8, 1.1]", "  partner_hours: [1.1, 0.8]", "capacity.partner_hours",
                     id="range low above high"),
        pytest.param("        - {id: managed_service, because: monthly_close}\n",
                     "        - {id: outsource_it, because: monthly_close}\n", "functions.tasks.bookkeeping.approach",
                     id="unknown approach"),
    ],
)
def test_rules_that_load_never_crash_the_recommendation(
    tmp_path: Path, dialog: Dialog, old: str, new: str, key: str
) -> None:
    text = dialog.advice_path.read_text(encoding="utf-8")
    assert text.count(old) == 1
    path = tmp_path / "advice.yaml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    try:
        rules = load_rules(path, dialog)
    except DialogError as error:  # refusing the rules is fine, if the key is named
        assert any(e.startswith(f"{path}: {key}") for e in error.errors)
        return
    Advisor(dialog, rules).recommend({"size": "solo", "tasks": ["telemarketing"], "hours": 10})


# -- python bot.py check ------------------------------------------------------------------------------

def test_check_passes_the_real_dialog_with_its_question_count(dialog: Dialog, engine: Engine) -> None:
    result = run_bot("check")
    assert result.returncode == 0, result.stderr
    low, high = engine.path_lengths()
    assert "OK" in result.stdout
    assert f"{len(dialog.questions)} questions, {low} to {high} on any path" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_every_broken_fixture_has_its_problems_listed() -> None:
    listed = {*DIALOG_PROBLEMS, *DIALOG_PROBLEMS_AMONG, *RULES_PROBLEMS, "yaml_syntax.yaml", "many_problems.yaml",
              "target_and_unreachable.yaml", "unhashable_key.yaml", "start_not_id.yaml"}
    assert set(_broken_dialogs()) == listed
    rules_files = {p.name for p in BROKEN.glob("rules_*.yaml")}
    assert rules_files == {problems[0].split(":")[0] for problems in RULES_PROBLEMS.values()}


@pytest.mark.parametrize("name", _broken_dialogs())
def test_check_refuses_broken_fixture_listing_each_problem_without_traceback(name: str) -> None:
    path = BROKEN / name
    result = run_bot("check", str(path))
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    assert result.returncode == 1
    assert result.stdout == ""
    *problems, summary = result.stderr.splitlines()
    assert problems, result.stderr
    for line in problems:
        found = PROBLEM_LINE.match(line)
        assert found, f"not 'file: key: message': {line!r}"
        assert Path(found["file"]).parent == BROKEN
    assert summary == f"{len(problems)} problem(s) found"
    assert problems == _refusal(path)  # the same problems the library reports, every one of them


def test_check_of_a_missing_file_is_a_one_line_error() -> None:
    result = run_bot("check", "does/not/exist.yaml")
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    naming = [line for line in result.stderr.splitlines() if "does/not/exist.yaml" in line]
    assert len(naming) == 1
    assert naming[0].startswith("does/not/exist.yaml: cannot read: ")


# -- python bot.py diagram ----------------------------------------------------------------------------

def test_diagram_shows_every_question_and_the_branch_conditions(dialog: Dialog) -> None:
    result = run_bot("diagram")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "stateDiagram-v2" in lines
    states = {m[1] for line in lines if (m := re.match(r'\s*state "[^"]*" as (\w+)$', line))}
    assert states == {*dialog.questions, FINISH}
    when = dialog.question("tasks").branches[0].when
    assert when is not None
    branch = [line for line in lines if line.strip().startswith("tasks --> ") and f"[{when.describe()}]" in line]
    assert branch, result.stdout
    assert any(line.strip().startswith(f"[*] --> {dialog.start}") for line in lines)


def test_diagram_of_a_broken_dialog_is_an_error_without_traceback() -> None:
    result = run_bot("diagram", str(BROKEN / "unknown_target.yaml"))
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    assert f"{BROKEN}/unknown_target.yaml: questions.tasks.next[0].to: unknown question 'foo'" in result.stderr


# -- the real dialog ----------------------------------------------------------------------------------

def _every_path_length(dialog: Dialog) -> set[int]:
    found: set[int] = set()

    def walk(qid: str, asked: int) -> None:
        if qid == FINISH:
            found.add(asked)
            return
        for target in dialog.question(qid).targets():
            walk(target, asked + 1)

    walk(dialog.start, 0)
    return found


def test_every_path_of_the_real_dialog_asks_8_to_16_questions(dialog: Dialog, engine: Engine) -> None:
    """A consultant's intake, kept short: at most 16 questions on any path."""
    low, high = engine.path_lengths()
    assert 8 <= low <= high <= 16
    lengths = _every_path_length(dialog)
    assert (min(lengths), max(lengths)) == (low, high)


def test_real_dialog_uses_every_question_type(dialog: Dialog) -> None:
    assert {q.type for q in dialog.questions.values()} == set(QUESTION_TYPES)


def test_real_dialog_and_its_advice_rules_load(dialog: Dialog, advisor: Advisor) -> None:
    assert dialog.start in dialog.questions
    assert advisor.rules.tasks_question in dialog.questions
