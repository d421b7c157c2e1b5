"""Pipedrive: a completed conversation (or a request to talk to an expert) as a lead in the Leads Inbox.

With consent (an email or a phone at ``recommendation.contact``) the person is upserted, found by email
(by phone when there is no email) and linked to the lead; without, the lead belongs to an organization
named ``Outsourcing Advisor prospect #<id>`` and nothing personal is sent: no name, no user id, no
answer text. Either way a note on the lead holds the readiness score, profile, verdict, top tasks, ref,
language and the link to the conversation in the dashboard; ``contact.requested`` adds a note that the
person asked to talk to an expert.

Every step looks before it writes (the person by email, the organization and the lead by name, the notes
by their first line), so a retry after a half-done attempt finishes the work instead of repeating it, and
sending the same event again writes nothing.

The calls (the token travels in the ``x-api-token`` header only, never in a URL):

* ``GET /api/v2/persons/search``, ``GET /api/v2/persons/{id}``, ``POST /api/v2/persons``,
  ``PATCH /api/v2/persons/{id}``
* ``GET /api/v2/organizations/search``, ``POST /api/v2/organizations``
* ``GET /v1/leads/search``, ``POST /v1/leads``, ``PATCH /v1/leads/{id}``
* ``GET /v1/notes?lead_id=...``, ``POST /v1/notes``

Persons and organizations use API v2: Pipedrive deprecated their v1 endpoints (``/v1/persons...``,
``/v1/organizations...``) on 1 January 2026 and declared them out of support from 1 August 2026; leads and
notes have no v2 endpoints to write with and stay on v1. The first refused call decides the ``Result``
(``result_of``: 5xx, 408 and 429 are retried, with ``Retry-After`` or else Pipedrive's documented
``x-ratelimit-reset``); a timeout or a connection error is left to the caller, which retries it.
"""

from __future__ import annotations

import dataclasses
import html
import re
from typing import Any

import httpx

from advisor.outbound.base import Event, Result, result_of

ACCEPTED = frozenset({"conversation.completed", "contact.requested"})
TOP_TASKS = 3  # as many tasks as the lead cards show (advisor.reports.top_functions)
NOTES_PAGE = 500  # the most notes GET /v1/notes returns at once; a lead of ours has two


class _Refused(Exception):
    """A call that did not go through: its Result ends the attempt."""

    def __init__(self, result: Result) -> None:
        super().__init__(result.detail)
        self.result = result


def split_name(name: str) -> tuple[str, str]:
    """First name and last name: the first word and the rest ("Maria Lopez" -> "Maria", "Lopez")."""
    parts = name.split(None, 1)
    if not parts:
        return "", ""
    return parts[0], (" ".join(parts[1].split()) if len(parts) > 1 else "")


def lead_title(conversation_id: Any, ref: Any) -> str:
    """``Outsourcing Advisor #<id> (<ref>)``, or without the brackets when the conversation has no ref."""
    return f"Outsourcing Advisor #{conversation_id}" + (f" ({ref})" if ref else "")


def organization_name(conversation_id: Any) -> str:
    return f"Outsourcing Advisor prospect #{conversation_id}"


def summary_marker(conversation_id: Any) -> str:
    """The first line of the summary note: how a retry sees the note is already there."""
    return f"Outsourcing Advisor #{conversation_id}: summary"


def expert_marker(conversation_id: Any) -> str:
    return f"Outsourcing Advisor #{conversation_id}: asked to talk to an expert"


def contact_of(data: dict[str, Any]) -> dict[str, str] | None:
    """Name, email and phone given with consent (an email or a phone); None without."""
    recommendation = data.get("recommendation")
    given = recommendation.get("contact") if isinstance(recommendation, dict) else None
    if not isinstance(given, dict) or given.get("consent") is False:
        return None
    found = {key: " ".join(str(given.get(key) or "").split()) for key in ("name", "email", "phone")}
    if not (found["email"] or found["phone"]):
        return None
    return found


