"""Accounts, principals and access keys: the identities requests are signed with."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from strongroom.authz.policy import PolicyKind, parse_policy
from strongroom.crypto.context import encode_context
from strongroom.domain.errors import (
    AlreadyExistsException,
    ConflictException,
    ExpiredTokenException,
    LimitExceededException,
    NotFoundException,
    UnrecognizedClientException,
    ValidationException,
)
from strongroom.domain.ids import ACCOUNT_RE, assumed_role_arn, role_unique_id
from strongroom.domain.lru import LruDict
from strongroom.domain.models import Principal, RoleSession, Tag
from strongroom.services.core import Core
from strongroom.services.validation import check_range
from strongroom.storage.ports import AccessKeyRecord, SessionRecord

_AKID_ALPHABET = string.ascii_uppercase + "234567"
_SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"
_NAME_RE = re.compile(r"^[A-Za-z0-9+=,.@_-]{1,64}$")
# Access key ids of long-term keys start AKIA, those of temporary credentials ASIA (IAM
# "Unique identifier prefixes").
LONG_TERM_PREFIX = "AKIA"
TEMPORARY_PREFIX = "ASIA"
# IAM roleMaxSessionDurationType: a role's MaxSessionDuration is 1 to 12 hours, one hour
# unless set (CreateRole, UpdateRole).
MAX_SESSION_DURATION_RANGE = (3600, 43200)
DEFAULT_MAX_SESSION_DURATION = 3600
ROLE_ACCESS_KEY_REFUSED = (
    "{arn} is a role: roles cannot have long-term access keys, only temporary credentials "
    "(strongroom admin assume-role, or STS AssumeRole). Access keys are for users and "
    "account roots."
)


@dataclass(frozen=True, slots=True)
class NewAccessKey:
    access_key_id: str
    secret_access_key: str = field(repr=False)
    principal: Principal


def secret_aad(access_key_id: str) -> bytes:
    """The AAD binding a wrapped secret access key to its access key id."""
    return encode_context({"accessKeyId": access_key_id})


def new_access_key_id(prefix: str) -> str:
    """``prefix`` and 16 random characters of AWS's access key id alphabet."""
    return prefix + "".join(secrets.choice(_AKID_ALPHABET) for _ in range(16))


def new_secret_access_key() -> str:
    """40 random characters, the form of an AWS secret access key."""
    return "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))


def ensure_account(core: Core, account: str) -> bool:
    """Create an account and its root principal unless it exists; True when created."""
    if not ACCOUNT_RE.match(account):
        raise ValidationException(f"Account id '{account}' must be 12 digits.")
    with core.store.transaction() as tx:
        return tx.identities.ensure_account(account, core.clock())


def check_max_session_duration(seconds: int) -> None:
    """IAM's range for a role's MaxSessionDuration; ValidationException in IAM's words."""
    check_range("maxSessionDuration", seconds, *MAX_SESSION_DURATION_RANGE)


def create_principal(
    core: Core, account: str, kind: str, name: str, *, max_session_duration: int | None = None
) -> Principal:
    """Create a user or a role in an existing account; a role's ``max_session_duration``
    (IAM CreateRole MaxSessionDuration) is one hour when None.

    Raises ValidationException (kind, name, duration, a duration for a user),
    NotFoundException (no such account), AlreadyExistsException."""
    if kind not in ("user", "role"):
        raise ValidationException(f"Principal kind '{kind}' must be user or role.")
    if not _NAME_RE.match(name):
        raise ValidationException(
            f"Name '{name}' must be 1-64 characters of letters, digits and +=,.@_-"
        )
    if max_session_duration is not None:
        if kind != "role":
            raise ValidationException("Only roles have a maximum session duration.")
        check_max_session_duration(max_session_duration)
    principal = Principal(f"arn:aws:iam::{account}:{kind}/{name}", account, kind, name)
    with core.store.transaction() as tx:
        if account not in tx.identities.list_accounts():
            raise NotFoundException(f"Account {account} does not exist.")
        if tx.identities.get_principal(principal.arn) is not None:
            raise AlreadyExistsException(f"{principal.arn} already exists.")
        tx.identities.insert_principal(principal, core.clock())
        if max_session_duration is not None:
            tx.identities.set_max_session_duration(principal.arn, max_session_duration)
    return principal


