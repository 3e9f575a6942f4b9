"""Helpers shared by the compat tests: AWS error assertions and unique names."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

ACCOUNT = "111122223333"
REGION = "us-east-1"
OTHER_REGION = "eu-west-1"

# The four ways a request can name a key (AWS KMS Developer Guide, "Key identifiers").
FORMS = ("key id", "key ARN", "alias name", "alias ARN")
# Operations whose KeyId accepts only a key id or a key ARN.
KEY_ONLY_FORMS = ("key id", "key ARN")


def assert_kms_error(
    code: str, call: Callable[..., Any], /, *, message: str | None = None, **kwargs: Any
) -> dict[str, Any]:
    """Run ``call(**kwargs)``; assert it fails with AWS error ``code`` (and exact ``message``).

    Returns the whole error response, ResponseMetadata included."""
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    response: dict[str, Any] = info.value.response
    error = response["Error"]
    assert error["Code"] == code, error
    if message is not None:
        assert error["Message"] == message, error
    return response


def unique_alias(prefix: str = "t") -> str:
    return f"alias/{prefix}-{uuid.uuid4().hex[:12]}"


def key_forms(key: dict[str, Any], alias_name: str) -> dict[str, str]:
    """The four identifiers of ``key`` (its KeyMetadata), given one of its alias names."""
    arn = key["Arn"]
    alias_arn = arn.rsplit(":", 1)[0] + ":" + alias_name
    return {
        "key id": key["KeyId"],
        "key ARN": arn,
        "alias name": alias_name,
        "alias ARN": alias_arn,
    }


def make_client(
    endpoint: str,
    access_key_id: str,
    secret_access_key: str,
    region: str = REGION,
    *,
    validate: bool = True,
) -> Any:
    """A boto3 KMS client with explicit credentials and no retries; ``validate=False`` turns
    off botocore's own parameter checks so out-of-range values reach the server."""
    return boto3.client(
        "kms",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        config=Config(retries={"max_attempts": 0}, parameter_validation=validate),
    )
