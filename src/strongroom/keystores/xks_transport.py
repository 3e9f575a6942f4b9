"""Keep-alive HTTP/1.1 connections to one origin, shared by many threads, with one deadline
per exchange (the XKS client's transport; no XKS knowledge here).

An exchange writes the whole request (head and body) with one ``send`` and reads the answer
with llhttp's parser (``httptools.HttpResponseParser``, which uvicorn uses too: status line,
headers, Content-Length, chunked or close-delimited body, whether the connection stays
open). A connection's socket is non-blocking from the end of its handshake on, and an
exchange waits with ``poll`` only until the deadline: an answer that has arrived costs one
``poll`` and one ``recv`` of up to ``READ_BYTES``. (The standard library's parser,
``http.client.HTTPResponse``, took about 25 µs of CPU per answer in its header parsing alone,
and a socket with a timeout adds an ``ioctl`` per ``settimeout`` and a ``poll`` before every
send and receive: bench/README.md, "the XKS client's CPU".) TLS is the ``ssl`` module's
default client context: certificate chain and host name checked, TLS 1.2 or later.

Errors are those of the libraries, for the caller to classify: ``OSError`` (refused, reset,
unreachable, no such name: ``socket.gaierror``), ``TimeoutError`` (the deadline passed while
connecting, sending or waiting), ``ssl.SSLError`` (the handshake or the certificate),
``http.client.HTTPException`` (an answer that is not HTTP, one cut short, or one longer than
``MAX_ANSWER_BYTES``; ``http.client.RemoteDisconnected``, a ConnectionResetError, when the
server closes without answering), and PoolClosed.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import math
import select
import socket
import ssl
import threading
import time
from typing import cast

import httptools

__all__ = [
    "MAX_ANSWER_BYTES",
    "READ_BYTES",
    "AnswerTooLong",
    "AsyncHttpPool",
    "HttpPool",
    "PoolClosed",
]

MAX_ANSWER_BYTES = 1 << 20  # an XKS answer is a few hundred bytes; never buffer a flood
READ_BYTES = 16384  # one recv: a whole XKS answer, or one TLS record


class PoolClosed(Exception):
    """The pool was closed before the exchange started."""


class AnswerTooLong(http.client.HTTPException):
    """The answer's body is longer than MAX_ANSWER_BYTES."""


class NotHttp(http.client.HTTPException):
    """The answer is not HTTP/1.x as llhttp reads it."""


# What a kept-alive connection that the server closed meanwhile raises when it is reused
# (http.client.RemoteDisconnected is a ConnectionResetError): the request never reached a
# live server, so it is sent once more on a new connection.
_STALE = (ConnectionError, ssl.SSLEOFError, ssl.SSLZeroReturnError)
_WANT_READ = (BlockingIOError, ssl.SSLWantReadError)
_WANT_WRITE = (BlockingIOError, ssl.SSLWantWriteError)
_CONTINUE = 100


