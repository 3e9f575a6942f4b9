"""The web console's session rules over plain HTTP against a real server (no browser needed):
a signed-out cookie replayed, and the pages that make no KMS call after the access key is
deleted. What the browser tests cannot show: a copy of the cookie kept by someone else."""

from __future__ import annotations

import http.client
import json
import os
import pwd
import re
import socket
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from conftest import start_server, stop_server

from ._support import ACCOUNT, new_principal

pytestmark = pytest.mark.compat

READ_ONLY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": ["kms:List*", "kms:Describe*", "kms:Get*"], "Resource": "*"}
    ],
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    started = start_server(tmp_path_factory.mktemp("console-sessions") / "data")
    yield started
    stop_server(started)


def request(
    server: Any,
    method: str,
    path: str,
    *,
    cookie: str = "",
    form: dict[str, str] | None = None,
) -> http.client.HTTPResponse:
    """One request as a browser on the console's own page sends it (no redirect followed)."""
    netloc = urllib.parse.urlsplit(server.endpoint).netloc
    connection = http.client.HTTPConnection(netloc, timeout=30)
    headers = {"Origin": server.endpoint}
    if cookie:
        headers["Cookie"] = cookie
    body = None
    if form is not None:
        body = urllib.parse.urlencode(form)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def page(server: Any, path: str, cookie: str) -> tuple[int, str, str]:
    """Status, Location and body of GET ``path`` with ``cookie``."""
    netloc = urllib.parse.urlsplit(server.endpoint).netloc
    connection = http.client.HTTPConnection(netloc, timeout=30)
    connection.request("GET", path, headers={"Cookie": cookie})
    response = connection.getresponse()
    body = response.read().decode()
    connection.close()
    return response.status, response.getheader("location") or "", body


def sign_in(server: Any, access_key_id: str, secret: str) -> str:
    """The session cookie (``name=value``) of a successful sign-in."""
    response = request(
        server,
        "POST",
        "/console/sign-in",
        form={"AccessKeyId": access_key_id, "SecretAccessKey": secret, "Region": "us-east-1"},
    )
    assert response.status == 303, response.status
    assert response.getheader("location") == "/console/keys"
    for header in response.headers.get_all("set-cookie") or []:
        if header.startswith("strongroom_console="):
            return header.split(";", 1)[0]
    raise AssertionError("no session cookie")


def test_a_signed_out_cookie_replayed_is_no_session(server: Any) -> None:
    cookie = sign_in(server, server.access_key_id, server.secret_access_key)
    status, _, body = page(server, "/console/keys", cookie)
    assert status == 200
    csrf = re.search(r'name="csrf" value="([^"]+)"', body)
    assert csrf is not None
    out = request(server, "POST", "/console/sign-out", cookie=cookie, form={"csrf": csrf[1]})
    assert out.status == 303
    # The browser forgets the cookie; a copy of it (another tab's, a proxy's, a thief's)
    # must be dead too, on every page.
    for path in ("/console/keys", "/console/audit", "/console/keys/new"):
        status, location, _ = page(server, path, cookie)
        assert (status, location) == (303, "/console/sign-in"), path
    refused = request(
        server,
        "POST",
        "/console/keys",
        cookie=cookie,
        form={"csrf": csrf[1], "KeySpec": "HMAC_256"},
    )
    assert refused.status == 303
    assert refused.getheader("location") == "/console/sign-in"
    # Another session of the same access key is not affected.
    other = sign_in(server, server.access_key_id, server.secret_access_key)
    assert page(server, "/console/keys", other)[0] == 200


@pytest.mark.parametrize("path", ["/console/audit", "/console/keys/new"])
def test_pages_without_a_kms_call_end_with_the_access_key(server: Any, path: str) -> None:
    user = new_principal(server, "leaver", policy=READ_ONLY)
    cookie = sign_in(server, user["AccessKeyId"], user["SecretAccessKey"])
    assert page(server, path, cookie)[0] == 200
    server.admin("delete-access-key", user["AccessKeyId"])
    deadline = time.monotonic() + 5  # the server hears of it with its next change poll
    while True:
        status, location, _ = page(server, path, cookie)
        if status != 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert (status, location) == (303, "/console/sign-in")


def test_the_audit_page_filters_parameter_store_events(server: Any) -> None:
    """The event source list offered kms and sts only, so Parameter Store's events (the SSM
    calls) could not be chosen in the page."""
    cookie = sign_in(server, server.access_key_id, server.secret_access_key)
    ssm = boto3.client(
        "ssm",
        endpoint_url=server.endpoint,
        region_name="us-east-1",
        aws_access_key_id=server.access_key_id,
        aws_secret_access_key=server.secret_access_key,
    )
    name = f"/console/{uuid.uuid4().hex[:8]}"
    ssm.put_parameter(Name=name, Value="not shown", Type="SecureString")
    status, _, body = page(server, "/console/audit?source=ssm.amazonaws.com", cookie)
    assert status == 200
    assert "<option selected>ssm.amazonaws.com</option>" in body
    assert "PutParameter" in body
    assert "not shown" not in body


def test_the_account_root_sees_the_operators_admin_changes_to_its_account(server: Any) -> None:
    """An admin command's event names no principal of the account (its caller is the operator,
    USER@HOST; the account is its recipientAccountId), so the root's audit page left it out,
    and the event source list could not choose IAM's or the admin commands'."""
    root = server.admin("create-access-key", f"arn:aws:iam::{ACCOUNT}:root")
    key = json.loads(root.stdout)
    cookie = sign_in(server, key["AccessKeyId"], key["SecretAccessKey"])
    name = f"audited-{uuid.uuid4().hex[:8]}"
    server.admin("create-user", name)
    status, _, body = page(server, "/console/audit?source=iam.amazonaws.com", cookie)
    assert status == 200
    assert "<option selected>iam.amazonaws.com</option>" in body
    row = next((r for r in body.split("<tr>") if name in r and ">CreateUser<" in r), None)
    assert row is not None, body
    user = f"{pwd.getpwuid(os.geteuid()).pw_name}@{socket.gethostname()}"
    assert f'<td class="event-principal">{user}</td>' in row
