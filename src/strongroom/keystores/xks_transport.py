"""Keep-alive HTTP/1.1 connections to one origin, shared by many threads, with one deadline
per exchange (the XKS client's transport; no XKS knowledge here).

An exchange writes the whole request (head and body) in one ``sendall`` and reads the
answer with the standard library's parser (``http.client.HTTPResponse``: status line,
headers, Content-Length or chunked body, whether the server ends the connection). That is
what http.client's own connection does, minus its per-header checks and its second write,
which cost about half of the client's CPU per call here (bench/xks_client_bench.py;
urllib3's pool costs twice as much again). TLS is the ``ssl`` module's default client
context: certificate chain and host name checked, TLS 1.2 or later.

Errors are those of the libraries, for the caller to classify: ``OSError`` (refused, reset,
unreachable, no such name: ``socket.gaierror``), ``TimeoutError`` (the deadline passed while
connecting, sending or waiting), ``ssl.SSLError`` (the handshake or the certificate),
``http.client.HTTPException`` (an answer that is not HTTP, or one longer than
``MAX_ANSWER_BYTES``), and PoolClosed.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
import time

__all__ = ["MAX_ANSWER_BYTES", "AnswerTooLong", "HttpPool", "PoolClosed"]

MAX_ANSWER_BYTES = 1 << 20  # an XKS answer is a few hundred bytes; never buffer a flood


class PoolClosed(Exception):
    """The pool was closed before the exchange started."""


class AnswerTooLong(http.client.HTTPException):
    """The answer's body is longer than MAX_ANSWER_BYTES."""


# What a kept-alive connection that the server closed meanwhile raises when it is reused
# (http.client.RemoteDisconnected is a ConnectionResetError): the request never reached a
# live server, so it is sent once more on a new connection.
_STALE = (ConnectionError, ssl.SSLEOFError, ssl.SSLZeroReturnError)


class HttpPool:
    """Idle connections kept for reuse, at most ``max_idle`` (newest first). An exchange
    takes an idle connection or opens a new one, never waits for another thread's; a
    connection comes back after a complete exchange that the server did not end, and is
    closed instead when ``max_idle`` are idle already."""

    def __init__(
        self, host: str, port: int, *, max_idle: int, ssl_context: ssl.SSLContext | None
    ) -> None:
        if max_idle < 1:
            raise ValueError(f"max_idle must be at least 1, got {max_idle}")
        self._address = (host, port)
        self._max_idle = max_idle
        self._context = ssl_context
        self._idle: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = False
        self.opened = 0  # connections opened so far (for tests and benchmarks)

    def _connect(self, timeout: float) -> socket.socket:
        with self._lock:
            self.opened += 1
        sock = socket.create_connection(self._address, timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._context is not None:  # the handshake runs within the same timeout
                sock = self._context.wrap_socket(sock, server_hostname=self._address[0])
        except BaseException:
            sock.close()
            raise
        return sock

    def _take(self) -> socket.socket | None:
        with self._lock:
            if self._closed:
                raise PoolClosed()
            return self._idle.pop() if self._idle else None

    def _give_back(self, sock: socket.socket) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < self._max_idle:
                self._idle.append(sock)
                return
        sock.close()

    def post(self, request: bytes, deadline: float) -> tuple[int, bytes]:
        """Send ``request`` (a whole HTTP/1.1 request: head and body) and return the
        answer's status and body, all before ``deadline`` (``time.monotonic()``). A reused
        connection that turns out to be closed by the server is replaced once by a new
        one."""
        sock = self._take()
        if sock is not None:
            try:
                return self._exchange(sock, request, deadline)
            except _STALE:
                pass
        return self._exchange(None, request, deadline)

    def _exchange(
        self, sock: socket.socket | None, request: bytes, deadline: float
    ) -> tuple[int, bytes]:
        left = deadline - time.monotonic()
        if left <= 0:
            if sock is not None:
                self._give_back(sock)
            raise TimeoutError("the deadline passed")
        if sock is None:
            sock = self._connect(left)
        response: http.client.HTTPResponse | None = None
        try:
            sock.settimeout(left)
            sock.sendall(request)
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the deadline passed")
            sock.settimeout(left)
            response = http.client.HTTPResponse(sock, method="POST")
            response.begin()
            if response.length is not None and response.length > MAX_ANSWER_BYTES:
                raise AnswerTooLong(f"the answer's body is {response.length} bytes")
            data = response.read(MAX_ANSWER_BYTES + 1)
            # A body without a length ends with the connection: one more read sees the end.
            if len(data) > MAX_ANSWER_BYTES or (not response.isclosed() and response.read(1)):
                raise AnswerTooLong(f"the answer's body is over {MAX_ANSWER_BYTES} bytes")
        except BaseException:
            if response is not None:
                response.close()
            with contextlib.suppress(OSError):
                sock.close()
            raise
        if response.will_close:
            sock.close()
        else:
            self._give_back(sock)
        return response.status, data

    def close(self) -> None:
        """Close the idle connections; those in use close when their exchange ends, and
        exchanges started afterwards raise PoolClosed."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for sock in idle:
            sock.close()
