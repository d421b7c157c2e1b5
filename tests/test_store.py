"""The SQLite store: migrations, WAL, round trips, resuming, and refusing unusable paths in one line."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from advisor import AdvisorError
from advisor.engine import ConversationState
from advisor.service import AdvisorService
from advisor.store import Store, Turn, migrations
from tests.conftest import run_bot
from tests.test_console import FULL_WALK, FULL_WALK_ANSWERS, QUESTION_IDS


@pytest.fixture
def store(fresh_db: Path):
    opened = Store.open(fresh_db)
    yield opened
    opened.close()


def tables(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        conn.close()


def applied_migrations(path: Path) -> list[tuple[str, str]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT migration_set, name FROM _sqlite_migrations ORDER BY rowid").fetchall()
    finally:
        conn.close()


def begin(store: Store, user: str = "ana", channel: str = "console", ref: str | None = None,
          state: ConversationState | None = None, turns: tuple[Turn, ...] = ()):
    return store.begin(channel, user, state or ConversationState(current="stage"), "outsourcing", 1,
                       ref=ref, turns=turns)


# -- migrations and connection settings -------------------------------------------------------
def test_migrating_an_empty_file_creates_conversations_turns_and_the_migrations_table(fresh_db: Path):
    fresh_db.touch()
    assert fresh_db.stat().st_size == 0
    Store.open(fresh_db).close()
    assert {"conversations", "turns", "_sqlite_migrations"} <= tables(fresh_db)


def test_opening_a_missing_file_in_an_existing_folder_creates_and_migrates_it(fresh_db: Path):
    assert not fresh_db.exists()
    Store.open(fresh_db).close()
    assert fresh_db.exists()
    assert {"conversations", "turns", "_sqlite_migrations"} <= tables(fresh_db)


def test_reopening_applies_no_migration_twice_and_keeps_the_data(fresh_db: Path):
    first = Store.open(fresh_db)
    conversation = begin(first)
    first.close()
    applied = applied_migrations(fresh_db)
    assert applied, "each migration is recorded"
    assert len(applied) == len(set(applied))
    assert all(migration_set == "advisor" for migration_set, _ in applied)

    for _ in range(2):
        again = Store.open(fresh_db)
        assert migrations.pending(again.db) == []
        assert again.get(conversation.id).user_id == "ana"
        again.close()
    assert applied_migrations(fresh_db) == applied


def test_journal_mode_is_wal(store: Store, fresh_db: Path):
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
    conn = sqlite3.connect(fresh_db)  # WAL is a property of the file, seen by every connection
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
    finally:
        conn.close()


def test_busy_timeout_is_set(store: Store):
    assert store.db.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000


def test_turns_of_an_unknown_conversation_are_refused(store: Store):
    with pytest.raises((sqlite3.IntegrityError, AdvisorError)):
        store.save(999, ConversationState(current="size"), [Turn("person", "3", "stage")])


# -- round trips ------------------------------------------------------------------------------
def test_round_trip_returns_the_same_state_and_the_transcript_in_order(store: Store):
    started = begin(store, ref="promo-1", turns=(Turn("advisor", "Where is your company today?", "stage"),))
    assert started.status == "in_progress"
    assert started.ref == "promo-1"
    assert started.completed_at is None

    state = ConversationState(
        current="tasks",
        answers={"stage": "growing", "size": "small", "core": "product",
                 "pains": "support tickets, café ☕ and “quotes”"},
        history=("stage", "size", "core", "pains"),
        failures=2,
        proposed=("customer_support",),
    )
    store.save(started.id, state, [Turn("person", "3", "stage"), Turn("advisor", "How many?", "size")])
    store.save(started.id, state, [Turn("person", "ok", "size"), Turn("advisor", "Which tasks?", "tasks")])

    loaded = store.get(started.id)
    assert loaded.state == state
    assert loaded.id == started.id
    assert loaded.channel == "console"
    assert loaded.user_id == "ana"
    assert loaded.dialog_id == "outsourcing"
    assert loaded.dialog_version == 1
    transcript = store.transcript(started.id)
    assert [(t["seq"], t["role"], t["question_id"], t["text"]) for t in transcript] == [
        (1, "advisor", "stage", "Where is your company today?"),
        (2, "person", "stage", "3"),
        (3, "advisor", "size", "How many?"),
        (4, "person", "size", "ok"),
        (5, "advisor", "tasks", "Which tasks?"),
    ]
    assert all(t["at"] for t in transcript)


def test_state_with_structured_answers_round_trips(store: Store):
    state = ConversationState(
        current="recommendation",
        answers={"tasks": ["customer_support", "recruiting"], "hours": 12.5,
                 "contact": {"name": "Ana", "email": "ana@example.com", "phone": None, "consent": True}},
        history=("tasks", "hours", "contact"),
    )
    conversation = begin(store, state=state)
    assert store.get(conversation.id).state == state


def test_an_answer_read_back_and_waiting_for_a_yes_survives_reopening(fresh_db: Path):
    first = Store.open(fresh_db)
    conversation = begin(first, "checker")
    state = ConversationState(current="hours", answers={"stage": "growing", "size": "small"},
                              history=("stage", "size"), pending={"check": "hours_beyond_team", "value": 300})
    first.save(conversation.id, state, [Turn("person", "300", "hours")])
    first.close()
    second = Store.open(fresh_db)
    try:
        found = second.find_open("console", "checker")
        assert found is not None
        assert found.state == state
        assert found.state.pending == {"check": "hours_beyond_team", "value": 300}
    finally:
        second.close()


def test_transcripts_of_two_conversations_are_kept_apart(store: Store):
    one = begin(store, "one", turns=(Turn("advisor", "q1", "stage"),))
    two = begin(store, "two", turns=(Turn("advisor", "q1 for two", "stage"),))
    store.save(one.id, one.state, [Turn("person", "1", "stage")])
    assert [t["text"] for t in store.transcript(one.id)] == ["q1", "1"]
    assert [t["text"] for t in store.transcript(two.id)] == ["q1 for two"]


def test_saving_a_recommendation_completes_the_conversation(store: Store):
    conversation = begin(store)
    rec = {"readiness_score": 60, "profile": "tactical", "functions": []}
    store.save(conversation.id, ConversationState(current="recommendation"), recommendation=rec,
               summary="A summary.")
    done = store.get(conversation.id)
    assert done.status == "completed"
    assert done.recommendation == rec
    assert done.summary == "A summary."
    assert done.completed_at is not None
    assert done.completed_at >= done.started_at


def test_get_of_an_unknown_id_raises_advisor_error(store: Store):
    with pytest.raises(AdvisorError):
        store.get(12345)


# -- resuming ---------------------------------------------------------------------------------
def test_find_open_after_restart_returns_the_conversation_at_the_same_question(fresh_db: Path):
    first = Store.open(fresh_db)
    conversation = begin(first, "resumer")
    state = ConversationState(current="core", answers={"stage": "early", "size": "solo"},
                              history=("stage", "size"))
    first.save(conversation.id, state, [Turn("person", "1", "size")])
    first.close()

    second = Store.open(fresh_db)
    try:
        found = second.find_open("console", "resumer")
        assert found is not None
        assert found.id == conversation.id
        assert found.state == state
        assert found.state.current == "core"
    finally:
        second.close()


def test_find_open_is_per_channel_and_user(store: Store):
    begin(store, "ana", channel="console")
    assert store.find_open("console", "ana") is not None
    assert store.find_open("telegram", "ana") is None
    assert store.find_open("console", "bob") is None


def test_a_completed_conversation_is_not_returned_by_find_open(store: Store):
    conversation = begin(store)
    store.save(conversation.id, ConversationState(current="recommendation"),
               recommendation={"readiness_score": 1}, summary="s")
    assert store.find_open("console", "ana") is None


def test_abandon_sets_the_status_and_closes_the_conversation(store: Store):
    conversation = begin(store)
    store.abandon(conversation.id, [Turn("person", "/restart", "stage")])
    abandoned = store.get(conversation.id)
    assert abandoned.status == "abandoned"
    assert store.find_open("console", "ana") is None
    assert store.transcript(conversation.id)[-1]["text"] == "/restart"


def test_find_open_returns_the_newest_open_conversation(store: Store):
    old = begin(store)
    store.abandon(old.id)
    new = begin(store)
    found = store.find_open("console", "ana")
    assert found is not None and found.id == new.id


# -- commits are visible at once --------------------------------------------------------------
def test_each_service_answer_is_visible_to_an_independent_connection(service: AdvisorService, fresh_db: Path):
    outcome = service.open("console", "committed")
    reader = sqlite3.connect(fresh_db, isolation_level=None)
    try:
        for index, (qid, reply) in enumerate(FULL_WALK):
            outcome = service.answer(outcome.conversation, reply)
            state, answers, status = reader.execute(
                "SELECT state, answers, status FROM conversations WHERE id = ?", [outcome.conversation.id]
            ).fetchone()
            stored = json.loads(answers)
            assert stored[qid] == FULL_WALK_ANSWERS[qid]
            person = reader.execute(
                "SELECT COUNT(*) FROM turns WHERE conversation_id = ? AND role = 'person'",
                [outcome.conversation.id],
            ).fetchone()[0]
            assert person == index + 1
            if index + 1 < len(FULL_WALK):
                assert state == QUESTION_IDS[index + 1]
                assert status == "in_progress"
            else:
                assert status == "completed"
                row = reader.execute("SELECT recommendation, summary, completed_at FROM conversations"
                                     " WHERE id = ?", [outcome.conversation.id]).fetchone()
                assert json.loads(row[0])["readiness_score"] == outcome.step.recommendation["readiness_score"]
                assert row[1]
                assert row[2]
    finally:
        reader.close()
    assert outcome.step.kind == "finish"


def test_an_invalid_answer_is_committed_as_a_hint_turn(service: AdvisorService, fresh_db: Path):
    outcome = service.open("console", "hinted")
    outcome = service.answer(outcome.conversation, "banana")
    reader = sqlite3.connect(fresh_db)
    try:
        rows = reader.execute("SELECT role, text FROM turns WHERE conversation_id = ? ORDER BY seq",
                              [outcome.conversation.id]).fetchall()
        failures = json.loads(reader.execute("SELECT context FROM conversations WHERE id = ?",
                                             [outcome.conversation.id]).fetchone()[0])["failures"]
    finally:
        reader.close()
    assert rows[-2] == ("person", "banana")
    assert rows[-1][0] == "advisor" and rows[-1][1].startswith("[hint:")
    assert failures == 1


# -- unusable paths ---------------------------------------------------------------------------
def _missing_folder(tmp_path: Path) -> Path:
    return tmp_path / "no-such-folder" / "advisor.db"


def _directory(tmp_path: Path) -> Path:
    folder = tmp_path / "a-folder.db"
    folder.mkdir()
    return folder


def _not_sqlite(tmp_path: Path) -> Path:
    junk = tmp_path / "notes.db"
    junk.write_text("These are my notes, not a database.\n" * 50)
    return junk


UNUSABLE = {"missing-folder": _missing_folder, "directory": _directory, "not-sqlite": _not_sqlite}


@pytest.mark.parametrize("make", UNUSABLE.values(), ids=UNUSABLE.keys())
def test_an_unusable_path_raises_advisor_error_with_a_one_line_message(tmp_path: Path, make):
    path = make(tmp_path)
    before = path.read_bytes() if path.is_file() else None
    with pytest.raises(AdvisorError) as raised:
        Store.open(path)
    message = str(raised.value)
    assert message
    assert "\n" not in message
    assert str(path) in message
    if before is not None:
        assert path.read_bytes() == before, "a file that is not SQLite is left untouched"


@pytest.mark.parametrize("make", UNUSABLE.values(), ids=UNUSABLE.keys())
def test_console_with_an_unusable_database_prints_one_error_line(tmp_path: Path, make):
    path = make(tmp_path)
    result = run_bot("console", "--user", "x", stdin="1\n", db=path)
    assert result.returncode != 0
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stdout == ""
    err = result.stderr.strip().splitlines()
    assert len(err) == 1, result.stderr
    assert err[0].startswith("error: ")
    assert str(path) in err[0]


@pytest.mark.parametrize("make", [_directory, _not_sqlite], ids=["directory", "not-sqlite"])
def test_export_with_an_unusable_database_prints_one_error_line(tmp_path: Path, make):
    path = make(tmp_path)
    result = run_bot("export", "--format", "json", db=path)
    assert result.returncode != 0
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stdout == ""
    err = result.stderr.strip().splitlines()
    assert len(err) == 1, result.stderr
    assert err[0].startswith("error: ")


def test_export_with_a_database_in_a_missing_folder_prints_an_empty_array_and_creates_nothing(tmp_path: Path):
    path = _missing_folder(tmp_path)
    result = run_bot("export", "--format", "json", db=path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
    assert not path.parent.exists()


def test_the_db_option_overrides_advisor_db(tmp_path: Path):
    chosen = tmp_path / "chosen.db"
    ignored = tmp_path / "ignored.db"
    result = run_bot("--db", str(chosen), "console", "--user", "x", stdin="1\n", db=ignored)
    assert result.returncode == 0, result.stderr
    assert chosen.exists()
    assert not ignored.exists()


def test_a_database_path_starting_with_tilde_is_in_the_home_folder(tmp_path: Path):
    # Store.open checks the folder of the *expanded* path, so "~/..." is meant to work (e.g. set in a
    # service file or .env, where no shell expands it); console and export must then use that file.
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home), "ADVISOR_DB": "~/advisor.db"}
    result = run_bot("console", "--user", "x", stdin="1\n", env=env)
    assert result.returncode == 0, result.stderr
    assert (home / "advisor.db").exists()
    exported = run_bot("export", "--format", "json", env=env)
    assert exported.returncode == 0, exported.stderr
    assert [item["user_id"] for item in json.loads(exported.stdout)] == ["x"]


def test_the_search_index_follows_the_answers_and_ignores_other_updates(store: Store):
    """The index is rewritten only when answers or summary change; it must still find the new words
    and forget the old ones, and an update of anything else must leave it as it is."""
    from advisor.store import Filters

    conversation = begin(store)

    def found(words: str) -> list[int]:
        return [c.id for c in store.conversations(Filters(search=words))]

    store.save(conversation.id, ConversationState(current="size", answers={"pains": "cold calling"},
                                                  history=("pains",)))
    assert found("cold") == [conversation.id]
    store.save(conversation.id, ConversationState(current="size", answers={"pains": "payroll errors"},
                                                  history=("pains",)))
    assert found("payroll") == [conversation.id] and found("cold") == []
    store.set_asked(conversation.id, "size", 42)
    store.mark_nudged(conversation.id)
    assert found("payroll") == [conversation.id]
    # the trigger: only answers and summary re-index, and only when they differ
    [trigger] = [row[0] for row in store.db.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'conversations_au'")]
    assert 'UPDATE OF "answers", "summary"' in trigger
    # written as sqlite-utils writes its own: its disable_fts() removes it with the index
    store.db["conversations"].disable_fts()
    assert not store.db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall()
    store.save(conversation.id, ConversationState(current="size", answers={"pains": "invoices"}, history=("pains",)))
