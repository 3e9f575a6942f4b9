"""Authentication of a request: SigV4 verified against the caller's access key, and the
session token of temporary credentials."""

from __future__ import annotations

from datetime import datetime

from strongroom.auth.sigv4 import (
    HeaderCache,
    HttpRequest,
    SigningKeyCache,
    parse_authorization,
    verify,
)
from strongroom.domain.models import Caller, Principal
from strongroom.services.identities import CredentialResolver, unknown_access_key


class Authenticator:
    """Turns a signed request into a Caller, or raises the AWS authentication error."""

    def __init__(self, resolver: CredentialResolver, *, dev_account: str | None = None) -> None:
        self._resolver = resolver
        self._signing_keys = SigningKeyCache()
        self._heads = HeaderCache()
        self._dev_account = dev_account  # set only in --dev mode

    def authenticate(
        self,
        request: HttpRequest,
        *,
        now: datetime,
        source_ip: str,
        user_agent: str,
        service: str = "kms",
    ) -> Caller:
        """The caller of ``request``, signed for ``service``. Raises the SigV4 errors,
        UnrecognizedClientException (unknown key; a missing or wrong session token) and
        ExpiredTokenException (expired temporary credentials)."""
        auth = parse_authorization(request, service=service, heads=self._heads)
        credential = self._resolver.resolve(auth.access_key_id)
        if credential is not None:
            self._resolver.check_token(credential, auth.security_token)
            verify(request, auth, credential.secret_access_key, now=now, cache=self._signing_keys)
            return Caller(
                credential.principal,
                auth.access_key_id,
                auth.region,
                source_ip,
                user_agent,
                credential.identity_policies,
                credential.tags,
                credential.session,
            )
        if self._dev_account is None:
            raise unknown_access_key()
        # --dev: any well-formed signature passes, as the account root.
        account = self._dev_account
        principal = Principal(f"arn:aws:iam::{account}:root", account, "root", "root")
        return Caller(principal, auth.access_key_id, auth.region, source_ip, user_agent)
