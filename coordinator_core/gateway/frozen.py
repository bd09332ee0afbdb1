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


_SCALARS = (str, int, float, bool, type(None))


def freeze(value: Any) -> Any:
    """A read-only deep copy of a JSON value (dicts, lists, scalars)."""
    kind = type(value)
    if kind is dict or isinstance(value, dict):
        return FrozenDict((k, v if type(v) in _SCALARS else freeze(v)) for k, v in value.items())
    if kind is list or kind is tuple or isinstance(value, list | tuple):
        return FrozenList(v if type(v) in _SCALARS else freeze(v) for v in value)
    return value


def _frozen_list(values: list[Any]) -> FrozenList:
    return FrozenList(_frozen_list(v) if type(v) is list else v for v in values)


def _frozen_object(pairs: list[tuple[str, Any]]) -> FrozenDict:
    return FrozenDict((k, _frozen_list(v) if type(v) is list else v) for k, v in pairs)


def frozen_json(value: Any) -> Any:
    """``freeze(json.loads(json.dumps(value)))`` in one decode: the value as a model on the wire
    would receive it (JSON types only, tuples as lists, keys as strings), read-only. Objects are
    built frozen by the decoder; only lists are converted after."""
    decoded = json.loads(json.dumps(value), object_pairs_hook=_frozen_object)
    return _frozen_list(decoded) if type(decoded) is list else decoded
