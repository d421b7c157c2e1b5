"""Free text -> options: the Snowball stems, typos, negation, cues and ambiguity in ``advisor/understand.py``."""

from __future__ import annotations

import pytest

from advisor.dialog import Dialog, Option
from advisor.understand import match_options, quantity, stem, stems, typo, understand

OPTIONS = (
    Option(value="calls", label="Telemarketing", keywords=("cold call", "outbound call")),
    Option(value="meetings", label="Appointment setting", keywords=("booking meeting", "calendar")),
    Option(value="support", label="Customer support", keywords=("support ticket", "helpdesk")),
    Option(value="none", label="None of these", keywords=("nothing", "none"), exclusive=True),
)


# -- stems --------------------------------------------------------------------------------------
@pytest.mark.parametrize("word", ["call", "calls", "calling", "called"])
def test_inflections_of_call_share_one_stem(word: str) -> None:
    assert stem(word) == "call"


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (("book", "books", "booking", "booked"), "book"),
        (("plan", "plans", "planning", "planned"), "plan"),
        (("company", "companies"), "compani"),
        (("meeting", "meetings"), "meet"),
        (("ticket", "tickets"), "ticket"),
    ],
)
def test_inflections_of_a_word_share_one_stem(words: tuple[str, ...], expected: str) -> None:
    assert {stem(w) for w in words} == {expected}


@pytest.mark.parametrize("word", ["a", "is", "it", "cv", "tax", "less"])
def test_short_words_and_double_s_are_not_mangled(word: str) -> None:
    assert stem(word) == word


def test_stems_lowercases_splits_on_punctuation_and_drops_apostrophes() -> None:
    assert stems("Cold-Calling, BOOKED meetings!") == ("cold", "call", ",", "book", "meet", "!")
    assert stems("don't") == ("dont",)
    assert stems("") == ()
    assert stems("🚀 ✨") == ()


# -- match_options ------------------------------------------------------------------------------
def test_a_multi_word_keyword_matches_when_its_words_appear_in_order() -> None:
    assert match_options("my reps spend hours cold calling", OPTIONS) == ["calls"]
    assert match_options("we are booking meetings all day", OPTIONS) == ["meetings"]


def test_a_multi_word_keyword_does_not_match_out_of_order_or_apart() -> None:
    assert match_options("calling is cold work", OPTIONS) == []
    assert match_options("cold weather calls", OPTIONS) == []
    assert match_options("meetings need booking", OPTIONS) == []


def test_a_single_word_keyword_matches_any_inflection() -> None:
    assert match_options("our calendars are a mess", OPTIONS) == ["meetings"]


def test_the_option_label_counts_as_a_keyword() -> None:
    assert match_options("appointment setting takes ages", OPTIONS) == ["meetings"]
    assert match_options("TELEMARKETING", OPTIONS) == ["calls"]


def test_matches_are_returned_in_option_order_not_text_order() -> None:
    text = "support tickets and cold calls and booking meetings"
    assert match_options(text, OPTIONS) == ["calls", "meetings", "support"]


def test_text_matching_nothing_gives_no_options() -> None:
    assert match_options("we sell shoes", OPTIONS) == []
    assert match_options("", OPTIONS) == []
    assert match_options("👍👍", OPTIONS) == []


def test_an_exclusive_option_is_returned_alone_when_nothing_else_matched() -> None:
    assert match_options("nothing really", OPTIONS) == ["none"]
    assert match_options("none", OPTIONS) == ["none"]


def test_an_exclusive_option_is_dropped_when_another_option_matched() -> None:
    assert match_options("nothing but cold calling", OPTIONS) == ["calls"]
    assert match_options("none, except support tickets and the calendar", OPTIONS) == ["meetings", "support"]


def test_only_one_exclusive_option_is_returned_even_if_several_match() -> None:
    options = (
        Option(value="nope", label="Nope", keywords=("nothing",), exclusive=True),
        Option(value="nah", label="Nah", keywords=("nothing",), exclusive=True),
    )
    assert match_options("nothing", options) == []  # the same words for two options: asked, not guessed
    assert understand("nothing", options).ambiguous == (("nothing", ("nope", "nah")),)


