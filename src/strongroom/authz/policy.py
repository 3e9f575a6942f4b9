"""Policy documents (key policies and identity policies): parse, validate, match.

``parse_policy`` turns the JSON text of a key policy (``CreateKey``/``PutKeyPolicy``) or an
IAM identity policy into frozen ``Policy``/``Statement`` records, with every wildcard
pattern compiled once. Grammar: IAM JSON policy element reference
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements.html) and the
KMS key policy page (https://docs.aws.amazon.com/kms/latest/developerguide/key-policies.html).

Limits and errors, from the KMS service model (``PolicyType``: 1-32768, pattern
``[\\u0009\\u000A\\u000D\\u0020-\\u00FF]+``) and the ``CreateKey``/``PutKeyPolicy`` docs:

* more than 32768 bytes → ``LimitExceededException``;
* bad characters, bad JSON, a bad element → ``MalformedPolicyDocumentException`` whose
  message names the statement (index and Sid) and the element;
* a statement without ``Action``/``NotAction`` or ``Resource``/``NotResource`` is accepted
  but never matches ("statements missing Resource/Action are accepted but ineffective").
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from strongroom.authz.conditions import (
    ConditionClause,
    ContextValue,
    Test,
    glob_regex,
    parse_operator,
    value_is_valid,
)
from strongroom.domain.errors import LimitExceededException, MalformedPolicyDocumentException
from strongroom.domain.lru import LruDict

MAX_POLICY_BYTES = 32768
VERSIONS = ("2012-10-17", "2008-10-17")
NO_PRINCIPAL = "Policy contains a statement with no principal."
VARIABLES_VERSION = "2012-10-17"  # policy variables exist only from this version on

_ALLOWED_CHARS_RE = re.compile(r"[\u0009\u000A\u000D\u0020-\u00FF]+")
_ACCOUNT_RE = re.compile(r"\d{12}")
# Principal ARNs a key policy may name (IAM: "AWS account and root user", "IAM users",
# "IAM roles", "Role sessions", "Federated user sessions").
_PRINCIPAL_ARN_RE = re.compile(
    r"arn:aws[a-z-]*:(?:"
    r"iam::\d{12}:(?:root|user/[\w+=,.@/-]+|role/[\w+=,.@/-]+)"
    r"|sts::\d{12}:(?:assumed-role/[\w+=,.@-]+/[\w+=,.@-]+|federated-user/[\w+=,.@-]+)"
    r")"
)
_ACTION_RE = re.compile(r"\*|[A-Za-z0-9-]+:[A-Za-z0-9*?]+")
_SERVICE_RE = re.compile(r"[a-z0-9.-]+\.amazonaws\.com(?:\.cn)?")

_TOP_LEVEL = frozenset({"Version", "Id", "Statement"})
_STATEMENT_ELEMENTS = frozenset(
    {
        "Sid",
        "Effect",
        "Principal",
        "NotPrincipal",
        "Action",
        "NotAction",
        "Resource",
        "NotResource",
        "Condition",
    }
)
_PRINCIPAL_TYPES = frozenset({"AWS", "Service", "Federated", "CanonicalUser"})


class PolicyKind(StrEnum):
    """Whose policy: a key's (resource-based, names principals), a user's/role's, or a
    role's trust policy (resource-based, about assuming that role: no Resource element)."""

    KEY = "key"
    IDENTITY = "identity"
    TRUST = "trust"


class Effect(StrEnum):
    ALLOW = "Allow"
    DENY = "Deny"


@dataclass(frozen=True, slots=True)
class PrincipalSet:
    """A ``Principal``/``NotPrincipal`` value: ``*`` or named AWS principals and services.

    AWS principals are normalised: a bare account id becomes its root ARN.
    """

    anyone: bool
    aws: frozenset[str]
    services: frozenset[str]


