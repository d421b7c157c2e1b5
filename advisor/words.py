"""Text as words, the way the understanding layer compares them: tokens, Snowball stems, typos.

Text is folded before it is cut into words: accents and umlauts dropped (NFKD, combining marks
removed; "ß" -> "ss"), so "facturación" and "facturacion", "Geschäftsführer" and "Geschaftsfuhrer"
are one word, as people type them on a phone. The Snowball stemmers of German and Spanish fold
most of these themselves; folding first makes keyword and text meet on every word.

Shared by ``advisor/understand.py`` (phrases) and ``advisor/quantities.py`` (numbers and units).
A word is reduced to its stem by the ``Language``'s Snowball stemmer (snowballstemmer, which runs
PyStemmer's C build when it is installed); a typed word is also taken for a known one with one slip
(two in long words, ``typo``), measured with rapidfuzz's optimal-string-alignment distance.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import snowballstemmer
from rapidfuzz.distance import OSA

from advisor.language import ENGLISH, Language

_TOKEN = re.compile(r"\.\.\.|\d+\.\d+\b|[a-z0-9]+|[,;.!?]")  # "2.5" is one number
_TOKEN_COMMA = re.compile(r"\.\.\.|\d+,\d+\b|[a-z0-9]+|[,;.!?]")  # "2,5" where "." separates thousands
_FOLDED = str.maketrans({"ß": "ss", "ẞ": "ss", "ø": "o", "æ": "ae", "œ": "oe", "ł": "l", "đ": "d", "¿": " ", "¡": " "})


@lru_cache(maxsize=4096)
def fold(text: str) -> str:
    """``text`` without accents or umlauts ("Geschäftsführer" -> "Geschaftsfuhrer", "año" -> "ano")."""
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFKD", text.translate(_FOLDED))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@lru_cache(maxsize=8)
def _stemmer(name: str) -> snowballstemmer.stemmer:
    return snowballstemmer.stemmer(name)


def tokens(text: str, language: Language = ENGLISH) -> list[str]:
    """Lower-case words and clause punctuation; apostrophes and hyphens joined ("don't" -> "dont")."""
    for acronym, word in language.acronyms:  # "IT" is not "it"
        text = re.sub(rf"\b{acronym}\b", word, text)
    found = _TOKEN if language.thousands == "," else _TOKEN_COMMA  # "3,4 people" in English is a list
    return found.findall(fold(text).lower().replace("'", "").replace("’", "").replace("-", " "))


def stems(text: str, language: Language = ENGLISH) -> tuple[str, ...]:
    words = tokens(text, language)
    return tuple(_stemmer(language.stemmer).stemWords(words))


def stem(word: str, language: Language = ENGLISH) -> str:
    return str(_stemmer(language.stemmer).stemWord(fold(word).lower()))


def typo(typed: str, known: str) -> bool:
    """One slip (a letter added, dropped, changed or swapped) in a word of 5+ letters, two in 9+;
    in a 4-letter word only a doubled or dropped letter. First letters are rarely mistyped.
    Measured on dialogs/understanding.yaml: allowing any changed letter in 5-7-letter words took
    precision from 0.88 down (takes/taxes, fixing/filing) for no gain in recall."""
    if typed == known:
        return True
    shortest = min(len(typed), len(known))
    if shortest < 4 or typed[0] != known[0]:
        return False
    if shortest == 4:
        return abs(len(typed) - len(known)) == 1 and typed[:3] == known[:3] and OSA.distance(typed, known) == 1
    distance = OSA.distance(typed, known, score_cutoff=2)
    if distance > (2 if shortest >= 9 else 1) or (distance == 2 and len(typed) == len(known)):
        return False  # two changed letters make another word ("accountant" / "accounting")
    # Below 8 letters a changed letter makes another word too often ("takes" / "taxes", "fixing" /
    # "filing"): there, only letters added, dropped or swapped count as slips.
    return shortest >= 8 or len(typed) != len(known) or sorted(typed) == sorted(known)
