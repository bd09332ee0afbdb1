"""The gate before money moves: checks of an emission, when a checkpoint is built and again before it
leaves PENDING (confirm). Pure: the caller reads what the checks need.

Blocking (the checkpoint is stored GATED with the reasons and can never be confirmed):

* every share is an integer ``>= 0``, participants' shares sum to exactly 1,000,000,000, the
  models' shares sum to the same, and each participant's share is the sum of its models';
* each participant appears once (rewards are keyed by participant, never by position);
* at least one participant is paid (an emission of 0 is never submitted);
* nobody is paid without a scored prediction in the period (models and participants);
* provider rewards, when present, sum to exactly 1,000,000,000 with no negative share;
* at confirm, the Merkle root recomputed from the stored scores and snapshots equals the stored one
  (``verdict(..., root_ok=False)``).

Flagged (recorded with the checkpoint, not blocking): a participant whose share moved by more than
``max_change`` (a fraction of the whole: 0.5 = 50 percentage points) against the previous
checkpoint that was not gated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

FRAC64_TOTAL = 1_000_000_000


def _pct(value: int) -> str:
    return f"{value / 10_000_000:.6f} %"


def _is_share(value: Any) -> bool:
    return type(value) is int and value >= 0


@dataclass(frozen=True, slots=True)
class GateVerdict:
    blocked: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return not self.blocked

    def to_json(self, stage: str, checked_at: datetime, earlier: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The stored form (``checkpoints.gate_jsonb``); ``earlier`` is the verdict this one follows."""
        out: dict[str, Any] = {
            "stage": stage,
            "checked_at": checked_at.isoformat(),
            "passed": self.passed,
            "blocked": list(self.blocked),
            "flags": list(self.flags),
        }
        if earlier:
            out["earlier"] = [*(earlier.get("earlier") or []), {k: v for k, v in earlier.items() if k != "earlier"}]
        return out

    def reasons(self) -> str:
        return "; ".join(self.blocked)


def participant_shares(emission: Mapping[str, Any]) -> dict[str, int]:
    """``cruncher_id → reward_pct`` of an emission document (repeated ids add up)."""
    out: dict[str, int] = {}
    for reward in emission.get("cruncher_rewards") or []:
        if isinstance(reward, Mapping):
            key = str(reward.get("cruncher_id"))
            value = reward.get("reward_pct")
            out[key] = out.get(key, 0) + (value if type(value) is int else 0)
    return out


def check_emission(
    emission: Mapping[str, Any],
    scored: Mapping[str, int],
    previous: Mapping[str, int] | None = None,
    max_change: float | None = None,
    root_ok: bool | None = None,
) -> GateVerdict:
    """The verdict on ``emission`` (the stored document). ``scored``: scored predictions per model in
    the period; ``previous``: participant shares of the previous checkpoint (``None``: there is
    none); ``root_ok``: whether the recomputed Merkle root matches (``None``: not checked)."""
    blocked: list[str] = []
    flags: list[str] = []
    crunchers = [r for r in emission.get("cruncher_rewards") or [] if isinstance(r, Mapping)]
    models = [r for r in emission.get("model_rewards") or [] if isinstance(r, Mapping)]

    bad = [r for r in [*crunchers, *models] if not _is_share(r.get("reward_pct"))]
    for reward in bad:
        who = reward.get("cruncher_id") or reward.get("model_id")
        blocked.append(f"{who}: share {reward.get('reward_pct')!r} is not an integer >= 0")
    shares = [r["reward_pct"] for r in crunchers if _is_share(r.get("reward_pct"))]
    total = sum(shares)
    if not crunchers or total == 0:
        blocked.append("no payee: the emission pays nobody (its rewards sum to 0)")
    elif total != FRAC64_TOTAL:
        blocked.append(f"participants' shares sum to {total:,}, not {FRAC64_TOTAL:,}")
    model_total = sum(r["reward_pct"] for r in models if _is_share(r.get("reward_pct")))
    if models and model_total != total:
        blocked.append(f"models' shares sum to {model_total:,}, participants' to {total:,}")

    ids = [str(r.get("cruncher_id")) for r in crunchers]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        blocked.append(f"participant(s) listed more than once: {', '.join(repeated)}")
    by_player: dict[str, int] = {}
    for reward in models:
        if _is_share(reward.get("reward_pct")):
            player = str(reward.get("player_id"))
            by_player[player] = by_player.get(player, 0) + reward["reward_pct"]
    for reward in crunchers:
        cruncher = str(reward.get("cruncher_id"))
        if models and _is_share(reward.get("reward_pct")) and by_player.get(cruncher, 0) != reward["reward_pct"]:
            blocked.append(
                f"{cruncher}: share {reward['reward_pct']:,} is not the sum of its models' ({by_player.get(cruncher, 0):,})"
            )

    for reward in crunchers:
        if _is_share(reward.get("reward_pct")) and reward["reward_pct"] > 0:
            model_ids: Sequence[Any] = reward.get("model_ids") or []
            if sum(scored.get(str(m), 0) for m in model_ids) <= 0:
                blocked.append(
                    f"{reward.get('cruncher_id')} is paid {_pct(reward['reward_pct'])} without a scored prediction in the period"
                )
    for reward in models:
        if (
            _is_share(reward.get("reward_pct"))
            and reward["reward_pct"] > 0
            and scored.get(str(reward.get("model_id")), 0) <= 0
        ):
            blocked.append(f"model {reward.get('model_id')} is paid without a scored prediction in the period")

    for kind in ("compute", "data"):
        providers = [r for r in emission.get(f"{kind}_provider_rewards") or [] if isinstance(r, Mapping)]
        values = [r.get("reward_pct") for r in providers]
        if providers and (not all(_is_share(v) for v in values) or sum(values) != FRAC64_TOTAL):  # type: ignore[arg-type]
            blocked.append(f"{kind} provider shares {values} do not sum to {FRAC64_TOTAL:,} with none negative")

    if root_ok is False:
        blocked.append("merkle root mismatch: the stored scores or snapshots changed since the checkpoint was built")

    if previous is not None and max_change is not None and max_change < 1:
        bound = round(max_change * FRAC64_TOTAL)
        current = participant_shares(emission)
        for participant in sorted(set(current) | set(previous)):
            before, after = previous.get(participant, 0), current.get(participant, 0)
            if abs(after - before) > bound:
                flags.append(
                    f"{participant}: share {_pct(before)} -> {_pct(after)} "
                    f"({(after - before) / 10_000_000:+.6f} points, bound {max_change * 100:g} points)"
                )
    return GateVerdict(tuple(blocked), tuple(flags))
