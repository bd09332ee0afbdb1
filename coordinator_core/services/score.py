"""Scoring: resolve each round on its own horizon, score its predictions, then bring the derived
tables (snapshots, the leaderboard, the models' overall scores) up to date.

Ground truth of a round built at ``t`` with horizon ``h``: entry = the newest price observed at or
before ``t`` (what the models saw); exit = the newest price observed at or before ``t + h``, and
only once the feed has reached the horizon: the exit record is observed within one granularity
of ``t + h``, or, for ticks (trades come when they come), a later tick has been observed, so no
other price at or before ``t + h`` can still arrive. Rounds that cannot be resolved wait, and give up after
``RESOLVE_GIVE_UP_SECONDS`` with a reason. A scoring rule that raises fails that prediction only.
FAILED and ABSENT predictions are counted through ``MISSING_PREDICTION_POLICY``.

A score belongs to its round's resolution time, not to the time it is computed: ``scored_at`` is
the round's ``resolvable_at`` (fixed when it was predicted: the round time plus its horizon or
``resolve_after_seconds``, or the settlement point plus the allowed latency), rounded up to the
whole second (``score_time``). So a delayed or re-run scoring run puts every score in the same
snapshot, window and checkpoint period (``domain.periods``: ``(start, end]``). A score whose
period a checkpoint has already paid is *late*: it is stamped one second after that checkpoint's
end (the first unpaid period), marked ``late_from`` in its result, counted in ``ScoreRunResult.late``
and logged; it never changes a paid period.

Each batch of rounds is one transaction: scores, statuses and the work it owes to the derived
tables (``derived_dirty``: the snapshot periods and the leaderboard as of ``now``, each owed at
``now``). ``refresh_derived`` then rebuilds what is owed at or before its ``now`` from the scores in
one transaction, so a run killed anywhere leaves either the old state or work that the next run at
or after the same time finishes as the killed run would have.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from coordinator_core.collection import paused_collection
from coordinator_core.config import Settings, granularity_seconds
from coordinator_core.contract import CrunchContract, custom_aggregator, is_virtual
from coordinator_core.domain.failures import GROUND_TRUTH, GROUND_TRUTH_REASON, Failures, batch_failures
from coordinator_core.domain.periods import period_start
from coordinator_core.domain.policy import MissingPolicy
from coordinator_core.domain.ranking import build_ranking, ranked_json, virtual_entries
from coordinator_core.domain.scoring import PendingPrediction, score_rounds
from coordinator_core.domain.windows import WindowTotals, with_aggregate
from coordinator_core.feeds.base import FeedScope, observe_delay
from coordinator_core.games.ticks import points_from_records
from coordinator_core.ports import DueInput, PricePair, PriceQuery, UnitOfWork, UnitOfWorkFactory
from coordinator_core.services.contribution import window_contribution, window_rounds
from coordinator_core.services.feed_reader import price_point
from coordinator_core.services.metrics import window_metrics

log = logging.getLogger(__name__)
SCORE_LOCK = "coordinator:score-and-checkpoint"
SNAPSHOT, LEADERBOARD = "snapshot", "leaderboard"
#: the entries' key of the metric columns (``services.metrics``): shown, never ranked or paid
STATS = "stats"


@dataclass
class ScoreRunResult:
    resolved: int = 0
    waiting: int = 0
    gave_up: int = 0
    #: scores resolved inside a period a checkpoint had already paid (moved to the next one)
    late: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    leaderboard_id: str | None = None
    # (kind, reason) -> predictions that failed, kinds of ``domain.failures``: the scoring function's
    # failures apart from the models' (and the give-ups)
    failures: Failures = field(default_factory=Counter)


def score_time(resolvable_at: datetime, paid_until: datetime | None) -> tuple[datetime, bool]:
    """``(scored_at, late)`` of a round's scores: its resolution time rounded up to the whole second
    or, when a checkpoint already paid that moment (``<= paid_until``), the first second after the
    paid periods."""
    at = resolvable_at.replace(microsecond=0)
    if at < resolvable_at:
        at += timedelta(seconds=1)
    if paid_until is not None and at <= paid_until:
        return paid_until + timedelta(seconds=1), True
    return at, False


# -- ground truth --------------------------------------------------------------------------------------
def _sources(inp: DueInput) -> list[str]:
    return list(inp.scope.get("sources") or [inp.scope["source"]])


def _scope(inp: DueInput, source: str) -> FeedScope:
    return FeedScope(source, inp.scope["subject"], inp.scope["kind"], inp.scope["granularity"])


def price_queries(inputs: Sequence[DueInput]) -> list[PriceQuery]:
    """Entry and exit lookups of every round from every one of its sources."""
    return [
        PriceQuery(
            f"{inp.id}|{source}",
            _scope(inp, source),
            inp.received_at,
            inp.received_at + timedelta(seconds=int(inp.scope["horizon_seconds"])),
        )
        for inp in inputs
        for source in _sources(inp)
    ]


def path_truth(
    work: UnitOfWork, inp: DueInput, now: datetime, granularity_seconds: int
) -> tuple[dict[str, Any] | None, str]:
    """The ground truth of a path rule (``CrunchContract.truth == "price_path"``): every stored price
    from the round's timestamp (``meta.round_ts``: the newest price the models had) to the
    settlement point, the first stored price at or after ``round_ts + horizon``, as the games'
    ``PriceStore`` holds them (``ts`` = a candle's open time, its close as price). Without a
    settlement point yet, the round waits."""
    round_ts = inp.meta.get("round_ts")
    if not isinstance(round_ts, int):
        return None, "the round has no timestamp (no price was observed when it was predicted)"
    horizon = int(inp.scope["horizon_seconds"])
    reasons = []
    for source in _sources(inp):
        scope = _scope(inp, source)
        records = work.feeds.records_between(scope, datetime.fromtimestamp(round_ts, UTC), now)
        points = points_from_records(
            records, subject=scope.subject, kind=scope.kind, granularity_seconds=granularity_seconds
        )
        settle = next((p.ts for p in points if p.ts >= round_ts + horizon), None)
        if settle is None:
            due = datetime.fromtimestamp(round_ts + horizon, UTC).isoformat()
            reasons.append(f"no {scope.key} price at or after {due} yet")
            continue
        series = [[p.ts, p.price] for p in points if round_ts <= p.ts <= settle]
        steps = [int(s) for s in inp.scope.get("steps") or [inp.scope["step_seconds"]]]
        truth = {
            "subject": scope.subject,
            "round_ts": round_ts,
            "horizon_seconds": horizon,
            "steps": steps,
            "settled_ts": settle,
            "series": series,
            "source": source,
        }
        return truth, ""
    return None, "; ".join(reasons)


def ground_truth(
    contract: CrunchContract, inp: DueInput, pairs: Mapping[str, PricePair]
) -> tuple[dict[str, Any] | None, str]:
    """The round's ground truth from the first source (in priority order) with a complete window,
    or ``None`` and the reasons."""
    reasons = []
    for source in _sources(inp):
        scope = _scope(inp, source)
        pair = pairs.get(f"{inp.id}|{source}", PricePair(None, None))
        exit_time = inp.received_at + timedelta(seconds=int(inp.scope["horizon_seconds"]))
        tolerance = timedelta(seconds=granularity_seconds(scope.granularity))
        if pair.entry is None:
            reasons.append(f"no {scope.key} price observed at or before the round time {inp.received_at.isoformat()}")
            continue
        if pair.exit is None or (
            pair.exit.ts_event + observe_delay(scope) <= exit_time - tolerance
            and not (scope.kind == "tick" and pair.later)
        ):
            reasons.append(f"no {scope.key} price observed at the horizon {exit_time.isoformat()}")
            continue
        truth = contract.resolve_ground_truth(price_point(pair.entry, scope), price_point(pair.exit, scope))
        if truth is None:
            reasons.append("resolve_ground_truth returned None")
            continue
        return {**truth, "source": source}, ""
    return None, "; ".join(reasons)


# -- the scoring run -----------------------------------------------------------------------------------
#: ``mapper(function, jobs) -> [function(*job) for job in jobs]``, possibly in parallel elsewhere.
Mapper = Callable[[Callable[..., Any], list[tuple[Any, ...]]], list[Any]]


def score_predictions(
    uow: UnitOfWorkFactory, contract: CrunchContract, settings: Settings, now: datetime, mapper: Mapper | None = None
) -> ScoreRunResult:
    """Score everything due at ``now`` in bounded batches, then refresh the derived tables.

    ``mapper`` runs the scoring rule of a batch's rounds (one job per round: its outputs, truth and
    scope), e.g. as Prefect tasks on a Dask task runner; the results, and so every row written, are
    the same as the sequential run's (``flows.score_predictions``, ``parallel=True``)."""
    result = ScoreRunResult()
    policy = MissingPolicy.parse(settings.missing_prediction_policy)
    give_up = timedelta(seconds=settings.resolve_give_up_seconds)
    cursor: tuple[datetime, str] | None = None
    while True:
        # no automatic cycle collection within a batch: its rows die by reference counting at its
        # end; at 20,000 predictions the collector took a quarter of the cycle and freed nothing
        with paused_collection():
            # 1. what is due, its ground truth and its predictions: reads only, no lock
            with uow() as work:
                batch = work.rounds.due_inputs(now, cursor, settings.score_batch_size)
                if not batch:
                    break
                cursor = (batch[-1].resolvable_at, batch[-1].id)
                paths = contract.truth == "price_path"
                pairs = {} if contract.truth != "price_pair" else work.feeds.price_pairs(price_queries(batch))
                truths: dict[str, dict[str, Any]] = {}
                reasons: dict[str, str] = {}
                metas: dict[str, dict[str, Any]] = {}
                waiting = 0
                for inp in batch:
                    if paths:
                        truth, reason = path_truth(work, inp, now, settings.granularity_seconds)
                    elif contract.truth == "dataset" and contract.resolve_truth is not None:
                        truth = contract.resolve_truth(inp.scope, inp.meta, now)
                        reason = "the contract's resolve_truth has no ground truth for this round yet"
                    else:
                        truth, reason = ground_truth(contract, inp, pairs)
                    if truth is not None:
                        truths[inp.id] = truth
                    elif now - inp.resolvable_at >= give_up:
                        reasons[inp.id] = f"ground truth unavailable: {reason} (gave up after {give_up})"
                        metas[inp.id] = {**inp.meta, "unresolved_reason": f"gave up after {give_up}: {reason}"}
                    else:
                        waiting += 1
                by_input: dict[str, list[PendingPrediction]] = {}
                for prediction in work.rounds.predictions_of(list(truths)):
                    by_input.setdefault(prediction.input_id, []).append(prediction)
            # 2. the scoring rule, outside any transaction or lock, each call with its deadline
            scopes = {inp.id: inp.scope for inp in batch}
            pending = {
                input_id: [p.output for p in group if p.status == "PENDING"] for input_id, group in by_input.items()
            }
            jobs = [(outputs, truths[input_id], scopes[input_id]) for input_id, outputs in pending.items() if outputs]
            timeout = settings.scoring_timeout_seconds
            if mapper is not None:
                computed = mapper(contract.score_batch, jobs)
            else:
                computed = [contract.score_batch(outputs, truth, scope, timeout) for outputs, truth, scope in jobs]
            results = dict(zip([input_id for input_id, outputs in pending.items() if outputs], computed, strict=True))
            # 3. the writes, under the lock, of what no other run settled meanwhile
            with uow() as work:
                work.lock(SCORE_LOCK)
                still = work.rounds.still_received([inp.id for inp in batch])
                paid_until = work.checkpoints.last_end()
                followers = baseline_followers(work, paid_until)
                kept = [input_id for input_id in by_input if input_id in still]
                resolvable = {inp.id: inp.resolvable_at for inp in batch}
                times = {input_id: score_time(resolvable[input_id], paid_until) for input_id in kept}
                rounds = [(truths[input_id], by_input[input_id], scopes[input_id]) for input_id in kept]
                rule = _precomputed([results[input_id] for input_id in kept if input_id in results])
                truths = {k: v for k, v in truths.items() if k in still}
                reasons = {k: v for k, v in reasons.items() if k in still}
                result.waiting += waiting
                result.resolved += len(truths)
                result.gave_up += len(reasons)
                work.rounds.resolve_inputs(truths, now)
                gave_up = work.rounds.give_up_inputs(reasons, metas, now)
                result.statuses["FAILED"] += gave_up
                if gave_up:
                    result.failures[(GROUND_TRUTH, GROUND_TRUTH_REASON)] += gave_up
                predictions = [p for input_id in kept for p in by_input[input_id]]
                scored = score_rounds(
                    rounds,
                    rule,
                    policy,
                    contract.aggregation.ranking_direction,
                    [times[input_id][0] for input_id in kept],
                    followers,
                )
                late = {input_id for input_id, (_, is_late) in times.items() if is_late}
                if late:
                    scored.scores = [
                        replace(r, result={**r.result, "late_from": resolvable[r.input_id].isoformat()})
                        if r.input_id in late
                        else r
                        for r in scored.scores
                    ]
                    moved = sum(1 for r in scored.scores if r.input_id in late)
                    result.late += moved
                    log.warning(
                        "%d late scores of %d rounds resolved inside a paid checkpoint period (ending %s): "
                        "they count in the next period",
                        moved,
                        len(late),
                        paid_until,
                    )
                work.rounds.set_statuses(scored.changes, kept)
                work.scores.add(scored.scores)
                result.statuses.update(scored.statuses)
                # an ensemble's rows are not counted
                virtual = {m for m in {p.model_id for p in predictions} if is_virtual(m)}
                paid = [p for p in predictions if p.model_id not in virtual] if virtual else predictions
                result.failures.update(batch_failures(paid, scored.changes))
                if scored.scores:
                    work.scores.mark_dirty(
                        SNAPSHOT,
                        [
                            period_start(at, settings.snapshot_period_seconds)
                            for at in {r.scored_at for r in scored.scores}
                        ],
                        now,
                    )
                if scored.scores or reasons:
                    work.scores.mark_dirty(LEADERBOARD, [now], now)
                work.commit()
            if len(batch) < settings.score_batch_size:
                break
    with paused_collection():
        result.leaderboard_id = refresh_derived(uow, contract, settings, now)
    log.info(
        "scoring at %s: %d rounds resolved, %d waiting, %d given up, %s",
        now,
        result.resolved,
        result.waiting,
        result.gave_up,
        dict(result.statuses),
    )
    return result


