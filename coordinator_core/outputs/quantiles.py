"""Quantile forecasts: levels in (0, 1), strictly increasing; values finite and non-decreasing.

Accepted forms::

    {"levels": [0.05, 0.5, 0.95], "values": [98.1, 100.0, 101.7]}     # the normalised form
    {"0.05": 98.1, "0.5": 100.0, "0.95": 101.7}                       # level -> value (keys are text after JSON)
    {0.05: 98.1, 0.5: 100.0, 0.95: 101.7}                             # the same, in-process

In the mapping form the levels must be listed in increasing order too (JSON objects keep their
order), and a key must be a plain decimal (``"0.05"``, ``"5e-2"``; not ``"nan"``, ``" 0.5"``).
Quantile crossing (a value below the previous one) is refused. ``levels``, when given, is the exact
list of levels the contract asks for.

Normalised form: ``{"levels": [float, …], "values": [float, …]}``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from coordinator_core.outputs._common import as_list, as_object, fail, index_path, key_path, real, show

__all__ = ["validate_quantiles"]

_DECIMAL = re.compile(r"^(?:(?:0|[1-9][0-9]*)(?:\.[0-9]+)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$")


def validate_quantiles(raw: Any, *, levels: Sequence[float] | None = None, path: str = "quantiles") -> dict[str, Any]:
    """``{"levels": […], "values": […]}``, or ``ValidationError`` naming the level or value at fault."""
    obj = as_object(raw, path)
    entries: list[tuple[float, str, Any, str]] = []  # (level, its path, value, its path)
    if set(obj) == {"levels", "values"}:
        levels_path, values_path = key_path(path, "levels"), key_path(path, "values")
        given_levels = as_list(obj["levels"], levels_path)
        values = as_list(obj["values"], values_path)
        if len(values) != len(given_levels):
            fail(values_path, f"{len(values)} values for {len(given_levels)} levels")
        for i, (level, value) in enumerate(zip(given_levels, values, strict=True)):
            level_path = index_path(levels_path, i)
            entries.append((real(level, level_path), level_path, value, index_path(values_path, i)))
    else:
        for key, value in obj.items():
            entries.append((_level_key(key, path), key_path(path, key), value, key_path(path, key)))
    if not entries:
        fail(path, "no quantile given")
    clean_levels: list[float] = []
    clean_values: list[float] = []
    for level, level_path, value, value_path in entries:
        if not 0.0 < level < 1.0:
            fail(level_path, f"a level must be in (0, 1), got {show(level)}")
        if clean_levels and level <= clean_levels[-1]:
            fail(level_path, f"levels must increase, got {show(level)} after {show(clean_levels[-1])}")
        number = real(value, value_path)
        if clean_values and number < clean_values[-1]:
            fail(
                value_path,
                f"quantiles must not decrease: {show(number)} at level {level:g} is below "
                f"{show(clean_values[-1])} at level {clean_levels[-1]:g}",
            )
        clean_levels.append(level)
        clean_values.append(number)
    if levels is not None and clean_levels != [float(x) for x in levels]:
        fail(path, f"levels {clean_levels} differ from the levels asked for {[float(x) for x in levels]}")
    return {"levels": clean_levels, "values": clean_values}


def _level_key(key: Any, path: str) -> float:
    if isinstance(key, str):
        if not _DECIMAL.match(key):
            fail(key_path(path, key), "a level key must be a decimal number like '0.05'")
        return real(float(key), key_path(path, key))
    return real(key, key_path(path, key))
