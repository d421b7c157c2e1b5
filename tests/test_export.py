"""``python bot.py export --format json``: exactly the fields PRODUCT.md promises to other tools."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from advisor.export import FIELDS, record, write_json
from advisor.store import Store
from tests.conftest import run_bot
from tests.test_console import FULL_WALK, FULL_WALK_ANSWERS, QUESTION_IDS, lines, no_tasks_walk, walk

EXPORT_KEYS = {"id", "channel", "user_id", "ref", "status", "started_at", "completed_at", "dialog_version",
               "language", "answers", "recommendation", "summary"}
PROFILES = {"reactive", "tactical", "strategic"}
VERDICTS = {"hand_over", "prepare_first", "not_now"}
APPROACHES = {"strategic_partner", "managed_service", "specialist_vendor", "automate_first", "keep_in_house",
              "not_yet"}
CASH_RANGES = ("hours_back_week", "partner_cost_month", "in_house_cash_saved_month", "net_cash_month")
DIALOG_VERSION = 2  # dialogs/outsourcing.yaml
REF = "spring_promo-2024"


def export(db: Path, *extra: str) -> list[dict[str, Any]]:
    result = run_bot("export", "--format", "json", *extra, db=db)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    data = json.loads(result.stdout)
    assert isinstance(data, list)
    return data


@pytest.fixture(scope="module")
def walked_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One completed console walk (alice, with a ref) and one in progress (bob, three answers)."""
    db = tmp_path_factory.mktemp("export") / "advisor.db"
    done = run_bot("console", "--user", "alice", "--ref", REF, stdin=walk(len(FULL_WALK)), db=db)
    assert done.returncode == 0, done.stderr
    midway = run_bot("console", "--user", "bob", stdin=walk(3), db=db)
    assert midway.returncode == 0, midway.stderr
    return db


@pytest.fixture(scope="module")
def exported(walked_db: Path) -> list[dict[str, Any]]:
    return export(walked_db)


def by_user(records: list[dict[str, Any]], user: str) -> dict[str, Any]:
    [found] = [r for r in records if r["user_id"] == user]
    return found


# -- no conversations -------------------------------------------------------------------------
def test_export_without_a_database_prints_an_empty_array_and_creates_no_file(fresh_db: Path):
    result = run_bot("export", "--format", "json", db=fresh_db)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
    assert result.stdout.strip() == "[]"
    assert not fresh_db.exists()


def test_export_of_an_empty_database_prints_an_empty_array(fresh_db: Path):
    Store.open(fresh_db).close()
    assert export(fresh_db) == []


def test_export_format_defaults_to_json(fresh_db: Path):
    result = run_bot("export", db=fresh_db)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_write_json_of_nothing_is_an_empty_array():
    out = io.StringIO()
    assert write_json([], out) == 0
    assert json.loads(out.getvalue()) == []


# -- the records ------------------------------------------------------------------------------
def test_export_lists_every_conversation_with_exactly_the_promised_keys(exported: list[dict[str, Any]]):
    assert len(exported) == 2
    for item in exported:
        assert set(item) == EXPORT_KEYS
    assert set(FIELDS) == EXPORT_KEYS
    assert len({item["id"] for item in exported}) == 2
    assert {item["language"] for item in exported} == {"en"}


def test_export_records_channel_user_status_and_version(exported: list[dict[str, Any]]):
    alice, bob = by_user(exported, "alice"), by_user(exported, "bob")
    assert alice["channel"] == bob["channel"] == "console"
    assert alice["status"] == "completed"
    assert bob["status"] == "in_progress"
    assert alice["dialog_version"] == bob["dialog_version"] == DIALOG_VERSION
    assert isinstance(alice["id"], int)


def test_export_timestamps(exported: list[dict[str, Any]]):
    alice, bob = by_user(exported, "alice"), by_user(exported, "bob")
    for item in (alice, bob):
        assert isinstance(item["started_at"], str) and item["started_at"]
    assert isinstance(alice["completed_at"], str)
    assert alice["completed_at"] >= alice["started_at"]
    assert bob["completed_at"] is None


