"""How much work is waiting, for the metrics' backlog gauges: counted in the background every
`interval` seconds with filters an index serves and a cap, never when scraped (a scrape must not
cost a count over a large collection)."""
from pymongo.asynchronous.database import AsyncDatabase

from lottery import clock, metrics
from lottery.background import Loop
from lottery.storage import outbox


CAP = 10_000  # a backlog past this reads as this: the alert has fired long before


def queues(now) -> dict[str, tuple[str, dict]]:
    """queue name -> (collection, filter)."""
    found = {
        "notifications_pending": ("notifications", {"status": "pending"}),
        "notifications_sending": ("notifications", {"status": "sending"}),
        "refunds_pending": ("refunds", {"status": "pending"}),
        "refunds_processing": ("refunds", {"status": "processing"}),
        "refunds_failed": ("refunds", {"status": "failed"}),
        "refunds_abnormal": ("refunds", {"status": "abnormal"}),
        "claims_to_ship": ("claims", {"status": "claimed"}),
        "gifts_overdue": ("gifts", {"status": "open", "due_at": {"$lte": now}}),
    }
    for kind in outbox.PREFIXES:
        found[f"outbox_{kind}"] = ("outbox", {"kind": kind, "status": "pending"})
    return found


class Backlogs:
    def __init__(self, db: AsyncDatabase, interval: float = 15.0) -> None:
        self.db = db
        # The gauges keep their last values while the database is away.
        self.loop = Loop("backlog count", self._round, interval)

    def start(self) -> None:
        self.loop.start()

    async def stop(self) -> None:
        await self.loop.stop()

    async def refresh(self) -> dict[str, int]:
        """Count every queue now and set its gauge."""
        counts = {}
        for name, (collection, query) in queues(clock.utcnow()).items():
            counts[name] = await self.db[collection].count_documents(query, limit=CAP)
            metrics.BACKLOG.labels(name).set(counts[name])
        return counts

    async def _round(self) -> None:
        await self.refresh()  # then a pause of `interval`, whatever it counted
