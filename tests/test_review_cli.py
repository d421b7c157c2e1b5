"""Sales and reviewers on the command line: ``summaries``, ``show``, ``export`` (csv, json, jsonl) and ``link``.

Every command runs as ``python bot.py ...`` in its own process over a database the console filled
(the personas, with refs, and one person who stopped at question 3).
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
from pathlib import Path

import pytest

from advisor.export import FIELDS
from advisor.reports import CSV_FIELDS, TABLE_HEADERS
from advisor.service import AdvisorService
from advisor.store import Store
from tests.conftest import run_bot
from tests.fake_telegram import FakeBotAPI
from tests.personas import NEEDS_NOTHING, PERSONAS
from tests.test_review import IDS, SEARCH_WORD, free_port, populate, talk

OLD_START = "2025-01-15T09:30:00Z"  # conversation 1 (alice) started long ago
REVIEW = {"reviewed": True, "tags": ["hot", "enterprise"], "note": "Great fit", "verdict": "agree"}
ALL = [1, 2, 3, 4, 5]


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Read only: the personas and carol; alice's conversation is old; growing_tactical (3) is reviewed."""
    path = tmp_path_factory.mktemp("review-cli") / "advisor.db"
    populate(path)
    store = Store.open(path)
    try:
        store.db.execute("UPDATE conversations SET started_at = ? WHERE id = 1", [OLD_START])
        store.save_review(IDS["growing_tactical"], **REVIEW)
    finally:
        store.close()
    return path


