"""Signed outgoing webhooks, as the Standard Webhooks specification (standardwebhooks.com) has them.

Each event is a POST of ``{"type", "timestamp", "data"}`` with the headers ``webhook-id`` (the event's
id, the same on every attempt, so that a receiver deduplicates), ``webhook-timestamp`` (this attempt's
time, in seconds: a receiver refuses old ones) and ``webhook-signature`` (``v1,`` + the base64 HMAC-SHA256
of ``id.timestamp.body`` keyed with the secret, given as ``whsec_`` + base64). Signing is the
``standardwebhooks`` library's, the specification's own reference implementation, so a receiver that
verifies with it (README: "Send leads to your CRM") agrees by construction.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime

import httpx
from standardwebhooks import Webhook as Signer

from advisor import AdvisorError
from advisor.outbound.base import EVENT_TYPES, Event, Result, result_of

USER_AGENT = "outsourcing-advisor-webhooks/1"


def check_secret(secret: str) -> str:
    """The secret as the specification writes it, ``whsec_`` + base64 of 24 to 64 random bytes."""
    if not secret.startswith("whsec_"):
        raise AdvisorError("ADVISOR_WEBHOOK_SECRET must be whsec_ followed by base64 (make one with: python3 -c "
                           "\"import base64, secrets; print('whsec_' + base64.b64encode(secrets.token_bytes(32))"
                           ".decode())\")")
    try:
        key = base64.b64decode(secret[len("whsec_"):], validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not 24 <= len(key) <= 64:
        raise AdvisorError("ADVISOR_WEBHOOK_SECRET: after whsec_, base64 of 24 to 64 random bytes is expected")
    return secret


def body_of(event: Event) -> str:
    """The body sent: compact JSON of type, timestamp and data (the same bytes on every attempt)."""
    return json.dumps({"type": event.type, "timestamp": event.timestamp, "data": event.data},
                      ensure_ascii=False, separators=(",", ":"))


def headers_of(event: Event, body: str, secret: str, at: datetime | None = None) -> dict[str, str]:
    """The three signature headers for one attempt at ``at`` (now by default)."""
    moment = at or datetime.now(UTC)
    return {"webhook-id": event.id, "webhook-timestamp": str(int(moment.timestamp())),
            "webhook-signature": Signer(secret).sign(event.id, moment, body)}


class WebhookTarget:
    """One endpoint that receives every event type, signed with its secret."""

    name = "webhook"

    def __init__(self, url: str, secret: str) -> None:
        self.url = url
        self.secret = check_secret(secret)

    def accepts(self, event_type: str) -> bool:
        return event_type in EVENT_TYPES

    def send(self, event: Event, client: httpx.Client) -> Result:
        body = body_of(event)
        headers = {**headers_of(event, body, self.secret), "content-type": "application/json",
                   "user-agent": USER_AGENT}
        return result_of(client.post(self.url, content=body.encode(), headers=headers), "webhook")
