"""Error tree of the coordinator.

::

    CoordinatorError
    ├── PermanentError            fail fast, never retried; the message names what to fix
    │   ├── ConfigurationError    a bad setting, contract or dotted path
    │   ├── ValidationError       bad input (model output, dataset row, request)
    │   ├── DataError             stored data that cannot be used as asked
    │   ├── NotFound              the thing asked for does not exist (the API's 404)
    │   ├── Conflict              its state does not allow the change asked (the API's 409)
    │   ├── FeedPermanentError    an upstream refused for good (unknown symbol, 401, 451)
    │   └── ScoringFunctionFailing  the competition's scoring function failed on too many predictions
    └── TransientError            retried by Prefect (network, timeouts, lock conflicts)
        └── FeedUnavailable       a feed source could not answer now
            └── RateLimited       the upstream asked us to wait (429/418, Retry-After)

Prefect tasks retry only ``TransientError`` (see ``tasks.policy``).
"""

from __future__ import annotations


class CoordinatorError(Exception):
    """Base of every error raised on purpose by the coordinator."""


class PermanentError(CoordinatorError):
    """An error that a retry cannot fix."""


class ConfigurationError(PermanentError):
    """A setting, contract or extension point is invalid; the message names it."""


class ValidationError(PermanentError):
    """Input that does not follow the documented shape."""


class DataError(PermanentError):
    """Stored or shipped data that cannot be used as asked."""


class NotFound(PermanentError):
    """The thing asked for does not exist."""


class Conflict(PermanentError):
    """The thing exists, but its state does not allow the change asked; the message says why."""


class TransientError(CoordinatorError):
    """An error worth retrying: network, timeout, lock conflict."""


class FeedPermanentError(PermanentError):
    """An upstream feed refused in a way no retry fixes; the message says what to change."""


class ScoringFunctionFailing(PermanentError):
    """The competition's scoring function (``SCORING_FUNCTION``), not the models, failed on more than
    ``SCORING_FAILURE_LIMIT`` of the predictions it was given; the message says why (the run's
    scores are stored: only the run's state is Failed)."""


class FeedUnavailable(TransientError):
    """A feed source did not answer or answered with a temporary failure."""


class RateLimited(FeedUnavailable):
    """The upstream asked us to slow down; ``retry_after`` is in seconds when it said."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
