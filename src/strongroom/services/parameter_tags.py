"""The tags of Parameter Store parameters: AddTagsToResource, RemoveTagsFromResource and
ListTagsForResource with ResourceType ``Parameter`` (other SSM resource types do not exist
on this server). At most 50 tags a parameter (Systems Manager "Tagging Systems Manager
resources")."""

from __future__ import annotations

from collections.abc import Sequence

from strongroom.domain.models import Tag
from strongroom.domain.parameters import parameter_arn
from strongroom.domain.ssm_errors import InvalidResourceId, InvalidResourceType, TooManyTagsError
from strongroom.services.access import authorize_parameter
from strongroom.services.core import Core, RequestContext
from strongroom.services.parameters import check_tags, parse_name

MAX_TAGS = 50
PARAMETER = "Parameter"


def add_tags(
    core: Core, ctx: RequestContext, resource_type: str, resource_id: str, tags: Sequence[Tag]
) -> None:
    """Add ``tags`` to a parameter, replacing the values of keys it has. Raises
    InvalidResourceType, InvalidResourceId, TooManyTagsError, ValidationException,
    AccessDeniedException."""
    name = _parameter(core, ctx, resource_type, resource_id, "AddTagsToResource")
    check_tags(tags)
    with core.store.transaction() as tx:
        have = {t.key for t in tx.parameters.tags(ctx.account, ctx.region, name)}
        if len(have | {t.key for t in tags}) > MAX_TAGS:
            raise TooManyTagsError(f"The parameter {name} would have more than {MAX_TAGS} tags.")
        tx.parameters.put_tags(
            ctx.account, ctx.region, name, list({t.key: t for t in tags}.values())
        )


def remove_tags(
    core: Core, ctx: RequestContext, resource_type: str, resource_id: str, keys: Sequence[str]
) -> None:
    """Remove the tags with ``keys`` from a parameter. Raises InvalidResourceType,
    InvalidResourceId, AccessDeniedException."""
    name = _parameter(core, ctx, resource_type, resource_id, "RemoveTagsFromResource")
    with core.store.transaction() as tx:
        tx.parameters.delete_tags(ctx.account, ctx.region, name, keys)


def list_tags(core: Core, ctx: RequestContext, resource_type: str, resource_id: str) -> list[Tag]:
    """A parameter's tags, by key. Raises InvalidResourceType, InvalidResourceId,
    AccessDeniedException."""
    name = _parameter(core, ctx, resource_type, resource_id, "ListTagsForResource")
    with core.store.read() as tx:
        return tx.parameters.tags(ctx.account, ctx.region, name)


def _parameter(
    core: Core, ctx: RequestContext, resource_type: str, resource_id: str, action: str
) -> str:
    """The name of the existing parameter ``resource_id`` names (a name or its ARN), once
    the caller may ``ssm:<action>`` on it."""
    if resource_type != PARAMETER:
        raise InvalidResourceType(
            f"Resource type {resource_type} is not supported by this server: only Parameter."
        )
    name = parse_name(ctx, resource_id).name
    arn = parameter_arn(ctx.region, ctx.account, name)
    authorize_parameter(core, ctx, action, arn)
    ctx.resources.append(arn)
    with core.store.transaction() as tx:
        found = tx.parameters.latest(ctx.account, ctx.region, name)
        if found is None and "/" not in name:  # an ARN hides a leading '/'
            found = tx.parameters.latest(ctx.account, ctx.region, "/" + name)
    if found is None:
        raise InvalidResourceId(f"The parameter {name} does not exist.")
    return found.name
