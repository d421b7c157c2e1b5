#!/usr/bin/env python3
"""The Outsourcing Advisor: the command line and the composition root.

    python bot.py                 Telegram when TELEGRAM_BOT_TOKEN is set, else the console
    python bot.py console         talk to the advisor in this terminal
    python bot.py telegram        run the Telegram bot
    python bot.py check [FILE]    validate a dialog file, its advice rules and templates
    python bot.py diagram [FILE]  print the dialog as a Mermaid state diagram
    python bot.py export --format json   print every stored conversation

Errors a person can act on are printed as one line, without a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import logging
import os
import re
import signal
import sys
from pathlib import Path
from typing import Any

from advisor import AdvisorError, __version__
from advisor.dialog import DialogError
from advisor.i18n import LANGUAGES
from advisor.settings import DEFAULT_DB, DEFAULT_DIALOG, Settings

EXIT_ERROR = 1
EXIT_USAGE = 2


def default_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "console"


def cmd_console(args: argparse.Namespace, settings: Settings) -> int:
    from advisor.channels.console import Console
    from advisor.service import build_service

    service = build_service(settings.db, settings.dialog, currency=settings.currency, events_for=events_for(settings))
    try:
        stdin = sys.stdin
        if hasattr(stdin, "reconfigure"):
            stdin.reconfigure(errors="replace")  # a stray byte is an answer to re-ask, not a crash
        console = Console(service, stdin, sys.stdout, interactive=stdin.isatty(), language=settings.language)
        return console.run(args.user or default_user(), ref=args.ref)
    finally:
        service.store.close()


def instance_lock(database: str):
    """Hold an exclusive lock on the database file for as long as this process runs; a second bot on
    the same database would answer every update twice, so it stops at once instead. The lock is on
    the file itself (its inode), so a symlink or a hard link to it is the same database; SQLite's own
    locks are POSIX record locks, which an flock does not touch. Beside it, a file names the holder."""
    import fcntl

    try:
        handle = open(database, "ab")  # noqa: SIM115 - held until the process ends; creates a new database
    except OSError as error:
        raise AdvisorError(f"cannot open {database}: {error.strerror or error}") from None
    note = f"{os.path.realpath(database)}.lock"
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        try:
            holder = Path(note).read_text(encoding="utf-8").strip()
        except OSError:
            holder = ""  # (through a hard link the note is beside the other name)
        which = f" (pid {holder})" if holder.isdecimal() else ""
        raise AdvisorError(f"another advisor bot{which} is already running on {database}; "
                           "stop it first, or give this one its own ADVISOR_DB") from None
    with contextlib.suppress(OSError):
        Path(note).write_text(str(os.getpid()), encoding="utf-8")
    return handle


def cmd_telegram(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from telegram import Update
    from telegram.error import BadRequest, InvalidToken, NetworkError, TelegramError

    from advisor.channels.telegram import build_application, hide_token_in_logs
    from advisor.channels.webhook import serve_webhook
    from advisor.service import build_service

    webhook = settings.telegram.webhook
    options = settings.options
    token, api_url = settings.telegram.token, settings.telegram.api_url
    outbound = settings.outbound  # the webhook's secret and the CRMs' tokens are masked in the logs too
    hide_token_in_logs(token, *([webhook.secret] if webhook else []), *(
        secret for secret in (outbound.webhook_secret, outbound.hubspot_token, outbound.pipedrive_token) if secret))
    from advisor.advice import load_advisor
    from advisor.dialog import load_dialog
    from advisor.render import TEMPLATES_DIR

    dialog_file = settings.dialog
    load_advisor(load_dialog(dialog_file, TEMPLATES_DIR), *settings.currency)  # a broken dialog stops the start first
    lock = instance_lock(settings.db)
    service = build_service(settings.db, dialog_file, currency=settings.currency, events_for=events_for(settings))
    app = build_application(service, token, api_url, options)
    deliverer = delivering(settings)
    try:
        if webhook is not None:
            asyncio.run(serve_webhook(app, listen=webhook.listen, port=webhook.port, path=webhook.path,
                                      url=webhook.url, secret=webhook.secret))
        else:
            app.run_polling(allowed_updates=Update.ALL_TYPES)
            refused = getattr(app.bot, "refused", None)
            if refused is not None:  # while polling: it stopped the bot rather than live on deaf
                raise AdvisorError(f"the Bot API at {api_url} refused TELEGRAM_BOT_TOKEN while polling "
                                   f"({str(refused).replace(token, '<token>')}): check the token")
    except InvalidToken:
        raise AdvisorError(f"the Bot API at {api_url} refused TELEGRAM_BOT_TOKEN: check the token") from None
    except BadRequest as error:  # a subclass of NetworkError: the API answered, and said no
        raise AdvisorError(f"the Bot API at {api_url} refused a setting: {str(error).replace(token, '<token>')}"
                           ) from None
    except OSError as error:
        if webhook is None:  # polling listens on nothing: the network failed
            raise AdvisorError(f"cannot reach the Telegram Bot API at {api_url}: {error.strerror or error}") from None
        raise AdvisorError(f"cannot listen on {webhook.listen}:{webhook.port} for the webhook "
                           f"(TELEGRAM_WEBHOOK_LISTEN, TELEGRAM_WEBHOOK_PORT): {error.strerror or error}") from None
    except NetworkError as error:
        text = str(error).replace(token, "<token>")
        raise AdvisorError(f"cannot reach the Telegram Bot API at {api_url}: {text}") from None
    except TelegramError as error:
        raise AdvisorError(f"Telegram: {str(error).replace(token, '<token>')}") from None
    finally:
        deliverer.stop()
        service.store.close()
        lock.close()
    return 0


def check_languages() -> int:
    """The translations of every sentence (locales/): one line per problem on standard error, exit 1."""
    from advisor.i18n import LANGUAGES, SOURCE, check_catalogs, source_messages

    root = Path(__file__).resolve().parent
    messages = source_messages(root)
    problems = check_catalogs(root, sources=messages)
    for line in problems:
        print(line, file=sys.stderr)
    others = ", ".join(lang for lang in LANGUAGES if lang != SOURCE)
    if problems:
        print(f"locales: {len(problems)} problem(s) in the translations ({others})", file=sys.stderr)
        return EXIT_ERROR
    print(f"locales: OK: {len(messages)} messages translated into {others}")
    return 0


def check_keywords(dialog: Any) -> int:
    """The free-text words of every other language (keywords.<language>.yaml beside the dialog)."""
    from advisor.i18n import LANGUAGES, SOURCE
    from advisor.keywords import check_keywords as problems_of
    from advisor.keywords import keywords_path

    others = [lang for lang in LANGUAGES if lang != SOURCE]
    problems = problems_of(dialog, others)
    if problems:
        return print_problems(DialogError(problems))
    found = [lang for lang in others if keywords_path(dialog, lang).exists()]
    if found:
        print(f"keywords: OK: free text understood in {', '.join(found)} too")
    return 0


def print_problems(error: DialogError) -> int:
    """Every problem of a file on its own line (file: key: message), then how many; exit 1."""
    for line in error.errors:
        print(line, file=sys.stderr)
    print(f"{len(error.errors)} problem(s) found", file=sys.stderr)
    return EXIT_ERROR


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    from advisor.advice import load_advisor
    from advisor.dialog import load_dialog
    from advisor.engine import Engine
    from advisor.render import TEMPLATES_DIR, Renderer

    path = settings.dialog
    try:
        dialog = load_dialog(path, TEMPLATES_DIR)
        advisor = load_advisor(dialog)
        Renderer(dialog, TEMPLATES_DIR)
    except DialogError as error:
        return print_problems(error)
    low, high = Engine(dialog, advisor.recommend).path_lengths()
    print(f"{path}: OK: {len(dialog.questions)} questions, {low} to {high} on any path; "
          f"advice rules {dialog.advice_path.name} OK")
    # the catalogs translate the project's own dialog and templates (babel.cfg): checked with them
    status = check_languages() if path.resolve() == DEFAULT_DIALOG.resolve() else 0
    status = check_keywords(dialog) or status
    if args.understanding is not None:
        corpora = [Path(args.understanding)] if args.understanding else [
            dialog.path.parent / "understanding.yaml", *sorted(dialog.path.parent.glob("understanding.*.yaml"))]
        for corpus in corpora:
            status = run_understanding(dialog, corpus) or status
    if args.cases is not None:
        status = run_cases(dialog, advisor, Path(args.cases) if args.cases
                           else dialog.path.parent / "cases.yaml") or status
    return status


def run_understanding(dialog: Any, path: Path) -> int:
    """How well free text is understood, on the labelled phrases and typed answers of ``path``."""
    from advisor.corpus import ANSWERS_GOAL, PRECISION_GOAL, RECALL_GOAL, answers_table, met, report, table

    try:
        phrases, answers = report(dialog, path)
    except DialogError as error:
        return print_problems(error)
    if phrases is not None:
        question = next(q for q in dialog.questions.values() if q.prefill_from)
        print(f"{path}: {phrases.phrases} phrases at '{question.prefill_from}', "
              f"{phrases.phrases - len(phrases.mistakes)} understood exactly")
        for line in table(phrases, question):
            print("  " + line)
        for text, expected, got in phrases.mistakes:
            print(f"  - {text!r}: expected {expected or 'nothing'}, understood {got or 'nothing'}")
    if answers is not None:
        print(f"{path}: {answers.total.answers} answers typed at button questions, {answers.total.right} understood"
              " (or rightly asked about)")
        for line in answers_table(answers):
            print("  " + line)
        for qid, text, expected, got in answers.mistakes:
            print(f"  - {qid}: {text!r}: expected {expected or 'a question back'}, understood {got or 'nothing'}")
    goals = []
    if phrases is not None:
        goals.append(f"precision >= {PRECISION_GOAL}, recall >= {RECALL_GOAL}")
    if answers is not None:
        goals.append(f"typed answers understood >= {ANSWERS_GOAL}")
    ok = met(phrases, answers)
    print(f"goal: {'; '.join(goals)}: {'met' if ok else 'NOT met'}")
    return 0 if ok else EXIT_ERROR


def run_cases(dialog: Any, advisor: Any, path: Path) -> int:
    """Every advice case through the dialog and rules: what differs from what a consultant expects."""
    from advisor.cases import CaseRunner, load_cases
    from advisor.render import TEMPLATES_DIR, Renderer

    try:
        cases = load_cases(path, dialog)
    except DialogError as error:
        return print_problems(error)
    runner = CaseRunner(dialog, advisor, Renderer(dialog, TEMPLATES_DIR))
    failed = 0
    for case in cases:
        problems = runner.run(case)
        if problems:
            failed += 1
            print(f"{path}: cases.{case.id}: {case.description}", file=sys.stderr)
            for problem in problems:
                print(f"  - {problem}", file=sys.stderr)
    print(f"{path}: {len(cases) - failed} of {len(cases)} advice cases pass")
    return EXIT_ERROR if failed else 0


def cmd_diagram(args: argparse.Namespace, settings: Settings) -> int:
    from transitions.extensions import GraphMachine

    from advisor.dialog import load_dialog
    from advisor.engine import build_machine
    from advisor.render import TEMPLATES_DIR

    dialog = load_dialog(settings.dialog, TEMPLATES_DIR)
    holder = type("Dialog", (), {})()
    build_machine(dialog, GraphMachine, model=holder, graph_engine="mermaid", show_conditions=True,
                  title=dialog.title)
    print(holder.get_graph().draw(None))  # type: ignore[attr-defined]
    return 0


def open_existing_store(settings: Settings):
    """The store, or None when the database file does not exist yet (nothing stored: nothing to show)."""
    from advisor.store import Store

    path = settings.db
    return Store.open(path, read_only=True) if Path(path).exists() else None


def filters_from(args: argparse.Namespace):
    from advisor.reports import parse_since
    from advisor.store import Filters

    return Filters(ref=getattr(args, "ref", None), status=getattr(args, "status", None),
                   since=parse_since(getattr(args, "since", None)), search=getattr(args, "search", None))


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from advisor.export import write_json
    from advisor.reports import Progress, csv_row, write_csv, write_jsonl

    filters = filters_from(args)
    store = open_existing_store(settings)
    try:
        progress = Progress(store.count(filters) if store else 0, "exported")

        def conversations():
            for conversation in store.conversations(filters) if store else ():
                progress.tick()
                yield conversation

        def write(out) -> int:
            shown = out.isatty()  # a terminal gets escapes shown, not run; files and pipes get the data as it is
            if args.format == "json":
                return write_json(conversations(), out, printable=shown)
            if args.format == "jsonl":
                return write_jsonl(conversations(), out, printable=shown)
            return write_csv((csv_row(c, store.review(c.id)) for c in conversations()), out,  # type: ignore[union-attr]
                             printable=shown)

        if args.output:
            try:
                out = open(args.output, "w", encoding="utf-8", newline="")  # noqa: SIM115 - closed below
            except OSError as error:
                raise AdvisorError(f"cannot write {args.output}: {error.strerror or error}") from None
            try:
                with out:
                    count = write(out)
            except OSError as error:  # a full disk, /dev/full
                raise AdvisorError(f"cannot write {args.output}: {error.strerror or error}") from None
            print(f"{count} conversation(s) written to {args.output}", file=sys.stderr)
        else:
            write(sys.stdout)
    finally:
        if store is not None:
            store.close()
    return 0


def cmd_summaries(args: argparse.Namespace, settings: Settings) -> int:
    from tabulate import tabulate

    from advisor.reports import TABLE_HEADERS, table_rows

    store = open_existing_store(settings)
    if store is None:
        print("No conversations stored yet.")
        return 0
    try:
        filters = filters_from(args)
        rows = table_rows(store.conversations(filters, newest_first=True, limit=args.limit))
        total = store.count(filters)
    finally:
        store.close()
    if not rows:
        print("No conversations match.")
        return 0
    print(tabulate(rows, headers=TABLE_HEADERS, tablefmt="simple"))
    shown = f"{len(rows)} of {total}" if total > len(rows) else f"{total}"
    print(f"\n{shown} conversation(s), newest first. Details: python bot.py show ID")
    return 0


def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    from advisor.render import build_environment
    from advisor.reports import contact_of, printable

    store = open_existing_store(settings)
    if store is None:
        raise AdvisorError(f"no conversation {args.id}: nothing is stored yet")
    try:
        conversation = store.get(args.id)
        turns = store.transcript(args.id)
        review = store.review(args.id)
    finally:
        store.close()
    contact = contact_of(conversation)
    parts = [str(v) for k, v in (contact or {}).items() if k in ("name", "email", "phone") and v]
    text = build_environment().get_template("show.txt").render(
        conversation=conversation, contact=contact, contact_parts=parts, review=review, turns=turns)
    print(printable(text.strip("\n")))  # what people typed may hold terminal escapes
    return 0


def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    from advisor.lab_cli import replay_command

    return replay_command(args, settings)


def cmd_mark(args: argparse.Namespace, settings: Settings) -> int:
    from advisor.lab_cli import mark_command

    return mark_command(args, settings)


def cmd_calibrate(args: argparse.Namespace, settings: Settings) -> int:
    from advisor.calibrate import calibrate_command

    return calibrate_command(args, settings)


def cmd_link(args: argparse.Namespace, settings: Settings) -> int:
    from advisor.reports import REF_PART, deep_link

    if args.web:
        from advisor.channels.web import embed_snippet

        for name, part in (("REF", args.ref), ("--campaign", args.campaign)):
            if part is not None and not REF_PART.match(part):
                raise AdvisorError(f"{name} must be 1-40 characters of A-Z a-z 0-9 _, got {part!r}")
        if not re.match(r"^https?://[^\s/?#]+", args.web):
            raise AdvisorError(f"--web must be the web chat's address, such as https://advisor.example.com, "
                               f"got {args.web!r}")
        link, frame = embed_snippet(args.web, args.ref if args.campaign is None else f"{args.ref}--{args.campaign}")
        print(link)
        print(frame)
        return 0
    username = args.username
    if not username:
        username = bot_username(settings)
    print(deep_link(username, args.ref, args.campaign))
    return 0


def bot_username(settings: Settings) -> str:
    """The bot's username, asked from the Bot API (getMe) with TELEGRAM_BOT_TOKEN."""
    import asyncio

    from telegram import Bot
    from telegram.error import InvalidToken, NetworkError

    token, api_url = settings.telegram_polling.token, settings.telegram_polling.api_url

    async def ask() -> str:
        async with Bot(token, base_url=f"{api_url}/bot") as bot:
            return str(bot.username)

    try:
        return asyncio.run(ask())
    except InvalidToken:
        raise AdvisorError(f"the Bot API at {api_url} refused TELEGRAM_BOT_TOKEN (or use --username)") from None
    except NetworkError as error:
        raise AdvisorError(f"cannot reach the Telegram Bot API at {api_url} (or use --username): "
                           f"{str(error).replace(token, '<token>')}") from None


