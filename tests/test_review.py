"""The review dashboard (``python bot.py review``): sign-in, scripts, filters, escaping, reviews, the funnel.

Most tests talk HTTP to the tornado application in this process (on a free port of the test's event
loop, over a copy of one populated database); the command's own start-up and shutdown, and the browser
test, run ``python bot.py review`` as a separate process, as an operator would.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import pytest
from markupsafe import escape
from tornado.httpclient import AsyncHTTPClient, HTTPResponse
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port

from advisor.channels.console import Console
from advisor.channels.review import build_review_app
from advisor.dialog import Dialog
from advisor.engine import Engine
from advisor.render import Renderer
from advisor.reports import CSV_FIELDS
from advisor.service import AdvisorService, build_service
from advisor.store import Conversation, Store
from tests.conftest import ROOT, bot_env, run_bot, terminate
from tests.personas import NEEDS_NOTHING, PERSONAS

TOKEN = "review-token-for-tests-0123456789"
ARTIFACTS = Path(__file__).resolve().parent / ".artifacts"

# Who the populated database holds: four complete persona walks, each with its ref, and one person who
# stopped at question 3 ("industry", after answering stage and size). Ids follow this order.
REFS = {"pre_launch_planner": "alice", "established_cost_cutter": "alice--spring",
        "growing_tactical": "alicex", "sales_team": "bob"}
IDS = {"pre_launch_planner": 1, "established_cost_cutter": 2, "growing_tactical": 3, "sales_team": 4, "carol": 5}
IN_PROGRESS_LINES = ["3", "3"]  # stage, size: then it waits at "industry"
SEARCH_WORD = "freelancers"  # only in established_cost_cutter's own words (its pains answer)

SCRIPT_TAG = "<script>alert(1)</script>"
IMG_TAG = '"><img src=x onerror=alert(1)>'

ROW_ID = re.compile(r'<td><a href="/conversations/(\d+)">\d+</a></td>')
XSRF_FIELD = re.compile(r'name="_xsrf" value="([^"]+)"')


# -- populating a database --------------------------------------------------------------------
def talk(service: AdvisorService, user: str, lines: list[str], ref: str | None = None) -> Conversation:
    """Type ``lines`` into the console channel as ``user`` (what ``bot.py console`` does with a pipe)."""
    out = io.StringIO()
    code = Console(service, io.StringIO("".join(f"{line}\n" for line in lines)), out, interactive=False).run(
        user, ref=ref)
    assert code == 0, out.getvalue()[-2000:]
    latest = service.store.latest("console", user)
    assert latest is not None
    return latest


def populate(db: Path) -> None:
    """The four personas to the end (with refs) and carol, stopped at question 3 (industry)."""
    service = build_service(db)
    try:
        for name, lines in PERSONAS.items():
            conversation = talk(service, name, lines, REFS[name])
            assert (conversation.id, conversation.status) == (IDS[name], "completed")
        carol = talk(service, "carol", IN_PROGRESS_LINES, "carol")
        assert (carol.id, carol.status, carol.state.current) == (IDS["carol"], "in_progress", "industry")
    finally:
        service.store.close()


def copy_db(source: Path, target: Path) -> Path:
    shutil.copyfile(source, target)
    for suffix in ("-wal", "-shm"):
        extra = Path(str(source) + suffix)
        if extra.exists():
            shutil.copyfile(extra, Path(str(target) + suffix))
    return target


@pytest.fixture(scope="module")
def base_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("review") / "base.db"
    populate(db)
    return db


@pytest.fixture
def db(base_db: Path, tmp_path: Path) -> Path:
    """A copy of the populated database each test may change."""
    return copy_db(base_db, tmp_path / "advisor.db")


# -- the dashboard in this process -----------------------------------------------------------
class Dash:
    def __init__(self, service: AdvisorService, url: str):
        self.service = service
        self.url = url
        self.clients: list[httpx.AsyncClient] = []

    def client(self, **options: Any) -> httpx.AsyncClient:
        """A browser-like client: its own cookie jar, redirects not followed."""
        client = httpx.AsyncClient(base_url=self.url, follow_redirects=False, timeout=10, **options)
        self.clients.append(client)
        return client

    def script(self) -> httpx.AsyncClient:
        return self.client(headers={"Authorization": f"Bearer {TOKEN}"})

    async def reviewer(self) -> httpx.AsyncClient:
        client = self.client()
        signed = await sign_in(client)
        assert signed.status_code == 302, signed.text
        return client


@pytest.fixture
async def dash(db: Path, dialog: Dialog, engine: Engine, renderer: Renderer) -> AsyncIterator[Dash]:
    service = AdvisorService(dialog, engine, renderer, Store.open(db))  # build_service(db), dialog loaded once
    sock, port = bind_unused_port()
    server = HTTPServer(build_review_app(service, TOKEN))
    server.add_sockets([sock])
    served = Dash(service, f"http://127.0.0.1:{port}")
    yield served
    for client in served.clients:
        await client.aclose()
    server.stop()
    await server.close_all_connections()
    service.store.close()


async def xsrf_of(client: httpx.AsyncClient, path: str = "/login") -> str:
    """The _xsrf value of the form on ``path`` (which also sets the _xsrf cookie)."""
    page = await client.get(path)
    assert page.status_code == 200, page.text
    found = XSRF_FIELD.search(page.text)
    assert found, page.text
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, token: str = TOKEN, next: str = "/") -> httpx.Response:
    xsrf = await xsrf_of(client)
    return await client.post("/login", data={"token": token, "_xsrf": xsrf, "next": next})


def row_ids(html: str) -> list[int]:
    return [int(found) for found in ROW_ID.findall(html)]


def cookie(response: httpx.Response | HTTPResponse, name: str) -> dict[str, str] | None:
    """The Set-Cookie for ``name`` as {"": value, attribute (lower case): value}, or None."""
    headers = response.headers.get_list("Set-Cookie")
    for header in headers:
        first, *attributes = [part.strip() for part in header.split(";")]
        key, _, value = first.partition("=")
        if key == name:
            parsed = {"": value}
            for attribute in attributes:
                attr, _, attr_value = attribute.partition("=")
                parsed[attr.lower()] = attr_value
            return parsed
    return None


# -- python bot.py review, the command --------------------------------------------------------
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Served:
    """``python bot.py review --port P`` (or another server command: ``command``, with the line it
    prints once listening, ``ready_line``) as a process; ready once it says where it listens."""

    def __init__(self, db: Path, token: str = TOKEN, command: tuple[str, ...] = ("review",),
                 ready_line: str = "Review dashboard on ", env: dict[str, str] | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ready_line = ready_line
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "bot.py"), command[0], "--port", str(self.port), *command[1:]],
            env=bot_env(db, {"ADVISOR_REVIEW_TOKEN": token, **(env or {})}), cwd=ROOT,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self.ready = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        if not self.ready.wait(30) or self.process.poll() is not None:
            self.stop()
            raise AssertionError(f"{command[0]} did not start:\n{self.stderr()}")
        socket.create_connection(("127.0.0.1", self.port), timeout=5).close()  # it accepts connections

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:  # drained to the end, so the server never blocks on a full pipe
            self.lines.append(line)
            if line.startswith(self.ready_line):
                self.ready.set()
        self.ready.set()  # the process ended

    def stderr(self) -> str:
        return "".join(self.lines)

    def stop(self) -> int:
        code = terminate(self.process)
        self.reader.join(5)
        return code


@pytest.fixture
def serve() -> Iterator:
    started: list[Served] = []

    def start(db: Path, token: str = TOKEN) -> Served:
        served = Served(db, token)
        started.append(served)
        return served

    yield start
    for served in started:
        served.stop()


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


def test_review_refuses_to_start_without_a_token(fresh_db: Path):
    result = run_bot("review", "--port", str(free_port()), db=fresh_db, timeout=20)
    line = one_error_line(result)
    assert "ADVISOR_REVIEW_TOKEN is not set" in line
    assert result.stdout == ""
    assert not fresh_db.exists()  # refused before touching anything


def test_review_refuses_a_blank_token(fresh_db: Path):
    result = run_bot("review", "--port", str(free_port()), db=fresh_db, env={"ADVISOR_REVIEW_TOKEN": "   "},
                     timeout=20)
    assert "ADVISOR_REVIEW_TOKEN is not set" in one_error_line(result)


def test_review_on_a_port_in_use_is_a_one_line_error(fresh_db: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_bot("review", "--port", str(port), db=fresh_db, env={"ADVISOR_REVIEW_TOKEN": TOKEN},
                         timeout=20)
    line = one_error_line(result)
    assert f"cannot listen on 127.0.0.1:{port}" in line
    assert "in use" in line


def test_review_serves_until_sigterm_and_exits_0(db: Path, serve):
    served = serve(db)
    assert served.stderr().strip() == f"Review dashboard on {served.url}/ (Ctrl-C stops it)"
    with httpx.Client(base_url=served.url, follow_redirects=False, timeout=10) as client:
        page = client.get("/", headers={"Authorization": f"Bearer {TOKEN}"})
        assert page.status_code == 200
        assert row_ids(page.text) == [5, 4, 3, 2, 1]
        assert client.get("/").status_code == 302
    assert served.stop() == 0
    assert "Traceback" not in served.stderr()


def test_review_warns_about_a_short_token_and_still_serves(db: Path, serve):
    served = serve(db, token="short-token")
    assert "warning: ADVISOR_REVIEW_TOKEN is shorter than 16 characters" in served.stderr()
    with httpx.Client(base_url=served.url, timeout=10) as client:
        assert client.get("/funnel", headers={"Authorization": "Bearer short-token"}).status_code == 200
    assert served.stop() == 0


# -- nobody without the token -----------------------------------------------------------------
PAGES = ["/", "/funnel", "/export.csv", "/conversations/1", "/?status=completed&q=sales"]


@pytest.mark.parametrize("path", PAGES)
async def test_a_page_without_sign_in_redirects_to_the_sign_in_page(dash: Dash, path: str):
    response = await dash.client().get(path)
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?" + urlencode({"next": path})
    assert "alice" not in response.text


@pytest.mark.parametrize("path", PAGES)
async def test_a_wrong_bearer_token_gets_401(dash: Dash, path: str):
    response = await dash.client(headers={"Authorization": "Bearer wrong"}).get(path)
    assert response.status_code == 401
    assert "alice" not in response.text and "Summary" not in response.text
    assert response.headers["Content-Type"].startswith("text/plain")


async def test_an_empty_or_other_authorization_gets_401(dash: Dash):
    for header in ("Bearer", "Basic cmV2aWV3ZXI6eA==", TOKEN):
        response = await dash.client(headers={"Authorization": header}).get("/")
        assert response.status_code == 401, header


async def test_a_review_post_without_sign_in_is_refused_and_saves_nothing(dash: Dash):
    data = {"reviewed": "1", "verdict": "agree", "note": "forged"}
    anonymous = await dash.client().post("/conversations/1/review", data=data)
    assert anonymous.status_code in (401, 403)
    wrong = await dash.client(headers={"Authorization": "Bearer wrong"}).post("/conversations/1/review", data=data)
    assert wrong.status_code in (401, 403)
    # even with a real _xsrf pair, no sign-in means no saving
    client = dash.client()
    xsrf = await xsrf_of(client)
    with_xsrf = await client.post("/conversations/1/review", data={**data, "_xsrf": xsrf})
    assert with_xsrf.status_code == 401
    assert dash.service.store.review(1)["note"] == ""


async def test_a_forged_or_tampered_cookie_is_not_signed_in(dash: Dash):
    forged = await dash.client(cookies={"advisor_review": "reviewer"}).get("/")
    assert forged.status_code == 302
    reviewer = await dash.reviewer()
    inner = reviewer.cookies["advisor_review"].strip('"')
    tampered = '"' + inner[:-1] + ("1" if inner.endswith("0") else "0") + '"'  # another signature
    response = await dash.client(cookies={"advisor_review": tampered}).get("/")
    assert response.status_code == 302


async def test_a_cookie_signed_for_another_token_is_refused(dash: Dash, tmp_path: Path):
    other_service = build_service(tmp_path / "other.db")
    sock, port = bind_unused_port()
    other = HTTPServer(build_review_app(other_service, "another-token-0123456789abcdef"))
    other.add_sockets([sock])
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", follow_redirects=False) as client:
            assert (await sign_in(client, token="another-token-0123456789abcdef")).status_code == 302
            stolen = client.cookies["advisor_review"]
        response = await dash.client(cookies={"advisor_review": stolen}).get("/")
        assert response.status_code == 302
    finally:
        other.stop()
        await other.close_all_connections()
        other_service.store.close()


# -- scripts with the Bearer token ---------------------------------------------------------------
async def test_a_script_with_the_token_reads_the_list(dash: Dash):
    response = await dash.script().get("/")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    html = response.text
    assert row_ids(html) == [5, 4, 3, 2, 1]  # newest first
    assert "5 conversations" in html
    store = dash.service.store
    for name, cid in IDS.items():
        conversation = store.get(cid)
        row = html[html.index(f'<a href="/conversations/{cid}">'):]
        row = row[:row.index("</tr>")]
        assert f"<td>{conversation.ref}</td>" in row
        if conversation.recommendation:
            assert f"{conversation.recommendation['readiness_score']} " in row, name
            assert conversation.recommendation["profile"] in row
        else:
            assert "in progress" in row
    assert "Maria Lopez" in html  # the growing_tactical persona left her contact


async def test_a_script_with_the_token_reads_a_conversation(dash: Dash):
    store = dash.service.store
    conversation = store.get(3)
    response = await dash.script().get("/conversations/3")
    assert response.status_code == 200
    html = response.text
    assert "<h1>Conversation 3</h1>" in html
    assert "user growing_tactical · ref alicex" in html
    rec = conversation.recommendation
    assert rec is not None
    assert f"Readiness {rec['readiness_score']}/100" in html
    assert "Contact (consented): Maria Lopez, maria@example.com" in html
    assert html.count("<rect ") == len(rec["drivers"]) > 0
    for driver in rec["drivers"]:
        assert escape(driver["text"]) in html
    # what it advised: the verdict, and each task with how to source it and why
    assert rec["verdict"] == "prepare_first"
    assert f"<b>Verdict: {escape(rec['verdict_name'])}.</b> {escape(rec['verdict_text'])}" in html
    assert rec["functions"]
    for function in rec["functions"]:
        assert (f"<b>{escape(function['name'])}</b>: {escape(function['approach']['name'].lower())} "
                in html), function["id"]
        assert escape(function["approach"]["why"]) in html
    assert "Tensions named" not in html  # none for this one
    assert html.count('<div class="turn ') == len(store.transcript(3))
    assert "our consultants do their own recruiting and data entry" in html


async def test_a_conversation_page_names_the_tensions(dash: Dash):
    rec = dash.service.store.get(IDS["established_cost_cutter"]).recommendation
    assert rec is not None and rec["tensions"]  # cutting costs, with vendors already paid: handing over is no cheaper
    html = (await dash.script().get(f"/conversations/{IDS['established_cost_cutter']}")).text
    assert f"Verdict: {escape(rec['verdict_name'])}." in html
    assert "<b>Tensions named:</b>" in html
    for tension in rec["tensions"]:
        assert escape(tension["text"]) in html


async def test_a_not_now_conversation_shows_its_verdict_and_no_engagement(dash: Dash):
    conversation = talk(dash.service, "needs_nothing", NEEDS_NOTHING, "calm")
    rec = conversation.recommendation
    assert rec is not None and rec["verdict"] == "not_now"
    assert rec["engagement_model"] is None and rec["functions"] == []
    script = dash.script()
    page = await script.get(f"/conversations/{conversation.id}")
    assert page.status_code == 200
    assert f"<b>Verdict: {escape(rec['verdict_name'])}.</b> {escape(rec['verdict_text'])}" in page.text
    assert "Engagement:" not in page.text
    assert f"Readiness {rec['readiness_score']}/100" in page.text
    listing = await script.get("/", params={"ref": "calm"})
    assert row_ids(listing.text) == [conversation.id]
    download = await script.get("/export.csv", params={"ref": "calm"})
    [row] = list(csv.DictReader(io.StringIO(download.text)))
    assert (row["advice_verdict"], row["engagement_model"], row["top_functions"]) == ("not_now", "", "")


async def test_a_conversation_in_progress_says_where_it_stopped(dash: Dash):
    response = await dash.script().get("/conversations/5")
    assert response.status_code == 200
    assert "Not completed: stopped at question “industry”." in response.text
    assert "Readiness" not in response.text


async def test_an_unknown_conversation_is_404(dash: Dash):
    script = dash.script()
    assert (await script.get("/conversations/999")).status_code == 404
    assert (await script.get("/conversations/abc")).status_code == 404
    assert (await script.post("/conversations/999/review", data={"reviewed": "1"})).status_code == 404
    reviewer = await dash.reviewer()
    assert (await reviewer.get("/conversations/999")).status_code == 404


async def test_the_csv_download(dash: Dash):
    script = dash.script()
    response = await script.get("/export.csv")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.text)))
    assert tuple(rows[0]) == CSV_FIELDS
    assert [int(row[0]) for row in rows[1:]] == [1, 2, 3, 4, 5]
    # the advice's own verdict, beside the reviewer's agree/disagree (none yet)
    by_id = {row["id"]: row for row in csv.DictReader(io.StringIO(response.text))}
    store = dash.service.store
    for cid in range(1, 5):
        rec = store.get(cid).recommendation
        assert rec is not None
        assert by_id[str(cid)]["advice_verdict"] == rec["verdict"]
        assert by_id[str(cid)]["verdict"] == ""
    assert [by_id[str(cid)]["advice_verdict"] for cid in range(1, 6)] == [
        "hand_over", "hand_over", "prepare_first", "prepare_first", ""]  # carol has no advice yet
    filtered = await script.get("/export.csv", params={"status": "completed", "ref": "alice"})
    assert [row["id"] for row in csv.DictReader(io.StringIO(filtered.text))] == ["1", "2"]


async def test_security_headers_on_every_answer(dash: Dash):
    script = dash.script()
    responses = [await script.get("/"), await script.get("/conversations/1"), await script.get("/funnel"),
                 await script.get("/export.csv"), await dash.client().get("/login"), await dash.client().get("/"),
                 await dash.client(headers={"Authorization": "Bearer wrong"}).get("/")]
    for response in responses:
        csp = response.headers.get("Content-Security-Policy", "")
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp, response.url
        assert "script-src" not in csp  # no script may run at all
        assert response.headers.get("X-Frame-Options") == "DENY"
        assert response.headers.get("X-Content-Type-Options") == "nosniff"
        assert response.headers.get("Referrer-Policy") == "no-referrer"
        assert response.headers.get("Cache-Control") == "no-store"


# -- signing in and out -------------------------------------------------------------------------
async def test_sign_in_sets_an_httponly_samesite_strict_cookie_and_goes_to_next(dash: Dash):
    client = dash.client()
    first = await client.get("/conversations/2?x=1")
    assert first.headers["Location"] == "/login?next=%2Fconversations%2F2%3Fx%3D1"
    login = await client.get(first.headers["Location"])
    assert login.status_code == 200
    assert 'name="next" value="/conversations/2?x=1"' in login.text
    xsrf_cookie = cookie(login, "_xsrf")
    assert xsrf_cookie is not None
    assert "httponly" in xsrf_cookie and xsrf_cookie.get("samesite", "").lower() == "strict"

    xsrf = XSRF_FIELD.search(login.text).group(1)  # type: ignore[union-attr]
    signed = await client.post("/login", data={"token": TOKEN, "_xsrf": xsrf, "next": "/conversations/2?x=1"})
    assert signed.status_code == 302
    assert signed.headers["Location"] == "/conversations/2?x=1"
    session = cookie(signed, "advisor_review")
    assert session is not None and session[""]
    assert "httponly" in session
    assert session.get("samesite", "").lower() == "strict"
    assert session.get("path") == "/"
    assert "secure" not in session  # plain http here; https would add it
    assert TOKEN not in session[""]  # a signed marker, not the token itself

    page = await client.get("/conversations/2")
    assert page.status_code == 200 and "<h1>Conversation 2</h1>" in page.text
    assert "Sign out" in page.text
    # signed in, the sign-in page sends you on
    again = await client.get("/login", params={"next": "/funnel"})
    assert (again.status_code, again.headers["Location"]) == (302, "/funnel")


async def test_a_wrong_token_gets_401_and_the_sign_in_page_with_an_error(dash: Dash):
    client = dash.client()
    response = await sign_in(client, token="not-the-token")
    assert response.status_code == 401
    assert "That token is not right." in response.text
    assert 'name="token"' in response.text
    assert cookie(response, "advisor_review") is None
    assert (await client.get("/")).status_code == 302
    empty = await sign_in(client, token="")
    assert empty.status_code == 401


@pytest.fixture
async def guarded(db: Path, dialog: Dialog, engine: Engine, renderer: Renderer) -> AsyncIterator[Any]:
    """guarded(behind_proxy=False, **server_options) -> (Dash, Guesses): the dashboard on the capped
    server bot.py uses, with a token throttle of 3 wrong tokens a second (a minute in production)."""
    from advisor.channels.throttle import LIMITS, CappedHTTPServer, Guesses

    made: list[tuple[Dash, Any]] = []

    def start(behind_proxy: bool = False, **options: Any) -> tuple[Dash, Guesses]:
        service = AdvisorService(dialog, engine, renderer, Store.open(db))
        guesses = Guesses(per_address=3, overall=100, window=1.0)
        sock, port = bind_unused_port()
        server = CappedHTTPServer(build_review_app(service, TOKEN, behind_proxy=behind_proxy, guesses=guesses),
                                  **{**LIMITS, **options})
        server.add_sockets([sock])
        served = Dash(service, f"http://127.0.0.1:{port}")
        made.append((served, server))
        return served, guesses

    yield start
    for served, server in made:
        for client in served.clients:
            await client.aclose()
        server.stop()
        await server.close_all_connections()
        served.service.store.close()


async def _timed(call: Any) -> tuple[httpx.Response, float]:
    start = time.monotonic()
    response = await call
    return response, time.monotonic() - start


async def test_guessing_the_token_waits_after_three_wrong_and_the_right_token_still_gets_in(guarded):
    dash, guesses = guarded()
    client = dash.client()
    for _ in range(3):
        response, took = await _timed(sign_in(client, token="guess"))
        assert response.status_code == 401 and took < 0.5
    response, took = await _timed(sign_in(client, token="guess"))  # the 4th waits for the window
    assert response.status_code == 401 and took >= 0.8
    right, _took = await _timed(sign_in(client, token=TOKEN))  # never refused: a reviewer is not locked out
    assert right.status_code == 302 and cookie(right, "advisor_review") is not None
    await asyncio.sleep(1.1)
    assert guesses.addresses == 0  # the table of wrong tokens forgets them as the window passes


async def test_bearer_guesses_are_throttled_too(guarded):
    dash, _guesses = guarded()
    wrong = dash.client(headers={"Authorization": "Bearer wrong-token"})
    for _ in range(3):
        response, took = await _timed(wrong.get("/export.csv"))
        assert response.status_code == 401 and took < 0.5
    response, took = await _timed(wrong.get("/export.csv"))
    assert response.status_code == 401 and took >= 0.8
    assert (await dash.script().get("/export.csv")).status_code == 200


async def test_behind_a_proxy_a_client_sent_x_real_ip_does_not_give_guesses_new_addresses(guarded):
    dash, _guesses = guarded(behind_proxy=True)
    client = dash.client()
    for n in range(3):
        client.headers.update({"X-Real-Ip": f"10.0.0.{n}", "X-Forwarded-For": f"1.2.3.{n}, 203.0.113.7"})
        assert (await sign_in(client, token="guess")).status_code == 401
    client.headers.update({"X-Real-Ip": "10.0.0.99", "X-Forwarded-For": "1.2.3.99, 203.0.113.7"})
    response, took = await _timed(sign_in(client, token="guess"))
    assert response.status_code == 401 and took >= 0.8  # the proxy's hop says who it is: the same one
    other = dash.client(headers={"X-Forwarded-For": "198.51.100.1"})
    response, took = await _timed(sign_in(other, token="guess"))
    assert response.status_code == 401 and took < 0.5  # someone else is not held up


async def test_the_dashboard_is_not_exhausted_before_sign_in(guarded):
    dash, _guesses = guarded(max_connections=8, idle_connection_timeout=0.5, body_timeout=0.5)
    host, port = urlsplit(dash.url).hostname, urlsplit(dash.url).port
    try:  # over 64 KiB: refused (tornado hangs up) before it is read whole
        big = await dash.client().post("/login", content=b"x" * (1 << 20),
                                       headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert big.status_code in (400, 413)
    except (httpx.ReadError, httpx.RemoteProtocolError, httpx.WriteError):
        pass
    held = []
    for _ in range(12):  # half-sent requests, more than the cap
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc")
        await writer.drain()
        held.append((reader, writer))
    closed = 0
    for reader, _writer in held:
        with contextlib.suppress(ConnectionError, asyncio.TimeoutError):
            await asyncio.wait_for(reader.read(), 3)  # returns at the end of the stream: closed
            closed += 1
    assert closed == 12  # the ones over the cap at once, the others after the body timeout
    for _reader, writer in held:
        writer.close()
    assert (await dash.client().get("/login")).status_code == 200  # still answering


async def test_sign_in_needs_the_forms_xsrf(dash: Dash):
    response = await dash.client().post("/login", data={"token": TOKEN, "next": "/"})
    assert response.status_code == 403
    assert cookie(response, "advisor_review") is None


EXTERNAL_NEXT = ["//evil.example", "https://evil.example", "http://evil.example/x", "/\\evil.example",
                 "\\\\evil.example", "javascript:alert(1)", "evil.example", "/\t/evil.example",
                 "/\n/evil.example", "/\r\nSet-Cookie: evil=1"]


async def raw_request(dash: Dash, client: httpx.AsyncClient, method: str, path: str,
                      body: dict[str, str] | None = None) -> HTTPResponse:
    """A request whose answer httpx would refuse to parse (a Location with a tab, say), through tornado's client."""
    jar = "; ".join(f"{name}={value}" for name, value in client.cookies.items())
    return await AsyncHTTPClient().fetch(
        dash.url + path, method=method, body=urlencode(body) if body is not None else None,
        headers={"Cookie": jar}, follow_redirects=False, raise_error=False)


