"""Parameter Store reads: GetParameter, GetParameters, GetParametersByPath,
DescribeParameters and GetParameterHistory, with their NextToken pagination.

A NextToken is opaque to the caller: the base64 of the last name a page showed (the next
page starts after it) or, for a history, the number of versions already shown.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from strongroom.domain.errors import ValidationException
from strongroom.domain.parameters import ParameterVersion, check_path, parameter_arn, under_path
from strongroom.domain.ssm_errors import (
    InvalidNextToken,
    ParameterNotFound,
    ParameterVersionNotFound,
)
from strongroom.services.access import authorize_parameter
from strongroom.services.core import Core, RequestContext
from strongroom.services.parameter_filters import (
    ParameterFilter,
    check_by_path_filters,
    check_describe_filters,
    legacy_filters,
    matches,
)
from strongroom.services.parameters import Named, find, parse_name, shown_value

_BATCH = 100  # rows read at a time while a page is filled


@dataclass(frozen=True, slots=True)
class Shown:
    """A parameter version as a read returns it: the record, the Value to show, and the
    selector the request named it with."""

    parameter: ParameterVersion
    value: str
    selector: str | None = None


def get_parameter(core: Core, ctx: RequestContext, name: str, *, with_decryption: bool) -> Shown:
    """The parameter ``name`` names (optionally ``:version``, or its ARN). Raises
    ParameterNotFound, ParameterVersionNotFound, InvalidKeyId, AccessDeniedException."""
    named = parse_name(ctx, name)
    arn = parameter_arn(ctx.region, ctx.account, named.name)
    authorize_parameter(core, ctx, "GetParameter", arn)
    ctx.resources.append(arn)
    found = find(core, ctx, named)
    if found is None:
        raise ParameterNotFound(f"Parameter {named.name} not found.")
    value = shown_value(core, ctx, found, with_decryption=with_decryption)
    return Shown(found, value, _selector(named))


def get_parameters(
    core: Core, ctx: RequestContext, names: Sequence[str], *, with_decryption: bool
) -> tuple[list[Shown], list[str]]:
    """Up to 10 parameters by name; those found and the names not found (a version not kept
    counts as not found). Raises InvalidKeyId, AccessDeniedException."""
    wanted = [(n, parse_name(ctx, n)) for n in dict.fromkeys(names)]
    for _, named in wanted:
        arn = parameter_arn(ctx.region, ctx.account, named.name)
        authorize_parameter(core, ctx, "GetParameters", arn)
        ctx.resources.append(arn)
    shown, invalid = [], []
    for given, named in wanted:
        try:
            found = find(core, ctx, named)
        except ParameterVersionNotFound:
            found = None
        if found is None:
            invalid.append(given)
            continue
        value = shown_value(core, ctx, found, with_decryption=with_decryption)
        shown.append(Shown(found, value, _selector(named)))
    return shown, invalid


def _selector(named: Named) -> str | None:
    return None if named.selector is None else ":" + named.selector


def get_parameters_by_path(
    core: Core,
    ctx: RequestContext,
    path: str,
    *,
    recursive: bool,
    filters: Sequence[ParameterFilter],
    with_decryption: bool,
    max_results: int,
    next_token: str | None,
) -> tuple[list[Shown], str | None]:
    """The parameters below ``path`` (one level, or every level when ``recursive``) that
    pass ``filters`` (Type, KeyId, Label), a page of ``max_results`` at a time. Raises
    ValidationException (path), InvalidFilterKey, InvalidFilterOption, InvalidFilterValue,
    InvalidNextToken, InvalidKeyId, AccessDeniedException."""
    check_path(path)
    checked = check_by_path_filters(filters)
    authorize_parameter(
        core, ctx, "GetParametersByPath", parameter_arn(ctx.region, ctx.account, path)
    )
    prefix = path if path.endswith("/") else path + "/"

    def keep(p: ParameterVersion) -> bool:
        if not under_path(p.name, path, recursive=recursive):
            return False
        return all(matches(p, f, _no_tags) for f in checked)

    page, token = _page(core, ctx, prefix, keep, max_results, _after(next_token))
    shown = [Shown(p, shown_value(core, ctx, p, with_decryption=with_decryption)) for p in page]
    return shown, token


def describe_parameters(
    core: Core,
    ctx: RequestContext,
    *,
    filters: Sequence[tuple[str, Sequence[str]]],
    parameter_filters: Sequence[ParameterFilter],
    max_results: int,
    next_token: str | None,
) -> tuple[list[ParameterVersion], str | None]:
    """The newest versions of the account's parameters in the Region that pass the filters
    (``filters``: the deprecated Filters, or ``parameter_filters``, not both), a page of
    ``max_results`` at a time, in name order. Raises ValidationException, InvalidFilterKey,
    InvalidFilterOption, InvalidFilterValue, InvalidNextToken, AccessDeniedException."""
    if filters and parameter_filters:
        raise ValidationException(
            "You can use either Filters or ParameterFilters in a single request."
        )
    checked = legacy_filters(filters) if filters else check_describe_filters(parameter_filters)
    authorize_parameter(core, ctx, "DescribeParameters", "*")

    def keep(p: ParameterVersion) -> bool:
        tags = _tags_of(core, p)
        return all(matches(p, f, tags) for f in checked)

    return _page(core, ctx, "", keep, max_results, _after(next_token))


def get_parameter_history(
    core: Core,
    ctx: RequestContext,
    name: str,
    *,
    with_decryption: bool,
    max_results: int,
    next_token: str | None,
) -> tuple[list[Shown], str | None]:
    """Every kept version of parameter ``name``, oldest first, a page of ``max_results`` at a
    time. Raises ParameterNotFound, InvalidNextToken, InvalidKeyId, AccessDeniedException."""
    named = parse_name(ctx, name)
    arn = parameter_arn(ctx.region, ctx.account, named.name)
    authorize_parameter(core, ctx, "GetParameterHistory", arn)
    ctx.resources.append(arn)
    latest = find(core, ctx, Named(named.name, None))
    if latest is None:
        raise ParameterNotFound(f"Parameter {named.name} not found.")
    with core.store.read() as tx:
        versions = tx.parameters.history(ctx.account, ctx.region, latest.name)
    start = _offset(next_token)
    page = versions[start : start + max_results]
    more = start + max_results < len(versions)
    token = _token(_OFFSET + str(start + max_results)) if more else None
    shown = [Shown(p, shown_value(core, ctx, p, with_decryption=with_decryption)) for p in page]
    return shown, token


# -- pages ------------------------------------------------------------------------------------


def _page(
    core: Core,
    ctx: RequestContext,
    prefix: str,
    keep: Callable[[ParameterVersion], bool],
    limit: int,
    after: str | None,
) -> tuple[list[ParameterVersion], str | None]:
    """Up to ``limit`` parameters named ``prefix``... after ``after`` that ``keep`` keeps,
    and the token of the next page (None when no parameter is left to look at)."""
    page: list[ParameterVersion] = []
    for p, last in _scan(core, ctx, prefix, after):
        if keep(p):
            page.append(p)
            if len(page) == limit:
                return page, None if last else _token(_AFTER + p.name)
    return page, None


def _scan(
    core: Core, ctx: RequestContext, prefix: str, after: str | None
) -> Iterator[tuple[ParameterVersion, bool]]:
    """The newest versions of the parameters after ``after``, in name order, each with
    whether it is the last one there is."""
    while True:
        with core.store.read() as tx:
            batch = tx.parameters.list_latest(
                ctx.account, ctx.region, prefix=prefix, after=after, limit=_BATCH
            )
        for i, p in enumerate(batch):
            yield p, len(batch) < _BATCH and i == len(batch) - 1
        if len(batch) < _BATCH:
            return
        after = batch[-1].name


def _tags_of(core: Core, p: ParameterVersion) -> Callable[[], Mapping[str, str]]:
    def tags() -> Mapping[str, str]:
        with core.store.read() as tx:
            return {t.key: t.value for t in tx.parameters.tags(p.account, p.region, p.name)}

    return tags


def _no_tags() -> Mapping[str, str]:
    return {}


_AFTER = "after:"
_OFFSET = "offset:"


def _token(position: str) -> str:
    return base64.urlsafe_b64encode(position.encode()).decode("ascii")


def _untoken(token: str, kind: str) -> str:
    """The position a token of ``kind`` holds; InvalidNextToken for anything else."""
    try:
        position = base64.b64decode(token.encode("ascii"), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeError, ValueError):
        position = ""
    if not position.startswith(kind):
        raise InvalidNextToken("The specified token is not valid.")
    return position[len(kind) :]


def _after(token: str | None) -> str | None:
    return None if token is None else _untoken(token, _AFTER)


def _offset(token: str | None) -> int:
    if token is None:
        return 0
    position = _untoken(token, _OFFSET)
    if not position.isdigit():
        raise InvalidNextToken("The specified token is not valid.")
    return int(position)
