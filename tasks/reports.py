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
    board, frame = reports.latest_leaderboard(get_runtime().engine)
    rows = [{k: _round(v) for k, v in row.items()} for row in frame.to_dicts()]
    if board is not None:
        create_table_artifact(
            key="leaderboard", table=rows, description=f"Leaderboard as of {board['created_at'].isoformat()}"
        )
    return rows


def checkpoint_markdown(checkpoint_id: str) -> str | None:
    found = [c for c in reports.checkpoints(get_runtime().engine, limit=50) if c.id == checkpoint_id]
    if not found:
        return None
    ckp = found[0]
    frame = reports.checkpoint_frame(ckp)
    emission = ckp.entries[0] if ckp.entries else {}
    lines = [
        f"# Emission checkpoint {ckp.id}",
        "",
        f"Period {ckp.period_start.isoformat()} → {ckp.period_end.isoformat()}, status **{ckp.status}**",
        "",
        "| rank | model | participant | score | scored | reward (frac64) | reward % |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in frame.to_dicts():
        score = row.get("period_score")
        lines.append(
            f"| {row['rank']} | {row['model']} | {row['participant']} | "
            f"{score:.4f} | {row['scored']} | {row['reward_pct']} | {row['reward_percent']:.6f} |"
            if score is not None
            else f"| {row['rank']} | {row['model']} | {row['participant']} | – | "
            f"{row['scored']} | {row['reward_pct']} | {row['reward_percent']:.6f} |"
        )
    total = sum(r["reward_pct"] for r in emission.get("cruncher_rewards", []))
    lines += ["", f"Total cruncher rewards: **{total:,}** / 1,000,000,000"]
    return "\n".join(lines)


@task(name="publish-checkpoint", **policy(1))
def publish_checkpoint(checkpoint_id: str) -> None:
    markdown = checkpoint_markdown(checkpoint_id)
    if markdown:
        create_markdown_artifact(
            key="emission-checkpoint", markdown=markdown, description=f"Emission checkpoint {checkpoint_id}"
        )
