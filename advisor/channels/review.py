"""The review dashboard: stored conversations for sales managers and reviewers, on the web.

Tornado (which python-telegram-bot's webhooks extra already brings) serving pages rendered from
``templates/review/`` with the advisor's one Jinja environment. Everything is behind
``ADVISOR_REVIEW_TOKEN``: people sign in with it once (an HttpOnly, SameSite=Strict signed cookie),
scripts send ``Authorization: Bearer <token>``. Forms carry tornado's XSRF token; every filter goes
to the store as a SQL parameter; every page is autoescaped. The advice lab's part (a reviewer's
expectation on a disagree, the "what if" page replaying an uploaded rules file) is in review_lab.py.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import time
from typing import Any
from urllib.parse import urlencode

from markupsafe import Markup
from tornado.web import Application, HTTPError, stream_request_body

from advisor import AdvisorError, reports
from advisor.advice import Advisor, load_advisor
from advisor.channels import review_lab as lab
from advisor.channels.throttle import Busy, Guesses, HardenedHandler
from advisor.i18n import from_accept_language
from advisor.render import Renderer
from advisor.service import AdvisorService
from advisor.store import OUTBOX_STATUSES, STATUSES, Filters

COOKIE = "advisor_review"
PAGE_SIZE = 50
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class Page(HardenedHandler):
    """What every page shares: who is signed in, the headers, rendering."""

    security_headers = SECURITY_HEADERS

    service: AdvisorService
    token: str

    def initialize(self, service: AdvisorService, token: str) -> None:
        self.service = service
        self.token = token

    def bearer(self) -> str | None:
        header = self.request.headers.get("Authorization", "")
        return header[7:].strip() if header.lower().startswith("bearer ") else None

    async def token_is_right(self, given: str) -> bool:
        """The right token at once; a wrong one slowed down after wrong ones; ``Busy`` (429) while this
        address has a check waiting (advisor/channels/throttle.py)."""
        guesses: Guesses = self.settings["guesses"]
        try:
            return await guesses.judge(self.address(),
                                       lambda: hmac.compare_digest(given.encode(), self.token.encode()))
        except Busy as busy:
            self._retry_after = max(1, math.ceil(busy.retry_after))
            raise

    def retry_after(self) -> int:
        return getattr(self, "_retry_after", 1)

    def get_current_user(self) -> str | None:
        if self.bearer() is not None:
            return "script" if getattr(self, "_bearer_right", False) else None
        session = self.get_signed_cookie(COOKIE, max_age_days=7)
        sessions: dict[bytes, float] = self.settings["sessions"]
        if session is not None and sessions.get(session, 0.0) > time.time():
            return "reviewer"
        return None

    async def prepare(self) -> None:
        bearer = self.bearer()
        if bearer is not None:
            try:
                self._bearer_right = await self.token_is_right(bearer)
            except Busy:
                raise HTTPError(429) from None
        if getattr(self, "public", False) or self.current_user:
            return
        if self.request.headers.get("Authorization") is not None or self.request.method != "GET":
            raise HTTPError(401)
        self.redirect("/login?" + urlencode({"next": self.request.uri or "/"}))

    def check_xsrf_cookie(self) -> None:
        # (tornado checks this before prepare(), where the bearer token is judged: a wrong one gets 401
        # there.) A browser never adds an Authorization header to a cross-site form: no forgery to stop.
        if self.bearer() is not None:
            return
        super().check_xsrf_cookie()

    @property
    def renderer(self) -> Renderer:
        """The dashboard in the reviewer's browser's language (Accept-Language), else English."""
        return self.service.speaking(from_accept_language(self.request.headers.get("Accept-Language")))[1]

    def page(self, name: str, **context: Any) -> None:
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(self.renderer.render(
            f"review/{name}.html", signed_in=bool(self.current_user),
            xsrf=Markup(self.xsrf_form_html()),  # tornado's own hidden input, already escaped
            **context))

    def words(self, name: str, **context: Any) -> str:
        """A short text of templates/review/words.txt."""
        return self.renderer.macro("review/words.txt", name, **context)

    @property
    def advisor(self) -> Advisor:
        """The current advice rules (loaded with the app): what expectations are checked against."""
        advisor: Advisor = self.settings["advisor"]
        return advisor

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        if status_code == 429:
            self.set_header("Retry-After", str(self.retry_after()))
        self.finish(self.words("error", status=status_code, retry=self.retry_after()) + "\n")

    def filters(self) -> tuple[Filters, dict[str, str], str | None]:
        """The list filters from the query string: (store filters, form values, an error to show)."""
        values = {key: self.get_argument(key, "").strip()[:200] for key in ("q", "status", "ref", "since")}
        error = None
        since = None
        if values["since"]:
            try:
                since = reports.parse_since(values["since"])
            except AdvisorError as problem:
                error, values["since"] = str(problem).replace("--since: ", self.words("since_label") + " "), ""
        status = values["status"] if values["status"] in STATUSES else None
        return Filters(ref=values["ref"] or None, status=status, since=since,
                       search=values["q"] or None), values, error


class Login(Page):
    public = True

    def get(self) -> None:
        if self.current_user:
            self.redirect(self._next())
            return
        self.page("login", title=self.words("title", page="login"), nav="", error=None, next=self._next())

    async def post(self) -> None:
        try:
            right = await self.token_is_right(self.get_body_argument("token", ""))
        except Busy:
            self.set_status(429)
            self.set_header("Retry-After", str(self.retry_after()))
            self.page("login", title=self.words("title", page="login"), nav="", next=self._next(),
                      error=self.words("login_error", kind="busy", retry=self.retry_after()))
            return
        if not right:
            self.set_status(401)
            self.page("login", title=self.words("title", page="login"), nav="", next=self._next(),
                      error=self.words("login_error", kind="wrong"))
            return
        # a session of its own, known to this process: signing out ends it here, not only in the browser
        session = secrets.token_urlsafe(24)
        sessions: dict[bytes, float] = self.settings["sessions"]
        now = time.time()
        for old in [key for key, until in sessions.items() if until <= now]:
            del sessions[old]
        sessions[session.encode()] = now + 7 * 24 * 3600
        self.set_signed_cookie(COOKIE, session, expires_days=7, httponly=True, samesite="Strict",
                               secure=self.https())
        self.redirect(self._next())

    def _next(self) -> str:
        target = self.get_argument("next", "/")
        # only a path on this site: never //evil.example, https://..., nor "/\t/evil" (browsers drop the tab)
        local = (target.startswith("/") and not target.startswith("//") and "\\" not in target
                 and not any(ch <= " " or ch == "\x7f" for ch in target))
        return target if local else "/"


class Logout(Page):
    def post(self) -> None:
        session = self.get_signed_cookie(COOKIE, max_age_days=7)
        if session is not None:
            self.settings["sessions"].pop(session, None)  # a copy of the cookie no longer signs anyone in
        self.clear_cookie(COOKIE)
        self.redirect("/login")


class NotFound(Page):
    """Any other path: 404 with the same headers as every page (and no server name)."""

    public = True

    def prepare(self) -> None:  # type: ignore[override]
        raise HTTPError(404)


class ConversationList(Page):
    def get(self) -> None:
        filters, values, error = self.filters()
        store = self.service.store
        total = store.count(filters)
        pages = max(1, math.ceil(total / PAGE_SIZE))
        page = min(max(1, _int(self.get_argument("page", "1"), 1)), pages)
        names = self.service.task_names(self.renderer.language)  # in the reader's language
        rows = [
            {"c": c, "rec": c.recommendation, "review": store.review(c.id), "name": reports.name_of(c),
             "top": reports.top_functions(c, 2, names)}
            for c in store.conversations(filters, newest_first=True, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
        ]
        query = {k: v for k, v in values.items() if v}

        def query_page(n: int) -> str:
            return "/?" + urlencode({**query, "page": n})

        self.page("list", title=self.words("title", page="list"), nav="list", page=page, pages=pages, total=total,
                  rows=rows, filters=values, error=error, query=("?" + urlencode(query)) if query else "",
                  query_page=query_page)



class ConversationPage(Page):
    def get(self, conversation_id: str) -> None:
        conversation = self._conversation(conversation_id)
        self._show(conversation, self.service.store.review(conversation.id),
                   saved=self.get_argument("saved", "") == "1")

    def _show(self, conversation: Any, review: dict[str, Any], saved: bool = False, error: str | None = None) -> None:
        store = self.service.store
        self.page("conversation", title=self.words("title", page="conversation", id=conversation.id), nav="",
                  c=conversation,
                  rec=conversation.recommendation, review=review,
                  contact=reports.contact_of(conversation), transcript=store.transcript(conversation.id),
                  mark=store.review(conversation.id), saved=saved, error=error,
                  names=lab.names(self.service, self.advisor), approach_field=lab.APPROACH_FIELD)

    def _conversation(self, conversation_id: str) -> Any:
        try:
            return self.service.store.get(int(conversation_id))
        except (AdvisorError, ValueError):
            raise HTTPError(404) from None


class ReviewForm(ConversationPage):
    def post(self, conversation_id: str) -> None:
        conversation = self._conversation(conversation_id)
        verdict = self.get_body_argument("verdict", "") or None
        if verdict not in (None, "agree", "disagree"):
            raise HTTPError(400)
        tags = [t.strip()[:40] for t in self.get_body_argument("tags", "").split(",") if t.strip()][:20]
        reviewed, note = self.get_body_argument("reviewed", "") == "1", self.get_body_argument("note", "")[:4000]
        fields = {name: self.get_body_argument(name, "")[:200] for name in self.request.body_arguments}
        try:  # what the reviewer expected instead (kept by the store on a disagree only)
            expected = lab.expected_of(fields, self.advisor, lab.reviewed_tasks(conversation.recommendation),
                                       self.words)
        except AdvisorError as problem:
            self.set_status(400)
            if self.current_user == "script":
                self.finish({"ok": False, "error": str(problem)})
                return
            shown = {"reviewed": reviewed, "tags": tags, "note": note, "verdict": verdict,
                     "expected": lab.posted_expectation(fields), "updated_at": None}
            self._show(conversation, shown, error=str(problem))
            return
        self.service.store.save_review(conversation.id, reviewed=reviewed, tags=tags, note=note, verdict=verdict,
                                       expected=expected or None)
        if self.current_user == "script":
            self.finish({"ok": True, "review": self.service.store.review(conversation.id)})
            return
        self.redirect(f"/conversations/{conversation.id}?saved=1")


@stream_request_body
class WhatIf(lab.UploadForm, Page):
    """A candidate rules file replayed over the filtered conversations (advisor/channels/review_lab.py);
    the form's body is read only once its sender is signed in (``UploadForm``)."""

    def get(self) -> None:
        filters, values, error = self.filters()
        self._form(filters, values, [error] if error else [])

    async def post(self) -> None:
        upload = self.upload()
        if upload.too_large:  # its _xsrf unread: the page says so, and nothing is done
            self.set_status(413)
            filters, values, _ = self.filters()
            self._form(filters, values, [self.words("what_if_error", kind="too_large", limit=lab.UPLOAD_LIMIT // 1024)])
            return
        problems = [] if lab.read_form(upload, self.request) else [self.words("what_if_error", kind="unreadable")]
        self.check_xsrf_cookie()
        filters, values, error = self.filters()
        baseline = self.get_argument("baseline", "told")
        candidate, name, problems = lab.candidate_of(self.request.files.get("rules", []), self.service, self.words,
                                                     [*problems, error] if error else problems)
        if candidate is None:
            self.set_status(400)
            self._form(filters, values, problems, file=name, baseline=baseline)
            return
        try:
            report = await lab.replay_filtered(self.service.store, filters, candidate,
                                               self.advisor if baseline == "current" else None)
        except lab.ReplayFailed as failed:
            self.set_status(400)
            self._form(filters, values, [self.words("what_if_error", kind="failed", file=name, detail=str(failed))],
                       file=name, baseline=baseline)
            return
        self._form(filters, values, [], file=name, baseline=baseline, result=lab.result(report))

    def _form(self, filters: Filters, values: dict[str, str], problems: list[str], file: str = "",
              baseline: str = "told", result: dict[str, Any] | None = None) -> None:
        self.page("what_if", title=self.words("title", page="what_if"), nav="what_if", filters=values,
                  matching=self.service.store.count(filters), problems=problems, file=file,
                  baseline="current" if baseline == "current" else "told", result=result,
                  names=lab.names(self.service, self.advisor), limit_kib=lab.UPLOAD_LIMIT // 1024,
                  shown=lab.SHOWN)


class Funnel(Page):
    def get(self) -> None:
        filters, values, _ = self.filters()
        filters = Filters(ref=filters.ref, since=filters.since)
        store = self.service.store
        stats = store.stats(filters)
        reached = store.funnel(filters)
        top = max(reached.values(), default=0) or 1
        dialog = self.service.dialog
        steps = [{"id": qid, "text": dialog.question(qid).text, "reached": reached.get(qid, 0),
                  "share": reached.get(qid, 0) / top} for qid in dialog.order]
        self.page("funnel", title=self.words("title", page="funnel"), nav="funnel", steps=steps, stats=stats,
                  filters=values)


class Deliveries(Page):
    """The outbox (``python bot.py deliveries`` in the browser), with a way to resend."""

    def get(self) -> None:
        status = self.get_argument("status", "") or None
        if status not in (None, *OUTBOX_STATUSES):
            raise HTTPError(400)
        store = self.service.store
        resent = self.get_argument("resent", "")
        self.page("deliveries", title=self.words("title", page="deliveries"), nav="deliveries", status=status,
                  rows=store.deliveries(status, 200), counts=store.delivery_counts(),
                  resent=int(resent) if resent.isdecimal() else None)


class Resend(Page):
    def post(self, delivery_id: str | None = None) -> None:
        count = self.service.store.resend(int(delivery_id) if delivery_id else None)
        if self.current_user == "script":
            self.finish({"ok": True, "resent": count})
            return
        self.redirect(f"/deliveries?resent={count}")


class CsvDownload(Page):
    def get(self) -> None:
        filters, _, _ = self.filters()
        store = self.service.store
        rows = (reports.csv_row(c, store.review(c.id)) for c in store.conversations(filters))
        self.set_header("Content-Type", "text/csv; charset=utf-8")
        self.set_header("Content-Disposition", 'attachment; filename="conversations.csv"')
        self.finish(reports.csv_text(rows))


def _int(value: str, default: int) -> int:
    return int(value) if value.isdecimal() and len(value) < 9 else default


def build_review_app(service: AdvisorService, token: str, behind_proxy: bool = False,
                     guesses: Guesses | None = None) -> Application:
    """The dashboard as a tornado Application (signed cookies keyed from the token). ``behind_proxy``:
    the client's address and scheme come from the proxy's X-Forwarded-For and X-Forwarded-Proto."""
    if not token:
        raise AdvisorError("ADVISOR_REVIEW_TOKEN is not set: the dashboard never runs without a token")
    args = {"service": service, "token": token}
    advisor = load_advisor(service.dialog)  # the current rules: expectations are checked against them
    secret = hashlib.sha256(b"advisor-review-cookie:" + token.encode()).hexdigest()
    return Application(
        [
            (r"/", ConversationList, args),
            (r"/login", Login, args),
            (r"/logout", Logout, args),
            (r"/conversations/(\d+)", ConversationPage, args),
            (r"/conversations/(\d+)/review", ReviewForm, args),
            (r"/funnel", Funnel, args),
            (r"/what-if", WhatIf, args),
            (r"/deliveries", Deliveries, args),
            (r"/deliveries/resend", Resend, args),
            (r"/deliveries/(\d+)/resend", Resend, args),
            (r"/export\.csv", CsvDownload, args),
        ],
        cookie_secret=secret,
        xsrf_cookies=True,
        xsrf_cookie_kwargs={"httponly": True, "samesite": "Strict"},
        behind_proxy=behind_proxy,
        guesses=guesses or Guesses(),
        sessions={},  # signed-in sessions (a restart signs everyone out)
        advisor=advisor,
        default_handler_class=NotFound,
        default_handler_args=args,
    )
