"""The automation shipped as YAML (``deployments/alerts.yaml``, for ``prefect automation create``) is
the one ``deployments.alerts`` creates (and ``tests/e2e/test_alerts.py`` shows firing)."""

from __future__ import annotations

from uuid import UUID

import yaml

from tests.conftest import PROJECT_DIR


def test_the_yaml_automation_is_the_python_one() -> None:
    from prefect.events.schemas.automations import AutomationCore

    from deployments.alerts import alert_automation
    from tasks.alerts import EVENTS

    data = yaml.safe_load((PROJECT_DIR / "deployments" / "alerts.yaml").read_text())
    (item,) = data["automations"]
    from_yaml = AutomationCore.model_validate(item)
    block = UUID(int=0)
    from_python = alert_automation(block)
    assert from_yaml.model_dump(exclude={"id"}) == AutomationCore.model_validate(
        from_python.model_dump(exclude={"id"})
    ).model_dump(exclude={"id"})
    assert from_yaml.trigger.expect == set(EVENTS)  # type: ignore[union-attr]
    assert {e.split(".")[1] for e in EVENTS} == {"round", "feed", "checkpoint", "model"}
