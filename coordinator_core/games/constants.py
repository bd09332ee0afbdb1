"""Rules of the two CrunchDAO games, value by value, with where each comes from.

Sources (the published packages, read from their installed sources):

* ``condorgame`` 0.5.3: ``condorgame/constants.py`` (``SUPPORTED_ASSETS``, ``FORECAST_PROFILES``,
  ``CRPS_BOUNDS``, ``MAX_DISTRIBUTION_COMPONENTS``), ``condorgame/tracker_evaluator.py`` (scoring),
  ``condorgame/prices.py`` (``PriceStore(window_days=30)``), ``condorgame/utils/distributions.py``
  (6 significant digits).
* ``crunch-synth`` 0.15.0: ``crunch_synth/constants.py`` (the same names, plus ``ASSET_WEIGHTS``),
  ``crunch_synth/volatility.py`` (``VOL_CRPS_*``, ``VOL_SCORING_BLOCKS``), ``crunch_synth/synth_score.py``
  (Synth's ``SCORING_INTERVALS`` and ``TIME_INCREMENT``).

``tests/unit/test_scoring_games.py`` checks every value here against those files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from coordinator_core.scoring.grid_crps import Evaluator

GameName = Literal["condorgame", "crunch_synth"]


@dataclass(frozen=True)
class ForecastProfile:
    """One prediction profile: every ``interval`` seconds, densities over ``horizon`` at each step."""

    horizon: int
    steps: tuple[int, ...]
    interval: int


@dataclass(frozen=True)
class VolatilityRule:
    """crunch-synth's volatility term of 1h scores (``crunch_synth/volatility.py``).

    ``score = price CRPS + k[asset] * V`` where ``V`` is the volatility CRPS of ``num_paths`` price
    paths simulated from the densities (see :mod:`coordinator_core.scoring.ensemble`).
    """

    horizon: int
    assets: frozenset[str]
    lam: float
    blocks: Mapping[str, tuple[int, float]]
    num_paths: int
    k: Mapping[str, float]


@dataclass(frozen=True)
class GameRules:
    """Everything a game's evaluator needs to score a round.

    Attributes
    ----------
    name : {"condorgame", "crunch_synth"}
    package : str
        The PyPI release these rules were read from.
    supported_assets : tuple of str
    forecast_profiles : mapping name -> ForecastProfile
    crps_t : mapping asset -> float
        :math:`t_{\\text{asset}}`, the half-width of the CRPS grid at ``base_step`` and the divisor of a
        round's score.
    base_step : int
        Steps above it widen the grid by :math:`\\sqrt{\\text{step}/\\text{base\\_step}}`.
    num_points : int
        Grid size of ``crps_integral``.
    evaluator : {"condorgame", "crunch_synth"}
        Which ``crps_integral`` (pdf implementation, renormalisation) the game uses.
    max_components : int
        Leaf components allowed per density, nested mixtures included (``validate_distribution``).
    asset_weights : mapping asset -> float, or None
        Weights of the per-asset means in the overall score (condorgame: none, a plain mean).
    volatility : VolatilityRule or None
    store_window_days : int
        Days of prices the tracker's ``PriceStore`` keeps (scoring reads that store).
    prediction_digits : int
        Significant digits ``predict_all`` rounds every parameter and weight to.
    """

    name: GameName
    package: str
    supported_assets: tuple[str, ...]
    forecast_profiles: Mapping[str, ForecastProfile]
    crps_t: Mapping[str, float]
    base_step: int
    num_points: int
    evaluator: Evaluator
    max_components: int
    asset_weights: Mapping[str, float] | None
    volatility: VolatilityRule | None
    store_window_days: int = 30
    prediction_digits: int = 6


#: Both games use the same two profiles (``FORECAST_PROFILES`` in each ``constants.py``).
FORECAST_PROFILES: Mapping[str, ForecastProfile] = MappingProxyType(
    {
        "24h": ForecastProfile(horizon=86_400, steps=(300, 3600, 21_600, 86_400), interval=3600),
        "1h": ForecastProfile(horizon=3600, steps=(60, 300, 900, 1800, 3600), interval=720),
    }
)

CONDORGAME = GameRules(
    name="condorgame",
    package="condorgame==0.5.3",
    supported_assets=("BTC", "ETH", "XAUT", "SOL", "SPYX", "NVDAX", "TSLAX", "AAPLX", "GOOGLX"),
    forecast_profiles=FORECAST_PROFILES,
    crps_t=MappingProxyType(
        {
            "BTC": 1500,
            "SOL": 4,
            "ETH": 80,
            "XAUT": 28,
            "SPYX": 2.4,
            "NVDAX": 2.3,
            "TSLAX": 5.4,
            "AAPLX": 1.7,
            "GOOGLX": 2.3,
        }
    ),
    base_step=300,
    num_points=256,
    evaluator="condorgame",
    max_components=3,
    asset_weights=None,
    volatility=None,
)

#: ``VOL_CRPS_LAMBDA`` and ``VOL_SCORING_BLOCKS``: each block size weighs lambda / (3 sizes x its block count).
VOL_CRPS_LAMBDA = 5.25
VOL_SCORING_BLOCKS: Mapping[str, tuple[int, float]] = MappingProxyType(
    {
        "vol_60min": (3600, VOL_CRPS_LAMBDA / 3),
        "vol_15min": (900, VOL_CRPS_LAMBDA / 12),
        "vol_5min": (300, VOL_CRPS_LAMBDA / 36),
    }
)

CRUNCH_SYNTH = GameRules(
    name="crunch_synth",
    package="crunch-synth==0.15.0",
    supported_assets=(
        "BTC",
        "ETH",
        "XAUT",
        "SOL",
        "SP500",
        "NVDAX",
        "TSLAX",
        "AAPLX",
        "GOOGLX",
        "XRP",
        "HYPE",
        "WTIOIL",
        "SPCX",
    ),
    forecast_profiles=FORECAST_PROFILES,
    crps_t=MappingProxyType(
        {
            "BTC": 1500,
            "SOL": 4,
            "ETH": 80,
            "XAUT": 33,
            "SP500": 21,
            "NVDAX": 2.3,
            "TSLAX": 5.9,
            "AAPLX": 2.8,
            "GOOGLX": 3.6,
            "XRP": 0.04,
            "HYPE": 1.3,
            "WTIOIL": 1.2,
            "SPCX": 6.0,
        }
    ),
    base_step=300,
    num_points=1024,
    evaluator="crunch_synth",
    max_components=3,
    asset_weights=MappingProxyType(
        {
            "BTC": 1.0,
            "ETH": 0.7064366394033871,
            "XAUT": 1.7370922597118699,
            "SOL": 0.6310037175639559,
            "SP500": 3.437935601155441,
            "NVDAX": 1.6028217601617174,
            "TSLAX": 1.6068755936957768,
            "AAPLX": 2.0916380815843123,
            "GOOGLX": 1.6827392777257926,
            "XRP": 0.5658394110809131,
            "HYPE": 0.4784547133706857,
            "WTIOIL": 0.8475062847978935,
            "SPCX": 0.4329342627683478,
        }
    ),
    volatility=VolatilityRule(
        horizon=3600,
        assets=frozenset({"BTC", "ETH", "SOL", "XRP", "HYPE"}),
        lam=VOL_CRPS_LAMBDA,
        blocks=VOL_SCORING_BLOCKS,
        num_paths=1000,
        # VOL_CRPS_K: median live factor from Synth's units to the price CRPS's (Oct 2026)
        k=MappingProxyType(
            {"BTC": 0.00310804, "ETH": 0.00183436, "SOL": 0.00161268, "XRP": 0.00204925, "HYPE": 0.00389259}
        ),
    ),
)

GAMES: Mapping[GameName, GameRules] = MappingProxyType({"condorgame": CONDORGAME, "crunch_synth": CRUNCH_SYNTH})

#: Synth's path resolution per horizon (``synth_score.TIME_INCREMENT``).
SYNTH_TIME_INCREMENT: Mapping[int, int] = MappingProxyType({3600: 60, 86_400: 300})

#: Synth's price-CRPS intervals per time increment (``synth_score.SCORING_INTERVALS``, from
#: ``synth/validator/competition_config.py``).
SYNTH_SCORING_INTERVALS: Mapping[int, Mapping[str, int]] = MappingProxyType(
    {
        300: MappingProxyType({"5min": 300, "30min": 1800, "3hour": 10_800, "24hour_abs": 86_400}),
        60: MappingProxyType(
            {
                "1min": 60,
                "2min": 120,
                "5min": 300,
                "15min": 900,
                "30min": 1800,
                "60min_abs": 3600,
                **{f"0_{m}min_gaps": 60 * m for m in range(5, 61, 5)},
            }
        ),
    }
)
