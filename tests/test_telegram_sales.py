"""For the people behind the bot, on Telegram: lead alerts, admin commands, reminders to idle prospects.

The real bot process against the fake Bot API; the database is read directly where that is the proof.
"""

from __future__ import annotations

import csv
import io
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from tests import telegram_walk as tw
from tests.personas import SALES_TEAM

SALES_CHAT = -100500
ADMIN = 7
PROSPECT = 1001
SETTINGS = {"ADVISOR_SALES_CHAT_ID": str(SALES_CHAT), "ADVISOR_ADMIN_IDS": f"{ADMIN},8", "ADVISOR_NUDGE_AFTER": "1h"}


def type_answers(fake, chat: int, lines: list[str], first_name: str = "Ana") -> None:
    """Type each line and wait for the bot's reply to it (confirming understood options with 'yes')."""
    for line in lines:
        mark = fake.mark()
        fake.send_text(chat, line or "yes", first_name=first_name)
        fake.wait_for(lambda method, params: method == "sendMessage" and params.get("chat_id") == chat,
                      since=mark)


def complete(fake, chat: int, ref: str | None = None, lines: list[str] = SALES_TEAM, first_name: str = "Ana"):
    fake.send_text(chat, f"/start {ref}" if ref else "/start", first_name=first_name)
    fake.wait_for_message(chat, contains="Question 1 of")
    type_answers(fake, chat, lines, first_name)
    fake.wait_for_message(chat, contains="What next?")


@pytest.fixture
def sales_bot(fake_api, start_bot, tmp_path: Path):
    fake_api.add_chat(SALES_CHAT, first_name="Sales", chat_type="supergroup")
    bot = start_bot(fake_api, env=SETTINGS, db=tmp_path / "advisor.db")
    yield bot
    assert fake_api.refusals == []
    assert "Traceback" not in bot.output()


def test_a_completed_conversation_posts_a_lead_card_to_the_sales_chat(fake_api, sales_bot, tmp_path: Path):
    complete(fake_api, PROSPECT, ref="rep_alice", first_name="Tom")
    card = fake_api.wait_for_message(SALES_CHAT, contains="New recommendation")["text"]
    assert "rep_alice" in card and "/lead 1" in card
    assert "Tom" not in card and "(no name given)" in card  # no consent: not even the Telegram first name
    # the score line starts with the verdict (the tasks are only partly written down: prepare first),
    # then what the recommendation stored says
    [record] = tw.exported(tmp_path / "advisor.db", PROSPECT)
    rec = record["recommendation"]
    assert (rec["verdict"], rec["verdict_name"]) == ("prepare_first", "Prepare first")
    score_line = next(line for line in card.splitlines() if "readiness" in line)
    assert score_line == (f"Prepare first · readiness {rec['readiness_score']}/100, {rec['profile']}"
                          " · Telemarketing and cold calling, Appointment setting, Content marketing")
    assert "Contact" not in card  # no consent given: no contact details


def test_contact_details_reach_the_card_only_with_consent(fake_api, sales_bot):
    lines = [*SALES_TEAM[:-1], "Maria Lopez, maria@example.com"]
    complete(fake_api, PROSPECT, lines=lines)
    card = fake_api.wait_for_message(SALES_CHAT, contains="wants to talk to an expert")["text"]
    assert "Maria Lopez" in card and "maria@example.com" in card


def test_asking_for_an_expert_after_the_advice_alerts_sales_twice_with_the_phone_at_last(fake_api, sales_bot):
    complete(fake_api, PROSPECT, first_name="Tom")
    ask_for_an_expert_and_consent(fake_api)
    fake_api.wait_for_message(SALES_CHAT, contains="Waiting for their phone number")
    fake_api.wait_for_message(PROSPECT, contains="share your phone number")
    fake_api.send_contact(PROSPECT, "+44 20 7946 0958", "Tom")
    card = fake_api.wait_for_message(SALES_CHAT, contains="shared contact details")["text"]
    assert "Tom" in card and "+44 20 7946 0958".replace(" ", "") in card.replace(" ", "")


