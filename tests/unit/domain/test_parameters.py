"""Parameter Store's naming rules, ARNs and paths (domain.parameters)."""

from __future__ import annotations

import pytest

from strongroom.domain.errors import ValidationException
from strongroom.domain.parameters import (
    check_name,
    check_path,
    name_from_arn,
    parameter_arn,
    under_path,
)
from strongroom.domain.ssm_errors import HierarchyLevelLimitExceededException

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("name", ["plain", "/a/b", "/a.b-c_d/e", "/" + "/".join("x" * 15)])
def test_names_parameter_store_accepts(name: str) -> None:
    check_name(name)


@pytest.mark.parametrize(
    "name",
    ["aws-x", "/AWS/x", "ssm", "/SSM/x", "a/b", "/a//b", "/a/", "sp ace", "ü", "x" * 1012],
)
def test_names_parameter_store_refuses(name: str) -> None:
    with pytest.raises(ValidationException):
        check_name(name)


def test_sixteen_levels_exceed_the_hierarchy_limit() -> None:
    with pytest.raises(HierarchyLevelLimitExceededException):
        check_name("/" + "/".join("x" * 16))


def test_arns_never_double_the_leading_slash() -> None:
    assert parameter_arn("eu-west-1", "111122223333", "/a/b") == (
        "arn:aws:ssm:eu-west-1:111122223333:parameter/a/b"
    )
    assert parameter_arn("eu-west-1", "111122223333", "flat") == (
        "arn:aws:ssm:eu-west-1:111122223333:parameter/flat"
    )
    arn = "arn:aws:ssm:eu-west-1:111122223333:parameter/a/b"
    assert name_from_arn(arn, "eu-west-1", "111122223333") == "a/b"
    assert name_from_arn(arn, "us-east-1", "111122223333") is None
    assert name_from_arn("/a/b", "eu-west-1", "111122223333") is None


def test_under_path_one_level_or_recursive() -> None:
    assert under_path("/a/b", "/a", recursive=False)
    assert under_path("/a/b", "/a/", recursive=False)
    assert not under_path("/a/b/c", "/a", recursive=False)
    assert under_path("/a/b/c", "/a", recursive=True)
    assert not under_path("/ab/c", "/a", recursive=True)
    assert not under_path("/a", "/a", recursive=True)
    assert under_path("/x", "/", recursive=False)
    assert not under_path("flat", "/", recursive=True)


@pytest.mark.parametrize("path", ["a", "/a b", "//a"])
def test_bad_paths_are_refused(path: str) -> None:
    with pytest.raises(ValidationException):
        check_path(path)
