"""Parameter Store: PutParameter, DeleteParameter(s), and what the reads share (finding a
parameter a request names, showing its value). Reads: ``services.parameter_reads``.

Parameters belong to an account and Region (the caller's). Each put adds a version (the
newest 100 are kept); a String or StringList keeps its text, a SecureString only the KMS
ciphertext blob that ``services.parameter_values`` made for it. The SSM API is authorized
by the caller's IAM policies (``ssm:<Operation>`` on the parameter's ARN,
``services.access.authorize_parameter``); a SecureString's KMS calls are authorized by the
key's policy as calls made via SSM.
"""

from __future__ import annotations

import base64
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from strongroom.authz.context_keys import flag
from strongroom.domain.errors import ValidationException
from strongroom.domain.models import Tag
from strongroom.domain.parameters import (
    DATA_TYPE_TEXT,
    MANAGED_KEY_ALIAS,
    MAX_VERSIONS,
    STANDARD_VALUE_LIMIT,
    ParameterTier,
    ParameterType,
    ParameterVersion,
    arn_prefix,
    check_name,
    name_from_arn,
    parameter_arn,
)
from strongroom.domain.ssm_errors import (
    InvalidAllowedPatternException,
    ParameterAlreadyExists,
    ParameterLimitExceeded,
    ParameterNotFound,
    ParameterPatternMismatchException,
    ParameterVersionNotFound,
)
from strongroom.services.access import authorize_parameter
from strongroom.services.core import Core, RequestContext
from strongroom.services.parameter_values import decrypt_value, encrypt_value

STANDARD_PARAMETERS_PER_REGION = 10_000
"""Standard parameters per account and Region (Systems Manager service quotas)."""


@dataclass(frozen=True, slots=True)
class NewValue:
    """What PutParameter asks for; None members were left out of the request."""

    name: str
    value: str
    type: ParameterType | None = None
    key_id: str | None = None
    overwrite: bool = False
    description: str | None = None
    allowed_pattern: str | None = None
    tags: tuple[Tag, ...] = ()
    tier: str | None = None
    data_type: str | None = None
    policies: str | None = None


def put_parameter(core: Core, ctx: RequestContext, new: NewValue) -> ParameterVersion:
    """Create parameter ``new.name`` (version 1) or, with ``overwrite``, add a version to it;
    return the version stored. Raises ValidationException, HierarchyLevelLimitExceededException,
    ParameterAlreadyExists, ParameterLimitExceeded, InvalidAllowedPatternException,
    ParameterPatternMismatchException, InvalidKeyId, AccessDeniedException."""
    if not new.value:  # the model's constraint on Value (botocore's copy lacks it)
        raise ValidationException(
            "1 validation error detected: Value at 'value' failed to satisfy constraint: "
            "Member must have length greater than or equal to 1."
        )
    check_name(new.name, arn_prefix(ctx.region, ctx.account))
    arn = parameter_arn(ctx.region, ctx.account, new.name)
    # Parameter Store's condition keys ("Preventing access to Parameter Store API
    # operations"): a Deny on ssm:Overwrite "true" lets a principal create but not change.
    conditions = {"ssm:overwrite": flag(new.overwrite), "ssm:policies": flag(bool(new.policies))}
    authorize_parameter(core, ctx, "PutParameter", arn, conditions)
    if new.tags:  # tagging on create needs the tagging permission too, as in SSM
        authorize_parameter(core, ctx, "AddTagsToResource", arn)
    ctx.resources.append(arn)
    tier = _tier(new.tier)
    data_type = _data_type(new.data_type)
    if new.policies:
        raise ValidationException("Parameter policies are not supported by this server.")
    if len(new.value.encode()) > STANDARD_VALUE_LIMIT:
        raise ValidationException(
            f"Standard tier parameters support a maximum parameter value of "
            f"{STANDARD_VALUE_LIMIT} characters. To create a larger parameter value, upgrade "
            "the parameter to use the advanced-parameter tier."
        )
    check_tags(new.tags)
    with core.store.transaction() as tx:
        existing = tx.parameters.latest(ctx.account, ctx.region, new.name)
    _check_overwrite(new, existing)
    kind = new.type or (existing.type if existing is not None else None)
    if kind is None:
        raise ValidationException("A parameter type is required when you create a parameter.")
    if new.key_id is not None and kind is not ParameterType.SECURE_STRING:
        raise ValidationException("KeyId is required for SecureString type parameter only.")
    description = _kept(new.description, existing, "description")
    pattern = _kept(new.allowed_pattern, existing, "allowed_pattern")
    _check_pattern(pattern, new.value, secret=kind is ParameterType.SECURE_STRING)
    value: str | None = new.value
    ciphertext: bytes | None = None
    key_id: str | None = None
    if kind is ParameterType.SECURE_STRING:
        # Encrypted before the write transaction: the first use of alias/aws/ssm makes the
        # AWS managed key in a transaction of its own.
        key_id = new.key_id or _kept_key(existing) or MANAGED_KEY_ALIAS
        ciphertext = encrypt_value(core, ctx, key_id, new.value, arn)
        value = None
    with core.store.transaction() as tx:
        latest = tx.parameters.latest(ctx.account, ctx.region, new.name, for_update=True)
        _check_overwrite(new, latest)
        if latest is None and tx.parameters.count(ctx.account, ctx.region) >= (
            STANDARD_PARAMETERS_PER_REGION
        ):
            raise ParameterLimitExceeded(
                f"You have exceeded the number of parameters ({STANDARD_PARAMETERS_PER_REGION}) "
                "for this account and Region."
            )
        stored = ParameterVersion(
            account=ctx.account,
            region=ctx.region,
            name=new.name,
            version=1 if latest is None else latest.version + 1,
            type=kind,
            value=value,
            ciphertext=ciphertext,
            key_id=key_id,
            description=description,
            allowed_pattern=pattern,
            tier=tier,
            data_type=data_type,
            modified=core.clock(),
            modified_user=ctx.caller.principal.arn,
        )
        tx.parameters.put(stored, keep=MAX_VERSIONS)
        tx.parameters.put_tags(ctx.account, ctx.region, new.name, new.tags)
    return stored


