"""The Condor Game's benchmark tracker, unmodified: ``condorgame.examples.benchmarktracker.GaussianStepTracker``.

condorgame needs Python >= 3.12: ``model.json`` names the interpreter its model node runs under
(``.venv-condor/bin/python``, made by ``make env``). The empty subclass is there because a model
node only instantiates classes defined outside the base class's package. It overrides nothing.
"""

from condorgame.examples.benchmarktracker import GaussianStepTracker


class BenchmarkGaussianStepTracker(GaussianStepTracker):
    """The package's benchmark GaussianStepTracker, as is."""
