"""Resource tags of keys in SQL: the ``tags`` table."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import sqlalchemy as sa

from strongroom.domain.models import Tag
from strongroom.storage.schema import tags


class SqlTags:
    """The TagRepository of one transaction."""

    def __init__(self, conn: sa.Connection) -> None:
        self._c = conn

    def put(self, key_arn: str, new: Iterable[Tag]) -> None:
        """Add tags, replacing the values of tag keys the key has already."""
        new = list(new)
        if not new:
            return
        self.delete(key_arn, [t.key for t in new])
        self._c.execute(
            tags.insert(),
            [{"key_arn": key_arn, "tag_key": t.key, "tag_value": t.value} for t in new],
        )

    def delete(self, key_arn: str, tag_keys: Sequence[str]) -> None:
        self._c.execute(
            tags.delete().where(tags.c.key_arn == key_arn, tags.c.tag_key.in_(list(tag_keys)))
        )

    def list(self, key_arn: str) -> list[Tag]:
        """A key's tags, ordered by tag key."""
        q = sa.select(tags).where(tags.c.key_arn == key_arn).order_by(tags.c.tag_key)
        return [Tag(r.tag_key, r.tag_value) for r in self._c.execute(q)]
