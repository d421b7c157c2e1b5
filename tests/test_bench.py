"""The benchmark keeps working: ``python bench/run.py --smoke`` runs every scenario with tiny numbers.

Timings are never asserted here (they belong to the machine, not to the code): only that every figure
is produced, for the advisor and, where there is one, for the baseline, and that nothing went wrong on
the way (no order violation, every conversation committed, no refused Bot API call).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, bot_env

FIGURES_WITH_BASELINE = [
    "s1.updates_per_s", "s1.p50_ms", "s1.p99_ms", "s1.api_calls_per_update",
    "s2.replies_per_s", "s2.p50_ms", "s2.p99_ms", "s2.order_violations", "s2.completed",
    "s3.too_many_requests", "s3.messages_per_s",
    "s4.kib_per_conversation", "s4.start_s",
]
ADVISOR_ONLY = ["s1.committed_turns", "s5.engine_steps_per_s", "s5.render_html_p99_ms", "s5.render_txt_p99_ms"]


def test_the_smoke_run_produces_every_figure(tmp_path: Path):
    out = tmp_path / "figures.json"
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--smoke", "--json", str(out)],
                         capture_output=True, text=True, timeout=300, cwd=ROOT, env=bot_env())
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(out.read_text(encoding="utf-8"))
    figures = report["figures"]
    for name in FIGURES_WITH_BASELINE:
        assert figures[name]["advisor"] is not None and figures[name]["baseline"] is not None, name
    for name in ADVISOR_ONLY:
        assert figures[name]["advisor"] is not None, name
    assert report["machine"]["cores"] >= 1 and report["machine"]["python"]
    # the table printed has a row per figure
    assert run.stdout.count("\n|") >= len(FIGURES_WITH_BASELINE) + len(ADVISOR_ONLY)
    # what must hold whatever the machine: the bots behaved
    assert figures["s1.committed_turns"]["met"] is True  # every conversation completed in SQLite
    assert figures["s2.order_violations"]["advisor"] == 0
    details = report["details"]
    assert details["s2"]["advisor"]["refusals"] == [] and details["s2"]["baseline"]["refusals"] == []


async def test_the_pacer_spaces_messages_leaves_other_calls_alone_and_retries_after_a_429():
    import asyncio
    import time
    import warnings
    from datetime import timedelta

    from telegram.error import RetryAfter

    from advisor.pacer import Pacer

    pacer = Pacer(overall_per_second=40, window=0.25, private_interval=None)  # 160 a second, for speed
    sent: list[tuple[str, float]] = []
    with warnings.catch_warnings():  # PTB 22 warns about its own retry_after in the constructor
        warnings.simplefilter("ignore")
        refusals = [RetryAfter(timedelta(milliseconds=30))]

    async def call(endpoint: str) -> bool:
        if endpoint == "editMessageText" and refusals:
            raise refusals.pop()
        sent.append((endpoint, time.monotonic()))
        return True

    async def request(endpoint: str, chat: int) -> object:
        return await pacer.process_request(call, (endpoint,), {}, endpoint, {"chat_id": chat}, None)

    start = time.monotonic()
    await asyncio.gather(*(request("sendMessage", chat) for chat in range(1, 41)),
                         request("answerCallbackQuery", 7), request("editMessageText", 9))
    messages = [at for endpoint, at in sent if endpoint != "answerCallbackQuery"]
    assert len(messages) == 41  # the refused edit was made again
    assert pacer.retries == 1
    answered = next(at for endpoint, at in sent if endpoint == "answerCallbackQuery")
    assert answered - start < 0.05  # not queued behind the messages
    for i in range(len(messages) - 40):  # never more than the limit within one window
        assert messages[i + 40] - messages[i] >= 0.25 - 0.002
    assert messages[-1] - messages[0] >= 40 * 0.25 / 40 - 0.01  # spaced out, not a burst


async def test_the_pacer_limits_a_group_chat():
    import asyncio
    import time

    from advisor.pacer import Pacer

    pacer = Pacer(group_per_minute=600, group_burst=1)  # one every 0.1 s in a group
    moments: list[float] = []

    async def call() -> bool:
        moments.append(time.monotonic())
        return True

    await asyncio.gather(*(pacer.process_request(call, (), {}, "sendMessage", {"chat_id": -100500}, None)
                           for _ in range(4)))
    assert moments[-1] - moments[0] >= 0.29


async def test_the_pacer_lets_a_private_chat_burst_then_one_a_second(monkeypatch):
    """A fast reader's whole dialog goes through at once; a runaway loop settles at one a second.
    The clock is simulated: asyncio.sleep advances it, so the test measures the schedule, not time."""
    import asyncio

    import advisor.pacer as pacer_module
    from advisor.pacer import Pacer

    clock = [0.0]
    real_sleep = asyncio.sleep
    sleepers: list[tuple[float, asyncio.Future[None]]] = []

    async def sleep(delay: float) -> None:  # wakes when the simulated clock reaches its moment
        future = asyncio.get_running_loop().create_future()
        sleepers.append((clock[0] + max(0.0, delay), future))
        await future

    async def run_clock(work: asyncio.Future[object]) -> None:
        while not work.done():
            for _ in range(5):  # let every task that can run reach its next sleep
                await real_sleep(0)
            if sleepers:
                sleepers.sort(key=lambda item: item[0])
                clock[0] = max(clock[0], sleepers[0][0])
                while sleepers and sleepers[0][0] <= clock[0]:
                    sleepers.pop(0)[1].set_result(None)

    monkeypatch.setattr(pacer_module.asyncio, "sleep", sleep)
    pacer = Pacer(overall_per_second=1000, clock=lambda: clock[0])
    departures: dict[int, list[float]] = {5: [], 6: []}

    async def call(chat: int) -> bool:
        departures[chat].append(clock[0])
        return True

    async def message(chat: int) -> object:
        return await pacer.process_request(call, (chat,), {}, "sendMessage", {"chat_id": chat}, None)

    work = asyncio.gather(*(message(5) for _ in range(23)), message(6))
    await run_clock(work)
    await work
    burst, rest = departures[5][:20], departures[5][20:]
    assert max(burst) < 0.1  # twenty at once (spaced only by the overall pace)
    assert [round(at) for at in rest] == [1, 2, 3]  # then one a second
    assert departures[6] and departures[6][0] < 0.1  # another chat is not held up by chat 5
