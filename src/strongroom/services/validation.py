"""Checks the service model cannot express, worded as AWS words its validation errors."""

from __future__ import annotations

from collections.abc import Sequence

from strongroom.domain.errors import TagException, ValidationException
from strongroom.domain.models import Tag

MAX_TAGS_PER_KEY = 50


def constraint_error(field: str, value: object, rule: str) -> ValidationException:
    """A ValidationException worded as AWS words one failed constraint."""
    return ValidationException(
        f"1 validation error detected: Value '{value}' at '{field}' "
        f"failed to satisfy constraint: {rule}"
    )


def check_range(field: str, value: int, low: int, high: int) -> None:
    if value < low:
        raise constraint_error(
            field, value, f"Member must have value greater than or equal to {low}"
        )
    if value > high:
        raise constraint_error(field, value, f"Member must have value less than or equal to {high}")


def check_tags(new: Sequence[Tag], existing: int = 0, most: int = MAX_TAGS_PER_KEY) -> None:
    """AWS's tag rules: no ``aws:`` prefix, no duplicate keys, at most ``most`` a key (the
    quota "Tags per KMS key", 50 unless the operator set another)."""
    keys = [t.key for t in new]
    if any(k.lower().startswith("aws:") for k in keys):
        raise TagException("Tags beginning with aws: are reserved")
    if len(set(keys)) != len(keys):
        raise TagException("Duplicate tag keys")
    if existing + len(new) > most:
        raise TagException("Too many tags")
