"""Understanding free text well enough to pre-select options: "my reps spend hours cold calling".

Each option lists, in the dialog file, `keywords` (phrases that mean it) and `unless` (phrases in
which its keywords mean something else: "updating the CRM after every call" is data entry, not
calling). A phrase matches when its words appear in order in the text after both are reduced to
stems by the Snowball English stemmer (snowballstemmer, which runs PyStemmer's C build of the same
algorithms when it is installed, as requirements.txt has it: stemming the ~8,400 phrases took a
console walk from 1.37 s to 0.53 s, with the same corpus figures; a keyword written in its base
form, "call", matches calling, calls, called), a word also matching with one slip (two in long words), measured
with rapidfuzz's optimal-string-alignment distance ("bookeeping", "payrol", "soical").

Written here, because no library does it for phrases this short, and kept small:
- a longer phrase wins over a shorter one inside it ("lead lists from linkedin" over "linkedin");
- negation within a clause: "not the cold calling, that's fine, but the invoicing kills us" names
  invoicing only; "we don't do X", "no X", "X is fine", "X is outsourced", "X isn't a problem";
- the same words meaning two options ("answering the phones") are reported as ambiguous, so the
  person is asked instead of the advisor guessing;
- "..." in a phrase for up to three words ("which ... to target"), "=" for a whole answer ("=no");
- at button questions only (``loose``), single words of the options' phrases weighed by how many
  options share them, when no phrase matched. Measured on the blind held-out answers: without it
  0.81 understood, with it 0.85. On the free-text tasks it cost precision for recall (0.89/0.86
  -> 0.87/0.90 on one set, 0.96 -> 0.83 precision when used beside the phrases), so it is not
  used there;
- quantities: ranges, parts that add up, number words with typos, "two hundred", "1,500" (``quantity``);
- a negation reaches over one word that is not a filler ("we never do email campaigns"), unless
  that word says a lack ("no time for invoicing" is a pain). Measured on the development sets:
  precision 0.934 -> 0.938, the tuning set unchanged; over two words, the tuning set lost recall.
Phrases are looked up through an index of their first words, and only phrases whose every word is
in the text are tried: with ~8,400 phrases at the tasks question (word groups written out), one
sentence takes 2.5 ms; without the index it took 42 ms, with fewer phrases than now.
The person always confirms what was understood, so a rare false match costs one tap, never a
wrong answer. The words of a language (stemmer, negations, number words) live in ``Language``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import snowballstemmer
from rapidfuzz.distance import OSA

from advisor.dialog import Option


@dataclass(frozen=True)
class Language:
    """Everything language-specific the understanding layer uses, in one place."""

    stemmer: str
    negations: frozenset[str]  # a negation before a phrase cancels it ("not", "don't")
    negation_exceptions: frozenset[str]  # "not only", "no one": not a negation
    fillers: frozenset[str]  # words that may stand between a negation and its phrase
    lacking: frozenset[str]  # after a negation, a lack ("no time for", "nobody to"): the phrase is a pain
    settled: tuple[tuple[str, ...], ...]  # after a phrase: it is not a problem ("is fine"), written as words
    breaks: frozenset[str]  # words that end a clause ("but")
    numbers: tuple[tuple[str, float], ...] = ()  # number words
    units: tuple[tuple[str, str, float], ...] = ()  # (measure, unit word stem, how many of the measure's unit)
    acronyms: tuple[tuple[str, str], ...] = ()  # written in capitals, a word of their own ("IT")
    ignored: frozenset[str] = frozenset()  # words too common to point to an option on their own
    range_words: frozenset[str] = frozenset()  # between two numbers of a range ("2 to 3")
    adding: frozenset[str] = frozenset()  # between parts that add up ("3 partners and 9 staff")
    self_words: frozenset[str] = frozenset()  # the person counting themselves ("me + 2")
    counted: frozenset[str] = frozenset({"people"})  # measures whose parts add up
    multipliers: frozenset[str] = frozenset()  # "two hundred", "couple thousand"
    one: frozenset[str] = frozenset()  # "a" year: one of the unit


ENGLISH = Language(
    stemmer="english",
    negations=frozenset({"not", "no", "dont", "never", "without", "nor", "isnt", "arent", "doesnt", "didnt",
                         "wont", "neither", "stopped", "outsourced", "forget", "havent", "hasnt", "rather"}),
    negation_exceptions=frozenset({"only", "just", "one", "longer", "end"}),
    fillers=frozenset({"the", "a", "an", "any", "our", "my", "we", "us", "do", "doing", "need", "needs", "to",
                       "have", "has", "with", "of", "much", "more", "really", "help", "worry", "about", "care",
                       "for", "from", "even", "bother", "outsource", "outsourcing", "want", "mind", "that",
                       "problem", "issue", "its", "it", "had", "all", "at", "than", "short"}),
    lacking=frozenset({"time", "anyone", "anybody", "one", "enough", "hours", "capacity", "bandwidth", "idea",
                       "clue", "resources", "budget", "someone", "person", "staff", "people", "way",
                       "chance", "energy", "system", "process", "able", "keep", "cope", "manage", "get"}),
    settled=(("is", "fine"), ("are", "fine"), ("fine",), ("is", "ok"), ("are", "ok"), ("ok",), ("okay",),
             ("is", "not", "a", "problem"), ("isnt", "a", "problem"), ("not", "a", "problem"),
             ("no", "problem"), ("isnt", "the", "problem"), ("is", "not", "the", "problem"), ("under", "control"),
             ("is", "handled"), ("are", "handled"), ("is", "sorted"),
             ("not", "an", "issue"), ("isnt", "an", "issue"), ("we", "handle"), ("is", "covered"), ("are", "covered"),
             ("outsourced",), ("is", "outsourced"), ("are", "outsourced"), ("automated",), ("is", "automated"),
             ("are", "automated"), ("sorted",), ("is", "done"), ("are", "done"), ("used", "to"),
             ("runs", "itself"), ("is", "set", "up"), ("no",), ("is", "no", "problem"), ("takes", "no", "time"),
             ("is", "easy"), ("is", "manageable"), ("are", "manageable"), ("we", "can", "handle"), ("doesnt", "take"),
             ("run", "by", "themselves"), ("run", "themselves"), ("is", "solved"), ("are", "solved"),
             ("is", "grand"), ("are", "grand"), ("not", "our", "problem"), ("quiet",), ("is", "quiet"),
             ("we", "have", "plenty"), ("plenty",)),
    breaks=frozenset({",", ";", ".", "!", "?", "but", "however", "though", "although", "while", "whereas",
                      "yet", "instead"}),
    numbers=(("zero", 0), ("one", 1), ("two", 2), ("three", 3), ("four", 4), ("five", 5), ("six", 6),
             ("seven", 7), ("eight", 8), ("nine", 9), ("ten", 10), ("eleven", 11), ("twelve", 12),
             ("fifteen", 15), ("twenty", 20), ("thirty", 30), ("forty", 40), ("fifty", 50), ("sixty", 60),
             ("thirteen", 13), ("fourteen", 14), ("sixteen", 16), ("seventeen", 17), ("eighteen", 18),
             ("nineteen", 19), ("seventy", 70), ("eighty", 80), ("ninety", 90),
             ("hundred", 100), ("thousand", 1000), ("dozen", 12), ("couple", 2), ("few", 3), ("half", 0.5)),
    units=(("people", "peopl", 1), ("people", "person", 1), ("people", "employe", 1), ("people", "staff", 1),
           ("people", "us", 1), ("people", "head", 1), ("people", "fte", 1), ("people", "member", 1),
           ("people", "worker", 1), ("people", "founder", 1),
           ("people", "ppl", 1), ("people", "payrol", 1), ("people", "driver", 1), ("people", "tech", 1),
           ("people", "partner", 1), ("people", "colleagu", 1), ("people", "teammat", 1), ("people", "folk", 1),
           ("people", "guy", 1), ("people", "full", 1), ("people", "fulltim", 1), ("people", "part", 1),
           ("people", "hand", 1), ("people", "engin", 1), ("people", "dev", 1), ("people", "nurs", 1),
           ("months", "month", 1), ("months", "mo", 1), ("months", "mos", 1), ("months", "mth", 1),
           ("months", "year", 12), ("months", "yr", 12), ("months", "yrs", 12), ("months", "quarter", 3),
           ("months", "week", 0.25), ("months", "wk", 0.25), ("months", "wks", 0.25), ("months", "day", 1 / 30),
           ("months", "fortnight", 0.5), ("months", "mths", 1), ("months", "yr", 12)),
    acronyms=(("IT", "infotech"),),
    ignored=frozenset({
        "a", "an", "the", "of", "to", "and", "or", "our", "we", "us", "for", "in", "on", "at", "it", "is",
        "are", "be", "with", "my", "your", "their", "them", "they", "me", "i", "im", "its", "this", "that",
        "these", "those", "what", "who", "how", "do", "does", "did", "done", "have", "has", "had", "will",
        "would", "can", "could", "just", "so", "very", "really", "all", "some", "any", "more", "most",
        "much", "one", "by", "as", "from", "but", "if", "then", "than", "get", "got", "make", "was", "were",
        "been", "being", "about", "into", "out", "up", "own", "yes", "no", "not", "work", "team", "company",
        "business", "thing", "things", "time", "way", "there", "here", "ve", "re", "ll", "s", "t", "d", "m",
        "also", "too", "already", "still", "well", "now", "new", "people", "someone", "something",
        "everything", "else", "need", "want", "like", "think", "know", "better", "many", "lot", "lots", "stuff",
        # time and frequency, said of anything ("it keeps piling up every week" is no stage)
        "keep", "keeps", "kept", "every", "always", "forever", "day", "days", "week", "weeks", "hour", "hours",
        "take", "takes", "around", "ever", "again"
    }),
    range_words=frozenset({"to", "or", "and"}),
    adding=frozenset({"and", "plus", "with"}),
    self_words=frozenset({"me", "myself", "i"}),
    multipliers=frozenset({"hundred", "thousand"}),
    one=frozenset({"a", "an", "one"}),
)

_TOKEN = re.compile(r"\.\.\.|[a-z0-9]+|[,;.!?]")
_DOTS = "..."


@lru_cache(maxsize=8)
def _stemmer(name: str) -> snowballstemmer.stemmer:
    return snowballstemmer.stemmer(name)


def tokens(text: str, language: Language = ENGLISH) -> list[str]:
    """Lower-case words and clause punctuation; apostrophes and hyphens joined ("don't" -> "dont")."""
    for acronym, word in language.acronyms:  # "IT" is not "it"
        text = re.sub(rf"\b{acronym}\b", word, text)
    return _TOKEN.findall(text.lower().replace("'", "").replace("’", "").replace("-", " "))


def stems(text: str, language: Language = ENGLISH) -> tuple[str, ...]:
    words = tokens(text, language)
    return tuple(_stemmer(language.stemmer).stemWords(words))


def stem(word: str, language: Language = ENGLISH) -> str:
    return str(_stemmer(language.stemmer).stemWord(word.lower()))


class _Word(NamedTuple):  # a tuple: hashed and compared in C, thousands of times per answer
    raw: str
    stem: str

    @property
    def base(self) -> bool:
        """Written in its base form ("call", not "calling"): then every form of it counts."""
        return self.raw == self.stem


@lru_cache(maxsize=8192)
def _phrase(phrase: str) -> tuple[_Word, ...]:
    return _words(phrase)


def _words(text: str, language: Language = ENGLISH) -> tuple[_Word, ...]:
    raw = tokens(text, language)
    return tuple(_Word(r, s) for r, s in zip(raw, _stemmer(language.stemmer).stemWords(raw), strict=True))


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


def same_word(typed: _Word, known: _Word) -> bool:
    """A form of a keyword written in its base form ("call": calls, calling), or the word itself
    with a typo. A keyword written inflected ("prospecting", "books") matches that form only, so
    "prospects" is not prospecting and "booking" is not the books."""
    return (known.base and typed.stem == known.stem) or typo(typed.raw, known.raw)


SCOPE = 1  # content words a negation reaches over to its phrase ("not posting on facebook")
GAP = 3  # "which ... to target": up to this many words stand for the dots
WHOLE = "="  # "=no": a keyword that counts only as the whole answer ("no", not the "no" of "no docs")


def _spans(words: Sequence[_Word], phrase: tuple[_Word, ...]) -> list[tuple[int, int]]:
    """Where the phrase's words appear in order; ``...`` in a phrase lets up to GAP words between."""
    if not phrase:
        return []
    if any(w.raw == _DOTS for w in phrase):
        at = next(i for i, w in enumerate(phrase) if w.raw == _DOTS)
        head, tail = phrase[:at], phrase[at + 1:]
        found = []
        for start, end in _spans(words, head):
            for after in _spans(words[end:end + GAP + len(tail)], tail):
                found.append((start, end + after[1]))
                break
        return found
    n = len(phrase)
    return [(i, i + n) for i in range(len(words) - n + 1)
            if all(same_word(words[i + k], phrase[k]) for k in range(n))]