def top_tasks(recommendation: dict[str, Any]) -> list[tuple[str, str]]:
    """(task, approach) of the first tasks the person named (the advice's own suggestions left out)."""
    tasks: list[tuple[str, str]] = []
    for function in recommendation.get("functions") or ():
        if not isinstance(function, dict) or function.get("suggested"):
            continue
        approach = function.get("approach")
        tasks.append((str(function.get("name") or function.get("id") or ""),
                      str(approach.get("name") or approach.get("id") or "") if isinstance(approach, dict) else ""))
    return tasks[:TOP_TASKS]


class Pipedrive:
    """A Pipedrive company account, reached with an API token (``advisor.outbound.base.Target``)."""

    name = "pipedrive"
    search_lag = 30.0  # seconds its search may not find a record yet: the outbox spaces events about one conversation

    def __init__(self, token: str, base_url: str = "https://api.pipedrive.com",
                 dashboard_url: str | None = None) -> None:
        self.token = token
        self.base_url = base_url.rstrip("/")
        self.dashboard_url = dashboard_url

    def __repr__(self) -> str:  # the token stays out of logs and tracebacks
        return f"Pipedrive({self.base_url!r})"

    def accepts(self, event_type: str) -> bool:
        return event_type in ACCEPTED

    def send(self, event: Event, client: httpx.Client) -> Result:
        if not self.accepts(event.type):
            return Result(False, detail=f"pipedrive does not take {event.type}")
        data = event.data
        conversation_id = data.get("id")
        if conversation_id is None or conversation_id == "":
            return Result(False, detail="pipedrive: the event names no conversation")
        try:
            return self._send(event, data, conversation_id, client)
        except _Refused as refused:
            return refused.result

    # ------------------------------------------------------------------ the steps

    def _send(self, event: Event, data: dict[str, Any], conversation_id: Any, client: httpx.Client) -> Result:
        contact = contact_of(data)
        person_id: int | None = None
        organization_id: int | None = None
        done: list[str] = []
        if contact is not None:
            person_id, what = self._person(client, contact)
            done.append(f"person {person_id} {what}")
        else:
            organization_id, what = self._organization(client, conversation_id)
            done.append(f"organization {organization_id} {what}")
        lead_id, what, status = self._lead(client, lead_title(conversation_id, data.get("ref")), person_id,
                                           organization_id)
        done.append(f"lead {lead_id} {what}")

        wanted: list[tuple[str, str]] = []
        recommendation = data.get("recommendation")
        if isinstance(recommendation, dict):
            wanted.append((summary_marker(conversation_id), self._summary(data, recommendation)))
        if event.type == "contact.requested":
            wanted.append((expert_marker(conversation_id), self._expert_note(data, event)))
        if wanted:
            present = self._notes(client, lead_id)
            added = 0
            for marker, content in wanted:
                if not any(marker in note for note in present):
                    status = self._call(client, "POST", "/v1/notes", "add note",
                                        json={"lead_id": lead_id, "content": content})[0]
                    added += 1
            done.append(f"{added} note{'' if added == 1 else 's'} added")
        return Result.delivered(status, "pipedrive " + ", ".join(done))

    def _person(self, client: httpx.Client, contact: dict[str, str]) -> tuple[int, str]:
        """The person's id, found by email (else phone) and brought up to date, or created."""
        email, phone, name = contact["email"], contact["phone"], contact["name"]
        term, field = (email, "email") if email else (phone, "phone")
        found = self._call(client, "GET", "/api/v2/persons/search", "find person",
                           params={"term": term, "fields": field, "exact_match": "true"})[1]
        match = next((item for item in self._items(found) if self._same_person(item, email, phone)), None)
        if match is None:
            body: dict[str, Any] = {}
            if name:
                body["first_name"], body["last_name"] = split_name(name)
            else:  # Pipedrive needs a name: the address stands in for it
                body["name"] = email or phone
            if email:
                body["emails"] = [{"value": email, "primary": True}]
            if phone:
                body["phones"] = [{"value": phone, "primary": True}]
            created = self._call(client, "POST", "/api/v2/persons", "create person", json=body)[1]
            return self._id_of(created, "create person"), "created"

        person_id = int(match["id"])
        changes: dict[str, Any] = {}
        if name and " ".join(str(match.get("name") or "").split()).casefold() != name.casefold():
            changes["first_name"], changes["last_name"] = split_name(name)
        if phone and not self._has_phone(match.get("phones"), phone):
            # the phones are replaced as a whole: read them with their labels, add the new one
            person = self._call(client, "GET", f"/api/v2/persons/{person_id}", "get person")[1]
            phones = [{key: entry[key] for key in ("value", "label", "primary") if key in entry}
                      for entry in (person.get("data") or {}).get("phones") or () if isinstance(entry, dict)]
            changes["phones"] = [*phones, {"value": phone, "primary": not phones}]
        # (the email needs no change: the person was found by it, or there is none)
        if not changes:
            return person_id, "unchanged"
        self._call(client, "PATCH", f"/api/v2/persons/{person_id}", "update person", json=changes)
        return person_id, "updated"

    def _organization(self, client: httpx.Client, conversation_id: Any) -> tuple[int, str]:
        """The anonymous prospect's organization: found by its name, or created."""
        name = organization_name(conversation_id)
        found = self._call(client, "GET", "/api/v2/organizations/search", "find organization",
                           params={"term": name, "fields": "name", "exact_match": "true"})[1]
        for item in self._items(found):
            if str(item.get("name") or "").casefold() == name.casefold() and item.get("id") is not None:
                return int(item["id"]), "found"
        created = self._call(client, "POST", "/api/v2/organizations", "create organization",
                             json={"name": name})[1]
        return self._id_of(created, "create organization"), "created"

    def _lead(self, client: httpx.Client, title: str, person_id: int | None,
              organization_id: int | None) -> tuple[str, str, int]:
        """The conversation's lead: found by its title (the person linked if it was anonymous), or created."""
        status, found = self._call(client, "GET", "/v1/leads/search", "find lead",
                                   params={"term": title, "fields": "title", "exact_match": "true"})
        for item in self._items(found):
            if str(item.get("title") or "").casefold() != title.casefold() or not item.get("id"):
                continue
            lead_id = str(item["id"])
            linked = item.get("person") if isinstance(item.get("person"), dict) else None
            if person_id is not None and not (linked and linked.get("id")):
                status = self._call(client, "PATCH", f"/v1/leads/{lead_id}", "update lead",
                                    json={"person_id": person_id})[0]
                return lead_id, "linked", status
            return lead_id, "found", status
        body: dict[str, Any] = {"title": title}
        if person_id is not None:
            body["person_id"] = person_id
        else:
            body["organization_id"] = organization_id
        status, created = self._call(client, "POST", "/v1/leads", "create lead", json=body)
        data = created.get("data")
        if not isinstance(data, dict) or not data.get("id"):
            raise _Refused(Result(False, retry=True, status=status, detail="pipedrive create lead: no lead id"))
        return str(data["id"]), "created", status

    def _notes(self, client: httpx.Client, lead_id: str) -> list[str]:
        listed = self._call(client, "GET", "/v1/notes", "list notes",
                            params={"lead_id": lead_id, "limit": NOTES_PAGE})[1]
        return [str(note.get("content") or "") for note in listed.get("data") or () if isinstance(note, dict)]

    # ------------------------------------------------------------------ the notes' text

    def _link(self, conversation_id: Any) -> str | None:
        if not self.dashboard_url:
            return None
        return f"{self.dashboard_url.rstrip('/')}/conversations/{conversation_id}"

    def _summary(self, data: dict[str, Any], recommendation: dict[str, Any]) -> str:
        """Score, profile, verdict, top tasks, ref, language and link: nothing the person wrote."""
        conversation_id = data.get("id")
        e = html.escape
        lines = [f"Readiness score: {e(str(recommendation.get('readiness_score', '?')))}/100",
                 f"Profile: {e(str(recommendation.get('profile') or '?'))}"]
        verdict, verdict_name = recommendation.get("verdict"), recommendation.get("verdict_name")
        if verdict_name and verdict and verdict_name != verdict:
            lines.append(f"Verdict: {e(str(verdict_name))} ({e(str(verdict))})")
        else:
            lines.append(f"Verdict: {e(str(verdict_name or verdict or '?'))}")
        lines.append(f"Ref: {e(str(data.get('ref') or '-'))}")
        lines.append(f"Language: {e(str(data.get('language') or '?'))}")
        parts = [f"<p><b>{e(summary_marker(conversation_id))}</b></p>", "<p>" + "<br>".join(lines) + "</p>"]
        tasks = top_tasks(recommendation)
        if tasks:
            items = "".join(f"<li>{e(task)}: {e(approach)}</li>" if approach else f"<li>{e(task)}</li>"
                            for task, approach in tasks)
            parts.append(f"<p>Top tasks:</p><ul>{items}</ul>")
        parts.append(self._link_html(conversation_id))
        return "".join(parts)

    def _expert_note(self, data: dict[str, Any], event: Event) -> str:
        conversation_id = data.get("id")
        return (f"<p><b>{html.escape(expert_marker(conversation_id))}</b></p>"
                f"<p>The person asked to talk to an expert ({html.escape(event.timestamp)}).</p>"
                + self._link_html(conversation_id))

    def _link_html(self, conversation_id: Any) -> str:
        link = self._link(conversation_id)
        if link is None:
            return ""
        quoted = html.escape(link, quote=True)
        return f'<p>Conversation: <a href="{quoted}">{quoted}</a></p>'

    # ------------------------------------------------------------------ HTTP

    def _call(self, client: httpx.Client, method: str, path: str, what: str, *,
              params: dict[str, Any] | None = None, json: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        """One request; its status and JSON body when it went through, else ``_Refused``. Timeouts and
        connection errors are not caught: the caller retries them."""
        response = client.request(method, self.base_url + path, params=params, json=json,
                                  headers={"x-api-token": self.token, "Accept": "application/json"})
        if not 200 <= response.status_code < 300:
            raise _Refused(self._refusal(response, what))
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise _Refused(Result(False, retry=True, status=response.status_code,
                                  detail=f"pipedrive {what} {response.status_code}: not a JSON object"))
        return response.status_code, body

    def _refusal(self, response: httpx.Response, what: str) -> Result:
        result = result_of(response, f"pipedrive {what}")
        if result.retry and result.retry_after is None and response.status_code == 429:
            reset = response.headers.get("x-ratelimit-reset", "").strip()  # Pipedrive's documented header
            if re.fullmatch(r"\d+(\.\d+)?", reset):
                result = dataclasses.replace(result, retry_after=float(reset))
        reason = self._error_text(response)
        if reason:
            result = dataclasses.replace(result, detail=f"{result.detail}: {reason}")
        return result

    def _error_text(self, response: httpx.Response) -> str:
        """Pipedrive's ``error`` message, one short line without the token."""
        try:
            body = response.json()
        except ValueError:
            return ""
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, str):
            return ""
        text = " ".join(error.split())
        if self.token:
            text = text.replace(self.token, "***")
        return text[:160]

    @staticmethod
    def _items(found: dict[str, Any]) -> list[dict[str, Any]]:
        data = found.get("data")
        items = data.get("items") if isinstance(data, dict) else None
        return [entry["item"] for entry in items or ()
                if isinstance(entry, dict) and isinstance(entry.get("item"), dict)]

    @staticmethod
    def _id_of(created: dict[str, Any], what: str) -> int:
        data = created.get("data")
        if not isinstance(data, dict) or not isinstance(data.get("id"), int):
            raise _Refused(Result(False, retry=True, detail=f"pipedrive {what}: no id in the answer"))
        return int(data["id"])

    @staticmethod
    def _same_email(value: Any, email: str) -> bool:
        return str(value or "").strip().casefold() == email.casefold()

    @staticmethod
    def _digits(phone: Any) -> str:
        return re.sub(r"\D", "", str(phone or ""))

    def _has_phone(self, phones: Any, phone: str) -> bool:
        wanted = self._digits(phone) or phone
        return any((self._digits(value) or str(value)) == wanted for value in phones or ())

    def _same_person(self, item: dict[str, Any], email: str, phone: str) -> bool:
        if item.get("id") is None:
            return False
        if email:
            return any(self._same_email(value, email) for value in item.get("emails") or ())
        return self._has_phone(item.get("phones"), phone)
