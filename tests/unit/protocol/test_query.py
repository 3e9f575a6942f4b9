"""STS's query protocol: form bodies in, XML out that botocore's own query parser reads."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from xml.etree import ElementTree

import botocore.session
import pytest
from botocore.parsers import QueryParser

from strongroom.domain.errors import (
    AccessDeniedException,
    ExpiredTokenException,
    KMSInternalException,
    SerializationException,
    UnrecognizedClientException,
    ValidationException,
)
from strongroom.protocol.query import decode_form, encode_error, encode_result, is_query_request

pytestmark = pytest.mark.unit

MODEL = botocore.session.get_session().get_service_model("sts")


def _parse(body: bytes, status: int, operation: str = "AssumeRole") -> dict[str, Any]:
    shape = MODEL.operation_model(operation).output_shape
    response = {"body": body, "status_code": status, "headers": {}}
    parsed: dict[str, Any] = QueryParser().parse(response, shape)
    return parsed


def test_assume_role_result_reads_back_through_botocore() -> None:
    expiration = datetime(2026, 5, 4, 3, 2, 1, tzinfo=UTC)
    result = {
        "Credentials": {
            "AccessKeyId": "ASIAEXAMPLEEXAMPLE00",
            "SecretAccessKey": "s/e+c<r>e&t",
            "SessionToken": "to+ken==",
            "Expiration": expiration,
        },
        "AssumedRoleUser": {"AssumedRoleId": "AROAEXAMPLE:web", "Arn": "arn:aws:sts::1:x"},
    }
    parsed = _parse(encode_result("AssumeRole", result, "req-1"), 200)
    assert parsed["Credentials"] == result["Credentials"]
    assert parsed["AssumedRoleUser"] == result["AssumedRoleUser"]
    assert parsed["ResponseMetadata"]["RequestId"] == "req-1"


@pytest.mark.parametrize(
    ("error", "code", "status"),
    [
        (AccessDeniedException("User: a & b"), "AccessDenied", 403),
        (ValidationException("bad <value>"), "ValidationError", 400),
        (UnrecognizedClientException("invalid"), "InvalidClientTokenId", 403),
        (ExpiredTokenException("expired"), "ExpiredToken", 403),
        (SerializationException("not a form"), "MalformedQueryString", 404),
        (KMSInternalException("oops"), "InternalFailure", 500),
    ],
)
def test_errors_carry_the_query_protocol_code_and_status(
    error: Any, code: str, status: int
) -> None:
    body, got_status = encode_error(error, "req-2")
    assert got_status == status
    parsed = _parse(body, status)
    assert parsed["Error"]["Code"] == code
    assert parsed["Error"]["Message"] == error.message
    assert parsed["ResponseMetadata"]["RequestId"] == "req-2"


def test_form_body_is_decoded_with_plus_and_percent_escapes() -> None:
    body = b"Action=AssumeRole&Version=2011-06-15&RoleSessionName=a%2Bb+c&ExternalId="
    assert decode_form(body) == {
        "Action": "AssumeRole",
        "Version": "2011-06-15",
        "RoleSessionName": "a+b c",
        "ExternalId": "",
    }
    assert decode_form(b"") == {}
    with pytest.raises(SerializationException):
        decode_form(b"\xff\xfe")
    with pytest.raises(SerializationException):
        decode_form(b"no-equals-sign")


def test_query_requests_are_told_apart_by_content_type() -> None:
    form = [(b"host", b"h"), (b"content-type", b"application/x-www-form-urlencoded; charset=utf-8")]
    assert is_query_request(form)
    assert not is_query_request([(b"content-type", b"application/x-amz-json-1.1")])
    assert not is_query_request([(b"host", b"h")])


def test_get_caller_identity_result_has_the_shape_of_aws_example() -> None:
    # STS API reference, "GetCallerIdentity", Example 1 (a user named Alice):
    # <GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
    # <GetCallerIdentityResult><Arn>..</Arn><UserId>AIDA..</UserId><Account>..</Account>
    # </GetCallerIdentityResult><ResponseMetadata><RequestId>..</RequestId>
    # </ResponseMetadata></GetCallerIdentityResponse>
    result = {
        "UserId": "AIDACKCEVSQ6C2EXAMPLE",
        "Account": "123456789012",
        "Arn": "arn:aws:iam::123456789012:user/Alice",
    }
    body = encode_result("GetCallerIdentity", result, "req-2")
    ns = "{https://sts.amazonaws.com/doc/2011-06-15/}"
    root = ElementTree.fromstring(body)
    assert root.tag == f"{ns}GetCallerIdentityResponse"
    assert [child.tag for child in root] == [
        f"{ns}GetCallerIdentityResult",
        f"{ns}ResponseMetadata",
    ]
    members = {child.tag.removeprefix(ns): child.text for child in root[0]}
    assert members == result
    assert root.findtext(f"{ns}ResponseMetadata/{ns}RequestId") == "req-2"
    parsed = _parse(body, 200, "GetCallerIdentity")
    assert {k: parsed[k] for k in result} == result
