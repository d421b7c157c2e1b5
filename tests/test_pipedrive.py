"""The Pipedrive target against a local fake of Pipedrive's API (tests/fake_pipedrive.py): the person,
the lead and its notes, idempotent retries, an anonymous prospect with nothing personal, and what each
refusal means for the outbox (retried or not, never the token in a URL or a detail)."""

from __future__ import annotations

import copy
import json
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from advisor.outbound.base import Event, Result, Target
from advisor.outbound.pipedrive import Pipedrive, split_name
from tests.fake_pipedrive import FakePipedrive

DASHBOARD = "https://advisor.example.com/dashboard/"
LINK_1 = "https://advisor.example.com/dashboard/conversations/1"
PAINS = "our sales team also does telemarketing, appointment setting and content marketing, so we close fewer deals"

# a conversation as `python bot.py export --format json` gives it (cut down from a real one)
RECORD: dict[str, Any] = {
    "id": 1,
    "channel": "console",
    "user_id": "maria_tg_4242",
    "ref": "spring_promo",
    "status": "completed",
    "started_at": "2026-11-30T16:46:49Z",
    "completed_at": "2026-11-30T16:46:49Z",
    "dialog_version": 2,
    "language": "en",
    "answers": {
        "stage": "growing", "size": "medium", "industry": "software", "core": "sales", "pains": PAINS,
        "tasks": ["telemarketing", "appointment_setting", "content_marketing"], "hours": 30,
        "contact": {"name": "Maria Lopez", "email": "maria@example.com", "phone": None, "consent": True},
    },
    "recommendation": {
        "readiness_score": 39,
        "profile": "reactive",
        "profile_name": "reactive",
        "verdict": "prepare_first",
        "verdict_name": "Prepare first",
        "verdict_text": "Worth handing over once the work is defined well enough to hold a provider to it.",
        "functions": [
            {"id": "telemarketing", "name": "Telemarketing and cold calling", "score": 93, "suggested": False,
             "approach": {"id": "managed_service", "name": "Managed service"}},
            {"id": "recruiting", "name": "Recruiting and sourcing", "score": 91, "suggested": True,
             "approach": {"id": "specialist_vendor", "name": "Specialist vendor"}},
            {"id": "appointment_setting", "name": "Appointment setting", "score": 89, "suggested": False,
             "approach": {"id": "managed_service", "name": "Managed service"}},
            {"id": "content_marketing", "name": "Content marketing", "score": 75, "suggested": False,
             "approach": {"id": "managed_service", "name": "Managed service"}},
            {"id": "bookkeeping", "name": "Bookkeeping", "score": 60, "suggested": False,
             "approach": {"id": "automate_first", "name": "Automate first"}},
        ],
        "said": PAINS,
        "contact": {"name": "Maria Lopez", "email": "maria@example.com", "phone": None, "consent": True},
        "rules_version": "2-8aa43c44fe2f",
    },
    "summary": f'A company of 11 to 50 people.\nIn their words: "{PAINS}"\nContact: left, with consent.',
}


