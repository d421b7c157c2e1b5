"""Languages (advisor/i18n.py): the advisor in German and Spanish from the same dialog, rules and
templates: the same advice as in English for the same answers, in the person's words."""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import Any

import pytest

from advisor import AdvisorError
from advisor.channels.console import Console
from advisor.export import record
from advisor.i18n import LANGUAGES, check_catalogs, from_accept_language, from_environment, pick, translations
from advisor.service import AdvisorService, build_service
from advisor.settings import Settings
from tests.conftest import run_bot
from tests.personas import PERSONAS, persona_in

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def service(tmp_path: Path) -> Any:
    built = build_service(tmp_path / "advisor.db")
    yield built
    built.store.close()


def walk(service: AdvisorService, user: str, lines: list[str], language: str | None) -> tuple[str, Any]:
    out = io.StringIO()
    Console(service, io.StringIO("\n".join(lines) + "\n"), out, interactive=False, language=language).run(user)
    conversation = service.store.latest("console", user)
    assert conversation is not None
    return out.getvalue(), conversation


def advice_of(conversation: Any) -> dict[str, Any]:
    rec = conversation.recommendation
    assert rec is not None, conversation.status
    return {"verdict": rec["verdict"], "score": rec["readiness_score"], "profile": rec["profile"],
            "tasks": [(f["id"], f["approach"]["id"]) for f in rec["functions"]],
            "model": (rec["engagement_model"] or {}).get("id"), "tensions": [t["id"] for t in rec["tensions"]],
            "cash": rec["net_cash"]}


@pytest.mark.parametrize("persona", sorted(PERSONAS))
@pytest.mark.parametrize("language", ["de", "es"])
def test_the_same_answers_give_the_same_advice_in_every_language_worded_in_it(service, persona, language):
    _, english = walk(service, f"{persona}-en", PERSONAS[persona], "en")
    # the tasks described in the person's own words, in their language: understood as the same tasks
    text, translated = walk(service, f"{persona}-{language}", persona_in(PERSONAS[persona], language), language)
    assert translated.language == language and english.language == "en"
    assert {**translated.state.answers, "pains": None} == {**english.state.answers, "pains": None}
    assert advice_of(translated) == advice_of(english)
    _ = translations(language).gettext
    assert _("Where is your company today?") in text and "Where is your company today?" not in text
    assert english.recommendation["verdict_name"] not in (None, "")
    if english.recommendation["verdict_name"] != translated.recommendation["verdict_name"]:
        assert translated.recommendation["verdict_name"].upper() in text.upper()  # the verdict in its words
    # what reviewers read is in the conversation's language too, and the export says which
    assert translated.summary != english.summary
    assert record(translated)["language"] == language
    turns = service.store.transcript(translated.id)
    assert _("Where is your company today?") in turns[0]["text"]


def test_a_person_changes_language_mid_conversation_and_keeps_their_answers(service):
    lines = PERSONAS["growing_tactical"]
    walk(service, "ana", lines[:5], "en")  # five answers, in English
    before = service.store.latest("console", "ana")
    text, after = walk(service, "ana", ["quit"], "de")  # comes back in German
    assert after.id == before.id and after.state.answers == before.state.answers and after.language == "de"
    _ = translations("de").gettext
    assert _("Your answers are saved. Run the advisor again to continue where you left off.") in text
    walk(service, "ana", lines[5:], None)  # resumed without a choice: goes on in German
    done = service.store.latest("console", "ana")
    assert done.status == "completed" and done.language == "de"