@dataclass(frozen=True)
class Understanding:
    """What a text names: the options, and words that could mean several (to be asked about)."""

    values: tuple[str, ...]
    ambiguous: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (the words, the options they could mean)
    covered: frozenset[int] = frozenset()  # the positions of the words that named them


@dataclass(frozen=True)
class _Match:
    value: str
    start: int
    end: int

    def inside(self, other: _Match) -> bool:
        return other.start <= self.start and self.end <= other.end and (other.end - other.start) > (
            self.end - self.start)


def understand(text: str, options: Sequence[Option], language: Language = ENGLISH,
               loose: bool = False, several: bool = False) -> Understanding:
    """The options ``text`` names, in option order, with the ambiguous words it also contains.

    ``loose`` (words typed where buttons are offered, always shown for a yes): single words of the
    options' phrases count too, each weighed by how many options share it ("a set pirce" -> the
    fixed-price vendor), when no phrase matched or, where ``several`` options may be chosen, in the
    words no phrase used; a tie is reported as ambiguous.
    """
    found = _understand(text, tuple(options), language)
    if not loose or found.ambiguous or set(found.values) & {o.value for o in options if o.exclusive}:
        return found
    if found.values and not several:
        return found
    more = _loosely(text, tuple(options), language, found.covered)
    values = set(found.values) | set(more.values)
    return Understanding(tuple(o.value for o in options if o.value in values), more.ambiguous if not values else ())