def record(conversation_id: int = 1, contact: dict[str, Any] | str | None = "keep", **changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(RECORD)
    data["id"] = conversation_id
    data.update(changes)
    if contact != "keep":
        if contact is None:
            data["recommendation"].pop("contact")
            data["answers"]["contact"] = None
        else:
            data["recommendation"]["contact"] = contact
            data["answers"]["contact"] = contact
    return data


def event(data: dict[str, Any], kind: str = "conversation.completed", event_id: str = "msg_1") -> Event:
    return Event(event_id, kind, "2026-11-30T16:47:00Z", data)


@pytest.fixture
def fake() -> Iterator[FakePipedrive]:
    with FakePipedrive() as running:
        yield running


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as opened:
        yield opened


@pytest.fixture
def target(fake: FakePipedrive) -> Pipedrive:
    return Pipedrive(fake.token, fake.url, DASHBOARD)


def only(values: Any) -> Any:
    [value] = list(values)
    return value


def sent_text(fake: FakePipedrive) -> str:
    """Everything the target sent: request targets (paths and queries) and bodies."""
    return "\n".join(f"{r.target} {json.dumps(r.json)}" for r in fake.requests)


# -- the interface -------------------------------------------------------------------------------------
def test_it_takes_completed_conversations_and_requests_to_talk_to_an_expert_only(fake: FakePipedrive,
                                                                                  client: httpx.Client):
    target: Target = Pipedrive(fake.token, fake.url)
    assert target.name == "pipedrive"
    assert target.accepts("conversation.completed") and target.accepts("contact.requested")
    assert not target.accepts("conversation.abandoned") and not target.accepts("conversation.forgotten")
    result = target.send(event(record(), "conversation.forgotten"), client)
    assert not result.ok and not result.retry
    assert fake.requests == []


def test_a_name_splits_into_first_and_last_name():
    assert split_name("Maria Lopez") == ("Maria", "Lopez")
    assert split_name("  María José   García López ") == ("María", "José García López")
    assert split_name("Cher") == ("Cher", "")


# -- with consent ---------------------------------------------------------------------------------------
def test_a_consented_conversation_becomes_a_person_a_lead_and_a_note_and_a_resend_changes_nothing(
        fake: FakePipedrive, target: Pipedrive, client: httpx.Client):
    result = target.send(event(record()), client)
    assert result.ok, result.detail
    assert result.status in (200, 201)

    person = only(fake.persons.values())
    assert (person["name"], person["first_name"], person["last_name"]) == ("Maria Lopez", "Maria", "Lopez")
    assert [e["value"] for e in person["emails"]] == ["maria@example.com"]
    post = only(r for r in fake.requests if r.method == "POST" and r.path == "/api/v2/persons")
    assert (post.json["first_name"], post.json["last_name"]) == ("Maria", "Lopez")  # split by us

    lead = only(fake.leads.values())
    assert lead["title"] == "Outsourcing Advisor #1 (spring_promo)"
    assert lead["person_id"] == person["id"] and lead["organization_id"] is None
    assert not fake.organizations

    note = only(fake.notes.values())
    assert note["lead_id"] == lead["id"]
    content = note["content"]
    for expected in ("Outsourcing Advisor #1: summary", "Readiness score: 39/100", "Profile: reactive",
                     "Prepare first", "prepare_first", "Telemarketing and cold calling: Managed service",
                     "Appointment setting: Managed service", "Content marketing: Managed service",
                     "Ref: spring_promo", "Language: en", f'href="{LINK_1}"'):
        assert expected in content, expected
    assert "Recruiting" not in content  # a task the advice suggested, not one of theirs
    assert "Bookkeeping" not in content  # past the top three
    assert PAINS not in content and "maria_tg_4242" not in content

    # the outbox resends the same event (a lost answer, a retry): nothing is written again
    before = (copy.deepcopy(fake.persons), copy.deepcopy(fake.leads), copy.deepcopy(fake.notes))
    fake.clear_requests()
    again = target.send(event(record()), client)
    assert again.ok, again.detail
    assert fake.writes() == []
    assert (fake.persons, fake.leads, fake.notes) == before


def test_an_existing_contact_with_the_same_email_is_updated_not_duplicated(fake: FakePipedrive,
                                                                           target: Pipedrive, client: httpx.Client):
    known = fake.add_person("M. Lopez", email="MARIA@example.com", phone="+34 600 111 222")
    contact = {"name": "Maria Lopez", "email": "maria@example.com", "phone": "+34 699 000 999", "consent": True}
    result = target.send(event(record(contact=contact)), client)
    assert result.ok, result.detail

    person = only(fake.persons.values())
    assert person["id"] == known
    assert (person["name"], person["first_name"], person["last_name"]) == ("Maria Lopez", "Maria", "Lopez")
    assert [e["value"] for e in person["emails"]] == ["MARIA@example.com"]
    # the new phone is added; the one a sales rep typed in keeps its label and stays primary
    assert person["phones"] == [{"value": "+34 600 111 222", "label": "mobile", "primary": True},
                                {"value": "+34 699 000 999", "label": "work", "primary": False}]
    assert only(fake.leads.values())["person_id"] == known
    assert not [r for r in fake.requests if r.method == "POST" and r.path == "/api/v2/persons"]


def test_a_contact_with_a_phone_only_is_found_by_the_phone_on_a_resend(fake: FakePipedrive, target: Pipedrive,
                                                                       client: httpx.Client):
    contact = {"name": "Jon", "email": None, "phone": "+1 555 0100", "consent": True}
    for _ in range(2):
        result = target.send(event(record(7, contact=contact)), client)
        assert result.ok, result.detail
    person = only(fake.persons.values())
    assert (person["first_name"], person["last_name"], person["emails"]) == ("Jon", "", [])
    assert [p["value"] for p in person["phones"]] == ["+1 555 0100"]
    assert len(fake.leads) == 1 and len(fake.notes) == 1


# -- without consent ------------------------------------------------------------------------------------
@pytest.mark.parametrize("contact", [None, {"name": "Maria Lopez", "email": "maria@example.com", "phone": None,
                                            "consent": False},
                                     {"name": "Maria Lopez", "email": None, "phone": None, "consent": True}])
def test_without_consent_the_lead_is_anonymous_and_carries_nothing_personal(fake: FakePipedrive, target: Pipedrive,
                                                                           client: httpx.Client, contact: Any):
    data = record(2, contact=contact)
    if contact is not None and contact.get("consent") is False:  # refused: nothing at the contact step
        data["answers"]["contact"] = {"consent": False}
    for _ in range(2):  # and a resend finds the organization and the lead again
        result = target.send(event(data), client)
        assert result.ok, result.detail

    assert not fake.persons
    org = only(fake.organizations.values())
    assert org["name"] == "Outsourcing Advisor prospect #2"
    lead = only(fake.leads.values())
    assert (lead["title"], lead["organization_id"], lead["person_id"]) == (
        "Outsourcing Advisor #2 (spring_promo)", org["id"], None)
    content = only(fake.notes.values())["content"]
    assert "Readiness score: 39/100" in content and "Telemarketing and cold calling" in content
    assert "https://advisor.example.com/dashboard/conversations/2" in content

    sent = sent_text(fake)
    for personal in ("Maria", "Lopez", "maria@example.com", "maria_tg_4242", "telemarketing, appointment",
                     "close fewer deals", "In their words"):
        assert personal not in sent, personal
    assert not [r for r in fake.requests if "persons" in r.path]


def test_without_a_dashboard_or_a_ref_there_is_no_link_and_no_brackets(fake: FakePipedrive, client: httpx.Client):
    result = Pipedrive(fake.token, fake.url).send(event(record(3, ref=None)), client)
    assert result.ok, result.detail
    assert only(fake.leads.values())["title"] == "Outsourcing Advisor #3"
    content = only(fake.notes.values())["content"]
    assert "href" not in content and "Ref: -" in content


# -- contact.requested ----------------------------------------------------------------------------------
def test_contact_requested_adds_a_note_to_the_same_lead_once(fake: FakePipedrive, target: Pipedrive,
                                                             client: httpx.Client):
    assert target.send(event(record()), client).ok
    lead = only(fake.leads.values())
    for _ in range(2):
        result = target.send(event(record(), "contact.requested", "msg_2"), client)
        assert result.ok, result.detail
    assert only(fake.leads.values()) == lead and len(fake.persons) == 1
    notes = sorted(n["content"] for n in fake.notes.values())
    assert len(notes) == 2
    expert = only(n for n in notes if "asked to talk to an expert" in n)
    assert "Outsourcing Advisor #1: asked to talk to an expert" in expert and LINK_1 in expert
    assert all(n["lead_id"] == lead["id"] for n in fake.notes.values())


def test_contact_requested_first_makes_the_lead_with_both_notes(fake: FakePipedrive, target: Pipedrive,
                                                                client: httpx.Client):
    result = target.send(event(record(), "contact.requested"), client)
    assert result.ok, result.detail
    assert len(fake.persons) == 1 and len(fake.leads) == 1
    contents = [n["content"] for n in fake.notes.values()]
    assert any("#1: summary" in c for c in contents) and any("asked to talk to an expert" in c for c in contents)


def test_contact_left_after_an_anonymous_completion_links_the_person_to_the_lead(fake: FakePipedrive,
                                                                                 target: Pipedrive,
                                                                                 client: httpx.Client):
    assert target.send(event(record(4, contact=None)), client).ok
    lead_id = only(fake.leads)
    contact = {"name": "Maria Lopez", "email": "maria@example.com", "phone": None, "consent": True}
    result = target.send(event(record(4, contact=contact), "contact.requested", "msg_2"), client)
    assert result.ok, result.detail
    person = only(fake.persons.values())
    assert only(fake.leads) == lead_id
    assert fake.leads[lead_id]["person_id"] == person["id"]
    assert any(r.method == "PATCH" and r.path == f"/v1/leads/{lead_id}" for r in fake.requests)


# -- refusals: what the outbox does with them -----------------------------------------------------------
def test_a_bad_token_is_refused_for_good_and_nothing_is_written(fake: FakePipedrive, client: httpx.Client):
    result = Pipedrive("not-the-token", fake.url, DASHBOARD).send(event(record()), client)
    assert (result.ok, result.retry, result.status) == (False, False, 401)
    assert result.detail.startswith("pipedrive find person 401")
    assert not fake.persons and not fake.leads and fake.writes() == []
    assert only(fake.refusals).status == 401


@pytest.mark.parametrize(("retry_after", "expected"), [(7, 7.0), (None, 2.0)])
def test_a_rate_limit_is_retried_after_the_time_pipedrive_asks(fake: FakePipedrive, target: Pipedrive,
                                                               client: httpx.Client, retry_after: int | None,
                                                               expected: float):
    fake.limit(next_requests=1, retry_after=retry_after, when="POST /v1/leads")
    result = target.send(event(record()), client)
    assert (result.ok, result.retry, result.status, result.retry_after) == (False, True, 429, expected)
    assert result.detail.startswith("pipedrive create lead 429")
    # the retry finishes the work: the person made before the 429 is found, not made twice
    again = target.send(event(record()), client)
    assert again.ok, again.detail
    assert (len(fake.persons), len(fake.leads), len(fake.notes)) == (1, 1, 1)


def test_two_rate_limited_requests_in_a_row(fake: FakePipedrive, target: Pipedrive, client: httpx.Client):
    fake.limit(next_requests=2, retry_after=3)
    for _ in range(2):
        result = target.send(event(record()), client)
        assert (result.retry, result.status, result.retry_after) == (True, 429, 3.0)
    assert target.send(event(record()), client).ok


def test_a_server_error_is_retried_and_the_retry_does_not_duplicate_anything(fake: FakePipedrive,
                                                                             target: Pipedrive,
                                                                             client: httpx.Client):
    fake.fail_next(500, when="POST /v1/notes")  # the person and the lead are made, then the note fails
    result = target.send(event(record()), client)
    assert (result.ok, result.retry, result.status) == (False, True, 500)
    assert result.detail.startswith("pipedrive add note 500")
    assert len(fake.leads) == 1 and not fake.notes

    again = target.send(event(record()), client)
    assert again.ok, again.detail
    assert (len(fake.persons), len(fake.leads), len(fake.notes)) == (1, 1, 1)


@pytest.mark.parametrize("status", [502, 503])
def test_other_server_errors_are_retried_too(fake: FakePipedrive, target: Pipedrive, client: httpx.Client,
                                             status: int):
    fake.fail_next(status)
    result = target.send(event(record()), client)
    assert (result.ok, result.retry, result.status) == (False, True, status)


def test_an_invalid_email_is_refused_for_good_with_a_detail_naming_the_call(fake: FakePipedrive,
                                                                            target: Pipedrive,
                                                                            client: httpx.Client):
    contact = {"name": "Maria Lopez", "email": "maria@example", "phone": None, "consent": True}
    result = target.send(event(record(contact=contact)), client)
    assert (result.ok, result.retry, result.status) == (False, False, 400)
    assert result.detail.startswith("pipedrive create person 400 Bad Request")
    assert "email" in result.detail
    assert not fake.persons and not fake.leads


def test_a_timeout_is_left_to_the_caller(target: Pipedrive):
    def never_answers(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with httpx.Client(timeout=5, transport=httpx.MockTransport(never_answers)) as mocked, \
            pytest.raises(httpx.ReadTimeout):
        target.send(event(record()), mocked)


def test_a_server_that_never_answers_times_out_for_the_caller():
    with socket.socket() as listening:  # accepts the connection, never says a word
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        url = f"http://127.0.0.1:{listening.getsockname()[1]}"
        with httpx.Client(timeout=httpx.Timeout(5, read=0.3)) as quick, pytest.raises(httpx.ReadTimeout):
            Pipedrive("token", url).send(event(record()), quick)


def test_a_connection_error_is_left_to_the_caller(client: httpx.Client):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # nothing listens there once closed
    with pytest.raises(httpx.ConnectError):
        Pipedrive("token", f"http://127.0.0.1:{port}").send(event(record()), client)


# -- the token ------------------------------------------------------------------------------------------
def test_the_token_travels_in_the_header_only_never_in_a_url_or_a_detail(fake: FakePipedrive, target: Pipedrive,
                                                                         client: httpx.Client):
    results: list[Result] = [target.send(event(record()), client),
                             target.send(event(record(), "contact.requested"), client),
                             target.send(event(record(5, contact=None)), client)]
    fake.limit(1)
    results.append(target.send(event(record(6)), client))
    fake.fail_next(500)
    results.append(target.send(event(record(6)), client))
    bad_email = {"name": "X Y", "email": "not an email", "phone": None, "consent": True}
    results.append(target.send(event(record(8, contact=bad_email)), client))
    wrong = Pipedrive(fake.token + "-old", fake.url)
    results.append(wrong.send(event(record()), client))

    assert {r.status for r in results} >= {200, 400, 401, 429, 500}
    assert len(fake.requests) > 20
    for request in fake.requests:
        assert fake.token not in request.target and "api_token" not in request.query
        assert request.headers.get("x-api-token") in (fake.token, fake.token + "-old")
    for result in results:
        assert fake.token not in result.detail and "api_token" not in result.detail
    assert fake.token not in repr(target)


# -- the fake refuses what Pipedrive refuses ------------------------------------------------------------
def test_the_fake_answers_with_pipedrives_status_codes_and_error_shapes(fake: FakePipedrive, client: httpx.Client):
    def call(method: str, path: str, token: str | None = fake.token, **kwargs: Any) -> httpx.Response:
        headers = {"x-api-token": token} if token else {}
        return client.request(method, fake.url + path, headers=headers, **kwargs)

    shape = {"success", "error", "error_info", "data", "additional_data"}
    missing = call("GET", "/api/v2/persons/search", token=None, params={"term": "ab"})
    assert missing.status_code == 401 and missing.json()["error"] == "unauthorized access"
    assert call("GET", "/api/v2/persons/999", token="wrong").status_code == 401

    unknown_person = call("PATCH", "/api/v2/persons/999", json={"name": "A B"})
    assert unknown_person.status_code == 404 and set(unknown_person.json()) >= shape
    unknown_lead = call("GET", "/v1/leads/3f1c5c8e-0000-4000-8000-000000000000")
    assert unknown_lead.status_code == 404
    assert unknown_lead.json()["error"] == "requested lead not found"
    assert unknown_lead.json()["error_info"] == "Object was not found."
    assert call("POST", "/v1/notes", json={"content": "x", "lead_id": "nope"}).status_code == 404
    assert call("POST", "/v1/leads", json={"title": "t", "person_id": 999}).status_code == 404
    assert call("GET", "/v1/nothing").status_code == 404
    assert call("DELETE", "/v1/notes").status_code == 405

    refused = {
        "no name": call("POST", "/api/v2/persons", json={"emails": [{"value": "a@b.co"}]}),
        "empty names": call("POST", "/api/v2/persons", json={"first_name": "", "last_name": ""}),
        "bad email": call("POST", "/api/v2/persons", json={"name": "A", "emails": [{"value": "a@b"}]}),
        "email as a string": call("POST", "/api/v2/persons", json={"name": "A", "emails": "a@b.co"}),
        "two primaries": call("POST", "/api/v2/persons", json={"name": "A", "phones": [
            {"value": "1", "primary": True}, {"value": "2", "primary": True}]}),
        "unknown property": call("POST", "/api/v2/persons", json={"name": "A", "favourite_colour": "red"}),
        "organization without name": call("POST", "/api/v2/organizations", json={}),
        "lead without title": call("POST", "/v1/leads", json={"organization_id": 1}),
        "lead without person or organization": call("POST", "/v1/leads", json={"title": "t"}),
        "lead property": call("POST", "/v1/leads", json={"title": "t", "organization_id": 1, "colour": 1}),
        "note without content": call("POST", "/v1/notes", json={"lead_id": "x"}),
        "note without target": call("POST", "/v1/notes", json={"content": "x"}),
        "short term": call("GET", "/api/v2/persons/search", params={"term": "a"}),
        "unknown search field": call("GET", "/v1/leads/search", params={"term": "ab", "fields": "email"}),
        "exact_match as 1": call("GET", "/api/v2/organizations/search", params={"term": "ab", "exact_match": "1"}),
    }
    for what, response in refused.items():
        assert response.status_code == 400, what
        body = response.json()
        assert set(body) >= shape and body["success"] is False and body["data"] is None, what
    assert refused["unknown property"].json()["code"] == "ERR_SCHEMA_VALIDATION_FAILED"
    assert refused["lead without title"].json()["error"] == '"title" is required.'
    assert not fake.persons and not fake.leads and not fake.notes

    fake.limit(next_requests=1, retry_after=9)
    limited = call("GET", "/api/v2/persons/search", params={"term": "ab"})
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "9"
    assert limited.headers["x-ratelimit-remaining"] == "0" and limited.json()["success"] is False
    ok = call("GET", "/api/v2/persons/search", params={"term": "ab"})
    assert ok.status_code == 200 and ok.json() == {"success": True, "data": {"items": []},
                                                   "additional_data": {"next_cursor": None}}
    assert {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "x-daily-requests-left"} <= set(
        ok.headers)
    fake.fail_next(500)
    assert call("GET", "/api/v2/persons/search", params={"term": "ab"}).status_code == 500
    # the query-string token still works on the fake (as on API v1), so a test can catch an adapter using it
    assert client.get(fake.url + "/v1/notes", params={"api_token": fake.token}).status_code == 200
