"""A wrapper for key bytes whose repr never shows them."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class KeyBytes:
    """Secret bytes (key material, data keys, access-key secrets); ``repr`` is redacted."""

    value: bytes = field(repr=False)

    def __repr__(self) -> str:
        return f"KeyBytes(<{len(self.value)} bytes redacted>)"

    def __len__(self) -> int:
        return len(self.value)
