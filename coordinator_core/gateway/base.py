"""The ``ModelGateway`` protocol: how the coordinator reaches participant models."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from coordinator_core.errors import ConfigurationError


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
    def models(self) -> list[ModelInfo]:
        """Every model registered now, answering or not."""
        ...

    def tick(self, data: dict[str, Any]) -> dict[str, CallResult]:
        """Call ``tick(data)`` on every running model, concurrently, with the per-call timeout."""
        ...

    def predict(self, subject: str, horizon_seconds: int, step_seconds: int) -> dict[str, CallResult]:
        """Call ``predict`` on every running model; models that gave no answer are missing."""
        ...

    def close(self) -> None: ...


def create_gateway(settings: Any, contract: Any = None) -> ModelGateway:
    """The backend named by ``MODEL_GATEWAY``, calling models as ``contract.calls`` says
    (default: the contract of ``CRUNCH_CONTRACT``)."""
    if contract is None:
        from coordinator_core.contract import load_contract

        contract = load_contract(settings)
    if settings.model_gateway == "local":
        from coordinator_core.gateway.local import LocalGateway

        return LocalGateway(
            settings.models_path,
            settings.model_base_classname,
            settings.local_model_timeout_seconds,
            calls=contract.calls,
        )
    if settings.model_gateway == "model_runner":
        from coordinator_core.gateway.model_runner import ModelRunnerGateway

        return ModelRunnerGateway.from_settings(settings, contract.calls)
    raise ConfigurationError(
        f"MODEL_GATEWAY: unknown backend {settings.model_gateway!r}; use 'local' or 'model_runner'"
    )
