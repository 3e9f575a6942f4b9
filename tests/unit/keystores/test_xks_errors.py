"""The AWS exception of each XKS failure, per KMS operation (XKS Proxy API spec, "KMS
Considerations" under "Error codes")."""

from __future__ import annotations

import pytest

from strongroom.domain.enums import ConnectionErrorCode
from strongroom.domain.errors import (
    CustomKeyStoreInvalidStateException,
    DependencyTimeoutException,
    KmsError,
    KMSInvalidStateException,
    XksKeyInvalidConfigurationException,
    XksKeyNotFoundException,
    XksProxyIncorrectAuthenticationCredentialException,
    XksProxyInvalidConfigurationException,
    XksProxyInvalidResponseException,
    XksProxyUriUnreachableException,
)
from strongroom.keystores import xks_errors
from strongroom.keystores.xks_client import Failure, Health, XksError

pytestmark = pytest.mark.unit

KEY_ARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
F = Failure

STORE_CHECK: dict[Failure, type[KmsError]] = {
    F.VALIDATION: XksProxyInvalidResponseException,
    F.MALFORMED: XksProxyInvalidResponseException,
    F.INTERNAL: XksProxyInvalidResponseException,
    F.UNSUPPORTED_OPERATION: XksProxyInvalidResponseException,
    F.INVALID_CIPHERTEXT: XksProxyInvalidResponseException,
    F.INVALID_KEY_USAGE: XksProxyInvalidResponseException,
    F.ACCESS_DENIED: XksProxyInvalidResponseException,
    F.KEY_NOT_FOUND: XksProxyInvalidResponseException,
    F.AUTHENTICATION_FAILED: XksProxyIncorrectAuthenticationCredentialException,
    F.INVALID_URI_PATH: XksProxyInvalidConfigurationException,
    F.UNREACHABLE: XksProxyUriUnreachableException,
    F.TLS: XksProxyUriUnreachableException,
    F.TIMED_OUT: XksProxyUriUnreachableException,
    F.THROTTLING: XksProxyUriUnreachableException,
    F.DEPENDENCY_TIMEOUT: XksProxyUriUnreachableException,
    F.INVALID_STATE: XksProxyUriUnreachableException,
}

CREATE_KEY: dict[Failure, type[KmsError]] = {
    F.INVALID_STATE: XksKeyInvalidConfigurationException,
    F.INVALID_KEY_USAGE: XksKeyInvalidConfigurationException,
    F.UNSUPPORTED_OPERATION: XksKeyInvalidConfigurationException,
    F.KEY_NOT_FOUND: XksKeyNotFoundException,
    F.ACCESS_DENIED: KMSInvalidStateException,
    **{
        failure: CustomKeyStoreInvalidStateException
        for failure in (
            F.VALIDATION,
            F.MALFORMED,
            F.INTERNAL,
            F.INVALID_CIPHERTEXT,
            F.AUTHENTICATION_FAILED,
            F.INVALID_URI_PATH,
            F.UNREACHABLE,
            F.TLS,
            F.TIMED_OUT,
            F.THROTTLING,
            F.DEPENDENCY_TIMEOUT,
        )
    },
}

CONNECTION: dict[Failure, ConnectionErrorCode] = {
    F.AUTHENTICATION_FAILED: ConnectionErrorCode.INVALID_CREDENTIALS,
    F.ACCESS_DENIED: ConnectionErrorCode.XKS_PROXY_ACCESS_DENIED,
    F.INVALID_URI_PATH: ConnectionErrorCode.XKS_PROXY_INVALID_CONFIGURATION,
    F.UNREACHABLE: ConnectionErrorCode.XKS_PROXY_NOT_REACHABLE,
    F.THROTTLING: ConnectionErrorCode.XKS_PROXY_NOT_REACHABLE,
    F.DEPENDENCY_TIMEOUT: ConnectionErrorCode.XKS_PROXY_NOT_REACHABLE,
    F.INVALID_STATE: ConnectionErrorCode.XKS_PROXY_NOT_REACHABLE,
    F.TIMED_OUT: ConnectionErrorCode.XKS_PROXY_TIMED_OUT,
    F.TLS: ConnectionErrorCode.XKS_PROXY_INVALID_TLS_CONFIGURATION,
    **{
        failure: ConnectionErrorCode.XKS_PROXY_INVALID_RESPONSE
        for failure in (
            F.MALFORMED,
            F.VALIDATION,
            F.INTERNAL,
            F.UNSUPPORTED_OPERATION,
            F.INVALID_CIPHERTEXT,
            F.INVALID_KEY_USAGE,
            F.KEY_NOT_FOUND,
        )
    },
}


