"""Sessions on PKCS#11 tokens: one process-wide lock, fail closed, recover when a token returns.

Every call into any PKCS#11 module of this process goes through ``TOKEN_LOCK`` (python-pkcs11
on SoftHSM2 crashes when two threads use a module at once; hardware modules are rarely
faster with concurrent sessions from one process). ``Token.run`` is the only way in: it
takes the lock, opens and logs in a session when there is none, and runs the caller's
function with it.

A token that goes away (unplugged, its files removed, the HSM unreachable) makes the call
fail with ``TokenUnavailable``, never a crash or a hang: the module is re-initialised (the
only way PKCS#11 offers to see the slot list anew) and the call is tried once more, so a
token that has come back serves again without a restart. An error of the operation itself
(a GCM tag that does not verify, say) is told apart from a missing token by asking the
module for the token after the failure: when it is there, the original error is raised.

A module path is loaded once per process (PKCS#11 has one C_Initialize per process); the
worker processes are spawned, never forked, so each initialises its own.
"""

from __future__ import annotations

import contextlib
import ctypes
import hmac
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import pkcs11
from pkcs11 import Attribute
from pkcs11 import exceptions as p11e

from strongroom.domain.errors import KeyStoreError

T = TypeVar("T")

REINITIALIZE_SECONDS = 0.25
"""How often, at most, a module is re-initialised to look for a token that went away."""

TOKEN_LOCK = threading.RLock()
"""Held for every call into a PKCS#11 module of this process."""


AES_KEY_TEMPLATE: Mapping[Attribute, Any] = {
    Attribute.TOKEN: True,
    Attribute.PRIVATE: True,
    Attribute.SENSITIVE: True,
    Attribute.EXTRACTABLE: False,
    Attribute.ENCRYPT: True,
    Attribute.DECRYPT: True,
    Attribute.WRAP: False,
    Attribute.UNWRAP: False,
    Attribute.SIGN: False,
    Attribute.VERIFY: False,
    Attribute.DERIVE: False,
}
"""The template of every AES key Strongroom generates in a token (the root key, a custom key
store's keys): kept in the token, never readable or extractable, and good for encryption and
decryption only."""


class TokenError(KeyStoreError):
    """A token could not be used as configured: its module, the token or the PIN is wrong.
    The message names which (it never contains the PIN)."""


class TokenUnavailable(KeyStoreError):
    """The token is not there (removed, unreachable) right now; it may come back."""


class PinIncorrect(TokenError):
    """The token refused the PIN."""


