"""Authorization has one seam: services.access is the only module that calls the runtime's
Authorizer (import-linter keeps authz.decision out of every other module but services.core,
which builds it)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import strongroom

pytestmark = pytest.mark.unit

SRC = Path(strongroom.__file__).parent


def test_only_services_access_calls_the_authorizer() -> None:
    callers = sorted(
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if re.search(r"\.authz\.\w+\(", path.read_text())
    )
    assert callers == ["services/access.py"]
