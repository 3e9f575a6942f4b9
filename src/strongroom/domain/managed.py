"""AWS managed keys: the services that have one, and what each key looks like.

An AWS managed key (``KeyManager`` AWS) lives in the customer's account under the alias
``alias/aws/<service>``. AWS creates it the first time the alias is used: "Amazon Web
Services services use DescribeKey to create Amazon Web Services managed keys from a
predefined Amazon Web Services alias with no key ID" (``DescribeKey`` doc, KMS service model).
Until then ListAliases shows the predefined alias without a ``TargetKeyId`` (``ListAliases``
doc). Its key policy lets the account's principals use it only through its service
(``kms:ViaService``) and read its metadata directly; nothing else, so every change (policy,
state, description, aliases, tags, deletion, rotation) is refused by authorization alone
(AWS KMS Developer Guide, "AWS managed keys" and "kms:ViaService"). AWS rotates it every
year and the customer cannot change that (``EnableKeyRotation`` doc).

The table holds the services whose key policy AWS generates is known word for word: Id,
statements, actions and ``ViaService`` host, as AWS documents them (EBS: "kms:CallerAccount";
DynamoDB, EFS: the services' encryption guides) or as GetKeyPolicy returns them from real
accounts. AWS owned keys are not in any account and never visible through the API.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

ALIAS_PREFIX = "alias/aws/"
ROTATION_PERIOD_DAYS = 365
"""AWS managed keys rotate every year (since May 2022; ``EnableKeyRotation`` doc)."""

_USE = ("kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*")
_METADATA = ("kms:Describe*", "kms:Get*", "kms:List*")


@dataclass(frozen=True, slots=True)
class ManagedService:
    """One AWS service's managed key.

    ``via_service`` is the first label of the ``kms:ViaService`` host
    (``<via_service>.<region>.amazonaws.com``); ``data`` completes the description
    "Default key that protects my <data> when no other key is defined". ``any_region``
    actions get a second statement with the same Sid that allows them through the service in
    any Region (Secrets Manager); ``describing_service`` is a service principal allowed to
    read the key's metadata directly, with its statement's Sid.
    """

    name: str
    policy_id: str
    sid: str
    actions: tuple[str, ...]
    via_service: str
    data: str
    metadata_actions: tuple[str, ...] = (*_METADATA, "kms:RevokeGrant")
    any_region_actions: tuple[str, ...] = ()
    describing_service: tuple[str, str] | None = None

    @property
    def alias(self) -> str:
        return ALIAS_PREFIX + self.name

    @property
    def description(self) -> str:
        return f"Default key that protects my {self.data} when no other key is defined"


def _through(label: str, users: str | None = None) -> str:
    return (
        f"Allow access through {label} for all principals in the account that are "
        f"authorized to use {users or label}"
    )


_SERVICES = (
    ManagedService(
        "backup",
        "auto-backup-1",
        _through("Backup", "Backup Storage"),
        ("kms:CreateGrant", "kms:Decrypt", "kms:GenerateDataKey*"),
        "backup",
        "Backup data",
    ),
    ManagedService(
        "dynamodb",
        "auto-dynamodb-1",
        _through("Amazon DynamoDB"),
        (*_USE, "kms:CreateGrant", "kms:DescribeKey"),
        "dynamodb",
        "DynamoDB data",
        describing_service=(
            "Allow DynamoDB Service with service principal name dynamodb.amazonaws.com to "
            "describe the key directly",
            "dynamodb.amazonaws.com",
        ),
    ),
    ManagedService(
        "ebs",
        "auto-ebs-2",
        _through("EBS"),
        (*_USE, "kms:CreateGrant", "kms:DescribeKey"),
        "ec2",
        "EBS volumes",
    ),
    ManagedService(
        "elasticfilesystem",
        "auto-elasticfilesystem-1",
        "Allow access to EFS for all principals in the account that are authorized to use EFS",
        (*_USE, "kms:CreateGrant", "kms:DescribeKey"),
        "elasticfilesystem",
        "EFS filesystems",
    ),
    ManagedService(
        "es",
        "auto-es-2",
        _through("OpenSearch Service"),
        (*_USE, "kms:CreateGrant", "kms:DescribeKey"),
        "es",
        "Amazon OpenSearch Service (successor to Amazon Elasticsearch Service) data",
        describing_service=(
            "Allow OpenSearch service principals to describe the key directly",
            "es.amazonaws.com",
        ),
    ),
    ManagedService(
        "kafka",
        "auto-kafka-1",
        _through("Kafka"),
        (*_USE, "kms:CreateGrant", "kms:ListGrants", "kms:DescribeKey"),
        "kafka",
        "Kafka data",
    ),
    ManagedService(
        "lambda",
        "auto-awslambda",
        _through("AWS Lambda"),
        (*_USE, "kms:CreateGrant", "kms:DescribeKey"),
        "lambda",
        "Lambda functions",
    ),
    ManagedService(
        "rds",
        "auto-rds-2",
        _through("RDS"),
        (*_USE, "kms:CreateGrant", "kms:ListGrants", "kms:DescribeKey"),
        "rds",
        "RDS database volumes",
    ),
    ManagedService(
        "s3",
        "auto-s3-2",
        _through("S3"),
        (*_USE, "kms:DescribeKey"),
        "s3",
        "S3 objects",
        metadata_actions=_METADATA,
    ),
    ManagedService(
        "secretsmanager",
        "auto-secretsmanager-2",
        _through("AWS Secrets Manager"),
        ("kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:CreateGrant", "kms:DescribeKey"),
        "secretsmanager",
        "Secrets Manager data",
        any_region_actions=("kms:GenerateDataKey*",),
    ),
    ManagedService(
        "sns",
        "auto-sns-1",
        _through("SNS"),
        (
            "kms:Decrypt",
            "kms:GenerateDataKey*",
            "kms:CreateGrant",
            "kms:ListGrants",
            "kms:DescribeKey",
        ),
        "sns",
        "SNS data",
    ),
    ManagedService(
        "sqs",
        "auto-sqs-1",
        _through("Simple Queue Service (SQS)", "SQS"),
        (*_USE, "kms:CreateGrant", "kms:DescribeKey"),
        "sqs",
        "SQS messages",
    ),
    ManagedService(
        "ssm",
        "auto-ssm-1",
        _through("SSM"),
        (*_USE, "kms:DescribeKey"),
        "ssm",
        "SSM parameters",
        metadata_actions=_METADATA,
    ),
)

MANAGED_SERVICES: Mapping[str, ManagedService] = {s.alias: s for s in _SERVICES}
"""The AWS managed key of each predefined alias (``alias/aws/<service>``), by alias name."""


def managed_service(alias_name: str) -> ManagedService | None:
    """The service whose AWS managed key ``alias_name`` names; None for any other alias."""
    return MANAGED_SERVICES.get(alias_name)