def test_export_keeps_the_ref_given_to_the_console(exported: list[dict[str, Any]]):
    assert by_user(exported, "alice")["ref"] == REF
    assert by_user(exported, "bob")["ref"] is None


def test_export_answers_map_question_ids_to_values(exported: list[dict[str, Any]]):
    assert by_user(exported, "alice")["answers"] == FULL_WALK_ANSWERS
    assert by_user(exported, "bob")["answers"] == {"stage": "growing", "size": "small", "industry": "software"}


def test_export_recommendation_of_a_completed_conversation(exported: list[dict[str, Any]]):
    rec = by_user(exported, "alice")["recommendation"]
    assert isinstance(rec, dict)
    score = rec["readiness_score"]
    assert isinstance(score, int) and not isinstance(score, bool)
    assert 0 <= score <= 100
    assert rec["profile"] in PROFILES
    assert rec["verdict"] in VERDICTS
    assert rec["verdict"] != "not_now"  # customer support and recruiting, written down, 40 hours a week
    assert isinstance(rec["keep_in_house"], list)
    assert rec["keep_in_house"]
    assert all(isinstance(k, str) and k.strip() for k in rec["keep_in_house"])
    assert rec["engagement_model"]


def test_export_functions_are_a_ranked_list_with_name_score_and_reasons(exported: list[dict[str, Any]]):
    functions = by_user(exported, "alice")["recommendation"]["functions"]
    assert isinstance(functions, list) and functions
    for function in functions:
        assert isinstance(function["id"], str) and function["id"]
        assert isinstance(function["name"], str) and function["name"]
        assert isinstance(function["score"], int | float)
        approach = function["approach"]
        assert {"id", "name", "why"} <= set(approach)
        assert approach["id"] in APPROACHES
        assert isinstance(approach["name"], str) and approach["name"].strip()
        assert isinstance(approach["why"], str) and approach["why"].strip()
        assert isinstance(function["reasons"], list) and function["reasons"]
        assert all(isinstance(r, str) and r.strip() for r in function["reasons"])
    chosen = [f for f in functions if not f.get("suggested")]
    suggested = [f for f in functions if f.get("suggested")]
    assert functions == chosen + suggested, "what the person named comes before suggestions"
    for group in (chosen, suggested):
        scores = [f["score"] for f in group]
        assert scores == sorted(scores, reverse=True)
    names = {f["name"] for f in chosen}
    assert {"Customer support", "Recruiting"} <= names
    assert {f["id"] for f in chosen} >= {"customer_support", "recruiting"}


def test_export_recommendation_has_tensions_and_honest_cash(exported: list[dict[str, Any]]):
    rec = by_user(exported, "alice")["recommendation"]
    assert isinstance(rec["tensions"], list)
    for tension in rec["tensions"]:
        assert {"id", "text"} <= set(tension)
        assert isinstance(tension["text"], str) and tension["text"].strip()
    capacity = rec["capacity"]
    for key in CASH_RANGES:
        value = capacity[key]
        assert set(value) == {"low", "high"}, key
        assert all(isinstance(v, int | float) and not isinstance(v, bool) for v in value.values()), key
        assert value["low"] <= value["high"], key
    assert capacity["hours_back_week"]["high"] > 0  # 40 hours a week named: some come back
    assert 0 < capacity["hours_back_week"]["low"] <= FULL_WALK_ANSWERS["hours"]
    assert capacity["partner_cost_month"]["low"] > 0
    assert capacity["in_house_cash_saved_month"] == {"low": 0, "high": 0}  # the core team does it: no cash stops
    assert capacity["net_cash_month"]["low"] > 0  # positive: more cash out each month
    assert isinstance(capacity["currency"], str) and capacity["currency"].strip()
    assert isinstance(capacity["assumptions"], list) and capacity["assumptions"]
    assert all(isinstance(a, str) and a.strip() for a in capacity["assumptions"])
    old = {"hours_freed_per_week", "in_house_monthly", "outsourced_monthly", "difference_monthly"}
    assert not old & set(capacity)


