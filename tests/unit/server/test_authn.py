"""The authenticator's kept Callers: one per (access key, Region, source IP, User-Agent),
made again when the credential behind the access key is loaded again."""

from __future__ import annotations

import configparser
from datetime import UTC, datetime
from pathlib import Path

import pytest

from strongroom.auth.sigv4 import HttpRequest, sign
from strongroom.server.authn import Authenticator
from strongroom.server.settings import load_settings
from strongroom.server.wiring import Runtime, build_runtime, prepare

pytestmark = pytest.mark.unit


@pytest.fixture
def runtime(tmp_path: Path) -> Runtime:
    settings = load_settings(data_dir=tmp_path / "data", log_level="warning")
    prepare(settings)
    return build_runtime(settings)


def _request(runtime: Runtime) -> tuple[str, HttpRequest]:
    creds = configparser.ConfigParser()
    creds.read(runtime.settings.credentials_path)
    access_key_id = creds["strongroom"]["aws_access_key_id"]
    amz_date = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    headers = [("host", "localhost"), ("x-amz-date", amz_date)]
    unsigned = HttpRequest("POST", "/", "", headers, b"{}")
    authorization = sign(
        unsigned,
        access_key_id=access_key_id,
        secret_access_key=creds["strongroom"]["aws_secret_access_key"],
        region="us-east-1",
        service="kms",
        amz_date=amz_date,
    )
    request = HttpRequest("POST", "/", "", [*headers, ("authorization", authorization)], b"{}")
    return access_key_id, request


def _authenticate(
    authenticator: Authenticator, request: HttpRequest, source_ip: str = "10.0.0.1"
) -> object:
    return authenticator.authenticate(
        request, now=datetime.now(UTC), source_ip=source_ip, user_agent="test/1.0"
    )


def test_a_client_gets_the_same_caller_for_each_request(runtime: Runtime) -> None:
    _, request = _request(runtime)
    first = _authenticate(runtime.authenticator, request)
    assert _authenticate(runtime.authenticator, request) is first


def test_another_source_ip_gets_its_own_caller(runtime: Runtime) -> None:
    _, request = _request(runtime)
    first = _authenticate(runtime.authenticator, request, "10.0.0.1")
    other = _authenticate(runtime.authenticator, request, "10.0.0.2")
    assert other.source_ip == "10.0.0.2"  # type: ignore[attr-defined]
    assert first.source_ip == "10.0.0.1"  # type: ignore[attr-defined]


def test_a_credential_loaded_again_gives_a_new_caller(runtime: Runtime) -> None:
    # What happens when the principal's policies or tags change: the resolver forgets the
    # credential and loads it again; a Caller kept from the old one must not be given.
    access_key_id, request = _request(runtime)
    first = _authenticate(runtime.authenticator, request)
    runtime.credentials.forget(access_key_id)
    again = _authenticate(runtime.authenticator, request)
    assert again is not first
    assert again == first  # nothing changed in the store: the same values
