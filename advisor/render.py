"""The one jinja2 Environment, and every sentence a person reads, taken from ``templates/``.

``.html`` templates are autoescaped (Telegram HTML, reports); ``.txt`` templates are plain text for
the console and summaries. ``StrictUndefined`` makes a missing variable fail in the tests, never in a
chat. ``explain`` turns the advice's ids into sentences once, so every channel and the export show
the same words.
"""

from __future__ import annotations

import html
import re
import textwrap
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC
from pathlib import Path
from typing import Any

from jinja2 import (
    Environment,
    FileSystemBytecodeCache,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    select_autoescape,
)

from advisor import AdvisorError
from advisor.advice import HAND_OVER
from advisor.dialog import Dialog, Question
from advisor.engine import Step
from advisor.i18n import SOURCE, gettext_for, translations

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
SCREEN_WORDS = 300
"""The most words the recommendation may take on one screen (console and Telegram)."""
SCREEN_LIMITS = {"handed": 3, "others": 3, "watch": 2, "strategic": True}
"""How much of each optional part the one screen shows at most; the full report has all of it."""
SCREEN_CUTS: tuple[dict[str, Any], ...] = (
    {"others": 1}, {"watch": 1}, {"others": 0}, {"strategic": False}, {"handed": 2}, {"watch": 0},
    {"handed": 1},
)
"""What to leave to the full report, in this order, until the screen fits SCREEN_WORDS."""
_TAG = re.compile(r"<[^>]+>")


_BYTECODE = FileSystemBytecodeCache()
"""Compiled templates, kept between processes in the temporary folder (a folder of this user's only,
which jinja2 checks; an entry is keyed by the template's source, so an edit compiles it anew) and
shared by the languages' environments. Compiling the templates took most of a process's start: a
console walk's first answer 0.15 s, a Telegram bot's start 3 languages x 0.06 s (measured)."""


