"""The store against a prospect who floods lead cards, a reader that holds the write-ahead log, ids
reused after /forget, and terminal escapes in an export printed to a terminal."""

from __future__ import annotations

import io
import json
import shutil
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from advisor.engine import ConversationState
from advisor.export import write_json
from advisor.reports import write_csv, write_jsonl
from advisor.store import Conversation, Store, Turn
from tests.conftest import FIXTURES

LIMIT = 3  # advisor.channels.telegram.CARDS_PER_PERSON_A_DAY
RECOMMENDATION = {"verdict": "hand_over", "readiness_score": 50, "profile": "tactical", "functions": []}


@pytest.fixture
def store(fresh_db: Path):
    opened = Store.open(fresh_db)
    yield opened
    opened.close()


def begin(store: Store, user: str = "1001", channel: str = "telegram", turns: tuple[Turn, ...] = ()) -> Conversation:
    return store.begin(channel, user, ConversationState(current="stage"), "outsourcing", 1, turns=turns)


def complete(store: Store, conversation: Conversation, event: str = "completed") -> int | None:
    return store.save(conversation.id, ConversationState(current="contact", answers={"stage": "growing"}),
                      recommendation=RECOMMENDATION, summary="Growing.", alert=(event, LIMIT))


# -- 1. lead cards: one person queues at most the limit a day, whatever the events ------------------
def test_contact_shares_after_consent_queue_no_more_cards_than_the_daily_limit(store: Store):
    conversation = begin(store)
    queued = [complete(store, conversation), store.record_consent(conversation.id, alert=("expert", LIMIT))]
    for i in range(15):  # the same person shares a phone number again and again
        queued.append(store.save_contact(conversation.id, {"name": "Ana", "phone": f"+442079460{i:03d}",
                                                           "consent": True}, alert=("contact", LIMIT)))
    assert len([a for a in queued if a is not None]) == LIMIT
    assert len(store.pending_alerts()) == LIMIT
    assert store.cards_today("telegram", "1001") == LIMIT


def test_cards_delivered_still_count_for_the_day(store: Store):
    """The outbox empties as cards go out: the day's count must not empty with it."""
    conversation = begin(store)
    complete(store, conversation)
    store.record_consent(conversation.id, alert=("expert", LIMIT))
    for alert_id, _, _ in store.pending_alerts():
        store.alert_done(alert_id)  # sent to the sales chat
    made = [store.save_contact(conversation.id, {"phone": f"+4420794601{i}", "consent": True},
                               alert=("contact", LIMIT)) for i in range(10)]
    assert len([a for a in made if a is not None]) == 1
    later = begin(store)  # a new conversation of the same person: no card either
    assert complete(store, later) is None
    assert store.pending_alerts() == [(made[0], conversation.id, "contact")]


def test_the_limit_is_per_person_and_per_day(store: Store):
    for _ in range(LIMIT + 2):
        complete(store, begin(store, user="1001"))
    assert store.cards_today("telegram", "1001") == LIMIT
    assert complete(store, begin(store, user="1002")) is not None  # someone else
    assert complete(store, begin(store, user="1001", channel="web")) is not None  # another channel's person
    # a day later the person may make cards again
    yesterday = (datetime.now(UTC) - timedelta(hours=25)).strftime("%Y-%m-%dT%H:%M:%SZ")
    store.db.execute("UPDATE cards_queued SET at = ?", [yesterday])
    assert store.cards_today("telegram", "1001") == 0
    assert complete(store, begin(store, user="1001")) is not None


def test_no_limit_queues_every_card(store: Store):
    conversation = begin(store)
    complete(store, conversation)
    assert all(store.queue_alert(conversation.id, "contact") is not None for _ in range(5))
    assert len(store.pending_alerts()) == 6


def test_forget_takes_the_persons_card_counts_too(store: Store):
    conversation = begin(store)
    complete(store, conversation)
    store.forget("telegram", "1001")
    assert store.db.execute("SELECT COUNT(*) FROM cards_queued").fetchone() == (0,)


# -- 2. /forget while another connection reads: the log is emptied once the reader is done ----------
WORDS = (b"zebrafinch", b"quokkaland", b"Zorblax")