def cmd_review(args: argparse.Namespace, settings: Settings) -> int:
    from advisor.channels.review import build_review_app
    from advisor.service import build_service

    token = settings.review_token
    if settings.review_token_is_short:
        print("warning: ADVISOR_REVIEW_TOKEN is shorter than 16 characters; anyone who guesses it reads every "
              "conversation", file=sys.stderr)
    service = build_service(settings.db, settings.dialog, currency=settings.currency, events_for=events_for(settings))
    deliverer = delivering(settings)
    try:
        serve_http(build_review_app(service, token, behind_proxy=args.behind_proxy), args.host, args.port,
                   "Review dashboard")
    finally:
        deliverer.stop()
        service.store.close()
    return 0


def cmd_web(args: argparse.Namespace, settings: Settings) -> int:
    from advisor.channels.telegram import CARDS_PER_PERSON_A_DAY
    from advisor.channels.web import build_web_app
    from advisor.service import build_service

    service = build_service(settings.db, settings.dialog, currency=settings.currency, events_for=events_for(settings))
    if settings.options.sales_chat_id is not None:  # the Telegram bot's process sends the cards
        service.cards_per_person_a_day = CARDS_PER_PERSON_A_DAY
    deliverer = delivering(settings)
    try:
        serve_http(build_web_app(service, behind_proxy=args.behind_proxy), args.host, args.port, "Web chat")
    finally:
        deliverer.stop()
        service.store.close()
    return 0


