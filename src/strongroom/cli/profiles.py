"""Profiles of an AWS shared credentials file (``[NAME]`` with ``aws_access_key_id`` and
``aws_secret_access_key``), as ``admin create-access-key --as-profile`` appends them."""

from __future__ import annotations

import configparser
import os
import re
from collections.abc import Callable
from pathlib import Path

from strongroom.server.client_config import credentials_profile

# Letters, digits and ._-+@: names every AWS SDK and the CLI read the same way (a profile
# name with brackets, "=" or spaces is read differently by different parsers).
_PROFILE_RE = re.compile(r"[A-Za-z0-9._+@-]{1,64}")


def check_profile_name(name: str) -> None:
    """ValueError unless ``name`` is 1-64 of letters, digits and ._-+@."""
    if not _PROFILE_RE.fullmatch(name):
        raise ValueError(
            f"profile name {name!r} must be 1-64 characters of letters, digits and ._-+@"
        )


def profiles_in(path: Path) -> set[str]:
    """The profile names in the credentials file at ``path`` (none when it does not exist);
    ValueError when it cannot be read or is not in the credentials-file format."""
    if not path.exists():
        return set()
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(path.read_text(encoding="utf-8"), str(path))
    except (OSError, UnicodeDecodeError, configparser.Error) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else str(exc).splitlines()[0]
        raise ValueError(f"credentials file {path}: cannot read it: {reason}") from None
    return set(parser.sections())


def append_profile(
    path: Path, name: str, make_key: Callable[[], tuple[str, str]]
) -> tuple[str, str]:
    """Append profile ``name`` with the (access key id, secret) that ``make_key`` returns to
    the credentials file at ``path``, created with mode 0600 if need be (an existing file is
    made 0600 too: it holds secrets). ``make_key`` runs only once the file is known to be
    writable and without that profile, so a refused request creates no key.

    Raises ValueError (a bad name, the profile exists, the file cannot be read or written)."""
    check_profile_name(name)
    if name in profiles_in(path):
        raise ValueError(
            f"credentials file {path} already has a profile [{name}]: choose another name "
            "with --as-profile, or another file with --credentials-file"
        )
    existed = path.exists()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    except OSError as exc:
        raise ValueError(f"credentials file {path}: cannot write it: {exc.strerror}") from None
    with os.fdopen(fd, "a", encoding="utf-8") as f:
        try:
            key_id, secret = make_key()
        except BaseException:
            if not existed:
                path.unlink()
            raise
        os.fchmod(fd, 0o600)
        separator = "\n" if existed and not _ends_with_newline(path) else ""
        f.write(separator + credentials_profile(name, key_id, secret))
        f.flush()
        os.fsync(fd)
    return key_id, secret


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() == 0:
            return True
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"
