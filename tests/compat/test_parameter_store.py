"""Parameter Store (the SSM API) through boto3's ssm client and the AWS CLI against a real
server: every operation, versions and history, the Overwrite rules, pagination, and
SecureString values encrypted through this server's KMS as SSM does (the AWS managed key
alias/aws/ssm made on first use or a customer key; kms:ViaService; PARAMETER_ARN context),
with the KMS calls in the audit trail and no plaintext at rest.

Each module-scoped user lives in an account of its own, so listings see only its
parameters."""

from __future__ import annotations

import base64
import json
import random
import subprocess
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from conftest import aws_cli, start_server, stop_server

from ._support import (
    REGION,
    assert_kms_error,
    audit_events,
    eventually,
    new_principal,
    unique_alias,
)

pytestmark = pytest.mark.compat

KMS_AND_SSM = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["kms:*", "ssm:*"], "Resource": "*"}],
}
VIA_SSM = f"ssm.{REGION}.amazonaws.com"


def _ssm(server: Any, who: dict[str, Any], region: str = REGION) -> Any:
    return boto3.client(
        "ssm",
        endpoint_url=server.endpoint,
        region_name=region,
        aws_access_key_id=who["AccessKeyId"],
        aws_secret_access_key=who["SecretAccessKey"],
        config=Config(retries={"max_attempts": 0}),
    )


def _fresh_user(server: Any, policy: dict[str, Any] | None = KMS_AND_SSM) -> dict[str, Any]:
    """A user with ``policy`` in an account of its own, with an ssm and a kms client."""
    account = "8" + "".join(random.choices("0123456789", k=11))
    server.admin("create-account", account)
    user = new_principal(server, "ps", account=account, policy=policy)
    user["ssm"] = _ssm(server, user)
    user["kms"] = user["client"]
    return user


@pytest.fixture(scope="module")
def user(server: Any) -> dict[str, Any]:
    return _fresh_user(server)


def _name(prefix: str = "/t") -> str:
    return f"{prefix}/{uuid.uuid4().hex[:10]}"


def _arn(user: dict[str, Any], name: str) -> str:
    return f"arn:aws:ssm:{REGION}:{user['account']}:parameter/{name.lstrip('/')}"


# -- String and StringList, versions, Overwrite -----------------------------------------


def test_put_and_get_string_and_string_list(user: dict[str, Any]) -> None:
    ssm = user["ssm"]
    name, listed = _name(), _name()
    assert ssm.put_parameter(Name=name, Value="v1", Type="String")["Version"] == 1
    ssm.put_parameter(Name=listed, Value="a,b,c", Type="StringList", Description="three")
    got = ssm.get_parameter(Name=name)["Parameter"]
    assert (got["Name"], got["Type"], got["Value"], got["Version"]) == (name, "String", "v1", 1)
    assert got["ARN"] == _arn(user, name)
    assert got["DataType"] == "text"
    assert ssm.get_parameter(Name=listed)["Parameter"]["Value"] == "a,b,c"
    by_arn = ssm.get_parameter(Name=_arn(user, listed))["Parameter"]
    assert (by_arn["Name"], by_arn["Type"]) == (listed, "StringList")


def test_overwrite_rules_and_versions(user: dict[str, Any]) -> None:
    ssm = user["ssm"]
    name = _name()
    assert_kms_error(
        "ValidationException",
        ssm.put_parameter,
        Name=name,
        Value="x",
        message="A parameter type is required when you create a parameter.",
    )
    ssm.put_parameter(Name=name, Value="one", Type="String", Description="kept")
    assert_kms_error(
        "ParameterAlreadyExists", ssm.put_parameter, Name=name, Value="2", Type="String"
    )
    assert ssm.get_parameter(Name=name)["Parameter"]["Value"] == "one"  # nothing changed
    tagged = assert_kms_error(
        "ValidationException",
        ssm.put_parameter,
        Name=name,
        Value="2",
        Overwrite=True,
        Tags=[{"Key": "k", "Value": "v"}],
    )
    assert "tags and overwrite can't be used together" in tagged["Error"]["Message"]
    assert ssm.put_parameter(Name=name, Value="two", Overwrite=True)["Version"] == 2
    assert (
        ssm.put_parameter(Name=name, Value="three", Overwrite=True, Type="String")["Version"] == 3
    )
    assert ssm.get_parameter(Name=name)["Parameter"]["Value"] == "three"
    old = ssm.get_parameter(Name=f"{name}:1")["Parameter"]
    assert (old["Value"], old["Version"], old["Selector"]) == ("one", 1, ":1")
    assert_kms_error("ParameterVersionNotFound", ssm.get_parameter, Name=f"{name}:9")
    meta = ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Values": [name]}])[
        "Parameters"
    ]
    assert [(m["Version"], m["Description"], m["LastModifiedUser"]) for m in meta] == [
        (3, "kept", user["arn"])
    ]


