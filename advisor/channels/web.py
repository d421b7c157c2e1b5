"""The web chat: the advisor on a page (``python bot.py web``), for prospects who are not on Telegram.

Tornado serves ``templates/web/``: the page, its script and its style (no build step), and a JSON
API the page (and tests, and other front ends) use. The conversation is the same as everywhere
(the channel port, ``advisor/channels/port.py``): channel ``web`` in the same store, the same engine,
advice and words.

- ``GET /`` (``?ref=REF`` attributes the conversation, as a Telegram deep link does) serves the page
  with ``<meta name="csrf-token">`` and a Content-Security-Policy (scripts and styles from this
  server only; the page may be framed, to embed it).
- ``POST /api/turn`` with ``X-CSRF-Token`` and a JSON body: ``{"action": "start" | "back" |
  "restart"}``, ``{"choose": [value, ...]}`` or ``{"text": "..."}``; the answer holds ``question``,
  ``hint``, ``recommendation`` (as in the export) and ``html`` (the messages to show, escaped).
  Without the token: 403; not JSON: 400; over 64 KiB: 413; over ``TURNS_PER_MINUTE`` from one
  client: 429; the database locked by another process for long: 503.
- ``GET /report``: the person's full report, as the Telegram document.
The person is a random id in an HttpOnly cookie, so they resume after closing the tab or a restart
of the server. The CSRF token is a second HttpOnly cookie that the page repeats in a header (the
double-submit pattern: another site can send the cookies but cannot read the page's token). Over
HTTPS the cookies are ``SameSite=None; Secure`` so that the page works inside another site's
``<iframe>``; over plain HTTP (a laptop) they are ``SameSite=Lax``.
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
import sqlite3
import time
from collections import deque
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from markupsafe import Markup
from tornado.web import Application, HTTPError

from advisor.channels.console import plain
from advisor.channels.port import Action, ChannelPort, Refused
from advisor.channels.throttle import HardenedHandler
from advisor.i18n import LANGUAGES, NAMES, from_accept_language, pick
from advisor.render import Renderer, build_environment
from advisor.service import AdvisorService, Outcome

CHANNEL = "web"
LANGUAGE_COOKIE = "advisor_lang"  # the language picked with the page's switcher
PERSON_COOKIE = "advisor_person"
CSRF_COOKIE = "advisor_csrf"
REF_COOKIE = "advisor_ref"
REF_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_TURN_BYTES = 64 * 1024
TURNS_PER_MINUTE = 60  # per client address: a person answers a question every few seconds at most
LOOP_BUSY_MS = 100  # the most a write blocks the server waiting for another process's lock (then 503)
STATIC = {"web.js": "application/javascript; charset=utf-8", "web.css": "text/css; charset=utf-8"}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors *",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class TurnLimit:
    """At most ``per_minute`` turns from one client address in a minute (written here: tornado has
    no rate limit, and this is a sliding window of a few lines)."""

    def __init__(self, per_minute: int = TURNS_PER_MINUTE):
        self.per_minute = per_minute
        self._seen: dict[str, deque[float]] = {}

    def allow(self, address: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        if len(self._seen) > 10_000:  # forget addresses quiet for a minute
            self._seen = {a: d for a, d in self._seen.items() if d and now - d[-1] < 60}
        recent = self._seen.setdefault(address, deque())
        while recent and now - recent[0] >= 60:
            recent.popleft()
        if len(recent) >= self.per_minute:
            return False
        recent.append(now)
        return True


class Base(HardenedHandler):
    service: AdvisorService
    port: ChannelPort
    security_headers = SECURITY_HEADERS

    def initialize(self, service: AdvisorService, port: ChannelPort) -> None:
        self.service = service
        self.port = port

    def remember(self, name: str, value: str) -> None:
        secure = self.https()
        self.set_cookie(name, value, httponly=True, secure=secure, samesite="None" if secure else "Lax",
                        expires_days=365, path="/")

    def person(self) -> str | None:
        value = self.get_cookie(PERSON_COOKIE)
        return value if value and re.fullmatch(r"[A-Za-z0-9_-]{16,64}", value) else None

    def chosen_language(self) -> str | None:
        """The language the person picked on the page (its switcher: a cookie), if any."""
        return pick(self.get_cookie(LANGUAGE_COOKIE))

    def language(self) -> str:
        """The page's language: the one picked, else the conversation's, else the browser's."""
        chosen = self.chosen_language()
        if chosen:
            return chosen
        person = self.person()
        current = self.port.current(person) if person else None
        if current is not None:
            return current.language
        return from_accept_language(self.request.headers.get("Accept-Language"))

    def renderer(self) -> Renderer:
        return self.service.speaking(self.language())[1]

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish({"error": self.renderer().web("error", status=status_code)})


