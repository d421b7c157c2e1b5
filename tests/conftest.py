"""Shared fixtures: the real dialog, engine, renderer and a service on a fresh database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from advisor.advice import Advisor, load_advisor
from advisor.dialog import Dialog, load_dialog
from advisor.engine import Engine
from advisor.render import TEMPLATES_DIR, Renderer
from advisor.service import DEFAULT_DIALOG, AdvisorService, build_service
from tests.fake_telegram import FakeBotAPI

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def dialog() -> Dialog:
    return load_dialog(DEFAULT_DIALOG, TEMPLATES_DIR)


@pytest.fixture(scope="session")
def advisor(dialog: Dialog) -> Advisor:
    return load_advisor(dialog)


@pytest.fixture(scope="session")
def renderer(dialog: Dialog) -> Renderer:
    return Renderer(dialog, TEMPLATES_DIR)


@pytest.fixture(scope="session")
def engine(dialog: Dialog, advisor: Advisor, renderer: Renderer) -> Engine:
    return Engine(dialog, lambda answers: renderer.explain(advisor.recommend(answers)))


@pytest.fixture
def fresh_db(tmp_path: Path) -> Path:
    return tmp_path / "advisor.db"


@pytest.fixture
def service(fresh_db: Path):
    built: AdvisorService = build_service(fresh_db)
    yield built
    built.store.close()


def run_bot(*args: str, stdin: str = "", db: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``python bot.py ARGS`` as a person would, input through a pipe."""
    return subprocess.run(
        [sys.executable, str(ROOT / "bot.py"), *args],
        input=stdin, capture_output=True, text=True, timeout=timeout, env=bot_env(db, env), cwd=ROOT,
    )


def run_bot_here(*args: str, stdin: str = "", db: Path | None = None, env: dict[str, str] | None = None,
                 timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``python bot.py ARGS`` in this process (``bot.main``), as ``run_bot`` runs it in its own: the same
    environment, output and exit status, without a Python start (about 0.3 s of CPU) per command."""
    import contextlib
    import io
    from unittest import mock

    import bot

    out, err = io.StringIO(), io.StringIO()
    with mock.patch.dict(os.environ, bot_env(db, env), clear=True), mock.patch("sys.stdin", io.StringIO(stdin)), \
            contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = bot.main(list(args))
        except SystemExit as exit_:  # argparse: usage errors and --help
            code = exit_.code if isinstance(exit_.code, int) else 1
    return subprocess.CompletedProcess(["bot.py", *args], code, out.getvalue(), err.getvalue())


def bot_env(db: Path | None = None, env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a test gives bot.py: none of the caller's TELEGRAM_/ADVISOR_ settings."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "ADVISOR_"))}
    if db is not None:
        full_env["ADVISOR_DB"] = str(db)
    full_env.update(env or {})
    return full_env


@pytest.fixture
def fake_api() -> Iterator[FakeBotAPI]:
    """A fake Telegram Bot API on 127.0.0.1 (see tests/fake_telegram.py)."""
    with FakeBotAPI() as fake:
        yield fake


def terminate(process: subprocess.Popen) -> int:
    """SIGTERM, as a service manager would; SIGKILL if it has not exited within 15 s. The exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
    return process.returncode


class BotProcess:
    """``python bot.py telegram`` against a fake Bot API, as a separate process that can be killed."""

    def __init__(self, fake: FakeBotAPI, db: Path, env: dict[str, str] | None = None, log: Path | None = None):
        self.fake = fake
        self.log = log or db.with_suffix(".log")
        # A test person answers faster than anyone: Telegram's one-a-second pace per chat would make
        # every 16-question walk wait ~16 s for nothing the test checks (the pacer has tests of its own).
        settings = {"TELEGRAM_BOT_TOKEN": fake.token, "TELEGRAM_API_URL": fake.url, "ADVISOR_CHAT_BURST": "1000",
                    **(env or {})}
        mark = fake.mark()
        self._log_file = open(self.log, "a", encoding="utf-8")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "bot.py"), "telegram"], env=bot_env(db, settings), cwd=ROOT,
            stdin=subprocess.DEVNULL, stdout=self._log_file, stderr=subprocess.STDOUT,
        )
        if "TELEGRAM_WEBHOOK_URL" not in settings:
            try:
                fake.wait_for(lambda method, params: method == "getUpdates", since=mark, timeout=30)
            except TimeoutError:
                self.stop()
                raise AssertionError(f"the bot did not start polling:\n{self.output()}") from None

    def output(self) -> str:
        if not self._log_file.closed:
            self._log_file.flush()
        return self.log.read_text(encoding="utf-8")

    def kill(self) -> None:
        """SIGKILL: no chance to finish anything."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self._log_file.close()

    def stop(self) -> int:
        code = terminate(self.process)
        self._log_file.close()
        return code


@pytest.fixture
def start_bot(tmp_path: Path) -> Iterator:
    """start_bot(fake, env=None, db=None) -> BotProcess; every bot started is stopped afterwards."""
    started: list[BotProcess] = []

    def start(fake: FakeBotAPI, env: dict[str, str] | None = None, db: Path | None = None) -> BotProcess:
        process = BotProcess(fake, db or tmp_path / "advisor.db", env)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.process.poll() is None:
            process.stop()


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def chromium() -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright (skipped where it is not installed)."""
    if not CHROMIUM.exists():
        pytest.skip(f"Debian's Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
