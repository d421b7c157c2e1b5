"""Free text in German and Spanish: each language's stemmer, negations, number words and keywords
(``dialogs/keywords.<language>.yaml``), measured on labelled phrases written blind by native speakers;
the currency of the cash; lead cards in the sales team's language whatever the prospect's."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from advisor.dialog import Dialog
from advisor.keywords import spoken
from advisor.language import GERMAN, SPANISH
from advisor.understand import quantity, understand
from tests.conftest import FIXTURES, run_bot

DIALOGS = Path(__file__).resolve().parent.parent / "dialogs"


@pytest.fixture(scope="module")
def german(dialog: Dialog) -> Dialog:
    return spoken(dialog, "de")[0]


@pytest.fixture(scope="module")
def spanish(dialog: Dialog) -> Dialog:
    return spoken(dialog, "es")[0]


def tasks(dialog: Dialog, text: str, language) -> list[str]:
    return list(understand(text, dialog.question("tasks").options, language).values)


# -- measured ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("language", ["de", "es"])
def test_each_languages_development_phrases_meet_the_goals(dialog: Dialog, language: str) -> None:
    """``dialogs/understanding.<language>.yaml``, written blind by a native speaker, tuned on."""
    from advisor.corpus import ANSWERS_GOAL, PRECISION_GOAL, RECALL_GOAL, report

    phrases, answers = report(dialog, DIALOGS / f"understanding.{language}.yaml")
    assert phrases is not None and answers is not None
    assert phrases.phrases >= 180 and answers.total.answers >= 390
    assert phrases.total.precision >= PRECISION_GOAL and phrases.total.recall >= RECALL_GOAL
    assert answers.total.rate >= ANSWERS_GOAL


@pytest.mark.parametrize(("language", "recall"), [("de", 0.9), ("es", 0.89)])
def test_each_languages_held_out_phrases(dialog: Dialog, language: str, recall: float) -> None:
    """``tests/fixtures/understanding_unseen.<language>.yaml``, written blind and never tuned on
    (README: the figures). Measured after two rounds of tuning: German 0.91 precision, 0.93 recall,
    0.87 of typed answers; Spanish 0.93, 0.895, 0.88 (with English words only, as before: recall 0.30
    and 0.32, answers 0.41 and 0.49). Spanish recall and typed answers in both stay below the English
    goal of 0.9; the bounds here keep what was measured."""
    from advisor.corpus import report

    phrases, answers = report(dialog, FIXTURES / f"understanding_unseen.{language}.yaml")
    assert phrases is not None and answers is not None
    assert phrases.phrases >= 150 and answers.total.answers >= 130
    assert phrases.total.precision >= 0.9 and phrases.total.recall >= recall
    assert answers.total.rate >= 0.85


# -- numbers ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "measure", "value"), [
    ("wir sind fünfundzwanzig Leute", "people", 25), ("knapp 40 MA", "people", 40),
    ("3 Partner und 9 Angestellte", "people", 12), ("ich und zwei Kollegen", "people", 3),
    ("wir sind zu dritt", "people", 3), ("1.500 Mitarbeiter", "people", 1500), ("ein paar hundert", "people", 200),
    ("zwei Jahre", "months", 24), ("anderthalb Jahre", "months", 18), ("zweieinhalb Jahre", "months", 30),
    ("ein halbes Jahr", "months", 6), ("2,5 Jahre", "months", 30), ("sechs Monate", "months", 6),
])
def test_german_numbers_words_and_units(text: str, measure: str, value: float) -> None:
    found = quantity(text, measure, GERMAN)
    assert found is not None and found.value == value


@pytest.mark.parametrize(("text", "measure", "value"), [
    ("somos veinticinco personas", "people", 25), ("unos cuarenta empleados", "people", 40),
    ("yo y dos socios", "people", 3), ("3 socios y 9 empleados", "people", 12),
    ("doscientos cincuenta", "people", 250), ("unos 1.500 empleados", "people", 1500),
    ("dos años y medio", "months", 30), ("un año y medio", "months", 18), ("seis meses", "months", 6),
])
def test_spanish_numbers_words_and_units(text: str, measure: str, value: float) -> None:
    found = quantity(text, measure, SPANISH)
    assert found is not None and found.value == value


def test_a_range_in_words_keeps_its_ends() -> None:
    found = quantity("zwischen zehn und fünfzehn Leuten", "people", GERMAN)
    assert found is not None and (found.low, found.high) == (10, 15)
    found = quantity("entre diez y quince personas", "people", SPANISH)
    assert found is not None and (found.low, found.high) == (10, 15)


# -- words ------------------------------------------------------------------------------------------
def test_every_form_accents_and_umlauts_left_out(german: Dialog, spanish: Dialog) -> None:
    for text in ("die Rechnungsstellung frisst uns auf", "Rechnungen schreiben", "rechnungen schreiben"):
        assert "bookkeeping" in tasks(german, text, GERMAN), text
    for text in ("la facturación nos come el día", "la facturacion nos come el dia", "facturar"):
        assert "bookkeeping" in tasks(spanish, text, SPANISH), text


@pytest.mark.parametrize(("text", "expected"), [
    ("die Buchhaltung macht unser Steuerberater, aber die Kundenanfragen fressen uns auf", ["customer_support"]),
    ("Social Media machen wir nicht, aber die Rechnungen", ["bookkeeping"]),
    ("keine Zeit für die Buchhaltung", ["bookkeeping"]),
    ("wir kommen mit den Rechnungen nicht hinterher", ["bookkeeping"]),
])
def test_german_negation_and_what_is_fine(german: Dialog, text: str, expected: list[str]) -> None:
    assert tasks(german, text, GERMAN) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("no hacemos llamadas en frío, pero la facturación nos mata", ["bookkeeping"]),
    ("la contabilidad la lleva la gestoría, pero el soporte al cliente nos come el día", ["customer_support"]),
    ("no tenemos tiempo para la facturación", ["bookkeeping"]),
])
def test_spanish_negation_and_what_is_fine(spanish: Dialog, text: str, expected: list[str]) -> None:
    assert tasks(spanish, text, SPANISH) == expected


def test_a_language_reads_free_text_with_its_own_keywords_only(dialog: Dialog, german: Dialog) -> None:
    """English phrases stemmed by the German stemmer would match the wrong words ("die" is an article
    there): a German conversation reads free text with the German file's phrases and the labels."""
    from advisor.keywords import keywords_of

    phrases = keywords_of(dialog, "de")["tasks"]
    for option in german.question("tasks").options:
        assert option.keywords == phrases[option.value][0]
    assert tasks(german, "phone bashing all day", GERMAN) == []  # English only: not a German phrase
    assert tasks(german, "die Leute", GERMAN) == []