def test_history_lists_every_version_in_pages(user: dict[str, Any]) -> None:
    ssm = user["ssm"]
    name = _name()
    ssm.put_parameter(Name=name, Value="v1", Type="String")
    for i in range(2, 6):
        ssm.put_parameter(Name=name, Value=f"v{i}", Overwrite=True)
    first = ssm.get_parameter_history(Name=name, MaxResults=2)
    assert [p["Value"] for p in first["Parameters"]] == ["v1", "v2"]
    seen = list(first["Parameters"])
    token = first.get("NextToken")
    while token:
        page = ssm.get_parameter_history(Name=name, MaxResults=2, NextToken=token)
        seen += page["Parameters"]
        token = page.get("NextToken")
    assert [(p["Version"], p["Value"]) for p in seen] == [(i, f"v{i}") for i in range(1, 6)]
    assert all(p["Name"] == name and p["Labels"] == [] for p in seen)
    assert_kms_error("ParameterNotFound", ssm.get_parameter_history, Name=_name())
    assert_kms_error(
        "InvalidNextToken", ssm.get_parameter_history, Name=name, NextToken="bm90IGEgbnVtYmVy"
    )


def test_get_parameters_and_delete(user: dict[str, Any]) -> None:
    ssm = user["ssm"]
    a, b, missing = _name(), _name(), _name()
    ssm.put_parameter(Name=a, Value="A", Type="String")
    ssm.put_parameter(Name=b, Value="B", Type="String")
    got = ssm.get_parameters(Names=[a, b, missing])
    assert sorted(p["Value"] for p in got["Parameters"]) == ["A", "B"]
    assert got["InvalidParameters"] == [missing]
    ssm.delete_parameter(Name=a)
    assert_kms_error("ParameterNotFound", ssm.get_parameter, Name=a)
    assert_kms_error("ParameterNotFound", ssm.delete_parameter, Name=a)
    gone = ssm.delete_parameters(Names=[b, missing])
    assert (gone["DeletedParameters"], gone["InvalidParameters"]) == ([b], [missing])
    assert ssm.get_parameters(Names=[a, b])["InvalidParameters"] == [a, b]


def test_tags_of_a_parameter(user: dict[str, Any]) -> None:
    ssm = user["ssm"]
    name = _name()
    ssm.put_parameter(Name=name, Value="v", Type="String", Tags=[{"Key": "team", "Value": "a"}])

    def tags() -> dict[str, str]:
        found = ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=name)
        return {t["Key"]: t["Value"] for t in found["TagList"]}

    assert tags() == {"team": "a"}
    ssm.add_tags_to_resource(
        ResourceType="Parameter",
        ResourceId=name,
        Tags=[{"Key": "team", "Value": "b"}, {"Key": "env", "Value": "prod"}],
    )
    assert tags() == {"team": "b", "env": "prod"}
    ssm.remove_tags_from_resource(ResourceType="Parameter", ResourceId=name, TagKeys=["team"])
    assert tags() == {"env": "prod"}
    many = [{"Key": f"k{i}", "Value": "v"} for i in range(50)]
    assert_kms_error(
        "TooManyTagsError",
        ssm.add_tags_to_resource,
        ResourceType="Parameter",
        ResourceId=name,
        Tags=many,
    )
    assert tags() == {"env": "prod"}
    assert_kms_error(
        "InvalidResourceId",
        ssm.list_tags_for_resource,
        ResourceType="Parameter",
        ResourceId=_name(),
    )
    assert_kms_error(
        "InvalidResourceType", ssm.list_tags_for_resource, ResourceType="Document", ResourceId=name
    )
    assert_kms_error(
        "ValidationException",
        ssm.add_tags_to_resource,
        ResourceType="Parameter",
        ResourceId=name,
        Tags=[{"Key": "bad#key", "Value": "v"}],
    )


