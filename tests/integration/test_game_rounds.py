"""A game preset through the services, on both databases: rounds at every step of the horizon,
malformed densities FAILED with the field named, configs whose steps do not divide the horizon
refused at start, and the settlement gate (a round waits for its last point)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from coordinator_core.errors import ConfigurationError
from coordinator_core.services.configs import seed_configs
from coordinator_core.services.ingest import ingest
from coordinator_core.services.predict import predict_round
from coordinator_core.services.score import score_predictions
from tests._svc_helpers import write_model

START = datetime(2026, 10, 1, 12, tzinfo=UTC)
CONTRACT = "tests._svc_helpers:CRUNCH_SYNTH_1H_SHORT_HISTORY"  # the preset, with a 6-hour first tick
STEPS = (60, 300, 900, 1800, 3600)

GOOD = """
        out = {}
        for step in steps:
            out[step] = [{"step": k * step, "type": "builtin", "name": "norm",
                          "params": {"loc": 0.0, "scale": 20.0 * (step / 60) ** 0.5}} for k in range(1, 3600 // step + 1)]
        return out
"""
BAD_SCALE = GOOD.replace('"scale": 20.0 * (step / 60) ** 0.5', '"scale": -1.0 if step == 300 else 20.0')
SHORT = GOOD.replace("range(1, 3600 // step + 1)", "range(1, 3600 // step)")

HEADER = "from crunch_synth.tracker import TrackerBase\n"
TEMPLATE = (
    HEADER
    + """

class {cls}(TrackerBase):
    def predict(self, asset, horizon, step):
        raise NotImplementedError

    def predict_all(self, asset, horizon, steps):
{body}"""
)


@pytest.fixture
def game(make_runtime, tmp_path: Path):
    models = tmp_path / "models"
    for name, body in (("good", GOOD), ("bad_scale", BAD_SCALE), ("short", SHORT)):
        cls = "".join(p.title() for p in name.split("_"))
        write_model(models, name, "", source=TEMPLATE.format(cls=cls, body=body.strip("\n")))
    return make_runtime(
        crunch_contract=CONTRACT,
        feed_source="synthetic",
        feed_granularity="1m",
        models_dir=str(models),
        model_base_classname="crunch_synth.tracker.TrackerBase",
        local_model_timeout_seconds=30,
    )


def _predictions(rt) -> dict[str, tuple[str, str | None, dict]]:
    with rt.engine.connect() as c:
        rows = c.execute(text("SELECT model_id, status, failed_reason, inference_output_jsonb FROM predictions")).all()
    return {m: (s, r, o if isinstance(o, dict) else json.loads(o)) for m, s, r, o in rows}


def test_a_game_round_asks_every_step_and_refuses_malformed_densities_naming_the_field(game) -> None:
    rt = game
    seed_configs(rt.uow, rt.contract, rt.settings, START)
    ingest(rt.uow, rt.sources, rt.settings, START, rt.contract.history_seconds)
    result = predict_round(rt.uow, rt.gateway, rt.contract, rt.settings, START)
    assert len(result.inputs) == 1
    predictions = _predictions(rt)
    status, reason, output = predictions["good"]
    assert status == "PENDING" and sorted(output, key=int) == [str(s) for s in STEPS]
    assert [len(output[str(s)]) for s in STEPS] == [3600 // s for s in STEPS]
    status, reason, _ = predictions["bad_scale"]
    assert status == "FAILED" and "steps.300[0]" in reason and "scale" in reason and "> 0" in reason
    status, reason, _ = predictions["short"]
    assert status == "FAILED" and "steps.60" in reason and "60" in reason  # 59 densities where 60 are due
    with rt.engine.connect() as c:
        meta = c.execute(text("SELECT meta_jsonb, resolvable_at FROM inputs")).one()
    round_ts = (meta[0] if isinstance(meta[0], dict) else json.loads(meta[0]))["round_ts"]
    assert round_ts == int((START - timedelta(minutes=1)).timestamp())  # the newest closed 1-minute candle


def test_the_round_waits_for_its_settlement_point_then_scores_as_the_game(game) -> None:
    rt = game
    seed_configs(rt.uow, rt.contract, rt.settings, START)
    ingest(rt.uow, rt.sources, rt.settings, START, rt.contract.history_seconds)
    predict_round(rt.uow, rt.gateway, rt.contract, rt.settings, START)
    early = START + timedelta(minutes=59, seconds=59)
    ingest(rt.uow, rt.sources, rt.settings, early)
    assert score_predictions(rt.uow, rt.contract, rt.settings, early).resolved == 0  # not resolvable yet
    settled = START + timedelta(hours=1)
    ingest(rt.uow, rt.sources, rt.settings, settled)
    result = score_predictions(rt.uow, rt.contract, rt.settings, settled)
    assert result.resolved == 1 and result.statuses["SCORED"] == 1 and result.statuses["FAILED"] == 2
    with rt.engine.connect() as c:
        value, detail = c.execute(text("SELECT value, result_jsonb FROM scores WHERE model_id = 'good'")).one()
        truth = c.execute(text("SELECT actuals_jsonb FROM inputs")).scalar()
    detail = detail if isinstance(detail, dict) else json.loads(detail)
    truth = truth if isinstance(truth, dict) else json.loads(truth)
    assert truth["settled_ts"] == truth["round_ts"] + 3600 and len(truth["series"]) == 61
    assert detail["increments_scored"] == sum(3600 // s for s in STEPS) and detail["increments_skipped"] == 0
    assert value == pytest.approx(detail["price_crps"] + detail["volatility_crps"]) and value > 0  # lower is better
    # the leaderboard's calibration: the hour's increment under the good model's one 3600 s density
    from scipy.stats import norm

    with rt.engine.connect() as c:
        board = c.execute(text("SELECT entries_jsonb FROM leaderboards ORDER BY created_at DESC")).scalars().first()
    entries = {e["model_id"]: e for e in (board if isinstance(board, list) else json.loads(board))}
    series = dict((int(ts), float(p)) for ts, p in truth["series"])
    u = norm.cdf(series[truth["settled_ts"]] - series[truth["round_ts"]], scale=20.0 * 60**0.5)
    stats = entries["good"]["stats"]
    for level in (50, 80, 90):
        assert stats[f"pit_{level}"] == (1.0 if abs(u - 0.5) <= level / 200 else 0.0)
    assert stats["coverage"] == 1.0 and stats["n"] == 1 and stats["mean"] == pytest.approx(value)
    assert stats["price_crps"] == pytest.approx(detail["price_crps"])  # the scoring function's extra keys
    assert stats["increments_scored"] == detail["increments_scored"]
    assert entries["bad_scale"]["stats"]["coverage"] == 0.0 and entries["bad_scale"]["stats"]["pit_50"] is None
    # the PIT values are remembered per (database, score row): a second read of the same window
    # decodes no prediction and gives the same columns as one that remembers nothing
    from coordinator_core.services import metrics

    window = (settled - timedelta(hours=20), settled)
    with rt.uow() as work:
        first = metrics.window_metrics(work, rt.contract, *window, "score_recent")
        read: list[int] = []
        original = work.rounds.predictions_by_id
        work.rounds.predictions_by_id = lambda ids: read.append(len(ids)) or original(ids)  # type: ignore[method-assign]
        again = metrics.window_metrics(work, rt.contract, *window, "score_recent")
        metrics._PITS.clear()
        fresh = metrics.window_metrics(work, rt.contract, *window, "score_recent")
    assert first == again == fresh and first["good"]["pit_50"] == stats["pit_50"]
    assert read == [1]  # only the read after the clear: the good model's one SCORED prediction


def test_steps_that_do_not_divide_the_horizon_are_refused_naming_the_config(make_runtime, tmp_path: Path) -> None:
    configs = tmp_path / "configs.json"
    configs.write_text(
        json.dumps(
            [
                {
                    "scope_key": "BTC-odd",
                    "scope_template": {
                        "subject": "BTC",
                        "horizon_seconds": 3600,
                        "step_seconds": 60,
                        "steps": [60, 700],
                    },
                }
            ]
        )
    )
    rt = make_runtime(
        crunch_contract=CONTRACT,
        feed_source="synthetic",
        feed_granularity="1m",
        scheduled_prediction_configs_path=str(configs),
    )
    with pytest.raises(ConfigurationError, match="BTC-odd.*700 s does not divide the horizon 3600 s"):
        seed_configs(rt.uow, rt.contract, rt.settings, START)


def test_a_path_rule_refuses_a_feed_coarser_than_its_finest_step(make_runtime) -> None:
    rt = make_runtime(crunch_contract=CONTRACT, feed_source="synthetic", feed_granularity="1h")
    with pytest.raises(ConfigurationError, match="finest step is 60 s but FEED_GRANULARITY is 1h"):
        seed_configs(rt.uow, rt.contract, rt.settings, START)
