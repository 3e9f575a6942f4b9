"""What each page shows, gathered with the signed-in principal's own API calls. A part the
principal may not read shows the API's refusal instead of its content."""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from typing import Any

from strongroom.console.api import Api, ApiError, Caller
from strongroom.crypto.specs import KEY_SPECS, UNSUPPORTED_KEY_SPECS
from strongroom.domain.enums import KeySpec, KeyState, KeyUsage, Origin

SORTABLE = ("created", "state", "spec", "usage", "origin", "rotation", "alias", "description", "id")
DESCRIBED_AT_MOST = 500
ROTATABLE_SPECS = frozenset({KeySpec.SYMMETRIC_DEFAULT.value})


@dataclass
class Part:
    """One part of a page: its value, or the API error that refused it."""

    value: Any = None
    error: ApiError | None = None


async def part(call: Awaitable[Any]) -> Part:
    try:
        return Part(await call)
    except ApiError as exc:
        return Part(error=exc)


@dataclass
class KeyRow:
    key_id: str
    metadata: dict[str, Any] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)
    tags: list[dict[str, str]] = field(default_factory=list)
    rotation: str = "n/a"  # "enabled", "disabled", "n/a" (spec or key manager), "?" (refused)
    error: str = ""  # what the API said when the key could not be described

    def field_of(self, name: str) -> str:
        m = self.metadata
        values = {
            "created": str(m.get("CreationDate", "")),
            "state": str(m.get("KeyState", "")),
            "spec": str(m.get("KeySpec", "")),
            "usage": str(m.get("KeyUsage", "")),
            "origin": str(m.get("Origin", "")),
            "rotation": self.rotation,
            "alias": self.aliases[0] if self.aliases else "",
            "description": str(m.get("Description", "")),
            "id": self.key_id,
        }
        return values.get(name, "")


@dataclass(frozen=True)
class KeyFilter:
    state: str = ""
    spec: str = ""
    usage: str = ""
    origin: str = ""
    rotation: str = ""
    alias: str = ""  # substring of any alias name
    tag: str = ""  # TagKey or TagKey=TagValue
    text: str = ""  # substring of the key id or description
    sort: str = "created"
    descending: bool = True

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> KeyFilter:
        sort = query.get("sort", "created")
        return cls(
            state=query.get("state", ""),
            spec=query.get("spec", ""),
            usage=query.get("usage", ""),
            origin=query.get("origin", ""),
            rotation=query.get("rotation", ""),
            alias=query.get("alias", "").strip(),
            tag=query.get("tag", "").strip(),
            text=query.get("q", "").strip(),
            sort=sort if sort in SORTABLE else "created",
            descending=query.get("order", "desc" if sort == "created" else "asc") == "desc",
        )

    def sort_query(self, query: Mapping[str, str], column: str) -> str:
        """The query string that sorts by ``column``: ascending, or the other way round
        when it is the column sorted by now."""
        if column == self.sort:
            order = "asc" if self.descending else "desc"
        else:
            order = "desc" if column == "created" else "asc"
        return urllib.parse.urlencode({**query, "sort": column, "order": order})

    def keeps(self, row: KeyRow) -> bool:
        for name, wanted in (
            ("state", self.state),
            ("spec", self.spec),
            ("usage", self.usage),
            ("origin", self.origin),
            ("rotation", self.rotation),
        ):
            if wanted and row.field_of(name) != wanted:
                return False
        if self.alias and not any(self.alias.lower() in a.lower() for a in row.aliases):
            return False
        if self.tag and not _has_tag(row.tags, self.tag):
            return False
        text = self.text.lower()
        description = str(row.metadata.get("Description", "")).lower()
        return not text or text in row.key_id.lower() or text in description


def _has_tag(tags: list[dict[str, str]], wanted: str) -> bool:
    key, _, value = wanted.partition("=")
    for tag in tags:
        if tag.get("TagKey") == key and ("=" not in wanted or tag.get("TagValue") == value):
            return True
    return False


CHOICES = {
    "state": [s.value for s in KeyState],
    "spec": [s.value for s in KeySpec],
    "usage": [u.value for u in KeyUsage],
    "origin": [o.value for o in Origin],
    "rotation": ["enabled", "disabled", "n/a"],
}


def creatable_specs() -> list[dict[str, Any]]:
    """Every key spec with the usages it allows (the create form), and why one is not."""
    return [
        {
            "spec": spec.value,
            "usages": [u.value for u in KEY_SPECS.get(spec, {})],
            "unsupported": UNSUPPORTED_KEY_SPECS.get(spec, ""),
        }
        for spec in KeySpec
    ]