def test_bad_input_is_refused_and_changes_nothing(user: dict[str, Any]) -> None:
    ssm = user["ssm"]
    name = _name()
    assert_kms_error(
        "ValidationException", ssm.put_parameter, Name="/aws/x", Value="v", Type="String"
    )
    assert_kms_error(
        "ValidationException", ssm.put_parameter, Name="ssm-x", Value="v", Type="String"
    )
    assert_kms_error(
        "ValidationException", ssm.put_parameter, Name=name, Value="v" * 4097, Type="String"
    )
    assert_kms_error(
        "ValidationException",
        ssm.put_parameter,
        Name=name,
        Value="v",
        Type="String",
        KeyId="alias/aws/ssm",
    )
    assert_kms_error(
        "ValidationException",
        ssm.put_parameter,
        Name=name,
        Value="v",
        Type="String",
        Tier="Advanced",
    )
    assert_kms_error(
        "ParameterPatternMismatchException",
        ssm.put_parameter,
        Name=name,
        Value="abc",
        Type="String",
        AllowedPattern="^[0-9]+$",
    )
    assert_kms_error(
        "HierarchyLevelLimitExceededException",
        ssm.put_parameter,
        Name="/" + "/".join("l" * 16),
        Value="v",
        Type="String",
    )
    assert_kms_error("ParameterNotFound", ssm.get_parameter, Name=name)
    ssm.put_parameter(Name=name, Value="123", Type="String", AllowedPattern="^[0-9]+$")
    assert_kms_error(
        "ParameterPatternMismatchException", ssm.put_parameter, Name=name, Value="x", Overwrite=True
    )
    assert ssm.get_parameter(Name=name)["Parameter"]["Version"] == 1


# -- listing: paths, filters, pagination ----------------------------------------------------


@pytest.fixture(scope="module")
def tree(server: Any) -> dict[str, Any]:
    """A user of its own with /app/{a..l} (12 parameters), /app/deep/x, /app/deep/er/y and
    /other; /app/b and /app/deep/x are SecureString, /app/c is tagged team=blue."""
    owner = _fresh_user(server)
    ssm = owner["ssm"]
    for letter in "abcdefghijkl":
        kind = "SecureString" if letter == "b" else "String"
        tags = [{"Key": "team", "Value": "blue"}] if letter == "c" else []
        ssm.put_parameter(Name=f"/app/{letter}", Value=letter.upper(), Type=kind, Tags=tags)
    ssm.put_parameter(Name="/app/deep/x", Value="X", Type="SecureString")
    ssm.put_parameter(Name="/app/deep/er/y", Value="Y", Type="String")
    ssm.put_parameter(Name="/other", Value="O", Type="String")
    return owner


