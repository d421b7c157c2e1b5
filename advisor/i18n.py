"""Languages: gettext catalogs (Babel) for every sentence a person reads, and choosing a language.

The source language is English: a message's id is its English text, in the templates (jinja2's i18n
extension, ``{% trans %}`` and ``_()``) and in the dialog (question texts, hints, option labels,
units: extracted by ``extract_yaml``). ``pybabel`` extracts them into ``locales/messages.pot``;
each language's catalog is ``locales/<lang>/LC_MESSAGES/messages.po``, compiled to ``.mo``::

    PYTHONPATH=. pybabel extract -F babel.cfg -o locales/messages.pot --no-wrap -c "Translators:" .
    pybabel update -i locales/messages.pot -d locales
    pybabel compile -d locales

Logic never reads a label: answers, rules and branches are ids, so a translation changes words only.
A language's ``Translations`` is loaded once and kept per language (never a lazy proxy bound to the
first locale asked), and each ``Renderer`` has the catalog of its own language installed.
"""

from __future__ import annotations

import gettext
import re
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import IO, Any

import yaml

LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"
DOMAIN = "messages"
SOURCE = "en"
LANGUAGES = ("en", "de", "es")
"""Every language the advisor speaks; English is the source of the catalogs."""
NAMES = {"en": "English", "de": "Deutsch", "es": "Español"}
"""Each language in its own words, for a switcher."""


def pick(code: str | None) -> str | None:
    """The advisor's language for a language code or locale (``de``, ``de-AT``, ``es_ES.UTF-8``,
    ``Deutsch``), or None when it speaks no such language."""
    if not code:
        return None
    code = code.strip()
    by_name = {name.lower(): lang for lang, name in NAMES.items()}
    if code.lower() in by_name:
        return by_name[code.lower()]
    base = re.split(r"[-_.@]", code.lower(), maxsplit=1)[0]
    return base if base in LANGUAGES else None


def from_environment(environ: Mapping[str, str]) -> str:
    """``ADVISOR_LANG``, else the locale (``LC_ALL``, ``LC_MESSAGES``, ``LANG``), else English."""
    for name in ("ADVISOR_LANG", "LC_ALL", "LC_MESSAGES", "LANG"):
        found = pick(environ.get(name))
        if found:
            return found
    return SOURCE


def from_accept_language(header: str | None) -> str:
    """The first language of an HTTP ``Accept-Language`` the advisor speaks, by weight; else English."""
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate((header or "").split(",")):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                continue
        found = pick(tag)
        if found and weight > 0:
            ranked.append((-weight, i, found))
    return min(ranked)[2] if ranked else SOURCE


@cache
def translations(language: str) -> gettext.NullTranslations:
    """The catalog of ``language`` (English: none, the ids are the English words)."""
    if language == SOURCE or language not in LANGUAGES:
        return gettext.NullTranslations()
    from babel.support import Translations  # here: an English process never pays for importing Babel

    return Translations.load(str(LOCALES_DIR), [language], DOMAIN)


def gettext_for(language: str) -> Any:
    return translations(language).gettext


# -- extraction from the dialog ------------------------------------------------------------------
TRANSLATED_KEYS = ("title", "text", "hint", "label", "unit")
"""The keys of a dialog file whose values a person reads (its ``examples`` are typed answers)."""


def extract_yaml(fileobj: IO[bytes], keywords: Any, comment_tags: Any, options: Mapping[str, Any]
                 ) -> Iterator[tuple[int, str, str, list[str]]]:
    """A Babel extractor for the dialog: every value of ``TRANSLATED_KEYS``, with its line."""
    root = yaml.compose(fileobj.read().decode("utf-8"), Loader=yaml.SafeLoader)

    def walk(node: yaml.Node | None, where: str) -> Iterator[tuple[int, str, str, list[str]]]:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                name = str(key.value)
                if name in TRANSLATED_KEYS and isinstance(value, yaml.ScalarNode) and str(value.value).strip():
                    yield value.start_mark.line + 1, "gettext", str(value.value), [f"{where}.{name}".lstrip(".")]
                elif name not in ("keywords", "unless", "words", "examples"):
                    yield from walk(value, f"{where}.{name}")
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                ident = _get(item, "id") or _get(item, "value") or str(i)
                yield from walk(item, f"{where}[{ident}]")

    yield from walk(root, "")