def test_the_real_tasks_question_understands_typical_descriptions(dialog: Dialog) -> None:
    tasks = dialog.question("tasks").options
    assert match_options("my reps spend hours cold calling", tasks) == ["telemarketing"]
    found = match_options("we do our own bookkeeping and support tickets", tasks)
    assert found == ["customer_support", "bookkeeping"]
    assert match_options("our engineers answer support tickets all day", tasks) == ["customer_support"]
    assert match_options("nothing, honestly", tasks) == ["none"]


# -- what people really type (the real tasks question) ----------------------------------------------
@pytest.mark.parametrize(("text", "expected"), [
    ("bookeeping and payrol", ["bookkeeping"]),
    ("cold-callling all day", ["telemarketing"]),
    ("managing our soical media", ["social_media"]),
    ("hirring takes forever", ["recruiting"]),
])
def test_typos_are_understood(dialog: Dialog, text: str, expected: list[str]) -> None:
    assert match_options(text, dialog.question("tasks").options) == expected


@pytest.mark.parametrize(("typed", "known", "same"), [
    ("bookeeping", "bookkeeping", True), ("soical", "social", True), ("payrol", "payroll", True),
    ("takes", "taxes", False), ("fixing", "filing", False), ("accountant", "accounting", False),
    ("boots", "books", False), ("tax", "tab", False),
])
def test_a_typo_is_a_slip_not_another_word(typed: str, known: str, same: bool) -> None:
    assert typo(typed, known) is same


@pytest.mark.parametrize(("text", "expected"), [
    ("not the cold calling, that's fine, but the invoicing kills us", ["bookkeeping"]),
    ("we don't do cold calling, but support tickets pile up", ["customer_support"]),
    ("cold calling is fine, booking the meetings afterwards takes forever", ["appointment_setting"]),
    ("bookkeeping isn't a problem, recruiting is", ["recruiting"]),
    ("not only cold calling but also lead research", ["telemarketing", "lead_research"]),
    ("no one answers the support tickets", ["customer_support"]),
    ("invoicing is automated now, the paperwork is the problem", ["data_entry"]),  # "is automated" after it
    ("support tickets are manageable, finding which colleges to target is slow", ["lead_research"]),
    ("we never do email campaigns but the blog articles take me all weekend", ["content_marketing"]),
    ("we aren't short of job applicants, the invoices are the pain", ["bookkeeping"]),
])
def test_negated_tasks_are_not_understood(dialog: Dialog, text: str, expected: list[str]) -> None:
    assert match_options(text, dialog.question("tasks").options) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("updating the CRM after every call", ["data_entry"]),
    ("scheduling interviews takes forever", ["recruiting"]),
    ("lead lists from LinkedIn", ["lead_research"]),
    ("sorting out Microsoft 365 accounts", ["it_support"]),
    ("blog posts", ["content_marketing"]),
    ("customers calling us about their orders", ["customer_support"]),
    ("chasing late payments", ["bookkeeping"]),
    ("which companies to target", ["lead_research"]),
    ("book demos by hand", ["appointment_setting"]),
    ("telesales and outreach", ["telemarketing"]),
])
def test_other_words_and_context_point_to_the_task_meant(dialog: Dialog, text: str, expected: list[str]) -> None:
    assert match_options(text, dialog.question("tasks").options) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("we have no time for invoicing", ["bookkeeping"]), ("we don't have anyone for recruiting", ["recruiting"]),
    ("no idea how to do payroll", ["bookkeeping"]), ("not enough hours for bookkeeping", ["bookkeeping"]),
])
def test_a_negation_that_says_a_lack_is_a_pain(dialog: Dialog, text: str, expected: list[str]) -> None:
    assert match_options(text, dialog.question("tasks").options) == expected