def _all(call: Any, **kwargs: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for _ in range(100):
        page = call(**kwargs)
        found += page["Parameters"]
        if not page.get("NextToken"):
            return found
        kwargs["NextToken"] = page["NextToken"]
    raise AssertionError("pages never stopped")


def test_by_path_one_level_and_recursive_in_pages(tree: dict[str, Any]) -> None:
    ssm = tree["ssm"]
    first = ssm.get_parameters_by_path(Path="/app", MaxResults=5)
    assert len(first["Parameters"]) == 5 and first["NextToken"]
    one_level = _all(ssm.get_parameters_by_path, Path="/app", MaxResults=5)
    assert [p["Name"] for p in one_level] == [f"/app/{c}" for c in "abcdefghijkl"]
    everything = _all(ssm.get_parameters_by_path, Path="/app/", Recursive=True, MaxResults=4)
    names = {p["Name"] for p in everything}
    assert names == {f"/app/{c}" for c in "abcdefghijkl"} | {"/app/deep/x", "/app/deep/er/y"}
    secret = next(p for p in everything if p["Name"] == "/app/b")
    assert secret["Type"] == "SecureString" and secret["Value"] != "B"
    decrypted = _all(
        ssm.get_parameters_by_path,
        Path="/app",
        Recursive=True,
        WithDecryption=True,
        ParameterFilters=[{"Key": "Type", "Option": "Equals", "Values": ["SecureString"]}],
    )
    assert {(p["Name"], p["Value"]) for p in decrypted} == {("/app/b", "B"), ("/app/deep/x", "X")}
    assert_kms_error(
        "InvalidFilterKey",
        ssm.get_parameters_by_path,
        Path="/app",
        ParameterFilters=[{"Key": "Name", "Values": ["/app/a"]}],
    )
    assert_kms_error("InvalidNextToken", ssm.get_parameters_by_path, Path="/app", NextToken="%%%")


def test_describe_parameters_filters_and_pages(tree: dict[str, Any]) -> None:
    ssm = tree["ssm"]
    every = _all(ssm.describe_parameters, MaxResults=3)
    assert len(every) == 15
    assert [m["Name"] for m in every] == sorted(m["Name"] for m in every)

    def names(**kwargs: Any) -> set[str]:
        return {m["Name"] for m in _all(ssm.describe_parameters, **kwargs)}

    secure = [{"Key": "Type", "Values": ["SecureString"]}]
    assert names(ParameterFilters=secure) == {"/app/b", "/app/deep/x"}
    assert names(Filters=[{"Key": "Type", "Values": ["SecureString"]}]) == {"/app/b", "/app/deep/x"}
    begins = [{"Key": "Name", "Option": "BeginsWith", "Values": ["/app/deep"]}]
    assert names(ParameterFilters=begins) == {"/app/deep/x", "/app/deep/er/y"}
    assert names(ParameterFilters=[{"Key": "tag:team", "Values": ["blue"]}]) == {"/app/c"}
    one = [{"Key": "Path", "Option": "OneLevel", "Values": ["/app/deep"]}]
    assert names(ParameterFilters=one) == {"/app/deep/x"}
    deep = [{"Key": "Path", "Option": "Recursive", "Values": ["/app/deep"]}]
    assert names(ParameterFilters=deep) == {"/app/deep/x", "/app/deep/er/y"}
    managed = [{"Key": "KeyId", "Values": ["alias/aws/ssm"]}]
    assert names(ParameterFilters=managed) == {"/app/b", "/app/deep/x"}
    assert_kms_error(
        "InvalidFilterKey",
        ssm.describe_parameters,
        ParameterFilters=[{"Key": "Label", "Values": ["x"]}],
    )
    assert_kms_error(
        "InvalidFilterOption",
        ssm.describe_parameters,
        ParameterFilters=[{"Key": "Type", "Option": "Recursive", "Values": ["String"]}],
    )


# -- SecureString -------------------------------------------------------------------------


def _stored_blob(ssm: Any, name: str) -> bytes:
    """The KMS ciphertext blob of a SecureString, as GetParameter without decryption shows it."""
    return base64.b64decode(ssm.get_parameter(Name=name)["Parameter"]["Value"])


def test_secure_string_uses_the_aws_managed_key_made_on_first_use(server: Any) -> None:
    owner = _fresh_user(server)
    ssm, kms = owner["ssm"], owner["kms"]
    before = {a["AliasName"]: a for a in kms.list_aliases(Limit=100)["Aliases"]}
    assert "TargetKeyId" not in before["alias/aws/ssm"]
    name = _name("/secret")
    ssm.put_parameter(Name=name, Value="s3cr3t", Type="SecureString")
    after = {a["AliasName"]: a for a in kms.list_aliases(Limit=100)["Aliases"]}
    managed = kms.describe_key(KeyId="alias/aws/ssm")["KeyMetadata"]
    assert after["alias/aws/ssm"]["TargetKeyId"] == managed["KeyId"]
    assert managed["KeyManager"] == "AWS"
    meta = ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Values": [name]}])
    assert meta["Parameters"][0]["KeyId"] == "alias/aws/ssm"
    blob = _stored_blob(ssm, name)
    assert b"s3cr3t" not in blob
    got = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]
    assert (got["Type"], got["Value"]) == ("SecureString", "s3cr3t")
    # The managed key serves only through SSM: the same ciphertext, decrypted directly with
    # the right context, is refused.
    context = {"PARAMETER_ARN": _arn(owner, name)}
    assert_kms_error(
        "AccessDeniedException", kms.decrypt, CiphertextBlob=blob, EncryptionContext=context
    )
    ssm.put_parameter(Name=name, Value="n3w", Overwrite=True)  # stays a SecureString
    history = ssm.get_parameter_history(Name=name, WithDecryption=True)["Parameters"]
    assert [(p["Type"], p["Value"]) for p in history] == [
        ("SecureString", "s3cr3t"),
        ("SecureString", "n3w"),
    ]