def test_export_of_a_not_now_recommendation_has_no_engagement_model(fresh_db: Path):
    result = run_bot("console", "--user", "dora", stdin=lines(*no_tasks_walk()), db=fresh_db)
    assert result.returncode == 0, result.stderr
    [item] = export(fresh_db)
    assert item["status"] == "completed"
    assert item["answers"]["tasks"] == ["none"]
    rec = item["recommendation"]
    assert rec["verdict"] == "not_now"  # no non-core task at all: nothing to hand over
    assert "engagement_model" in rec and rec["engagement_model"] is None
    assert isinstance(rec["tensions"], list)
    assert all(f["approach"]["id"] in APPROACHES for f in rec["functions"])
    assert all(set(rec["capacity"][key]) == {"low", "high"} for key in CASH_RANGES)


def test_export_summary_is_plain_text_for_a_completed_conversation(exported: list[dict[str, Any]]):
    alice = by_user(exported, "alice")
    summary = alice["summary"]
    assert isinstance(summary, str) and summary.strip()
    assert str(alice["recommendation"]["readiness_score"]) in summary
    assert "<" not in summary


def test_export_of_an_in_progress_conversation_has_no_recommendation(exported: list[dict[str, Any]]):
    bob = by_user(exported, "bob")
    assert bob["recommendation"] is None
    assert bob["summary"] is None or isinstance(bob["summary"], str)


def test_export_is_ordered_by_id(exported: list[dict[str, Any]]):
    ids = [item["id"] for item in exported]
    assert ids == sorted(ids)


def test_export_to_a_file_writes_the_same_json(walked_db: Path, exported: list[dict[str, Any]], tmp_path: Path):
    target = tmp_path / "conversations.json"
    result = run_bot("export", "--format", "json", "-o", str(target), db=walked_db)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert json.loads(target.read_text(encoding="utf-8")) == exported
    assert result.stdout.strip() == ""  # the data goes to the file, not to standard output


def test_export_to_a_file_with_no_database_writes_an_empty_array(fresh_db: Path, tmp_path: Path):
    target = tmp_path / "empty.json"
    result = run_bot("export", "--format", "json", "--output", str(target), db=fresh_db)
    assert result.returncode == 0, result.stderr
    assert json.loads(target.read_text(encoding="utf-8")) == []


def test_export_to_a_file_in_a_missing_folder_prints_one_error_line(walked_db: Path, tmp_path: Path):
    target = tmp_path / "no-such-folder" / "out.json"
    result = run_bot("export", "--format", "json", "-o", str(target), db=walked_db)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    err = result.stderr.strip().splitlines()
    assert len(err) == 1, result.stderr
    assert err[0].startswith("error: ")


def test_export_shows_a_restarted_conversation_as_abandoned(fresh_db: Path):
    result = run_bot("console", "--user", "carol", stdin=walk(2) + "restart\n3\n", db=fresh_db)
    assert result.returncode == 0, result.stderr
    records = export(fresh_db)
    assert [r["status"] for r in records] == ["abandoned", "in_progress"]
    assert records[0]["answers"] == {"stage": "growing", "size": "small"}
    assert records[1]["answers"] == {"stage": "growing"}


def test_export_keeps_non_ascii_text(fresh_db: Path):
    words = "nos ingénieurs répondent aux tickets ☕"
    script = [a for _, a in FULL_WALK[:QUESTION_IDS.index("pains")]] + [words]
    result = run_bot("console", "--user", "zoë", stdin="".join(f"{a}\n" for a in script), db=fresh_db)
    assert result.returncode == 0, result.stderr
    [item] = export(fresh_db)
    assert item["user_id"] == "zoë"
    assert item["answers"]["pains"] == words


def test_record_has_exactly_the_export_fields(service):
    outcome = service.open("console", "unit", ref="r")
    item = record(outcome.conversation)
    assert tuple(item) == FIELDS
    assert item["ref"] == "r"
    assert item["status"] == "in_progress"
