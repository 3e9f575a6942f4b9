"""Console sessions: a MAC-protected cookie under a server secret kept wrapped under the
root key, CSRF tokens derived from the session id, and the limit on failed sign-ins.

Why a signed cookie and not a table: every worker and every node that shares the root key
reads the same session without a database round trip or a schema change, and the server
still decides everything: the expiry times inside the cookie are checked against the
server's clock (idle and absolute), the MAC makes them unforgeable, and each action is
signed afresh with the access key's current secret, so a deleted access key ends its
sessions at once. What the cookie holds is not secret: a random session id, the access key
id (an identifier, as in CloudTrail), the region, and two times.

Cookie value: ``v1.`` + base64url(JSON payload) + ``.`` + base64url(HMAC-SHA256(key,
``DOMAIN || payload``)). Payload fields: ``s`` session id (32 hex digits from
``secrets``), ``k`` access key id, ``a`` its principal's ARN (from GetCallerIdentity at
sign-in), ``r`` region, ``i`` issued (Unix seconds), ``t`` last seen (Unix seconds).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import json
import logging
import os
import secrets
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, hmac

from strongroom.domain.errors import KeyStoreError

log = logging.getLogger("strongroom.console")

COOKIE = "strongroom_console"
KEY_FILE = "console-session.key"
_KEY_AAD = b"strongroom console session key v1"
_MAC_DOMAIN = b"strongroom-console-session-v1|"
_CSRF_DOMAIN = b"strongroom-console-csrf-v1|"
REFRESH_SECONDS = 30  # a request this long after the last refresh re-issues the cookie


class Wrapper(Protocol):
    """The root key's wrap and unwrap (``keystores.base.RootKey``)."""

    def wrap(self, secret: bytes, aad: bytes) -> bytes: ...

    def unwrap(self, wrapped: bytes, aad: bytes) -> bytes: ...


