"""Handlers of the SSM API's Parameter Store operations (AWS JSON 1.1,
``X-Amz-Target: AmazonSSM.<Operation>``): wire members in, the operation's result out, and
the dispatch table of the SSM endpoint."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from strongroom.domain.models import Tag
from strongroom.domain.parameters import ParameterType, ParameterVersion
from strongroom.services import parameter_reads, parameter_tags, parameters
from strongroom.services.core import Core, RequestContext
from strongroom.services.parameter_filters import ParameterFilter
from strongroom.services.parameter_reads import Shown

Request = dict[str, Any]
Response = dict[str, Any]
Handler = Callable[[Core, RequestContext, Request], Response]


def put_parameter(core: Core, ctx: RequestContext, req: Request) -> Response:
    kind = req.get("Type")
    stored = parameters.put_parameter(
        core,
        ctx,
        parameters.NewValue(
            name=req["Name"],
            value=req["Value"],
            type=None if kind is None else ParameterType(kind),
            key_id=req.get("KeyId"),
            overwrite=bool(req.get("Overwrite", False)),
            description=req.get("Description"),
            allowed_pattern=req.get("AllowedPattern"),
            tags=tuple(Tag(t["Key"], t["Value"]) for t in req.get("Tags") or ()),
            tier=req.get("Tier"),
            data_type=req.get("DataType"),
            policies=req.get("Policies"),
        ),
    )
    return {"Version": stored.version, "Tier": stored.tier.value}


def get_parameter(core: Core, ctx: RequestContext, req: Request) -> Response:
    shown = parameter_reads.get_parameter(
        core, ctx, req["Name"], with_decryption=bool(req.get("WithDecryption", False))
    )
    return {"Parameter": _parameter(shown)}


def get_parameters(core: Core, ctx: RequestContext, req: Request) -> Response:
    found, invalid = parameter_reads.get_parameters(
        core, ctx, req["Names"], with_decryption=bool(req.get("WithDecryption", False))
    )
    return {"Parameters": [_parameter(s) for s in found], "InvalidParameters": invalid}


def get_parameters_by_path(core: Core, ctx: RequestContext, req: Request) -> Response:
    found, token = parameter_reads.get_parameters_by_path(
        core,
        ctx,
        req["Path"],
        recursive=bool(req.get("Recursive", False)),
        filters=_filters(req.get("ParameterFilters")),
        with_decryption=bool(req.get("WithDecryption", False)),
        max_results=req.get("MaxResults", 10),
        next_token=req.get("NextToken"),
    )
    return {"Parameters": [_parameter(s) for s in found], "NextToken": token}


def delete_parameter(core: Core, ctx: RequestContext, req: Request) -> Response:
    parameters.delete_parameter(core, ctx, req["Name"])
    return {}


def delete_parameters(core: Core, ctx: RequestContext, req: Request) -> Response:
    deleted, invalid = parameters.delete_parameters(core, ctx, req["Names"])
    return {"DeletedParameters": deleted, "InvalidParameters": invalid}


def describe_parameters(core: Core, ctx: RequestContext, req: Request) -> Response:
    found, token = parameter_reads.describe_parameters(
        core,
        ctx,
        filters=[(f["Key"], f.get("Values") or ()) for f in req.get("Filters") or ()],
        parameter_filters=_filters(req.get("ParameterFilters")),
        max_results=req.get("MaxResults", 50),
        next_token=req.get("NextToken"),
    )
    return {"Parameters": [_metadata(p) for p in found], "NextToken": token}


def get_parameter_history(core: Core, ctx: RequestContext, req: Request) -> Response:
    found, token = parameter_reads.get_parameter_history(
        core,
        ctx,
        req["Name"],
        with_decryption=bool(req.get("WithDecryption", False)),
        max_results=req.get("MaxResults", 50),
        next_token=req.get("NextToken"),
    )
    history = [{**_metadata(s.parameter), "Value": s.value, "Labels": []} for s in found]
    for entry in history:
        entry.pop("ARN", None)
    return {"Parameters": history, "NextToken": token}


def add_tags_to_resource(core: Core, ctx: RequestContext, req: Request) -> Response:
    tags = [Tag(t["Key"], t["Value"]) for t in req["Tags"]]
    parameter_tags.add_tags(core, ctx, req["ResourceType"], req["ResourceId"], tags)
    return {}


def remove_tags_from_resource(core: Core, ctx: RequestContext, req: Request) -> Response:
    parameter_tags.remove_tags(core, ctx, req["ResourceType"], req["ResourceId"], req["TagKeys"])
    return {}


def list_tags_for_resource(core: Core, ctx: RequestContext, req: Request) -> Response:
    found = parameter_tags.list_tags(core, ctx, req["ResourceType"], req["ResourceId"])
    return {"TagList": [{"Key": t.key, "Value": t.value} for t in found]}


def _filters(raw: list[dict[str, Any]] | None) -> list[ParameterFilter]:
    return [
        ParameterFilter(f["Key"], f.get("Option"), tuple(f.get("Values") or ())) for f in raw or ()
    ]


def _parameter(shown: Shown) -> dict[str, Any]:
    """A ``Parameter`` as GetParameter and its kin return it."""
    p = shown.parameter
    return {
        "Name": p.name,
        "Type": p.type.value,
        "Value": shown.value,
        "Version": p.version,
        "Selector": shown.selector,
        "LastModifiedDate": p.modified,
        "ARN": p.arn,
        "DataType": p.data_type,
    }


def _metadata(p: ParameterVersion) -> dict[str, Any]:
    """A ``ParameterMetadata`` (DescribeParameters), the base of a ``ParameterHistory``."""
    return {
        "Name": p.name,
        "ARN": p.arn,
        "Type": p.type.value,
        "KeyId": p.key_id,
        "LastModifiedDate": p.modified,
        "LastModifiedUser": p.modified_user,
        "Description": p.description or None,
        "AllowedPattern": p.allowed_pattern or None,
        "Version": p.version,
        "Tier": p.tier.value,
        "Policies": [],
        "DataType": p.data_type,
    }


HANDLERS: Mapping[str, Handler] = {
    "PutParameter": put_parameter,
    "GetParameter": get_parameter,
    "GetParameters": get_parameters,
    "GetParametersByPath": get_parameters_by_path,
    "DeleteParameter": delete_parameter,
    "DeleteParameters": delete_parameters,
    "DescribeParameters": describe_parameters,
    "GetParameterHistory": get_parameter_history,
    "AddTagsToResource": add_tags_to_resource,
    "RemoveTagsFromResource": remove_tags_from_resource,
    "ListTagsForResource": list_tags_for_resource,
}
"""The SSM operations this server serves; any other of the SSM model answers
UnsupportedOperationException."""

CHANGES_STATE = frozenset(
    {
        "PutParameter",
        "DeleteParameter",
        "DeleteParameters",
        "AddTagsToResource",
        "RemoveTagsFromResource",
    }
)
"""The SSM operations that change state: their intent is made durable in the audit trail
before they run (``domain.operations.CHANGES_STATE`` for KMS)."""