class Page(Base):
    def get(self) -> None:
        if self.person() is None:
            self.remember(PERSON_COOKIE, secrets.token_urlsafe(18))
        token = self.get_cookie(CSRF_COOKIE)
        if not token or not re.fullmatch(r"[A-Za-z0-9_-]{32,64}", token):
            token = secrets.token_urlsafe(32)
            self.remember(CSRF_COOKIE, token)
        ref = self.get_argument("ref", "")
        if REF_PATTERN.match(ref):
            self.remember(REF_COOKIE, ref)
        chosen = pick(self.get_argument("lang", ""))
        if chosen:  # the switcher: the page, and the conversation from its next turn, in that language
            self.remember(LANGUAGE_COOKIE, chosen)
        language = chosen or self.language()
        renderer = self.service.speaking(language)[1]
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Content-Language", language)
        self.finish(renderer.render("web/page.html", csrf=token, title=renderer._(self.service.dialog.title),
                                    language=language, languages=[(code, NAMES[code]) for code in LANGUAGES],
                                    words=Markup(json.dumps(renderer.web_words()).replace("<", "\\u003c"))))


class Static(Base):
    def get(self, name: str) -> None:
        if name not in STATIC:
            raise HTTPError(404)
        self.set_header("Content-Type", STATIC[name])
        self.set_header("Cache-Control", "no-cache")
        self.finish((Path(self.service.renderer.templates_dir) / "web" / name).read_bytes())


class Turn(Base):
    def check_xsrf_cookie(self) -> None:  # ours is checked in post(), as the API documents
        pass

    def post(self) -> None:
        if len(self.request.body) > MAX_TURN_BYTES:
            raise HTTPError(413)
        cookie, header = self.get_cookie(CSRF_COOKIE) or "", self.request.headers.get("X-CSRF-Token", "")
        person = self.person()
        if not cookie or not header or person is None or not hmac.compare_digest(cookie.encode(), header.encode()):
            raise HTTPError(403)
        if not self.settings["limit"].allow(self.address()):
            self.set_header("Retry-After", "60")
            raise HTTPError(429)
        try:
            body = json.loads(self.request.body or b"null")
        except (ValueError, UnicodeDecodeError):
            raise HTTPError(400) from None
        action = _action(body, self.get_cookie(REF_COOKIE))
        if action is None:
            raise HTTPError(400)
        if action.kind == "text" and plain(action.text) == plain(self.renderer().message("command_word", name="skip")):
            action = Action("skip")  # the hint says to type skip, in the page's language
        try:
            if action.kind == "start":  # begin in the page's language; a language picked there switches
                action = replace(action, language=self.language())
                current, chosen = self.port.current(person), self.chosen_language()
                if current is not None and chosen is not None and chosen != current.language:
                    self.service.set_language(current, chosen)
            result = self.port.act(person, action)
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) and "busy" not in str(error):
                raise
            self.set_header("Retry-After", "1")
            raise HTTPError(503) from None
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(self.answer(result, action))

    def answer(self, result: Outcome | Refused, action: Action) -> dict[str, Any]:
        renderer = self.renderer()
        messages: list[str] = []
        if isinstance(result, Refused):
            messages.append(renderer.web(result.reason))
            if result.outcome is None:
                current = self.port.current(self.person() or "")
                if current is None:
                    return {"question": None, "hint": None, "recommendation": None, "html": _html(messages)}
                result = Outcome(current, self.service.speaking(current.language)[0].resume(current.state),
                                 resumed=True)
            else:
                result = result.outcome
        renderer = self.service.renderer_of(result.conversation)
        step = result.step
        if action.kind == "start":
            low, high = self.service.engine.path_lengths()
            messages.append(renderer.web("resumed", number=step.number) if result.resumed
                            else renderer.web("welcome", count_low=low, count_high=high))
        elif action.kind == "restart":
            messages.append(renderer.web("restarted"))
        if step.kind == "finish":
            messages.append(renderer.web("finished"))
            rec = self.service.recommendation_of(result.conversation) or step.recommendation
            messages.append(renderer.recommendation(rec, "html"))
            return {"question": None, "hint": None, "recommendation": rec, "html": _html(messages)}
        assert step.question is not None
        question = renderer.question(step.question)
        messages.append(renderer.step(step, "html"))
        hint = None
        if step.hint is not None:
            hint = {"code": step.hint.code, "text": str(renderer.hints.hint(step.hint, question)).strip()}
        return {
            "question": {
                "id": question.id, "text": question.text, "type": question.type,
                "options": [{"value": o.value, "label": o.label} for o in question.options],
                "multi": question.type == "multi", "number": step.number, "total": step.total,
                "proposed": list(step.proposed), "skippable": question.skippable,
                "can_go_back": bool(step.state.history),
            },
            "hint": hint, "recommendation": None, "html": _html(messages),
        }