def create_access_key(core: Core, principal_arn: str) -> NewAccessKey:
    """A new long-term access key for a user or an account root; the secret is stored
    wrapped under the root key. Roles have none in IAM (CreateAccessKey names a user): their
    sessions get temporary credentials (``issue_session``, STS AssumeRole).

    Raises NotFoundException (no such principal), ValidationException (a role)."""
    access_key_id = new_access_key_id(LONG_TERM_PREFIX)
    secret = new_secret_access_key()
    wrapped = core.root_key.wrap(secret.encode(), secret_aad(access_key_id))
    with core.store.transaction() as tx:
        principal = tx.identities.get_principal(principal_arn)
        if principal is None:
            raise NotFoundException(f"Principal {principal_arn} does not exist.")
        if principal.kind == "role":
            raise ValidationException(ROLE_ACCESS_KEY_REFUSED.format(arn=principal_arn))
        tx.identities.insert_access_key(
            AccessKeyRecord(access_key_id, principal, wrapped, "Active"), core.clock()
        )
    return NewAccessKey(access_key_id, secret, principal)


def delete_access_key(core: Core, access_key_id: str) -> Principal:
    """Delete a long-term access key; returns its principal. Running servers stop accepting
    it within their change poll (the principal's cached credentials are dropped).

    Raises NotFoundException (no such key)."""
    now = core.clock()
    with core.store.transaction() as tx:
        record = tx.identities.get_access_key(access_key_id)
        if record is None:
            raise NotFoundException(f"Access key {access_key_id} does not exist.")
        tx.identities.delete_access_key(access_key_id)
        tx.changes.record(record.principal.arn, now)
    return record.principal


@dataclass(frozen=True, slots=True)
class DeletedPrincipal:
    """What ``delete_principal`` removed besides the principal: the ids of its access keys
    (a user's) or of its live sessions' temporary credentials (a role's)."""

    arn: str
    access_key_ids: tuple[str, ...]
    session_access_key_ids: tuple[str, ...]


def delete_principal(
    core: Core, kind: str, account: str, name: str, *, force: bool = False
) -> DeletedPrincipal:
    """Delete a user or role (IAM DeleteUser/DeleteRole) with its inline policies, IAM tags
    and trust policy, and its expired sessions. While a user has access keys or a role has
    unexpired sessions, refuse, as IAM does, unless ``force``, which deletes those too.
    Running servers stop accepting its credentials within their change poll. Key policies
    and grants that name it keep their text.

    Raises ValidationException (kind), NotFoundException, ConflictException (keys or live
    sessions, without ``force``)."""
    arn = _principal_arn(kind, account, name)
    now = core.clock()
    with core.store.transaction() as tx:
        if tx.identities.get_principal(arn) is None:
            raise NotFoundException(f"Principal {arn} does not exist.")
        keys = tuple(r.access_key_id for r in tx.identities.list_access_keys(arn))
        sessions = tuple(r.access_key_id for r in tx.sessions.list_live(arn, now))
        if (keys or sessions) and not force:
            raise ConflictException(_still_in_use(arn, keys, sessions))
        tx.sessions.delete_for_role(arn)
        tx.identities.delete_principal(arn)
        tx.changes.record(arn, now)  # every process drops the cached credentials
    return DeletedPrincipal(arn, keys, sessions)