def test_secure_string_with_a_customer_key_in_every_form(user: dict[str, Any]) -> None:
    ssm, kms = user["ssm"], user["kms"]
    key = kms.create_key(Description="params")["KeyMetadata"]
    alias = f"alias/ps-{uuid.uuid4().hex[:8]}"
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    for form in (key["KeyId"], key["Arn"], alias):
        name = _name("/cmk")
        ssm.put_parameter(Name=name, Value=f"for {form}", Type="SecureString", KeyId=form)
        assert (
            ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"] == f"for {form}"
        )
        meta = ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Values": [name]}])
        assert meta["Parameters"][0]["KeyId"] == form
        # A customer key with the default policy serves direct calls too, with the context
        # Parameter Store used.
        blob = _stored_blob(ssm, name)
        context = {"PARAMETER_ARN": _arn(user, name)}
        plain = kms.decrypt(CiphertextBlob=blob, EncryptionContext=context)
        assert (plain["Plaintext"], plain["KeyId"]) == (f"for {form}".encode(), key["Arn"])
        assert_kms_error("InvalidCiphertextException", kms.decrypt, CiphertextBlob=blob)
    assert_kms_error(
        "InvalidKeyId",
        ssm.put_parameter,
        Name=_name(),
        Value="v",
        Type="SecureString",
        KeyId="alias/no-such-alias",
    )


def _key_with_policy(user: dict[str, Any], statements: list[dict[str, Any]]) -> dict[str, Any]:
    admin = {
        "Sid": "account",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{user['account']}:root"},
        "Action": "kms:*",
        "Resource": "*",
    }
    policy = {"Version": "2012-10-17", "Statement": [admin, *statements]}
    return user["kms"].create_key(Policy=json.dumps(policy))["KeyMetadata"]  # type: ignore[no-any-return]


def test_via_service_condition_allows_ssm_and_refuses_direct_decrypt(user: dict[str, Any]) -> None:
    ssm, kms = user["ssm"], user["kms"]
    key = _key_with_policy(
        user,
        [
            {
                "Sid": "only through SSM",
                "Effect": "Deny",
                "Principal": {"AWS": "*"},
                "Action": "kms:Decrypt",
                "Resource": "*",
                "Condition": {"StringNotEquals": {"kms:ViaService": VIA_SSM}},
            }
        ],
    )
    name = _name("/via")
    ssm.put_parameter(Name=name, Value="through ssm", Type="SecureString", KeyId=key["KeyId"])
    assert ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"] == "through ssm"
    context = {"PARAMETER_ARN": _arn(user, name)}
    denied = assert_kms_error(
        "AccessDeniedException",
        kms.decrypt,
        CiphertextBlob=_stored_blob(ssm, name),
        EncryptionContext=context,
    )
    assert "with an explicit deny in a resource-based policy" in denied["Error"]["Message"]


def test_via_service_condition_refuses_ssm_and_allows_direct_decrypt(user: dict[str, Any]) -> None:
    ssm, kms = user["ssm"], user["kms"]
    key = _key_with_policy(
        user,
        [
            {
                "Sid": "never through SSM",
                "Effect": "Deny",
                "Principal": {"AWS": "*"},
                "Action": "kms:Decrypt",
                "Resource": "*",
                "Condition": {"StringEquals": {"kms:ViaService": VIA_SSM}},
            }
        ],
    )
    name = _name("/direct")
    ssm.put_parameter(Name=name, Value="direct only", Type="SecureString", KeyId=key["Arn"])
    denied = assert_kms_error(
        "AccessDeniedException", ssm.get_parameter, Name=name, WithDecryption=True
    )
    message = denied["Error"]["Message"]
    assert f"is not authorized to perform: kms:Decrypt on resource: {key['Arn']}" in message
    assert "(Service: AWSKMS; Status Code: 400; Error Code: AccessDeniedException;" in message
    assert ssm.get_parameter(Name=name)["Parameter"]["Type"] == "SecureString"  # no decryption
    context = {"PARAMETER_ARN": _arn(user, name)}
    plain = kms.decrypt(CiphertextBlob=_stored_blob(ssm, name), EncryptionContext=context)
    assert plain["Plaintext"] == b"direct only"
    # Encrypt is refused through SSM the same way: PutParameter fails and stores nothing.
    no_encrypt = _key_with_policy(
        user,
        [
            {
                "Sid": "no encrypt through SSM",
                "Effect": "Deny",
                "Principal": {"AWS": "*"},
                "Action": "kms:Encrypt",
                "Resource": "*",
                "Condition": {"StringEquals": {"kms:ViaService": VIA_SSM}},
            }
        ],
    )
    refused = _name("/refused")
    assert_kms_error(
        "AccessDeniedException",
        ssm.put_parameter,
        Name=refused,
        Value="v",
        Type="SecureString",
        KeyId=no_encrypt["KeyId"],
    )
    assert_kms_error("ParameterNotFound", ssm.get_parameter, Name=refused)


