"""The write-ahead log: checkpoints off the caller's thread, emptying it after a wipe, and closing."""

from __future__ import annotations

import sqlite3
import threading

from advisor.store.base import StoreBase, log


def _checkpoint_until(path: str, every: float, stop: threading.Event) -> None:
    connection = sqlite3.connect(path, check_same_thread=False)
    try:
        connection.execute("PRAGMA busy_timeout = 1000")
        while True:
            stopping = stop.wait(every)
            try:
                connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error as error:  # busy or locked: the next round catches up
                log.debug("WAL checkpoint skipped: %s", error)
            if stopping:
                return
    finally:
        connection.close()


TRUNCATE_RETRY_SECONDS = 0.2  # how often the log is tried again, once a wipe could not empty it


OPTIMIZE = "INSERT INTO conversations_fts(conversations_fts) VALUES('optimize')"


def _optimized(connection: sqlite3.Connection) -> bool:
    """Merge the search index (a write: waits up to 5 s for the write lock); False if it could not."""
    try:
        connection.execute("PRAGMA busy_timeout = 5000")
        connection.execute(OPTIMIZE)
    except sqlite3.Error as error:
        log.debug("search index merge not possible now: %s", error)
        return False
    finally:
        # never wait for readers while holding the write lock (that would hold up every write)
        connection.execute("PRAGMA busy_timeout = 0")
    return True


def _truncated(connection: sqlite3.Connection) -> bool:
    """Copy the write-ahead log into the file and empty it (to 0 bytes); False when a reader still
    holds an older snapshot or a writer is busy (with ``busy_timeout = 0`` that is known at once)."""
    try:
        busy, _frames, _done = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()[0]
    except sqlite3.Error as error:
        log.debug("WAL truncation not possible now: %s", error)
        return False
    return not busy


class WalMixin(StoreBase):
    """Checkpoints and truncation of the write-ahead log, and closing the store (its threads too)."""

    def close(self) -> None:
        self._closing.set()
        with self._truncate_lock:
            truncating = self._truncating
        if truncating is not None:  # a reader still holds the log: closing does not wait for it
            truncating.join(timeout=2)
        self.stop_checkpoints()
        self.db.close()

    def start_checkpoints(self, every: float = 1.0) -> None:
        """Move WAL checkpoints off the caller's thread (for the bot: its event loop).

        SQLite checkpoints inside whichever commit takes the log past 1,000 pages, and syncs the file
        there: a few milliseconds, every few hundred turns, in the middle of someone's update. Here
        that commit no longer checkpoints (``wal_autocheckpoint = 0``); a thread with its own
        connection makes a PASSIVE checkpoint every ``every`` seconds, which never blocks a writer.
        """
        if self.path == ":memory:" or self._checkpoints is not None:
            return
        self.db.execute("PRAGMA wal_autocheckpoint = 0")
        stop = threading.Event()
        thread = threading.Thread(target=_checkpoint_until, args=(self.path, every, stop),
                                  name="advisor-wal-checkpoints", daemon=True)
        thread.start()
        self._checkpoints = (thread, stop)

    def stop_checkpoints(self) -> None:
        """Stop the checkpoint thread (after one last checkpoint); commits checkpoint again themselves."""
        if self._checkpoints is None:
            return
        thread, stop = self._checkpoints
        stop.set()
        thread.join(timeout=10)
        self._checkpoints = None
        self.db.execute("PRAGMA wal_autocheckpoint = 1000")

    def _compact_search_index(self) -> None:
        """Merge the full-text index, so deleted words leave its on-disk segments too; then empty the
        write-ahead log into the file (``secure_delete`` zeroes the pages freed there), so the words
        do not stay in the log's older frames.

        The merge rewrites the whole index: 0.2-0.4 s with 20,000 conversations (measured), which on
        the bot's event loop would hold up every chat. Where checkpoints run off the caller's thread
        (the bot, ``start_checkpoints``), both are done off it too, within a second or so; elsewhere
        (the console, the command line) at once. A reader holding an older snapshot (the dashboard, a
        backup) keeps the log from being emptied: then it is tried again off this thread until it
        works (a passive checkpoint never empties the log, and its frames are reused from the start)."""
        if self._checkpoints is not None:
            self._compact_soon(optimize=True)
            return
        self.db.execute(OPTIMIZE)
        if self.path == ":memory:":
            return
        self.db.execute("PRAGMA busy_timeout = 0")  # waiting for a reader here would block the caller
        try:
            emptied = _truncated(self.db.conn)
        finally:
            self.db.execute(f"PRAGMA busy_timeout = {int(self.busy_ms)}")
        if not emptied:
            log.info("the write-ahead log could not be emptied now (a reader is busy): trying again "
                     "every %.1f s", TRUNCATE_RETRY_SECONDS)
            self._compact_soon(optimize=False)

    def _compact_soon(self, optimize: bool) -> None:
        """Have the index merged (``optimize``) and the log emptied off the caller's thread."""
        with self._truncate_lock:
            self._truncate_wanted = True
            self._optimize_wanted = self._optimize_wanted or optimize
            if self._truncating is None and not self._closing.is_set():
                self._truncating = threading.Thread(target=self._truncate_until_done, name="advisor-wal-truncate",
                                                    daemon=True)
                self._truncating.start()

    def _truncate_until_done(self) -> None:
        """Try to empty the log every TRUNCATE_RETRY_SECONDS until it works and no wipe asks again
        (then the thread ends: passive checkpoints only), or the store closes."""
        this = threading.current_thread()
        connection: sqlite3.Connection | None = None
        try:
            connection = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            connection.execute("PRAGMA secure_delete = ON")  # per connection: the merge frees pages too
            # never wait for readers while holding the write lock (that would hold up every write)
            connection.execute("PRAGMA busy_timeout = 0")
            delay = 0.0  # the first round at once: the caller did nothing of it yet (or just failed)
            while not self._closing.wait(delay):
                delay = TRUNCATE_RETRY_SECONDS
                with self._truncate_lock:
                    self._truncate_wanted = False
                    optimize, self._optimize_wanted = self._optimize_wanted, False
                if optimize and not _optimized(connection):
                    with self._truncate_lock:
                        self._optimize_wanted = self._truncate_wanted = True
                    continue
                emptied = _truncated(connection)
                with self._truncate_lock:
                    if not emptied:
                        self._truncate_wanted = True
                    elif not self._truncate_wanted:  # no wipe since this try began: done
                        self._truncating = None
                        log.info("the write-ahead log was emptied")
                        return
        except sqlite3.Error as error:
            log.warning("the write-ahead log could not be emptied: %s", error)
        finally:
            with self._truncate_lock:
                if self._truncating is this:
                    self._truncating = None
            if connection is not None:
                connection.close()
