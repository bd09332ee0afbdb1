"""Every read route of the report API on the backtest data (SQLite and Postgres): shapes, and
values checked against the database (scores summed straight from the score rows resolved in the
window, ``(since, until]``; the tables for the rest)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlmodel import Session

from api.report_schema import referenced_properties
from coordinator_core.db.tables import Checkpoint, FeedRecord, Leaderboard, Prediction, Score, Snapshot
from coordinator_core.domain.windows import WindowTotals
from tests.integration import test_api_support as support
from tests.integration.test_api_support import CHECKPOINT_ID, MODELS, Dataset, parse_ts, walk

api_db, client = support.api_db, support.client  # the shared fixtures

WINDOWS = {"score_recent": 24, "score_steady": 72, "score_anchor": 168}
LEADERBOARD_KEYS = {
    "created_at",
    "leaderboard_id",
    "rank",
    "model_id",
    "model_name",
    "cruncher_id",
    "cruncher_name",
    "status",
    "score_metrics",
    "score_ranking",
    "prediction_count",
    "scored_count",
    "failed_count",
    "absent_count",
    "virtual",  # a virtual ensemble's row (false here: the default contract has none)
    "contribution",  # null without an ensemble
    "metrics",  # the contract's metric columns over the ranking window (domain.metrics)
    *WINDOWS,
}


def totals_at(data: Dataset, since: datetime, until: datetime) -> dict[str, dict[str, Any]]:
    """Per model, the scores resolved in ``(since, until]``, from the score rows themselves."""
    with Session(data.engine) as session:
        rows = session.execute(
            select(Score.model_id, Score.value, Score.success, Score.prediction_status).where(
                Score.scored_at > since, Score.scored_at <= until
            )
        ).all()
    out: dict[str, WindowTotals] = {}
    for model_id, value, success, status in rows:
        part = WindowTotals(float(value), 1, int(bool(success)), int(status == "FAILED"), int(status == "ABSENT"))
        out[model_id] = out.get(model_id, WindowTotals()) + part
    return {model_id: t.as_dict() for model_id, t in out.items()}


def scalar(data: Dataset, query: Any) -> Any:
    with Session(data.engine) as session:
        return session.connection().execute(query).scalar()


def latest_board_time(data: Dataset) -> datetime:
    return scalar(data, select(func.max(Leaderboard.created_at)))


# -- leaderboard, models, scores --------------------------------------------------------------------
def test_leaderboard_shape_and_scores_equal_window_totals(client: TestClient, api_db: Dataset) -> None:
    response = client.get("/reports/leaderboard")
    assert response.status_code == 200
    entries = response.json()
    assert [e["rank"] for e in entries] == list(range(1, len(MODELS) + 1))
    assert {e["model_id"] for e in entries} == set(MODELS)
    as_of = latest_board_time(api_db)
    for entry in entries:
        assert set(entry) == LEADERBOARD_KEYS
        assert entry["virtual"] is False and entry["contribution"] is None
        assert not any(key.startswith("score_score_") for key in entry)
        assert parse_ts(entry["created_at"]) == as_of
        assert entry["status"] == "RUNNING"
        assert entry["score_ranking"] == {"key": "score_recent", "value": entry["score_recent"], "direction": "desc"}
        for window, hours in WINDOWS.items():
            expected = totals_at(api_db, as_of - timedelta(hours=hours), as_of)[entry["model_id"]]
            assert entry[window] == pytest.approx(expected["score"], rel=1e-12)
            assert entry["score_metrics"][window] == entry[window]
        ranking = totals_at(api_db, as_of - timedelta(hours=24), as_of)[entry["model_id"]]  # the ranking window
        assert entry["prediction_count"] == ranking["prediction_count"]
        assert entry["failed_count"] == ranking["failed_count"]
    recent = [e["score_recent"] for e in entries]
    assert recent == sorted(recent, reverse=True)
    by_model = {e["model_id"]: e for e in entries}
    assert by_model["flaky"]["failed_count"] > 0 and by_model["sloppy"]["failed_count"] > 0
    assert by_model["momentum"]["cruncher_id"] == by_model["mean_reversion"]["cruncher_id"] == "alice"


def test_leaderboard_metrics_agree_with_scipy_on_the_raw_rows(client: TestClient, api_db: Dataset) -> None:
    """Each entry's ``metrics`` (the default point set over the 24 h ranking window) recomputed from
    the score, prediction and input rows: coverage and n from the rows, the mean from the window
    score, IC by ``scipy.stats.spearmanr``, the CI by ``scipy.stats.bootstrap`` itself."""
    import numpy as np
    from scipy import stats

    from coordinator_core.db.tables import Input
    from coordinator_core.domain.metrics import BOOTSTRAP_RESAMPLES, bootstrap_seed

    entries = client.get("/reports/leaderboard").json()
    as_of = latest_board_time(api_db)
    since = as_of - timedelta(hours=24)
    with Session(api_db.engine) as session:
        scores = session.execute(
            select(Score.model_id, Score.input_id, Score.value, Score.scored_at, Score.prediction_id).where(
                Score.scored_at > since, Score.scored_at <= as_of
            )
        ).all()
        ids = sorted({s.input_id for s in scores})
        preds = session.execute(
            select(
                Prediction.model_id, Prediction.input_id, Prediction.status, Prediction.inference_output_jsonb
            ).where(Prediction.input_id.in_(ids))
        ).all()
        truth = dict(session.execute(select(Input.id, Input.actuals_jsonb).where(Input.id.in_(ids))).all())
        round_at = dict(session.execute(select(Input.id, Input.round_at).where(Input.id.in_(ids))).all())
    defined_ic = 0
    for entry in entries:
        model = entry["model_id"]
        got = entry["metrics"]
        assert list(got) == [
            "coverage", "n", "mean", "mean_ci_low", "mean_ci_high", "ic", "hit_rate", "sharpe", "max_drawdown"
        ]  # fmt: skip
        mine = sorted((s for s in scores if s.model_id == model), key=lambda s: (s.scored_at, s.prediction_id))
        own = [p for p in preds if p.model_id == model]
        assert got["n"] == len(mine) == entry["prediction_count"]
        assert got["coverage"] == pytest.approx(sum(p.status == "SCORED" for p in own) / len(own))
        assert got["mean"] == pytest.approx(entry["score_recent"], rel=1e-12)
        values = np.array([s.value for s in mine])
        ci = stats.bootstrap(
            (values,),
            np.mean,
            n_resamples=BOOTSTRAP_RESAMPLES,
            method="percentile",
            rng=np.random.default_rng(bootstrap_seed(model, "score_recent")),
        ).confidence_interval
        assert (got["mean_ci_low"], got["mean_ci_high"]) == pytest.approx((ci.low, ci.high), rel=1e-9)
        scored = sorted(
            (round_at[p.input_id], p.input_id, p.inference_output_jsonb["value"], truth[p.input_id]["return"])
            for p in own
            if p.status == "SCORED"
        )
        p_t = np.array([x[2] for x in scored])
        r_t = np.array([x[3] for x in scored])
        if len(set(p_t)) > 1:
            assert got["ic"] == pytest.approx(stats.spearmanr(p_t, r_t).statistic, rel=1e-9)
            defined_ic += 1
        else:
            assert got["ic"] is None
        assert got["hit_rate"] == pytest.approx(np.mean(np.sign(p_t) == np.sign(r_t)))
        pnl = np.sign(p_t) * r_t
        assert got["sharpe"] == pytest.approx(pnl.mean() / pnl.std(ddof=1), rel=1e-9)
        curve = np.cumsum(np.r_[0.0, pnl])
        assert got["max_drawdown"] == pytest.approx(float(np.max(np.maximum.accumulate(curve) - curve)), abs=1e-15)
    assert defined_ic >= 3
    by_model = {e["model_id"]: e["metrics"] for e in entries}
    assert by_model["flaky"]["coverage"] < 1 and by_model["momentum"]["coverage"] == 1


def test_leaderboard_filter(client: TestClient) -> None:
    entries = client.get("/reports/leaderboard", params={"projectIds": "flaky,noisy"}).json()
    assert {e["model_id"] for e in entries} == {"flaky", "noisy"}
    entries = client.get("/reports/leaderboard", params=[("model_id", "flaky"), ("model_id", "unknown")]).json()
    assert [e["model_id"] for e in entries] == ["flaky"]


def test_models(client: TestClient) -> None:
    models = client.get("/reports/models").json()
    assert [m["model_id"] for m in models] == sorted(MODELS)
    by_id = {m["model_id"]: m for m in models}
    assert by_id["momentum"]["cruncher_id"] == "alice" and by_id["momentum"]["cruncher_name"] == "Alice"
    assert set(by_id["noisy"]) >= {"model_id", "model_name", "cruncher_name", "cruncher_id", "deployment_id", "status"}
    assert by_id["flaky"]["last_failure_code"] is not None
    parse_ts(by_id["flaky"]["last_failure_at"])
    assert by_id["noisy"]["overall_score"]["rank"] >= 1
    assert [m["model_id"] for m in client.get("/reports/models", params={"cruncher_id": "alice"}).json()] == [
        "mean_reversion",
        "momentum",
    ]
    assert client.get("/reports/models", params={"status": "STOPPED"}).json() == []


def test_models_global_agrees_with_the_leaderboard(client: TestClient, api_db: Dataset) -> None:
    board = {e["model_id"]: e for e in client.get("/reports/leaderboard").json()}
    rows = client.get("/reports/models/global").json()
    assert [r["model_id"] for r in rows] == sorted(MODELS)
    as_of = latest_board_time(api_db)
    period = totals_at(api_db, as_of - timedelta(days=7), as_of)
    for row in rows:
        entry = board[row["model_id"]]
        assert parse_ts(row["as_of"]) == parse_ts(row["end"]) == as_of
        assert parse_ts(row["start"]) == as_of - timedelta(days=7)
        for window in WINDOWS:
            assert row[window] == entry[window]  # the same number, not merely close
            assert row["score_metrics"][window] == entry[window]
            assert row["windows"][window]["score"] == entry[window]
        assert row["score_ranking"] == entry["score_ranking"]
        assert row["period"]["prediction_count"] == period[row["model_id"]]["prediction_count"]
        assert row["period"]["score"] == pytest.approx(period[row["model_id"]]["score"], rel=1e-12)
        newest = scalar(
            api_db,
            select(func.max(Prediction.performed_at)).where(
                Prediction.model_id == row["model_id"], Prediction.performed_at <= as_of
            ),
        )
        assert parse_ts(row["performed_at"]) == newest


def test_models_global_explicit_window_and_timezones(client: TestClient, api_db: Dataset) -> None:
    as_of = datetime(2019, 10, 8, 12, tzinfo=UTC)
    variants = ["2019-10-08T12:00:00", "2019-10-08T12:00:00Z", "2019-10-08T14:00:00+02:00", "2019-10-08 12:00:00"]
    answers = [
        client.get("/reports/models/global", params={"end": v, "start": "2019-10-06T00:00:00"}).json() for v in variants
    ]
    assert all(answer == answers[0] for answer in answers)  # naive values are read as UTC
    expected = totals_at(api_db, as_of - timedelta(hours=24), as_of)
    period = totals_at(api_db, datetime(2019, 10, 6, tzinfo=UTC), as_of)
    for row in answers[0]:
        assert parse_ts(row["end"]) == as_of
        assert row["score_recent"] == pytest.approx(expected[row["model_id"]]["score"], rel=1e-12)
        assert row["period"]["prediction_count"] == period[row["model_id"]]["prediction_count"]
    only = client.get("/reports/models/global", params=[("projectIds", "flaky,noisy"), ("model_id", "sloppy")]).json()
    assert [r["model_id"] for r in only] == ["flaky", "noisy", "sloppy"]


def test_models_params_add_up_to_global(client: TestClient, api_db: Dataset) -> None:
    rows = client.get("/reports/models/params").json()
    pairs = [(r["model_id"], r["scope_key"]) for r in rows]
    assert pairs == sorted(pairs) and len(pairs) == len(set(pairs)) == 2 * len(MODELS)
    assert {k for _, k in pairs} == {"BTC-3600", "BTC-14400"}
    global_rows = {r["model_id"]: r for r in client.get("/reports/models/global").json()}
    for model_id, row in global_rows.items():
        scopes = [r for r in rows if r["model_id"] == model_id]
        for window in [*WINDOWS, None]:
            parts = [s["period"] if window is None else s["windows"][window] for s in scopes]
            whole = row["period"] if window is None else row["windows"][window]
            for key in ("prediction_count", "scored_count", "failed_count", "absent_count"):
                assert sum(p[key] for p in parts) == whole[key]
            assert sum(p["value_sum"] for p in parts) == pytest.approx(whole["value_sum"], rel=1e-9)
    for row in rows:
        assert row["scope"]["scope_key"] == row["scope_key"]
        assert row["scope"]["horizon_seconds"] in (3600, 14400)
        for window in WINDOWS:
            totals = row["windows"][window]
            assert row[window] == totals["score"] == pytest.approx(totals["value_sum"] / totals["prediction_count"])
        parse_ts(row["performed_at"])


def test_model_status(client: TestClient, api_db: Dataset) -> None:
    board = {e["model_id"]: e for e in client.get("/reports/leaderboard").json()}
    for model_id in MODELS:
        status = client.get(f"/reports/models/{model_id}/status").json()
        assert status["rank"] == board[model_id]["rank"]
        assert status["score_metrics"] == {w: board[model_id][w] for w in WINDOWS}
        assert status["windows"]["score_recent"]["prediction_count"] == board[model_id]["prediction_count"]
        newest = scalar(api_db, select(func.max(Prediction.performed_at)).where(Prediction.model_id == model_id))
        assert parse_ts(status["last_prediction"]["performed_at"]) == newest
        assert parse_ts(status["last_round_at"]) <= newest
        assert status["latency"]["sample_size"] == 100
        assert 0 <= status["latency"]["mean_exec_time_ms"] <= status["latency"]["max_exec_time_ms"]
        assert sum(status["recent_statuses"].values()) == 100
    flaky = client.get("/reports/models/flaky/status").json()
    assert flaky["recent_statuses"]["FAILED"] > 0 and flaky["last_failure_code"] == "FAILED"
    earlier = client.get("/reports/models/flaky/status", params={"as_of": "2019-10-05T00:00:00"}).json()
    assert parse_ts(earlier["last_prediction"]["performed_at"]) <= datetime(2019, 10, 5, tzinfo=UTC)
    expected = totals_at(api_db, datetime(2019, 10, 4, tzinfo=UTC), datetime(2019, 10, 5, tzinfo=UTC))["flaky"]
    assert earlier["score_metrics"]["score_recent"] == pytest.approx(expected["score"], rel=1e-12)
    assert client.get("/reports/models/nobody/status").status_code == 404


# -- predictions ------------------------------------------------------------------------------------
def test_predictions_every_status(client: TestClient, api_db: Dataset) -> None:
    rows = [p for page in walk(client, "/reports/predictions", {"limit": 1000}) for p in page]
    assert len(rows) == scalar(api_db, select(func.count()).select_from(Prediction)) == 730
    stamps = [(parse_ts(p["performed_at"]), p["id"]) for p in rows]
    assert stamps == sorted(stamps, reverse=True)
    statuses = Counter(p["status"] for p in rows)
    assert set(statuses) == {"SCORED", "FAILED", "PENDING"}
    for p in rows:
        if p["status"] == "SCORED":
            assert p["score_success"] is True and p["score_failed"] is False and p["score_failed_reason"] is None
            assert isinstance(p["score_value"], float)
            parse_ts(p["scored_at"])
        elif p["status"] == "FAILED":
            assert p["score_failed"] is True and p["failed_reason"]
            assert p["score_failed_reason"] == p["failed_reason"] or p["score_failed_reason"]
        else:  # PENDING: not scored yet, not failed
            assert p["score_value"] is None and p["score_failed"] is False and p["scored_at"] is None
        assert p["subject"] == "BTC" and p["horizon_seconds"] in (3600, 14400)
        assert p["scope"]["scope_key"] == p["scope_key"]
    sloppy = [p for p in rows if p["model_id"] == "sloppy" and p["status"] == "FAILED"]
    assert any("invalid output" in p["failed_reason"] for p in sloppy)


def test_predictions_filters(client: TestClient) -> None:
    params = {
        "model_id": "flaky",
        "status": "FAILED",
        "start": "2019-10-03T00:00:00",
        "end": "2019-10-08T00:00:00Z",
        "limit": 1000,
    }
    rows = client.get("/reports/predictions", params=params).json()
    assert rows and all(p["model_id"] == "flaky" and p["status"] == "FAILED" for p in rows)
    assert all(
        datetime(2019, 10, 3, tzinfo=UTC) <= parse_ts(p["performed_at"]) <= datetime(2019, 10, 8, tzinfo=UTC)
        for p in rows
    )
    inclusive = client.get(
        "/reports/predictions", params={"start": "2019-10-05T00:00:00", "end": "2019-10-05T00:00:00", "limit": 1000}
    ).json()
    assert inclusive and {p["performed_at"] for p in inclusive} == {"2019-10-05T00:00:00Z"}
    ascending = client.get("/reports/predictions", params={"order": "asc", "limit": 1000}).json()
    descending = [p for page in walk(client, "/reports/predictions", {"limit": 1000}) for p in page]
    assert [p["id"] for p in ascending] == [p["id"] for p in reversed(descending)][:1000]
    scoped = client.get(
        "/reports/predictions", params=[("scope_key", "BTC-14400"), ("status", "PENDING"), ("status", "SCORED")]
    ).json()
    assert scoped and all(p["scope_key"] == "BTC-14400" and p["status"] in ("PENDING", "SCORED") for p in scoped)
    assert client.get("/reports/predictions", params={"status": "NOPE"}).status_code == 422
    assert client.get("/reports/predictions", params={"projectIds": "nobody"}).json() == []


def test_model_predictions(client: TestClient) -> None:
    rows = [p for page in walk(client, "/reports/models/noisy/predictions", {"limit": 50}) for p in page]
    assert len(rows) == 146 and {p["model_id"] for p in rows} == {"noisy"}
    assert client.get("/reports/models/nobody/predictions").status_code == 404


# -- feeds and snapshots ----------------------------------------------------------------------------
def test_feeds(client: TestClient, api_db: Dataset) -> None:
    feeds = client.get("/reports/feeds").json()
    assert len(feeds) == 1
    feed = feeds[0]
    assert (feed["source"], feed["subject"], feed["kind"], feed["granularity"]) == ("replay", "BTC", "candle", "1h")
    assert feed["record_count"] == scalar(api_db, select(func.count()).select_from(FeedRecord))
    assert feed["record_count_capped"] is False
    assert parse_ts(feed["oldest_ts"]) == scalar(api_db, select(func.min(FeedRecord.ts_event)))
    assert (
        parse_ts(feed["newest_ts"])
        == parse_ts(feed["watermark_ts"])
        == scalar(api_db, select(func.max(FeedRecord.ts_event)))
    )
    parse_ts(feed["watermark_updated_at"])
    assert client.get("/reports/feeds", params={"source": "pyth"}).json() == []


def test_feeds_tail(client: TestClient) -> None:
    tail = client.get("/reports/feeds/tail").json()
    assert len(tail) == 20
    stamps = [parse_ts(r["ts_event"]) for r in tail]
    assert stamps == sorted(stamps, reverse=True) and stamps[0] == datetime(2019, 10, 9, 23, tzinfo=UTC)
    assert set(tail[0]["values"]) == {"open", "high", "low", "close", "volume"}
    window = client.get(
        "/reports/feeds/tail",
        params={
            "source": "replay",
            "subject": "BTC",
            "kind": "candle",
            "granularity": "1h",
            "since": "2019-10-01T00:00:00",
            "until": "2019-10-01T05:00:00",
            "limit": 1000,
        },
    ).json()
    assert [r["ts_event"] for r in window] == [f"2019-10-01T0{h}:00:00Z" for h in range(5, -1, -1)]
    assert client.get("/reports/feeds/tail", params={"subject": "ETH"}).json() == []
    assert client.get("/reports/feeds/tail", params={"limit": 0}).status_code == 422


def test_snapshots_newest_first(client: TestClient, api_db: Dataset) -> None:
    rows = [s for page in walk(client, "/reports/snapshots", {"limit": 1000}) for s in page]
    assert len(rows) == scalar(api_db, select(func.count()).select_from(Snapshot))
    keys = [(parse_ts(s["period_end"]), s["id"]) for s in rows]
    assert keys == sorted(keys, reverse=True)  # newest first (not the anchor's oldest N)
    newest_end = scalar(api_db, select(func.max(Snapshot.period_end)))
    assert keys[0][0] == newest_end
    for s in rows[:20]:
        assert s["score"] == pytest.approx(s["value_sum"] / s["prediction_count"])
    some = client.get(
        "/reports/snapshots",
        params={"model_id": "noisy", "since": "2019-10-05T00:00:00", "until": "2019-10-05T06:00:00Z", "limit": 1000},
    ).json()
    assert some and all(s["model_id"] == "noisy" for s in some)
    assert all(
        parse_ts(s["period_end"]) >= datetime(2019, 10, 5, tzinfo=UTC)
        and parse_ts(s["period_start"]) <= datetime(2019, 10, 5, 6, tzinfo=UTC)
        for s in some
    )


# -- checkpoints and emissions ----------------------------------------------------------------------
def test_checkpoint_routes(client: TestClient, api_db: Dataset) -> None:
    listed = client.get("/reports/checkpoints").json()
    assert [c["id"] for c in listed] == [CHECKPOINT_ID]
    checkpoint = listed[0]
    assert set(checkpoint) == {
        "id",
        "period_start",
        "period_end",
        "status",
        "entries",
        "meta",
        "created_at",
        "tx_hash",
        "submitted_at",
        "merkle_root",
        "gate",
    }
    assert len(checkpoint["merkle_root"]) == 64 and checkpoint["gate"]["passed"] is True
    assert parse_ts(checkpoint["period_end"]) == datetime(2019, 10, 7, tzinfo=UTC)
    assert parse_ts(checkpoint["period_start"]) == datetime(2019, 9, 30, tzinfo=UTC)
    assert client.get("/reports/checkpoints/latest").json() == checkpoint
    assert client.get(f"/reports/checkpoints/{CHECKPOINT_ID}").json() == checkpoint
    assert client.get("/reports/checkpoints", params={"status": "PAID"}).json() == []
    assert client.get("/reports/checkpoints", params={"status": "BOGUS"}).status_code == 422
    assert client.get("/reports/checkpoints", params={"until": "2019-10-06T23:59:59"}).json() == []
    payload = client.get(f"/reports/checkpoints/{CHECKPOINT_ID}/payload").json()
    assert payload == {
        "checkpoint_id": CHECKPOINT_ID,
        "period_start": checkpoint["period_start"],
        "period_end": checkpoint["period_end"],
        "entries": checkpoint["entries"],
    }
    emission = client.get(f"/reports/checkpoints/{CHECKPOINT_ID}/emission").json()
    assert emission == checkpoint["entries"][0]
    assert sum(r["reward_pct"] for r in emission["cruncher_rewards"]) == 1_000_000_000
    latest = client.get("/reports/emissions/latest").json()
    assert latest == {
        "checkpoint_id": CHECKPOINT_ID,
        "status": "PENDING",
        "period_start": checkpoint["period_start"],
        "period_end": checkpoint["period_end"],
        "emission": emission,
    }
    for path in ("", "/payload", "/emission", "/emission/cli-format", "/prizes"):
        assert client.get(f"/reports/checkpoints/CKP_nope{path}").status_code == 404
    with Session(api_db.engine) as session:
        stored = session.get(Checkpoint, CHECKPOINT_ID)
        assert stored is not None and emission == stored.entries_jsonb[0]


def test_checkpoint_ranking_matches_window_totals(client: TestClient, api_db: Dataset) -> None:
    checkpoint = client.get(f"/reports/checkpoints/{CHECKPOINT_ID}").json()
    totals = totals_at(api_db, parse_ts(checkpoint["period_start"]), parse_ts(checkpoint["period_end"]))
    for entry in checkpoint["meta"]["ranking"]:
        assert entry["metrics"]["score_recent"] == pytest.approx(totals[entry["model_id"]]["score"], rel=1e-12)


def test_cli_format_is_keyed_by_participant(client: TestClient) -> None:
    emission = client.get(f"/reports/checkpoints/{CHECKPOINT_ID}/emission").json()
    cli = client.get(f"/reports/checkpoints/{CHECKPOINT_ID}/emission/cli-format").json()
    assert set(cli) == {"crunch", "crunchEmission", "computeProvider", "dataProvider"}
    participants = {r["wallet"] or r["cruncher_id"] for r in emission["cruncher_rewards"]}
    assert set(cli["crunchEmission"]) == participants == {"alice", "bob", "carol", "dave"}
    assert sum(round(v * 1_000_000) for v in cli["crunchEmission"].values()) == 100_000_000  # exactly 100 %
    for reward in emission["cruncher_rewards"]:
        key = reward["wallet"] or reward["cruncher_id"]
        assert cli["crunchEmission"][key] == pytest.approx(reward["reward_pct"] / 1e7, abs=1e-6)
    by_model = {r["model_id"]: r["reward_pct"] for r in emission["model_rewards"]}
    assert cli["crunchEmission"]["alice"] == pytest.approx((by_model["momentum"] + by_model["mean_reversion"]) / 1e7)


@pytest.mark.parametrize("total", [0, 1, 3, 7, 1000, 123_456_789_012])
def test_prizes_sum_exactly(client: TestClient, total: int) -> None:
    emission = client.get(f"/reports/checkpoints/{CHECKPOINT_ID}/emission").json()
    prizes = client.get(f"/reports/checkpoints/{CHECKPOINT_ID}/prizes", params={"total_prize": total}).json()
    assert sum(p["prize"] for p in prizes) == total
    assert [p["model"] for p in prizes] == [r["model_id"] for r in emission["model_rewards"]]
    for prize in prizes:
        assert prize["prizeId"] == f"{CHECKPOINT_ID}-{prize['model']}"
        assert prize["timestamp"] == int(datetime(2019, 10, 7, tzinfo=UTC).timestamp())
        assert abs(prize["prize"] - total * prize["reward_pct"] / 1e9) < 1 + 1e-6 * total / 1e9
    latest = client.get("/reports/checkpoints/latest/prizes", params={"total_prize": total})
    assert latest.status_code == 200  # reachable: declared before /{id}
    body = latest.json()
    assert (body["checkpoint_id"], body["total_prize"], body["prizes"]) == (CHECKPOINT_ID, total, prizes)


def test_prizes_bad_totals(client: TestClient) -> None:
    for bad in ("-1", "abc", "1.5", str(2**63)):
        assert (
            client.get(f"/reports/checkpoints/{CHECKPOINT_ID}/prizes", params={"total_prize": bad}).status_code == 422
        )


# -- schema, info, health ---------------------------------------------------------------------------
def test_schema_names_only_fields_the_payloads_have(client: TestClient) -> None:
    schema = client.get("/reports/schema").json()
    assert schema["schema_version"] == "1"
    assert client.get("/reports/schema/leaderboard-columns").json() == schema["leaderboard_columns"]
    assert client.get("/reports/schema/metrics-widgets").json() == schema["metrics_widgets"]
    assert [c["property"] for c in schema["leaderboard_columns"]] == ["model_id", *WINDOWS]
    payloads = {
        "/reports/leaderboard": client.get("/reports/leaderboard").json(),
        "/reports/models/global": client.get("/reports/models/global").json(),
        "/reports/models/params": client.get("/reports/models/params").json(),
        "/reports/predictions": client.get("/reports/predictions", params={"status": "FAILED"}).json(),
    }
    referenced = referenced_properties(schema)
    assert set(referenced) == set(payloads)
    for endpoint, names in referenced.items():
        assert payloads[endpoint], endpoint
        for row in payloads[endpoint]:
            missing = names - set(row)
            assert not missing, f"{endpoint} lacks {missing}"


def test_info_and_health(client: TestClient) -> None:
    info = client.get("/info").json()
    assert info["crunch_id"] == "starter-challenge" and info["network"] == "devnet" and "crunch_address" in info
    assert info["windows"] == WINDOWS and info["ranking_key"] == "score_recent"
    assert client.get("/healthz").json() == {"status": "ok", "database": "ok"}


# -- timestamps -------------------------------------------------------------------------------------
DATETIME_PARAMS = [
    ("/reports/predictions", "start"),
    ("/reports/predictions", "end"),
    ("/reports/models/global", "start"),
    ("/reports/models/global", "end"),
    ("/reports/models/params", "end"),
    ("/reports/snapshots", "since"),
    ("/reports/snapshots", "until"),
    ("/reports/feeds/tail", "since"),
    ("/reports/checkpoints", "until"),
    ("/reports/models/noisy/status", "as_of"),
    ("/reports/models/noisy/predictions", "start"),
]
MALFORMED = [
    "yesterday",
    "2019-13-01T00:00:00",
    "2019-10-01T25:00:00",
    "2019-10-01T00:00:00+25:00",
    "9999-12-31T23:59:59-05:00",
    "0001-01-01T00:00:00+01:00",
    "1000-01-01T00:00:00Z",
    "",
    "2019-10-01T00:00:00\x00",
]


@pytest.mark.parametrize(("path", "name"), DATETIME_PARAMS)
def test_datetime_params_naive_is_utc_and_malformed_is_422(client: TestClient, path: str, name: str) -> None:
    naive = client.get(path, params={name: "2019-10-05T06:00:00"})
    aware = client.get(path, params={name: "2019-10-05T08:00:00+02:00"})
    assert naive.status_code == aware.status_code == 200
    assert naive.json() == aware.json()
    for bad in MALFORMED:
        response = client.get(path, params={name: bad})
        assert response.status_code == 422, (bad, response.text)


def test_inverted_ranges_are_422(client: TestClient) -> None:
    assert client.get("/reports/predictions", params={"start": "2019-10-05", "end": "2019-10-04"}).status_code == 422
    assert client.get("/reports/models/global", params={"start": "2019-10-05", "end": "2019-10-04"}).status_code == 422
    assert client.get("/reports/checkpoints", params={"since": "2019-10-05", "until": "2019-10-04"}).status_code == 422


def test_every_timestamp_has_an_offset(client: TestClient) -> None:
    paths = [
        "/reports/leaderboard",
        "/reports/models",
        "/reports/models/global",
        "/reports/predictions?limit=5",
        "/reports/feeds",
        "/reports/feeds/tail?limit=2",
        "/reports/snapshots?limit=2",
        "/reports/checkpoints",
        "/reports/models/flaky/status",
        f"/reports/checkpoints/{CHECKPOINT_ID}/prizes?total_prize=10",
    ]

    def check(value: Any, key: str = "") -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                check(v, k)
        elif isinstance(value, list):
            for v in value:
                check(v, key)
        elif isinstance(value, str) and (
            key.endswith("_at")
            or key.endswith("_ts")
            or key in ("period_start", "period_end", "ts_event", "start", "end", "as_of")
        ):
            parse_ts(value)

    for path in paths:
        check(client.get(path).json())
