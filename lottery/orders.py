"""Orders: a buyer picks products, the server prices them, holds their stock and asks WeChat Pay
for a payment; when the payment is confirmed (its notify, or a query) the order is paid and its
gift opens to joiners, in one update that counts once (lottery/storage/orders.py). Unpaid orders
expire: they are closed at WeChat Pay and their stock goes back. A payment that lands on an order
already closed is recorded for refund.

WeChat Pay is reached through a `PaymentGateway` (wechatpay/client.py in production, its local
fake in development and tests); the domain knows nothing of HTTP."""
import hashlib
import json
import logging
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Protocol

from pymongo.asynchronous.database import AsyncDatabase

from lottery import clock, metrics
from lottery.errors import (IdempotencyKeyReused, InvalidInput, LoginExpired, LotteryError, OrderInProgress, OrderNotFound, OutOfStock, PaymentFailure, PaymentMismatch, PaymentsNotConfigured, ProductNotFound, TooManyUnpaidOrders, UpstreamError)
from lottery.gifts import DEFAULT_WISH, MAX_ITEMS, GiftSpec, Item, check_gift, new_gift
from lottery.moderation import Moderation
from lottery.storage import members, products
from lottery.storage import orders as store
from lottery.validate import check_identifier

log = logging.getLogger(__name__)

MAX_LINES = 20
PREPAY_LIFETIME = timedelta(minutes=110)  # WeChat Pay's prepay ids last two hours
STALLED_RESERVING = timedelta(minutes=1)
# What a buyer sees of an order's state.
ORDER_STATUSES = ("unpaid", "paid", "closed", "refunding", "refunded", "partially_refunded")


class PaymentGateway(Protocol):
    """The calls the orders make to WeChat Pay."""

    async def jsapi_prepay(self, out_trade_no: str, description: str, total_fen: int, openid: str,
                           time_expire: datetime) -> str: ...

    def request_payment_params(self, prepay_id: str) -> dict[str, str]: ...

    async def query_by_out_trade_no(self, out_trade_no: str) -> dict: ...

    async def close(self, out_trade_no: str) -> None: ...


@dataclass(frozen=True)
class OrderLine:
    product_id: str
    quantity: int
    tier: int = 0  # the prize tier of these units (lottery.gifts.Item); 0: none
    tier_name: str = ""

    def key(self) -> list:
        """How the line is told apart and digested: a line without a tier as before tiers."""
        return [self.product_id, self.quantity] + ([self.tier, self.tier_name] if self.tier or self.tier_name else [])


@dataclass(frozen=True)
class OrderSpec:
    """What a buyer orders: products and how the gift they make opens."""

    lines: list[OrderLine]
    method: str
    open_number: int | None = None
    open_at: datetime | None = None
    wish: str = DEFAULT_WISH
    deadline_hours: int | None = None
    sender_subscribed: list[str] = field(default_factory=list)
    pass_phrase: str | None = None  # entry conditions (lottery/entry.py)
    group_only: bool = False
    # The client's idempotency key; without one, the same request while it is open is the same order.
    request_key: str | None = None


def order_status(order: dict) -> str:
    """unpaid, paid, closed, or once refunds began: refunding (one under way), partially_refunded
    or refunded (all that was paid)."""
    paid = order["amount_total"] if order["status"] == "paid" or order.get("paid_after_close") else 0
    if order.get("amount_refunding"):
        return "refunding"
    if order.get("amount_refunded"):
        return "refunded" if order["amount_refunded"] >= paid else "partially_refunded"
    return order["status"]


def refund_summary(order: dict) -> dict:
    """Where an order's refunds stand, as its sender's view of the gift shows it:
    `amount_to_refund` is registered for refund but not in a refund yet."""
    registered = (order.get("refund_items") or {}).values()
    return {"status": order_status(order), "amount_total": order["amount_total"],
            "amount_refunded": order.get("amount_refunded", 0), "amount_refunding": order.get("amount_refunding", 0),
            "amount_to_refund": sum(item["price"] for item in registered if not item.get("refund_no"))}