_Index = dict[str, dict[_Word, list[tuple[_Word, ...]]]]  # first letter -> first word -> phrases


@dataclass(frozen=True)
class _Compiled:
    keywords: _Index  # with the label
    unless: _Index
    whole: tuple[str, ...]  # "=no" keywords, without the "="


_COMPILED: dict[int, tuple[Option, _Compiled]] = {}


def _compiled(option: Option) -> _Compiled:
    """An option's phrases as words, indexed by their first word (an option has up to ~2,000)."""
    kept = _COMPILED.get(id(option))
    if kept is not None and kept[0] is option:
        return kept[1]

    def index(phrases: Sequence[str]) -> _Index:
        found: _Index = {}
        for phrase in phrases:
            words = _phrase(phrase)
            if words:
                found.setdefault(words[0].raw[:1], {}).setdefault(words[0], []).append(words)
        return found

    compiled = _Compiled(index([p for p in (*option.keywords, option.label) if not p.startswith(WHOLE)]),
                         index(option.unless), tuple(p[1:] for p in option.keywords if p.startswith(WHOLE)))
    _COMPILED[id(option)] = (option, compiled)
    return compiled


@lru_cache(maxsize=1024)  # the same words are read at the question, on arrival and for the advice
def _understand(text: str, options: tuple[Option, ...], language: Language) -> Understanding:
    typed = _words(text, language)
    raw = [w.raw for w in typed]
    words = tuple(w.stem for w in typed)
    matches: list[_Match] = []
    whole = tuple(w for w in raw if w not in language.breaks)
    by_letter: dict[str, list[_Word]] = {}
    for word in typed:
        by_letter.setdefault(word.raw[:1], []).append(word)
    seen: dict[_Word, bool] = {}

    def present(word: _Word) -> bool:  # a word of a phrase is in the text (a typo keeps the first letter)
        if word not in seen:
            seen[word] = word.raw == _DOTS or any(same_word(t, word) for t in by_letter.get(word.raw[:1], ()))
        return seen[word]

    def spans(index: _Index) -> list[tuple[int, int]]:  # thousands of phrases: only those whose words are here
        return [span for letter in by_letter for key, phrases in index.get(letter, {}).items() if present(key)
                for words in phrases if all(present(w) for w in words) for span in _spans(typed, words)]

    for option in options:
        compiled = _compiled(option)
        found = set(spans(compiled.keywords))
        if any(tuple(tokens(phrase, language)) == whole for phrase in compiled.whole):
            found.add((0, len(typed)))  # "=no": the whole answer is "no"
        unless = spans(compiled.unless)
        matches += [_Match(option.value, s, e) for s, e in found
                    if not any(us <= s and e <= ue for us, ue in unless)]
    matches = [m for m in matches if not any(m.inside(o) for o in matches if o.value != m.value)]
    matches = [m for m in matches if not _negated(words, m, language)]
    by_span: dict[tuple[int, int], set[str]] = {}
    for m in matches:
        by_span.setdefault((m.start, m.end), set()).add(m.value)
    order = [o.value for o in options]
    ambiguous = []
    certain: set[str] = set()
    for (start, end), values in sorted(by_span.items()):
        if len(values) > 1:
            ambiguous.append((" ".join(raw[start:end]), tuple(sorted(values, key=order.index))))
        else:
            certain |= values
    ambiguous = [(w, v) for w, v in ambiguous if not certain & set(v)]  # named elsewhere for sure
    matched = [v for v in order if v in certain]
    exclusive = {o.value for o in options if o.exclusive}
    plain = [v for v in matched if v not in exclusive]
    chosen = plain or matched[:1]
    if chosen and set(chosen) <= exclusive and ambiguous:
        chosen = []
    covered = frozenset(i for m in matches for i in range(m.start, m.end))
    return Understanding(tuple(chosen), tuple(ambiguous), covered)


