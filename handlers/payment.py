"""WeChat Pay's notifies, of payments and of refunds: verified (signature by the key its serial
names, a five-minute window, the encrypted resource), matched, applied once. 204 when accepted,
duplicates included; any other answer makes WeChat Pay send it again (for 24 hours)."""
import json
import logging

from handlers.base import BaseHandler
from lottery import metrics

from wechatpay.crypto import VerificationError
from lottery.errors import PaymentMismatch, RefundMismatch

log = logging.getLogger("gift_lottery.payment")


class NotifyHandler(BaseHandler):
    """A notify from WeChat Pay, not a member."""

    expect = ""

    async def prepare(self) -> None:
        self.current_user = None
        self.refuse_while_database_away()  # WeChat Pay sends it again later

    def verified(self) -> dict | None:
        """The notify's decrypted resource, or None after answering why not."""
        payments = self.settings.get("payments")
        if payments is None:
            self.fail(404, "NOT_CONFIGURED", "payments are not configured")
            return None
        try:
            return payments.verify_notify(self.request.headers, self.request.body, expect=self.expect)
        except VerificationError as exc:
            # WeChat Pay sends some notifies with bad signatures on purpose: they change nothing.
            log.warning("%s notify refused: %s", self.expect, exc.reason)
            self.fail(401, "SIGN_ERROR", "verification failed")
            return None

    def accepted(self) -> None:
        """WeChat Pay's success answer (duplicates too): it stops sending."""
        metrics.PAYMENT_NOTIFIES.labels(self.expect, "accepted").inc()
        self.set_status(204)
        self.finish()

    def fail(self, status: int, code: str, message: str) -> None:
        """WeChat Pay's failure answer: it retries."""
        metrics.PAYMENT_NOTIFIES.labels(self.expect, code.lower()).inc()
        self.set_status(status)
        self.finish(json.dumps({"code": code, "message": message}))


class PaymentNotifyHandler(NotifyHandler):
    expect = "transaction"

    async def post(self) -> None:
        transaction = self.verified()
        if transaction is None:
            return
        try:
            outcome = await self.orders.settle(transaction)
        except PaymentMismatch as exc:
            self.fail(400, "PARAM_ERROR", exc.message)
            return
        log.info("payment notify for order %s: %s", transaction.get("out_trade_no"), outcome)
        self.accepted()


class RefundNotifyHandler(NotifyHandler):
    expect = "refund"

    async def post(self) -> None:
        """REFUND.SUCCESS, REFUND.CLOSED or REFUND.ABNORMAL for one of our refunds: applied once."""
        notice = self.verified()
        if notice is None:
            return
        try:
            outcome = await self.refunds.settle(notice)
        except RefundMismatch as exc:
            # As a payment that does not match its order: refused (logged by settle), WeChat Pay retries.
            self.fail(400, "PARAM_ERROR", exc.message)
            return
        log.info("refund notify for %s: %s", notice.get("out_refund_no"), outcome or "already known")
        self.accepted()


default_handlers = [
    (r"/api/payment/wechat/notify", PaymentNotifyHandler),
    (r"/api/payment/wechat/refund-notify", RefundNotifyHandler),
]
