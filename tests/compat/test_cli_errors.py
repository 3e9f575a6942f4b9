"""Mistakes a new operator makes on the command line, in a config file or in STRONGROOM_*
variables: each is one line on stderr that names what is wrong and how to fix it, exit
status 2, no traceback, and nothing made; plus ``--version`` and ``--config`` after the
command. The real ``strongroom`` executable runs in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from conftest import start_server, stop_server

from ._support import make_client

pytestmark = pytest.mark.compat

OTHER_ACCOUNT = "444455556666"


def strongroom(
    *args: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """The ``strongroom`` command with ``args``, no STRONGROOM_* variables but ``env``."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("STRONGROOM_")}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "strongroom.cli.main", *map(str, args)],
        capture_output=True,
        text=True,
        env=environment,
        cwd=cwd,
        timeout=120,
        check=False,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> str:
    """The command failed with exit 2 and one ``strongroom: ...`` line holding ``words``."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("strongroom: "), result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


# -- --version and --config after the command -----------------------------------------


def test_version_prints_the_package_version() -> None:
    result = strongroom("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"strongroom {version('strongroom')}"


def test_config_after_the_serve_command_is_read(tmp_path: Path) -> None:
    config = tmp_path / "strongroom.toml"
    config.write_text(f'account = "{OTHER_ACCOUNT}"\n')
    server = start_server(tmp_path / "data", None, "--config", str(config))
    try:
        kms = make_client(server.endpoint, server.access_key_id, server.secret_access_key)
        arn = kms.create_key()["KeyMetadata"]["Arn"]
        assert f":{OTHER_ACCOUNT}:key/" in arn
    finally:
        stop_server(server)


@pytest.mark.parametrize("place", ["before", "after"])
def test_config_before_or_after_an_admin_command_means_the_same(tmp_path: Path, place: str) -> None:
    config = tmp_path / "strongroom.toml"
    config.write_text(f'account = "{OTHER_ACCOUNT}"\ndata-dir = "{tmp_path / "data"}"\n')
    command = ["admin", "create-user", "carol"]
    args = ["--config", config, *command] if place == "before" else [*command, "--config", config]
    result = strongroom(*args)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["Arn"] == f"arn:aws:iam::{OTHER_ACCOUNT}:user/carol"


def test_config_after_the_command_wins_over_the_one_before(tmp_path: Path) -> None:
    before, after = tmp_path / "before.toml", tmp_path / "after.toml"
    before.write_text("port = 1\n")  # not looked at
    after.write_text("port = 70000\n")
    result = strongroom("--config", before, "serve", "--config", after)
    assert_one_line_error(result, "'port'", f"config file {after}", "70000")


# -- settings that are not valid name the setting and where the value came from ---------


@pytest.mark.parametrize(
    ("env", "words"),
    [
        (
            {"STRONGROOM_PORT": "abc"},
            ["setting 'port' (STRONGROOM_PORT): 'abc' is not a whole number"],
        ),
        ({"STRONGROOM_PORT": "99999"}, ["'port' (STRONGROOM_PORT)", "0 to 65535"]),
        ({"STRONGROOM_WORKERS": "0"}, ["'workers' (STRONGROOM_WORKERS)", "1 to 64"]),
        (
            {"STRONGROOM_DEV": "maybe"},
            ["'dev' (STRONGROOM_DEV): 'maybe' is not a boolean", "true/false"],
        ),
        ({"STRONGROOM_AUDIT_FSYNC": "nein"}, ["'audit_fsync' (STRONGROOM_AUDIT_FSYNC)"]),
        ({"STRONGROOM_ACCOUNT": "123"}, ["'account' (STRONGROOM_ACCOUNT)", "12 digits"]),
        ({"STRONGROOM_CHANGE_POLL_SECONDS": "soon"}, ["'change_poll_seconds'", "not a number"]),
        ({"STRONGROOM_JOB_INTERVAL_SECONDS": "0"}, ["'job_interval_seconds'", "more than 0"]),
        ({"STRONGROOM_LOG_LEVEL": "loud"}, ["'log_level'", "debug, info, warning, error"]),
    ],
)
def test_bad_environment_setting_is_named(
    tmp_path: Path, env: dict[str, str], words: list[str]
) -> None:
    result = strongroom("serve", "--data-dir", tmp_path / "data", env=env)
    assert_one_line_error(result, *words)
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    ("option", "words"),
    [
        (["--port", "99999"], ["setting 'port' (--port): '99999' is out of range", "0 to 65535"]),
        (["--port", "-1"], ["'port' (--port)", "0 to 65535"]),
        (["--port", "eighty"], ["'port' (--port): 'eighty' is not a whole number"]),
        (["--workers", "0"], ["setting 'workers' (--workers): '0' is out of range", "1 to 64"]),
        (["--workers", "65"], ["'workers' (--workers)", "1 to 64"]),
        (["--account", "123"], ["'account' (--account): '123'", "12 digits"]),
    ],
)
def test_bad_serve_option_is_named_before_anything_is_made(
    tmp_path: Path, option: list[str], words: list[str]
) -> None:
    result = strongroom("serve", "--data-dir", tmp_path / "data", *option)
    assert_one_line_error(result, *words)
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    ("toml", "words"),
    [
        ('port = "abc"\n', ["'port' (config file", "'abc' is not a whole number"]),
        ("port = 65536\n", ["'port' (config file", "0 to 65535"]),
        ("port = true\n", ["'port' (config file", "true is not a whole number"]),
        ("workers = 0\n", ["'workers' (config file", "1 to 64"]),
        ('dev = "sometimes"\n', ["'dev' (config file", "not a boolean"]),
        ('account = "123"\n', ["'account' (config file", "12 digits"]),
        ("account = 111122223333\n", ["'account' (config file", "not text"]),
        ("prot = 1\n", ["unknown setting 'prot'", "port"]),
        ("port = \n", ["not valid TOML", "line 1"]),
    ],
)
def test_bad_config_file_is_one_line(tmp_path: Path, toml: str, words: list[str]) -> None:
    config = tmp_path / "strongroom.toml"
    config.write_text(toml)
    result = strongroom("serve", "--config", config, "--data-dir", tmp_path / "data")
    assert_one_line_error(result, str(config), *words)
    assert not (tmp_path / "data").exists()


def test_missing_config_file_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    result = strongroom("--config", missing, "serve", "--data-dir", tmp_path / "data")
    assert_one_line_error(result, f"config file {missing} (--config)", "No such file")
    result = strongroom(
        "admin",
        "list-principals",
        "--data-dir",
        tmp_path / "data",
        env={"STRONGROOM_CONFIG": str(missing)},
    )
    assert_one_line_error(result, f"config file {missing} (STRONGROOM_CONFIG)", "No such file")
    assert not (tmp_path / "data").exists()


def test_config_file_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "latin1.toml"
    config.write_bytes('host = "café"\n'.encode("latin-1"))
    result = strongroom("serve", "--config", config, "--data-dir", tmp_path / "data")
    assert_one_line_error(result, str(config), "UTF-8")


# -- admin commands -------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["admin", "create-user", "dave", "--account", "123"],
        ["admin", "list-principals", "--account", "1111222233334"],
        ["admin", "create-user", "dave", "--in-account", "123"],
        ["admin", "put-user-policy", "dave", "p.json", "--in-account", "abc"],
    ],
)
def test_admin_account_that_is_not_12_digits_is_one_line(tmp_path: Path, args: list[str]) -> None:
    (tmp_path / "p.json").write_text("{}")
    result = strongroom(*args, "--data-dir", tmp_path / "data", cwd=tmp_path)
    assert_one_line_error(result, "is not an account id", "12 digits")


@pytest.fixture(scope="module")
def admin_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory with user ``erin`` and role ``app``."""
    data = tmp_path_factory.mktemp("admin") / "data"
    for command in (["create-user", "erin"], ["create-role", "app"]):
        result = strongroom("admin", *command, "--data-dir", data)
        assert result.returncode == 0, result.stderr
    return data


