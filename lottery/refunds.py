"""Refunds: what a buyer paid for and nobody received goes back, exactly once.

An order's refundable items are registered once each, with the update that makes them so (the
finish of a draw for the items nobody won, the close of an order paid after it, a claim's
expiry). Then:

1. plan: an order's registered items not yet in a refund become its next refund, numbered
   `{order_id}R{n}` (WeChat Pay's `out_refund_no`), as few as possible (WeChat Pay allows 50 per
   order, one a minute): one conditional update on the order claims the items for that number.
2. send: a worker takes a pending refund with a lease, asks WeChat Pay to refund it (the same
   number is the same refund there, so a repeat after a lost answer pays nothing twice), and
   retries network errors, 5xx and rate limits with backoff; a refusal is final and shown to
   the operator.
3. settle: WeChat Pay's refund notify, or a query when none comes, ends it: SUCCESS moves the
   amount from refunding to refunded on the order and tells the sender; CLOSED ends it failed;
   ABNORMAL is kept and shown (it needs the operator).

Every step is one conditional update on the state it leaves, so two processes, a crash at any
point, and WeChat Pay's retries change nothing twice."""
import logging
import random
from datetime import datetime, timedelta
from typing import Protocol

from pymongo.asynchronous.database import AsyncDatabase

from lottery import clock, metrics
from lottery.background import Loop
from lottery.errors import ClaimNotFound, InvalidInput, PaymentFailure, RefundMismatch, WrongClaimState
from lottery.storage import claims, gifts, leases, orders, outbox
from lottery.storage import refunds as store

log = logging.getLogger(__name__)

MAX_REFUNDS = 50  # WeChat Pay's limit per order
SPACING = timedelta(seconds=61)  # WeChat Pay wants a minute between one order's refunds
QUERY_AFTER = timedelta(seconds=60)  # ask WeChat Pay about a refund no notify has ended
REASONS = {"not_won": "礼物未被领取", "claim_expired": "礼物逾期未领取", "paid_after_close": "订单已关闭",
           "manual": "商家退款"}
MAX_REASON = 80  # the operator's reason for a refund by hand (WeChat Pay takes 80 characters)
# WeChat Pay's refund states -> ours.
SETTLED = {"SUCCESS": "success", "CLOSED": "closed", "ABNORMAL": "abnormal"}


class RefundGateway(Protocol):
    async def refund(self, out_trade_no: str, out_refund_no: str, refund_fen: int, total_fen: int,
                     reason: str) -> dict: ...

    async def query_refund(self, out_refund_no: str) -> dict: ...


def refund_view(record: dict) -> dict:
    return {"refund_no": record["_id"], "order_id": record["order_id"], "amount": record["amount"],
            "items": record["items"], "status": record["status"], "reason": record["reason"],
            "attempts": record.get("attempts", 0), "last_error": record.get("last_error"),
            "created_at": clock.iso(record["created_at"]), "updated_at": clock.iso(record.get("updated_at"))}


