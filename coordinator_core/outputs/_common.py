"""Helpers shared by the output validators: field paths, safe rendering of values, number checks.

Nothing here ever formats a container (no ``repr`` of a model's output): a reason shows scalars
only, strings cut to 40 characters, and containers as their type and size.
"""

from __future__ import annotations

import math
import re
from typing import Any, NoReturn

from coordinator_core.errors import ValidationError

SHOWN_CHARS = 40
MAX_INT_BITS = 1024  # beyond this an int does not fit a float (float(2**1024) overflows)
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DECIMAL_INT = re.compile(r"^[1-9][0-9]{0,17}$")


def show(value: Any) -> str:
    """A short, safe rendering of ``value`` for a reason (never a container's contents)."""
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return repr(value) if value.bit_length() <= 64 else f"an integer of {value.bit_length()} bits"
    if isinstance(value, float):
        return repr(float(value))
    if isinstance(value, str):
        return repr(value[:SHOWN_CHARS] + ("…" if len(value) > SHOWN_CHARS else ""))
    if isinstance(value, dict):
        return f"an object of {len(value)} keys"
    if isinstance(value, list | tuple):
        return f"a list of {len(value)} items"
    return f"a value of type {type(value).__module__}.{type(value).__qualname__}"


def kind(value: Any) -> str:
    """The JSON name of a value's type, for "must be X, got Y" reasons."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    return f"a {type(value).__module__}.{type(value).__qualname__}"


def key_path(path: str, key: Any) -> str:
    """``path.key`` for a plain key, ``path['odd key']`` otherwise (keys cut to 40 characters)."""
    text = str(key) if isinstance(key, int | str) and not isinstance(key, bool) else show(key)
    if isinstance(key, int) and not isinstance(key, bool):
        return f"{path}.{text}" if path else text
    if _IDENTIFIER.match(text) and len(text) <= SHOWN_CHARS:
        return f"{path}.{text}" if path else text
    return f"{path}[{show(key)}]"


def index_path(path: str, index: int) -> str:
    return f"{path}[{index}]"


def fail(path: str, message: str) -> NoReturn:
    raise ValidationError(f"{path}: {message}" if path else message)


def as_object(value: Any, path: str) -> dict[Any, Any]:
    if not isinstance(value, dict):
        fail(path, f"must be an object, got {kind(value)}")
    return value


def as_list(value: Any, path: str) -> list[Any] | tuple[Any, ...]:
    if not isinstance(value, list | tuple):
        fail(path, f"must be a list, got {kind(value)}")
    return value


def exact_keys(obj: dict[Any, Any], path: str, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> None:
    """Every required key present, no key outside required + optional (the first problem is the reason)."""
    allowed = set(required) | set(optional)
    for key in required:
        if key not in obj:
            fail(key_path(path, key), "missing")
    if len(obj) > len(required) + len(optional) or any(k not in allowed for k in obj):
        extra = next(k for k in obj if k not in allowed)
        fail(key_path(path, extra), f"unexpected key (allowed: {', '.join(sorted(allowed))})")


def real(value: Any, path: str) -> float:
    """A finite real number (int or float, never a boolean, never a numpy float32/int64 …) as a float."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        fail(path, f"must be a number, got {kind(value)}")
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        fail(path, f"must be a finite number, got {show(value)}")
    number = float(value)
    if not math.isfinite(number):
        fail(path, f"must be finite, got {show(number)}")
    return number


def integer(value: Any, path: str) -> int:
    """An exact integer (a JSON integer: not a boolean, not 300.0)."""
    if isinstance(value, bool) or not isinstance(value, int):
        fail(path, f"must be an integer, got {kind(value)} {show(value)}")
    return int(value)


def step_key(key: Any, path: str) -> int:
    """A step given as a dict key: an int, or its canonical decimal text after JSON (``"300"``)."""
    if isinstance(key, int) and not isinstance(key, bool):
        return int(key)
    if isinstance(key, str) and _DECIMAL_INT.match(key):
        return int(key)
    fail(key_path(path, key), "a step key must be a positive integer or its decimal text like '300'")
