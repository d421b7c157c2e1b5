"""A fake of HubSpot's CRM API (v3 objects, one v4 association call) for tests, standard library only.

It answers on 127.0.0.1 and a free port, like ``tests/fake_telegram.py``::

    with FakeHubSpot() as fake:
        hubspot = HubSpot(fake.token, base_url=fake.url)
        with httpx.Client(timeout=5) as client:
            result = hubspot.send(event, client)
        fake.objects("deals")                   # what HubSpot now holds
        fake.limit(next_requests=2)             # the next two requests get 429
        fake.fail_next(500)                     # the next request gets 500

Endpoints (``{type}``: ``contacts``, ``deals``, ``notes`` or their ids ``0-1``, ``0-3``, ``0-46``):

* ``POST /crm/v3/objects/{type}`` create, with ``associations`` in the body;
* ``GET|PATCH /crm/v3/objects/{type}/{id}`` (``?properties=``, ``?associations=``, ``?idProperty=``);
* ``POST /crm/v3/objects/{type}/search`` (EQ, NEQ, IN, NOT_IN, HAS_PROPERTY, NOT_HAS_PROPERTY,
  CONTAINS_TOKEN; sorts; limit and after);
* ``POST /crm/v3/objects/{type}/batch/read``;
* ``PUT /crm/v4/objects/{type}/{id}/associations/default/{type}/{id}``.

Records come back as HubSpot returns them (``id`` a numeric string, ``properties`` all strings,
``createdAt``, ``updatedAt``, ``archived``); associations are kept both ways with HubSpot's type ids
(deal to contact 3, contact to deal 4, note to contact 202, contact to note 201, note to deal 214,
deal to note 213). Every request is in :attr:`FakeHubSpot.requests` (method, path, query, headers,
JSON body, status), every refusal also in :attr:`FakeHubSpot.refusals`.

What it refuses, and the documented behaviour of the real API each refusal copies. Written from
HubSpot's developer documentation as remembered, not checked against it while writing: the status
codes and the ``category`` values are the documented ones; the ``message`` wording is HubSpot's where
marked (*), close to it elsewhere. Every error body has HubSpot's shape:
``{"status": "error", "message", "correlationId", "category", ...}``.

* 401 INVALID_AUTHENTICATION: no ``Authorization: Bearer`` header, or a token other than the private
  app's. Authentication is by header only (API keys in ``?hapikey=`` were retired in 2022), so a token
  in the query string is refused like a missing one. Message (*): "Authentication credentials not
  found. This API supports OAuth 2.0 authentication ..." (used for a wrong token too: that wording
  could not be checked).
* 403 MISSING_SCOPES: the token's private app lacks the scope the call needs
  (``crm.objects.contacts.read``/``.write``, ``crm.objects.deals.read``/``.write``), with
  ``errors[0].context.requiredGranularScopes`` (*). Notes ask for no scope here (not modelled).
* 429 RATE_LIMIT (``errorType``, ``policyName``; message (*) "You have reached your
  ten_secondly_rolling limit." / "... secondly limit."): the private-app burst limit (100 requests in
  a rolling 10 seconds, the ``X-HubSpot-RateLimit-*`` headers on every answer but search's, as
  documented), the search endpoints' limit of 5 requests a second per token (documented), and the
  test's switch :meth:`limit`. All three send ``Retry-After`` (the seconds until the window frees);
  the docs describe the ``X-HubSpot-RateLimit-*`` headers rather than ``Retry-After``, so
  ``limit(retry_after=None)`` leaves it out, as HubSpot may.
* 400 VALIDATION_ERROR, "Property values were not valid: [{...}]" with HubSpot's per-property
  entries (``isValid``, ``message``, ``error``, ``name``, ``localizedErrorMessage``) (*):
  ``INVALID_EMAIL`` ("Email address x is invalid"), ``PROPERTY_DOESNT_EXIST`` ('Property "x" does not
  exist', for every property a portal does not define: custom properties must be created first),
  ``INVALID_OPTION`` (a ``pipeline`` or ``dealstage`` the portal does not have: the default pipeline's
  stage ids only). A note without ``hs_timestamp`` (the docs call it required; the error's wording
  here is not HubSpot's for sure).
* 400 VALIDATION_ERROR "Invalid input JSON ...: Cannot build ..., some of required attributes are not
  set [properties]" (*): a create or update body without ``properties``, a body that is not JSON
  (and 415 for a body that is not ``application/json``), a search filter without ``propertyName`` or
  ``operator``, a batch read without ``inputs``; and HubSpot's documented limits: a search ``limit``
  over 200, more than 5 filter groups, 6 filters in a group or 18 in all, more than 100 batch
  inputs, a search on a property the object type does not have.
* 400 (wording not HubSpot's for sure) for an association whose type id does not lead from this
  object type, an unknown ``associationCategory``, or a target record that does not exist.
* 409 CONFLICT "Contact already exists. Existing ID: N" (*): creating a contact (or updating one) to
  an email another contact has; emails are unique per portal and compared without case.
* 404 OBJECT_NOT_FOUND "resource not found": a record id (or ``idProperty`` value) that does not exist,
  on GET, PATCH and the v4 association; a batch read with some unknown ids answers 207 with them in
  ``errors`` (*: "Could not get some DEAL objects, they may be deleted or not exist. ...").
  An unknown path is 404 too, and a known path with another method 405.
* 5xx: :meth:`fail_next` (any status, for one or more requests, optionally only for a method and path).

Also like HubSpot: search is an index that lags behind writes (``search_delay`` seconds: records
created more recently are not found yet; 0 by default), emails are stored in lower case and EQ compares
strings without case. What the fake cannot do it answers with 500 "fake: not implemented ..." and
lists in :attr:`FakeHubSpot.unimplemented`, so a test notices.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import ThreadingHTTPServer
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, unquote, urlsplit

from tests.fake_http import JsonHandler, LocalServer

__all__ = ["DEFAULT_TOKEN", "STAGES", "FakeHubSpot", "Refusal", "Request"]

DEFAULT_TOKEN = "pat-na1-11111111-2222-3333-4444-555555555555"
ALL_SCOPES = frozenset({
    "crm.objects.contacts.read", "crm.objects.contacts.write", "crm.objects.deals.read", "crm.objects.deals.write",
})
AUTH_MESSAGE = ("Authentication credentials not found. This API supports OAuth 2.0 authentication and you can "
                "find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview")
SCOPES_MESSAGE = ("This app hasn't been granted all required scopes to make this call. Read more about required "
                  "scopes here: https://developers.hubspot.com/scopes.")
BURST_LIMIT = 100  # private apps, Free/Starter: requests per rolling 10 seconds
BURST_WINDOW = 10.0
DAILY_LIMIT = 250_000
SEARCH_PER_SECOND = 5
SEARCH_MAX_LIMIT = 200
MAX_FILTER_GROUPS, MAX_FILTERS_PER_GROUP, MAX_FILTERS = 5, 6, 18
MAX_BATCH = 100

TYPES = {"contacts": "contacts", "0-1": "contacts", "deals": "deals", "0-3": "deals", "notes": "notes", "0-46": "notes"}
SINGULAR = {"contacts": "contact", "deals": "deal", "notes": "note"}
SCOPED = frozenset({"contacts", "deals"})
# the default sales pipeline's stages, by internal id
STAGES = ("appointmentscheduled", "qualifiedtobuy", "presentationscheduled", "decisionmakerboughtin",
          "contractsent", "closedwon", "closedlost")
# HubSpot-defined association type ids: (from, to) -> id, one for each direction
ASSOCIATION_TYPES = {
    ("deals", "contacts"): 3, ("contacts", "deals"): 4,
    ("notes", "contacts"): 202, ("contacts", "notes"): 201,
    ("notes", "deals"): 214, ("deals", "notes"): 213,
}
TYPE_ENDS = {type_id: pair for pair, type_id in ASSOCIATION_TYPES.items()}
CATEGORIES = frozenset({"HUBSPOT_DEFINED", "USER_DEFINED", "INTEGRATOR_DEFINED"})
# the properties each object has in a fresh portal (a subset of HubSpot's defaults), and the read-only ones
PROPERTIES = {
    "contacts": {"email", "firstname", "lastname", "phone", "mobilephone", "company", "website", "jobtitle",
                 "lifecyclestage", "hs_language", "hubspot_owner_id", "city", "country"},
    "deals": {"dealname", "pipeline", "dealstage", "amount", "closedate", "description", "dealtype",
              "hubspot_owner_id"},
    "notes": {"hs_timestamp", "hs_note_body", "hubspot_owner_id", "hs_attachment_ids"},
}
READ_ONLY = {
    "contacts": ("hs_object_id", "createdate", "lastmodifieddate"),
    "deals": ("hs_object_id", "createdate", "hs_lastmodifieddate"),
    "notes": ("hs_object_id", "hs_createdate", "hs_lastmodifieddate"),
}
DEFAULT_READ = {  # what a read returns when it names no properties
    "contacts": ("email", "firstname", "lastname", "createdate", "lastmodifieddate", "hs_object_id"),
    "deals": ("dealname", "amount", "closedate", "pipeline", "dealstage", "createdate", "hs_lastmodifieddate",
              "hs_object_id"),
    "notes": ("hs_createdate", "hs_lastmodifieddate", "hs_object_id"),
}
OPERATORS = frozenset({"EQ", "NEQ", "LT", "LTE", "GT", "GTE", "BETWEEN", "IN", "NOT_IN", "HAS_PROPERTY",
                       "NOT_HAS_PROPERTY", "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"})
EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")


class Request(NamedTuple):
    """Any request the fake received, whatever became of it."""

    method: str
    path: str  # without the query
    query: str
    headers: dict[str, str]
    json: Any  # the decoded body (None: none, or not JSON)
    status: int


class Refusal(NamedTuple):
    """A request answered with an error: its status and HubSpot's error body."""

    method: str
    path: str
    status: int
    body: dict[str, Any]


