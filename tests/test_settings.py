"""Settings (advisor/settings.py): one typed object, each part checked when a command first reads it."""

from __future__ import annotations

from pathlib import Path

import pytest

from advisor import AdvisorError
from advisor.settings import DEFAULT_DIALOG, Options, Settings, TelegramSettings, Webhook
from tests.conftest import run_bot

TOKEN = "123456:ABC-def_ghi"


def settings(db: str | None = None, dialog: str | None = None, **environ: str) -> Settings:
    return Settings.read(environ, db=db, dialog=dialog)


def test_defaults_then_the_environment_then_the_flags():
    assert settings().db == "advisor.db" and settings().dialog == DEFAULT_DIALOG
    assert settings().log_level == "WARNING"
    env = settings(ADVISOR_DB="~/from-env.db", ADVISOR_DIALOG="mine.yaml", ADVISOR_LOG_LEVEL="info")
    assert env.db == str(Path.home() / "from-env.db") and env.dialog == Path("mine.yaml")
    assert env.log_level == "INFO"
    flags = settings("flag.db", "flag.yaml", ADVISOR_DB="env.db", ADVISOR_DIALOG="env.yaml")
    assert (flags.db, flags.dialog) == ("flag.db", Path("flag.yaml"))


def test_the_telegram_settings_polling_and_webhook():
    assert settings(TELEGRAM_BOT_TOKEN=TOKEN).telegram == TelegramSettings(TOKEN, "https://api.telegram.org")
    hooked = settings(TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_URL="http://127.0.0.1:9/", TELEGRAM_WEBHOOK_URL="https://b.example/t",
                      TELEGRAM_WEBHOOK_SECRET="s3cret", TELEGRAM_WEBHOOK_PORT="8080", TELEGRAM_WEBHOOK_PATH="/hook/")
    assert hooked.telegram == TelegramSettings(TOKEN, "http://127.0.0.1:9", Webhook(
        "https://b.example/t", "s3cret", "0.0.0.0", 8080, "hook"))
    # commands that only call the Bot API (link's getMe) never read the webhook's settings
    broken_hook = settings(TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_WEBHOOK_URL="https://b.example/t")
    assert broken_hook.telegram_polling.webhook is None
    with pytest.raises(AdvisorError, match="TELEGRAM_WEBHOOK_SECRET"):
        _ = broken_hook.telegram


@pytest.mark.parametrize(("environ", "named"), [
    ({}, "TELEGRAM_BOT_TOKEN is not set"),
    ({"TELEGRAM_BOT_TOKEN": "nope"}, "TELEGRAM_BOT_TOKEN does not look like"),
    ({"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": "ftp://x"}, "TELEGRAM_API_URL must start"),
    ({"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_WEBHOOK_URL": "https://x", "TELEGRAM_WEBHOOK_SECRET": "ok",
      "TELEGRAM_WEBHOOK_PORT": "70000"}, "TELEGRAM_WEBHOOK_PORT must be a port"),
])
def test_a_wrong_telegram_setting_is_one_error_naming_it(environ, named):
    with pytest.raises(AdvisorError, match=named):
        _ = Settings.read(environ).telegram


def test_the_options():
    assert settings().options == Options()
    read = settings(ADVISOR_SALES_CHAT_ID="-100123", ADVISOR_ADMIN_IDS="1, 2", ADVISOR_NUDGE_AFTER="30m",
                    ADVISOR_RETENTION_DAYS="90", ADVISOR_CHAT_BURST="1000").options
    assert read == Options(sales_chat_id=-100123, admin_ids=frozenset({1, 2}), nudge_after=1800,
                           retention_days=90.0, chat_burst=1000)
    assert settings(ADVISOR_NUDGE_AFTER="off").options.nudge_after is None


@pytest.mark.parametrize(("name", "value"), [
    ("ADVISOR_SALES_CHAT_ID", "@sales"), ("ADVISOR_ADMIN_IDS", "1,bob"), ("ADVISOR_NUDGE_AFTER", "soon"),
    ("ADVISOR_RETENTION_DAYS", "0"), ("ADVISOR_CHAT_BURST", "0"),
])
def test_a_wrong_option_is_one_error_naming_it(name, value):
    with pytest.raises(AdvisorError, match=name):
        _ = settings(**{name: value}).options


def test_the_review_token():
    with pytest.raises(AdvisorError, match="ADVISOR_REVIEW_TOKEN is not set"):
        _ = settings().review_token
    assert settings(ADVISOR_REVIEW_TOKEN="short").review_token_is_short
    assert not settings(ADVISOR_REVIEW_TOKEN="x" * 16).review_token_is_short


def test_a_command_reads_only_what_it_needs_and_a_wrong_value_is_one_line(tmp_path):
    db = tmp_path / "advisor.db"
    # the console needs nothing of Telegram's or the dashboard's: their wrong values do not stop it
    wrong_elsewhere = {"ADVISOR_CHAT_BURST": "lots", "TELEGRAM_WEBHOOK_PORT": "x", "ADVISOR_REVIEW_TOKEN": ""}
    assert run_bot("summaries", db=db, env=wrong_elsewhere).returncode == 0
    result = run_bot("summaries", db=db, env={"ADVISOR_LOG_LEVEL": "loud"})  # was a ValueError traceback
    assert result.returncode == 1
    assert result.stderr == "error: ADVISOR_LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, " \
                            "got 'LOUD'\n"
