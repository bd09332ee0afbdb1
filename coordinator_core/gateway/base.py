"""The ``ModelGateway`` protocol: how the coordinator reaches participant models."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from coordinator_core.games.ticks import TickCursor


class CallStatus(StrEnum):
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    TIMEOUT = "TIMEOUT"


@dataclass(frozen=True)
class CallResult:
    """One model's answer to one call. ``exec_time_ms`` is milliseconds of wall time."""

    status: CallStatus
    output: Any = None
    detail: str | None = None
    exec_time_ms: float = 0.0


@dataclass(frozen=True)
class ModelInfo:
    """A model the gateway knows; ``state`` RUNNING means it is expected to answer."""

    model_id: str
    name: str
    player_id: str
    player_name: str
    deployment_id: str = "local"
    state: str = "RUNNING"
    wallet: str | None = None
    hotkey: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


class ModelGateway(Protocol):
    """How the services reach the models; backends: ``gateway.local`` (in-process) and
    ``gateway.model_runner`` (real model nodes), built by ``coordinator_core.bootstrap``."""

    #: What each model has been sent by price ticks (``games.ticks``), kept for this gateway's
    #: lifetime: a new process starts with none, so every model first gets the history window.
    tick_cursors: dict[str, TickCursor]
    #: Set by a backtest (virtual time): every call is waited for up to this many seconds instead of
    #: the live deadline, so results do not depend on the machine's load; an answer slower than the
    #: live deadline is kept and flagged ``late`` in its ``detail``. ``None``: the live deadline.
    virtual_timeout_seconds: float | None

    @property
    def load_errors(self) -> dict[str, str]:
        """Why a registered model cannot be called now (it is ABSENT from the round), by model id."""
        ...

    def models(self) -> list[ModelInfo]:
        """Every model registered now, answering or not."""
        ...

    def tick(self, data: dict[str, Any], model_ids: Collection[str] | None = None) -> dict[str, CallResult]:
        """Call ``tick(data)`` on every running model (or only on ``model_ids``), concurrently, with
        the per-call timeout."""
        ...

    def predict(
        self, subject: str, horizon_seconds: int, step_seconds: int, steps: list[int] | None = None
    ) -> dict[str, CallResult]:
        """Call ``predict`` on every running model; models that gave no answer are missing. ``steps``
        is passed when the contract's predict call takes it (the games' ``predict_all``)."""
        ...

    def close(self) -> None: ...


def checked_steps(method: Any, steps: list[int] | None) -> list[int]:
    """The ``steps`` value of a predict call that takes it: a list of integer step seconds."""
    if steps is None or any(isinstance(step, bool) or not isinstance(step, int) for step in steps):
        from coordinator_core.errors import ConfigurationError

        raise ConfigurationError(
            f"contract calls: {method.name} takes 'steps', a list of integer step seconds; got {steps!r:.80}"
        )
    return list(steps)


def late(elapsed_ms: float, deadline_seconds: float) -> str | None:
    """The ``detail`` of an answer that came after the live deadline (kept in virtual time)."""
    if elapsed_ms <= deadline_seconds * 1000:
        return None
    return f"late: answered in {elapsed_ms:,.0f} ms, after the live deadline of {deadline_seconds:g} s"