def _on_disk(path: Path, suffix: str) -> list[bytes]:
    file = Path(f"{path}{suffix}")
    data = file.read_bytes() if file.exists() else b""
    return [word for word in WORDS if word in data]


def _forget_while_a_reader_holds_a_snapshot(store: Store, path: Path) -> None:
    conversation = begin(store, turns=(Turn("person", "zebrafinch reps in quokkaland, ask Zorblax"),))
    store.save(conversation.id, ConversationState(current="size", answers={"pains": "zebrafinch quokkaland"}))
    complete(store, conversation)
    time.sleep(0.3)
    reader = sqlite3.connect(path)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT COUNT(*) FROM conversations").fetchall()  # holds its snapshot
        assert store.forget("telegram", "1001") == 1
        time.sleep(0.5)
    finally:
        reader.rollback()
        reader.close()
    deadline = time.monotonic() + 3
    while (_on_disk(path, "-wal") or _on_disk(path, "")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _on_disk(path, "-wal") == [] and _on_disk(path, "") == []


def test_forget_empties_the_log_once_a_reader_lets_go(fresh_db: Path):
    store = Store.open(fresh_db)
    try:
        _forget_while_a_reader_holds_a_snapshot(store, fresh_db)
    finally:
        store.close()


def test_forget_empties_the_log_once_a_reader_lets_go_with_checkpoints_off_the_loop(fresh_db: Path):
    store = Store.open(fresh_db)
    store.start_checkpoints(every=1.0)  # as the bot runs: passive checkpoints every second
    try:
        _forget_while_a_reader_holds_a_snapshot(store, fresh_db)
        # back to passive: later writes are not truncated each round
        begin(store, user="2002")
        time.sleep(1.5)
        assert store._truncating is None
    finally:
        store.close()


def test_with_checkpoints_off_the_loop_the_index_is_merged_off_the_callers_thread_too(fresh_db: Path):
    # the merge rewrites the whole index (0.2-0.4 s at 20,000 conversations): not on the bot's event loop
    store = Store.open(fresh_db)
    store.start_checkpoints(every=1.0)
    on_caller: list[str] = []
    store.db.conn.set_trace_callback(on_caller.append)
    try:
        conversation = begin(store, turns=(Turn("person", "zebrafinch reps in quokkaland, ask Zorblax"),))
        store.save(conversation.id, ConversationState(current="size", answers={"pains": "zebrafinch quokkaland"}))
        assert store.forget("telegram", "1001") == 1
        assert not [sql for sql in on_caller if "optimize" in sql]
        deadline = time.monotonic() + 3  # and yet the words leave the index's segments and the log
        while (_on_disk(fresh_db, "-wal") or _on_disk(fresh_db, "")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _on_disk(fresh_db, "-wal") == [] and _on_disk(fresh_db, "") == []
    finally:
        store.db.conn.set_trace_callback(None)
        store.close()
    # without them (the console, the command line) it is done at once, before forget returns
    store = Store.open(fresh_db)
    store.db.conn.set_trace_callback(on_caller.append)
    try:
        begin(store, user="2002", turns=(Turn("person", "zebrafinch"),))
        store.forget("telegram", "2002")
        assert [sql for sql in on_caller if "optimize" in sql]
        assert _on_disk(fresh_db, "-wal") == [] and _on_disk(fresh_db, "") == []
    finally:
        store.db.conn.set_trace_callback(None)
        store.close()


def test_a_reader_that_never_lets_go_does_not_hold_up_closing(fresh_db: Path):
    store = Store.open(fresh_db)
    begin(store, turns=(Turn("person", "zebrafinch"),))
    reader = sqlite3.connect(fresh_db)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT COUNT(*) FROM conversations").fetchall()
        store.forget("telegram", "1001")
        time.sleep(0.3)
        started = time.monotonic()
        store.close()
        assert time.monotonic() - started < 2
    finally:
        reader.rollback()
        reader.close()


# -- 3. conversation ids are never used twice --------------------------------------------------
def test_the_id_of_a_forgotten_conversation_is_not_given_to_the_next_person(store: Store, fresh_db: Path):
    ana, bob = begin(store, user="ana"), begin(store, user="bob")
    assert store.forget("telegram", "bob") == 1
    carol = begin(store, user="carol")
    assert carol.id not in (ana.id, bob.id) and carol.id > bob.id
    store.forget("telegram", "carol")
    store.forget("telegram", "ana")  # none left at all
    store.close()
    reopened = Store.open(fresh_db)
    try:
        dave = begin(reopened, user="dave")
        assert dave.id > carol.id
    finally:
        reopened.close()


def test_ids_of_rows_removed_outside_the_advisor_are_not_reused_either(store: Store):
    first = begin(store, user="ana")
    store.db.execute("DELETE FROM turns WHERE conversation_id = ?", [first.id])
    store.db.execute("DELETE FROM conversations WHERE id = ?", [first.id])  # e.g. by hand in sqlite3
    assert begin(store, user="bob").id > first.id


def test_a_database_of_an_earlier_version_reuses_no_id_after_migrating(tmp_path: Path):
    path = tmp_path / "advisor.db"
    shutil.copy(FIXTURES / "schema" / "v6.db", path)  # conversations 1 and 2 (console, ana)
    store = Store.open(path)
    try:
        assert store.forget("console", "ana") == 1
        assert begin(store, user="bob").id == 3
        assert store.get(1).ref == "rep_alice"
    finally:
        store.close()


def test_two_stores_on_one_file_never_share_an_id(fresh_db: Path):
    first, second = Store.open(fresh_db), Store.open(fresh_db)
    try:
        made = []
        for i in range(5):
            made.append(begin(first, user=f"a{i}").id)
            made.append(begin(second, user=f"b{i}").id)
            second.forget("telegram", f"b{i}")  # the newest, forgotten through the other connection
        assert len(set(made)) == len(made) and made == sorted(made)
    finally:
        first.close()
        second.close()


# -- 4. exports printed to a terminal show escapes instead of running them -----------------------
EVIL = "Eve\x1b]0;owned\x07\x1b[2J\u202eevil\x9b31m\x7f"
RAW = ("\x1b", "\x07", "\u202e", "\x9b", "\x7f")


def _evil(store: Store) -> list[Conversation]:
    conversation = store.begin("telegram", EVIL, ConversationState(current="stage"), "outsourcing", 1, ref="r")
    store.save(conversation.id, ConversationState(current="contact", answers={"pains": f"cold calling {EVIL}"}),
               recommendation=RECOMMENDATION, summary=f"Says {EVIL}")
    store.record_consent(conversation.id)
    store.save_contact(conversation.id, {"name": EVIL, "phone": "+34600111222", "consent": True})
    return list(store.conversations())


def test_json_for_a_terminal_escapes_what_a_terminal_runs_and_means_the_same(store: Store):
    conversations = _evil(store)
    for writer in (write_json, write_jsonl):
        as_data, for_terminal = io.StringIO(), io.StringIO()
        writer(conversations, as_data)
        writer(conversations, for_terminal, printable=True)
        assert not any(c in for_terminal.getvalue() for c in RAW), writer
        if writer is write_json:
            assert json.loads(for_terminal.getvalue()) == json.loads(as_data.getvalue())
        else:
            assert [json.loads(x) for x in for_terminal.getvalue().splitlines()] == \
                [json.loads(x) for x in as_data.getvalue().splitlines()]
        assert "\\u202e" in for_terminal.getvalue()
        assert "\u202e" in as_data.getvalue()  # a file or a pipe gets the data as it is


def test_csv_for_a_terminal_escapes_what_a_terminal_runs(store: Store):
    from advisor.reports import csv_row

    conversations = _evil(store)
    as_data, for_terminal = io.StringIO(), io.StringIO()
    assert write_csv([csv_row(c, store.review(c.id)) for c in conversations], as_data) == 1
    assert write_csv([csv_row(c, store.review(c.id)) for c in conversations], for_terminal, printable=True) == 1
    shown = for_terminal.getvalue()
    assert not any(c in shown for c in RAW)
    assert "\\x1b]0;owned\\x07" in shown and "\\u202e" in shown and "+34600111222" in shown
    assert all(c in as_data.getvalue() for c in RAW)  # a file or a pipe: unchanged