@pytest.mark.parametrize("target", EXTERNAL_NEXT)
async def test_sign_in_never_redirects_off_the_site(dash: Dash, target: str):
    client = dash.client()
    xsrf = await xsrf_of(client)
    response = await raw_request(dash, client, "POST", "/login",
                                 {"token": TOKEN, "_xsrf": xsrf, "next": target})
    assert response.code == 302, (response.code, response.body[:300])
    assert response.headers["Location"] == "/"
    assert "evil" not in "".join(response.headers.get_list("Set-Cookie"))


@pytest.mark.parametrize("target", EXTERNAL_NEXT)
async def test_the_sign_in_page_of_a_signed_in_reviewer_never_redirects_off_the_site(dash: Dash, target: str):
    reviewer = await dash.reviewer()
    response = await raw_request(dash, reviewer, "GET", "/login?" + urlencode({"next": target}))
    assert response.code == 302, (response.code, response.body[:300])
    assert response.headers["Location"] == "/"


async def test_sign_out_clears_the_cookie(dash: Dash):
    reviewer = await dash.reviewer()
    assert (await reviewer.get("/")).status_code == 200
    xsrf = await xsrf_of(reviewer, "/")
    response = await reviewer.post("/logout", data={"_xsrf": xsrf})
    assert response.status_code == 302
    assert response.headers["Location"] == "/login"
    cleared = cookie(response, "advisor_review")
    assert cleared is not None
    assert cleared[""] in ("", '""')
    assert parsedate_to_datetime(cleared["expires"]) < datetime.now(UTC)
    assert "advisor_review" not in reviewer.cookies
    assert (await reviewer.get("/")).status_code == 302