def build_environment(templates_dir: Path = TEMPLATES_DIR, language: str = SOURCE) -> Environment:
    """The templates' environment in ``language``: jinja2's i18n extension with that language's
    catalog installed (``_()``, ``{% trans %}``), new-style (placeholders by name, autoescaped)."""
    env = Environment(
        loader=FileSystemLoader(str(templates_dir)),
        bytecode_cache=_BYTECODE,
        extensions=["jinja2.ext.i18n"],
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    if language == SOURCE:
        env.filters["signed"] = lambda n: f"{n:+g}"
        env.filters["money"] = lambda n: f"{n:,.0f}"
        env.filters["signed_money"] = lambda n: f"{n:+,.0f}"
        env.filters["hours"] = lambda n: f"{n:,g}"
    else:  # the locale's separators (Babel): 1.052 and 2,5 in German, the same digits as in English
        from babel.numbers import format_decimal

        def decimal(n: float, signed: bool = False, whole: bool = False) -> str:
            value = round(float(f"{n:.0f}")) if whole else float(f"{n:g}")
            text = format_decimal(abs(value), "#,##0" if whole else "#,##0.#####", locale=language)
            return ("+" if value >= 0 else "-") + text if signed else ("-" if value < 0 else "") + text

        env.filters["signed"] = lambda n: decimal(n, signed=True)
        env.filters["money"] = lambda n: decimal(n, whole=True)
        env.filters["signed_money"] = lambda n: decimal(n, signed=True, whole=True)
        env.filters["hours"] = decimal
    env.globals["money_of"] = _money_of(language)
    env.filters["when"] = _when(language)
    env.filters["wrap"] = _wrap
    env.filters["sentence"] = _sentence
    # jinja2's own lowercases the rest ("Managed Service" -> "Managed service"): wrong for German nouns
    env.filters["capitalize"] = _sentence
    # German writes nouns with a capital, also inside a sentence: its labels are never lowercased
    env.filters["lowname"] = (lambda name: str(name)) if language == "de" else _lower_name
    if language == "de":  # a verdict's or an approach's name inside a sentence keeps its capitals
        env.filters["lower"] = lambda text: str(text)
    env.install_gettext_translations(translations(language), newstyle=True)  # type: ignore[attr-defined]
    env.globals["language"] = language
    return env


def _money_of(language: str) -> Any:
    """An amount (already formatted, maybe a range) with its currency as the language writes it:
    "USD 1,050-1,400" in English (the code first, as the reports have always read), "1.050-1.400 €"
    in German and Spanish (the locale's currency pattern and symbol, from Babel's CLDR data)."""
    if language == SOURCE:
        return lambda amount, currency: f"{currency} {amount}"
    from babel import Locale
    from babel.numbers import get_currency_symbol

    pattern = Locale.parse(language).currency_formats["standard"].pattern.split(";")[0]
    number = re.search(r"[#0,.]+", pattern)
    before, after = (pattern[:number.start()], pattern[number.end():]) if number else ("", " ¤")
    return lambda amount, currency: (before + str(amount) + after).replace(
        "¤", get_currency_symbol(currency, locale=language))


def _when(language: str) -> Any:
    """A stored time ("2026-11-29T20:21:34Z") as the language writes a date: "2026-11-29 20:21 UTC"
    in English (as it has always read), "29. Nov. 2026, 20:21 UTC" in German, "29 nov 2026, 20:21 UTC"
    in Spanish (Babel's CLDR date and time patterns)."""
    if language == SOURCE:
        return lambda stamp: str(stamp)[:16].replace("T", " ") + " UTC" if stamp else ""

    def when(stamp: Any) -> str:
        from datetime import datetime

        from babel.dates import format_skeleton

        if not stamp:
            return ""
        try:
            moment = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
        except ValueError:
            return str(stamp)
        date = format_skeleton("yMMMd", moment, tzinfo=UTC, locale=language)
        return f"{date}, {format_skeleton('Hm', moment, tzinfo=UTC, locale=language)} UTC"

    return when


def _sentence(text: Any) -> str:
    """The first letter in capitals, the rest as it is."""
    return str(text)[:1].upper() + str(text)[1:]


def _wrap(text: str, indent: int = 0, width: int = 78) -> str:
    """Fill ``text`` to ``width`` columns, for a line that the template already indented by ``indent``."""
    pad = " " * indent
    return textwrap.fill(str(text), width=width, initial_indent=pad, subsequent_indent=pad,
                         break_long_words=False, break_on_hyphens=False)[indent:]


def _screen(rec: Mapping[str, Any], limits: Mapping[str, Any]) -> dict[str, Any]:
    """What one screen shows of ``rec`` within ``limits``: the same for every channel's template."""
    handed = [f for f in rec["functions"] if f["approach"]["id"] in HAND_OVER and not f["suggested"]]
    others = [f for f in rec["functions"] if f["approach"]["id"] not in (*HAND_OVER, "keep_in_house")]
    # a tension first, then a safeguard, then the rest: the two kinds of warning both get a place
    notes = [*rec["tensions"][:1], *rec["safeguards"][:1], *rec["tensions"][1:], *rec["safeguards"][1:]]
    strategic = bool(rec["strategic_version"] and handed)
    return {
        "handed": handed[:limits["handed"]],
        "first": handed[0] if handed else None,  # the task the cash and the strategic version speak of
        "others": others[:limits["others"]],
        "watch": notes[:limits["watch"]],
        "strategic": strategic and limits["strategic"],
        "cut": (len(handed) > limits["handed"] or len(others) > limits["others"] or len(notes) > limits["watch"]
                or (strategic and not limits["strategic"])),
    }


def screen_text(rendered: str) -> str:
    """What a person reads of a rendered message: tags gone, entities decoded."""
    return html.unescape(_TAG.sub("", rendered))


def _lower_name(name: str) -> str:
    """A label inside a sentence: lower case, but acronyms kept ("IT and systems admin")."""
    return " ".join(word if len(word) > 1 and word.isupper() else word.lower() for word in str(name).split(" "))


def _lines(text: str) -> list[str]:
    return [line.strip() for line in str(text).splitlines() if line.strip()]


WEB_WORDS = ("back", "restart", "done", "send", "skip", "report", "placeholder", "progress", "network",
             "busy", "start", "heading")


class Renderer:
    """Words for one dialog: questions, hints, the recommendation, summaries, messages."""

    def __init__(self, dialog: Dialog, templates_dir: Path = TEMPLATES_DIR, language: str = SOURCE):
        self.dialog = dialog
        self.templates_dir = templates_dir
        self.language = language
        self._ = gettext_for(language)
        self._questions: dict[int, tuple[Question, Question]] = {}  # by id(): (the question, in words)
        self.env = build_environment(templates_dir, language)
        self.env.globals["label"] = self.label
        self._words: dict[tuple[str, str | None], str] = {}  # captions and pop-ups: the same few, often
        try:
            # macros, read as attributes: typed Any, since jinja2 knows their names only at run time
            self.phrases: Any = self.env.get_template("phrases.txt").module
            self.hints: Any = self.env.get_template("hints.txt").module
        except TemplateError as error:
            raise AdvisorError(f"templates: {error}") from None

    def label(self, question_id: str, value: Any) -> str:
        """The label the person saw for ``value`` (or each value of a list, joined)."""
        question = self.dialog.questions.get(question_id)
        if question is None or value is None:
            return "" if value is None else str(value)
        if isinstance(value, list):
            return ", ".join(self.label(question_id, v) for v in value)
        option = question.option(str(value))
        return self._(option.label) if option else str(value)

    def in_words(self, rec: Mapping[str, Any], tasks_question: str) -> dict[str, Any]:
        """A stored recommendation's names in this renderer's language, whichever language it was
        stored in: the verdict's name and each task's (by their ids)."""
        if not rec:
            return {}
        functions = [{**f, "name": self.label(tasks_question, f["id"])} for f in rec.get("functions", [])]
        named = {**rec, "functions": functions}
        if rec.get("verdict"):
            named["verdict_name"] = str(self.phrases.verdict_name(rec["verdict"])).strip()
        return named

    def question(self, question: Question) -> Question:
        """``question`` in this renderer's language: its text, hint, unit and option labels."""
        if self.language == SOURCE:
            return question
        cached = self._questions.get(id(question))
        if cached is None or cached[0] is not question:
            _ = self._
            found = replace(question, text=_(question.text), hint=_(question.hint) if question.hint else "",
                            unit=_(question.unit) if question.unit else "",
                            options=tuple(replace(o, label=_(o.label)) for o in question.options))
            cached = self._questions[id(question)] = (question, found)
        return cached[1]

    def render(self, name: str, **context: Any) -> str:
        return self.env.get_template(name).render(**context).strip("\n")

    # -- the conversation ------------------------------------------------------------------
    def step(self, step: Step, fmt: str = "txt") -> str:
        """A question (with its hint on a re-ask) or the recommendation, for one channel format."""
        if step.kind == "finish":
            return self.recommendation(step.recommendation, fmt)
        hint = ""
        question = None if step.question is None else self.question(step.question)
        if step.hint is not None:
            # worded in Python so an HTML template receives a plain str and escapes it
            hint = str(self.hints.hint(step.hint, question)).strip()
        return self.render(f"question.{fmt}", step=step, q=question, hint=hint)

    def recommendation(self, rec: Mapping[str, Any], fmt: str = "txt") -> str:
        """The recommendation on one screen: the most of it that fits SCREEN_WORDS words.

        Measured rather than estimated: the template is rendered with all it may show, then with
        less (SCREEN_CUTS) until it fits; a render costs about a millisecond.
        """
        limits = dict(SCREEN_LIMITS)
        text = ""
        for cut in ({}, *SCREEN_CUTS):
            limits.update(cut)
            text = self.render(f"{self.dialog.finish_template}.{fmt}", rec=rec, screen=_screen(rec, limits))
            if len(screen_text(text).split()) <= SCREEN_WORDS:
                break
        return text

    # -- the advice in words ---------------------------------------------------------------
    def explain(self, advice: Mapping[str, Any]) -> dict[str, Any]:
        """The advice with every id replaced by its sentences: what is stored and exported."""
        p = self.phrases
        answers = advice["answers"]
        ctx = {"answers": answers, "advice": advice}

        def say(text: Any) -> str:
            return str(text).strip()

        functions = []
        for f in advice["functions"]:
            name = self._(f["name"])  # the task's label, in this language
            fctx = {**ctx, "task": f["id"], "name": name}
            functions.append({
                "id": f["id"],
                "name": name,
                "score": f["score"],
                "suggested": f["suggested"],
                "reasons": [say(p.reason(r["id"], fctx)) for r in f["reasons"]],
                "reason_ids": [r["id"] for r in f["reasons"]],
                "approach": {
                    "id": f["approach"],
                    "name": _sentence(say(p.approach_name(f["approach"]))),
                    "why": say(p.because(f["because"], fctx)),
                    "because": f["because"],
                },
                "kpi": say(p.kpi(f["id"])),
                "automate": say(p.automate(f["id"])),
            })
        kept_tasks = [f["name"] for f in functions if f["approach"]["id"] == "keep_in_house"]
        keep = [say(p.core_kept(ctx)), *kept_tasks, *(say(p.kept(k, ctx)) for k in advice["keep_in_house"])]
        model = advice["engagement_model"]
        capacity = advice["capacity"]
        verdict = advice["verdict"]
        core = say(p.core_work(answers.get("core")))
        kept_beside_core = [f["name"] for f in functions if f["approach"]["id"] == "keep_in_house"
                            and f["approach"]["because"] != "core_owns"]  # the core already says the rest
        low = self.env.filters["lowname"]  # German keeps its nouns' capitals
        kept_by_core = [low(f["name"]) for f in functions if f["approach"]["id"] == "keep_in_house"
                        and f["approach"]["because"] == "core_owns"]  # named, not dropped silently
        keep_short = [say(p.core_with(core, kept_by_core)), *(low(name) for name in kept_beside_core),
                      *(say(p.kept_short(k)) for k in advice["keep_in_house"])]
        return {
            "readiness_score": advice["readiness_score"],
            "base": advice["base"],
            "profile": advice["profile"],
            "profile_name": say(p.profile_name(advice["profile"])),
            "profile_meaning": _lines(p.profile_meaning(advice["profile"], ctx)),
            "profile_detail": _lines(p.profile_detail(advice["profile"], ctx)),
            "verdict": verdict,
            "verdict_name": say(p.verdict_name(verdict)),
            "verdict_text": say(p.verdict_text(verdict, ctx)),
            "prepare_steps": [{"id": s, "text": say(p.prepare_step(s, ctx))} for s in advice["prepare_steps"]],
            "watch_for": _lines(p.watch_for(ctx)) if verdict == "not_now" else [],
            "drivers": [
                {"id": d["id"], "points": d["points"], "text": say(p.driver(d["id"], ctx))}
                for d in advice["drivers"]
            ],
            "functions": functions,
            "keep_in_house": [k for k in keep if k],
            "keep_short": keep_short,
            "core_work": core,
            "solo": answers.get("size") == "solo",
            "engagement_model": None if model is None else {
                "id": model["id"],
                "name": say(p.model_name(model["id"])),
                "why": _lines(p.model_why(model, ctx)),
                "parts": model["parts"],
            },
            "tensions": [{"id": t, "text": say(p.tension(t, ctx))} for t in advice["tensions"]],
            "safeguards": [{"id": g, "text": say(p.safeguard(g, ctx))} for g in advice["safeguards"]],
            "capacity": {**capacity, "assumptions": _lines(p.assumptions(capacity, ctx))},
            "strategic_version": advice["strategic_version"],
            "net_cash": advice["net_cash"],
            "said": advice["said"],
            "risks": [
                {"concern": r, "risk": say(p.risk(r)), "mitigation": say(p.mitigation(r, ctx))}
                for r in advice["risks"]
            ],
            "plan": {str(day): _lines(p.plan(day, ctx, advice["functions"])) for day in (30, 60, 90)},
            "checklist": _lines(p.checklist(ctx)),
            "next_step": say(p.next_step(ctx, advice["functions"])),
            "contact": next((answers[qid] for qid in self.dialog.of_type("contact")
                             if isinstance(answers.get(qid), dict)), None),
            "rules_version": advice["rules_version"],
        }

    def summary(self, rec: Mapping[str, Any], answers: Mapping[str, Any]) -> str:
        """A few plain lines for reviewers: who, what they said, what they were told."""
        return self.render("summary.txt", rec=rec, answers=answers)

    def message(self, macro: str, **context: Any) -> str:
        """A console message from ``templates/messages.txt`` (welcome, resumed, saved ...)."""
        return str(getattr(self.env.get_template("messages.txt").module, macro)(**context)).strip()

    def telegram(self, macro: str, **context: Any) -> str:
        """A Telegram message (HTML, autoescaped) from ``templates/telegram.html``."""
        return str(getattr(self.env.get_template("telegram.html").module, macro)(**context)).strip()

    def macro(self, template: str, name: str, **context: Any) -> str:
        """One macro of a template file of short texts (e.g. ``review/words.txt``)."""
        return str(getattr(self.env.get_template(template).module, name)(**context)).strip()

    def web(self, macro: str, **context: Any) -> str:
        """A macro of ``templates/web.html``: a message of the web chat, as HTML."""
        return str(getattr(self.env.get_template("web.html").module, macro)(**context)).strip()

    def web_words(self) -> dict[str, str]:
        """The web page's captions (buttons, progress, errors), for its script."""
        words = self.env.get_template("web.html").module.word  # type: ignore[attr-defined]
        return {name: html.unescape(str(words(name)).strip()) for name in WEB_WORDS}

    def plain(self, macro: str, **context: Any) -> str:
        """A ``templates/telegram.html`` macro as plain text (buttons, pop-ups, command list)."""
        if context:
            return html.unescape(self.telegram(macro, **context))
        return self._word(macro, None)

    def button(self, name: str) -> str:
        return self._word("button", name)

    def _word(self, macro: str, name: str | None) -> str:
        found = self._words.get((macro, name))
        if found is None:
            context = {} if name is None else {"name": name}
            found = self._words[(macro, name)] = html.unescape(self.telegram(macro, **context))
        return found

    def report(self, rec: Mapping[str, Any], answers: Mapping[str, Any], generated_at: str) -> str:
        """The full report: a self-contained HTML document."""
        return self.render("report.html", rec=rec, answers=answers, generated_at=generated_at)
