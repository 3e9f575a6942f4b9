"""Seed files: the YAML document ``strongroom serve --seed FILE`` makes true on every start.

This module only parses and checks (no database): ``parse_seed`` turns the text into a
``SeedFile`` or raises ``SeedError`` naming the entry, the field and the rule, e.g.
``keys[2] (id 1234abcd-...): material: SYMMETRIC_DEFAULT key material must be 32 bytes,
got 16``. ``services.seeding`` applies a ``SeedFile`` to the database.

The format (README, "Seeding")::

    region: us-east-1                # default Region of the keys below (default us-east-1)
    keys:
      - id: 1234abcd-12ab-34cd-56ef-1234567890ab   # required: a lowercase UUID
        account: "111122223333"      # default: the server's configured account
        region: eu-west-1            # default: the file's region
        key_spec: SYMMETRIC_DEFAULT  # default SYMMETRIC_DEFAULT
        key_usage: ENCRYPT_DECRYPT   # as CreateKey: required unless SYMMETRIC_DEFAULT
        description: orders
        enabled: true
        material: <base64 secret, or a PEM private key>  # absent: generated once, kept
        aliases: [alias/orders]      # or one name
        tags: {team: payments}
        policy: {...}                # a mapping, or the JSON text of a key policy
        bypass_policy_lockout_safety_check: false
        rotation: {enabled: true, period_days: 365}

Rules a document must follow, beyond the shapes above: unknown fields and duplicate
mapping keys are errors; key ids and, per account and Region, alias names are unique in
the file; key spec and usage as CreateKey takes them; alias names, tags and policies as
CreateAlias, TagResource and PutKeyPolicy take them (the same service checks, so the same
AWS messages); material of the spec's form and length (``MATERIAL_BYTES``, or a PEM
private key of the spec); rotation only on SYMMETRIC_DEFAULT keys, 90-2560 days.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from strongroom.authz.policy import PolicyKind, parse_policy
from strongroom.crypto.asymmetric_keys import pem_private_key_material
from strongroom.crypto.specs import check_key_spec_usage
from strongroom.domain.enums import KeySpec, KeyUsage, SpecFamily
from strongroom.domain.errors import KmsError, UnsupportedOperationException
from strongroom.domain.ids import ACCOUNT_RE, is_key_id, key_arn
from strongroom.domain.models import Tag
from strongroom.domain.secrets import KeyBytes
from strongroom.services.aliases import MAX_ALIASES_PER_KEY, check_alias_name
from strongroom.services.validation import check_tags

if TYPE_CHECKING:
    import yaml

DEFAULT_REGION = "us-east-1"

MATERIAL_BYTES: Mapping[KeySpec, tuple[int, int]] = {
    KeySpec.SYMMETRIC_DEFAULT: (32, 32),
    KeySpec.HMAC_224: (28, 64),
    KeySpec.HMAC_256: (32, 64),
    KeySpec.HMAC_384: (48, 128),
    KeySpec.HMAC_512: (64, 128),
}
"""The lengths (fewest, most bytes) of secret material a seed may give, as AWS KMS takes
imported material (Developer Guide, "Requirements for imported key material"): a 256-bit
symmetric key; an HMAC key at least as long as its hash and at most one hash block. Every
other supported spec takes a PEM private key of the spec."""

ROTATION_DAYS = (90, 2560)  # RotationPeriodInDaysType in the KMS model
DEFAULT_ROTATION_DAYS = 365  # EnableKeyRotation's default

_TOP_FIELDS = ("keys", "region")
_KEY_FIELDS = (
    "id",
    "account",
    "region",
    "key_spec",
    "key_usage",
    "description",
    "enabled",
    "material",
    "aliases",
    "tags",
    "policy",
    "bypass_policy_lockout_safety_check",
    "rotation",
)
_ROTATION_FIELDS = ("enabled", "period_days")
_KINDS: Mapping[type, str] = {
    dict: "a mapping",
    list: "a list",
    str: "a string",
    bool: "a boolean",
    int: "a number",
    float: "a number",
}
_REGION_RE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_MAX_DESCRIPTION = 8192  # DescriptionType
_MAX_TAG_KEY, _MAX_TAG_VALUE = 128, 256  # TagKeyType, TagValueType


class SeedError(ValueError):
    """A seed file that cannot be applied: the message names the entry and the rule."""


@dataclass(frozen=True, slots=True)
class Rotation:
    enabled: bool
    period_days: int


@dataclass(frozen=True, slots=True)
class SeedKey:
    """One entry of ``keys``. Fields left out of the entry are None: the file does not
    name them, so an existing key keeps its own."""

    index: int
    key_id: str
    account: str
    region: str
    key_spec: KeySpec
    key_usage: KeyUsage
    description: str | None
    enabled: bool | None
    material: KeyBytes | None
    aliases: tuple[str, ...] | None
    tags: tuple[Tag, ...] | None
    policy: str | None
    bypass_policy_lockout_safety_check: bool
    rotation: Rotation | None

    @property
    def arn(self) -> str:
        return key_arn(self.region, self.account, self.key_id)

    @property
    def where(self) -> str:
        """How error messages name the entry: ``keys[2] (id 1234abcd-...)``."""
        return f"keys[{self.index}] (id {self.key_id})"


@dataclass(frozen=True, slots=True)
class SeedFile:
    keys: tuple[SeedKey, ...]


class _Invalid(Exception):
    """A field breaks a rule; the entry's parser adds which entry."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def parse_seed(text: str, *, default_account: str) -> SeedFile:
    """Parse and check a seed document. Raises SeedError naming the entry and the rule."""
    document = _load_yaml(text)
    if not isinstance(document, dict):
        raise SeedError(f"the document must be a mapping with a 'keys' list, not {_kind(document)}")
    _check_fields("the document", document, _TOP_FIELDS)
    region = document.get("region", DEFAULT_REGION)
    try:
        region = _region("region", region)
    except _Invalid as exc:
        raise SeedError(f"{exc.field}: {exc.message}") from None
    entries = document.get("keys", [])
    if not isinstance(entries, list):
        raise SeedError(f"keys: must be a list of keys, not {_kind(entries)}")
    keys = tuple(
        _parse_key(i, raw, region=region, account=default_account) for i, raw in enumerate(entries)
    )
    _check_unique(keys)
    return SeedFile(keys)