@lru_cache(maxsize=256)
def _vocabulary(option: Option, language: Language) -> frozenset[_Word]:
    ignored = _stemmed(language).ignored
    return frozenset(w for phrase in (*option.keywords, option.label) if not phrase.startswith(WHOLE)
                     for w in _words(phrase, language)
                     if w.stem not in ignored and not w.raw.isdigit() and len(w.raw) > 1)


@lru_cache(maxsize=1024)
def _loosely(text: str, options: tuple[Option, ...], language: Language,
             covered: frozenset[int] = frozenset()) -> Understanding:
    """Single words of the options' phrases, each worth 1 / the number of options that use it; the
    option with the most, if it has at least one word of its own (or two shared ones). Words that
    already named an option (``covered``) and words after a negation in their clause are left out."""
    known = _stemmed(language)
    every = _words(text, language)
    typed = []
    negated = False
    for i, word in enumerate(every):
        if word.stem in known.breaks:
            negated = False
        elif word.stem in known.negations:
            negated = True
        elif not negated and i not in covered and word.stem not in known.ignored and len(word.raw) > 1:
            typed.append(word)
    vocabulary = {o.value: _vocabulary(o, language) for o in options if not o.exclusive}
    scores: dict[str, float] = {}
    for word in typed:
        using = [value for value, vocab in vocabulary.items() if any(same_word(word, v) for v in vocab)]
        for value in using:
            scores[value] = scores.get(value, 0.0) + 1 / len(using)
    if not scores:
        return Understanding(())
    best = max(scores.values())
    top = [o.value for o in options if scores.get(o.value) == best]
    if best < 1:
        return Understanding(())
    if len(top) > 1:
        return Understanding((), ((text.strip(), tuple(top)),))
    return Understanding((top[0],))


