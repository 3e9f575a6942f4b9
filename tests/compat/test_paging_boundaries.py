"""Paging at its boundaries, through boto3 against a server in this process whose clock
stands still unless told (so every key and grant made meanwhile shares one creation date,
as a seed file's keys do): each item once, in order, a page's marker continuing exactly,
and a walk that goes on while items are created and deleted between its pages."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from ._in_process import InProcess, fresh_database, in_process

pytestmark = pytest.mark.compat


@pytest.fixture(params=["sqlite", "postgres"])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[InProcess]:
    with fresh_database(request.param) as url, in_process(tmp_path / "data", url) as server:
        yield server


Page = Callable[[str | None], dict[str, Any]]


def _pages(page: Page, items: str, name: str) -> Iterator[tuple[list[str], str | None]]:
    """Each page's item names and the marker that follows it."""
    marker = None
    while True:
        reply = page(marker)
        marker = reply.get("NextMarker")
        assert reply["Truncated"] == (marker is not None)
        yield [item[name] for item in reply[items]], marker
        if marker is None:
            return


def _create_keys(kms: Any, count: int) -> list[str]:
    return [kms.create_key()["KeyMetadata"]["KeyId"] for _ in range(count)]


def test_keys_of_one_creation_date_page_once_each_and_markers_continue_exactly(
    app: InProcess,
) -> None:
    kms = app.kms
    made = _create_keys(kms, 45)
    dates = {kms.describe_key(KeyId=k)["KeyMetadata"]["CreationDate"] for k in made[::11]}
    assert len(dates) == 1  # the clock stood still

    def page(marker: str | None) -> dict[str, Any]:
        return kms.list_keys(Limit=7, **({} if marker is None else {"Marker": marker}))  # type: ignore[no-any-return]

    walk = list(_pages(page, "Keys", "KeyId"))
    seen = [key_id for ids, _ in walk for key_id in ids]
    assert len(walk) == 7 and len(seen) == len(set(seen)) == 45
    assert seen == sorted(made)  # one creation date: in ARN order
    for (_, marker), (ids, _) in itertools.pairwise(walk):
        assert [k["KeyId"] for k in page(marker)["Keys"]] == ids  # again, the same page


def _wait_gone(kms: Any, key_ids: list[str]) -> None:
    deadline = time.monotonic() + 10
    for key_id in key_ids:
        while True:
            try:
                kms.describe_key(KeyId=key_id)
            except ClientError as exc:
                assert exc.response["Error"]["Code"] == "NotFoundException"
                break
            assert time.monotonic() < deadline, f"{key_id} was not deleted"
            time.sleep(0.05)


def test_a_key_walk_goes_on_while_keys_are_created_and_deleted_between_pages(
    app: InProcess,
) -> None:
    kms = app.kms
    made = sorted(_create_keys(kms, 30))
    # The key the first page ends on, and one on a later page, go between the pages.
    doomed = [made[9], made[20]]
    for key_id in doomed:
        kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    first = kms.list_keys(Limit=10)
    assert [k["KeyId"] for k in first["Keys"]] == made[:10]
    app.clock.advance(timedelta(days=7, seconds=1))
    _wait_gone(kms, doomed)
    newer = _create_keys(kms, 2)  # a later creation date: after every key seen so far
    rest: list[str] = []
    marker = first["NextMarker"]
    while marker is not None:
        reply = kms.list_keys(Limit=10, Marker=marker)
        rest += [k["KeyId"] for k in reply["Keys"]]
        marker = reply.get("NextMarker")
    assert rest == [k for k in made[10:] if k != made[20]] + sorted(newer)


def test_an_alias_walk_goes_on_after_the_alias_its_page_ended_on_is_deleted(
    app: InProcess,
) -> None:
    kms = app.kms
    key_id = _create_keys(kms, 1)[0]
    names = [f"alias/paging-{n:02d}" for n in range(25)]
    for name in names:
        kms.create_alias(AliasName=name, TargetKeyId=key_id)

    def page(marker: str | None) -> dict[str, Any]:
        extra = {} if marker is None else {"Marker": marker}
        return kms.list_aliases(KeyId=key_id, Limit=4, **extra)  # type: ignore[no-any-return]

    first = page(None)
    assert [a["AliasName"] for a in first["Aliases"]] == names[:4]
    kms.delete_alias(AliasName=names[3])
    kms.delete_alias(AliasName=names[10])
    kms.create_alias(AliasName="alias/paging-99", TargetKeyId=key_id)
    rest = [
        name
        for ids, _ in _pages(lambda m: page(m or first["NextMarker"]), "Aliases", "AliasName")
        for name in ids
    ]
    assert rest == [n for n in names[4:] if n != names[10]] + ["alias/paging-99"]


def test_grants_of_one_creation_date_page_once_each_while_grants_are_retired(
    app: InProcess,
) -> None:
    kms = app.kms
    key_id = _create_keys(kms, 1)[0]
    grantee = f"arn:aws:iam::{app.runtime.settings.account}:root"
    made = sorted(
        kms.create_grant(KeyId=key_id, GranteePrincipal=grantee, Operations=["Encrypt"])["GrantId"]
        for _ in range(22)
    )

    def page(marker: str | None) -> dict[str, Any]:
        extra = {} if marker is None else {"Marker": marker}
        return kms.list_grants(KeyId=key_id, Limit=5, **extra)  # type: ignore[no-any-return]

    first = page(None)
    assert [g["GrantId"] for g in first["Grants"]] == made[:5]
    kms.revoke_grant(KeyId=key_id, GrantId=made[4])  # the grant the page ended on
    kms.revoke_grant(KeyId=key_id, GrantId=made[15])
    rest = [
        grant_id
        for ids, _ in _pages(lambda m: page(m or first["NextMarker"]), "Grants", "GrantId")
        for grant_id in ids
    ]
    assert rest == [g for g in made[5:] if g != made[15]]