def events_for(settings: Settings) -> dict[str, frozenset[str]]:
    """Which events the outbox queues for which target (none configured: nothing is queued)."""
    from advisor.outbound.targets import takes, targets_of

    return takes(targets_of(settings.outbound)) if settings.outbound.any else {}


def delivering(settings: Settings) -> Any:
    """The outbox delivered on a thread of this long-running process (nothing to do: a thread that
    never starts)."""
    from advisor.outbound.deliver import Deliverer
    from advisor.outbound.targets import targets_of

    return Deliverer(settings.db, targets_of(settings.outbound) if settings.outbound.any else {}).start()


def cmd_deliver(args: argparse.Namespace, settings: Settings) -> int:
    """One pass over the outbox: every event due now, tried once; exit 0 once nothing is due."""
    from advisor.outbound.deliver import client, deliver_due, summary
    from advisor.outbound.targets import targets_of
    from advisor.store import Store

    targets = targets_of(settings.outbound)
    if not targets:  # what waits stays waiting, for a process that has the settings
        print("nothing to deliver to: set ADVISOR_WEBHOOK_URL (and _SECRET), ADVISOR_HUBSPOT_TOKEN or "
              "ADVISOR_PIPEDRIVE_TOKEN", file=sys.stderr)
        return 0
    with contextlib.closing(Store.open(settings.db)) as store, client() as http:
        report = deliver_due(store, targets, http)
        print(summary(report, store.next_delivery_at()))
    return 0


