"""Events for other systems: signed webhooks (Standard Webhooks), HubSpot and Pipedrive, through the outbox."""