@pytest.mark.parametrize("variant", ["tag", "alias"])
def test_a_tag_or_alias_conditioned_deny_stops_the_kms_calls_of_ssm(
    user: dict[str, Any], variant: str
) -> None:
    """SSM's Encrypt and Decrypt are authorized through the same seam as a direct call, with
    the key's tags and aliases in the context: a Deny on aws:ResourceTag/env = prod (or on
    kms:ResourceAliases like alias/prod-*) stops them; the same policy on a key not marked
    prod allows them, until the key is marked."""
    ssm, kms = user["ssm"], user["kms"]
    condition = (
        {"StringEquals": {"aws:ResourceTag/env": "prod"}}
        if variant == "tag"
        else {"ForAnyValue:StringLike": {"kms:ResourceAliases": "alias/prod-*"}}
    )
    deny = {
        "Sid": "nothing on prod",
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Action": ["kms:Encrypt", "kms:Decrypt"],
        "Resource": "*",
        "Condition": condition,
    }

    def mark_prod(key: dict[str, Any]) -> None:
        if variant == "tag":
            kms.tag_resource(KeyId=key["KeyId"], Tags=[{"TagKey": "env", "TagValue": "prod"}])
        else:
            kms.create_alias(AliasName=unique_alias("prod"), TargetKeyId=key["KeyId"])

    prod = _key_with_policy(user, [deny])
    mark_prod(prod)
    refused = _name("/prod")
    assert_kms_error(
        "AccessDeniedException",
        ssm.put_parameter,
        Name=refused,
        Value="v",
        Type="SecureString",
        KeyId=prod["KeyId"],
    )
    assert_kms_error("ParameterNotFound", ssm.get_parameter, Name=refused)

    dev = _key_with_policy(user, [deny])
    name = _name("/dev")
    ssm.put_parameter(Name=name, Value="dev value", Type="SecureString", KeyId=dev["KeyId"])
    assert ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"] == "dev value"
    mark_prod(dev)
    eventually(
        lambda: assert_kms_error(
            "AccessDeniedException", ssm.get_parameter, Name=name, WithDecryption=True
        )
    )


def test_disabled_and_pending_deletion_keys_give_invalid_key_id(user: dict[str, Any]) -> None:
    ssm, kms = user["ssm"], user["kms"]
    key = kms.create_key()["KeyMetadata"]
    name = _name("/state")
    ssm.put_parameter(Name=name, Value="v1", Type="SecureString", KeyId=key["KeyId"])
    kms.disable_key(KeyId=key["KeyId"])
    read = assert_kms_error("InvalidKeyId", ssm.get_parameter, Name=name, WithDecryption=True)
    assert f"{key['Arn']} is disabled." in read["Error"]["Message"]
    assert "Error Code: DisabledException" in read["Error"]["Message"]
    put = assert_kms_error("InvalidKeyId", ssm.put_parameter, Name=name, Value="v2", Overwrite=True)
    assert "Error Code: DisabledException" in put["Error"]["Message"]
    assert ssm.get_parameter(Name=name)["Parameter"]["Version"] == 1  # nothing changed
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    pending = assert_kms_error("InvalidKeyId", ssm.get_parameter, Name=name, WithDecryption=True)
    assert "Error Code: KMSInvalidStateException" in pending["Error"]["Message"]
    kms.cancel_key_deletion(KeyId=key["KeyId"])
    kms.enable_key(KeyId=key["KeyId"])
    assert ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"] == "v1"


# -- SSM permissions -------------------------------------------------------------------------