def cmd_deliveries(args: argparse.Namespace, settings: Settings) -> int:
    """The outbox: what was sent where, what waits, what failed; --resend puts failed and dead back."""
    from advisor.reports import deliveries_table
    from advisor.store import Store

    with contextlib.closing(Store.open(settings.db)) as store:
        if args.resend is not None:
            count = store.resend(None if args.resend == "all" else int(args.resend))
            print(f"{count} put back to be sent (the same event id); python bot.py deliver sends them now")
            return 0 if count or args.resend == "all" else EXIT_ERROR
        print(deliveries_table(store.deliveries(args.status, args.limit), store.delivery_counts()))
    return 0


def serve_http(app, host: str, port: int, what: str) -> None:
    """Serve a tornado app until SIGINT or SIGTERM, with small bodies and headers, short timeouts and a
    connection cap, so that nothing exhausts it (advisor/channels/throttle.py)."""
    import asyncio

    async def serve() -> None:
        from advisor.channels.throttle import LIMITS, CappedHTTPServer

        try:
            # bodies a little over the API's 64 KiB, so that the web chat can answer 413 itself
            server = CappedHTTPServer(app, **{**LIMITS, "max_body_size": 2 * LIMITS["max_body_size"]})
            server.listen(port, address=host)
        except OSError as error:
            raise AdvisorError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
        print(f"{what} on http://{host}:{port}/ (Ctrl-C stops it)", file=sys.stderr, flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        server.stop()

    asyncio.run(serve())


def cmd_default(args: argparse.Namespace, settings: Settings) -> int:
    if settings.environ.get("TELEGRAM_BOT_TOKEN"):
        return cmd_telegram(args, settings)
    args.user = args.ref = args.dialog = None
    return cmd_console(args, settings)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bot.py",
        description="The Outsourcing Advisor: a strategic-outsourcing recommendation in a few questions.",
        epilog="With no command: Telegram when TELEGRAM_BOT_TOKEN is set, else the console.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--db", help=f"the SQLite file (default: $ADVISOR_DB or ./{DEFAULT_DB})")
    parser.set_defaults(func=cmd_default)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    console = commands.add_parser("console", help="talk to the advisor in this terminal",
                                  description="Talk to the advisor in this terminal (or through a pipe). "
                                  "Type back, restart, skip or quit at any question; after the "
                                  "recommendation, details shows the full report.")
    console.add_argument("--user", help="who is talking; the same user resumes where they left off "
                         "(default: the OS user)")
    console.add_argument("--ref", help="a referral tag kept with a new conversation")
    console.add_argument("--dialog", help="the dialog file (default: $ADVISOR_DIALOG or dialogs/outsourcing.yaml)")
    console.add_argument("--lang", choices=LANGUAGES, help="the language to talk in (default: $ADVISOR_LANG, "
                         "else the locale's language if the advisor speaks it, else en)")
    console.set_defaults(func=cmd_console)

    telegram = commands.add_parser(
        "telegram", help="run the Telegram bot (needs TELEGRAM_BOT_TOKEN)",
        description="Run the Telegram bot: long polling, or a webhook server when TELEGRAM_WEBHOOK_URL is set "
        "(with TELEGRAM_WEBHOOK_SECRET). See the README's configuration table.")
    telegram.add_argument("--dialog", help="the dialog file (default: $ADVISOR_DIALOG or dialogs/outsourcing.yaml)")
    telegram.set_defaults(func=cmd_telegram)

    check = commands.add_parser("check", help="validate a dialog, its advice rules and templates",
                                description="Validate a dialog file, its advice rules and the templates "
                                "it needs; print every problem as file: key: message.")
    check.add_argument("file", nargs="?", help="the dialog file (default: dialogs/outsourcing.yaml)")
    check.add_argument("--cases", nargs="?", const="", metavar="FILE",
                       help="also run the advice cases (default: cases.yaml beside the dialog) and report "
                       "each one whose advice differs from what is expected")
    check.add_argument("--understanding", nargs="?", const="", metavar="FILE",
                       help="also score the free-text understanding on labelled phrases and on words typed at "
                       "button questions (default: understanding.yaml beside the dialog and each language's "
                       "understanding.<language>.yaml; a FILE named *.de.yaml is read in German): precision and "
                       "recall per option, the share of typed answers understood per question, and overall")
    check.set_defaults(func=cmd_check)

    diagram = commands.add_parser("diagram", help="print the dialog as a Mermaid state diagram",
                                  description="Print the dialog as a Mermaid stateDiagram-v2.")
    diagram.add_argument("file", nargs="?", help="the dialog file (default: dialogs/outsourcing.yaml)")
    diagram.set_defaults(func=cmd_diagram)

    export = commands.add_parser("export", help="print stored conversations (json, jsonl or csv)",
                                 description="Export stored conversations with their answers, recommendation "
                                 "and summary: json (an array), jsonl (one per line), or csv (one row each, "
                                 "with the reviewers' marks, for a CRM).")
    export.add_argument("--format", choices=["json", "jsonl", "csv"], default="json",
                        help="output format (default: json)")
    export.add_argument("-o", "--output", help="write to this file instead of standard output")
    add_filters(export, status=True)
    export.set_defaults(func=cmd_export)

    summaries = commands.add_parser("summaries", help="a table of stored conversations, newest first",
                                    description="List stored conversations as a table, newest first.")
    add_filters(summaries, status=True, search=True)
    summaries.add_argument("--limit", type=positive_int, default=50, help="show at most this many (default: 50)")
    summaries.set_defaults(func=cmd_summaries)

    replay = commands.add_parser(
        "replay", help="what candidate advice rules would change for the conversations stored",
        description="Re-run the stored answers of each conversation through candidate advice rules (and dialog) "
        "and show what would change: verdict, readiness score, profile, tasks and their approach, engagement "
        "model, net cash. Exact and deterministic; writes nothing to the database.")
    replay.add_argument("--rules", required=True, help="the candidate advice rules file (YAML)")
    replay.add_argument("--dialog", dest="candidate_dialog",
                        help="a candidate dialog file (default: the current one, $ADVISOR_DIALOG or "
                        "dialogs/outsourcing.yaml)")
    replay.add_argument("--baseline", choices=["stored", "current"], default="stored",
                        help="compare with what each person was told (stored, the default) or with what the "
                        "current rules give for the same answers (current)")
    add_filters(replay, status=True)
    replay.add_argument("--format", choices=["table", "json"], default="table", help="output format (default: table)")
    replay.add_argument("--all", action="store_true", help="list every conversation, not only those that change")
    replay.set_defaults(func=cmd_replay)

    mark = commands.add_parser(
        "mark", help="a reviewer's verdict on one conversation's advice",
        description="Mark one conversation's advice as agreed or disagreed with; on a disagree, say what you "
        "expected, so that replay and calibrate can measure the rules against it.")
    mark.add_argument("id", type=int, help="the conversation's id (see summaries)")
    verdict = mark.add_mutually_exclusive_group(required=True)
    verdict.add_argument("--agree", action="store_true", help="the advice is right")
    verdict.add_argument("--disagree", action="store_true", help="the advice is wrong")
    mark.add_argument("--expected-verdict", choices=["hand_over", "prepare_first", "not_now"],
                      help="the verdict you expected")
    mark.add_argument("--expected-profile", help="the profile you expected (reactive, tactical, strategic)")
    mark.add_argument("--expected-approach", action="append", metavar="TASK=APPROACH",
                      help="a task's approach you expected, e.g. bookkeeping=managed_service (repeatable)")
    mark.add_argument("--note", help="a note (replaces the conversation's note)")
    mark.add_argument("--tag", action="append", help="a tag to add (repeatable)")
    mark.set_defaults(func=cmd_mark)

    calibrate = commands.add_parser(
        "calibrate", help="propose advice rules that agree better with the reviewers' marks",
        description="Propose a candidate advice rules file that raises agreement with the reviewers' marks: "
        "bounded changes to weights and thresholds only, the smallest that helps, checked on held-out marks. "
        "Writes the file and prints its replay; applies nothing.")
    calibrate.add_argument("--out", required=True, help="where to write the candidate rules file")
    calibrate.add_argument("--rules", help="the rules to start from (default: the dialog's own advice rules)")
    calibrate.add_argument("--holdout", type=float, default=0.3,
                           help="the share of marks kept aside to check the candidate on (default: 0.3)")
    calibrate.add_argument("--seed", type=int, default=0, help="which marks are held out (default: 0)")
    calibrate.set_defaults(func=cmd_calibrate)

    show = commands.add_parser("show", help="one conversation: summary, score drivers, transcript",
                               description="Show one conversation: its summary, the drivers of its score "
                               "and the transcript, turn by turn.")
    show.add_argument("id", type=int, help="the conversation's id (see summaries)")
    show.set_defaults(func=cmd_show)

    link = commands.add_parser("link", help="print the deep link for a rep or campaign",
                               description="Print the t.me deep link that attributes prospects to REF "
                               "(and a campaign). The bot's username comes from the Bot API "
                               "(TELEGRAM_BOT_TOKEN), or from --username offline.")
    link.add_argument("ref", metavar="REF", help="the rep or source, e.g. alice (A-Z a-z 0-9 _)")
    link.add_argument("--campaign", help="a campaign, e.g. spring24; the link's ref becomes REF--CAMPAIGN")
    link.add_argument("--username", help="the bot's username, without asking the Bot API")
    link.add_argument("--web", metavar="URL", help="the web chat's address: print its link for REF and an "
                      "<iframe> to embed it in a site, instead of the Telegram link")
    link.set_defaults(func=cmd_link)
    add_review_parser(commands)
    web = commands.add_parser(
        "web", help="serve the advisor as a chat on a web page",
        description="Serve the advisor on a web page (and its JSON API, POST /api/turn): the same questions, "
        "advice and store as Telegram, channel 'web'. ?ref=REF attributes a conversation, as a Telegram deep "
        "link does (python bot.py link REF --web URL prints it). With ADVISOR_SALES_CHAT_ID set, completions "
        "queue lead cards, which the Telegram bot's process sends.")
    web.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    web.add_argument("--port", type=int, default=8081, help="port (default: 8081)")
    web.add_argument("--dialog", help="the dialog file (default: ADVISOR_DIALOG or dialogs/outsourcing.yaml)")
    web.add_argument("--behind-proxy", action="store_true",
                     help="behind a reverse proxy: the client is the last X-Forwarded-For hop, the scheme "
                     "X-Forwarded-Proto (https: cookies that work inside another site's iframe)")
    web.set_defaults(func=cmd_web)
    return parser


