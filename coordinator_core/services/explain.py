"""Payout explain: why a model of a checkpoint was paid what it was, link by link.

The chain, from the money down:

* **reward**: the model's and its participant's frac64 shares as stored, the emission strategy and
  its parameters as stored with the checkpoint, the model's exact weight under that strategy and
  the rounding residue of the largest-remainder apportionment; and whether the stored emission is
  reproduced by ``checkpoint.emission_document`` (the one function the checkpoint service computes
  money with) from the stored ranking;
* **rank**: the rank among the stored ranking, the ranking key, direction and value, the
  tie-break used, the models tied with it and its neighbours; and whether the ranking builder
  (``checkpoint.period_ranking``) gives the same ranking from the snapshots as stored now;
* **aggregate**: the model's window totals over the period (Σ value_sum / Σ prediction_count of its
  snapshots ending in ``(period_start, period_end]``);
* **snapshots** (one page, in ``period_start`` order): each snapshot's totals and, for each score
  summed into it, the prediction (its output and status), the score row, the round's stored ground
  truth (``inputs.actuals_jsonb``) and the feed records the ground truth was read from (ids,
  times and values, looked up as the scoring service does: ``services.score.price_queries``);
* **scoring rule**: dotted path and the sha256 of the function's source, as stored when the
  checkpoint was built and as running now.

Read only: one unit of work, never committed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from typing import Any

from coordinator_core.contract import CrunchContract, custom_aggregator
from coordinator_core.domain.emission_strategy import parse_strategy
from coordinator_core.domain.ranking import default_rank, ranked_json
from coordinator_core.emission import FRAC64_TOTAL, percents, slot_weights
from coordinator_core.errors import NotFound
from coordinator_core.ports import PricePair, SnapshotRow, StoredInput, StoredRecord, UnitOfWork, UnitOfWorkFactory
from coordinator_core.services.checkpoint import code_identity, emission_document, period_ranking
from coordinator_core.services.score import price_queries, window_scores

DEFAULT_TIE_BREAK = (
    "higher score first (desc) or lower first (asc); missing scores last; ties: more scored predictions "
    "first, then model_id ascending"
)


@dataclass(frozen=True)
class Explanation:
    """One page of the chain: the document (JSON-ready) and the ``period_start`` after which the
    next page of snapshots starts (``None`` on the last page)."""

    document: dict[str, Any]
    next_after: datetime | None


def _fraction(value: Fraction) -> str:
    return f"{value.numerator}/{value.denominator}" if value.denominator != 1 else str(value.numerator)


def _record(record: StoredRecord | None) -> dict[str, Any] | None:
    if record is None:
        return None
    return {"id": record.id, "ts_event": record.ts_event.isoformat(), "values": dict(record.values)}


def _same_ranking(stored: Sequence[Mapping[str, Any]], recomputed: Sequence[Mapping[str, Any]]) -> bool:
    def key(entries: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
        return [
            (
                e.get("model_id"),
                e.get("rank"),
                ((e.get("score") or {}).get("ranking") or {}).get("value"),
                e.get("prediction_count"),
                e.get("scored_count"),
            )
            for e in entries
        ]

    return key(stored) == key(recomputed)


def reward_link(
    contract: CrunchContract, row_emission: Mapping[str, Any], meta: Mapping[str, Any], model_id: str
) -> dict[str, Any]:
    """The reward of ``model_id``: stored shares, strategy, exact weight, residue, reproduction."""
    ranking: list[dict[str, Any]] = list(meta.get("ranking") or [])
    stored_strategy = meta.get("emission_strategy")
    models = {r.get("model_id"): r for r in row_emission.get("model_rewards") or []}
    mine = models.get(model_id) or {}
    reward_pct = int(mine.get("reward_pct") or 0)
    player = mine.get("player_id") or next((e.get("player_id") for e in ranking if e.get("model_id") == model_id), None)
    participant = next((r for r in row_emission.get("cruncher_rewards") or [] if r.get("cruncher_id") == player), None)
    shown = percents([(str(r.get("model_id")), int(r.get("reward_pct") or 0)) for r in models.values()])
    link: dict[str, Any] = {
        "reward_pct": reward_pct,
        "unit": "frac64 (1,000,000,000 = 100 %)",
        "reward_percent": shown.get(model_id, 0.0),
        "participant": {
            "cruncher_id": player,
            "reward_pct": int((participant or {}).get("reward_pct") or 0),
            "model_ids": list((participant or {}).get("model_ids") or []),
        },
        "strategy": stored_strategy or {"kind": "tiers", "note": "stored before strategies were recorded"},
    }
    if isinstance(stored_strategy, Mapping) and stored_strategy.get("kind") == "hook":
        link["weight"] = None
        link["note"] = "a custom build_emission hook computed this emission; its weights are its own"
        strategy = None
    else:
        strategy = parse_strategy(stored_strategy)
        link["rule"] = strategy.describe()
        index = next((i for i, e in enumerate(ranking) if e.get("model_id") == model_id), None)
        if index is not None:
            slots, weights = slot_weights(strategy, ranking)
            k = next(k for k, slot in enumerate(slots) if index in slot)
            total = sum(weights, Fraction(0))
            slot_exact = weights[k] * FRAC64_TOTAL / total if total > 0 else Fraction(0)
            exact = slot_exact / len(slots[k])
            link.update(
                weight=_fraction(weights[k]),
                weight_total=_fraction(total),
                exact_share=float(exact),
                exact_share_fraction=_fraction(exact),
                rounding_residue=float(reward_pct - exact),
                apportionment="largest remainder: floors of the exact shares, the leftover units one by one to the "
                "largest fractional remainders (equal remainders to the better rank)",
            )
            if len(slots[k]) > 1:  # a clone cluster: one slot, split equally
                link["slot"] = {
                    "representative": ranking[slots[k][0]].get("model_id"),
                    "members": [ranking[i].get("model_id") for i in slots[k]],
                    "exact_share": float(slot_exact),
                    "split": "equally between the members (leftover units to the representative, then by rank)",
                }
        else:
            link["weight"] = None
            link["note"] = "not ranked: no scored prediction in the period, so never paid"
    # the money (who gets what), not the document's addresses, which come from the settings
    recomputed = emission_document(contract, ranking, strategy) if ranking else {}
    link["reproduced"] = all(
        (recomputed.get(k) or []) == (row_emission.get(k) or []) for k in ("cruncher_rewards", "model_rewards")
    )
    return link


def rank_link(
    contract: CrunchContract, work: UnitOfWork, meta: Mapping[str, Any], model_id: str, start: datetime, end: datetime
) -> dict[str, Any]:
    ranking: list[dict[str, Any]] = list(meta.get("ranking") or [])
    index = next((i for i, e in enumerate(ranking) if e.get("model_id") == model_id), None)
    recomputed = ranked_json(period_ranking(work, contract, start, end))
    tie_break = (
        DEFAULT_TIE_BREAK
        if contract.rank is default_rank
        else f"custom ranker {code_identity(contract.rank)['path']} (LEADERBOARD_RANKER)"
    )
    link: dict[str, Any] = {
        "of": len(ranking),
        "ranking_key": meta.get("ranking_key"),
        "tie_break": tie_break,
        "recomputed_matches": _same_ranking(ranking, recomputed),
    }
    if index is None:
        link.update(rank=None, note="not ranked: no scored prediction in the period")
        return link
    entry = ranking[index]
    ranking_score = (entry.get("score") or {}).get("ranking") or {}
    value = ranking_score.get("value")

    def brief(e: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "model_id": e.get("model_id"),
            "rank": e.get("rank"),
            "value": ((e.get("score") or {}).get("ranking") or {}).get("value"),
            "scored_count": e.get("scored_count"),
        }

    link.update(
        rank=entry.get("rank"),
        direction=ranking_score.get("direction"),
        value=value,
        scored_count=entry.get("scored_count"),
        tied_with=[
            e.get("model_id")
            for e in ranking
            if e.get("model_id") != model_id and ((e.get("score") or {}).get("ranking") or {}).get("value") == value
        ],
        above=brief(ranking[index - 1]) if index > 0 else None,
        below=brief(ranking[index + 1]) if index + 1 < len(ranking) else None,
    )
    return link


def aggregate_link(
    work: UnitOfWork, contract: CrunchContract, meta: Mapping[str, Any], model_id: str, start: datetime, end: datetime
) -> dict:
    totals = window_scores(work, contract, start, end, None).get(model_id)
    if totals is None:
        raise NotFound(f"model {model_id!r} has no snapshot in this checkpoint's period")
    entry = next((e for e in meta.get("ranking") or [] if e.get("model_id") == model_id), None)
    stored = ((entry or {}).get("score") or {}).get("ranking", {}).get("value") if entry else None
    return {
        **totals.as_dict(),
        "snapshot_count": len(work.scores.snapshots_between(start, end, model_id)),
        "formula": "score = Σ value_sum / Σ prediction_count over the model's snapshots ending in "
        "(period_start, period_end]: the scores resolved in that period"
        if custom_aggregator(contract) is None
        else f"score = {code_identity(contract.aggregate_snapshot)['path']}(results)['value'] over the model's "
        "scores resolved in (period_start, period_end] (MODEL_SCORE_AGGREGATOR)",
        "matches_ranking": entry is not None and stored is not None and math.isclose(totals.score or 0.0, stored),
    }


def _ground_truth(
    stored: StoredInput | None, pairs: Mapping[str, PricePair]
) -> tuple[Mapping[str, Any] | None, dict[str, Any] | None]:
    if stored is None:
        return None, None
    truth = stored.actuals
    source = (truth or {}).get("source") or (stored.scope.get("sources") or [stored.scope.get("source")])[0]
    pair = pairs.get(f"{stored.id}|{source}", PricePair(None, None))
    records: dict[str, Any] = {"source": source, "entry": _record(pair.entry), "exit": _record(pair.exit)}
    if truth is not None and "entry_price" in truth and "resolved_price" in truth:
        records["match_ground_truth"] = [_price(pair.entry), _price(pair.exit)] == [
            truth.get("entry_price"),
            truth.get("resolved_price"),
        ]
    return truth, records


def _price(record: StoredRecord | None) -> Any:
    """The price a stored record gives the ground-truth rule (``close``, else ``price``)."""
    if record is None:
        return None
    value = record.values.get("close", record.values.get("price"))
    return float(value) if isinstance(value, int | float) else value


def snapshot_links(
    work: UnitOfWork, model_id: str, start: datetime, end: datetime, after: datetime | None, limit: int
) -> tuple[list[dict[str, Any]], datetime | None]:
    page: list[SnapshotRow] = work.scores.snapshots_between(start, end, model_id, after, limit + 1)
    more = len(page) > limit
    page = page[:limit]
    if not page:
        return [], None
    scores = work.scores.scores_between(page[0].period_start, page[-1].period_end, model_id)
    predictions = work.rounds.predictions_by_id([s.prediction_id for s in scores])
    inputs = work.rounds.stored_inputs(sorted({s.input_id for s in scores}))
    pairs = work.feeds.price_pairs(price_queries([i.due() for i in inputs.values()]))
    out = []
    for snapshot in page:
        inside = [s for s in scores if snapshot.period_start < s.scored_at <= snapshot.period_end]
        items = []
        for score in inside:
            prediction = predictions.get(score.prediction_id)
            stored_input = inputs.get(score.input_id)
            truth, records = _ground_truth(stored_input, pairs)
            items.append(
                {
                    "prediction_id": score.prediction_id,
                    "input_id": score.input_id,
                    "round_at": stored_input.round_at.isoformat() if stored_input else None,
                    "scope": dict(stored_input.scope) if stored_input else None,
                    "status": prediction.status if prediction else score.prediction_status,
                    "output": dict(prediction.output) if prediction else None,
                    "failed_reason": prediction.failed_reason if prediction else None,
                    "score": {
                        "value": score.value,
                        "success": score.success,
                        "counted_as": score.prediction_status,
                        "failed_reason": score.failed_reason,
                        "scored_at": score.scored_at.isoformat(),
                        "result": dict(score.result),
                    },
                    "ground_truth": dict(truth) if truth is not None else None,
                    "feed_records": records,
                }
            )
        t = snapshot.totals
        value_sum = math.fsum(s.value for s in inside)
        out.append(
            {
                "id": snapshot.id,
                "period_start": snapshot.period_start.isoformat(),
                "period_end": snapshot.period_end.isoformat(),
                **t.as_dict(),
                "sums_match": len(inside) == t.prediction_count
                and math.isclose(value_sum, t.value_sum, rel_tol=1e-9, abs_tol=1e-9)
                and sum(s.success for s in inside) == t.scored_count,
                "predictions": items,
            }
        )
    return out, (page[-1].period_start if more else None)


def explain_reward(
    uow: UnitOfWorkFactory,
    contract: CrunchContract,
    checkpoint_id: str,
    model_id: str,
    after: datetime | None = None,
    limit: int = 24,
) -> Explanation:
    """The chain for ``model_id`` in a checkpoint, with one page of ``limit`` snapshots starting
    after ``after``; ``NotFound`` for an unknown checkpoint or a model without a snapshot in it."""
    with uow() as work:
        row = work.checkpoints.get(checkpoint_id)
        if row is None:
            raise NotFound(f"checkpoint {checkpoint_id!r} not found")
        start, end = row.period_start, row.period_end
        aggregate = aggregate_link(work, contract, row.meta, model_id, start, end)
        participants = work.models.participants([model_id])
        snapshots, next_after = snapshot_links(work, model_id, start, end, after, limit)
        document = {
            "checkpoint": {
                "id": row.id,
                "period_start": start.isoformat(),
                "period_end": end.isoformat(),
                "status": row.status,
                "merkle_root": row.merkle_root,
                "gate": dict(row.gate) if row.gate is not None else None,
            },
            "model": {
                "model_id": model_id,
                "model_name": participants[model_id].model_name if model_id in participants else model_id,
                "player_id": participants[model_id].player_id if model_id in participants else None,
                "player_name": participants[model_id].player_name if model_id in participants else None,
            },
            "reward": reward_link(contract, row.emission, row.meta, model_id),
            "rank": rank_link(contract, work, row.meta, model_id, start, end),
            "aggregate": aggregate,
            "scoring_rule": scoring_rule_link(row.meta.get("scoring_rule"), contract),
            "snapshots": snapshots,
        }
    return Explanation(document, next_after)


def scoring_rule_link(at_build: Any, contract: CrunchContract) -> dict[str, Any]:
    now = code_identity(contract.scoring_function)
    return {"at_build": at_build, "now": now, "unchanged": bool(at_build) and at_build == now}
