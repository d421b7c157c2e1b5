"""The advice lab on the command line: ``replay`` and ``mark`` (advisor/lab.py, advisor/lab_cli.py).

Every command runs as ``python bot.py ...`` over a database the console filled with the personas
(four completed conversations, one in progress; tests/test_review.py's populate()).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml

from advisor.advice import load_advisor
from advisor.dialog import load_dialog
from advisor.lab import changes, expectation, meets, outcome
from advisor.render import TEMPLATES_DIR
from advisor.service import DEFAULT_DIALOG, DIALOGS_DIR
from advisor.store import Store
from tests.conftest import run_bot_here as run_bot
from tests.test_review import IDS, copy_db, populate
from tests.test_review_cli import one_error_line


def ok(*args: str, db: Path) -> Any:
    result = run_bot(*args, db=db)
    assert result.returncode == 0, (args, result.stdout[-2000:], result.stderr)
    assert "Traceback" not in result.stderr
    return result

RULES = DIALOGS_DIR / "advice.yaml"
ITEM_KEYS = {"id", "ref", "before", "after", "changes", "review", "expected"}
OUTCOME_KEYS = {"verdict", "readiness_score", "profile", "functions", "engagement_model", "net_cash",
                "rules_version"}


@pytest.fixture(scope="module")
def base_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("lab") / "base.db"
    populate(db)
    return db


@pytest.fixture
def db(base_db: Path, tmp_path: Path) -> Path:
    return copy_db(base_db, tmp_path / "advisor.db")


def stored_bytes(db: Path) -> bytes:
    return b"".join(p.read_bytes() for p in (db, Path(f"{db}-wal")) if p.exists())


def answers_of(db: Path) -> dict[int, dict[str, Any]]:
    with sqlite3.connect(db) as connection:
        rows = connection.execute("SELECT id, answers FROM conversations WHERE status = 'completed'").fetchall()
    return {cid: json.loads(answers) for cid, answers in rows}


def candidate(tmp_path: Path, old: str, new: str, name: str = "candidate.yaml") -> Path:
    text = RULES.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path = tmp_path / name
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


def replay_json(db: Path, *args: str) -> dict[str, Any]:
    return json.loads(ok("replay", *args, "--format", "json", db=db).stdout)


# -- replay ----------------------------------------------------------------------------------------
def test_replay_with_unchanged_rules_changes_nothing_and_writes_nothing(db: Path):
    before = stored_bytes(db)
    report = replay_json(db, "--rules", str(RULES), "--all")
    assert set(report) >= {"conversations", "changed", "not_replayable", "items", "reviewed"}
    assert (report["conversations"], report["changed"], report["not_replayable"]) == (4, 0, 0)
    assert len(report["items"]) == 4  # --all lists the unchanged ones too
    for item in report["items"]:
        assert set(item) == ITEM_KEYS and item["changes"] == [] and item["before"] == item["after"] | {
            "rules_version": item["before"]["rules_version"]}
        assert set(item["after"]) == OUTCOME_KEYS
        assert all(set(f) == {"id", "approach", "suggested"} for f in item["after"]["functions"])
    assert set(report["reviewed"]) >= {"agreed", "disagreed", "agreed_changed", "disagreed_changed",
                                       "agreement_before", "agreement_after"}
    assert stored_bytes(db) == before
    table = ok("replay", "--rules", str(RULES), db=db).stdout
    assert "4 conversation(s) with a recommendation" in table and "0 would change" in table


def test_replay_with_a_changed_weight_lists_exactly_the_conversations_it_changes(db: Path, tmp_path: Path):
    rules = candidate(tmp_path, "{id: process_documented, points: 15,", "{id: process_documented, points: 27,")
    report = replay_json(db, "--rules", str(rules))
    documented = {cid for cid, answers in answers_of(db).items() if answers.get("process") == "documented"}
    assert documented and len(documented) < 4  # the store holds both kinds
    assert {item["id"] for item in report["items"]} == documented
    for item in report["items"]:
        assert "readiness_score" in item["changes"]
        assert item["after"]["readiness_score"] == min(100, item["before"]["readiness_score"] + 12)
        assert item["after"]["rules_version"] != item["before"]["rules_version"]
    assert report["changed"] == len(documented) and report["conversations"] == 4
    # the table names them too, with the fields that change
    table = ok("replay", "--rules", str(rules), db=db).stdout
    assert f"{len(documented)} would change" in table and "readiness_score" in table


def test_a_changed_approach_rule_shows_the_task_and_the_verdict(db: Path, tmp_path: Path):
    # every task automated first while the hours are at most 400: the threshold moves approaches
    rules = candidate(tmp_path, "too_little_to_hand_over, when: {question: hours, at_most: 3}}",
                      "too_little_to_hand_over, when: {question: hours, at_most: 400}}")
    report = replay_json(db, "--rules", str(rules))
    assert report["changed"] >= 1
    for item in report["items"]:
        assert "functions" in item["changes"]
        assert all(f["approach"] == "automate_first" for f in item["after"]["functions"] if not f["suggested"])
        assert item["after"]["verdict"] == "not_now"  # nothing is left to hand over
    table = ok("replay", "--rules", str(rules), db=db).stdout
    assert "=automate_first" in table  # the tasks whose approach moves, before and after


def test_answers_that_do_not_fit_a_candidate_dialog_are_set_apart_with_why(db: Path, tmp_path: Path):
    dialog = yaml.safe_load(DEFAULT_DIALOG.read_text(encoding="utf-8"))
    industry = next(q for q in dialog["questions"] if q["id"] == "industry")
    industry["options"] = [o for o in industry["options"] if o["value"] != "manufacturing"]
    dialog["advice"] = str(RULES)
    path = tmp_path / "dialog.yaml"
    path.write_text(yaml.safe_dump(dialog, sort_keys=False, allow_unicode=True), encoding="utf-8")
    report = replay_json(db, "--rules", str(RULES), "--dialog", str(path))
    assert report["not_replayable"] == 1 and report["conversations"] == 4
    [apart] = report["not_replayable_items"]
    assert apart["id"] == IDS["established_cost_cutter"]
    assert apart["why"] == "the answer 'manufacturing' to 'industry' is no option of this dialog"
    # a question the candidate asks that was never answered
    with sqlite3.connect(db) as connection:
        connection.execute("UPDATE conversations SET answers = json_remove(answers, '$.process') WHERE id = 3")
    connection.close()
    report = replay_json(db, "--rules", str(RULES))
    assert report["not_replayable_items"] == [{"id": 3, "ref": report["not_replayable_items"][0]["ref"],
                                               "why": "no answer to 'process', which this dialog asks and does "
                                                      "not let be skipped"}]
    table = ok("replay", "--rules", str(RULES), db=db).stdout
    assert "1 cannot be replayed" in table and "no answer to 'process'" in table


def test_the_baseline_is_what_people_were_told_or_what_the_current_rules_give(db: Path):
    with sqlite3.connect(db) as connection:  # as if conversation 1 was advised by older rules
        connection.execute("UPDATE conversations SET recommendation = json_set(recommendation, '$.readiness_score',"
                           " 3, '$.profile', 'reactive') WHERE id = 1")
    connection.close()
    told = replay_json(db, "--rules", str(RULES))
    assert [(i["id"], i["changes"]) for i in told["items"]] == [(1, ["readiness_score", "profile"])]
    assert replay_json(db, "--rules", str(RULES), "--baseline", "current")["changed"] == 0


def test_replay_filters_like_export(db: Path):
    assert replay_json(db, "--rules", str(RULES), "--ref", "no-such-ref")["conversations"] == 0
    assert replay_json(db, "--rules", str(RULES), "--status", "in_progress")["conversations"] == 0
    assert replay_json(db, "--rules", str(RULES), "--since", "2099-01-01")["conversations"] == 0


@pytest.mark.parametrize(("args", "message"), [
    (("--rules", "nowhere.yaml"), "error: --rules: no file nowhere.yaml"),
    (("--rules", str(RULES), "--since", "yesterday"), "error: --since: expected a date"),
])
def test_replay_errors_are_one_line(db: Path, args: tuple[str, ...], message: str):
    assert one_error_line(run_bot("replay", *args, db=db)).startswith(message)


def test_a_broken_rules_file_names_its_problems(db: Path, tmp_path: Path):
    rules = candidate(tmp_path, "{id: process_documented, points: 15,", "{id: process_documented, points: lots,")
    result = run_bot("replay", "--rules", str(rules), db=db)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "readiness.drivers" in result.stderr and str(rules) in result.stderr


def test_replay_of_an_empty_or_missing_database(tmp_path: Path):
    report = replay_json(tmp_path / "none.db", "--rules", str(RULES))
    assert (report["conversations"], report["changed"], report["items"]) == (0, 0, [])
    assert not (tmp_path / "none.db").exists()


# -- marks -----------------------------------------------------------------------------------------
def test_marks_with_expectations_and_the_agreement_they_give(db: Path, tmp_path: Path):
    ok("mark", "1", "--agree", "--tag", "lab", db=db)
    ok("mark", "2", "--disagree", "--expected-profile", "strategic", "--note", "they are ready", db=db)
    ok("mark", "3", "--disagree", db=db)  # says it is wrong, not what is right
    store = Store.open(db, read_only=True)
    try:
        assert store.review(1)["verdict"] == "agree" and store.review(1)["tags"] == ["lab"]
        assert store.review(2)["expected"] == {"profile": "strategic"} and store.review(2)["note"] == "they are ready"
        assert store.review(3)["expected"] is None and store.review(3)["reviewed"] is True
        told = store.get(2).recommendation
        agreed = store.get(1).recommendation
    finally:
        store.close()
    assert told is not None and told["profile"] != "strategic" and agreed is not None
    unchanged = replay_json(db, "--rules", str(RULES))["reviewed"]
    assert unchanged == {"agreed": 1, "disagreed": 2, "agreed_changed": 0, "disagreed_changed": 0,
                         "marks_with_expectation": 2, "agreement_before": 0.5, "agreement_after": 0.5}
    # rules under which every profile is strategic meet the disagree; the agree still holds only if
    # what was agreed with was strategic too
    rules = candidate(tmp_path, "{id: strategic, min: 65}", "{id: strategic, min: 0}")
    after = replay_json(db, "--rules", str(rules))["reviewed"]
    kept = agreed["profile"] == "strategic"
    assert (after["agreement_before"], after["agreement_after"]) == (0.5, 1.0 if kept else 0.5)
    assert after["agreed_changed"] == (0 if kept else 1) and after["disagreed_changed"] >= 1
    table = ok("replay", "--rules", str(rules), db=db).stdout
    assert f"Agreement with the marks: 50% before, {100 if kept else 50}% after." in table


def test_a_mark_replaces_the_verdict_keeps_the_note_and_adds_tags(db: Path):
    ok("mark", "4", "--disagree", "--expected-verdict", "not_now", "--expected-approach",
       "telemarketing=keep_in_house", "--note", "first", "--tag", "a", db=db)
    result = ok("mark", "4", "--agree", "--tag", "b", db=db)
    assert result.stderr.strip() == "conversation 4: agree"
    store = Store.open(db, read_only=True)
    try:
        review = store.review(4)
    finally:
        store.close()
    assert (review["verdict"], review["expected"], review["note"], review["tags"]) == ("agree", None, "first",
                                                                                      ["a", "b"])


@pytest.mark.parametrize(("args", "message"), [
    (("1", "--agree", "--expected-profile", "strategic"), "error: --expected-verdict, --expected-profile and"),
    (("1", "--disagree", "--expected-profile", "visionary"), "error: expected profile must be one of"),
    (("1", "--disagree", "--expected-approach", "bookkeeping"), "error: expected approach must be TASK=APPROACH"),
    (("1", "--disagree", "--expected-approach", "juggling=managed_service"), "error: expected approach: 'juggling'"),
    (("1", "--disagree", "--expected-approach", "bookkeeping=magic"), "error: expected approach for bookkeeping"),
    (("5", "--agree"), "error: conversation 5 has no recommendation yet"),
    (("1", "--disagree", "--expected-approach", "data_entry=managed_service"),
     "error: expected approach: 'data_entry' is not among conversation 1's tasks"),
    (("99", "--agree"), "error: no conversation 99"),
])
def test_mark_errors_are_one_line_and_change_nothing(db: Path, args: tuple[str, ...], message: str):
    before = stored_bytes(db)
    assert one_error_line(run_bot("mark", *args, db=db)).startswith(message)
    assert stored_bytes(db) == before


def test_mark_needs_agree_or_disagree(db: Path):
    result = run_bot("mark", "1", db=db)
    assert result.returncode == 2 and "one of the arguments --agree --disagree is required" in result.stderr


def test_yaml_nested_too_deep_or_too_large_is_refused_before_it_is_built(db: Path, tmp_path: Path):
    deep = tmp_path / "deep.yaml"
    deep.write_text("a: " + "[" * 50_000 + "]" * 50_000 + "\n", encoding="utf-8")  # crashed PyYAML's C parser
    assert one_error_line(run_bot("replay", "--rules", str(deep), db=db)) == (
        f"error: {deep}: nested deeper than 40 levels: not a file the advisor reads")
    bomb = tmp_path / "bomb.yaml"
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]" for i in range(1, 12)]
    bomb.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run_bot("replay", "--rules", str(bomb), db=db)
    assert "more than 100,000 values" in one_error_line(result)


@pytest.mark.parametrize(("old", "new", "named"), [
    ("keep_in_house: [goals_and_kpis, customer_relationships]", "keep_in_house: 5", "a value of a shape"),
    ("partner_rate: [25, 45]", "partner_rate: [25, 1.0e+308]", "telemarketing.partner_rate: expected [low, high]"),
    ("includes_any: [scale, stay_ahead, reposition, valuation]", "includes_any: [{a: 1}, stay_ahead]",
     "includes_any: expected a value or a list of values"),
])
def test_rules_of_a_shape_no_check_expected_are_one_error_not_a_crash(db: Path, tmp_path: Path, old: str,
                                                                      new: str, named: str):
    text = RULES.read_text(encoding="utf-8")
    assert old in text
    rules = tmp_path / "odd.yaml"
    rules.write_text(text.replace(old, new), encoding="utf-8")
    result = run_bot("replay", "--rules", str(rules), db=db)
    assert result.returncode == 1 and "Traceback" not in result.stderr and named in result.stderr, result.stderr


# -- the rules' version -----------------------------------------------------------------------------
def test_the_rules_version_is_a_hash_of_their_content_not_their_layout(tmp_path: Path):
    dialog = load_dialog(DEFAULT_DIALOG, TEMPLATES_DIR)
    from advisor.advice_rules import load_rules

    current = load_rules(RULES, dialog).version
    assert current.startswith("2-") and len(current) == 14
    commented = candidate(tmp_path, "version: 2", "version: 2  # a comment changes nothing", "commented.yaml")
    assert load_rules(commented, dialog).version == current
    weighted = candidate(tmp_path, "{id: process_documented, points: 15,", "{id: process_documented, points: 16,")
    assert load_rules(weighted, dialog).version != current
    advice = load_advisor(dialog).recommend({"stage": "growing"})
    assert advice["rules_version"] == current


def test_what_a_mark_expects_and_when_an_outcome_meets_it():
    told = outcome({"verdict": "hand_over", "readiness_score": 50, "profile": "tactical",
                    "functions": [{"id": "bookkeeping", "approach": {"id": "managed_service"}},
                                  {"id": "it_support", "approach": {"id": "managed_service"}, "suggested": True}],
                    "engagement_model": {"id": "managed_service"}, "capacity": {}})
    agree = expectation({"verdict": "agree"}, told)
    assert agree == {"verdict": "hand_over", "profile": "tactical", "approaches": {"bookkeeping": "managed_service"}}
    assert meets(told, agree)
    moved = {**told, "functions": [{"id": "bookkeeping", "approach": "automate_first", "suggested": False}]}
    assert not meets(moved, agree) and changes(told, moved) == ["functions"]
    wanted = expectation({"verdict": "disagree", "expected": {"approaches": {"bookkeeping": "automate_first"}}}, told)
    assert meets(moved, wanted) and not meets(told, wanted)
    assert expectation({"verdict": "disagree", "expected": None}, told) is None
    assert expectation(None, told) is None and not meets(told, None)
