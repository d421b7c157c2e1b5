"""The free-text words of another language: ``dialogs/keywords.<language>.yaml`` beside the dialog.

The dialog's options carry English ``keywords`` and ``unless`` phrases. A language's file gives the
same, per question and option, in its own words; a German or Spanish conversation understands free
text only through them (and the option labels in its language), read with the language's stemmer
(``advisor/language.py``). English phrases are not mixed in: stemmed by another language's stemmer
they match the wrong words, and the English loanwords people really use ("Leads", "Content") are
written in each language's file. The file::

    words:                     # groups, as in the dialog: "{kunden} anrufen"
      kunden: [kunden, klienten]
    questions:
      tasks:
        telemarketing:
          keywords: [kaltakquise, "{kunden} anrufen"]
          unless: [kunden rufen an]

``python bot.py check`` reads every language's file and names file, key and language of what is wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from advisor.dialog import Dialog, DialogError, Question, read_yaml
from advisor.i18n import LANGUAGES, SOURCE
from advisor.language import ENGLISH, LANGUAGE_OF, Language
from advisor.phrase_groups import build_groups, expand

Phrases = dict[str, dict[str, tuple[tuple[str, ...], tuple[str, ...]]]]  # question -> option -> (keywords, unless)


def keywords_path(dialog: Dialog, language: str) -> Path:
    return dialog.path.parent / f"keywords.{language}.yaml"


def load_keywords(path: Path, dialog: Dialog, language: str) -> Phrases:
    """The phrases of ``path`` per question and option; DialogError names every problem."""
    data = read_yaml(path)
    errors: list[str] = []
    if not isinstance(data, Mapping) or not isinstance(data.get("questions"), Mapping):
        raise DialogError([f"{path}: expected `questions:` with phrases per question and option ({language})"])
    groups = build_groups(str(path), data.get("words"), errors)
    found: Phrases = {}
    for qid, options in data["questions"].items():
        at = f"{path}: questions.{qid}"
        question = dialog.questions.get(str(qid))
        if question is None or not question.options:
            errors.append(f"{at}: not a question with options in {dialog.path.name} ({language})")
            continue
        if not isinstance(options, Mapping):
            errors.append(f"{at}: expected options, each with keywords and unless ({language})")
            continue
        for value, phrases in options.items():
            where = f"{at}.{value}"
            if question.option(str(value)) is None:
                errors.append(f"{where}: '{qid}' has no option '{value}' ({language})")
                continue
            if not isinstance(phrases, Mapping) or set(phrases) - {"keywords", "unless"}:
                errors.append(f"{where}: expected keywords: [...] and unless: [...] ({language})")
                continue
            lists = []
            for key in ("keywords", "unless"):
                raw = phrases.get(key) or []
                if not isinstance(raw, list) or not all(isinstance(p, str) and p.strip() for p in raw):
                    errors.append(f"{where}.{key}: expected a list of phrases, each in quotes if YAML reads it "
                                  f"otherwise ({language})")
                    raw = []
                lists.append(tuple(p.strip().lower() for p in expand(raw, groups, f"{where}.{key}", errors)))
            found.setdefault(question.id, {})[str(value)] = (lists[0], lists[1])
    if errors:
        raise DialogError(errors)
    return found


_READ: dict[tuple[Path, float, str, int], Phrases] = {}


def keywords_of(dialog: Dialog, language: str) -> Phrases:
    """The language's phrases ({} when the dialog has no file for it), read once per file version."""
    path = keywords_path(dialog, language)
    try:
        stamp = path.stat().st_mtime
    except FileNotFoundError:
        return {}
    key = (path, stamp, language, id(dialog))
    if key not in _READ:
        _READ[key] = load_keywords(path, dialog, language)
    return _READ[key]


def in_language(dialog: Dialog, language: str, translate: Callable[[Question], Question]) -> Dialog:
    """The dialog as a person speaking ``language`` meets it: each question translated by ``translate``
    (its text and option labels), each option's keywords and unless phrases those of the language."""
    phrases = keywords_of(dialog, language)

    def of(question: Question) -> Question:
        spoken = translate(question)
        mine = phrases.get(question.id, {})
        return replace(spoken, options=tuple(replace(o, keywords=mine.get(o.value, ((), ()))[0],
                                                     unless=mine.get(o.value, ((), ()))[1])
                                             for o in spoken.options))

    return replace(dialog, questions={qid: of(q) for qid, q in dialog.questions.items()})


def spoken(dialog: Dialog, language: str) -> tuple[Dialog, Language]:
    """The dialog as a person speaking ``language`` meets it (labels and keywords), and its words."""
    if language not in LANGUAGES or language == SOURCE:
        return dialog, ENGLISH
    from advisor.render import TEMPLATES_DIR, Renderer

    return in_language(dialog, language, Renderer(dialog, TEMPLATES_DIR, language).question), LANGUAGE_OF[language]


def check_keywords(dialog: Dialog, languages: Any) -> list[str]:
    """Every problem of the languages' keyword files, one line each."""
    problems: list[str] = []
    for language in languages:
        path = keywords_path(dialog, language)
        if path.exists():
            try:
                load_keywords(path, dialog, language)
            except DialogError as error:
                problems += error.errors
    return problems
