"""Daily reconciliation (对账) against WeChat Pay's bills: for one day (Asia/Shanghai), WeChat
Pay's trade bill (payments and refunds, downloaded and checked by its hash) is compared line by
line with our orders paid and refunds ended that day:

- `missing_here`: paid at WeChat Pay, not paid here (its notify was lost and no query came): the
  order is settled through the very transition a notify uses (`Orders.settle`, with the
  transaction as a query reports it), and counted as `settled_by_reconciliation`;
- `missing_there`: paid here, not in the bill; `amount_differs`: both, with other amounts;
- `refund_missing_here`, `refund_missing_there`, `refund_amount_differs`: the same for refunds.

It also checks the money invariant of each order it looked at (`money_violations`). The report
of a day is one document (lottery/storage/reconciliations.py) that is also the day's run lock:
the leader's scheduler round calls `run_due`, which reconciles the previous day once it is past
`after_hour` (WeChat Pay's bills are ready after 10:00), once across restarts and processes; the
operator may `rerun` a day."""
import csv
import logging
import re
from dataclasses import dataclass, field
from datetime import date as Date, datetime, time, timedelta
from typing import Protocol

from pymongo.asynchronous.database import AsyncDatabase

from lottery import clock, metrics
from lottery.errors import (BillNotReady, InvalidInput, PaymentFailure, PaymentMismatch, PaymentsNotConfigured,
                            ReconciliationBusy, ReconciliationNotFound, UpstreamError)
from lottery.orders import Orders
from lottery.storage import claims as claim_store
from lottery.storage import leases
from lottery.storage import orders as order_store
from lottery.storage import reconciliations as store
from lottery.storage import refunds as refund_store

log = logging.getLogger(__name__)

KINDS = ("missing_here", "missing_there", "amount_differs", "refund_missing_here", "refund_missing_there",
         "refund_amount_differs")
RUN_LEASE = timedelta(minutes=10)  # a run whose process died is taken again after this
RETRY_AFTER = timedelta(minutes=30)  # the bill not ready, or WeChat Pay away: try again after this
MAX_LISTED = 1000  # mismatches and violations listed in one report (all are counted)
NO_STATEMENT = "NO_STATEMENT_EXIST"
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
AMOUNT = re.compile(r"(-?)(\d+)\.(\d{2})")


class BillGateway(Protocol):
    """WeChat Pay's calls reconciliation makes (wechatpay/client.py)."""

    async def trade_bill(self, bill_date: str) -> dict: ...

    async def download_bill(self, download_url: str, hash_type: str, hash_value: str) -> bytes: ...

    async def query_by_out_trade_no(self, out_trade_no: str) -> dict: ...


class BillUnreadable(ValueError):
    """A bill file not in WeChat Pay's layout, or whose summary disagrees with its lines."""


# -- The bill --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BillLine:
    """One line of a trade bill: a payment (`SUCCESS`) or a refund (`REFUND`); `amount` in fen
    is the order's amount (订单金额) for a payment, the refund applied for (申请退款金额) for a refund."""

    trade_time: str
    state: str
    transaction_id: str
    out_trade_no: str
    amount: int
    out_refund_no: str | None = None
    refund_status: str | None = None


@dataclass(frozen=True)
class Bill:
    payments: list[BillLine] = field(default_factory=list)
    refunds: list[BillLine] = field(default_factory=list)
    summary: dict[str, str] = field(default_factory=dict)


def fen(text: str) -> int:
    """Yuan with two decimals (`12.34`, `-0.05`) as integer fen, exactly (never through a float)."""
    match = AMOUNT.fullmatch(text.strip())
    if match is None:
        raise BillUnreadable(f"not an amount: {text[:20]!r}")
    sign, whole, cents = match.groups()
    return (-1 if sign else 1) * (int(whole) * 100 + int(cents))


