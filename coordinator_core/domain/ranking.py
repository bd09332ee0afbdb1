"""Participants, leaderboard entries and the ranking: one builder serves the leaderboard and the
emission checkpoints.

``build_ranking`` takes window totals per model (``{window: {model_id: WindowTotals}}``), the
window whose counts are shown with each entry and break ties (the leaderboard's ranking window),
and the participants; it returns
entries ranked by the contract's ranker, in the ranker's order (its ``rank`` when it sets one, else the position). The default ranker sorts by the ranking window's score
(``desc``: higher is better), missing scores last, ties broken by more scored predictions, then by
``model_id``. A custom ranker (``LEADERBOARD_RANKER``) works on the entries' JSON form and must
return the same models, each once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from coordinator_core.domain.windows import WindowTotals
from coordinator_core.errors import ConfigurationError


@dataclass(frozen=True, slots=True)
class Participant:
    """A model and who it pays: the participant (``player_id``), their label and wallet."""

    model_id: str
    model_name: str
    player_id: str
    player_name: str
    wallet: str | None = None

    @classmethod
    def unknown(cls, model_id: str) -> Participant:
        """A model the registry does not know: it pays to itself."""
        return cls(model_id, model_id, model_id, "Unknown")

    @property
    def label(self) -> str:
        """What people read for this participant (see ``participant_label``)."""
        return participant_label(self.player_name, self.player_id)


VIRTUAL_PREFIX = "ensemble:"


def is_virtual(model_id: str) -> bool:
    """A virtual ensemble's id (``ensemble:<name>``): scored and shown, never paid or ranked."""
    return model_id.startswith(VIRTUAL_PREFIX)


UNNAMED = ("", "Unknown", "unknown-player")
VIRTUAL_LABEL = "virtual ensemble"


def participant_label(player_name: str | None, player_id: str | None) -> str:
    """The one participant label of every table, frame, artifact and report: the display name
    (``player_name``); the id (``player_id``) when there is no real name. Money is always keyed by
    ``player_id`` (``cruncher_id``), shown next to the label where shares are listed."""
    if player_name and player_name not in UNNAMED:
        return player_name
    return player_id or "–"


@dataclass(frozen=True, slots=True)
class LeaderboardEntry:
    """One ranked model: its window scores and the totals shown with it."""

    participant: Participant
    metrics: Mapping[str, float | None]
    ranking_key: str
    direction: str
    totals: WindowTotals
    rank: int | None = None
    #: a virtual ensemble (``ensemble:<name>``): shown with no rank and no participant, never paid
    virtual: bool = False
    #: more stored keys (e.g. ``contribution``, when the contract has an ensemble)
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def model_id(self) -> str:
        return self.participant.model_id

    @property
    def ranking_value(self) -> float | None:
        return self.metrics.get(self.ranking_key)

    def to_json(self) -> dict[str, Any]:
        """The stored form (``leaderboards.entries_jsonb``, ``checkpoints.meta_jsonb.ranking``)."""
        metrics = dict(self.metrics)
        entry: dict[str, Any] = {
            "model_id": self.participant.model_id,
            "model_name": self.participant.model_name,
            "cruncher_name": self.participant.label,
            "player_id": self.participant.player_id,
            "wallet": self.participant.wallet,
            "metrics": metrics,
            "score": {
                "metrics": metrics,
                "ranking": {"key": self.ranking_key, "value": self.ranking_value, "direction": self.direction},
            },
            "prediction_count": self.totals.prediction_count,
            "scored_count": self.totals.scored_count,
            "failed_count": self.totals.failed_count,
            "absent_count": self.totals.absent_count,
        }
        if self.rank is not None:
            entry["rank"] = self.rank
        if self.virtual:
            entry.update({"player_id": None, "wallet": None, "cruncher_name": VIRTUAL_LABEL, "virtual": True})
        entry.update(self.extra)
        return entry


Ranker = Callable[[list[dict[str, Any]], str, str], list[dict[str, Any]]]

#: significant digits a ranking compares: a window's mean over up to millions of scores carries
#: float summation noise of about 1e-12 relative, which depends on the order rows were summed in
RANK_DIGITS = 10