@dataclass(frozen=True, slots=True)
class Patterns:
    """A list of ``*``/``?`` patterns (actions, resources); ``ignore_case`` for actions."""

    values: tuple[str, ...]
    ignore_case: bool
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # One alternation compiled once: the hot path matches each request in a single call.
        union = "|".join(f"(?:{glob_regex(v).pattern})" for v in self.values)
        flags = re.DOTALL | (re.IGNORECASE if self.ignore_case else 0)
        object.__setattr__(self, "_regex", re.compile(union, flags))

    def matches(self, value: str) -> bool:
        return self._regex.fullmatch(value) is not None


@dataclass(frozen=True, slots=True)
class Statement:
    """One statement. Of each pair (Principal/NotPrincipal, Action/NotAction,
    Resource/NotResource) at most one is set. Without Action/NotAction or
    Resource/NotResource the statement never matches; without a principal element it is an
    identity-policy statement, which applies to the caller whose policy it is."""

    index: int
    sid: str | None
    effect: Effect
    principal: PrincipalSet | None
    not_principal: PrincipalSet | None
    action: Patterns | None
    not_action: Patterns | None
    resource: Patterns | None
    not_resource: Patterns | None
    conditions: tuple[ConditionClause, ...]
    # The clauses cheapest first.
    ordered_conditions: tuple[ConditionClause, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.conditions, key=lambda c: c.cost))
        object.__setattr__(self, "ordered_conditions", ordered)

    def matches_action(self, action: str) -> bool:
        if self.action is not None:
            return self.action.matches(action)
        if self.not_action is not None:
            return not self.not_action.matches(action)
        return False  # no Action element: accepted, never effective

    def matches_resource(self, resource: str) -> bool:
        if self.resource is not None:
            return self.resource.matches(resource)
        if self.not_resource is not None:
            return not self.not_resource.matches(resource)
        return False


MAX_SCANS = 256  # memoized (action, resource, principal, static context) scans per policy

# action, resource (``"*"`` for a policy whose statements match every resource), principal
# ARN, the static context's fingerprint (None: not given)
ScanKey = tuple[str, str, str, frozenset[tuple[str, ContextValue]] | None]
Candidate = tuple[Statement, bool, tuple[Test, ...]]
"""A statement that may apply, whether it names the caller itself (True) or the caller's
account (False), and the tests of its conditions still to run per request."""
Candidates = tuple[Candidate, ...]


@dataclass(frozen=True, slots=True)
class Policy:
    """A parsed policy document.

    ``condition_keys`` are the (lower-cased) condition keys its statements read. ``scans``
    memoizes what depends only on the action, the resource and the principal (see
    ``authz.evaluate``): the statements that may apply, each with the conditions left to
    evaluate per request; at most ``MAX_SCANS``, the least recently used going first.
    ``any_resource``: no statement's match depends on the resource (each has ``"*"`` among
    its Resource values, or no Resource/NotResource at all), so the scans of one action and
    principal serve every key that shares the policy."""

    version: str
    id: str | None
    statements: tuple[Statement, ...]
    kind: PolicyKind
    condition_keys: frozenset[str] = field(init=False, repr=False, compare=False)
    scans: LruDict[ScanKey, Candidates] = field(init=False, repr=False, compare=False)
    any_resource: bool = field(init=False, repr=False, compare=False)
    _reads: dict[str, bool] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        keys = frozenset().union(
            *(c.referenced_keys for st in self.statements for c in st.conditions)
        )
        object.__setattr__(self, "condition_keys", keys)
        object.__setattr__(self, "scans", LruDict(MAX_SCANS))
        any_resource = all(
            st.not_resource is None and (st.resource is None or "*" in st.resource.values)
            for st in self.statements
        )
        object.__setattr__(self, "any_resource", any_resource)
        object.__setattr__(self, "_reads", {})

    def reads(self, prefix: str) -> bool:
        """Whether a condition reads a key that starts with ``prefix`` (lower-case)."""
        found = self._reads.get(prefix)
        if found is None:
            found = self._reads[prefix] = any(k.startswith(prefix) for k in self.condition_keys)
        return found

    @property
    def variables(self) -> bool:
        """Whether ``${...}`` in values are policy variables (Version 2012-10-17 only)."""
        return self.version == VARIABLES_VERSION