def positive_int(value: str) -> int:
    if not value.isdecimal() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1, got {value!r}")
    return min(int(value), 2**62)  # past SQLite's integers: the same as "all"


def add_review_parser(commands) -> None:
    deliver = commands.add_parser(
        "deliver", help="send the events due to the webhook and the CRMs once, and exit (cron)",
        description="One pass over the outbox: every event due now is sent once; what fails for now is "
                    "retried later (backoff), what is refused (4xx) is kept as failed. Exit 0 once nothing is "
                    "due. The Telegram bot, the web chat and the dashboard deliver by themselves while they run.")
    deliver.set_defaults(func=cmd_deliver)
    deliveries = commands.add_parser(
        "deliveries", help="the outbox: events sent, waiting, failed or dead; --resend ID|all",
        description="The events for the webhook and the CRMs, newest first, with their last attempt.")
    deliveries.add_argument("--status", choices=("pending", "delivered", "failed", "dead"),
                            help="only events in this state")
    deliveries.add_argument("--limit", type=int, default=50, help="how many rows (default 50)")
    deliveries.add_argument("--resend", metavar="ID|all",
                            help="put a failed or dead event (or all of them) back to be sent, same event id")
    deliveries.set_defaults(func=cmd_deliveries)
    review = commands.add_parser(
        "review", help="serve the review dashboard (needs ADVISOR_REVIEW_TOKEN)",
        description="Serve the review dashboard: the conversation list with filters and full-text search, "
        "each conversation with its score drivers and transcript, the funnel, CSV download, and reviewers' "
        "marks. Reviewers sign in with ADVISOR_REVIEW_TOKEN; scripts send 'Authorization: Bearer <token>'.")
    review.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    review.add_argument("--port", type=int, default=8080, help="port (default: 8080)")
    review.add_argument("--behind-proxy", action="store_true",
                        help="behind a reverse proxy: the client is the last X-Forwarded-For hop, "
                        "the scheme X-Forwarded-Proto (for https-only cookies); X-Real-Ip is never trusted")
    review.set_defaults(func=cmd_review)


