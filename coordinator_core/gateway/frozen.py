"""Read-only JSON values: one decoded round input shared by every in-process model.

``freeze(value)`` turns dicts and lists into ``FrozenDict`` / ``FrozenList``: still ``dict`` and
``list`` (``isinstance``, ``json.dumps``, iteration and indexing work), but any change raises
``TypeError``, so no model can alter what another model sees. ``copy.copy``, ``copy.deepcopy``,
``dict(x)`` and ``list(x)`` give ordinary, changeable copies.
"""

from __future__ import annotations

import copy
import json
from typing import Any, NoReturn

MESSAGE = (
    "the round input is shared by every model and read-only: copy it first (dict(data), list(x), copy.deepcopy(data))"
)


def _refuse(*_args: Any, **_kwargs: Any) -> NoReturn:
    raise TypeError(MESSAGE)


class FrozenDict(dict[Any, Any]):
    __slots__ = ()
    __setitem__ = __delitem__ = __ior__ = _refuse  # type: ignore[assignment]
    clear = pop = popitem = setdefault = update = _refuse  # type: ignore[assignment]

    def __copy__(self) -> dict[Any, Any]:
        return dict(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[Any, Any]:
        return {copy.deepcopy(k, memo): copy.deepcopy(v, memo) for k, v in self.items()}

    def __reduce__(self) -> tuple[Any, ...]:
        return (dict, (dict(self),))


class FrozenList(list[Any]):
    __slots__ = ()
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse  # type: ignore[assignment]
    append = extend = insert = remove = pop = clear = sort = reverse = _refuse  # type: ignore[assignment]

    def __copy__(self) -> list[Any]:
        return list(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> list[Any]:
        return [copy.deepcopy(v, memo) for v in self]

    def __reduce__(self) -> tuple[Any, ...]:
        return (list, (list(self),))


_SCALARS = frozenset({str, int, float, bool, type(None)})


def freeze(value: Any) -> Any:
    """A read-only deep copy of a JSON value (dicts, lists, scalars)."""
    kind = type(value)
    if kind is dict or isinstance(value, dict):
        return FrozenDict((k, v if type(v) in _SCALARS else freeze(v)) for k, v in value.items())
    if kind is list or kind is tuple or isinstance(value, list | tuple):
        return FrozenList(v if type(v) in _SCALARS else freeze(v) for v in value)
    return value


def _json_key(key: Any) -> str:
    """A dict key as ``json.dumps`` writes it (then ``json.loads`` reads it back as that string)."""
    if isinstance(key, str):
        return str(key)
    if isinstance(key, float):
        return json.dumps(float(key))  # repr, or NaN / Infinity / -Infinity
    if key is True or key is False or key is None:
        return json.dumps(key)
    if isinstance(key, int):
        return str(int(key))
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")


def frozen_json(value: Any) -> Any:
    """``freeze(json.loads(json.dumps(value)))`` without the text in between: the value as a model
    on the wire would receive it (JSON types only: tuples become lists, keys strings, subclasses of
    str, int and float their base type), read-only, as a new copy. A value ``json.dumps`` refuses
    raises ``TypeError``. One pass, no float printed and parsed back (the wire round trip cost
    about four times as much on a round's 120 candles)."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if isinstance(value, dict):
        return FrozenDict(
            (k if type(k) is str else _json_key(k), v if type(v) in _SCALARS else frozen_json(v))
            for k, v in value.items()
        )
    if isinstance(value, list | tuple):
        return FrozenList(v if type(v) in _SCALARS else frozen_json(v) for v in value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):  # bool is never subclassed; an IntEnum is written as its number
        return int(value)
    if isinstance(value, float):
        return float(value)
    raise TypeError(f"Object of type {kind.__name__} is not JSON serializable")