def test_the_console_picks_its_language_from_the_flag_the_environment_or_the_locale(tmp_path):
    db = tmp_path / "advisor.db"
    for env, args, language in (({"ADVISOR_LANG": "es"}, (), "es"), ({"LANG": "de_DE.UTF-8"}, (), "de"),
                                ({"LANG": "C.UTF-8"}, (), "en"), ({"ADVISOR_LANG": "es"}, ("--lang", "de"), "de")):
        result = run_bot("console", "--user", language + str(len(args)) + env.get("LANG", ""), *args,
                         stdin="quit\n", db=db, env=env)
        assert result.returncode == 0, result.stderr
        expected = translations(language).gettext("Where is your company today?")
        assert expected in result.stdout, (env, args, result.stdout[:300])
    wrong = run_bot("console", stdin="quit\n", db=db, env={"ADVISOR_LANG": "klingon"})
    assert wrong.returncode == 1 and wrong.stderr.strip() == \
        "error: ADVISOR_LANG must be one of en, de, es, got 'klingon'"


def test_choosing_a_language():
    assert [pick(c) for c in ("de", "de-AT", "es_ES.UTF-8", "EN", "Deutsch", "fr", "", None)] == [
        "de", "de", "es", "en", "de", None, None, None]
    assert from_environment({"LC_ALL": "es_MX.UTF-8", "LANG": "de_DE"}) == "es"
    assert from_environment({"ADVISOR_LANG": "de", "LANG": "es_ES"}) == "de"
    assert from_environment({}) == "en"
    assert from_accept_language("fr-CH, fr;q=0.9, es;q=0.8, de;q=0.7, *;q=0.5") == "es"
    assert from_accept_language("de;q=0.2, en;q=0.5") == "en"
    assert from_accept_language(None) == "en" and from_accept_language("xx, ;q=abc") == "en"
    assert Settings.read({}, language="de").language == "de"
    with pytest.raises(AdvisorError, match="ADVISOR_LANG must be one of"):
        _ = Settings.read({"ADVISOR_LANG": "fr"}).language
    assert set(LANGUAGES) == {"en", "de", "es"}


# -- the catalogs are complete, and check says where they are not -------------------------------------
def test_every_sentence_is_translated_and_check_says_so():
    assert check_catalogs(ROOT) == []
    result = run_bot("check")
    assert result.returncode == 0, result.stderr
    assert "locales: OK:" in result.stdout


def test_a_missing_translation_or_a_placeholder_that_differs_fails_check_naming_file_message_and_language(
        tmp_path):
    locales = tmp_path / "locales"
    shutil.copytree(ROOT / "locales", locales)
    po = locales / "de" / "LC_MESSAGES" / "messages.po"
    text = po.read_text(encoding="utf-8")
    from babel.messages.pofile import read_po, write_po

    with open(po, "rb") as file:
        catalog = read_po(file)
    welcome = next(m for m in catalog if m.id == "Welcome to the Outsourcing Advisor: %(title)s.")
    welcome.string = welcome.string.replace("%(title)s", "%(titel)s")
    question = next(m for m in catalog if m.id == "Where is your company today?")
    question.string = ""
    with open(po, "wb") as file:
        write_po(file, catalog)
    assert po.read_text(encoding="utf-8") != text
    problems = check_catalogs(ROOT, locales)
    where = str(po)
    assert any(p.startswith(f"{where}: dialogs/outsourcing.yaml:") and "'Where is your company today?': "
               "no translation (de)" in p for p in problems), problems
    assert any("'Welcome to the Outsourcing Advisor: %(title)s.': the placeholders differ from the English "
               "(title) (de)" in p for p in problems), problems
    assert any(p.endswith("older than its .po (de): pybabel compile -d locales") for p in problems), problems
    assert not any("(es)" in p for p in problems)