def parse_bill(text: str) -> Bill:
    """A trade bill (bill_type ALL) as WeChat Pay writes it: a header line, one line per record
    with each field behind a backquote, a summary header (总交易单数, ...) and one summary line.
    Columns are found by their header names. BillUnreadable if it is not one, or if its summary
    does not add up to its lines."""
    rows = [row for row in csv.reader(text.lstrip("\ufeff").splitlines()) if any(cell.strip() for cell in row)]
    if not rows or "商户订单号" not in rows[0]:
        raise BillUnreadable("no bill header")
    header = [name.strip() for name in rows[0]]
    ends = next((i for i, row in enumerate(rows) if row and row[0].strip().lstrip("`") == "总交易单数"), None)
    if ends is None or ends + 1 >= len(rows):
        raise BillUnreadable("no summary")
    payments, refunds = [], []
    settled = refunded = 0
    for row in rows[1:ends]:
        if len(row) != len(header):
            raise BillUnreadable(f"a line of {len(row)} fields under a header of {len(header)}")
        cell = {name: value.strip().lstrip("`") for name, value in zip(header, row)}
        settled += fen(cell["应结订单金额"])
        refunded += fen(cell["退款金额"])
        if cell["交易状态"] == "REFUND":
            refunds.append(BillLine(cell["交易时间"], "REFUND", cell["微信订单号"], cell["商户订单号"],
                                    fen(cell["申请退款金额"]), cell["商户退款单号"], cell["退款状态"]))
        else:
            payments.append(BillLine(cell["交易时间"], cell["交易状态"], cell["微信订单号"], cell["商户订单号"],
                                     fen(cell["订单金额"])))
    summary = dict(zip([name.strip() for name in rows[ends]], (v.strip().lstrip("`") for v in rows[ends + 1])))
    try:
        counted = int(summary["总交易单数"])
        totals = fen(summary["应结订单总金额"]), fen(summary["退款总金额"])
    except (KeyError, ValueError) as exc:
        raise BillUnreadable(f"summary unreadable ({exc})") from None
    if counted != len(payments) + len(refunds) or totals != (settled, refunded):
        raise BillUnreadable("the summary does not add up to the lines")
    return Bill(payments, refunds, summary)


def day_bounds(day: str) -> tuple[datetime, datetime]:
    """The day's start and end (Asia/Shanghai) as UTC."""
    start = datetime.combine(Date.fromisoformat(day), time(), clock.SHANGHAI)
    return clock.as_utc(start), clock.as_utc(start + timedelta(days=1))


def checked_date(text: object, today: Date) -> str:
    """`YYYY-MM-DD`, a real day not after today; InvalidInput otherwise."""
    if not isinstance(text, str) or not DATE.fullmatch(text):
        raise InvalidInput("date 须为 YYYY-MM-DD 格式的日期")
    try:
        day = Date.fromisoformat(text)
    except ValueError:
        raise InvalidInput("date 不是有效日期") from None
    if day > today:
        raise InvalidInput("date 不能晚于今天")
    return text


# -- The money invariant ---------------------------------------------------------------------------

def money_violations(gift: dict, claims: list[dict]) -> list[str]:
    """What is wrong with an order's money, if anything: paid = the value of the items it still
    gives (delivered, claimable, or not given out yet) + refunded + refunding + registered for
    refund but not in a refund yet; nothing negative; never more refunded than paid; an item
    registered for refund was never claimed."""
    order = gift["order"]
    paid = order["amount_total"] if order["status"] == "paid" or order.get("paid_after_close") else 0
    registered = order.get("refund_items") or {}
    kept = sum(item["price"] for i, item in enumerate(gift["items"]) if str(i) not in registered) \
        if paid and order["status"] == "paid" else 0
    unplanned = sum(item["price"] for item in registered.values() if not item.get("refund_no"))
    refunded, refunding = order.get("amount_refunded", 0), order.get("amount_refunding", 0)
    wrong = []
    if paid != kept + refunded + refunding + unplanned:
        wrong.append(f"paid {paid} != kept {kept} + refunded {refunded} + refunding {refunding} "
                     f"+ to refund {unplanned}")
    if min(refunded, refunding, unplanned, kept) < 0:
        wrong.append("a negative amount")
    if refunded + refunding > paid:
        wrong.append(f"refunded {refunded} + refunding {refunding} > paid {paid}")
    by_index = {claim["item_index"]: claim for claim in claims}
    for index in registered:
        claim = by_index.get(int(index))
        if claim is not None and claim["status"] not in ("expired", "refunded"):
            wrong.append(f"item {index} registered for refund but its claim is {claim['status']}")
    return wrong