def ask_for_an_expert_and_consent(fake_api) -> None:
    """After the advice: press "talk to an expert", then "Yes" at the consent question."""
    what_next = fake_api.wait_for_message(PROSPECT, contains="What next?")
    expert = next(data for text, data in fake_api.buttons(what_next) if "expert" in text)
    fake_api.press(PROSPECT, what_next["message_id"], expert)
    consent = fake_api.wait_for_message(PROSPECT, contains="Do you agree?")
    yes = next(data for text, data in fake_api.buttons(consent) if text.startswith("Yes"))
    fake_api.press(PROSPECT, consent["message_id"], yes)


def test_admins_get_stats_leads_a_lead_and_a_csv_export(fake_api, sales_bot, tmp_path: Path):
    complete(fake_api, PROSPECT, ref="rep_alice")
    [record] = tw.exported(tmp_path / "advisor.db", PROSPECT)
    score = record["recommendation"]["readiness_score"]
    fake_api.send_text(2002, "/start")
    fake_api.wait_for_message(2002, contains="Question 1 of")

    fake_api.send_text(ADMIN, "/stats 7")
    stats = fake_api.wait_for_message(ADMIN, contains="Last 7 days")["text"]
    assert "Started: 2" in stats and "completed: 1" in stats and "50%" in stats
    assert "rep_alice" in stats and "stage" in stats  # by ref, and where the other one stopped

    fake_api.send_text(ADMIN, "/leads 5")
    leads = fake_api.wait_for_message(ADMIN, contains="Latest leads")["text"]
    assert "<code>1</code>" in leads and "rep_alice" in leads and "2002" not in leads

    fake_api.send_text(ADMIN, "/lead 1")
    lead = fake_api.wait_for_message(ADMIN, contains="Conversation 1")["text"]
    assert "Summary" in lead and "Transcript" in lead and f"Why the score is {score}" in lead
    assert "<b>Verdict: Prepare first</b>" in lead and "• Telemarketing and cold calling: " in lead

    fake_api.send_text(ADMIN, "/lead 999")
    fake_api.wait_for_message(ADMIN, contains="No conversation 999")

    mark = fake_api.mark()
    fake_api.send_text(ADMIN, "/export")
    fake_api.wait_for(lambda method, params: method == "sendDocument", since=mark)
    name, content = fake_api.documents(ADMIN)[-1]
    assert name.endswith(".csv")
    rows = list(csv.DictReader(io.StringIO(content.decode("utf-8"))))
    assert [row["id"] for row in rows] == ["1", "2"] and rows[0]["ref"] == "rep_alice"
    assert (rows[0]["advice_verdict"], rows[1]["advice_verdict"]) == ("prepare_first", "")


@pytest.mark.parametrize("command", ["/stats", "/leads", "/lead 1", "/export"])
def test_admin_commands_answer_anyone_else_like_an_unknown_command(fake_api, sales_bot, command):
    fake_api.send_text(PROSPECT, "/nonsense")
    unknown = fake_api.wait_for_message(PROSPECT, contains="know that command")["text"]
    mark = fake_api.mark()
    fake_api.send_text(PROSPECT, command)
    fake_api.wait_for(lambda method, params: method == "sendMessage" and params.get("chat_id") == PROSPECT,
                      since=mark)
    assert fake_api.messages(PROSPECT)[-1]["text"] == unknown
    assert not fake_api.documents(PROSPECT)


def set_idle(db: Path, user_id: int, hours: float) -> None:
    with sqlite3.connect(db) as connection:
        connection.execute(
            "UPDATE conversations SET updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now', ?) WHERE user_id = ?",
            [f"-{hours * 3600:.0f} seconds", str(user_id)])