def _still_in_use(arn: str, keys: Sequence[str], sessions: Sequence[str]) -> str:
    if keys:
        what = f"{len(keys)} access key(s) ({', '.join(keys)})"
        fix = "delete them first (strongroom admin delete-access-key)"
    else:
        what = f"{len(sessions)} unexpired session(s)"
        fix = "wait until they expire"
    return f"{arn} still has {what}: {fix}, or add --force to delete them with it."


@dataclass(frozen=True, slots=True)
class Credential:
    """What an access key id stands for: its principal, secret, the identity policies and
    IAM tags that apply (for a role session, its role's), and for temporary credentials the
    session and the SHA-256 of its token."""

    principal: Principal
    secret_access_key: str = field(repr=False)
    identity_policies: tuple[str, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()
    session: RoleSession | None = None
    token_sha256: bytes | None = field(default=None, repr=False)

    @property
    def owner_arn(self) -> str:
        """The user or role whose policies and tags the credential carries."""
        return self.principal.arn if self.session is None else self.session.role_arn


def token_sha256(session_token: str) -> bytes:
    return hashlib.sha256(session_token.encode("utf-8")).digest()


def check_session_token(credential: Credential, token: str | None, now: datetime) -> None:
    """The X-Amz-Security-Token rules: temporary credentials need their own token (compared
    in constant time) before they expire; long-term keys take none.

    Raises UnrecognizedClientException (token missing, wrong, or sent with a long-term key)
    or ExpiredTokenException (the session has expired), with AWS's texts.
    """
    if credential.token_sha256 is None or credential.session is None:
        if token is not None:
            raise unknown_access_key()
        return
    if token is None or not hmac.compare_digest(token_sha256(token), credential.token_sha256):
        raise unknown_access_key()
    if now >= credential.session.expiration:
        raise ExpiredTokenException("The security token included in the request is expired")


def _sorted_pairs(tags: Sequence[Tag]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((t.key, t.value) for t in tags))


class CredentialResolver:
    """Finds the secret and principal behind an access key id, caching what it unwraps: at
    most ``MAX_CREDENTIALS`` access keys, the least recently used going first."""

    MAX_CREDENTIALS = 10_000

    def __init__(self, core: Core) -> None:
        self._core = core
        self._cache: LruDict[str, Credential] = LruDict(self.MAX_CREDENTIALS)

    def resolve(self, access_key_id: str) -> Credential | None:
        cache = self._cache
        cached = cache.get(access_key_id)
        if cached is not None:
            try:  # noqa: SIM105 (suppress() costs more) LruDict.hit, inlined: every request
                cache.move_to_end(access_key_id)
            except KeyError:
                pass
            return cached
        if access_key_id.startswith(TEMPORARY_PREFIX):
            credential = self._load_session(access_key_id)
        else:
            credential = self._load_access_key(access_key_id)
        if credential is None:
            return None
        self._cache.keep(access_key_id, credential)
        return credential

    def _load_access_key(self, access_key_id: str) -> Credential | None:
        with self._core.store.read() as tx:
            record = tx.identities.get_access_key(access_key_id)
            if record is None or record.status != "Active":
                return None
            arn = record.principal.arn
            policies = tuple(doc for _, doc in tx.identities.get_policies(arn))
            tags = _sorted_pairs(tx.identities.get_tags(arn))
        secret = self._core.root_key.unwrap(record.wrapped_secret, secret_aad(access_key_id))
        return Credential(record.principal, secret.decode(), policies, tags)

    def _load_session(self, access_key_id: str) -> Credential | None:
        with self._core.store.read() as tx:
            record = tx.sessions.get(access_key_id)
            if record is None:
                return None
            role = record.role
            policies = tuple(doc for _, doc in tx.identities.get_policies(role.arn))
            tags = _sorted_pairs(tx.identities.get_tags(role.arn))
        secret = self._core.root_key.unwrap(record.wrapped_secret, secret_aad(access_key_id))
        return Credential(
            session_principal(record),
            secret.decode(),
            policies,
            tags,
            RoleSession(
                role.arn,
                role_unique_id(role.arn),
                record.session_name,
                record.created,
                record.expiration,
            ),
            record.token_sha256,
        )

    def check_token(self, credential: Credential, token: str | None) -> None:
        """``check_session_token`` at the services' clock."""
        if credential.session is None and token is None:
            return  # the usual case, a long-term key without a token: no clock needed
        check_session_token(credential, token, self._core.clock())

    def forget(self, access_key_id: str) -> None:
        self._cache.pop(access_key_id, None)

    def forget_principal(self, principal_arn: str) -> None:
        """Drop the cached credentials of a principal, and of its sessions when it is a role
        (its policies or tags changed)."""
        for access_key_id, credential in list(self._cache.items()):
            if principal_arn in (credential.principal.arn, credential.owner_arn):
                self._cache.pop(access_key_id, None)


def session_principal(record: SessionRecord) -> Principal:
    """The principal of a role session: ``arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION``."""
    role = record.role
    return Principal(
        assumed_role_arn(role.arn, record.session_name),
        role.account,
        "assumed-role",
        f"{role.name}/{record.session_name}",
    )


# IAM: inline policy names are 1-128 characters of [\w+=,.@-].
_POLICY_NAME_RE = re.compile(r"^[\w+=,.@-]{1,128}$")


def _principal_arn(kind: str, account: str, name: str) -> str:
    if kind not in ("user", "role"):
        raise ValidationException(f"Principal kind '{kind}' must be user or role.")
    return f"arn:aws:iam::{account}:{kind}/{name}"


def put_identity_policy(
    core: Core, kind: str, account: str, name: str, policy_name: str, document: str
) -> str:
    """Attach (or replace) an inline IAM policy to a user or role; returns its ARN.

    Raises MalformedPolicyDocumentException / LimitExceededException for a bad document,
    ValidationException for a bad policy name, NotFoundException for an unknown principal.
    """
    arn = _principal_arn(kind, account, name)
    if not _POLICY_NAME_RE.match(policy_name):
        raise ValidationException(f"Policy name '{policy_name}' must be 1-128 of [\\w+=,.@-].")
    parse_policy(document, PolicyKind.IDENTITY)
    now = core.clock()
    with core.store.transaction() as tx:
        if tx.identities.get_principal(arn) is None:
            raise NotFoundException(f"Principal {arn} does not exist.")
        tx.identities.put_policy(arn, policy_name, document, now)
        tx.changes.record(arn, now)  # every process drops the cached credentials
    return arn


def list_identity_policies(core: Core, kind: str, account: str, name: str) -> list[str]:
    """The names of a user's or role's inline policies."""
    arn = _principal_arn(kind, account, name)
    with core.store.transaction() as tx:
        if tx.identities.get_principal(arn) is None:
            raise NotFoundException(f"Principal {arn} does not exist.")
        return [n for n, _ in tx.identities.get_policies(arn)]


def delete_identity_policy(
    core: Core, kind: str, account: str, name: str, policy_name: str
) -> None:
    """Remove an inline policy; NotFoundException when the principal has none of that name."""
    arn = _principal_arn(kind, account, name)
    now = core.clock()
    with core.store.transaction() as tx:
        if not tx.identities.delete_policy(arn, policy_name):
            raise NotFoundException(f"{arn} has no policy named {policy_name}.")
        tx.changes.record(arn, now)


# -- IAM tags of users and roles (IAM "Tagging IAM resources"; the Tag shape of the IAM API)

MAX_PRINCIPAL_TAGS = 50
_TAG_PUNCTUATION = frozenset("_.:/=+-@")


def _tag_text_ok(text: str) -> bool:
    # IAM's pattern [\p{L}\p{Z}\p{N}_.:/=+\-@]: letters, separators, numbers and _.:/=+-@.
    return all(unicodedata.category(c)[0] in "LZN" or c in _TAG_PUNCTUATION for c in text)


def check_principal_tags(tags: Sequence[Tag]) -> None:
    """The rules for IAM tags of users and roles; ValidationException naming the one broken.

    Keys are 1-128 characters, values 0-256, both of letters, digits, spaces and
    ``_.:/=+-@``; keys may not begin with ``aws:``; keys are case-insensitive, so two keys
    that differ only in case are duplicates."""
    seen: set[str] = set()
    for tag in tags:
        if not 1 <= len(tag.key) <= 128 or not _tag_text_ok(tag.key):
            raise ValidationException(
                f"Tag key '{tag.key}' must be 1-128 characters of letters, digits, spaces "
                "and _.:/=+-@."
            )
        if len(tag.value) > 256 or not _tag_text_ok(tag.value):
            raise ValidationException(
                f"Value of tag '{tag.key}' must be 0-256 characters of letters, digits, "
                "spaces and _.:/=+-@."
            )
        if tag.key.lower().startswith("aws:"):
            raise ValidationException(
                f"Tag key '{tag.key}': keys beginning with aws: are reserved."
            )
        if tag.key.lower() in seen:
            raise ValidationException(
                "Duplicate tag keys found. Please note that Tag keys are case insensitive."
            )
        seen.add(tag.key.lower())


def _tag_order(tag: Tag) -> tuple[str, str]:
    return tag.key.lower(), tag.key


def tag_principal(core: Core, kind: str, account: str, name: str, new: Sequence[Tag]) -> list[Tag]:
    """Add IAM tags to a user or role, replacing the value of a key it has in any case
    (IAM TagUser/TagRole); returns all its tags. A running server uses them within its
    change poll. Raises ValidationException, LimitExceededException (over 50 tags),
    NotFoundException."""
    arn = _principal_arn(kind, account, name)
    check_principal_tags(new)
    replaced = {t.key.lower() for t in new}
    now = core.clock()
    with core.store.transaction() as tx:
        if tx.identities.get_principal(arn) is None:
            raise NotFoundException(f"Principal {arn} does not exist.")
        kept = [t for t in tx.identities.get_tags(arn) if t.key.lower() not in replaced]
        merged = sorted([*kept, *new], key=_tag_order)
        if len(merged) > MAX_PRINCIPAL_TAGS:
            raise LimitExceededException(
                f"A user or role can have at most {MAX_PRINCIPAL_TAGS} tags; "
                f"{arn} would have {len(merged)}."
            )
        tx.identities.set_tags(arn, merged)
        tx.changes.record(arn, now)  # every process drops the cached credentials
    return merged


def untag_principal(
    core: Core, kind: str, account: str, name: str, tag_keys: Sequence[str]
) -> list[Tag]:
    """Remove IAM tags of a user or role by key, in any case (IAM UntagUser/UntagRole; a
    key it does not have is no error); returns the tags it keeps."""
    arn = _principal_arn(kind, account, name)
    removed = {k.lower() for k in tag_keys}
    now = core.clock()
    with core.store.transaction() as tx:
        if tx.identities.get_principal(arn) is None:
            raise NotFoundException(f"Principal {arn} does not exist.")
        kept = [t for t in tx.identities.get_tags(arn) if t.key.lower() not in removed]
        tx.identities.set_tags(arn, kept)
        tx.changes.record(arn, now)
    return sorted(kept, key=_tag_order)


def list_principal_tags(core: Core, kind: str, account: str, name: str) -> list[Tag]:
    """A user's or role's IAM tags."""
    arn = _principal_arn(kind, account, name)
    with core.store.transaction() as tx:
        if tx.identities.get_principal(arn) is None:
            raise NotFoundException(f"Principal {arn} does not exist.")
        return sorted(tx.identities.get_tags(arn), key=_tag_order)


def unknown_access_key() -> UnrecognizedClientException:
    return UnrecognizedClientException("The security token included in the request is invalid.")
