"""Every template renders with real data (StrictUndefined catches a missing variable here, not in a
chat), HTML templates escape what people typed, and plain-text ones carry no markup."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from advisor.render import TEMPLATES_DIR
from tests.personas import ALL_PERSONAS as PERSONAS

TELEGRAM_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre",
                 "blockquote", "tg-spoiler", "tg-emoji"}
HOSTILE = 'Bob <script>alert("x")</script> & <b>Co</b>, bob@example.com'
PAINS = 4  # the persona line that answers the free-text question


def walk(engine, lines):
    step = engine.start()
    steps = [step]
    for line in lines:
        step = engine.answer(step.state, line)
        steps.append(step)
    return steps


class TagCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)


def tags_in(html: str) -> list[str]:
    collector = TagCollector()
    collector.feed(html)
    return collector.tags


@pytest.mark.parametrize("persona", sorted(PERSONAS))
@pytest.mark.parametrize("fmt", ["txt", "html"])
def test_every_step_of_every_persona_renders_in_every_format(engine, renderer, persona, fmt):
    for step in walk(engine, PERSONAS[persona]):
        text = renderer.step(step, fmt)
        assert text.strip()
        if fmt == "txt":
            assert not re.search(r"</?[a-z]+[^>]*>", text), text
        else:
            assert set(tags_in(text)) <= TELEGRAM_TAGS, text
            assert "<br" not in text


def test_every_template_file_is_used_by_a_test(renderer):
    """A new template needs a test that renders it: add it here once it has one."""
    names = {str(p.relative_to(TEMPLATES_DIR)) for p in TEMPLATES_DIR.rglob("*") if p.is_file()}
    assert names == {"phrases.txt", "hints.txt", "messages.txt", "question.txt", "question.html",
                     "recommendation.txt", "recommendation.html", "summary.txt", "telegram.html", "show.txt",
                     "report.html", "report.txt", "drivers_chart.html", "review/base.html", "review/login.html",
                     "review/list.html", "review/conversation.html", "review/funnel.html",
                     "review/words.txt", "transcript.txt",
                     "lab/replay.txt",  # tests/test_lab.py
                     "review/what_if.html", "review/macros.html",  # tests/test_review_lab.py
                     "lab/calibrate.txt",  # tests/test_calibrate.py
                     "review/deliveries.html",  # tests/test_review.py
                     # the web chat's, rendered and served in tests/test_web.py
                     "web.html", "web/page.html", "web/web.js", "web/web.css"}


def test_the_report_is_a_self_contained_document_with_the_drivers_as_a_chart(engine, renderer):
    lines = list(PERSONAS["established_cost_cutter"])
    lines[PAINS] = f"bookkeeping {HOSTILE}"
    final = walk(engine, lines)[-1]
    report = renderer.report(final.recommendation, final.state.answers, generated_at="2026-11-29")
    assert report.startswith("<!DOCTYPE html>") and report.rstrip().endswith("</html>")
    assert "<svg" in report and report.count("<rect") == len(final.recommendation["drivers"])
    assert "<script>" not in report and "&lt;script&gt;" in report
    assert not re.search(r"(src|href)=\"https?://", report)  # nothing loaded from elsewhere
    assert "traditional, reactive" in report


@pytest.mark.parametrize("macro", ["welcome", "resumed", "answered", "went_back", "preparing", "what_next",
                                   "consent", "share_contact", "contact_thanks", "no_consent",
                                   "contact_cancelled", "report_caption", "already_answered",
                                   "choose_one_first", "nudge", "unknown_command", "no_conversation",
                                   "completed", "private_only", "no_summary", "help", "privacy",
                                   "forget_confirm", "forgotten", "forget_cancelled", "apology", "skipped"])
def test_every_telegram_message_renders_as_telegram_html_and_escapes_names(renderer, macro):
    context = {"welcome": {"name": HOSTILE, "count_low": 12, "count_high": 14}, "resumed": {"number": 3},
               "answered": {"number": 1, "total": 12, "text": "Q?", "answer": HOSTILE},
               "went_back": {"number": 1, "total": 12, "text": "Q?"},
               "what_next": {"contact": None}, "contact_thanks": {"name": HOSTILE},
               "private_only": {"username": "advisor_bot"}, "forgotten": {"count": 2}}.get(macro, {})
    text = renderer.telegram(macro, **context)
    assert text.strip()
    assert set(tags_in(text)) <= TELEGRAM_TAGS
    assert "<script>" not in text


def test_html_escapes_what_the_person_typed(engine, renderer):
    lines = list(PERSONAS["sales_team"])
    lines[PAINS] = f"we do cold calling; {HOSTILE}"
    lines[-1] = HOSTILE
    final = walk(engine, lines)[-1]
    assert final.kind == "finish"
    html = renderer.step(final, "html")
    assert "<script>" not in html and "Bob" not in html  # the one screen quotes nobody's words
    assert set(tags_in(html)) <= TELEGRAM_TAGS
    report = renderer.report(final.recommendation, final.state.answers, generated_at="2026-11-30")
    assert "<script>" not in report and "&lt;script&gt;" in report
    assert "&lt;b&gt;Co&lt;/b&gt;" in report
    text = " ".join(renderer.render("report.txt", rec=final.recommendation).split())
    assert "we do cold calling; Bob <script>" in text  # plain text keeps the words as typed


def test_hints_in_html_are_escaped(engine, renderer):
    step = engine.start()
    for line in PERSONAS["sales_team"][:PAINS + 1]:
        step = engine.answer(step.state, line)
    assert step.question.id == "tasks"
    reask = engine.answer(step.state, "1,12")  # "None of these" cannot be combined
    html = renderer.step(reask, "html")
    assert "&#34;None of these&#34;" in html or "&quot;None of these&quot;" in html


def test_messages_render(renderer):
    assert "12 to 14" in renderer.message("welcome", title="T", count_low=12, count_high=14)
    assert "question 3" in renderer.message("resumed", number=3)
    for name in ("saved", "restarted", "finished"):
        assert renderer.message(name)


def test_summary_is_plain_text_with_the_persons_words(engine, renderer):
    final = walk(engine, PERSONAS["sales_team"])[-1]
    summary = renderer.summary(final.recommendation, final.state.answers)
    assert "Readiness" in summary and "close fewer deals" in summary
    assert not re.search(r"</?[a-z]+[^>]*>", summary)


@pytest.mark.parametrize("persona", sorted(PERSONAS))
def test_the_full_report_in_text_has_every_part_and_no_markup(engine, renderer, persona):
    final = walk(engine, PERSONAS[persona])[-1]
    text = renderer.render("report.txt", rec=final.recommendation)
    assert not re.search(r"</?[a-z]+[^>]*>", text), text
    for driver in final.recommendation["drivers"]:
        assert driver["text"].split()[0] in text
    for heading in ("WHY THE SCORE IS", "EVERY TASK YOU NAMED", "Days 1-30", "Days 61-90"):
        assert heading in text
    assert ("RISKS" in text) == bool(final.recommendation["risks"])
    for item in final.recommendation["tensions"] + final.recommendation["safeguards"]:
        assert " ".join(item["text"].split()[:6]) in " ".join(text.split())  # nothing cut from the screen is lost
    if final.recommendation["verdict"] != "not_now":
        assert "CASH, MONTHLY" in text and "CHOOSING A PROVIDER" in text


def test_a_missing_variable_fails_loudly(renderer):
    from jinja2 import UndefinedError

    with pytest.raises(UndefinedError):
        renderer.render("summary.txt", rec={}, answers={})
