"""The Telegram channel: python-telegram-bot 22 in front of the same AdvisorService as every channel.

State lives only in the advisor's SQLite store (no PicklePersistence, no ConversationHandler): every
turn is committed by the service before the reply is sent. One module per concern:

    settings.py    Options (what the people running the bot configure) and the channel's numbers
    text.py        lengths as Telegram counts them, splitting at its limit
    callbacks.py   the callback data on the buttons, and reading them back
    processor.py   per-chat order, each update once, another process's write lock off the event loop
    base.py        the output side: a step as messages with keyboards; who and where an update is
    commands.py    what a person types: commands, answers, a shared contact
    presses.py     what a person presses: answers, what next, consent, /forget's yes
    admin.py       /stats, /leads, /lead, /export for admins
    alerts.py      lead cards from the outbox to the sales chat
    upkeep.py      reminders, abandonment, retention
    channel.py     TelegramChannel: the parts together, registered on an Application
    app.py         build_application, and the token kept out of the logs
"""

from advisor.channels.telegram.app import TokenFilter, build_application, hide_token_in_logs
from advisor.channels.telegram.callbacks import Press, parse_callback
from advisor.channels.telegram.channel import TelegramChannel
from advisor.channels.telegram.processor import LOCK_WAIT_SECONDS, LOOP_BUSY_MS, PerChatUpdateProcessor
from advisor.channels.telegram.settings import (
    ALERT_FLUSH_SECONDS,
    ALERT_POLL_SECONDS,
    ALERT_RETRY_SECONDS,
    CARDS_PER_PERSON_A_DAY,
    CHANNEL,
    COMMANDS,
    REF_PATTERN,
    Options,
)
from advisor.channels.telegram.text import MESSAGE_LIMIT, split_message, utf16_length, visible_length

__all__ = [
    "ALERT_FLUSH_SECONDS", "ALERT_POLL_SECONDS", "ALERT_RETRY_SECONDS", "CARDS_PER_PERSON_A_DAY", "CHANNEL",
    "COMMANDS", "LOCK_WAIT_SECONDS", "LOOP_BUSY_MS", "MESSAGE_LIMIT", "REF_PATTERN", "Options",
    "PerChatUpdateProcessor", "Press", "TelegramChannel", "TokenFilter", "build_application",
    "hide_token_in_logs", "parse_callback", "split_message", "utf16_length", "visible_length",
]
