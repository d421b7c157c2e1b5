"""The callback data this bot writes on its buttons, and reading them back (at most 64 bytes each):

    a:<conversation>:<question>:<n>:<version>   choose option n (single choice, contact)
    t:<conversation>:<question>:<n>:<version>   toggle option n (multi choice)
    d:<conversation>:<question>:<version>       Done (multi choice)
    k:<conversation>:<question>:<version>       Skip
    b:<conversation>:<question>:<version>       Back
    r:<conversation>:<question>:<version>       Yes, the answer read back is right
    m:<conversation>:<question>:<version>       Something else: every option, not only those asked about
    x:<conversation>:expert|report|new          after the recommendation
    c:<conversation>:yes|no                     consent to be contacted by an expert
    f:yes|no                                    /forget confirmation
    l:en|de|es                                  /language: the language to go on in

A question's button carries the conversation, question and dialog version it was made for, so after a
restart a person simply goes on pressing buttons, and a button of an older question changes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from advisor.i18n import LANGUAGES

# callback data kind -> the channel port's action ("more": show every option, this channel's own)
PRESSES: dict[str, Any] = {"a": "choose", "t": "toggle", "d": "done", "k": "skip", "r": "confirm", "b": "back",
                           "m": "more"}


@dataclass(frozen=True)
class Press:
    kind: str
    conversation_id: int | None
    target: str
    index: int | None
    version: int | None = None  # the dialog version a question's button was made for


_ID = re.compile(r"0|[1-9][0-9]{0,17}")


def parse_callback(data: str | None) -> Press | None:
    """Callback data -> Press, or None for anything this bot did not send (forged, garbled)."""
    if not isinstance(data, str) or not data:
        return None
    try:
        if len(data.encode()) > 64:
            return None
    except UnicodeEncodeError:  # a lone surrogate: not something this bot wrote
        return None
    parts = data.split(":")
    kind = parts[0]
    numbers = parts[1:2] + (parts[3:] if kind in ("a", "t", "d", "k", "b", "r", "m") else [])
    if kind not in ("f", "l") and not all(_ID.fullmatch(n) for n in numbers):
        return None  # only the digits this bot writes: no " 12", "+12", "1_2", "012"
    try:
        if kind in ("a", "t") and len(parts) == 5:
            return Press(kind, int(parts[1]), parts[2], int(parts[3]), int(parts[4]))
        if kind in ("d", "k", "b", "r", "m") and len(parts) == 4:
            return Press(kind, int(parts[1]), parts[2], None, int(parts[3]))
        if kind == "x" and len(parts) == 3 and parts[2] in ("expert", "report", "new"):
            return Press(kind, int(parts[1]), parts[2], None)
        if kind == "c" and len(parts) == 3 and parts[2] in ("yes", "no"):
            return Press(kind, int(parts[1]), parts[2], None)
        if kind == "f" and len(parts) == 2 and parts[1] in ("yes", "no"):
            return Press(kind, None, parts[1], None)
        if kind == "l" and len(parts) == 2 and parts[1] in LANGUAGES:
            return Press(kind, None, parts[1], None)
    except ValueError:
        return None
    return None
