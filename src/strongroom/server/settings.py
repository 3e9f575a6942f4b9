"""Server settings from, in rising priority: defaults, a TOML file, STRONGROOM_* environment
variables, command-line options."""

from __future__ import annotations

import dataclasses
import math
import os
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from strongroom.server.logs import LOG_FORMATS

ENV_PREFIX = "STRONGROOM_"


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 4599
    data_dir: Path = Path("./strongroom-data")
    database_url: str | None = None  # default: sqlite in data_dir
    account: str = "111122223333"
    dev: bool = False
    # Worker processes: by default one per core this process may run on, so a server
    # uses the machine it is given (each worker is one Python process, bound by the GIL).
    workers: int = dataclasses.field(default_factory=lambda: default_workers())
    log_level: str = "info"
    log_format: str = "text"  # or "json": one JSON object a line, with request ids
    change_poll_seconds: float = 0.5  # how often a process looks for changes by others
    # PostgreSQL: how long a connection attempt, or data sent on a connection, may go
    # unanswered before the request waiting for it fails (storage/sql/store.py).
    database_timeout_seconds: float = 5.0
    # Read the change feed before every request (one query per round of requests), so no
    # request sees a state older than its arrival: see README "Many nodes" for the cost.
    strict_consistency: bool = False
    job_interval_seconds: float = 60.0  # scheduled jobs: deletion, rotation, import expiry
    # How often a process writes the key uses it noted (GetKeyLastUsage's delay; AWS: 1 h)
    usage_flush_seconds: float = 60.0
    on_demand_rotation_limit: int = 25  # RotateKeyOnDemand per key (AWS's quota: 25)
    # The web console's sessions (README "Web console"): signed out after this long without
    # a request, and this long after sign-in whatever happens.
    console_idle_seconds: float = 900.0
    console_session_seconds: float = 28800.0
    audit_dir: Path | None = None  # default: data_dir/audit
    audit_fsync: bool = True  # fdatasync each group of audit events before replying
    # The audit trail's life cycle (README "Audit trail"): a segment rolls over at this size
    # or age, a signed digest is written this often (CloudTrail: hourly) and at each clean
    # stop, closed segments are gzipped, and segments older than audit_retention_days (0:
    # never) are removed once exported (``audit export``) or, if allowed, unexported.
    audit_segment_bytes: int = 64 << 20
    audit_segment_seconds: float = 86400.0
    audit_digest_seconds: float = 3600.0
    audit_compress: bool = True
    audit_retention_days: float = 0.0
    audit_retention_unexported: bool = False
    grants_per_key: int = 50_000  # AWS KMS resource quota "Grants per KMS key"
    grants_per_grantee_per_key: int = 500  # grants for one grantee principal on one key
    seed: Path | None = None  # YAML seed file applied on every start (README "Seeding")
    # Unwrapped key material kept per process, in keys (keystores.software.MaterialCache);
    # the least recently used key's goes first when full; 0 turns the cache off: every
    # operation unwraps its key's material under the root key.
    material_cache_keys: int = 100_000
    # Key records kept per process (services.cache.KeyCache), and as many of each of what is
    # kept beside them (alias targets, grants, tags, alias names, replica Regions, material
    # ids); the least recently used entry goes first when full. 0 keeps none: every request
    # reads its key from the database.
    key_cache_keys: int = 100_000
    access_log: bool = False  # a line per API request on strongroom.access (server/access_log.py)
    # Where the root key is (README "Root key in an HSM"): "file" (DATA_DIR/root.key),
    # "pkcs11" (a key in a PKCS#11 token: the pkcs11_* settings) or "softhsm" (a SoftHSM2
    # token that the first start makes under DATA_DIR/softhsm).
    root_key: str = "file"
    pkcs11_module: Path | None = None  # the PKCS#11 library (.so) of the HSM
    pkcs11_token_label: str | None = None
    pkcs11_key_label: str = "strongroom-root"
    # The user PIN: the name of an environment variable that holds it, or a file that does
    # (mode 0600). Never the PIN itself: a setting may be on a command line or in a file.
    pkcs11_pin_env: str | None = None
    pkcs11_pin_file: Path | None = None
    # A PEM file of the certificate authorities to trust for external key store proxies at
    # https:// URI endpoints (None: the system's trust store). Checked at start.
    xks_ca_bundle: Path | None = None
    # AWS KMS's request quotas (ThrottlingException over a quota's rate; README "Quotas"):
    # on, as in AWS. How processes and nodes share a quota: "auto" (one exact bucket for
    # one worker on SQLite, else leases from a shared bucket in the database), "local",
    # "lease" or "split" (rate / workers each; server/quotas.py).
    request_quotas: bool = True
    quota_sharing: str = "auto"
    # HTTPS (README "TLS"): the certificate chain and private key (PEM) of the endpoint,
    # checked at start. ``tls`` without them, in --dev only: a certificate generated in
    # DATA_DIR/tls (server/tls.py). ``tls_ca_bundle``: the CA bundle the AWS config file the
    # server writes names for clients (default: the generated CA; none: the system's).
    tls: bool = False
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_ca_bundle: Path | None = None

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.sqlite_path.resolve()}"

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "strongroom.db"

    @property
    def audit_path(self) -> Path:
        return self.audit_dir or self.data_dir / "audit"

    @property
    def root_key_path(self) -> Path:
        return self.data_dir / "root.key"

    @property
    def softhsm_pin_path(self) -> Path:
        """The PIN of the SoftHSM2 token of ``root_key = "softhsm"`` (mode 0600)."""
        return self.data_dir / "softhsm" / "root.pin"

    @property
    def credentials_path(self) -> Path:
        return self.data_dir / "credentials"

    def to_env(self) -> dict[str, str]:
        """The settings as environment variables, for worker processes."""
        return {
            ENV_PREFIX + f.name.upper(): str(getattr(self, f.name))
            for f in fields(self)
            if getattr(self, f.name) is not None
        }


