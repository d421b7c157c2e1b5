"""Shared fixtures: the real dialog, engine, renderer and a service on a fresh database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from advisor.advice import Advisor, load_advisor
from advisor.dialog import Dialog, load_dialog
from advisor.engine import Engine
from advisor.render import TEMPLATES_DIR, Renderer
from advisor.service import DEFAULT_DIALOG, AdvisorService, build_service

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
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "ADVISOR_"))}
    if db is not None:
        full_env["ADVISOR_DB"] = str(db)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, str(ROOT / "bot.py"), *args],
        input=stdin, capture_output=True, text=True, timeout=timeout, env=full_env, cwd=ROOT,
    )
