"""Quantities in free text: "about 40 staff", "2-3 years", "3 partners and 9 staff" -> a number in a unit.

``quantity`` reads a number the way people write it, in the unit of a question's measure ("people",
"months"), so that a typed answer picks the option whose range holds it:
- digits or number words, with typos ("5", "five", "a dozen", "eigteen"), "40ish", "1,500", "18mths";
- number words put together: "two hundred", "hundred and fifty", "couple thousand", "twenty five";
- ranges ("2-3 years", "between 10 and 15 people": the middle, and the ends, so that a range across
  two options can be asked about), "and a half";
- parts that add up ("3 partners and 9 staff", "me + 2 techs");
- a unit after the number ("two years" -> 24 months, "6 wks", "3 yeras"), which wins over a number
  without one ("two restaurants, around 45 staff").
The words for all this (number words, units, range and adding words) live in ``Language``. In German
and Spanish, number words are first turned into digits by text2num's ``alpha2digit`` (its compounds:
"fünfundzwanzig", "veinticinco", "doscientos cincuenta" are one word or need grammar the table here
does not have); it misreads "unos"/"unas" (about) as one, so those are taken out first, and a lone
"ein"/"un" stays a word (threshold 1.5: "ein KMU" is no head count of one; "ein Jahr" is still a
year, read by ``one``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

from advisor.language import ENGLISH, Language
from advisor.words import stem, tokens, typo

_NUMBER = re.compile(r"(\d+(?:[.,]\d+)?)(?:ish|s|k|plus)?")


def _number(word: str, numbers: dict[str, float]) -> float | None:
    """A number written in digits ("40", "40ish") or as a word ("twelve", "eigteen": one slip)."""
    found = _NUMBER.fullmatch(word)
    if found is not None:
        value = float(found.group(1).replace(",", "."))
        return value * 1000 if word.endswith("k") else value
    if word in numbers:
        return numbers[word]
    slipped = [n for known, n in numbers.items() if len(known) >= 5 and typo(word, known)]
    return slipped[0] if len(slipped) == 1 else None


_THOUSANDS = re.compile(r"(\d),(\d{3})\b")
_DOT_THOUSANDS = re.compile(r"(\d)\.(\d{3})\b")
_GLUED = re.compile(r"(\d)([a-z]+)", re.IGNORECASE)
_SUFFIXES = frozenset({"ish", "s", "k", "plus", "x", "st", "nd", "rd", "th"})


def _numbers(words: Sequence[str], numbers: dict[str, float], language: Language) -> list[tuple[int, float]]:
    """The numbers among ``words`` as (position of the number's last word, value), number words put
    together as people write them: "two hundred", "hundred and fifty", "couple thousand", "twenty five"."""
    found: list[tuple[int, float]] = []
    for i, word in enumerate(words):
        value = _number(word, numbers)
        if value is None:
            continue
        last = found[-1] if found else None
        multiplies = word in language.multipliers or (value in (100, 1000) and i > 0 and not words[i - 1][:1].isdigit())
        if last is not None and multiplies and last[0] == i - 1:  # text2num writes "hundert" as 100
            found[-1] = (i, last[1] * value)  # "two hundred"
        elif last is not None and last[1] >= 100 and last[1] % 100 == 0 and value < 100 and (
                last[0] == i - 1 or (last[0] == i - 2 and words[i - 1] in language.adding)):
            found[-1] = (i, last[1] + value)  # "hundred and fifty"
        elif last is not None and last[0] == i - 1 and last[1] in (20, 30, 40, 50, 60, 70, 80, 90) and value < 10 \
                and not _NUMBER.fullmatch(words[i - 1]):
            found[-1] = (i, last[1] + value)  # "twenty five"
        else:
            found.append((i, value))
    return found


class Quantity(NamedTuple):
    value: float  # in the measure's unit; a range's middle
    said: bool  # a unit word said what the number counts
    low: float  # a range's ends ("between 10 and 15 people"); both the value otherwise
    high: float


def _spelled(text: str, language: Language) -> str:
    """Number words turned into digits by text2num ("fünfundzwanzig Leute" -> "25 Leute")."""
    from text_to_num import alpha2digit  # imported only where German or Spanish is read

    for words, meaning in language.unspelled:  # "ein paar" is not "1 paar"
        text = re.sub(rf"\b{re.escape(words)}\b", meaning, text, flags=re.IGNORECASE)
    try:
        return str(alpha2digit(text, language.spelled, threshold=1.5))
    except Exception:
        return text


def quantity(text: str, measure: str, language: Language = ENGLISH) -> Quantity | None:
    """A number in ``text`` in the unit of ``measure``; None if there is no number.

    Read as people write it: digits or words ("5", "five", "a dozen", "eigteen"), "40ish", a range
    ("2-3 years", "between 10 and 15 people": its middle, and its ends so that a range across two
    options can be asked about), "and a half", parts added up ("3 partners and 9 staff", "me + 2
    techs"), a unit after the number ("two years" -> 24 months, "6 wks", "3 yeras"). The number
    followed by a unit wins over another ("two restaurants, around 45 staff").
    """
    if language.spelled:
        text = _spelled(text, language)
    for pattern, replacement in language.rewrites:  # "2 años y medio" -> "2,5 años"
        text = re.sub(pattern, replacement, text, flags=re.IGNORECASE)
    thousands = _THOUSANDS if language.thousands == "," else _DOT_THOUSANDS
    text = thousands.sub(r"\1\2", text.replace("+", " plus "))  # "1,500 employees", "1.500 Mitarbeiter"
    text = _GLUED.sub(lambda m: m[0] if m[2] in _SUFFIXES else f"{m[1]} {m[2]}", text)  # "18mths"
    words = tokens(text, language)
    stemmed = [stem(w, language) for w in words]
    numbers = dict(language.numbers)
    units = [(unit, size) for unit_measure, unit, size in language.units if unit_measure == measure]
    found = _numbers(words, numbers, language)
    if not found and measure not in language.counted:  # "a fortnight", "a year": one of the unit
        found = [(i, 1.0) for i, word in enumerate(words[:-1]) if word in language.one
                 and any(stemmed[i + 1] == unit for unit, _ in units)][:1]
    if not found:
        return None

    def unit_after(at: int) -> float | None:
        for raw, word in zip(words[at + 1:at + 4], stemmed[at + 1:at + 4], strict=False):
            for unit, size in units:
                if word == unit or (len(raw) >= 5 and (typo(word, unit) or typo(raw, unit + "s"))):
                    return size
        return None

    def half(at: int) -> int:
        """How many words after the number say "and a half" (0 if none)."""
        return next((len(h) for h in language.halves if tuple(words[at + 1:at + 1 + len(h)]) == h), 0)

    def unit_of(at: int) -> float | None:
        found = unit_after(at + half(at)) if half(at) > 1 else None  # "two and a half years"
        return found if found is not None else unit_after(at)

    first = next((k for k, (at, _) in enumerate(found) if unit_of(at) is not None
                  or (k + 1 < len(found) and found[k + 1][0] - at <= 2 and unit_of(found[k + 1][0]) is not None)), 0)
    (at, value), rest = found[first], found[first + 1:]
    said = unit_of(at)
    if said is not None and rest and rest[0][0] == at + 3 and words[at + 2] in language.range_words and (
            measure not in language.counted):
        other = unit_of(rest[0][0])  # "between 6 months and 2 years": a range whose ends have units
        if other is not None:
            low, high = sorted((value * said, rest[0][1] * other))
            return Quantity((low + high) / 2, True, low, high)
    low = high = value
    if rest and (rest[0][0] - at == 1 or (rest[0][0] - at == 2 and words[at + 1] in language.range_words)):
        low, high = value, rest[0][1]  # "2-3 years", "two to three years", "10 and 15 people"
        at, value = rest[0][0], (value + rest[0][1]) / 2
        rest = rest[1:]
    if half(at):
        value += 0.5
        low, high = low + 0.5, high + 0.5
    said = unit_of(at)
    if measure in language.counted:
        for i, more in rest:  # "3 partners and 9 staff": the parts add up
            if words[i - 1] in language.adding or (i >= 2 and words[i - 2] in language.adding):
                value, low, high = value + more, low + more, high + more
        if at > 0 and words[at - 1] in language.adding and any(w in language.self_words for w in words[:at - 1]):
            value, low, high = value + 1, low + 1, high + 1  # "me + 2 techs"
    size = said if said is not None else 1.0
    return Quantity(value * size, said is not None, min(low, high) * size, max(low, high) * size)