async def test_sign_out_needs_the_forms_xsrf(dash: Dash):
    reviewer = await dash.reviewer()
    response = await reviewer.post("/logout")
    assert response.status_code == 403
    assert (await reviewer.get("/")).status_code == 200  # still signed in: no cross-site sign-out


# -- CSRF on the review form --------------------------------------------------------------------
async def test_a_review_without_the_forms_xsrf_is_refused(dash: Dash):
    reviewer = await dash.reviewer()
    data = {"reviewed": "1", "verdict": "agree", "tags": "hot", "note": "forged"}
    missing = await reviewer.post("/conversations/1/review", data=data)
    assert missing.status_code == 403
    wrong = await reviewer.post("/conversations/1/review", data={**data, "_xsrf": "2|00|00|00"})
    assert wrong.status_code == 403
    # a forger's own _xsrf pair does not match the reviewer's cookie
    forger = dash.client()
    foreign = await xsrf_of(forger)
    crossed = await reviewer.post("/conversations/1/review", data={**data, "_xsrf": foreign})
    assert crossed.status_code == 403
    assert dash.service.store.review(1) == {"reviewed": False, "tags": [], "note": "", "verdict": None,
                                            "expected": None, "updated_at": None}


async def test_a_review_with_the_forms_xsrf_is_saved(dash: Dash):
    reviewer = await dash.reviewer()
    page = await reviewer.get("/conversations/1")
    xsrf = XSRF_FIELD.search(page.text).group(1)  # type: ignore[union-attr]
    response = await reviewer.post("/conversations/1/review", data={
        "_xsrf": xsrf, "reviewed": "1", "verdict": "agree", "tags": " hot lead , follow-up,, ",
        "note": "Call on Monday"})
    assert response.status_code == 302
    assert response.headers["Location"] == "/conversations/1?saved=1"
    review = dash.service.store.review(1)
    assert (review["reviewed"], review["verdict"], review["tags"], review["note"]) == (
        True, "agree", ["hot lead", "follow-up"], "Call on Monday")
    after = await reviewer.get(response.headers["Location"])
    assert '<p role="status">Saved.</p>' in after.text
    assert 'value="1" checked' in after.text
    assert 'value="agree" checked' in after.text
    assert 'value="hot lead, follow-up"' in after.text
    assert ">Call on Monday</textarea>" in after.text
    listing = await reviewer.get("/")
    row = listing.text[listing.text.index('<a href="/conversations/1">'):]
    row = row[:row.index("</tr>")]
    assert "✔ reviewed · agree" in row and '<span class="badge">hot lead</span>' in row