# -- reading and checking values ---------------------------------------------------------

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})
_INT_RE = re.compile(r"[+-]?[0-9]+")
ACCOUNT_ID = re.compile(r"[0-9]{12}")  # fullmatch; \d would take any Unicode digit
LOG_LEVELS = ("debug", "info", "warning", "error")
ROOT_KEY_PROVIDERS = ("file", "pkcs11", "softhsm")
QUOTA_SHARING = ("auto", "local", "lease", "split")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# More worker processes than this is a typo rather than a plan: each holds its own caches
# and database connections (PostgreSQL allows 100 connections unless configured otherwise).
MAX_WORKERS = 64


def default_workers() -> int:
    """One worker per core this process may run on (its CPU affinity), 1 to MAX_WORKERS."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_WORKERS))


class _Refused(Exception):
    """What is wrong with a value; ``load_settings`` adds which setting and where from."""


def _as_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE | _FALSE:
        return text in _TRUE
    raise _Refused("is not a boolean: use true/false, 1/0, yes/no or on/off")


def _as_int(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _INT_RE.fullmatch(value.strip()):
        return int(value)
    raise _Refused("is not a whole number")


def _as_float(value: object) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise _Refused("is not a number") from None
    else:
        raise _Refused("is not a number")
    if not math.isfinite(number):
        raise _Refused("is not a finite number")
    return number


def _as_str(value: object) -> str:
    if isinstance(value, (str, Path)):
        return str(value)
    raise _Refused("is not text: quote it in the TOML file")


def _as_path(value: object) -> Path:
    text = _as_str(value)
    if not text:
        raise _Refused("is empty: give a path")
    return Path(text)


_READERS: dict[str, Callable[[object], Any]] = {
    "bool": _as_bool,
    "int": _as_int,
    "float": _as_float,
    "str": _as_str,
    "str | None": _as_str,
    "Path": _as_path,
    "Path | None": _as_path,
}


def _between(low: float, high: float, hint: str = "") -> Callable[[Any], None]:
    def check(value: Any) -> None:
        if not low <= value <= high:
            raise _Refused(f"is out of range: it must be {low} to {high}{hint}")

    return check


def _at_least(low: float, *, exclusive: bool = False) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        if value < low or (exclusive and value == low):
            raise _Refused(f"must be {'more than' if exclusive else 'at least'} {low}")

    return check


def _account(value: str) -> None:
    if not ACCOUNT_ID.fullmatch(value):
        raise _Refused("is not an account id: an account id is 12 digits, e.g. 111122223333")


def _log_level(value: str) -> None:
    if value not in LOG_LEVELS:
        raise _Refused(f"is not a log level: use one of {', '.join(LOG_LEVELS)}")


def _log_format(value: str) -> None:
    if value not in LOG_FORMATS:
        raise _Refused(f"is not a log format: use one of {', '.join(LOG_FORMATS)}")


def _not_empty(value: str) -> None:
    if not value:
        raise _Refused("is empty")


def _root_key_provider(value: str) -> None:
    if value not in ROOT_KEY_PROVIDERS:
        raise _Refused(f"is not a root key provider: use one of {', '.join(ROOT_KEY_PROVIDERS)}")


def _quota_sharing(value: str) -> None:
    if value not in QUOTA_SHARING:
        raise _Refused(f"is not a way to share quotas: use one of {', '.join(QUOTA_SHARING)}")


def _label(value: str) -> None:
    if not value or len(value.encode()) > 32:
        raise _Refused("is not a PKCS#11 label: 1 to 32 bytes")


def _env_name(value: str) -> None:
    if not ENV_NAME.fullmatch(value):
        raise _Refused(
            "is not an environment variable name (letters, digits, _): give the NAME of the "
            "variable that holds the PIN, never the PIN"
        )


def _pem_file(value: Path) -> None:
    try:
        text = value.read_bytes()
    except OSError as exc:
        raise _Refused(f"cannot be read: {exc.strerror or exc}") from None
    if b"-----BEGIN CERTIFICATE-----" not in text:
        raise _Refused("holds no PEM certificate (-----BEGIN CERTIFICATE-----)")


# What each setting must be beyond its type.
_CHECKS: dict[str, Callable[[Any], None]] = {
    "host": _not_empty,
    "port": _between(0, 65535, " (0: any free port)"),
    "workers": _between(1, MAX_WORKERS),
    "account": _account,
    "log_level": _log_level,
    "log_format": _log_format,
    "change_poll_seconds": _at_least(0, exclusive=True),
    "database_timeout_seconds": _at_least(0, exclusive=True),
    "job_interval_seconds": _at_least(0, exclusive=True),
    "usage_flush_seconds": _at_least(0, exclusive=True),
    "audit_segment_bytes": _at_least(4096),
    "audit_segment_seconds": _at_least(0, exclusive=True),
    "audit_digest_seconds": _at_least(0, exclusive=True),
    "audit_retention_days": _at_least(0),
    "on_demand_rotation_limit": _at_least(0),
    "console_idle_seconds": _at_least(0, exclusive=True),
    "console_session_seconds": _at_least(0, exclusive=True),
    "grants_per_key": _at_least(1),
    "material_cache_keys": _at_least(0),
    "key_cache_keys": _at_least(0),
    "grants_per_grantee_per_key": _at_least(1),
    "root_key": _root_key_provider,
    "quota_sharing": _quota_sharing,
    "pkcs11_token_label": _label,
    "pkcs11_key_label": _label,
    "pkcs11_pin_env": _env_name,
    "xks_ca_bundle": _pem_file,
    "tls_ca_bundle": _pem_file,
}

# Settings that would put a PIN where it does not belong.
_REFUSED_NAMES = {
    "pkcs11_pin": "a PIN is never a setting: give pkcs11_pin_env (the name of an environment "
    "variable that holds it) or pkcs11_pin_file",
}


def _read(name: str, value: object, source: str) -> Any:
    kind = {f.name: f.type for f in fields(Settings)}[name]
    try:
        result = _READERS[str(kind)](value)
        if name in _CHECKS:
            _CHECKS[name](result)
    except _Refused as exc:
        shown = _shown(value)
        raise ValueError(f"setting '{name}' ({source}): {shown} {exc}") from None
    return result


def _shown(value: object) -> str:
    """A value as the operator wrote it: text quoted, booleans in TOML's spelling."""
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value) if isinstance(value, str) else str(value)


