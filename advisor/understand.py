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
- a negation reaches over one word that is not a filler ("we never do email campaigns"), unless
  that word says a lack ("no time for invoicing" is a pain). Measured on the development sets:
  precision 0.934 -> 0.938, the tuning set unchanged; over two words, the tuning set lost recall.
Phrases are looked up through an index of their first words, and only phrases whose every word is
in the text are tried: with ~8,400 phrases at the tasks question (word groups written out), one
sentence takes 2.5 ms; without the index it took 42 ms, with fewer phrases than now.
The person always confirms what was understood, so a rare false match costs one tap, never a
wrong answer. The words of a language (stemmer, negations, number words) live in ``Language``
(``advisor/language.py``); text is turned into tokens, stems and typos in ``advisor/words.py``;
numbers with their units ("2-3 years", "3 partners and 9 staff") are read by ``quantity``
(``advisor/quantities.py``). ``Language``, ``ENGLISH``, ``Quantity``, ``quantity``, ``tokens``,
``stems``, ``stem`` and ``typo`` can be imported from here as well.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

from advisor.dialog import Option
from advisor.language import ENGLISH as ENGLISH
from advisor.language import Language as Language
from advisor.quantities import Quantity as Quantity
from advisor.quantities import quantity as quantity
from advisor.words import _stemmer, stem, tokens, typo
from advisor.words import stems as stems

_DOTS = "..."


class _Word(NamedTuple):  # a tuple: hashed and compared in C, thousands of times per answer
    raw: str
    stem: str
    every_form: bool = False  # a keyword of a language without ``exact_forms``: every form of it counts

    @property
    def base(self) -> bool:
        """Written in its base form ("call", not "calling"): then every form of it counts."""
        return self.every_form or self.raw == self.stem


_KNOWN: dict[tuple[str, Language], _Word] = {}


@lru_cache(maxsize=131072)
def _phrase(phrase: str, language: Language = ENGLISH) -> tuple[_Word, ...]:
    """A keyword phrase as words. Its words are met again and again (the German tasks' ~90,000 phrases,
    written out from word groups, share a few thousand words), so each is stemmed once. With the
    ``Language`` hashed by identity, the German phrases' first use went from 2.0 s to 0.44 s, the
    English ones' from 0.09 s to 0.03 s."""
    words = []
    for raw in tokens(phrase, language):
        word = _KNOWN.get((raw, language))
        if word is None:
            stemmed = _stemmer(language.stemmer).stemWord(raw)
            word = _KNOWN[(raw, language)] = _Word(raw, stemmed, not language.exact_forms)
        words.append(word)
    return tuple(words)


def _words(text: str, language: Language = ENGLISH) -> tuple[_Word, ...]:
    raw = tokens(text, language)
    return tuple(_Word(r, s) for r, s in zip(raw, _stemmer(language.stemmer).stemWords(raw), strict=True))


def same_word(typed: _Word, known: _Word) -> bool:
    """A form of a keyword written in its base form ("call": calls, calling), or the word itself
    with a typo. A keyword written inflected ("prospecting", "books") matches that form only, so
    "prospects" is not prospecting and "booking" is not the books.

    In German and Spanish (not ``exact_forms``) every form of a keyword counts, and a slip is looked
    for between the stems, of six letters or more: a changed ending is another word more often than a
    slip there ("haciendo", doing, and "hacienda", the tax office; "propio", own, and "propinas",
    tips). Measured on the Spanish development phrases before tuning, slips between whole words,
    between stems or none at all: the same recall, and 41, 40 and 39 wrong matches in about 250; on
    the German ones, recall 0.92 with slips between stems, 0.90 without, the same precision."""
    if known.every_form:
        return typed.stem == known.stem or (min(len(known.stem), len(typed.stem)) >= 6
                                            and typo(typed.stem, known.stem))
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


_COMPILED: dict[tuple[int, Language], tuple[Option, _Compiled]] = {}


def _compiled(option: Option, language: Language = ENGLISH) -> _Compiled:
    """An option's phrases as words, indexed by their first word (an option has up to ~2,000)."""
    kept = _COMPILED.get((id(option), language))
    if kept is not None and kept[0] is option:
        return kept[1]

    def index(phrases: Sequence[str]) -> _Index:
        found: _Index = {}
        for phrase in phrases:
            words = _phrase(phrase, language)
            if words:
                found.setdefault(words[0].raw[:1], {}).setdefault(words[0], []).append(words)
        return found

    compiled = _Compiled(index([p for p in (*option.keywords, option.label) if not p.startswith(WHOLE)]),
                         index(option.unless), tuple(p[1:] for p in option.keywords if p.startswith(WHOLE)))
    _COMPILED[(id(option), language)] = (option, compiled)
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
        compiled = _compiled(option, language)
        found = set(spans(compiled.keywords))
        if any(tuple(tokens(phrase, language)) == whole for phrase in compiled.whole):
            found.add((0, len(typed)))  # "=no": the whole answer is "no"
        unless = spans(compiled.unless)
        matches += [_Match(option.value, s, e) for s, e in found
                    if not any(us <= s and e <= ue for us, ue in unless)]
    matches = [m for m in matches if not any(m.inside(o) for o in matches if o.value != m.value)]
    negated = [m for m in matches if _negated(words, m, language)]
    # a match inside a negated one goes with it ("la agenda de citas va sola": not "agenda" either)
    matches = [m for m in matches if m not in negated and not any(
        n.start <= m.start and m.end <= n.end for n in negated)]
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
                     for w in _phrase(phrase, language)
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
                    tuple(tuple(stem(w, language) for w in s) for s in language.settled),
                    language.breaks | group(language.breaks),
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


def match_options(text: str, options: Sequence[Option], language: Language = ENGLISH) -> list[str]:
    """The values of the options ``text`` names for sure, in option order (ambiguous words left out).

    An exclusive option ("none of these") is returned alone, and only when nothing else matched.
    """
    return list(understand(text, options, language).values)
