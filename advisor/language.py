"""Everything language-specific the understanding layer uses, one ``Language`` per language.

``advisor/understand.py`` (options named in free text) and ``advisor/quantities.py`` (numbers
with their units) read a text through a ``Language``: its stemmer, its negations and the words
that cancel or keep them, "is fine" and "is outsourced" after a task, the words that end a clause,
number words, units, words too common to count, acronyms written in capitals ("IT"), and the
replies that say yes or no to an answer read back.

The words are compared after the text is folded (``advisor/words.py``: accents and umlauts dropped,
"ß" -> "ss"), so they are written here without them ("funf", "ano"); the words of ``negations``,
``lacking``, ``fillers``, ``settled``, ``breaks`` and ``ignored`` are compared as Snowball stems and
may be written in any form. German and Spanish number words are first turned into digits by text2num
(``spelled``), which reads the compounds ("fünfundzwanzig", "veinticinco", "doscientos cincuenta");
``numbers`` then holds what it leaves ("ein paar", "anderthalb", "zu dritt").
"""

from __future__ import annotations

from dataclasses import dataclass

import snowballstemmer


@dataclass(frozen=True, eq=False)
class Language:
    """Everything language-specific the understanding layer uses, in one place. Compared and hashed
    by identity (one object per language): it keys the caches of every word read, and hashing its
    word sets each time took 0.65 s of the German keywords' first use."""

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
    exact_forms: bool = True  # a keyword written inflected matches that form only ("prospecting" is not "prospects")
    halves: tuple[tuple[str, ...], ...] = (("and", "a", "half"), ("and", "half"))  # after a number: + 0.5
    spelled: str = ""  # text2num's language code: number words in the text turned into digits first
    unspelled: tuple[tuple[str, str], ...] = ()  # words text2num would misread as numbers, and what they mean
    thousands: str = ","  # the thousands separator people type ("1,500"; "1.500" in German and Spanish)
    rewrites: tuple[tuple[str, str], ...] = ()  # (regular expression, replacement) once number words are digits


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


def _phrases(text: str) -> tuple[tuple[str, ...], ...]:
    """Phrases written "ist ok | kein problem" as the tuples of words ``settled`` holds."""
    return tuple(tuple(phrase.split()) for phrase in text.split("|"))


def _units(stemmer: str, people: tuple[str, ...], months: tuple[tuple[str, float], ...]
           ) -> tuple[tuple[str, str, float], ...]:
    """Unit words (written folded) as the stems ``quantity`` compares them with."""
    stem = snowballstemmer.stemmer(stemmer).stemWord
    found = {("people", stem(word), 1.0) for word in people} | {("months", stem(word), size) for word, size in months}
    return tuple(sorted(found))


