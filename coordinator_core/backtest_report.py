"""The backtest report: one self-contained HTML file per backtest (no external asset: every chart
is a PNG inside the page as a ``data:image/png;base64,`` URI), built with altair and vl-convert.

It shows the leaderboard (the table the CLI prints), the score over time per model (each
snapshot's ``value_sum / prediction_count``), the cumulative rewards per participant (the
checkpoints of the window, in ``reward %``) and the failures by reason (the backtest's
``(kind, reason)`` counts).

The score chart shows each model's mean score per hour (a window of up to 3 days) or per day.

* ``report_data(engine, report)`` reads what the report shows into polars frames (``ReportData``);
* ``charts(data)`` makes the altair charts (a notebook draws them inline);
* ``write_report(data, path)`` renders the charts to PNG and writes the page;
* ``default_report_path(start, end)``: ``reports/backtest-<start>-<end>.html`` under the current
  folder (the workspace), one file per backtest window.
"""

from __future__ import annotations

import base64
import html
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from coordinator_core import reports
from coordinator_core.db.tables import Snapshot
from coordinator_core.ports import CheckpointRow

FAILURE_REASONS_SHOWN = 12
SN: Any = Snapshot.__table__  # type: ignore[attr-defined]
HOURLY_UP_TO_DAYS = 3  # longer windows are drawn by day
CHART_WIDTH = 640
PNG_SCALE = 1.5


@dataclass
class ReportData:
    """What a backtest report shows, as frames (each may be empty)."""

    title: str
    start: datetime
    end: datetime
    totals: Mapping[str, int]
    leaderboard: pl.DataFrame
    scores: pl.DataFrame  # period_end, model, score
    rewards: pl.DataFrame  # period_end, checkpoint, participant, reward %, cumulative reward %
    failures: pl.DataFrame  # kind, reason, predictions
    checkpoint_ids: list[str] = field(default_factory=list)


def default_report_path(start: datetime, end: datetime, folder: Path | None = None) -> Path:
    """``reports/backtest-<start>-<end>.html`` under ``folder`` (default: the current folder)."""
    name = f"backtest-{start:%Y%m%dT%H%M%S}-{end:%Y%m%dT%H%M%S}.html"
    return (folder or Path.cwd()) / "reports" / name


def score_history(engine: Engine, start: datetime, end: datetime) -> pl.DataFrame:
    """Per model, the mean score of the snapshots ending in (start, end], by hour for a window of up
    to ``HOURLY_UP_TO_DAYS`` days, else by day (Σ value_sum / Σ prediction_count of the bucket)."""
    query = (
        select(SN.c.period_end, SN.c.model_id, SN.c.value_sum, SN.c.prediction_count)
        .where(SN.c.period_end > start, SN.c.period_end <= end)
        .order_by(SN.c.period_end, SN.c.model_id)
    )
    with Session(engine) as session:
        rows = session.execute(query).all()
    schema: dict[str, Any] = {"period_end": pl.Datetime("us", "UTC"), "model": pl.String, "score": pl.Float64}
    raw = pl.DataFrame(
        [
            {"period_end": r.period_end, "model": r.model_id, "value_sum": r.value_sum, "n": r.prediction_count}
            for r in rows
            if r.prediction_count
        ],
        schema={"period_end": pl.Datetime("us", "UTC"), "model": pl.String, "value_sum": pl.Float64, "n": pl.Int64},
    )
    if not raw.height:
        return pl.DataFrame(schema=schema)
    every = "1h" if (end - start).total_seconds() <= HOURLY_UP_TO_DAYS * 86_400 else "1d"
    return (
        # a period ending at midnight belongs to the day before
        raw.with_columns(
            (pl.col("period_end") - pl.duration(microseconds=1)).dt.truncate(every)
            + (pl.duration(hours=1) if every == "1h" else pl.duration(days=1))
        )
        .group_by("period_end", "model")
        .agg((pl.col("value_sum").sum() / pl.col("n").sum()).alias("score"))
        .sort("period_end", "model")
        .select(list(schema))
    )


