"""HubSpot: a finished conversation as a deal in the sales team's HubSpot, and the person as a contact.

Through HubSpot's CRM REST API v3 (not its client library), with a private app's token in the
``Authorization: Bearer`` header, never in a URL. One ``send`` is a few calls, each looking up before
it creates, so that sending the same event again (a retry after a half-done attempt) finds what the
first attempt made instead of making it twice:

1. With consent (an email or a phone): the contact, found by email (else by phone) with
   ``POST /crm/v3/objects/contacts/search`` and updated (``PATCH``) only where it differs, or created
   (``POST /crm/v3/objects/contacts``). Search is an index that lags a few seconds behind writes: a
   create refused with 409 "Contact already exists. Existing ID: N" (emails are unique) updates N.
2. The deal ``Outsourcing Advisor #<id> (<ref>)`` in the default pipeline at "appointmentscheduled",
   its description the summary lines (readiness score, profile, verdict, the tasks named with their
   approach, the language, the dashboard link). Looked up first among the contact's deals
   (``GET /crm/v3/objects/contacts/{id}?associations=deals`` and
   ``POST /crm/v3/objects/deals/batch/read``: no index lag), then by ``dealname`` with
   ``POST /crm/v3/objects/deals/search`` (a deal made while the person was still anonymous), which
   is then associated with the contact (``PUT /crm/v4/objects/deals/{id}/associations/default/contacts/{id}``).
   A new deal is created with its association to the contact (type 3, deal to contact) in the same call.
   An existing deal is left as it is: the sales team may have moved it on.
3. "contact.requested" (the person asked to talk to an expert): also a note on the deal (and the contact)
   saying so, unless the deal already has one (``GET /crm/v3/objects/deals/{id}?associations=notes``,
   ``POST /crm/v3/objects/notes/batch/read``, ``POST /crm/v3/objects/notes``).

Without consent the deal is anonymous: no contact, and nothing personal in it (no user id, name, email,
phone or answer in the person's words): the conversation's id, ref, score, profile, verdict, tasks and
link only. The one gap left: an anonymous deal is found again only through search, so a retry within
the index's few seconds of its creation could make it twice (the outbox waits longer than that).

The first call that fails decides the result (``result_of``: 5xx, 408 and 429 are tried again, honouring
``Retry-After``, or HubSpot's rate-limit policy when there is none; other 4xx are not). Timeouts and
connection errors are not caught: the caller retries them.
"""

from __future__ import annotations

import dataclasses
import html
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import httpx

from advisor.outbound.base import Event, Result, result_of

API_URL = "https://api.hubapi.com"
ACCEPTED = frozenset({"conversation.completed", "contact.requested"})
PIPELINE = "default"
STAGE = "appointmentscheduled"  # the default pipeline's first stage
# HubSpot-defined association types (associationCategory HUBSPOT_DEFINED)
DEAL_TO_CONTACT = 3
NOTE_TO_CONTACT = 202
NOTE_TO_DEAL = 214
TOP_TASKS = 3  # the tasks named in the description, as on the lead card
EXPERT = "asked to talk to an expert"  # in the note's text: how a note already made is recognised
BATCH = 100  # ids a batch read takes at most
EXISTING_ID = re.compile(r"Existing ID: ?(\d+)")
# seconds to wait after a 429 that gives no Retry-After, by HubSpot's `policyName` (DAILY: the outbox's backoff)
POLICY_WAIT = {"SECONDLY": 1.0, "TEN_SECONDLY_ROLLING": 10.0}


class _Refused(Exception):
    """A call that did not go through: its answer is the event's result."""

    def __init__(self, result: Result) -> None:
        super().__init__(result.detail)
        self.result = result


@dataclasses.dataclass(frozen=True)
class _Done:
    deal_id: str
    created: list[str]  # what this attempt made, for the detail line


