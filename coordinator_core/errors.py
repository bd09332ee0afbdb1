"""Error tree of the coordinator.

::

    CoordinatorError
    ├── PermanentError            fail fast, never retried; the message names what to fix
    │   ├── ConfigurationError    a bad setting, contract or dotted path
    │   ├── ValidationError       bad input (model output, dataset row, request)
    │   └── DataError             stored data that cannot be used as asked
    └── TransientError            retried by Prefect (network, timeouts, lock conflicts)
        └── FeedUnavailable       a feed source could not answer now

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


class TransientError(CoordinatorError):
    """An error worth retrying: network, timeout, lock conflict."""


class FeedUnavailable(TransientError):
    """A feed source did not answer or answered with a temporary failure."""
