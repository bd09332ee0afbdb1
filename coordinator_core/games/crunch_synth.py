"""Crunch-Synth (PyPI ``crunch-synth`` 0.15.0) as coordinator contracts.

``CRUNCH_CONTRACT=coordinator_core.games.crunch_synth:contract_1h`` (horizon 1 h, steps 1, 5, 15, 30
and 60 min, a round every 12 min, scored with the volatility term as the package's evaluator does
by default) or ``:contract_24h`` (horizon 24 h, steps 5 min, 1 h, 6 h, 24 h, a round every hour).
See :mod:`coordinator_core.games.presets`.
"""

from coordinator_core.games.constants import CRUNCH_SYNTH
from coordinator_core.games.presets import game_contract

contract_1h = game_contract(CRUNCH_SYNTH, "1h")
contract_24h = game_contract(CRUNCH_SYNTH, "24h")