async def test_a_script_may_post_a_review_without_xsrf(dash: Dash):
    response = await dash.script().post("/conversations/4/review",
                                        data={"reviewed": "1", "verdict": "disagree", "tags": "price", "note": "n"})
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is True
    assert body["review"]["verdict"] == "disagree" and body["review"]["tags"] == ["price"]
    assert dash.service.store.review(4)["reviewed"] is True


async def test_a_review_is_kept_within_bounds(dash: Dash):
    tags = ",".join([f"tag{i}" for i in range(25)] + ["x" * 50])
    response = await dash.script().post("/conversations/1/review", data={"tags": tags, "note": "n" * 5000})
    assert response.status_code == 200
    review = dash.service.store.review(1)
    assert review["tags"] == [f"tag{i}" for i in range(20)]
    assert len(review["note"]) == 4000
    long_tag = await dash.script().post("/conversations/1/review", data={"tags": "y" * 50})
    assert long_tag.json()["review"]["tags"] == ["y" * 40]


async def test_a_review_can_be_changed_and_cleared(dash: Dash):
    script = dash.script()
    await script.post("/conversations/2/review", data={"reviewed": "1", "verdict": "agree", "tags": "a", "note": "x"})
    cleared = await script.post("/conversations/2/review", data={"verdict": ""})
    assert cleared.status_code == 200
    review = dash.service.store.review(2)
    assert (review["reviewed"], review["verdict"], review["tags"], review["note"]) == (False, None, [], "")


