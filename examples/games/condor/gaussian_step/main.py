"""The Condor Game's example tracker, unmodified: ``condorgame.examples.exampletracker.GaussianStepTracker``.

condorgame needs Python >= 3.12: ``model.json`` names the interpreter its model node runs under
(``.venv-condor/bin/python``, made by ``make env``). The empty subclass is there because a model
node only instantiates classes defined outside the base class's package. It overrides nothing.
"""

from condorgame.examples.exampletracker import GaussianStepTracker


class ExampleGaussianStepTracker(GaussianStepTracker):
    """The package's GaussianStepTracker, as is."""
