"""Per-chat order, each update once, and another process's write lock kept off the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from typing import Any

from telegram import (
    Update,
)
from telegram.ext import (
    BaseUpdateProcessor,
)

from advisor.channels.telegram.settings import (
    CHANNEL,
)
from advisor.store import Store, current_update

log = logging.getLogger(__name__)


LOCK_WAIT_SECONDS = 60.0  # how long an update waits for another process's write lock, off the event loop
LOOP_BUSY_MS = 100  # the most one write blocks the event loop waiting for that lock; then the update waits off it
# Set while an update is handled: on_error marks it when a write found another process's lock.
lock_hit: ContextVar[list[bool] | None] = ContextVar("lock_hit", default=None)


def locked(error: object) -> bool:
    """Another process held SQLite's write lock past the busy timeout."""
    return isinstance(error, sqlite3.OperationalError) and ("locked" in str(error) or "busy" in str(error))


class PerChatUpdateProcessor(BaseUpdateProcessor):
    """Concurrent across chats, strictly ordered within one chat, and each update handled once.

    asyncio locks are fair (first come, first served), and updates reach this method in the order
    the Updater fetched them, so a chat's updates run one after another in arrival order. With a
    store, an update already handled (Telegram redelivers the last batch after a crash) is skipped,
    and each update's writes record it in the same transaction (``advisor.store.current_update``).
    """

    def __init__(self, max_concurrent_updates: int = 256, store: Store | None = None):
        super().__init__(max_concurrent_updates)
        self.store = store
        # handles an update again (the application's process_update), after a write lock
        self.again: Callable[[object], Awaitable[Any]] | None = None
        # tells the person their message could not be handled (the lock was held too long)
        self.sorry: Callable[[Update], Awaitable[None]] | None = None
        self._locks: dict[int, asyncio.Lock] = {}
        self._waiting: dict[int, int] = {}

    async def process_update(self, update: object, coroutine: Awaitable[Any]) -> None:  # type: ignore[misc]
        """Wait for the chat's turn *before* taking one of the concurrency slots, so that one
        person's backlog never holds every other chat back."""
        key = _chat_key(update)
        if key is None:
            await self._once(update, coroutine)
            return
        async with self.turn(key):
            await self._once(update, coroutine)

    @contextlib.asynccontextmanager
    async def turn(self, chat_id: int) -> AsyncIterator[None]:
        """The chat's turn: what else writes to a chat (a reminder) waits for its updates, and they for it."""
        lock = self._locks.setdefault(chat_id, asyncio.Lock())
        self._waiting[chat_id] = self._waiting.get(chat_id, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._waiting[chat_id] -= 1
            if not self._waiting[chat_id]:
                del self._waiting[chat_id], self._locks[chat_id]

    async def _once(self, update: object, coroutine: Awaitable[Any]) -> None:
        if self.store is None or not isinstance(update, Update):
            await super().process_update(update, coroutine)
            return
        if self.store.processed(CHANNEL, update.update_id):
            log.debug("update %s was handled already: skipped", update.update_id)
            if asyncio.iscoroutine(coroutine):
                coroutine.close()
            return
        token = current_update.set((CHANNEL, update.update_id))
        started = time.monotonic()
        try:
            while True:
                while not self.store.writable() and time.monotonic() - started < LOCK_WAIT_SECONDS:
                    await asyncio.sleep(0.05)  # another process writes: wait here, the event loop stays free
                hit: list[bool] = []
                marker = lock_hit.set(hit)
                try:
                    await super().process_update(update, coroutine)
                finally:
                    lock_hit.reset(marker)
                if not hit:
                    self.store.mark_processed()
                    return
                # A write found another process's lock (taken after this update began) and failed
                # after LOOP_BUSY_MS instead of blocking every chat for seconds. Handle the update
                # again once the lock is free, as Telegram would redeliver it after a crash: if its
                # turn was committed, it counts as handled and is not applied twice.
                if self.store.processed(CHANNEL, update.update_id):
                    log.warning("update %s: its last write waited for another process's lock and was dropped",
                                update.update_id)
                    return
                if self.again is None or time.monotonic() - started >= LOCK_WAIT_SECONDS:
                    log.warning("update %s: not handled, another process held the database's write lock for "
                                "over %.0f s", update.update_id, LOCK_WAIT_SECONDS)
                    if self.sorry is not None:  # the answer was not kept: say so, never lose it silently
                        await self.sorry(update)
                    return
                coroutine = self.again(update)
        finally:
            current_update.reset(token)

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        await coroutine

    async def initialize(self) -> None:
        """Nothing to set up: locks are made per chat as updates arrive."""

    async def shutdown(self) -> None:
        """Nothing to release."""


def _chat_key(update: object) -> int | None:
    if not isinstance(update, Update):
        return None
    if update.effective_chat is not None:
        return update.effective_chat.id
    return update.effective_user.id if update.effective_user is not None else None
