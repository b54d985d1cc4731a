"""Order webhooks: verify the signature, read the order (generic, Shopify or WooCommerce), attribute, store once.

Signatures:
- generic (`POST /hooks/order`): header `X-Drainage-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
  "<t>.<raw body>">`; a timestamp outside `tracker.replay_window` is a replay (401).
- Shopify (`POST /hooks/order/shopify`): `X-Shopify-Hmac-Sha256`, base64 HMAC-SHA256 of the raw body.
- WooCommerce (`POST /hooks/order/woocommerce`): `X-WC-Webhook-Signature`, base64 HMAC-SHA256 of the raw body.
Shopify and WooCommerce sign no timestamp; a replayed delivery is harmless there because orders are idempotent
on their id (the first one wins, nothing is written twice).

Attribution: the click id (exact: campaign, channel, item, variant of the clicked link), else UTM tags
as the links carry them (`utm_campaign`: the campaign's `utm.campaign`, by default its id; `utm_source`: the
channel instance; `utm_content`: the variant), else none (the order is kept, so reports can show unattributed revenue).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

from sqlalchemy import Engine, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from drainage.store.db import session
from drainage.store.models import Click, Link, Order
from drainage.store.rollups import add_order

_CANDIDATES = 1000
"""Links read to attribute an order by its UTM tags."""


class BadOrder(ValueError):
    """The body is not an order we can read (answered 422)."""


@dataclass
class IncomingOrder:
    """An order as the store reported it, before attribution."""

    order_id: str
    amount: Decimal
    currency: str
    source: str
    click_id: str | None = None
    utm: dict[str, str] = field(default_factory=dict)
    ordered_at: datetime | None = None


# -- signatures --------------------------------------------------------------------------------------------------
def sign_generic(secret: str, body: bytes, timestamp: int) -> str:
    """The X-Drainage-Signature header value for `body` sent at `timestamp` (what a store integration sends)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_generic(secret: str, body: bytes, header: str | None, now: float, window: float) -> str | None:
    """None when valid; else why not (never echoing the header)."""
    if not header:
        return "missing X-Drainage-Signature"
    parts = dict(p.strip().split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts.get("t", ""))
    except ValueError:
        return "malformed signature header"
    expected = sign_generic(secret, body, timestamp).split("v1=", 1)[1]
    if not hmac.compare_digest(expected, parts.get("v1", "")):
        return "bad signature"
    if abs(now - timestamp) > window:
        return "timestamp outside the replay window"
    return None


