"""Clone clusters: models whose prediction streams are near-copies, possibly lagged, share one slot.

Similarity of two streams (:func:`similarity`)
    For models :math:`a, b` and a lag :math:`k`, the Pearson correlation of :math:`a_t` with
    :math:`b_{t+k}` over the rounds where both answered (FAILED/ABSENT are NaN and left out),

    .. math:: \\rho_k(a, b) = \\frac{\\sum (a_t - \\bar a)(b_{t+k} - \\bar b)}
              {\\sqrt{\\sum (a_t - \\bar a)^2 \\sum (b_{t+k} - \\bar b)^2}}
              \\quad \\text{over } O_k = \\{t : a_t, b_{t+k} \\text{ answered}\\},

    (means over :math:`O_k`), defined when :math:`|O_k| \\ge` ``min_overlap`` and neither stream is
    constant on :math:`O_k`. The pair's similarity is the best over the lags,
    :math:`s(a, b) = \\max_{|k| \\le L} \\rho_k(a, b)`, with its lag and overlap as evidence. A copy
    of :math:`a` that repeats it :math:`k \\le L` rounds later has :math:`\\rho_k = 1` exactly; an
    affine copy (:math:`c\\,a + d`, :math:`c > 0`) too. Only **positive** correlation counts: a
    negated copy is a contrarian model, which costs the original nothing. Two **constant** streams
    (Pearson undefined) that hold the same value on at least ``min_overlap`` shared rounds are
    identical and count as correlation 1 at lag 0.

    ``lag`` reads: ``b[t + lag]`` is compared with ``a[t]``; ``lag > 0`` means ``b`` repeats ``a``
    ``lag`` rounds later (``b`` follows ``a``), ``lag < 0`` the reverse.

Computation
    Set-wise, for all pairs at once: each column is standardised over its answered rounds (0 where
    not answered), then for every lag :math:`k = 0..L` one ``(M × R) · (R × M)`` matrix product of
    the shifted matrices gives :math:`\\sum ab` over the shared rounds. Against a complete column the
    other sums (overlap, :math:`\\sum a, \\sum a^2, \\sum b, \\sum b^2`) are each column's own sums;
    for the ``G`` columns with a missing answer, two stacked products of the masks with
    ``[mask | z | z²]`` restricted to those columns give them; :math:`\\rho_{-k} = \\rho_k^\\top`.
    Cost :math:`O((L + 1) \\cdot M R (M + 5 G))` in BLAS, memory :math:`O(M^2 + M R)`; no Python loop
    over pairs or lags beyond the :math:`L + 1` products.

Clusters (:func:`find_clusters`)
    Pairs with :math:`s(a, b) \\ge` ``threshold`` are edges; clusters are the connected components
    of that graph (union-find), so a chain of copies is one cluster. Defaults: ``threshold`` 0.99,
    ``max_lag`` 6 rounds, ``min_overlap`` 72 rounds. On the shipped BTC data (120 days, hourly) the
    six example models, all functions of the same closes, reach at most 0.977 over any 96
    consecutive rounds (momentum against the EMA model one round later, 83 shared rounds), 0.960
    over any week and 0.78 over the whole series; over fewer shared rounds trend followers get
    closer (0.990 over 24 rounds of full answers), hence the minimum overlap. 0.99 keeps them apart
    while catching copies with added noise up to about 10 % of their standard deviation (15 %:
    caught one time in five; 20 %: never). Honest models whose true correlation is above the
    threshold are indistinguishable from noisy copies by this test and are clustered; a copy with
    more noise escapes (and, being a different forecast, is left to the contribution score).

Rolling
    The matrix given is the window (a checkpoint's period, or the last N rounds for a rolling view):
    compute the clusters again for every window. One stream is one prediction config (subject ×
    horizon); :func:`union_clusters` merges the clusters found per config (union of their edges).

One emission slot per cluster (:func:`emission_slots`, :func:`cluster_capped_emission`)
    A cluster takes the place of its **best leader** in the ranking, and every other member gives up
    its own place: the slots are the clusters and the unclustered models, ranked by their
    representatives; the tier weights are those of that many slots, and a cluster's share is split
    **equally** between its ranked members. A *leader* is a member that follows no other member (no
    evidence pair shows it repeating another member later); when every member follows another
    (periodic streams), all are leaders. Ranking by the best leader rather than the best member
    means that a lagged copy lucky enough to outscore its original cannot lift the cluster above the
    original's own place: adding a copy (exact or lagged by :math:`k \\le L`) leaves the number of
    slots and the original's place unchanged, so the pair original + copy gets exactly the
    original's share alone, never more.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import numpy.typing as npt
from scipy.sparse import coo_matrix  # type: ignore[import-untyped]
from scipy.sparse.csgraph import connected_components  # type: ignore[import-untyped]

from coordinator_core.contribution.slots import Slot, slot_emission
from coordinator_core.domain.ranking import Participant
from coordinator_core.emission import Emission, tier_weights

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

DEFAULT_THRESHOLD = 0.99
DEFAULT_MAX_LAG = 6
DEFAULT_MIN_OVERLAP = 72
#: A stream whose variance over an overlap is below this share of its overall variance is constant there.
_FLAT = 1e-9

__all__ = [
    "DEFAULT_MAX_LAG",
    "DEFAULT_MIN_OVERLAP",
    "DEFAULT_THRESHOLD",
    "Cluster",
    "Clusters",
    "PairEvidence",
    "Similarity",
    "cluster_capped_emission",
    "emission_slots",
    "find_clusters",
    "similarity",
    "union_clusters",
]


@dataclass(frozen=True, slots=True)
class PairEvidence:
    """Why two models are in one cluster: ``b[t + lag]`` against ``a[t]`` over ``overlap`` rounds."""

    a: str
    b: str
    correlation: float
    lag: int
    overlap: int

    @property
    def follower(self) -> str | None:
        """The model that repeats the other later (``None`` at lag 0)."""
        return self.b if self.lag > 0 else self.a if self.lag < 0 else None


@dataclass(frozen=True, slots=True)
class Cluster:
    """Two or more models linked by evidence pairs (members in the order of the model ids given)."""

    members: tuple[str, ...]
    pairs: tuple[PairEvidence, ...]

    @property
    def followers(self) -> frozenset[str]:
        return frozenset(p.follower for p in self.pairs if p.follower is not None)

    @property
    def leaders(self) -> tuple[str, ...]:
        """Members that follow no other member (all members when each follows another)."""
        followers = self.followers
        return tuple(m for m in self.members if m not in followers) or self.members


@dataclass(frozen=True)
class Clusters:
    """The clusters found among ``model_ids`` (each of two or more models) and the rule's parameters."""

    model_ids: tuple[str, ...]
    clusters: tuple[Cluster, ...]
    threshold: float = DEFAULT_THRESHOLD
    max_lag: int = DEFAULT_MAX_LAG
    min_overlap: int = DEFAULT_MIN_OVERLAP
    _index: dict[str, Cluster] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {m: c for c in self.clusters for m in c.members})

    def cluster_of(self, model_id: str) -> Cluster | None:
        return self._index.get(model_id)

    @property
    def pairs(self) -> tuple[PairEvidence, ...]:
        return tuple(p for c in self.clusters for p in c.pairs)

    @property
    def followers(self) -> frozenset[str]:
        """Models that repeat another member of their cluster later. Leave them out of a round's
        worst valid score when charging FAILED/ABSENT answers: a stale copy is often the worst and
        would otherwise lower everyone else's charge, and so reorder the ranking."""
        return frozenset(m for c in self.clusters for m in c.followers)


