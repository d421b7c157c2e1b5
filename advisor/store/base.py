"""The base every part of Store builds on: its state, opening the file, and how long writes wait."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from sqlite_utils import Database

from advisor import AdvisorError
from advisor.store.schema import _check_schema, migrations

if TYPE_CHECKING:
    from advisor.store.records import Conversation

log = logging.getLogger("advisor.store")  # one logger for the whole package, named as before it was split


class StoreBase:
    """The connection and the state shared by the parts of ``Store`` (each a mixin of this)."""

    def __init__(self, db: Database, path: str):
        self.db = db
        self.path = path
        self._recorded: tuple[str, int] | None = None  # the update a transaction last recorded
        self._checkpoints: tuple[threading.Thread, threading.Event] | None = None
        # emptying the write-ahead log after a wipe, off the caller's thread, until it works
        self._truncate_lock = threading.Lock()
        self._truncate_wanted = False
        self._optimize_wanted = False  # the search index to merge first (off the event loop, in the bot)
        self._truncating: threading.Thread | None = None
        self._closing = threading.Event()

    if TYPE_CHECKING:  # what one part uses of another (each defined in its own module)
        def _record_update(self, stamp: str | None = None) -> None: ...  # delivery.py

        def queue_alert(self, conversation_id: int, event: str,  # leads.py
                        per_person_a_day: int | None = None) -> int | None: ...

        def get(self, conversation_id: int) -> Conversation: ...  # conversations.py

        def _used_ids_up_to(self, conversation_id: int) -> None: ...  # conversations.py

        def _compact_search_index(self) -> None: ...  # wal.py

        def queue_event(self, event_type: str, conversation_id: int | None,  # outbox.py
                        data: dict[str, Any] | None = None) -> str: ...

        def _forget_outbox(self, ids: Sequence[int]) -> None: ...  # outbox.py

    @classmethod
    def open(cls, path: str | Path, read_only: bool = False) -> Self:
        """Open the database at ``path`` (creating and migrating it as needed), or raise AdvisorError.

        A database written by a newer version of the advisor, or a SQLite file of another program,
        is refused rather than served or changed. ``read_only`` (``summaries``, ``show``, ``export``):
        nothing is written, so nothing is migrated either; an older database is read as it is."""
        name = str(path) if str(path) == ":memory:" else str(Path(path).expanduser())
        if name != ":memory:":
            parent = Path(name).resolve().parent
            if not parent.is_dir():
                raise AdvisorError(f"cannot open database {name}: folder {parent} does not exist")
        for attempt in range(50):  # two processes creating one new file at once: one waits its turn
            try:
                return cls._open(name, read_only)
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or attempt == 49:
                    raise AdvisorError(f"cannot open database {name}: {error}") from None
                time.sleep(0.1)
        raise AssertionError("unreachable")

    @classmethod
    def _open(cls, name: str, read_only: bool) -> Self:
        """One try at opening (see open); busy_timeout does not cover switching to WAL mode or the
        first migration's schema lock, which another process making the same file may hold."""
        db: Database | None = None
        try:
            if read_only and name != ":memory:":
                db = Database(sqlite3.connect(f"{Path(name).resolve().as_uri()}?mode=ro", uri=True))
            else:
                db = Database(name)
            db.execute("PRAGMA busy_timeout = 5000")
            _check_schema(db, name)
            if not read_only:
                if name != ":memory:":
                    db.enable_wal()
                db.execute("PRAGMA synchronous = NORMAL")
                db.execute("PRAGMA foreign_keys = ON")
                db.execute("PRAGMA secure_delete = ON")  # forgotten words do not linger in free pages
                if migrations.pending(db):
                    # one process migrates at a time (the others wait here), each migration still its
                    # own savepoint: two processes making one new file both applied m001 before
                    db.execute("BEGIN IMMEDIATE")
                    try:
                        migrations.apply(db)
                        db.execute("COMMIT")
                    except BaseException:
                        db.conn.rollback()
                        raise
        except sqlite3.OperationalError as error:
            if "locked" in str(error):
                if db is not None:
                    db.close()
                raise
            raise AdvisorError(f"cannot open database {name}: {error}") from None
        except sqlite3.DatabaseError as error:
            raise AdvisorError(f"cannot open database {name}: {error}") from None
        return cls(db, name)

    busy_ms = 5000  # how long a write waits, blocking its caller, for another process's write lock

    def wait_for_writers(self, ms: int) -> None:
        """How long a write waits (blocking) for another process's write lock before it fails with
        "database is locked"; the bot keeps this short, as the wait blocks its event loop."""
        self.busy_ms = ms
        self.db.execute(f"PRAGMA busy_timeout = {int(ms)}")

    def writable(self) -> bool:
        """Whether a write could start now, asked without waiting: another process may hold SQLite's
        write lock (a long ``sqlite3`` session, a backup), and SQLite's own busy wait would block the
        caller (for the bot: its event loop, so every chat) for up to the busy timeout."""
        if self.path == ":memory:" or self.db.conn.in_transaction:
            return True
        self.db.execute("PRAGMA busy_timeout = 0")
        try:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("ROLLBACK")
            return True
        except sqlite3.OperationalError as error:
            if "locked" in str(error) or "busy" in str(error):
                return False
            raise
        finally:
            self.db.execute(f"PRAGMA busy_timeout = {int(self.busy_ms)}")
