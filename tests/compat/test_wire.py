"""The wire protocol, raw: AWS JSON 1.1 over HTTP, signed with botocore's SigV4Auth."""

from __future__ import annotations

import base64
import http.client
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import botocore.auth
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from ._support import REGION, assert_kms_error

pytestmark = pytest.mark.compat

JSON_11 = "application/x-amz-json-1.1"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def error_type(self) -> str | None:
        return self.headers.get("x-amzn-errortype")


def _send(server: Any, headers: dict[str, str], body: bytes) -> Reply:
    url = urlsplit(server.endpoint)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        conn.request("POST", "/", body=body, headers=headers)
        response = conn.getresponse()
        return Reply(
            response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        )
    finally:
        conn.close()


def call(
    server: Any,
    target: str,
    body: bytes | dict[str, Any] = b"{}",
    *,
    sign: bool = True,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    region: str = REGION,
    content_type: str | None = JSON_11,
) -> Reply:
    """POST one request; signed with the admin key unless told otherwise (no Content-Type
    header when ``content_type`` is None)."""
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    headers = {"X-Amz-Target": target}
    if content_type is not None:
        headers["Content-Type"] = content_type
    if sign:
        request = AWSRequest(method="POST", url=server.endpoint + "/", data=data, headers=headers)
        credentials = Credentials(
            access_key_id or server.access_key_id, secret_access_key or server.secret_access_key
        )
        SigV4Auth(credentials, "kms", region).add_auth(request)
        headers = dict(request.headers.items())
    return _send(server, headers, data)


def assert_error(reply: Reply, code: str, status: int | None = 400) -> str:
    """The reply is AWS error ``code``: header and JSON body agree; returns the message."""
    if status is not None:
        assert reply.status == status, (reply.status, reply.body)
    else:
        assert 400 <= reply.status < 500, (reply.status, reply.body)
    assert reply.error_type == code, (reply.headers, reply.body)
    body = reply.json
    # An error without text has no `message` member at all (see test_error_without_text_*).
    assert set(body) in ({"__type", "message"}, {"__type"}), body
    assert body["__type"] == code
    assert body.get("message", "x") and isinstance(body.get("message", ""), str), body
    assert reply.headers.get("x-amzn-requestid"), reply.headers
    return str(body.get("message", ""))


# -- protocol errors --------------------------------------------------------------------


@pytest.mark.parametrize(
    "body", [b"{not json", b'{"NumberOfBytes": 3', b"\xff\xfe", b"[1, 2]", b'"text"']
)
def test_malformed_json_fails_with_serialization_exception(server: Any, body: bytes) -> None:
    assert_error(call(server, "TrentService.GenerateRandom", body), "SerializationException")


def test_member_of_wrong_json_type_fails_with_serialization_exception(server: Any) -> None:
    reply = call(server, "TrentService.GenerateRandom", {"NumberOfBytes": "32"})
    assert_error(reply, "SerializationException")


def test_blob_that_is_not_base64_fails_with_serialization_exception(server: Any) -> None:
    reply = call(server, "TrentService.Decrypt", {"CiphertextBlob": "@@not base64@@"})
    assert_error(reply, "SerializationException")


@pytest.mark.parametrize(
    "target", ["TrentService.NoSuchOperation", "TrentService.", "OtherService.Encrypt", ""]
)
def test_unknown_target_fails_with_unknown_operation(server: Any, target: str) -> None:
    assert_error(call(server, target), "UnknownOperationException")


def test_vpc_endpoint_service_connectivity_fails_with_unsupported_operation_naming_it(
    server: Any,
) -> None:
    # What this server cannot do says so: it has no Amazon VPC to reach a proxy through.
    reply = call(
        server,
        "TrentService.CreateCustomKeyStore",
        {
            "CustomKeyStoreName": "xks",
            "CustomKeyStoreType": "EXTERNAL_KEY_STORE",
            "XksProxyConnectivity": "VPC_ENDPOINT_SERVICE",
        },
    )
    message = assert_error(reply, "UnsupportedOperationException")
    assert "VPC_ENDPOINT_SERVICE" in message and "PUBLIC_ENDPOINT" in message