class HubSpot:
    """Sends finished conversations to HubSpot as deals (satisfies ``advisor.outbound.base.Target``)."""

    name = "hubspot"
    search_lag = 30.0  # seconds its search may not find a record yet: the outbox spaces events about one conversation

    def __init__(self, token: str, base_url: str = API_URL, dashboard_url: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.dashboard_url = dashboard_url
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}

    def __repr__(self) -> str:  # never the token
        return f"<HubSpot {self.base_url}>"

    def accepts(self, event_type: str) -> bool:
        return event_type in ACCEPTED

    def send(self, event: Event, client: httpx.Client) -> Result:
        if not self.accepts(event.type):
            return Result(False, detail=f"hubspot does not take {event.type}")
        data = event.data
        if data.get("id") is None:
            return Result(False, detail="hubspot: the event has no conversation id")
        person = consented_contact(data)
        made: list[str] = []
        try:
            contact_id = self._upsert_contact(client, person, made) if person else None
            deal_id = self._ensure_deal(client, data, contact_id, made)
            if event.type == "contact.requested":
                self._ensure_note(client, data, event.timestamp, deal_id, contact_id, made)
        except _Refused as refused:
            return refused.result
        detail = f"hubspot deal {deal_id}" + (f", contact {contact_id}" if contact_id else " (anonymous)")
        detail += f": {', '.join(made)}" if made else ": up to date"
        return Result.delivered(201 if made else 200, detail)

    # ------------------------------------------------------------------ the records

    def _upsert_contact(self, client: httpx.Client, person: dict[str, str], made: list[str]) -> str:
        properties = contact_properties(person)
        key = "email" if "email" in properties else "phone"
        found = self._search(client, "contacts", key, properties[key], list(properties), "search contacts")
        current: dict[str, Any] = {}
        if found is None:
            response = self._call(client, "POST", "/crm/v3/objects/contacts", "create contact",
                                  json={"properties": properties, "associations": []}, allow=(409,))
            if response.status_code != 409:
                made.append("contact created")
                return str(self._json(response, "create contact")["id"])
            # the email is taken by a contact search did not show yet (the index lags behind writes)
            existing = EXISTING_ID.search(str(_body(response).get("message", "")))
            if existing is None:
                raise _Refused(self._result(response, "hubspot create contact"))
            contact_id = existing.group(1)
        else:
            contact_id, current = str(found["id"]), found.get("properties") or {}
        changed = {name: value for name, value in properties.items() if not _same(name, current.get(name), value)}
        if changed:
            self._call(client, "PATCH", f"/crm/v3/objects/contacts/{contact_id}", "update contact",
                       json={"properties": changed})
            made.append("contact updated")
        return contact_id

    def _ensure_deal(self, client: httpx.Client, data: dict[str, Any], contact_id: str | None,
                     made: list[str]) -> str:
        name = deal_name(data)
        if contact_id:
            response = self._call(client, "GET", f"/crm/v3/objects/contacts/{contact_id}", "read contact deals",
                                  params={"associations": "deals"})
            deal_ids = _associated(self._json(response, "read contact deals"), "deals")
            for deal in self._read(client, "deals", deal_ids, ["dealname"], "read deals"):
                if (deal.get("properties") or {}).get("dealname") == name:
                    return str(deal["id"])
        found = self._search(client, "deals", "dealname", name, ["dealname"], "search deals")
        if found is not None:
            deal_id = str(found["id"])
            if contact_id:  # made while the person was anonymous; PUT: idempotent
                self._call(client, "PUT", f"/crm/v4/objects/deals/{deal_id}/associations/default/contacts/{contact_id}",
                           "associate deal")
                made.append("deal associated")
            return deal_id
        body = {
            "properties": {"dealname": name, "pipeline": PIPELINE, "dealstage": STAGE,
                           "description": "\n".join(self.summary_lines(data))},
            "associations": [_association(contact_id, DEAL_TO_CONTACT)] if contact_id else [],
        }
        response = self._call(client, "POST", "/crm/v3/objects/deals", "create deal", json=body)
        made.append("deal created")
        return str(self._json(response, "create deal")["id"])

    def _ensure_note(self, client: httpx.Client, data: dict[str, Any], timestamp: str, deal_id: str,
                     contact_id: str | None, made: list[str]) -> None:
        response = self._call(client, "GET", f"/crm/v3/objects/deals/{deal_id}", "read deal notes",
                              params={"associations": "notes"})
        note_ids = _associated(self._json(response, "read deal notes"), "notes")
        for note in self._read(client, "notes", note_ids, ["hs_note_body"], "read notes"):
            if EXPERT in str((note.get("properties") or {}).get("hs_note_body") or ""):
                return
        text = f"Outsourcing Advisor: the person {EXPERT} (conversation #{data['id']})."
        link = self.link(data)
        body = f"<p>{html.escape(text)}</p>"
        if link:
            body += f'<p><a href="{html.escape(link)}">{html.escape(link)}</a></p>'
        associations = [_association(deal_id, NOTE_TO_DEAL)]
        if contact_id:
            associations.append(_association(contact_id, NOTE_TO_CONTACT))
        when = timestamp or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self._call(client, "POST", "/crm/v3/objects/notes", "create note",
                   json={"properties": {"hs_timestamp": when, "hs_note_body": body}, "associations": associations})
        made.append("note added")

    # ------------------------------------------------------------------ what the deal says

    def link(self, data: dict[str, Any]) -> str | None:
        """The conversation in the dashboard, when there is one."""
        if not self.dashboard_url:
            return None
        return f"{self.dashboard_url.rstrip('/')}/conversations/{data['id']}"

    def summary_lines(self, data: dict[str, Any]) -> list[str]:
        """The deal's description: nothing personal (no user id, name, contact or answer in words)."""
        rec = data.get("recommendation") or {}
        first = f"Outsourcing Advisor conversation #{data['id']}"
        if data.get("ref"):
            first += f", ref {data['ref']}"
        if data.get("language"):
            first += f", language {data['language']}"
        lines = [first]
        score = rec.get("readiness_score")
        if score is not None or rec.get("profile"):
            readiness = f"Readiness {score}/100" if score is not None else "Readiness not scored"
            lines.append(readiness + (f", profile {rec['profile']}" if rec.get("profile") else ""))
        if rec.get("verdict") or rec.get("verdict_name"):
            verdict = rec.get("verdict_name") or rec.get("verdict")
            lines.append(f"Verdict: {verdict}" + (f" ({rec['verdict']})" if rec.get("verdict") else ""))
        tasks = top_tasks(rec)
        if tasks:
            lines.append("Tasks: " + "; ".join(tasks))
        link = self.link(data)
        if link:
            lines.append(f"Conversation: {link}")
        return lines

    # ------------------------------------------------------------------ HTTP

    def _call(self, client: httpx.Client, method: str, path: str, what: str, *, json: Any = None,
              params: dict[str, str] | None = None, allow: Iterable[int] = ()) -> httpx.Response:
        """One call; a failed one ends the attempt (``_Refused``). Transport errors go to the caller."""
        response = client.request(method, self.base_url + path, headers=self._headers, json=json, params=params)
        if not response.is_success and response.status_code not in allow:
            raise _Refused(self._result(response, f"hubspot {what}"))
        return response

    def _search(self, client: httpx.Client, object_type: str, prop: str, value: str, properties: list[str],
                what: str) -> dict[str, Any] | None:
        """The oldest record whose ``prop`` is ``value`` (compared again here: HubSpot's EQ ignores case)."""
        body = {
            "filterGroups": [{"filters": [{"propertyName": prop, "operator": "EQ", "value": value}]}],
            "properties": sorted({*properties, prop}),
            "sorts": [{"propertyName": "createdate", "direction": "ASCENDING"}],
            "limit": 10,
        }
        response = self._call(client, "POST", f"/crm/v3/objects/{object_type}/search", what, json=body)
        for result in self._json(response, what).get("results") or []:
            if _same(prop, (result.get("properties") or {}).get(prop), value):
                return dict(result)
        return None

    def _read(self, client: httpx.Client, object_type: str, ids: list[str], properties: list[str],
              what: str) -> list[dict[str, Any]]:
        """The records with these ids (a deleted one is left out: HubSpot answers 207 for it)."""
        records: list[dict[str, Any]] = []
        for start in range(0, len(ids), BATCH):
            body = {"properties": properties, "inputs": [{"id": i} for i in ids[start:start + BATCH]]}
            response = self._call(client, "POST", f"/crm/v3/objects/{object_type}/batch/read", what, json=body)
            records.extend(self._json(response, what).get("results") or [])
        return records

    def _json(self, response: httpx.Response, what: str) -> dict[str, Any]:
        body = _body(response)
        if not body:  # a 2xx that is not HubSpot's JSON (a proxy in between): later
            raise _Refused(Result(False, retry=True, status=response.status_code,
                                  detail=f"hubspot {what} {response.status_code}: unreadable answer"))
        return body

    @staticmethod
    def _result(response: httpx.Response, what: str) -> Result:
        result = result_of(response, what)
        if response.status_code == 429 and result.retry_after is None:
            wait = POLICY_WAIT.get(str(_body(response).get("policyName", "")))
            if wait is not None:
                result = dataclasses.replace(result, retry_after=wait)
        return result