# -- on Telegram ------------------------------------------------------------------------------------
def test_telegram_speaks_the_persons_app_language_and_publishes_its_menu_in_each(fake_api, start_bot, tmp_path):
    import tests.telegram_walk as tw
    from tests.personas import GROWING_TACTICAL, persona_in

    de, en = translations("de").gettext, translations("en").gettext
    bot = start_bot(fake_api, db=tmp_path / "advisor.db")
    menus = {code: {c["command"]: c["description"] for c in fake_api.commands_for(language_code=code)}
             for code in ("", "de", "es")}
    assert set(menus[""]) == set(menus["de"]) == set(menus["es"]) == tw.COMMANDS
    assert menus["de"]["help"] == translations("de").pgettext("command list", "What I can do") != menus[""]["help"]
    assert menus["es"]["help"] == translations("es").pgettext("command list", "What I can do")
    german, spanish = 7001, 7002
    fake_api.set_language(german, "de-AT")
    first = tw.start(fake_api, german)
    assert de("Where is your company today?") in first["plain"]
    assert en("Where is your company today?") not in first["plain"]
    # the same answers in Spanish (app language es) give the same advice, in Spanish
    fake_api.set_language(spanish, "es")
    tw.start(fake_api, spanish)
    tw.answer_walk(fake_api, german, persona_in(GROWING_TACTICAL, "de"))
    tw.answer_walk(fake_api, spanish, persona_in(GROWING_TACTICAL, "es"))
    service = build_service(tmp_path / "advisor.db")
    try:
        one, other = service.store.latest("telegram", str(german)), service.store.latest("telegram", str(spanish))
        assert one is not None and other is not None and (one.language, other.language) == ("de", "es")
        assert advice_of(one) == advice_of(other)
        assert one.recommendation["verdict_name"] != other.recommendation["verdict_name"]
    finally:
        service.store.close()
    assert "Traceback" not in bot.output()


def test_language_on_telegram_switches_mid_conversation_and_keeps_the_answers(fake_api, start_bot, tmp_path):
    import tests.telegram_walk as tw
    from tests.personas import GROWING_TACTICAL, persona_in

    es = translations("es").gettext
    bot = start_bot(fake_api, db=tmp_path / "advisor.db")
    chat = 7101
    tw.start(fake_api, chat)  # no app language: English
    tw.answer_walk(fake_api, chat, GROWING_TACTICAL[:3])
    mark = fake_api.mark()
    fake_api.send_text(chat, "/language")
    choose = fake_api.wait_for_message(chat, contains="Which language should I use?")
    assert [caption for caption, _ in tw.buttons(choose)] == ["English", "Deutsch", "Español"]
    mark = fake_api.mark()
    tw.press(fake_api, chat, choose, "l:es")
    edited = fake_api.wait_for(lambda m, p: m == "editMessageText" and p["message_id"] == choose["message_id"],
                               since=mark)
    assert es("From now on I'll write in English. Your answers so far are kept.") in str(edited)
    question = tw.wait_step(fake_api, chat, mark)
    assert es("What was your team hired to do? That is your core.") in question["plain"]
    tw.answer_walk(fake_api, chat, persona_in(GROWING_TACTICAL, "es")[3:])
    service = build_service(tmp_path / "advisor.db")
    try:
        done = service.store.latest("telegram", str(chat))
        assert done is not None and done.status == "completed" and done.language == "es"
        spanish = service.speaking("es")[1]
        verdict = str(spanish.phrases.verdict_name(done.recommendation["verdict"])).strip()
        assert done.recommendation["verdict_name"] == verdict
    finally:
        service.store.close()
    assert "Traceback" not in bot.output()


def test_numbers_and_money_are_written_as_each_language_writes_them():
    from advisor.render import build_environment

    english, german, spanish = (build_environment(language=code).filters for code in ("en", "de", "es"))
    assert (english["money"](1052.4), english["hours"](2.5), english["signed_money"](-1900)) == ("1,052", "2.5",
                                                                                                "-1,900")
    assert (german["money"](1052.4), german["hours"](2.5), german["signed_money"](-1900)) == ("1.052", "2,5",
                                                                                              "-1.900")
    assert (spanish["money"](21052), spanish["hours"](0.5), spanish["signed"](3)) == ("21.052", "0,5", "+3")


def test_dates_are_written_as_the_language_writes_them():
    from advisor.render import build_environment

    for language, expected in (("en", "2026-11-29 20:21 UTC"), ("de", "29. Nov. 2026, 20:21 UTC"),
                               ("es", "29 nov 2026, 20:21 UTC")):
        assert build_environment(language=language).filters["when"]("2026-11-29T20:21:34Z") == expected
