"""Order webhooks: signatures, replays, idempotency, attribution by click id and by UTM tags (the tracker's clicks
are written by a thread here; the writer process has its own tests in test_tracker_clicks.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
from sqlmodel import select

from drainage.store.db import make_engine, session
from drainage.store.models import Order
from drainage.tracker.orders import sign_base64, sign_generic
from tests.databases import database_url
from tests.tracker_helpers import SECRET, add_link, load, run, running

TARGET = "https://shop.example.com/p/scarf?utm_source=social&utm_medium=social&utm_campaign=spring&utm_content=a"


def _orders(root: Path) -> list[Order]:
    engine = make_engine(database_url(root))
    with session(engine) as s:
        rows = list(s.exec(select(Order)).all())
    engine.dispose()
    return rows


async def _post(client: httpx.AsyncClient, order: dict, *, secret: str = SECRET, at: float | None = None,
                path: str = "/hooks/order", header: str | None = None) -> httpx.Response:
    body = json.dumps(order).encode()
    if header is None:
        signature = sign_generic(secret, body, int(time.time() if at is None else at))
        headers = {"x-drainage-signature": signature}
    else:
        headers = {header: sign_base64(secret, body)}
    return await client.post(path, content=body, headers={**headers, "content-type": "application/json"})


def test_an_order_with_a_click_id_is_attributed_to_the_clicked_link_once(tmp_path: Path) -> None:
    config = load(tmp_path, writer="thread")
    code = add_link(config, TARGET, campaign="spring", channel="telegram-main", item="scarf", variant="b")

    async def scenario() -> None:
        async with running(config) as (_tracker, client):
            location = (await client.get(f"/c/{code}")).headers["location"]
            click_id = location.rsplit("dr_click=", 1)[1]  # the click is still in memory: the hook flushes it
            order = {"order_id": "1001", "amount": "59.90", "currency": "eur", "click_id": click_id}
            first = await _post(client, order)
            assert first.status_code == 201, first.text
            assert first.json() == {"order_id": "1001", "result": "stored", "attributed_by": "click",
                                    "campaign": "spring", "channel": "telegram-main", "variant": "b"}
            again = await _post(client, {**order, "amount": "1.00"})  # the store retried its webhook
            assert again.status_code == 200 and again.json()["result"] == "duplicate"

    run(scenario)
    [order] = _orders(tmp_path)
    assert (order.order_id, str(order.amount), order.currency, order.item, order.code) == (
        "1001", "59.90", "EUR", "scarf", code)


def test_bad_signatures_and_replays_are_refused_and_nothing_is_written(tmp_path: Path) -> None:
    config = load(tmp_path, writer="thread")
    add_link(config, TARGET)
    order = {"order_id": "2002", "amount": 10, "currency": "USD"}

    async def scenario() -> None:
        async with running(config) as (_tracker, client):
            assert (await _post(client, order, secret="wrong")).status_code == 401
            assert (await _post(client, order, at=time.time() - 3600)).status_code == 401  # replay, 1 h old
            assert (await _post(client, order, at=time.time() + 3600)).status_code == 401
            unsigned = await client.post("/hooks/order", json=order)
            assert unsigned.status_code == 401 and "missing" in unsigned.json()["error"]
            body = json.dumps(order).encode()
            good = sign_generic(SECRET, body, int(time.time()))
            tampered = await client.post("/hooks/order", content=body.replace(b"10", b"99"),
                                         headers={"x-drainage-signature": good})
            assert tampered.status_code == 401
            assert (await _post(client, order, header="x-shopify-hmac-sha256", secret="wrong",
                                path="/hooks/order/shopify")).status_code == 401
            assert SECRET not in (await client.get("/metrics")).text

    run(scenario)
    assert _orders(tmp_path) == []


def test_invalid_bodies_and_missing_secret(tmp_path: Path) -> None:
    config = load(tmp_path, writer="thread")

    async def scenario() -> None:
        async with running(config) as (_tracker, client):
            assert (await _post(client, {"amount": 5})).status_code == 422  # no order id
            assert (await _post(client, {"order_id": "x", "amount": "lots"})).status_code == 422
            assert (await _post(client, {"order_id": "x", "amount": "NaN"})).status_code == 422
            body = b"not json"
            response = await client.post("/hooks/order", content=body,
                                         headers={"x-drainage-signature": sign_generic(SECRET, body, int(time.time()))})
            assert response.status_code == 422
            huge = await client.post("/hooks/order", content=b"x" * (1 << 21))
            assert huge.status_code == 413
            assert (await client.post("/hooks/order/magento", content=b"{}")).status_code == 404

    run(scenario)
    unconfigured = load(tmp_path, environ={}, writer="thread")

    async def off() -> None:
        async with running(unconfigured) as (_tracker, client):
            response = await _post(client, {"order_id": "1", "amount": 1})
            assert response.status_code == 503 and "order_secret" in response.json()["error"]

    run(off)
    assert _orders(tmp_path) == []


def test_utm_tags_attribute_an_order_without_a_click_id(tmp_path: Path) -> None:
    config = load(tmp_path, writer="thread")
    add_link(config, TARGET, campaign="spring", channel="social", variant="a")

    async def scenario() -> None:
        async with running(config) as (_tracker, client):
            by_utm = await _post(client, {"order_id": "3003", "amount": 20, "currency": "USD",
                                          "utm": {"source": "social", "campaign": "spring", "content": "a"}})
            assert by_utm.json()["attributed_by"] == "utm"
            unknown = await _post(client, {"order_id": "3004", "amount": 20, "utm_campaign": "not-ours",
                                           "click_id": "no-such-click"})
            assert unknown.status_code == 201 and unknown.json()["attributed_by"] == "none"

    run(scenario)
    orders = {o.order_id: o for o in _orders(tmp_path)}
    assert (orders["3003"].campaign, orders["3003"].channel, orders["3003"].variant) == ("spring", "social", "a")
    assert orders["3004"].campaign is None and str(orders["3004"].amount) == "20.00"


def test_shopify_and_woocommerce_webhooks(tmp_path: Path) -> None:
    config = load(tmp_path, writer="thread")
    code = add_link(config, TARGET, campaign="spring", channel="x-main", variant="b")

    async def scenario() -> None:
        async with running(config) as (_tracker, client):
            loc1 = (await client.get(f"/c/{code}")).headers["location"]
            loc2 = (await client.get(f"/c/{code}")).headers["location"]
            shopify = {"id": 820982911946154500, "total_price": "199.00", "currency": "EUR",
                       "created_at": "2026-12-01T10:00:00+01:00",
                       "landing_site": loc1.split("shop.example.com", 1)[1], "note_attributes": []}
            response = await _post(client, shopify, path="/hooks/order/shopify", header="x-shopify-hmac-sha256")
            assert response.status_code == 201 and response.json()["attributed_by"] == "click"
            woo = {"id": 727, "total": "35.00", "currency": "EUR", "date_created_gmt": "2026-12-01T09:00:00",
                   "meta_data": [{"key": "_wc_order_attribution_session_entry", "value": loc2},
                                 {"key": "_wc_order_attribution_utm_source", "value": "x-main"}]}
            response = await _post(client, woo, path="/hooks/order/woocommerce", header="x-wc-webhook-signature")
            assert response.status_code == 201 and response.json()["channel"] == "x-main"
            utm_only = {"id": 728, "total": "5.00", "currency": "EUR",
                        "meta_data": [{"key": "_wc_order_attribution_utm_campaign", "value": "spring"},
                                      {"key": "_wc_order_attribution_utm_source", "value": "x-main"}]}
            response = await _post(client, utm_only, path="/hooks/order/woocommerce",
                                   header="x-wc-webhook-signature")
            assert response.json()["attributed_by"] == "utm"

    run(scenario)
    orders = {o.order_id: o for o in _orders(tmp_path)}
    assert set(orders) == {"820982911946154500", "727", "728"}
    assert orders["820982911946154500"].source == "shopify" and str(orders["820982911946154500"].amount) == "199.00"
    assert orders["727"].variant == "b" and orders["727"].source == "woocommerce"
