"""Compile the service model's shapes, once each, into validating converters.

A compiled shape is a ``Validate`` function: it converts one JSON value to its Python
value, raises SerializationException at the first wrong JSON type (as AWS does, before any
constraint is looked at) and appends one AWS-worded message per broken constraint, so one
request yields all of its validation errors at once. Member paths are AWS's: lower-camel
names joined by dots, list elements as ``<list>.<1-based index>.member``; a failing list
element or map entry of a scalar shape is reported once for the whole collection with
``Member must satisfy constraint: [...]`` / ``Map keys must satisfy constraint: [...]`` /
``Map value must satisfy constraint: [...]``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from strongroom.domain.errors import KmsError, SerializationException
from strongroom.protocol._scalars import Convert, Scalar, compile_scalar, type_error

Validate = Callable[[Any, str, list[str]], Any]
"""``validate(json_value, path, errors)``: the Python value; ``json_value`` is never None."""

Render = Callable[[Any], str | None]
"""The value as AWS echoes it in a message (Java ``toString``), or None to leave it out."""

_CONTAINERS: Final = frozenset({"structure", "list", "map"})
_NOT_NULL: Final = "Member must not be null"


def lower_first(name: str) -> str:
    """AWS's path segment for a member: its name with the first letter lower-cased."""
    return name[:1].lower() + name[1:]


def constraint_error(rendered: str | None, path: str, text: str) -> str:
    """``Value '<v>' at '<path>' failed to satisfy constraint: <text>`` (no value if None)."""
    value = "Value" if rendered is None else f"Value '{rendered}'"
    return f"{value} at '{path}' failed to satisfy constraint: {text}"


def null_error(path: str) -> str:
    """The message for a required member (or a list element) that is missing or null."""
    return f"Value null at '{path}' failed to satisfy constraint: {_NOT_NULL}"


def _container_error(value: Any, expected: str) -> KmsError:
    if isinstance(value, list):
        return SerializationException("Start of list found where not expected")
    if isinstance(value, dict):
        return SerializationException("Start of structure or map found where not expected.")
    return SerializationException(expected)


def _size_errors(size: int, lo: int | None, hi: int | None) -> list[str]:
    if lo is not None and size < lo:
        return [f"Member must have length greater than or equal to {lo}"]
    if hi is not None and size > hi:
        return [f"Member must have length less than or equal to {hi}"]
    return []


