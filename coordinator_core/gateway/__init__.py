"""Model gateways behind the ``ModelGateway`` protocol."""

from coordinator_core.gateway.base import (
    CallResult,
    CallStatus,
    ModelGateway,
    ModelInfo,
    create_gateway,
)

__all__ = ["CallResult", "CallStatus", "ModelGateway", "ModelInfo", "create_gateway"]