def baseline_followers(work: UnitOfWork, paid_until: datetime | None) -> frozenset[str]:
    """The followers of the clone clusters of the latest checkpoint (``meta_jsonb.clusters``): left
    out of a round's worst valid score (``domain.scoring``), so a stale copy cannot lower what a
    missing answer of another model is charged. A score is computed once, with the clusters known
    when its round is scored."""
    if paid_until is None:
        return frozenset()
    latest = work.checkpoints.previous(paid_until + timedelta(microseconds=1))
    clusters = (latest.meta.get("clusters") if latest is not None else None) or {}
    return frozenset(str(m) for m in clusters.get("followers") or [])


def _precomputed(results: list[Any]) -> Callable[..., Any]:
    """A round rule that hands out results computed ahead, in the order ``score_rounds`` asks."""
    remaining = iter(results)
    return lambda outputs, truth, scope: next(remaining)


# -- derived tables ------------------------------------------------------------------------------------
def refresh_derived(uow: UnitOfWorkFactory, contract: CrunchContract, settings: Settings, now: datetime) -> str | None:
    """Rebuild the snapshots owed at or before ``now`` (one GROUP BY over their periods' scores)
    and, when a leaderboard is owed at or before ``now``, the leaderboard at ``now`` and the models'
    overall scores. Returns the leaderboard id if rebuilt.

    Work owed at a later time (by a scoring run at ``t > now`` that was killed before its refresh
    committed, seen by a run re-started from an earlier time) is left for the first refresh at or
    after ``t``, so it is done at the time a clean run does it: the snapshots are stamped ``t``, the
    leaderboard as of ``t`` is built, and no refresh builds a leaderboard from scores of its future."""
    aggregator = custom_aggregator(contract)
    with uow() as work:
        work.lock(SCORE_LOCK)
        periods = work.scores.dirty(SNAPSHOT, now)
        if periods:
            work.scores.rebuild_snapshots(periods, settings.snapshot_period_seconds, aggregator, now)
            work.scores.clear_dirty(SNAPSHOT, periods)
        leaderboard_id = None
        owed = work.scores.dirty(LEADERBOARD, now)
        if owed:
            leaderboard_id = rebuild_leaderboard(work, contract, now, settings.snapshot_period_seconds)
            work.scores.clear_dirty(LEADERBOARD, owed)
        work.commit()
    return leaderboard_id