def _load_yaml(text: str) -> Any:
    """The document, by ``yaml.safe_load`` (plain data only), after a pass over the node
    tree that refuses duplicate mapping keys, which YAML loaders silently collapse. PyYAML
    is imported here: a server started without a seed file does without it."""
    import yaml

    try:
        _refuse_duplicate_keys(yaml.compose(text, Loader=yaml.SafeLoader))
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SeedError(f"not valid YAML: {exc}") from None


def _refuse_duplicate_keys(node: yaml.Node | None) -> None:
    import yaml

    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                if key.value in seen:
                    line = key.start_mark.line + 1
                    raise SeedError(f"line {line}: duplicate key '{key.value}'")
                seen.add(key.value)
            _refuse_duplicate_keys(value)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _refuse_duplicate_keys(item)


def _kind(value: Any) -> str:
    return "nothing" if value is None else _KINDS.get(type(value), f"a {type(value).__name__}")


def _check_fields(where: str, raw: Mapping[Any, Any], allowed: tuple[str, ...]) -> None:
    for name in raw:
        if name not in allowed:
            raise SeedError(f"{where}: unknown field '{name}' (allowed: {', '.join(allowed)})")


def _parse_key(index: int, raw: Any, *, region: str, account: str) -> SeedKey:
    where = f"keys[{index}]"
    if not isinstance(raw, dict):
        raise SeedError(f"{where}: must be a mapping of fields, not {_kind(raw)}")
    if isinstance(raw.get("id"), str):
        where = f"keys[{index}] (id {raw['id']})"
    _check_fields(where, raw, _KEY_FIELDS)
    try:
        key_id = _key_id(raw.get("id"))
        spec = _key_spec(raw.get("key_spec", KeySpec.SYMMETRIC_DEFAULT.value))
        return SeedKey(
            index=index,
            key_id=key_id,
            account=_account(raw.get("account", account)),
            region=_region("region", raw.get("region", region)),
            key_spec=spec,
            key_usage=_key_usage(spec, raw.get("key_usage")),
            description=_optional(raw, "description", _description),
            enabled=_optional(raw, "enabled", lambda v: _boolean("enabled", v)),
            material=_optional(raw, "material", lambda v: _material(spec, v)),
            aliases=_optional(raw, "aliases", _aliases),
            tags=_optional(raw, "tags", _tags),
            policy=_optional(raw, "policy", _policy),
            bypass_policy_lockout_safety_check=_boolean(
                "bypass_policy_lockout_safety_check",
                raw.get("bypass_policy_lockout_safety_check", False),
            ),
            rotation=_optional(raw, "rotation", lambda v: _rotation(spec, v)),
        )
    except _Invalid as exc:
        raise SeedError(f"{where}: {exc.field}: {exc.message}") from None