@dataclass(frozen=True)
class Similarity:
    """Best correlation over the lags for every pair (``M × M``; NaN where undefined, diagonal NaN),
    with the lag and the overlap it was found at (0 where undefined)."""

    model_ids: tuple[str, ...]
    correlation: FloatArray
    lag: IntArray
    overlap: IntArray


def _check(predictions: npt.ArrayLike, model_ids: Sequence[str], max_lag: int, min_overlap: int) -> FloatArray:
    x = np.asarray(predictions, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != len(model_ids):
        raise ValueError(f"predictions must be rounds x models ({len(model_ids)} ids), got shape {x.shape}")
    if len(set(model_ids)) != len(model_ids):
        raise ValueError("model ids must be distinct")
    if np.isinf(x).any():
        raise ValueError("predictions hold an infinite value (a missing answer is NaN)")
    if max_lag < 0:
        raise ValueError(f"max_lag must be >= 0, got {max_lag}")
    if min_overlap < 3:
        raise ValueError(f"min_overlap must be >= 3 rounds, got {min_overlap}")
    return x


class _Streams:
    """The standardised streams and their masks, and the pairwise sums of every lag."""

    def __init__(self, x: FloatArray) -> None:
        self.rounds, self.models = x.shape
        answered = ~np.isnan(x)
        count = answered.sum(axis=0)
        safe = np.maximum(count, 1)
        mean = np.where(answered, x, 0.0).sum(axis=0) / safe
        centred = np.where(answered, x - mean, 0.0)
        std = np.sqrt((centred * centred).sum(axis=0) / safe)
        self.z = centred / np.where(std > 0, std, 1.0)  # 0 where not answered
        self.z2 = self.z * self.z
        self.answered = answered
        self.mask = answered.astype(np.float64)
        #: columns with a missing answer: only their pairs need masked products
        self.gaps = np.flatnonzero(~answered.all(axis=0))
        self.stacked = np.hstack([self.mask, self.z, self.z2])

    def stats(self, k: int) -> tuple[FloatArray, FloatArray]:
        """``(ρ_k, overlap_k)``: ``ρ_k[a, b]`` = corr(a[t], b[t + k]) over the shared rounds, NaN if flat.

        Sums over the shared rounds: against a complete column they are the other column's own
        sums (a vector); only the pairs with a gappy column take masked matrix products, two
        stacked BLAS calls whose size is proportional to the number of gappy columns.
        """
        m, end, gaps = self.models, self.rounds - k, self.gaps
        za, zb = self.z[:end], self.z[k:]
        sab = za.T @ zb
        own_a = self.stacked[:end].sum(axis=0)  # Σ mask, Σ z, Σ z² of a over its first `end` rounds
        own_b = self.stacked[k:].sum(axis=0)
        n: FloatArray = own_a[:m, None]
        sa, saa = own_a[m : 2 * m, None], own_a[2 * m :, None]
        sb, sbb = own_b[None, m : 2 * m], own_b[None, 2 * m :]
        if gaps.size:  # against a gappy column the sums run over its answered rounds only
            n, sa, saa = (np.repeat(v, m, axis=1) for v in (n, sa, saa))
            sb, sbb = (np.repeat(v, m, axis=0) for v in (sb, sbb))
            by_b = self.stacked[:end].T @ self.mask[k:, gaps]  # (3M, G): Σ 1, a, a² where b answered
            n[:, gaps], sa[:, gaps], saa[:, gaps] = by_b[:m], by_b[m : 2 * m], by_b[2 * m :]
            by_a = self.mask[:end, gaps].T @ self.stacked[k:, m:]  # (G, 2M): Σ b, b² where a answered
            sb[gaps, :], sbb[gaps, :] = by_a[:, :m], by_a[:, m:]
        n = np.broadcast_to(n, sab.shape)
        with np.errstate(invalid="ignore", divide="ignore"):  # in place: the M × M temporaries dominate
            cov = sab
            cov -= sa * sb / n  # Σ(a - ā)(b - b̄) = Σab - Σa Σb / n
            va = saa - sa * sa / n
            vb = sbb - sb * sb / n
            denominator = va * vb
            flat = (va <= _FLAT * n) | (vb <= _FLAT * n)
            np.sqrt(denominator, out=denominator)
            cov /= denominator
        r = cov
        r[flat] = np.nan
        np.clip(r, -1.0, 1.0, out=r)
        return r, n


def similarity(
    predictions: npt.ArrayLike,
    model_ids: Sequence[str],
    *,
    max_lag: int = DEFAULT_MAX_LAG,
    min_overlap: int = DEFAULT_MIN_OVERLAP,
) -> Similarity:
    """:math:`s(a, b) = \\max_{|k| \\le L} \\rho_k(a, b)` for every pair (see the module docstring).

    ``predictions``: ``(R, M)``, NaN for FAILED/ABSENT. Ties between lags go to the smallest
    :math:`|k|`, then to :math:`+k`.

    Raises
    ------
    ValueError
        On a shape that disagrees with ``model_ids``, repeated ids, an infinite value, ``max_lag < 0``
        or ``min_overlap < 3``.
    """
    x = _check(predictions, model_ids, max_lag, min_overlap)
    rounds, models = x.shape
    streams = _Streams(x)
    best = np.full((models, models), -np.inf)
    lag = np.zeros((models, models), dtype=np.int64)
    overlap = np.zeros((models, models), dtype=np.int64)
    for k in range(min(max_lag, max(rounds - 1, 0)) + 1):
        r, n = streams.stats(k)
        r[n < min_overlap] = np.nan
        np.fill_diagonal(r, np.nan)  # a model against itself (its autocorrelation at k > 0) is no pair
        for rk, nk, signed in [(r, n, k)] if k == 0 else [(r, n, k), (r.T, n.T, -k)]:
            better = rk > best  # NaN never wins; ties keep the earlier (smaller |k|) lag
            np.copyto(best, rk, where=better)
            np.copyto(lag, signed, where=better)
            np.copyto(overlap, nk, where=better, casting="unsafe")
    # constant streams: Pearson is undefined; the same constant on enough shared rounds is a copy
    answered, mask = streams.answered, streams.mask
    count = answered.sum(axis=0)
    highest = np.where(answered, x, -np.inf).max(axis=0, initial=-np.inf)
    flat = (count >= min_overlap) & (highest == np.where(answered, x, np.inf).min(axis=0, initial=np.inf))
    if flat.sum() >= 2:
        idx = np.flatnonzero(flat)
        shared = mask[:, idx].T @ mask[:, idx]
        same = (highest[idx][:, None] == highest[idx][None, :]) & (shared >= min_overlap)
        np.fill_diagonal(same, False)
        ia, ib = np.nonzero(same)
        best[idx[ia], idx[ib]] = 1.0
        lag[idx[ia], idx[ib]] = 0
        overlap[idx[ia], idx[ib]] = shared[ia, ib].astype(np.int64)
    undefined = ~np.isfinite(best)
    return Similarity(
        tuple(model_ids),
        np.where(undefined, np.nan, best),
        np.where(undefined, 0, lag),
        np.where(undefined, 0, overlap),
    )


def _components(model_ids: Sequence[str], pairs: Sequence[PairEvidence]) -> tuple[Cluster, ...]:
    """Connected components (of two or more models) of the graph whose edges are ``pairs``."""
    position = {m: i for i, m in enumerate(model_ids)}
    if not pairs:
        return ()
    rows = np.array([position[p.a] for p in pairs])
    cols = np.array([position[p.b] for p in pairs])
    graph = coo_matrix((np.ones(len(pairs)), (rows, cols)), shape=(len(model_ids), len(model_ids)))
    _, labels = connected_components(graph, directed=False)
    groups: dict[int, list[str]] = {}
    for m in model_ids:
        groups.setdefault(int(labels[position[m]]), []).append(m)
    evidence: dict[int, list[PairEvidence]] = {}
    for p in pairs:
        evidence.setdefault(int(labels[position[p.a]]), []).append(p)
    return tuple(Cluster(tuple(groups[label]), tuple(evidence[label])) for label in groups if len(groups[label]) >= 2)


def find_clusters(
    predictions: npt.ArrayLike,
    model_ids: Sequence[str],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    max_lag: int = DEFAULT_MAX_LAG,
    min_overlap: int = DEFAULT_MIN_OVERLAP,
) -> Clusters:
    """Clusters of models whose similarity reaches ``threshold`` (connected components), with evidence.

    ``predictions``: ``(R, M)`` point forecasts of one config over the window, NaN for FAILED/ABSENT.
    Clusters are ordered by their first member; members and pairs follow ``model_ids``' order.

    Raises
    ------
    ValueError
        If ``threshold`` is not in (0, 1], or as :func:`similarity`.
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    sim = similarity(predictions, model_ids, max_lag=max_lag, min_overlap=min_overlap)
    with np.errstate(invalid="ignore"):
        edge = np.triu(sim.correlation >= threshold - 1e-12, k=1)
    ia, ib = np.nonzero(edge)
    pairs = [
        PairEvidence(
            model_ids[a], model_ids[b], float(sim.correlation[a, b]), int(sim.lag[a, b]), int(sim.overlap[a, b])
        )
        for a, b in zip(ia.tolist(), ib.tolist(), strict=True)
    ]
    return Clusters(tuple(model_ids), _components(model_ids, pairs), threshold, max_lag, min_overlap)


def union_clusters(parts: Sequence[Clusters]) -> Clusters:
    """Merge clusters found on several streams (e.g. one per config): the union of their evidence
    pairs, components recomputed over every model id seen (in first-seen order). The parameters
    are the first part's."""
    ids: dict[str, None] = {}
    for part in parts:
        ids.update(dict.fromkeys(part.model_ids))
    model_ids = tuple(ids)
    pairs = [p for part in parts for p in part.pairs]
    if not parts:
        return Clusters((), ())
    first = parts[0]
    return Clusters(model_ids, _components(model_ids, pairs), first.threshold, first.max_lag, first.min_overlap)


# -- emission ---------------------------------------------------------------------------------------
def emission_slots(clusters: Clusters, ranked_model_ids: Sequence[str]) -> list[Slot]:
    """The slots of a ranking (best first): a cluster is one slot placed at its best-ranked leader.

    A slot's members are its ranked models in rank order; its representative is the best-ranked
    leader (the best-ranked member when no leader is ranked). Models outside every cluster are
    slots of their own. Slots come in the order of their representatives' ranks. Models of a
    cluster that are not ranked take no part.

    Raises
    ------
    ValueError
        If a model is ranked twice.
    """
    if len(set(ranked_model_ids)) != len(ranked_model_ids):
        raise ValueError("a model is ranked twice")
    position = {m: i for i, m in enumerate(ranked_model_ids)}
    slots: list[tuple[int, Slot]] = []
    done: set[int] = set()
    for model_id in ranked_model_ids:
        cluster = clusters.cluster_of(model_id)
        if cluster is None:
            slots.append((position[model_id], Slot((model_id,), model_id)))
            continue
        if id(cluster) in done:
            continue
        done.add(id(cluster))
        members = tuple(sorted((m for m in cluster.members if m in position), key=position.__getitem__))
        leading = set(cluster.leaders)
        leaders = [m for m in members if m in leading]
        representative = leaders[0] if leaders else members[0]
        slots.append((position[representative], Slot(members, representative)))
    slots.sort(key=lambda item: item[0])
    return [slot for _, slot in slots]


def cluster_capped_emission(
    ranked: Sequence[tuple[str, str, str | None, int | None]],
    clusters: Clusters,
    crunch_pubkey: str = "",
    weights: Callable[[int], list[Fraction]] = tier_weights,
) -> Emission:
    """:func:`coordinator_core.emission.build_emission` with one slot per clone cluster.

    ``ranked`` is ``[(model_id, player_id, wallet, rank), ...]`` in rank order, as for
    ``build_emission``. The slots (:func:`emission_slots`) get ``weights(number of slots)`` in slot
    order (the spec's tiers by default), apportioned exactly to 1,000,000,000, each split equally
    between its members; rewards are keyed by participant. With no cluster this equals
    ``build_emission`` share for share. Each member's ``ModelReward.rank`` is its slot's rank.
    """
    participants = {m: Participant(m, m, player, player, wallet) for m, player, wallet, _ in ranked}
    slots = emission_slots(clusters, [m for m, _, _, _ in ranked])
    return slot_emission(slots, weights(len(slots)), participants, crunch_pubkey=crunch_pubkey)
