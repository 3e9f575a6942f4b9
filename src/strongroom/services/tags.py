"""Tags on keys."""

from __future__ import annotations

from collections.abc import Sequence

from strongroom.authz.context_keys import request_tags
from strongroom.domain.models import Tag
from strongroom.domain.operations import Operation, check_state
from strongroom.domain.quotas import TAGS_PER_KEY
from strongroom.services.access import authorize_key
from strongroom.services.core import Core, RequestContext
from strongroom.services.keys import locked_key
from strongroom.services.paging import decode_marker, encode_marker, next_page
from strongroom.services.quotas import limit
from strongroom.services.resolve import resolve_key
from strongroom.services.validation import check_tags


def tag_resource(core: Core, ctx: RequestContext, key_id: str, new: Sequence[Tag]) -> None:
    """TagResource: add tags or replace the values of existing ones (aws:RequestTag/<k> and
    aws:TagKeys are the request's tags); every process drops the key's cached tags."""
    key = resolve_key(core, ctx, key_id, allow_alias=False)
    extra = request_tags((t.key, t.value) for t in new)
    authorize_key(core, ctx, "TagResource", key, extra=extra)
    with core.store.transaction() as tx:
        # The key's row held until the tags commit: another TagResource on the key waits
        # and counts these (both fitting alone, together they could pass the limit).
        locked_key(tx, key, Operation.TAG_RESOURCE)
        existing = {t.key for t in tx.tags.list(key.arn)}
        most = limit(tx, key.account, key.region, TAGS_PER_KEY)
        check_tags(new, existing=len(existing - {t.key for t in new}), most=most)
        tx.tags.put(key.arn, new)
        tx.changes.record(key.arn, core.clock())
    core.cache.invalidate(key.arn)


def untag_resource(core: Core, ctx: RequestContext, key_id: str, tag_keys: Sequence[str]) -> None:
    """UntagResource (aws:TagKeys is the request's tag keys); every process drops the key's
    cached tags."""
    key = resolve_key(core, ctx, key_id, allow_alias=False)
    authorize_key(core, ctx, "UntagResource", key, extra={"aws:TagKeys": tuple(tag_keys)})
    check_state(Operation.UNTAG_RESOURCE, key)
    with core.store.transaction() as tx:
        tx.tags.delete(key.arn, tag_keys)
        tx.changes.record(key.arn, core.clock())
    core.cache.invalidate(key.arn)


def list_tags(
    core: Core, ctx: RequestContext, key_id: str, *, limit: int, marker: str | None
) -> tuple[list[Tag], str | None]:
    """A page of a key's tags in key order, and the marker of the next page."""
    key = resolve_key(core, ctx, key_id, allow_alias=False)
    authorize_key(core, ctx, "ListResourceTags", key)
    with core.store.read() as tx:
        all_tags = tx.tags.list(key.arn)
    # The marker names the last tag key of the previous page: the next page starts after
    # it even when that tag was removed meanwhile.
    after = None if marker is None else decode_marker(marker, _TAG_MARKER, str)
    rest = all_tags if after is None else [t for t in all_tags if t.key > after]
    return next_page(rest, limit, lambda t: encode_marker(_TAG_MARKER, t.key))


_TAG_MARKER = "tag"
