"""Model gateways: the ``ModelGateway`` protocol (``base``) and its backends (``local``,
``model_runner``). The backend named by ``MODEL_GATEWAY`` is built by ``coordinator_core.bootstrap``."""

from coordinator_core.gateway.base import CallResult, CallStatus, ModelGateway, ModelInfo

__all__ = ["CallResult", "CallStatus", "ModelGateway", "ModelInfo"]