class _Module:
    """A loaded PKCS#11 library; ``generation`` counts re-initialisations, after which every
    session and object handle of the module is void."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lib: Any = pkcs11.lib(str(path))
        self.generation = 0
        self._reinitialized = 0.0

    def may_reinitialize(self) -> bool:
        return time.monotonic() - self._reinitialized >= REINITIALIZE_SECONDS

    def reinitialize(self) -> None:
        """C_Finalize and C_Initialize. Every session is void from here on, even when
        C_Initialize fails (SoftHSM2 fails it while its token directory is gone); the next
        call initialises again (python-pkcs11 skips C_Finalize when it is not initialised)."""
        self.generation += 1
        self._reinitialized = time.monotonic()
        self.lib.reinitialize()


_MODULES: dict[Path, _Module] = {}
_LOGINS: dict[tuple[Path, str], Token] = {}


def load_module(path: Path) -> _Module:
    """The module at ``path``, loaded on first use; TokenError when it is not a PKCS#11
    library. Call with ``TOKEN_LOCK`` held."""
    path = Path(path)
    module = _MODULES.get(path)
    if module is not None:
        return module
    if not path.is_file():
        raise TokenError(f"PKCS#11 module {path} does not exist")
    try:
        module = _Module(path)
    except (RuntimeError, OSError, p11e.PKCS11Error) as e:
        raise TokenError(f"PKCS#11 module {path} could not be loaded: {e!r}") from None
    _MODULES[path] = module
    return module


# A PKCS#11 error may say that the session, the token or the module has gone, or that the
# operation's input was wrong; SoftHSM2 says GeneralError for both (and for a GCM tag that
# does not verify), and "not initialized" once a re-initialisation found no token directory.
# ``Token.run`` tells them apart by asking the module for the token after every error.


class Token:
    """A logged-in read-write session on the token labelled ``label`` in ``module``."""

    def __init__(self, module: Path, label: str, pin: str) -> None:
        self.module_path = Path(module)
        self.label = label
        self._pin = pin
        self._session: Any = None
        self._generation = -1
        self._objects: dict[tuple[str, object], Any] = {}
        self._module: _Module | None = None  # load_module's, once found (never unloaded)

    def __repr__(self) -> str:  # never the PIN
        return f"Token(module={str(self.module_path)!r}, label={self.label!r})"

    def check(self) -> None:
        """Open the session now: TokenError naming what is wrong (module, token, PIN), or
        TokenUnavailable when the token is not present."""
        self.run(lambda session: None)

    def run(self, fn: Callable[[Any], T]) -> T:
        """``fn(session)`` under the lock, on a logged-in session. A token that has gone
        gives TokenUnavailable (after one re-initialisation and retry, so a token that came
        back is used again); other errors of ``fn`` propagate."""
        with TOKEN_LOCK:
            module = self._module
            if module is None:
                module = self._module = load_module(self.module_path)
            try:
                return fn(self._open(module))
            except TokenUnavailable as e:
                first: BaseException = e
            except p11e.PKCS11Error as e:
                # Any PKCS#11 error may mean the token went (SoftHSM2 says GeneralError, or
                # "not initialized" once a re-initialisation found no token directory):
                # when the module still finds the token, it is the operation's error.
                self._objects.clear()
                if self._present(module):
                    raise
                first = e
            # The token (or the module's view of it) is gone: see the slots anew and retry,
            # at most every REINITIALIZE_SECONDS (each re-initialisation voids the sessions
            # of every token of the module).
            if not module.may_reinitialize():
                raise TokenUnavailable(self._gone_message(first)) from None
            self._session = None
            try:
                module.reinitialize()
            except p11e.PKCS11Error:
                raise TokenUnavailable(self._gone_message(first)) from None
            try:
                return fn(self._open(module))
            except TokenUnavailable:
                raise
            except p11e.PKCS11Error:
                self._objects.clear()
                if self._present(module):
                    raise
                raise TokenUnavailable(self._gone_message(first)) from None

    def _gone_message(self, error: BaseException) -> str:
        if isinstance(error, TokenUnavailable):
            return str(error)
        return f"PKCS#11 token {self.label!r} is not available ({type(error).__name__})"

    def find_key(self, session: Any, label: str, key_type: Any = None) -> Any:
        """The key object labelled ``label`` (cached for the session; call inside ``run``).
        Raises pkcs11's NoSuchKey when there is none."""
        cache_key = (label, key_type)
        found = self._objects.get(cache_key)
        if found is None:
            found = session.get_key(label=label, key_type=key_type)
            self._objects[cache_key] = found
        return found

    def forget_key(self, label: str) -> None:
        """Drop a cached key object (after destroying it)."""
        for cache_key in [k for k in self._objects if k[0] == label]:
            del self._objects[cache_key]

    def close(self) -> None:
        """Close the session (which logs the user out when it was the token's last)."""
        with TOKEN_LOCK:
            owner = _LOGINS.get((self.module_path, self.label)) is self
            if owner:
                del _LOGINS[(self.module_path, self.label)]
            if owner and self._session is not None:
                with contextlib.suppress(p11e.PKCS11Error):
                    self._session.close()
            self._session = None
            self._objects.clear()

    def _open(self, module: _Module) -> Any:
        if self._session is not None and self._generation == module.generation:
            return self._session
        self._session = None
        self._objects.clear()
        # PKCS#11 logs a user in per application and token, not per session: a second
        # Token of this process on the same token shares the first one's login, and only
        # with the same PIN.
        other = _LOGINS.get((self.module_path, self.label))
        if other is not None and other is not self and other._session is not None:
            if not hmac.compare_digest(other._pin.encode(), self._pin.encode()):
                raise PinIncorrect(f"PKCS#11 token {self.label!r} refused the PIN")
            if other._generation == module.generation:
                self._session, self._generation = other._session, other._generation
                return self._session
        try:
            token = module.lib.get_token(token_label=self.label)
        except p11e.NoSuchToken:
            raise TokenUnavailable(
                f"PKCS#11 module {self.module_path} has no token labelled {self.label!r}"
            ) from None
        except p11e.MultipleTokensReturned:
            raise TokenError(
                f"PKCS#11 module {self.module_path} has more than one token labelled {self.label!r}"
            ) from None
        try:
            session = token.open(user_pin=self._pin, rw=True)
        except p11e.PinIncorrect:
            raise PinIncorrect(f"PKCS#11 token {self.label!r} refused the PIN") from None
        except (p11e.PinLocked, p11e.PinExpired, p11e.PinInvalid, p11e.PinLenRange) as e:
            raise PinIncorrect(
                f"PKCS#11 token {self.label!r} refused the PIN ({type(e).__name__})"
            ) from None
        except p11e.PKCS11Error as e:
            # SoftHSM2 fails a login (GeneralError, UserPinNotInitialized) while another
            # process rewrites the token's files, which each login does, as it does when
            # the token is going away: not there, for now (run() and open_token look again).
            raise TokenUnavailable(
                f"PKCS#11 token {self.label!r} could not be logged in to ({type(e).__name__})"
            ) from None
        self._session, self._generation = session, module.generation
        _LOGINS[(self.module_path, self.label)] = self
        return session

    def _present(self, module: _Module) -> bool:
        """Whether the module still finds this token (a present token's operation error is
        the operation's, not the token's)."""
        try:
            module.lib.get_token(token_label=self.label)
        except p11e.PKCS11Error:
            return False
        return True


