"""Why predictions failed, by kind, and the rule that fails a run whose scoring function is broken.

Kinds (``KINDS``), each naming whose mistake it is:

=====================  ===========  ====================================================================
kind                   whose        what happened
=====================  ===========  ====================================================================
``scoring_function``   designer     the competition's ``SCORING_FUNCTION`` raised or returned an invalid score
``ground_truth``       feed         the round's exit price never arrived (``RESOLVE_GIVE_UP_SECONDS``)
``model_error``        participant  the model's call raised or failed (runner status FAILED)
``model_timeout``      participant  the model did not answer in time (runner status TIMEOUT)
``invalid_output``     participant  the model answered something the contract's output type refuses
``absent``             participant  no answer at all (not loaded, not running)
=====================  ===========  ====================================================================

The score service knows exactly which failures are the scoring function's (a PENDING prediction
that ``score_rounds`` turned FAILED); for stored rows ``classify`` reads the status, the runner
status and the reason (the scoring function's reasons are written by ``CrunchContract.score`` and
start ``scoring function``; a give-up's by the score service, ``ground truth unavailable``).

The rule (``check_scoring_function``): a run fails with ``ScoringFunctionFailing`` when the scoring
function failed on at least ``SCORING_FAILURE_MIN_COUNT`` predictions and on more than
``SCORING_FAILURE_LIMIT`` of those it was given (scored + its failures). Model failures never count.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from coordinator_core.domain.scoring import FAILED, PENDING, PendingPrediction, StatusChange
from coordinator_core.domain.statuses import PredictionStatus
from coordinator_core.errors import ScoringFunctionFailing

SCORING_FUNCTION = "scoring_function"
GROUND_TRUTH = "ground_truth"
MODEL_ERROR = "model_error"
MODEL_TIMEOUT = "model_timeout"
INVALID_OUTPUT = "invalid_output"
ABSENT = "absent"
KINDS = (SCORING_FUNCTION, GROUND_TRUTH, MODEL_ERROR, MODEL_TIMEOUT, INVALID_OUTPUT, ABSENT)
MODEL_KINDS = frozenset({MODEL_ERROR, MODEL_TIMEOUT, INVALID_OUTPUT, ABSENT})  # the participant's own failures
SCORING_PREFIX = "scoring function "
GROUND_TRUTH_PREFIX = "ground truth unavailable"
GROUND_TRUTH_REASON = "ground truth unavailable (gave up waiting for the exit price)"
REASON_CHARS = 200
_NUMBER = re.compile(r"(?<![\w.])[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?", re.IGNORECASE)

Failures = Counter[tuple[str, str]]  # (kind, reason) -> predictions


def classify(status: str, runner_status: str | None, reason: str | None) -> str | None:
    """The kind of a stored prediction's failure, or ``None`` when it did not fail."""
    if status == PredictionStatus.ABSENT.value:
        return ABSENT
    if status != FAILED:
        return None
    text = reason or ""
    if text.startswith(GROUND_TRUTH_PREFIX):
        return GROUND_TRUTH
    if runner_status == "TIMEOUT" or (runner_status is None and text.startswith("TIMEOUT")):
        return MODEL_TIMEOUT
    if runner_status not in (None, "SUCCESS") or (runner_status is None and text.startswith("FAILED")):
        return MODEL_ERROR
    if text.startswith(SCORING_PREFIX):
        return SCORING_FUNCTION
    return INVALID_OUTPUT


def group_reason(reason: str | None) -> str:
    """A reason made groupable: numbers become ``N`` (values, times, ids differ between predictions
    that failed for the same cause), bounded."""
    text = _NUMBER.sub("N", " ".join((reason or "no reason given").split()))
    return text if len(text) <= REASON_CHARS else text[:REASON_CHARS] + "…"


def batch_failures(predictions: Iterable[PendingPrediction], changes: Iterable[StatusChange]) -> Failures:
    """The failures of a batch scored by ``score_rounds`` over ``predictions``: a PENDING
    prediction it turned FAILED is the scoring function's; one already FAILED or ABSENT failed at
    prediction time (``classify``)."""
    failed_now = {c.prediction_id: c.failed_reason for c in changes if c.status == FAILED}
    out: Failures = Counter()
    for prediction in predictions:
        if prediction.status == PENDING:
            if prediction.id in failed_now:
                out[(SCORING_FUNCTION, group_reason(failed_now[prediction.id]))] += 1
            continue
        kind = classify(prediction.status, None, prediction.failed_reason)
        if kind is not None:
            out[(kind, group_reason(prediction.failed_reason))] += 1
    return out


def kinds(failures: Mapping[tuple[str, str], int]) -> Counter[str]:
    out: Counter[str] = Counter()
    for (kind, _), count in failures.items():
        out[kind] += count
    return out


def top_reasons(failures: Mapping[tuple[str, str], int], limit: int = 5, only: str | None = None) -> list[str]:
    """``"12× scoring_function: scoring function raised …"``, most frequent first."""
    items = [(count, kind, reason) for (kind, reason), count in failures.items() if only in (None, kind)]
    items.sort(key=lambda item: (-item[0], item[1], item[2]))
    return [f"{count}× {kind}: {reason}" for count, kind, reason in items[:limit]]


def summary(statuses: Mapping[str, int], failures: Mapping[tuple[str, str], int], limit: int = 5) -> str:
    """One line: the counts by status, by failure kind, and the top reasons."""
    parts = ["statuses " + (", ".join(f"{k} {v}" for k, v in sorted(statuses.items()) if v) or "none")]
    by_kind = kinds(failures)
    if by_kind:
        parts.append("failures " + ", ".join(f"{k} {v}" for k, v in sorted(by_kind.items())))
        parts.append("top reasons: " + "; ".join(top_reasons(failures, limit)))
    return " | ".join(parts)


def check_scoring_function(
    scored: int, failures: Mapping[tuple[str, str], int], limit: float, min_count: int, what: str = "this run"
) -> None:
    """Raise ``ScoringFunctionFailing`` when the scoring function failed on at least ``min_count``
    predictions and on more than ``limit`` of the ``scored`` + failed ones it was given."""
    failed = kinds(failures)[SCORING_FUNCTION]
    given = scored + failed
    if failed < min_count or given == 0 or failed / given <= limit:
        return
    reasons = "; ".join(top_reasons(failures, 3, only=SCORING_FUNCTION))
    raise ScoringFunctionFailing(
        f"{what}: the scoring function failed on {failed} of the {given} predictions it scored "
        f"({failed / given:.0%} > SCORING_FAILURE_LIMIT {limit:.0%}; SCORING_FAILURE_MIN_COUNT {min_count}): "
        f"{reasons}. Fix SCORING_FUNCTION (the models are not at fault); the scores of this run are stored"
    )


def as_dict(failures: Mapping[tuple[str, str], int]) -> list[dict[str, Any]]:
    """Serialisable form (for task results): ``[{"kind", "reason", "count"}]``, most frequent first."""
    items = sorted(failures.items(), key=lambda item: (-item[1], item[0]))
    return [{"kind": kind, "reason": reason, "count": count} for (kind, reason), count in items]


def from_dicts(rows: Iterable[Mapping[str, Any]]) -> Failures:
    out: Failures = Counter()
    for row in rows:
        out[(str(row["kind"]), str(row["reason"]))] += int(row["count"])
    return out
