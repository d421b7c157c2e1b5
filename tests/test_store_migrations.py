"""A database from every earlier schema version opens, migrates and keeps every row.

The fixtures (tests/fixtures/schema/v1.db ...) were written by make_fixtures.py with the migrations
of their time and are committed as they are.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from advisor.export import record
from advisor.store import SCHEMA_VERSION, Filters, Store, migrations
from tests.conftest import FIXTURES, run_bot

VERSIONS = range(1, SCHEMA_VERSION)


def test_there_is_a_fixture_for_every_earlier_schema_version():
    assert len(migrations._migrations) == SCHEMA_VERSION  # bump SCHEMA_VERSION and add a fixture
    assert {p.name for p in (FIXTURES / "schema").glob("v*.db")} == {f"v{v}.db" for v in VERSIONS}


@pytest.fixture(params=VERSIONS, ids=lambda v: f"v{v}")
def old_db(request, tmp_path: Path) -> tuple[int, Path]:
    copy = tmp_path / "advisor.db"
    shutil.copy(FIXTURES / "schema" / f"v{request.param}.db", copy)
    return request.param, copy


def test_an_old_database_is_migrated_to_the_current_schema(old_db):
    _, path = old_db
    store = Store.open(path)
    try:
        assert not migrations.pending(store.db)
        assert len(migrations.applied(store.db)) == SCHEMA_VERSION
        for table in ("conversations", "turns", "reviews", "processed_updates", "blocked", "conversations_fts"):
            assert store.db[table].exists(), table
    finally:
        store.close()


def test_an_old_database_keeps_every_conversation_and_turn(old_db):
    version, path = old_db
    store = Store.open(path)
    try:
        completed, in_progress = store.get(1), store.get(2)
        assert completed.status == "completed" and completed.ref == "rep_alice"
        assert completed.state.answers["tasks"] == ["telemarketing"]
        # made by the advisor of the fixture's time: the rules of version 2 (dialog v2) score these answers 36
        assert completed.recommendation["readiness_score"] == (44 if version < 6 else 36)
        assert in_progress.state.current == "core" and in_progress.state.history == ("stage", "size")
        assert in_progress.state.failures == 1
        assert [t["text"] for t in store.transcript(1)] == ["Where is your company today?", "Growing: scaling up"]
        assert store.find_open("console", "ana").id == 2
        if version >= 2:
            assert completed.contact == {"name": "Tom", "phone": "+441234567", "consent": True}
        if version >= 3:
            assert store.review(1)["tags"] == ["hot"] and store.review(1)["verdict"] == "agree"
        # search works on the old rows too (the index is built by migration 003 for older files)
        assert [c.id for c in store.conversations(Filters(search="cold call"))] == [1]
        assert json.dumps(record(completed))  # exports as before
    finally:
        store.close()


def test_an_old_database_can_be_used_at_once(old_db, service):
    _, path = old_db
    result = run_bot("console", "--user", "ana", stdin="1\nquit\n", db=path)
    assert result.returncode == 0, result.stderr
    assert "Welcome back" in result.stdout and "Question 4 of" in result.stdout
    exported = json.loads(run_bot("export", "--format", "json", db=path).stdout)
    assert [c["id"] for c in exported] == [1, 2]
    assert exported[1]["answers"] == {"stage": "pre_launch", "size": "small", "core": "sales"}
