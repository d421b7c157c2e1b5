"""The web chat (``python bot.py web``) end to end: its JSON API as other front ends use it, and the page
in headless Chromium, against the real server process and the same store as every other channel."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from advisor.channels.web import embed_snippet
from tests.conftest import run_bot
from tests.personas import ESTABLISHED_COST_CUTTER, GROWING_TACTICAL
from tests.test_review import ARTIFACTS, TOKEN, Served

CSRF = re.compile(r'<meta name="csrf-token" content="([A-Za-z0-9_-]+)">')


def WebServed(db: Path, *args: str, env: dict[str, str] | None = None) -> Served:
    """``python bot.py web --port P`` as a process; ready once it says where it listens."""
    return Served(db, command=("web", *args), ready_line="Web chat on ", env=env)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "advisor.db"


@pytest.fixture
def web() -> Iterator:
    started: list[Served] = []

    def start(db: Path, *args: str, env: dict[str, str] | None = None) -> Served:
        served = WebServed(db, *args, env=env)
        started.append(served)
        return served

    yield start
    for served in started:
        served.stop()


class Person:
    """A browser without a page: the cookies the server sets, and the token its page carries."""

    def __init__(self, url: str, path: str = "/", cookies: httpx.Cookies | None = None):
        self.url = url
        self.client = httpx.Client(base_url=url, cookies=cookies, timeout=10)
        page = self.client.get(path)
        assert page.status_code == 200, page.text
        found = CSRF.search(page.text)
        assert found, page.text
        self.token = found.group(1)
        self.page = page

    def turn(self, body: Any, status: int = 200, **headers: str) -> dict[str, Any]:
        sent = self.client.post("/api/turn", content=body if isinstance(body, bytes) else json.dumps(body),
                                headers={"X-CSRF-Token": self.token, "Content-Type": "application/json", **headers})
        assert sent.status_code == status, (sent.status_code, sent.text)
        return sent.json()

    def walk(self, lines: list[str]) -> dict[str, Any]:
        """Type each console line of a persona (numbers, words, Enter, skip) as a typed answer."""
        answer = self.turn({"action": "start"})
        for line in lines:
            assert answer["question"] is not None, answer
            answer = self.turn({"text": line})
        return answer


def console_recommendation(tmp_path: Path, lines: list[str]) -> dict[str, Any]:
    other = tmp_path / "console.db"
    result = run_bot("console", "--user", "same", stdin="\n".join(lines) + "\n", db=other)
    assert result.returncode == 0, result.stderr
    return json.loads(run_bot("export", "--format", "json", db=other).stdout)[0]["recommendation"]


# -- the JSON API --------------------------------------------------------------------------------
@pytest.mark.parametrize("lines", [GROWING_TACTICAL, ESTABLISHED_COST_CUTTER], ids=["growing", "cost_cutter"])
def test_the_same_answers_on_the_web_get_the_console_s_recommendation(db, web, tmp_path, lines):
    served = web(db)
    person = Person(served.url, "/?ref=alice")
    first = person.turn({"action": "start"})
    question = first["question"]
    assert question["id"] == "stage" and question["number"] == 1 and question["multi"] is False
    assert {"value": "growing", "label": "Growing: scaling up"} in question["options"]
    assert "Welcome" in first["html"] and first["recommendation"] is None and first["hint"] is None
    answer = person.walk(lines)
    assert answer["question"] is None and answer["recommendation"] is not None
    assert "Your outsourcing recommendation" in answer["html"]
    assert answer["recommendation"] == console_recommendation(tmp_path, lines)
    exported = json.loads(run_bot("export", "--format", "json", db=db).stdout)
    assert [(c["channel"], c["ref"], c["status"]) for c in exported] == [("web", "alice", "completed")]
    assert exported[0]["recommendation"] == answer["recommendation"]
    report = person.client.get("/report")
    assert report.status_code == 200 and report.text.lower().startswith("<!doctype html")
    assert "How to engage" in report.text or "not now" in report.text.lower()


def test_buttons_back_restart_and_words_understood(db, web):
    person = Person(web(db).url)
    person.turn({"action": "start"})
    understood = person.turn({"text": "we are scaling up fast"})
    assert understood["question"]["id"] == "stage" and understood["question"]["proposed"] == ["growing"]
    assert understood["hint"]["code"] == "understood"
    size = person.turn({"choose": ["growing"]})
    assert size["question"]["id"] == "size" and size["question"]["can_go_back"] is True
    assert person.turn({"action": "back"})["question"]["id"] == "stage"
    person.turn({"choose": ["early"]})
    person.turn({"choose": ["small"]})
    person.turn({"choose": ["software"]})
    person.turn({"choose": ["product"]})
    tasks = person.turn({"text": "skip"})  # the pains question is optional
    assert tasks["question"]["id"] == "tasks" and tasks["question"]["multi"] is True
    refused = person.turn({"choose": ["not_an_option"]})
    assert refused["question"]["id"] == "tasks" and "not one of this question" in refused["html"]
    hours = person.turn({"choose": ["bookkeeping", "it_support"]})
    assert hours["question"]["id"] == "hours"
    again = person.turn({"action": "restart"})
    assert again["question"]["id"] == "stage" and "Starting over" in again["html"]
    exported = json.loads(run_bot("export", "--format", "json", db=db).stdout)
    assert [c["status"] for c in exported] == ["abandoned", "in_progress"]  # oldest first


def test_a_person_resumes_after_the_server_restarts(db, web):
    served = web(db)
    person = Person(served.url, "/?ref=bob")
    person.turn({"action": "start"})
    person.turn({"choose": ["growing"]})
    assert person.turn({"choose": ["medium"]})["question"]["id"] == "industry"
    assert served.stop() == 0
    again = Person(web(db).url, cookies=person.client.cookies)  # the same browser, a new server
    assert again.token == person.token
    resumed = again.turn({"action": "start"})
    assert resumed["question"]["id"] == "industry" and "Welcome back" in resumed["html"]
    stranger = Person(web(db).url)  # another browser: a new conversation
    assert stranger.turn({"action": "start"})["question"]["id"] == "stage"
    exported = json.loads(run_bot("export", "--format", "json", db=db).stdout)
    assert sorted((c["ref"] or "", len(c["answers"])) for c in exported) == [("", 0), ("bob", 2)]


def test_the_api_refuses_what_it_should(db, web):
    served = web(db)
    person = Person(served.url)
    person.turn({"action": "start"}, 403, **{"X-CSRF-Token": ""})
    person.turn({"action": "start"}, 403, **{"X-CSRF-Token": "x" * 43})
    no_cookies = httpx.post(served.url + "/api/turn", json={"action": "start"}, headers={"X-CSRF-Token": person.token})
    assert no_cookies.status_code == 403  # another site's form or script: no cookies, or no token
    person.turn(b"not json", 400)
    person.turn({"action": "fly"}, 400)
    person.turn({"text": "a", "choose": ["b"]}, 400)
    person.turn({"text": "x" * (64 * 1024)}, 413)
    answer = person.turn({"action": "start"})
    assert answer["question"]["id"] == "stage"
    for _ in range(56):  # a person answers every few seconds; 60 turns a minute (4 above) is a script
        person.turn({"action": "start"})
    limited = person.turn({"action": "start"}, 429)
    assert "wait a minute" in limited["error"]
    assert served.process.poll() is None


def test_the_page_has_a_csp_a_token_and_http_only_cookies(db, web):
    served = web(db)
    person = Person(served.url, "/?ref=alice")
    csp = person.page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp
    assert "Server" not in person.page.headers
    cookies = person.page.headers.get_list("set-cookie")
    assert len(cookies) == 3 and all("HttpOnly" in c and "SameSite=Lax" in c for c in cookies)
    assert httpx.get(served.url + "/?ref=<script>").status_code == 200
    assert "advisor_ref" not in httpx.get(served.url + "/?ref=<script>").headers.get("set-cookie", "")
    behind = web(db, "--behind-proxy")
    https = httpx.get(behind.url + "/", headers={"X-Forwarded-Proto": "https"})
    assert all("Secure" in c and "SameSite=None" in c for c in https.headers.get_list("set-cookie"))
    assert httpx.get(served.url + "/nothing").status_code == 404
    assert httpx.get(served.url + "/report").status_code == 404  # no recommendation yet


def test_link_prints_the_web_link_and_an_iframe():
    result = run_bot("link", "alice", "--campaign", "spring", "--web", "https://advisor.example.com/")
    assert result.returncode == 0, result.stderr
    link, frame = result.stdout.splitlines()
    assert link == "https://advisor.example.com/?ref=alice--spring"
    assert frame.startswith('<iframe src="https://advisor.example.com/?ref=alice--spring"')
    bad = run_bot("link", "alice", "--web", "advisor.example.com")
    assert bad.returncode == 1 and bad.stderr.startswith("error: --web must be")


def test_the_web_link_joins_a_page_address_that_has_a_path_and_a_query_of_its_own():
    link, frame = embed_snippet('https://example.com/advisor/?lang=en&ref=old#top', "alice")
    assert link == "https://example.com/advisor/?lang=en&ref=alice"  # one ref, the fragment left out
    assert frame.startswith('<iframe src="https://example.com/advisor/?lang=en&amp;ref=alice" ')
    link, frame = embed_snippet('https://example.com/"><script>', "bob")
    assert frame.startswith('<iframe src="https://example.com/&#34;&gt;&lt;script&gt;?ref=bob" ')  # escaped


def test_a_web_lead_reaches_the_sales_chat_through_the_telegram_bot_and_the_dashboard_lists_it(
        db, web, fake_api, start_bot):
    sales = -100500
    fake_api.add_chat(sales, first_name="Sales", chat_type="supergroup")
    settings = {"ADVISOR_SALES_CHAT_ID": str(sales)}
    bot = start_bot(fake_api, env=settings, db=db)  # the Telegram bot, on the same database
    person = Person(web(db, env=settings).url, "/?ref=carol")
    assert person.walk(GROWING_TACTICAL)["recommendation"] is not None  # it ends with contact details
    card = fake_api.wait_for_message(sales, contains="A prospect wants to talk to an expert", timeout=15)
    assert "carol" in card["plain"] and "Maria Lopez" in card["plain"]  # queued by the web chat's process
    dashboard = Served(db)
    try:
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        listed = httpx.get(dashboard.url + "/?ref=carol", headers=bearer)
        assert listed.status_code == 200 and "Maria Lopez" in listed.text and ">carol<" in listed.text
        assert "<th>Channel</th>" in listed.text and "<td>web</td>" in listed.text
        page = httpx.get(dashboard.url + "/conversations/1", headers=bearer)
        assert page.status_code == 200 and "web · user" in page.text and "ref carol" in page.text
    finally:
        dashboard.stop()
    assert "Traceback" not in bot.output()


# -- in a real browser ------------------------------------------------------------------------------
def test_a_person_completes_the_advisor_on_the_page_in_a_browser(db, web, chromium):
    from playwright.sync_api import expect

    served = web(db)
    problems: list[str] = []
    for width, height in ((390, 844), (1280, 900)):  # a phone, then a desktop
        context = chromium.new_context(viewport={"width": width, "height": height})
        page = context.new_page()
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.set_default_timeout(10_000)
        walk_in_the_browser(page, served.url + f"/?ref=w{width}", expect)
        if width == 390:
            assert page.evaluate("document.documentElement.scrollWidth") <= width  # nothing wider than a phone
        page.screenshot(path=str(ARTIFACTS / f"web-chat-{width}.png"), full_page=False)
        with page.expect_popup() as popup:
            page.locator("#report").click()
        expect(popup.value.locator("body")).to_contain_text("HOW TO ENGAGE", ignore_case=True)
        assert page.evaluate("document.cookie") == ""  # HttpOnly: nothing a script could read
        context.close()
    assert problems == []
    exported = json.loads(run_bot("export", "--format", "json", db=db).stdout)
    assert sorted((c["channel"], c["ref"], c["status"]) for c in exported) == [
        ("web", "w1280", "completed"), ("web", "w390", "completed")]
    assert {json.dumps(c["recommendation"], sort_keys=True) for c in exported}.__len__() == 1  # same answers


def walk_in_the_browser(page: Any, url: str, expect: Any) -> None:
    """A growing consultancy's answers, by pressing buttons and typing, as a person would."""
    page.goto(url)
    expect(page.locator("#progress-text")).to_have_text("Question 1 of 16")

    def choose(label: str) -> None:
        page.locator("#choices button", has_text=label).first.click()
        expect(page.locator("body")).not_to_have_class(re.compile("busy"))

    def typed(text: str) -> None:
        page.locator("#text").fill(text)
        page.locator("#send").click()
        expect(page.locator("body")).not_to_have_class(re.compile("busy"))

    choose("Growing")
    expect(page.locator("#progress-text")).to_have_text(re.compile("Question 2 of"))
    page.locator("#back").click()
    expect(page.locator("#progress-text")).to_have_text("Question 1 of 16")
    choose("Growing")
    typed("about 30 of us")  # understood: 11-50, marked; an empty answer (Enter) confirms it
    expect(page.locator("#choices button", has_text="✅ 11-50")).to_be_visible()
    typed("")
    expect(page.locator(".log")).to_contain_text("Which industry")
    choose("Agency or professional services")
    choose("Deliver services")
    typed("our consultants do their own recruiting and data entry")
    expect(page.locator("#choices button[aria-pressed=true]")).to_have_count(2)
    page.locator("#choices button", has_text="Customer support").click()  # tick one more
    choose("Done")
    typed("15")
    for label in ("The core team", "Partly", "Growth", "12 months"):
        choose(label)
    page.locator("#choices button", has_text="More time for our core work").click()
    choose("Done")
    for label in ("No, never", "A managed service"):
        choose(label)
    page.locator("#choices button", has_text="Quality").click()
    choose("Done")
    choose("No thanks")
    expect(page.locator(".log")).to_contain_text("Your outsourcing recommendation")
    expect(page.locator("#report")).to_be_visible()
    expect(page.locator("#typed")).to_be_hidden()
