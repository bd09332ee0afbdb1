"""SQL repositories, one per aggregate, over one SQLAlchemy ``Session`` (see ``coordinator_core.ports``).

They own every SQL statement the services need and write set-wise (``coordinator_core.db.bulk``).
None of them commits: ``coordinator_core.db.uow.SqlUnitOfWork`` does.
"""

from coordinator_core.db.repositories.checkpoints import SqlCheckpointRepository
from coordinator_core.db.repositories.configs import SqlConfigRepository
from coordinator_core.db.repositories.feeds import SqlFeedRepository
from coordinator_core.db.repositories.leaderboards import SqlLeaderboardRepository
from coordinator_core.db.repositories.models import SqlModelRepository
from coordinator_core.db.repositories.rounds import SqlRoundRepository
from coordinator_core.db.repositories.scores import SqlScoreRepository

__all__ = [
    "SqlCheckpointRepository",
    "SqlConfigRepository",
    "SqlFeedRepository",
    "SqlLeaderboardRepository",
    "SqlModelRepository",
    "SqlRoundRepository",
    "SqlScoreRepository",
]
