"""The Condor Game (PyPI ``condorgame`` 0.5.3) as coordinator contracts.

``CRUNCH_CONTRACT=coordinator_core.games.condor:contract_1h`` (horizon 1 h, steps 1, 5, 15, 30 and
60 min, a round every 12 min) or ``:contract_24h`` (horizon 24 h, steps 5 min, 1 h, 6 h, 24 h, a
round every hour). The package needs Python >= 3.12: its trackers run as model nodes in
``.venv-condor`` (``examples/games/condor``). See :mod:`coordinator_core.games.presets`.
"""

from coordinator_core.games.constants import CONDORGAME
from coordinator_core.games.presets import game_contract

contract_1h = game_contract(CONDORGAME, "1h")
contract_24h = game_contract(CONDORGAME, "24h")