def load_session_key(data_dir: Path, root_key: Wrapper) -> bytes:
    """The console's 32-byte MAC key, kept in ``data_dir/console-session.key`` wrapped
    under the root key (never in plaintext). The first process to need it makes it; the
    file is linked into place, so workers starting together agree on one key."""
    path = data_dir / KEY_FILE
    if not path.exists():
        fresh = root_key.wrap(secrets.token_bytes(32), _KEY_AAD)
        temporary = data_dir / f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(fresh)
                f.flush()
                os.fsync(f.fileno())
            with contextlib.suppress(FileExistsError):  # another process made it: use theirs
                os.link(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
    try:
        key = root_key.unwrap(path.read_bytes(), _KEY_AAD)
    except KeyStoreError:
        key = b""
    if len(key) == 32:
        return key
    # Wrapped under a root key this server no longer has (a restore, a retired root key):
    # start over with a new key. Sessions signed under the old one end; nothing else does.
    log.warning("console: %s does not unwrap; making a new session key", path)
    _replace(path, root_key.wrap(secrets.token_bytes(32), _KEY_AAD))
    return root_key.unwrap(path.read_bytes(), _KEY_AAD)  # whoever replaced it last


def _replace(path: Path, wrapped: bytes) -> None:
    temporary = path.with_name(f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(wrapped)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)


@dataclass(frozen=True, slots=True)
class Session:
    session_id: str
    access_key_id: str
    arn: str
    region: str
    issued: int
    seen: int


class SessionCodec:
    """Issues and checks session cookies: idle for at most ``idle`` seconds, alive for at
    most ``lifetime`` seconds from sign-in, whatever the browser does with the cookie."""

    def __init__(self, key: bytes, *, idle: float, lifetime: float) -> None:
        self._key = key
        self.idle = idle
        self.lifetime = lifetime

    def new(self, access_key_id: str, arn: str, region: str, now: float) -> Session:
        return Session(secrets.token_hex(16), access_key_id, arn, region, int(now), int(now))

    def encode(self, session: Session) -> str:
        payload = json.dumps(
            {
                "s": session.session_id,
                "k": session.access_key_id,
                "a": session.arn,
                "r": session.region,
                "i": session.issued,
                "t": session.seen,
            },
            separators=(",", ":"),
        ).encode()
        body = _b64(payload)
        return f"v1.{body}.{_b64(self._mac(_MAC_DOMAIN + body.encode()))}"

    def decode(self, value: str, now: float) -> Session | None:
        """The session of cookie ``value`` if its MAC checks and it has not expired."""
        parts = value.split(".")
        if len(parts) != 3 or parts[0] != "v1":
            return None
        try:
            mac = _unb64(parts[2])
        except (ValueError, binascii.Error):
            return None
        if _b64(mac) != parts[2]:  # the MAC spelled otherwise (unused bits set): not ours
            return None
        check = hmac.HMAC(self._key, hashes.SHA256())
        check.update(_MAC_DOMAIN + parts[1].encode())
        try:
            check.verify(mac)
        except InvalidSignature:  # a forged or altered cookie: its payload is never parsed
            return None
        try:
            payload = json.loads(_unb64(parts[1]))
            session = Session(
                str(payload["s"]),
                str(payload["k"]),
                str(payload["a"]),
                str(payload["r"]),
                int(payload["i"]),
                int(payload["t"]),
            )
        except (KeyError, TypeError, ValueError, binascii.Error, RecursionError):
            return None
        if now - session.seen > self.idle or now - session.issued > self.lifetime:
            return None
        return session

    def touched(self, session: Session, now: float) -> Session | None:
        """The session seen at ``now``, when its cookie is due for a refresh (else None)."""
        # Often enough that a session in use never idles out, even with a short idle time.
        if now - session.seen < min(REFRESH_SECONDS, self.idle / 4):
            return None
        return replace(session, seen=int(now))

    def csrf_token(self, session: Session) -> str:
        """The CSRF token of ``session``: every state-changing request carries it."""
        return _b64(self._mac(_CSRF_DOMAIN + session.session_id.encode()))

    def csrf_ok(self, session: Session, token: str | None) -> bool:
        if not token:
            return False
        return secrets.compare_digest(token.encode(), self.csrf_token(session).encode())

    def _mac(self, data: bytes) -> bytes:
        mac = hmac.HMAC(self._key, hashes.SHA256())
        mac.update(data)
        return mac.finalize()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SignInLimiter:
    """Failed sign-ins allowed per source address and per access key id: at most
    ``limit`` in any ``window`` seconds; more are refused until the oldest leaves the
    window. Counted per process (each worker holds its own counts).

    Memory is bounded: only names with a failure inside the window are held (a look-up
    records nothing), each holds at most ``limit`` times, and past ``max_names`` names the
    least recently failed are forgotten first (not everyone at once), so a flood of names
    from blocked addresses cannot grow the table, and one from many addresses forgets the
    oldest counts only."""

    def __init__(
        self,
        *,
        limit: int = 5,
        window: float = 300.0,
        clock: Callable[[], float],
        max_names: int = 100_000,
    ) -> None:
        self.limit = limit
        self.window = window
        self.max_names = max_names
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def __len__(self) -> int:
        """How many names are held."""
        return len(self._failures)

    def retry_after(self, *who: str) -> float:
        """Seconds until ``who`` (address, access key id) may try again; 0: now."""
        now = self._clock()
        wait = 0.0
        for name in who:
            times = self._recent(name, now)
            if len(times) >= self.limit:
                wait = max(wait, times[0] + self.window - now)
        return wait

    def failed(self, *who: str) -> None:
        now = self._clock()
        for name in who:
            times = self._recent(name, now) or deque(maxlen=self.limit)
            times.append(now)
            self._failures[name] = times
            self._failures.move_to_end(name)
        while len(self._failures) > self.max_names:
            self._failures.popitem(last=False)

    def _recent(self, name: str, now: float) -> deque[float]:
        """The failures of ``name`` inside the window (an empty deque, not stored, if none)."""
        times = self._failures.get(name)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[name]
        return times


SIGNED_OUT_FILE = "console-signed-out"


class SignedOut:
    """The sessions signed out before they expired, shared by every worker of a data
    directory: a cookie is only as good as its MAC and times, so without this list a
    copy of a signed-out cookie would still work until it idled out.

    The file ``data_dir/console-signed-out`` holds one ``<session id> <until>`` line per
    sign-out (``until``: Unix seconds after which the cookie is dead anyway), appended under
    an exclusive lock; a reader re-reads it when its size or time changes. Lines past their
    ``until`` are dropped when the file is rewritten (at most every ``COMPACT`` lines)."""

    COMPACT = 10_000

    def __init__(self, data_dir: Path) -> None:
        self._path = data_dir / SIGNED_OUT_FILE
        self._lock = threading.Lock()
        self._seen: tuple[int, int] | None = None
        self._until: dict[str, float] = {}

    def add(self, session_id: str, until: float, now: float) -> None:
        """Sign ``session_id`` out (blocking: file I/O)."""
        line = f"{session_id} {int(until) + 1}\n".encode()
        with self._lock, self._locked() as fd:
            os.write(fd, line)
            if os.fstat(fd).st_size > self.COMPACT * 48:
                self._compact(fd, now)
            self._until[session_id] = until + 1

    def contains(self, session_id: str, now: float) -> bool:
        """Whether ``session_id`` was signed out (blocking: a stat, and a read when the file
        changed)."""
        with self._lock:
            try:
                st = self._path.stat()
            except FileNotFoundError:
                st = None
            seen = None if st is None else (st.st_size, st.st_mtime_ns)
            if seen != self._seen:
                self._until = self._read_shared() if st is not None else {}
                self._seen = seen
            return self._until.get(session_id, 0) > now

    @contextlib.contextmanager
    def _locked(self) -> Iterator[int]:
        fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield fd
        finally:
            os.close(fd)  # releases the lock

    def _read_shared(self) -> dict[str, float]:
        """The file's entries, read under a shared lock (never half an append or a
        compaction)."""
        try:
            fd = os.open(self._path, os.O_RDONLY)
        except FileNotFoundError:
            return {}
        with os.fdopen(fd, "rb") as f:
            fcntl.flock(fd, fcntl.LOCK_SH)
            return _entries(f.read())

    def _compact(self, fd: int, now: float) -> None:
        """Rewrite the file with the live entries only (the caller holds the lock)."""
        live = {s: u for s, u in _entries(self._path.read_bytes()).items() if u > now}
        text = "".join(f"{s} {int(u)}\n" for s, u in live.items()).encode()
        os.ftruncate(fd, 0)
        os.write(fd, text)  # O_APPEND: written at the new end, the start


def _entries(data: bytes) -> dict[str, float]:
    """``{session id: until}`` of the file's text (the latest ``until`` of a repeated id)."""
    found: dict[str, float] = {}
    for line in data.decode("ascii", "replace").splitlines():
        session_id, _, until = line.partition(" ")
        if session_id and until.isdigit():
            found[session_id] = max(found.get(session_id, 0), float(until))
    return found