def test_validation_error_uses_aws_wording(server: Any) -> None:
    reply = call(server, "TrentService.GenerateRandom", {"NumberOfBytes": 1025})
    message = assert_error(reply, "ValidationException")
    assert message == (
        "1 validation error detected: Value '1025' at 'numberOfBytes' failed to satisfy "
        "constraint: Member must have value less than or equal to 1024"
    )


def test_several_validation_errors_are_reported_together(server: Any) -> None:
    reply = call(
        server,
        "TrentService.GenerateDataKey",
        {"KeyId": "alias/x", "NumberOfBytes": 0, "KeySpec": "AES_1"},
    )
    message = assert_error(reply, "ValidationException")
    assert message.startswith("2 validation errors detected: ")
    assert "'numberOfBytes'" in message and "'keySpec'" in message


def test_missing_required_member_fails_with_validation(server: Any) -> None:
    message = assert_error(
        call(server, "TrentService.Encrypt", {"Plaintext": "eA=="}), "ValidationException"
    )
    assert "Value null at 'keyId' failed to satisfy constraint: Member must not be null" in message


def test_unknown_members_are_ignored(server: Any) -> None:
    reply = call(server, "TrentService.GenerateRandom", {"NumberOfBytes": 8, "Whatever": [1, 2]})
    assert reply.status == 200
    assert len(reply.json["Plaintext"]) == 12  # 8 bytes in base64


# -- successful replies -----------------------------------------------------------------


def test_success_reply_is_json_with_a_request_id(server: Any) -> None:
    reply = call(server, "TrentService.GenerateRandom", {"NumberOfBytes": 16})
    assert reply.status == 200
    assert reply.headers["content-type"] == JSON_11
    assert reply.headers["x-amzn-requestid"]
    assert "x-amzn-errortype" not in reply.headers
    assert set(reply.json) == {"Plaintext"}


def test_every_reply_has_its_own_request_id(server: Any) -> None:
    replies = [
        call(server, "TrentService.GenerateRandom", {"NumberOfBytes": 4}),
        call(server, "TrentService.ListKeys", {}),
        call(server, "TrentService.DescribeKey", {"KeyId": "nope"}),
        call(server, "TrentService.Nope"),
        call(server, "TrentService.Sign"),
        call(server, "TrentService.GenerateRandom", b"{"),
        call(server, "TrentService.ListKeys", sign=False),
        call(server, "TrentService.ListKeys", secret_access_key="wrong" * 8),
    ]
    ids = [r.headers.get("x-amzn-requestid") for r in replies]
    assert all(ids), ids
    assert len(set(ids)) == len(ids)


def test_timestamps_are_epoch_seconds(server: Any) -> None:
    reply = call(server, "TrentService.CreateKey", {"Description": "wire"})
    meta = reply.json["KeyMetadata"]
    assert isinstance(meta["CreationDate"], int | float)
    assert abs(meta["CreationDate"] - datetime.now(UTC).timestamp()) < 300


def test_error_reply_has_header_and_json_body(server: Any) -> None:
    reply = call(
        server, "TrentService.DescribeKey", {"KeyId": "11111111-2222-3333-4444-555555555555"}
    )
    message = assert_error(reply, "NotFoundException")
    assert "does not exist" in message
    assert reply.headers["content-type"] == JSON_11


# -- authentication ---------------------------------------------------------------------


def test_request_without_authorization_fails_with_missing_authentication_token(server: Any) -> None:
    reply = call(server, "TrentService.ListKeys", sign=False)
    assert_error(reply, "MissingAuthenticationTokenException", status=None)


def test_request_with_bad_signature_fails_with_invalid_signature(server: Any) -> None:
    reply = call(server, "TrentService.ListKeys", secret_access_key="x" * 40)
    message = assert_error(reply, "InvalidSignatureException", status=None)
    assert message.startswith(
        "The request signature we calculated does not match the signature you provided."
    )


