"""The targets the settings configure, and which events each takes (what the outbox queues for it)."""

from __future__ import annotations

from collections.abc import Mapping

from advisor.outbound.base import EVENT_TYPES, Target
from advisor.settings import Outbound


def targets_of(outbound: Outbound) -> dict[str, Target]:
    """A signed webhook endpoint, HubSpot and Pipedrive, as far as they are configured."""
    found: dict[str, Target] = {}
    if outbound.webhook_url and outbound.webhook_secret:
        from advisor.outbound.webhooks import WebhookTarget

        found["webhook"] = WebhookTarget(outbound.webhook_url, outbound.webhook_secret)
    if outbound.hubspot_token:
        from advisor.outbound.hubspot import HubSpot

        found["hubspot"] = HubSpot(outbound.hubspot_token, outbound.hubspot_url, outbound.dashboard_url)
    if outbound.pipedrive_token:
        from advisor.outbound.pipedrive import Pipedrive

        found["pipedrive"] = Pipedrive(outbound.pipedrive_token, outbound.pipedrive_url, outbound.dashboard_url)
    return found


def takes(targets: Mapping[str, Target]) -> dict[str, frozenset[str]]:
    """What the outbox queues for each target: the event types it accepts."""
    return {name: frozenset(t for t in EVENT_TYPES if target.accepts(t)) for name, target in targets.items()}
