"""What a client is configured with: the data key cache and the retry policy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

RetryMode = Literal["standard", "adaptive"]


@dataclass(frozen=True, slots=True)
class CacheSettings:
    """Data key caching through the AWS Encryption SDK's caching materials manager: a data
    key is reused until it is ``max_age`` seconds old, has encrypted ``max_messages``
    messages or ``max_bytes`` bytes, whichever comes first (the SDK's security thresholds;
    AWS Encryption SDK Developer Guide, "Setting cache security thresholds"). ``capacity``
    bounds the number of entries of the local cache (least recently used evicted).

    The SDK caches a data key only for a message whose plaintext size is known beforehand
    (bytes, or a file): a stream of unknown size gets its own data key."""

    max_age: float = 300.0
    max_messages: int = 2**32
    max_bytes: int = 2**63 - 1
    capacity: int = 100

    def __post_init__(self) -> None:
        if not self.max_age > 0:
            raise ValueError(f"cache max age must be greater than 0 seconds, got {self.max_age}")
        if not 1 <= self.max_messages <= 2**32:
            raise ValueError(
                f"cache max messages must be between 1 and 2**32, got {self.max_messages}"
            )
        if not 1 <= self.max_bytes <= 2**63 - 1:
            raise ValueError(f"cache max bytes must be between 1 and 2**63-1, got {self.max_bytes}")
        if self.capacity < 1:
            raise ValueError(f"cache capacity must be at least 1, got {self.capacity}")


@dataclass(frozen=True, slots=True)
class RetrySettings:
    """botocore's retry mode and its total number of attempts per KMS call (the first
    included). ``None`` takes what the AWS environment or profile says (``AWS_RETRY_MODE``,
    ``AWS_MAX_ATTEMPTS``, ``retry_mode``, ``max_attempts``), else standard mode with 10
    attempts: exponential backoff with full jitter, a base of 1 s and a cap of 20 s
    (botocore's ``standard`` retry handler)."""

    mode: RetryMode | None = None
    max_attempts: int | None = None

    def __post_init__(self) -> None:
        if self.mode is not None and self.mode not in ("standard", "adaptive"):
            raise ValueError(f"retry mode must be standard or adaptive, got {self.mode!r}")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError(f"max attempts must be at least 1, got {self.max_attempts}")


DEFAULT_RETRY_MODE: RetryMode = "standard"
DEFAULT_MAX_ATTEMPTS = 10
