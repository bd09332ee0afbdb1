"""One router per resource. Routers whose payloads carry the contract's window scores are built
per app (``build_router(windows)``) so that the OpenAPI schema names those fields exactly."""
