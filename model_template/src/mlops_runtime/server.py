"""The HTTP/1.1 server behind ``serve``: a gunicorn worker running an asyncio event loop.

Why not a ready-made server: we need all of these at once, and none of gunicorn's workers, uvicorn or
Flask does them together (benchmarks/serving.py in the platform repository measures the choice):

- bodies are read by the event loop, and a request reaches the model only once its body is complete:
  a slow or stalled upload occupies no worker, and ``/ping`` keeps answering;
- a body that ends before its Content-Length is a 400, never a prediction on part of the data;
- keep-alive connections, which SageMaker's front end reuses (a new connection per request costs
  more than the prediction of a small model);
- requests that arrive together are predicted in one call of the team's ``predict`` (see
  ``inference.InferenceApp.predict``), which is most of the throughput for small requests.

gunicorn still runs the workers: it forks them, restarts one that dies or stops answering (its
heartbeat is this event loop, so a prediction stuck for ``SAGEMAKER_MODEL_SERVER_TIMEOUT``
seconds gets the worker replaced) and stops them gracefully on SIGTERM. HTTP parsing is httptools
(llhttp, Node.js's parser, as uvicorn uses); this module only moves bytes and keeps order.
"""

from __future__ import annotations

import asyncio
import ctypes
import multiprocessing
import os
import signal
import socket
import time
from email.utils import formatdate

import httptools
from gunicorn.workers.base import Worker

from mlops_runtime.inference import InferenceApp, Pending, Response

# A refused body (over the size limit) is read and dropped up to this much, so that the client
# gets its 413 instead of a reset connection; past it the connection is closed.
DRAIN_LIMIT = 64 * 1024 * 1024
REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    408: "Request Timeout",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    500: "Internal Server Error",
}


# Connection balancing. Workers share the listening socket; an event loop accepts every connection
# that is waiting, so one worker can end up with all of a client's keep-alive connections while the
# other cores idle. Each worker publishes its number of connections in a table shared by all (set
# up by gunicorn's pre_fork hook below) and leaves a new connection to a worker with fewer, unless
# no one has taken it within a few milliseconds.
UNUSED_SLOT = 1 << 62
BALANCE_SLOTS = 64
DEFERRALS = 3  # times a worker with more connections than another leaves a connection (1 ms each)


def pre_fork(arbiter, worker) -> None:
    """gunicorn hook, in the master before each fork: a free slot in the shared table."""
    table = getattr(arbiter, "connection_counts", None)
    if table is None:
        table = arbiter.connection_counts = multiprocessing.RawArray(
            ctypes.c_longlong, [UNUSED_SLOT] * BALANCE_SLOTS
        )
    used = {getattr(w, "slot", None) for w in arbiter.WORKERS.values()}
    worker.slot = next((i for i in range(BALANCE_SLOTS) if i not in used), None)
    worker.connection_counts = table


def child_exit(_arbiter, worker) -> None:
    """gunicorn hook, in the master when a worker has exited: its slot no longer counts."""
    if worker.slot is not None:
        worker.connection_counts[worker.slot] = UNUSED_SLOT