def add_filters(parser: argparse.ArgumentParser, status: bool = False, search: bool = False) -> None:
    parser.add_argument("--ref", help="only this ref (also matches its campaigns: REF--CAMPAIGN)")
    if status:
        parser.add_argument("--status", choices=["in_progress", "completed", "abandoned"], help="only this status")
    parser.add_argument("--since", help="only conversations started since a date (2026-11-01) or for N days (7d)")
    if search:
        parser.add_argument("--search", help="only conversations whose answers or summary contain these words")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    dialog = getattr(args, "dialog", None) or getattr(args, "file", None)  # --dialog, or check's FILE
    settings = Settings.read(os.environ, db=args.db, dialog=dialog, language=getattr(args, "lang", None))
    try:
        logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        logging.getLogger("transitions").setLevel(logging.WARNING)  # a line per transition: noise, not news
        # a line per request, with its URL: a CRM search's query holds an email, a webhook URL may hold a token
        logging.getLogger("httpx").setLevel(logging.WARNING)
        return int(args.func(args, settings))
    except DialogError as error:
        for line in error.errors:
            print(f"error: {line}", file=sys.stderr)
        return EXIT_ERROR
    except AdvisorError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("\nInterrupted; your answers so far are saved.", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as error:  # a bug: one line for the person, the traceback in the log
        logging.getLogger("advisor").error("unexpected error", exc_info=True)  # a bug: keep its traceback
        print(f"error: unexpected {type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
