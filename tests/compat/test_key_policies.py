"""Key policies through real clients: administrators apart from users, outsiders, other
accounts, explicit Deny with encryption-context conditions, the lockout safety check,
GetKeyPolicy / PutKeyPolicy / ListKeyPolicies."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from conftest import run_strongroom

from ._support import ACCOUNT, assert_kms_error, eventually, make_client, new_principal

pytestmark = pytest.mark.compat

LOCKOUT = "The new key policy will not allow you to update the key policy in the future."
ADMIN_ACTIONS = [
    "kms:Create*",
    "kms:Describe*",
    "kms:Enable*",
    "kms:List*",
    "kms:Put*",
    "kms:Update*",
    "kms:Revoke*",
    "kms:Disable*",
    "kms:Get*",
    "kms:Delete*",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion",
]
USER_ACTIONS = [
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncrypt*",
    "kms:GenerateDataKey*",
    "kms:DescribeKey",
]


def _denied(principal: str, action: str, resource: str, why: str) -> str:
    return (
        f"User: {principal} is not authorized to perform: kms:{action} on resource: "
        f"{resource} {why}"
    )


def _implicit(kind: str, action: str) -> str:
    return f"because no {kind} policy allows the kms:{action} action"


def _policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _root(account: str = ACCOUNT) -> dict[str, Any]:
    return {
        "Sid": "Enable IAM User Permissions",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
        "Action": "kms:*",
        "Resource": "*",
    }


@pytest.fixture(scope="module")
def people(server: Any) -> dict[str, dict[str, Any]]:
    """Users of the key's account without identity policies: a key administrator, a key
    user and an outsider whom no policy names."""
    return {role: new_principal(server, role) for role in ("keyadmin", "keyuser", "outsider")}


@pytest.fixture(scope="module")
def shared_key(
    kms: Any, people: dict[str, dict[str, Any]], other_account: dict[str, Any]
) -> dict[str, Any]:
    """A key whose policy names the administrator, the user, the other account (for
    Encrypt/Decrypt/DescribeKey) and denies Decrypt under classification=secret."""
    policy = _policy(
        _root(),
        {
            "Sid": "Key administrators",
            "Effect": "Allow",
            "Principal": {"AWS": people["keyadmin"]["arn"]},
            "Action": ADMIN_ACTIONS,
            "Resource": "*",
        },
        {
            "Sid": "Key users",
            "Effect": "Allow",
            "Principal": {"AWS": people["keyuser"]["arn"]},
            "Action": USER_ACTIONS,
            "Resource": "*",
        },
        {
            "Sid": "Other account",
            "Effect": "Allow",
            "Principal": {"AWS": other_account["account"]},
            "Action": ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"],
            "Resource": "*",
        },
        {
            "Sid": "Never decrypt secrets",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "kms:Decrypt",
            "Resource": "*",
            "Condition": {"StringEquals": {"kms:EncryptionContext:classification": "secret"}},
        },
    )
    meta: dict[str, Any] = kms.create_key(Description="policy test", Policy=policy)["KeyMetadata"]
    return meta


def test_key_administrator_manages_but_cannot_use_the_key(
    shared_key: dict[str, Any], people: dict[str, dict[str, Any]]
) -> None:
    admin, arn = people["keyadmin"], shared_key["Arn"]
    client = admin["client"]
    assert client.describe_key(KeyId=arn)["KeyMetadata"]["Arn"] == arn
    client.update_key_description(KeyId=arn, Description="renamed by the administrator")
    client.tag_resource(KeyId=arn, Tags=[{"TagKey": "owner", "TagValue": "admin"}])
    assert client.list_key_policies(KeyId=arn)["PolicyNames"] == ["default"]
    for call, kwargs, action in (
        (client.encrypt, {"Plaintext": b"x"}, "Encrypt"),
        (client.generate_data_key, {"KeySpec": "AES_256"}, "GenerateDataKey"),
    ):
        assert_kms_error(
            "AccessDeniedException",
            call,
            KeyId=arn,
            message=_denied(admin["arn"], action, arn, _implicit("identity-based", action)),
            **kwargs,
        )


def test_key_user_uses_but_cannot_manage_the_key(
    shared_key: dict[str, Any], people: dict[str, dict[str, Any]]
) -> None:
    user, arn = people["keyuser"], shared_key["Arn"]
    client = user["client"]
    blob = client.encrypt(KeyId=arn, Plaintext=b"user data")["CiphertextBlob"]
    assert client.decrypt(CiphertextBlob=blob)["Plaintext"] == b"user data"
    assert len(client.generate_data_key(KeyId=arn, KeySpec="AES_256")["Plaintext"]) == 32
    for call, kwargs, action in (
        (client.disable_key, {}, "DisableKey"),
        (client.schedule_key_deletion, {"PendingWindowInDays": 7}, "ScheduleKeyDeletion"),
        (client.get_key_policy, {"PolicyName": "default"}, "GetKeyPolicy"),
        (client.put_key_policy, {"PolicyName": "default", "Policy": _policy(_root())}, None),
    ):
        action = action or "PutKeyPolicy"
        assert_kms_error(
            "AccessDeniedException",
            call,
            KeyId=arn,
            message=_denied(user["arn"], action, arn, _implicit("identity-based", action)),
            **kwargs,
        )


def test_outsider_without_policy_can_do_nothing(
    key: dict[str, Any], shared_key: dict[str, Any], people: dict[str, dict[str, Any]]
) -> None:
    outsider = people["outsider"]
    client = outsider["client"]
    for meta in (key, shared_key):
        arn = meta["Arn"]
        assert_kms_error(
            "AccessDeniedException",
            client.encrypt,
            KeyId=arn,
            Plaintext=b"x",
            message=_denied(
                outsider["arn"], "Encrypt", arn, _implicit("identity-based", "Encrypt")
            ),
        )
        assert_kms_error("AccessDeniedException", client.describe_key, KeyId=arn)
    assert_kms_error(
        "AccessDeniedException",
        client.create_key,
        message=_denied(
            outsider["arn"], "CreateKey", "*", _implicit("identity-based", "CreateKey")
        ),
    )
    assert_kms_error("AccessDeniedException", client.list_keys)


def test_other_account_uses_a_key_its_policy_opens_to_it(
    kms: Any, shared_key: dict[str, Any], other_account: dict[str, Any]
) -> None:
    bob, arn = other_account["client"], shared_key["Arn"]
    blob = bob.encrypt(KeyId=arn, Plaintext=b"from afar")["CiphertextBlob"]
    assert bob.decrypt(CiphertextBlob=blob)["Plaintext"] == b"from afar"
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"from afar"
    assert bob.describe_key(KeyId=arn)["KeyMetadata"]["Arn"] == arn
    for call, kwargs, action in (
        (bob.disable_key, {}, "DisableKey"),
        (bob.generate_data_key, {"KeySpec": "AES_256"}, "GenerateDataKey"),
    ):
        assert_kms_error(
            "AccessDeniedException",
            call,
            KeyId=arn,
            message=_denied(other_account["arn"], action, arn, _implicit("resource-based", action)),
            **kwargs,
        )


def test_deny_on_encryption_context_beats_every_allow(
    kms: Any, shared_key: dict[str, Any], people: dict[str, dict[str, Any]]
) -> None:
    arn = shared_key["Arn"]
    user = people["keyuser"]
    secret = {"classification": "secret"}
    blob = user["client"].encrypt(KeyId=arn, Plaintext=b"s", EncryptionContext=secret)[
        "CiphertextBlob"
    ]
    explicit = "with an explicit deny in a resource-based policy"
    for who, client in ((user["arn"], user["client"]), (f"arn:aws:iam::{ACCOUNT}:user/admin", kms)):
        assert_kms_error(
            "AccessDeniedException",
            client.decrypt,
            CiphertextBlob=blob,
            EncryptionContext=secret,
            message=_denied(who, "Decrypt", arn, explicit),
        )
    public = {"classification": "public"}
    blob = user["client"].encrypt(KeyId=arn, Plaintext=b"p", EncryptionContext=public)[
        "CiphertextBlob"
    ]
    assert (
        user["client"].decrypt(CiphertextBlob=blob, EncryptionContext=public)["Plaintext"] == b"p"
    )


def test_get_key_policy_and_list_key_policies_of_a_default_key(
    kms: Any, key: dict[str, Any]
) -> None:
    got = kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")
    assert got["PolicyName"] == "default"
    assert json.loads(got["Policy"]) == {
        "Version": "2012-10-17",
        "Id": "key-default-1",
        "Statement": [_root()],
    }
    listed = kms.list_key_policies(KeyId=key["Arn"])
    assert listed["PolicyNames"] == ["default"] and listed["Truncated"] is False
    assert_kms_error(
        "NotFoundException", kms.get_key_policy, KeyId=key["KeyId"], PolicyName="other"
    )


def test_put_key_policy_replaces_the_policy(kms: Any, key: dict[str, Any]) -> None:
    policy = _policy(_root(), {**_root(), "Sid": "Second", "Action": "kms:Describe*"})
    kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=policy)
    assert kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"] == policy


def test_put_key_policy_refuses_a_policy_that_locks_the_caller_out(
    kms: Any, key: dict[str, Any], people: dict[str, dict[str, Any]]
) -> None:
    only_user = _policy(
        {
            "Effect": "Allow",
            "Principal": {"AWS": people["keyuser"]["arn"]},
            "Action": "kms:*",
            "Resource": "*",
        }
    )
    assert_kms_error(
        "MalformedPolicyDocumentException",
        kms.put_key_policy,
        KeyId=key["KeyId"],
        PolicyName="default",
        Policy=only_user,
        message=LOCKOUT,
    )
    assert_kms_error(
        "MalformedPolicyDocumentException", kms.create_key, Policy=only_user, message=LOCKOUT
    )
    kms.put_key_policy(
        KeyId=key["KeyId"],
        PolicyName="default",
        Policy=only_user,
        BypassPolicyLockoutSafetyCheck=True,
    )
    assert_kms_error("AccessDeniedException", kms.describe_key, KeyId=key["Arn"])
    user = people["keyuser"]["client"]
    assert user.describe_key(KeyId=key["Arn"])["KeyMetadata"]["KeyId"] == key["KeyId"]


@pytest.mark.parametrize(
    ("policy", "error"),
    [
        ("not json", "MalformedPolicyDocumentException"),
        (_policy({**_root(), "Effect": "Maybe"}), "MalformedPolicyDocumentException"),
        (_policy({**_root(), "Action": "encrypt"}), "MalformedPolicyDocumentException"),
        (
            _policy({**_root(), "Condition": {"StringEqualz": {"kms:CallerAccount": "1"}}}),
            "MalformedPolicyDocumentException",
        ),
        (
            _policy({**_root(), "Principal": {"AWS": "arn:aws:iam::111122223333:user/nobody-x"}}),
            "MalformedPolicyDocumentException",
        ),
        (_policy(_root()) + " " * 32768, "LimitExceededException"),
    ],
    ids=["not json", "effect", "action", "operator", "unknown principal", "too large"],
)
def test_malformed_policy_is_refused(
    kms: Any, key: dict[str, Any], policy: str, error: str
) -> None:
    assert_kms_error(
        error, kms.put_key_policy, KeyId=key["KeyId"], PolicyName="default", Policy=policy
    )
    assert_kms_error(error, kms.create_key, Policy=policy)
    assert json.loads(kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"])[
        "Statement"
    ] == [_root()]


def test_malformed_key_policy_texts_are_aws_texts(kms: Any, key: dict[str, Any]) -> None:
    """The texts AWS KMS returns (CreateKey/PutKeyPolicy responses quoted in
    terraform-aws-modules/terraform-aws-eks#2163 and awslabs/minimum-viable-dataspace-on-aws#5)."""
    no_principal = {k: v for k, v in _root().items() if k != "Principal"}
    stranger = {**_root(), "Principal": {"AWS": "arn:aws:iam::111122223333:user/nobody-x"}}
    for statement, message in (
        (no_principal, "Policy contains a statement with no principal."),
        (stranger, "Policy contains a statement with one or more invalid principals."),
    ):
        policy = _policy(statement)
        assert_kms_error(
            "MalformedPolicyDocumentException",
            kms.put_key_policy,
            KeyId=key["KeyId"],
            PolicyName="default",
            Policy=policy,
            message=message,
        )
        assert_kms_error(
            "MalformedPolicyDocumentException", kms.create_key, Policy=policy, message=message
        )


def _write(tmp_path: Any, document: dict[str, Any] | str) -> str:
    path = tmp_path / "policy.json"
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return str(path)


def test_identity_policy_put_list_delete_takes_effect_on_a_running_server(
    server: Any, tmp_path: Any
) -> None:
    carol = new_principal(server, "carol")
    assert_kms_error("AccessDeniedException", carol["client"].list_keys)
    allow_list = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "kms:ListKeys", "Resource": "*"}],
    }
    server.admin("put-user-policy", carol["name"], _write(tmp_path, allow_list))
    listed = json.loads(server.admin("list-user-policies", carol["name"]).stdout)
    assert listed == {"PolicyNames": ["default"]}
    eventually(lambda: carol["client"].list_keys())
    server.admin("delete-user-policy", carol["name"])
    assert json.loads(server.admin("list-user-policies", carol["name"]).stdout) == {
        "PolicyNames": []
    }
    eventually(lambda: assert_kms_error("AccessDeniedException", carol["client"].list_keys))


