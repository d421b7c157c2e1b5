"""Text for Telegram: lengths as Telegram counts them, splitting at its limit, and small helpers for
what people and the clock give us."""

from __future__ import annotations

import html
import re
from typing import Any

MESSAGE_LIMIT = 4096  # UTF-16 code units, after entity parsing
_TAG = re.compile(r"<[^>]+>")


def utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def visible_length(html_text: str) -> int:
    """What Telegram counts: the text after entity parsing (tags gone, entities one character)."""
    return utf16_length(html.unescape(_TAG.sub("", html_text)))


def split_message(html_text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Split HTML into messages Telegram accepts: at blank lines, else at line ends.

    The templates close every tag within its line, so a split between lines never cuts a tag. A
    single line over the limit (only long text a person typed can make one) is cut as plain text.
    """
    pieces: list[tuple[str, str]] = []  # (separator before it, piece)
    for block in html_text.split("\n\n"):
        if visible_length(block) <= limit:
            pieces.append(("\n\n", block))
            continue
        for n, line in enumerate(block.split("\n")):
            separator = "\n\n" if n == 0 else "\n"
            if visible_length(line) <= limit:
                pieces.append((separator, line))
                continue
            plain = html.unescape(_TAG.sub("", line))
            step = limit // 2  # UTF-16: a character may count 2
            pieces.extend((separator if i == 0 else "\n", html.escape(plain[i:i + step], quote=False))
                          for i in range(0, len(plain), step))
    chunks: list[str] = []
    current = ""
    for separator, piece in pieces:
        candidate = f"{current}{separator}{piece}" if current else piece
        if visible_length(candidate) <= limit:
            current = candidate
        else:
            chunks.append(current)
            current = piece
    if current.strip():
        chunks.append(current)
    return [chunk for chunk in chunks if chunk.strip()]


def whole(text: str | None) -> str | None:
    """Text with any lone surrogate (JSON lets a client send "\ud800") replaced: it can be neither
    stored nor sent back, and a name holding one broke the welcome."""
    if text is None:
        return None
    return text.encode("utf-8", "replace").decode("utf-8")



def whole_number(args: list[str] | None, default: Any, high: int) -> Any:
    """The first argument of a command as a whole number from 1 to ``high``, else ``default``."""
    if args and args[0].isdecimal() and 1 <= int(args[0]) <= high:
        return int(args[0])
    return default