@pytest.mark.parametrize(
    "command",
    [
        ["put-user-policy", "erin"],
        ["put-role-policy", "app"],
        ["update-assume-role-policy", "app"],
    ],
)
@pytest.mark.parametrize("problem", ["missing", "directory", "not utf-8"])
def test_admin_policy_file_that_cannot_be_read_is_one_line(
    admin_data: Path, tmp_path: Path, command: list[str], problem: str
) -> None:
    path = tmp_path / "policy.json"
    if problem == "directory":
        path.mkdir()
    elif problem == "not utf-8":
        path.write_bytes(b'{"Version": "2012-10-17", "Statement": "\xff"}')
    result = strongroom("admin", *command, path, "--data-dir", admin_data)
    reason = {"missing": "No such file", "directory": "Is a directory", "not utf-8": "UTF-8"}
    assert_one_line_error(result, f"policy file {path}", reason[problem], "JSON policy document")


@pytest.mark.parametrize(
    "argv",
    [
        ["put-user-policy", "erin", "missing.json"],
        ["put-role-policy", "app", "missing.json", "--in-account", "123"],
        ["create-user", "erin", "--in-account", "123"],
    ],
)
def test_a_failed_admin_command_leaves_no_data_directory(tmp_path: Path, argv: list[str]) -> None:
    data = tmp_path / "never-made"
    result = strongroom("admin", *argv, "--data-dir", data)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not data.exists()


@pytest.mark.parametrize(
    ("command", "words"),
    [
        (["delete-user", "nobody"], ["NotFoundException", "user/nobody"]),
        (["delete-role", "nobody"], ["NotFoundException", "role/nobody"]),
        (["get-role", "nobody"], ["NotFoundException", "role/nobody"]),
        (["tag-user", "nobody", "a=b"], ["NotFoundException", "user/nobody"]),
        (["tag-user", "erin", "ab"], ["tag 'ab' must be KEY=VALUE"]),
        (["delete-access-key", "AKIANOSUCHKEY0000000"], ["AKIANOSUCHKEY0000000"]),
        (["create-access-key", "arn:aws:iam::111122223333:user/nobody"], ["user/nobody"]),
        (
            [
                "assume-role",
                "--role-arn",
                "arn:aws:iam::111122223333:role/app",
                "--session-name",
                "s",
            ],
            ["ValidationException", "roleSessionName"],
        ),
        (
            ["create-access-key", "arn:aws:iam::111122223333:user/erin", "--credentials-file", "x"],
            ["--as-profile"],
        ),
    ],
)
def test_admin_mistakes_are_one_line(
    admin_data: Path, command: list[str], words: list[str]
) -> None:
    result = strongroom("admin", *command, "--data-dir", admin_data)
    assert_one_line_error(result, *words)
