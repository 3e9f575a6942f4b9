"""Starting a server, as an operator meets it: the root key a database is wrapped under,
one-line refusals that leave nothing behind, and the AWS config file of the first start."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import (
    POSTGRES_ENV,
    REGION,
    run_strongroom,
    start_server,
    stop_server,
)
from strongroom.keystores.filekey import check_value

pytestmark = pytest.mark.compat


def _refused(args: list[str], *expected: str) -> str:
    """Run ``strongroom args``; assert it fails with one ``strongroom:`` line (after the
    log, if any) that says each of ``expected``, and no traceback. Returns that line."""
    result = run_strongroom(args, check=False)
    assert result.returncode != 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("strongroom: "), result.stderr
    for text in expected:
        assert text in line, line
    return line


def _stored_check_value(url: str) -> bytes | None:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT check_value FROM root_key_check")).scalar()
    finally:
        engine.dispose()


def _serve(data_dir: Path, url: str | None, *extra: str) -> list[str]:
    args = ["serve", "--port", "0", "--data-dir", str(data_dir), *extra]
    return args + (["--database-url", url] if url else [])


# -- 1. the root key a database is wrapped under ------------------------------------------


def test_a_second_data_dir_on_a_shared_database_is_refused_and_writes_nothing(
    shared_url: str, tmp_path: Path
) -> None:
    first = start_server(tmp_path / "a", shared_url)
    try:
        kms = first.client()
        key = kms.create_key()["KeyMetadata"]
        second = tmp_path / "b"
        _refused(_serve(second, shared_url), "no root key at", "copy the root.key", "README")
        assert not second.exists()
        # Admin commands open the database too, and are refused alike.
        _refused(
            ["admin", "list-principals", "--data-dir", str(second), "--database-url", shared_url],
            "copy the root.key",
        )
        assert not second.exists()
        # A root key of its own (here: the credentials copied, a wrong root.key) is refused.
        second.mkdir()
        shutil.copy2(first.data_dir / "credentials", second / "credentials")
        (second / "root.key").write_bytes(os.urandom(32))
        (second / "root.key").chmod(0o600)
        ours = check_value((first.data_dir / "root.key").read_bytes()).hex()[:8]
        theirs = check_value((second / "root.key").read_bytes()).hex()[:8]
        _refused(
            _serve(second, shared_url),
            f"is wrapped under root key {ours}",
            f"is root key {theirs}",
            "copy the root.key",
        )
        assert sorted(p.name for p in second.iterdir()) == ["credentials", "root.key"]
        # The first server still works, and the database still has one admin access key.
        blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"still")["CiphertextBlob"]
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"still"
        admin = "arn:aws:iam::111122223333:user/admin"
        keys = json.loads(first.admin("list-access-keys", "--principal", admin).stdout)
        assert len(keys) == 1, keys
        # With the first server's root key, the second serves the same keys.
        shutil.copy2(first.data_dir / "root.key", second / "root.key")
        node = start_server(second, shared_url)
        try:
            assert node.client().decrypt(CiphertextBlob=blob)["Plaintext"] == b"still"
        finally:
            stop_server(node)
    finally:
        stop_server(first)


def test_a_wrong_root_key_file_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    stop_server(start_server(data))
    original = (data / "root.key").read_bytes()
    (data / "root.key").write_bytes(os.urandom(32))
    _refused(_serve(data, None), "is wrapped under root key", f"but {data / 'root.key'}")
    (data / "root.key").write_bytes(original)
    stop_server(start_server(data))


def _downgrade_to_before_the_check_value(url: str) -> None:
    """Make the database one from before revision 0008, as an existing one is."""
    import sqlalchemy as sa
    from alembic import command

    from strongroom.storage.migrate import alembic_config

    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "0007")
    finally:
        engine.dispose()


def test_an_old_database_gets_the_check_value_of_its_root_key_on_start(
    shared_url: str, tmp_path: Path
) -> None:
    server = start_server(tmp_path / "a", shared_url)
    key = server.client().create_key()["KeyMetadata"]
    stop_server(server)
    _downgrade_to_before_the_check_value(shared_url)
    server = start_server(tmp_path / "a", shared_url)
    try:
        assert server.client().describe_key(KeyId=key["KeyId"])["KeyMetadata"]["Enabled"]
    finally:
        stop_server(server)
    expected = check_value((tmp_path / "a" / "root.key").read_bytes())
    assert bytes(_stored_check_value(shared_url) or b"") == expected


def test_an_old_database_with_another_root_key_is_refused_not_recorded(
    shared_url: str, tmp_path: Path
) -> None:
    stop_server(start_server(tmp_path / "a", shared_url))
    _downgrade_to_before_the_check_value(shared_url)
    other = tmp_path / "b"
    other.mkdir()
    (other / "root.key").write_bytes(os.urandom(32))
    (other / "root.key").chmod(0o600)
    _refused(_serve(other, shared_url), "do not unwrap under", "copy the root.key")
    assert _stored_check_value(shared_url) is None
    assert sorted(p.name for p in other.iterdir()) == ["root.key"]


# -- 2. start-up failures: one line, nothing half-made ------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgresql+psycopg://postgres@127.0.0.1:1/strongroom",
            ["Connection refused", "--database-url"],
        ),
        (
            "postgres://postgres@127.0.0.1/strongroom",
            [
                "'postgres://' is not supported",
                "postgresql+psycopg://postgres@127.0.0.1/strongroom",
            ],
        ),
        ("mysql://root@127.0.0.1/strongroom", ["unsupported database 'mysql'", "PostgreSQL"]),
        ("not a url", ["is not a database URL", "postgresql+psycopg://"]),
    ],
)
def test_a_bad_database_url_is_one_line_and_makes_no_data_dir(
    url: str, expected: list[str], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    _refused(_serve(data, url), *expected)
    assert not data.exists()


def test_a_missing_postgres_database_is_one_line(tmp_path: Path) -> None:
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"PostgreSQL tests need {POSTGRES_ENV}")
    url = base.rpartition("/")[0] + "/strongroom_no_such_database"
    data = tmp_path / "data"
    _refused(_serve(data, url), 'database "strongroom_no_such_database" does not exist', "createdb")
    assert not data.exists()


def test_a_data_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.write_text("not a directory")
    _refused(_serve(data, None), f"data directory {data} is not a directory")
    assert data.read_text() == "not a directory"


def test_a_data_dir_that_cannot_be_made_is_refused(tmp_path: Path) -> None:
    # A path under a regular file cannot be made by anyone, root included (ENOTDIR); the
    # tests run as root, which mode bits do not stop.
    blocker = tmp_path / "file"
    blocker.write_text("")
    data = blocker / "data"
    _refused(_serve(data, None), f"cannot make data directory {data}", "is not a directory")
    assert blocker.is_file()


def test_a_busy_port_fails_before_anything_is_written(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        data = tmp_path / "data"
        args = ["serve", "--port", str(port), "--data-dir", str(data)]
        _refused(args, f"cannot listen on 127.0.0.1:{port}", "choose another --port")
        _refused([*args, "--workers", "2"], f"cannot listen on 127.0.0.1:{port}")
    assert not data.exists()


# -- 3. the AWS config file and strongroom env --------------------------------------------


def _only_these(**env: str) -> dict[str, str]:
    """The environment without any AWS_ variable but ``env`` and no metadata lookups."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return {**base, "AWS_EC2_METADATA_DISABLED": "true", "AWS_MAX_ATTEMPTS": "1", **env}


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[Any]:
    server = start_server(tmp_path / "data")
    yield server
    stop_server(server)


