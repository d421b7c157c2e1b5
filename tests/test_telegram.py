"""End to end: the real bot process (``python bot.py telegram``) against the fake Bot API.

Every test drives the bot as a person would: it writes to the bot and presses the buttons the bot
sent (helpers in tests/telegram_walk.py), waits on what the bot does, and ends with the same checks:
nothing the bot sent was refused by the fake (which validates like Telegram), every callback query
was answered, and no bot process logged a traceback.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import telegram_walk as tw
from tests.conftest import run_bot
from tests.personas import ALL_PERSONAS, GROWING_TACTICAL, SALES_TEAM

ALICE = 42
BOB = 43

SALES_TEAM_ANSWERS = {
    "stage": "growing",
    "size": "medium",
    "industry": "software",
    "core": "sales",
    "pains": SALES_TEAM[tw.at("pains")],
    "tasks": ["telemarketing", "appointment_setting", "content_marketing"],
    "hours": 30,
    "owners": "core_team",
    "process": "partly",
    "trigger": "recurring_problem",
    "horizon": "year",
    "goals": ["core_time"],
    "past": "none",
    "relation": "managed",
    "concern": ["quality"],
    "contact": "declined",
}


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "advisor.db"


# -- /start -------------------------------------------------------------------------------------
def test_start_welcomes_registers_commands_and_asks_the_first_question(fake_api, start_bot, db):
    bot = start_bot(fake_api, db=db)
    # the commands are registered before the first update is handled (post_init)
    assert {c["command"] for c in fake_api.commands} == tw.COMMANDS
    assert all(c["description"].strip() for c in fake_api.commands)

    first = tw.start(fake_api, ALICE, "/start rep_alice")
    welcome, question = fake_api.messages(ALICE)
    assert question["message_id"] == first["message_id"]
    # the welcome says what is kept and why, and how to delete it
    assert welcome["plain"].startswith("Hello Ana! I'm the Outsourcing Advisor.")
    assert "What I keep: your answers and this conversation, so you can stop and continue any time" in welcome["plain"]
    assert "so our team can review the advice" in welcome["plain"]
    assert "/privacy" in welcome["plain"] and "/forget deletes it all" in welcome["plain"]
    assert welcome["parse_mode"] == "HTML"
    # the first question, as a message with an inline keyboard of its options, and no Back
    assert "Question 1 of 16" in question["plain"] and tw.TOTAL == 16
    assert "Where is your company today?" in question["plain"]
    assert [text for text, _ in tw.buttons(question)] == [o.label for o in tw.DIALOG.question("stage").options]
    assert all(data.startswith("a:") for _, data in tw.buttons(question))

    # a payload too long for a ref is ignored: still a normal start
    tw.start(fake_api, BOB, "/start " + "r" * 70)
    assert "Hello Ana!" in fake_api.messages(BOB)[0]["plain"]

    [alice] = tw.exported(db, ALICE)
    [bob] = tw.exported(db, BOB)
    assert (alice["ref"], alice["status"], alice["answers"]) == ("rep_alice", "in_progress", {})
    assert bob["ref"] is None
    tw.assert_clean(fake_api, bot)


def test_a_start_payload_with_spaces_is_ignored_not_taken_in_part(fake_api, start_bot, db):
    bot = start_bot(fake_api, db=db)
    tw.start(fake_api, ALICE, "/start rep alice")
    [alice] = tw.exported(db, ALICE)
    assert alice["status"] == "in_progress"
    assert alice["ref"] is None, "a payload with a space is not a ref, nor is its first word"
    tw.assert_clean(fake_api, bot)


# -- a whole conversation by the buttons ----------------------------------------------------------
def test_a_whole_conversation_by_pressing_buttons(fake_api, start_bot, db):
    bot = start_bot(fake_api, db=db)
    fake = fake_api
    question = tw.start(fake, ALICE, "/start rep_alice")
    asked = [question]

    def choose(label: str, next_qid: str) -> dict:
        """Press a button of the current question: the query is answered, the message edited to show
        the answer without its keyboard, and the next question sent. Returns the edited message."""
        nonlocal question
        if label == "Done":
            options = tw.DIALOG.question(tw.question_of(question)[1]).options
            shown = ", ".join(o.label for o in options if o.value in tw.selected(question))
        else:
            shown = next(tw.label(text) for text, _ in tw.buttons(question) if tw.label(text).startswith(label))
        mark = fake.mark()
        query = tw.press_option(fake, ALICE, label, question)
        nxt = tw.wait_question(fake, ALICE, mark, next_qid) if next_qid else tw.wait_step(fake, ALICE, mark)
        assert "text" not in tw.callback_answer(fake, query)
        done = tw.message_by_id(fake, ALICE, question["message_id"])
        assert done["edited"] and done["reply_markup"] is None
        assert done["plain"].splitlines()[-1] == f"✔ {shown}"
        question = nxt
        asked.append(nxt)
        return done

    done = choose("Growing: scaling up", "size")
    assert done["plain"] == f"Question 1 of {tw.TOTAL}\nWhere is your company today?\n✔ Growing: scaling up"
    choose("11-50", "industry")
    choose("Software or tech", "core")
    choose("Sell: close deals", "pains")

    # a free-text question: typed, with Back and Skip; progress "Question 5 of 16"
    assert f"Question 5 of {tw.TOTAL}" in question["plain"]
    assert [text for text, _ in tw.buttons(question)] == [tw.BACK, tw.SKIP]
    mark = fake.mark()
    fake.send_text(ALICE, "my reps spend hours cold calling")
    tasks = tw.wait_question(fake, ALICE, mark, "tasks")
    asked.append(tasks)
    assert f"Question 6 of {tw.TOTAL}" in tasks["plain"]
    assert "pre-selected the options marked ✅" in tasks["plain"]
    assert "✅ Telemarketing and cold calling" in [text for text, _ in tw.buttons(tasks)]
    assert tw.selected(tasks) == ["telemarketing"]
    assert tw.buttons(tasks)[-2:] == [(tw.BACK, tw.data_for(tasks, tw.BACK)), ("Done", tw.data_for(tasks, "Done"))]

    # multi-choice: a press toggles ✅ on the same message (editMessageReplyMarkup), sends nothing new
    count = len(fake.messages(ALICE))
    tasks = tw.toggle(fake, ALICE, tasks, "Appointment setting")
    assert tw.selected(tasks) == ["telemarketing", "appointment_setting"]
    tasks = tw.toggle(fake, ALICE, tasks, "Appointment setting")
    assert tw.selected(tasks) == ["telemarketing"]
    tasks = tw.toggle(fake, ALICE, tasks, "Telemarketing")
    assert tw.selected(tasks) == []
    assert len(fake.messages(ALICE)) == count
    # Done with nothing ticked: told to choose, nothing moves
    query = tw.press_option(fake, ALICE, "Done", tasks)
    assert tw.callback_answer(fake, query)["text"] == "Choose at least one option, then press Done."
    for label in ("Telemarketing", "Appointment setting", "Content marketing"):
        tasks = tw.toggle(fake, ALICE, tasks, label)
    assert tw.selected(tasks) == ["telemarketing", "appointment_setting", "content_marketing"]
    question = tasks
    done = choose("Done", "hours")
    assert done["plain"].endswith("✔ Telemarketing and cold calling, Appointment setting, Content marketing")
    assert len(fake.messages(ALICE)) == count + 1

    # a number question: typed
    assert "Type a number of hours a week" in question["plain"]
    mark = fake.mark()
    fake.send_text(ALICE, "30")
    question = tw.wait_question(fake, ALICE, mark, "owners")
    asked.append(question)

    def tick_and_done(label: str, next_qid: str) -> None:
        nonlocal question
        question = tw.toggle(fake, ALICE, question, label)
        done = choose("Done", next_qid)
        assert done["plain"].endswith(f"✔ {label}")

    choose("The core team", "process")
    choose("Partly", "trigger")
    choose("A problem that keeps coming back", "horizon")
    choose("The next 12 months", "goals")
    tick_and_done("More time for our core work", "past")
    choose("No, never", "relation")
    choose("A managed service", "concern")
    tick_and_done("Quality of the work", "contact")
    assert f"Question {tw.TOTAL} of {tw.TOTAL}" in question["plain"]
    before_finish = tw.newest_id(fake, ALICE)
    mark = fake.mark()
    choose("No thanks", "")

    # every question but the first offered Back; the numbers ran 1 to 16
    questions = [m for m in asked if tw.question_of(m)]
    assert [tw.question_of(m)[1] for m in questions] == list(SALES_TEAM_ANSWERS)
    assert tw.BACK not in [text for text, _ in tw.buttons(questions[0])]
    assert all(tw.BACK in [text for text, _ in tw.buttons(m)] for m in questions[1:])
    assert [f"Question {n} of {tw.TOTAL}" in m["plain"] for n, m in enumerate(questions, 1)] == [True] * tw.TOTAL

    # the recommendation: "preparing", typing, then one screen: one HTML message of at most 300 words,
    # verdict first, the rest left to the full report (📄)
    what_next = asked[-1]
    after = tw.bot_texts(fake, ALICE, before_finish)
    assert after[0].startswith("Thank you! That's everything I need.")
    [screen] = tw.recommendation_messages(fake, ALICE, before_finish)
    assert screen["parse_mode"] == "HTML" and screen["entities"]
    assert tw.utf16_length(screen["plain"]) <= tw.MESSAGE_LIMIT
    assert len(screen["plain"].split()) <= tw.SCREEN_WORDS
    lines = screen["plain"].splitlines()
    assert lines[0] == tw.RECOMMENDATION_TITLE
    # the steps are in someone's head ("Partly"): prepare them first
    assert "Verdict: prepare first." in screen["plain"]
    assert "📄" in lines[-1]
    calls = fake.calls[mark:]
    typing = [i for i, c in enumerate(calls) if c.method == "sendChatAction" and c.params["action"] == "typing"]
    first_chunk = [i for i, c in enumerate(calls)
                   if c.method == "sendMessage" and tw.RECOMMENDATION_TITLE in c.params["text"]]
    assert typing and first_chunk and typing[0] < first_chunk[0]
    assert "typing" in fake.chat_actions(ALICE)
    assert [text for text, _ in tw.buttons(what_next)] == [tw.EXPERT, tw.REPORT, tw.START_OVER]

    [record] = tw.exported(db, ALICE)
    assert record["channel"] == "telegram"
    assert record["user_id"] == str(ALICE)
    assert record["ref"] == "rep_alice"
    assert record["status"] == "completed"
    assert record["answers"] == {**SALES_TEAM_ANSWERS, "pains": "my reps spend hours cold calling"}
    assert record["recommendation"]["readiness_score"] >= 0
    tw.assert_clean(fake, bot)


# -- after the recommendation ---------------------------------------------------------------------
def test_after_the_recommendation_expert_contact_report_summary_and_start_over(fake_api, start_bot, db):
    bot = start_bot(fake_api, db=db)
    fake = fake_api
    what_next = tw.walk(fake, ALICE, SALES_TEAM, "/start rep_alice")
    [record] = tw.exported(db, ALICE)
    assert record["recommendation"]["contact"] is None

    # a phone number shared before any consent is not kept
    mark = fake.mark()
    fake.send_contact(ALICE, "34600111222", "Ana")
    fake.wait_for(lambda m, p: m == "sendMessage" and p["chat_id"] == ALICE, since=mark)
    assert tw.exported(db, ALICE)[0]["recommendation"]["contact"] is None

    # Talk to an expert -> consent -> No, thanks: nothing stored
    query = tw.press_option(fake, ALICE, tw.EXPERT, what_next)
    consent = fake.wait_for_message(ALICE, contains="Do you agree?", after=what_next["message_id"])
    tw.callback_answer(fake, query)
    assert [text for text, _ in tw.buttons(consent)] == [tw.CONSENT_YES, tw.CONSENT_NO]
    assert "name and phone number" in consent["plain"]
    tw.press_option(fake, ALICE, tw.CONSENT_NO, consent)
    fake.wait_for_message(ALICE, contains="No problem: nothing was stored.", after=consent["message_id"])
    assert tw.message_by_id(fake, ALICE, consent["message_id"])["reply_markup"] is None

    # ... and again -> Yes, I agree -> a reply keyboard asking for the phone number
    query = tw.press_option(fake, ALICE, tw.EXPERT, what_next)
    consent = fake.wait_for_message(ALICE, contains="Do you agree?", after=consent["message_id"])
    tw.press_option(fake, ALICE, tw.CONSENT_YES, consent)
    share = fake.wait_for_message(ALICE, contains="share your phone number", after=consent["message_id"])
    assert tw.message_by_id(fake, ALICE, consent["message_id"])["reply_markup"] is None
    assert share["reply_markup"]["keyboard"] == [[{"text": "📱 Share my phone number", "request_contact": True}]]
    mark = fake.mark()
    fake.send_contact(ALICE, "+34600111222", "Ana & <Co>")
    fake.wait_for(lambda m, p: m == "sendMessage" and "An expert will contact you soon" in p["text"], since=mark)
    thanks = fake.last_message(ALICE)
    assert thanks["plain"] == "Thank you, Ana & <Co>! An expert will contact you soon."
    assert thanks["reply_markup"] == {"remove_keyboard": True}
    contact = tw.exported(db, ALICE)[0]["recommendation"]["contact"]
    assert {k: contact[k] for k in ("name", "email", "phone", "consent")} == {
        "name": "Ana & <Co>", "email": None, "phone": "+34600111222", "consent": True}
    assert contact["given_at"]

    # the full report: an HTML document with the verdict and the chart
    query = tw.press_option(fake, ALICE, tw.REPORT, what_next)
    fake.wait_for(lambda m, p: m == "sendDocument" and p["chat_id"] == ALICE)
    [(filename, content)] = fake.documents(ALICE)
    assert filename.endswith(".html")
    assert b"<svg" in content and b"<html" in content
    assert b"<title>Outsourcing recommendation</title>" in content and b"Verdict: prepare first" in content
    assert "upload_document" in fake.chat_actions(ALICE)
    assert "text" not in tw.callback_answer(fake, query)

    # /summary: the last recommendation again, now knowing the contact
    first_time = [c["text"] for c in tw.recommendation_messages(fake, ALICE)]
    before = tw.newest_id(fake, ALICE)
    typing_before = fake.chat_actions(ALICE).count("typing")
    mark = fake.mark()
    fake.send_text(ALICE, "/summary")
    again = tw.wait_step(fake, ALICE, mark)
    assert "An expert will contact you on +34600111222" in again["plain"]
    assert [text for text, _ in tw.buttons(again)] == [tw.REPORT, tw.START_OVER]
    assert [c["text"] for c in tw.recommendation_messages(fake, ALICE, before)] == first_time
    assert fake.chat_actions(ALICE).count("typing") == typing_before + 1

    # Start over: a new conversation at question 1, with the same ref
    mark = fake.mark()
    tw.press_option(fake, ALICE, tw.START_OVER, what_next)
    question = tw.wait_question(fake, ALICE, mark, "stage")
    assert f"Question 1 of {tw.TOTAL}" in question["plain"]
    records = tw.exported(db, ALICE)
    assert [(r["status"], r["ref"], r["answers"]) for r in records] == [
        ("completed", "rep_alice", record["answers"]), ("in_progress", "rep_alice", {})]
    assert tw.question_of(question)[0] == records[1]["id"]
    tw.assert_clean(fake, bot)


# -- back -----------------------------------------------------------------------------------------
def test_back_button_and_back_command(fake_api, start_bot, db):
    bot = start_bot(fake_api, db=db)
    fake = fake_api
    q1 = tw.start(fake, ALICE)
    mark = fake.mark()
    tw.press_option(fake, ALICE, "Growing", q1)
    q2 = tw.wait_question(fake, ALICE, mark, "size")

    # the Back button: this message shows "went back", question 1 comes again with the answer marked
    mark = fake.mark()
    query = tw.press_option(fake, ALICE, tw.BACK, q2)
    again = tw.wait_question(fake, ALICE, mark, "stage")
    tw.callback_answer(fake, query)
    left = tw.message_by_id(fake, ALICE, q2["message_id"])
    assert left["plain"] == f"Question 2 of {tw.TOTAL}\nHow many people work in the company?\n⬅ (went back)"
    assert left["reply_markup"] is None
    assert f"Question 1 of {tw.TOTAL}" in again["plain"]
    assert "• Growing: scaling up" in [text for text, _ in tw.buttons(again)]
    assert tw.BACK not in [text for text, _ in tw.buttons(again)]

    tw.answer_walk(fake, ALICE, ["2", "2"])  # Early, 2-10 -> question 3
    # the /back command: question 2 again, its answer kept and marked
    mark = fake.mark()
    fake.send_text(ALICE, "/back")
    size = tw.wait_question(fake, ALICE, mark, "size")
    assert f"Question 2 of {tw.TOTAL}" in size["plain"]
    assert "• 2-10" in [text for text, _ in tw.buttons(size)]
    [record] = tw.exported(db, ALICE)
    assert record["answers"] == {"stage": "early", "size": "small"}
    # /back twice more: at question 1 there is nothing to go back to, said so
    mark = fake.mark()
    fake.send_text(ALICE, "/back")
    tw.wait_question(fake, ALICE, mark, "stage")
    mark = fake.mark()
    fake.send_text(ALICE, "/back")
    stay = tw.wait_question(fake, ALICE, mark, "stage")
    assert "This is the first question; there is nothing to go back to." in stay["plain"]
    # going on from there by the buttons again
    step = tw.answer_walk(fake, ALICE, ["2", "2", "1", "1"])
    assert tw.question_of(step)[1] == "pains"
    # Skip: the message shows "(skipped)", and the tasks come with nothing pre-selected
    mark = fake.mark()
    tw.press_option(fake, ALICE, tw.SKIP, step)
    tasks = tw.wait_question(fake, ALICE, mark, "tasks")
    assert tw.message_by_id(fake, ALICE, step["message_id"])["plain"].endswith("✔ (skipped)")
    assert tw.selected(tasks) == [] and "pre-selected" not in tasks["plain"]
    assert tw.exported(db, ALICE)[0]["answers"]["pains"] is None
    tw.assert_clean(fake, bot)


# -- the other commands ---------------------------------------------------------------------------
def test_help_privacy_summary_restart_and_an_unknown_command(fake_api, start_bot, db):
    bot = start_bot(fake_api, db=db)
    fake = fake_api

    fake.send_text(ALICE, "/summary")
    fake.wait_for_message(ALICE, contains="You have no recommendation yet.")
    fake.send_text(ALICE, "/help")
    help_text = fake.wait_for_message(ALICE, contains="/summary: your last recommendation again")["plain"]
    for command in tw.COMMANDS:
        assert f"/{command}" in help_text
    fake.send_text(ALICE, "/privacy")
    privacy = fake.wait_for_message(ALICE, contains="What I keep, and why")["plain"]
    assert "Your Telegram user id" in privacy and "/forget deletes all of it" in privacy
    fake.send_text(ALICE, "/nosuchthing")
    fake.wait_for_message(ALICE, contains="Type /start to begin")

    tw.start(fake, ALICE, "/start rep_bob")
    tw.answer_walk(fake, ALICE, ["3", "3"])
    # an unknown command: a short nudge, then the current question again
    mark = fake.mark()
    fake.send_text(ALICE, "/frobnicate")
    industry = tw.wait_question(fake, ALICE, mark, "industry")
    assert tw.UNKNOWN_COMMAND in fake.messages(ALICE)[-2]["plain"]
    assert f"Question 3 of {tw.TOTAL}" in industry["plain"]

    # /restart: question 1 of a new conversation, the old one abandoned, the ref kept
    mark = fake.mark()
    fake.send_text(ALICE, "/restart")
    q1 = tw.wait_question(fake, ALICE, mark, "stage")
    assert f"Question 1 of {tw.TOTAL}" in q1["plain"]
    records = tw.exported(db, ALICE)
    assert [(r["status"], r["ref"]) for r in records] == [("abandoned", "rep_bob"), ("in_progress", "rep_bob")]
    assert records[0]["answers"] == {"stage": "growing", "size": "medium"}

    step = tw.answer_walk(fake, ALICE, SALES_TEAM)
    assert tw.WHAT_NEXT in step["plain"]
    first = [c["text"] for c in tw.recommendation_messages(fake, ALICE)]
    # /summary: the same recommendation messages again, after typing, with the buttons
    before = tw.newest_id(fake, ALICE)
    mark = fake.mark()
    fake.send_text(ALICE, "/summary")
    again = tw.wait_step(fake, ALICE, mark)
    assert [c["text"] for c in tw.recommendation_messages(fake, ALICE, before)] == first
    assert [text for text, _ in tw.buttons(again)] == [tw.EXPERT, tw.REPORT, tw.START_OVER]
    assert any(c.method == "sendChatAction" and c.params["action"] == "typing" for c in fake.calls[mark:])
    # with nothing in progress, a text gets "your recommendation is ready", and /restart begins anew
    fake.send_text(ALICE, "hello?")
    fake.wait_for_message(ALICE, contains="Your recommendation is ready: /summary shows it again")
    mark = fake.mark()
    fake.send_text(ALICE, "/restart")
    tw.wait_question(fake, ALICE, mark, "stage")
    assert [(r["status"], r["ref"]) for r in tw.exported(db, ALICE)][-1] == ("in_progress", "rep_bob")
    tw.assert_clean(fake, bot)


# -- /forget --------------------------------------------------------------------------------------
def test_forget_deletes_every_row_of_that_user_only(fake_api, start_bot, db):
    bot = start_bot(fake_api, db=db)
    fake = fake_api
    tw.walk(fake, ALICE, SALES_TEAM)
    old = tw.start(fake, ALICE, "/start")  # a second conversation, in progress
    tw.answer_walk(fake, ALICE, ["1"])
    tw.start(fake, BOB)
    tw.answer_walk(fake, BOB, ["2", "2"])
    alice_ids = [r["id"] for r in tw.exported(db, ALICE)]
    bob_ids = [r["id"] for r in tw.exported(db, BOB)]
    assert len(alice_ids) == 2 and len(bob_ids) == 1

    # "No, keep it": nothing deleted
    fake.send_text(ALICE, "/forget")
    confirm = fake.wait_for_message(ALICE, contains="This cannot be undone.")
    assert [text for text, _ in tw.buttons(confirm)] == [tw.FORGET_YES, tw.FORGET_NO]
    tw.press_option(fake, ALICE, tw.FORGET_NO, confirm)
    fake.wait_for(lambda m, p: m == "editMessageText" and p["message_id"] == confirm["message_id"])
    assert tw.message_by_id(fake, ALICE, confirm["message_id"])["plain"] == "Nothing was deleted."
    assert [r["id"] for r in tw.exported(db, ALICE)] == alice_ids

    # "Yes, delete everything": every row of Alice goes, Bob's stay
    fake.send_text(ALICE, "/forget")
    confirm = fake.wait_for_message(ALICE, contains="This cannot be undone.", after=confirm["message_id"])
    query = tw.press_option(fake, ALICE, tw.FORGET_YES, confirm)
    fake.wait_for(lambda m, p: m == "editMessageText" and p["message_id"] == confirm["message_id"])
    tw.callback_answer(fake, query)
    done = tw.message_by_id(fake, ALICE, confirm["message_id"])
    assert done["plain"] == "Done: 2 conversations and everything in them deleted. /start begins anew."
    assert done["reply_markup"] is None
    marks = ",".join("?" * len(alice_ids))
    assert tw.query(db, "SELECT COUNT(*) FROM conversations WHERE user_id = ?", [str(ALICE)]) == [(0,)]
    assert tw.query(db, f"SELECT COUNT(*) FROM turns WHERE conversation_id IN ({marks})", alice_ids) == [(0,)]
    assert tw.query(db, "SELECT id FROM conversations WHERE user_id = ?", [str(BOB)]) == [(bob_ids[0],)]
    assert tw.turn_count(db, bob_ids[0]) > 0
    assert tw.exported(db, ALICE) == []

    # a button of the forgotten conversation changes nothing; /start is a first start again
    current = tw.current_question(fake, ALICE)
    assert tw.question_of(current)[1] == "size" and current["message_id"] > old["message_id"]
    query = tw.press_option(fake, ALICE, "Just me", current)
    assert tw.callback_answer(fake, query)["text"].startswith(tw.ALREADY_ANSWERED)
    tw.start(fake, ALICE)
    assert fake.messages(ALICE)[-2]["plain"].startswith("Hello Ana!")
    tw.assert_clean(fake, bot)


# -- state survives the process -------------------------------------------------------------------
@pytest.mark.parametrize("how", ["stop", "kill"])
def test_a_conversation_goes_on_across_a_restart_of_the_bot(fake_api, start_bot, db, how):
    fake = fake_api
    first = start_bot(fake, db=db)
    tw.start(fake, ALICE, "/start rep_alice")
    current = tw.answer_walk(fake, ALICE, SALES_TEAM[:tw.at("core")])  # question 4 (core) is current
    assert tw.question_of(current)[1] == "core"
    if how == "stop":
        assert first.stop() == 0
    else:
        tw.wait_confirmed(fake)  # Telegram would otherwise deliver the last update again
        first.kill()
        assert first.process.returncode == -9
    second = start_bot(fake, db=db)

    # the buttons of the question that was current still work
    mark = fake.mark()
    query = tw.press_option(fake, ALICE, "Sell", current)
    tw.wait_question(fake, ALICE, mark, "pains")
    assert "text" not in tw.callback_answer(fake, query)
    assert tw.message_by_id(fake, ALICE, current["message_id"])["plain"].endswith("✔ Sell: close deals")
    # /start in the new process: welcome back, at question 5
    mark = fake.mark()
    fake.send_text(ALICE, "/start")
    tw.wait_question(fake, ALICE, mark, "pains")
    assert "Welcome back! Let's continue where you left off (question 5)." in tw.bot_texts(fake, ALICE)
    tw.answer_walk(fake, ALICE, SALES_TEAM[tw.at("pains"):])
    [record] = tw.exported(db, ALICE)
    assert (record["status"], record["ref"], record["answers"]) == ("completed", "rep_alice", SALES_TEAM_ANSWERS)
    tw.assert_clean(fake, first, second)


# -- old buttons and double taps ------------------------------------------------------------------
def test_a_button_of_an_older_question_answers_already_answered_and_changes_nothing(fake_api, start_bot, db):
    bot = start_bot(fake_api, db=db)
    fake = fake_api
    q1 = tw.start(fake, ALICE)
    # typed answers leave the buttons of their question in place
    mark = fake.mark()
    fake.send_text(ALICE, "3")  # Growing, typed
    tw.wait_question(fake, ALICE, mark, "size")
    step = tw.answer_walk(fake, ALICE, ["3", "1", "1", "we do our own cold calling"])
    assert tw.question_of(step)[1] == "tasks"
    pains = [m for m in fake.messages(ALICE) if tw.question_of(m) and tw.question_of(m)[1] == "pains"][-1]
    cid = tw.question_of(step)[0]
    row, turns = tw.conversation_row(db, cid), tw.turn_count(db, cid)
    before = fake.messages(ALICE)

    for message, label in ((q1, "Established"), (pains, tw.BACK), (pains, tw.SKIP)):
        mark = fake.mark()
        query = tw.press_option(fake, ALICE, label, message)
        answer = tw.callback_answer(fake, query)
        assert answer["text"] == "Already answered: that question is behind you."
        tw.barrier(fake, ALICE)
        assert [c.method for c in fake.calls[mark:] if c.method != "getUpdates"] == [
            "answerCallbackQuery", "sendMessage"]  # the answer, then /help's reply
    assert tw.conversation_row(db, cid) == row
    assert tw.turn_count(db, cid) == turns
    assert fake.messages(ALICE)[:len(before)] == before

    # data the bot never sent, and another person's conversation: answered, nothing done
    tw.start(fake, BOB)
    bob_cid = tw.question_of(tw.current_question(fake, BOB))[0]
    v = tw.VERSION  # the current dialog version: these are refused for what else is wrong with them
    for data in ("nonsense", f"x:{bob_cid}:report", f"a:{bob_cid}:stage:0:{v}", f"a:{cid}:tasks:99:{v}",
                 f"t:{cid}:tasks:99:{v}", "t:x:y:z", f"a:{cid}:tasks:0", f"t:{cid}:tasks:0:0",
                 f"r:{bob_cid}:stage:{v}"):
        query = fake.press(ALICE, step["message_id"], data, strict=False)
        tw.callback_answer(fake, query)
    tw.barrier(fake, ALICE)
    assert fake.documents(ALICE) == []
    assert tw.conversation_row(db, cid) == row
    assert tw.exported(db, BOB)[0]["answers"] == {}
    tw.assert_clean(fake, bot)


def test_a_double_tap_makes_one_transition(fake_api, start_bot, db):
    bot = start_bot(fake_api, db=db)
    fake = fake_api
    q1 = tw.start(fake, ALICE)
    data = tw.data_for(q1, "Growing")
    mark = fake.mark()
    first = tw.press(fake, ALICE, q1, data)
    second = tw.press(fake, ALICE, q1, data, strict=False)  # the client still shows the keyboard
    assert "text" not in tw.callback_answer(fake, first)
    assert tw.callback_answer(fake, second)["text"].startswith(tw.ALREADY_ANSWERED)
    tw.barrier(fake, ALICE)
    calls = [c for c in fake.calls[mark:] if c.method in ("sendMessage", "editMessageText")]
    assert [c.method for c in calls] == ["editMessageText", "sendMessage", "sendMessage"]  # +/help
    assert sum(f"Question 2 of {tw.TOTAL}" in m["plain"] for m in fake.messages(ALICE)) == 1

    # the same on a multi-choice question's Done
    size = tw.current_question(fake, ALICE)
    tw.answer_walk(fake, ALICE, ["3", "1", "1", "we do cold calling"])
    tasks = tw.current_question(fake, ALICE)
    assert tw.question_of(tasks)[1] == "tasks" and size["message_id"] < tasks["message_id"]
    done = tw.data_for(tasks, "Done")
    mark = fake.mark()
    first = tw.press(fake, ALICE, tasks, done)
    second = tw.press(fake, ALICE, tasks, done, strict=False)
    assert "text" not in tw.callback_answer(fake, first)
    assert tw.callback_answer(fake, second)["text"].startswith(tw.ALREADY_ANSWERED)
    tw.barrier(fake, ALICE)
    assert sum(f"Question {tw.at('hours') + 1} of {tw.TOTAL}" in m["plain"] for m in fake.messages(ALICE)) == 1
    [record] = tw.exported(db, ALICE)
    assert record["answers"]["tasks"] == ["telemarketing"]
    cid = record["id"]
    history = tw.query(db, "SELECT question_id FROM turns WHERE conversation_id = ? AND role = 'person'", [cid])
    assert [q for (q,) in history] == list(tw.ORDER[:tw.at("hours")])  # stage ... tasks
    tw.assert_clean(fake, bot)


# -- everything else a person may send ------------------------------------------------------------
def _message(chat: int, message_id: int, **content) -> dict:
    return {"message": {
        "message_id": message_id, "date": 1_760_000_000,
        "from": {"id": chat, "is_bot": False, "first_name": "Ana"},
        "chat": {"id": chat, "type": "private", "first_name": "Ana"},
        **content,
    }}


NOT_TEXT = {
    "sticker": {"sticker": {"file_id": "CAACAgIAAxkBAAIBsticker", "file_unique_id": "AgADsticker", "type": "regular",
                            "width": 512, "height": 512, "is_animated": False, "is_video": False, "emoji": "👍"}},
    "photo": {"photo": [{"file_id": "AgACAgIAAxkBAAIBphoto1", "file_unique_id": "AQADphoto1", "width": 90,
                         "height": 60, "file_size": 1200},
                        {"file_id": "AgACAgIAAxkBAAIBphoto2", "file_unique_id": "AQADphoto2", "width": 1280,
                         "height": 853, "file_size": 98000}],
              "caption": "our team"},
    "voice": {"voice": {"file_id": "AwACAgIAAxkBAAIBvoice", "file_unique_id": "AgADvoice", "duration": 4,
                        "mime_type": "audio/ogg", "file_size": 9000}},
    "location": {"location": {"latitude": 40.4168, "longitude": -3.7038}},
}


def test_anything_else_gets_a_nudge_and_the_question_again(fake_api, start_bot, db):
    bot = start_bot(fake_api, db=db)
    fake = fake_api
    tw.start(fake, ALICE)
    tw.answer_walk(fake, ALICE, ["3"])
    cid = tw.question_of(tw.current_question(fake, ALICE))[0]
    row = tw.conversation_row(db, cid)

    for n, (kind, content) in enumerate(NOT_TEXT.items()):
        mark = fake.mark()
        fake.push_update(_message(ALICE, 9000 + n, **content))
        again = tw.wait_question(fake, ALICE, mark, "size")
        assert f"Question 2 of {tw.TOTAL}" in again["plain"], kind
        assert fake.messages(ALICE)[-2]["plain"].startswith(tw.NUDGE), kind
    # an edited message is not taken as an answer
    mark = fake.mark()
    fake.send_text(ALICE, "a few")
    tw.wait_question(fake, ALICE, mark, "size")  # re-asked with a hint
    typed = [u["message"] for u in fake.updates if "message" in u and u["message"].get("text") == "a few"][-1]
    mark = fake.mark()
    fake.edit_text(ALICE, typed["message_id"], "2")
    tw.wait_question(fake, ALICE, mark, "size")
    assert fake.messages(ALICE)[-2]["plain"].startswith(tw.NUDGE)
    # an unknown command
    mark = fake.mark()
    fake.send_text(ALICE, "/weather")
    tw.wait_question(fake, ALICE, mark, "size")
    assert fake.messages(ALICE)[-2]["plain"].startswith(tw.UNKNOWN_COMMAND)
    assert tw.exported(db, ALICE)[0]["answers"] == {"stage": "growing"}
    assert tw.conversation_row(db, cid)[5:7] == row[5:7]  # state and answers

    # the same from someone with no conversation: how to begin
    fake.push_update(_message(BOB, 9100, **NOT_TEXT["sticker"]))
    fake.wait_for_message(BOB, contains="Type /start to begin")
    tw.assert_clean(fake, bot)


def test_in_a_group_it_says_it_works_in_a_private_chat(fake_api, start_bot, db):
    bot = start_bot(fake_api, db=db)
    fake = fake_api
    group = -4_012_345_678
    fake.send_text(group, "/start", user_id=ALICE, chat_type="group")
    reply = fake.wait_for_message(group, contains="I work in a private chat")
    assert "@advisor_test_bot" in reply["plain"]
    assert {"type": "text_link", "url": "https://t.me/advisor_test_bot"}.items() <= reply["entities"][0].items()
    fake.send_text(group, "we need help with cold calling", user_id=BOB, chat_type="group")
    fake.wait_for_message(group, contains="I work in a private chat", after=reply["message_id"])
    assert tw.export(db) == []
    tw.assert_clean(fake, bot)


def test_html_in_a_first_name_or_typed_words_is_escaped(fake_api, start_bot, db):
    bot = start_bot(fake_api, db=db)
    fake = fake_api
    tw.start(fake, ALICE, first_name="<b>Ana</b> & co")
    welcome = fake.messages(ALICE)[0]
    assert welcome["plain"].startswith("Hello <b>Ana</b> & co! I'm the Outsourcing Advisor.")
    assert "&lt;b&gt;Ana&lt;/b&gt; &amp; co" in welcome["text"]
    assert all(e["offset"] > len("Hello <b>Ana</b> & co") for e in welcome["entities"])

    # the person's own words: kept as typed, never markup on the one screen (which leaves them to the
    # full report), and quoted there as text ("In your words")
    words = "we <b>cold call</b> & book meetings all day"
    lines = [*SALES_TEAM[:tw.at("pains")], words, *SALES_TEAM[tw.at("pains") + 1:]]
    what_next = tw.answer_walk(fake, ALICE, lines)
    assert tw.WHAT_NEXT in what_next["plain"]
    [screen] = tw.recommendation_messages(fake, ALICE)
    assert "<b>cold call</b>" not in screen["text"]
    assert not any(screen["plain"][e["offset"]:e["offset"] + e["length"]] == "cold call" for e in screen["entities"])
    tw.press_option(fake, ALICE, tw.REPORT, what_next)
    fake.wait_for(lambda m, p: m == "sendDocument")
    [(_name, report)] = fake.documents(ALICE)
    assert b"<b>cold call</b>" not in report
    assert b"<blockquote>we &lt;b&gt;cold call&lt;/b&gt; &amp; book meetings all day</blockquote>" in report
    assert tw.exported(db, ALICE)[0]["answers"]["pains"] == words
    tw.assert_clean(fake, bot)


def test_a_choice_understood_from_typed_words_is_shown_marked_on_its_button(fake_api, start_bot, db):
    bot = start_bot(fake_api, db=db)
    fake = fake_api
    tw.start(fake, ALICE)
    mark = fake.mark()
    fake.send_text(ALICE, "we are scaling up fast")
    again = tw.wait_question(fake, ALICE, mark, "stage")
    labels = [text for text, _ in tw.buttons(again)]
    assert "I understood the option marked ✅: press it to confirm" in again["plain"]
    # what the words promise, the keyboard must show: the understood option marked, and a Done to press
    assert "✅ Growing: scaling up" in labels, f"nothing is marked: {labels}"
    assert "press Done" not in again["plain"] or "Done" in labels, f"no Done button: {labels}"
    # typing yes confirms what was understood
    mark = fake.mark()
    fake.send_text(ALICE, "yes")
    tw.wait_question(fake, ALICE, mark, "size")
    assert tw.exported(db, ALICE)[0]["answers"] == {"stage": "growing"}
    tw.assert_clean(fake, bot)


def test_words_that_could_mean_two_options_are_asked_about_with_those_options_as_buttons(fake_api, start_bot, db):
    bot = start_bot(fake_api, db=db)
    fake = fake_api
    tw.start(fake, ALICE)
    mark = fake.mark()
    tw.press_option(fake, ALICE, "Growing")
    size = tw.wait_question(fake, ALICE, mark, "size")
    mark = fake.mark()
    fake.send_text(ALICE, "somewhere between 8 and 15 people")
    asked = tw.wait_question(fake, ALICE, mark, "size")
    assert "could mean 2-10 or 11-50" in asked["plain"]
    labels = [text for text, _ in tw.buttons(asked)]
    assert labels[:2] == ["2-10", "11-50"], labels  # only the two it could mean...
    assert tw.SOMETHING_ELSE in labels and "Just me" not in labels  # ...and a way to the rest
    assert size["message_id"] != asked["message_id"]
    # "Something else" puts every option back on the same message
    mark = fake.mark()
    query = tw.press_option(fake, ALICE, tw.SOMETHING_ELSE, asked)
    fake.wait_for(lambda m, p: m == "editMessageReplyMarkup" and p["message_id"] == asked["message_id"], since=mark)
    tw.callback_answer(fake, query)
    every = [tw.label(text) for text, _ in tw.buttons(tw.message_by_id(fake, ALICE, asked["message_id"]))]
    assert every[:5] == ["Just me", "2-10", "11-50", "51-250", "More than 250"], every
    mark = fake.mark()
    tw.press_option(fake, ALICE, "11-50", asked)
    tw.wait_question(fake, ALICE, mark, "industry")
    assert tw.exported(db, ALICE)[0]["answers"] == {"stage": "growing", "size": "medium"}
    tw.assert_clean(fake, bot)


def test_at_a_several_answer_question_the_options_asked_about_come_first_marked(fake_api, start_bot, db):
    bot = start_bot(fake_api, db=db)
    fake = fake_api
    # early, 2-10, agency, services, then words that name invoicing for sure and the phones ambiguously
    tw.start(fake, ALICE)
    tw.answer_walk(fake, ALICE, ["2", "2", "2", "3"])
    mark = fake.mark()
    fake.send_text(ALICE, "the invoices, and answering the phones all day")
    tasks = tw.wait_question(fake, ALICE, mark, "tasks")
    assert "could mean" in tasks["plain"], tasks["plain"]
    texts = [text for text, _ in tw.buttons(tasks)]
    asked = [text for text in texts if text.startswith("❔ ")]
    assert len(asked) == 2 and texts[:2] == asked, texts  # the candidates first, marked as asked about
    assert tw.selected(tasks) == ["bookkeeping"]  # what was said for sure stays ticked
    assert tw.SOMETHING_ELSE not in texts  # every option shows: the ticks elsewhere must stay in view
    tw.assert_clean(fake, bot)


# -- an answer that can't be right beside an earlier one is read back -----------------------------
def test_an_implausible_answer_is_read_back_with_a_yes_button_and_kept_when_pressed(fake_api, start_bot, db):
    bot = start_bot(fake_api, db=db)
    fake = fake_api
    # early, 2-10 people, agency, deliver services, pains skipped, bookkeeping -> the hours question
    to_hours = ["2", "2", "2", "3", "skip", "8"]

    def read_back(chat: int) -> tuple[dict, int]:
        """300 hours a week typed for a company of 2-10: the hours question again, read back."""
        tw.start(fake, chat)
        hours = tw.answer_walk(fake, chat, to_hours)
        assert (tw.question_of(hours) or (0, ""))[1] == "hours"
        mark = fake.mark()
        fake.send_text(chat, "300")
        again = tw.wait_question(fake, chat, mark, "hours")
        cid, _qid = tw.question_of(again) or (0, "")
        assert again["message_id"] > hours["message_id"]
        assert f"Question {tw.at('hours') + 1} of {tw.TOTAL}" in again["plain"]
        assert "You said 300 hours a week" in again["plain"] and "Is 300 right?" in again["plain"]
        # the first row: one button that says the answer is right; then Back and Skip as before
        rows = again["reply_markup"]["inline_keyboard"]
        assert [(b["text"], b["callback_data"]) for b in rows[0]] == [
            (tw.READ_BACK_YES, f"r:{cid}:hours:{tw.VERSION}")]
        assert [b["text"] for b in rows[-1]] == [tw.BACK, tw.SKIP]
        assert tw.READ_BACK_YES not in [text for text, _ in tw.buttons(hours)]
        # nothing is stored for hours yet
        [record] = tw.exported(db, chat)
        assert "hours" not in record["answers"] and record["answers"]["size"] == "small"
        return again, cid

    # pressing "Yes, that's right": 300 is kept, and the next question (owners) comes
    again, cid = read_back(ALICE)
    mark = fake.mark()
    query = tw.press_option(fake, ALICE, tw.READ_BACK_YES, again)
    owners = tw.wait_question(fake, ALICE, mark, "owners")
    assert "text" not in tw.callback_answer(fake, query)
    assert f"Question {tw.at('owners') + 1} of {tw.TOTAL}" in owners["plain"]
    assert tw.message_by_id(fake, ALICE, again["message_id"])["reply_markup"] is None
    [record] = tw.exported(db, ALICE)
    assert record["answers"]["hours"] == 300
    # the button of the read-back, pressed again, changes nothing
    query = tw.press(fake, ALICE, again, f"r:{cid}:hours:{tw.VERSION}", strict=False)
    assert tw.callback_answer(fake, query)["text"].startswith(tw.ALREADY_ANSWERED)
    tw.barrier(fake, ALICE)
    assert tw.exported(db, ALICE)[0]["answers"] == record["answers"]
    assert tw.question_of(tw.current_question(fake, ALICE)) == (cid, "owners")

    # typing another number instead: checked as usual, and 30 is taken at once
    again, _cid = read_back(BOB)
    mark = fake.mark()
    fake.send_text(BOB, "30")
    tw.wait_question(fake, BOB, mark, "owners")
    [record] = tw.exported(db, BOB)
    assert record["answers"]["hours"] == 30
    tw.assert_clean(fake, bot)


# -- the same advice on both channels -------------------------------------------------------------
def test_the_same_answers_get_the_same_recommendation_in_the_console_and_on_telegram(
        fake_api, start_bot, tmp_path):
    telegram_db, console_db = tmp_path / "telegram.db", tmp_path / "console.db"
    bot = start_bot(fake_api, db=telegram_db)
    for n, (name, lines) in enumerate(ALL_PERSONAS.items()):  # one has an answer read back, one "not now"
        result = run_bot("console", "--user", name, stdin="\n".join(lines) + "\n", db=console_db)
        assert result.returncode == 0, result.stderr
        chat = 1000 + n
        tw.walk(fake_api, chat, lines)
        [console] = tw.exported(console_db, name, channel="console")
        [telegram] = tw.exported(telegram_db, chat)
        assert (console["status"], telegram["status"]) == ("completed", "completed")
        assert telegram["answers"] == console["answers"], name
        assert telegram["recommendation"] == console["recommendation"], name
    # GROWING_TACTICAL typed its contact at the last question: it is in the recommendation on both
    growing = tw.exported(telegram_db, 1000 + list(ALL_PERSONAS.values()).index(GROWING_TACTICAL))[0]
    assert growing["recommendation"]["contact"]["email"] == "maria@example.com"
    tw.assert_clean(fake_api, bot)