class ShapeCompiler:
    """Compiles shapes of one service model on demand and caches them by shape name."""

    def __init__(self, shapes: Mapping[str, Mapping[str, Any]]) -> None:
        self._shapes = shapes
        self._validators: dict[str, Validate] = {}
        self._scalars: dict[str, Scalar] = {}
        self._renderers: dict[str, Render] = {}
        self._compiling: set[str] = set()

    def validator(self, name: str) -> Validate:
        """The compiled ``Validate`` of shape ``name``."""
        found = self._validators.get(name)
        if found is not None:
            return found
        if name in self._compiling:
            # The KMS model has no recursive shapes; say so loudly if a future one does.
            raise ValueError(f"recursive shape {name!r} is not supported")
        self._compiling.add(name)
        try:
            shape = self._shapes[name]
            kind = shape["type"]
            if kind == "structure":
                compiled = self._structure(shape)
            elif kind == "list":
                compiled = self._list(name, shape)
            elif kind == "map":
                compiled = self._map(name, shape)
            else:
                compiled = self._scalar_member(self.scalar(name))
        finally:
            self._compiling.discard(name)
        self._validators[name] = compiled
        return compiled

    def scalar(self, name: str) -> Scalar:
        """The compiled scalar shape ``name``."""
        found = self._scalars.get(name)
        if found is None:
            found = self._scalars[name] = compile_scalar(self._shapes[name], name)
        return found

    def renderer(self, name: str) -> Render:
        """How AWS echoes a value of shape ``name``: Java's ``[a, b]`` and ``{k=v}`` forms."""
        found = self._renderers.get(name)
        if found is not None:
            return found
        shape = self._shapes[name]
        kind = shape["type"]
        render: Render
        if kind == "list":
            render = _list_renderer(self.renderer(shape["member"]["shape"]))
        elif kind == "map":
            render = _map_renderer(
                self.renderer(shape["key"]["shape"]), self.renderer(shape["value"]["shape"])
            )
        elif kind == "structure":
            members = {m: self.renderer(s["shape"]) for m, s in shape["members"].items()}
            render = _structure_renderer(members)
        else:
            render = self.scalar(name).render
        self._renderers[name] = render
        return render

    def _is_scalar(self, name: str) -> bool:
        return self._shapes[name]["type"] not in _CONTAINERS

    @staticmethod
    def _scalar_member(scalar: Scalar) -> Validate:
        convert, valid, failures, render = (
            scalar.convert,
            scalar.valid,
            scalar.failures,
            scalar.render,
        )
        if valid is None:
            return lambda value, path, errors: convert(value, path)

        def validate(value: Any, path: str, errors: list[str]) -> Any:
            converted = convert(value, path)
            if not valid(converted):
                shown = render(converted)
                errors.extend(constraint_error(shown, path, t) for t in failures(converted))
            return converted

        return validate

    def _structure(self, shape: Mapping[str, Any]) -> Validate:
        required = frozenset(shape.get("required", ()))
        members = tuple(
            (name, lower_first(name), self.validator(ref["shape"]), name in required)
            for name, ref in shape["members"].items()
        )

        def validate(value: Any, path: str, errors: list[str]) -> dict[str, Any]:
            if type(value) is not dict:
                raise _container_error(value, "Expected null")
            prefix = f"{path}." if path else ""
            result: dict[str, Any] = {}
            # Unknown members are ignored and null ones are absent, as AWS treats them.
            for name, segment, check, is_required in members:
                item = value.get(name)
                if item is None:
                    if is_required:
                        errors.append(null_error(prefix + segment))
                    continue
                result[name] = check(item, prefix + segment, errors)
            return result

        return validate

    def _list(self, name: str, shape: Mapping[str, Any]) -> Validate:
        lo: int | None = shape.get("min")
        hi: int | None = shape.get("max")
        member = shape["member"]["shape"]
        render = self.renderer(name)
        if self._is_scalar(member):
            scalar = self.scalar(member)
            convert, valid, texts = scalar.convert, scalar.valid, scalar.texts

            def validate_scalars(value: Any, path: str, errors: list[str]) -> list[Any]:
                if type(value) is not list:
                    raise _container_error(value, "Expected list or null")
                items = [None if x is None else convert(x, path) for x in value]
                failed = [
                    constraint_error(render(items), path, t)
                    for t in _size_errors(len(items), lo, hi)
                ]
                if (valid is not None and not all(valid(x) for x in items if x is not None)) or (
                    None in items
                ):
                    inner = ", ".join(_with_null(texts, None in items))
                    failed.append(
                        constraint_error(
                            render(items), path, f"Member must satisfy constraint: [{inner}]"
                        )
                    )
                errors.extend(failed)
                return items

            return validate_scalars

        check = self.validator(member)

        def validate_members(value: Any, path: str, errors: list[str]) -> list[Any]:
            if type(value) is not list:
                raise _container_error(value, "Expected list or null")
            items: list[Any] = []
            size_texts = _size_errors(len(value), lo, hi)
            for index, item in enumerate(value, 1):
                where = f"{path}.{index}.member"
                if item is None:
                    errors.append(null_error(where))
                    items.append(None)
                else:
                    items.append(check(item, where, errors))
            if size_texts:
                errors.extend(constraint_error(render(items), path, t) for t in size_texts)
            return items

        return validate_members

    def _map(self, name: str, shape: Mapping[str, Any]) -> Validate:
        lo: int | None = shape.get("min")
        hi: int | None = shape.get("max")
        key = self.scalar(shape["key"]["shape"])
        value_shape = shape["value"]["shape"]
        render = self.renderer(name)
        key_valid, key_texts = key.valid, key.texts
        value_valid: Callable[[Any], bool] | None = None
        value_texts: tuple[str, ...] = ()
        if self._is_scalar(value_shape):
            scalar = self.scalar(value_shape)
            convert_entries = _scalar_entries(scalar.convert)
            value_valid, value_texts = scalar.valid, scalar.texts
        else:
            convert_entries = _nested_entries(self.validator(value_shape))

        if (lo, hi, key_valid, value_valid, value_texts) == (None, None, None, None, ()) and (
            self._shapes[value_shape]["type"] == "string"
        ):
            return _plain_string_map(render)

        def validate(value: Any, path: str, errors: list[str]) -> dict[str, Any]:
            if type(value) is not dict:
                raise _container_error(value, "Expected map or null")
            entries = convert_entries(value, path, errors)
            texts = _size_errors(len(entries), lo, hi)
            if key_valid is not None and not all(key_valid(k) for k in entries):
                texts.append(f"Map keys must satisfy constraint: [{', '.join(key_texts)}]")
            has_null = None in entries.values()
            if has_null or (
                value_valid is not None
                and not all(value_valid(v) for v in entries.values() if v is not None)
            ):
                inner = ", ".join(_with_null(value_texts, has_null))
                texts.append(f"Map value must satisfy constraint: [{inner}]")
            if texts:
                shown = render(entries)
                errors.extend(constraint_error(shown, path, t) for t in texts)
            return entries

        return validate


