"""Contribution: each model's one-out effect on the ensemble's score, computed set-wise.

For a round :math:`t` with :math:`n_t` answering members (FAILED/ABSENT excluded, see
:mod:`coordinator_core.contribution.ensembles`) and a score :math:`s` of a forecast against the
realised value, the contribution of an answering model :math:`i` is

.. math:: c_{t,i} = \\sigma\\,\\big(s(E_t) - s(E_t^{-i})\\big),
          \\qquad \\sigma = +1 \\text{ if higher is better, } -1 \\text{ if lower is better},

where :math:`E_t` is the round's ensemble and :math:`E_t^{-i}` the ensemble without :math:`i`. So
:math:`c > 0` always means "the model made the ensemble better", whichever way the score points.
Over a window, the model's contribution is the mean over the rounds it answered,

.. math:: C_i = \\frac{1}{|T_i|} \\sum_{t \\in T_i} c_{t,i},
          \\qquad T_i = \\{t : i \\text{ answered},\\ n_t \\ge 2,\\ y_t \\text{ known}\\};

a round in which the model is the only member is left out (without it there is no ensemble to
compare with), and so is a round whose realised value is NaN. :attr:`Contribution.total` gives
:math:`\\sum_{t \\in T_i} c_{t,i}` instead, which weighs by the number of rounds answered.

Point forecasts, mean ensemble (:func:`point_contribution`)
    With :math:`S_t = \\sum_j x_{t,j}` over the answering members, the ensemble and the one-out
    ensemble are closed forms,

    .. math:: E_t = S_t / n_t, \\qquad E_t^{-i} = \\frac{S_t - x_{t,i}}{n_t - 1} = E_t - \\frac{x_{t,i} - E_t}{n_t - 1},

    so every one-out ensemble of the window costs one subtraction: :math:`O(R \\cdot M)` for the
    whole ``rounds × models`` matrix (never :math:`O(M^2)`), and any elementwise score :math:`s`
    (a :class:`PointRule`) is evaluated once per cell. (:math:`S_t` is summed over the round's
    sorted values, :math:`O(M \\log M)` per round, so that it does not depend on the column order.)
    For the squared error the effect itself is
    closed: with :math:`e_t = E_t - y_t` and :math:`d_{t,i} = x_{t,i} - E_t`,

    .. math:: c_{t,i} = (E_t^{-i} - y_t)^2 - (E_t - y_t)^2
              = \\frac{d_{t,i}^2}{(n_t - 1)^2} - \\frac{2\\, e_t\\, d_{t,i}}{n_t - 1},

    a model contributes when it deviates from the ensemble against the ensemble's error (the
    covariance of :math:`d` with :math:`-e`, as Numerai's MMC), and, since :math:`\\sum_i d_{t,i} = 0`,
    :math:`\\sum_i c_{t,i} = \\sum_i d_{t,i}^2 / (n_t - 1)^2 \\ge 0`.

Densities, equal-weight mixture, log score (:func:`log_score_contribution`)
    The mixture's density at the realised value is the mean of the members' densities, so its log
    score decomposes exactly from the members' own log scores :math:`\\ell_i = -\\ln f_i(y)`:

    .. math:: \\mathrm{LogS}(E) = -\\ln \\frac1n \\sum_j e^{-\\ell_j}, \\qquad
              \\mathrm{LogS}(E^{-i}) = -\\ln \\frac{1}{n - 1} \\sum_{j \\ne i} e^{-\\ell_j},

    computed in log space, :math:`O(R \\cdot M)` (the leave-one-out sum is the total minus the
    member's term; for each round's largest term it is summed directly, so it never cancels).

Densities, equal-weight mixture, CRPS (:func:`crps_mixture_contribution`)
    The CRPS does not decompose from the members' CRPS alone; it does from the energy terms
    :math:`a_i = \\mathbb E|X_i - y|` and :math:`b_{ij} = \\mathbb E|X_i - X_j'|` (independent
    draws), as :math:`\\mathrm{CRPS}(E) = \\frac1n \\sum_i a_i - \\frac{1}{2n^2} \\sum_{i,j} b_{ij}`.
    With the row sums :math:`r_i = \\sum_j b_{ij}` and :math:`B = \\sum_{i,j} b_{ij}`,

    .. math:: \\mathrm{CRPS}(E^{-i}) = \\frac{A - a_i}{n - 1} - \\frac{B - 2 r_i + b_{ii}}{2 (n - 1)^2},

    :math:`O(R \\cdot M^2)`, the size of the cross terms. :func:`normal_mixture_energy` gives them
    for members that are mixtures of normals (closed form). This is the analytic CRPS; the games'
    grid CRPS clips and renormalises the CDF on a finite grid, so it has no such decomposition
    (score the ensemble and each one-out ensemble with the grid scorer instead).

Contribution-weighted emission (:func:`contribution_weighted_emission`)
    Shares proportional to positive contribution, :math:`w = \\max(C, 0)`, exact in frac64 by
    :func:`coordinator_core.emission.apportion`; when no contribution is positive, an equal split.
    See the function.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import numpy.typing as npt

from coordinator_core.contribution.slots import Slot, singleton_slots, slot_emission
from coordinator_core.domain.ranking import Participant
from coordinator_core.emission import Emission

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

__all__ = [
    "ABSOLUTE_ERROR_BPS",
    "DIRECTIONAL_PNL_BPS",
    "POINT_RULES",
    "SQUARED_ERROR",
    "Contribution",
    "PointRule",
    "contribution_weighted_emission",
    "crps_mixture_contribution",
    "log_score_contribution",
    "normal_mixture_energy",
    "point_contribution",
]


# -- rules ------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PointRule:
    """An elementwise score of point forecasts: ``score(prediction, realised) -> score`` on arrays."""

    name: str
    score: Callable[[FloatArray, FloatArray], FloatArray]
    higher_is_better: bool


def _absolute_error_bps(prediction: FloatArray, realized: FloatArray) -> FloatArray:
    return -10_000.0 * np.abs(prediction - realized)


def _directional_pnl_bps(prediction: FloatArray, realized: FloatArray) -> FloatArray:
    return 10_000.0 * np.sign(prediction) * realized


def _squared_error(prediction: FloatArray, realized: FloatArray) -> FloatArray:
    return (prediction - realized) ** 2


#: :func:`coordinator_core.scoring.rules.absolute_error_bps` on arrays: :math:`-10^4 |\\hat r - r|`.
ABSOLUTE_ERROR_BPS = PointRule("absolute_error_bps", _absolute_error_bps, higher_is_better=True)
#: :func:`coordinator_core.scoring.rules.directional_pnl_bps` on arrays: :math:`10^4 \\operatorname{sign}(\\hat r)\\, r`.
DIRECTIONAL_PNL_BPS = PointRule("directional_pnl_bps", _directional_pnl_bps, higher_is_better=True)
#: :math:`(\\hat r - r)^2`, lower is better.
SQUARED_ERROR = PointRule("squared_error", _squared_error, higher_is_better=False)
#: The built-in rules by the name of the contract's scoring function.
POINT_RULES: dict[str, PointRule] = {r.name: r for r in (ABSOLUTE_ERROR_BPS, DIRECTIONAL_PNL_BPS, SQUARED_ERROR)}


# -- result -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Contribution:
    """One-out effects of a window.

    ``per_round[t, i]`` is :math:`c_{t,i}` (positive = the model improved the ensemble), NaN where
    it is not defined (the model did not answer, was alone, or the round is unresolved);
    ``ensemble_score[t]`` is the score of the full ensemble (NaN when no member answered or the
    round is unresolved).
    """

    model_ids: tuple[str, ...]
    per_round: FloatArray
    ensemble_score: FloatArray
    higher_is_better: bool

    @property
    def rounds(self) -> IntArray:
        """:math:`|T_i|`: the rounds each model's contribution is averaged over."""
        return np.asarray(np.count_nonzero(~np.isnan(self.per_round), axis=0), dtype=np.int64)

    @property
    def total(self) -> FloatArray:
        """:math:`\\sum_{t \\in T_i} c_{t,i}` (0 for a model with no such round), each column summed
        on its own contiguous copy: the same bits wherever the model's column is."""
        columns = np.ascontiguousarray(np.where(np.isnan(self.per_round), 0.0, self.per_round).T)
        return np.asarray(columns.sum(axis=1), dtype=np.float64)

    @property
    def mean(self) -> FloatArray:
        """:math:`C_i`, NaN for a model with no such round."""
        rounds = self.rounds
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(rounds > 0, self.total / np.maximum(rounds, 1), np.nan)

    def as_dict(self, total: bool = False) -> dict[str, float | None]:
        """``{model_id: C_i}`` (or the totals), ``None`` where undefined: the emission's input."""
        values = self.total if total else self.mean
        rounds = self.rounds
        return {m: (float(v) if n > 0 else None) for m, v, n in zip(self.model_ids, values, rounds, strict=True)}


