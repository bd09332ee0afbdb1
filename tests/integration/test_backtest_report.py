"""The backtest report: one self-contained HTML file (charts as PNG data URIs), from a real
backtest on the shipped data through the same services (no Prefect: ``services.backtest``)."""

from __future__ import annotations

import base64
import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from coordinator_core import backtest_report, reports
from coordinator_core.bootstrap import build_runtime
from coordinator_core.db.migrate import upgrade
from coordinator_core.services import backtest as service
from tests.conftest import EXAMPLE_MODELS

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class Report:  # the fields of flows.backtest.BacktestReport the report reads
    def __init__(self, start, end, totals, leaderboard, failures) -> None:
        self.start, self.end, self.totals, self.leaderboard, self.failures = start, end, totals, leaderboard, failures


@pytest.fixture(scope="module")
def backtested(tmp_path_factory: pytest.TempPathFactory):
    url = f"sqlite:///{tmp_path_factory.mktemp('report') / 'report.db'}"
    upgrade(url)
    runtime = build_runtime(database_url=url, models_dir=str(EXAMPLE_MODELS))
    start, end = datetime(2019, 10, 5, tzinfo=UTC), datetime(2019, 10, 8, 6, tzinfo=UTC)
    service.prepare(runtime, start)
    failures: Counter[tuple[str, str]] = Counter()
    totals = service.run_steps(
        runtime, list(service.virtual_times(start, end, service.step_seconds(runtime))), failures=failures
    )
    _, board = reports.latest_leaderboard(runtime.engine, reports.window_hours(runtime.contract))
    yield runtime, Report(start, end, totals, board, failures)
    runtime.close()


def test_the_report_is_one_self_contained_file_with_the_leaderboard_and_png_charts(backtested, tmp_path: Path) -> None:
    runtime, report = backtested
    data = backtest_report.report_data(runtime.engine, report)
    assert data.scores.height > 0 and set(data.scores["model"]) == set(report.leaderboard["model"])
    assert data.checkpoint_ids == ["CKP_20191007_000000"]
    assert data.rewards.height > 0 and round(data.rewards["cumulative reward %"].sum(), 6) == 100.0
    assert data.failures["predictions"].sum() > 0  # flaky, sloppy and slow fail some rounds
    path, seconds = backtest_report.write_report(data, tmp_path / "sub" / "report.html")
    text = path.read_text(encoding="utf-8")
    assert seconds > 0
    for model in report.leaderboard["model"]:
        assert re.search(rf"<td>{model}</td>", text), model
    assert "Leaderboard as of 2019-10-08T06:00:00+00:00" in text
    images = re.findall(r'<img [^>]*src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert len(images) == 3
    for encoded in images:
        png = base64.b64decode(encoded, validate=True)
        assert png.startswith(PNG_MAGIC) and len(png) > 5_000
        width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
        assert width > 300 and height > 50
    # nothing is fetched: no external script, stylesheet or image
    assert not re.search(r'(src|href)="(https?:)?//', text)
    assert "<script" not in text


def test_an_empty_window_still_gives_every_section(backtested, tmp_path: Path) -> None:
    runtime, report = backtested
    empty = Report(datetime(2018, 1, 1, tzinfo=UTC), datetime(2018, 1, 2, tzinfo=UTC), {}, report.leaderboard[:0], {})
    path, _ = backtest_report.write_report(backtest_report.report_data(runtime.engine, empty), tmp_path / "e.html")
    text = path.read_text()
    assert text.count("data:image/png;base64,") == 3
    assert "no scored snapshot in the window" not in text  # drawn into the PNG, not written as text
    assert "(none)" in text


def test_the_default_path_is_per_window_under_reports() -> None:
    start, end = datetime(2019, 10, 5, tzinfo=UTC), datetime(2019, 10, 8, 6, tzinfo=UTC)
    path = backtest_report.default_report_path(start, end, Path("/w"))
    assert path == Path("/w/reports/backtest-20191005T000000-20191008T060000.html")