@pytest.mark.parametrize("verdict", ["maybe", "AGREE", "agreed", "'; DROP TABLE reviews; --"])
async def test_an_invalid_verdict_is_400_and_saves_nothing(dash: Dash, verdict: str):
    response = await dash.script().post("/conversations/1/review", data={"reviewed": "1", "verdict": verdict})
    assert response.status_code == 400
    assert dash.service.store.review(1)["updated_at"] is None


async def test_reviews_made_on_the_dashboard_are_in_the_csv_export(dash: Dash, db: Path):
    reviewer = await dash.reviewer()
    page = await reviewer.get("/conversations/3")
    xsrf = XSRF_FIELD.search(page.text).group(1)  # type: ignore[union-attr]
    saved = await reviewer.post("/conversations/3/review", data={
        "_xsrf": xsrf, "reviewed": "1", "verdict": "agree", "tags": "hot, enterprise", "note": "Great fit"})
    assert saved.status_code == 302
    script = await dash.script().post("/conversations/4/review", data={"verdict": "disagree", "note": "too early"})
    assert script.status_code == 200

    result = run_bot("export", "--format", "csv", db=db)
    assert result.returncode == 0, result.stderr
    rows = {row["id"]: row for row in csv.DictReader(io.StringIO(result.stdout))}
    assert list(rows) == ["1", "2", "3", "4", "5"]
    assert {k: rows["3"][k] for k in ("reviewed", "verdict", "tags", "note")} == {
        "reviewed": "yes", "verdict": "agree", "tags": "hot, enterprise", "note": "Great fit"}
    assert {k: rows["4"][k] for k in ("reviewed", "verdict", "tags", "note")} == {
        "reviewed": "no", "verdict": "disagree", "tags": "", "note": "too early"}
    assert {k: rows["1"][k] for k in ("reviewed", "verdict", "tags", "note")} == {
        "reviewed": "no", "verdict": "", "tags": "", "note": ""}
    # and in the dashboard's own download
    download = await dash.script().get("/export.csv")
    assert {row["id"]: row["note"] for row in csv.DictReader(io.StringIO(download.text))}["3"] == "Great fit"


# -- filters -------------------------------------------------------------------------------------
async def list_ids(client: httpx.AsyncClient, **params: str) -> list[int]:
    response = await client.get("/", params=params)
    assert response.status_code == 200, (params, response.text[:500])
    return row_ids(response.text)


async def test_filter_by_status(dash: Dash):
    script = dash.script()
    assert await list_ids(script, status="completed") == [4, 3, 2, 1]
    assert await list_ids(script, status="in_progress") == [5]
    assert await list_ids(script, status="abandoned") == []
    assert await list_ids(script, status="nonsense") == [5, 4, 3, 2, 1]  # not a status: ignored
    page = await script.get("/", params={"status": "abandoned"})
    assert "No conversation matches." in page.text and "0 conversations" in page.text


async def test_filter_by_ref_matches_the_ref_and_its_campaigns_only(dash: Dash):
    script = dash.script()
    assert await list_ids(script, ref="alice") == [2, 1]  # alice and alice--spring, not alicex
    assert await list_ids(script, ref="alice--spring") == [2]
    assert await list_ids(script, ref="alicex") == [3]
    assert await list_ids(script, ref="ali") == []
    assert await list_ids(script, ref="alice", status="completed") == [2, 1]