def _optional(raw: Mapping[str, Any], name: str, parse: Callable[[Any], Any]) -> Any:
    return parse(raw[name]) if name in raw else None


def _string(field: str, value: Any) -> str:
    if not isinstance(value, str):
        raise _Invalid(field, f"must be a string, not {_kind(value)} (quote it)")
    return value


def _boolean(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(field, f"must be true or false, not {_kind(value)}")
    return value


def _key_id(value: Any) -> str:
    if value is None:
        raise _Invalid(
            "id", "every key needs one: a UUID such as 1234abcd-12ab-34cd-56ef-1234567890ab"
        )
    key_id = _string("id", value)
    if not is_key_id(key_id):
        raise _Invalid(
            "id",
            f"'{key_id}' is not a key id: a lowercase UUID, or mrk- and 32 lowercase hex digits "
            "for a multi-Region primary key",
        )
    return key_id


def _account(value: Any) -> str:
    account = _string("account", value)
    if not ACCOUNT_RE.match(account):
        raise _Invalid("account", f"'{account}' is not an account id: 12 digits")
    return account


def _region(field: str, value: Any) -> str:
    region = _string(field, value)
    if not _REGION_RE.fullmatch(region):
        raise _Invalid(field, f"'{region}' is not a Region name such as us-east-1")
    return region


def _key_spec(value: Any) -> KeySpec:
    text = _string("key_spec", value)
    try:
        return KeySpec(text)
    except ValueError:
        allowed = ", ".join(KeySpec)
        raise _Invalid("key_spec", f"'{text}' is not a key spec (one of {allowed})") from None


def _key_usage(spec: KeySpec, value: Any) -> KeyUsage:
    usage = None
    if value is not None:
        text = _string("key_usage", value)
        try:
            usage = KeyUsage(text)
        except ValueError:
            allowed = ", ".join(KeyUsage)
            raise _Invalid("key_usage", f"'{text}' is not a key usage (one of {allowed})") from None
    try:
        return check_key_spec_usage(spec, usage)
    except UnsupportedOperationException as exc:
        raise _Invalid("key_spec", exc.message) from None
    except KmsError as exc:
        raise _Invalid("key_usage", exc.message) from None


def _description(value: Any) -> str:
    text = _string("description", value)
    if len(text) > _MAX_DESCRIPTION:
        raise _Invalid("description", f"is {len(text)} characters, more than {_MAX_DESCRIPTION}")
    return text


def _material(spec: KeySpec, value: Any) -> KeyBytes:
    bounds = MATERIAL_BYTES.get(spec)
    if bounds is None:
        return _pem_private_key(spec, _string("material", value))
    text = _string("material", value)
    try:
        secret = base64.b64decode("".join(text.split()), validate=True)
    except binascii.Error:
        raise _Invalid("material", f"is not valid base64 (key spec {spec} takes base64)") from None
    low, high = bounds
    if not low <= len(secret) <= high:
        wanted = f"{low} bytes" if low == high else f"{low} to {high} bytes"
        raise _Invalid("material", f"{spec} key material must be {wanted}, got {len(secret)} bytes")
    return KeyBytes(secret)


def _pem_private_key(spec: KeySpec, text: str) -> KeyBytes:
    try:
        return pem_private_key_material(spec, text.encode())
    except KmsError as exc:
        raise _Invalid("material", exc.message) from None


def _aliases(value: Any) -> tuple[str, ...]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list):
        raise _Invalid("aliases", f"must be an alias name or a list of them, not {_kind(value)}")
    if len(names) > MAX_ALIASES_PER_KEY:
        raise _Invalid("aliases", f"{len(names)} aliases, more than {MAX_ALIASES_PER_KEY}")
    for i, name in enumerate(names):
        field = f"aliases[{i}]"
        check_name = _string(field, name)
        if check_name in names[:i]:
            raise _Invalid(field, f"duplicate alias {check_name}")
        try:
            check_alias_name(check_name)
        except KmsError as exc:
            raise _Invalid(f"{field} ({check_name})", exc.message) from None
    return tuple(names)


