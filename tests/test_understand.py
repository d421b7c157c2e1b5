"""Free text -> options: the crude stemmer and keyword matching in ``advisor/understand.py``."""

from __future__ import annotations

import pytest

from advisor.dialog import Dialog, Option
from advisor.understand import match_options, stem, stems

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
        (("company", "companies"), "company"),
        (("meeting", "meetings"), "meet"),
        (("ticket", "tickets"), "ticket"),
    ],
)
def test_inflections_of_a_word_share_one_stem(words: tuple[str, ...], expected: str) -> None:
    assert {stem(w) for w in words} == {expected}


@pytest.mark.parametrize("word", ["a", "is", "it", "cv", "tax", "less", "business"])
def test_short_words_and_double_s_are_not_mangled(word: str) -> None:
    assert stem(word) == word


def test_stems_lowercases_splits_on_punctuation_and_drops_apostrophes() -> None:
    assert stems("Cold-Calling, BOOKED meetings!") == ("cold", "call", "book", "meet")
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
    assert match_options("nothing", options) == ["nope"]


def test_the_real_tasks_question_understands_typical_descriptions(dialog: Dialog) -> None:
    tasks = dialog.question("tasks").options
    assert match_options("my reps spend hours cold calling", tasks) == ["telemarketing"]
    found = match_options("we do our own bookkeeping and support tickets", tasks)
    assert found == ["customer_support", "bookkeeping"]
    assert match_options("our engineers answer support tickets all day", tasks) == ["customer_support"]
    assert match_options("nothing, honestly", tasks) == ["none"]