def cumulative_rewards(checkpoints: Sequence[CheckpointRow]) -> pl.DataFrame:
    """Per participant and checkpoint (oldest first): its reward % and the running total."""
    rows: list[dict[str, Any]] = []
    running: dict[str, float] = {}
    for checkpoint in sorted(checkpoints, key=lambda c: c.period_end):
        frame = reports.participant_frame(checkpoint)
        if "reward %" not in frame.columns:
            continue
        for row in frame.iter_rows(named=True):
            label = str(row["participant"])
            running[label] = running.get(label, 0.0) + float(row["reward %"])
            rows.append(
                {
                    "period_end": checkpoint.period_end,
                    "checkpoint": checkpoint.id,
                    "participant": label,
                    "reward %": float(row["reward %"]),
                    "cumulative reward %": running[label],
                }
            )
    schema: dict[str, Any] = {
        "period_end": pl.Datetime("us", "UTC"),
        "checkpoint": pl.String,
        "participant": pl.String,
        "reward %": pl.Float64,
        "cumulative reward %": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema)


def failure_frame(failures: Mapping[tuple[str, str], int]) -> pl.DataFrame:
    """``(kind, reason) -> predictions`` as rows, most frequent first."""
    rows = [
        {"kind": kind, "reason": reason, "predictions": count}
        for (kind, reason), count in sorted(failures.items(), key=lambda item: (-item[1], item[0]))
    ]
    return pl.DataFrame(rows, schema={"kind": pl.String, "reason": pl.String, "predictions": pl.Int64})


def report_data(engine: Engine, report: Any) -> ReportData:
    """The data of a backtest's report: ``report`` is the flow's ``BacktestReport``."""
    in_window = [c for c in reports.checkpoints(engine, limit=1000) if report.start < c.period_end <= report.end]
    return ReportData(
        title=f"Backtest {report.start.isoformat()} → {report.end.isoformat()}",
        start=report.start,
        end=report.end,
        totals=dict(report.totals),
        leaderboard=report.leaderboard,
        scores=score_history(engine, report.start, report.end),
        rewards=cumulative_rewards(in_window),
        failures=failure_frame(report.failures),
        checkpoint_ids=[c.id for c in sorted(in_window, key=lambda c: c.period_end)],
    )


# -- charts -----------------------------------------------------------------------------------------


def _placeholder(title: str, text: str) -> Any:
    import altair as alt

    frame = pl.DataFrame({"text": [text]})
    return (
        alt.Chart(frame, title=title)
        .mark_text(size=14, color="#666")
        .encode(text="text:N")
        .properties(width=CHART_WIDTH, height=80)
    )


def _bucket(data: ReportData) -> str:
    return "hour" if (data.end - data.start).total_seconds() <= HOURLY_UP_TO_DAYS * 86_400 else "day"


def charts(data: ReportData) -> dict[str, Any]:
    """The report's altair charts by name: ``scores``, ``rewards``, ``failures`` (a chart with a
    line of text when there is nothing to draw, so a report always has the same sections)."""
    import altair as alt

    out: dict[str, Any] = {}
    if data.scores.height:
        out["scores"] = (
            alt.Chart(data.scores, title=f"Score over time per model (mean per {_bucket(data)})")
            .mark_line(point=alt.OverlayMarkDef(size=12))
            .encode(
                x=alt.X("period_end:T", title=f"{_bucket(data)} (UTC)"),
                y=alt.Y("score:Q", title="mean score"),
                color=alt.Color("model:N", title="model"),
            )
            .properties(width=CHART_WIDTH, height=300)
        )
    else:
        out["scores"] = _placeholder("Score over time per model", "no scored snapshot in the window")
    if data.rewards.height:
        out["rewards"] = (
            alt.Chart(data.rewards, title="Cumulative rewards per participant (checkpoints of the window)")
            .mark_line(point=True)
            .encode(
                x=alt.X("period_end:T", title="checkpoint period end (UTC)"),
                y=alt.Y("cumulative reward %:Q", title="cumulative reward (% of one emission)"),
                color=alt.Color("participant:N", title="participant"),
                tooltip=["checkpoint", "participant", "reward %", "cumulative reward %"],
            )
            .properties(width=CHART_WIDTH, height=300)
        )
    else:
        out["rewards"] = _placeholder("Cumulative rewards per participant", "no checkpoint in the window")
    if data.failures.height:
        shown = data.failures.head(FAILURE_REASONS_SHOWN).with_columns(
            pl.concat_str(
                [pl.col("kind"), pl.lit(": "), pl.col("reason").str.slice(0, 70)],
            ).alias("why")
        )
        out["failures"] = (
            alt.Chart(shown, title=f"Failures by reason (top {min(shown.height, FAILURE_REASONS_SHOWN)})")
            .mark_bar()
            .encode(
                x=alt.X("predictions:Q", title="predictions"),
                y=alt.Y("why:N", title=None, sort="-x", axis=alt.Axis(labelLimit=520)),
                color=alt.Color("kind:N", title="kind"),
            )
            .properties(width=CHART_WIDTH - 200, height=max(60, 24 * shown.height))
        )
    else:
        out["failures"] = _placeholder("Failures by reason", "no failed or absent prediction")
    return out