def test_request_with_body_changed_after_signing_fails_with_invalid_signature(server: Any) -> None:
    request = AWSRequest(
        method="POST",
        url=server.endpoint + "/",
        data=b'{"NumberOfBytes": 8}',
        headers={"Content-Type": JSON_11, "X-Amz-Target": "TrentService.GenerateRandom"},
    )
    SigV4Auth(Credentials(server.access_key_id, server.secret_access_key), "kms", REGION).add_auth(
        request
    )
    reply = _send(server, dict(request.headers.items()), b'{"NumberOfBytes": 9}')
    assert_error(reply, "InvalidSignatureException", status=None)


def test_request_with_target_changed_after_signing_fails_with_invalid_signature(
    server: Any,
) -> None:
    request = AWSRequest(
        method="POST",
        url=server.endpoint + "/",
        data=b"{}",
        headers={"Content-Type": JSON_11, "X-Amz-Target": "TrentService.ListKeys"},
    )
    SigV4Auth(Credentials(server.access_key_id, server.secret_access_key), "kms", REGION).add_auth(
        request
    )
    headers = dict(request.headers.items())
    headers["X-Amz-Target"] = "TrentService.CreateKey"
    assert_error(_send(server, headers, b"{}"), "InvalidSignatureException", status=None)


def test_request_signed_10_minutes_ago_fails_with_signature_expired(
    server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    past = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=10)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: past)
    reply = call(server, "TrentService.ListKeys")
    message = assert_error(reply, "InvalidSignatureException", status=None)
    assert "Signature expired" in message


def test_request_signed_10_minutes_ahead_fails(
    server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    future = datetime.now(UTC).replace(tzinfo=None) + timedelta(minutes=10)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: future)
    message = assert_error(
        call(server, "TrentService.ListKeys"), "InvalidSignatureException", status=None
    )
    assert "Signature not yet current" in message


def test_request_signed_4_minutes_ago_is_accepted(
    server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    past = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=4)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: past)
    assert call(server, "TrentService.ListKeys").status == 200


def test_request_with_unknown_access_key_fails_with_unrecognized_client(server: Any) -> None:
    reply = call(
        server,
        "TrentService.ListKeys",
        access_key_id="AKIAUNKNOWNUNKNOWN00",
        secret_access_key="s" * 40,
    )
    message = assert_error(reply, "UnrecognizedClientException", status=None)
    assert message == "The security token included in the request is invalid."


def test_request_signed_for_another_service_fails(server: Any) -> None:
    request = AWSRequest(
        method="POST",
        url=server.endpoint + "/",
        data=b"{}",
        headers={"Content-Type": JSON_11, "X-Amz-Target": "TrentService.ListKeys"},
    )
    SigV4Auth(Credentials(server.access_key_id, server.secret_access_key), "s3", REGION).add_auth(
        request
    )
    assert_error(
        _send(server, dict(request.headers.items()), b"{}"),
        "InvalidSignatureException",
        status=None,
    )


def test_signed_region_chooses_the_region_of_keys(server: Any) -> None:
    reply = call(server, "TrentService.CreateKey", {}, region="ap-southeast-2")
    assert reply.status == 200
    assert reply.json["KeyMetadata"]["Arn"].startswith("arn:aws:kms:ap-southeast-2:")


@pytest.mark.parametrize(("method", "path"), [("GET", "/"), ("POST", "/other")])
def test_replies_outside_the_kms_path_have_a_request_id(
    server: Any, method: str, path: str
) -> None:
    url = urlsplit(server.endpoint)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        conn.request(
            method,
            path,
            body=b"{}" if method == "POST" else None,
            headers={"Content-Type": JSON_11, "X-Amz-Target": "TrentService.ListKeys"},
        )
        response = conn.getresponse()
        response.read()
        assert response.getheader("x-amzn-RequestId")
    finally:
        conn.close()


# -- errors without text ------------------------------------------------------------------
# AWS leaves the `message` member out of an error that has no text. Source: LocalStack's
# snapshots recorded against real AWS (localstack tests/aws/services/kms/
# test_kms.snapshot.json): botocore adds the body's modeled `message` member to the error
# response, and the recordings of Verify with a bad signature ("bad-signature"), VerifyMac
# with another message and Decrypt with a wrong encryption context have only
# `Error: {Code, Message: ""}` and no top-level `message`, where errors with text (e.g.
# "response-invalid-key-usage" of DeriveSharedSecret) carry both.