def _matrix(values: npt.ArrayLike, model_ids: Sequence[str], what: str) -> FloatArray:
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{what} must be a rounds x models matrix, got shape {x.shape}")
    if x.shape[1] != len(model_ids):
        raise ValueError(f"{what} has {x.shape[1]} columns for {len(model_ids)} model ids")
    if len(set(model_ids)) != len(model_ids):
        raise ValueError("model ids must be distinct")
    return x


def _realized(realized: npt.ArrayLike, rounds: int) -> FloatArray:
    y = np.asarray(realized, dtype=np.float64)
    if y.shape != (rounds,):
        raise ValueError(f"realized must have shape ({rounds},), got {y.shape}")
    if np.isinf(y).any():
        raise ValueError("realized holds an infinite value (an unresolved round is NaN)")
    return y


def _row_sums(values: FloatArray) -> FloatArray:
    """Row sums over the sorted values, each row contiguous (numpy's summation order follows the
    memory layout): the same bits whatever the order or layout of the columns, so that a model's
    contribution depends on who else answered, never on where its column is."""
    return np.asarray(np.ascontiguousarray(np.sort(values, axis=1)).sum(axis=1), dtype=np.float64)


# -- point forecasts --------------------------------------------------------------------------------
def point_contribution(
    predictions: npt.ArrayLike,
    realized: npt.ArrayLike,
    model_ids: Sequence[str],
    rule: PointRule = ABSOLUTE_ERROR_BPS,
) -> Contribution:
    """One-out contributions of point forecasts to their mean ensemble (closed form, module docstring).

    Parameters
    ----------
    predictions
        ``(R, M)``: ``predictions[t, i]`` model ``i``'s forecast in round ``t``; NaN for FAILED/ABSENT.
    realized
        ``(R,)``: the realised value of each round, NaN for a round not resolved.
    model_ids
        The ``M`` column ids, distinct.
    rule
        The elementwise score and its direction.

    Raises
    ------
    ValueError
        On shapes that disagree, repeated ids, or an infinite value.
    """
    x = _matrix(predictions, model_ids, "predictions")
    if np.isinf(x).any():
        raise ValueError("predictions hold an infinite value (a missing answer is NaN)")
    y = _realized(realized, x.shape[0])
    answered = ~np.isnan(x)
    n = answered.sum(axis=1)
    total = _row_sums(np.where(answered, x, 0.0))
    resolved = ~np.isnan(y)
    has_ensemble = (n >= 1) & resolved
    ensemble = np.where(has_ensemble, total / np.maximum(n, 1), np.nan)
    defined = answered & (n >= 2)[:, None] & resolved[:, None]
    with np.errstate(invalid="ignore"):
        loo = np.where(defined, (total[:, None] - x) / np.maximum(n - 1, 1)[:, None], np.nan)
    sign = 1.0 if rule.higher_is_better else -1.0
    full_score = np.asarray(rule.score(ensemble, y), dtype=np.float64)
    with np.errstate(invalid="ignore"):
        loo_score = np.asarray(rule.score(loo, y[:, None]), dtype=np.float64)
        per_round = np.where(defined, sign * (full_score[:, None] - loo_score), np.nan)
    return Contribution(tuple(model_ids), per_round, np.where(has_ensemble, full_score, np.nan), rule.higher_is_better)


