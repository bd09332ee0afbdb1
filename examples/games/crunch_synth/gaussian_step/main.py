"""Crunch-Synth's example tracker, unmodified: ``crunch_synth.examples.exampletracker.GaussianStepTracker``.

A model node instantiates the first subclass of the base class that is defined *outside* the base
class's package, so a bare import of the package's own class is refused ("No Inherited class
found"): this empty subclass only gives the class a home in this folder. It overrides nothing.
"""

from crunch_synth.examples.exampletracker import GaussianStepTracker


class ExampleGaussianStepTracker(GaussianStepTracker):
    """The package's GaussianStepTracker, as is."""