class Connection(asyncio.Protocol):
    """One client connection. Requests are answered in the order they arrived (HTTP/1.1 pipelining):
    while one waits for the model, later ones wait behind it and reading pauses."""

    def __init__(self, worker: EventLoopWorker):
        self.worker = worker
        self.app: InferenceApp = worker.wsgi
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.last_active = time.monotonic()
        self.reading = False  # a request has started and is not complete
        self.waiting = False  # a request waits for its prediction
        self.waiting_keep_alive = True
        self.queued: list[tuple] = []  # complete requests behind the waiting one
        self.close_when_done = False
        self._reset()

    def _reset(self) -> None:
        self.url = b""
        self.content_type = self.accept = None
        self.content_length = -1
        self.expect_continue = False
        self.body: list[bytes] = []
        self.size = 0
        self.refusal: str | None = None

    # asyncio callbacks
    def connection_made(self, transport) -> None:
        self.transport = transport
        self.worker.connections.add(self)
        self.worker.publish_connections()

    def connection_lost(self, exc) -> None:
        self.worker.connections.discard(self)
        self.worker.publish_connections()

    def data_received(self, data: bytes) -> None:
        self.last_active = time.monotonic()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.fail(400, "protocol upgrades are not supported")
        except httptools.HttpParserError as exc:
            self.fail(400, f"malformed HTTP request: {exc}")

    def eof_received(self) -> bool:
        if self.reading:  # the client stopped sending in the middle of a request
            got = f"{self.size} of {self.content_length}" if self.content_length >= 0 else f"{self.size}"
            self.fail(400, f"the request ended early: its body has {got} bytes")
            return False
        if self.waiting or self.queued:  # half-closed after sending: answer, then close
            self.close_when_done = True
            return True
        return False

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._reset()
        self.reading = True

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"content-type":
            self.content_type = value.decode("latin-1")
        elif name == b"accept":
            self.accept = value.decode("latin-1")
        elif name == b"content-length" and value.isdigit():
            self.content_length = int(value)
        elif name == b"expect" and value.lower() == b"100-continue":
            self.expect_continue = True

    def on_headers_complete(self) -> None:
        if self.content_length > self.app.max_payload:
            self.refusal = (
                f"payload of {self.content_length} bytes is over the {self.app.max_payload}-byte limit"
            )
            if self.expect_continue or self.content_length > DRAIN_LIMIT:  # the body will not be read
                self.fail(413, self.refusal)
        elif self.expect_continue and self.transport is not None:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.refusal is None and self.size > self.app.max_payload:
            self.refusal = f"payload is over the {self.app.max_payload}-byte limit"
            self.body = []
        if self.refusal is None:
            self.body.append(chunk)
        elif self.size > DRAIN_LIMIT:
            self.fail(413, self.refusal)

    def on_message_complete(self) -> None:
        self.reading = False
        if self.transport.is_closing():
            return
        body = self.body[0] if len(self.body) == 1 else b"".join(self.body)
        request = (
            self.parser.get_method().decode("latin-1"),
            self.url.split(b"?", 1)[0].decode("latin-1"),
            self.content_type,
            self.accept,
            body,
            self.refusal,
            self.parser.should_keep_alive(),
        )
        if self.waiting or self.queued:
            self.queued.append(request)
            self.transport.pause_reading()
        else:
            self._handle(request)

    # answering
    def _handle(self, request: tuple) -> None:
        method, path, content_type, accept, body, refusal, keep_alive = request
        if refusal is not None:
            result = self.app.error(413, refusal)
        else:
            result = self.app.handle(method, path, content_type, accept, body)
        if isinstance(result, Pending):
            self.waiting, self.waiting_keep_alive = True, keep_alive
            self.worker.enqueue(self, result)
        else:
            self._send(result, keep_alive, head=method == "HEAD")

    def finish(self, response: Response) -> None:
        """The prediction of the waiting request is ready."""
        self.waiting = False
        self._send(response, self.waiting_keep_alive)
        while self.queued and not self.waiting and not self.transport.is_closing():
            self._handle(self.queued.pop(0))
        if not self.queued and not self.transport.is_closing():
            if self.close_when_done and not self.waiting:
                self.transport.close()
            else:
                self.transport.resume_reading()

    def fail(self, status: int, message: str) -> None:
        """Answer an unusable request and close: the stream cannot be trusted past it."""
        self.reading = False
        self.queued.clear()
        if self.waiting:  # an earlier request's answer comes first; the connection closes after it
            self.close_when_done = True
            self.transport.pause_reading()
            return
        self._send(self.app.error(status, message), keep_alive=False)

    def _send(self, response: Response, keep_alive: bool, head: bool = False) -> None:
        if self.transport.is_closing():
            return
        keep_alive = keep_alive and self.worker.alive
        lines = [
            f"HTTP/1.1 {response.status} {REASONS.get(response.status, '')}",
            f"Content-Type: {response.content_type}",
            f"Content-Length: {len(response.body)}",
            self.worker.date_header,
            *(f"{name}: {value}" for name, value in response.headers),
        ]
        if not keep_alive:
            lines.append("Connection: close")
        head_bytes = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.transport.write(head_bytes if head else head_bytes + response.body)
        self.last_active = time.monotonic()
        if not keep_alive:
            self.transport.close()

    def idle(self) -> bool:
        return not (self.reading or self.waiting or self.queued)


