"""The pure rules of temporary credentials and principal tags: AssumeRole's constraints in
STS's words, the session token check, IAM's tag rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from strongroom.domain.errors import (
    ExpiredTokenException,
    UnrecognizedClientException,
    ValidationException,
)
from strongroom.domain.models import Principal, RoleSession, Tag
from strongroom.services.identities import (
    Credential,
    check_principal_tags,
    check_session_token,
    token_sha256,
)
from strongroom.services.sessions import check_assume_role_request

pytestmark = pytest.mark.unit

ROLE = "arn:aws:iam::111122223333:role/app"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("arn", "name", "duration", "message"),
    [
        (
            ROLE,
            "ok",
            899,
            "1 validation error detected: Value '899' at 'durationSeconds' failed "
            "to satisfy constraint: Member must have value greater than or equal to 900",
        ),
        (
            ROLE,
            "ok",
            43201,
            "1 validation error detected: Value '43201' at 'durationSeconds' "
            "failed to satisfy constraint: Member must have value less than or equal to 43200",
        ),
        (
            ROLE,
            "x" * 65,
            900,
            "1 validation error detected: Value '" + "x" * 65 + "' at "
            "'roleSessionName' failed to satisfy constraint: Member must have length less than "
            "or equal to 64",
        ),
        (
            "arn:x",
            "é!",
            100,
            "3 validation errors detected: Value 'arn:x' at 'roleArn' failed to "
            "satisfy constraint: Member must have length greater than or equal to 20; Value 'é!' "
            "at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular "
            "expression pattern: [\\w+=,.@-]*; Value '100' at 'durationSeconds' failed to satisfy "
            "constraint: Member must have value greater than or equal to 900",
        ),
        ("arn:aws:iam::111122223333:user/alice", "ok", 900, "Request ARN is invalid"),
        ("arn:aws:iam::111122223333:role/a/b", "ok", 900, "Request ARN is invalid"),
    ],
)
def test_assume_role_constraints_are_reported_as_sts_does(
    arn: str, name: str, duration: int, message: str
) -> None:
    with pytest.raises(ValidationException) as info:
        check_assume_role_request(arn, name, duration)
    assert info.value.message == message


@pytest.mark.parametrize("duration", [900, 3600, 43200])
def test_assume_role_accepts_durations_within_the_limits(duration: int) -> None:
    check_assume_role_request(ROLE, "a.b=c,d@e-f_g+h", duration)


def _session(expiration: datetime) -> Credential:
    return Credential(
        Principal(
            "arn:aws:sts::111122223333:assumed-role/app/s", "111122223333", "assumed-role", "app/s"
        ),
        "secret",
        session=RoleSession(ROLE, "AROAEXAMPLE", "s", NOW, expiration),
        token_sha256=token_sha256("the-token"),
    )


def test_session_token_must_match_before_expiry() -> None:
    credential = _session(NOW + timedelta(hours=1))
    check_session_token(credential, "the-token", NOW + timedelta(minutes=59))
    for token in (None, "", "the-token ", "another"):
        with pytest.raises(UnrecognizedClientException) as info:
            check_session_token(credential, token, NOW)
        assert info.value.message == "The security token included in the request is invalid."


def test_session_token_is_refused_from_its_expiration_on() -> None:
    credential = _session(NOW + timedelta(hours=1))
    for now in (NOW + timedelta(hours=1), NOW + timedelta(days=3)):
        with pytest.raises(ExpiredTokenException) as info:
            check_session_token(credential, "the-token", now)
        assert info.value.message == "The security token included in the request is expired"
    # A wrong token says nothing about the session's expiry.
    with pytest.raises(UnrecognizedClientException):
        check_session_token(credential, "another", NOW + timedelta(days=3))


def test_long_term_key_takes_no_session_token() -> None:
    credential = Credential(
        Principal("arn:aws:iam::111122223333:user/a", "111122223333", "user", "a"), "secret"
    )
    check_session_token(credential, None, NOW)
    with pytest.raises(UnrecognizedClientException):
        check_session_token(credential, "the-token", NOW)


@pytest.mark.parametrize(
    ("tags", "message"),
    [
        ([Tag("", "v")], "Tag key '' must be 1-128 characters"),
        ([Tag("k" * 129, "v")], "must be 1-128 characters"),
        ([Tag("k", "v" * 257)], "Value of tag 'k' must be 0-256 characters"),
        ([Tag("k!", "v")], "Tag key 'k!' must be"),
        ([Tag("k", "v;")], "Value of tag 'k' must be"),
        ([Tag("AWS:team", "v")], "keys beginning with aws: are reserved"),
        (
            [Tag("Team", "a"), Tag("team", "b")],
            "Duplicate tag keys found. Please note that Tag keys are case insensitive.",
        ),
    ],
)
def test_principal_tags_that_iam_refuses(tags: list[Tag], message: str) -> None:
    with pytest.raises(ValidationException) as info:
        check_principal_tags(tags)
    assert message in info.value.message


def test_principal_tags_that_iam_accepts() -> None:
    check_principal_tags(
        [Tag("k" * 128, "v" * 256), Tag("cost center", ""), Tag("équipe", "bleu_1.2:3/4=5+6-7@8")]
    )
