"""The CrunchDAO prediction games whose scores the coordinator reproduces exactly.

* **Condor Game** (PyPI ``condorgame`` 0.5.3): multi-resolution densities of price increments,
  scored by grid CRPS evaluated with ``densitypdf`` point by point.
* **Crunch-Synth** (PyPI ``crunch-synth`` 0.15.0): the same format, scored by its vectorised grid
  CRPS, plus, on the 1h horizon of five crypto assets, Synth's volatility CRPS of price paths
  simulated from the densities.

:mod:`coordinator_core.games.constants` holds each game's rules (profiles, CRPS bounds, grid size,
weights, limits) with where every value comes from; :mod:`coordinator_core.games.evaluation`
scores rounds as each game's ``TrackerEvaluator`` does, batched over trackers, on top of the
numpy scoring functions of :mod:`coordinator_core.scoring`; :mod:`coordinator_core.games.ticks`
builds the ticks the games' trackers expect.
"""