class Refunds:
    """Planning, sending and settling refunds."""

    def __init__(self, db: AsyncDatabase, gateway: RefundGateway | None, lease: timedelta = timedelta(seconds=60),
                 max_attempts: int = 20, backoff_base: float = 5.0, backoff_cap: float = 1800.0,
                 spacing: timedelta = SPACING, query_after: timedelta = QUERY_AFTER) -> None:
        self.db = db
        self.gateway = gateway
        self.lease = lease
        self.spacing = spacing
        self.query_after = query_after
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.owner = leases.owner_id()

    async def run_once(self, limit: int = 100) -> int:
        """One round: plan, send what is due, ask about what WeChat Pay has not ended. Returns
        how many refunds it handled."""
        if self.gateway is None:
            return 0
        await self.plan(limit)
        sent = await self.send(limit)
        await self.check_processing(limit)
        return sent

    # 1. Plan

    async def plan(self, limit: int = 100) -> int:
        """Each order's registered items not in a refund yet become its next refund."""
        made = 0
        for order in await orders.with_refunds_to_make(self.db, limit):
            made += await self._plan(order)
        return made

    async def _plan(self, order: dict) -> int:
        payment = order["order"]
        seq = payment.get("refund_seq") or 0
        number = store.refund_no(order["_id"], seq + 1)
        existing = await store.get(self.db, number)
        if existing is not None:  # made by a planner that stopped before marking its items
            items = existing["items"]
        else:
            if seq >= MAX_REFUNDS:
                log.error("order %s: WeChat Pay's limit of %d refunds reached", order["_id"], MAX_REFUNDS)
                return 0
            items = sorted(int(i) for i, item in (payment.get("refund_items") or {}).items() if not item.get("refund_no"))
            if not items:
                return 0
            refund_items = payment["refund_items"]
            causes = {refund_items[str(i)]["cause"] for i in items}
            now = clock.utcnow()
            await store.insert(self.db, {
                "_id": number, "order_id": order["_id"], "items": items,
                "amount": sum(refund_items[str(i)]["price"] for i in items), "total": payment["amount_total"],
                "reason": "、".join(sorted(REASONS.get(c, c) for c in causes)), "status": "pending",
                "attempts": 0, "next_attempt_at": self._not_before(payment, now), "created_at": now,
                "updated_at": now, "lease_owner": None, "lease_until": None})
            existing = await store.get(self.db, number)
            items = existing["items"]
        if await orders.batched(self.db, order["_id"], seq, items, number, existing["amount"], clock.utcnow()):
            log.info("order %s: refund %s of %d fen planned (%d items)", order["_id"], number, existing["amount"], len(items))
            return 1
        return 0

    def _not_before(self, payment: dict, now: datetime) -> datetime:
        """A minute after the order's previous refund (WeChat Pay's spacing)."""
        last = payment.get("last_refund_at")
        return max(now, clock.as_utc(last) + self.spacing) if last else now

    # 2. Send

    async def send(self, limit: int = 100) -> int:
        now = clock.utcnow()
        due = await store.lapsed(self.db, now, limit) + await store.due(self.db, now, limit)
        random.shuffle(due)  # several processes read the same head of the queue
        handled = 0
        for record in due:
            handled += await self._send(record)
        return handled

    async def _send(self, record: dict) -> int:
        now = clock.utcnow()
        if not await store.claim(self.db, record, self.owner, now, now + self.lease):
            return 0  # another process has it
        attempts = record["attempts"] + 1
        try:
            answer = await self.gateway.refund(record["order_id"], record["_id"], record["amount"], record["total"],
                                               record["reason"])
        except PaymentFailure as exc:
            fields = self._after_failure(record, exc, attempts)
            metrics.REFUNDS.labels("retry" if fields["status"] == "pending" else "failed").inc()
        else:
            metrics.REFUNDS.labels("sent").inc()
            state = SETTLED.get(answer.get("status"))
            fields = {"status": "processing", "wechat_refund_id": answer.get("refund_id"),
                      "next_attempt_at": clock.utcnow() + self.query_after, "last_error": None}
            await orders.refund_sent(self.db, record["order_id"], clock.utcnow())
            if state:  # ended at once: settle (below) once the answer is recorded
                fields["next_attempt_at"] = clock.utcnow()
        fields["updated_at"] = clock.utcnow()
        if not await store.record(self.db, record["_id"], self.owner, fields):
            current = await store.get(self.db, record["_id"])
            if current is not None and current["status"] not in ("pending", "sending"):
                # WeChat Pay's notify (or a query) settled it while its answer was on the way.
                log.debug("refund %s: settled before the answer was recorded", record["_id"])
            else:
                log.warning("refund %s: its lease lapsed before the answer was recorded", record["_id"])
        return 1

    def _after_failure(self, record: dict, exc: PaymentFailure, attempts: int) -> dict:
        error = f"{exc.status} {exc.code}: {exc}"[:300]
        if exc.retryable and attempts < self.max_attempts:
            ceiling = min(self.backoff_cap, self.backoff_base * 2 ** (attempts - 1))
            wait = random.uniform(ceiling / 2, ceiling)
            if exc.code == "FREQUENCY_LIMITED":
                wait = max(wait, self.spacing.total_seconds())
            log.warning("refund %s: attempt %d failed (%s %s); again in %.0f s", record["_id"], attempts,
                        exc.status, exc.code, wait)
            return {"status": "pending", "last_error": error,
                    "next_attempt_at": clock.utcnow() + timedelta(seconds=wait)}
        log.error("refund %s failed for good: %s", record["_id"], error)
        return {"status": "failed", "last_error": error, "final_at": clock.utcnow()}

    # 3. Settle

    async def check_processing(self, limit: int = 100) -> int:
        """Ask WeChat Pay about refunds it has not ended (no notify came)."""
        checked = 0
        for record in await store.unresolved(self.db, clock.utcnow(), limit):
            try:
                answer = await self.gateway.query_refund(record["_id"])
            except PaymentFailure as exc:
                log.warning("refund %s: query failed (%s %s)", record["_id"], exc.status, exc.code)
                continue
            try:
                settled = await self.settle(answer)
            except RefundMismatch:
                settled = None
            if not settled:
                await store.requery_later(self.db, record["_id"], clock.utcnow() + self.query_after)
            checked += 1
        return checked

    async def settle(self, notice: dict) -> str | None:
        """Apply WeChat Pay's word on a refund (a verified notify, or a query's answer); the new
        state if this call changed it, else None. RefundMismatch, changing nothing, if it names
        no refund of ours or differs from the record in its order number or amount (fen), as a
        payment is checked against its order."""
        state = SETTLED.get(notice.get("refund_status") or notice.get("status"))
        number = notice.get("out_refund_no")
        if state is None or not isinstance(number, str):
            return None
        record = await store.get(self.db, number)
        if record is None:
            log.warning("refund notify for an unknown refund %s: nothing changed", number)
            metrics.REFUNDS.labels("unknown").inc()
            raise RefundMismatch("退款不存在")
        refunded = (notice.get("amount") or {}).get("refund")
        if notice.get("out_trade_no") != record["order_id"] or refunded != record["amount"] \
                or isinstance(refunded, bool):
            log.warning("refund %s: WeChat Pay's word does not match the record (order %s != %s, amount %s != %s "
                        "fen): nothing changed", number, str(notice.get("out_trade_no"))[:64], record["order_id"],
                        str(refunded)[:32], record["amount"])
            metrics.REFUNDS.labels("mismatch").inc()
            raise RefundMismatch()
        now = clock.utcnow()
        if not await store.settle(self.db, number, state, {"wechat_status": notice.get("refund_status")
                                                           or notice.get("status")}, now):
            return None
        metrics.REFUNDS.labels(state).inc()
        if state in ("success", "closed"):
            await orders.refund_ended(self.db, record["order_id"], record["amount"], state == "success", now)
        if state == "success":
            await self._tell_sender(record, now)
            log.info("refund %s of %d fen succeeded", number, record["amount"])
        else:
            log.error("refund %s ended %s at WeChat Pay; the operator must see to it", number, state)
        return state

    async def _tell_sender(self, record: dict, now: datetime) -> None:
        gift = await gifts.get(self.db, record["order_id"])
        if gift is None:
            return
        await outbox.add(self.db, [outbox.new_message(
            "gift_refunded", record["_id"], record["order_id"], gift["sender_id"],  # one per refund
            {"order_id": record["order_id"], "amount": f"{record['amount'] / 100:.2f}", "wish": gift.get("wish", ""),
             "result": "已退款"}, gift.get("sender_subscribed") or [], now)])

    # The operator

    async def page(self, status: str, cursor: str = "") -> dict:
        if status not in store.STATUSES:
            raise InvalidInput(f"status 必须是 {'、'.join(store.STATUSES)} 之一")
        found = await store.page(self.db, status, cursor, 51)
        return {"refunds": [refund_view(r) for r in found[:50]],
                "next_cursor": found[49]["_id"] if len(found) > 50 else None}

    async def of_order(self, order_id: str) -> list[dict]:
        return [refund_view(r) for r in await store.of_order(self.db, order_id)]

    async def by_hand(self, claim_id: str, reason: str) -> dict:
        """The owner refunds a won item that will not ship (out of stock, the winner asked): its
        claim, unclaimed or claimed, becomes `refunded` (one conditional update: a racing ship
        or a second refund loses), and the item is registered for refund like an expired one,
        then planned and sent by the refund worker. The claims' sweep registers it should this
        process stop between the two writes. Returns the claim as it was before."""
        reason = " ".join(reason.split()) if isinstance(reason, str) else ""
        if not reason or len(reason) > MAX_REASON or any(ord(c) < 32 for c in reason):
            raise InvalidInput(f"退款原因须为 1 到 {MAX_REASON} 个字")
        claim = await claims.get(self.db, claim_id)
        if claim is None:
            raise ClaimNotFound()
        gift = await gifts.get(self.db, claim["order_id"])
        price = claim["item"].get("price")
        if gift is None or "order" not in gift or not price:
            raise WrongClaimState("这件礼物不是买来的，没有可退的钱")
        now = clock.utcnow()
        if not await claims.refund_by_hand(self.db, claim_id, reason, now):
            raise WrongClaimState("只有未发货的礼物可以退款")
        await orders.register_refund(self.db, claim["order_id"], claim["item_index"], price, "manual", now)
        await claims.refund_registered(self.db, claim_id)
        log.info("claim %s refunded by hand (%d fen)", claim_id, price)
        return claim


def refund_worker(refunds: Refunds, interval: float = 1.0) -> Loop:
    """The refund worker of a scheduler-role process: `run_once` rounds (plan, send with leases,
    settle by query); the leases make any number of processes safe. While the database or WeChat
    Pay is away, records keep their state and the loop backs off."""
    return Loop("refund round", refunds.run_once, interval)
