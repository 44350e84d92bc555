"""A fake Alpaca on 127.0.0.1 for the real alpaca-py client: the REST routes the desk uses, the trade-updates
stream (JSON) and the option and stock data streams (msgpack), on its own thread and event loop (the SDK's REST calls
block). Tests script what happens to each order and read what the client did.

Unknown routes answer 599 so that a new API call is noticed.
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import msgpack
from aiohttp import WSMsgType, web

# What happens to a submitted order, step by step: ("fill", qty, price) is an execution pushed on the
# stream, ("quiet_fill", qty, price) one the stream never tells, ("cancel",), ("reject",) end it,
# ("hold",) leaves it working.
Step = tuple[Any, ...]


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class FakeOrder:
    id: str
    client_order_id: str
    symbol: str
    qty: int
    side: str
    type: str
    limit_price: str | None
    position_intent: str | None
    submitted_at: datetime
    status: str = "new"
    fills: list[tuple[int, Decimal]] = field(default_factory=list)

    @property
    def filled_qty(self) -> int:
        return sum(qty for qty, _ in self.fills)

    def json(self) -> dict[str, Any]:
        filled = self.filled_qty
        avg = sum(q * p for q, p in self.fills) / filled if filled else None
        stamp = _iso(self.submitted_at)
        return {
            "id": self.id,
            "client_order_id": self.client_order_id,
            "created_at": stamp,
            "updated_at": stamp,
            "submitted_at": stamp,
            "symbol": self.symbol,
            "asset_class": "us_option",
            "qty": str(self.qty),
            "filled_qty": str(filled),
            "filled_avg_price": None if avg is None else str(avg),
            "order_class": "simple",
            "order_type": self.type,
            "type": self.type,
            "side": self.side,
            "time_in_force": "day",
            "limit_price": self.limit_price,
            "status": self.status,
            "extended_hours": False,
            "position_intent": self.position_intent,
        }


@dataclass
class DataFeed:
    """One market-data stream (option or stock: the same protocol) as the clients left it."""

    subscriptions: set[str] = field(default_factory=set)  # quotes subscribed on the latest connection
    connects: int = 0
    sockets: list[web.WebSocketResponse] = field(default_factory=list)


class FakeAlpaca:
    def __init__(self, now: Callable[[], datetime]) -> None:
        self.now = now
        self.account_id = str(uuid.uuid4())
        self.assets = {"SPY": True, "QQQ": True}  # ticker -> tradable: the underlyings Alpaca knows
        self.orders: dict[str, FakeOrder] = {}  # by client order id
        self.activities: list[dict[str, Any]] = []
        # Non-trade activities (OPEXP, OPEXC, OPASN, OPTRD) as Alpaca sends them, with their `date`.
        self.events: list[dict[str, Any]] = []
        # The account's options fields (GET /v2/account): level 2 buys calls and puts.
        self.account: dict[str, Any] = {"options_approved_level": 2, "options_trading_level": 2}
        self.account["options_buying_power"] = "100000"
        self.positions: dict[str, int] = {}  # compact symbol -> qty, as the broker holds it
        self.posts: Counter[str] = Counter()  # POST /v2/orders per client order id
        self.plans: list[list[Step]] = []  # taken by each new order in turn; none left: filled at 1.00
        self.fail_posts: list[int] = []  # statuses to answer the next POSTs with (the order is still placed)
        self.options = DataFeed()
        self.stocks = DataFeed()
        self.trade_connects = 0
        # Option snapshots by compact OCC symbol, as Alpaca sends them ({"greeks": {...}, "impliedVolatility": ...}),
        # and the statuses the next snapshot requests answer with instead.
        self.snapshots: dict[str, dict[str, Any]] = {}
        self.snapshot_faults: list[int] = []
        # Listed option contracts (GET /v2/options/contracts), as Alpaca sends them; see `list_contract`.
        self.contracts: list[dict[str, Any]] = []
        self.requests: list[str] = []
        # The data API's minute bars by symbol (a ticker, or a compact OCC symbol), as Alpaca sends them: t, o, h, l,
        # c, v. A bars request takes the next status of its kind ("stocks", "options") here first: 0 never answers.
        self.bars: dict[str, list[dict[str, Any]]] = {}
        self.bars_page_size = 10_000
        self.bars_faults: dict[str, list[int]] = {"stocks": [], "options": []}
        self.bars_requests: list[tuple[str, dict[str, str]]] = []
        self._trade_sockets: list[web.WebSocketResponse] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.port = 0

    # Lifecycle ----------------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()
        self._call(self._start())

    def stop(self) -> None:
        self._call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(5)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/v2/orders", self._submit)
        app.router.add_get("/v2/orders:by_client_order_id", self._by_client_id)
        app.router.add_get("/v2/orders", self._list_orders)
        app.router.add_get("/v2/orders/{id}", self._order_by_id)
        app.router.add_delete("/v2/orders/{id}", self._cancel)
        app.router.add_get("/v2/account/activities/FILL", self._fill_activities)
        app.router.add_get("/v2/account/activities/{kind}", self._non_trade_activities)
        app.router.add_get("/v2/account", self._account)
        app.router.add_get("/v2/positions", self._positions)
        app.router.add_get("/v2/assets/{symbol}", self._asset)
        app.router.add_get("/v2/stocks/bars", partial(self._bars, "stocks"))
        app.router.add_get("/v1beta1/options/bars", partial(self._bars, "options"))
        app.router.add_get("/v1beta1/options/snapshots", self._option_snapshots)
        app.router.add_get("/v1beta1/options/snapshots/{underlying}", self._option_chain)
        app.router.add_get("/v2/options/contracts", self._option_contracts)
        app.router.add_get("/stream", self._trade_stream)
        app.router.add_get("/v1beta1/indicative", partial(self._data_stream, self.options))
        app.router.add_get("/v2/iex", partial(self._data_stream, self.stocks))
        app.router.add_route("*", "/{tail:.*}", self._unknown)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._unheld = asyncio.Event()

    async def _stop(self) -> None:
        self._unheld.set()
        for ws in [*self._trade_sockets, *self.options.sockets, *self.stocks.sockets]:
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # Test controls (from the test's thread) --------------------------------------------------------------

    def fill(self, client_order_id: str, qty: int, price: str, *, tell: bool = True) -> str:
        """An execution of the order; `tell=False`: the stream never says so. Returns the execution id."""
        return str(self._call(self._fill(self.orders[client_order_id], qty, Decimal(price), tell)))

    def end(self, client_order_id: str, status: str) -> None:
        self._call(self._end(self.orders[client_order_id], status))

    def drop_trade_stream(self) -> None:
        self._call(self._drop(self._trade_sockets))

    def drop_data_stream(self, feed: DataFeed) -> None:
        self._call(self._drop(feed.sockets))

    def quote(self, symbol: str, bid: float, ask: float, ts: datetime, *, feed: DataFeed | None = None) -> None:
        """A quote on the option stream, or on `feed`."""
        message = [{"T": "q", "S": symbol, "t": ts, "bp": bid, "bs": 10, "ap": ask, "as": 12}]
        self._call(self._broadcast((feed or self.options).sockets, msgpack.packb(message, datetime=True)))

    def add_activity(self, **fields: Any) -> None:
        """A fill in the account's history that no order here made (an order placed elsewhere)."""
        self.activities.append(fields)

    # REST ---------------------------------------------------------------------------------------------

    @staticmethod
    def _json(data: Any, status: int = 200) -> web.Response:
        return web.Response(body=json.dumps(data).encode(), status=status, content_type="application/json")

    async def _unknown(self, request: web.Request) -> web.Response:
        self.requests.append(f"{request.method} {request.path} (unknown)")
        return self._json({"code": 0, "message": f"fake Alpaca: no route {request.method} {request.path}"}, 599)

    async def _submit(self, request: web.Request) -> web.Response:
        body = await request.json()
        cid = body["client_order_id"]
        self.posts[cid] += 1
        self.requests.append(f"POST /v2/orders {cid}")
        if cid in self.orders:
            return self._json({"code": 40010001, "message": "client_order_id must be unique"}, 422)
        order = FakeOrder(
            id=str(uuid.uuid4()),
            client_order_id=cid,
            symbol=body["symbol"],
            qty=int(float(body["qty"])),
            side=body["side"],
            type=body["type"],
            limit_price=None if body.get("limit_price") is None else str(body["limit_price"]),
            position_intent=body.get("position_intent"),
            submitted_at=self.now(),
        )
        plan = self.plans.pop(0) if self.plans else [("fill", order.qty, "1.00")]
        if plan and plan[0] == ("refuse",):
            return self._json({"code": 40310000, "message": "insufficient options buying power"}, 403)
        self.orders[cid] = order
        asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(self._play(order, plan)))
        if self.fail_posts:
            return self._json({"code": 0, "message": "gateway timeout"}, self.fail_posts.pop(0))
        return self._json(order.json())

    async def _play(self, order: FakeOrder, plan: list[Step]) -> None:
        await self._tell("new", order)
        for step in plan:
            if step[0] in ("fill", "quiet_fill"):
                await self._fill(order, int(step[1]), Decimal(step[2]), step[0] == "fill")
            elif step[0] in ("cancel", "reject"):
                await self._end(order, "canceled" if step[0] == "cancel" else "rejected")

    async def _by_client_id(self, request: web.Request) -> web.Response:
        cid = request.query["client_order_id"]
        self.requests.append(f"GET by_client_order_id {cid}")
        order = self.orders.get(cid)
        if order is None:
            return self._json({"code": 40410000, "message": "order not found"}, 404)
        return self._json(order.json())

    async def _order_by_id(self, request: web.Request) -> web.Response:
        for order in self.orders.values():
            if order.id == request.match_info["id"]:
                return self._json(order.json())
        return self._json({"code": 40410000, "message": "order not found"}, 404)

    async def _list_orders(self, request: web.Request) -> web.Response:
        return self._json([order.json() for order in self.orders.values()])

    async def _cancel(self, request: web.Request) -> web.Response:
        self.requests.append(f"DELETE order {request.match_info['id']}")
        for order in self.orders.values():
            if order.id == request.match_info["id"]:
                await self._end(order, "canceled")
                return web.Response(status=204)
        return self._json({"code": 40410000, "message": "order not found"}, 404)

    async def _fill_activities(self, request: web.Request) -> web.Response:
        after = datetime.fromisoformat(request.query["after"])
        until = request.query.get("until")
        found = [
            a
            for a in self.activities
            if datetime.fromisoformat(a["transaction_time"]) > after
            and (until is None or datetime.fromisoformat(a["transaction_time"]) <= datetime.fromisoformat(until))
        ]
        return self._json(found)

    async def _non_trade_activities(self, request: web.Request) -> web.Response:
        """Of one kind, dated from `after`'s New York day on (Alpaca dates them; `until` likewise)."""
        kind = request.match_info["kind"]
        self.requests.append(f"GET /v2/account/activities/{kind}")
        if kind not in ("OPEXP", "OPEXC", "OPASN", "OPTRD"):
            return await self._unknown(request)
        zone = ZoneInfo("America/New_York")
        after = datetime.fromisoformat(request.query["after"]).astimezone(zone).date()
        until = request.query.get("until")
        last = datetime.fromisoformat(until).astimezone(zone).date() if until else None
        found = [
            e
            for e in self.events
            if e["activity_type"] == kind
            and date.fromisoformat(e["date"]) >= after
            and (last is None or date.fromisoformat(e["date"]) <= last)
        ]
        return self._json(found)

    def add_event(self, kind: str, symbol: str, qty: int, day: date, price: str | None = None) -> str:
        """A non-trade activity (an option's expiry, exercise, assignment, or its stock leg); returns its id."""
        activity_id = f"{day:%Y%m%d}000000000::{uuid.uuid4()}"
        event = {"id": activity_id, "activity_type": kind, "date": day.isoformat(), "net_amount": "0"}
        event |= {"description": kind, "symbol": symbol, "qty": str(qty), "status": "executed"}
        if price is not None:
            event["price"] = price
        self.events.append(event)
        return activity_id

    async def _account(self, request: web.Request) -> web.Response:
        self.requests.append("GET /v2/account")
        fields = {"id": self.account_id, "account_number": "PA0FAKE", "status": "ACTIVE", "currency": "USD"}
        return self._json(fields | self.account)

    async def _option_snapshots(self, request: web.Request) -> web.Response:
        if self.snapshot_faults:
            return self._json({"code": 0, "message": "fake Alpaca: snapshots down"}, self.snapshot_faults.pop(0))
        wanted = request.query.get("symbols", "").split(",")
        found = {symbol: self.snapshots[symbol] for symbol in wanted if symbol in self.snapshots}
        return self._json({"snapshots": found, "next_page_token": None})

    def list_contract(self, symbol: str, open_interest: int | None = None) -> None:
        """List an option contract by its compact OCC symbol (e.g. SPY261127C00600000)."""
        root, expiry, right, strike = symbol[:-15], symbol[-15:-9], symbol[-9], int(symbol[-8:]) / 1000
        self.contracts.append(
            {
                "id": str(uuid.uuid5(uuid.NAMESPACE_OID, symbol)),
                "symbol": symbol,
                "name": symbol,
                "status": "active",
                "tradable": True,
                "expiration_date": f"20{expiry[:2]}-{expiry[2:4]}-{expiry[4:]}",
                "root_symbol": root,
                "underlying_symbol": root,
                "underlying_asset_id": str(uuid.uuid5(uuid.NAMESPACE_OID, root)),
                "type": "call" if right == "C" else "put",
                "style": "american",
                "strike_price": str(strike),
                "size": "100",
                "open_interest": None if open_interest is None else str(open_interest),
            }
        )

    async def _option_contracts(self, request: web.Request) -> web.Response:
        query = request.query
        self.requests.append(f"GET /v2/options/contracts {query.get('expiration_date', '')}")
        found = [
            c
            for c in self.contracts
            if c["underlying_symbol"] in query.get("underlying_symbols", "").split(",")
            and query.get("expiration_date", c["expiration_date"]) == c["expiration_date"]
            and query.get("expiration_date_gte", "") <= c["expiration_date"] <= query.get("expiration_date_lte", "9")
            and float(query.get("strike_price_gte", 0)) <= float(c["strike_price"])
            and float(c["strike_price"]) <= float(query.get("strike_price_lte", "inf"))
        ]
        start, size = int(query.get("page_token") or 0), int(query.get("limit", 100))
        following = str(start + size) if start + size < len(found) else None
        return self._json({"option_contracts": found[start : start + size], "next_page_token": following})

    async def _option_chain(self, request: web.Request) -> web.Response:
        if self.snapshot_faults:
            return self._json({"code": 0, "message": "fake Alpaca: snapshots down"}, self.snapshot_faults.pop(0))
        root, query = request.match_info["underlying"], request.query
        expiry = query.get("expiration_date", "").replace("-", "")[2:]
        found = {
            symbol: snapshot
            for symbol, snapshot in self.snapshots.items()
            if symbol.startswith(root) and symbol[len(root) :].startswith(expiry)
        }
        return self._json({"snapshots": found, "next_page_token": None})

    async def _asset(self, request: web.Request) -> web.Response:
        symbol = request.match_info["symbol"]
        self.requests.append(f"GET /v2/assets/{symbol}")
        if symbol not in self.assets:
            return self._json({"code": 40410000, "message": f"asset not found for {symbol}"}, 404)
        return self._json(
            {
                "id": str(uuid.uuid5(uuid.NAMESPACE_OID, symbol)),
                "class": "us_equity",
                "exchange": "ARCA",
                "symbol": symbol,
                "status": "active",
                "tradable": self.assets[symbol],
                "marginable": True,
                "shortable": True,
                "easy_to_borrow": True,
                "fractionable": True,
            }
        )

    async def _bars(self, kind: str, request: web.Request) -> web.Response:
        """Historical bars of the symbols asked for between start and end, symbol by symbol then by time (as Alpaca
        sorts them), a page of at most `limit` (and `bars_page_size`) at a time."""
        query = dict(request.query)
        self.bars_requests.append((kind, query))
        if not request.headers.get("APCA-API-KEY-ID"):
            return self._json({"code": 40110000, "message": "request is not authorized"}, 401)
        if self.bars_faults[kind]:
            status = self.bars_faults[kind].pop(0)
            if status == 0:
                await self._unheld.wait()
            return self._json({"code": status, "message": f"fake Alpaca: {status}"}, status or 503)
        start, end = (datetime.fromisoformat(query[edge]) for edge in ("start", "end"))
        found = [
            (symbol, bar)
            for symbol in sorted(query["symbols"].split(","))
            for bar in self.bars.get(symbol, [])
            if start <= datetime.fromisoformat(bar["t"]) <= end
        ]
        offset = int(query.get("page_token") or 0)
        limit = min(int(query.get("limit") or 1000), self.bars_page_size)
        page: dict[str, list[dict[str, Any]]] = {}
        for symbol, bar in found[offset : offset + limit]:
            page.setdefault(symbol, []).append(bar)
        following = str(offset + limit) if offset + limit < len(found) else None
        return self._json({"bars": page, "next_page_token": following})

    async def _positions(self, request: web.Request) -> web.Response:
        return self._json(
            [
                {
                    "asset_id": str(uuid.uuid5(uuid.NAMESPACE_OID, symbol)),
                    "symbol": symbol,
                    "exchange": "",
                    "asset_class": "us_option",
                    "avg_entry_price": "1.00",
                    "qty": str(qty),
                    "side": "long",
                    "cost_basis": "0",
                }
                for symbol, qty in self.positions.items()
                if qty
            ]
        )

    # Order events -------------------------------------------------------------------------------------

    async def _fill(self, order: FakeOrder, qty: int, price: Decimal, tell: bool) -> str:
        order.fills.append((qty, price))
        order.status = "filled" if order.filled_qty >= order.qty else "partially_filled"
        sign = 1 if order.side == "buy" else -1
        self.positions[order.symbol] = self.positions.get(order.symbol, 0) + sign * qty
        execution = str(uuid.uuid4())
        now = self.now()
        self.activities.append(
            {
                "id": f"{now:%Y%m%d%H%M%S%f}::{execution}",
                "account_id": self.account_id,
                "activity_type": "FILL",
                "transaction_time": _iso(now),
                "type": "fill" if order.status == "filled" else "partial_fill",
                "price": str(price),
                "qty": str(qty),
                "side": order.side,
                "symbol": order.symbol,
                "leaves_qty": str(order.qty - order.filled_qty),
                "order_id": order.id,
                "cum_qty": str(order.filled_qty),
                "order_status": order.status,
            }
        )
        if tell:
            event = "fill" if order.status == "filled" else "partial_fill"
            extra = {"execution_id": execution, "price": str(price), "qty": str(qty), "position_qty": str(qty)}
            await self._tell(event, order, **extra)
        return execution

    async def _end(self, order: FakeOrder, status: str) -> None:
        order.status = status
        await self._tell(status, order)

    async def _tell(self, event: str, order: FakeOrder, **extra: str) -> None:
        update = {"event": event, "timestamp": _iso(self.now()), "order": order.json(), **extra}
        data = json.dumps({"stream": "trade_updates", "data": update})
        await self._broadcast(self._trade_sockets, data)

    # Streams ------------------------------------------------------------------------------------------

    async def _broadcast(self, sockets: list[web.WebSocketResponse], data: str | bytes) -> None:
        for ws in list(sockets):
            if ws.closed:
                continue
            if isinstance(data, bytes):
                await ws.send_bytes(data)
            else:
                await ws.send_str(data)

    async def _drop(self, sockets: list[web.WebSocketResponse]) -> None:
        for ws in list(sockets):
            await ws.close()
        sockets.clear()

    async def _trade_stream(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.trade_connects += 1
        async for message in ws:
            if message.type is not WSMsgType.TEXT and message.type is not WSMsgType.BINARY:
                break
            data = json.loads(message.data)
            if data.get("action") == "authenticate":
                await ws.send_str(json.dumps({"stream": "authorization", "data": {"status": "authorized"}}))
            elif data.get("action") == "listen":
                self._trade_sockets.append(ws)
                await ws.send_str(json.dumps({"stream": "listening", "data": {"streams": ["trade_updates"]}}))
        return ws

    async def _data_stream(self, feed: DataFeed, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        feed.connects += 1
        await ws.send_bytes(msgpack.packb([{"T": "success", "msg": "connected"}]))
        async for message in ws:
            if message.type is not WSMsgType.BINARY:
                break
            data = msgpack.unpackb(message.data)
            if data.get("action") == "auth":
                await ws.send_bytes(msgpack.packb([{"T": "success", "msg": "authenticated"}]))
                feed.sockets.append(ws)
            elif data.get("action") == "subscribe":
                feed.subscriptions = set(data.get("quotes", []))
                reply = {"T": "subscription", "quotes": sorted(feed.subscriptions)}
                await ws.send_bytes(msgpack.packb([reply]))
            elif data.get("action") == "unsubscribe":
                feed.subscriptions -= set(data.get("quotes", []))
        return ws