def _get(node: yaml.Node, key: str) -> str | None:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if k.value == key and isinstance(v, yaml.ScalarNode):
                return str(v.value)
    return None


# -- checking the catalogs --------------------------------------------------------------------------
_PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def source_messages(root: Path) -> dict[tuple[str | None, str | tuple[str, ...]], str]:
    """Every message of the sources as ``babel.cfg`` extracts them: (context, id) -> "file:line"."""
    from babel.messages.extract import extract_from_dir
    from babel.messages.frontend import parse_mapping_cfg

    with open(root / "babel.cfg", encoding="utf-8") as config:
        methods, options = parse_mapping_cfg(config)
    found: dict[tuple[str | None, str | tuple[str, ...]], str] = {}
    for filename, line, message, _comments, context in extract_from_dir(str(root), methods, options):
        found.setdefault((context, message), f"{filename}:{line}")
    return found


def check_catalogs(root: Path, locales: Path | None = None,
                   sources: dict[tuple[str | None, str | tuple[str, ...]], str] | None = None) -> list[str]:
    """Every problem of the catalogs, one line each naming the file, the message and the language: a
    message of the sources with no translation (or a fuzzy one), a translation whose placeholders
    differ from the English, a compiled catalog older than its .po."""
    from babel.messages.mofile import read_mo
    from babel.messages.pofile import read_po

    locales = locales or root / "locales"
    sources = sources if sources is not None else source_messages(root)
    problems: list[str] = []
    for language in LANGUAGES:
        if language == SOURCE:
            continue
        po = locales / language / "LC_MESSAGES" / f"{DOMAIN}.po"
        shown = po.relative_to(root) if po.is_relative_to(root) else po
        if not po.is_file():
            problems.append(f"{shown}: missing ({language}): "
                            f"pybabel init -i locales/messages.pot -d locales -l {language}")
            continue
        with open(po, "rb") as file:
            catalog = read_po(file, locale=language)
        mo = po.with_suffix(".mo")
        compiled = None
        if mo.is_file():
            with open(mo, "rb") as file:
                compiled = read_mo(file)
        stale = compiled is None
        for (context, message), where in sources.items():
            key = message[0] if isinstance(message, tuple) else message
            entry = catalog.get(key, context=context)
            english = repr(key if len(key) <= 60 else key[:57] + "...")
            strings = entry.string if entry is not None else ""
            texts = [str(s or "") for s in (strings if isinstance(strings, tuple | list) else (strings,))]
            if entry is None or not all(texts) or entry.fuzzy:
                state = "fuzzy" if entry is not None and entry.fuzzy else "no translation"
                problems.append(f"{shown}: {where}: {english}: {state} ({language})")
                continue
            forms = message if isinstance(message, tuple) else (message,)
            for i, text in enumerate(texts):  # a plural's first form against the singular, the others the plural
                wanted = set(_PLACEHOLDER.findall(forms[min(i, len(forms) - 1)]))
                if set(_PLACEHOLDER.findall(text)) - {"count"} != wanted - {"count"}:  # "one" may say no number
                    problems.append(f"{shown}: {where}: {english}: the placeholders differ from the English "
                                    f"({', '.join(sorted(wanted)) or 'none'}) ({language})")
                    break
            if compiled is not None and not stale:
                done = compiled.get(key, context=context)
                stale = done is None or _strings(done.string) != _strings(entry.string)
        if stale:
            problems.append(f"{shown.with_suffix('.mo')}: older than its .po ({language}): pybabel compile -d locales")
    return problems


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(value) if isinstance(value, tuple | list) else (str(value),)
