"""A local webhook receiver for tests: records every request and answers as it is told.

``Receiver().answer(500, 200)`` answers the next two requests 500 then 200 (then 200 for good);
``answer((429, {"Retry-After": "120"}))`` adds headers. ``requests`` holds (headers, body) in arrival
order; ``wait(count)`` waits for that many. It verifies nothing itself: the tests do, with the
``standardwebhooks`` library, as a real receiver would (README: "Send leads to your CRM").
"""

from __future__ import annotations

import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self._answers: deque[tuple[int, dict[str, str]]] = deque()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                    status, headers = receiver._answers.popleft() if receiver._answers else (200, {})
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/advisor"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, *answers: int | tuple[int, dict[str, str]]) -> None:
        with self._lock:
            for item in answers:
                self._answers.append(item if isinstance(item, tuple) else (item, {}))

    def wait(self, count: int, timeout: float = 20) -> list[tuple[dict[str, str], bytes]]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.requests)} of {count} requests arrived")
            time.sleep(0.05)
        return self.requests

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
