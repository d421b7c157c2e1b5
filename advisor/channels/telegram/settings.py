"""The Telegram channel's fixed numbers, and what its people configure (``Options``, read in
``advisor/settings.py``)."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any, Protocol

from advisor.settings import Options as Options

log = logging.getLogger(__name__)


CHANNEL = "telegram"
ALERT_RETRY_SECONDS = 5.0  # after a network failure, the outbox is tried again this much later
ALERT_FLUSH_SECONDS = 2.0  # on stop, this long to send what is queued (SIGTERM stops within 5 s)
ALERT_POLL_SECONDS = 5.0  # how often cards queued by another process (the web chat) are looked for
CARDS_PER_PERSON_A_DAY = 3  # lead cards one person's conversations may make in 24 hours (forged floods)
REF_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
COMMANDS = ("start", "back", "restart", "summary", "language", "privacy", "forget", "help")


class HasBot(Protocol):
    """What sending needs of a context: a handler's, or ``Context`` for work outside handlers."""

    @property
    def bot(self) -> Any: ...


@dataclass(frozen=True)
class Context:
    """What send() needs of a handler's context, for work outside handlers (reminders)."""

    bot: Any