def _tags(value: Any) -> tuple[Tag, ...]:
    if not isinstance(value, dict):
        raise _Invalid("tags", f"must be a mapping of tag keys to values, not {_kind(value)}")
    tags = []
    for key, tag_value in value.items():
        tag_key = _string("tags", key)
        field = f"tags.{tag_key}"
        text = _string(field, tag_value)
        if not 1 <= len(tag_key) <= _MAX_TAG_KEY:
            raise _Invalid(field, f"a tag key has 1 to {_MAX_TAG_KEY} characters")
        if len(text) > _MAX_TAG_VALUE:
            raise _Invalid(field, f"a tag value has at most {_MAX_TAG_VALUE} characters")
        tags.append(Tag(tag_key, text))
    try:
        check_tags(tags)
    except KmsError as exc:
        raise _Invalid("tags", exc.message) from None
    return tuple(tags)


def _policy(value: Any) -> str:
    """The policy's text: a mapping is written as JSON, a string taken as it is."""
    if isinstance(value, dict):
        try:
            text = json.dumps(value, indent=2)
        except (TypeError, ValueError) as exc:
            raise _Invalid("policy", f"cannot be written as JSON: {exc}") from None
    else:
        text = _string("policy", value)
    try:
        parse_policy(text, PolicyKind.KEY)
    except KmsError as exc:
        raise _Invalid("policy", f"{exc.code}: {exc.message}") from None
    return text


def _rotation(spec: KeySpec, value: Any) -> Rotation:
    if not isinstance(value, dict):
        raise _Invalid("rotation", f"must be a mapping (enabled, period_days), not {_kind(value)}")
    for name in value:
        if name not in _ROTATION_FIELDS:
            raise _Invalid(
                "rotation", f"unknown field '{name}' (allowed: {', '.join(_ROTATION_FIELDS)})"
            )
    if "enabled" not in value:
        raise _Invalid("rotation.enabled", "is required: true or false")
    enabled = _boolean("rotation.enabled", value["enabled"])
    days = value.get("period_days", DEFAULT_ROTATION_DAYS)
    low, high = ROTATION_DAYS
    if not isinstance(days, int) or isinstance(days, bool) or not low <= days <= high:
        raise _Invalid(
            "rotation.period_days",
            f"must be a whole number of days from {low} to {high}, not {days!r}",
        )
    if enabled and spec.family is not SpecFamily.SYMMETRIC:
        # EnableKeyRotation: automatic rotation only for symmetric encryption keys.
        raise _Invalid(
            "rotation.enabled", f"automatic rotation is only for SYMMETRIC_DEFAULT keys, not {spec}"
        )
    return Rotation(enabled, days)


def _check_unique(keys: tuple[SeedKey, ...]) -> None:
    """Key ids are unique in the file; alias names per account and Region."""
    ids: dict[str, SeedKey] = {}
    aliases: dict[tuple[str, str, str], SeedKey] = {}
    for key in keys:
        first = ids.setdefault(key.key_id, key)
        if first is not key:
            raise SeedError(f"{key.where}: id: duplicate key id, also keys[{first.index}]")
        for name in key.aliases or ():
            owner = aliases.setdefault((key.account, key.region, name), key)
            if owner is not key:
                raise SeedError(f"{key.where}: aliases: duplicate alias {name}, also {owner.where}")