def test_a_group_of_words_in_a_phrase_stands_for_each_of_them(tmp_path) -> None:
    from advisor.dialog import DialogError, load_dialog
    from tests.conftest import TEMPLATES_DIR

    path = tmp_path / "d.yaml"
    path.write_text(
        "version: 1\nstart: q\nfinish: {template: recommendation}\n"
        "words: {customers: [guests, patients, pet owners]}\n"
        "questions:\n  - id: q\n    type: multi\n    text: What?\n    next: recommendation\n"
        "    options:\n      - {value: support, label: Support, keywords: [\"{customers} ... asking\"],"
        " unless: [\"{customers} ... to book\"]}\n      - {value: other, label: Other}\n", encoding="utf-8")
    options = load_dialog(path, TEMPLATES_DIR).question("q").options
    assert "pet owners ... asking" in options[0].keywords and "guests ... to book" in options[0].unless
    assert match_options("guests keep asking about parking", options) == ["support"]
    assert match_options("pet owners always asking for results", options) == ["support"]
    assert match_options("patients asking to book", options) == []  # the unless, grouped too
    assert match_options("customers asking", options) == []  # only the group's words
    path.write_text(path.read_text(encoding="utf-8").replace("{customers} ... asking", "{clients} ... asking"),
                    encoding="utf-8")
    with pytest.raises(DialogError, match=r"questions.q.options.support.keywords: .*unknown group \{clients\}"):
        load_dialog(path, TEMPLATES_DIR)


def test_words_that_could_mean_two_tasks_are_asked_about_not_guessed(dialog: Dialog) -> None:
    found = understand("answering the phones all day", dialog.question("tasks").options)
    assert found.values == ()
    assert found.ambiguous == (("the phones", ("telemarketing", "customer_support")),)
    named = understand("answering the phones and the support tickets", dialog.question("tasks").options)
    assert named.values == ("customer_support",) and named.ambiguous == ()  # named for sure: no doubt left


@pytest.mark.parametrize(("text", "measure", "expected"), [
    ("5 people", "people", (5, True)), ("about 30 of us", "people", (30, True)),
    ("five employees", "people", (5, True)),
    ("12", "people", (12, False)), ("two years", "months", (24, True)), ("5 years", "months", (60, True)),
    ("next quarter", "months", None), ("a dozen staff", "people", (12, True)),
    ("we're 40ish", "people", (40, False)), ("2-3 yrs", "months", (30, True)),
    ("two or three years", "months", (30, True)), ("two and a half years", "months", (30, True)),
    ("3 partners and 9 staff", "people", (12, True)), ("me + 2 techs", "people", (3, True)),
    ("eigteen months", "months", (18, True)), ("6 wks", "months", (1.5, True)),
    ("hundred and fifty staff", "people", (150, True)), ("about two hundred guards", "people", (200, False)),
    ("couple thousand worldwide", "people", (2000, False)), ("1,500 employees", "people", (1500, True)),
    ("twenty five people", "people", (25, True)), ("one hundred and twenty staff", "people", (120, True)),
    ("18mths", "months", (18, True)), ("a fortnight", "months", (0.5, True)), ("a year", "months", (12, True)),
    ("a handful of us", "people", None), ("opened a 2nd branch, 40 staff", "people", (40, True)),
])
def test_quantities_are_read_with_their_unit(text: str, measure: str, expected: tuple | None) -> None:
    found = quantity(text, measure)
    assert (found if found is None else (found.value, found.said)) == expected


@pytest.mark.parametrize(("text", "measure", "low", "high"), [
    ("between 10 and 15 people", "people", 10, 15), ("1-2 years", "months", 12, 24), ("5 people", "people", 5, 5),
    ("two restaurants, around 45 staff total", "people", 45, 45), ("next 3 yeras", "months", 36, 36),
    ("somewhere between 6 months and 2 years", "months", 6, 24), ("3 partners and 9 staff", "people", 12, 12),
])
def test_a_range_keeps_its_ends_and_the_number_with_a_unit_wins(text: str, measure: str, low: float,
                                                                 high: float) -> None:
    found = quantity(text, measure)
    assert found is not None and (found.low, found.high) == (low, high)


