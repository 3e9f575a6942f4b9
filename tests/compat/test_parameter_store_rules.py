"""Parameter Store input rules and permissions found in review, through boto3 against a
real server: an empty value, the name length counted with the ARN before it, the reserved
prefix named in the error, tags on create needing ssm:AddTagsToResource, and an
AllowedPattern that would take exponential time refused instead of freezing a worker."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config

from conftest import start_server, stop_server

from ._support import REGION, assert_kms_error, new_principal

pytestmark = pytest.mark.compat

KMS_AND_SSM = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["kms:*", "ssm:*"], "Resource": "*"}],
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    started = start_server(tmp_path_factory.mktemp("ssm-rules") / "data")
    yield started
    stop_server(started)


def _user(server: Any, policy: dict[str, Any]) -> dict[str, Any]:
    account = "7" + "".join(random.choices("0123456789", k=11))
    server.admin("create-account", account)
    user = new_principal(server, "rules", account=account, policy=policy)
    user["ssm"] = boto3.client(
        "ssm",
        endpoint_url=server.endpoint,
        region_name=REGION,
        aws_access_key_id=user["AccessKeyId"],
        aws_secret_access_key=user["SecretAccessKey"],
        config=Config(retries={"max_attempts": 0}, read_timeout=60),
    )
    return user


@pytest.fixture(scope="module")
def user(server: Any) -> dict[str, Any]:
    return _user(server, KMS_AND_SSM)


def _name() -> str:
    return f"/r/{uuid.uuid4().hex[:10]}"


def test_an_empty_value_is_refused(user: dict[str, Any]) -> None:
    ssm, name = user["ssm"], _name()
    for kind in ("String", "SecureString"):
        assert_kms_error(
            "ValidationException",
            ssm.put_parameter,
            Name=name,
            Value="",
            Type=kind,
            message="1 validation error detected: Value at 'value' failed to satisfy "
            "constraint: Member must have length greater than or equal to 1.",
        )
    assert_kms_error("ParameterNotFound", ssm.get_parameter, Name=name)


def test_the_name_length_counts_the_arn_before_it(user: dict[str, Any]) -> None:
    ssm = user["ssm"]
    prefix = f"arn:aws:ssm:{REGION}:{user['account']}:parameter/"
    room = 1011 - len(prefix)
    longest = "/" + "n" * room  # the ARN is prefix + the name less its '/': 1011 in all
    ssm.put_parameter(Name=longest, Value="v", Type="String")
    assert ssm.get_parameter(Name=longest)["Parameter"]["ARN"] == prefix + "n" * room
    too_long = "/" + "m" * (room + 1)
    response = assert_kms_error(
        "ValidationException", ssm.put_parameter, Name=too_long, Value="v", Type="String"
    )
    assert "1011" in response["Error"]["Message"]
    assert_kms_error("ParameterNotFound", ssm.get_parameter, Name=too_long)


def test_the_reserved_prefix_is_named(user: dict[str, Any]) -> None:
    for name, reserved in (("/SSM/x", "ssm"), ("awsome", "aws")):
        response = assert_kms_error(
            "ValidationException", user["ssm"].put_parameter, Name=name, Value="v", Type="String"
        )
        assert (
            f'can\'t be prefixed with "{reserved}" (case-insensitive)'
            in (response["Error"]["Message"])
        )


def test_tags_on_create_need_add_tags_to_resource(server: Any) -> None:
    untagging = _user(
        server,
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["ssm:PutParameter", "ssm:GetParameter", "ssm:ListTagsForResource"],
                    "Resource": "*",
                }
            ],
        },
    )
    ssm, name = untagging["ssm"], _name()
    tags = [{"Key": "team", "Value": "blue"}]
    response = assert_kms_error(
        "AccessDeniedException", ssm.put_parameter, Name=name, Value="v", Type="String", Tags=tags
    )
    assert "ssm:AddTagsToResource" in response["Error"]["Message"]
    assert_kms_error("ParameterNotFound", ssm.get_parameter, Name=name)
    ssm.put_parameter(Name=name, Value="v", Type="String")  # untagged: allowed
    assert ssm.get_parameter(Name=name)["Parameter"]["Version"] == 1


def test_a_pattern_with_exponential_backtracking_is_refused_not_run_forever(
    user: dict[str, Any],
) -> None:
    ssm, name = user["ssm"], _name()
    started = time.monotonic()
    response = assert_kms_error(
        "InvalidAllowedPatternException",
        ssm.put_parameter,
        Name=name,
        Value="a" * 4000 + "!",
        Type="String",
        AllowedPattern="(a|aa)+",
    )
    assert "took more than" in response["Error"]["Message"]
    assert time.monotonic() - started < 20
    assert_kms_error("ParameterNotFound", ssm.get_parameter, Name=name)
    # An ordinary pattern still works both ways.
    ssm.put_parameter(Name=name, Value="abc", Type="String", AllowedPattern="^[a-z]+$")
    assert_kms_error(
        "ParameterPatternMismatchException",
        ssm.put_parameter,
        Name=name,
        Value="ABC",
        Type="String",
        Overwrite=True,
    )


def test_an_arn_of_another_region_or_account_names_no_parameter_of_the_callers(
    user: dict[str, Any],
) -> None:
    """Such an ARN, split at ':' like a name, named the caller's parameter "arn": reads
    answered about it and AddTagsToResource tagged it."""
    ssm = user["ssm"]
    ssm.put_parameter(Name="arn", Value="mine", Type="String")
    ssm.put_parameter(Name="/other/x", Value="mine too", Type="String")
    foreign = [
        f"arn:aws:ssm:eu-west-1:{user['account']}:parameter/other/x",
        "arn:aws:ssm:us-east-1:999999999999:parameter/other/x",
        f"arn:aws:ssm:eu-west-1:{user['account']}:parameter/arn",
    ]
    for arn in foreign:
        response = assert_kms_error("ParameterNotFound", ssm.get_parameter, Name=arn)
        assert arn in response["Error"]["Message"]
        assert_kms_error(
            "InvalidResourceId",
            ssm.add_tags_to_resource,
            ResourceType="Parameter",
            ResourceId=arn,
            Tags=[{"Key": "k", "Value": "v"}],
        )
    assert ssm.get_parameters(Names=foreign)["InvalidParameters"] == foreign
    for name in ("arn", "/other/x"):
        listed = ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=name)
        assert listed["TagList"] == []


def test_a_deny_on_ssm_overwrite_lets_a_principal_create_but_not_change(server: Any) -> None:
    """The policy of AWS's "Preventing changes to existing parameters using ssm:Overwrite":
    the condition key was never in the context, so the Deny never applied."""
    creator = _user(
        server,
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["ssm:PutParameter", "ssm:GetParameter"],
                    "Resource": "*",
                },
                {
                    "Effect": "Deny",
                    "Action": "ssm:PutParameter",
                    "Resource": "*",
                    "Condition": {"StringEquals": {"ssm:Overwrite": ["true"]}},
                },
            ],
        },
    )
    ssm, name = creator["ssm"], _name()
    ssm.put_parameter(Name=name, Value="first", Type="String")
    response = assert_kms_error(
        "AccessDeniedException",
        ssm.put_parameter,
        Name=name,
        Value="second",
        Type="String",
        Overwrite=True,
    )
    assert "ssm:PutParameter" in response["Error"]["Message"]
    assert ssm.get_parameter(Name=name)["Parameter"]["Value"] == "first"