# -- The service -----------------------------------------------------------------------------------

def report_view(report: dict) -> dict:
    """A day's report as the admin API answers it."""
    return {"date": report["_id"], "status": report["status"], "summary": report.get("summary"),
            "mismatches": report.get("mismatches", []), "violations": report.get("violations", []),
            "attempts": report.get("attempts", 0), "last_error": report.get("last_error"),
            "started_at": clock.iso(report.get("started_at")), "finished_at": clock.iso(report.get("finished_at"))}


class Reconciliation:
    """Reconciling a day, daily by the leader's scheduler round and again on the operator's word."""

    def __init__(self, db: AsyncDatabase, gateway: BillGateway | None, orders: Orders, after_hour: int = 10) -> None:
        self.db = db
        self.gateway = gateway
        self.orders = orders
        self.after_hour = after_hour
        self.owner = leases.owner_id()
        self._done_through: str | None = None  # the last day seen done: no more reads for it

    async def run_due(self, now: datetime | None = None) -> dict | None:
        """The leader's round: reconcile the previous day once it is past `after_hour`, unless it
        is done, running elsewhere or waiting for its bill. The new report, or None."""
        if self.gateway is None:
            return None
        now = now or clock.utcnow()
        local = clock.as_utc(now).astimezone(clock.SHANGHAI)
        if local.hour < self.after_hour:
            return None
        day = (local.date() - timedelta(days=1)).isoformat()
        if day == self._done_through:
            return None
        existing = await store.get(self.db, day)
        if existing is not None and existing["status"] == store.DONE:
            self._done_through = day
            return None
        if not await store.claim(self.db, day, self.owner, now, now + RUN_LEASE):
            return None
        try:
            report = await self._run(day, now)
        except (BillNotReady, UpstreamError):
            return None
        self._done_through = day
        return report

    async def rerun(self, day: object) -> dict:
        """The operator: reconcile `day` now, replacing its report. ReconciliationBusy while a run
        holds it; BillNotReady when WeChat Pay has no bill yet for a day we had trades."""
        if self.gateway is None:
            raise PaymentsNotConfigured()
        now = clock.utcnow()
        day = checked_date(day, now.astimezone(clock.SHANGHAI).date())
        until = now + RUN_LEASE
        if not (await store.claim(self.db, day, self.owner, now, until)
                or await store.claim_again(self.db, day, self.owner, now, until)):
            raise ReconciliationBusy()
        return report_view(await self._run(day, now))

    async def report(self, day: object) -> dict:
        """A day's report; InvalidInput for a malformed day, ReconciliationNotFound for one never run."""
        day = checked_date(day, clock.utcnow().astimezone(clock.SHANGHAI).date())
        found = await store.get(self.db, day)
        if found is None:
            raise ReconciliationNotFound()
        return report_view(found)

    async def _run(self, day: str, now: datetime) -> dict:
        """Reconcile a day this process holds, and store its report (or its wait)."""
        try:
            report = await self.check(day)
        except BillNotReady as exc:
            await store.wait(self.db, day, self.owner, now + RETRY_AFTER, "bill not ready")
            metrics.RECONCILIATION_RUNS.labels("waiting").inc()
            log.info("reconciliation %s: WeChat Pay's bill is not ready; again later", day)
            raise exc
        except (PaymentFailure, BillUnreadable) as exc:
            await store.wait(self.db, day, self.owner, now + RETRY_AFTER, str(exc))
            metrics.RECONCILIATION_RUNS.labels("failed").inc()
            log.warning("reconciliation %s failed (%s); again later", day, exc)
            raise UpstreamError("微信支付账单暂时无法获取，请稍后再试") from exc
        await store.finish(self.db, day, self.owner, report, clock.utcnow())
        metrics.RECONCILIATION_RUNS.labels("done").inc()
        counts = report["summary"]["mismatches"]
        for kind in KINDS:
            metrics.RECONCILIATION_MISMATCHES.labels(kind).set(counts[kind])
        metrics.RECONCILIATION_MISMATCHES.labels("money_invariant").set(report["summary"]["invariant_violations"])
        log.info("reconciliation %s done: %s, %d settled, %d invariant violations", day,
                 ", ".join(f"{kind} {n}" for kind, n in counts.items() if n) or "no mismatch",
                 report["summary"]["settled_by_reconciliation"], report["summary"]["invariant_violations"])
        return {"_id": day, **report, "status": store.DONE, "attempts": 0}

    async def check(self, day: str) -> dict:
        """Compare the day's bill with our orders and refunds, settle what WeChat Pay charged and
        we never heard of, and check the money invariant: the report (not stored). Safe to run
        concurrently with itself and with notifies: settling is the notify's own conditional
        transition, so an order is paid once whoever gets there first."""
        start, end = day_bounds(day)
        ours = {gift["_id"]: gift for gift in await order_store.paid_between(self.db, start, end)}
        our_refunds = {r["_id"]: r for r in await refund_store.ended_between(self.db, "success", start, end)}
        bill = await self._bill(day, bool(ours or our_refunds))
        mismatches: list[dict] = []
        settled = 0
        looked_at: dict[str, dict] = dict(ours)
        for line in bill.payments:
            gift = ours.get(line.out_trade_no) or await order_store.get(self.db, line.out_trade_no)
            if gift is not None:
                looked_at[gift["_id"]] = gift
            if gift is None or not paid_here(gift):
                outcome = await self._settle(line.out_trade_no)
                settled += outcome in ("paid", "paid_after_close")
                mismatches.append(mismatch("missing_here", line.out_trade_no, line.amount, None, resolution=outcome))
            elif amount_here(gift) != line.amount:
                mismatches.append(mismatch("amount_differs", line.out_trade_no, line.amount, amount_here(gift)))
        in_bill = {line.out_trade_no for line in bill.payments}
        for order_id, gift in ours.items():
            if order_id not in in_bill:
                mismatches.append(mismatch("missing_there", order_id, None, amount_here(gift)))
        refunds_there = [line for line in bill.refunds if line.refund_status == "SUCCESS"]
        for line in refunds_there:
            record = our_refunds.get(line.out_refund_no) or await refund_store.get(self.db, line.out_refund_no)
            if record is None or record["status"] != "success":
                mismatches.append(mismatch("refund_missing_here", line.out_trade_no, line.amount, None,
                                           out_refund_no=line.out_refund_no,
                                           status_here=record["status"] if record else None))
            elif record["amount"] != line.amount:
                mismatches.append(mismatch("refund_amount_differs", line.out_trade_no, line.amount,
                                           record["amount"], out_refund_no=line.out_refund_no))
        refunded_there = {line.out_refund_no for line in refunds_there}
        for number, record in our_refunds.items():
            if number not in refunded_there:
                mismatches.append(mismatch("refund_missing_there", record["order_id"], None, record["amount"],
                                           out_refund_no=number))
        for order_id in {line.out_trade_no for line in refunds_there} | {r["order_id"] for r in our_refunds.values()}:
            if order_id not in looked_at and (gift := await order_store.get(self.db, order_id)) is not None:
                looked_at[order_id] = gift
        violations = await self._violations(looked_at)
        if settled:
            metrics.RECONCILIATION_SETTLED.inc(settled)
        counts = {kind: sum(1 for m in mismatches if m["kind"] == kind) for kind in KINDS}
        summary = {
            "bill": "ready" if bill.summary else "none",
            "payments_there": len(bill.payments), "payments_here": len(ours),
            "amount_there": sum(line.amount for line in bill.payments),
            "amount_here": sum(amount_here(gift) for gift in ours.values()),
            "refunds_there": len(refunds_there), "refunds_here": len(our_refunds),
            "refunded_there": sum(line.amount for line in refunds_there),
            "refunded_here": sum(record["amount"] for record in our_refunds.values()),
            "mismatches": counts, "settled_by_reconciliation": settled, "orders_checked": len(looked_at),
            "invariant_violations": len(violations)}
        return {"summary": summary, "mismatches": mismatches[:MAX_LISTED], "violations": violations[:MAX_LISTED]}

    async def _bill(self, day: str, had_trades: bool) -> Bill:
        """The day's bill, downloaded and checked by its hash; an empty one when WeChat Pay has no
        statement and neither had we. BillNotReady when it has none but we had trades (not ready
        yet: WeChat Pay gives one code to both)."""
        try:
            answer = await self.gateway.trade_bill(day)
        except PaymentFailure as exc:
            if getattr(exc, "code", None) != NO_STATEMENT:
                raise
            if had_trades:
                raise BillNotReady() from exc
            return Bill()
        raw = await self.gateway.download_bill(answer.get("download_url", ""), answer.get("hash_type", ""),
                                               answer.get("hash_value", ""))
        try:
            return parse_bill(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise BillUnreadable("the bill is not UTF-8") from exc

    async def _settle(self, order_id: str) -> str:
        """Settle an order WeChat Pay charged and we never heard of, through the notify's own
        transition, with the transaction as WeChat Pay's (verified) query reports it: its
        outcome (`paid`, `already_paid` when a notify or another run got there first,
        `paid_after_close`), or why it could not be."""
        try:
            transaction = await self.gateway.query_by_out_trade_no(order_id)
        except PaymentFailure as exc:
            log.warning("reconciliation: order %s could not be queried (%s)", order_id, getattr(exc, "code", exc))
            return "query_failed"
        if transaction.get("trade_state") == "REFUND":  # paid, then (partly) refunded at WeChat Pay
            transaction = {**transaction, "trade_state": "SUCCESS"}
        try:
            outcome = await self.orders.settle(transaction)
        except PaymentMismatch:
            return "mismatch"
        if outcome in ("paid", "paid_after_close"):
            log.warning("reconciliation: order %s was paid at WeChat Pay without a notify; settled (%s)",
                        order_id, outcome)
        return outcome

    async def _violations(self, gifts: dict[str, dict]) -> list[dict]:
        found = []
        for order_id, gift in gifts.items():
            current = await order_store.get(self.db, order_id) or gift  # after any settling above
            wrong = money_violations(current, await claim_store.of_gift(self.db, order_id))
            if wrong:
                log.error("money invariant broken for order %s: %s", order_id, "; ".join(wrong))
                found.append({"out_trade_no": order_id, "problems": wrong})
        return found


def paid_here(gift: dict) -> bool:
    return gift["order"]["status"] == "paid" or bool(gift["order"].get("paid_after_close"))


def amount_here(gift: dict) -> int:
    order = gift["order"]
    return order["paid_after_close"]["amount"] if order.get("paid_after_close") else order["amount_total"]


def mismatch(kind: str, out_trade_no: str, amount_there: int | None, amount_here_: int | None, **more) -> dict:
    return {"kind": kind, "out_trade_no": out_trade_no, "amount_there": amount_there, "amount_here": amount_here_,
            **more}
