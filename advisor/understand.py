"""Understanding free text well enough to pre-select options: "my reps spend hours cold calling".

Each option lists keywords in the dialog file; a keyword matches when its words appear in order in
the text, after both are reduced to rough stems (calling, calls, called -> call). The person always
confirms what was understood, so a rare false match costs one tap, never a wrong answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from advisor.dialog import Option

_WORD = re.compile(r"[a-z0-9]+")


def stem(word: str) -> str:
    """A deliberately crude English stem; enough to match keywords, never shown to anyone."""
    if len(word) > 4 and word.endswith("ies"):
        word = word[:-3] + "y"
    elif len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    if len(word) > 5 and word.endswith("ing"):
        word = word[:-3]
    elif len(word) > 4 and word.endswith("ed"):
        word = word[:-2]
    if len(word) > 3 and word.endswith("e"):
        word = word[:-1]
    if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "aeiosl":
        word = word[:-1]  # planning -> plann -> plan
    return word


def stems(text: str) -> tuple[str, ...]:
    return tuple(stem(w) for w in _WORD.findall(text.lower().replace("'", "")))


@lru_cache(maxsize=4096)
def _keyword_stems(keyword: str) -> tuple[str, ...]:
    return stems(keyword)


def _contains(haystack: Sequence[str], needle: Sequence[str]) -> bool:
    n = len(needle)
    return n > 0 and any(tuple(haystack[i : i + n]) == tuple(needle) for i in range(len(haystack) - n + 1))


def match_options(text: str, options: Sequence[Option]) -> list[str]:
    """The values of the options whose keywords (or label) appear in ``text``, in option order.

    An exclusive option ("none of these") is returned alone, and only when nothing else matched.
    """
    words = stems(text)
    matched: list[str] = []
    for option in options:
        phrases = (*option.keywords, option.label.lower())
        if any(_contains(words, _keyword_stems(phrase)) for phrase in phrases):
            matched.append(option.value)
    exclusive = {o.value for o in options if o.exclusive}
    plain = [value for value in matched if value not in exclusive]
    return plain or matched[:1]