# A trust policy statement has no Resource: it is about its role (IAM "Role terms and
# concepts", trust policy); it matches the role it is attached to.
_ITS_ROLE = Patterns(("*",), ignore_case=False)


# --- parsing ---------------------------------------------------------------------------------


def _malformed(where: str, problem: str) -> MalformedPolicyDocumentException:
    return MalformedPolicyDocumentException(f"{where}: {problem}" if where else problem)


def _where(index: int, sid: str | None) -> str:
    return f"Statement[{index}]" + (f" (Sid {sid!r})" if sid else "")


def _strings(value: object, where: str, element: str) -> tuple[str, ...]:
    """A string or a non-empty list of strings."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return tuple(v for v in value if isinstance(v, str))
    raise _malformed(where, f"{element} must be a string or a non-empty list of strings")


def _principal_arn(value: str, where: str, element: str) -> str:
    if value == "*":
        return value
    if _ACCOUNT_RE.fullmatch(value):
        return f"arn:aws:iam::{value}:root"
    if _PRINCIPAL_ARN_RE.fullmatch(value):
        return value
    raise _malformed(
        where,
        f"Policy contains a statement with one or more invalid principals: {element} "
        f"{value!r} is not '*', an account id or an IAM principal ARN",
    )


def _principal(value: object, where: str, element: str) -> PrincipalSet:
    if value == "*":
        return PrincipalSet(anyone=True, aws=frozenset(), services=frozenset())
    if not isinstance(value, dict) or not value:
        raise _malformed(where, f"{element} must be '*' or an object such as {{\"AWS\": ...}}")
    unknown = sorted(set(value) - _PRINCIPAL_TYPES)
    if unknown:
        raise _malformed(where, f"{element} has unknown principal type {unknown[0]!r}")
    aws: frozenset[str] = frozenset()
    if "AWS" in value:
        names = _strings(value["AWS"], where, f"{element}.AWS")
        aws = frozenset(_principal_arn(v, where, f"{element}.AWS") for v in names)
    services: frozenset[str] = frozenset()
    if "Service" in value:
        services = frozenset(_strings(value["Service"], where, f"{element}.Service"))
        bad = sorted(s for s in services if not _SERVICE_RE.fullmatch(s))
        if bad:
            raise _malformed(where, f"{element}.Service {bad[0]!r} is not a service principal")
    for other in ("Federated", "CanonicalUser"):
        if other in value:
            _strings(value[other], where, f"{element}.{other}")  # shape only; never matches
    return PrincipalSet(anyone="*" in aws, aws=aws - {"*"}, services=services)


def _actions(value: object, where: str, element: str) -> Patterns:
    actions = _strings(value, where, element)
    for action in actions:
        if not _ACTION_RE.fullmatch(action):
            raise _malformed(
                where, f"{element} {action!r} is not '*' or of the form 'kms:<Operation>'"
            )
    return Patterns(actions, ignore_case=True)


def _resources(value: object, where: str, element: str) -> Patterns:
    resources = _strings(value, where, element)
    for resource in resources:
        if resource != "*" and not resource.startswith("arn:"):
            raise _malformed(where, f"{element} {resource!r} is not '*' or an ARN")
    return Patterns(resources, ignore_case=False)


def _condition_values(value: object, where: str, label: str) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    out: list[str] = []
    for item in items:
        if isinstance(item, bool):
            out.append("true" if item else "false")
        elif isinstance(item, str):
            out.append(item)
        elif isinstance(item, int | float):
            out.append(str(item))
        else:
            raise _malformed(
                where, f"Condition {label} values must be strings, numbers or booleans"
            )
    return tuple(out)


def _conditions(value: object, where: str) -> tuple[ConditionClause, ...]:
    if not isinstance(value, dict):
        raise _malformed(where, "Condition must be an object of operator → {key: values}")
    clauses: list[ConditionClause] = []
    for op_text, keys in value.items():
        operator = parse_operator(op_text)
        if operator is None:
            raise _malformed(where, f"Condition has unknown operator {op_text!r}")
        if not isinstance(keys, dict) or not keys:
            raise _malformed(
                where, f"Condition {op_text} must be a non-empty object of key → values"
            )
        for key, raw in keys.items():
            label = f"{op_text} {key!r}"
            if not key:
                raise _malformed(where, f"Condition {op_text} has an empty key")
            values = _condition_values(raw, where, label)
            if operator.base is None:
                bad = [v for v in values if v.lower() not in ("true", "false")]
            else:
                kind = operator.base.kind
                bad = [v for v in values if not value_is_valid(kind, v)]
            if bad:
                raise _malformed(where, f"Condition {label} has invalid value {bad[0]!r}")
            clauses.append(ConditionClause(operator, key.lower(), values))
    return tuple(clauses)


def _pair(
    body: Mapping[str, object], first: str, second: str, where: str
) -> tuple[object | None, object | None]:
    if first in body and second in body:
        raise _malformed(where, f"a statement cannot have both {first} and {second}")
    return body.get(first), body.get(second)


def _statement(index: int, body: object, kind: PolicyKind) -> Statement:
    if not isinstance(body, dict):
        raise _malformed(f"Statement[{index}]", "a statement must be an object")
    sid_raw = body.get("Sid")
    if sid_raw is not None and not isinstance(sid_raw, str):
        raise _malformed(f"Statement[{index}]", "Sid must be a string")
    sid = sid_raw
    where = _where(index, sid)
    unknown = sorted(set(body) - _STATEMENT_ELEMENTS)
    if unknown:
        raise _malformed(where, f"unknown element {unknown[0]!r}")
    effect_raw = body.get("Effect")
    if effect_raw not in (Effect.ALLOW.value, Effect.DENY.value):
        raise _malformed(where, f"Effect must be 'Allow' or 'Deny', not {effect_raw!r}")
    principal, not_principal = _pair(body, "Principal", "NotPrincipal", where)
    if kind is PolicyKind.KEY and principal is None and not_principal is None:
        # AWS KMS's own text, which names no statement (a CreateKey response quoted in
        # terraform-aws-modules/terraform-aws-eks#2163).
        raise MalformedPolicyDocumentException(NO_PRINCIPAL)
    if kind is PolicyKind.TRUST and principal is None and not_principal is None:
        raise _malformed(where, "a trust policy statement must have a Principal or NotPrincipal")
    if kind is PolicyKind.IDENTITY and (principal is not None or not_principal is not None):
        raise _malformed(where, "an identity policy statement cannot have a Principal")
    action, not_action = _pair(body, "Action", "NotAction", where)
    resource, not_resource = _pair(body, "Resource", "NotResource", where)
    if kind is PolicyKind.TRUST:
        if resource is not None or not_resource is not None:
            raise _malformed(where, "Has prohibited field Resource")  # IAM's text
        resources: Patterns | None = _ITS_ROLE
    else:
        resources = None if resource is None else _resources(resource, where, "Resource")
    condition = body.get("Condition")
    return Statement(
        index=index,
        sid=sid,
        effect=Effect(effect_raw),
        principal=None if principal is None else _principal(principal, where, "Principal"),
        not_principal=(
            None if not_principal is None else _principal(not_principal, where, "NotPrincipal")
        ),
        action=None if action is None else _actions(action, where, "Action"),
        not_action=None if not_action is None else _actions(not_action, where, "NotAction"),
        resource=resources,
        not_resource=(
            None if not_resource is None else _resources(not_resource, where, "NotResource")
        ),
        conditions=() if condition is None else _conditions(condition, where),
    )


def check_text(text: str) -> None:
    """Size and character checks of the ``PolicyType`` shape, before any parsing.

    Raises LimitExceededException (over 32768 bytes) or MalformedPolicyDocumentException.
    """
    size = len(text.encode("utf-8"))
    if size > MAX_POLICY_BYTES:
        raise LimitExceededException(
            f"Policy document is {size} bytes; the limit is {MAX_POLICY_BYTES} bytes"
        )
    if not text or not _ALLOWED_CHARS_RE.fullmatch(text):
        bad = next((c for c in text if not _ALLOWED_CHARS_RE.fullmatch(c)), "")
        position = text.find(bad) if bad else 0
        raise MalformedPolicyDocumentException(
            "Policy document is empty"
            if not text
            else f"Policy document contains character U+{ord(bad):04X} at offset {position}, "
            "outside the allowed set [\\u0009\\u000A\\u000D\\u0020-\\u00FF]"
        )


def parse_policy(text: str, kind: PolicyKind = PolicyKind.KEY) -> Policy:
    """Parse and validate a policy document.

    Raises LimitExceededException when ``text`` exceeds 32768 bytes and
    MalformedPolicyDocumentException (naming the statement and element) for anything else
    that is wrong: characters, JSON syntax, Version, Statement shape, Effect, Principal
    forms (key and trust policies need one; identity policies may not have one; trust
    policies may not have a Resource), Action and Resource
    forms, unknown condition operators and values that do not suit their operator.
    """
    check_text(text)
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise MalformedPolicyDocumentException(
            f"Policy document is not valid JSON: {exc}"
        ) from None
    if not isinstance(document, dict):
        raise MalformedPolicyDocumentException("Policy document must be a JSON object")
    unknown = sorted(set(document) - _TOP_LEVEL)
    if unknown:
        raise MalformedPolicyDocumentException(f"Policy has unknown element {unknown[0]!r}")
    version = document.get("Version", VERSIONS[1])
    if version not in VERSIONS:
        raise MalformedPolicyDocumentException(
            f"Version must be '2012-10-17' or '2008-10-17', not {version!r}"
        )
    policy_id = document.get("Id")
    if policy_id is not None and not isinstance(policy_id, str):
        raise MalformedPolicyDocumentException("Id must be a string")
    raw = document.get("Statement")
    if isinstance(raw, dict):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise MalformedPolicyDocumentException(
            "Statement must be an object or a non-empty list of objects"
        )
    statements = tuple(_statement(i, body, kind) for i, body in enumerate(raw))
    return Policy(version=str(version), id=policy_id, statements=statements, kind=kind)


def default_key_policy(account: str) -> str:
    """The policy AWS attaches when CreateKey has no Policy (KMS "Default key policy")."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Id": "key-default-1",
            "Statement": [
                {
                    "Sid": "Enable IAM User Permissions",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                    "Action": "kms:*",
                    "Resource": "*",
                }
            ],
        },
        indent=2,
    )


def default_trust_policy(account: str) -> str:
    """The trust policy of a role created without one: its account may assume it, so
    whoever an identity policy of that account allows ``sts:AssumeRole`` on the role."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                    "Action": "sts:AssumeRole",
                }
            ],
        },
        indent=2,
    )


def named_principals(policy: Policy) -> frozenset[str]:
    """Every IAM principal ARN the policy names in Principal or NotPrincipal (roots included).

    CreateKey/PutKeyPolicy refuse a policy naming a principal that does not exist
    ("Policy contains a statement with one or more invalid principals."); the service checks
    these against its identities.
    """
    names: set[str] = set()
    for st in policy.statements:
        for ps in (st.principal, st.not_principal):
            if ps is not None:
                names |= ps.aws
    return frozenset(names)
