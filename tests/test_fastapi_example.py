"""The FastAPI example (``examples/fastapi_app``) against the local backend, through httpx.

Each test enters the app's lifespan (httpx's ASGITransport does not run it) and talks to the app
with ``httpx.AsyncClient``; the table is created by the lifespan on an empty local DynamoDB.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from backends import Backend
from conftest import user_items
from fastapi import FastAPI

from dynamodel import Connection, RetryPolicy
from dynamodel.testing import FaultInjector

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the examples are not an installed package
    sys.path.insert(0, str(ROOT))

from examples.fastapi_app import app as app_module  # noqa: E402
from examples.fastapi_app.app import create_app  # noqa: E402
from examples.fastapi_app.deps import Settings  # noqa: E402
from examples.fastapi_app.models import TABLE, Product  # noqa: E402


class ClientCount:
    """Counts the async clients created and closed (wraps ``aioboto3.Session.client``, or
    ``dynamodel.io.lean.create_async_client`` when the suite runs on the lean transport)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import aioboto3

        self.created = 0
        self.closed = 0
        if os.environ.get("DYNAMODEL_TRANSPORT") == "lean":
            self._count_lean(monkeypatch)
            return
        original = aioboto3.Session.client
        counter = self

        class Counted:
            def __init__(self, manager: Any) -> None:
                self.manager = manager

            async def __aenter__(self) -> Any:
                counter.created += 1
                return await self.manager.__aenter__()

            async def __aexit__(self, *exc: Any) -> Any:
                counter.closed += 1
                return await self.manager.__aexit__(*exc)

        def client(session: Any, *args: Any, **kwargs: Any) -> Counted:
            return Counted(original(session, *args, **kwargs))

        monkeypatch.setattr(aioboto3.Session, "client", client)

    def _count_lean(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import dynamodel.io.lean

        original = dynamodel.io.lean.create_async_client
        counter = self

        def create(*args: Any, **kwargs: Any) -> Any:
            client = original(*args, **kwargs)
            counter.created += 1
            close = client.aclose

            async def aclose() -> None:
                counter.closed += 1
                await close()

            client.aclose = aclose
            return client

        monkeypatch.setattr(dynamodel.io.lean, "create_async_client", create)


@pytest.fixture
def clients(monkeypatch: pytest.MonkeyPatch) -> ClientCount:
    return ClientCount(monkeypatch)


@pytest.fixture
async def app(fresh_db: Backend) -> AsyncIterator[FastAPI]:
    """The app, started (lifespan entered) on an empty local DynamoDB, stopped afterwards."""
    app = create_app(Settings(create_table=True, staff_token=STAFF_TOKEN))
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def api(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:
        yield client


STAFF_TOKEN = "staff-secret"
STAFF = {"X-Staff-Token": STAFF_TOKEN}


def caller(customer_id: str) -> dict[str, str]:
    """The headers of a request made by this customer (the example's stand-in for auth)."""
    return {"X-Customer-Id": customer_id}


C1 = caller("c1")


async def add_customer(api: httpx.AsyncClient, customer_id: str = "c1") -> None:
    body = {"customer_id": customer_id, "name": "Ann", "email": f"{customer_id}@example.com"}
    response = await api.post("/customers", json=body, headers=caller(customer_id))
    assert response.status_code == 201, response.text


async def add_product(api: httpx.AsyncClient, product_id: str, price: str, stock: int) -> None:
    body = {"product_id": product_id, "name": product_id.upper(), "price": price, "stock": stock}
    assert (await api.post("/products", json=body, headers=STAFF)).status_code == 201


async def place(
    api: httpx.AsyncClient, customer_id: str, *lines: tuple[str, int], by: str | None = None
) -> Any:
    body = {"lines": [{"product_id": p, "quantity": q} for p, q in lines]}
    headers = caller(by or customer_id)
    return await api.post(f"/customers/{customer_id}/orders", json=body, headers=headers)


async def stock(api: httpx.AsyncClient, product_id: str) -> int:
    response = await api.get(f"/products/{product_id}")
    assert response.status_code == 200
    return int(response.json()["stock"])


async def read_all(
    api: httpx.AsyncClient, path: str, headers: dict[str, str] | None = None, **params: Any
) -> list[list[Any]]:
    """Follow the cursors of a paged endpoint; the pages' items."""
    pages: list[list[Any]] = []
    cursor = None
    while True:
        query = dict(params, **({"cursor": cursor} if cursor else {}))
        response = await api.get(path, params=query, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(body["items"])
        cursor = body["cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 50, "the cursor never ends"


# -- lifespan and injection ------------------------------------------------------------------


async def test_lifespan_creates_one_client_for_all_requests_and_closes_it(
    fresh_db: Backend, clients: ClientCount
) -> None:
    app = create_app(Settings(table_name="fastapi-lifespan", create_table=True))
    async with app.router.lifespan_context(app):
        assert clients.created == 1  # at start-up, before any request
        assert TABLE.physical_name == "fastapi-lifespan"
        assert TABLE.connection is app.state.connection
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shop") as api:
            await add_customer(api)
            requests = (api.get("/customers/c1", headers=caller("c1")) for _ in range(10))
            responses = await asyncio.gather(*requests)
            assert {r.status_code for r in responses} == {200}
        assert (clients.created, clients.closed) == (1, 0)
    assert (clients.created, clients.closed) == (1, 1)  # closed at shutdown
    assert TABLE.physical_name == "fastapi-shop"  # unbound again


async def test_endpoints_refuse_to_run_without_the_lifespan() -> None:
    app = create_app(Settings())  # never started: no connection, nothing sent
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop") as api:
        with pytest.raises(RuntimeError, match="lifespan has not run"):
            await place(api, "c1", ("p1", 1))


# -- customers and products ------------------------------------------------------------------


async def test_customers_create_read_and_errors(api: httpx.AsyncClient) -> None:
    await add_customer(api)
    again = {"customer_id": "c1", "name": "Someone else", "email": "x@example.com"}
    duplicate = await api.post("/customers", json=again, headers=caller("c1"))
    assert duplicate.status_code == 409
    assert "exists" in duplicate.json()["detail"]

    overview = (await api.get("/customers/c1", headers=caller("c1"))).json()
    assert overview["customer"]["name"] == "Ann"  # the duplicate did not overwrite
    assert overview["recent_orders"] == []

    search = "/customers"
    found = (await api.get(search, params={"email": "c1@example.com"}, headers=STAFF)).json()
    assert [c["customer_id"] for c in found] == ["c1"]
    none = await api.get(search, params={"email": "no@example.com"}, headers=STAFF)
    assert none.json() == []
    assert (await api.get(search, params={"email": "c1@example.com"})).status_code == 403

    assert (await api.get("/customers/nobody", headers=caller("nobody"))).status_code == 404
    bad_body = await api.post(
        "/customers", json={"customer_id": "c2", "name": "", "email": "x"}, headers=caller("c2")
    )
    assert bad_body.status_code == 422
    bad_key = await api.get("/customers/not an id!", headers=caller("c1"))  # the path pattern
    assert bad_key.status_code == 422
    assert bad_key.json()["detail"][0]["loc"] == ["path", "customer_id"]


async def test_products_create_and_read(api: httpx.AsyncClient) -> None:
    await add_product(api, "p1", "2.50", 5)
    assert (await api.get("/products/p1")).json() == {
        "product_id": "p1",
        "name": "P1",
        "price": "2.50",
        "stock": 5,
    }
    again = {"product_id": "p1", "name": "X", "price": "1"}
    assert (await api.post("/products", json=again, headers=STAFF)).status_code == 409
    assert (await api.post("/products", json=again)).status_code == 403  # staff only
    assert (await api.get("/products/p2")).status_code == 404
    negative = {"product_id": "p3", "name": "X", "price": "-1"}
    assert (await api.post("/products", json=negative, headers=STAFF)).status_code == 422


# -- placing orders: one transaction ---------------------------------------------------------


async def test_an_order_its_lines_and_the_stock_change_together(api: httpx.AsyncClient) -> None:
    await add_customer(api)
    await add_product(api, "p1", "2.50", 5)
    await add_product(api, "p2", "10.00", 1)

    placed = await place(api, "c1", ("p1", 2), ("p2", 1))
    assert placed.status_code == 201, placed.text
    order = placed.json()["order"]
    assert (order["status"], order["version"], order["lines"]) == ("pending", 1, 2)
    assert Decimal(order["total"]) == Decimal("15.00")
    assert (await stock(api, "p1"), await stock(api, "p2")) == (3, 0)

    detail = (await api.get(f"/customers/c1/orders/{order['order_id']}", headers=C1)).json()
    assert detail["order"] == order
    lines = {i["product_id"]: (i["quantity"], Decimal(i["unit_price"])) for i in detail["items"]}
    assert lines == {"p1": (2, Decimal("2.50")), "p2": (1, Decimal("10.00"))}

    # p2 is sold out: the whole order is refused and nothing of it is written
    refused = await place(api, "c1", ("p1", 1), ("p2", 1))
    assert refused.status_code == 409
    assert refused.json()["detail"] == "order rejected: p2: 0 in stock, 1 wanted"
    assert await stock(api, "p1") == 3
    assert len((await api.get("/customers/c1/orders", headers=C1)).json()["items"]) == 1


async def test_a_price_change_between_read_and_write_refuses_the_order(
    api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await add_customer(api)
    await add_product(api, "p1", "2.50", 5)
    real = app_module.abatch_get

    async def read_then_reprice(*args: Any, **kwargs: Any) -> Any:
        found = await real(*args, **kwargs)  # priced at 2.50 ...
        product = await Product.aget(product_id="p1")
        product.price = Decimal("3.00")  # ... then someone changes the price
        await product.asave()
        return found

    monkeypatch.setattr(app_module, "abatch_get", read_then_reprice)
    refused = await place(api, "c1", ("p1", 1))
    assert refused.status_code == 409
    assert "price of p1 changed to 3.00" in refused.json()["detail"]
    assert await stock(api, "p1") == 5


async def test_order_input_errors(api: httpx.AsyncClient) -> None:
    await add_customer(api)
    await add_product(api, "p1", "1.00", 100)
    missing = await place(api, "c1", ("p1", 1), ("p404", 1))
    assert missing.status_code == 404
    assert "p404" in missing.json()["detail"]
    assert (await place(api, "nobody", ("p1", 1))).status_code == 404
    assert (await place(api, "c1", ("p1", 1), ("p1", 2))).status_code == 422  # same product twice
    assert (await place(api, "c1")).status_code == 422  # no lines
    many = [(f"p{n}", 1) for n in range(21)]
    assert (await place(api, "c1", *many)).status_code == 422  # over 20 lines
    assert (await place(api, "c1", ("p1", 0))).status_code == 422
    assert await stock(api, "p1") == 100
    assert (await api.get("/customers/c1/orders/nope", headers=C1)).status_code == 404


# -- reading orders ----------------------------------------------------------------------------


async def test_orders_newest_first_in_pages_and_in_the_overview(api: httpx.AsyncClient) -> None:
    await add_customer(api)
    await add_customer(api, "c2")
    await add_product(api, "p1", "1.00", 100)
    placed = []
    for _ in range(5):
        response = await place(api, "c1", ("p1", 1))
        placed.append(response.json()["order"]["order_id"])
    await place(api, "c2", ("p1", 1))  # another customer's order stays out

    pages = await read_all(api, "/customers/c1/orders", headers=C1, limit=2)
    assert [len(p) for p in pages if p] == [2, 2, 1]
    assert [o["order_id"] for p in pages for o in p] == placed[::-1]

    overview = (await api.get("/customers/c1", params={"recent": 3}, headers=C1)).json()
    assert overview["customer"]["customer_id"] == "c1"
    assert [o["order_id"] for o in overview["recent_orders"]] == placed[:1:-1]

    bad = await api.get("/customers/c1/orders", params={"cursor": "not-a-cursor"}, headers=C1)
    assert bad.status_code == 422
    assert bad.json() == {"detail": "invalid cursor"}
    zero = await api.get("/customers/c1/orders", params={"limit": 0}, headers=C1)
    assert zero.status_code == 422


async def test_orders_by_status_across_customers_oldest_first(api: httpx.AsyncClient) -> None:
    await add_product(api, "p1", "1.00", 100)
    for customer in ("c1", "c2", "c3"):
        await add_customer(api, customer)
    placed = []
    for customer in ("c1", "c2", "c3", "c1"):
        placed.append((await place(api, customer, ("p1", 1))).json()["order"])
    first = placed[0]
    paid = await api.patch(
        f"/customers/c1/orders/{first['order_id']}",
        json={"status": "paid", "version": 1},
        headers=C1,
    )
    assert paid.status_code == 200

    pending = await read_all(api, "/orders", headers=STAFF, status="pending", limit=2)
    assert [o["order_id"] for p in pending for o in p] == [o["order_id"] for o in placed[1:]]
    paid_pages = await read_all(api, "/orders", headers=STAFF, status="paid")
    assert [o["order_id"] for p in paid_pages for o in p] == [first["order_id"]]
    lost = await api.get("/orders", params={"status": "lost"}, headers=STAFF)
    assert lost.status_code == 422
    assert (await api.get("/orders", params={"status": "paid"})).status_code == 403


# -- optimistic locking ------------------------------------------------------------------------


async def test_status_changes_are_version_checked(api: httpx.AsyncClient) -> None:
    await add_customer(api)
    await add_product(api, "p1", "1.00", 100)
    order = (await place(api, "c1", ("p1", 1))).json()["order"]
    path = f"/customers/c1/orders/{order['order_id']}"

    paid = await api.patch(path, json={"status": "paid", "version": 1}, headers=C1)
    assert paid.status_code == 200
    assert (paid.json()["status"], paid.json()["version"]) == ("paid", 2)

    stale = await api.patch(path, json={"status": "cancelled", "version": 1}, headers=C1)
    assert stale.status_code == 409
    body = stale.json()
    assert (body["expected_version"], body["actual_version"]) == (1, 2)
    assert body["current"]["status"] == "paid"

    # the right version, but the stored status does not allow the move
    skipped = await api.patch(path, json={"status": "delivered", "version": 2}, headers=C1)
    assert skipped.status_code == 409
    assert (
        skipped.json()["detail"] == f"order {order['order_id']} is paid: it cannot become delivered"
    )

    assert (
        await api.patch(path, json={"status": "pending", "version": 2}, headers=C1)
    ).status_code == 422
    assert (
        await api.patch(path, json={"status": "paid"}, headers=C1)
    ).status_code == 422  # no version
    missing = await api.patch(
        "/customers/c1/orders/nope", json={"status": "paid", "version": 1}, headers=C1
    )
    assert missing.status_code == 404

    # two clients act on the same copy at once: exactly one wins
    racing = await asyncio.gather(
        api.patch(path, json={"status": "shipped", "version": 2}, headers=C1),
        api.patch(path, json={"status": "cancelled", "version": 2}, headers=C1),
    )
    assert sorted(r.status_code for r in racing) == [200, 409]
    (winner,) = [r.json() for r in racing if r.status_code == 200]
    stored = (await api.get(path, headers=C1)).json()["order"]
    assert (stored["status"], stored["version"]) == (winner["status"], 3)


# -- the sharded hot key -----------------------------------------------------------------------


async def test_views_spread_over_shards_and_read_back_merged(
    api: httpx.AsyncClient, ddb: Any
) -> None:
    await add_product(api, "p1", "1.00", 1)
    recorded = []
    for n in range(20):
        response = await api.post("/products/p1/views", json={"user_id": f"u{n}"})
        assert response.status_code == 201, response.text
        recorded.append(response.json())
    await api.post("/products/p2/views")  # another product's views stay out

    pages = await read_all(api, "/products/p1/views", limit=7)
    assert [len(p) for p in pages if p] == [7, 7, 6]
    views = [v for p in pages for v in p]
    order = [(v["at"], v["view_id"]) for v in views]
    assert order == sorted(order, reverse=True)  # newest first, across shards
    assert sorted(v["view_id"] for v in views) == sorted(v["view_id"] for v in recorded)

    stored = user_items(ddb.scan(TableName=TABLE.name)["Items"])
    keys = {item["pk"]["S"] for item in stored if item["pk"]["S"].startswith("VIEWS#p1")}
    shards = {key.rpartition(".")[2] for key in keys}
    assert all(key.rpartition(".")[0] == "VIEWS#p1" for key in keys)
    assert shards <= {str(n) for n in range(8)} and len(shards) > 1


async def test_bad_input_caught_by_a_model_is_a_422(api: httpx.AsyncClient) -> None:
    response = await api.post("/products/not%20an%20id/views")  # View(product_id=...) refuses it
    assert response.status_code == 422
    (problem,) = response.json()["detail"]
    assert problem["loc"] == ["product_id"] and problem["type"] == "string_pattern_mismatch"


# -- throttling --------------------------------------------------------------------------------


async def test_throttling_is_retried_and_a_503_when_retries_run_out(
    app: FastAPI, api: httpx.AsyncClient
) -> None:
    await add_product(api, "p1", "1.00", 5)
    real = await app.state.connection.aclient()

    def use(faults: FaultInjector, retry: RetryPolicy) -> None:
        connection = Connection(aclient=faults, retry=retry)
        TABLE.bind(connection=connection)
        app.state.connection = connection

    half = FaultInjector(real, seed=3, throttle=0.5)
    use(half, RetryPolicy(base=0.001, max_attempts=30))
    for _ in range(10):
        assert (await api.get("/products/p1")).status_code == 200
    assert half.stats.throttled > 0  # the app never saw them: dynamodel retried

    always = FaultInjector(real, throttle=1.0)
    use(always, RetryPolicy(base=0.001, max_attempts=2))
    response = await api.get("/products/p1")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert always.stats.throttled == 2


# -- tenant isolation and error bodies ---------------------------------------------------------


async def test_a_customer_cannot_reach_another_customers_data(api: httpx.AsyncClient) -> None:
    await add_product(api, "p1", "1.00", 100)
    for customer in ("c1", "c2"):
        await add_customer(api, customer)
    order = (await place(api, "c1", ("p1", 1))).json()["order"]
    mine = f"/customers/c1/orders/{order['order_id']}"
    c2 = caller("c2")

    attempts = [
        await api.get("/customers/c1", headers=c2),
        await api.get("/customers/c1/orders", headers=c2),
        await api.get(mine, headers=c2),
        await api.patch(mine, json={"status": "cancelled", "version": 1}, headers=c2),
        await place(api, "c1", ("p1", 1), by="c2"),  # an order charged to c1
        await api.post(
            "/customers", json={"customer_id": "c3", "name": "X", "email": "x@x.x"}, headers=c2
        ),  # signing up as someone else
        await api.get("/customers/nobody", headers=c2),  # same answer whether it exists or not
    ]
    for response in attempts:
        assert (response.status_code, response.json()) == (403, {"detail": "forbidden"})
    assert (await api.get(mine, headers=C1)).json()["order"]["status"] == "pending"
    assert await stock(api, "p1") == 99  # only c1's own order took stock
    assert (await api.get("/customers/c1/orders")).status_code == 401  # no caller at all


async def test_cursors_are_signed_and_bound_to_the_listing(api: httpx.AsyncClient) -> None:
    await add_product(api, "p1", "1.00", 100)
    for customer in ("c1", "c2"):
        await add_customer(api, customer)
        for _ in range(3):
            await place(api, customer, ("p1", 1))
    first = (await api.get("/customers/c1/orders", params={"limit": 1}, headers=C1)).json()
    cursor = first["cursor"]
    assert cursor

    def edited(text: str) -> str:
        middle = len(text) // 2
        return text[:middle] + ("A" if text[middle] != "A" else "B") + text[middle + 1 :]

    c2 = caller("c2")
    for bad, headers in [
        (edited(cursor), C1),  # one character changed
        (cursor, c2),  # c1's cursor on c2's own listing
        (cursor + "x", C1),
    ]:
        response = await api.get(
            f"/customers/{headers['X-Customer-Id']}/orders",
            params={"cursor": bad, "limit": 1},
            headers=headers,
        )
        assert (response.status_code, response.json()) == (422, {"detail": "invalid cursor"})
    # a cursor from the staff listing of orders by status is not a customer listing's cursor
    staff_page = (
        await api.get("/orders", params={"status": "pending", "limit": 1}, headers=STAFF)
    ).json()
    response = await api.get(
        "/customers/c1/orders", params={"cursor": staff_page["cursor"]}, headers=C1
    )
    assert (response.status_code, response.json()) == (422, {"detail": "invalid cursor"})
    rest = await api.get("/customers/c1/orders", params={"cursor": cursor}, headers=C1)
    assert rest.status_code == 200 and len(rest.json()["items"]) == 2


async def test_error_bodies_name_no_table_key_or_internals(api: httpx.AsyncClient) -> None:
    """Every error the API answers, read for what it must not reveal."""
    await add_product(api, "p1", "1.00", 1)
    await add_customer(api)
    order = (await place(api, "c1", ("p1", 1))).json()["order"]
    path = f"/customers/c1/orders/{order['order_id']}"
    await api.patch(path, json={"status": "paid", "version": 1}, headers=C1)
    responses = [
        await api.get("/products/nope"),
        await api.get("/customers/c1/orders/nope", headers=C1),
        await api.get("/customers/c1/orders", params={"cursor": "%%%"}, headers=C1),
        await api.get("/customers/c1/orders", params={"cursor": "eyJ2IjoxfQ"}, headers=C1),
        await api.get("/customers/c1/orders", params={"cursor": "\u00ff\u00fe"}, headers=C1),
        await api.get("/customers/c1", headers=caller("c2")),
        await api.patch(path, json={"status": "cancelled", "version": 1}, headers=C1),
        await api.patch(path, json={"status": "delivered", "version": 2}, headers=C1),
        await place(api, "c1", ("p1", 5)),  # out of stock: a cancelled transaction
        await place(api, "c1", ("nope", 1)),
        await api.post("/products/not%20an%20id/views"),
        await api.post(
            "/customers", json={"customer_id": "c1", "name": "A", "email": "a@b.c"}, headers=C1
        ),
    ]
    assert sorted({r.status_code for r in responses}) == [403, 404, 409, 422]
    forbidden = [TABLE.name, "pk", "sk", "gsi1", "CUSTOMER#", "PRODUCT#", "ORDER#", "VIEWS#"]
    forbidden += ["Traceback", "utf-8", "codec", "base64", "{'", "dynamodel"]
    for response in responses:
        text = response.text
        leaks = [word for word in forbidden if word in text]
        assert not leaks, f"{response.request.url} answered {text!r}: reveals {leaks}"