def test_a_keywords_file_with_an_unknown_question_or_option_fails_check(tmp_path: Path) -> None:
    for name in ("outsourcing.yaml", "advice.yaml"):
        (tmp_path / name).write_text((DIALOGS / name).read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "keywords.de.yaml").write_text(
        "questions:\n  tasks:\n    cold_calls: {keywords: [kaltakquise]}\n  wishes:\n    x: {keywords: [y]}\n"
        "  stage:\n    early: {keywords: [ok, 3]}\n", encoding="utf-8")
    shown = run_bot("check", str(tmp_path / "outsourcing.yaml"))
    assert shown.returncode == 1
    assert "keywords.de.yaml: questions.tasks.cold_calls: 'tasks' has no option 'cold_calls' (de)" in shown.stderr
    assert "keywords.de.yaml: questions.wishes: not a question with options in outsourcing.yaml (de)" in shown.stderr
    assert "keywords.de.yaml: questions.stage.early.keywords: expected a list of phrases" in shown.stderr
    assert "Traceback" not in shown.stderr


# -- the currency -----------------------------------------------------------------------------------
def _console(tmp_path: Path, env: dict[str, str], lang: str = "en"):
    from tests.personas import SALES_TEAM

    tmp_path.mkdir(parents=True, exist_ok=True)
    return run_bot("console", "--lang", lang, stdin="\n".join(SALES_TEAM) + "\n", db=tmp_path / "a.db", env=env)


