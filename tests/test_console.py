"""The console channel driven as a person (or a script) would: ``python bot.py console`` through a pipe.

PRODUCT.md "Interfaces that other tools rely on" fixes the console format: options as ``  N) Label``,
"choose one or more" with comma-separated numbers, ``back`` / ``restart`` / ``quit`` at any question,
exit 0 after the recommendation and at end of input, and resuming by ``--user``.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from advisor.dialog import Dialog
from advisor.store import Store
from tests.conftest import ROOT, run_bot

# One valid answer per question, in the order the dialog asks them on this path (16 questions).
FULL_WALK: list[tuple[str, str]] = [
    ("stage", "3"),  # Growing
    ("size", "2"),  # 2-10
    ("industry", "1"),  # Software or tech
    ("core", "2"),  # Build the product or software
    ("pains", "our engineers answer support tickets all day"),
    ("tasks", "7,10"),  # Customer support, Recruiting
    ("hours", "40"),
    ("owners", "1"),  # The core team
    ("process", "1"),  # written down, with an owner
    ("trigger", "3"),  # Growth
    ("horizon", "2"),  # The next 12 months
    ("goals", "1,5"),  # More time for core work, Scale
    ("past", "2"),  # one-off vendors
    ("relation", "2"),  # managed service
    ("concern", "1,3"),  # Quality, Data security
    ("contact", "1"),  # No thanks
]
QUESTION_IDS = [qid for qid, _ in FULL_WALK]
FULL_WALK_ANSWERS = {
    "stage": "growing", "size": "small", "industry": "software", "core": "product",
    "pains": "our engineers answer support tickets all day",
    "tasks": ["customer_support", "recruiting"], "hours": 40, "owners": "core_team", "process": "documented",
    "trigger": "growth", "horizon": "year", "goals": ["core_time", "scale"], "past": "one_off",
    "relation": "managed", "concern": ["quality", "data_security"], "contact": "declined",
}
HTML_TAG = re.compile(r"<\/?[a-z]+[^>]*>")
OPTION_LINE = re.compile(r"^  (\d+)\) (\S.*)$")
QUESTION_NUMBER = re.compile(r"^Question (\d+) of (\d+)$", re.MULTILINE)
BANNER = "YOUR OUTSOURCING RECOMMENDATION"
FULL_REPORT = "THE FULL REPORT"
HOURS = QUESTION_IDS.index("hours")  # how many answers come before the hours question
SKIPPED_WITHOUT_TASKS = ("hours", "owners", "process")  # "None of these" at tasks skips them


def lines(*answers: str) -> str:
    return "".join(f"{a}\n" for a in answers)


def walk(n: int) -> str:
    """The first ``n`` scripted answers as piped input."""
    return lines(*(answer for _, answer in FULL_WALK[:n]))


def walk_to(qid: str) -> str:
    """The scripted answers up to (not including) question ``qid``."""
    return walk(QUESTION_IDS.index(qid))


def rest_after(qid: str) -> str:
    """The scripted answers after question ``qid`` to the end."""
    return lines(*(answer for _, answer in FULL_WALK[QUESTION_IDS.index(qid) + 1:]))


def no_tasks_walk() -> list[str]:
    """FULL_WALK with "None of these" at tasks and without the questions it skips (13 answers)."""
    answers = [a for q, a in FULL_WALK if q not in SKIPPED_WITHOUT_TASKS]
    answers[QUESTION_IDS.index("tasks")] = "12"  # None of these
    return answers


def recommendation_screen(stdout: str) -> str:
    """What the console shows from below the recommendation's banner to the next line read (or the end)."""
    assert BANNER in stdout, stdout
    after = stdout.split(BANNER, 1)[1]
    screen = after.split("\n> ", 1)[0]
    return "\n".join(line for line in screen.splitlines() if line.strip("= "))