class EventLoopWorker(Worker):
    """gunicorn worker: one event loop serving ``Connection``s, predicting in batches."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Given by pre_fork in the master (None: this worker does not share connection counts).
        self.slot: int | None = None
        self.connection_counts: list[int] = []  # the shared table (a RawArray) when slot is set
        # The loop and what it serves are created in the worker process (init_process).
        self.loop: asyncio.AbstractEventLoop | None = None
        self.connections: set[Connection] = set()
        self.pending: list[tuple[Connection, Pending]] = []
        self.date_header = ""
        self.deferred = 0
        self.quick = False

    def init_process(self) -> None:
        try:
            import uvloop  # libuv's loop: less overhead per request than asyncio's own

            self.loop = uvloop.new_event_loop()
        except ImportError:
            self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.connections: set[Connection] = set()
        self.pending: list[tuple[Connection, Pending]] = []
        self.date_header = "Date: " + formatdate(usegmt=True)  # refreshed every second
        self.deferred = 0
        self.quick = False
        self.publish_connections()
        super().init_process()  # loads the app (self.wsgi) and calls run()

    def publish_connections(self) -> None:
        if self.slot is not None:
            self.connection_counts[self.slot] = len(self.connections)

    def _accept(self, listener: socket.socket) -> None:
        """One connection per readiness event (the loop calls again while more wait)."""
        if self.slot is not None and len(self.connections) > min(self.connection_counts):
            self.deferred += 1
            if self.deferred <= DEFERRALS:  # another worker has fewer: let it take this one
                self.loop.remove_reader(listener.fileno())
                self.loop.call_later(0.001, self._listen, listener)
                return
        self.deferred = 0
        try:
            connection, _ = listener.accept()
        except (BlockingIOError, InterruptedError):  # a sibling took it
            return
        except OSError as exc:  # e.g. out of file descriptors: log, keep serving the others
            self.log.warning("accept failed: %s", exc)
            return
        connection.setblocking(False)
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.loop.create_task(self.loop.connect_accepted_socket(lambda: Connection(self), connection))

    def _listen(self, listener: socket.socket) -> None:
        if self.alive:  # not once stopping
            self.loop.add_reader(listener.fileno(), self._accept, listener)

    def init_signals(self) -> None:
        for sig in self.SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        self.loop.add_signal_handler(signal.SIGTERM, self._stop)  # gunicorn's graceful stop
        for sig in (signal.SIGINT, signal.SIGQUIT):  # its quick stop
            self.loop.add_signal_handler(sig, self._quit)
        self.loop.add_signal_handler(signal.SIGUSR1, self.log.reopen_files)

    def _stop(self) -> None:
        self.alive = False

    def _quit(self) -> None:
        self.alive = False
        self.quick = True

    def enqueue(self, connection: Connection, request: Pending) -> None:
        if not self.pending:
            # Runs once the loop has handled every other event that is ready now, so it predicts
            # every request that arrived meanwhile in one go.
            self.loop.call_soon(self._predict_pending)
        self.pending.append((connection, request))

    def _predict_pending(self) -> None:
        pending, self.pending = self.pending, []
        limit = self.wsgi.batch_records
        while pending:
            batch = [pending.pop(0)]
            records = len(batch[0][1].X)
            while pending and records + len(pending[0][1].X) <= limit:
                records += len(pending[0][1].X)
                batch.append(pending.pop(0))
            for (connection, _), response in zip(
                batch, self.wsgi.predict([request for _, request in batch]), strict=True
            ):
                connection.finish(response)

    def run(self) -> None:
        listeners = [s.sock for s in self.sockets]
        for listener in listeners:
            listener.setblocking(False)
            self._listen(listener)
        self.loop.run_until_complete(self._heartbeat())
        for listener in listeners:  # stop accepting; gunicorn's master keeps the socket open
            self.loop.remove_reader(listener.fileno())
        self.loop.run_until_complete(self._drain())
        self.loop.close()

    async def _heartbeat(self) -> None:
        """Every second: tell gunicorn this worker is alive, refresh the Date header, time out stalled
        requests (408) and idle keep-alive connections."""
        while self.alive:
            self.notify()
            if self.ppid != os.getppid():  # the master is gone
                break
            self.date_header = "Date: " + formatdate(usegmt=True)
            now = time.monotonic()
            for connection in list(self.connections):
                quiet = now - connection.last_active
                if connection.reading and quiet > self.cfg.timeout:
                    connection.fail(408, f"no part of the request arrived for {self.cfg.timeout} s")
                elif connection.idle() and quiet > self.cfg.keepalive:
                    connection.transport.close()
            await asyncio.sleep(1.0)

    async def _drain(self) -> None:
        """Stopping: close idle connections, give in-flight requests until gunicorn's graceful timeout."""
        deadline = time.monotonic() + self.cfg.graceful_timeout
        while not self.quick and time.monotonic() < deadline:
            for connection in list(self.connections):
                if connection.idle():
                    connection.transport.close()
            if not self.connections:
                break
            self.notify()
            await asyncio.sleep(0.05)