def test_a_range_across_two_options_is_asked_about(engine) -> None:
    step = engine.answer(_at("size"), "between 10 and 15 people")
    assert step.hint is not None and step.hint.code == "ambiguous"
    assert step.hint.params["values"] == ["small", "medium"] and "size" not in step.state.answers
    inside = engine.answer(_at("horizon"), "2-3 years")
    assert inside.hint is not None and inside.hint.code == "understood" and inside.proposed == ("multi_year",)


# -- words and numbers typed at button questions (the engine) ---------------------------------------
def _at(question_id: str, **answers: object):
    from advisor.engine import ConversationState

    return ConversationState(current=question_id, answers={"stage": "early", **answers})


@pytest.mark.parametrize(("question", "typed", "meant"), [
    ("size", "5 people", "small"), ("size", "about 30 of us", "medium"), ("size", "30", "medium"),
    ("size", "only me, myself", "solo"), ("core", "we build software", "product"), ("trigger", "we must cut costs",
                                                                         "cost_pressure"),
    ("horizon", "5 years", "long_term"), ("horizon", "two years", "multi_year"), ("past", "never", "none"),
    ("relation", "a real partner", "partner"),
])
def test_words_at_a_button_question_mean_an_option_shown_for_a_yes(engine, question: str, typed: str,
                                                                   meant: str) -> None:
    step = engine.answer(_at(question), typed)
    assert step.hint is not None and step.hint.code == "understood" and step.proposed == (meant,)
    assert question not in step.state.answers  # shown and confirmed before it counts
    kept = engine.answer(step.state, "")
    assert kept.state.answers[question] == meant


@pytest.mark.parametrize(("question", "typed", "meant"), [
    ("size", "we're 40ish", "medium"),  # at the head count any number is people
    ("relation", "one off job with a set pirce", "vendor"),  # single words of the options' phrases, a typo
    ("process", "yes", "documented"),  # "yes" is an option's word here, not a confirmation of nothing
    ("process", "no", "informal"),
    ("process", "our office manager knows how, no docs", "partly"),  # "=no" is only the whole answer
    ("past", "never tried it", "none"),
])
def test_more_words_at_button_questions(engine, question: str, typed: str, meant: str) -> None:
    step = engine.answer(_at(question), typed)
    assert step.hint is not None and step.hint.code == "understood" and step.proposed == (meant,)


def test_two_answers_to_a_one_answer_question_are_asked_about(engine) -> None:
    step = engine.answer(_at("trigger"), "we must cut costs and we are growing fast")
    assert step.hint is not None and step.hint.code == "ambiguous" and step.proposed == ()
    assert step.hint.params["values"] == ["cost_pressure", "growth"]
    assert "trigger" not in step.state.answers


def test_loose_words_never_override_a_negation(dialog: Dialog) -> None:
    relation = dialog.question("relation").options
    assert understand("not a partner, just a supplier", relation, loose=True).values == ("vendor",)


def test_it_in_capitals_is_information_technology_and_it_the_pronoun_is_not(dialog: Dialog) -> None:
    tasks = dialog.question("tasks").options
    assert match_options("customer support and IT", tasks) == ["customer_support", "it_support"]
    assert match_options("it takes forever to do the payroll", tasks) == ["bookkeeping"]


def test_dots_in_a_phrase_stand_for_a_few_words() -> None:
    options = (Option(value="research", label="Lead research", keywords=("which ... to target",)),)
    assert match_options("which dental practices to target", options) == ["research"]
    assert match_options("which of the many many many regions we ought to target", options) == []


def test_a_bare_number_is_an_option_number_and_the_advisor_says_so_when_it_could_be_a_head_count(engine) -> None:
    step = engine.answer(_at("size"), "5")
    assert step.state.answers["size"] == "enterprise" and step.kind == "ask"  # the console's contract
    assert step.hint is not None and step.hint.code == "took_number"
    assert step.hint.params == {"number": 5, "option": "enterprise", "quantity": "small", "question": "size"}
    plain = engine.answer(_at("size"), "2")  # option 2 is 2-10: nothing to say
    assert plain.state.answers["size"] == "small" and plain.hint is None