def test_the_cash_is_shown_in_the_currency_chosen_converted(tmp_path: Path) -> None:
    from advisor.advice import load_advisor

    usd = _console(tmp_path / "usd", {})
    assert usd.returncode == 0 and "USD " in usd.stdout
    eur = _console(tmp_path / "eur", {"ADVISOR_CURRENCY": "EUR"}, lang="de")
    assert eur.returncode == 0, eur.stderr
    assert "\xa0€" in eur.stdout and "USD" not in eur.stdout and "$" not in eur.stdout
    # converted at the rules' exchange table: every rate times its EUR per USD
    from advisor.dialog import load_dialog
    from advisor.render import TEMPLATES_DIR
    from advisor.settings import DEFAULT_DIALOG

    dialog = load_dialog(DEFAULT_DIALOG, TEMPLATES_DIR)
    dollars, euros = load_advisor(dialog), load_advisor(dialog, "EUR")
    rate = dollars.rules.capacity.exchange["EUR"]
    task = next(iter(dollars.rules.tasks))
    assert euros.rules.tasks[task].partner_rate == pytest.approx(
        tuple(r * rate for r in dollars.rules.tasks[task].partner_rate))
    assert euros.rules.capacity.currency == "EUR" and euros.rules.version == dollars.rules.version
    given = load_advisor(dialog, "JPY", 150.0)
    assert given.rules.tasks[task].staff_rate == pytest.approx(
        tuple(r * 150 for r in dollars.rules.tasks[task].staff_rate))


def test_a_currency_without_a_rate_or_a_wrong_one_is_one_line(tmp_path: Path) -> None:
    unknown = _console(tmp_path / "a", {"ADVISOR_CURRENCY": "JPY"})
    assert unknown.returncode != 0 and "ADVISOR_CURRENCY=JPY" in unknown.stderr
    assert "ADVISOR_CURRENCY_RATE" in unknown.stderr and "Traceback" not in unknown.stderr
    wrong = _console(tmp_path / "b", {"ADVISOR_CURRENCY": "euro"})
    assert wrong.returncode != 0 and "three-letter currency code" in wrong.stderr
    rate = _console(tmp_path / "c", {"ADVISOR_CURRENCY": "JPY", "ADVISOR_CURRENCY_RATE": "many"})
    assert rate.returncode != 0 and "ADVISOR_CURRENCY_RATE must be a number" in rate.stderr
    given = _console(tmp_path / "d", {"ADVISOR_CURRENCY": "JPY", "ADVISOR_CURRENCY_RATE": "150"})
    assert given.returncode == 0 and "JPY " in given.stdout


# -- the lead card ----------------------------------------------------------------------------------
async def test_the_lead_card_names_verdict_and_tasks_in_the_sales_teams_language(service) -> None:
    from advisor.channels.console import Console
    from advisor.channels.telegram import Options, TelegramChannel
    from advisor.i18n import translations
    from tests.personas import SALES_TEAM, persona_in

    Console(service, io.StringIO("\n".join(persona_in(SALES_TEAM, "es")) + "\n"), io.StringIO(),
            interactive=False, language="es").run("ana")
    conversation = service.store.latest("console", "ana")
    assert conversation is not None and conversation.language == "es" and conversation.recommendation

    class SalesChat:
        def __init__(self) -> None:
            self.cards: list[str] = []

        async def send_message(self, chat_id: int, text: str, **kwargs: object) -> None:
            self.cards.append(text)

    channel = TelegramChannel(service, Options(sales_chat_id=-100, sales_language="de"))
    channel.queued(service.store.queue_alert(conversation.id, "completed"), None)
    chat = SalesChat()
    assert await channel.deliver_alerts(chat) is False
    [card] = chat.cards
    de, es = translations("de").gettext, translations("es").gettext
    assert de("Telemarketing and cold calling") in card and es("Telemarketing and cold calling") not in card
    verdict = {lang: str(service.speaking(lang)[1].phrases.verdict_name("prepare_first")).strip()
               for lang in ("de", "es")}
    assert conversation.recommendation["verdict_name"] == verdict["es"]
    assert verdict["de"] in card and verdict["es"] not in card
    assert de("New recommendation") in card
