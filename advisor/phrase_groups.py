"""Word groups in the dialog's phrases: ``words:`` at the top of the dialog names groups, and a phrase
that says ``{group}`` stands for one phrase per word of the group ("{customers} ... asking")."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_GROUP = re.compile(r"\{([a-z_]+)\}")


def build_groups(f: str, raw: Any, errors: list[str]) -> dict[str, tuple[str, ...]]:
    """``words``: named groups of words a phrase can name as ``{group}`` ("{customers} ... asking")."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping) or not all(
            isinstance(k, str) and isinstance(v, list) and v and all(isinstance(w, str) for w in v)
            for k, v in raw.items()):
        errors.append(f"{f}: words: expected named lists of words, e.g. customers: [customers, clients]")
        return {}
    return {name: tuple(w.strip().lower() for w in words) for name, words in raw.items()}


def expand(phrases: list[str], groups: Mapping[str, tuple[str, ...]], at: str, errors: list[str]) -> list[str]:
    """Each phrase with ``{group}`` written out once per word of the group."""
    out: list[str] = []
    for phrase in phrases:
        match = _GROUP.search(phrase)
        if match is None:
            out.append(phrase)
        elif match[1] not in groups:
            errors.append(f"{at}: {phrase!r} names an unknown group {{{match[1]}}} (see `words` at the top)")
        else:
            out += expand([phrase[:match.start()] + word + phrase[match.end():] for word in groups[match[1]]],
                           groups, at, errors)
    return out
