"""Whether this process is alive, and whether it is ready for work: the database answers, the
live feed follows the gifts (web role), the scheduler runs its rounds (scheduler role), and it
is not shutting down. Load balancers and orchestrators read this through /healthz and /readyz."""
import time
from typing import Protocol

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from lottery.storage.connection import availability


class Feed(Protocol):
    mode: str
    following: bool
    active: bool


class Rounds(Protocol):
    is_leader: bool
    last_round_at: float | None
    sweep_interval: float


class Health:
    def __init__(self, db: AsyncDatabase, feed: Feed | None = None, scheduler: Rounds | None = None) -> None:
        self.db = db
        self.availability = availability(db.client)
        self.feed = feed  # a web-role process's
        self.scheduler = scheduler  # a scheduler-role process's
        self.shutting_down = False

    @property
    def database_available(self) -> bool:
        """False while PyMongo knows the database to be unreachable (no round trip: routes ask
        this before each request, to answer at once instead of waiting out a timeout)."""
        return self.availability.available

    async def database_ok(self) -> bool:
        """True when the database answers a ping (and is not known to be away)."""
        if not self.database_available:
            return False
        try:
            await self.db.command("ping")
        except PyMongoError:
            return False
        return True

    async def readiness(self) -> tuple[bool, dict]:
        """(ready, what each part says); not ready names why."""
        parts: dict = {"database": "ok" if await self.database_ok() else "unreachable"}
        problems = [] if parts["database"] == "ok" else ["database unreachable"]
        if self.feed is not None and self.feed.active:  # a hub not started yet follows nothing
            parts["live"] = self.feed.mode if self.feed.following else f"{self.feed.mode} reconnecting"
            if not self.feed.following:
                problems.append("live feed not following the gifts")
        if self.scheduler is not None:
            parts["scheduler"] = "leader" if self.scheduler.is_leader else "standby"
            last = self.scheduler.last_round_at
            stale_after = max(10.0, 5 * self.scheduler.sweep_interval)
            if last is None or time.monotonic() - last > stale_after:
                parts["scheduler"] += ", rounds stalled"
                problems.append("scheduler rounds stalled")
        if self.shutting_down:
            problems.append("shutting down")
        if problems:
            parts["reasons"] = problems
        return not problems, parts