def test_ssm_actions_need_an_identity_policy(server: Any, user: dict[str, Any]) -> None:
    name = _name("/team")
    user["ssm"].put_parameter(Name=name, Value="v", Type="String")
    kms_only = new_principal(
        server,
        "kmsonly",
        account=user["account"],
        policy={
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}],
        },
    )
    denied = assert_kms_error(
        "AccessDeniedException", _ssm(server, kms_only).get_parameter, Name=name
    )
    assert denied["Error"]["Message"] == (
        f"User: {kms_only['arn']} is not authorized to perform: ssm:GetParameter on resource: "
        f"{_arn(user, name)} because no identity-based policy allows the ssm:GetParameter action"
    )
    reader = new_principal(
        server,
        "reader",
        account=user["account"],
        policy={
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "ssm:GetParameter*",
                    "Resource": f"arn:aws:ssm:{REGION}:{user['account']}:parameter/team/*",
                }
            ],
        },
    )
    client = _ssm(server, reader)
    assert client.get_parameter(Name=name)["Parameter"]["Value"] == "v"
    assert_kms_error(
        "AccessDeniedException", client.put_parameter, Name=name, Value="w", Overwrite=True
    )
    assert_kms_error("AccessDeniedException", client.get_parameter, Name=_name("/elsewhere"))


# -- audit ---------------------------------------------------------------------------------------


def test_ssm_calls_and_the_kms_calls_they_make_are_audited(server: Any) -> None:
    owner = _fresh_user(server)
    ssm = owner["ssm"]
    name = _name("/audited")
    put_id = ssm.put_parameter(Name=name, Value="audited-secret-1", Type="SecureString")[
        "ResponseMetadata"
    ]["RequestId"]
    get_id = ssm.get_parameter(Name=name, WithDecryption=True)["ResponseMetadata"]["RequestId"]
    out, events = audit_events(server, "--principal", owner["arn"])
    assert "audited-secret-1" not in out
    by_name = {(e["eventSource"], e["eventName"]): e for e in events}
    put = by_name[("ssm.amazonaws.com", "PutParameter")]
    assert put["requestID"] == put_id
    assert put["requestParameters"]["value"] == "HIDDEN_DUE_TO_SECURITY_REASONS"
    assert put["requestParameters"]["name"] == name
    assert put["resources"] == [
        {"accountId": owner["account"], "type": "AWS::SSM::Parameter", "ARN": _arn(owner, name)}
    ]
    get = by_name[("ssm.amazonaws.com", "GetParameter")]
    assert get["requestID"] == get_id and get["responseElements"] is None
    managed = owner["kms"].describe_key(KeyId="alias/aws/ssm")["KeyMetadata"]["Arn"]
    for operation in ("Encrypt", "Decrypt"):
        call = by_name[("kms.amazonaws.com", operation)]
        identity = call["userIdentity"]
        assert (identity["arn"], identity["invokedBy"]) == (owner["arn"], "ssm.amazonaws.com")
        assert call["sourceIPAddress"] == "ssm.amazonaws.com"
        assert call["userAgent"] == "ssm.amazonaws.com"
        context = call["requestParameters"]["encryptionContext"]
        assert context == {"PARAMETER_ARN": _arn(owner, name)}
        assert [r["ARN"] for r in call["resources"]] == [managed]
        assert "errorCode" not in call
    # Each KMS event comes before the SSM event of the request that made it.
    order = [(e["eventSource"], e["eventName"]) for e in events]
    assert order.index(("kms.amazonaws.com", "Encrypt")) < order.index(
        ("ssm.amazonaws.com", "PutParameter")
    )