@dataclass(frozen=True)
class _Stemmed:
    negations: frozenset[str]
    lacking: frozenset[str]
    exceptions: frozenset[str]
    fillers: frozenset[str]
    settled: tuple[tuple[str, ...], ...]
    breaks: frozenset[str]
    ignored: frozenset[str]


@lru_cache(maxsize=8)
def _stemmed(language: Language) -> _Stemmed:
    """The language's words as stems, as the text is compared."""
    def group(words: frozenset[str]) -> frozenset[str]:
        return frozenset(stem(w, language) for w in words)

    return _Stemmed(group(language.negations), group(language.lacking), group(language.negation_exceptions),
                    group(language.fillers),
                    tuple(tuple(stem(w, language) for w in s) for s in language.settled), language.breaks,
                    group(language.ignored))


def _negated(words: Sequence[str], match: _Match, language: Language) -> bool:
    """A negation before the phrase in its clause, or "is fine" after it."""
    known = _stemmed(language)
    i = match.start - 1
    content = 0  # words between that are neither fillers nor the phrase ("never do email campaigns")
    while i >= 0 and words[i] not in known.breaks:
        if words[i] in known.negations:
            after = words[i + 1] if i + 1 < len(words) else ""
            return after not in known.exceptions
        if words[i] in known.lacking:  # "no time for invoicing": a lack, so a pain
            return False
        if words[i] not in known.fillers:
            content += 1
            if content > SCOPE:
                break
        i -= 1
    rest = []
    for word in words[match.end:]:
        if word in known.breaks:
            break
        rest.append(word)
    return any(tuple(rest[:len(s)]) == s or tuple(rest[1:1 + len(s)]) == s for s in known.settled)


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
        if last is not None and word in language.multipliers and last[0] == i - 1:
            found[-1] = (i, last[1] * value)  # "two hundred"
        elif last is not None and last[1] >= 100 and last[1] % 100 == 0 and value < 100 and (
                last[0] == i - 1 or (last[0] == i - 2 and words[i - 1] == "and")):
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