def test_put_user_policy_refuses_a_malformed_or_key_policy_document(
    server: Any, tmp_path: Any
) -> None:
    name = new_principal(server, "dave")["name"]
    with_principal = {"Version": "2012-10-17", "Statement": [{**_root()}]}
    for document in ("{not json", with_principal):
        out = run_strongroom(
            ["admin", "put-user-policy", name, _write(tmp_path, document), *server.storage_args()],
            check=False,
        )
        assert out.returncode != 0 and "MalformedPolicyDocumentException" in out.stderr


# Every operation the server answers, with parameters that pass its own checks: a principal
# without permission must be refused each of them, on a key of its account.
def _every_operation(key: dict[str, Any], alias: str, blob: bytes) -> dict[str, dict[str, Any]]:
    k = {"KeyId": key["Arn"]}
    store = {"CustomKeyStoreId": "cks-0123456789abcdef0"}
    return {
        "CreateKey": {},
        "DescribeKey": k,
        "ListKeys": {},
        "EnableKey": k,
        "DisableKey": k,
        "UpdateKeyDescription": {**k, "Description": "x"},
        "ScheduleKeyDeletion": {**k, "PendingWindowInDays": 7},
        "CancelKeyDeletion": k,
        "ReplicateKey": {**k, "ReplicaRegion": "eu-west-1"},
        "UpdatePrimaryRegion": {**k, "PrimaryRegion": "eu-west-1"},
        "CreateAlias": {"AliasName": "alias/denied-new", "TargetKeyId": key["Arn"]},
        "UpdateAlias": {"AliasName": alias, "TargetKeyId": key["Arn"]},
        "DeleteAlias": {"AliasName": alias},
        "ListAliases": {},
        "TagResource": {**k, "Tags": [{"TagKey": "a", "TagValue": "b"}]},
        "UntagResource": {**k, "TagKeys": ["a"]},
        "ListResourceTags": k,
        "GetKeyPolicy": {**k, "PolicyName": "default"},
        "PutKeyPolicy": {**k, "PolicyName": "default", "Policy": _policy(_root())},
        "ListKeyPolicies": k,
        "Encrypt": {**k, "Plaintext": b"x"},
        "Decrypt": {"CiphertextBlob": blob},
        "ReEncrypt": {"CiphertextBlob": blob, "DestinationKeyId": key["Arn"]},
        "GenerateDataKey": {**k, "KeySpec": "AES_256"},
        "GenerateDataKeyWithoutPlaintext": {**k, "KeySpec": "AES_256"},
        "GenerateDataKeyPair": {**k, "KeyPairSpec": "ECC_NIST_P256"},
        "GenerateDataKeyPairWithoutPlaintext": {**k, "KeyPairSpec": "ECC_NIST_P256"},
        "GenerateRandom": {"NumberOfBytes": 8},
        "GetPublicKey": k,
        "Sign": {**k, "Message": b"m", "SigningAlgorithm": "ECDSA_SHA_256"},
        "Verify": {
            **k,
            "Message": b"m",
            "Signature": b"s",
            "SigningAlgorithm": "ECDSA_SHA_256",
        },
        "GenerateMac": {**k, "Message": b"m", "MacAlgorithm": "HMAC_SHA_256"},
        "VerifyMac": {**k, "Message": b"m", "MacAlgorithm": "HMAC_SHA_256", "Mac": b"m" * 32},
        "DeriveSharedSecret": {
            **k,
            "KeyAgreementAlgorithm": "ECDH",
            "PublicKey": b"0" * 91,
        },
        "Encapsulate": {**k, "EncapsulationAlgorithm": "ML_KEM"},
        "Decapsulate": {
            **k,
            "SharedSecretCiphertextBlob": b"c" * 1088,
            "EncapsulationAlgorithm": "ML_KEM",
        },
        "CreateGrant": {
            **k,
            "GranteePrincipal": f"arn:aws:iam::{ACCOUNT}:root",
            "Operations": ["Decrypt"],
        },
        "ListGrants": k,
        "ListRetirableGrants": {"RetiringPrincipal": f"arn:aws:iam::{ACCOUNT}:root"},
        "RetireGrant": {**k, "GrantId": "0" * 64},
        "RevokeGrant": {**k, "GrantId": "0" * 64},
        "EnableKeyRotation": {**k, "RotationPeriodInDays": 90},
        "DisableKeyRotation": k,
        "GetKeyRotationStatus": k,
        "GetKeyLastUsage": k,
        "RotateKeyOnDemand": k,
        "ListKeyRotations": k,
        "GetParametersForImport": {
            **k,
            "WrappingAlgorithm": "RSAES_OAEP_SHA_256",
            "WrappingKeySpec": "RSA_2048",
        },
        "ImportKeyMaterial": {
            **k,
            "ImportToken": b"t" * 41,
            "EncryptedKeyMaterial": b"m" * 256,
            "ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE",
        },
        "DeleteImportedKeyMaterial": k,
        "CreateCustomKeyStore": {
            "CustomKeyStoreName": "denied",
            "CloudHsmClusterId": "cluster-aaaaaaaaaaa",
            "TrustAnchorCertificate": "pem",
            "KeyStorePassword": "password-1",
        },
        "DescribeCustomKeyStores": {},
        "ConnectCustomKeyStore": store,
        "DisconnectCustomKeyStore": store,
        "UpdateCustomKeyStore": {**store, "NewCustomKeyStoreName": "x"},
        "DeleteCustomKeyStore": store,
    }


def test_every_registered_operation_has_a_row_in_the_walk() -> None:
    from strongroom.handlers.registry import HANDLERS

    rows = _every_operation({"Arn": "arn"}, "alias/a", b"")
    assert sorted(set(HANDLERS) - set(rows)) == []


def test_principal_without_permission_is_refused_every_operation(
    server: Any, kms: Any, key: dict[str, Any], people: dict[str, dict[str, Any]]
) -> None:
    from botocore import xform_name

    from strongroom.handlers.registry import HANDLERS

    outsider = people["outsider"]
    client = make_client(
        server.endpoint, outsider["AccessKeyId"], outsider["SecretAccessKey"], validate=False
    )
    alias = f"alias/walk-{key['KeyId']}"
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    refused = []
    for operation, params in _every_operation(key, alias, blob).items():
        if operation not in HANDLERS:
            continue
        with pytest.raises(ClientError) as info:
            getattr(client, xform_name(operation))(**params)
        error = info.value.response["Error"]
        assert error["Code"] == "AccessDeniedException", (operation, error)
        assert error["Message"].startswith(f"User: {outsider['arn']} is not authorized")
        refused.append(operation)
    assert len(refused) == len(HANDLERS)
