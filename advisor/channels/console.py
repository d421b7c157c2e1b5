"""The console channel: one person, standard input line by line, plain text out.

Typed or piped alike: numbered options, comma-separated numbers for several, ``back``, ``restart``,
``skip`` and ``quit`` at any question. Every answer is committed before the next question is
printed; at end of input (or ``quit``) the conversation stays in progress, and the same user resumes
it next time. Exits 0 once the recommendation is shown.
"""

from __future__ import annotations

import unicodedata
from typing import TextIO

from advisor.engine import Step
from advisor.render import Renderer
from advisor.service import AdvisorService, Outcome

COMMANDS = ("back", "restart", "skip", "quit")


def plain(word: str) -> str:
    """A typed word as commands compare it: lowercase, accents and umlauts left out ("atrás" = "atras")."""
    decomposed = unicodedata.normalize("NFKD", word.strip().lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))
DETAILS = ("details", "detail", "report", "more")


class Console:
    def __init__(self, service: AdvisorService, stdin: TextIO, stdout: TextIO, interactive: bool,
                 language: str | None = None):
        self.service = service
        self.stdin = stdin
        self.stdout = stdout
        self.interactive = interactive
        self.language = language  # None: English for a new conversation, its own for one resumed
        self.renderer: Renderer = service.renderer

    def command(self, line: str) -> str:
        """The console command a line is (``back``, ``restart``, ``skip``, ``quit``, ``details``), in
        English or in the conversation's language (templates/messages.txt), or the line itself."""
        typed = plain(line)
        for name in (*COMMANDS, "details"):
            if typed == plain(self.renderer.message("command_word", name=name)):
                return name
        return line.strip().lower()

    def say(self, text: str = "") -> None:
        self.stdout.write(text + "\n")
        self.stdout.flush()

    def show(self, step: Step) -> None:
        if step.kind == "finish":
            self.say(self.renderer.message("finished"))
            self.say()
        self.say(self.renderer.step(step, "txt"))

    def read(self) -> str | None:
        if self.interactive:
            self.stdout.write("> ")
            self.stdout.flush()
        line = self.stdin.readline()
        if not line:
            return None
        line = line.rstrip("\r\n")
        if not self.interactive:
            self.say(f"> {line}")  # piped input is not echoed by a terminal: keep the log readable
        return line

    def run(self, user: str, ref: str | None = None) -> int:
        outcome = self.service.open("console", user, ref, self.language)
        renderer = self.renderer = self.service.renderer_of(outcome.conversation)
        if outcome.resumed:
            self.say(renderer.message("resumed", number=outcome.step.number))
        else:
            low, high = self.service.engine.path_lengths()
            self.say(renderer.message("welcome", title=renderer._(self.service.dialog.title), count_low=low,
                                      count_high=high))
        self.say()
        self.show(outcome.step)
        while True:
            line = self.read()
            if line is None or self.command(line) == "quit":
                self.say()
                self.say(renderer.message("saved"))
                return 0
            outcome = self.handle(outcome, line)
            self.say()
            self.show(outcome.step)
            if outcome.step.kind == "finish":
                self.details(outcome.step)
                return 0

    def details(self, step: Step) -> None:
        """One more line after the recommendation: the word "details" shows the full report."""
        line = self.read()
        if line is not None and (line.strip().lower() in DETAILS or self.command(line) == "details"):
            self.say()
            self.say(self.renderer.render("report.txt", rec=step.recommendation))

    def handle(self, outcome: Outcome, line: str) -> Outcome:
        conversation = outcome.conversation
        command = self.command(line)
        if command == "back":
            return self.service.back(conversation)
        if command == "restart":
            self.say(self.renderer.message("restarted"))
            return self.service.restart(conversation)
        if command == "skip":
            return self.service.skip(conversation)
        return self.service.answer(conversation, line)
