"""How much work is waiting, for the metrics' backlog gauges: counted in the background every
`interval` seconds with filters an index serves and a cap, never when scraped (a scrape must not
cost a count over a large collection)."""
from datetime import timedelta

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
        "notifications_failed": ("notifications", {"status": "failed"}),
        "gifts_open": ("gifts", {"status": "open"}),
        "gifts_due_today": ("gifts", {"status": "open", "due_at": {"$lte": now + timedelta(days=1)}}),
        "claims_to_ship": ("claims", {"status": "claimed"}),
        "gifts_overdue": ("gifts", {"status": "open", "due_at": {"$lte": now}}),
    }
    for kind in outbox.PREFIXES:
        found[f"outbox_{kind}"] = ("outbox", {"kind": kind, "status": "pending"})
    return found


async def count(db: AsyncDatabase, names: tuple[str, ...] | None = None) -> dict[str, int]:
    """Count these queues (all: None) now, each up to CAP."""
    counts = {}
    for name, (collection, query) in queues(clock.utcnow()).items():
        if names is None or name in names:
            counts[name] = await db[collection].count_documents(query, limit=CAP)
    return counts


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
        counts = await count(self.db)
        for name, value in counts.items():
            metrics.BACKLOG.labels(name).set(value)
        return counts

    async def _round(self) -> None:
        await self.refresh()  # then a pause of `interval`, whatever it counted
