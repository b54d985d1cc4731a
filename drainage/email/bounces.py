"""Bounces and complaints reported by the relay (`POST /hooks/bounce`): read, then suppress.

Two shapes are read:
- Amazon SES through SNS: the SNS envelope `{"Type": "Notification", "Message": "<JSON>"}` whose message has
  `notificationType` `Bounce` (with `bounce.bounceType` `Permanent` or `Transient` and
  `bounce.bouncedRecipients[].emailAddress`) or `Complaint` (`complaint.complainedRecipients[].emailAddress`).
  An SNS `SubscriptionConfirmation` is answered with the URL to visit (drainage fetches nothing itself).
- Generic JSON: `{"type": "bounce" | "complaint", "email": "...", "hard": true, "detail": "..."}`, or
  `{"events": [ ... ]}` with several of those.

Hard bounces and complaints suppress the address; soft (transient) bounces are counted and ignored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from drainage.email.addresses import comparable
from drainage.store.email_models import SuppressionReason


class BadBounce(ValueError):
    """The body is not a bounce report we can read (answered 422)."""


@dataclass(frozen=True)
class BounceEvent:
    email: str
    reason: str | None  # a SuppressionReason, or None for a soft bounce (nothing to do)
    detail: str


def read(data: Any) -> tuple[list[BounceEvent], str | None]:
    """The events in a webhook body, and for an SNS subscription confirmation the URL to confirm it."""
    if not isinstance(data, dict):
        raise BadBounce("expected a JSON object")
    if data.get("Type") == "SubscriptionConfirmation":
        return [], str(data.get("SubscribeURL") or "")
    if data.get("Type") == "Notification":
        try:
            message = json.loads(data.get("Message") or "")
        except (TypeError, ValueError):
            raise BadBounce("SNS Message is not JSON") from None
        return _ses(message), None
    if "notificationType" in data or "eventType" in data:
        return _ses(data), None
    events = data.get("events", [data])
    if not isinstance(events, list):
        raise BadBounce("'events' must be a list")
    return [_generic(e) for e in events], None


def _ses(message: Any) -> list[BounceEvent]:
    if not isinstance(message, dict):
        raise BadBounce("SES notification is not an object")
    kind = message.get("notificationType") or message.get("eventType")
    if kind == "Bounce":
        bounce = message.get("bounce") or {}
        hard = bounce.get("bounceType") == "Permanent"
        detail = f"SES {bounce.get('bounceType', '?')}/{bounce.get('bounceSubType', '?')}"
        return [BounceEvent(_address(r.get("emailAddress")), SuppressionReason.BOUNCED if hard else None,
                            f"{detail}: {r.get('diagnosticCode', '')}"[:500])
                for r in bounce.get("bouncedRecipients") or [] if isinstance(r, dict)]
    if kind == "Complaint":
        complaint = message.get("complaint") or {}
        return [BounceEvent(_address(r.get("emailAddress")), SuppressionReason.COMPLAINED,
                            f"SES complaint: {complaint.get('complaintFeedbackType', 'abuse')}")
                for r in complaint.get("complainedRecipients") or [] if isinstance(r, dict)]
    return []  # deliveries, opens...: nothing to suppress


def _generic(event: Any) -> BounceEvent:
    if not isinstance(event, dict):
        raise BadBounce("each event must be an object")
    kind = event.get("type")
    if kind not in ("bounce", "complaint"):
        raise BadBounce("'type' must be 'bounce' or 'complaint'")
    email = _address(event.get("email"))
    detail = str(event.get("detail") or "")[:500]
    if kind == "complaint":
        return BounceEvent(email, SuppressionReason.COMPLAINED, detail or "complaint")
    hard = event.get("hard", True) is not False
    return BounceEvent(email, SuppressionReason.BOUNCED if hard else None, detail or "bounce")


def _address(value: Any) -> str:
    text = str(value or "").strip()
    if "@" not in text or len(text) > 320:
        raise BadBounce("each event needs an email address")
    if "<" in text and text.endswith(">"):  # 'Name <addr>'
        text = text[text.rindex("<") + 1:-1]
    return comparable(text)
