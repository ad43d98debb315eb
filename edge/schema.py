"""Command arguments declared as dataclasses, checked before any handler runs.

`parse(Args, message)` builds the dataclass or raises `EdgeError` naming the
field and what is wrong with it. Ranges and lengths come from field metadata:
`field(metadata=limits(min=1, max=9999))`.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from edge.messages import INVALID_FIELD, MISSING_FIELD, EdgeError

T = TypeVar("T")


def limits(
    *, min: int | None = None, max: int | None = None, max_length: int | None = None
) -> dict[str, int | None]:
    return {"min": min, "max": max, "max_length": max_length}


def parse(cls: type[T], data: Mapping[str, Any], path: str = "") -> T:
    if not isinstance(data, Mapping):
        raise EdgeError(INVALID_FIELD, f"{path.rstrip('.') or 'message'} must be an object")
    hints = _type_hints(cls)
    values = {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        name = f"{path}{field.name}"
        if field.name not in data or data[field.name] is None:
            has_default = (
                field.default is not dataclasses.MISSING
                or field.default_factory is not dataclasses.MISSING
            )
            if not has_default:
                raise EdgeError(MISSING_FIELD, f"'{name}' is required")
            continue
        values[field.name] = _check(hints[field.name], data[field.name], name, field.metadata)
    return cls(**values)


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _check(kind: Any, value: Any, name: str, meta: Mapping[str, Any]) -> Any:
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = [arg for arg in typing.get_args(kind) if arg is not type(None)]
        return _check(options[0], value, name, meta)
    if origin is typing.Literal:
        allowed = typing.get_args(kind)
        if value not in allowed:
            raise EdgeError(INVALID_FIELD, f"'{name}' must be one of {', '.join(allowed)}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise EdgeError(INVALID_FIELD, f"'{name}' must be a list")
        if meta.get("max_length") is not None and len(value) > meta["max_length"]:
            raise EdgeError(INVALID_FIELD, f"'{name}' has more than {meta['max_length']} items")
        if meta.get("min") is not None and len(value) < meta["min"]:
            raise EdgeError(INVALID_FIELD, f"'{name}' needs at least {meta['min']} item(s)")
        (item_kind,) = typing.get_args(kind)
        return [_check(item_kind, item, f"{name}[{i}]", {}) for i, item in enumerate(value)]
    if dataclasses.is_dataclass(kind):
        return parse(kind, value, f"{name}.")
    if kind is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise EdgeError(INVALID_FIELD, f"'{name}' must be an integer, got {value!r:.40}")
        if meta.get("min") is not None and value < meta["min"]:
            raise EdgeError(INVALID_FIELD, f"'{name}' must be at least {meta['min']}, got {value}")
        if meta.get("max") is not None and value > meta["max"]:
            raise EdgeError(INVALID_FIELD, f"'{name}' must be at most {meta['max']}, got {value}")
        return value
    if kind is str:
        if not isinstance(value, str):
            raise EdgeError(INVALID_FIELD, f"'{name}' must be a string, got {value!r:.40}")
        max_length = meta.get("max_length") or 200
        if len(value) > max_length:
            raise EdgeError(INVALID_FIELD, f"'{name}' is longer than {max_length} characters")
        if meta.get("min") is not None and len(value) < meta["min"]:
            raise EdgeError(INVALID_FIELD, f"'{name}' must not be empty")
        return value
    if kind is bool:
        if not isinstance(value, bool):
            raise EdgeError(INVALID_FIELD, f"'{name}' must be true or false")
        return value
    raise TypeError(f"schema type {kind!r} of {name} is not supported")
