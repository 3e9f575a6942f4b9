"""Trust anchor certificates compared by the certificate, not the text."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from strongroom.crypto.trust_anchor import (
    certificate_der,
    same_trust_anchor,
    self_signed_trust_anchor,
)

pytestmark = pytest.mark.unit


def test_same_certificate_in_other_line_endings_is_the_same_trust_anchor() -> None:
    pem = self_signed_trust_anchor("a", datetime.now(UTC))
    assert same_trust_anchor(pem, pem.replace("\n", "\r\n"))


def test_another_certificate_or_no_certificate_is_not_the_same() -> None:
    now = datetime.now(UTC)
    a, b = self_signed_trust_anchor("a", now), self_signed_trust_anchor("a", now)
    assert not same_trust_anchor(a, b)
    assert not same_trust_anchor("nonsense", "nonsense")
    assert certificate_der("nonsense") is None
    assert certificate_der(a) is not None
