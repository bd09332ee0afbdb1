"""Default ground truth: the subject's return between the entry and exit price points.

The scoring service picks the points (entry: the newest price observed at or before the
prediction time; exit: the price observed at the prediction's own horizon). This function only
turns them into the ground-truth dict.
"""

from __future__ import annotations

from typing import Any


def price_return(entry: dict[str, Any], exit: dict[str, Any]) -> dict[str, Any] | None:
    """``{"entry_price", "resolved_price", "return", "direction_up", "entry_ts", "resolved_ts"}``.

    Returns ``None`` when either price is missing or the entry price is not positive.
    """
    entry_price = entry.get("price")
    resolved_price = exit.get("price")
    if entry_price is None or resolved_price is None or float(entry_price) <= 0:
        return None
    entry_price, resolved_price = float(entry_price), float(resolved_price)
    return {
        "entry_price": entry_price,
        "resolved_price": resolved_price,
        "return": (resolved_price - entry_price) / entry_price,
        "direction_up": resolved_price > entry_price,
        "entry_ts": entry.get("ts"),
        "resolved_ts": exit.get("ts"),
    }
