"""Prefect retries only transient errors (the task bodies are tested through the services)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlalchemy.exc import OperationalError

from coordinator_core.errors import (
    ConfigurationError,
    FeedUnavailable,
    TransientError,
    ValidationError,
)
from tasks.policy import policy, retry_transient


class _State:
    def __init__(self, error: BaseException | None) -> None:
        self.error = error

    def result(self) -> None:
        if self.error is not None:
            raise self.error


@pytest.mark.parametrize(
    "error",
    [
        TransientError("lock"),
        FeedUnavailable("503"),
        TimeoutError(),
        ConnectionError(),
        OperationalError("SELECT 1", {}, Exception("database is locked")),
    ],
)
def test_transient_errors_are_retried(error: BaseException) -> None:
    assert retry_transient(None, SimpleNamespace(), _State(error)) is True


@pytest.mark.parametrize(
    "error", [ConfigurationError("FEED_SOURCE"), ValidationError("bad"), ValueError("x"), KeyError("k")]
)
def test_permanent_errors_are_not_retried(error: BaseException) -> None:
    assert retry_transient(None, SimpleNamespace(), _State(error)) is False


def test_policy_never_caches_and_sets_the_condition() -> None:
    from prefect.cache_policies import NO_CACHE

    options = policy(3)
    assert options["cache_policy"] is NO_CACHE and options["retries"] == 3
    assert options["retry_condition_fn"] is retry_transient
    assert options["retry_delay_seconds"] == [1, 5, 15]