# German and Spanish: their own stemmer, negations, number words and units. Keywords written in any
# form match every form (``exact_forms``): German and Spanish nouns and verbs change their endings far
# more than English ones, and their Snowball stems keep the meaning apart well enough.
GERMAN = Language(
    stemmer="german",
    exact_forms=False,
    negations=frozenset({"nicht", "kein", "keine", "keinen", "keiner", "keinem", "keines", "nie", "niemals",
                         "ohne", "weder", "ausgelagert", "outgesourct", "nix", "statt", "anstatt", "vergessen",
                         "ned", "nod"}),  # "ned", "nöd": Bavarian, Austrian and Swiss "nicht"
    # "nicht nur", "nicht mehr"; "kommen nicht zur Buchhaltung", "nicht hinterher": a lack, not a negation
    negation_exceptions=frozenset({"nur", "bloss", "mehr", "zur", "zum", "dazu", "hinterher", "nach", "genug",
                                   "ganz", "immer", "so"}),
    fillers=frozenset({"der", "die", "das", "den", "dem", "des", "ein", "eine", "einen", "einem", "einer", "unser",
                       "unsere", "unseren", "unserem", "unserer", "mein", "meine", "meinen", "wir", "uns", "ich",
                       "mit", "von", "fur", "um", "zu", "auf", "mehr", "wirklich", "viel", "so", "ganz", "gar",
                       "uberhaupt", "brauchen", "brauche", "mussen", "machen", "mache", "kummern",
                       "sorgen", "auslagern", "outsourcen", "selbst", "selber", "extra", "eigene", "eigenen", "es",
                       "sich", "mal", "also", "auch", "eigentlich", "haben", "hab", "habe", "tun", "problem",
                       "thema", "sein"}),
    lacking=frozenset({"zeit", "jemand", "jemanden", "leute", "personal", "kapazitat", "kapazitaten", "ahnung",
                       "budget", "ressourcen", "mitarbeiter", "kraft", "nerv", "nerven", "plan", "system", "prozess",
                       "kopf", "luft", "hande", "zeitfenster", "uberblick", "struktur", "ordnung", "know", "wissen"}),
    settled=_phrases(
        "lauft gut | laufen gut | lauft rund | lauft super | lauft von allein | passt | ist kein problem | "
        "kein problem | sind kein problem | ist ok | ok | okay | ist okay | ist erledigt | erledigt | "
        "ist ausgelagert | sind ausgelagert | ausgelagert | macht unser steuerberater | "
        "macht der steuerberater | macht unsere steuerberaterin | macht ein dienstleister | klappt | "
        "klappt gut | im griff | haben wir im griff | ist automatisiert | sind automatisiert | lauft automatisiert | "
        "ist geregelt | "
        "geregelt | ist kein thema | kein thema | ist egal | stort nicht | nervt nicht | "
        "ist nicht das problem | ist in ordnung | in ordnung | funktioniert | funktioniert gut | ist einfach | "
        "geht schnell | ist schnell erledigt | machen wir nicht | machen wir gar nicht | brauchen wir nicht | "
        "haben wir nicht | gibt es nicht | gibts nicht | ist abgedeckt | lauft nebenbei | nebenbei | "
        "ist entspannt | entspannt | ist ruhig | ruhig | kostet kaum zeit | kostet keine zeit | geht so | "
        "ist gelost | gelost | ist uns egal | sind uns egal | gut im griff | haben wir gut im griff | "
        "machen wir keine | machen wir keine mehr | machen wir nicht mehr | haben wir ausgelagert | "
        "haben wir outgesourct | haben wir abgegeben | sind nicht das problem | mussen wir uns nicht kummern | "
        "brauchen wir uns nicht kummern | macht ein callcenter | macht unsere agentur | macht eine agentur"),
    breaks=frozenset({",", ";", ".", "!", "?", "aber", "jedoch", "sondern", "doch", "wahrend", "obwohl",
                      "allerdings", "dafur", "stattdessen", "trotzdem", "dagegen", "hingegen", "ausser",
                      "ausgenommen"}),
    numbers=(("null", 0), ("eins", 1), ("zwei", 2), ("drei", 3), ("vier", 4), ("funf", 5), ("sechs", 6),
             ("sieben", 7), ("acht", 8), ("neun", 9), ("zehn", 10), ("elf", 11), ("zwolf", 12), ("zwanzig", 20),
             ("dreissig", 30), ("vierzig", 40), ("funfzig", 50), ("sechzig", 60), ("siebzig", 70), ("achtzig", 80),
             ("neunzig", 90), ("hundert", 100), ("tausend", 1000), ("dutzend", 12), ("paar", 2), ("einige", 3),
             ("halb", 0.5), ("halbes", 0.5), ("anderthalb", 1.5), ("eineinhalb", 1.5), ("zweieinhalb", 2.5),
             ("dreieinhalb", 3.5), ("zweit", 2), ("dritt", 3), ("viert", 4), ("funft", 5), ("sechst", 6),
             ("siebt", 7), ("acht", 8), ("einem", 1), ("einer", 1)),
    units=_units("german", people=(
        "person", "personen", "leute", "mitarbeiter", "mitarbeiterin", "mitarbeitende", "angestellte",
        "beschaftigte", "kollegen", "kolleginnen", "kopfe", "ma", "partner", "partnerin", "grunder", "grunderin",
        "mann", "fte", "vollzeit", "teilzeit", "festangestellte", "freelancer", "freie", "inhaber", "azubis",
        "aushilfen", "fahrer", "techniker", "entwickler", "pfleger", "pflegekrafte", "arzte", "anwalte", "stellen",
        "vollzeitstellen", "mitglieder", "teammitglieder", "uns", "gesellschafter", "monteure", "handwerker"),
        months=(("monat", 1), ("monate", 1), ("jahr", 12), ("jahre", 12), ("quartal", 3), ("woche", 0.25),
                ("wochen", 0.25), ("tag", 1 / 30), ("tage", 1 / 30), ("halbjahr", 6))),
    ignored=frozenset({
        "der", "die", "das", "den", "dem", "des", "ein", "eine", "einen", "einem", "einer", "und", "oder", "aber",
        "wir", "uns", "unser", "unsere", "ich", "mich", "mir", "mein", "meine", "sie", "ihr", "ihre", "es", "ist",
        "sind", "war", "sein", "hat", "haben", "habe", "wird", "werden", "kann", "konnen", "muss", "mussen", "mit",
        "von", "fur", "in", "im", "an", "am", "auf", "aus", "bei", "zu", "zum", "zur", "um", "uber", "nach", "vor",
        "so", "sehr", "ganz", "auch", "noch", "schon", "nur", "mal", "doch", "ja", "nein", "nicht", "kein", "keine",
        "was", "wer", "wie", "wo", "da", "dass", "wenn", "weil", "als", "dann", "jetzt", "immer", "alles", "viel",
        "viele", "mehr", "etwas", "sache", "sachen", "zeit", "team", "firma", "unternehmen", "betrieb", "arbeit",
        "leute", "jemand", "man", "gut", "neu", "neue", "tag", "tage", "woche", "wochen", "stunde", "stunden",
        "jeden", "jede", "jeder", "eigentlich", "also", "halt", "eben", "bisschen", "machen", "macht", "tun",
        "geht", "gibt", "steht", "kommt", "weg", "bald", "richtig", "schnell", "paar"}),
    range_words=frozenset({"bis", "oder", "und"}),
    adding=frozenset({"und", "plus", "mit"}),
    self_words=frozenset({"ich", "mich", "mir"}),
    multipliers=frozenset({"hundert", "tausend"}),
    one=frozenset({"ein", "eine", "einen", "einem", "einer", "eins"}),
    halves=(("und", "halb"), ("einhalb",)),
    spelled="de",
    unspelled=(("ein paar", "paar"), ("ein halbes", "halbes"), ("eine halbe", "halbe"), ("ein halber", "halber")),
    thousands=".",
    yes=ENGLISH.yes | {"ja", "j", "jawohl", "genau", "richtig", "stimmt", "passt", "jep", "jo", "korrekt"},
    no=ENGLISH.no | {"nein", "falsch", "nee", "stimmt nicht", "nicht richtig"},
)
SPANISH = Language(
    stemmer="spanish",
    exact_forms=False,
    negations=frozenset({"no", "ni", "nunca", "jamas", "sin", "tampoco", "ningun", "ninguna", "ninguno", "nada",
                         "externalizado", "externalizada", "externalizamos", "tercerizado", "tercerizada",
                         "tercerizamos", "subcontratado", "subcontratamos", "olvida", "olvidate"}),
    # "no solo", "no solamente"; "no damos abasto con", "no llegamos a": a lack, not a negation
    negation_exceptions=frozenset({"solo", "solamente", "nomas", "unicamente", "damos", "llegamos", "alcanza",
                                   "alcanzamos", "podemos", "paramos", "sabemos", "y"}),
    fillers=frozenset({"el", "la", "los", "las", "un", "una", "unos", "unas", "nuestro", "nuestra", "nuestros",
                       "nuestras", "mi", "mis", "de", "del", "con", "para", "por", "a", "al", "en", "lo", "que",
                       "hacemos", "hacer", "hace", "muy", "mucho", "mucha", "mas", "realmente", "nos", "me", "se",
                       "ya", "tema", "problema", "necesitamos", "necesito", "preocupa", "preocupamos", "ocupamos",
                       "encargamos", "queremos", "quiero", "ese", "esa", "eso", "esto", "todo", "toda", "tanto",
                       "tanta", "tenemos", "tengo", "hay"}),
    lacking=frozenset({"tiempo", "nadie", "alguien", "gente", "personal", "capacidad", "idea", "recursos",
                       "presupuesto", "manos", "sistema", "proceso", "abasto", "cabeza", "orden", "estructura",
                       "plata", "dinero", "equipo", "persona", "conocimiento"}),
    settled=_phrases(
        "esta bien | estan bien | va bien | van bien | funciona | funciona bien | no es problema | "
        "no es un problema | no son problema | sin problema | esta resuelto | esta resuelta | resuelto | "
        "resuelta | esta cubierto | esta cubierta | lo lleva el contador | la lleva el contador | "
        "lo lleva una gestoria | la lleva una gestoria | la lleva la gestoria | lo lleva la gestoria | "
        "la lleva el gestor | lo llevamos bien | la llevamos bien | externalizado | externalizada | "
        "esta externalizado | esta externalizada | tercerizado | tercerizada | automatizado | automatizada | "
        "esta automatizado | esta automatizada | lo tenemos controlado | la tenemos controlada | controlado | "
        "controlada | bajo control | no nos quita tiempo | es facil | esta ok | ok | okay | no lo hacemos | "
        "no la hacemos | no las hacemos | no los hacemos | no hacemos | no nos preocupa | no es tema | "
        "no es el problema | tranquilo | tranquila | esta tranquilo | esta tranquila | sale solo | sale sola | "
        "esta al dia | al dia | ningun problema | nada de eso | no aplica | no tenemos | lo lleva | la lleva | "
        "los lleva | las lleva | lo llevan | la llevan | las tenemos cubiertas | lo tenemos cubierto | "
        "la tenemos cubierta | cubierto | cubierta | cubiertas | cubiertos | ya lo resolvimos | "
        "ya la resolvimos | resolvimos | va sola | va solo | no nos cuesta | no cuesta | sin problemas | "
        "la hace el contador | lo hace el contador | la hace la gestoria | lo hace la gestoria | "
        "la hace una gestoria | lo hace una gestoria | la hace el contador externo | las hace una consultora | "
        "la hace una consultora | lo hace una agencia | la hace una agencia | las hace una agencia | "
        "lo hace un proveedor | la hace un proveedor | lo hace una empresa | la hace una empresa"),
    # (compared as stems: "sino", "salvo", "cambio" would end a clause at "sin", "salvar", "cambiar")
    breaks=frozenset({",", ";", ".", "!", "?", "pero", "aunque", "mientras", "embargo", "igual", "ademas", "menos",
                      "excepto"}),
    numbers=(("cero", 0), ("uno", 1), ("dos", 2), ("tres", 3), ("cuatro", 4), ("cinco", 5), ("seis", 6),
             ("siete", 7), ("ocho", 8), ("nueve", 9), ("diez", 10), ("once", 11), ("doce", 12), ("quince", 15),
             ("veinte", 20), ("treinta", 30), ("cuarenta", 40), ("cincuenta", 50), ("sesenta", 60), ("setenta", 70),
             ("ochenta", 80), ("noventa", 90), ("cien", 100), ("ciento", 100), ("mil", 1000), ("docena", 12),
             ("par", 2), ("varios", 3), ("varias", 3), ("pocos", 3), ("medio", 0.5), ("media", 0.5)),
    units=_units("spanish", people=(
        "persona", "personas", "gente", "empleado", "empleados", "empleadas", "trabajador", "trabajadores",
        "colaboradores", "socio", "socios", "socias", "fundador", "fundadores", "cofundadores", "companeros",
        "integrantes", "miembros", "cabezas", "tecnicos", "desarrolladores", "enfermeras", "medicos", "abogados",
        "vendedores", "choferes", "conductores", "freelancers", "autonomos", "nosotros", "fte", "chicos",
        "operarios", "asesores", "devs", "programadores", "ingenieros", "developers", "desarrolladores"),
        months=(("mes", 1), ("meses", 1), ("ano", 12), ("anos", 12), ("trimestre", 3), ("semana", 0.25),
                ("semanas", 0.25), ("dia", 1 / 30), ("dias", 1 / 30), ("semestre", 6))),
    ignored=frozenset({
        "el", "la", "los", "las", "un", "una", "unos", "unas", "y", "o", "pero", "de", "del", "a", "al", "en",
        "con", "para", "por", "que", "se", "nos", "me", "mi", "mis", "nuestro", "nuestra", "nuestros", "nuestras",
        "yo", "nosotros", "es", "son", "esta", "estan", "ser", "estar", "hay", "tenemos", "tiene", "tengo", "hacer",
        "hacemos", "hace", "muy", "mas", "mucho", "mucha", "muchos", "muchas", "todo", "todos", "toda", "todas",
        "lo", "le", "les", "su", "sus", "como", "cuando", "donde", "porque", "si", "no", "ya", "tambien", "solo",
        "cosa", "cosas", "tiempo", "equipo", "empresa", "negocio", "trabajo", "gente", "alguien", "nada", "bien",
        "dia", "dias", "semana", "semanas", "hora", "horas", "cada", "siempre", "mes", "meses", "ahora", "nuevo",
        "nueva", "tema", "temas", "parte", "eso", "esto", "ese", "esa", "este"}),
    range_words=frozenset({"a", "o", "y", "hasta"}),
    adding=frozenset({"y", "mas", "con"}),
    self_words=frozenset({"yo", "mi"}),
    multipliers=frozenset({"cien", "ciento", "mil"}),
    one=frozenset({"un", "una", "uno"}),
    halves=(("y", "medio"), ("y", "media")),
    spelled="es",
    unspelled=(("unos", ""), ("unas", ""), ("uno de", "1 de"), ("una de", "1 de")),
    thousands=".",
    rewrites=((r"\b(\d+) (años|meses|semanas) y medio\b", r"\1,5 \2"), (r"\b(?:un |1 )?año y medio\b", "18 meses")),
    yes=ENGLISH.yes | {"si", "sí", "s", "vale", "claro", "correcto", "exacto", "dale", "sip", "eso"},
    no=ENGLISH.no | {"no", "incorrecto", "no es correcto", "para nada"},
)
LANGUAGE_OF = {"en": ENGLISH, "de": GERMAN, "es": SPANISH}
