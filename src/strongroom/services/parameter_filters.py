"""The filters of DescribeParameters and GetParametersByPath (``ParameterStringFilter`` and
the older ``ParametersFilter``): which keys and options each operation takes, and whether a
parameter matches. Rules as the SSM API reference gives them ("ParameterStringFilter",
"Searching for Systems Manager parameters")."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from strongroom.domain.errors import ValidationException
from strongroom.domain.parameters import ParameterVersion, check_path, under_path
from strongroom.domain.ssm_errors import InvalidFilterKey, InvalidFilterOption, InvalidFilterValue

TAG_PREFIX = "tag:"


@dataclass(frozen=True, slots=True)
class ParameterFilter:
    """One filter: ``key`` (Name, Type, KeyId, Path, Tier, DataType, Label, ``tag:<k>``),
    ``option`` (None: the key's default) and the values, any of which may match."""

    key: str
    option: str | None
    values: tuple[str, ...]


# The options each key takes in DescribeParameters, the first being the default.
_DESCRIBE_OPTIONS: Mapping[str, tuple[str, ...]] = {
    "Name": ("Equals", "BeginsWith", "Contains"),
    "Type": ("Equals", "BeginsWith"),
    "KeyId": ("Equals", "BeginsWith"),
    "Path": ("OneLevel", "Recursive"),
    "Tier": ("Equals", "BeginsWith"),
    "DataType": ("Equals", "BeginsWith"),
}
_TAG_OPTIONS = ("Equals", "BeginsWith")
# GetParametersByPath takes Type, KeyId and Label only ("not valid: tag, DataType, Name, Path
# and Tier"); Label takes Equals only.
_BY_PATH_OPTIONS: Mapping[str, tuple[str, ...]] = {
    "Type": ("Equals", "BeginsWith"),
    "KeyId": ("Equals", "BeginsWith"),
    "Label": ("Equals",),
}


def check_describe_filters(filters: Sequence[ParameterFilter]) -> list[ParameterFilter]:
    """DescribeParameters' ParameterFilters with their default options filled in. Raises
    InvalidFilterKey, InvalidFilterOption and InvalidFilterValue."""
    return [_checked(f, _describe_options(f.key), by_path=False) for f in filters]


def check_by_path_filters(filters: Sequence[ParameterFilter]) -> list[ParameterFilter]:
    """GetParametersByPath's ParameterFilters with their default options filled in. Raises
    InvalidFilterKey, InvalidFilterOption and InvalidFilterValue."""
    checked = []
    for f in filters:
        options = _BY_PATH_OPTIONS.get(f.key)
        if options is None:
            raise InvalidFilterKey(
                f"The following filter key is not valid: {f.key}. Valid filter keys for "
                "GetParametersByPath: Type, KeyId, Label."
            )
        checked.append(_checked(f, options, by_path=True))
    return checked


def legacy_filters(filters: Sequence[tuple[str, Sequence[str]]]) -> list[ParameterFilter]:
    """DescribeParameters' deprecated ``Filters`` (Name, Type, KeyId with values) as
    ParameterFilters: Name matches names that begin with a value, the others are equal."""
    out = []
    for key, values in filters:
        if not values:
            raise ValidationException(f"Filters: the filter {key} must have values.")
        option = "BeginsWith" if key == "Name" else "Equals"
        out.append(ParameterFilter(key, option, tuple(values)))
    return out


def _describe_options(key: str) -> tuple[str, ...]:
    if key.startswith(TAG_PREFIX) and len(key) > len(TAG_PREFIX):
        return _TAG_OPTIONS
    options = _DESCRIBE_OPTIONS.get(key)
    if options is None:
        raise InvalidFilterKey(
            f"The following filter key is not valid: {key}. Valid filter keys for "
            "DescribeParameters: Name, Type, KeyId, Path, Tier, DataType, tag:<key>."
        )
    return options


def _checked(f: ParameterFilter, options: tuple[str, ...], *, by_path: bool) -> ParameterFilter:
    option = f.option or options[0]
    if option not in options:
        raise InvalidFilterOption(
            f"The following filter option is not valid: {option}. Valid options for "
            f"{f.key}: {', '.join(options)}."
        )
    if not f.values and not f.key.startswith(TAG_PREFIX):
        raise InvalidFilterValue(f"The filter {f.key} needs at least one value.")
    if f.key == "Path":
        for path in f.values:
            check_path(path)
    return ParameterFilter(f.key, option, f.values)


def matches(p: ParameterVersion, f: ParameterFilter, tags: Callable[[], Mapping[str, str]]) -> bool:
    """Whether ``p`` passes ``f`` (checked); ``tags`` gives the parameter's tags, read only
    for a tag filter. Labels are not kept by this server: a Label filter matches nothing."""
    if f.key == "Path":
        return any(under_path(p.name, v, recursive=f.option == "Recursive") for v in f.values)
    if f.key == "Label":
        return False
    if f.key.startswith(TAG_PREFIX):
        found = tags().get(f.key[len(TAG_PREFIX) :])
        return found is not None and (not f.values or _any(found, f))
    value = _field(p, f.key)
    return value is not None and _any(value, f)


def _field(p: ParameterVersion, key: str) -> str | None:
    if key == "Name":
        return p.name
    if key == "Type":
        return p.type.value
    if key == "KeyId":
        return p.key_id
    if key == "Tier":
        return p.tier.value
    return p.data_type


def _any(value: str, f: ParameterFilter) -> bool:
    if f.option == "BeginsWith":
        return any(value.startswith(v) for v in f.values)
    if f.option == "Contains":
        return any(v in value for v in f.values)
    if f.key == "Name":  # a name matches with or without its leading '/'
        return any(value.lstrip("/") == v.lstrip("/") for v in f.values)
    return value in f.values