# Tag keys and values: Unicode letters, digits and separators, and _ . : / = + - @ (the SSM
# model's pattern ^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$, which Python's re cannot compile).
_TAG_SYMBOLS = frozenset("_.:/=+-@")


def _tag_char(c: str) -> bool:
    return c.isalnum() or c in _TAG_SYMBOLS or unicodedata.category(c).startswith("Z")


def check_tags(tags: Sequence[Tag]) -> None:
    """Raise ValidationException for a tag key or value with a character SSM refuses."""
    for i, tag in enumerate(tags, 1):
        for member, text in (("key", tag.key), ("value", tag.value)):
            if not all(_tag_char(c) for c in text):
                raise ValidationException(
                    f"1 validation error detected: Value '{text}' at 'tags.{i}.member.{member}' "
                    "failed to satisfy constraint: Member must satisfy regular expression "
                    "pattern: ^([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)$"
                )


def _check_overwrite(new: NewValue, existing: ParameterVersion | None) -> None:
    if existing is None:
        return
    if not new.overwrite:
        raise ParameterAlreadyExists(
            "The parameter already exists. To overwrite this value, set the overwrite option "
            "in the request to true."
        )
    if new.tags:
        raise ValidationException(
            "Invalid request: tags and overwrite can't be used together. To create a "
            "parameter with tags, please remove overwrite flag. To update tags for an "
            "existing parameter, please use AddTagsToResource or RemoveTagsFromResource."
        )


def _kept(given: str | None, existing: ParameterVersion | None, field: str) -> str:
    """A member PutParameter left out keeps the parameter's current value (empty when new)."""
    if given is not None:
        return given
    return "" if existing is None else str(getattr(existing, field))


def _kept_key(existing: ParameterVersion | None) -> str | None:
    if existing is None or existing.type is not ParameterType.SECURE_STRING:
        return None
    return existing.key_id


def _tier(tier: str | None) -> ParameterTier:
    if tier in (None, ParameterTier.STANDARD.value, ParameterTier.INTELLIGENT_TIERING.value):
        return ParameterTier.STANDARD  # Intelligent-Tiering picks Standard for what fits it
    raise ValidationException(
        f"Tier {tier} is not supported by this server: parameters are Standard tier."
    )


def _data_type(data_type: str | None) -> str:
    if data_type in (None, "", DATA_TYPE_TEXT):
        return DATA_TYPE_TEXT
    raise ValidationException(
        f"The following data type is not supported: {data_type} (Data type names are all "
        "lowercase.) This server supports the data type text."
    )


PATTERN_SECONDS = 0.5
"""How long checking a value against an AllowedPattern may take. A pattern is the caller's
own regular expression, and one such as ``(a|aa)+`` takes exponential time on a 4 KB value:
with Python's ``re`` (which holds the GIL and cannot be stopped) one PutParameter froze the
whole worker. The ``regex`` module takes a timeout and releases the GIL while it matches."""