async def test_filter_by_since(dash: Dash):
    dash.service.store.db.execute("UPDATE conversations SET started_at = '2025-01-15T09:30:00Z' WHERE id IN (1, 2)")
    script = dash.script()
    assert await list_ids(script, since="2025-06-01") == [5, 4, 3]
    assert await list_ids(script, since="2025-01-15") == [5, 4, 3, 2, 1]
    assert await list_ids(script, since="2025-01-15T10:00:00") == [5, 4, 3]
    assert await list_ids(script, since="7d") == [5, 4, 3]
    page = await script.get("/", params={"since": "next tuesday"})
    assert page.status_code == 200
    assert row_ids(page.text) == [5, 4, 3, 2, 1]
    assert 'class="error"' in page.text and "Started since: expected a date" in page.text


async def test_search_finds_exactly_the_conversation_with_that_word(dash: Dash):
    script = dash.script()
    assert await list_ids(script, q=SEARCH_WORD) == [IDS["established_cost_cutter"]]
    assert await list_ids(script, q="consultants recruiting") == [IDS["growing_tactical"]]
    assert await list_ids(script, q="FREELANCERS") == [2]
    assert await list_ids(script, q="freelancers consultants") == []  # every word must be there
    assert await list_ids(script, q="zebra") == []
    assert await list_ids(script, q=SEARCH_WORD, status="in_progress") == []


INJECTIONS = ["' OR 1=1 --", '"', "%", "_", "'", "*", "alice' --", "NEAR(zebra quagga)", "zebra OR 1",
              "1; DROP TABLE conversations; --", "\\", "%' OR '1'='1", "-alice", "^alice"]


@pytest.mark.parametrize("value", INJECTIONS)
async def test_filter_values_that_look_like_sql_are_harmless(dash: Dash, value: str):
    script = dash.script()
    assert await list_ids(script, q=value) == []
    assert await list_ids(script, ref=value) == []
    assert await list_ids(script, status=value) == [5, 4, 3, 2, 1]  # an unknown status is ignored
    assert await list_ids(script, since=value) == [5, 4, 3, 2, 1]  # not a date: ignored, with an error shown
    assert await list_ids(script, q=value, ref=value, status="completed") == []
    for path in ("/funnel", "/export.csv"):
        response = await script.get(path, params={"q": value, "ref": value, "status": value, "since": value})
        assert response.status_code == 200, path
    assert dash.service.store.count() == 5


async def test_quotes_in_a_search_are_only_punctuation(dash: Dash):
    script = dash.script()
    with_or = await list_ids(script, q="or")
    assert with_or and set(with_or) < {1, 2, 3, 4, 5}
    assert await list_ids(script, q='" OR ""="') == with_or  # the word "or", nothing more
    assert await list_ids(script, q='"') == []


async def test_pagination_over_more_than_one_page(dash: Dash):
    service = dash.service
    for i in range(60):
        service.open("console", f"bulk-{i}", ref="bulk")  # 60 more, ids 6..65
    script = dash.script()
    first = await script.get("/")
    assert "65 conversations, page 1 of 2" in first.text
    assert row_ids(first.text) == list(range(65, 15, -1))
    assert '<a href="/?page=2">older →</a>' in first.text and "newer" not in first.text
    second = await script.get("/", params={"page": "2"})
    assert "page 2 of 2" in second.text
    assert row_ids(second.text) == list(range(15, 0, -1))
    assert '<a href="/?page=1">← newer</a>' in second.text and "older →" not in second.text
    for odd, expected in (("99", 2), ("0", 1), ("-3", 1), ("abc", 1), ("1e3", 1), ("", 1)):
        page = await script.get("/", params={"page": odd})
        assert page.status_code == 200
        assert f"page {expected} of 2" in page.text, odd
    # the filters stay on every page
    filtered = await script.get("/", params={"ref": "bulk"})
    assert "60 conversations, page 1 of 2" in filtered.text
    assert '<a href="/?ref=bulk&amp;page=2">older →</a>' in filtered.text
    assert row_ids((await script.get("/", params={"ref": "bulk", "page": "2"})).text) == list(range(15, 5, -1))
    assert "No conversation matches." in (await script.get("/", params={"ref": "bulk", "status": "completed"})).text


# -- escaping -----------------------------------------------------------------------------------
def assert_no_markup_from_people(html: str) -> None:
    lowered = html.lower()
    assert "<script" not in lowered
    assert "<img" not in lowered
    assert "onerror=alert(1)>" not in lowered  # not even inside an attribute
    assert 'alert(1)">' not in lowered


async def test_what_people_typed_is_escaped_everywhere(dash: Dash):
    service = dash.service
    lines = list(PERSONAS["growing_tactical"])
    lines[4] = f"cold calling {SCRIPT_TAG} {IMG_TAG}"  # pains, in their own words
    lines[5] = ""  # confirm the tasks understood from it
    conversation = talk(service, SCRIPT_TAG, lines, ref=SCRIPT_TAG + IMG_TAG)
    assert conversation.status == "completed"
    service.store.record_consent(conversation.id)
    service.store.save_contact(conversation.id, {"name": SCRIPT_TAG + IMG_TAG, "email": "x@example.com",
                                                 "phone": None, "consent": True})
    saved = await dash.script().post(f"/conversations/{conversation.id}/review", data={
        "reviewed": "1", "verdict": "agree", "tags": f"{SCRIPT_TAG},{IMG_TAG}", "note": f"{SCRIPT_TAG} {IMG_TAG}"})
    assert saved.status_code == 200
    assert service.store.review(conversation.id)["tags"] == [SCRIPT_TAG, IMG_TAG]

    script = dash.script()
    escaped_script = "&lt;script&gt;alert(1)&lt;/script&gt;"
    escaped_img = "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;"
    listing = (await script.get("/")).text
    page = (await script.get(f"/conversations/{conversation.id}")).text
    funnel = (await script.get("/funnel")).text
    for html in (listing, page, funnel):
        assert_no_markup_from_people(html)
        assert escaped_script in html
        assert escaped_img in html
    assert listing.count(escaped_script) >= 3  # name, ref, a tag
    assert f"cold calling {escaped_script} {escaped_img}" in page  # summary and transcript
    assert f"{escaped_script} {escaped_img}</textarea>" in page  # the note
    assert f'value="{escaped_script}, {escaped_img}"' in page  # the tags field
    assert "Contact (consented): " + escaped_script + escaped_img in page
    assert "/?ref=%3Cscript%3E" in funnel  # the by-ref link, URL-encoded


async def test_the_sign_in_pages_next_is_escaped(dash: Dash):
    response = await dash.client().get("/login", params={"next": '/x"><script>alert(1)</script>'})
    assert response.status_code == 200
    assert_no_markup_from_people(response.text)
    assert 'name="next" value="/x&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in response.text


@pytest.mark.parametrize("field", ["q", "ref", "since"])
async def test_filter_values_are_escaped_when_shown_back(dash: Dash, field: str):
    script = dash.script()
    for path in ("/", "/funnel"):
        response = await script.get(path, params={field: SCRIPT_TAG + IMG_TAG})
        assert response.status_code == 200
        assert_no_markup_from_people(response.text)


# -- the funnel ----------------------------------------------------------------------------------
FUNNEL_STEP = re.compile(r'<span class="muted">\((\w+)\)</span></td><td>(\d+)</td>')
BY_REF = re.compile(r'<tr><td>(?:<a href="[^"]*">([^<]*)</a>|<span class="muted">\(none\)</span>)</td>'
                    r"<td>(\d+)</td><td>(\d+)</td><td>(\d+)%</td></tr>")


