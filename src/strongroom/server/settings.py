"""Server settings from, in rising priority: defaults, a TOML file, STRONGROOM_* environment
variables, command-line options."""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

ENV_PREFIX = "STRONGROOM_"


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 4599
    data_dir: Path = Path("./strongroom-data")
    database_url: str | None = None  # default: sqlite in data_dir
    account: str = "111122223333"
    dev: bool = False
    workers: int = 1
    log_level: str = "info"
    change_poll_seconds: float = 0.5  # how often a process looks for changes by others
    job_interval_seconds: float = 60.0  # scheduled jobs: deletion, rotation, import expiry
    on_demand_rotation_limit: int = 25  # RotateKeyOnDemand per key (AWS's quota: 25)
    audit_dir: Path | None = None  # default: data_dir/audit
    audit_fsync: bool = True  # fdatasync each group of audit events before replying
    grants_per_key: int = 50_000  # AWS KMS resource quota "Grants per KMS key"
    grants_per_grantee_per_key: int = 500  # grants for one grantee principal on one key
    seed: Path | None = None  # YAML seed file applied on every start (README "Seeding")
    access_log: bool = False  # a line per API request on strongroom.access (server/access_log.py)

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
    def credentials_path(self) -> Path:
        return self.data_dir / "credentials"

    def to_env(self) -> dict[str, str]:
        """The settings as environment variables, for worker processes."""
        return {
            ENV_PREFIX + f.name.upper(): str(getattr(self, f.name))
            for f in fields(self)
            if getattr(self, f.name) is not None
        }


def _coerce(name: str, value: Any) -> Any:
    kind = {f.name: f.type for f in fields(Settings)}[name]
    if kind == "bool":
        return (
            value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")
        )
    if kind == "int":
        return int(value)
    if kind == "float":
        return float(value)
    if kind in ("Path", "Path | None"):
        return Path(value)
    return str(value)


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings; ``overrides`` (command-line options) that are None are ignored.

    Raises ValueError naming the setting when a value is malformed or unknown."""
    names = {f.name for f in fields(Settings)}
    values: dict[str, Any] = {}
    config_file = config_file or (
        Path(os.environ[ENV_PREFIX + "CONFIG"]) if ENV_PREFIX + "CONFIG" in os.environ else None
    )
    if config_file is not None:
        with config_file.open("rb") as f:
            document = tomllib.load(f)
        for key, value in document.items():
            name = key.replace("-", "_")
            if name not in names:
                raise ValueError(f"{config_file}: unknown setting '{key}'")
            values[name] = value
    for name in names:
        env = os.environ.get(ENV_PREFIX + name.upper())
        if env is not None:
            values[name] = env
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return dataclasses.replace(Settings(), **{k: _coerce(k, v) for k, v in values.items()})
    except (TypeError, ValueError) as exc:
        raise ValueError(f"bad setting: {exc}") from None
