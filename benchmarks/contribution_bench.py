"""Contribution and clone clusters at 1,000 models x 1,000 rounds: time and peak memory.

``.venv/bin/python -m benchmarks.contribution_bench [--models 1000] [--rounds 1000] [--max-lag 6] [--repeat 3]``

The window: honest models (independent noise around one AR(1) signal that predicts the realised
value), 2 % of them replaced by copies of others (half exact, half lagged by 1 to ``--max-lag``
rounds), with every answer complete, then with 5 % of the answers FAILED/ABSENT (NaN) at random.

* contribution: :func:`coordinator_core.contribution.point_contribution` (one-out effect of every
  model in every round on the mean ensemble, ``absolute_error_bps``), and
  :func:`~coordinator_core.contribution.log_score_contribution` on a matrix of log scores;
* clusters: :func:`coordinator_core.contribution.find_clusters` (best Pearson over lags
  ``-L..L``, overlap ≥ 72, threshold 0.99, connected components), which must find every copy and
  nothing else.

Times are the best of ``--repeat`` runs; peak memory is ``tracemalloc``'s peak of one further run
(numpy reports its buffers to it), the inputs excluded. Printed, never asserted.
"""

from __future__ import annotations

import argparse
import math
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np

from coordinator_core.contribution import ABSOLUTE_ERROR_BPS, find_clusters, log_score_contribution, point_contribution


def make_window(models: int, rounds: int, max_lag: int, missing: float, seed: int = 7) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    signal = np.empty(rounds)
    signal[0] = rng.normal()
    for t in range(1, rounds):
        signal[t] = 0.5 * signal[t - 1] + math.sqrt(0.75) * rng.normal()
    realized = signal + rng.normal(size=rounds)
    beta = rng.uniform(0.5, 2.0, size=models)
    x = beta * signal[:, None] + beta * rng.uniform(0.5, 2.0, size=models) * rng.normal(size=(rounds, models))
    copies = max(2, models // 50)
    originals = rng.choice(models - copies, size=copies, replace=False)
    expected = set()
    for n, original in enumerate(originals):
        column = models - copies + n
        lag = 0 if n % 2 == 0 else 1 + n % max(max_lag, 1)
        x[:, column] = np.nan
        x[lag:, column] = x[: rounds - lag, original]
        expected.add((int(original), column, lag))
    x[rng.random(x.shape) < missing] = np.nan
    log_scores = np.where(np.isnan(x), np.nan, rng.gamma(2.0, 1.5, size=x.shape))
    ids = [f"m{i:04d}" for i in range(models)]
    return {"x": x, "y": realized, "ids": ids, "log_scores": log_scores, "expected": expected}


def best_of(repeat: int, run: Callable[[], Any]) -> tuple[float, Any]:
    best, out = math.inf, None
    for _ in range(repeat):
        started = time.perf_counter()
        out = run()
        best = min(best, time.perf_counter() - started)
    return best, out


def peak_mib(run: Callable[[], Any]) -> float:
    tracemalloc.start()
    try:
        run()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=1000)
    parser.add_argument("--max-lag", type=int, default=6)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    m, r, lag = args.models, args.rounds, args.max_lag
    print(f"{m} models x {r} rounds, lags -{lag}..{lag}; best of {args.repeat}, peak memory of one run")
    header = f"{'computation':<44} {'answers':>9} {'seconds':>9} {'peak MiB':>9}  check"
    print(header)
    print("-" * len(header))
    for missing in (0.0, 0.05):
        w = make_window(m, r, lag, missing)
        answers = "complete" if missing == 0 else f"{missing:.0%} NaN"
        inputs_mib = (w["x"].nbytes + w["log_scores"].nbytes) / 2**20

        def contribution(w: dict[str, Any] = w) -> Any:
            return point_contribution(w["x"], w["y"], w["ids"], ABSOLUTE_ERROR_BPS)

        def log_contribution(w: dict[str, Any] = w) -> Any:
            return log_score_contribution(w["log_scores"], w["ids"])

        def clusters(w: dict[str, Any] = w) -> Any:
            return find_clusters(w["x"], w["ids"], max_lag=lag)

        seconds, result = best_of(args.repeat, contribution)
        rounds_used = int(result.rounds.sum())
        print(
            f"{'contribution (point, mean ensemble, one-out)':<44} {answers:>9} {seconds:>9.3f} "
            f"{peak_mib(contribution):>9.1f}  {rounds_used:,} model-rounds"
        )
        seconds, result = best_of(args.repeat, log_contribution)
        print(
            f"{'contribution (log score, mixture, one-out)':<44} {answers:>9} {seconds:>9.3f} "
            f"{peak_mib(log_contribution):>9.1f}  finite: {bool(np.isfinite(result.mean).all())}"
        )
        seconds, result = best_of(args.repeat, clusters)
        ids = w["ids"]
        found = {(ids.index(p.a), ids.index(p.b), p.lag) for p in result.pairs}
        check = (
            "every copy found, nothing else"
            if found == w["expected"]
            else f"found {len(found)} pairs, expected {len(w['expected'])}"
        )
        print(
            f"{'clusters (Pearson at ' + str(2 * lag + 1) + ' lags, components)':<44} {answers:>9} "
            f"{seconds:>9.3f} {peak_mib(clusters):>9.1f}  {len(result.clusters)} clusters: {check}"
        )
        print(f"{'(inputs, not counted)':<44} {answers:>9} {'':>9} {inputs_mib:>9.1f}")


if __name__ == "__main__":
    main()