async def test_the_funnel_counts_who_reached_each_question_in_dialog_order(dash: Dash):
    response = await dash.script().get("/funnel")
    assert response.status_code == 200
    html = response.text
    steps = [(qid, int(n)) for qid, n in FUNNEL_STEP.findall(html)]
    order = list(dash.service.dialog.order)
    assert [qid for qid, _ in steps] == order  # every question, in the dialog's order
    assert len(order) == 16 and order[:5] == ["stage", "size", "industry", "core", "pains"]
    assert order[-1] == "contact" and order.index("process") == order.index("owners") + 1
    reached = dict(steps)
    # four complete walks and carol, who stopped at question 3 (industry)
    assert reached["stage"] == reached["size"] == reached["industry"] == 5
    assert all(reached[qid] == 4 for qid in order[3:]), reached
    assert "<td><b>Recommendation</b></td><td>4</td>" in html
    assert "5 started · 4 completed · completion rate 80%" in html
    for qid in order:
        assert f"<tr><td>{escape(dash.service.dialog.question(qid).text)} " in html
    by_ref = {(ref or None): (int(s), int(c), int(rate)) for ref, s, c, rate in BY_REF.findall(html)}
    assert by_ref == {"alice": (1, 1, 100), "alice--spring": (1, 1, 100), "alicex": (1, 1, 100),
                      "bob": (1, 1, 100), "carol": (1, 0, 0)}


async def test_the_funnel_by_ref_and_since(dash: Dash):
    service = dash.service
    talk(service, "dave", ["4", "1", "1", "2"], "alice--autumn")  # stopped at question 5 (pains)
    talk(service, "erin", [], None)  # opened, never answered: reached stage only
    script = dash.script()
    alice = (await script.get("/funnel", params={"ref": "alice"})).text
    reached = {qid: int(n) for qid, n in FUNNEL_STEP.findall(alice)}
    assert [reached[q] for q in ("stage", "core", "pains", "tasks", "contact")] == [3, 3, 3, 2, 2]
    assert "3 started · 2 completed · completion rate 67%" in alice
    assert {ref for ref, *_ in BY_REF.findall(alice)} == {"alice", "alice--spring", "alice--autumn"}
    assert 'value="alice"' in alice  # the filter is kept in the form

    everyone = (await script.get("/funnel")).text
    reached = {qid: int(n) for qid, n in FUNNEL_STEP.findall(everyone)}
    assert [reached[q] for q in ("stage", "size", "industry", "core", "pains", "tasks")] == [7, 6, 6, 5, 5, 4]
    assert "7 started · 4 completed · completion rate 57%" in everyone
    assert ("", "1", "0", "0") in BY_REF.findall(everyone)  # erin, without a ref: "(none)"

    service.store.db.execute("UPDATE conversations SET started_at = '2025-01-15T09:30:00Z' WHERE id <= 4")
    recent = (await script.get("/funnel", params={"since": "2025-06-01"})).text
    reached = {qid: int(n) for qid, n in FUNNEL_STEP.findall(recent)}
    assert [reached[q] for q in ("stage", "industry", "core", "pains", "contact")] == [3, 2, 1, 1, 0]
    assert "3 started · 0 completed · completion rate 0%" in recent


async def test_the_funnel_of_an_empty_database(tmp_path: Path):
    service = build_service(tmp_path / "empty.db")
    sock, port = bind_unused_port()
    server = HTTPServer(build_review_app(service, TOKEN))
    server.add_sockets([sock])
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}",
                                     headers={"Authorization": f"Bearer {TOKEN}"}) as script:
            funnel = await script.get("/funnel")
            assert funnel.status_code == 200
            assert "0 started · 0 completed · completion rate 0%" in funnel.text
            assert "No conversations." in funnel.text
            listing = await script.get("/")
            assert "0 conversations" in listing.text and "No conversation matches." in listing.text
            download = await script.get("/export.csv")
            assert download.text.strip() == ",".join(CSV_FIELDS)
    finally:
        server.stop()
        await server.close_all_connections()
        service.store.close()


def test_the_app_is_never_built_without_a_token(service: AdvisorService):
    from advisor import AdvisorError

    with pytest.raises(AdvisorError, match="ADVISOR_REVIEW_TOKEN"):
        build_review_app(service, "")


# -- in a real browser (the chromium fixture is in tests/conftest.py) ------------------------------
def test_a_reviewer_in_a_browser(db: Path, serve, chromium: Any):
    from playwright.sync_api import expect

    served = serve(db)
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems: list[str] = []

    def console(message: Any) -> None:
        where = message.location.get("url", "")
        expected = (where.endswith("/favicon.ico")  # none: a 404
                    or (where.endswith("/login") and "status of 401" in message.text))  # the wrong token
        if message.type == "error" and not expected:
            problems.append(f"{message.text} ({where})")

    page.on("console", console)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.set_default_timeout(10_000)

    # not signed in: sent to the sign-in page, then back
    page.goto(served.url + "/?status=completed")
    expect(page).to_have_url(re.compile(r"/login\?next=%2F%3Fstatus%3Dcompleted$"))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Review token").fill("not the token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("That token is not right.")
    page.get_by_label("Review token").fill(TOKEN)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(served.url + "/?status=completed")
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(4)
    expect(page.locator("#count")).to_have_text("4 conversations")
    http_only = [c for c in context.cookies() if c["name"] == "advisor_review"]
    assert http_only and http_only[0]["httpOnly"] and http_only[0]["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == ""  # nothing a script could read

    # filter with the form: in progress, then a word someone typed
    page.locator("select[name=status]").select_option("in_progress")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(1)
    expect(rows.first.locator("td").first).to_have_text("5")
    page.locator("select[name=status]").select_option("")
    page.get_by_role("searchbox").fill(SEARCH_WORD)
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(rf"q={SEARCH_WORD}"))
    expect(rows).to_have_count(1)
    expect(rows.first.locator("td").first).to_have_text("2")
    expect(rows.first).to_contain_text("alice--spring")

    # the conversation, as a reviewer sees it
    store = Store.open(db)
    try:
        conversation = store.get(2)
        turns = store.transcript(2)
    finally:
        store.close()
    rec = conversation.recommendation
    assert rec is not None
    page.get_by_role("link", name="2", exact=True).click()
    expect(page.get_by_role("heading", name="Conversation 2")).to_be_visible()
    expect(page.locator("#summary")).to_contain_text("we pay freelancers for bookkeeping")
    assert page.locator("#summary").inner_text() == conversation.summary
    expect(page.get_by_role("heading", name=f"Readiness {rec['readiness_score']}/100")).to_be_visible()
    chart = page.get_by_role("img", name="What moved the score")
    expect(chart).to_be_visible()
    expect(chart.locator("rect")).to_have_count(len(rec["drivers"]))
    assert len(rec["drivers"]) > 0
    expect(page.get_by_text(f"Verdict: {rec['verdict_name']}.", exact=True)).to_be_visible()
    for function in rec["functions"]:
        expect(page.locator("li", has_text=function["approach"]["why"])).to_contain_text(
            f"{function['name']}: {function['approach']['name'].lower()}")
    for tension in rec["tensions"]:
        expect(page.get_by_text(tension["text"])).to_be_visible()
    expect(page.locator(".turn")).to_have_count(len(turns))
    expect(page.locator(".turn").first).to_contain_text("Where is your company today?")
    expect(page.locator(".turn.person").first).to_contain_text("Established")

    # review it
    page.get_by_label("Reviewed").check()
    page.get_by_label("I agree").check()
    page.get_by_label("Tags (comma-separated)").fill("cost cutter, call back")
    page.get_by_label("Note").fill("Wants a quote for bookkeeping")
    page.get_by_role("button", name="Save review").click()
    expect(page.get_by_role("status")).to_have_text("Saved.")
    expect(page.get_by_label("Reviewed")).to_be_checked()
    expect(page.get_by_label("I agree")).to_be_checked()
    expect(page.get_by_label("Note")).to_have_value("Wants a quote for bookkeeping")

    # the mark shows in the list
    page.get_by_role("link", name="← all conversations").click()
    expect(page).to_have_url(served.url + "/")
    expect(rows).to_have_count(5)
    marked = page.locator("tbody tr", has=page.get_by_role("link", name="2", exact=True))
    expect(marked).to_contain_text("✔ reviewed · agree")
    expect(marked.locator(".badge", has_text="cost cutter")).to_be_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
    assert (ARTIFACTS / "dashboard.png").stat().st_size > 10_000

    store = Store.open(db)
    try:
        review = store.review(2)
    finally:
        store.close()
    assert (review["reviewed"], review["verdict"], review["tags"], review["note"]) == (
        True, "agree", ["cost cutter", "call back"], "Wants a quote for bookkeeping")

    # the funnel, then sign out
    page.get_by_role("link", name="Funnel").click()
    expect(page.locator("#funnel tbody tr")).to_have_count(17)  # 16 questions and the recommendation
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(served.url + "/login")
    page.goto(served.url + "/")
    expect(page).to_have_url(re.compile(r"/login\?next=%2F$"))

    assert problems == []  # no CSP violation, no failed request, no script error
    context.close()
    assert served.stop() == 0


