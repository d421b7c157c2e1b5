"""A fake Pipedrive REST API for tests, using only the standard library.

It serves the endpoints ``advisor.outbound.pipedrive`` calls, on 127.0.0.1 and a free port, with
in-memory records the test reads (:attr:`FakePipedrive.persons`, ``organizations``, ``leads``,
``notes``)::

    with FakePipedrive() as fake:
        target = Pipedrive(fake.token, fake.url, "https://dash.example")
        with httpx.Client(timeout=5) as client:
            result = target.send(event, client)
        fake.leads, fake.requests                      # what is there, what was asked
        fake.limit(next_requests=2, retry_after=7)     # the next 2 requests: 429
        fake.fail_next(500)                            # the next request: 500

Endpoints: ``GET /api/v2/persons/search``, ``GET|PATCH /api/v2/persons/{id}``, ``POST /api/v2/persons``,
``GET /api/v2/organizations/search``, ``POST /api/v2/organizations``, ``GET /v1/leads/search``,
``POST /v1/leads``, ``GET|PATCH /v1/leads/{id}``, ``GET /v1/notes`` and ``POST /v1/notes``. Anything
else is 404, a known path with another method 405.

What it refuses, and which documented behaviour each refusal copies (pipedrive.readme.io "Responses",
"HTTP status codes", "Rate limiting", "Authentication", the API v2 migration guide and the OpenAPI files
of API v1 and v2). Every error body has the documented shape ``{"success": false, "error": ...,
"error_info": ..., "data": null, "additional_data": null}``; the wording of each message is the fake's
own unless said otherwise:

* **401** "Invalid API token" (status codes page): a request without the token or with another one. The
  token is read from the ``x-api-token`` header (the Authentication page: "must be provided in the
  x-api-token header") or, as the API v1 still allows, the ``api_token`` query parameter, so that a test
  can see the adapter never uses the latter. Body (from memory of the real answer, not in the docs):
  ``"error": "unauthorized access", "errorCode": 401``.
* **429** "Rate limit has been exceeded" (status codes page), switched on by :meth:`limit`: the burst
  headers ``x-ratelimit-limit``, ``x-ratelimit-remaining`` (0) and ``x-ratelimit-reset`` (Rate limiting
  page) and, unless ``retry_after=None``, ``Retry-After`` (older Pipedrive docs promised it on a 429;
  the current page documents only the ``x-ratelimit-*`` headers). Body wording (``"Request over
  limit"``, ``errorCode``) from memory: the docs' example is cut off in the copy that could be read.
  Every answer carries the burst headers and ``x-daily-requests-left``, as the page says.
* **400** validation, the API v2 migration guide's "significantly stricter input validation" (the error
  carries ``code: ERR_SCHEMA_VALIDATION_FAILED``, the code one integration reports from the live v2 API):
  a person without ``name`` and without both ``first_name`` and ``last_name``, or with both of those
  empty (migration guide, POST/PATCH persons); ``emails``/``phones`` not a list of objects with a
  ``value`` (migration guide: "can only be sent as an object"); more than one marked ``primary``; an
  email that is not an address (the fake's rule: ``local@domain.tld``, no spaces); an organization
  without ``name``; a property neither endpoint documents (the v2 schemas; unknown properties refused
  is the fake's reading of "stricter"); a ``term`` under 2 characters (1 with ``exact_match``), a
  ``fields`` value outside the documented enum, ``exact_match`` other than true/false (v2: booleans
  are only ``true``/``false``). API v1 leads: no ``title``, neither ``person_id`` nor
  ``organization_id`` (OpenAPI v1 addLead: "required unless ..."), a property addLead does not
  document (fake's choice, like v2); the message is worded the way the v1 OpenAPI examples word
  theirs (``'"title" is required.'``). API v1 notes: no ``content``, or none of
  ``lead_id/deal_id/person_id/org_id/project_id`` (OpenAPI v1 addNote); other properties are let
  through, as addNote's schema says (``additionalProperties: true``).
* **404** an unknown id: a person (``GET``/``PATCH /api/v2/persons/{id}``), a lead
  (``"requested lead not found"`` / ``"Object was not found."``, the OpenAPI v1 LeadNotFoundResponse
  example), a person or organization a new lead names, a lead a note names. An unknown path: 404
  ``"Unknown method ."`` (the v1 API's answer, from memory).
* **5xx** by :meth:`fail_next` (``status`` 500 by default: "Generic server error").

Answers: ``POST /api/v2/persons`` and ``/organizations`` 200 (as the v2 OpenAPI file says),
``POST /v1/leads`` 201, ``POST /v1/notes`` 200. Person names are split as Pipedrive does (first word,
the rest); ``name`` is built from ``first_name`` and ``last_name`` when only those are sent. Searches
are case-insensitive; with ``exact_match`` the whole value must equal the term. One deliberate
difference: the real search index lags writes by a moment, the fake's does not.

:attr:`requests` holds every request (method, raw target, path, query, headers, JSON body, status);
:attr:`refusals` the refused ones.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import socket
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlsplit

from tests.fake_http import JsonHandler, LocalServer

__all__ = ["DEFAULT_TOKEN", "FakePipedrive", "Refusal", "Request"]

DEFAULT_TOKEN = "pd-test-token-4f1c2a9e0b7d"
ERROR_INFO = "Please check developers.pipedrive.com for more information about Pipedrive API."
VALIDATION = "ERR_SCHEMA_VALIDATION_FAILED"
BURST_LIMIT = 40  # x-ratelimit-limit: the Growth plan's API-token burst (requests per 2 seconds)
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
PERSON_FIELDS = frozenset({"name", "first_name", "last_name", "owner_id", "org_id", "add_time", "update_time",
                           "emails", "phones", "im", "visible_to", "label_ids", "marketing_status", "custom_fields",
                           "notes", "birthday", "job_title", "postal_address"})
ORGANIZATION_FIELDS = frozenset({"name", "owner_id", "add_time", "update_time", "visible_to", "label_ids",
                                 "address", "custom_fields"})
LEAD_FIELDS = frozenset({"title", "owner_id", "label_ids", "person_id", "organization_id", "value",
                         "expected_close_date", "visible_to", "was_seen", "origin_id", "channel", "channel_id"})
NOTE_TARGETS = ("lead_id", "deal_id", "person_id", "org_id", "project_id")
SEARCH_FIELDS = {
    "/api/v2/persons/search": frozenset({"custom_fields", "email", "notes", "phone", "name"}),
    "/api/v2/organizations/search": frozenset({"address", "custom_fields", "notes", "name"}),
    "/v1/leads/search": frozenset({"custom_fields", "notes", "title"}),
}


class Request(NamedTuple):
    method: str
    target: str  # the raw request target: path and query string, as sent
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    json: Any  # the decoded body (None without one)
    status: int  # what the fake answered


class Refusal(NamedTuple):
    method: str
    path: str
    status: int
    error: str


class _ApiError(Exception):
    def __init__(self, status: int, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.extra = extra


class _RateLimited(_ApiError):
    """A 429, with the headers that go with it."""

    def __init__(self, error: str, headers: dict[str, str], **extra: Any) -> None:
        super().__init__(429, error, **extra)
        self.headers = headers


def _invalid(message: str) -> _ApiError:
    return _ApiError(400, message, code=VALIDATION)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def split_name(name: str) -> tuple[str, str]:
    """How Pipedrive derives first and last name from ``name``: the first word, and the rest."""
    parts = name.split(None, 1)
    return (parts[0] if parts else ""), (parts[1].strip() if len(parts) > 1 else "")


@dataclass
class _Switch:
    """Answer the next ``count`` requests (whose "METHOD /path" starts with ``when``) with ``status``."""

    status: int
    count: int
    when: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    error: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def applies(self, method: str, path: str) -> bool:
        return self.count > 0 and (self.when is None or f"{method} {path}".startswith(self.when))


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakePipedrive) -> None:
        self.fake = fake
        super().__init__(("127.0.0.1", 0), _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no Nagle/delayed-ACK stall per call
        return sock, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # a client that hung up is not an error
            super().handle_error(request, client_address)


class _Handler(JsonHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:
        self.server.fake._serve(self)

    do_POST = do_PATCH = do_PUT = do_DELETE = do_GET



class FakePipedrive(LocalServer):
    """A Pipedrive company account's API on 127.0.0.1, serving from a background thread as soon as it
    is built; :meth:`stop` (or leaving the ``with`` block) shuts it down. Thread-safe."""

    def __init__(self, token: str = DEFAULT_TOKEN, *, user_id: int = 1) -> None:
        self.token = token
        self.user_id = user_id
        self.persons: dict[int, dict[str, Any]] = {}
        self.organizations: dict[int, dict[str, Any]] = {}
        self.leads: dict[str, dict[str, Any]] = {}
        self.notes: dict[int, dict[str, Any]] = {}
        self._lock = threading.RLock()
        self._requests: list[Request] = []
        self._refusals: list[Refusal] = []
        self._switches: list[_Switch] = []
        self._ids = itertools.count(1)
        self._start_serving(_Server(self), "FakePipedrive")

    # ---------------------------------------------------------------- lifecycle

    # (start and stop: tests/fake_http.py)

    # ---------------------------------------------------------------- what the test reads and switches

    @property
    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._requests)

    @property
    def refusals(self) -> list[Refusal]:
        with self._lock:
            return list(self._refusals)

    def writes(self) -> list[Request]:
        """The accepted requests that changed something (POST, PATCH, PUT, DELETE)."""
        return [r for r in self.requests if r.method != "GET" and r.status < 300]

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()
            self._refusals.clear()

    def limit(self, next_requests: int = 1, retry_after: int | None = 2, *, when: str | None = None) -> None:
        """The next ``next_requests`` requests (those starting "METHOD /path" with ``when``) get 429;
        ``retry_after`` seconds in ``Retry-After`` and ``x-ratelimit-reset`` (None: no ``Retry-After``,
        only the documented ``x-ratelimit-reset: 2``)."""
        headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(retry_after or 2)}
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        with self._lock:
            self._switches.append(_Switch(429, next_requests, when, headers, "Request over limit",
                                          {"errorCode": 429}))

    def fail_next(self, status: int = 500, count: int = 1, *, when: str | None = None) -> None:
        """The next ``count`` requests (matching ``when``, as in :meth:`limit`) get ``status``."""
        with self._lock:
            self._switches.append(_Switch(status, count, when, {}, "Internal server error"))

    def add_person(self, name: str, email: str | None = None, phone: str | None = None) -> int:
        """A person already in the account (as if typed in by a sales rep); returns the id."""
        body: dict[str, Any] = {"name": name}
        if email:
            body["emails"] = [{"value": email, "primary": True, "label": "work"}]
        if phone:
            body["phones"] = [{"value": phone, "primary": True, "label": "mobile"}]
        with self._lock:
            return int(self._create_person(body)["id"])

    # ---------------------------------------------------------------- HTTP

    def _serve(self, handler: _Handler) -> None:
        split = urlsplit(handler.path)
        path = split.path
        query = parse_qs(split.query, keep_blank_values=True)
        headers = {name.lower(): value for name, value in handler.headers.items()}
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        method = handler.command
        body: Any = None
        extra_headers: dict[str, str] = {}
        try:
            if raw:
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                    raise _ApiError(400, "Request body is not valid JSON") from None
            with self._lock:
                status, payload, extra_headers = self._respond(method, path, query, headers, body)
        except _ApiError as error:
            status = error.status
            extra_headers = error.headers if isinstance(error, _RateLimited) else {}
            payload = {"success": False, "error": error.error, "error_info": ERROR_INFO, "data": None,
                       "additional_data": None, **error.extra}
            with self._lock:
                self._refusals.append(Refusal(method, path, status, error.error))
        except Exception as exc:  # a bug in the fake: say so instead of hanging up
            status = 500
            payload = {"success": False, "error": f"fake bug: {exc!r}", "error_info": ERROR_INFO, "data": None,
                       "additional_data": None}
        with self._lock:
            self._requests.append(Request(method, handler.path, path, query, headers, body, status))
        burst = {"x-ratelimit-limit": str(BURST_LIMIT), "x-ratelimit-remaining": str(BURST_LIMIT - 1),
                 "x-ratelimit-reset": "2", "x-daily-requests-left": "9999"}
        handler.reply(status, payload, {**burst, **extra_headers})

    def _respond(self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str],
                 body: Any) -> tuple[int, dict[str, Any], dict[str, str]]:
        self._switches = [s for s in self._switches if s.count > 0]
        for switch in self._switches:  # a server error comes before anything is checked
            if switch.status != 429 and switch.applies(method, path):
                switch.count -= 1
                raise _ApiError(switch.status, switch.error, **switch.extra)
        given = headers.get("x-api-token") or (query.get("api_token") or [""])[0]
        if given != self.token:
            raise _ApiError(401, "unauthorized access", errorCode=401)
        for switch in self._switches:  # burst limits are counted per token: after the token is known
            if switch.status == 429 and switch.applies(method, path):
                switch.count -= 1
                raise _RateLimited(switch.error, switch.headers, **switch.extra)
        return self._route(method, path, query, body)

    def _route(self, method: str, path: str, query: dict[str, list[str]],
               body: Any) -> tuple[int, dict[str, Any], dict[str, str]]:
        routes: list[tuple[str, dict[str, Any]]] = [
            (r"/api/v2/persons/search", {"GET": lambda: self._search(path, query)}),
            (r"/api/v2/persons", {"POST": lambda: self._post_person(body)}),
            (r"/api/v2/persons/(\d+)", {"GET": lambda i: self._get_person(i),
                                        "PATCH": lambda i: self._patch_person(i, body)}),
            (r"/api/v2/organizations/search", {"GET": lambda: self._search(path, query)}),
            (r"/api/v2/organizations", {"POST": lambda: self._post_organization(body)}),
            (r"/v1/leads/search", {"GET": lambda: self._search(path, query)}),
            (r"/v1/leads", {"POST": lambda: self._post_lead(body)}),
            (r"/v1/leads/([0-9a-f-]+)", {"GET": lambda i: self._get_lead(i),
                                         "PATCH": lambda i: self._patch_lead(i, body)}),
            (r"/v1/notes", {"GET": lambda: self._get_notes(query), "POST": lambda: self._post_note(body)}),
        ]
        for pattern, methods in routes:
            matched = re.fullmatch(pattern, path)
            if matched is None:
                continue
            if method not in methods:
                raise _ApiError(405, "Method not allowed")
            status, data, additional = methods[method](*matched.groups())
            return status, {"success": True, "data": data, "additional_data": additional}, {}
        raise _ApiError(404, "Unknown method .")

    # ---------------------------------------------------------------- searches

    def _search(self, path: str, query: dict[str, list[str]]) -> tuple[int, Any, Any]:
        term = (query.get("term") or [""])[0]
        exact_text = (query.get("exact_match") or ["false"])[0]
        if exact_text not in ("true", "false"):
            raise _invalid(f"exact_match: {exact_text!r} is not a boolean (true or false)")
        exact = exact_text == "true"
        if len(term.strip()) < (1 if exact else 2):
            raise _invalid("term: the search term must be at least 2 characters long (1 with exact_match)")
        allowed = SEARCH_FIELDS[path]
        fields_text = (query.get("fields") or [",".join(sorted(allowed))])[0]
        fields = [f.strip() for f in fields_text.split(",")]
        unknown = [f for f in fields if f not in allowed]
        if unknown:
            raise _invalid(f"fields: {', '.join(unknown)} is not one of {', '.join(sorted(allowed))}")
        wanted = term.strip().casefold()

        def hits(values: list[str]) -> bool:
            return any((v.casefold() == wanted) if exact else (wanted in v.casefold()) for v in values)

        items: list[dict[str, Any]] = []
        if path == "/api/v2/persons/search":
            for person in self.persons.values():
                values = ([person["name"]] if "name" in fields else []) \
                    + ([e["value"] for e in person["emails"]] if "email" in fields else []) \
                    + ([p["value"] for p in person["phones"]] if "phone" in fields else [])
                if hits(values):
                    org = self.organizations.get(person["org_id"]) if person["org_id"] else None
                    items.append({"result_score": 1.0, "item": {
                        "id": person["id"], "type": "person", "name": person["name"],
                        "phones": [p["value"] for p in person["phones"]],
                        "emails": [e["value"] for e in person["emails"]],
                        "visible_to": person["visible_to"], "owner": {"id": person["owner_id"]},
                        "organization": ({"id": org["id"], "name": org["name"], "address": None} if org else None),
                        "custom_fields": [], "notes": []}})
            return 200, {"items": items}, {"next_cursor": None}
        if path == "/api/v2/organizations/search":
            for org in self.organizations.values():
                if hits([org["name"]] if "name" in fields else []):
                    items.append({"result_score": 1.0, "item": {
                        "id": org["id"], "type": "organization", "name": org["name"], "address": None,
                        "visible_to": org["visible_to"], "owner": {"id": org["owner_id"]},
                        "custom_fields": [], "notes": []}})
            return 200, {"items": items}, {"next_cursor": None}
        for lead in self.leads.values():
            if hits([lead["title"]] if "title" in fields else []):
                linked = self.persons.get(lead["person_id"]) if lead["person_id"] else None
                owner = self.organizations.get(lead["organization_id"]) if lead["organization_id"] else None
                items.append({"result_score": 1.0, "item": {
                    "id": lead["id"], "type": "lead", "title": lead["title"], "owner": {"id": lead["owner_id"]},
                    "person": {"id": linked["id"], "name": linked["name"]} if linked else None,
                    "organization": {"id": owner["id"], "name": owner["name"]} if owner else None,
                    "phones": [], "emails": [], "custom_fields": [], "notes": [],
                    "value": None, "currency": None, "visible_to": lead["visible_to"],
                    "is_archived": lead["is_archived"]}})
        return 200, {"items": items}, {"pagination": {"start": 0, "limit": 100, "more_items_in_collection": False}}

    # ---------------------------------------------------------------- persons and organizations (v2)

    @staticmethod
    def _object(body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise _invalid("The request body must be a JSON object")
        return body

    @staticmethod
    def _unknown(body: dict[str, Any], allowed: frozenset[str]) -> None:
        unknown = sorted(key for key in body if key not in allowed)
        if unknown:
            raise _invalid(f"{unknown[0]}: unknown property")

    @staticmethod
    def _contacts(body: dict[str, Any], key: str, check: Any = None) -> list[dict[str, Any]] | None:
        if key not in body:
            return None
        value = body[key]
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise _invalid(f"{key}: must be an array of objects with a value")
        entries: list[dict[str, Any]] = []
        for n, given in enumerate(value):
            if not isinstance(given.get("value"), str) or not given["value"].strip():
                raise _invalid(f"{key}[{n}].value: required")
            if check is not None and not check(given["value"].strip()):
                raise _invalid(f"{key}[{n}].value: not a valid email address")
            entries.append({"value": given["value"].strip(), "label": str(given.get("label") or "work"),
                            "primary": given.get("primary") is True})
        if sum(e["primary"] for e in entries) > 1:
            raise _invalid(f"{key}: only one value can be primary")
        if entries and not any(e["primary"] for e in entries):
            entries[0]["primary"] = True
        return entries

    def _names(self, body: dict[str, Any], required: bool) -> dict[str, str] | None:
        if "name" in body:
            if not isinstance(body["name"], str) or not body["name"].strip():
                raise _invalid("name: must be a non-empty string")
            first, last = split_name(body["name"])
            return {"name": " ".join(body["name"].split()), "first_name": first, "last_name": last}
        if "first_name" in body or "last_name" in body:
            given_first, given_last = body.get("first_name"), body.get("last_name")
            if not isinstance(given_first, str) or not isinstance(given_last, str):
                raise _invalid("name: either name or both first_name and last_name must be provided")
            if not given_first.strip() and not given_last.strip():
                raise _invalid("first_name, last_name: both can not be empty strings")
            return {"name": " ".join(f"{given_first} {given_last}".split()), "first_name": given_first.strip(),
                    "last_name": given_last.strip()}
        if required:
            raise _invalid("name: either name or both first_name and last_name must be provided")
        return None

    def _check_person(self, body: Any, creating: bool) -> tuple[dict[str, Any], dict[str, Any]]:
        body = self._object(body)
        self._unknown(body, PERSON_FIELDS)
        names = self._names(body, required=creating)
        changes: dict[str, Any] = dict(names or {})
        for key, check in (("emails", EMAIL.fullmatch), ("phones", None)):
            entries = self._contacts(body, key, check)
            if entries is not None:
                changes[key] = entries
        if "org_id" in body:
            if body["org_id"] is not None and (not isinstance(body["org_id"], int)
                                               or body["org_id"] not in self.organizations):
                raise _ApiError(404, "Organization not found")
            changes["org_id"] = body["org_id"]
        return body, changes

    def _create_person(self, body: Any) -> dict[str, Any]:
        body, changes = self._check_person(body, creating=True)
        person_id = next(self._ids)
        person = {"id": person_id, "name": "", "first_name": "", "last_name": "", "owner_id": self.user_id,
                  "org_id": None, "add_time": _now(), "update_time": _now(), "emails": [], "phones": [],
                  "is_deleted": False, "visible_to": 3, "label_ids": [], "picture_id": None, "custom_fields": {}}
        person.update(changes)
        self.persons[person_id] = person
        return person

    def _post_person(self, body: Any) -> tuple[int, Any, Any]:
        return 200, copy.deepcopy(self._create_person(body)), None

    def _person(self, person_id: str) -> dict[str, Any]:
        person = self.persons.get(int(person_id))
        if person is None:
            raise _ApiError(404, "Person not found")
        return person

    def _get_person(self, person_id: str) -> tuple[int, Any, Any]:
        return 200, copy.deepcopy(self._person(person_id)), None

    def _patch_person(self, person_id: str, body: Any) -> tuple[int, Any, Any]:
        person = self._person(person_id)
        _, changes = self._check_person(body, creating=False)
        person.update(changes)
        person["update_time"] = _now()
        return 200, copy.deepcopy(person), None

    def _post_organization(self, body: Any) -> tuple[int, Any, Any]:
        body = self._object(body)
        self._unknown(body, ORGANIZATION_FIELDS)
        if not isinstance(body.get("name"), str) or not body["name"].strip():
            raise _invalid("name: required")
        org_id = next(self._ids)
        org = {"id": org_id, "name": body["name"].strip(), "owner_id": self.user_id, "add_time": _now(),
               "update_time": _now(), "is_deleted": False, "visible_to": 3, "label_ids": [], "address": None,
               "custom_fields": {}}
        self.organizations[org_id] = org
        return 200, copy.deepcopy(org), None

    # ---------------------------------------------------------------- leads and notes (v1)

    def _lead_links(self, body: dict[str, Any]) -> None:
        for key, known, what in (("person_id", self.persons, "Person"),
                                 ("organization_id", self.organizations, "Organization")):
            value = body.get(key)
            if value is None:
                continue
            if not isinstance(value, int) or isinstance(value, bool):
                raise _ApiError(400, f'"{key}" must be a number.')
            if value not in known:
                raise _ApiError(404, f"{what} with id {value} not found")

    def _post_lead(self, body: Any) -> tuple[int, Any, Any]:
        if not isinstance(body, dict):
            raise _ApiError(400, '"value" must be of type object.')
        unknown = sorted(key for key in body if key not in LEAD_FIELDS)
        if unknown:
            raise _ApiError(400, f'"{unknown[0]}" is not allowed.')
        if not isinstance(body.get("title"), str) or not body["title"].strip():
            raise _ApiError(400, '"title" is required.')
        if body.get("person_id") is None and body.get("organization_id") is None:
            raise _ApiError(400, '"person_id" or "organization_id" is required.')
        self._lead_links(body)
        lead_id = str(uuid.uuid4())
        lead = {"id": lead_id, "title": body["title"], "owner_id": self.user_id, "creator_id": self.user_id,
                "label_ids": [], "person_id": body.get("person_id"), "organization_id": body.get("organization_id"),
                "source_name": "API", "origin": "API", "origin_id": body.get("origin_id"), "channel": None,
                "channel_id": None, "is_archived": False, "was_seen": False, "value": None,
                "expected_close_date": None, "next_activity_id": None, "add_time": _now(), "update_time": _now(),
                "visible_to": "3", "cc_email": f"company+1+lead{lead_id[:8]}@fake.pipedrivemail.com"}
        self.leads[lead_id] = lead
        return 201, copy.deepcopy(lead), None

    def _lead(self, lead_id: str) -> dict[str, Any]:
        lead = self.leads.get(lead_id)
        if lead is None:
            raise _ApiError(404, "requested lead not found", error_info="Object was not found.")
        return lead

    def _get_lead(self, lead_id: str) -> tuple[int, Any, Any]:
        return 200, copy.deepcopy(self._lead(lead_id)), None

    def _patch_lead(self, lead_id: str, body: Any) -> tuple[int, Any, Any]:
        lead = self._lead(lead_id)
        if not isinstance(body, dict):
            raise _ApiError(400, '"value" must be of type object.')
        unknown = sorted(key for key in body if key not in LEAD_FIELDS | {"is_archived"})
        if unknown:
            raise _ApiError(400, f'"{unknown[0]}" is not allowed.')
        if "title" in body and (not isinstance(body["title"], str) or not body["title"].strip()):
            raise _ApiError(400, '"title" is not allowed to be empty.')
        self._lead_links(body)
        lead.update(body)
        lead["update_time"] = _now()
        return 200, copy.deepcopy(lead), None

    def _get_notes(self, query: dict[str, list[str]]) -> tuple[int, Any, Any]:
        lead_id = query["lead_id"][0] if query.get("lead_id") else None
        start = int((query.get("start") or ["0"])[0] or 0)
        limit = int((query.get("limit") or ["100"])[0] or 100)
        found = [n for n in self.notes.values() if lead_id is None or n["lead_id"] == lead_id]
        page = found[start:start + limit]
        more = start + limit < len(found)
        pagination: dict[str, Any] = {"start": start, "limit": limit, "more_items_in_collection": more}
        if more:
            pagination["next_start"] = start + limit
        return 200, (copy.deepcopy(page) or None), {"pagination": pagination}

    def _post_note(self, body: Any) -> tuple[int, Any, Any]:
        if not isinstance(body, dict):
            raise _ApiError(400, '"value" must be of type object.')
        if not isinstance(body.get("content"), str) or not body["content"].strip():
            raise _ApiError(400, '"content" is required.')
        if not any(body.get(key) not in (None, "") for key in NOTE_TARGETS):
            raise _ApiError(400, "One of lead_id, deal_id, person_id, org_id or project_id is required.")
        if body.get("lead_id") not in (None, ""):
            self._lead(str(body["lead_id"]))
        note_id = next(self._ids)
        note = {"id": note_id, "active_flag": True, "add_time": _now(), "update_time": _now(),
                "content": body["content"], "lead_id": body.get("lead_id"), "deal_id": body.get("deal_id"),
                "person_id": body.get("person_id"), "org_id": body.get("org_id"),
                "project_id": body.get("project_id"), "user_id": self.user_id, "last_update_user_id": None,
                "pinned_to_lead_flag": False, "pinned_to_deal_flag": False, "pinned_to_organization_flag": False,
                "pinned_to_person_flag": False, "pinned_to_project_flag": False}
        self.notes[note_id] = note
        return 200, copy.deepcopy(note), None
