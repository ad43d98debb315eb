"""Command arguments declared as dataclasses, checked before any handler runs.

`parse(Args, message)` builds the dataclass or raises `EdgeError` naming the
field and what is wrong with it. Ranges and lengths come from field metadata:
`field(metadata=limits(min=1, max=9999))`.

Journal event bodies are checked by the same function (edge/event_types.py),
with a longer text limit (`max_text`): a body already written elsewhere must
fit if its projection can take it.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from edge.messages import INVALID_FIELD, MISSING_FIELD, EdgeError

# C0 controls and DEL: no id, name or reference a till sends has one.
CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f]")

T = TypeVar("T")


def limits(
    *, min: int | None = None, max: int | None = None, max_length: int | None = None
) -> dict[str, int | None]:
    return {"min": min, "max": max, "max_length": max_length}


def parse(cls: type[T], data: Mapping[str, Any], path: str = "", *, max_text: int = 200,
          plain_text: bool = False) -> T:
    """`max_text`: the longest string a field without its own `max_length` takes.

    `plain_text`: refuse control characters in every string (what a till
    sends: a NUL in an id reaches databases that cannot store it, head
    office's among them). The journal's own check leaves history as it is.
    """
    if not isinstance(data, Mapping):
        raise EdgeError(INVALID_FIELD, f"{path.rstrip('.') or 'message'} must be an object")
    values = {}
    for field_name, kind, meta, has_default in _fields(cls):
        value = data.get(field_name)
        if value is None:
            if not has_default:
                raise EdgeError(MISSING_FIELD, f"'{path}{field_name}' is required")
            continue
        values[field_name] = _check(kind, value, f"{path}{field_name}", meta, max_text,
                                    plain_text)
    return cls(**values)


@functools.cache
def _fields(cls: type) -> tuple[tuple[str, Any, Mapping[str, Any], bool], ...]:
    """Each field's name, type (an optional one unwrapped), limits and whether it has a default.

    Worked out once per class: every journal event's body goes through `parse`.
    """
    hints = typing.get_type_hints(cls)
    return tuple(
        (field.name, _unwrap_optional(hints[field.name]), dict(field.metadata),
         field.default is not dataclasses.MISSING
         or field.default_factory is not dataclasses.MISSING)
        for field in dataclasses.fields(cls)  # type: ignore[arg-type]
    )


def _unwrap_optional(kind: Any) -> Any:
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        return next(arg for arg in typing.get_args(kind) if arg is not type(None))
    return kind


def _check(kind: Any, value: Any, name: str, meta: Mapping[str, Any], max_text: int,
           plain_text: bool = False) -> Any:
    # The plain kinds first: they are most fields.
    if kind is str:
        if not isinstance(value, str):
            raise EdgeError(INVALID_FIELD, f"'{name}' must be a string, got {value!r:.40}")
        max_length = meta.get("max_length") or max_text
        if len(value) > max_length:
            raise EdgeError(INVALID_FIELD, f"'{name}' is longer than {max_length} characters")
        if plain_text and CONTROL_CHARACTERS.search(value):
            raise EdgeError(INVALID_FIELD, f"'{name}' holds a control character")
        if meta.get("min") is not None and len(value) < meta["min"]:
            raise EdgeError(INVALID_FIELD, f"'{name}' must not be empty")
        return value
    if kind is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise EdgeError(INVALID_FIELD, f"'{name}' must be an integer, got {value!r:.40}")
        if meta.get("min") is not None and value < meta["min"]:
            raise EdgeError(INVALID_FIELD, f"'{name}' must be at least {meta['min']}, got {value}")
        if meta.get("max") is not None and value > meta["max"]:
            raise EdgeError(INVALID_FIELD, f"'{name}' must be at most {meta['max']}, got {value}")
        return value
    if kind is bool:
        if not isinstance(value, bool):
            raise EdgeError(INVALID_FIELD, f"'{name}' must be true or false")
        return value
    if kind is Any:
        return value
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        return _check(_unwrap_optional(kind), value, name, meta, max_text, plain_text)
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
        return [_check(item_kind, item, f"{name}[{i}]", {}, max_text, plain_text)
                for i, item in enumerate(value)]
    if kind is dict or origin is dict:
        # Kept as given (its content is not the schema's business), but an object.
        if not isinstance(value, Mapping):
            raise EdgeError(INVALID_FIELD, f"'{name}' must be an object")
        return value
    if dataclasses.is_dataclass(kind):
        return parse(kind, value, f"{name}.", max_text=max_text, plain_text=plain_text)
    raise TypeError(f"schema type {kind!r} of {name} is not supported")