def test_the_first_start_writes_the_aws_config_file(fresh_server: Any) -> None:
    config = fresh_server.data_dir / "config"
    assert config.stat().st_mode & 0o777 == 0o600
    assert config.read_text().split("\n") == [
        "[profile strongroom]",
        f"region = {REGION}",
        f"endpoint_url = {fresh_server.endpoint}",
        "",
        "",
    ]


def test_the_aws_cli_and_boto3_work_with_only_the_three_variables(
    fresh_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = _only_these(
        AWS_CONFIG_FILE=str(fresh_server.data_dir / "config"),
        AWS_SHARED_CREDENTIALS_FILE=str(fresh_server.data_dir / "credentials"),
        AWS_PROFILE="strongroom",
    )
    key = fresh_server.client().create_key()["KeyMetadata"]
    exe = shutil.which("aws") or "aws"
    result = subprocess.run(
        [exe, "kms", "list-keys"], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert key["KeyId"] in {k["KeyId"] for k in json.loads(result.stdout)["Keys"]}

    import boto3

    for name, value in env.items():
        if name.startswith("AWS_"):
            monkeypatch.setenv(name, value)
    kms = boto3.Session().client("kms")
    assert key["KeyId"] in {k["KeyId"] for k in kms.list_keys()["Keys"]}


def test_strongroom_env_evaluated_in_bash_points_the_aws_cli_at_the_server(
    fresh_server: Any,
) -> None:
    env = _only_these()
    key = fresh_server.client().create_key()["KeyMetadata"]
    strongroom = f"python3 -m strongroom.cli.main env --data-dir '{fresh_server.data_dir}'"
    script = f'set -e; eval "$({strongroom})"; echo "$AWS_ENDPOINT_URL_KMS"; aws kms list-keys'
    result = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    endpoint, _, listed = result.stdout.partition("\n")
    assert endpoint == fresh_server.endpoint
    assert key["KeyId"] in {k["KeyId"] for k in json.loads(listed)["Keys"]}


def test_strongroom_env_without_a_started_data_dir_is_refused(tmp_path: Path) -> None:
    _refused(["env", "--data-dir", str(tmp_path / "none")], "start strongroom serve")
