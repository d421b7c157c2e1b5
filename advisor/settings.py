"""Every setting of the advisor as one typed object, read from the environment and checked.

``Settings.read(os.environ, db=..., dialog=...)`` keeps the environment and the command-line flags
that override it. Each part is read and checked the first time a command asks for it, so that a
console session never fails on a Telegram variable it does not use, and a wrong value is one
``AdvisorError`` that names the variable and what it should look like:

=====================  ===================================================================
``settings.db``        ``--db``, else ``ADVISOR_DB``, else ``advisor.db``
``settings.dialog``    ``--dialog``, else ``ADVISOR_DIALOG``, else ``dialogs/outsourcing.yaml``
``settings.log_level`` ``ADVISOR_LOG_LEVEL`` (default ``WARNING``)
``settings.language``  ``--lang``, else ``ADVISOR_LANG``, else the locale's (``LANG``...), else ``en``
``settings.currency``  ``ADVISOR_CURRENCY`` (a code such as EUR; default: the advice rules' own, USD)
                       and ``ADVISOR_CURRENCY_RATE`` (how many of it one unit of the rules' currency buys)
``.telegram``          ``TELEGRAM_BOT_TOKEN``, ``TELEGRAM_API_URL`` and the webhook's ``TELEGRAM_WEBHOOK_*``
``.telegram_polling``  the same without the webhook (commands that only call the Bot API)
``.options``           what the Telegram channel does beyond the questions: ``ADVISOR_SALES_CHAT_ID``,
                       ``ADVISOR_ADMIN_IDS``, ``ADVISOR_NUDGE_AFTER``, ``ADVISOR_RETENTION_DAYS``,
                       ``ADVISOR_CHAT_BURST``, ``ADVISOR_SALES_LANG``
``.review_token``      ``ADVISOR_REVIEW_TOKEN``, the dashboard's token
``.outbound``          where events go: ``ADVISOR_WEBHOOK_URL``/``_SECRET``, ``ADVISOR_HUBSPOT_TOKEN``/``_URL``,
                       ``ADVISOR_PIPEDRIVE_TOKEN``/``_URL``, ``ADVISOR_DASHBOARD_URL``
=====================  ===================================================================
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from advisor import AdvisorError
from advisor.i18n import LANGUAGES, from_environment, pick

DEFAULT_DB = "advisor.db"
DIALOGS_DIR = Path(__file__).resolve().parent.parent / "dialogs"
DEFAULT_DIALOG = DIALOGS_DIR / "outsourcing.yaml"
DEFAULT_API_URL = "https://api.telegram.org"
SECRET_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
TOKEN_PATTERN = re.compile(r"^\d+:[A-Za-z0-9_-]+$")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
SHORT_REVIEW_TOKEN = 16  # shorter than this, the dashboard warns that the token can be guessed


@dataclass(frozen=True)
class Webhook:
    url: str  # TELEGRAM_WEBHOOK_URL, the public address Telegram posts to
    secret: str  # TELEGRAM_WEBHOOK_SECRET
    listen: str = "0.0.0.0"  # TELEGRAM_WEBHOOK_LISTEN
    port: int = 8443  # TELEGRAM_WEBHOOK_PORT
    path: str = "telegram"  # TELEGRAM_WEBHOOK_PATH


@dataclass(frozen=True)
class TelegramSettings:
    """How to reach the Bot API, and the webhook if there is one."""

    token: str  # TELEGRAM_BOT_TOKEN
    api_url: str  # TELEGRAM_API_URL
    webhook: Webhook | None = None  # None: long polling


@dataclass(frozen=True)
class Options:
    """What the people running the bot configure beyond the Telegram connection."""

    sales_chat_id: int | None = None  # lead alerts go there
    admin_ids: frozenset[int] = frozenset()  # may use /stats, /leads, /lead, /export
    nudge_after: float | None = 24 * 3600  # seconds idle before the one reminder; None: never
    abandon_after: float = 7 * 24 * 3600  # seconds idle before a conversation counts as abandoned
    retention_days: float | None = None  # transcripts untouched this long are deleted; None: kept
    chat_burst: int = 20  # messages one private chat may get at once before the one-a-second pace
    sales_language: str = "en"  # the lead cards' language (ADVISOR_SALES_LANG)


@dataclass(frozen=True)
class Outbound:
    """Where events go besides the channels: a signed webhook endpoint, HubSpot, Pipedrive. Secrets and
    tokens live here only (never in logs, exports or the database): ``repr`` leaves them out."""

    webhook_url: str | None = None  # ADVISOR_WEBHOOK_URL
    webhook_secret: str | None = field(default=None, repr=False)  # ADVISOR_WEBHOOK_SECRET (whsec_...)
    hubspot_token: str | None = field(default=None, repr=False)  # ADVISOR_HUBSPOT_TOKEN
    hubspot_url: str = "https://api.hubapi.com"  # ADVISOR_HUBSPOT_URL
    pipedrive_token: str | None = field(default=None, repr=False)  # ADVISOR_PIPEDRIVE_TOKEN
    pipedrive_url: str = "https://api.pipedrive.com"  # ADVISOR_PIPEDRIVE_URL
    dashboard_url: str | None = None  # ADVISOR_DASHBOARD_URL: links to a conversation in the CRMs

    @property
    def any(self) -> bool:
        return bool(self.webhook_url or self.hubspot_token or self.pipedrive_token)


@dataclass(frozen=True)
class Settings:
    """The advisor's settings; each part is checked when first read (see the module)."""

    environ: Mapping[str, str] = field(repr=False)
    db_flag: str | None = None  # --db
    dialog_flag: str | None = None  # --dialog (or check's FILE)
    language_flag: str | None = None  # --lang

    @classmethod
    def read(cls, environ: Mapping[str, str], db: str | None = None, dialog: str | None = None,
             language: str | None = None) -> Settings:
        return cls(dict(environ), db, dialog, language)

    @cached_property
    def language(self) -> str:
        """``--lang``, else ``ADVISOR_LANG``, else the locale's language if the advisor speaks it, else en."""
        if self.language_flag:
            return self.language_flag
        wanted = self._get("ADVISOR_LANG")
        if wanted and pick(wanted) is None:
            raise AdvisorError(f"ADVISOR_LANG must be one of {', '.join(LANGUAGES)}, got {wanted!r}")
        return from_environment(self.environ)

    def _get(self, name: str, default: str = "") -> str:
        return self.environ.get(name, default).strip()

    @cached_property
    def db(self) -> str:
        import os.path

        return os.path.expanduser(self.db_flag or self._get("ADVISOR_DB") or DEFAULT_DB)

    @cached_property
    def dialog(self) -> Path:
        return Path(self.dialog_flag or self._get("ADVISOR_DIALOG") or DEFAULT_DIALOG)

    @cached_property
    def currency(self) -> tuple[str | None, float | None]:
        """The currency the cash is shown in (None: the rules' own) and the rate to convert at (None:
        the rules' exchange table)."""
        code = self._get("ADVISOR_CURRENCY").upper() or None
        if code is not None and not re.fullmatch(r"[A-Z]{3}", code):
            raise AdvisorError(f"ADVISOR_CURRENCY must be a three-letter currency code such as EUR, got {code!r}")
        raw = self._get("ADVISOR_CURRENCY_RATE")
        if not raw:
            return code, None
        try:
            rate = float(raw)
        except ValueError:
            rate = 0.0
        if code is None or not 0 < rate <= 1_000_000:
            raise AdvisorError("ADVISOR_CURRENCY_RATE must be a number above 0 (how many of ADVISOR_CURRENCY one "
                               f"unit of the advice rules' currency buys), with ADVISOR_CURRENCY set; got {raw!r}")
        return code, rate

    @cached_property
    def outbound(self) -> Outbound:
        """``ADVISOR_WEBHOOK_URL`` and ``_SECRET``, ``ADVISOR_HUBSPOT_TOKEN`` and ``_URL``,
        ``ADVISOR_PIPEDRIVE_TOKEN`` and ``_URL``, ``ADVISOR_DASHBOARD_URL``; checked together."""
        def url(name: str, default: str | None = None) -> str | None:
            value = self._get(name) or default
            if value and not re.fullmatch(r"https?://[^\s/?#]+[^\s]*", value):
                raise AdvisorError(f"{name} must be an http(s) URL such as https://example.com/hooks, got {value!r}")
            return value

        webhook, secret = url("ADVISOR_WEBHOOK_URL"), self._get("ADVISOR_WEBHOOK_SECRET") or None
        if webhook and not secret:
            raise AdvisorError("ADVISOR_WEBHOOK_URL is set without ADVISOR_WEBHOOK_SECRET: events are signed with it "
                               "(whsec_ followed by base64; see the README, Send leads to your CRM)")
        if secret and webhook:
            from advisor.outbound.webhooks import check_secret

            check_secret(secret)
        return Outbound(webhook, secret, self._get("ADVISOR_HUBSPOT_TOKEN") or None,
                        url("ADVISOR_HUBSPOT_URL", "https://api.hubapi.com") or "",
                        self._get("ADVISOR_PIPEDRIVE_TOKEN") or None,
                        url("ADVISOR_PIPEDRIVE_URL", "https://api.pipedrive.com") or "",
                        url("ADVISOR_DASHBOARD_URL"))

    @cached_property
    def log_level(self) -> str:
        level = self._get("ADVISOR_LOG_LEVEL", "WARNING").upper()
        if level not in LOG_LEVELS:
            raise AdvisorError(f"ADVISOR_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {level!r}")
        return level

    @cached_property
    def telegram_polling(self) -> TelegramSettings:
        """The token and the Bot API's address; the webhook's settings are not read."""
        token = self._get("TELEGRAM_BOT_TOKEN")
        if not token:
            raise AdvisorError("TELEGRAM_BOT_TOKEN is not set: get a token from @BotFather and export it")
        if not TOKEN_PATTERN.match(token):
            raise AdvisorError("TELEGRAM_BOT_TOKEN does not look like a bot token (expected digits:letters)")
        api_url = (self._get("TELEGRAM_API_URL") or DEFAULT_API_URL).rstrip("/")
        if not re.match(r"^https?://", api_url):
            raise AdvisorError(f"TELEGRAM_API_URL must start with http:// or https://, got {api_url!r}")
        return TelegramSettings(token, api_url)

    @cached_property
    def telegram(self) -> TelegramSettings:
        """The Bot API's settings, with the webhook when ``TELEGRAM_WEBHOOK_URL`` is set."""
        polling = self.telegram_polling
        url = self._get("TELEGRAM_WEBHOOK_URL")
        if not url:
            return polling
        secret = self.environ.get("TELEGRAM_WEBHOOK_SECRET", "")
        if not SECRET_PATTERN.match(secret):
            raise AdvisorError("webhook mode needs TELEGRAM_WEBHOOK_SECRET: 1-256 characters of A-Z a-z 0-9 _ -")
        port = self.environ.get("TELEGRAM_WEBHOOK_PORT", "8443")
        if not port.isdecimal() or not 0 < int(port) < 65536:
            raise AdvisorError(f"TELEGRAM_WEBHOOK_PORT must be a port number, got {port!r}")
        return TelegramSettings(polling.token, polling.api_url, Webhook(
            url=url, secret=secret, listen=self.environ.get("TELEGRAM_WEBHOOK_LISTEN", "0.0.0.0"),
            port=int(port), path=self.environ.get("TELEGRAM_WEBHOOK_PATH", "telegram").strip("/")))

    @cached_property
    def options(self) -> Options:
        """Lead alerts, admins, reminders, retention and pacing."""
        sales = self._get("ADVISOR_SALES_CHAT_ID")
        if sales and not re.fullmatch(r"-?\d+", sales):
            raise AdvisorError(
                f"ADVISOR_SALES_CHAT_ID must be a chat id (a number such as -1001234567890), got {sales!r}")
        admins = [part.strip() for part in self._get("ADVISOR_ADMIN_IDS").split(",") if part.strip()]
        if any(not part.isdecimal() for part in admins):
            raise AdvisorError("ADVISOR_ADMIN_IDS must be Telegram user ids separated by commas, e.g. 12345,67890")
        retention = self._get("ADVISOR_RETENTION_DAYS")
        if retention and (not re.fullmatch(r"\d+(\.\d+)?", retention) or float(retention) <= 0):
            raise AdvisorError(f"ADVISOR_RETENTION_DAYS must be a number of days above 0, got {retention!r}")
        burst = self._get("ADVISOR_CHAT_BURST", "20")
        if not burst.isdecimal() or not 1 <= int(burst) <= 10000:
            raise AdvisorError(
                f"ADVISOR_CHAT_BURST must be a whole number of messages from 1 to 10000, got {burst!r}")
        sales_language = self._get("ADVISOR_SALES_LANG", "en")
        if pick(sales_language) is None:
            raise AdvisorError(f"ADVISOR_SALES_LANG must be one of {', '.join(LANGUAGES)}, got {sales_language!r}")
        return Options(
            sales_language=pick(sales_language) or "en",
            chat_burst=int(burst),
            retention_days=float(retention) if retention else None,
            sales_chat_id=int(sales) if sales else None,
            admin_ids=frozenset(int(part) for part in admins),
            nudge_after=parse_duration("ADVISOR_NUDGE_AFTER", self.environ.get("ADVISOR_NUDGE_AFTER", "24h")),
        )

    @cached_property
    def review_token(self) -> str:
        """The dashboard's token; a short one is allowed (see ``review_token_is_short``)."""
        token = self._get("ADVISOR_REVIEW_TOKEN")
        if not token:
            raise AdvisorError(
                "ADVISOR_REVIEW_TOKEN is not set: choose a long random token, export it, and give it to the "
                "reviewers (e.g. export ADVISOR_REVIEW_TOKEN=$(python3 -c 'import secrets; "
                "print(secrets.token_urlsafe(24))'))")
        return token

    @property
    def review_token_is_short(self) -> bool:
        return len(self.review_token) < SHORT_REVIEW_TOKEN


def parse_duration(name: str, value: str) -> float | None:
    """``24h``, ``30m``, ``90s``, ``2d`` or seconds -> seconds; ``off`` or ``0`` -> None."""
    value = value.strip().lower()
    if value in ("off", "0", "none", "never"):
        return None
    found = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smhd]?)", value)
    if not found:
        raise AdvisorError(f"{name} must be a duration such as 24h, 30m, 90s or 2d (or off), got {value!r}")
    return float(found.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[found.group(2)]