class _Connection:
    """A non-blocking socket and the poll object that waits on it."""

    __slots__ = ("poll", "sock", "tls")

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.tls = sock if isinstance(sock, ssl.SSLSocket) else None
        self.poll = select.poll()
        self.poll.register(sock, select.POLLIN)

    def wait(self, deadline: float, events: int = select.POLLIN) -> None:
        """Until the socket is ready for ``events``; TimeoutError at ``deadline``."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the deadline passed")
        if events != select.POLLIN:
            self.poll.modify(self.sock, events)
        try:
            ready = self.poll.poll(math.ceil(left * 1000))
        finally:
            if events != select.POLLIN:
                self.poll.modify(self.sock, select.POLLIN)
        if not ready:
            raise TimeoutError("the deadline passed")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


class _Answer:
    """httptools' callbacks: the status, body and framing of one answer."""

    __slots__ = ("body", "complete", "framed", "keep_alive", "length", "parser", "size", "started")

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.body: list[bytes] = []
        self.size = 0
        self.length = -1  # Content-Length, -1 when absent
        self.framed = False  # a Content-Length or Transfer-Encoding: the body's end is known
        self.started = False  # headers complete
        self.complete = False
        self.keep_alive = False  # read when complete (llhttp resets it for the next message)

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(name) == 14 and name.lower() == b"content-length":
            self.framed = True
            with contextlib.suppress(ValueError):
                self.length = int(value)
        elif len(name) == 17 and name.lower() == b"transfer-encoding":
            self.framed = True

    def on_headers_complete(self) -> None:
        self.started = True

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.size <= MAX_ANSWER_BYTES:
            self.body.append(body)

    def on_message_complete(self) -> None:
        if self.parser.get_status_code() == _CONTINUE:  # an interim answer: the next one counts
            self.body, self.size, self.length, self.framed, self.started = [], 0, -1, False, False
            return
        self.complete = True
        self.keep_alive = self.parser.should_keep_alive()


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
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        self.opened = 0  # connections opened so far (for tests and benchmarks)

    def _connect(self, timeout: float) -> _Connection:
        with self._lock:
            self.opened += 1
        sock = socket.create_connection(self._address, timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._context is not None:  # the handshake runs within the same timeout
                sock = self._context.wrap_socket(sock, server_hostname=self._address[0])
            return _Connection(sock)
        except BaseException:
            sock.close()
            raise

    def _take(self) -> _Connection | None:
        with self._lock:
            if self._closed:
                raise PoolClosed()
            return self._idle.pop() if self._idle else None

    def _give_back(self, connection: _Connection) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < self._max_idle:
                self._idle.append(connection)
                return
        connection.close()

    def post(self, request: bytes, deadline: float) -> tuple[int, bytes]:
        """Send ``request`` (a whole HTTP/1.1 request: head and body) and return the
        answer's status and body, all before ``deadline`` (``time.monotonic()``). A reused
        connection that turns out to be closed by the server is replaced once by a new
        one."""
        connection = self._take()
        if connection is not None:
            try:
                return self._exchange(connection, request, deadline)
            except _STALE:
                pass
        return self._exchange(None, request, deadline)

    def _exchange(
        self, connection: _Connection | None, request: bytes, deadline: float
    ) -> tuple[int, bytes]:
        left = deadline - time.monotonic()
        if left <= 0:
            if connection is not None:
                self._give_back(connection)
            raise TimeoutError("the deadline passed")
        if connection is None:
            connection = self._connect(left)
        try:
            _send(connection, request, deadline)
            answer, reusable = _receive(connection, deadline)
        except BaseException:
            connection.close()
            raise
        if reusable:
            self._give_back(connection)
        else:
            connection.close()
        return answer.parser.get_status_code(), b"".join(answer.body)

    def close(self) -> None:
        """Close the idle connections; those in use close when their exchange ends, and
        exchanges started afterwards raise PoolClosed."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()


def _send(connection: _Connection, request: bytes, deadline: float) -> None:
    """All of ``request``: one ``send`` unless the socket's buffer is full."""
    sock = connection.sock
    data = memoryview(request)
    while data:
        try:
            sent = sock.send(data)
        except _WANT_WRITE:
            connection.wait(deadline, select.POLLOUT)
            continue
        except ssl.SSLWantReadError:  # a TLS 1.2 renegotiation
            connection.wait(deadline)
            continue
        data = data[sent:]


def _receive(connection: _Connection, deadline: float) -> tuple[_Answer, bool]:
    """The answer, and whether the connection can carry another exchange."""
    sock = connection.sock
    answer = _Answer()
    parser = answer.parser
    received = False
    while not answer.complete:
        if connection.tls is None or not connection.tls.pending():  # TLS may hold a record
            connection.wait(deadline)
        try:
            data = sock.recv(READ_BYTES)
        except _WANT_READ:  # part of a TLS record, or a wake-up without data
            continue
        except ssl.SSLWantWriteError:  # a TLS 1.2 renegotiation
            connection.wait(deadline, select.POLLOUT)
            continue
        if not data:  # the server ended the connection
            if answer.started and not answer.framed:  # a body that ends with the connection
                return answer, False
            if not received:
                raise http.client.RemoteDisconnected(
                    "Remote end closed connection without response"
                )
            raise http.client.IncompleteRead(b"".join(answer.body))
        received = True
        try:
            parser.feed_data(data)
        except httptools.HttpParserError as e:
            if answer.complete:  # bytes after the answer: the connection is not reused
                return answer, False
            raise NotHttp(f"the answer is not HTTP ({e})") from None
        if answer.length > MAX_ANSWER_BYTES:
            raise AnswerTooLong(f"the answer's body is {answer.length} bytes")
        if answer.size > MAX_ANSWER_BYTES:
            raise AnswerTooLong(f"the answer's body is over {MAX_ANSWER_BYTES} bytes")
    return answer, answer.keep_alive


# --- the same on the event loop ------------------------------------------------------------


class _LoopConnection(asyncio.Protocol):
    """One connection of an AsyncHttpPool: the answer it reads, and the future its
    exchange waits on (True: the connection can carry another exchange)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._answer: _Answer | None = None
        self._received = False
        self._waiter: asyncio.Future[bool] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def exchange(self, request: bytes, waiter: asyncio.Future[bool]) -> _Answer:
        """Send ``request``; ``waiter`` gets the outcome of its answer."""
        assert self.transport is not None
        self._answer = answer = _Answer()
        self._received = False
        self._waiter = waiter
        self.transport.write(request)
        return answer

    def data_received(self, data: bytes) -> None:
        answer = self._answer
        if answer is None or answer.complete:  # nothing asked: the connection is not reused
            self.close()
            return
        self._received = True
        try:
            answer.parser.feed_data(data)
        except httptools.HttpParserError as e:
            if answer.complete:  # bytes after the answer
                self._settle(False)
            else:
                self._fail(NotHttp(f"the answer is not HTTP ({e})"))
            return
        if answer.length > MAX_ANSWER_BYTES:
            self._fail(AnswerTooLong(f"the answer's body is {answer.length} bytes"))
        elif answer.size > MAX_ANSWER_BYTES:
            self._fail(AnswerTooLong(f"the answer's body is over {MAX_ANSWER_BYTES} bytes"))
        elif answer.complete:
            self._settle(answer.keep_alive)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        answer = self._answer
        if answer is None or answer.complete:
            return
        if answer.started and not answer.framed:  # a body that ends with the connection
            self._settle(False)
        elif not self._received:
            self._fail(
                http.client.RemoteDisconnected("Remote end closed connection without response")
            )
        else:
            self._fail(http.client.IncompleteRead(b"".join(answer.body)))

    def _settle(self, reusable: bool) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(reusable)

    def _fail(self, error: Exception) -> None:
        self.close()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(error)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class AsyncHttpPool:
    """HttpPool's twin for the event loop: the same exchange, deadline, framing, limits
    and errors, with the connections' sockets in the loop (uvloop's transports) instead of
    ``poll``. Used from the one loop that first used it; its connections are that loop's
    (another loop finds none kept and opens its own)."""

    def __init__(
        self, host: str, port: int, *, max_idle: int, ssl_context: ssl.SSLContext | None
    ) -> None:
        if max_idle < 1:
            raise ValueError(f"max_idle must be at least 1, got {max_idle}")
        self._host, self._port = host, port
        self._max_idle = max_idle
        self._context = ssl_context
        self._idle: list[_LoopConnection] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self.opened = 0

    async def post(self, request: bytes, deadline: float) -> tuple[int, bytes]:
        """As HttpPool.post, awaited on the running loop."""
        if self._closed:
            raise PoolClosed()
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # another loop's connections are of no use (nor to
            self._idle, self._loop = [], loop  # be closed from here): left to that loop
        while self._idle:
            connection = self._idle.pop()
            if connection.closed:
                continue
            try:
                return await self._exchange(loop, connection, request, deadline)
            except _STALE:
                break
        return await self._exchange(loop, None, request, deadline)

    async def _exchange(
        self,
        loop: asyncio.AbstractEventLoop,
        connection: _LoopConnection | None,
        request: bytes,
        deadline: float,
    ) -> tuple[int, bytes]:
        left = deadline - time.monotonic()
        if left <= 0:
            if connection is not None:
                self._give_back(connection)
            raise TimeoutError("the deadline passed")
        waiter: asyncio.Future[bool] = loop.create_future()
        timer = loop.call_later(left, _time_out, waiter)
        try:
            if connection is None:
                connection = await self._connect(loop, waiter)
            answer = connection.exchange(request, waiter)
            reusable = await waiter
        except BaseException:
            if connection is not None:
                connection.close()
            raise
        finally:
            timer.cancel()
            if waiter.done() and not waiter.cancelled():
                waiter.exception()  # retrieved: raised above or not needed
        if reusable and not connection.closed:
            self._give_back(connection)
        else:
            connection.close()
        return answer.parser.get_status_code(), b"".join(answer.body)

    async def _connect(
        self, loop: asyncio.AbstractEventLoop, waiter: asyncio.Future[bool]
    ) -> _LoopConnection:
        """A new connection, or TimeoutError when ``waiter`` times out first."""
        self.opened += 1
        connecting = asyncio.ensure_future(
            loop.create_connection(
                _LoopConnection,
                self._host,
                self._port,
                ssl=self._context,
                server_hostname=self._host if self._context is not None else None,
            )
        )
        await asyncio.wait((connecting, waiter), return_when=asyncio.FIRST_COMPLETED)
        if not connecting.done():  # the deadline passed
            connecting.cancel()
            raise TimeoutError("the deadline passed")
        _, connection = connecting.result()
        return connection

    def _give_back(self, connection: _LoopConnection) -> None:
        if not self._closed and len(self._idle) < self._max_idle:
            self._idle.append(connection)
        else:
            connection.close()

    def __del__(self) -> None:
        # The loop holds its connections' transports: a pool no longer referenced (its
        # client dropped) closes them instead of leaving them to the proxy's idle timeout.
        if getattr(self, "_idle", None):  # (not when __init__ refused its arguments)
            self.close()

    def close(self) -> None:
        """Close the idle connections (on their loop's thread); exchanges started
        afterwards raise PoolClosed."""
        self._closed = True
        idle, self._idle = self._idle, []
        if not idle or self._loop is None or self._loop.is_closed():
            return
        for connection in idle:
            self._loop.call_soon_threadsafe(connection.close)


def _time_out(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError("the deadline passed"))
