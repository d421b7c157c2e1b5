"""Everything language-specific the understanding layer uses, one ``Language`` per language.

``advisor/understand.py`` (options named in free text) and ``advisor/quantities.py`` (numbers
with their units) read a text through a ``Language``: its stemmer, its negations and the words
that cancel or keep them, "is fine" and "is outsourced" after a task, the words that end a clause,
number words, units, words too common to count, acronyms written in capitals ("IT"), and the
replies that say yes or no to an answer read back.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


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
    yes: frozenset[str] = frozenset()  # a whole reply that keeps what was read back or proposed
    no: frozenset[str] = frozenset()  # a whole reply that refuses it


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
    yes=frozenset({"y", "yes", "ok", "okay", "yep", "yeah", "correct", "right", "confirm", "sure"}),
    no=frozenset({"n", "no", "nope", "wrong", "not right", "no thanks"}),
    adding=frozenset({"and", "plus", "with"}),
    self_words=frozenset({"me", "myself", "i"}),
    multipliers=frozenset({"hundred", "thousand"}),
    one=frozenset({"a", "an", "one"}),
)


# The free-text layer in German and Spanish is English's for now (English words are understood in
# every language), with each language's own yes and no for an answer read back; typed option labels
# are understood in the conversation's language (the engine gets the dialog in its words).
GERMAN = replace(ENGLISH, yes=ENGLISH.yes | {"ja", "j", "jawohl", "genau", "richtig", "stimmt", "passt"},
                 no=ENGLISH.no | {"nein", "falsch", "nee", "stimmt nicht"})
SPANISH = replace(ENGLISH, yes=ENGLISH.yes | {"si", "sí", "s", "vale", "claro", "correcto", "exacto"},
                  no=ENGLISH.no | {"no", "incorrecto", "no es correcto"})
LANGUAGE_OF = {"en": ENGLISH, "de": GERMAN, "es": SPANISH}