def ok(*args: str, db: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = run_bot(*args, db=db, env=env, timeout=30)
    assert result.returncode == 0, (args, result.stdout[-2000:], result.stderr)
    assert "Traceback" not in result.stderr
    return result


def one_error_line(result: subprocess.CompletedProcess[str], code: int = 1) -> str:
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


# -- summaries ---------------------------------------------------------------------------------
def table(stdout: str) -> tuple[list[str], list[list[str]], str]:
    """tabulate's "simple" table: (header words, rows split on 2+ spaces, the line after the table)."""
    lines = stdout.splitlines()
    rule = next(i for i, line in enumerate(lines) if re.fullmatch(r"[- ]+", line))
    end = lines.index("", rule)
    rows = [re.split(r" {2,}", line.strip()) for line in lines[rule + 1:end]]
    footer = "\n".join(lines[end + 1:])
    return re.split(r" {2,}", lines[rule - 1].strip()), rows, footer


def summary_ids(stdout: str) -> list[int]:
    return [int(row[0]) for row in table(stdout)[1]]


def test_summaries_lists_every_conversation_newest_first(db: Path):
    result = ok("summaries", db=db)
    headers, rows, footer = table(result.stdout)
    assert headers == TABLE_HEADERS
    assert [int(row[0]) for row in rows] == [5, 4, 3, 2, 1]
    assert footer == "5 conversation(s), newest first. Details: python bot.py show ID"
    store = Store.open(db)
    try:
        for row in rows:
            conversation = store.get(int(row[0]))
            assert row[2] == "console"
            assert conversation.ref in row and conversation.status in row
            if conversation.recommendation:
                assert str(conversation.recommendation["readiness_score"]) in row
                assert conversation.recommendation["profile"] in row
    finally:
        store.close()
    by_id = {int(row[0]): row for row in rows}
    assert by_id[3][-1] == "Maria Lopez"
    assert by_id[1][1].startswith("2025-01-15 09:30")
    assert result.stderr == ""


@pytest.mark.parametrize(("args", "expected"), [
    (["--ref", "alice"], [2, 1]),  # alice and alice--spring, not alicex
    (["--ref", "alice--spring"], [2]),
    (["--ref", "alicex"], [3]),
    (["--status", "completed"], [4, 3, 2, 1]),
    (["--status", "in_progress"], [5]),
    (["--since", "2025-06-01"], [5, 4, 3, 2]),
    (["--since", "2025-01-15"], [5, 4, 3, 2, 1]),
    (["--since", "7d"], [5, 4, 3, 2]),
    (["--search", SEARCH_WORD], [IDS["established_cost_cutter"]]),
    (["--search", "consultants recruiting"], [IDS["growing_tactical"]]),
    (["--limit", "2"], [5, 4]),
    (["--ref", "alice", "--status", "completed", "--since", "2025-06-01"], [2]),
], ids=lambda value: " ".join(value) if isinstance(value, list) and value and isinstance(value[0], str) else None)
def test_summaries_filters(db: Path, args: list[str], expected: list[int]):
    assert summary_ids(ok("summaries", *args, db=db).stdout) == expected


def test_summaries_limit_says_how_many_there_are(db: Path):
    _, rows, footer = table(ok("summaries", "--limit", "2", db=db).stdout)
    assert len(rows) == 2
    assert footer.startswith("2 of 5 conversation(s), newest first.")


def test_summaries_limit_below_one_is_refused_not_reported_as_no_match(db: Path):
    result = run_bot("summaries", "--limit", "0", db=db)
    assert "No conversations match." not in result.stdout  # five match; none were asked for
    if result.returncode != 0:  # a usage error, as for --limit abc, is the expected way to refuse
        assert result.returncode == 2 and "--limit" in result.stderr and "Traceback" not in result.stderr


def test_summaries_without_a_database(fresh_db: Path):
    result = ok("summaries", db=fresh_db)
    assert result.stdout.strip() == "No conversations stored yet."
    assert not fresh_db.exists()


def test_summaries_with_no_match_says_so(db: Path):
    for args in (["--ref", "nobody"], ["--search", "zebra"], ["--status", "abandoned"]):
        result = ok("summaries", *args, db=db)
        assert result.stdout.strip() == "No conversations match.", args


def test_summaries_with_a_bad_since_is_a_one_line_error(db: Path):
    line = one_error_line(run_bot("summaries", "--since", "last tuesday", db=db))
    assert "--since" in line and "'last tuesday'" in line


# -- show ----------------------------------------------------------------------------------------
def test_show_prints_summary_drivers_transcript_and_review(db: Path):
    store = Store.open(db)
    try:
        conversation = store.get(IDS["growing_tactical"])
        turns = store.transcript(conversation.id)
    finally:
        store.close()
    rec = conversation.recommendation
    assert rec is not None and conversation.summary
    out = ok("show", str(conversation.id), db=db).stdout
    lines = out.splitlines()
    assert lines[0] == f"Conversation {conversation.id}: console user growing_tactical, ref alicex, completed"
    assert lines[1] == (f"Started {conversation.started_at}, completed {conversation.completed_at}; "
                        f"dialog version {conversation.dialog_version}")
    assert "Contact (consented): Maria Lopez, maria@example.com" in lines
    assert "Review: reviewed, agrees with the advice, tags: hot, enterprise, note: Great fit" in lines
    assert "Summary" in lines
    for summary_line in conversation.summary.splitlines():
        assert "  " + summary_line in lines
    verdict = f"Verdict: {rec['verdict_name']}. {rec['verdict_text']}"
    assert rec["verdict"] == "prepare_first" and verdict in lines
    assert rec["functions"]
    for function in rec["functions"]:
        approach = function["approach"]
        assert f"  {function['name']}: {approach['name'].lower()}. {approach['why']}" in lines
    assert f"Readiness {rec['readiness_score']}/100 ({rec['profile']}), from a base of {rec['base']:g}:" in lines
    assert rec["drivers"]
    for driver in rec["drivers"]:
        assert f"  {driver['points']:+4.0f}  {driver['text']}" in lines
    transcript = lines[lines.index("Transcript") + 1:]
    assert len(transcript) == len(turns)
    for line, turn in zip(transcript, turns, strict=True):
        assert line.endswith(turn["text"]), (line, turn)
        assert ("advisor" if turn["role"] == "advisor" else "person") in line
    assert transcript[0].endswith("Where is your company today?")
    assert "our consultants do their own recruiting and data entry" in out
    # the order a reviewer reads it in
    assert lines.index("Summary") < lines.index(verdict) < lines.index(
        f"Readiness {rec['readiness_score']}/100 ({rec['profile']}), from a base of {rec['base']:g}:"
    ) < lines.index("Transcript")


def test_show_names_the_tensions_with_the_verdict(db: Path):
    store = Store.open(db)
    try:
        rec = store.get(IDS["established_cost_cutter"]).recommendation
    finally:
        store.close()
    assert rec is not None and rec["tensions"]  # cutting costs with vendors already paid
    lines = ok("show", str(IDS["established_cost_cutter"]), db=db).stdout.splitlines()
    verdict = lines.index(f"Verdict: {rec['verdict_name']}. {rec['verdict_text']}")
    readiness = next(i for i, line in enumerate(lines) if line.startswith("Readiness "))
    for tension in rec["tensions"]:
        assert verdict < lines.index(f"  Tension: {tension['text']}") < readiness


def test_show_a_not_now_verdict(service: AdvisorService, fresh_db: Path):
    conversation = talk(service, "needs_nothing", NEEDS_NOTHING)
    rec = conversation.recommendation
    assert rec is not None and rec["verdict"] == "not_now" and rec["engagement_model"] is None
    lines = ok("show", str(conversation.id), db=fresh_db).stdout.splitlines()
    verdict = lines.index(f"Verdict: {rec['verdict_name']}. {rec['verdict_text']}")
    assert lines[verdict + 1] == ""  # no task to source, no tension
    assert lines[verdict + 2].startswith(f"Readiness {rec['readiness_score']}/100 ")
    [row] = list(csv.DictReader(io.StringIO(ok("export", "--format", "csv", db=fresh_db).stdout)))
    assert (row["advice_verdict"], row["engagement_model"]) == ("not_now", "")


def test_show_without_a_review_has_no_review_line(db: Path):
    out = ok("show", str(IDS["sales_team"]), db=db).stdout
    assert not any(line.startswith("Review:") for line in out.splitlines())
    assert "Contact (consented)" not in out


def test_show_a_conversation_in_progress(db: Path):
    out = ok("show", str(IDS["carol"]), db=db).stdout
    lines = out.splitlines()
    assert lines[0] == "Conversation 5: console user carol, ref carol, in_progress"
    assert "In progress at question 'industry'." in lines
    assert "Summary" not in lines and "Readiness" not in out and "Verdict" not in out
    transcript = lines[lines.index("Transcript") + 1:]
    assert len(transcript) == 5  # stage, 3, size, 3, industry
    assert transcript[-1].endswith("Which industry are you in?")


def test_show_an_abandoned_conversation_does_not_call_it_in_progress(service: AdvisorService, fresh_db: Path):
    talk(service, "dan", ["3", "restart"])  # the first conversation is abandoned at "size", a new one begins
    first = service.store.get(1)
    assert first.status == "abandoned"
    out = ok("show", "1", db=fresh_db).stdout
    assert out.splitlines()[0] == "Conversation 1: console user dan, ref -, abandoned"
    assert "In progress" not in out, out  # it was abandoned at question 'size'
    assert "'size'" in out


def test_show_an_unknown_id_is_a_one_line_error(db: Path):
    line = one_error_line(run_bot("show", "999", db=db))
    assert line == "error: no conversation 999"


def test_show_without_a_database_is_a_one_line_error(fresh_db: Path):
    assert "no conversation 1" in one_error_line(run_bot("show", "1", db=fresh_db))
    assert not fresh_db.exists()


def test_show_needs_a_number(db: Path):
    result = run_bot("show", "abc", db=db)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "invalid int value" in result.stderr


# -- export ---------------------------------------------------------------------------------------
def exported_ids(fmt: str, stdout: str) -> list[int]:
    if fmt == "json":
        return [r["id"] for r in json.loads(stdout)]
    if fmt == "jsonl":
        return [json.loads(line)["id"] for line in stdout.splitlines()]
    return [int(row["id"]) for row in csv.DictReader(io.StringIO(stdout))]


def test_export_csv_has_the_promised_columns_and_one_row_per_conversation(db: Path):
    result = ok("export", "--format", "csv", db=db)
    assert result.stderr == ""  # no progress for a handful
    reader = csv.DictReader(io.StringIO(result.stdout))
    assert tuple(reader.fieldnames or ()) == CSV_FIELDS
    rows = {int(row["id"]): row for row in reader}
    assert list(rows) == ALL  # oldest first, each once
    store = Store.open(db)
    try:
        for cid, row in rows.items():
            conversation = store.get(cid)
            assert row["user_id"] == conversation.user_id
            assert row["ref"] == conversation.ref
            assert row["status"] == conversation.status
            assert json.loads(row["answers"]) == dict(conversation.state.answers)
            if conversation.recommendation:
                assert row["readiness_score"] == str(conversation.recommendation["readiness_score"])
                assert row["advice_verdict"] == conversation.recommendation["verdict"]
                assert row["summary"] == conversation.summary
                assert row["completed_at"] == conversation.completed_at
            else:
                assert row["readiness_score"] == row["summary"] == row["completed_at"] == ""
                assert row["advice_verdict"] == ""
    finally:
        store.close()
    reviewed = rows[IDS["growing_tactical"]]
    assert {k: reviewed[k] for k in ("reviewed", "verdict", "tags", "note", "contact_name", "contact_email")} == {
        "reviewed": "yes", "verdict": "agree", "tags": "hot, enterprise", "note": "Great fit",
        "contact_name": "Maria Lopez", "contact_email": "maria@example.com"}
    assert reviewed["advice_verdict"] == "prepare_first"  # the advice's verdict, not the reviewer's
    assert list(CSV_FIELDS).index("advice_verdict") == list(CSV_FIELDS).index("profile") + 1
    assert {k: rows[1][k] for k in ("reviewed", "verdict", "tags", "note")} == {
        "reviewed": "no", "verdict": "", "tags": "", "note": ""}


def test_export_csv_keeps_spreadsheets_from_running_formulas(service: AdvisorService, fresh_db: Path):
    conversation = talk(service, "=cmd|' /C calc'!A0", PERSONAS["growing_tactical"], ref="+SUM(1,2)")
    service.store.record_consent(conversation.id)
    service.store.save_contact(conversation.id, {"name": '=HYPERLINK("http://evil.example")',
                                                 "email": "@evil.example", "phone": "-1+1", "consent": True})
    service.store.save_review(conversation.id, reviewed=True, tags=["@SUM(A1)", "ok"], note="-2+3",
                              verdict="disagree")
    [row] = list(csv.DictReader(io.StringIO(ok("export", "--format", "csv", db=fresh_db).stdout)))
    assert row["user_id"] == "'=cmd|' /C calc'!A0"
    assert row["ref"] == "'+SUM(1,2)"
    assert row["contact_name"] == "'=HYPERLINK(\"http://evil.example\")"
    assert row["contact_email"] == "'@evil.example"
    assert row["contact_phone"] == "'-1+1"
    assert row["tags"] == "'@SUM(A1), ok"
    assert row["note"] == "'-2+3"
    assert row["verdict"] == "disagree"
    for column in CSV_FIELDS:
        assert not row[column].startswith(("=", "+", "-", "@", "\t", "\r")), column
    # the JSON keeps what was typed, exactly
    [record] = json.loads(ok("export", "--format", "json", db=fresh_db).stdout)
    assert record["user_id"] == "=cmd|' /C calc'!A0" and record["ref"] == "+SUM(1,2)"


def test_export_jsonl_is_one_json_object_per_line_like_json(db: Path):
    jsonl = ok("export", "--format", "jsonl", db=db).stdout
    as_json = json.loads(ok("export", "--format", "json", db=db).stdout)
    assert jsonl.endswith("\n")
    lines = jsonl.splitlines()
    assert len(lines) == 5
    records = [json.loads(line) for line in lines]
    assert all(isinstance(r, dict) for r in records)
    for line_record, json_record in zip(records, as_json, strict=True):
        assert list(line_record) == list(json_record) == list(FIELDS)
    assert records == as_json
    assert [r["id"] for r in records] == ALL


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl"])
def test_export_filters_in_every_format(db: Path, fmt: str):
    for args, expected in (
        (["--ref", "alice"], [1, 2]),
        (["--status", "in_progress"], [5]),
        (["--since", "2025-06-01"], [2, 3, 4, 5]),
        (["--ref", "alice", "--since", "2025-06-01", "--status", "completed"], [2]),
        (["--ref", "nobody"], []),
    ):
        assert exported_ids(fmt, ok("export", "--format", fmt, *args, db=db).stdout) == expected, args


def test_export_to_a_file_prints_a_count_on_stderr(db: Path, tmp_path: Path):
    for fmt in ("csv", "jsonl", "json"):
        target = tmp_path / f"out.{fmt}"
        result = ok("export", "--format", fmt, "--ref", "alice", "-o", str(target), db=db)
        assert result.stdout == ""
        assert result.stderr.strip() == f"2 conversation(s) written to {target}"
        assert exported_ids(fmt, target.read_text(encoding="utf-8")) == [1, 2]


def test_export_to_an_unwritable_file_is_a_one_line_error(db: Path, tmp_path: Path):
    line = one_error_line(run_bot("export", "--format", "csv", "-o", str(tmp_path / "missing" / "x.csv"), db=db))
    assert "cannot write" in line


def test_export_with_a_bad_since_is_a_one_line_error(db: Path, fresh_db: Path):
    for fmt in ("csv", "json", "jsonl"):
        line = one_error_line(run_bot("export", "--format", fmt, "--since", "soon", db=db))
        assert "--since" in line and "'soon'" in line
    one_error_line(run_bot("export", "--since", "2026-13-45", db=fresh_db))


def test_export_without_a_database(fresh_db: Path):
    assert ok("export", "--format", "csv", db=fresh_db).stdout.strip() == ",".join(CSV_FIELDS)
    assert ok("export", "--format", "jsonl", db=fresh_db).stdout == ""
    assert not fresh_db.exists()


def test_export_of_many_conversations_shows_progress_on_stderr(service: AdvisorService, fresh_db: Path,
                                                              tmp_path: Path):
    state = service.engine.start().state
    with service.store.db.atomic():
        for i in range(1200):
            service.store.begin("telegram", str(10_000 + i), state, service.dialog.id, service.dialog.version,
                                ref="bulk" if i % 2 else None)
    target = tmp_path / "all.jsonl"
    result = ok("export", "--format", "jsonl", "-o", str(target), db=fresh_db)
    assert result.stderr.splitlines() == ["exported 1,000 of 1,200", "exported 1,200 of 1,200",
                                          f"1200 conversation(s) written to {target}"]
    assert len(target.read_text(encoding="utf-8").splitlines()) == 1200
    to_stdout = ok("export", "--format", "csv", db=fresh_db)
    assert len(list(csv.DictReader(io.StringIO(to_stdout.stdout)))) == 1200
    assert to_stdout.stderr.splitlines() == ["exported 1,000 of 1,200", "exported 1,200 of 1,200"]
    # the count is of what the filters keep: 600 is too few to bother
    filtered = ok("export", "--format", "json", "--ref", "bulk", db=fresh_db)
    assert len(json.loads(filtered.stdout)) == 600
    assert filtered.stderr == ""


# -- link -----------------------------------------------------------------------------------------
def test_link_with_a_username_and_campaign(fresh_db: Path):
    result = ok("link", "alice", "--campaign", "spring", "--username", "advisor_bot", db=fresh_db)
    assert result.stdout == "https://t.me/advisor_bot?start=alice--spring\n"
    assert ok("link", "alice", "--username", "@advisor_bot", db=fresh_db).stdout == \
        "https://t.me/advisor_bot?start=alice\n"
    assert not fresh_db.exists()  # a link needs no database


@pytest.mark.parametrize("args", [
    ["a b"], ["x" * 70], [""], ["alice-spring"], ["alice--spring"], ["alice", "--campaign", "spring 24"],
    ["alice", "--campaign", ""], ["a" * 40, "--campaign", "c" * 30],
], ids=["space", "70 chars", "empty", "dash", "double dash", "campaign space", "empty campaign", "payload > 64"])
def test_link_refuses_a_bad_ref_with_one_line(fresh_db: Path, args: list[str]):
    result = run_bot("link", *args, "--username", "advisor_bot", db=fresh_db, timeout=30)
    line = one_error_line(result)
    assert "REF" in line or "--campaign" in line or "64" in line
    assert result.stdout == ""


def test_link_asks_the_bot_api_for_the_username(fake_api: FakeBotAPI, fresh_db: Path):
    env = {"TELEGRAM_BOT_TOKEN": fake_api.token, "TELEGRAM_API_URL": fake_api.url}
    result = ok("link", "alice", "--campaign", "spring", db=fresh_db, env=env)
    assert result.stdout == f"https://t.me/{fake_api.username}?start=alice--spring\n"
    assert fake_api.username == "advisor_test_bot"
    assert [call.method for call in fake_api.calls] == ["getMe"]


def test_link_without_a_username_or_token_is_a_one_line_error(fresh_db: Path):
    line = one_error_line(run_bot("link", "alice", db=fresh_db, timeout=30))
    assert "TELEGRAM_BOT_TOKEN" in line


def test_link_with_a_refused_token_or_no_api_is_a_one_line_error(fake_api: FakeBotAPI, fresh_db: Path):
    refused = run_bot("link", "alice", db=fresh_db, timeout=30,
                      env={"TELEGRAM_BOT_TOKEN": "999:wrong-token", "TELEGRAM_API_URL": fake_api.url})
    line = one_error_line(refused)
    assert "refused" in line and "--username" in line
    assert "wrong-token" not in line
    nobody = f"http://127.0.0.1:{free_port()}"
    unreachable = run_bot("link", "alice", db=fresh_db, timeout=30,
                          env={"TELEGRAM_BOT_TOKEN": fake_api.token, "TELEGRAM_API_URL": nobody})
    line = one_error_line(unreachable)
    assert "cannot reach" in line and fake_api.token not in line



def test_export_csv_leaves_a_phone_number_as_it_is(service: AdvisorService, fresh_db: Path):
    conversation = talk(service, "ana", PERSONAS["growing_tactical"])
    service.store.record_consent(conversation.id)
    service.store.save_contact(conversation.id, {"name": "Ana", "phone": "+34 600 111 222", "consent": True})
    [row] = list(csv.DictReader(io.StringIO(ok("export", "--format", "csv", db=fresh_db).stdout)))
    assert row["contact_phone"] == "+34 600 111 222"  # a number, not a formula: no quote in front