def render_png(chart: Any) -> bytes:
    """A chart as PNG bytes (vl-convert, no browser, no network)."""
    import vl_convert

    return bytes(vl_convert.vegalite_to_png(chart.to_json(), scale=PNG_SCALE))


def warm_up() -> threading.Thread:
    """Load altair and vl-convert's engine in a background thread (the first conversion costs
    about 2 s), so a report rendered later does not wait for it."""

    def run() -> None:
        try:
            render_png(_placeholder("warm-up", "."))
        except Exception:  # the report itself will say what is wrong
            pass

    thread = threading.Thread(target=run, name="report-warm-up", daemon=True)
    thread.start()
    return thread


# -- the page ---------------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.4f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def html_table(frame: pl.DataFrame, css_class: str = "") -> str:
    if not frame.columns or not frame.height:
        return "<p>(none)</p>"
    head = "".join(f"<th>{html.escape(c)}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>" for row in frame.iter_rows()
    )
    return f'<table class="{css_class}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


STYLE = """
body { font-family: system-ui, -apple-system, Segoe UI, Roboto, sans-serif; margin: 2em auto; max-width: 1100px;
       color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 4px 8px; } th { background: #f4f4f4; text-align: left; }
td { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; display: block; margin: 0.5em 0; }
.meta { color: #555; font-size: 0.9em; }
"""


def page(data: ReportData, pngs: Mapping[str, bytes]) -> str:
    """The HTML of the report, with ``pngs`` (name → PNG bytes) inside as data URIs."""

    def image(name: str, alt_text: str) -> str:
        encoded = base64.b64encode(pngs[name]).decode("ascii")
        return f'<img alt="{html.escape(alt_text)}" src="data:image/png;base64,{encoded}">'

    totals = ", ".join(f"{k} {v:,}" for k, v in data.totals.items())
    checkpoints = ", ".join(data.checkpoint_ids) or "none"
    return f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{html.escape(data.title)}</title><style>{STYLE}</style></head>
<body>
<h1>{html.escape(data.title)}</h1>
<p class="meta">Totals: {html.escape(totals)}<br>Checkpoints in the window: {html.escape(checkpoints)}</p>
<h2>Leaderboard as of {html.escape(data.end.isoformat())}</h2>
{html_table(data.leaderboard, "leaderboard")}
<h2>Score over time per model</h2>
{image("scores", "score over time per model")}
<h2>Cumulative rewards per participant</h2>
{image("rewards", "cumulative rewards per participant")}
<h2>Failures by reason</h2>
{image("failures", "failures by reason")}
{html_table(data.failures, "failures")}
</body>
</html>
"""


def write_report(data: ReportData, path: Path) -> tuple[Path, float]:
    """Render the charts and write the page to ``path`` (folders created); returns the path and the
    seconds rendering took."""
    started = time.perf_counter()
    pngs = {name: render_png(chart) for name, chart in charts(data).items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page(data, pngs), encoding="utf-8")
    return path, time.perf_counter() - started