async def alias_names(api: Api, caller: Caller) -> dict[str, list[str]]:
    """Alias names by target key id (every alias the principal may list)."""
    by_key: dict[str, list[str]] = {}
    for alias in await api.pages(caller, "ListAliases", "Aliases"):
        if alias.get("TargetKeyId"):
            by_key.setdefault(alias["TargetKeyId"], []).append(alias["AliasName"])
    return by_key


async def key_row(api: Api, caller: Caller, key_id: str, aliases: list[str]) -> KeyRow:
    row = KeyRow(key_id, aliases=sorted(aliases))
    try:
        row.metadata = (await api.call(caller, "DescribeKey", {"KeyId": key_id}))["KeyMetadata"]
    except ApiError as exc:
        row.error = f"{exc.code}: {exc.message}"
        return row
    tags, rotation = await asyncio.gather(
        part(api.pages(caller, "ListResourceTags", "Tags", {"KeyId": key_id})),
        part(_rotation(api, caller, row.metadata)),
    )
    row.tags = tags.value or []
    row.rotation = "?" if rotation.error else str(rotation.value)
    return row


async def _rotation(api: Api, caller: Caller, metadata: dict[str, Any]) -> str:
    if metadata.get("KeySpec") not in ROTATABLE_SPECS or metadata.get("Origin") != "AWS_KMS":
        return "n/a"
    status = await api.call(caller, "GetKeyRotationStatus", {"KeyId": metadata["KeyId"]})
    return "enabled" if status.get("KeyRotationEnabled") else "disabled"


@dataclass
class KeyList:
    rows: list[KeyRow]
    listed: int  # keys ListKeys returned
    described: int  # of them, the ones described (at most DESCRIBED_AT_MOST)


async def key_rows(api: Api, caller: Caller, where: KeyFilter) -> KeyList:
    """The keys the principal may list, described, filtered and sorted as ``where`` says.
    Only the first DESCRIBED_AT_MOST keys are described (each costs three API calls, each
    audited); the page says so. Raises ApiError when ListKeys itself is refused."""
    keys, aliases = await asyncio.gather(
        api.pages(caller, "ListKeys", "Keys", {"Limit": 1000}),
        part(alias_names(api, caller)),
    )
    names = aliases.value or {}
    chosen = keys[:DESCRIBED_AT_MOST]
    rows = await asyncio.gather(
        *(key_row(api, caller, k["KeyId"], names.get(k["KeyId"], [])) for k in chosen)
    )
    kept = [row for row in rows if where.keeps(row)]
    kept.sort(key=lambda row: (row.field_of(where.sort), row.key_id), reverse=where.descending)
    return KeyList(kept, len(keys), len(chosen))


async def key_page(api: Api, caller: Caller, key_id: str) -> dict[str, Any]:
    """Everything of one key's page. Raises ApiError when DescribeKey is refused."""
    metadata = (await api.call(caller, "DescribeKey", {"KeyId": key_id}))["KeyMetadata"]
    key_id = metadata["KeyId"]
    symmetric = metadata.get("KeySpec") in ROTATABLE_SPECS and metadata.get("Origin") == "AWS_KMS"
    policy, grants, tags, aliases, rotation, rotations = await asyncio.gather(
        part(api.call(caller, "GetKeyPolicy", {"KeyId": key_id, "PolicyName": "default"})),
        part(api.pages(caller, "ListGrants", "Grants", {"KeyId": key_id})),
        part(api.pages(caller, "ListResourceTags", "Tags", {"KeyId": key_id})),
        part(api.pages(caller, "ListAliases", "Aliases", {"KeyId": key_id})),
        part(api.call(caller, "GetKeyRotationStatus", {"KeyId": key_id})) if symmetric else _none(),
        part(api.pages(caller, "ListKeyRotations", "Rotations", {"KeyId": key_id}))
        if symmetric
        else _none(),
    )
    if policy.value is not None:
        policy.value = _pretty(policy.value.get("Policy", ""))
    return {
        "metadata": metadata,
        "policy": policy,
        "grants": grants,
        "tags": tags,
        "aliases": aliases,
        "rotation": rotation,
        "rotations": rotations,
        "symmetric": symmetric,
    }


async def _none() -> Part:
    return Part()


def _pretty(policy: str) -> str:
    try:
        return json.dumps(json.loads(policy), indent=2)
    except ValueError:
        return policy