@dataclass
class _Record:
    id: str
    type: str
    properties: dict[str, str]
    created: float
    updated: float
    associations: dict[str, dict[str, set[int]]] = field(default_factory=dict)  # type -> id -> type ids


class _Error(Exception):
    def __init__(self, status: int, message: str, category: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"status": "error", "message": message, "correlationId": str(uuid.uuid4())}
        if category:
            self.body["category"] = category
        self.body.update(extra)
        self.headers: dict[str, str] = {}


def _invalid_properties(*errors: tuple[str, str, str]) -> _Error:
    """HubSpot's 400 for property values: (error code, property name, message) each."""
    entries = [{"isValid": False, "message": message, "error": code, "name": name, "localizedErrorMessage": message}
               for code, name, message in errors]
    return _Error(400, f"Property values were not valid: {json.dumps(entries)}", "VALIDATION_ERROR")


def _cannot_build(what: str, missing: str) -> _Error:
    return _Error(400, f"Invalid input JSON on line 1, column 1: Cannot build {what}, some of required attributes "
                       f"are not set [{missing}]", "VALIDATION_ERROR")


def _not_found() -> _Error:
    return _Error(404, "resource not found", "OBJECT_NOT_FOUND")


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(moment * 1000) % 1000:03d}Z"


class _Unimplemented(Exception):
    pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeHubSpot) -> None:
        self.fake = fake
        super().__init__(("127.0.0.1", 0), _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no Nagle/delayed-ACK stalls
        return sock, address


class _Handler(JsonHandler):
    content_type = "application/json;charset=utf-8"
    protocol_version = "HTTP/1.1"
    server: _Server

    def _serve(self) -> None:
        self.server.fake._serve(self)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve



class FakeHubSpot(LocalServer):
    """HubSpot's CRM API on 127.0.0.1 (a free port), serving from a background thread at once."""

    def __init__(self, token: str = DEFAULT_TOKEN, *, scopes: Iterable[str] = ALL_SCOPES,
                 search_delay: float = 0.0, search_per_second: int | None = SEARCH_PER_SECOND,
                 burst_limit: int | None = BURST_LIMIT) -> None:
        self.token = token
        self.scopes = frozenset(scopes)
        self.search_delay = search_delay
        self.search_per_second = search_per_second
        self.burst_limit = burst_limit
        self._lock = threading.RLock()
        self._records: dict[str, _Record] = {}
        self._ids = itertools.count(1001)
        self._requests: list[Request] = []
        self._refusals: list[Refusal] = []
        self.unimplemented: list[str] = []
        self._limited: deque[tuple[float | None, str]] = deque()  # the switch: (Retry-After, policy) per request
        self._failures: list[list[Any]] = []  # [status, count, method, path]
        self._window: deque[float] = deque()  # accepted requests, for the 10-second limit
        self._searches: deque[float] = deque()
        self._start_serving(_Server(self), "FakeHubSpot")

    # ---------------------------------------------------------------- lifecycle

    # (start and stop: tests/fake_http.py)

    # ---------------------------------------------------------------- switches for tests

    def limit(self, next_requests: int = 1, retry_after: float | None = 1,
              policy: str = "TEN_SECONDLY_ROLLING") -> None:
        """The next ``next_requests`` requests (with a valid token) get 429 for ``policy``, with
        ``Retry-After: retry_after`` (left out when None)."""
        with self._lock:
            self._limited.extend([(retry_after, policy)] * next_requests)

    def fail_next(self, status: int = 500, count: int = 1, method: str | None = None, path: str | None = None) -> None:
        """The next ``count`` requests (only those with this method and path, when given) get ``status``."""
        with self._lock:
            self._failures.append([status, count, method, path])

    def add(self, object_type: str, properties: dict[str, Any], associations: Iterable[tuple[str, str]] = ()) -> str:
        """A record that already exists (made before the test, visible to search at once): its id."""
        with self._lock:
            values = {k: "" if v is None else str(v) for k, v in properties.items()}
            if values.get("email"):
                values["email"] = values["email"].strip().lower()  # as HubSpot keeps it
            record = self._create(TYPES[object_type], values, created=time.time() - 3600)
            for to_type, to_id in associations:
                self._associate(record, self._records[to_id], ASSOCIATION_TYPES[(record.type, to_type)])
            return record.id

    # ---------------------------------------------------------------- what tests read

    @property
    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._requests)

    @property
    def refusals(self) -> list[Refusal]:
        with self._lock:
            return list(self._refusals)

    def objects(self, object_type: str) -> list[dict[str, Any]]:
        """Every record of a type, oldest first: ``id``, ``properties``, ``associations`` (type -> ids),
        ``createdAt``, ``updatedAt``."""
        with self._lock:
            kind = TYPES[object_type]
            return [self._view(record) for record in self._records.values() if record.type == kind]

    def get(self, record_id: str) -> dict[str, Any]:
        with self._lock:
            return self._view(self._records[record_id])

    def writes(self) -> list[Request]:
        """The requests that were accepted and could have changed something (not reads or searches)."""
        return [r for r in self.requests if r.method in ("POST", "PATCH", "PUT", "DELETE") and r.status < 300
                and not r.path.endswith(("/search", "/batch/read"))]

    @staticmethod
    def _view(record: _Record) -> dict[str, Any]:
        return {"id": record.id, "properties": dict(record.properties), "createdAt": _iso(record.created),
                "updatedAt": _iso(record.updated),
                "associations": {kind: sorted(ids) for kind, ids in record.associations.items() if ids}}

    # ---------------------------------------------------------------- HTTP

    def _serve(self, handler: _Handler) -> None:
        split = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
        headers = dict(handler.headers.items())
        method = handler.command
        with self._lock:
            try:
                status, payload, extra = self._respond(method, split.path, split.query, headers, raw, body)
            except _Error as error:
                status, payload, extra = error.status, error.body, error.headers
                self._refusals.append(Refusal(method, split.path, status, payload))
            except _Unimplemented as missing:
                self.unimplemented.append(str(missing))
                status, payload, extra = 500, {"status": "error", "message": f"fake: not implemented: {missing}"}, {}
            except Exception as exc:  # a bug in the fake: say so rather than hang up
                self.unimplemented.append(repr(exc))
                status, payload, extra = 500, {"status": "error", "message": f"fake: {exc!r}"}, {}
            self._requests.append(Request(method, split.path, split.query, headers, body, status))
        extra = {"X-HubSpot-Correlation-Id": str(payload.get("correlationId") or uuid.uuid4()), **extra}
        handler.reply(status, payload, extra)

    def _respond(self, method: str, path: str, query: str, headers: dict[str, str], raw: bytes,
                 body: Any) -> tuple[int, Any, dict[str, str]]:
        now = time.monotonic()
        self._fail_if_switched(method, path)
        authorization = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or token.strip() != self.token:
            raise _Error(401, AUTH_MESSAGE, "INVALID_AUTHENTICATION")
        search = path.endswith("/search")
        self._rate_limit(now, search)
        rate_headers = {} if search else self._rate_headers(now)
        if raw:
            content_type = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
            if not content_type.startswith("application/json"):
                raise _Error(415, "Unsupported Media Type", "VALIDATION_ERROR")
            if body is None:
                raise _Error(400, "Invalid input JSON on line 1, column 1: Unexpected character", "VALIDATION_ERROR")
        params: dict[str, list[str]] = {}
        for name, value in parse_qsl(query, keep_blank_values=True):
            params.setdefault(name, []).append(value)
        status, payload = self._route(method, [unquote(p) for p in path.split("/")[1:]], params, body)
        return status, payload, rate_headers

    def _fail_if_switched(self, method: str, path: str) -> None:
        for failure in self._failures:
            status, count, only_method, only_path = failure
            if (only_method is None or only_method == method) and (only_path is None or only_path == path):
                failure[1] = count - 1
                if failure[1] <= 0:
                    self._failures.remove(failure)
                raise _Error(status, "internal error" if status >= 500 else "error", None)

    def _rate_limit(self, now: float, search: bool) -> None:
        if self._limited:
            retry_after, policy = self._limited.popleft()
            self._too_many(policy, retry_after)
        while self._window and self._window[0] <= now - BURST_WINDOW:
            self._window.popleft()
        if self.burst_limit is not None and len(self._window) >= self.burst_limit:
            self._too_many("TEN_SECONDLY_ROLLING", max(1, round(self._window[0] + BURST_WINDOW - now)))
        if search:
            while self._searches and self._searches[0] <= now - 1.0:
                self._searches.popleft()
            if self.search_per_second is not None and len(self._searches) >= self.search_per_second:
                self._too_many("SECONDLY", 1)
            self._searches.append(now)
        self._window.append(now)

    def _too_many(self, policy: str, retry_after: float | None) -> None:
        error = _Error(429, f"You have reached your {policy.lower()} limit.", None, errorType="RATE_LIMIT",
                       policyName=policy, requestId=str(uuid.uuid4()))
        if retry_after is not None:
            seconds = float(retry_after)
            error.headers["Retry-After"] = str(int(seconds)) if seconds.is_integer() else str(seconds)
        raise error

    def _rate_headers(self, now: float) -> dict[str, str]:
        limit = self.burst_limit or BURST_LIMIT
        return {"X-HubSpot-RateLimit-Daily": str(DAILY_LIMIT),
                "X-HubSpot-RateLimit-Daily-Remaining": str(DAILY_LIMIT - len(self._requests) - 1),
                "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(BURST_WINDOW * 1000)),
                "X-HubSpot-RateLimit-Max": str(limit),
                "X-HubSpot-RateLimit-Remaining": str(max(0, limit - len(self._window)))}

    def _route(self, method: str, parts: list[str], params: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        if len(parts) >= 4 and parts[:3] == ["crm", "v3", "objects"] and parts[3] in TYPES:
            kind, rest = TYPES[parts[3]], parts[4:]
            routes: dict[tuple[str, ...], dict[str, Any]] = {
                (): {"POST": lambda: self._create_call(kind, body)},
                ("search",): {"POST": lambda: self._search_call(kind, body)},
                ("batch", "read"): {"POST": lambda: self._batch_read_call(kind, body)},
            }
            if len(rest) == 1 and tuple(rest) not in routes:
                record_id = rest[0]
                routes[tuple(rest)] = {"GET": lambda: self._get_call(kind, record_id, params),
                                       "PATCH": lambda: self._update_call(kind, record_id, params, body)}
            if tuple(rest) in routes:
                call = routes[tuple(rest)].get(method)
                if call is None:
                    raise _Error(405, "Method Not Allowed")
                result: tuple[int, Any] = call()
                return result
        if (len(parts) == 9 and parts[:3] == ["crm", "v4", "objects"] and parts[5:7] == ["associations", "default"]
                and parts[3] in TYPES and parts[7] in TYPES):
            if method != "PUT":
                raise _Unimplemented(f"{method} on a v4 default association")
            return self._associate_call(TYPES[parts[3]], parts[4], TYPES[parts[7]], parts[8])
        if parts[:2] == ["crm", "v3"] or parts[:2] == ["crm", "v4"]:
            raise _Unimplemented(f"{method} /{'/'.join(parts)}")
        raise _not_found()

    # ---------------------------------------------------------------- the calls (lock held)

    def _need(self, kind: str, access: str) -> None:
        if kind not in SCOPED:
            return
        scope = f"crm.objects.{kind}.{access}"
        if scope not in self.scopes:
            raise _Error(403, SCOPES_MESSAGE, "MISSING_SCOPES",
                         errors=[{"message": "One or more of the following scopes are required.",
                                  "context": {"requiredGranularScopes": [scope]}}],
                         links={"scopes": "https://developers.hubspot.com/scopes"})

    def _create_call(self, kind: str, body: Any) -> tuple[int, Any]:
        self._need(kind, "write")
        if not isinstance(body, dict) or not isinstance(body.get("properties"), dict):
            raise _cannot_build("SimplePublicObjectInputForCreate", "properties")
        properties = self._valid_properties(kind, body["properties"], creating=True)
        links = self._valid_associations(kind, body.get("associations") or [])
        if kind == "contacts" and properties.get("email"):
            self._email_free(properties["email"], None)
        record = self._create(kind, properties)
        for target, type_id in links:
            self._associate(record, target, type_id)
        return 201, self._out(record, list(properties))

    def _get_call(self, kind: str, record_id: str, params: dict[str, list[str]]) -> tuple[int, Any]:
        self._need(kind, "read")
        record = self._find(kind, record_id, params)
        names = _listed(params.get("properties"))
        out = self._out(record, names)
        wanted = _listed(params.get("associations"))
        for other in wanted:
            if other not in TYPES:
                raise _Unimplemented(f"associations with {other}")
            ids = record.associations.get(TYPES[other], {})
            if ids:
                out.setdefault("associations", {})[other] = {"results": [
                    {"id": to_id, "type": f"{SINGULAR[kind]}_to_{SINGULAR[TYPES[other]]}"} for to_id in sorted(ids)]}
        return 200, out

    def _update_call(self, kind: str, record_id: str, params: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        self._need(kind, "write")
        record = self._find(kind, record_id, params)
        if not isinstance(body, dict) or not isinstance(body.get("properties"), dict):
            raise _cannot_build("SimplePublicObjectInput", "properties")
        properties = self._valid_properties(kind, body["properties"], creating=False)
        if kind == "contacts" and properties.get("email"):
            self._email_free(properties["email"], record.id)
        record.properties.update(properties)
        record.updated = time.time()
        self._stamp(record)
        return 200, self._out(record, list(properties))

    def _search_call(self, kind: str, body: Any) -> tuple[int, Any]:
        self._need(kind, "read")
        if not isinstance(body, dict):
            raise _cannot_build("PublicObjectSearchRequest", "filterGroups")
        if body.get("query"):
            raise _Unimplemented("search by query")
        limit = body.get("limit", 10)
        if not isinstance(limit, int) or not 0 <= limit <= SEARCH_MAX_LIMIT:
            raise _Error(400, f"limit must be between 0 and {SEARCH_MAX_LIMIT}", "VALIDATION_ERROR")
        groups = body.get("filterGroups") or []
        if len(groups) > MAX_FILTER_GROUPS:
            raise _Error(400, f"Too many filter groups: {len(groups)}, the limit is {MAX_FILTER_GROUPS}",
                         "VALIDATION_ERROR")
        total_filters = 0
        for group in groups:
            filters = group.get("filters") or [] if isinstance(group, dict) else []
            total_filters += len(filters)
            if len(filters) > MAX_FILTERS_PER_GROUP:
                raise _Error(400, f"Too many filters in a group: {len(filters)}, the limit is {MAX_FILTERS_PER_GROUP}",
                             "VALIDATION_ERROR")
            for one in filters:
                for required in ("propertyName", "operator"):
                    if not isinstance(one, dict) or not one.get(required):
                        raise _cannot_build("Filter", required)
                if one["operator"] not in OPERATORS:
                    raise _Error(400, f"Invalid input JSON: unknown operator {one['operator']}", "VALIDATION_ERROR")
                self._known_property(kind, one["propertyName"])
        if total_filters > MAX_FILTERS:
            raise _Error(400, f"Too many filters: {total_filters}, the limit is {MAX_FILTERS}", "VALIDATION_ERROR")
        visible_before = time.time() - self.search_delay
        matches = [r for r in self._records.values()
                   if r.type == kind and r.created <= visible_before and _matches(r, groups)]
        for sort in reversed(body.get("sorts") or []):
            if isinstance(sort, str):
                sort = {"propertyName": sort.lstrip("-"), "direction": "DESCENDING" if sort[0] == "-" else "ASCENDING"}
            name = sort.get("propertyName")
            self._known_property(kind, name)
            matches.sort(key=lambda r, name=name: _sort_key(r.properties.get(name)),
                         reverse=sort.get("direction") == "DESCENDING")
        after = int(body.get("after") or 0)
        page = matches[after:after + limit]
        out: dict[str, Any] = {"total": len(matches),
                               "results": [self._out(r, body.get("properties") or [], search=True) for r in page]}
        if after + limit < len(matches):
            out["paging"] = {"next": {"after": str(after + limit)}}
        return 200, out

    def _batch_read_call(self, kind: str, body: Any) -> tuple[int, Any]:
        self._need(kind, "read")
        if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
            raise _cannot_build("BatchReadInputSimplePublicObjectId", "inputs")
        if body.get("idProperty"):
            raise _Unimplemented("batch read by idProperty")
        inputs = body["inputs"]
        if len(inputs) > MAX_BATCH:
            raise _Error(400, f"Too many inputs: {len(inputs)}, the limit is {MAX_BATCH}", "VALIDATION_ERROR")
        started = _iso(time.time())
        found, missing = [], []
        for item in inputs:
            record_id = str(item.get("id")) if isinstance(item, dict) else ""
            record = self._records.get(record_id)
            if record is None or record.type != kind:
                missing.append(record_id)
            else:
                found.append(self._out(record, body.get("properties") or []))
        out: dict[str, Any] = {"status": "COMPLETE", "results": found, "startedAt": started,
                               "completedAt": _iso(time.time())}
        if not missing:
            return 200, out
        out["numErrors"] = 1
        out["errors"] = [{"status": "error", "category": "OBJECT_NOT_FOUND",
                          "message": f"Could not get some {SINGULAR[kind].upper()} objects, they may be deleted or "
                                     "not exist. Check that ids are valid.",
                          "context": {"ids": missing}}]
        return 207, out

    def _associate_call(self, kind: str, record_id: str, other: str, other_id: str) -> tuple[int, Any]:
        self._need(kind, "write")
        type_id = ASSOCIATION_TYPES.get((kind, other))
        if type_id is None:
            raise _Error(400, f"{SINGULAR[kind]} and {SINGULAR[other]} records cannot be associated",
                         "VALIDATION_ERROR")
        record, target = self._records.get(record_id), self._records.get(other_id)
        if record is None or record.type != kind or target is None or target.type != other:
            raise _not_found()
        started = _iso(time.time())
        self._associate(record, target, type_id)
        reverse = ASSOCIATION_TYPES[(other, kind)]
        spec = "HUBSPOT_DEFINED"
        return 200, {"status": "COMPLETE", "startedAt": started, "completedAt": _iso(time.time()), "results": [
            {"from": {"id": record.id}, "to": {"id": target.id},
             "associationSpec": {"associationCategory": spec, "associationTypeId": type_id}},
            {"from": {"id": target.id}, "to": {"id": record.id},
             "associationSpec": {"associationCategory": spec, "associationTypeId": reverse}}]}

    # ---------------------------------------------------------------- helpers (lock held)

    def _find(self, kind: str, record_id: str, params: dict[str, list[str]]) -> _Record:
        id_property = (params.get("idProperty") or [""])[0]
        if id_property and id_property != "hs_object_id":
            if kind != "contacts" or id_property != "email":
                raise _Unimplemented(f"idProperty={id_property} for {kind}")
            for record in self._records.values():
                if record.type == kind and record.properties.get("email", "").lower() == record_id.lower():
                    return record
            raise _not_found()
        record = self._records.get(record_id)
        if record is None or record.type != kind:
            raise _not_found()
        return record

    def _known_property(self, kind: str, name: Any) -> None:
        if name not in PROPERTIES[kind] and name not in READ_ONLY[kind]:
            raise _Error(400, f'Property "{name}" does not exist', "VALIDATION_ERROR")

    def _valid_properties(self, kind: str, given: dict[str, Any], creating: bool) -> dict[str, str]:
        errors: list[tuple[str, str, str]] = []
        values: dict[str, str] = {}
        for name, value in given.items():
            if name not in PROPERTIES[kind] and name not in READ_ONLY[kind]:
                errors.append(("PROPERTY_DOESNT_EXIST", name, f'Property "{name}" does not exist'))
                continue
            if isinstance(value, dict | list):
                errors.append(("INVALID_PROPERTY_VALUE", name, f"{json.dumps(value)} is not a valid value for {name}"))
                continue
            if name in READ_ONLY[kind]:
                continue  # not modelled: HubSpot's answer to a read-only property
            text = "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
            if name == "email" and text:
                text = text.strip().lower()
                if not EMAIL.fullmatch(text):
                    errors.append(("INVALID_EMAIL", name, f"Email address {text} is invalid"))
            values[name] = text
        if kind == "deals":
            pipeline = values.get("pipeline")
            if pipeline is not None and pipeline != "default":
                errors.append(("INVALID_OPTION", "pipeline",
                               f"{pipeline} was not one of the allowed options: [default]"))
            stage = values.get("dealstage")
            if stage is not None and stage not in STAGES:
                errors.append(("INVALID_OPTION", "dealstage",
                               f"{stage} was not one of the allowed options: [{', '.join(STAGES)}]"))
        if kind == "notes" and creating and not values.get("hs_timestamp"):
            errors.append(("REQUIRED_PROPERTY", "hs_timestamp", "hs_timestamp is required"))
        if errors:
            raise _invalid_properties(*errors)
        return values

    def _valid_associations(self, kind: str, given: Any) -> list[tuple[_Record, int]]:
        if not isinstance(given, list):
            raise _cannot_build("PublicAssociationsForObject", "associations")
        links = []
        for item in given:
            if not isinstance(item, dict) or not isinstance(item.get("to"), dict) or not item["to"].get("id"):
                raise _cannot_build("PublicAssociationsForObject", "to")
            if not isinstance(item.get("types"), list) or not item["types"]:
                raise _cannot_build("PublicAssociationsForObject", "types")
            target = self._records.get(str(item["to"]["id"]))
            for spec in item["types"]:
                category = spec.get("associationCategory") if isinstance(spec, dict) else None
                if category not in CATEGORIES:
                    raise _Error(400, f"Invalid input JSON: unknown associationCategory {category}", "VALIDATION_ERROR")
                if category != "HUBSPOT_DEFINED":
                    raise _Unimplemented(f"{category} association labels")
                type_id = spec.get("associationTypeId")
                ends = TYPE_ENDS.get(type_id) if isinstance(type_id, int) else None
                if ends is None or ends[0] != kind:
                    raise _Error(400, f"{type_id} is not a valid association type from {kind}", "VALIDATION_ERROR")
                if target is None or target.type != ends[1]:
                    raise _Error(400, f"The {ends[1]} record {item['to']['id']} to associate does not exist",
                                 "VALIDATION_ERROR")
                links.append((target, type_id))
        return links

    def _email_free(self, email: str, own_id: str | None) -> None:
        for record in self._records.values():
            if record.type == "contacts" and record.id != own_id and record.properties.get("email") == email:
                raise _Error(409, f"Contact already exists. Existing ID: {record.id}", "CONFLICT")

    def _create(self, kind: str, properties: dict[str, str], created: float | None = None) -> _Record:
        moment = time.time() if created is None else created
        record = _Record(str(next(self._ids)), kind, dict(properties), moment, moment)
        self._records[record.id] = record
        self._stamp(record)
        return record

    @staticmethod
    def _stamp(record: _Record) -> None:
        stamps = dict(zip(READ_ONLY[record.type], (record.id, _iso(record.created), _iso(record.updated)), strict=True))
        record.properties.update(stamps)

    @staticmethod
    def _associate(record: _Record, target: _Record, type_id: int) -> None:
        record.associations.setdefault(target.type, {}).setdefault(target.id, set()).add(type_id)
        reverse = ASSOCIATION_TYPES[(target.type, record.type)]
        target.associations.setdefault(record.type, {}).setdefault(record.id, set()).add(reverse)

    @staticmethod
    def _out(record: _Record, names: Iterable[str], search: bool = False) -> dict[str, Any]:
        """A record as HubSpot answers with it: the properties asked for (null when unset) and the defaults."""
        wanted = list(names) or list(DEFAULT_READ[record.type])
        if search:
            wanted += list(READ_ONLY[record.type])
        properties = {name: record.properties.get(name) for name in dict.fromkeys([*wanted, "hs_object_id"])}
        return {"id": record.id, "properties": properties, "createdAt": _iso(record.created),
                "updatedAt": _iso(record.updated), "archived": False}


def _listed(values: list[str] | None) -> list[str]:
    """A query parameter given repeated or comma-separated, as HubSpot takes both."""
    return [name.strip() for value in values or [] for name in value.split(",") if name.strip()]


def _matches(record: _Record, groups: list[Any]) -> bool:
    """Filter groups are OR'ed, the filters in one group AND'ed; no group: everything."""
    if not groups:
        return True
    return any(all(_passes(record, one) for one in group.get("filters") or []) for group in groups)


def _passes(record: _Record, one: dict[str, Any]) -> bool:
    value = record.properties.get(one["propertyName"])
    present = value not in (None, "")
    operator = one["operator"]
    wanted = str(one.get("value", "")).lower()
    if operator == "HAS_PROPERTY":
        return present
    if operator == "NOT_HAS_PROPERTY":
        return not present
    if operator in ("EQ", "NEQ"):
        equal = present and str(value).lower() == wanted
        return equal if operator == "EQ" else not equal
    if operator in ("IN", "NOT_IN"):
        inside = present and str(value).lower() in {str(v).lower() for v in one.get("values") or []}
        return inside if operator == "IN" else not inside
    if operator in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        pattern = re.escape(wanted).replace(r"\*", ".*")
        tokens = re.split(r"[^\w@.*-]+", str(value or "").lower())
        contains = any(re.fullmatch(pattern, token) for token in tokens if token)
        return contains if operator == "CONTAINS_TOKEN" else not contains
    raise _Unimplemented(f"search operator {operator}")


def _sort_key(value: str | None) -> tuple[int, float, str]:
    if value is None or value == "":
        return (1, 0.0, "")
    with contextlib.suppress(ValueError):
        return (0, float(value), "")
    return (0, 0.0, value)
