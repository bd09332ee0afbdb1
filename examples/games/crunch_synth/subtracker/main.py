"""Crunch-Synth's sub-tracker example, unmodified: ``crunch_synth.examples.subtracker_example.MyTracker``.

It routes the 1 h and 24 h horizons to a ``SubTracker`` that trains one scikit-learn
``LinearRegression`` per (horizon, asset) in a background thread (``schedule(..., immediate=True)``:
on the first tick, then every 5 days of data time), pickles them into ``resources/`` of the working
directory and loads them back at start. Until the first training has finished (it needs prices
for every one of crunch_synth's SUPPORTED_ASSETS) it answers with the historical volatility.

The empty subclass is there because a model node only instantiates classes defined outside the
base class's package (see ../gaussian_step/main.py). It overrides nothing.
"""

from crunch_synth.examples.subtracker_example import MyTracker


class ExampleSubTracker(MyTracker):
    """The package's MyTracker, as is."""