def test_an_idle_conversation_gets_one_reminder_across_restarts(fake_api, start_bot, tmp_path: Path):
    db = tmp_path / "advisor.db"
    bot = start_bot(fake_api, env=SETTINGS, db=db)
    fake_api.send_text(PROSPECT, "/start")
    fake_api.wait_for_message(PROSPECT, contains="Question 1 of")
    type_answers(fake_api, PROSPECT, ["3", "3"])
    assert bot.stop() == 0

    set_idle(db, PROSPECT, hours=2)
    bot = start_bot(fake_api, env=SETTINGS, db=db)
    fake_api.wait_for_message(PROSPECT, contains="Still there?")
    reminder_question = fake_api.wait_for_message(PROSPECT, contains="Question 3 of")
    assert bot.stop() == 0

    bot = start_bot(fake_api, env=SETTINGS, db=db)  # restarted again: no second reminder
    fake_api.send_text(PROSPECT, "1")  # and the person continues where they stopped
    fake_api.wait_for_message(PROSPECT, contains="Question 4 of")
    assert bot.stop() == 0
    assert sum("Still there?" in m["text"] for m in fake_api.messages(PROSPECT)) == 1
    assert reminder_question["reply_markup"]  # the question came back with its buttons
    with sqlite3.connect(db) as connection:
        assert connection.execute("SELECT nudged_at IS NOT NULL FROM conversations").fetchone() == (1,)
    assert fake_api.refusals == []


def test_a_conversation_idle_for_a_week_counts_as_abandoned(fake_api, start_bot, tmp_path: Path):
    db = tmp_path / "advisor.db"
    bot = start_bot(fake_api, env=SETTINGS, db=db)
    fake_api.send_text(PROSPECT, "/start")
    fake_api.wait_for_message(PROSPECT, contains="Question 1 of")
    assert bot.stop() == 0
    set_idle(db, PROSPECT, hours=8 * 24)
    bot = start_bot(fake_api, env=SETTINGS, db=db)
    fake_api.send_text(ADMIN, "/stats")  # handled after the startup check: by then it has run
    fake_api.wait_for_message(ADMIN, contains="Last 30 days")
    assert bot.stop() == 0
    with sqlite3.connect(db) as connection:
        assert connection.execute("SELECT status FROM conversations").fetchone() == ("abandoned",)
    assert not any("Still there?" in m["text"] for m in fake_api.messages(PROSPECT))


def test_reminders_can_be_switched_off(fake_api, start_bot, tmp_path: Path):
    db = tmp_path / "advisor.db"
    settings = {**SETTINGS, "ADVISOR_NUDGE_AFTER": "off"}
    bot = start_bot(fake_api, env=settings, db=db)
    fake_api.send_text(PROSPECT, "/start")
    fake_api.wait_for_message(PROSPECT, contains="Question 1 of")
    assert bot.stop() == 0
    set_idle(db, PROSPECT, hours=30)
    bot = start_bot(fake_api, env=settings, db=db)
    fake_api.send_text(PROSPECT, "/help")
    fake_api.wait_for_message(PROSPECT, contains="/forget")
    assert bot.stop() == 0
    assert not any("Still there?" in m["text"] for m in fake_api.messages(PROSPECT))


@pytest.mark.parametrize(("name", "value"), [("ADVISOR_SALES_CHAT_ID", "sales"), ("ADVISOR_ADMIN_IDS", "7,x"),
                                             ("ADVISOR_NUDGE_AFTER", "soon")])
def test_bad_sales_settings_are_one_line_errors(fake_api, name, value):
    from tests.conftest import run_bot

    result = run_bot("telegram", env={"TELEGRAM_BOT_TOKEN": fake_api.token, "TELEGRAM_API_URL": fake_api.url,
                                      name: value})
    assert result.returncode != 0
    assert name in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


class _SalesChat:
    """A stand-in for the Bot: records the cards, or fails the way it is told to."""

    def __init__(self, failure: Exception | None = None):
        self.failure = failure
        self.cards: list[str] = []

    async def send_message(self, chat_id: int, text: str, **kwargs: object) -> None:
        assert chat_id == SALES_CHAT
        if self.failure is not None:
            raise self.failure
        self.cards.append(text)


