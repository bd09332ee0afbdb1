"""Names people read (coordinator_core.reports): one participant label, window columns with their
hours, frac64 shares next to percentages, and "up to date" when a run had nothing to do."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from coordinator_core.contract import CrunchContract
from coordinator_core.domain.ranking import Participant, build_ranking, participant_label, ranked_json
from coordinator_core.domain.windows import WindowTotals
from coordinator_core.emission import default_build_emission
from coordinator_core.ports import CheckpointRow
from coordinator_core.reports import (
    backfill_summary,
    backtest_summary,
    checkpoint_frame,
    checkpoint_summary,
    ingest_summary,
    leaderboard_frame,
    participant_frame,
    predict_summary,
    score_summary,
    split_metrics,
    window_hours,
)
from tests.unit.fakes import utc

NOW = utc(2019, 10, 7)
PEOPLE = {
    "m1": Participant("m1", "momentum", "carol", "Carol"),
    "m2": Participant("m2", "noisy", "bob", "Unknown"),  # no real name: shown by id
    "m3": Participant("m3", "third", "carol", "Carol"),
}


def test_one_participant_label() -> None:
    assert participant_label("Carol", "carol") == "Carol"
    assert participant_label("Unknown", "carol") == "carol" and participant_label("", "carol") == "carol"
    assert participant_label(None, None) == "–"
    assert Participant.unknown("zz").label == "zz"


def entries() -> list[dict[str, Any]]:
    windows = {
        "score_recent": {m: WindowTotals(-float(i), 1, 1) for i, m in enumerate(PEOPLE, start=1)},
        "score_steady": {m: WindowTotals(-2.0 * i, 1, 1) for i, m in enumerate(PEOPLE, start=1)},
    }
    return ranked_json(build_ranking(windows, "score_steady", PEOPLE, "score_recent", "desc"))


def test_leaderboard_frame_names_windows_with_their_hours_and_labels_participants() -> None:
    board = entries()
    assert [e["cruncher_name"] for e in board] == ["Carol", "bob", "Carol"]  # the stored form has the label too
    frame = leaderboard_frame(board, window_hours(CrunchContract()))
    assert frame.columns == [
        "rank",
        "model",
        "participant",
        "score_recent (24 h)",
        "score_steady (72 h)",
        "scored",
        "failed",
        "absent",
    ]
    assert frame["participant"].to_list() == ["Carol", "bob", "Carol"]


def test_leaderboard_frame_shows_the_metric_columns() -> None:
    board = entries()
    board[0]["stats"] = {"hit": 0.5, "n": 4.0, "mean": -1.0, "coverage": 1.0}  # jsonb's order: shown in ours
    board[1]["stats"] = {"coverage": 0.5, "n": 2.0, "mean": None}
    board[2]["stats"] = {}  # no score in the ranking window
    frame = leaderboard_frame(board, window_hours(CrunchContract()))
    assert frame.columns[-4:] == ["coverage", "n", "mean", "hit"]
    assert frame["n"].to_list() == [4, 2, None] and frame["n"].dtype.is_integer()
    assert frame["coverage"].to_list() == [1.0, 0.5, None]
    assert frame["hit"].to_list() == [0.5, None, None]
    board_part, metrics_part = split_metrics(frame)
    assert board_part.columns == frame.columns[:-4]
    assert metrics_part is not None and metrics_part.columns == ["rank", "model", "coverage", "n", "mean", "hit"]
    assert split_metrics(leaderboard_frame(entries(), window_hours(CrunchContract())))[1] is None


def checkpoint() -> CheckpointRow:
    ranking = [
        {**e, "metrics": {"score_recent": e["metrics"]["score_recent"]}} for e in entries()
    ]  # a checkpoint ranks on its period only
    emission = default_build_emission(ranking)
    start = NOW - timedelta(days=7)
    return CheckpointRow(
        "CKP_X", start, NOW, "PENDING", [emission], {"ranking": ranking, "ranking_key": "score_recent"}, NOW, None, None
    )


def test_checkpoint_frames_show_frac64_next_to_percent_and_the_period_hours() -> None:
    frame = checkpoint_frame(checkpoint())
    assert frame.columns == [
        "rank",
        "model",
        "participant",
        "participant_id",
        "score_recent over the period (168 h)",
        "scored",
        "reward (frac64)",
        "reward %",
    ]
    assert frame["reward (frac64)"].to_list() == [500_000_000, 250_000_000, 250_000_000]
    assert frame["reward %"].to_list() == [50.0, 25.0, 25.0]
    assert frame["participant"].to_list() == ["Carol", "bob", "Carol"]
    assert frame["participant_id"].to_list() == ["carol", "bob", "carol"]
    people = participant_frame(checkpoint())
    assert people.columns == [
        "cruncher_index",
        "participant",
        "participant_id",
        "models",
        "reward (frac64)",
        "reward %",
    ]
    assert people.rows() == [
        (0, "Carol", "carol", "m1, m3", 750_000_000, 75.0),
        (1, "bob", "bob", "m2", 250_000_000, 25.0),
    ]


def test_runs_with_nothing_to_do_say_up_to_date() -> None:
    assert ingest_summary([{"scope": "replay:BTC", "written": 0}], NOW).startswith("up to date")
    assert ingest_summary([{"scope": "replay:BTC", "written": 3}], NOW).startswith("ingested")
    assert predict_summary({"inputs": [], "statuses": {}, "skipped": {}}, NOW).startswith("up to date: no round due")
    assert "2 round(s)" in predict_summary({"inputs": ["a", "b"], "statuses": {"PENDING": 4}}, NOW)
    idle = {"resolved": 0, "waiting": 2, "gave_up": 0, "statuses": {}, "leaderboard_id": None}
    assert (
        score_summary(idle, NOW)
        == f"up to date: nothing to score at {NOW.isoformat()} (2 round(s) waiting for their ground truth)"
    )
    assert score_summary({**idle, "resolved": 1, "leaderboard_id": "LBR_1"}, NOW).startswith("scored")
    assert checkpoint_summary([], NOW) == f"up to date: no checkpoint due at {NOW.isoformat()}"
    assert checkpoint_summary(["CKP_1"], NOW).endswith("CKP_1")
    assert backfill_summary([{"written": 0, "gaps": []}]).startswith("up to date")
    assert backtest_summary({"steps": 9, "rounds": 0, "predictions": 0, "scored": 0, "checkpoints": 0}).startswith(
        "up to date: 9 steps"
    )
    assert backtest_summary({"steps": 9, "rounds": 18, "predictions": 5, "scored": 5, "checkpoints": 1}).startswith(
        "steps 9"
    )


def test_the_checkpoint_artifact_tables_use_the_same_columns() -> None:
    from tasks.reports import _markdown_table

    lines = _markdown_table(checkpoint_frame(checkpoint()))
    assert lines[0] == (
        "| rank | model | participant | participant_id | score_recent over the period (168 h) | scored "
        "| reward (frac64) | reward % |"
    )
    assert lines[2] == "| 1 | m1 | Carol | carol | -1.0000 | 1 | 500,000,000 | 50.000000 |"