# -- densities --------------------------------------------------------------------------------------
def log_score_contribution(
    log_scores: npt.ArrayLike,
    model_ids: Sequence[str],
    max_log_score: float | None = 700.0,
) -> Contribution:
    """One-out contributions to the equal-weight mixture, from the members' log scores (lower is better).

    ``log_scores[t, i]`` is :math:`-\\ln f_i(y_t)` (:func:`coordinator_core.scoring.metrics.log_score`),
    NaN for FAILED/ABSENT or an unresolved round. A density of 0 at the outcome is a log score of
    ``+inf``; ``max_log_score`` caps every log score first (default 700, a density of about
    :math:`10^{-304}`), so that a model alone in giving the outcome a positive density gets a large
    finite contribution rather than an infinite one. ``None`` keeps them uncapped.

    Raises
    ------
    ValueError
        On shapes that disagree, repeated ids, or a log score of ``-inf``.
    """
    s = _matrix(log_scores, model_ids, "log_scores")
    if np.isneginf(s).any():
        raise ValueError("log_scores hold -inf (a density of +inf)")
    if max_log_score is not None:
        s = np.where(np.isnan(s), np.nan, np.minimum(s, max_log_score))
    answered = ~np.isnan(s)
    n = answered.sum(axis=1)
    rounds, models = s.shape
    if models == 0:
        return Contribution((), np.zeros((rounds, 0)), np.full(rounds, np.nan), higher_is_better=False)
    logf = np.where(answered, -s, -np.inf)  # log densities, -inf for absent members
    with np.errstate(invalid="ignore", divide="ignore"):
        top = np.argmax(logf, axis=1)
        shift = logf[np.arange(rounds), top]
        finite_shift = np.where(np.isfinite(shift), shift, 0.0)
        terms = np.exp(logf - finite_shift[:, None])  # top term = 1 where the top density is positive
        total = _row_sums(terms)
        rest = total[:, None] - terms  # Σ_{j≠i}, well conditioned except for the top term
        # the top term's leave-one-out sum, summed directly with its own shift
        others = logf.copy()
        others[np.arange(rounds), top] = -np.inf
        second = others.max(axis=1)
        finite_second = np.where(np.isfinite(second), second, 0.0)
        top_rest_log = finite_second + np.log(_row_sums(np.exp(others - finite_second[:, None])))
        log_rest = np.log(rest) + finite_shift[:, None]
        log_rest[np.arange(rounds), top] = top_rest_log
        log_total = np.log(total) + finite_shift
        ensemble = np.where(n >= 1, -(log_total - np.log(np.maximum(n, 1))), np.nan)
        loo = -(log_rest - np.log(np.maximum(n - 1, 1))[:, None])
    defined = answered & (n >= 2)[:, None]
    per_round = np.where(defined, loo - ensemble[:, None], np.nan)  # lower is better: s(E^-i) - s(E)
    return Contribution(tuple(model_ids), per_round, ensemble, higher_is_better=False)


