"""The order transactions lock key rows in: set by set (one account and key id: a
multi-Region key's primary and replicas together), each set in Region order."""

from __future__ import annotations

import pytest

from strongroom.domain.ids import key_arn, lock_order

pytestmark = pytest.mark.unit

A, B = "11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"


def test_a_multi_region_set_comes_together_in_region_order() -> None:
    arns = [
        key_arn("us-east-1", "111122223333", A),
        key_arn("eu-west-1", "111122223333", B),
        key_arn("ap-south-1", "111122223333", B),
        key_arn("eu-west-1", "111122223333", A),
        key_arn("us-east-1", "000011112222", B),
    ]
    assert sorted(arns, key=lock_order) == [
        key_arn("us-east-1", "000011112222", B),
        key_arn("eu-west-1", "111122223333", A),
        key_arn("us-east-1", "111122223333", A),
        key_arn("ap-south-1", "111122223333", B),
        key_arn("eu-west-1", "111122223333", B),
    ]


def test_what_is_not_a_key_arn_sorts_by_itself() -> None:
    alias = "arn:aws:kms:us-east-1:111122223333:alias/a"
    assert lock_order(alias) == ("", "", alias)
    assert lock_order("not an arn") == ("", "", "not an arn")