def quantity(text: str, measure: str, language: Language = ENGLISH) -> Quantity | None:
    """A number in ``text`` in the unit of ``measure``; None if there is no number.

    Read as people write it: digits or words ("5", "five", "a dozen", "eigteen"), "40ish", a range
    ("2-3 years", "between 10 and 15 people": its middle, and its ends so that a range across two
    options can be asked about), "and a half", parts added up ("3 partners and 9 staff", "me + 2
    techs"), a unit after the number ("two years" -> 24 months, "6 wks", "3 yeras"). The number
    followed by a unit wins over another ("two restaurants, around 45 staff").
    """
    text = _THOUSANDS.sub(r"\1\2", text.replace("+", " plus "))  # "1,500 employees"
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

    def half(at: int) -> bool:
        return words[at + 1:at + 4] == ["and", "a", "half"] or words[at + 1:at + 3] == ["and", "half"]

    def unit_of(at: int) -> float | None:
        return unit_after(at + 3) if words[at + 1:at + 4] == ["and", "a", "half"] else unit_after(at)

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


def match_options(text: str, options: Sequence[Option]) -> list[str]:
    """The values of the options ``text`` names for sure, in option order (ambiguous words left out).

    An exclusive option ("none of these") is returned alone, and only when nothing else matched.
    """
    return list(understand(text, options).values)
