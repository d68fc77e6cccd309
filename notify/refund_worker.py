"""The refund worker: runs lottery/refunds.py's rounds (plan, send with leases, settle by query)
in the background of every scheduler-role process; the leases make any number safe."""
import asyncio

from lottery.background import Loop
from lottery.backoff import Backoff
from lottery.refunds import Refunds


class RefundWorker(Loop):
    def __init__(self, refunds: Refunds, interval: float = 1.0) -> None:
        self.refunds = refunds
        self.interval = interval

    async def _run(self) -> None:
        backoff = Backoff("refund round")
        while True:
            try:
                busy = await self.refunds.run_once()
            except Exception as exc:
                # The database or WeChat Pay is away: records keep their state; a later round retries.
                await asyncio.sleep(backoff.failed(exc))
                continue
            backoff.succeeded()
            if not busy:
                await asyncio.sleep(self.interval)
