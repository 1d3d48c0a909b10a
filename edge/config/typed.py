"""Build dataclasses from parsed JSON/YAML, checking every field against its type annotation.

Used for the manifest and for config.yaml, so both refuse bad input the same way: one message
naming the field's path (``where.key[2].name``) and what is wrong. Field metadata may add
``choices`` (allowed values), ``min`` and ``max`` (inclusive bounds; a bounded float must be finite).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, TypeVar

T = TypeVar("T")


class SchemaError(ValueError):
    """A value does not fit the dataclass it should build."""


def _check_limits(spec: dataclasses.Field, value: Any, where: str) -> None:
    choices = spec.metadata.get("choices")
    if choices is not None and value not in choices:
        raise SchemaError(f"{where}: {value!r} is not one of {', '.join(map(str, choices))}")
    low, high = spec.metadata.get("min"), spec.metadata.get("max")
    if (low is not None or high is not None) and isinstance(value, float) and not math.isfinite(value):
        raise SchemaError(f"{where}: {value!r} is not a finite number")  # nan passes every comparison
    if low is not None and value < low:
        raise SchemaError(f"{where}: {value!r} is below the minimum {low}")
    if high is not None and value > high:
        raise SchemaError(f"{where}: {value!r} is above the maximum {high}")


def _build_dataclass(kind: type, value: Any, where: str) -> Any:
    if not isinstance(value, dict):
        raise SchemaError(f"{where}: expected a mapping, got {type(value).__name__}")
    hints = typing.get_type_hints(kind)
    fields = {f.name: f for f in dataclasses.fields(kind)}
    unknown = sorted(str(key) for key in value if key not in fields)
    if unknown:
        raise SchemaError(f"{where}.{unknown[0]}: unknown key (known: {', '.join(fields)})")
    built = {}
    for name, spec in fields.items():
        if name not in value:
            if spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
                raise SchemaError(f"{where}.{name}: missing")
            continue
        built[name] = build(hints[name], value[name], f"{where}.{name}")
        if built[name] is not None:
            _check_limits(spec, built[name], f"{where}.{name}")
    return kind(**built)


def build(kind: Any, value: Any, where: str) -> Any:
    """``value`` as an instance of the annotation ``kind`` (dataclass, list, dict, union, scalar)."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(kind)
        if value is None and type(None) in options:
            return None
        return build(next(o for o in options if o is not type(None)), value, where)
    if dataclasses.is_dataclass(kind):
        return _build_dataclass(kind, value, where)
    if origin is list:
        if not isinstance(value, list):
            raise SchemaError(f"{where}: expected a list, got {type(value).__name__}")
        (item,) = typing.get_args(kind)
        return [build(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise SchemaError(f"{where}: expected a mapping, got {type(value).__name__}")
        _, item = typing.get_args(kind)
        return {str(k): build(item, v, f"{where}.{k}") for k, v in value.items()}
    if kind is Any:
        return value
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise SchemaError(f"{where}: expected {kind.__name__}, got {type(value).__name__} {value!r}")
    return value


def from_dict(kind: type[T], value: Any, where: str) -> T:
    return build(kind, value, where)
