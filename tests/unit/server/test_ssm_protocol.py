"""The SSM wire protocol (server.protocols.SsmJson): routing on AmazonSSM.<Operation>, the
SSM model's validation, and SSM's name for an internal error."""

from __future__ import annotations

import json

import pytest

from strongroom.domain.errors import (
    KMSInternalException,
    UnknownOperationException,
    UnsupportedOperationException,
    ValidationException,
)
from strongroom.protocol.model import load_ssm_model
from strongroom.server.app import _SSM_TARGET, _target
from strongroom.server.protocols import JSON_CONTENT_TYPE, SsmJson

pytestmark = pytest.mark.unit

FIELDS = {"x-amz-target": "AmazonSSM.GetParameter", "content-type": JSON_CONTENT_TYPE}


def test_requests_naming_amazon_ssm_go_to_ssm() -> None:
    ssm = _target([(b"host", b"h"), (b"x-amz-target", b"AmazonSSM.PutParameter")])
    assert ssm is not None and ssm.startswith(_SSM_TARGET)
    kms = _target([(b"x-amz-target", b"TrentService.Encrypt")])
    assert kms is not None and not kms.startswith(_SSM_TARGET)
    assert _target([(b"content-type", b"application/x-www-form-urlencoded")]) is None


def test_decode_validates_with_the_ssm_model() -> None:
    wire = SsmJson(load_ssm_model())
    assert wire.header_operation(FIELDS) == "GetParameter"
    route, params = wire.decode("GetParameter", FIELDS, b'{"Name": "/a", "WithDecryption": true}')
    assert params == {"Name": "/a", "WithDecryption": True} and not route.on_loop
    with pytest.raises(ValidationException, match="at 'name'"):
        wire.decode("GetParameter", FIELDS, json.dumps({"Name": ""}).encode())
    with pytest.raises(UnsupportedOperationException):
        wire.decode("SendCommand", FIELDS, b"{}")
    with pytest.raises(UnknownOperationException):
        wire.decode("NoSuchOperation", FIELDS, b"{}")
    with pytest.raises(UnknownOperationException):
        wire.decode("GetParameter", {**FIELDS, "content-type": "text/plain"}, b"{}")


def test_an_internal_error_is_ssm_internal_server_error() -> None:
    wire = SsmJson(load_ssm_model())
    body, status, headers = wire.encode_error(KMSInternalException("Request id: r"), "r")
    assert status == 500 and json.loads(body)["__type"] == "InternalServerError"
    assert headers == [(b"x-amzn-errortype", b"InternalServerError")]
    assert wire.error_code(KMSInternalException()) == "InternalServerError"
    assert wire.error_code(ValidationException()) == "ValidationException"
