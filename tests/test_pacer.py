"""The Pacer honours a 429 for what Telegram asked to pause, and only for a while (advisor/pacer.py).

(Its spacing of messages is tested in tests/test_bench.py, beside the benchmark that measures it.)
"""

from __future__ import annotations

import asyncio
import time
import warnings
from datetime import timedelta

import pytest
from telegram.error import RetryAfter

from advisor.pacer import Pacer


def _retry_after(seconds: float) -> RetryAfter:
    with warnings.catch_warnings():  # PTB 22 warns about its own retry_after in the constructor
        warnings.simplefilter("ignore")
        return RetryAfter(timedelta(seconds=seconds))


async def test_a_429_for_one_chat_pauses_that_chat_and_no_other() -> None:
    pacer = Pacer(private_interval=None, group_per_minute=None)
    refusals = {-100: [_retry_after(0.6)]}  # the sales group is told to wait
    sent: list[tuple[int, float]] = []

    async def call(chat: int) -> bool:
        if refusals.get(chat):
            raise refusals[chat].pop()
        sent.append((chat, time.monotonic()))
        return True

    def send(chat: int) -> asyncio.Task[object]:
        return asyncio.create_task(pacer.process_request(call, (chat,), {}, "sendMessage", {"chat_id": chat}, None))

    start = time.monotonic()
    group = send(-100)
    await asyncio.sleep(0.05)  # the group's 429 has arrived
    prospect, group_again = send(42), send(-100)
    await asyncio.gather(group, prospect, group_again)
    at = {chat: [moment - start for c, moment in sent if c == chat] for chat in (42, -100)}
    assert at[42][0] < 0.2  # the prospect's next question is not held by the group's pause
    assert min(at[-100]) >= 0.6  # the group waited as asked, its second message too
    assert len(at[-100]) == 2


async def test_a_retry_after_longer_than_max_wait_fails_at_once_instead_of_hanging() -> None:
    pacer = Pacer(max_wait=30.0)

    async def call() -> bool:
        raise _retry_after(100_000)

    start = time.monotonic()
    with pytest.raises(RetryAfter):  # (waiting it out would end in the TimeoutError instead)
        await asyncio.wait_for(pacer.process_request(call, (), {}, "sendMessage", {"chat_id": 42}, None), 5)
    assert time.monotonic() - start < 1.0


async def test_once_closed_a_wait_longer_than_the_grace_fails_at_once() -> None:
    from telegram.error import TimedOut

    pacer = Pacer(group_per_minute=20, group_burst=1)  # one message every 3 s to a group

    async def call() -> bool:
        return True

    await pacer.process_request(call, (), {}, "sendMessage", {"chat_id": -100}, None)  # the burst
    waiting = asyncio.create_task(pacer.process_request(call, (), {}, "sendMessage", {"chat_id": -100}, None))
    await asyncio.sleep(0.05)
    start = time.monotonic()
    pacer.close(grace=0.5)
    later = pacer.process_request(call, (), {}, "sendMessage", {"chat_id": -100}, None)
    with pytest.raises(TimedOut):
        await asyncio.wait_for(later, 5)
    assert time.monotonic() - start < 0.5
    with pytest.raises(TimedOut):  # the one already waiting (3 s) is woken to fail too
        await asyncio.wait_for(waiting, 5)
    assert time.monotonic() - start < 0.5
