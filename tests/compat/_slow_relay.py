"""A TCP relay for tests that need a slow or flaky server: ``SlowRelay(target_port, delay_s)``
listens on 127.0.0.1, forwards every connection to ``127.0.0.1:target_port`` and holds each
chunk of the server's answer for ``delay`` seconds (settable while running) before passing it
on. ``drop()`` cuts every open connection, as a server restart would.

    with SlowRelay(proxy.port, 0.5) as relay:
        client = XksClient(endpoint_at(relay.port))   # every answer 0.5 s late
        relay.delay = 0                               # now as fast as the target
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from types import TracebackType


class SlowRelay:
    """A delaying TCP relay to a local port (a context manager; threads are daemons)."""

    def __init__(self, target_port: int, delay_s: float = 0.0) -> None:
        self.target_port = target_port
        self.delay = delay_s
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._accept, name="slow-relay", daemon=True)

    def __enter__(self) -> SlowRelay:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._listener.close()
        self.drop()

    def drop(self) -> None:
        """Close every relayed connection (both sides)."""
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()

    def _track(self, *sockets: socket.socket) -> None:
        with self._lock:
            self._sockets.update(sockets)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            self._track(client, server)
            for source, sink, slow in ((client, server, False), (server, client, True)):
                threading.Thread(
                    target=self._pump,
                    args=(source, sink, slow),
                    name="slow-relay-pump",
                    daemon=True,
                ).start()

    def _pump(self, source: socket.socket, sink: socket.socket, slow: bool) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if slow and self.delay > 0:
                    time.sleep(self.delay)
                sink.sendall(data)
        except OSError:
            pass
        # One side ended: end the other too (an HTTP connection is no use half closed).
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if slow:  # the answering pump closes both once the other pump has been woken
            with self._lock:
                self._sockets.difference_update((source, sink))
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.close()
