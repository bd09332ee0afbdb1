"""``coordinator models check PATH``: run a participant's model folder against the contract locally,
through the same services as a competition, before it is submitted.

The check builds a throw-away runtime (a SQLite file in a temporary folder, the local gateway on
``PATH``, every other setting as configured: the contract, the configs, the feed), then:

1. loads the model(s) as the local gateway does (an import error names the file and line);
2. ingests the feed up to the end of its data (the shipped replay by default): enough history for
   the contract's input window;
3. runs ``rounds`` prediction rounds at the last round times, ticking every model and calling
   predict for every scheduled config, and validates each answer exactly as the predict service
   does (``outputs.bounds``, then ``CrunchContract.check_output``: the contract's output type or
   built-in output kind), with the live deadline ``LOCAL_MODEL_TIMEOUT_SECONDS``.

The result is one row per (model, check): ``load``, ``tick`` and one per config, each ``ok`` or
the reason it would fail.
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from coordinator_core.config import Settings
from coordinator_core.errors import ConfigurationError


@dataclass(frozen=True)
class CheckRow:
    model: str
    check: str  # "load", "tick", or a config's scope_key
    ok: bool
    detail: str  # "3/3 rounds" or the reason


def _models_folder(path: Path, scratch: Path) -> Path:
    """A folder of model folders: ``path`` itself, or a folder holding a link to a single model."""
    if (path / "main.py").is_file():
        folder = scratch / "models"
        folder.mkdir()
        (folder / path.name).symlink_to(path.resolve(), target_is_directory=True)
        return folder
    if path.is_dir() and any((p / "main.py").is_file() for p in path.iterdir() if p.is_dir()):
        return path
    raise ConfigurationError(
        f"models check: {path} is neither a model folder (with a main.py) nor a folder of model folders"
    )


def check_models(path: Path, settings: Settings, now: datetime, rounds: int = 3) -> list[CheckRow]:
    """Check every model under ``path`` (see the module's docstring) at ``now`` (the rounds are the
    last of the feed's data, or the last before ``now`` for a feed without a fixed end); raises
    ``ConfigurationError`` for a setting or a path that is wrong, before any model runs."""
    from coordinator_core.bootstrap import build_runtime
    from coordinator_core.db.migrate import upgrade
    from coordinator_core.db.tables import Prediction

    P: Any = Prediction.__table__  # type: ignore[attr-defined]
    from coordinator_core.services.backtest import default_window
    from coordinator_core.services.configs import seed_configs
    from coordinator_core.services.ingest import ingest
    from coordinator_core.services.predict import predict_round

    with tempfile.TemporaryDirectory(prefix="models-check-") as tmp:
        scratch = Path(tmp)
        folder = _models_folder(path, scratch)
        local = settings.model_copy(
            update={
                "database_url": f"sqlite:///{scratch / 'check.db'}",
                "models_dir": str(folder),
                "model_gateway": "local",
            }
        )
        upgrade(local.database_url)
        runtime = build_runtime(local)
        try:
            gateway = runtime.gateway
            _, end = default_window(runtime, 1, now)
            seed_configs(runtime.uow, runtime.contract, local, end - timedelta(days=1))
            with runtime.uow() as work:
                intervals = [int(c.schedule.get("prediction_interval_seconds") or 60) for c in work.configs.active()]
            step = max(intervals or [local.granularity_seconds])
            last = datetime.fromtimestamp(int(end.timestamp()) // step * step, UTC)
            times = [last - timedelta(seconds=step * k) for k in reversed(range(rounds))]
            history = max(runtime.contract.history_seconds, local.feed_candles_window * local.granularity_seconds)
            ingest(runtime.uow, runtime.sources, local, times[0], history)
            skipped: dict[str, str] = {}
            for now in times:
                ingest(runtime.uow, runtime.sources, local, now, runtime.contract.history_seconds)
                skipped.update(predict_round(runtime.uow, gateway, runtime.contract, local, now).skipped)
            with Session(runtime.engine) as session:
                predictions = session.execute(
                    select(P.c.model_id, P.c.scope_key, P.c.status, P.c.failed_reason, P.c.meta_jsonb)
                ).all()
            models = [info.model_id for info in gateway.models()]
            load_errors = dict(gateway.load_errors)
        finally:
            runtime.close()
    return _rows(models, load_errors, predictions, skipped)


def _rows(
    models: list[str], load_errors: dict[str, str], predictions: Sequence[Any], skipped: dict[str, str]
) -> list[CheckRow]:
    by_check: dict[tuple[str, str], list[tuple[str, str | None]]] = defaultdict(list)
    ticks: dict[str, list[str]] = defaultdict(list)
    for model_id, scope_key, status, reason, meta in predictions:
        by_check[(model_id, scope_key)].append((status, reason))
        tick = (meta or {}).get("tick")
        if tick:
            ticks[model_id].append(f"{tick.get('status')}: {tick.get('detail') or 'no detail'}")
    scopes = sorted({scope for _, scope in by_check} | set(skipped))
    rows: list[CheckRow] = []
    for model in models:
        if model in load_errors:
            rows.append(CheckRow(model, "load", False, load_errors[model]))
            continue
        rows.append(CheckRow(model, "load", True, "ok"))
        failed_ticks = ticks.get(model, [])
        rows.append(CheckRow(model, "tick", not failed_ticks, failed_ticks[0] if failed_ticks else "ok"))
        for scope in scopes:
            if scope in skipped:
                rows.append(CheckRow(model, scope, False, f"no round: {skipped[scope]}"))
                continue
            results = by_check.get((model, scope), [])
            bad = [reason or status for status, reason in results if status not in ("PENDING", "SCORED")]
            passed = len(results) - len(bad)
            if bad:
                rows.append(CheckRow(model, scope, False, f"{len(bad)}/{len(results)} rounds fail: {bad[0]}"))
            else:
                rows.append(CheckRow(model, scope, bool(results), f"{passed}/{len(results)} rounds ok"))
    return rows