async def test_lead_alerts_wait_in_the_outbox_through_a_crash_and_a_network_failure(service):
    """A card queued when the prospect finished is sent after a restart; a network failure keeps it
    queued; a refusal (the bot was removed from the group) drops it; forgetting the person drops it."""
    from telegram.error import Forbidden, TimedOut

    from advisor.channels.telegram import Options, TelegramChannel

    store = service.store
    conversation = service.open("telegram", str(PROSPECT), "rep_alice").conversation
    crashed = TelegramChannel(service, Options(sales_chat_id=SALES_CHAT))
    crashed.queued(store.queue_alert(conversation.id, "completed"), "Tom")  # ... and the process died here
    assert [event for _, _, event in store.pending_alerts()] == ["completed"]

    restarted = TelegramChannel(service, Options(sales_chat_id=SALES_CHAT))
    assert await restarted.deliver_alerts(_SalesChat(TimedOut())) is True  # try again later
    assert len(store.pending_alerts()) == 1
    sales = _SalesChat()
    assert await restarted.deliver_alerts(sales) is False
    assert len(sales.cards) == 1 and "rep_alice" in sales.cards[0]
    assert "Tom" not in sales.cards[0]  # the Telegram name lived in the crashed process only
    assert store.pending_alerts() == []

    restarted.queued(store.queue_alert(conversation.id, "expert"), "Tom")
    assert await restarted.deliver_alerts(_SalesChat(Forbidden("bot was kicked from the supergroup chat"))) is False
    assert store.pending_alerts() == []  # refused for good: not retried forever

    restarted.queued(store.queue_alert(conversation.id, "contact"), "Tom")
    assert store.forget("telegram", str(PROSPECT)) == 1
    sales = _SalesChat()
    assert await restarted.deliver_alerts(sales) is False
    assert sales.cards == [] and store.pending_alerts() == []


def test_without_a_sales_chat_nothing_is_queued(service):
    from advisor.channels.telegram import Options, TelegramChannel

    channel = TelegramChannel(service, Options(sales_chat_id=None))
    assert channel.alerts("completed") is None and service.cards_per_person_a_day is None
    outcome = service.open("telegram", str(PROSPECT))
    for line in SALES_TEAM:
        outcome = service.answer(outcome.conversation, line)
    assert outcome.completed and outcome.alert_id is None and service.store.pending_alerts() == []


def test_a_completion_and_its_lead_card_are_one_transaction(service):
    """A kill between the completion and its card lost the card: now both commit together or neither."""
    import sqlite3

    import pytest

    from advisor.channels.telegram import Options, TelegramChannel

    TelegramChannel(service, Options(sales_chat_id=SALES_CHAT))
    outcome = service.open("telegram", str(PROSPECT))
    for line in SALES_TEAM:
        outcome = service.answer(outcome.conversation, line)
    assert outcome.completed and [a for a, _, _ in service.store.pending_alerts()] == [outcome.alert_id]
    # the card cannot be queued (here: its table is gone): the completion is not committed either
    second = service.open("telegram", str(PROSPECT + 1))
    for line in SALES_TEAM[:-1]:
        second = service.answer(second.conversation, line)
    service.store.db.execute("ALTER TABLE lead_alerts RENAME TO lead_alerts_gone")
    with pytest.raises(sqlite3.OperationalError):
        service.answer(second.conversation, SALES_TEAM[-1])
    assert service.store.get(second.conversation.id).status == "in_progress"


async def test_a_card_that_cannot_be_made_is_dropped_and_does_not_hold_back_the_next(service, monkeypatch):
    from advisor.channels.telegram import Options, TelegramChannel

    channel = TelegramChannel(service, Options(sales_chat_id=SALES_CHAT))
    broken = service.open("telegram", "5001", "rep_broken").conversation
    fine = service.open("telegram", "5002", "rep_fine").conversation
    channel.queued(service.store.queue_alert(broken.id, "completed"), None)
    channel.queued(service.store.queue_alert(fine.id, "completed"), None)
    render = channel.renderer.telegram

    def telegram(macro: str, **context: object) -> str:
        if macro == "lead_card" and context.get("ref") == "rep_broken":
            raise KeyError("readiness_score")  # e.g. a recommendation stored by an older version
        return render(macro, **context)

    monkeypatch.setattr(channel.renderer, "telegram", telegram)
    sales = _SalesChat()
    assert await channel.deliver_alerts(sales) is False
    assert len(sales.cards) == 1 and "rep_fine" in sales.cards[0]
    assert service.store.pending_alerts() == []