_Entries = Callable[[dict[str, Any], str, list[str]], dict[str, Any]]


def _scalar_entries(convert: Convert) -> _Entries:
    def entries(value: dict[str, Any], path: str, errors: list[str]) -> dict[str, Any]:
        return {k: None if v is None else convert(v, path) for k, v in value.items()}

    return entries


def _nested_entries(check: Validate) -> _Entries:
    def entries(value: dict[str, Any], path: str, errors: list[str]) -> dict[str, Any]:
        return {k: None if v is None else check(v, f"{path}.{k}", errors) for k, v in value.items()}

    return entries


def _with_null(texts: tuple[str, ...], has_null: bool) -> tuple[str, ...]:
    return (*texts, _NOT_NULL) if has_null else texts


def _plain_string_map(render: Render) -> Validate:
    """The fast path for a map of unconstrained strings (EncryptionContext)."""

    def validate(value: Any, path: str, errors: list[str]) -> dict[str, Any]:
        if type(value) is not dict:
            raise _container_error(value, "Expected map or null")
        for item in value.values():
            if type(item) is not str:
                if item is not None:
                    raise type_error(item, "a String")
                errors.append(
                    constraint_error(
                        render(value), path, f"Map value must satisfy constraint: [{_NOT_NULL}]"
                    )
                )
                break
        return value

    return validate


def _list_renderer(member: Render) -> Render:
    def render(items: Any) -> str | None:
        parts = ["null" if x is None else member(x) for x in items]
        if None in parts:
            return None
        return "[" + ", ".join(p for p in parts if p is not None) + "]"

    return render


def _map_renderer(key: Render, value: Render) -> Render:
    def render(entries: Any) -> str | None:
        parts = []
        for k, v in entries.items():
            shown_key, shown_value = key(k), "null" if v is None else value(v)
            if shown_key is None or shown_value is None:
                return None
            parts.append(f"{shown_key}={shown_value}")
        return "{" + ", ".join(parts) + "}"

    return render


def _structure_renderer(members: Mapping[str, Render]) -> Render:
    def render(fields: Any) -> str | None:
        parts = []
        for name, item in fields.items():
            shown = "null" if item is None else members[name](item)
            if shown is None:
                return None
            parts.append(f"{name}={shown}")
        return "{" + ", ".join(parts) + "}"

    return render
