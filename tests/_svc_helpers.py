"""Helpers shared by the service tests (ingest, predict, configs, score, checkpoint).

Also importable as extension points: ``SCORING_FUNCTION=_svc_helpers:raise_above_threshold``
(``tests/`` is on ``sys.path`` while pytest runs).
"""

from __future__ import annotations

import csv
import json
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from coordinator_core.scoring.rules import absolute_error_bps

DATASET = Path(__file__).resolve().parent.parent / "coordinator_core" / "data" / "btc_usd_1h.csv"
HOUR = timedelta(hours=1)
THRESHOLD = 0.1


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


_CANDLES: dict[datetime, dict[str, float]] = {}


def candles() -> dict[datetime, dict[str, float]]:
    """The shipped CSV, read independently of the product code: open time -> OHLCV."""
    if not _CANDLES:
        with DATASET.open() as handle:
            for row in csv.DictReader(handle):
                ts = datetime.fromisoformat(row["ts"].replace("Z", "+00:00"))
                _CANDLES[ts] = {k: float(row[k]) for k in ("open", "high", "low", "close", "volume")}
    return _CANDLES


def close(open_time: datetime) -> float:
    return candles()[open_time]["close"]


def raise_above_threshold(prediction: dict[str, Any], ground_truth: dict[str, Any]) -> dict[str, Any]:
    """The default rule, except that it raises for a predicted value above ``THRESHOLD``."""
    if prediction["value"] > THRESHOLD:
        raise ValueError(f"prediction {prediction['value']} is above the threshold {THRESHOLD}")
    return absolute_error_bps(prediction, ground_truth)


MODEL_TEMPLATE = """\
from tracker import TrackerBase


class {cls}(TrackerBase):
    def predict(self, subject, horizon_seconds, step_seconds):
{body}
"""


def write_model(
    root: Path,
    name: str,
    body: str,
    model_json: dict[str, Any] | None = None,
    header: str = "",
    source: str | None = None,
) -> Path:
    """One model folder ``root/name`` with a ``main.py`` whose ``predict`` runs ``body``."""
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    if source is None:
        cls = "".join(part.title() for part in name.split("_")) or "Model"
        source = header + MODEL_TEMPLATE.format(cls=cls, body=textwrap.indent(textwrap.dedent(body).strip(), " " * 8))
    (folder / "main.py").write_text(source)
    if model_json is not None:
        (folder / "model.json").write_text(json.dumps(model_json))
    return folder


def rows(engine: Any, table: Any) -> list[dict[str, Any]]:
    """Every row of a table (SQLModel class or Table), sorted by primary key, as plain dicts."""
    table = getattr(table, "__table__", table)
    key = list(table.primary_key.columns)
    with engine.connect() as connection:
        result = connection.execute(select(table).order_by(*key)).mappings().all()
    return [dict(r) for r in result]


def count(engine: Any, table: Any) -> int:
    return len(rows(engine, table))


def floor_hour(value: datetime) -> datetime:
    return value.replace(minute=0, second=0, microsecond=0)


def _short_history_game() -> object:
    from coordinator_core.games.crunch_synth import contract_1h

    return contract_1h.model_copy(update={"tick_history_seconds": 6 * 3600})


#: ``CRUNCH_CONTRACT=tests._svc_helpers:CRUNCH_SYNTH_1H_SHORT_HISTORY``: the Crunch-Synth 1 h preset with a
#: 6-hour first tick instead of 30 days (the rules are the same; the tests ingest less).
CRUNCH_SYNTH_1H_SHORT_HISTORY = _short_history_game()


HANG_SECONDS = 3.0


def hang_above_threshold(prediction: dict[str, Any], ground_truth: dict[str, Any]) -> dict[str, Any]:
    """The default rule, except that it hangs (``HANG_SECONDS``) for a predicted value above ``THRESHOLD``."""
    if prediction["value"] > THRESHOLD:
        import time

        time.sleep(HANG_SECONDS)
    return absolute_error_bps(prediction, ground_truth)


def broken_rule(prediction: dict[str, Any], ground_truth: dict[str, Any]) -> dict[str, Any]:
    """A scoring function with a designer's bug: it reads a key the ground truth does not have."""
    return {"value": ground_truth["realised_return"]}


def error_and_hit(prediction: dict[str, Any], ground_truth: dict[str, Any]) -> dict[str, Any]:
    """The default rule plus an extra key ``hit``: 1.0 when the predicted sign is the realised one."""
    hit = (prediction["value"] > 0) == (ground_truth["return"] > 0)
    return {**absolute_error_bps(prediction, ground_truth), "hit": 1.0 if hit else 0.0}
