"""The advice lab in the review dashboard (advisor/lab.py): what a reviewer expected, on the review form,
and the "what if" page, which replays an uploaded candidate rules file over the filtered conversations.

The handlers are in ``advisor/channels/review.py``; here is what they call. A what-if reads the
conversations and the marks and writes nothing: the candidate is loaded from a temporary file (deleted
at once) for the dashboard's own dialog, and the replay runs in chunks so that other pages are answered
in between. Every word a person reads is in ``templates/review/``.

An upload is read only once its sender is signed in (``UploadForm``): the connection then takes up to
``READ_LIMIT`` (the server's own cap, ``LIMITS`` in throttle.py, stays for everyone else), so a rules
file over ``UPLOAD_LIMIT`` gets a page saying so rather than a dropped connection. Before the rules
are read, their YAML's shape is checked (``yaml_shape``, advisor/yamlfile.py): nesting that would
crash the YAML library, aliases that would repeat a subtree past counting. Rules that pass the checks of
advisor/advice_rules.py and still fail, loading or replaying, get a page saying so, not a 500.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tornado.http1connection import HTTP1Connection
from tornado.httputil import HTTPFile, HTTPInputError, HTTPServerRequest, parse_body_arguments
from tornado.log import app_log
from tornado.web import HTTPError, RequestHandler

from advisor import AdvisorError
from advisor.advice import APPROACHES, MODEL_OF, VERDICTS, Advisor
from advisor.advice_rules import load_rules
from advisor.dialog import DialogError
from advisor.lab import Item, Report, check_expected, meets, replay
from advisor.service import AdvisorService
from advisor.store import Filters, Store
from advisor.yamlfile import yaml_shape

UPLOAD_LIMIT = 256 * 1024
"""The largest candidate rules file taken (dialogs/advice.yaml is about 16 KiB)."""
FORM_LIMIT = UPLOAD_LIMIT + 16 * 1024
"""The whole what-if form: the file, the filters, the _xsrf and multipart's own lines."""
READ_LIMIT = 1024 * 1024
"""What the connection reads of a signed-in reviewer's form: past FORM_LIMIT it is counted, not kept,
to answer with a page; past this, tornado hangs up (400)."""
CHUNK = 200
"""Conversations replayed between two looks at the other requests (about 0.1 s of work)."""
SHOWN = 200
"""Changed conversations listed on the page at most (the command line lists them all)."""
APPROACH_FIELD = "expected_approach."
"""The review form's field of a task's expected approach: ``expected_approach.<task id>``."""


# -- names ----------------------------------------------------------------------------------------
def names(service: AdvisorService, advisor: Advisor) -> dict[str, dict[str, str]]:
    """The names a person reads for the ids of the advice, from templates/phrases.txt and the dialog."""
    phrases = service.renderer.phrases

    def say(text: Any) -> str:
        return str(text).strip()

    models = [*dict.fromkeys(MODEL_OF.values()), "mixed"]
    return {
        "verdicts": {v: say(phrases.verdict_name(v)) for v in VERDICTS},
        "profiles": {p.id: say(phrases.profile_name(p.id)) for p in advisor.rules.profiles},
        "approaches": {a: say(phrases.approach_name(a)) for a in APPROACHES},
        "models": {m: say(phrases.model_name(m)) for m in models},
        "tasks": {t: service.renderer.label(advisor.rules.tasks_question, t) for t in advisor.rules.tasks},
    }


# -- what a reviewer expected -------------------------------------------------------------------
def reviewed_tasks(recommendation: Mapping[str, Any] | None) -> list[str]:
    """The tasks of a stored recommendation a reviewer may expect another approach for: those the
    person named (a suggested task is left out of the comparison, advisor.lab.approaches)."""
    return [f["id"] for f in (recommendation or {}).get("functions") or () if not f.get("suggested")]


def posted_expectation(fields: Mapping[str, str]) -> dict[str, Any]:
    """The expectation as posted (values unchecked), to show the form again as it was sent."""
    approaches = {name[len(APPROACH_FIELD):]: value.strip() for name, value in fields.items()
                  if name.startswith(APPROACH_FIELD) and value.strip()}
    return {"verdict": fields.get("expected_verdict", "").strip(),
            "profile": fields.get("expected_profile", "").strip(), "approaches": approaches}