# ---------------------------------------------------------------------- the record's parts


def consented_contact(data: dict[str, Any]) -> dict[str, str] | None:
    """The person's details when they consented and left an email or a phone; else None."""
    contact = (data.get("recommendation") or {}).get("contact")
    if not isinstance(contact, dict) or contact.get("consent") is False:
        return None
    person = {key: str(contact[key]).strip() for key in ("name", "email", "phone") if contact.get(key)}
    person = {key: value for key, value in person.items() if value}
    return person if "email" in person or "phone" in person else None


def contact_properties(person: dict[str, str]) -> dict[str, str]:
    """HubSpot's contact properties: the email (HubSpot keeps it in lower case), the phone, and the name
    split into first name and last name (the first word, the rest)."""
    properties: dict[str, str] = {}
    if person.get("email"):
        properties["email"] = person["email"].lower()
    if person.get("phone"):
        properties["phone"] = person["phone"]
    words = (person.get("name") or "").split()
    if words:
        properties["firstname"] = words[0]
        if len(words) > 1:
            properties["lastname"] = " ".join(words[1:])
    return properties


def deal_name(data: dict[str, Any]) -> str:
    """``Outsourcing Advisor #<id> (<ref>)``: how the deal is found again."""
    name = f"Outsourcing Advisor #{data['id']}"
    return f"{name} ({data['ref']})" if data.get("ref") else name


def top_tasks(rec: dict[str, Any], count: int = TOP_TASKS) -> list[str]:
    """The first tasks the person named (not those the advice suggested), each with its approach."""
    tasks = []
    for function in rec.get("functions") or []:
        if function.get("suggested") or not function.get("name"):
            continue
        approach = (function.get("approach") or {}).get("name")
        tasks.append(f"{function['name']} ({approach})" if approach else str(function["name"]))
    return tasks[:count]


def _association(to_id: str, type_id: int) -> dict[str, Any]:
    return {"to": {"id": to_id}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}]}


def _associated(record: dict[str, Any], object_type: str) -> list[str]:
    """The ids in a v3 record's ``associations`` (once each: a pair may have several types)."""
    results = ((record.get("associations") or {}).get(object_type) or {}).get("results") or []
    return list(dict.fromkeys(str(item["id"]) for item in results if item.get("id") is not None))


def _same(name: str, current: Any, wanted: str) -> bool:
    if current is None:
        return False
    if name == "email":
        return str(current).strip().lower() == wanted.lower()
    return str(current) == wanted


def _body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
