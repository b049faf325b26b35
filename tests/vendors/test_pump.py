"""The packet loop (vendors/pump.py) against a server that answers what each test scripts:
the shapes of HTTP/1.1 answers a real vendor may send, and the ways a connection fails."""

import socket
import threading
import time

import pytest

from vendors.pump import Answer, NoAnswer, pump

HEAD = b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: "


class ScriptedServer:
    """Accepts one connection; for each request read, sends the next scripted bytes
    (None: close the connection without an answer; a float: wait that long first; a
    tuple: send its bytes, then close)."""

    def __init__(self, script: list):
        self.script = list(script)
        self.requests: list[bytes] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        buffer = b""
        with conn:
            while self.script:
                while b"\r\n\r\n" not in buffer:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                head, _, rest = buffer.partition(b"\r\n\r\n")
                length = int(head.rsplit(b"Content-Length: ", 1)[1].split(b"\r\n")[0])
                while len(rest) < length:
                    rest += conn.recv(65536)
                self.requests.append(rest[:length])
                buffer = rest[length:]
                step = self.script.pop(0)
                if isinstance(step, float):
                    time.sleep(step)
                    step = self.script.pop(0)
                if step is None:
                    return
                if isinstance(step, tuple):
                    conn.sendall(step[0])
                    return
                conn.sendall(step)

    def connect(self):
        sock = socket.create_connection(("127.0.0.1", self.port))
        return pump.connect(sock, tls=None, server_hostname=None, timeout=5)


OK = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{"status":"ok"}'


def test_it_sends_a_batch_in_order_on_one_connection():
    server = ScriptedServer([OK] * 5)
    answers = server.connect().exchange_many(HEAD, [b"a", b"bb", b"ccc", b"d", b"e"], until=time.monotonic() + 60,
                                             read_timeout=5)  # fmt: skip
    assert [a.status for a in answers if isinstance(a, Answer)] == [200] * 5
    assert server.requests == [b"a", b"bb", b"ccc", b"d", b"e"]
    assert answers[0].body == b'{"status":"ok"}' and answers[0].keep_alive


def test_it_reads_chunked_and_close_delimited_bodies():
    chunked = b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{"a"\r\n3\r\n:1}\r\n0\r\n\r\n'
    until_close = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it"
    server = ScriptedServer([chunked, (until_close,)])
    conn = server.connect()
    answers = conn.exchange_many(HEAD, [b"1", b"2", b"3"], until=time.monotonic() + 60, read_timeout=5)
    assert [a.body for a in answers] == [b'{"a":1}', b"all of it"]  # then it stops: the connection ended
    assert not answers[1].keep_alive and not conn.is_open


def test_it_stops_at_an_answer_the_caller_must_see():
    cookie = b"HTTP/1.1 200 OK\r\nSet-Cookie: JSESSIONID=1; Path=/\r\nContent-Length: 0\r\n\r\n"
    busy = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 4\r\n\r\nbusy"
    server = ScriptedServer([cookie, OK, busy, OK])
    conn = server.connect()
    first = conn.exchange_many(HEAD, [b"1", b"2", b"3"], until=time.monotonic() + 60, read_timeout=5)
    assert [a.status for a in first] == [200] and first[0].sets_cookie()  # the next packet needs the cookie
    second = conn.exchange_many(HEAD, [b"2", b"3", b"4"], until=time.monotonic() + 60, read_timeout=5)
    assert [a.status for a in second] == [200, 503]
    assert ("Retry-After", "1") in second[1].headers
    assert server.requests == [b"1", b"2", b"3"]  # nothing sent after the 503


def test_a_dropped_connection_and_a_silent_vendor_are_no_answer():
    server = ScriptedServer([OK, None])
    conn = server.connect()
    answers = conn.exchange_many(HEAD, [b"1", b"2", b"3"], until=time.monotonic() + 60, read_timeout=5)
    assert isinstance(answers[0], Answer) and isinstance(answers[1], NoAnswer) and len(answers) == 2
    assert isinstance(answers[1].error, ConnectionError) and not conn.is_open

    slow = ScriptedServer([2.0, OK])
    answers = slow.connect().exchange_many(HEAD, [b"1"], until=time.monotonic() + 60, read_timeout=0.3)
    assert len(answers) == 1 and isinstance(answers[0].error, TimeoutError)


def test_it_hands_the_batch_back_when_the_checkpoint_is_due():
    server = ScriptedServer([0.2, OK, 0.2, OK, OK])
    answers = server.connect().exchange_many(HEAD, [b"1", b"2", b"3"], until=time.monotonic() + 0.1, read_timeout=5)
    assert len(answers) == 1  # at least one, then none after `until`


@pytest.mark.parametrize("garbage", [b"HTTP/1.1 2OO OK\r\n\r\n", b"SSH-2.0-OpenSSH\r\n"])
def test_bytes_that_are_not_http_are_no_answer(garbage):
    server = ScriptedServer([garbage])
    conn = server.connect()
    (answer,) = conn.exchange_many(HEAD, [b"1"], until=time.monotonic() + 60, read_timeout=5)
    assert isinstance(answer, NoAnswer) and not conn.is_open
