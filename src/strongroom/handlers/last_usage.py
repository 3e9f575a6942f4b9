"""Handler for GetKeyLastUsage."""

from __future__ import annotations

from typing import Any

from strongroom.services.core import Core, RequestContext
from strongroom.services.last_usage import get_key_last_usage as last_usage

Request = dict[str, Any]
Response = dict[str, Any]


def get_key_last_usage(core: Core, ctx: RequestContext, req: Request) -> Response:
    """KeyId is the key id ("The globally unique identifier for the KMS key", and the id in
    the developer guide's example); KeyLastUsage is an empty object for a key not used since
    tracking began, as in that example. Timestamp has CloudTrail's eventTime resolution,
    whole seconds (1773253497.0 in the example)."""
    found = last_usage(core, ctx, req["KeyId"])
    use = found.last.use
    usage: dict[str, Any] = {}
    if use is not None:
        usage = {
            "Operation": use.operation,
            "Timestamp": use.timestamp.replace(microsecond=0),
            "CloudTrailEventId": use.event_id,
            "KmsRequestId": use.request_id,
        }
    return {
        "KeyId": found.key.key_id,
        "KeyLastUsage": usage,
        "TrackingStartDate": found.last.tracking_start,
        "KeyCreationDate": found.key.creation_date,
    }
