"""DescribeParameters' and GetParametersByPath's filters (services.parameter_filters)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from strongroom.domain.parameters import ParameterTier, ParameterType, ParameterVersion
from strongroom.domain.ssm_errors import InvalidFilterKey, InvalidFilterOption, InvalidFilterValue
from strongroom.services.parameter_filters import (
    ParameterFilter,
    check_by_path_filters,
    check_describe_filters,
    legacy_filters,
    matches,
)

pytestmark = pytest.mark.unit


def _p(
    name: str, kind: ParameterType = ParameterType.STRING, key: str | None = None
) -> ParameterVersion:
    return ParameterVersion(
        "111122223333", "us-east-1", name, 1, kind, "v", None, key, "", "",
        ParameterTier.STANDARD, "text", datetime.now(UTC), "arn:aws:iam::111122223333:root",
    )  # fmt: skip


def _tags(**tags: str):  # type: ignore[no-untyped-def]
    return lambda: tags


def test_describe_filters_get_their_default_option() -> None:
    [name, path, tag] = check_describe_filters(
        [
            ParameterFilter("Name", None, ("/a",)),
            ParameterFilter("Path", None, ("/a",)),
            ParameterFilter("tag:team", None, ()),
        ]
    )
    assert (name.option, path.option, tag.option) == ("Equals", "OneLevel", "Equals")


@pytest.mark.parametrize(
    ("given", "error"),
    [
        (ParameterFilter("Label", None, ("x",)), InvalidFilterKey),
        (ParameterFilter("tag:", None, ("x",)), InvalidFilterKey),
        (ParameterFilter("Type", "Contains", ("String",)), InvalidFilterOption),
        (ParameterFilter("Path", "Equals", ("/a",)), InvalidFilterOption),
        (ParameterFilter("Type", None, ()), InvalidFilterValue),
    ],
)
def test_describe_filters_refused(given: ParameterFilter, error: type[Exception]) -> None:
    with pytest.raises(error):
        check_describe_filters([given])


@pytest.mark.parametrize("key", ["Name", "Path", "Tier", "DataType", "tag:x"])
def test_by_path_takes_only_type_key_id_and_label(key: str) -> None:
    with pytest.raises(InvalidFilterKey):
        check_by_path_filters([ParameterFilter(key, None, ("x",))])
    with pytest.raises(InvalidFilterOption):
        check_by_path_filters([ParameterFilter("Label", "BeginsWith", ("x",))])


def test_matching() -> None:
    secret = _p("/app/db/pw", ParameterType.SECURE_STRING, "alias/aws/ssm")
    [by_type, by_key, begins, contains, one, deep] = check_describe_filters(
        [
            ParameterFilter("Type", None, ("SecureString",)),
            ParameterFilter("KeyId", "BeginsWith", ("alias/aws",)),
            ParameterFilter("Name", "BeginsWith", ("/app/db",)),
            ParameterFilter("Name", "Contains", ("db/p",)),
            ParameterFilter("Path", "OneLevel", ("/app",)),
            ParameterFilter("Path", "Recursive", ("/app",)),
        ]
    )
    none = _tags()
    assert all(matches(secret, f, none) for f in (by_type, by_key, begins, contains, deep))
    assert not matches(secret, one, none)
    assert not matches(_p("/app/x"), by_key, none)  # a String has no KeyId
    [tagged, any_value] = check_describe_filters(
        [ParameterFilter("tag:team", None, ("blue",)), ParameterFilter("tag:team", None, ())]
    )
    assert matches(secret, tagged, _tags(team="blue"))
    assert not matches(secret, tagged, _tags(team="red"))
    assert matches(secret, any_value, _tags(team="red"))
    assert not matches(secret, any_value, none)
    [equal_name] = check_describe_filters([ParameterFilter("Name", None, ("app/db/pw",))])
    assert matches(secret, equal_name, none)  # with or without the leading '/'


def test_legacy_filters_name_begins_with() -> None:
    [name, kind] = legacy_filters([("Name", ["/app"]), ("Type", ["String"])])
    assert (name.option, kind.option) == ("BeginsWith", "Equals")