def _ids(db: Path, status: str) -> list[int]:
    with sqlite3.connect(db) as connection:
        return [row[0] for row in connection.execute("SELECT id FROM conversations WHERE status = ?", [status])]


def _outbox_drained(db: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with sqlite3.connect(db) as connection:
            if connection.execute("SELECT COUNT(*) FROM lead_alerts").fetchone()[0] == 0:
                return
        time.sleep(0.1)
    raise AssertionError("lead cards still queued after 20 s")


def test_a_card_that_reaches_the_sales_chat_after_forget_is_removed_at_once(fake_api, start_bot, tmp_path: Path):
    # a fresh attack: a card waiting for the group's pace was sent after /forget, and stayed
    fake_api.add_chat(SALES_CHAT, first_name="Sales", chat_type="supergroup")
    bot = start_bot(fake_api, env=SETTINGS, db=tmp_path / "advisor.db")
    slow = threading.Event()

    def pace(method: str, params: dict) -> None:
        if method == "sendMessage" and params.get("chat_id") == SALES_CHAT and not slow.is_set():
            slow.set()
            time.sleep(3)  # the card waits, as behind the group's pace or a 429

    fake_api.before_call = pace
    complete(fake_api, PROSPECT, first_name="Tom")
    assert slow.wait(10)
    fake_api.send_text(PROSPECT, "/forget")
    confirm = fake_api.wait_for_message(PROSPECT, contains="This cannot be undone")
    yes = next(data for text, data in fake_api.buttons(confirm) if text.startswith("Yes"))
    fake_api.press(PROSPECT, confirm["message_id"], yes)
    fake_api.wait_for_message(PROSPECT, contains="deleted. /start begins anew")
    fake_api.wait_for(lambda m, p: m == "deleteMessage" and p["chat_id"] == SALES_CHAT, timeout=15)
    assert fake_api.messages(SALES_CHAT) == []  # the card that arrived late went at once
    _outbox_drained(tmp_path / "advisor.db")
    with sqlite3.connect(tmp_path / "advisor.db") as connection:
        assert connection.execute("SELECT COUNT(*) FROM sent_cards").fetchone() == (0,)
    assert "Traceback" not in bot.output()


def test_a_forged_consent_makes_no_card_where_the_advice_was_not_shown_or_the_question_not_asked(
        fake_api, sales_bot, tmp_path: Path):
    db = tmp_path / "advisor.db"
    fake_api.send_text(PROSPECT, "/start")
    question = fake_api.wait_for_message(PROSPECT, contains="Question 1 of")
    for _ in range(3):  # the flood: forge consent on one's own unfinished conversation, start over, again
        [open_id] = _ids(db, "in_progress")
        fake_api.press(PROSPECT, question["message_id"], f"c:{open_id}:yes", strict=False)
        tw.barrier(fake_api, PROSPECT)
        last = fake_api.messages(PROSPECT)[-1]["message_id"]
        fake_api.send_text(PROSPECT, "/restart")
        question = fake_api.wait_for_message(PROSPECT, contains="Question 1 of", after=last)
    type_answers(fake_api, PROSPECT, SALES_TEAM)  # the advice is shown, but the consent question never asked
    what_next = fake_api.wait_for_message(PROSPECT, contains="What next?")
    [finished] = _ids(db, "completed")
    fake_api.press(PROSPECT, what_next["message_id"], f"c:{finished}:yes", strict=False)
    tw.barrier(fake_api, PROSPECT)
    fake_api.wait_for_message(SALES_CHAT, contains="New recommendation")
    _outbox_drained(db)
    cards = [m["plain"] for m in fake_api.messages(SALES_CHAT)]
    assert not any("wants to talk to an expert" in card for card in cards), cards
    with sqlite3.connect(db) as connection:
        assert connection.execute("SELECT COUNT(*) FROM conversations WHERE consent_at IS NOT NULL").fetchone() == (0,)


def test_one_person_makes_lead_cards_for_at_most_three_conversations_a_day(fake_api, sales_bot, tmp_path: Path):
    complete(fake_api, PROSPECT)
    for _ in range(3):
        last = fake_api.messages(PROSPECT)[-1]["message_id"]
        fake_api.send_text(PROSPECT, "/restart")
        fake_api.wait_for_message(PROSPECT, contains="Question 1 of", after=last)
        type_answers(fake_api, PROSPECT, SALES_TEAM)
        fake_api.wait_for_message(PROSPECT, contains="What next?", after=last)
    assert len(_ids(tmp_path / "advisor.db", "completed")) == 4
    _outbox_drained(tmp_path / "advisor.db")
    cards = [m["plain"] for m in fake_api.messages(SALES_CHAT) if "New recommendation" in m["plain"]]
    assert len(cards) == 3, cards


def test_a_phone_book_contact_without_a_user_id_is_not_taken_as_the_persons_own(fake_api, sales_bot, tmp_path: Path):
    complete(fake_api, PROSPECT, first_name="Tom")
    ask_for_an_expert_and_consent(fake_api)
    fake_api.wait_for_message(PROSPECT, contains="share your phone number")
    person = {"id": PROSPECT, "is_bot": False, "first_name": "Tom"}
    fake_api.push_update({"message": {  # someone else's number from the phone book: no user_id
        "message_id": 999, "date": int(time.time()), "from": person,
        "chat": {"id": PROSPECT, "type": "private", "first_name": "Tom"},
        "contact": {"phone_number": "+15550100", "first_name": "Bob"}}})
    tw.barrier(fake_api, PROSPECT)
    _outbox_drained(tmp_path / "advisor.db")
    assert not any("shared contact details" in m["plain"] for m in fake_api.messages(SALES_CHAT))
    with sqlite3.connect(tmp_path / "advisor.db") as connection:
        assert connection.execute("SELECT contact FROM conversations").fetchall() == [(None,)]


@pytest.mark.parametrize("days_later", [0, 3])
def test_forget_removes_the_persons_lead_cards_from_the_sales_chat(fake_api, start_bot, tmp_path: Path,
                                                                   days_later):
    fake_api.add_chat(SALES_CHAT, first_name="Sales", chat_type="supergroup")
    bot = start_bot(fake_api, env=SETTINGS, db=tmp_path / "advisor.db")
    complete(fake_api, PROSPECT, first_name="Tom")
    card = fake_api.wait_for_message(SALES_CHAT, contains="New recommendation")
    _outbox_drained(tmp_path / "advisor.db")
    fake_api.clock_offset = days_later * 86400  # after 48 hours Telegram no longer lets the bot delete it
    fake_api.send_text(PROSPECT, "/forget")
    confirm = fake_api.wait_for_message(PROSPECT, contains="This cannot be undone")
    yes = next(data for text, data in fake_api.buttons(confirm) if text.startswith("Yes"))
    fake_api.press(PROSPECT, confirm["message_id"], yes)
    fake_api.wait_for_message(PROSPECT, contains="deleted. /start begins anew")
    tw.barrier(fake_api, PROSPECT)
    left = {m["message_id"]: m["plain"] for m in fake_api.messages(SALES_CHAT)}
    if days_later == 0:
        assert card["message_id"] not in left and fake_api.refusals == []
    else:
        assert left[card["message_id"]].startswith("This lead card was removed")
        assert [r.description for r in fake_api.refusals] == ["Bad Request: message can't be deleted"]
    assert "Traceback" not in bot.output()
    with sqlite3.connect(tmp_path / "advisor.db") as connection:
        assert connection.execute("SELECT COUNT(*) FROM sent_cards").fetchone() == (0,)
