"""The one jinja2 Environment, and every sentence a person reads, taken from ``templates/``.

``.html`` templates are autoescaped (Telegram HTML, reports); ``.txt`` templates are plain text for
the console and summaries. ``StrictUndefined`` makes a missing variable fail in the tests, never in a
chat. ``explain`` turns the advice's ids into sentences once, so every channel and the export show
the same words.
"""

from __future__ import annotations

import html
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateError, select_autoescape

from advisor import AdvisorError
from advisor.dialog import Dialog
from advisor.engine import Step

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"


def build_environment(templates_dir: Path = TEMPLATES_DIR) -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(templates_dir)),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters["signed"] = lambda n: f"{n:+g}"
    env.filters["money"] = lambda n: f"{n:,.0f}"
    env.filters["hours"] = lambda n: f"{n:g}"
    env.filters["wrap"] = _wrap
    return env


def _wrap(text: str, indent: int = 0, width: int = 78) -> str:
    """Fill ``text`` to ``width`` columns, for a line that the template already indented by ``indent``."""
    pad = " " * indent
    return textwrap.fill(str(text), width=width, initial_indent=pad, subsequent_indent=pad,
                         break_long_words=False, break_on_hyphens=False)[indent:]


def _lines(text: str) -> list[str]:
    return [line.strip() for line in str(text).splitlines() if line.strip()]


class Renderer:
    """Words for one dialog: questions, hints, the recommendation, summaries, messages."""

    def __init__(self, dialog: Dialog, templates_dir: Path = TEMPLATES_DIR):
        self.dialog = dialog
        self.env = build_environment(templates_dir)
        self.env.globals["label"] = self.label
        self._words: dict[tuple[str, str | None], str] = {}  # captions and pop-ups: the same few, often
        try:
            self.phrases = self.env.get_template("phrases.txt").module
            self.hints = self.env.get_template("hints.txt").module
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
        return option.label if option else str(value)

    def render(self, name: str, **context: Any) -> str:
        return self.env.get_template(name).render(**context).strip("\n")

    # -- the conversation ------------------------------------------------------------------
    def step(self, step: Step, fmt: str = "txt") -> str:
        """A question (with its hint on a re-ask) or the recommendation, for one channel format."""
        if step.kind == "finish":
            return self.render(f"{self.dialog.finish_template}.{fmt}", rec=step.recommendation)
        hint = ""
        if step.hint is not None:
            # worded in Python so an HTML template receives a plain str and escapes it
            hint = str(self.hints.hint(step.hint, step.question)).strip()
        return self.render(f"question.{fmt}", step=step, q=step.question, hint=hint)

    # -- the advice in words ---------------------------------------------------------------
    def explain(self, advice: Mapping[str, Any]) -> dict[str, Any]:
        """The advice with every id replaced by its sentences: what is stored and exported."""
        p = self.phrases
        answers = advice["answers"]
        ctx = {"answers": answers, "advice": advice}
        functions = []
        for f in advice["functions"]:
            fctx = {**ctx, "task": f["id"], "name": f["name"]}
            functions.append({
                "id": f["id"],
                "name": f["name"],
                "score": f["score"],
                "suggested": f["suggested"],
                "reasons": [str(p.reason(r["id"], fctx)).strip() for r in f["reasons"]],
                "reason_ids": [r["id"] for r in f["reasons"]],
            })
        keep = [str(p.core_kept(ctx)).strip()]
        keep += [str(p.core_owned(name, ctx)).strip() for name in advice["owned_by_core"]]
        keep += [str(p.kept(k, ctx)).strip() for k in advice["keep_in_house"]]
        model = advice["engagement_model"]
        capacity = advice["capacity"]
        explained = {
            "readiness_score": advice["readiness_score"],
            "base": advice["base"],
            "profile": advice["profile"],
            "profile_name": str(p.profile_name(advice["profile"])).strip(),
            "profile_meaning": _lines(p.profile_meaning(advice["profile"], ctx)),
            "drivers": [
                {"id": d["id"], "points": d["points"], "text": str(p.driver(d["id"], ctx)).strip()}
                for d in advice["drivers"]
            ],
            "functions": functions,
            "keep_in_house": [k for k in keep if k],
            "engagement_model": {
                "id": model,
                "name": str(p.model_name(model)).strip(),
                "why": _lines(p.model_why(model, ctx)),
            },
            "capacity": None if capacity is None else {
                **capacity, "assumptions": _lines(p.assumptions(capacity, ctx)),
            },
            "risks": [
                {"concern": r, "risk": str(p.risk(r)).strip(), "mitigation": str(p.mitigation(r, ctx)).strip()}
                for r in advice["risks"]
            ],
            "plan": {
                "30": _lines(p.plan(30, ctx, functions)),
                "60": _lines(p.plan(60, ctx, functions)),
                "90": _lines(p.plan(90, ctx, functions)),
            },
            "checklist": _lines(p.checklist(ctx)),
            "contact": answers.get("contact") if isinstance(answers.get("contact"), dict) else None,
            "rules_version": advice["rules_version"],
        }
        return explained

    def summary(self, rec: Mapping[str, Any], answers: Mapping[str, Any]) -> str:
        """A few plain lines for reviewers: who, what they said, what they were told."""
        return self.render("summary.txt", rec=rec, answers=answers)

    def message(self, macro: str, **context: Any) -> str:
        """A console message from ``templates/messages.txt`` (welcome, resumed, saved ...)."""
        return str(getattr(self.env.get_template("messages.txt").module, macro)(**context)).strip()

    def telegram(self, macro: str, **context: Any) -> str:
        """A Telegram message (HTML, autoescaped) from ``templates/telegram.html``."""
        return str(getattr(self.env.get_template("telegram.html").module, macro)(**context)).strip()

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
