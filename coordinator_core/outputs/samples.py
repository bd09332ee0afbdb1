"""Sample paths: an ensemble of N simulated price paths, the Synth (Bittensor SN50) answer.

Synth's miners answer a prompt (start time, ``time_increment``, ``time_length``,
``num_simulations``) with ``[start_time, time_increment, path_1, …, path_N]``
(synth-subnet ``synth/validator/response_validation_v2.py``): the start as epoch seconds, the
increment in seconds, then N paths of ``time_length // time_increment + 1`` absolute prices,
the first at the start time. crunch_synth's ``synth_score.py`` scores the same shape as an array
``(num_paths, horizon // time_increment + 1)`` (1,000 paths; 5-minute points over 24 h, 1-minute
over 1 h) and Synth rejects an answer with a zero price.

Accepted forms: that SN50 list; a bare list of paths (no start time); and the normalised form
``{"start_time": int | None, "time_increment": int, "paths": [[float, …], …]}``.

Rules: ``num_paths`` paths when given (else at least one); every path exactly
``horizon // time_increment + 1`` prices; every price a finite number > 0 (not a boolean);
``start_time`` and ``time_increment`` equal to the prompt's when given. ``max_digits`` applies
Synth's own format rule when set (SN50 refuses a price whose text has more than 8 digits,
``len(str(price).replace(".", "")) > 8``); off by default. ``time_increment`` must divide the
horizon (else ``ConfigurationError``).
"""

from __future__ import annotations

import math
from typing import Any

from coordinator_core.errors import ConfigurationError
from coordinator_core.outputs._common import as_list, as_object, exact_keys, fail, index_path, integer, key_path, show

__all__ = ["validate_sample_paths"]


def validate_sample_paths(
    raw: Any,
    *,
    horizon: int,
    time_increment: int,
    num_paths: int | None = None,
    start_time: int | None = None,
    max_digits: int | None = None,
    path: str = "paths",
) -> dict[str, Any]:
    for name, value in (("horizon", horizon), ("time_increment", time_increment)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ConfigurationError(f"{name} must be a positive integer number of seconds, got {show(value)}")
    if horizon % time_increment:
        raise ConfigurationError(f"time_increment {time_increment} s does not divide the horizon {horizon} s")
    given_start: int | None = None
    given_increment: int | None = None
    if isinstance(raw, dict):
        obj = as_object(raw, path)
        exact_keys(obj, path, ("time_increment", "paths"), ("start_time",))
        if obj.get("start_time") is not None:
            given_start = integer(obj["start_time"], key_path(path, "start_time"))
        given_increment = integer(obj["time_increment"], key_path(path, "time_increment"))
        paths_path = key_path(path, "paths")
        paths = list(as_list(obj["paths"], paths_path))

        def locate(i: int) -> str:
            return index_path(paths_path, i)

    else:
        items = as_list(raw, path)
        if items and not isinstance(items[0], list | tuple):  # SN50: [start_time, time_increment, *paths]
            given_start = integer(items[0], index_path(path, 0))
            if len(items) < 2:
                fail(index_path(path, 1), "missing (the time increment)")
            given_increment = integer(items[1], index_path(path, 1))
            paths = list(items[2:])

            def locate(i: int) -> str:
                return index_path(path, i + 2)

        else:
            paths = list(items)

            def locate(i: int) -> str:
                return index_path(path, i)

    if given_increment is not None and given_increment != time_increment:
        fail(
            key_path(path, "time_increment") if isinstance(raw, dict) else index_path(path, 1),
            f"expected {time_increment}, got {given_increment}",
        )
    if start_time is not None and given_start != start_time:
        fail(
            key_path(path, "start_time") if isinstance(raw, dict) else index_path(path, 0),
            f"expected {start_time}, got {show(given_start)}",
        )
    if num_paths is not None and len(paths) != num_paths:
        fail(path, f"expected {num_paths} paths, got {len(paths)}")
    if not paths:
        fail(path, "no path given")
    points = horizon // time_increment + 1
    clean = [_prices(p, locate(i), points, max_digits) for i, p in enumerate(paths)]
    return {"start_time": given_start, "time_increment": time_increment, "paths": clean}


def _prices(raw: Any, path: str, points: int, max_digits: int | None) -> list[float]:
    prices = as_list(raw, path)
    if len(prices) != points:
        fail(path, f"expected {points} prices (horizon // time_increment + 1), got {len(prices)}")
    clean = []
    for j, price in enumerate(prices):
        if type(price) is not float:  # the common case is a plain float: check the others one by one
            if isinstance(price, bool) or not isinstance(price, int | float):
                fail(index_path(path, j), f"a price must be a number, got {show(price)}")
            if isinstance(price, int) and price.bit_length() > 1024:
                fail(index_path(path, j), f"a price must be finite, got {show(price)}")
        number = float(price)
        if not (math.isfinite(number) and number > 0):
            fail(index_path(path, j), f"a price must be finite and > 0, got {show(number)}")
        if max_digits is not None and len(str(price).replace(".", "")) > max_digits:
            fail(index_path(path, j), f"more than {max_digits} digits (Synth's format rule), got {show(price)}")
        clean.append(number)
    return clean