def rank_value(value: float) -> float:
    """``value`` rounded to ``RANK_DIGITS`` significant digits: what the default ranker compares."""
    return float(f"{value:.{RANK_DIGITS}g}")


def default_rank(entries: list[dict[str, Any]], ranking_key: str, direction: str) -> list[dict[str, Any]]:
    """Sort entries (JSON form) by ``entry["metrics"][ranking_key]`` and number them 1..N.

    Scores are compared at ``RANK_DIGITS`` significant digits (``rank_value``), so the order in
    which a database summed a window never decides a rank: two models whose scores differ only by
    float rounding tie. Missing scores rank last. Ties are broken deterministically: more scored
    predictions (in the ranking window) first, then ``model_id`` ascending. Returns new dicts with
    ``rank`` set.
    """
    descending = direction == "desc"

    def key(entry: dict[str, Any]) -> tuple[int, float, int, str]:
        value = entry.get("metrics", {}).get(ranking_key)
        missing = value is None or not math.isfinite(float(value))
        metric = 0.0 if missing else rank_value(float(value))
        return (
            1 if missing else 0,
            -metric if descending else metric,
            -int(entry.get("scored_count", 0)),
            str(entry["model_id"]),
        )

    ranked = sorted(entries, key=key)
    return [{**entry, "rank": position} for position, entry in enumerate(ranked, start=1)]


def build_ranking(
    windows: Mapping[str, Mapping[str, WindowTotals]],
    counts_window: str,
    participants: Mapping[str, Participant],
    ranking_key: str,
    direction: str,
    ranker: Ranker = default_rank,
    require_scored: bool = False,
) -> list[LeaderboardEntry]:
    """Entries for every model with totals in any window (and, with ``require_scored``, at least
    one scored prediction in ``counts_window``), each showing its ``counts_window`` totals (which
    break ties), ranked; see the module docstring."""
    counted = windows.get(counts_window, {})
    entries = {}
    for model_id in sorted(set().union(*windows.values())) if windows else []:
        totals = counted.get(model_id, WindowTotals())
        if require_scored and totals.scored_count <= 0:
            continue
        metrics = {
            name: (per_model[model_id].score if model_id in per_model else None) for name, per_model in windows.items()
        }
        entries[model_id] = LeaderboardEntry(
            participants.get(model_id) or Participant.unknown(model_id), metrics, ranking_key, direction, totals
        )
    if not entries:
        return []
    ranked = ranker([e.to_json() for e in entries.values()], ranking_key, direction)
    ids = [str(item.get("model_id")) for item in ranked]
    if sorted(ids) != sorted(entries):
        raise ConfigurationError(
            "LEADERBOARD_RANKER: the ranker must return every entry it was given, each once "
            f"(got {len(ids)} entries for {len(entries)} models)"
        )
    out = []
    for position, (model_id, item) in enumerate(zip(ids, ranked, strict=True), start=1):
        rank = item.get("rank")
        out.append(
            replace(entries[model_id], rank=rank if isinstance(rank, int) and not isinstance(rank, bool) else position)
        )
    return out


def virtual_entries(
    windows: Mapping[str, Mapping[str, WindowTotals]],
    counts_window: str,
    model_ids: Sequence[str],
    ranking_key: str,
    direction: str,
) -> list[LeaderboardEntry]:
    """Rows of the virtual ensembles ``model_ids``: their window scores, no rank, no participant
    (listed after the ranked models, by id)."""
    counted = windows.get(counts_window, {})
    out = []
    for model_id in sorted(model_ids):
        metrics = {
            name: (per_model[model_id].score if model_id in per_model else None) for name, per_model in windows.items()
        }
        name = model_id.split(":", 1)[-1]
        out.append(
            LeaderboardEntry(
                Participant(model_id, name, "", VIRTUAL_LABEL),
                metrics,
                ranking_key,
                direction,
                counted.get(model_id, WindowTotals()),
                virtual=True,
            )
        )
    return out


def ranked_json(entries: Sequence[LeaderboardEntry]) -> list[dict[str, Any]]:
    return [entry.to_json() for entry in entries]
