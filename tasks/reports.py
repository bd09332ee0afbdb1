"""Tasks that publish what people look at: Prefect artifacts of the leaderboard and checkpoints."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from coordinator_core import reports
from tasks.context import get_runtime
from tasks.policy import policy


def _round(value: Any) -> Any:
    return round(value, 4) if isinstance(value, float) else value


@task(name="publish-leaderboard", **policy(1))
def publish_leaderboard() -> list[dict[str, Any]]:
    runtime = get_runtime()
    board, frame = reports.latest_leaderboard(runtime.engine, reports.window_hours(runtime.contract))
    rows = [{k: _round(v) for k, v in row.items()} for row in frame.to_dicts()]
    if board is not None:
        create_table_artifact(
            key="leaderboard",
            table=rows,
            description=f"Leaderboard as of {board['created_at'].isoformat()} "
            f"({reports.metrics_note(runtime.contract)})",
        )
    return rows


def _markdown_table(frame: Any) -> list[str]:
    """A frame as a markdown table, its cells as ``reports.format_cell`` writes them."""

    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    for row in frame.iter_rows():
        lines.append(
            "| " + " | ".join(reports.format_cell(c, v) for c, v in zip(frame.columns, row, strict=True)) + " |"
        )
    return lines


def checkpoint_markdown(checkpoint_id: str) -> str | None:
    found = [c for c in reports.checkpoints(get_runtime().engine, limit=50) if c.id == checkpoint_id]
    if not found:
        return None
    ckp = found[0]
    lines = [
        f"# Emission checkpoint {ckp.id}",
        "",
        f"Period {ckp.period_start.isoformat()} → {ckp.period_end.isoformat()}, status **{ckp.status}**, "
        f"Merkle root `{ckp.merkle_root or '–'}`",
        "",
        *_markdown_table(reports.checkpoint_frame(ckp)),
        "",
        "Rewards by participant (EmissionCheckpoint.cruncher_rewards):",
        "",
        *_markdown_table(reports.participant_frame(ckp)),
    ]
    total = sum(r["reward_pct"] for r in ckp.emission.get("cruncher_rewards", []))
    lines += ["", f"Total cruncher rewards: **{total:,}** / 1,000,000,000 (frac64)"]
    gate = ckp.gate or {}
    if gate.get("blocked"):
        lines += ["", "**GATED**, not payable: " + "; ".join(gate["blocked"])]
    if gate.get("flags"):
        lines += ["", "Flagged: " + "; ".join(gate["flags"])]
    return "\n".join(lines)


@task(name="publish-checkpoint", **policy(1))
def publish_checkpoint(checkpoint_id: str) -> None:
    markdown = checkpoint_markdown(checkpoint_id)
    if markdown:
        create_markdown_artifact(
            key="emission-checkpoint", markdown=markdown, description=f"Emission checkpoint {checkpoint_id}"
        )
