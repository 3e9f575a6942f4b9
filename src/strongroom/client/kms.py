"""KMS clients for the Encryption SDK, made from a botocore session: the endpoint, Region,
credentials and retry policy of the AWS environment and profile, and what the calls did
(their count, their retries, the last error)."""

from __future__ import annotations

import os
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import botocore.session
from aws_encryption_sdk.identifiers import USER_AGENT_SUFFIX
from botocore.config import Config

from strongroom.client.settings import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_RETRY_MODE,
    RetrySettings,
)

# botocore's standard retry handler treats these codes as throttling (its
# ThrottledRetryableChecker); the CLI's report names them so.
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "LimitExceededException",
        "SlowDown",
    }
)


@dataclass
class CallStats:
    """What the KMS calls of one client did: ``calls`` by operation, ``retries`` in total and
    ``retried_errors`` by the AWS error code of each attempt that was retried, and the last
    error KMS answered ``(operation, code, message)``."""

    calls: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    retried_errors: Counter[str] = field(default_factory=Counter)
    last_error: tuple[str, str, str] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # The codes of the failed attempts of the call in progress, per thread.
    _attempts: threading.local = field(default_factory=threading.local, repr=False)

    def retry_report(self) -> str | None:
        """One line for the user when a call was retried: ``retried 7 times after throttling
        (ThrottlingException: 7)``; None when nothing was retried."""
        if not self.retries:
            return None
        cause = (
            "throttling"
            if self.retried_errors and set(self.retried_errors) <= THROTTLING_CODES
            else "errors"
        )
        codes = ", ".join(f"{code}: {n}" for code, n in sorted(self.retried_errors.items()))
        times = "once" if self.retries == 1 else f"{self.retries} times"
        return f"retried {times} after {cause}" + (f" ({codes})" if codes else "")

    def note_attempt(self, response: Any, **kwargs: Any) -> None:
        """needs-retry (after every attempt; botocore's retry handler decides, this one only
        notes the error code of a failed attempt)."""
        if response is None:
            code = type(kwargs.get("caught_exception")).__name__
        else:
            code = response[1].get("Error", {}).get("Code")
        if code:
            failed: list[str] = getattr(self._attempts, "codes", [])
            failed.append(code)
            self._attempts.codes = failed

    def note_call(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        """after-call (once per call, after its last attempt, success or error)."""
        retried = int(parsed.get("ResponseMetadata", {}).get("RetryAttempts", 0))
        failed: list[str] = getattr(self._attempts, "codes", [])
        self._attempts.codes = []
        error = parsed.get("Error")
        with self._lock:
            self.calls[model.name] += 1
            self.retries += retried
            self.retried_errors.update(failed[:retried])
            if error:
                self.last_error = (model.name, error.get("Code", ""), error.get("Message", ""))

    def note_failed_call(self, **_: Any) -> None:
        """after-call-error (a call that ended without a response: its connection failed;
        botocore raises that error to the caller)."""
        failed: list[str] = getattr(self._attempts, "codes", [])
        self._attempts.codes = []
        with self._lock:
            self.retries += max(len(failed) - 1, 0)
            self.retried_errors.update(failed[:-1])


class KmsClients:
    """One KMS client per Region, all from one botocore session.

    ``endpoint_url`` and ``region`` override the environment and profile; otherwise the
    endpoint is botocore's (``AWS_ENDPOINT_URL_KMS``, ``AWS_ENDPOINT_URL``, the profile's
    ``endpoint_url`` or services section) and the Region is ``AWS_REGION``, then botocore's
    (``AWS_DEFAULT_REGION``, the profile's ``region``)."""

    def __init__(
        self,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        profile: str | None = None,
        retries: RetrySettings | None = None,
        session: botocore.session.Session | None = None,
    ) -> None:
        self._session = session or botocore.session.Session(profile=profile)
        self._endpoint_url = endpoint_url
        retries = retries or RetrySettings()
        self.region: str | None = (
            region or os.environ.get("AWS_REGION") or self._session.get_config_variable("region")
        )
        mode = retries.mode or self._session.get_config_variable("retry_mode")
        attempts = retries.max_attempts or self._session.get_config_variable("max_attempts")
        self.retry_mode: str = mode or DEFAULT_RETRY_MODE
        self.max_attempts: int = int(attempts or DEFAULT_MAX_ATTEMPTS)
        self._config = Config(
            retries={"mode": self.retry_mode, "total_max_attempts": self.max_attempts},
            # The SDK's own suffix, so the audit trail tells its calls apart as for the SDK.
            user_agent_extra=f"{USER_AGENT_SUFFIX} strongroom-client",
        )
        self.stats = CallStats()
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def for_region(self, region: str | None) -> Any:
        """The KMS client of ``region`` (None: the configured Region); raises ValueError when
        no Region is known."""
        name = region or self.region
        if not name:
            raise ValueError(
                "no AWS Region: give --region, or set AWS_REGION or AWS_DEFAULT_REGION, or "
                "region in the profile (or name the key by its ARN)"
            )
        with self._lock:
            client = self._clients.get(name)
            if client is None:
                client = self._session.create_client(
                    "kms", region_name=name, endpoint_url=self._endpoint_url, config=self._config
                )
                events = client.meta.events
                events.register("needs-retry.kms", self.stats.note_attempt)
                events.register("after-call.kms", self.stats.note_call)
                events.register("after-call-error.kms", self.stats.note_failed_call)
                self._clients[name] = client
            return client

    def for_key(self, key_id: str) -> Any:
        """The client of the Region a key or alias ARN names, else the configured Region's."""
        return self.for_region(region_of(key_id))


def region_of(key_id: str) -> str | None:
    """The Region of a KMS ARN (``arn:PARTITION:kms:REGION:ACCOUNT:...``); None for a key id
    or an alias name."""
    if key_id.startswith("arn:"):
        parts = key_id.split(":", 5)
        if len(parts) == 6 and parts[3]:
            return parts[3]
    return None