def expected_of(fields: Mapping[str, str], advisor: Advisor, tasks: Sequence[str],
                words: Callable[..., str]) -> dict[str, Any]:
    """What the reviewer expected, from the review form's fields (a blank one expects nothing), checked
    against the rules; AdvisorError, one line, for a value the rules do not know or a task this advice
    does not have. ``{}``: nothing expected."""
    posted = posted_expectation(fields)
    pairs = []
    for task, approach in posted["approaches"].items():
        if task not in tasks:
            raise AdvisorError(words("expected_error", kind="task", task=task))
        pairs.append(f"{task}={approach}")
    return check_expected(advisor, posted["verdict"] or None, posted["profile"] or None, pairs)


# -- the upload -----------------------------------------------------------------------------------
class UploadBuffer:
    """A form's body as it arrives: kept up to ``limit`` bytes, only counted past it."""

    def __init__(self, limit: int = FORM_LIMIT):
        self.limit = limit
        self.size = 0
        self._chunks: list[bytes] = []

    def feed(self, chunk: bytes) -> None:
        if self.size + len(chunk) <= self.limit:
            self._chunks.append(chunk)
        self.size += len(chunk)

    @property
    def too_large(self) -> bool:
        return self.size > self.limit

    def body(self) -> bytes:
        return b"".join(self._chunks)


class UploadForm(RequestHandler):
    """A form with a file, its body streamed (with ``@stream_request_body`` on the handler, this class
    before the dashboard's ``Page``): once ``Page.prepare`` has found the sender signed in, the connection
    may read up to READ_LIMIT and the body is kept up to FORM_LIMIT (``upload()``). A refused sender is
    answered once the body is read within the server's own cap, as for any form: a connection closed
    mid-upload would show a browser no answer at all. The _xsrf is in the body, so it is checked once
    the body is read (tornado checks before), by the handler's call to ``check_xsrf_cookie``."""

    _upload: UploadBuffer | None = None
    _form_read = False
    _refused: HTTPError | None = None

    async def prepare(self) -> None:
        try:
            prepared = super().prepare()  # Page.prepare: sign-in, the token
            if prepared is not None:
                await prepared
        except HTTPError as refused:
            if self.request.method != "POST":
                raise
            self._refused = refused
            return
        if self._finished or self.request.method != "POST":
            return
        if isinstance(self.request.connection, HTTP1Connection):
            self.request.connection.set_max_body_size(READ_LIMIT)
        self._upload = UploadBuffer()

    def data_received(self, chunk: bytes) -> None:
        if self._upload is not None:
            self._upload.feed(chunk)

    def check_xsrf_cookie(self) -> None:
        if self.request.method == "POST" and not self._form_read:
            return  # before the body is read: checked once it is
        super().check_xsrf_cookie()

    def upload(self) -> UploadBuffer:
        """The body as read, once it is; the refusal decided in prepare() is raised here."""
        if self._refused is not None:
            raise self._refused
        assert self._upload is not None  # made in prepare()
        self._form_read = True
        return self._upload


def read_form(upload: UploadBuffer, request: HTTPServerRequest) -> bool:
    """The form's body into the request's arguments and files, as tornado parses a body it reads
    itself; False for a body that cannot be read (nothing of it is taken then)."""
    arguments: dict[str, list[bytes]] = {}
    files: dict[str, list[HTTPFile]] = {}
    try:
        parse_body_arguments(request.headers.get("Content-Type", ""), upload.body(), arguments, files,
                             request.headers)
    except HTTPInputError:
        return False
    for name, values in arguments.items():
        request.body_arguments.setdefault(name, []).extend(values)
        request.arguments.setdefault(name, []).extend(values)
    for name, uploaded in files.items():
        request.files.setdefault(name, []).extend(uploaded)
    return True


def shown_name(filename: str) -> str:
    """The uploaded file's name as the page shows it: the last part of the path, printable, short."""
    last = filename.replace("\\", "/").rsplit("/", 1)[-1]
    printable = "".join(ch for ch in last if ch.isprintable()).strip()
    return printable[:80] or "rules.yaml"