def crps_mixture_contribution(
    abs_error: npt.ArrayLike,
    abs_difference: npt.ArrayLike,
    model_ids: Sequence[str],
) -> Contribution:
    """One-out contributions to the equal-weight mixture's CRPS, from the energy terms (lower is better).

    Parameters
    ----------
    abs_error
        ``(R, M)``: :math:`a_{t,i} = \\mathbb E|X_i - y_t|`, NaN for FAILED/ABSENT (or unresolved).
    abs_difference
        ``(R, M, M)``: :math:`b_{t,ij} = \\mathbb E|X_i - X_j'|` (symmetric; the entries of absent
        members are ignored).
    model_ids
        The ``M`` ids.

    Raises
    ------
    ValueError
        On shapes that disagree or repeated ids.
    """
    a = _matrix(abs_error, model_ids, "abs_error")
    b = np.asarray(abs_difference, dtype=np.float64)
    rounds, models = a.shape
    if b.shape != (rounds, models, models):
        raise ValueError(f"abs_difference must have shape {(rounds, models, models)}, got {b.shape}")
    answered = ~np.isnan(a)
    n = answered.sum(axis=1).astype(np.float64)
    a0 = np.where(answered, a, 0.0)
    b0 = np.where(answered[:, :, None] & answered[:, None, :], b, 0.0)
    big_a = a0.sum(axis=1)
    row = b0.sum(axis=2)  # r_i
    big_b = row.sum(axis=1)
    diag = np.diagonal(b0, axis1=1, axis2=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        ensemble = np.where(n >= 1, big_a / n - big_b / (2 * n * n), np.nan)
        m = (n - 1)[:, None]
        loo = (big_a[:, None] - a0) / m - (big_b[:, None] - 2 * row + diag) / (2 * m * m)
    defined = answered & (n >= 2)[:, None]
    per_round = np.where(defined, loo - ensemble[:, None], np.nan)
    return Contribution(tuple(model_ids), per_round, ensemble, higher_is_better=False)


def _energy(m: FloatArray, v: FloatArray) -> FloatArray:
    """:math:`\\mathbb E|Z|` for :math:`Z \\sim N(m, v)`: :math:`m(2\\Phi(m/\\sqrt v) - 1) + 2\\sqrt v\\,\\varphi(m/\\sqrt v)`."""
    from scipy.special import ndtr  # type: ignore[import-untyped]

    sd = np.sqrt(v)
    z = m / sd
    return np.asarray(m * (2 * ndtr(z) - 1) + 2 * sd * np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi), dtype=np.float64)