def window_scores(
    work: UnitOfWork, contract: CrunchContract, since: datetime, until: datetime, period_seconds: int | None
) -> dict[str, WindowTotals]:
    """Per model, the totals and the score of the window ``(since, until]`` (``domain.windows``:
    the default mean from the snapshots, or the contract's custom aggregator over the counted
    results)."""
    totals = work.scores.window_totals(since, until, period_seconds)
    aggregator = custom_aggregator(contract)
    if aggregator is None or not totals:
        return totals
    return with_aggregate(totals, work.scores.counted_results(since, until), aggregator)


def rebuild_leaderboard(work: UnitOfWork, contract: CrunchContract, now: datetime, period_seconds: int) -> str:
    """The leaderboard at ``now``: every window's score per model over ``(now - hours, now]``
    (exactly ``hours`` of score times), ranked on the ranking window, whose counts are shown and
    break ties; and each model's overall score.

    Virtual ensembles (``ensemble:<name>``) are not ranked: the paid models are ranked among
    themselves (1..N, as without an ensemble), and each ensemble follows them as a row with
    ``virtual: true``, no rank and no participant. With an ensemble in the contract every row
    carries ``contribution``: the model's mean one-out contribution to the first ensemble over
    the ranking window (``services.contribution``; ``None`` for the ensembles). Every row carries
    ``stats``: the contract's metric columns over the ranking window (``services.metrics``, ``{}``
    for a model with no score in it), computed after the ranking and never read by it."""
    windows = contract.aggregation.windows
    totals = {
        name: window_scores(work, contract, now - timedelta(hours=w.hours), now, period_seconds)
        for name, w in windows.items()
    }
    aggregation = contract.aggregation
    shown = set().union(*totals.values())
    virtual = sorted(m for m in shown if is_virtual(m))
    paid = {name: {m: t for m, t in per_model.items() if not is_virtual(m)} for name, per_model in totals.items()}
    participants = work.models.participants(sorted(shown - set(virtual)))
    entries = build_ranking(
        paid,
        aggregation.ranking_key,
        participants,
        aggregation.ranking_key,
        aggregation.ranking_direction,
        contract.rank,
    )
    entries += virtual_entries(
        totals, aggregation.ranking_key, virtual, aggregation.ranking_key, aggregation.ranking_direction
    )
    if contract.ensembles:
        hours = windows[aggregation.ranking_key].hours
        rounds = window_rounds(work, now - timedelta(hours=hours), now)
        contribution = window_contribution(contract, rounds)
        entries = [
            replace(e, extra={"contribution": None if e.virtual else contribution.get(e.model_id)}) for e in entries
        ]
    if contract.metric_names:
        hours = windows[aggregation.ranking_key].hours
        stats = window_metrics(work, contract, now - timedelta(hours=hours), now, aggregation.ranking_key)
        entries = [replace(e, extra={**e.extra, STATS: stats.get(e.model_id, {})}) for e in entries]
    leaderboard_id = f"LBR_{now:%Y%m%dT%H%M%S.%f}"
    work.leaderboards.add(
        leaderboard_id,
        now,
        ranked_json(entries),
        {
            "generated_by": "coordinator_core.services.score",
            "as_of": now.isoformat(),
            "counts_window": aggregation.ranking_key,
        },
    )
    work.models.set_overall_scores(
        {e.model_id: {"rank": e.rank, **e.metrics, **{k: v for k, v in e.extra.items() if k != STATS}} for e in entries}
    )
    return leaderboard_id
