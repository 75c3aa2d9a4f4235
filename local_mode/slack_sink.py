"""A local Slack incoming-webhook endpoint: records every payload the DAGs post (real HTTP on
127.0.0.1, answering ``ok`` as Slack does)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WEBHOOK_PATH = "/services/local/mlops/webhook"


class SlackSink:
    def __init__(self) -> None:
        self.payloads: list[dict] = []
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    document = json.loads(body)
                except ValueError:
                    self.send_response(400)
                    self.end_headers()
                    return
                with sink._lock:
                    sink.payloads.append(document)
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{WEBHOOK_PATH}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="slack-sink", daemon=True)

    def start(self) -> SlackSink:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():  # shutdown() waits for serve_forever: forever if it never ran
            self.server.shutdown()
        self.server.server_close()

    def since(self, index: int) -> list[dict]:
        with self._lock:
            return list(self.payloads[index:])

    def count(self) -> int:
        with self._lock:
            return len(self.payloads)