def _check_pattern(pattern: str, value: str, *, secret: bool) -> None:
    if not pattern:
        return
    import regex  # only Parameter Store's AllowedPattern needs it: not imported at start

    try:
        compiled = regex.compile(pattern)
    except (regex.error, ValueError, OverflowError, RecursionError):
        raise InvalidAllowedPatternException(
            f"The allowed pattern {pattern} is not a valid regular expression."
        ) from None
    try:
        matched = compiled.fullmatch(value, timeout=PATTERN_SECONDS, concurrent=True)
    except TimeoutError:
        raise InvalidAllowedPatternException(
            f"The allowed pattern {pattern} took more than {PATTERN_SECONDS} seconds to check "
            "against the value: use a pattern without nested repetition."
        ) from None
    if matched is None:
        shown = "the value" if secret else value
        raise ParameterPatternMismatchException(
            f"Parameter value, {shown}, failed to satisfy constraint specified in the "
            f"parameter's AllowedPattern: {pattern}"
        )


def delete_parameter(core: Core, ctx: RequestContext, name: str) -> None:
    """Delete parameter ``name``, its versions and tags. Raises ParameterNotFound,
    AccessDeniedException."""
    arn = parameter_arn(ctx.region, ctx.account, name)
    authorize_parameter(core, ctx, "DeleteParameter", arn)
    ctx.resources.append(arn)
    with core.store.transaction() as tx:
        if not tx.parameters.delete(ctx.account, ctx.region, name):
            raise ParameterNotFound(f"Parameter {name} not found.")


def delete_parameters(
    core: Core, ctx: RequestContext, names: Sequence[str]
) -> tuple[list[str], list[str]]:
    """Delete up to 10 parameters; the names deleted and those not found. Raises
    AccessDeniedException (before anything is deleted) when one may not be deleted."""
    arns = [parameter_arn(ctx.region, ctx.account, n) for n in names]
    for arn in arns:
        authorize_parameter(core, ctx, "DeleteParameters", arn)
    ctx.resources.extend(arns)
    deleted: list[str] = []
    invalid: list[str] = []
    with core.store.transaction() as tx:
        for name in dict.fromkeys(names):
            found = tx.parameters.delete(ctx.account, ctx.region, name)
            (deleted if found else invalid).append(name)
    return deleted, invalid


# -- what the reads share -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Named:
    """A parameter name as a request gives it: the name (from an ARN too) and the
    ``:version`` or ``:label`` selector after it, if any."""

    name: str
    selector: str | None


def parse_name(ctx: RequestContext, given: str) -> Named:
    """Split ``given`` (``name``, ``name:3``, ``name:label``, or a parameter ARN of the
    caller's account and Region, with or without selector) into name and selector. Any
    other ARN is kept whole as the name, which no parameter has."""
    name = given
    from_arn = name_from_arn(given, ctx.region, ctx.account)
    if from_arn is not None:
        name = "/" + from_arn if "/" in from_arn else from_arn
    elif given.startswith("arn:"):
        # Another account's or Region's parameter (no parameter is shared here): a name no
        # parameter of the caller's has, so reads find nothing and tag calls change nothing.
        # Split at ':' like a name, it named the caller's own parameter "arn".
        return Named(given, None)
    base, _, selector = name.partition(":")
    return Named(base, selector or None)


def find(core: Core, ctx: RequestContext, named: Named) -> ParameterVersion | None:
    """The version of a parameter that ``named`` selects: the newest without selector, the
    numbered one with ``:<version>``. None when there is no such parameter. Raises
    ParameterVersionNotFound for a version not kept, or a label (this server keeps none)."""
    with core.store.transaction() as tx:
        latest = tx.parameters.latest(ctx.account, ctx.region, named.name)
        if latest is None and "/" not in named.name:  # an ARN hides a leading '/'
            latest = tx.parameters.latest(ctx.account, ctx.region, "/" + named.name)
        if latest is None or named.selector is None:
            return latest
        if not named.selector.isdigit():
            raise ParameterVersionNotFound(
                f"Systems Manager could not find label {named.selector} of {latest.name}: "
                "this server keeps no parameter labels."
            )
        version = int(named.selector)
        if version == latest.version:
            return latest
        found = tx.parameters.version(ctx.account, ctx.region, latest.name, version)
    if found is None:
        raise ParameterVersionNotFound(
            f"Systems Manager could not find version {version} of {latest.name}. Verify the "
            "version and try again."
        )
    return found


def shown_value(
    core: Core, ctx: RequestContext, p: ParameterVersion, *, with_decryption: bool
) -> str:
    """The Value a read returns: the text of a String or StringList; for a SecureString the
    plaintext (decrypted now, via SSM, with the caller's permissions) when
    ``with_decryption``, else its ciphertext blob in base64, as Parameter Store returns it.
    Raises InvalidKeyId, AccessDeniedException."""
    if p.type is not ParameterType.SECURE_STRING:
        return p.value or ""
    assert p.ciphertext is not None
    if not with_decryption:
        return base64.b64encode(p.ciphertext).decode("ascii")
    return decrypt_value(core, ctx, p.ciphertext, p.arn)
