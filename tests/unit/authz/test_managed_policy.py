"""The key policy of an AWS managed key: AWS's text and layout, and what it lets whom do."""

from __future__ import annotations

import json

import pytest

from strongroom.authz.evaluate import AuthzRequest, Reason, RequestPrincipal, evaluate
from strongroom.authz.managed_policy import aws_managed_key_policy
from strongroom.authz.policy import Policy, PolicyKind, parse_policy
from strongroom.domain.managed import MANAGED_SERVICES, ROTATION_PERIOD_DAYS, managed_service

pytestmark = pytest.mark.unit

ACCOUNT, REGION = "111122223333", "us-west-2"
KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
USER = f"arn:aws:iam::{ACCOUNT}:user/alice"
OUTSIDER = "arn:aws:iam::444455556666:user/bob"
ALL_KMS = parse_policy(
    json.dumps({"Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}),
    PolicyKind.IDENTITY,
)


def _policy(alias: str) -> Policy:
    service = MANAGED_SERVICES[alias]
    return parse_policy(aws_managed_key_policy(service, ACCOUNT, REGION), PolicyKind.KEY)


def _allowed(alias: str, principal: str, action: str, via: str | None = None) -> bool:
    context = {} if via is None else {"kms:ViaService": via}
    request = AuthzRequest.create(
        f"kms:{action}", KEY, RequestPrincipal.from_arn(principal), context
    )
    return evaluate(request, _policy(alias), [ALL_KMS]).allowed


def test_ebs_policy_is_aws_documented_statement() -> None:
    # AWS KMS Developer Guide, kms:CallerAccount: "This policy statement is in the key
    # policy for the AWS managed key for Amazon EBS".
    document = json.loads(
        aws_managed_key_policy(MANAGED_SERVICES["alias/aws/ebs"], ACCOUNT, REGION)
    )
    assert document["Id"] == "auto-ebs-2"
    assert document["Statement"][0] == {
        "Sid": "Allow access through EBS for all principals in the account that are "
        "authorized to use EBS",
        "Effect": "Allow",
        "Principal": {"AWS": "*"},
        "Action": [
            "kms:Encrypt",
            "kms:Decrypt",
            "kms:ReEncrypt*",
            "kms:GenerateDataKey*",
            "kms:CreateGrant",
            "kms:DescribeKey",
        ],
        "Resource": "*",
        "Condition": {
            "StringEquals": {
                "kms:CallerAccount": ACCOUNT,
                "kms:ViaService": "ec2.us-west-2.amazonaws.com",
            }
        },
    }
    assert document["Statement"][1] == {
        "Sid": "Allow direct access to key metadata to the account",
        "Effect": "Allow",
        "Principal": {"AWS": ROOT},
        "Action": ["kms:Describe*", "kms:Get*", "kms:List*", "kms:RevokeGrant"],
        "Resource": "*",
    }


def test_policy_text_uses_aws_layout() -> None:
    text = aws_managed_key_policy(MANAGED_SERVICES["alias/aws/ssm"], ACCOUNT, REGION)
    assert text.startswith('{\n  "Version" : "2012-10-17",\n  "Id" : "auto-ssm-1",\n')
    assert '  "Statement" : [ {\n    "Sid" : ' in text
    assert '"Action" : [ "kms:Describe*", "kms:Get*", "kms:List*" ],' in text
    assert text.endswith("  } ]\n}")


@pytest.mark.parametrize("alias", sorted(MANAGED_SERVICES))
def test_every_policy_parses_and_allows_only_reading_directly(alias: str) -> None:
    for action in ("DescribeKey", "GetKeyPolicy", "ListResourceTags", "ListKeyPolicies"):
        assert _allowed(alias, ROOT, action)
        assert _allowed(alias, USER, action)  # through its identity policy
    for action in (
        "Encrypt",
        "Decrypt",
        "GenerateDataKey",
        "CreateGrant",
        "PutKeyPolicy",
        "EnableKey",
        "DisableKey",
        "UpdateKeyDescription",
        "ScheduleKeyDeletion",
        "CancelKeyDeletion",
        "TagResource",
        "UntagResource",
        "CreateAlias",
        "UpdateAlias",
        "EnableKeyRotation",
        "DisableKeyRotation",
    ):
        assert not _allowed(alias, ROOT, action), action
        assert not _allowed(alias, USER, action), action


def test_use_through_the_service_is_allowed_to_the_account_only() -> None:
    via = f"s3.{REGION}.amazonaws.com"
    assert _allowed("alias/aws/s3", USER, "Encrypt", via)
    assert _allowed("alias/aws/s3", USER, "GenerateDataKeyWithoutPlaintext", via)
    assert not _allowed("alias/aws/s3", USER, "Encrypt", f"ec2.{REGION}.amazonaws.com")
    assert not _allowed("alias/aws/s3", USER, "Encrypt", "s3.eu-west-1.amazonaws.com")
    assert not _allowed("alias/aws/s3", OUTSIDER, "Encrypt", via)


def test_direct_use_is_denied_as_no_key_policy_allows_it() -> None:
    request = AuthzRequest.create("kms:Encrypt", KEY, RequestPrincipal.from_arn(USER))
    decision = evaluate(request, _policy("alias/aws/lambda"), [ALL_KMS])
    assert decision.reason is Reason.NO_KEY_POLICY_ALLOW
    assert decision.message == (
        f"User: {USER} is not authorized to perform: kms:Encrypt on resource: {KEY} "
        "because no resource-based policy allows the kms:Encrypt action"
    )


def test_services_that_make_grants_let_the_account_revoke_them() -> None:
    assert _allowed("alias/aws/ebs", USER, "RevokeGrant")
    assert not _allowed("alias/aws/s3", USER, "RevokeGrant")


def test_secrets_manager_generates_data_keys_through_any_region() -> None:
    alias = "alias/aws/secretsmanager"
    assert _allowed(alias, USER, "GenerateDataKey", "secretsmanager.eu-west-1.amazonaws.com")
    assert not _allowed(alias, USER, "Encrypt", "secretsmanager.eu-west-1.amazonaws.com")
    assert _allowed(alias, USER, "Encrypt", f"secretsmanager.{REGION}.amazonaws.com")


def test_aliases_descriptions_and_rotation() -> None:
    s3 = managed_service("alias/aws/s3")
    assert s3 is not None
    assert s3.description == "Default key that protects my S3 objects when no other key is defined"
    assert managed_service("alias/aws/nope") is None
    assert all(alias.startswith("alias/aws/") for alias in MANAGED_SERVICES)
    assert ROTATION_PERIOD_DAYS == 365