def test_words_that_could_mean_two_options_are_asked_on_arrival(engine) -> None:
    from advisor.engine import ConversationState

    state = ConversationState(current="pains", answers={"stage": "early", "size": "small", "industry": "software",
                                                        "core": "product"}, history=("stage", "size", "industry",
                                                                                     "core"))
    step = engine.answer(state, "answering the phones all day")
    assert step.question is not None and step.question.id == "tasks" and step.kind == "ask"
    assert step.hint is not None and step.hint.code == "ambiguous"
    assert step.hint.params == {"words": "the phones", "values": ["telemarketing", "customer_support"]}
    assert step.proposed == ()  # nothing guessed


# -- the labelled corpus -------------------------------------------------------------------------
def test_the_labelled_corpus_meets_the_goals_and_check_prints_the_table(dialog: Dialog) -> None:
    from advisor.corpus import (
        ANSWERS_GOAL,
        PRECISION_GOAL,
        RECALL_GOAL,
        load_answers,
        load_corpus,
        score,
        score_answers,
        understanding_question,
    )
    from advisor.service import DIALOGS_DIR
    from tests.conftest import run_bot

    question = understanding_question(dialog)
    phrases = load_corpus(DIALOGS_DIR / "understanding.yaml", question)
    assert len(phrases) >= 300
    result = score(phrases, question)
    assert result.total.precision >= PRECISION_GOAL and result.total.recall >= RECALL_GOAL
    answers = load_answers(DIALOGS_DIR / "understanding.yaml", dialog)
    assert len(answers) >= 200 and {a.question for a in answers} >= {"size", "horizon", "owners", "concern"}
    assert score_answers(answers, dialog).total.rate >= ANSWERS_GOAL
    shown = run_bot("check", "--understanding")
    assert shown.returncode == 0, shown.stderr
    assert "overall" in shown.stdout and "telemarketing" in shown.stdout and "goal:" in shown.stdout
    assert "typed at button questions" in shown.stdout and "horizon" in shown.stdout


def test_held_out_phrases_and_answers_meet_the_goals_on_words_never_seen(dialog: Dialog) -> None:
    """tests/fixtures/understanding_unseen.yaml was written blind and is never tuned on (README: the
    figures). Measured after tuning: precision 0.91, recall 0.90, typed answers 0.90 (the release
    before this understanding layer: 0.85, 0.81 and 0.38). The goal on words never seen is 0.9 each."""
    from advisor.corpus import load_answers, load_corpus, score, score_answers, understanding_question
    from tests.conftest import FIXTURES

    question = understanding_question(dialog)
    result = score(load_corpus(FIXTURES / "understanding_unseen.yaml", question), question)
    assert result.phrases >= 200
    assert result.total.precision >= 0.9 and result.total.recall >= 0.9
    answers = score_answers(load_answers(FIXTURES / "understanding_unseen.yaml", dialog), dialog)
    assert answers.total.answers >= 200 and answers.total.rate >= 0.9


def test_a_typed_answer_with_an_unknown_question_or_option_is_named(tmp_path, dialog: Dialog) -> None:
    from advisor.corpus import load_answers
    from advisor.dialog import DialogError

    bad = tmp_path / "answers.yaml"
    bad.write_text("answers:\n  - {question: nope, text: x, expect: []}\n"
                   "  - {question: size, text: y, expect: [huge]}\n"
                   "  - {question: size, text: z, expect: [solo, small]}\n")
    with pytest.raises(DialogError) as raised:
        load_answers(bad, dialog)
    problems = "\n".join(raised.value.errors)
    assert "answers[0].question: 'nope' is not a button question" in problems
    assert "answers[1].expect: unknown option(s) huge of 'size'" in problems
    assert "answers[2].expect: 'size' takes one option" in problems