def init_token(module: Path, label: str, so_pin: str, pin: str) -> None:
    """Initialise a free slot's token as ``label`` with the security officer PIN ``so_pin``
    and the user PIN ``pin`` (SoftHSM2 always offers one free slot). python-pkcs11 has no
    C_InitToken, so it is called through ctypes on the same loaded library; PINs never
    appear on a command line."""
    from pkcs11.constants import TokenFlag, UserType

    with TOKEN_LOCK:
        loaded = load_module(Path(module))
        lib = loaded.lib
        try:
            lib.get_token(token_label=label)
        except p11e.NoSuchToken:
            pass
        else:
            raise TokenError(f"PKCS#11 module {module} already has a token labelled {label!r}")
        free = [
            slot
            for slot in lib.get_slots(token_present=True)
            if not slot.get_token().flags & TokenFlag.TOKEN_INITIALIZED
        ]
        if not free:
            raise TokenError(f"PKCS#11 module {module} has no free slot for a new token")
        encoded = label.encode()
        if len(encoded) > 32:
            raise TokenError(f"token label {label!r} is longer than 32 bytes")
        c_lib = ctypes.CDLL(str(module))
        c_lib.C_InitToken.argtypes = [
            ctypes.c_ulong,
            ctypes.c_char_p,
            ctypes.c_ulong,
            ctypes.c_char_p,
        ]
        c_lib.C_InitToken.restype = ctypes.c_ulong
        so = so_pin.encode()
        rv = c_lib.C_InitToken(free[0].slot_id, so, len(so), encoded.ljust(32, b" "))
        if rv != 0:
            raise TokenError(f"C_InitToken failed for {label!r} (CKR 0x{rv:x})")
        token = lib.get_token(token_label=label)
        with token.open(rw=True, so_pin=so_pin, user_type=UserType.SO) as session:
            session.init_pin(pin)