class Report(Base):
    def get(self) -> None:
        latest = self.port.latest_completed(self.person() or "")
        if latest is None:
            raise HTTPError(404)
        rec = self.service.recommendation_of(latest) or {}
        stamp = latest.completed_at or datetime.now(UTC).isoformat()
        self.set_header("Content-Type", "text/html; charset=utf-8")
        # the report is a document of its own, with its inline style
        self.set_header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; "
                                                   "img-src data:; base-uri 'none'")
        self.finish(self.service.renderer_of(latest).report(rec, latest.state.answers, generated_at=stamp))


class NoIcon(Base):
    def get(self) -> None:  # browsers ask for /favicon.ico: nothing, rather than a 404 in their console
        self.set_status(204)
        self.finish()


class NotFound(Base):
    def prepare(self) -> None:
        raise HTTPError(404)


def _action(body: Any, ref: str | None) -> Action | None:
    """The JSON body as an Action; None for anything else."""
    if not isinstance(body, dict) or len(body) != 1:
        return None
    if body.get("action") in ("start", "back", "restart"):
        return Action(body["action"], ref=ref if ref and REF_PATTERN.match(ref) else None)
    values = body.get("choose")
    if isinstance(values, list) and 0 < len(values) <= 50 and all(isinstance(v, str) for v in values):
        return Action("choose", values=tuple(values))
    text = body.get("text")
    if isinstance(text, str):
        return Action("skip") if text.strip().lower() == "skip" else Action("text", text=text)
    return None


def _html(messages: list[str]) -> str:
    """Each message (already escaped HTML from the templates) in its bubble."""
    return "".join(f'<div class="message">{Markup(m)}</div>' for m in messages if m.strip())


def build_web_app(service: AdvisorService, behind_proxy: bool = False) -> Application:
    """The web chat as a tornado Application."""
    port = ChannelPort(service, CHANNEL)
    args = {"service": service, "port": port}
    service.store.wait_for_writers(LOOP_BUSY_MS)
    return Application(
        [
            (r"/", Page, args),
            (r"/static/([a-z.]+)", Static, args),
            (r"/api/turn", Turn, args),
            (r"/report", Report, args),
            (r"/favicon\.ico", NoIcon, args),
        ],
        behind_proxy=behind_proxy,
        limit=TurnLimit(),
        default_handler_class=NotFound,
        default_handler_args=args,
    )


def embed_snippet(url: str, ref: str) -> tuple[str, str]:
    """The page's link for ``ref`` and an ``<iframe>`` to embed it in a site."""
    parts = urlsplit(url)  # the page may sit under a path, with a query of its own: ?ref= joins it
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "ref"]
    link = urlunsplit(parts._replace(path=parts.path or "/", query=urlencode([*query, ("ref", ref)]),
                                     fragment=""))
    embed = build_environment().get_template("web.html").module.embed  # type: ignore[attr-defined]
    return link, str(embed(link)).strip()