def error(failure: Failure) -> XksError:
    return XksError(failure, "secret detail: proxy said XYZ")


def test_the_tables_cover_every_failure() -> None:
    assert set(STORE_CHECK) == set(CREATE_KEY) == set(CONNECTION) == set(Failure)
    assert set(xks_errors.MESSAGES) == set(Failure)


@pytest.mark.parametrize("failure", list(Failure))
def test_store_check(failure: Failure) -> None:
    raised = xks_errors.for_store_check(error(failure))
    assert type(raised) is STORE_CHECK[failure]
    assert raised.message == xks_errors.MESSAGES[failure]
    assert "XYZ" not in raised.message


@pytest.mark.parametrize("failure", list(Failure))
def test_create_key(failure: Failure) -> None:
    raised = xks_errors.for_create_key(error(failure))
    assert type(raised) is CREATE_KEY[failure]
    assert raised.message == xks_errors.MESSAGES[failure]


@pytest.mark.parametrize("failure", list(Failure))
def test_connection_error_code(failure: Failure) -> None:
    assert xks_errors.connection_error_code(error(failure)) is CONNECTION[failure]


@pytest.mark.parametrize("failure", [f for f in Failure if f is not Failure.TIMED_OUT])
def test_crypto_operations_get_kms_invalid_state(failure: Failure) -> None:
    raised = xks_errors.for_crypto(error(failure), KEY_ARN)
    assert type(raised) is KMSInvalidStateException
    assert raised.message == xks_errors.MESSAGES[failure]
    assert raised.status == 400


def test_crypto_operations_get_dependency_timeout_on_our_timeout() -> None:
    raised = xks_errors.for_crypto(error(Failure.TIMED_OUT), KEY_ARN)
    assert type(raised) is DependencyTimeoutException
    assert raised.status == 503
    assert KEY_ARN in raised.message and "did not answer in time" in raised.message


def test_the_proxys_own_timeout_is_invalid_state_not_dependency_timeout() -> None:
    raised = xks_errors.for_crypto(error(Failure.DEPENDENCY_TIMEOUT), KEY_ARN)
    assert type(raised) is KMSInvalidStateException


def test_messages_say_what_the_spec_means() -> None:
    m = xks_errors.MESSAGES
    assert m[F.MALFORMED] == m[F.VALIDATION]
    assert "could not make sense" in m[F.MALFORMED]
    assert "not enabled" in m[F.INVALID_STATE]
    assert "authenticate" in m[F.AUTHENTICATION_FAILED]
    assert "credential" in m[F.AUTHENTICATION_FAILED]
    assert "URI path" in m[F.INVALID_URI_PATH]
    assert "not found" in m[F.KEY_NOT_FOUND]
    assert "denied access" in m[F.ACCESS_DENIED]
    assert "too fast" in m[F.THROTTLING]
    assert "TLS" in m[F.TLS] and "certificate" in m[F.TLS]
    assert "in time" in m[F.TIMED_OUT] and "in the time allowed" in m[F.DEPENDENCY_TIMEOUT]
    assert "external key manager" in m[F.INTERNAL]
    assert "does not support" in m[F.UNSUPPORTED_OPERATION]
    assert "does not allow" in m[F.INVALID_KEY_USAGE]
    for message in m.values():
        assert message.endswith(".") and "  " not in message


def test_all_unavailable_health() -> None:
    down = Health(("UNAVAILABLE", "UNAVAILABLE"))
    failed = xks_errors.health_failure(down)
    assert type(failed) is XksProxyUriUnreachableException
    assert failed.message == xks_errors.UNAVAILABLE_MESSAGE
    assert xks_errors.connection_error_code_for_health(down) is (
        ConnectionErrorCode.XKS_PROXY_NOT_REACHABLE
    )
    for serving in (Health(("ACTIVE",)), Health(("UNAVAILABLE", "DEGRADED"))):
        assert xks_errors.health_failure(serving) is None
        assert xks_errors.connection_error_code_for_health(serving) is None


def test_invalid_ciphertext_from_the_proxy() -> None:
    raised = xks_errors.invalid_ciphertext_from_proxy()
    assert type(raised) is KMSInvalidStateException
    assert raised.message == xks_errors.INVALID_CIPHERTEXT_FROM_PROXY_MESSAGE
