"""The automation that notifies on the coordinator's alerts (the Prefect events of ``tasks.alerts``).

::

    # a notification block first (Slack, e-mail, ..., or any webhook), e.g. in Python:
    #   CustomWebhookNotificationBlock(name="ops", url="https://hooks.example.com/...",
    #                                  json_data={"text": "{{subject}}\\n{{body}}"}).save("coordinator-alerts")
    PREFECT_API_URL=http://prefect-host:4200/api python -m deployments.alerts --block coordinator-alerts

One reactive ``EventTrigger`` on the four event names, one firing per event and resource
(``for_each: prefect.resource.id``), and a ``SendNotification`` action whose subject and body are
rendered from the triggering event (its name, resource and payload).
"""

from __future__ import annotations

import argparse
from datetime import timedelta
from typing import cast
from uuid import UUID

from prefect.automations import Automation, EventTrigger, Posture, SendNotification

from tasks.alerts import EVENTS

NAME = "coordinator-alerts"
SUBJECT = "coordinator alert: {{ event.event }} on {{ event.resource.id }}"
BODY = (
    "{{ event.event }} at {{ event.occurred }}\n"
    "resource: {{ event.resource.id }}\n"
    "{% for key, value in event.payload.items() %}{{ key }}: {{ value }}\n{% endfor %}"
)


def alert_automation(block_document_id: UUID, name: str = NAME) -> Automation:
    """The automation, not yet created: ``alert_automation(block_id).create()``."""
    return Automation(
        name=name,
        description="Notify on every coordinator alert: unscored rounds, stale feeds, gated checkpoints, failing models",
        trigger=EventTrigger(
            expect=set(EVENTS),
            match={"prefect.resource.id": "coordinator.*"},
            for_each={"prefect.resource.id"},
            posture=Posture.Reactive,
            threshold=1,
            within=timedelta(0),
        ),
        actions=[SendNotification(block_document_id=block_document_id, subject=SUBJECT, body=BODY)],
    )


def main() -> None:
    from prefect.blocks.core import Block

    parser = argparse.ArgumentParser(description="Create the coordinator's alert automation on PREFECT_API_URL.")
    parser.add_argument("--block", required=True, help="name of a saved notification block")
    parser.add_argument("--name", default=NAME, help="automation name")
    args = parser.parse_args()
    block = cast(Block, Block.load(args.block))
    if block._block_document_id is None:
        raise SystemExit(f"block {args.block!r} has no document id")
    automation = cast(Automation, alert_automation(block._block_document_id, args.name).create())
    print(f"automation {automation.name} ({automation.id}) notifies through block {args.block}")


if __name__ == "__main__":
    main()