def sign_base64(secret: str, body: bytes) -> str:
    """Base64 HMAC-SHA256 of the body, as Shopify and WooCommerce sign their webhooks."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def verify_base64(secret: str, body: bytes, header: str | None) -> str | None:
    if not header:
        return "missing signature header"
    if not hmac.compare_digest(sign_base64(secret, body), header.strip()):
        return "bad signature"
    return None


# -- reading orders ----------------------------------------------------------------------------------------------
def _amount(value: Any) -> Decimal:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise BadOrder(f"amount must be a number, got {str(value)[:40]!r}") from None
    if not amount.is_finite() or amount < 0 or amount >= Decimal("1e12"):
        raise BadOrder("amount must be a finite number between 0 and 10^12")
    return amount.quantize(Decimal("0.01"))


def _when(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _from_url(url: str | None, click_param: str) -> tuple[str | None, dict[str, str]]:
    if not url:
        return None, {}
    query = dict(parse_qsl(urlsplit(str(url)).query))
    return query.get(click_param), {k: v for k, v in query.items() if k.startswith("utm_")}


def _text(name: str, value: Any) -> str:
    if isinstance(value, dict | list):
        raise BadOrder(f"{name} must be a string")
    return str(value)[:200]


def _order_id(value: Any) -> str:
    if isinstance(value, dict | list):
        raise BadOrder("order_id must be a string or a number")
    order_id = str(value if value is not None else "").strip()
    if not order_id or len(order_id) > 200:
        raise BadOrder("order_id is required (at most 200 characters)")
    return order_id


def read_generic(data: dict[str, Any], click_param: str) -> IncomingOrder:
    """{order_id, amount, currency, click_id?, utm_source?.. or utm: {...}, landing_url?, created_at?}"""
    utm = {k: _text(k, v) for k, v in data.items() if k.startswith("utm_") and v}
    tags = data.get("utm") or {}
    if not isinstance(tags, dict):
        raise BadOrder("utm must be an object of tags, such as {\"campaign\": \"spring\"}")
    utm.update({f"utm_{k}" if not k.startswith("utm_") else k: _text(f"utm.{k}", v) for k, v in tags.items() if v})
    click_id = _text("click_id", data.get("click_id")) if data.get("click_id") else None
    landing_url = data.get("landing_url")
    if landing_url is not None and not isinstance(landing_url, str):
        raise BadOrder("landing_url must be a string")
    landing_click, landing_utm = _from_url(data.get("landing_url"), click_param)
    return IncomingOrder(order_id=_order_id(data.get("order_id")), amount=_amount(data.get("amount", 0)),
                         currency=str(data.get("currency") or "")[:8].upper(), source="generic",
                         click_id=click_id or landing_click, utm=landing_utm | utm,
                         ordered_at=_when(data.get("created_at")))


def read_shopify(data: dict[str, Any], click_param: str) -> IncomingOrder:
    """A Shopify `orders/create` payload: the click id from a cart attribute or the landing page URL."""
    attributes = {str(a.get("name")): str(a.get("value")) for a in data.get("note_attributes") or []
                  if isinstance(a, dict)}
    click_id, utm = _from_url(data.get("landing_site"), click_param)
    return IncomingOrder(order_id=_order_id(data.get("id")), amount=_amount(data.get("total_price", 0)),
                         currency=str(data.get("currency") or "")[:8].upper(), source="shopify",
                         click_id=attributes.get(click_param) or click_id, utm=utm,
                         ordered_at=_when(data.get("created_at")))


def read_woocommerce(data: dict[str, Any], click_param: str) -> IncomingOrder:
    """A WooCommerce `order.created` payload, with its built-in order attribution (meta `_wc_order_attribution_*`)."""
    meta = {str(m.get("key")): str(m.get("value")) for m in data.get("meta_data") or [] if isinstance(m, dict)}
    click_id, utm = _from_url(meta.get("_wc_order_attribution_session_entry"), click_param)
    for name in ("source", "medium", "campaign", "content", "term", "id"):
        value = meta.get(f"_wc_order_attribution_utm_{name}")
        if value and value != "(none)":
            utm[f"utm_{name}"] = value
    return IncomingOrder(order_id=_order_id(data.get("id")), amount=_amount(data.get("total", 0)),
                         currency=str(data.get("currency") or "")[:8].upper(), source="woocommerce",
                         click_id=meta.get(click_param) or click_id, utm=utm,
                         ordered_at=_when(data.get("date_created_gmt") or data.get("date_created")))


READERS = {"generic": read_generic, "shopify": read_shopify, "woocommerce": read_woocommerce}


# -- attribution and storage -------------------------------------------------------------------------------------
def attribute(engine: Engine, incoming: IncomingOrder) -> Order:
    """Build the Order row: by click id when the click is known, else by UTM tags, else unattributed."""
    order = Order(order_id=incoming.order_id, source=incoming.source, amount=incoming.amount,
                  currency=incoming.currency, click_id=(incoming.click_id or None) and incoming.click_id[:32],
                  ordered_at=incoming.ordered_at or datetime.now(UTC))
    with session(engine) as s:
        if order.click_id:
            link = s.execute(select(Link).join(Click, Click.code == Link.code)  # type: ignore[arg-type]
                             .where(Click.click_id == order.click_id)).scalars().first()
            if link is not None:
                order.code, order.campaign, order.channel = link.code, link.campaign, link.channel
                order.item, order.variant, order.attributed_by = link.item, link.variant, "click"
                return order
        link = _link_by_tags(s, incoming.utm)
        if link is not None:
            tags = _tags(link.target)
            order.campaign, order.attributed_by = link.campaign, "utm"
            source, content = incoming.utm.get("utm_source"), incoming.utm.get("utm_content")
            order.channel = link.channel if source and tags.get("utm_source") == source else source
            order.variant = link.variant if content and tags.get("utm_content") == content else content
    return order


def _tags(target: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(target).query))


def _link_by_tags(s: Session, utm: dict[str, str]) -> Link | None:
    """The link whose target carries the order's `utm_campaign` (as rendered: a campaign's `utm.campaign`
    overrides its id), preferring one whose `utm_source` and `utm_content` match too; a link that carries no
    campaign tag matches by its campaign id."""
    campaign = utm.get("utm_campaign")
    if not campaign:
        return None
    escaped = quote(campaign, safe="").replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    carried = Link.target.like(f"%utm_campaign={escaped}%", escape="\\")  # type: ignore[attr-defined]
    candidates = s.execute(select(Link).where(or_(Link.campaign == campaign, carried))
                           .limit(_CANDIDATES)).scalars().all()
    best, best_score = None, -1
    for link in candidates:
        tags = _tags(link.target)
        if tags.get("utm_campaign", link.campaign) != campaign:
            continue
        score = 2 * (tags.get("utm_source") == utm.get("utm_source"))
        score += tags.get("utm_content") == utm.get("utm_content")
        if score > best_score:
            best, best_score = link, score
    return best


def store(engine: Engine, order: Order) -> bool:
    """Insert the order and add it to the daily order rollup, in one transaction; False when an order with this id
    is already stored (idempotent, nothing changes)."""
    with session(engine) as s:
        if s.get(Order, order.order_id) is not None:
            return False
        s.add(order)
        try:
            s.flush()
            add_order(s.connection(), order)
            s.commit()
        except IntegrityError:  # the same order arrived twice at once
            s.rollback()
            return False
    return True
