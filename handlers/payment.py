"""WeChat Pay's payment notify: verified (signature by the key its serial names, a five-minute
window, the encrypted resource), matched against its order, applied once. 204 when accepted,
duplicates included; any other answer makes WeChat Pay send it again (for 24 hours)."""
import json
import logging

from handlers.base import BaseHandler
from lottery.orders import PaymentMismatch
from notify.wechatpay_crypto import VerificationError

log = logging.getLogger("gift_lottery.payment")


class PaymentNotifyHandler(BaseHandler):
    async def prepare(self) -> None:
        self.current_user = None  # WeChat Pay, not a member

    async def post(self) -> None:
        payments = self.settings.get("payments")
        if payments is None:
            self.fail(404, "NOT_CONFIGURED", "payments are not configured")
            return
        try:
            transaction = payments.verify_notify(self.request.headers, self.request.body, expect="transaction")
        except VerificationError as exc:
            # WeChat Pay sends some notifies with bad signatures on purpose: they change nothing.
            log.warning("payment notify refused: %s", exc.reason)
            self.fail(401, "SIGN_ERROR", "verification failed")
            return
        try:
            outcome = await self.orders.settle(transaction)
        except PaymentMismatch as exc:
            self.fail(400, "PARAM_ERROR", exc.message)
            return
        log.info("payment notify for order %s: %s", transaction.get("out_trade_no"), outcome)
        self.set_status(204)
        self.finish()

    def fail(self, status: int, code: str, message: str) -> None:
        """WeChat Pay's failure answer: it retries."""
        self.set_status(status)
        self.finish(json.dumps({"code": code, "message": message}))


default_handlers = [
    (r"/api/payment/wechat/notify", PaymentNotifyHandler),
]
