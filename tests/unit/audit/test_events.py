"""Audit events keep what identifies a request and drop every secret, at any depth."""

from __future__ import annotations

import pytest

from strongroom.audit.events import scrub

pytestmark = pytest.mark.unit


def test_top_level_secrets_and_blobs_are_dropped() -> None:
    out = scrub({"KeyId": "k", "Plaintext": b"p", "Message": "m", "DryRun": True})
    assert out == {"keyId": "k", "dryRun": True}


def test_grant_tokens_are_dropped_from_requests_and_responses() -> None:
    request = {"KeyId": "k", "GrantTokens": ["AQID"], "GrantToken": "AQID", "GrantId": "g"}
    assert scrub(request) == {"keyId": "k", "grantId": "g"}
    assert scrub({"GrantToken": "AQID", "GrantId": "g"}) == {"grantId": "g"}


def test_shared_secrets_and_their_encapsulation_are_dropped_even_as_text() -> None:
    out = scrub(
        {
            "KeyId": "k",
            "SharedSecret": "c2VjcmV0",
            "SharedSecretCiphertextBlob": "Y2lwaGVydGV4dA==",
            "EncapsulationAlgorithm": "ML_KEM",
        }
    )
    assert out == {"keyId": "k", "encapsulationAlgorithm": "ML_KEM"}


def test_nested_blobs_are_dropped() -> None:
    out = scrub(
        {
            "KeyId": "k",
            "Recipient": {
                "KeyEncryptionAlgorithm": "RSAES_OAEP_SHA_256",
                "AttestationDocument": b"\x00doc",
            },
        }
    )
    assert out == {"keyId": "k", "recipient": {"KeyEncryptionAlgorithm": "RSAES_OAEP_SHA_256"}}


def test_encryption_context_keys_keep_their_case() -> None:
    out = scrub({"EncryptionContext": {"Purpose": "Test", "tenant": "a"}})
    assert out == {"encryptionContext": {"Purpose": "Test", "tenant": "a"}}


def test_blobs_inside_lists_are_dropped() -> None:
    assert scrub({"Items": [b"x", "y", {"Blob": b"z", "Name": "n"}]}) == {
        "items": ["y", {"Name": "n"}]
    }


def test_empty_is_none() -> None:
    assert scrub({"Plaintext": b"x"}) is None
    assert scrub(None) is None


def test_custom_key_store_passwords_are_dropped() -> None:
    # CloudTrail records CreateCustomKeyStore and UpdateCustomKeyStore without the password.
    request = {"CustomKeyStoreName": "s", "KeyStorePassword": "kmsuser-pin"}
    assert scrub(request) == {"customKeyStoreName": "s"}
    xks = {"XksProxyAuthenticationCredential": {"AccessKeyId": "a", "RawSecretAccessKey": "r"}}
    assert scrub({"CustomKeyStoreId": "cks-1", **xks}) == {"customKeyStoreId": "cks-1"}


def test_ssm_events_hide_values_and_leave_out_what_reads_return() -> None:
    from datetime import UTC, datetime

    from strongroom.audit.events import SSM_EVENT_SOURCE, build_event

    def event(
        name: str, request: dict[str, object], response: dict[str, object]
    ) -> dict[str, object]:
        return build_event(
            event_time=datetime.now(UTC),
            event_name=name,
            region="us-east-1",
            request_id="r",
            source_ip="127.0.0.1",
            user_agent="ua",
            user_identity=None,
            request_parameters=request,
            response_elements=response,
            resources=["arn:aws:ssm:us-east-1:111122223333:parameter/a"],
            error_code=None,
            error_message=None,
            event_source=SSM_EVENT_SOURCE,
        )

    request = {"Name": "/a", "Value": "secret", "Tags": [{"Key": "k", "Value": "v"}]}
    put = event("PutParameter", request, {"Version": 1})
    assert put["requestParameters"] == {
        "name": "/a",
        "value": "HIDDEN_DUE_TO_SECURITY_REASONS",
        "tags": [{"Key": "k", "Value": "v"}],
    }
    assert put["responseElements"] == {"version": 1}
    assert put["resources"] == [
        {
            "accountId": "111122223333",
            "type": "AWS::SSM::Parameter",
            "ARN": "arn:aws:ssm:us-east-1:111122223333:parameter/a",
        }
    ]
    got = event(
        "GetParameter", {"Name": "/a", "WithDecryption": True}, {"Parameter": {"Value": "secret"}}
    )
    assert got["responseElements"] is None and "secret" not in str(got)
