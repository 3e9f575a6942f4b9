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
from strongroom.domain.lru import LruDict
from strongroom.domain.models import Caller, Principal
from strongroom.services.identities import Credential, CredentialResolver, unknown_access_key

CALLERS = 1024  # Callers kept: (access key, Region, source IP, User-Agent) in use at once


class Authenticator:
    """Turns a signed request into a Caller, or raises the AWS authentication error."""

    def __init__(self, resolver: CredentialResolver, *, dev_account: str | None = None) -> None:
        self._resolver = resolver
        self._signing_keys = SigningKeyCache()
        self._heads = HeaderCache()
        self._dev_account = dev_account  # set only in --dev mode
        # The Caller of each (access key, Region, source IP, User-Agent), with the credential
        # it was made from: a client's requests repeat all four, so each is made once (a
        # frozen 8-field dataclass costs ~2.5 µs to build). A credential the resolver loaded
        # again (its policies or tags changed) is another object: its Callers are made anew.
        self._callers: LruDict[tuple[str, str, str, str], tuple[Credential, Caller]] = LruDict(
            CALLERS
        )

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
            callers, entry = self._callers, (auth.access_key_id, auth.region, source_ip, user_agent)
            kept = callers.get(entry)
            if kept is not None and kept[0] is credential:
                try:  # noqa: SIM105 (suppress() costs more) LruDict.hit, inlined: every request
                    callers.move_to_end(entry)
                except KeyError:
                    pass
                return kept[1]
            caller = Caller(
                credential.principal,
                auth.access_key_id,
                auth.region,
                source_ip,
                user_agent,
                credential.identity_policies,
                credential.tags,
                credential.session,
            )
            self._callers.keep(entry, (credential, caller))
            return caller
        if self._dev_account is None:
            raise unknown_access_key()
        # --dev: any well-formed signature passes, as the account root.
        account = self._dev_account
        principal = Principal(f"arn:aws:iam::{account}:root", account, "root", "root")
        return Caller(principal, auth.access_key_id, auth.region, source_ip, user_agent)