def normal_mixture_energy(
    realized: npt.ArrayLike, loc: npt.ArrayLike, scale: npt.ArrayLike, weight: npt.ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """The energy terms of members that are mixtures of normals, for :func:`crps_mixture_contribution`.

    ``loc``, ``scale``, ``weight``: ``(R, M, K)``, member ``i``'s ``K`` normal leaves (weights summing
    to 1 per member; pad with weight 0), NaN everywhere for a FAILED/ABSENT member. With
    :math:`A(m, v) = \\mathbb E|N(m, v)|`,

    .. math:: a_i = \\sum_k w_{ik} A(y - \\mu_{ik}, \\sigma_{ik}^2), \\qquad
              b_{ij} = \\sum_{k,l} w_{ik} w_{jl} A(\\mu_{ik} - \\mu_{jl}, \\sigma_{ik}^2 + \\sigma_{jl}^2).

    Returns ``(a, b)`` of shapes ``(R, M)`` and ``(R, M, M)``.
    """
    y = np.asarray(realized, dtype=np.float64)
    mu, sd, w = (np.asarray(v, dtype=np.float64) for v in (loc, scale, weight))
    if mu.ndim != 3 or sd.shape != mu.shape or w.shape != mu.shape or y.shape != mu.shape[:1]:
        raise ValueError("loc, scale and weight must share a shape (R, M, K) and realized be (R,)")
    absent = np.isnan(mu).all(axis=2) | np.isnan(y)[:, None]
    safe_sd = np.where(np.isnan(sd) | (w == 0), 1.0, sd)
    safe_mu = np.where(np.isnan(mu), 0.0, mu)
    safe_w = np.where(np.isnan(w), 0.0, w)
    a = (safe_w * _energy(y[:, None, None] - safe_mu, safe_sd**2)).sum(axis=2)
    diff = safe_mu[:, :, None, :, None] - safe_mu[:, None, :, None, :]
    var = safe_sd[:, :, None, :, None] ** 2 + safe_sd[:, None, :, None, :] ** 2
    ww = safe_w[:, :, None, :, None] * safe_w[:, None, :, None, :]
    b = (ww * _energy(diff, var)).sum(axis=(3, 4))
    a = np.where(absent, np.nan, a)
    return a, b


# -- emission ---------------------------------------------------------------------------------------
def contribution_weighted_emission(
    contributions: Mapping[str, float | None],
    participants: Mapping[str, Participant],
    slots: Sequence[Slot] | None = None,
    crunch_pubkey: str = "",
) -> Emission:
    """Shares in frac64 proportional to positive contribution, keyed by participant.

    Every slot (a model alone, or a clone cluster: :func:`coordinator_core.contribution.clusters.emission_slots`)
    weighs :math:`w = \\max(C_{\\text{rep}}, 0)`, the contribution of its representative (``None``
    counts as 0); shares are ``apportion(w)`` (largest remainder, exact sum 1,000,000,000), split
    equally inside a slot. **When no weight is positive** (every contribution ≤ 0 or undefined,
    e.g. a single model), the slots split the emission equally. For clusters, compute the
    contributions on the representatives only (one column per slot), so that a copy does not
    change anyone's contribution.

    ``slots`` defaults to one slot per model of ``contributions``, in the mapping's order. Slots are
    then ordered by weight (descending), equal weights keeping the order given, and the
    apportionment's ties go to the earlier slot: pass the slots in ranking order
    (``emission_slots`` does), so that a tie never depends on a model id a participant chose. An
    empty mapping gives an empty emission (total 0).

    Raises
    ------
    ValueError
        If a contribution is NaN or infinite, or a slot's representative has no entry.
    """
    chosen = list(slots) if slots is not None else singleton_slots(list(contributions))
    weights: list[Fraction] = []
    for slot in chosen:
        if slot.representative not in contributions:
            raise ValueError(f"no contribution for representative {slot.representative!r}")
        value = contributions[slot.representative]
        if value is not None and not math.isfinite(value):
            raise ValueError(f"contribution of {slot.representative!r} is not finite ({value})")
        weights.append(Fraction(value) if value is not None and value > 0 else Fraction(0))
    if chosen and sum(weights) == 0:
        weights = [Fraction(1)] * len(chosen)
    order = sorted(range(len(chosen)), key=lambda k: (-weights[k], k))
    return slot_emission(
        [chosen[k] for k in order], [weights[k] for k in order], participants, crunch_pubkey=crunch_pubkey
    )