def test_the_kms_calls_of_ssm_are_the_last_uses_of_their_key(
    user: dict[str, Any], server: Any
) -> None:
    ssm, kms = user["ssm"], user["kms"]
    key = kms.create_key()["KeyMetadata"]
    name = _name("/used")

    def kms_event(operation: str) -> dict[str, Any]:
        _, events = audit_events(server, "--key", key["Arn"], "--event-name", operation)
        [event] = [e for e in events if e["userIdentity"].get("invokedBy") == "ssm.amazonaws.com"]
        return event

    ssm.put_parameter(Name=name, Value="v", Type="SecureString", KeyId=key["KeyId"])
    for operation in ("Encrypt", "Decrypt"):
        if operation == "Decrypt":
            ssm.get_parameter(Name=name)  # no decryption asked: no KMS call, no use
            assert kms.get_key_last_usage(KeyId=key["KeyId"])["KeyLastUsage"]["Operation"] == (
                "Encrypt"
            )
            ssm.get_parameter(Name=name, WithDecryption=True)
        usage = kms.get_key_last_usage(KeyId=key["KeyId"])["KeyLastUsage"]
        event = kms_event(operation)
        assert usage["Operation"] == operation
        assert usage["KmsRequestId"] == event["requestID"]
        assert usage["CloudTrailEventId"] == event["eventID"]
        assert usage["Timestamp"].strftime("%Y-%m-%dT%H:%M:%SZ") == event["eventTime"]


def test_a_refused_kms_call_is_audited_with_its_error(user: dict[str, Any], server: Any) -> None:
    ssm, kms = user["ssm"], user["kms"]
    key = kms.create_key()["KeyMetadata"]
    kms.disable_key(KeyId=key["KeyId"])
    name = _name("/refusedaudit")
    assert_kms_error(
        "InvalidKeyId",
        ssm.put_parameter,
        Name=name,
        Value="v",
        Type="SecureString",
        KeyId=key["KeyId"],
    )
    _, events = audit_events(server, "--principal", user["arn"], "--event-name", "Encrypt")
    failed = [e for e in events if e["resources"] and e["resources"][0]["ARN"] == key["Arn"]]
    assert [(e["errorCode"], e["userIdentity"]["invokedBy"]) for e in failed] == [
        ("DisabledException", "ssm.amazonaws.com")
    ]


# -- at rest, and the AWS CLI ------------------------------------------------------------------


def test_no_plaintext_at_rest(tmp_path: Path) -> None:
    data = tmp_path / "data"
    srv = start_server(data)
    secrets = [f"plain-{uuid.uuid4().hex}" for _ in range(3)]
    try:
        ssm = srv.client("ssm")
        kms = srv.client()
        key = kms.create_key()["KeyMetadata"]["KeyId"]
        ssm.put_parameter(Name="/rest/managed", Value=secrets[0], Type="SecureString")
        ssm.put_parameter(Name="/rest/cmk", Value=secrets[1], Type="SecureString", KeyId=key)
        ssm.put_parameter(Name="/rest/cmk", Value=secrets[2], Type="SecureString", Overwrite=True)
        assert (
            ssm.get_parameter(Name="/rest/cmk", WithDecryption=True)["Parameter"]["Value"]
            == secrets[2]
        )
        ssm.put_parameter(Name="/rest/plain", Value="visible-string-value", Type="String")
    finally:
        stop_server(srv)
    files = [data / f"strongroom.db{s}" for s in ("", "-wal", "-journal")]
    files += sorted((data / "audit").glob("*"))
    at_rest = b"".join(p.read_bytes() for p in files if p.is_file())
    assert b"visible-string-value" in at_rest  # the grep can see what is stored in clear
    for secret in secrets:
        assert secret.encode() not in at_rest
        assert base64.b64encode(secret.encode()) not in at_rest


def _aws_ssm(server: Any, *args: str) -> subprocess.CompletedProcess[str]:
    return aws_cli(server, *args, check=False, service="ssm")


def test_aws_cli_put_and_get_a_secure_string(server: Any) -> None:
    name = _name("/cli")
    put = _aws_ssm(
        server, "put-parameter", "--name", name, "--value", "from the cli", "--type", "SecureString"
    )
    assert put.returncode == 0, put.stderr
    assert json.loads(put.stdout)["Version"] == 1
    again = _aws_ssm(
        server, "put-parameter", "--name", name, "--value", "x", "--type", "SecureString"
    )
    assert again.returncode != 0 and "ParameterAlreadyExists" in again.stderr
    got = _aws_ssm(server, "get-parameter", "--name", name, "--with-decryption")
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["Parameter"]["Value"] == "from the cli"
    listed = _aws_ssm(server, "get-parameters-by-path", "--path", name.rsplit("/", 1)[0])
    assert name in [p["Name"] for p in json.loads(listed.stdout)["Parameters"]]
    deleted = _aws_ssm(server, "delete-parameter", "--name", name)
    assert deleted.returncode == 0, deleted.stderr