def _read_config(path: Path, source: str) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise ValueError(f"config file {path} ({source}): cannot read it: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ValueError(f"config file {path} ({source}): not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"config file {path} ({source}): not valid TOML: {exc}") from None


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings; ``overrides`` (command-line options) that are None are ignored.

    Raises ValueError, in one line, for a config file that cannot be read or parsed, an
    unknown setting in it, or a value that is malformed or out of range: the message names
    the setting, where the value came from (the file, the STRONGROOM_* variable or the
    option) and what it must be."""
    names = [f.name for f in fields(Settings)]
    values: dict[str, tuple[object, str]] = {}
    source = "--config"
    if config_file is None and ENV_PREFIX + "CONFIG" in os.environ:
        config_file, source = Path(os.environ[ENV_PREFIX + "CONFIG"]), ENV_PREFIX + "CONFIG"
    if config_file is not None:
        for key, value in _read_config(config_file, source).items():
            name = key.replace("-", "_")
            if name in _REFUSED_NAMES:
                refused = _REFUSED_NAMES[name]
                raise ValueError(f"config file {config_file}: setting '{key}': {refused}")
            if name not in names:
                raise ValueError(
                    f"config file {config_file}: unknown setting '{key}'; the settings are "
                    + ", ".join(names)
                )
            values[name] = (value, f"config file {config_file}")
    for name in names:
        env = os.environ.get(ENV_PREFIX + name.upper())
        if env is not None:
            values[name] = (env, ENV_PREFIX + name.upper())
    for name, value in overrides.items():
        if value is not None:
            values[name] = (value, "--" + name.replace("_", "-"))
    settings = dataclasses.replace(
        Settings(), **{name: _read(name, value, src) for name, (value, src) in values.items()}
    )
    check_root_key(settings, {name: src for name, (_, src) in values.items()})
    return settings


def check_root_key(settings: Settings, sources: dict[str, str] | None = None) -> None:
    """ValueError unless the pkcs11_* settings that ``root_key`` needs are there
    (``sources``: where each setting came from, for the message)."""
    if settings.root_key != "pkcs11":
        return
    source = (sources or {}).get("root_key", "--to")
    said = f"setting 'root_key' ({source}) is 'pkcs11'"
    for name in ("pkcs11_module", "pkcs11_token_label"):
        if getattr(settings, name) is None:
            raise ValueError(
                f"{said} but setting '{name}' is not given: give --{name.replace('_', '-')} "
                f"or {ENV_PREFIX}{name.upper()}"
            )
    if (settings.pkcs11_pin_env is None) == (settings.pkcs11_pin_file is None):
        raise ValueError(
            f"{said}: give exactly one of the settings 'pkcs11_pin_env' (the name of an "
            "environment variable that holds the PIN) and 'pkcs11_pin_file'"
        )
