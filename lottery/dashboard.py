"""What the operator's console reads: today's figures, the order search and an order's whole
story. Read only; every action is in lottery/admin_actions.py. Counts come from indexed, capped
queries (lottery/backlogs.py), so the page costs the same on a database a year old."""
import re
from datetime import datetime, time, timedelta

from pymongo.asynchronous.database import AsyncDatabase

from lottery import backlogs, clock
from lottery.audit import AuditLog
from lottery.claims import claim_view
from lottery.errors import InvalidInput, OrderNotFound
from lottery.orders import ORDER_STATUSES, order_status
from lottery.refunds import refund_view
from lottery.storage import claims, gifts, members, notifications, orders, proofs, reconciliations, refunds
from lottery.validate import ID_PATTERN

SEARCH_LIMIT = 100
DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
TODAY_QUEUES = ("gifts_open", "gifts_due_today", "claims_to_ship", "refunds_pending", "refunds_processing",
                "refunds_failed", "refunds_abnormal", "notifications_failed")


def shanghai_midnight(now: datetime, days_back: int = 0) -> datetime:
    day = clock.as_utc(now).astimezone(clock.SHANGHAI).date() - timedelta(days=days_back)
    return clock.as_utc(datetime.combine(day, time(), clock.SHANGHAI))


def order_row(gift: dict) -> dict:
    """An order as the search lists it."""
    order = gift["order"]
    return {"order_id": gift["_id"], "status": order_status(order), "method": gift["method"],
            "amount_total": order["amount_total"], "buyer_id": order.get("buyer_id"),
            "created_at": clock.iso(gift["created_at"]), "paid_at": clock.iso(order.get("paid_at")),
            "lines": len(order["lines"])}


class Dashboard:
    def __init__(self, db: AsyncDatabase, audit: AuditLog) -> None:
        self.db = db
        self.audit = audit

    async def today(self) -> dict:
        """Orders and money in and out today and this week (Asia/Shanghai, the week from
        Monday), gifts open and due within a day, prizes to ship, refunds pending or failed,
        failed notifications, and yesterday's reconciliation."""
        now = clock.utcnow()
        today = shanghai_midnight(now)
        week = shanghai_midnight(now, clock.as_utc(now).astimezone(clock.SHANGHAI).weekday())
        figures = {}
        for name, start in (("today", today), ("week", week)):
            paid, paid_fen = await orders.paid_totals(self.db, start, now + timedelta(seconds=1))
            refunded, refunded_fen = await refunds.ended_totals(self.db, "success", start, now + timedelta(seconds=1))
            figures[name] = {"orders": paid, "paid": paid_fen, "refunds": refunded, "refunded": refunded_fen}
        yesterday = (today - timedelta(hours=1)).astimezone(clock.SHANGHAI).date().isoformat()
        report = await reconciliations.get(self.db, yesterday)
        return {**figures, "queues": await backlogs.count(self.db, TODAY_QUEUES),
                "reconciliation": {"date": yesterday, "status": report["status"] if report else None,
                                   "mismatches": len(report.get("mismatches", [])) if report else 0,
                                   "violations": len(report.get("violations", [])) if report else 0}}

    async def search_orders(self, order_id: str = "", buyer: str = "", day: str = "", status: str = "") -> list[dict]:
        """Orders by id, by buyer (member id or openid: the newest 100) or paid on a day; then
        of a status. Without any of these: the orders paid today."""
        if status and status not in ORDER_STATUSES:
            raise InvalidInput("订单状态不正确")
        if order_id:
            if not ID_PATTERN.match(order_id):
                raise InvalidInput("订单号格式错误")
            gift = await orders.get(self.db, order_id)
            found = [gift] if gift is not None else []
        elif buyer:
            if not ID_PATTERN.match(buyer):
                raise InvalidInput("买家格式错误")
            member = await members.by_openid(self.db, buyer)
            member_id = member["_id"] if member else buyer
            found = await orders.of_buyer(self.db, member_id, clock.utcnow() + timedelta(days=1), SEARCH_LIMIT)
        else:
            if day and not DAY.match(day):
                raise InvalidInput("日期须为 YYYY-MM-DD")
            try:
                start = shanghai_midnight(datetime.fromisoformat(day).replace(tzinfo=clock.SHANGHAI)) if day \
                    else shanghai_midnight(clock.utcnow())
            except ValueError:
                raise InvalidInput("日期不存在") from None
            found = (await orders.paid_between(self.db, start, start + timedelta(days=1)))[:SEARCH_LIMIT]
        rows = [order_row(g) for g in found if "order" in g and g["status"] != orders.RESERVING]
        return [row for row in rows if not status or row["status"] == status]

    async def order_story(self, order_id: str) -> dict:
        """An order's whole story: the payment, the gift, how many joined, the draw and its proof,
        each item's claim (addresses masked), its refunds, and its audit entries."""
        if not isinstance(order_id, str) or not ID_PATTERN.match(order_id):
            raise OrderNotFound()
        gift = await gifts.get(self.db, order_id)
        if gift is None:
            raise OrderNotFound()
        order = gift.get("order")
        item_claims = await claims.of_gift(self.db, order_id)
        notes = await notifications.status_counts(self.db, order_id)
        return {
            "order_id": order_id, "gift": gift, "order": order, "status": order_status(order) if order else None,
            "joins": gift.get("joined_count", 0),
            "proof": await proofs.exists(self.db, order_id),
            "claims": [claim_view(c) for c in item_claims],
            "refunds": [refund_view(r) for r in await refunds.of_order(self.db, order_id)],
            "notifications": notes,
            "audit": await self.audit.of_target(f"order:{order_id}") + await self._claims_audit(item_claims),
        }

    async def _claims_audit(self, item_claims: list[dict]) -> list[dict]:
        entries = []
        for claim in item_claims[:50]:
            entries += await self.audit.of_target(f"claim:{claim['_id']}")
        return sorted(entries, key=lambda e: e["entry_id"])
