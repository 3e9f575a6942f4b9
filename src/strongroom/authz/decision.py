"""The one authorization call every operation makes.

For now the rule is AWS's simplest one: a caller may use and manage the keys of its
own account. Key policies, identity policies and grants replace what is behind
``authorize`` without changing its callers.
"""

from __future__ import annotations

from strongroom.domain.errors import AccessDeniedException
from strongroom.domain.models import Caller, Key


def authorize(caller: Caller, action: str, key: Key | None = None) -> None:
    """Allow ``kms:<action>`` on ``key`` (or on ``*`` when None) or raise AccessDeniedException."""
    if key is None or key.account == caller.principal.account:
        return
    raise AccessDeniedException(
        f"User: {caller.principal.arn} is not authorized to perform: kms:{action} "
        f"on resource: {key.arn} because no resource-based policy allows the "
        f"kms:{action} action"
    )