def console(user: str, stdin: str, db: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_bot("console", "--user", user, *extra, stdin=stdin, db=db)


def run_bytes(args: list[str], data: bytes, db: Path) -> subprocess.CompletedProcess[bytes]:
    """Like ``run_bot`` but with raw bytes on standard input (for input that is not UTF-8)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "ADVISOR_"))}
    env["ADVISOR_DB"] = str(db)
    return subprocess.run([sys.executable, str(ROOT / "bot.py"), *args], input=data, capture_output=True,
                          timeout=60, env=env, cwd=ROOT)


def assert_clean(result: subprocess.CompletedProcess[str]) -> None:
    """Exit 0, nothing on stderr, no traceback and no raw HTML in what the person reads."""
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stderr == ""
    assert HTML_TAG.search(result.stdout) is None, HTML_TAG.search(result.stdout)


def last_question_number(stdout: str) -> int:
    numbers = QUESTION_NUMBER.findall(stdout)
    assert numbers, stdout
    return int(numbers[-1][0])


def open_conversation(db: Path, user: str):
    store = Store.open(db)
    try:
        return store.find_open("console", user)
    finally:
        store.close()


def all_conversations(db: Path) -> list:
    store = Store.open(db)
    try:
        return list(store.conversations())
    finally:
        store.close()


# -- format -----------------------------------------------------------------------------------
def test_options_are_printed_as_two_spaces_number_parenthesis_label(fresh_db: Path, dialog: Dialog):
    result = console("fmt", "", fresh_db)
    assert_clean(result)
    out = result.stdout.splitlines()
    first = dialog.questions["stage"]
    assert first.text in result.stdout
    for number, option in enumerate(first.options, 1):
        assert f"  {number}) {option.label}" in out
    option_lines = [line for line in out if OPTION_LINE.match(line)]
    assert [int(OPTION_LINE.match(line).group(1)) for line in option_lines] == list(
        range(1, len(first.options) + 1))


def test_each_option_line_follows_the_question_text(fresh_db: Path, dialog: Dialog):
    result = console("fmt2", walk_to("core"), fresh_db)
    assert_clean(result)
    out = result.stdout
    core = dialog.questions["core"]
    start = out.index(core.text)
    after = out[start:].splitlines()[1:1 + len(core.options)]
    assert after == [f"  {n}) {o.label}" for n, o in enumerate(core.options, 1)]


def test_multi_choice_question_says_choose_one_or_more_and_takes_comma_separated_numbers(fresh_db: Path):
    result = console("multi", walk_to("tasks") + "1,3\n", fresh_db)
    assert_clean(result)
    tasks_part = result.stdout.split("Which of these take time away")[1]
    assert "choose one or more" in tasks_part.lower()
    conversation = open_conversation(fresh_db, "multi")
    assert conversation.state.answers["tasks"] == ["telemarketing", "lead_research"]
    assert conversation.state.current == "hours"
    assert "Roughly how many hours a week" in result.stdout


def test_single_choice_question_does_not_say_choose_one_or_more(fresh_db: Path):
    result = console("single", "", fresh_db)
    assert_clean(result)
    assert "choose one or more" not in result.stdout.lower()


# -- commands ---------------------------------------------------------------------------------
def test_back_goes_to_the_previous_question_and_keeps_its_answer(fresh_db: Path):
    result = console("backer", walk(2) + "back\n", fresh_db)
    assert_clean(result)
    assert last_question_number(result.stdout) == 2
    after_back = result.stdout.rsplit("> back", 1)[1]
    assert "How many people work in the company?" in after_back
    conversation = open_conversation(fresh_db, "backer")
    assert conversation.state.current == "size"
    assert conversation.state.answers["stage"] == "growing"


def test_back_at_the_first_question_stays_there_with_a_hint(fresh_db: Path):
    result = console("backfirst", "back\n", fresh_db)
    assert_clean(result)
    assert last_question_number(result.stdout) == 1
    assert result.stdout.count("Where is your company today?") == 2
    assert open_conversation(fresh_db, "backfirst").state.current == "stage"


def test_restart_starts_over_at_the_first_question(fresh_db: Path):
    result = console("restarter", walk(3) + "restart\n", fresh_db, "--ref", "r-1")
    assert_clean(result)
    after_restart = result.stdout.rsplit("> restart", 1)[1]
    assert "Question 1 of" in after_restart
    assert "Where is your company today?" in after_restart
    conversations = all_conversations(fresh_db)
    assert [c.status for c in conversations] == ["abandoned", "in_progress"]
    fresh = conversations[1]
    assert fresh.state.current == "stage"
    assert dict(fresh.state.answers) == {}
    assert fresh.ref == "r-1"


def test_quit_saves_and_exits_0_without_reading_further(fresh_db: Path):
    result = console("quitter", walk(2) + "quit\n" + "2\n", fresh_db)
    assert_clean(result)
    after_quit = result.stdout.rsplit("> quit", 1)[1]
    assert "saved" in after_quit.lower()
    assert "Question" not in after_quit
    conversation = open_conversation(fresh_db, "quitter")
    assert conversation.status == "in_progress"
    assert conversation.state.current == QUESTION_IDS[2]
    assert set(conversation.state.answers) == set(QUESTION_IDS[:2])


def test_commands_are_case_insensitive(fresh_db: Path):
    result = console("caps", walk(2) + "BACK\nQuit\n", fresh_db)
    assert_clean(result)
    assert open_conversation(fresh_db, "caps").state.current == "size"


# -- a whole conversation ---------------------------------------------------------------------
def test_full_walk_prints_the_recommendation_and_exits_0(fresh_db: Path):
    result = console("walker", walk(len(FULL_WALK)), fresh_db)
    assert_clean(result)
    assert "saved" not in result.stdout.rsplit("> 1", 1)[1].lower()
    [conversation] = all_conversations(fresh_db)
    assert conversation.status == "completed"
    assert dict(conversation.state.answers) == FULL_WALK_ANSWERS
    rec = conversation.recommendation
    assert rec is not None
    tail = result.stdout.rsplit(f"> {FULL_WALK[-1][1]}", 1)[1]
    assert BANNER in tail
    assert f"{rec['readiness_score']}/100" in tail
    assert rec["verdict_name"].upper() in tail
    assert rec["functions"]
    for function in rec["functions"]:
        assert function["name"] in tail
    assert QUESTION_NUMBER.search(tail) is None  # no further question after the recommendation
    assert FULL_REPORT not in result.stdout  # only when asked for


@pytest.mark.parametrize("word", ["details", "Details", " report ", "more"])
def test_details_after_the_recommendation_prints_the_full_report(fresh_db: Path, word: str):
    result = console("detailed", walk(len(FULL_WALK)) + word + "\n", fresh_db)
    assert_clean(result)
    out = result.stdout
    assert out.count(BANNER) == 1 and out.count(FULL_REPORT) == 1
    recommendation_at, asked_at, report_at = out.index(BANNER), out.index(f"> {word}\n"), out.index(FULL_REPORT)
    assert recommendation_at < asked_at < report_at  # the report follows the recommendation, when asked
    report = out[report_at:]
    [conversation] = all_conversations(fresh_db)
    assert conversation.status == "completed"
    rec = conversation.recommendation
    assert f"{rec['readiness_score']}/100" in report
    for function in rec["functions"]:
        assert function["name"] in report
    assert "saved" not in report.lower()
    assert QUESTION_NUMBER.search(report) is None


@pytest.mark.parametrize("extra", ["restart\n1\n", "\n", "thanks\ndetails\n", "quit\ndetails\n"],
                         ids=["restart", "enter", "details-too-late", "quit"])
def test_full_walk_ignores_input_after_the_recommendation(fresh_db: Path, extra: str):
    # one line is read after the recommendation (for "details"); anything else ends the conversation
    result = console("extra", walk(len(FULL_WALK)) + extra, fresh_db)
    assert_clean(result)
    assert [c.status for c in all_conversations(fresh_db)] == ["completed"]
    tail = result.stdout.split(BANNER, 1)[1]
    assert FULL_REPORT not in tail
    assert QUESTION_NUMBER.search(tail) is None
    assert "saved" not in tail.lower()
    assert tail.count("\n> ") <= 1  # at most the one line read after the recommendation


@pytest.mark.parametrize(
    "script",
    [
        [a for _, a in FULL_WALK],
        no_tasks_walk(),  # not now: nothing to hand over
        # many tasks before launch (once 344 words): 3 handed over, 3 others, cash, watch, strategic
        ["1", "1", "6", "4", "skip", "2,3,4,7,8,10,11", "40", "1", "3", "4", "3", "2,6,3,4,1,5",
         "2", "3", "1,3,5", "1"],
    ],
    ids=["full-walk", "no-tasks", "many-tasks-pre-launch"],
)
def test_the_recommendation_on_screen_is_at_most_300_words_and_shows_no_command_line(fresh_db: Path,
                                                                                     script: list[str]):
    result = console("short", lines(*script), fresh_db)
    assert_clean(result)
    assert [c.status for c in all_conversations(fresh_db)] == ["completed"]
    screen = recommendation_screen(result.stdout)
    words = len(screen.split())
    assert 30 < words <= 300, f"{words} words:\n{screen}"
    assert "bot.py" not in screen
    assert re.search(r"\bpython\d?\b|\$ |--[a-z]", screen, re.IGNORECASE) is None, screen


def test_full_walk_asks_each_question_once_numbered_in_order(fresh_db: Path):
    result = console("numbers", walk(len(FULL_WALK)), fresh_db)
    assert_clean(result)
    numbers = [int(n) for n, _ in QUESTION_NUMBER.findall(result.stdout)]
    assert numbers == list(range(1, len(FULL_WALK) + 1))


def test_a_path_without_tasks_skips_hours_owners_and_process_and_still_finishes(fresh_db: Path):
    answers = no_tasks_walk()
    result = console("notasks", lines(*answers), fresh_db)
    assert_clean(result)
    [conversation] = all_conversations(fresh_db)
    assert conversation.status == "completed"
    expected = {q: v for q, v in FULL_WALK_ANSWERS.items() if q not in SKIPPED_WITHOUT_TASKS}
    assert dict(conversation.state.answers) == {**expected, "tasks": ["none"]}
    numbers = [int(n) for n, _ in QUESTION_NUMBER.findall(result.stdout)]
    assert numbers == list(range(1, len(answers) + 1))  # each question once, none of the skipped ones
    for skipped in ("Roughly how many hours a week", "Who does these tasks today?", "Are these tasks written down"):
        assert skipped not in result.stdout


# -- end of input and resuming ----------------------------------------------------------------
def test_end_of_input_midway_exits_0_and_says_it_is_saved(fresh_db: Path):
    result = console("eof", walk(5), fresh_db)
    assert_clean(result)
    assert "saved" in result.stdout.strip().splitlines()[-1].lower()
    assert open_conversation(fresh_db, "eof").status == "in_progress"


def test_empty_input_exits_0_after_the_first_question(fresh_db: Path):
    result = console("nothing", "", fresh_db)
    assert_clean(result)
    assert "Question 1 of" in result.stdout
    assert "saved" in result.stdout.lower()


@pytest.mark.parametrize("last", ["stage", "industry", "tasks", "process", "trigger", "concern"])
def test_each_answer_is_committed_before_the_next_question_is_shown(fresh_db: Path, last: str):
    answered = QUESTION_IDS.index(last) + 1
    result = console("commit", walk(answered), fresh_db)
    assert_clean(result)
    assert last_question_number(result.stdout) == answered + 1

    conn = sqlite3.connect(fresh_db)
    try:
        rows = conn.execute("SELECT id, state, answers, status FROM conversations").fetchall()
        assert len(rows) == 1
        conversation_id, state, answers, status = rows[0]
        assert status == "in_progress"
        assert state == QUESTION_IDS[answered]
        stored = json.loads(answers)
        expected = {qid: FULL_WALK_ANSWERS[qid] for qid in QUESTION_IDS[:answered]}
        assert stored == expected
        person = conn.execute(
            "SELECT question_id, text FROM turns WHERE conversation_id = ? AND role = 'person' ORDER BY seq",
            [conversation_id],
        ).fetchall()
    finally:
        conn.close()
    assert [qid for qid, _ in person] == QUESTION_IDS[:answered]


def test_the_same_user_resumes_at_the_same_question(fresh_db: Path, dialog: Dialog):
    pains = QUESTION_IDS.index("pains") + 1  # its number
    first = console("returning", walk_to("pains"), fresh_db)
    assert_clean(first)
    assert last_question_number(first.stdout) == pains

    second = console("returning", "", fresh_db)
    assert_clean(second)
    assert "Question 1 of" not in second.stdout
    assert last_question_number(second.stdout) == pains
    assert dialog.questions["pains"].text.split("?")[0] in second.stdout
    assert dialog.questions["stage"].text not in second.stdout
    assert len(all_conversations(fresh_db)) == 1


def test_resuming_continues_the_same_conversation_to_the_end(fresh_db: Path):
    assert_clean(console("twice", walk(6), fresh_db))
    rest = lines(*(answer for _, answer in FULL_WALK[6:]))
    second = console("twice", rest, fresh_db)
    assert_clean(second)
    [conversation] = all_conversations(fresh_db)
    assert conversation.status == "completed"
    assert dict(conversation.state.answers) == FULL_WALK_ANSWERS


def test_a_different_user_starts_fresh(fresh_db: Path):
    assert_clean(console("someone", walk(3), fresh_db))
    other = console("someone-else", "", fresh_db)
    assert_clean(other)
    assert last_question_number(other.stdout) == 1
    assert "Where is your company today?" in other.stdout
    assert open_conversation(fresh_db, "someone").state.current == QUESTION_IDS[3]
    assert open_conversation(fresh_db, "someone-else").state.current == "stage"


def test_after_a_completed_walk_the_same_user_starts_a_new_conversation(fresh_db: Path):
    assert_clean(console("again", walk(len(FULL_WALK)), fresh_db))
    second = console("again", "", fresh_db)
    assert_clean(second)
    assert last_question_number(second.stdout) == 1
    assert [c.status for c in all_conversations(fresh_db)] == ["completed", "in_progress"]


# -- invalid input ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "reply",
    ["abc", "99", "0", "-1", "1,2", "😀", "", "   ", "x" * 10_000, "<b>3</b>", "'; DROP TABLE turns; --"],
    ids=["letters", "99", "zero", "negative", "two-for-single", "emoji", "empty", "spaces", "10000-chars",
         "html", "sql"],
)
def test_invalid_reply_to_a_choice_gets_a_hint_and_the_question_again(fresh_db: Path, reply: str):
    result = console("invalid", reply + "\n", fresh_db)
    assert result.returncode == 0
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stderr == ""
    assert result.stdout.count("Where is your company today?") == 2
    assert [int(n) for n, _ in QUESTION_NUMBER.findall(result.stdout)] == [1, 1]
    conversation = open_conversation(fresh_db, "invalid")
    assert conversation.state.current == "stage"
    assert dict(conversation.state.answers) == {}
    store = Store.open(fresh_db)
    try:
        turns = store.transcript(conversation.id)
    finally:
        store.close()
    assert turns[-1]["role"] == "advisor"
    assert turns[-1]["text"].startswith("[hint:")


@pytest.mark.parametrize("reply", ["lots", "😀", "", "x" * 10_000, "99999999"],
                         ids=["letters", "emoji", "empty", "10000-chars", "too-many"])
def test_invalid_reply_to_the_number_question_gets_a_hint(fresh_db: Path, reply: str):
    result = console("badnumber", walk_to("hours") + reply + "\n", fresh_db)
    assert result.returncode == 0
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stdout.count("Roughly how many hours a week") == 2
    assert open_conversation(fresh_db, "badnumber").state.current == "hours"


def test_a_10000_character_reply_to_the_text_question_gets_a_hint(fresh_db: Path):
    result = console("longtext", walk_to("pains") + "y" * 10_000 + "\n", fresh_db)
    assert result.returncode == 0
    assert "Traceback" not in result.stdout + result.stderr
    assert "500" in result.stdout.rsplit("y" * 100, 1)[1]  # the limit is named in the hint
    conversation = open_conversation(fresh_db, "longtext")
    assert conversation.state.current == "pains"
    assert "pains" not in conversation.state.answers


def test_bytes_that_are_not_utf8_get_a_hint_and_no_traceback(fresh_db: Path):
    result = run_bytes(["console", "--user", "bytes"], b"\xff\xfe\x80\n\xc3\n3\n", fresh_db)
    out = result.stdout.decode("utf-8", errors="replace")
    err = result.stderr.decode("utf-8", errors="replace")
    assert result.returncode == 0, err
    assert "Traceback" not in out + err
    assert out.count("Where is your company today?") == 3
    conversation = open_conversation(fresh_db, "bytes")
    assert conversation.state.answers == {"stage": "growing"}
    assert conversation.state.current == "size"


def test_after_invalid_replies_a_valid_one_is_taken(fresh_db: Path):
    result = console("recover", "abc\n99\n\n3\n", fresh_db)
    assert_clean(result)
    conversation = open_conversation(fresh_db, "recover")
    assert conversation.state.answers == {"stage": "growing"}
    assert conversation.state.failures == 0


def test_full_walk_output_has_no_html_and_no_traceback_even_with_invalid_replies(fresh_db: Path):
    script = ["abc", *[a for _, a in FULL_WALK[:HOURS]], "lots", *[a for _, a in FULL_WALK[HOURS:]]]
    result = console("messy", lines(*script), fresh_db)
    assert_clean(result)
    [conversation] = all_conversations(fresh_db)
    assert conversation.status == "completed"
    assert dict(conversation.state.answers) == FULL_WALK_ANSWERS


# -- implausible answers are read back ----------------------------------------------------------
def read_back_of(stdout: str, reply: str) -> str:
    """What the console says between the reply ``reply`` and the next line read."""
    return stdout.split(f"> {reply}\n", 1)[1].split("\n> ", 1)[0]


@pytest.mark.parametrize("confirm", ["yes", "", "300"], ids=["yes", "enter", "same-answer"])
def test_an_implausible_answer_is_read_back_and_kept_after_yes(fresh_db: Path, confirm: str):
    # 300 hours a week is more than half the working time a company of 2-10 people has
    assert FULL_WALK_ANSWERS["size"] == "small"
    result = console("plausible", walk(HOURS) + lines("300", confirm) + rest_after("hours"), fresh_db)
    assert_clean(result)
    said = read_back_of(result.stdout, "300")
    assert "300" in said and "yes" in said.lower()  # the answer read back, and how to keep it
    assert "Roughly how many hours a week" in said  # the same question again
    numbers = [int(n) for n, _ in QUESTION_NUMBER.findall(result.stdout)]
    assert numbers == [*range(1, HOURS + 2), *range(HOURS + 1, len(FULL_WALK) + 1)]  # hours asked twice
    [conversation] = all_conversations(fresh_db)
    assert conversation.status == "completed"
    assert dict(conversation.state.answers) == {**FULL_WALK_ANSWERS, "hours": 300}


def test_a_read_back_answer_can_be_corrected(fresh_db: Path):
    result = console("corrected", walk(HOURS) + lines("300", "30"), fresh_db)
    assert_clean(result)
    assert "Roughly how many hours a week" in read_back_of(result.stdout, "300")
    after = result.stdout.split("> 30\n", 1)[1]
    assert "300" not in after  # 30 fits a team of 2-10: not read back
    assert [int(n) for n, _ in QUESTION_NUMBER.findall(result.stdout)][-3:] == [HOURS + 1, HOURS + 1, HOURS + 2]
    conversation = open_conversation(fresh_db, "corrected")
    assert conversation.state.answers["hours"] == 30
    assert conversation.state.current == QUESTION_IDS[HOURS + 1]
    assert conversation.state.pending is None


def test_a_read_back_waiting_for_yes_is_resumed_the_next_time(fresh_db: Path):
    assert_clean(console("pending", walk(HOURS) + lines("300"), fresh_db))
    waiting = open_conversation(fresh_db, "pending")
    assert waiting.state.current == "hours" and "hours" not in waiting.state.answers
    second = console("pending", lines("yes"), fresh_db)
    assert_clean(second)
    assert "300" in second.stdout.split("> yes", 1)[0]  # the read-back is shown again on resuming
    conversation = open_conversation(fresh_db, "pending")
    assert conversation.state.answers["hours"] == 300
    assert conversation.state.current == QUESTION_IDS[HOURS + 1]


def test_an_answer_that_fits_is_not_read_back(fresh_db: Path):
    result = console("fits", walk(HOURS) + lines("120"), fresh_db)  # the most a team of 2-10 may say
    assert_clean(result)
    assert [int(n) for n, _ in QUESTION_NUMBER.findall(result.stdout)][-2:] == [HOURS + 1, HOURS + 2]
    conversation = open_conversation(fresh_db, "fits")
    assert conversation.state.answers["hours"] == 120
    assert conversation.state.current == QUESTION_IDS[HOURS + 1]


# -- the default command ----------------------------------------------------------------------
def test_bot_without_telegram_token_runs_the_console(fresh_db: Path, dialog: Dialog):
    result = run_bot(stdin="3\n", db=fresh_db)
    assert_clean(result)
    assert "Question 1 of" in result.stdout
    for number, option in enumerate(dialog.questions["stage"].options, 1):
        assert f"  {number}) {option.label}" in result.stdout.splitlines()
    [conversation] = all_conversations(fresh_db)
    assert conversation.channel == "console"
    assert conversation.state.answers == {"stage": "growing"}


def test_bot_without_a_command_resumes_like_console_for_the_same_os_user(fresh_db: Path):
    assert_clean(run_bot(stdin="3\n", db=fresh_db))
    again = run_bot(stdin="", db=fresh_db)
    assert_clean(again)
    assert last_question_number(again.stdout) == 2
    assert len(all_conversations(fresh_db)) == 1