def load_candidate(content: bytes, name: str, service: AdvisorService) -> Advisor:
    """The uploaded rules for the dashboard's dialog; DialogError with the file's problems, each line
    naming the upload rather than the temporary file it was read from (and deleted)."""
    handle, temporary = tempfile.mkstemp(prefix="what-if-", suffix=".yaml")
    path = Path(temporary)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(content)
        return Advisor(service.dialog, load_rules(path, service.dialog))
    except DialogError as error:
        raise DialogError([line.replace(str(path), name) for line in error.errors]) from None
    except AdvisorError as error:
        raise DialogError([str(error).replace(str(path), name)]) from None
    finally:
        path.unlink(missing_ok=True)


def candidate_of(files: Sequence[HTTPFile], service: AdvisorService, words: Callable[..., str],
                 problems: list[str]) -> tuple[Advisor | None, str, list[str]]:
    """(the candidate advisor or None, the file's name as shown, the problems to show) of the form's
    file, after the ``problems`` found before it (none: the file is loaded)."""
    name = shown_name(files[0].filename) if files else ""
    if not problems and (not files or not files[0].body):
        problems = [words("what_if_error", kind="no_file")]
    shape = None if problems else yaml_shape(files[0].body)
    if shape is not None:
        problems = [words("what_if_error", kind=shape[0], file=name, limit=shape[1])]
    if problems:
        return None, name, problems
    try:
        return load_candidate(files[0].body, name, service), name, []
    except DialogError as broken:
        return None, name, [words("what_if_error", kind="broken", file=name), *broken.errors]
    except Exception as error:  # a shape the rules' checks let through: a page saying so, not a 500
        app_log.warning("what-if: %s failed to load", name, exc_info=True)
        return None, name, [words("what_if_error", kind="crashed", file=name, detail=_said(error))]


# -- the replay -----------------------------------------------------------------------------------
class ReplayFailed(Exception):
    """Candidate rules that load but fail on someone's answers (a value the rules' checks let through)."""


def _said(error: BaseException) -> str:
    return f"{type(error).__name__}: {str(error)[:200]}"


async def replay_filtered(store: Store, filters: Filters, candidate: Advisor, baseline: Advisor | None) -> Report:
    """advisor.lab.replay over the conversations ``filters`` match, CHUNK at a time: each chunk is read
    whole (no statement stays open while other requests write) and the loop answers others in between.
    ReplayFailed if the candidate fails on someone's answers."""
    reviews = store.reviews()
    report = Report(rules_version=candidate.rules.version)
    offset = 0
    while chunk := list(store.conversations(filters, limit=CHUNK, offset=offset)):
        try:
            part = replay(chunk, reviews, candidate, baseline)
        except Exception as error:
            app_log.warning("what-if: replaying candidate rules failed", exc_info=True)
            raise ReplayFailed(_said(error)) from error
        report.conversations += part.conversations
        report.items += part.items
        report.not_replayable += part.not_replayable
        offset += len(chunk)
        await asyncio.sleep(0)
    return report


def task_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each task whose approach differs: {id, before, after} (None where the task is not advised)."""
    was = {f["id"]: f["approach"] for f in before["functions"]}
    now = {f["id"]: f["approach"] for f in after["functions"]}
    return [{"id": task, "before": was.get(task), "after": now.get(task)}
            for task in dict.fromkeys([*was, *now]) if was.get(task) != now.get(task)]


def result(report: Report) -> dict[str, Any]:
    """What the page shows of a replay: counts, agreement with the marks, the changed conversations
    (at most SHOWN) with their tasks that change, and the ones that could not be replayed."""

    def row(item: Item) -> dict[str, Any]:
        return {"item": item, "tasks": task_changes(item.before, item.after),
                "met_before": meets(item.before, item.expected) if item.expected else None,
                "met_after": meets(item.after, item.expected) if item.expected else None}

    changed = report.changed
    return {
        "with_advice": report.conversations,
        "replayed": len(report.items),
        "changed": len(changed),
        "not_replayable": report.not_replayable,
        "reviewed": report.reviewed(),
        "rows": [row(item) for item in changed[:SHOWN]],
        "rules_version": report.rules_version,
    }
