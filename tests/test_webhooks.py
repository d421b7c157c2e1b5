"""Signed outgoing webhooks through the outbox: at least once, the same webhook-id on every retry,
backoff for 5xx and timeouts, no retry on other 4xx, Retry-After honoured, dead after a day, resent on
demand, delivered by the long-running process or by ``deliver`` from cron."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from advisor.channels.console import Console
from advisor.export import record
from advisor.outbound.deliver import DEAD_AFTER, Deliverer, backoff, client, deliver_due
from advisor.outbound.targets import takes
from advisor.outbound.webhooks import WebhookTarget
from advisor.service import build_service
from tests.conftest import run_bot_here
from tests.fake_receiver import Receiver
from tests.personas import SALES_TEAM

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
CONSENTED = [*SALES_TEAM[:-1], "Maria Lopez, maria@example.com"]


@pytest.fixture
def receiver():
    found = Receiver()
    yield found
    found.close()


@pytest.fixture
def hooked(tmp_path: Path, receiver: Receiver):
    """A service whose outbox queues events for the receiver, and its target."""
    target = WebhookTarget(receiver.url, SECRET)
    service = build_service(tmp_path / "advisor.db", events_for=takes({"webhook": target}))
    yield service, {"webhook": target}
    service.store.close()


def complete(service, user: str = "maria", lines: list[str] = CONSENTED):
    Console(service, io.StringIO("\n".join(lines) + "\n"), io.StringIO(), interactive=False).run(user)
    conversation = service.store.latest("console", user)
    assert conversation is not None and conversation.status == "completed"
    return conversation


def verified(headers: dict[str, str], body: bytes) -> dict:
    return Webhook(SECRET).verify(body, headers)


def test_a_completed_conversation_reaches_the_receiver_signed_with_the_export_record(hooked, receiver):
    service, targets = hooked
    conversation = complete(service)
    with client() as http:
        report = deliver_due(service.store, targets, http)
    assert report.delivered == 2  # completed, and contact.requested (the person gave their details)
    (first_headers, first), (_, second) = receiver.requests
    event = verified(first_headers, first)
    assert event["type"] == "conversation.completed"
    assert event["data"] == json.loads(json.dumps(record(service.store.get(conversation.id))))
    assert event["data"]["recommendation"]["contact"]["email"] == "maria@example.com"  # consented
    assert verified(receiver.requests[1][0], second)["type"] == "contact.requested"
    assert first_headers["webhook-id"].startswith("msg_") and first_headers["content-type"] == "application/json"
    with pytest.raises(WebhookVerificationError):  # signed with the secret, and only with it
        Webhook("whsec_" + base64.b64encode(bytes(32)).decode()).verify(first, first_headers)
    assert service.store.delivery_counts()["delivered"] == 2
    assert all(d.payload is None for d in service.store.deliveries())  # the body is not kept once delivered


def test_without_consent_the_event_carries_no_contact(hooked, receiver):
    service, targets = hooked
    complete(service, "tom", SALES_TEAM)
    with client() as http:
        deliver_due(service.store, targets, http)
    [(headers, body)] = receiver.requests  # completed only: nobody asked to be contacted
    data = verified(headers, body)["data"]
    assert data["recommendation"].get("contact") is None and "maria" not in body.decode()


def test_a_500_is_retried_later_with_the_same_webhook_id_and_body(hooked, receiver):
    service, targets = hooked
    complete(service, "tom", SALES_TEAM)
    receiver.answer(500, 503)
    start = datetime.now(UTC)
    with client() as http:
        first = deliver_due(service.store, targets, http, clock=lambda: start, rng=lambda: 1.0)
        assert first.retrying == 1 and len(receiver.requests) == 1
        [row] = service.store.deliveries()
        assert row.status == "pending" and row.attempts == 1 and row.last_status == 500
        wait = datetime.fromisoformat(row.next_at.replace("Z", "+00:00")) - start
        assert timedelta(seconds=29) <= wait <= timedelta(seconds=31)  # the first backoff, jitter at its top
        assert deliver_due(service.store, targets, http, clock=lambda: start).attempted == 0  # not due yet
        later = start + timedelta(minutes=1)
        second = deliver_due(service.store, targets, http, clock=lambda: later, rng=lambda: 1.0)
        assert second.retrying == 1  # 503: again later, twice as long
        [row] = service.store.deliveries()
        wait = datetime.fromisoformat(row.next_at.replace("Z", "+00:00")) - later
        assert timedelta(seconds=59) <= wait <= timedelta(seconds=61)
        third = deliver_due(service.store, targets, http, clock=lambda: later + timedelta(minutes=2))
        assert third.delivered == 1
    ids = {headers["webhook-id"] for headers, _ in receiver.requests}
    bodies = {body for _, body in receiver.requests}
    assert len(receiver.requests) == 3 and len(ids) == 1 and len(bodies) == 1  # the same event three times
    for headers, body in receiver.requests[-1:]:
        verified(headers, body)  # each attempt signed for its own time


def test_a_400_is_not_retried_and_shows_as_failed_until_resent(hooked, receiver, tmp_path):
    service, targets = hooked
    complete(service, "tom", SALES_TEAM)
    receiver.answer(400)
    with client() as http:
        assert deliver_due(service.store, targets, http).failed == 1
        later = datetime.now(UTC) + timedelta(hours=2)
        assert deliver_due(service.store, targets, http, clock=lambda: later).attempted == 0
    [row] = service.store.deliveries()
    assert (row.status, row.last_status) == ("failed", 400) and "webhook 400" in (row.last_detail or "")
    db = str(tmp_path / "advisor.db")
    shown = run_bot_here("deliveries", "--status", "failed", db=Path(db))
    assert shown.returncode == 0 and "failed" in shown.stdout and "conversation.completed" in shown.stdout
    assert "webhook 400" in shown.stdout
    resent = run_bot_here("deliveries", "--resend", str(row.id), db=Path(db))
    assert resent.returncode == 0 and "1 put back" in resent.stdout
    with client() as http:
        assert deliver_due(service.store, targets, http).delivered == 1
    assert len({h["webhook-id"] for h, _ in receiver.requests}) == 1  # resent as the same event
    assert run_bot_here("deliveries", "--resend", "999", db=Path(db)).returncode == 1


def test_429_and_408_wait_at_least_what_retry_after_asks(hooked, receiver):
    service, targets = hooked
    complete(service, "tom", SALES_TEAM)
    receiver.answer((429, {"Retry-After": "600"}))
    start = datetime.now(UTC)
    with client() as http:
        assert deliver_due(service.store, targets, http, clock=lambda: start, rng=lambda: 0.0).retrying == 1
    [row] = service.store.deliveries()
    wait = datetime.fromisoformat(row.next_at.replace("Z", "+00:00")) - start
    assert timedelta(seconds=599) <= wait <= timedelta(seconds=601) and row.last_status == 429


def test_timeouts_and_refused_connections_are_retried_and_dead_after_a_day(hooked):
    service, _ = hooked
    complete(service, "tom", SALES_TEAM)
    closed = {"webhook": WebhookTarget("http://127.0.0.1:9/nothing-listens", SECRET)}

    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("no answer", request=request)

    start = datetime.now(UTC)
    with httpx.Client(transport=httpx.MockTransport(timeout)) as http:
        assert deliver_due(service.store, closed, http, clock=lambda: start).retrying == 1
    [row] = service.store.deliveries()
    assert row.status == "pending" and "timeout" in (row.last_detail or "")
    with client() as http:
        late = start + DEAD_AFTER + timedelta(minutes=1)
        assert deliver_due(service.store, closed, http, clock=lambda: late).dead == 1
    [row] = service.store.deliveries()
    assert row.status == "dead" and "connection error" in (row.last_detail or "") and "gave up" in row.last_detail


def test_backoff_doubles_with_jitter_and_stops_growing_at_an_hour():
    assert [backoff(n, lambda: 1.0) for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert [backoff(n, lambda: 0.0) for n in (1, 2)] == [15, 30]  # between half and all of it
    assert backoff(30, lambda: 1.0) == 3600


def test_a_restart_sends_what_was_due(tmp_path, receiver):
    """Queued by a process that died before delivering: the next long-running process sends it."""
    target = WebhookTarget(receiver.url, SECRET)
    service = build_service(tmp_path / "advisor.db", events_for=takes({"webhook": target}))
    complete(service, "tom", SALES_TEAM)
    service.store.close()  # ... the process is gone, the event waits in the outbox
    deliverer = Deliverer(str(tmp_path / "advisor.db"), {"webhook": target}, poll=0.2).start()
    try:
        [(headers, body)] = receiver.wait(1)
        assert verified(headers, body)["type"] == "conversation.completed"
    finally:
        deliverer.stop()


def test_deliver_from_cron_sends_and_exits_0_and_the_secret_is_kept_nowhere(tmp_path, receiver):
    env = {"ADVISOR_WEBHOOK_URL": receiver.url, "ADVISOR_WEBHOOK_SECRET": SECRET}
    db = tmp_path / "advisor.db"
    walked = run_bot_here("console", stdin="\n".join(CONSENTED) + "\n", db=db, env=env)
    assert walked.returncode == 0 and receiver.requests == []  # the console only queues
    sent = run_bot_here("deliver", db=db, env=env)
    assert sent.returncode == 0 and "delivered 2" in sent.stdout
    assert len(receiver.requests) == 2
    again = run_bot_here("deliver", db=db, env=env)
    assert again.returncode == 0 and "delivered 0" in again.stdout and len(receiver.requests) == 2
    secret = SECRET.removeprefix("whsec_")
    exported = run_bot_here("export", "--format", "json", db=db, env=env)
    for text in (walked.stdout, walked.stderr, sent.stdout, sent.stderr, exported.stdout,
                 run_bot_here("deliveries", db=db, env=env).stdout):
        assert secret not in text
    with sqlite3.connect(db) as raw:
        dump = "\n".join(raw.iterdump())
    assert secret not in dump and "whsec_" not in dump


def test_a_wrong_secret_or_url_is_one_line(tmp_path):
    bad = run_bot_here("deliver", db=tmp_path / "a.db", env={"ADVISOR_WEBHOOK_URL": "http://127.0.0.1:9/x",
                                                             "ADVISOR_WEBHOOK_SECRET": "not-a-secret"})
    assert bad.returncode == 1 and "ADVISOR_WEBHOOK_SECRET must be whsec_" in bad.stderr
    assert "Traceback" not in bad.stderr
    missing = run_bot_here("deliver", db=tmp_path / "a.db", env={"ADVISOR_WEBHOOK_URL": "http://127.0.0.1:9/x"})
    assert missing.returncode == 1 and "without ADVISOR_WEBHOOK_SECRET" in missing.stderr
    url = run_bot_here("deliver", db=tmp_path / "a.db", env={"ADVISOR_WEBHOOK_URL": "ftp://x", "ADVISOR_WEBHOOK_SECRET":
                                                             SECRET})
    assert url.returncode == 1 and "ADVISOR_WEBHOOK_URL must be an http(s) URL" in url.stderr
    nothing = run_bot_here("deliver", db=tmp_path / "a.db")
    assert nothing.returncode == 0 and "nothing to deliver to" in nothing.stderr


def test_forget_drops_what_waits_and_sends_conversation_forgotten(hooked, receiver):
    service, targets = hooked
    conversation = complete(service)
    assert service.store.delivery_counts()["pending"] == 2
    assert service.forget("console", "maria").conversations == 1
    [row] = service.store.deliveries()  # the completed event with the answers and contact is gone
    assert row.event_type == "conversation.forgotten" and row.payload["data"] == {"id": conversation.id}
    with client() as http:
        deliver_due(service.store, targets, http)
    [(headers, body)] = receiver.requests
    assert verified(headers, body) == {"type": "conversation.forgotten", "timestamp": row.payload["timestamp"],
                                       "data": {"id": conversation.id}}


def test_an_idle_conversation_sends_conversation_abandoned(hooked, receiver):
    service, targets = hooked
    Console(service, io.StringIO("3\n2\n"), io.StringIO(), interactive=False).run("idle")
    assert service.store.abandon_idle("9999-01-01T00:00:00Z") == 1
    with client() as http:
        deliver_due(service.store, targets, http)
    [(headers, body)] = receiver.requests
    event = verified(headers, body)
    assert event["type"] == "conversation.abandoned" and event["data"]["status"] == "abandoned"


def test_with_nothing_configured_nothing_is_queued(tmp_path):
    service = build_service(tmp_path / "advisor.db")
    try:
        complete(service, "tom", SALES_TEAM)
        assert service.store.delivery_counts() == {"pending": 0, "delivered": 0, "failed": 0, "dead": 0}
    finally:
        service.store.close()


def test_the_telegram_bot_delivers_by_itself(fake_api, start_bot, tmp_path, receiver):
    """The long-running process sends what its conversations queue, without a cron."""
    import tests.telegram_walk as tw

    bot = start_bot(fake_api, env={"ADVISOR_WEBHOOK_URL": receiver.url, "ADVISOR_WEBHOOK_SECRET": SECRET},
                    db=tmp_path / "advisor.db")
    chat = 4242
    tw.start(fake_api, chat)
    tw.answer_walk(fake_api, chat, SALES_TEAM)
    [(headers, body)] = receiver.wait(1)
    event = verified(headers, body)
    assert event["type"] == "conversation.completed" and event["data"]["channel"] == "telegram"
    assert event["data"]["user_id"] == str(chat)
    assert SECRET.removeprefix("whsec_") not in bot.output()


def test_the_web_chat_delivers_by_itself(tmp_path, receiver):
    from tests.test_web import Person, WebServed

    served = WebServed(tmp_path / "advisor.db",
                       env={"ADVISOR_WEBHOOK_URL": receiver.url, "ADVISOR_WEBHOOK_SECRET": SECRET})
    try:
        Person(served.url, "/?ref=alice").walk(SALES_TEAM)
        [(headers, body)] = receiver.wait(1)
        event = verified(headers, body)
        assert (event["type"], event["data"]["channel"], event["data"]["ref"]) == (
            "conversation.completed", "web", "alice")
    finally:
        served.stop()


def test_deliver_sends_to_hubspot_and_pipedrive_and_a_refusal_stays_visible(tmp_path):
    """Configured by token and URL, as a sales team would: the records reach both CRMs' fakes; a bad
    token is a 401, failed and not retried, listed by `deliveries` without the token."""
    from tests.fake_hubspot import FakeHubSpot
    from tests.fake_pipedrive import FakePipedrive

    db = tmp_path / "advisor.db"
    with FakeHubSpot() as hubspot, FakePipedrive() as pipedrive:
        env = {"ADVISOR_HUBSPOT_TOKEN": hubspot.token, "ADVISOR_HUBSPOT_URL": hubspot.url,
               "ADVISOR_PIPEDRIVE_TOKEN": "wrong-token", "ADVISOR_PIPEDRIVE_URL": pipedrive.url,
               "ADVISOR_DASHBOARD_URL": "https://review.example.com"}
        assert run_bot_here("console", stdin="\n".join(CONSENTED) + "\n", db=db, env=env).returncode == 0
        sent = run_bot_here("deliver", db=db, env=env)
        # HubSpot: the completion; its contact.requested waits for HubSpot's search to see what it made
        assert sent.returncode == 0 and "delivered 1" in sent.stdout and "failed 2" in sent.stdout
        [contact] = hubspot.objects("contacts")
        assert contact["properties"]["email"] == "maria@example.com"
        [deal] = hubspot.objects("deals")
        assert "https://review.example.com/conversations/1" in deal["properties"]["description"]
        assert pipedrive.leads == {}  # refused: the token is wrong
        listed = run_bot_here("deliveries", "--status", "failed", db=db, env=env)
        assert "pipedrive" in listed.stdout and "401" in listed.stdout and "wrong-token" not in listed.stdout
        env["ADVISOR_PIPEDRIVE_TOKEN"] = pipedrive.token  # fixed: resend
        assert run_bot_here("deliveries", "--resend", "all", db=db, env=env).returncode == 0
        from advisor.outbound.targets import targets_of
        from advisor.settings import Settings
        from advisor.store import Store

        later = datetime.now(UTC) + timedelta(seconds=61)  # past both CRMs' search lag
        with contextlib.closing(Store.open(db)) as store, client() as http:
            first = deliver_due(store, targets_of(Settings.read(env).outbound), http, clock=lambda: later)
            second = deliver_due(store, targets_of(Settings.read(env).outbound), http,
                                 clock=lambda: later + timedelta(seconds=61))
        assert first.delivered + second.delivered == 3 and store_counts(db)["delivered"] == 4
        [lead] = pipedrive.leads.values()
        assert lead["title"].startswith("Outsourcing Advisor #1")
        assert len(hubspot.objects("deals")) == 1  # HubSpot was not sent anything twice


def test_two_processes_never_send_the_same_due_event_at_once(hooked, receiver, tmp_path):
    """The Telegram bot, the web chat and the dashboard may deliver from one database: a row is taken
    for one attempt by one of them."""
    from advisor.store import Store

    service, targets = hooked
    complete(service, "tom", SALES_TEAM)
    [due] = service.store.due_deliveries("9999-01-01T00:00:00Z")
    other = Store.open(tmp_path / "advisor.db")
    try:
        assert other.claim_delivery(due, "2099-01-01T00:00:00Z")
        assert not service.store.claim_delivery(due, "2099-01-01T00:00:00Z")  # already taken
        with client() as http:
            assert deliver_due(service.store, targets, http).attempted == 0  # not due again before the lease ends
    finally:
        other.close()
    assert receiver.requests == []


def store_counts(db: Path) -> dict[str, int]:
    from advisor.store import Store

    with contextlib.closing(Store.open(db)) as store:
        return store.delivery_counts()


def test_a_process_without_a_targets_settings_leaves_its_events_waiting(hooked, tmp_path):
    service, _ = hooked
    complete(service, "tom", SALES_TEAM)
    nothing = run_bot_here("deliver", db=tmp_path / "advisor.db")  # cron without the environment
    assert nothing.returncode == 0 and "nothing to deliver to" in nothing.stderr
    with client() as http:
        assert deliver_due(service.store, {}, http).attempted == 0  # e.g. a dashboard without the webhook's settings
    assert service.store.delivery_counts()["pending"] == 1


def test_a_resent_event_gets_a_new_day_and_a_late_result_never_overwrites_a_newer_one(hooked, receiver):
    service, targets = hooked
    complete(service, "tom", SALES_TEAM)
    late = datetime.now(UTC) + timedelta(days=2)
    receiver.answer(503, 503)
    with client() as http:
        assert deliver_due(service.store, targets, http, clock=lambda: late).dead == 1  # more than a day on
        assert service.store.resend() == 1
        assert deliver_due(service.store, targets, http).retrying == 1  # resent: a day from now, not dead
    [row] = service.store.deliveries()
    assert row.status == "pending"
    # an attempt that outlived its lease: its result does not replace the row's newer state
    assert not service.store.delivery_done(row.id, "failed", 400, "late", claimed_until="2000-01-01T00:00:00Z")
    assert service.store.deliveries()[0].status == "pending"
