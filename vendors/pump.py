"""One event loop per process that carries the packets of every stream a worker pushes.

A Wattics stream takes one packet per request, in order, so at 50 ms a round trip a
stream moves 20 packets a second and a worker needs hundreds of streams in flight. As
one thread per stream doing its own HTTP, each packet cost http.client's per-call work and
several hand-overs of the interpreter lock between 200 threads: one worker process capped
at about 1,300 packets/s on its own CPU. Here the push run stays a worker thread (its
database reads, checkpoints, backoff and claim checks are unchanged) and hands its
packets over a batch at a time; this loop writes each on the stream's keep-alive
connection and reads the answer with httptools (llhttp, the C parser of Node.js), then
returns the batch's answers to the run in one wake-up.

A batch stops early at an answer the caller must act on before the next request (not a
2xx, a cookie set, the connection closing), at an exchange without an answer, and once
`until` has passed (after at least one exchange), so a run still reaches its checkpoints
on time. The connection itself is opened by the caller's thread (the vendor-address
guard resolves and connects there) and handed to the loop here.
"""

import asyncio
import os
import socket
import ssl
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import httptools


@dataclass(slots=True)
class Answer:
    """One HTTP answer as the loop read it."""

    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    keep_alive: bool
    seconds: float = 0.0
    at: datetime | None = None  # when it arrived (the batch is recorded later, by the run)

    def sets_cookie(self) -> bool:
        return any(name.lower() == "set-cookie" for name, _ in self.headers)


@dataclass(slots=True)
class NoAnswer:
    """An exchange that got no answer: the connection broke, timed out or spoke no HTTP."""

    error: BaseException
    seconds: float = 0.0


class _Http(asyncio.Protocol):
    """One keep-alive connection: a request written, its answer parsed, one at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self._waiter: asyncio.Future | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._reset()

    def _reset(self) -> None:
        self._reason = ""
        self._headers: list[tuple[str, str]] = []
        self._body: list[bytes] = []
        self._headers_done = False
        self._sized = False  # a Content-Length or chunked body: the parser knows its end

    # ----- asyncio.Protocol --------------------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self._waiter is None:
            # Bytes nobody asked for (a vendor's "408" before it closes): the connection
            # cannot be trusted to pair the next request with its answer.
            self._fail(ConnectionError("unexpected bytes from the vendor between requests"))
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionError(f"not an HTTP answer: {exc}"))

    def eof_received(self) -> bool:
        if self._waiter is not None and self._headers_done and not self._sized:
            self._complete(keep_alive=False)  # a body that ends with the connection
        self._fail(ConnectionError("Remote end closed connection without response"))
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(exc or ConnectionError("Remote end closed connection without response"))

    # ----- httptools callbacks -----------------------------------------------------------
    def on_status(self, reason: bytes) -> None:
        self._reason += reason.decode("latin-1")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        self._headers_done = True
        names = {name.lower() for name, _ in self._headers}
        self._sized = "content-length" in names or "transfer-encoding" in names

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        self._complete(keep_alive=self.parser.should_keep_alive())

    # ----- one exchange ------------------------------------------------------------------
    def _complete(self, *, keep_alive: bool) -> None:
        waiter, self._waiter = self._waiter, None
        if self._timer is not None:
            self._timer.cancel()
        answer = Answer(self.parser.get_status_code(), self._reason, self._headers, b"".join(self._body), keep_alive)
        self._reset()
        if waiter is not None and not waiter.done():
            waiter.set_result(answer)
        if not keep_alive:
            self.abort()

    def _fail(self, exc: BaseException) -> None:
        waiter, self._waiter = self._waiter, None
        if self._timer is not None:
            self._timer.cancel()
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self.abort()

    def _timed_out(self) -> None:
        self._fail(TimeoutError("The read operation timed out"))

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def exchange(self, request: bytes, timeout: float) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        self._waiter = loop.create_future()
        self._timer = loop.call_later(timeout, self._timed_out)
        assert self.transport is not None
        self.transport.write(request)
        return self._waiter


async def _exchange_many(http: _Http, head: bytes, bodies: Sequence[bytes], until: float, timeout: float,
                         out: list) -> None:  # fmt: skip
    for body in bodies:
        if out and time.monotonic() >= until:
            return
        started = time.perf_counter()
        if http.closed:
            out.append(NoAnswer(ConnectionError("Remote end closed connection without response")))
            return
        try:
            answer = await http.exchange(b"%b%d\r\n\r\n%b" % (head, len(body), body), timeout)
        except OSError as exc:  # ConnectionError, TimeoutError
            out.append(NoAnswer(exc, time.perf_counter() - started))
            return
        answer.seconds = time.perf_counter() - started
        answer.at = datetime.now(UTC)
        out.append(answer)
        if not 200 <= answer.status < 300 or not answer.keep_alive or answer.sets_cookie():
            return


class Connection:
    """A keep-alive connection carried by the loop; used by one thread at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop, http: _Http):
        self._loop = loop
        self._http = http

    @property
    def is_open(self) -> bool:
        return not self._http.closed

    def exchange_many(self, head: bytes, bodies: Sequence[bytes], *, until: float,
                      read_timeout: float) -> list[Answer | NoAnswer]:  # fmt: skip
        """POST each body in order: the request is `head`, the body's length, a blank line
        and the body. One entry per body sent, in order; a NoAnswer is always the last."""
        out: list[Answer | NoAnswer] = []
        future = asyncio.run_coroutine_threadsafe(
            _exchange_many(self._http, head, bodies, until, read_timeout, out), self._loop
        )
        # Each exchange has its own read timeout in the loop; this one only guards against
        # a loop that no longer runs.
        wait = max(until - time.monotonic(), 0.0) + read_timeout + 30.0
        try:
            future.result(timeout=wait)
        except TimeoutError:
            future.cancel()
            self.close()
            answered = [a for a in list(out) if isinstance(a, Answer)]
            return [*answered, NoAnswer(TimeoutError("the packet loop did not answer"))]
        return out

    def close(self) -> None:
        if not self._http.closed:
            self._http.closed = True
            self._loop.call_soon_threadsafe(self._http.abort)


class Pump:
    """The loop's thread, started on first use in each process (a forked child starts its own)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = 0

    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._pid != os.getpid():
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="packet-pump", daemon=True).start()
                self._loop, self._pid = loop, os.getpid()
            return self._loop

    def connect(self, sock: socket.socket, *, tls: ssl.SSLContext | None, server_hostname: str | None,
                timeout: float) -> Connection:  # fmt: skip
        """Hand a connected socket to the loop (and do the TLS handshake there)."""
        loop = self.loop()

        async def attach() -> _Http:
            _, http = await loop.create_connection(
                _Http, sock=sock, ssl=tls, server_hostname=server_hostname if tls else None,
                ssl_handshake_timeout=timeout if tls else None,
            )  # fmt: skip
            return http

        future = asyncio.run_coroutine_threadsafe(attach(), loop)
        try:
            return Connection(loop, future.result(timeout=timeout + 30.0))
        except BaseException:
            future.cancel()
            sock.close()
            raise


pump = Pump()