def order_view(gift: dict) -> dict:
    """An order as its buyer sees it."""
    order = gift["order"]
    view = {
        "order_id": gift["_id"], "status": order_status(order), "method": gift["method"],
        "open_number": gift.get("open_number"), "open_at": clock.iso(gift.get("open_at")),
        "deadline_at": clock.iso(gift.get("deadline_at")),
        "lines": [{k: line[k] for k in ("product_id", "name", "price", "quantity", "image")} for line in order["lines"]],
        "amount_total": order["amount_total"], "amount_refunded": order.get("amount_refunded", 0),
        "amount_refunding": order.get("amount_refunding", 0), "wish": gift.get("wish_pending") or gift["wish"],
        "created_at": clock.iso(gift["created_at"]), "expires_at": clock.iso(order.get("expires_at")),
        "paid_at": clock.iso(order.get("paid_at")), "closed_at": clock.iso(order.get("closed_at")),
        "gift": None,
    }
    if order["status"] == "paid":
        view["gift"] = {"order_id": gift["_id"], "url": f"/gift/{gift['_id']}", "status": gift["status"]}
    if order.get("paid_after_close"):
        view["paid_after_close"] = {"amount": order["paid_after_close"]["amount"], "refund": "pending"}
    return view


class Orders:
    """Creating orders, paying them, and expiring the unpaid ones."""

    def __init__(self, db: AsyncDatabase, gateway: PaymentGateway | None, mchid: str = "", appid: str = "",
                 expire_after: timedelta = timedelta(minutes=15), description: str = "礼物抽奖",
                 max_unpaid_orders: int = 3, max_unpaid_units: int = 50,
                 moderation: Moderation | None = None) -> None:
        self.db = db
        self.moderation = moderation or Moderation(db, None)  # the wish and pass phrase's content check
        # What one member may hold unpaid, so that nobody keeps a product's stock with orders never paid.
        self.max_unpaid_orders = max_unpaid_orders
        self.max_unpaid_units = max_unpaid_units
        self.gateway = gateway
        self.mchid = mchid
        self.appid = appid
        self.expire_after = expire_after
        self.description = description

    # Buying

    async def create(self, buyer_id: str, spec: OrderSpec) -> tuple[dict, dict, bool]:
        """A new unpaid order (or the open one this same request made before: False), and the
        parameters of `wx.requestPayment` for it."""
        try:
            order, pay, new = await self._create(buyer_id, spec)
        except LotteryError as exc:
            metrics.ORDERS.labels(exc.code).inc()
            raise
        metrics.ORDERS.labels("created" if new else "repeated").inc()
        return order, pay, new

    async def _create(self, buyer_id: str, spec: OrderSpec) -> tuple[dict, dict, bool]:
        if self.gateway is None:
            raise PaymentsNotConfigured()
        now = clock.utcnow()
        lines = merged_lines(spec.lines)
        found = await products.get_many(self.db, [line.product_id for line in lines])
        items = []
        for line in lines:
            product = found.get(line.product_id)
            if product is None or not product["on_sale"]:
                raise ProductNotFound(f"商品不存在或已下架：{line.product_id}")
            image = (product.get("images") or [""])[0]
            items += [Item(product["name"], image, product["_id"], product["price"], line.tier, line.tier_name)
                      ] * line.quantity
        buyer = await members.get(self.db, buyer_id) or {}
        if not buyer.get("openid"):
            raise LoginExpired("请先用微信登录")
        gift_spec = GiftSpec(buyer["openid"], spec.method, items, open_number=spec.open_number,
                             open_at=spec.open_at, wish=spec.wish, deadline_hours=spec.deadline_hours,
                             pass_phrase=spec.pass_phrase, group_only=spec.group_only,
                             sender_subscribed=spec.sender_subscribed)
        check_gift(gift_spec, now, images=None)  # the catalogue checked its images
        if spec.method == "timed" and spec.open_at < now + self.expire_after + timedelta(minutes=5):
            minutes = int(self.expire_after.total_seconds() // 60) + 5
            raise InvalidInput(f"开奖时间至少在 {minutes} 分钟后（付款有 {minutes - 5} 分钟）")
        key, digest = request_key(buyer_id, spec), body_digest(spec, lines)
        # User text others may see (and the phrase) goes through WeChat's content check first.
        wish_verdict = "pass" if spec.wish == DEFAULT_WISH else await self.moderation.screen(
            "wish", buyer["openid"], spec.wish)
        if spec.pass_phrase:
            await self.moderation.screen("pass_phrase", buyer["openid"], spec.pass_phrase)
        order = await self._new(buyer_id, buyer, gift_spec, lines, found, key, digest, now, wish_verdict)
        new = order is not None
        if not new:  # this request made an order before: the same one
            order = await self._existing(key, digest if spec.request_key else None)
        return order, await self.pay_params(order), new

    async def _new(self, buyer_id: str, buyer: dict, spec: GiftSpec, lines: list[OrderLine],
                   found: dict[str, dict], key: str, digest: str, now: datetime, wish_verdict: str) -> dict | None:
        gift = new_gift(spec, buyer_id, buyer, now)
        if not self.moderation.shown(wish_verdict):  # others see the default wish meanwhile
            gift.update(wish=DEFAULT_WISH, wish_pending=spec.wish, wish_check=wish_verdict)
        amount = sum(item.price for item in spec.items)
        gift.update(status=store.RESERVING, paid=False, due_at=now, order={
            "buyer_id": buyer_id, "status": store.RESERVING, "key": key, "key_open": True,
            "body_digest": digest,
            "lines": [{"product_id": line.product_id, "name": found[line.product_id]["name"],
                       "price": found[line.product_id]["price"], "quantity": line.quantity,
                       "image": (found[line.product_id].get("images") or [""])[0],
                       **({"tier": line.tier} if line.tier else {})} for line in lines],
            "amount_total": amount, "deadline_hours": spec.deadline_hours,
            "expires_at": now + self.expire_after, "payer_openid": buyer["openid"]})
        if await store.insert(self.db, gift) is None:
            return None
        await self.moderation.hold("wish", gift["_id"], buyer["openid"], spec.wish, wish_verdict)
        held: list[OrderLine] = []
        for line in lines:
            if not await products.hold(self.db, line.product_id, gift["_id"], line.quantity):
                await self._release(gift, held)
                await store.drop(self.db, gift["_id"])
                raise OutOfStock(f"库存不足：{found[line.product_id]['name']}")
            held.append(line)
        # Counted among its buyer's unpaid orders in one update whose filter carries the caps.
        if not await self._hold_unpaid(buyer_id, gift):
            await self._release(gift, held)
            await store.drop(self.db, gift["_id"])
            log.warning("member %s: order refused, over %d unpaid orders or %d units", buyer_id,
                        self.max_unpaid_orders, self.max_unpaid_units)
            raise TooManyUnpaidOrders()
        await store.held(self.db, gift["_id"], gift["order"]["expires_at"], clock.utcnow())
        gift.update(status=store.UNPAID, due_at=gift["order"]["expires_at"])
        gift["order"]["status"] = store.UNPAID
        log.info("order %s created: %d fen, %d lines", gift["_id"], amount, len(lines))
        return gift

    async def _hold_unpaid(self, buyer_id: str, gift: dict) -> bool:
        """Count the order among its buyer's unpaid ones, within the caps. Refused, it first
        uncounts any order that left unpaid while its process stopped before uncounting it."""
        for _ in range(2):
            if await store.hold_unpaid(self.db, buyer_id, gift["_id"], units_of(gift), self.max_unpaid_orders,
                                       self.max_unpaid_units):
                return True
            repaired = 0
            for order_id, units in (await store.unpaid_held(self.db, buyer_id)).items():
                order = await store.get(self.db, order_id)
                if order_id != gift["_id"] and (order is None or order["status"] not in (store.RESERVING, store.UNPAID)):
                    repaired += await store.release_unpaid(self.db, buyer_id, order_id, units)
            if not repaired:
                return False
        return False

    async def _existing(self, key: str, digest: str | None) -> dict:
        """The open order this key made; with a client's key (`digest` given), only if it was made
        from the same body: the IETF Idempotency-Key draft's 409 otherwise."""
        order = await store.by_key(self.db, key)
        if order is not None and digest is not None and order["order"].get("body_digest") != digest:
            log.warning("order %s: its Idempotency-Key was reused with a different body", order["_id"])
            raise IdempotencyKeyReused()
        if order is None or order["status"] != store.UNPAID:
            # Still holding stock in another request (or it ended meanwhile): try again shortly.
            raise OrderInProgress()
        return order

    async def pay_params(self, order: dict) -> dict:
        """`wx.requestPayment`'s parameters for an unpaid order: its prepay id while it is
        fresh, a new one otherwise."""
        if self.gateway is None:
            raise PaymentsNotConfigured()
        if order["status"] != store.UNPAID:
            raise InvalidInput("订单已支付或已关闭")
        now = clock.utcnow()
        payment = order["order"]
        prepay_id, prepay_at = payment.get("prepay_id"), payment.get("prepay_at")
        if not prepay_id or clock.as_utc(prepay_at) < now - PREPAY_LIFETIME:
            try:
                prepay_id = await self.gateway.jsapi_prepay(
                    order["_id"], self.description, payment["amount_total"], payment["payer_openid"],
                    clock.as_utc(payment["expires_at"]).astimezone(clock.SHANGHAI))
            except PaymentFailure as exc:
                log.warning("order %s: WeChat Pay prepay failed (%s %s)", order["_id"], exc.status, exc.code)
                raise UpstreamError("微信支付暂时不可用，请稍后再试") from exc
            await store.remember_prepay(self.db, order["_id"], prepay_id, now)
        return self.gateway.request_payment_params(prepay_id)

    async def order_of(self, order_id: str, buyer_id: str) -> dict:
        """The buyer's order, its payment looked up at WeChat Pay while no notify has come."""
        order = await store.get(self.db, check_identifier(order_id))
        if order is None or order["order"]["buyer_id"] != buyer_id or order["status"] == store.RESERVING:
            raise OrderNotFound()
        if order["status"] == store.UNPAID and order["order"].get("prepay_id") and self.gateway is not None:
            try:
                transaction = await self.gateway.query_by_out_trade_no(order_id)
            except PaymentFailure as exc:
                log.warning("order %s: WeChat Pay query failed (%s %s)", order_id, exc.status, exc.code)
            else:
                if await self.settle(transaction) != "ignored":
                    order = await store.get(self.db, order_id)
        return order

    async def recheck(self, order_id: str) -> dict:
        """The operator asks WeChat Pay about an order again: `{trade_state, outcome}`, where
        `outcome` is what applying its answer did (Orders.settle's word: "paid" when the notify
        had been lost). UpstreamError when WeChat Pay does not answer."""
        order = await store.get(self.db, check_identifier(order_id))
        if order is None or "order" not in order or order["status"] == store.RESERVING:
            raise OrderNotFound()
        if self.gateway is None:
            raise PaymentsNotConfigured()
        try:
            transaction = await self.gateway.query_by_out_trade_no(order_id)
        except PaymentFailure as exc:
            log.warning("order %s: WeChat Pay query failed (%s %s)", order_id, exc.status, exc.code)
            raise UpstreamError(f"微信支付查询失败：{exc.code or exc.status}") from exc
        return {"trade_state": str(transaction.get("trade_state"))[:32], "outcome": await self.settle(transaction)}

    async def of_buyer(self, buyer_id: str, cursor: str = "") -> dict:
        """`{orders, next_cursor}`: the buyer's orders, newest first."""
        before = parse_cursor(cursor)
        found = await store.of_buyer(self.db, buyer_id, before, 21)
        page = [o for o in found[:20] if "order" in o and o["status"] != store.RESERVING]
        return {"orders": [order_view(o) for o in page],
                "next_cursor": clock.iso(found[19]["created_at"]) if len(found) > 20 else None}

    # Payment

    async def settle(self, transaction: dict) -> str:
        """Apply a verified WeChat Pay transaction (from a notify or a query): "paid" (this call
        paid the order), "already_paid", "paid_after_close" (recorded for refund) or "ignored"
        (not a success). PaymentMismatch if it does not match its order."""
        try:
            outcome = await self._settle(transaction)
        except PaymentMismatch:
            metrics.PAYMENTS.labels("mismatch").inc()
            raise
        metrics.PAYMENTS.labels(outcome).inc()
        return outcome

    async def _settle(self, transaction: dict) -> str:
        if transaction.get("trade_state") != "SUCCESS":
            return "ignored"
        order_id = transaction.get("out_trade_no")
        order = await store.get(self.db, order_id) if isinstance(order_id, str) else None
        if order is None:
            raise PaymentMismatch("订单不存在")
        total = (transaction.get("amount") or {}).get("total")
        if (transaction.get("mchid"), transaction.get("appid")) != (self.mchid, self.appid) \
                or total != order["order"]["amount_total"]:
            log.error("order %s: payment does not match the order (merchant, app or amount %s != %s)",
                      order_id, total, order["order"]["amount_total"])
            raise PaymentMismatch()
        now = clock.utcnow()
        if await store.paid(self.db, order_id, transaction, now):
            for line in order["order"]["lines"]:
                await products.sell(self.db, line["product_id"], order_id)
            await store.release_unpaid(self.db, order["order"]["buyer_id"], order_id, units_of(order))
            log.info("order %s paid: %d fen", order_id, total)
            return "paid"
        current = await store.get(self.db, order_id)
        if current["status"] == store.CLOSED:
            if await store.paid_after_close(self.db, current, transaction, now):
                log.error("order %s: paid after it was closed; its whole amount goes back (%d fen)", order_id, total)
            return "paid_after_close"
        return "already_paid"

    # Expiry

    async def sweep(self, limit: int = 100) -> int:
        """Close unpaid orders past their expiry (at WeChat Pay first, so no payment can land
        after), give their stock back, and finish reservations whose process stopped. Returns
        how many orders it closed."""
        now = clock.utcnow()
        closed = 0
        for order in await store.expired(self.db, now, limit):
            closed += await self._expire(order)
        for order in await store.stalled(self.db, now - STALLED_RESERVING, limit):
            await self._release(order, [OrderLine(line["product_id"], line["quantity"])
                                        for line in order["order"]["lines"]])
            await store.drop(self.db, order["_id"])
        return closed

    async def _expire(self, order: dict) -> int:
        order_id = order["_id"]
        if order["order"].get("prepay_id") and self.gateway is not None:
            try:
                transaction = await self.gateway.query_by_out_trade_no(order_id)
                if transaction.get("trade_state") == "SUCCESS":
                    await self.settle(transaction)
                    return 0
                await self.gateway.close(order_id)
            except PaymentFailure as exc:
                if exc.code != "ORDERNOTEXIST":
                    log.warning("order %s: could not close it at WeChat Pay (%s %s); retrying later",
                                order_id, exc.status, exc.code)
                    return 0
        if not await store.closed(self.db, order_id, clock.utcnow()):
            return 0
        await self._release(order, [OrderLine(line["product_id"], line["quantity"])
                                    for line in order["order"]["lines"]])
        log.info("order %s closed unpaid; stock given back", order_id)
        return 1

    async def _release(self, order: dict, lines: list[OrderLine]) -> None:
        """An order leaves unpaid without a sale: its held stock (of `lines`) goes back and its
        buyer's unpaid count drops, each once."""
        for line in lines:
            await products.release(self.db, line.product_id, order["_id"], line.quantity)
        await store.release_unpaid(self.db, order["order"]["buyer_id"], order["_id"], units_of(order))


def units_of(order: dict) -> int:
    """How many units an order holds (what its buyer's unpaid count carries)."""
    return sum(line["quantity"] for line in order["order"]["lines"])


def merged_lines(lines: list[OrderLine]) -> list[OrderLine]:
    """The lines with one per product, checked: 1 to 20 lines, at most MAX_ITEMS units."""
    if not lines:
        raise InvalidInput("items 必须是非空列表")
    if len(lines) > MAX_LINES:
        raise InvalidInput(f"items 最多 {MAX_LINES} 种商品")
    # One line per product; a product is in one prize tier (stock is held per product and order).
    merged: dict[str, OrderLine] = {}
    for line in lines:
        check_identifier(line.product_id, "product_id")
        if isinstance(line.quantity, bool) or not isinstance(line.quantity, int) or not 1 <= line.quantity <= MAX_ITEMS:
            raise InvalidInput(f"quantity 必须是 1 到 {MAX_ITEMS} 之间的整数")
        before = merged.get(line.product_id)
        if before is not None and (before.tier, before.tier_name) != (line.tier, line.tier_name):
            raise InvalidInput("同一商品只能属于一个奖项等级")
        merged[line.product_id] = replace(line, quantity=line.quantity + (before.quantity if before else 0))
    if sum(line.quantity for line in merged.values()) > MAX_ITEMS:
        raise InvalidInput(f"一个礼物最多 {MAX_ITEMS} 件")
    return list(merged.values())


def body_digest(spec: OrderSpec, lines: list[OrderLine]) -> str:
    """The digest of an order request's body as parsed and checked (`lines` merged): sorted-keys
    JSON, so the same order written another way is the same body."""
    canonical = json.dumps({
        "lines": sorted(line.key() for line in lines), "method": spec.method,
        "open_number": spec.open_number, "open_at": clock.iso(spec.open_at), "wish": spec.wish,
        "deadline_hours": spec.deadline_hours, "sender_subscribed": sorted(spec.sender_subscribed),
        **entry_fields(spec)},
        sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def entry_fields(spec: OrderSpec) -> dict:
    """An order's entry conditions as its digests see them (none: as before they existed)."""
    return {name: value for name, value in (("pass_phrase", spec.pass_phrase), ("group_only", spec.group_only)) if value}


def request_key(buyer_id: str, spec: OrderSpec) -> str:
    """The same request from the same buyer gives the same key: the client's idempotency key,
    or else the request itself."""
    what = spec.request_key or json.dumps({
        "lines": sorted(tuple(line.key()) for line in spec.lines), "method": spec.method,
        "open_number": spec.open_number, "open_at": clock.iso(spec.open_at), "wish": spec.wish,
        "deadline_hours": spec.deadline_hours, **entry_fields(spec)}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(f"{buyer_id}|{what}".encode()).hexdigest()[:32]


def parse_cursor(cursor: str) -> datetime:
    if not cursor:
        return clock.utcnow() + timedelta(days=1)
    try:
        return clock.parse_time(cursor)
    except ValueError as exc:
        raise InvalidInput("cursor 格式错误") from exc

