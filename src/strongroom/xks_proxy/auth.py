"""SigV4 for the proxy: every request is signed for service ``kms-xks-proxy`` in the
configured region with one of the credential sets of its URI prefix (several, so that a
credential can be rotated without downtime), at most 5 minutes off the proxy's clock.
Every failure is the spec's AuthenticationFailedException; its message says what failed but
never which secret was expected."""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from strongroom.auth import sigv4
from strongroom.domain.errors import KmsError
from strongroom.xks_proxy.errors import AuthenticationFailedException

SERVICE = "kms-xks-proxy"
MAX_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class Credential:
    access_key_id: str
    secret_access_key: str

    def __repr__(self) -> str:  # never the secret
        return f"Credential(access_key_id={self.access_key_id!r})"


class Authenticator:
    """Checks requests against the credential sets of one URI prefix."""

    def __init__(self, region: str, credentials: Sequence[Credential]) -> None:
        if not credentials:
            raise ValueError("a URI prefix needs at least one credential")
        self.region = region
        self.credentials = tuple(credentials)
        self._cache = sigv4.SigningKeyCache()
        self._heads = sigv4.HeaderCache()

    def _secret(self, access_key_id: str) -> str | None:
        found = None
        for credential in self.credentials:  # every one compared: no timing by position
            if hmac.compare_digest(credential.access_key_id.encode(), access_key_id.encode()):
                found = credential.secret_access_key
        return found

    def check(self, request: sigv4.HttpRequest, now: datetime | None = None) -> str:
        """The access key id that signed ``request``; AuthenticationFailedException when the
        signature is missing, malformed, for another service or region, made with an unknown
        access key or a wrong secret, or more than 5 minutes off."""
        try:
            auth = sigv4.parse_authorization(request, service=SERVICE, heads=self._heads)
        except KmsError as e:
            raise AuthenticationFailedException(f"invalid SigV4 signature: {e}") from None
        if auth.region != self.region:
            raise AuthenticationFailedException(
                f"the credential scope's region must be {self.region!r}"
            )
        secret = self._secret(auth.access_key_id)
        if secret is None:
            raise AuthenticationFailedException("the access key id is not known for this URI")
        try:
            sigv4.verify(
                request,
                auth,
                secret,
                now=now or datetime.now(UTC),
                cache=self._cache,
                max_skew=MAX_SKEW,
            )
        except KmsError as e:
            raise AuthenticationFailedException(f"invalid SigV4 signature: {e}") from None
        return auth.access_key_id