def test_error_without_text_has_no_message_member(server: Any, kms: Any) -> None:
    key = kms.create_key()["KeyMetadata"]
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x", EncryptionContext={"a": "b"})[
        "CiphertextBlob"
    ]
    reply = call(
        server, "TrentService.Decrypt", {"CiphertextBlob": base64.b64encode(blob).decode()}
    )
    assert_error(reply, "InvalidCiphertextException")
    assert reply.json == {"__type": "InvalidCiphertextException"}


def test_boto3_sees_an_empty_message_and_no_modeled_message(kms: Any, key_of: Any) -> None:
    key = key_of("ECC_NIST_P256", "SIGN_VERIFY")
    signed = kms.sign(KeyId=key["KeyId"], Message=b"m", SigningAlgorithm="ECDSA_SHA_256")[
        "Signature"
    ]
    response = assert_kms_error(
        "KMSInvalidSignatureException",
        kms.verify,
        KeyId=key["KeyId"],
        Message=b"other",
        Signature=signed,
        SigningAlgorithm="ECDSA_SHA_256",
        message="",
    )
    assert "message" not in response
    hmac_key = key_of("HMAC_256", "GENERATE_VERIFY_MAC")
    mac = kms.generate_mac(KeyId=hmac_key["KeyId"], Message=b"m", MacAlgorithm="HMAC_SHA_256")
    response = assert_kms_error(
        "KMSInvalidMacException",
        kms.verify_mac,
        KeyId=hmac_key["KeyId"],
        Message=b"other",
        Mac=mac["Mac"],
        MacAlgorithm="HMAC_SHA_256",
        message="",
    )
    assert "message" not in response


# -- Content-Type -------------------------------------------------------------------------
# KMS speaks AWS JSON 1.1 only: `Content-Type: application/x-amz-json-1.1` (Smithy's
# awsJson1_1 protocol; botocore's JSON serializer). AWS's own front end (Coral) answers a
# POST whose Content-Type it does not take for the service's protocol with HTTP 404 and
# `<UnknownOperationException/>`: recorded against real AWS in dynalite's test/connection.js
# ("should return 404 if body but no content-type" / "... incorrect content-type") and
# kinesalite's test/connection.js (Kinesis, an AWS JSON 1.1 service like KMS: a signed
# ListStreams with no, `application/x-amz-json-1.0` or another Content-Type gets
# `<UnknownOperationException/>` 404; `application/json` gets the deprecated JSON-RPC 1.0
# envelope, not a JSON 1.1 reply). Strongroom keeps AWS's code and status but writes the
# error as AWS JSON 1.1, which every KMS client parses (an XML body is not).


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "",
        "application/json",
        "application/x-amz-json-1.0",
        "text/plain",
        "application/x-www-form-urlencoded",  # what curl -d sends: still KMS's error
    ],
)
def test_wrong_or_missing_content_type_fails_with_json_unknown_operation(
    server: Any, content_type: str | None
) -> None:
    reply = call(server, "TrentService.ListKeys", content_type=content_type)
    message = assert_error(reply, "UnknownOperationException", status=404)
    assert "application/x-amz-json-1.1" in message
    assert reply.headers["content-type"] == JSON_11


def test_content_type_parameters_and_case_are_accepted(server: Any) -> None:
    for content_type in ("application/x-amz-json-1.1; charset=utf-8", "Application/X-Amz-Json-1.1"):
        assert call(server, "TrentService.ListKeys", content_type=content_type).status == 200


def test_botocore_parses_the_wrong_content_type_error(server: Any) -> None:
    client = server.client()

    def wrong_content_type(request: Any, **_: Any) -> None:
        request.headers.replace_header("Content-Type", "text/plain")

    client.meta.events.register_first("before-sign.kms.ListKeys", wrong_content_type)
    response = assert_kms_error("UnknownOperationException", client.list_keys)
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert "application/x-amz-json-1.1" in response["Error"]["Message"]
