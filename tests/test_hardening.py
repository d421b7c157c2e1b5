"""Odd input and odd files, as an attacker tried them (issue 12's low findings): one-line errors, never
a traceback or a 500; nothing written on a read; escapes shown, not obeyed.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from advisor.service import build_service
from tests.conftest import FIXTURES, ROOT, run_bot


def _database_with(tmp_path: Path, name: str, pains: str = "ordinary words") -> Path:
    """A database holding one completed console conversation by ``name`` (who typed ``pains``)."""
    db = tmp_path / "advisor.db"
    lines = ["3", "3", "1", "1", pains, "", "30", "1", "2", "1", "2", "1", "1", "2", "1", f"{name}, a@example.com"]
    result = run_bot("console", "--user", "mallory", stdin="\n".join(lines) + "\n\n", db=db)
    assert result.returncode == 0, result.stderr
    return db


def test_show_and_summaries_print_terminal_escapes_and_bidi_overrides_as_visible_codes(tmp_path):
    evil = "Eve\x1b]0;owned\x07\x1b[2J\u202eevil"
    db = _database_with(tmp_path, evil, pains="cold calling \x1b[31mred\x1b[0m and \u202ereversed")
    for args in (("show", "1"), ("summaries",)):
        result = run_bot(*args, db=db)
        assert result.returncode == 0, result.stderr
        assert "\x1b" not in result.stdout and "\u202e" not in result.stdout and "\x07" not in result.stdout
        assert "\\x1b" in result.stdout and "\\u202e" in result.stdout  # shown, so a reviewer sees them


@pytest.mark.parametrize(("args", "expected"), [
    (("show", "99999999999999999999"), "no conversation 99999999999999999999"),
    (("summaries", "--since", "0001-01-01T00:00:00+14:00"), "--since: expected a date"),
    (("export", "--format", "json", "-o", "/dev/full"), "cannot write /dev/full"),
])
def test_odd_arguments_are_one_line_errors(tmp_path, args, expected):
    db = _database_with(tmp_path, "Ana")
    if args[-1] == "/dev/full" and not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    result = run_bot(*args, db=db)
    assert result.returncode == 1 and expected in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_huge_limit_is_all(tmp_path):
    db = _database_with(tmp_path, "Ana")
    result = run_bot("summaries", "--limit", "9" * 30, db=db)
    assert result.returncode == 0 and "1 conversation(s)" in result.stdout, result.stderr


def _schema(path: Path) -> tuple[list[str], str]:
    with sqlite3.connect(path) as connection:
        tables = sorted(r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))
        mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
    return tables, mode


def test_read_only_commands_never_migrate_or_change_a_file(tmp_path):
    old = tmp_path / "old.db"
    shutil.copy(FIXTURES / "schema" / "v5.db", old)
    before = (old.read_bytes(), _schema(old))
    for args in (("summaries",), ("show", "1"), ("export", "--format", "csv")):
        assert run_bot(*args, db=old).returncode == 0
    assert (old.read_bytes(), _schema(old)) == before
    other = tmp_path / "other-app.db"
    with sqlite3.connect(other) as connection:
        connection.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    before = (other.read_bytes(), _schema(other))
    for args in (("summaries",), ("export", "--format", "json"), ("console",)):
        result = run_bot(*args, db=other, stdin="quit\n")
        assert result.returncode == 1 and "another program" in result.stderr, result.stderr
    assert (other.read_bytes(), _schema(other)) == before  # no tables added, no WAL mode


def test_a_database_of_a_newer_version_is_refused_not_served(tmp_path):
    db = _database_with(tmp_path, "Ana")
    with sqlite3.connect(db) as connection:
        connection.execute("INSERT INTO _sqlite_migrations (migration_set, name, applied_at)"
                           " VALUES ('advisor', 'm999_from_the_future', '2027-01-01')")
    for args in (("summaries",), ("console",)):
        result = run_bot(*args, db=db, stdin="quit\n")
        assert result.returncode == 1 and "written by a newer version of the advisor" in result.stderr, result.stderr
    with pytest.raises(Exception, match="newer version"):
        build_service(db)


@pytest.mark.parametrize("how", ["symlink", "hard_link"])
def test_the_instance_lock_holds_through_a_symlink(tmp_path, how):
    db = tmp_path / "advisor.db"
    build_service(db).store.close()
    (tmp_path / "elsewhere").mkdir()
    link = tmp_path / "elsewhere" / "link.db"
    (os.symlink if how == "symlink" else os.link)(db, link)  # a hard link was the way round it
    first = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; sys.path.insert(0, sys.argv[1]); import bot; "
        "lock = bot.instance_lock(sys.argv[2]); print('locked', flush=True); time.sleep(30)"),
        str(ROOT), str(db)], stdout=subprocess.PIPE, text=True)
    try:
        assert first.stdout is not None and first.stdout.readline().strip() == "locked"
        second = subprocess.run([sys.executable, "-c", (
            "import sys; sys.path.insert(0, sys.argv[1]); import bot\n"
            "try:\n    bot.instance_lock(sys.argv[2])\nexcept Exception as e:\n    print(e)\n"),
            str(ROOT), str(link)], capture_output=True, text=True, timeout=30)
        assert "already running" in second.stdout, second.stdout + second.stderr
    finally:
        first.kill()
        first.wait()


def test_processes_making_one_new_database_at_once_all_succeed(tmp_path):
    db, go = tmp_path / "fresh.db", tmp_path / "go"
    code = ("import sys, os, time; sys.path.insert(0, sys.argv[1]); from advisor.service import build_service\n"
            "while not os.path.exists(sys.argv[3]): time.sleep(0.001)\n"
            "build_service(sys.argv[2]).store.close(); print('ok')")
    starts = [subprocess.Popen([sys.executable, "-c", code, str(ROOT), str(db), str(go)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True) for _ in range(8)]
    time.sleep(3)  # every process imported and waiting at the line
    go.touch()
    results = [p.communicate(timeout=60) for p in starts]
    assert all(p.returncode == 0 for p in starts), [err[-300:] for _out, err in results]
    assert run_bot("summaries", db=db).returncode == 0
