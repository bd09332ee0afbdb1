"""The class a participant subclasses. The coordinator calls ``tick`` once per round with the
newest feed data, then ``predict`` once per due prediction config.

Input given to ``tick`` (a dict)::

    {"symbol": "BTC", "subject": "BTC", "asof_ts": 1571302800, "granularity": "1h",
     "candles": [{"ts": 1571295600, "open": .., "high": .., "low": .., "close": .., "volume": ..}, ...]}

``candles`` are ascending, closed candles only; ``ts`` is the candle's open time in epoch seconds.
``predict`` returns the contract's output type; the default competition wants
``{"value": <predicted return of the subject over horizon_seconds, e.g. 0.0012 for +0.12%>}``.
"""

from __future__ import annotations

from typing import Any


class TrackerBase:
    """Base class of participant models (``MODEL_BASE_CLASSNAME=tracker.TrackerBase``)."""

    def __init__(self) -> None:
        self.latest: dict[str, dict[str, Any]] = {}

    def tick(self, data: dict[str, Any]) -> None:
        """Receive the newest market data for one subject. Keep what ``predict`` will need."""
        self.latest[str(data.get("subject") or data.get("symbol"))] = data

    def closes(self, subject: str) -> list[float]:
        """Close prices of the last tick for ``subject``, oldest first (empty before any tick)."""
        data = self.latest.get(subject) or {}
        return [float(candle["close"]) for candle in data.get("candles", [])]

    def predict(self, subject: str, horizon_seconds: int, step_seconds: int) -> dict[str, Any]:
        """Return the prediction for ``subject`` over the next ``horizon_seconds``."""
        raise NotImplementedError("a participant model must implement predict()")