def test_a_signed_in_browser_is_never_sent_off_the_site(db: Path, serve, chromium: Any):
    """/login?next=... is a link anyone can send a reviewer: it must not lead elsewhere."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import expect

    served = serve(db)
    context = chromium.new_context()
    left: list[str] = []
    hosts: list[str] = []
    context.on("request", lambda request: hosts.append(str(urlsplit(request.url).hostname)))
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.goto(served.url + "/")
    page.get_by_label("Review token").fill(TOKEN)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#count")).to_have_text("5 conversations")
    for target in ("//evil.example", "https://evil.example", "/%5Cevil.example", "/%09/evil.example",
                   "/%0A/evil.example"):
        try:
            page.goto(served.url + "/login?next=" + target)
        except PlaywrightError as error:  # evil.example does not resolve: the browser did try to go there
            left.append(f"next={target}: {error.message.splitlines()[0]}")
            continue
        if urlsplit(page.url).hostname != "127.0.0.1":
            left.append(f"next={target}: {page.url}")
    assert left == []
    assert sorted(set(hosts)) == ["127.0.0.1"]  # not a single request elsewhere
    context.close()
    assert served.stop() == 0


def test_export_of_the_same_database_while_the_dashboard_runs(db: Path, serve):
    """The dashboard holds the database open; the command line still reads it."""
    served = serve(db)
    with httpx.Client(base_url=served.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10) as script:
        saved = script.post("/conversations/5/review", data={"reviewed": "1", "tags": "stalled"})
        assert saved.status_code == 200 and saved.json()["review"]["tags"] == ["stalled"]
    result = run_bot("export", "--format", "jsonl", "--status", "in_progress", db=db)
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == [5]
    csv_rows = list(csv.DictReader(io.StringIO(run_bot("export", "--format", "csv", db=db).stdout)))
    assert [row["tags"] for row in csv_rows if row["id"] == "5"] == ["stalled"]
    assert served.stop() == 0


async def test_odd_input_is_an_answer_never_a_500(dash: Dash):
    script = dash.script()
    assert (await script.get("/conversations/9223372036854775808")).status_code == 404
    assert (await script.post("/conversations/9223372036854775808/review", data={"reviewed": "1"})).status_code == 404
    since = await script.get("/", params={"since": "0001-01-01T00:00:00+14:00"})
    assert since.status_code == 200 and "expected a date" in since.text
    assert (await script.get("/export.csv", params={"since": "0001-01-01T00:00:00+14:00"})).status_code in (200, 400)
    assert (await script.get("/", params={"page": "9" * 40})).status_code == 200


async def test_signing_out_ends_the_session_a_copied_cookie_no_longer_signs_in(dash: Dash):
    reviewer = await dash.reviewer()
    stolen = reviewer.cookies.get("advisor_review")
    assert stolen
    thief = dash.client(cookies={"advisor_review": stolen})
    assert (await thief.get("/")).status_code == 200
    xsrf = await xsrf_of(reviewer, "/")
    assert (await reviewer.post("/logout", data={"_xsrf": xsrf})).status_code == 302
    assert (await thief.get("/")).status_code == 302  # the copy is worth nothing now


async def test_an_unknown_path_is_a_404_with_the_security_headers_and_no_server_name(dash: Dash):
    for path in ("/nothing-here", "/conversations/1/nope", "/.env"):
        response = await dash.client().get(path)
        assert response.status_code == 404, path
        assert response.headers["X-Frame-Options"] == "DENY" and "Content-Security-Policy" in response.headers
        assert "server" not in {k.lower() for k in response.headers}
    assert "server" not in {k.lower() for k in (await dash.client().get("/login")).headers}


# -- deliveries ----------------------------------------------------------------------------------
async def test_the_deliveries_page_shows_failed_events_and_resends_them(dash: Dash):
    store = dash.service.store
    store.targets = {"webhook": frozenset({"conversation.completed", "conversation.forgotten"})}
    store.queue_event("conversation.completed", 3)
    store.queue_event("conversation.forgotten", None, {"id": 99})
    [forgotten, completed] = store.deliveries()
    store.delivery_done(completed.id, "failed", 400, "webhook 400 Bad Request")
    store.delivery_done(forgotten.id, "delivered", 204, "webhook 204")
    reviewer = await dash.reviewer()
    page = await reviewer.get("/deliveries")
    assert page.status_code == 200
    assert "webhook 400 Bad Request" in page.text and "conversation.completed" in page.text
    assert 'href="/conversations/3"' in page.text and completed.event_id in page.text
    failed_only = await reviewer.get("/deliveries?status=failed")
    assert "conversation.forgotten" not in failed_only.text and "conversation.completed" in failed_only.text
    assert (await reviewer.get("/deliveries?status=lost")).status_code == 400
    xsrf = XSRF_FIELD.search(page.text).group(1)  # type: ignore[union-attr]
    resent = await reviewer.post(f"/deliveries/{completed.id}/resend", data={"_xsrf": xsrf})
    assert resent.status_code == 302 and resent.headers["Location"] == "/deliveries?resent=1"
    assert [d.status for d in store.deliveries()] == ["delivered", "pending"]
    assert (await reviewer.post(f"/deliveries/{completed.id}/resend")).status_code == 403  # no xsrf: refused
    assert (await dash.client().get("/deliveries")).status_code in (302, 401)  # signed in only
