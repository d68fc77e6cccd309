"""A big timed gift's join records, read shortly before its open time.

A draw reads every join record of its gift: on the embedded engine about 2 s for 100,000 (the
engine decodes each record; docs/benchmarks.md), most of the draw. The scheduler reads a big
timed gift's records ahead of its open time (`read`); the draw then reads only the records made
since, and the numbers of those that had none yet (a join numbers itself right after writing
its record). Nothing removes a join record before its gift's freeze, so what was read stays
true; a record written late with an earlier time than the draw asks for is caught by the count:
the draw uses the list only once it holds exactly the gift's `joined_count` numbered joins, and
reads the gift's records whole otherwise (lottery/draw.py `_participants`)."""
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from pymongo.asynchronous.database import AsyncDatabase

from lottery import clock
from lottery.storage import gifts, joins

log = logging.getLogger(__name__)

AT_LEAST = 5000  # joins; a smaller gift's records take well under a second to read at its draw
# A join's record is written within its request's budget (2.5 s) of its `joined_at`: the draw
# reads again what was made this long before the read ahead began.
MARGIN = timedelta(seconds=5)
KEEP = timedelta(minutes=10)  # a list no draw here used (another process drew the gift) is dropped


@dataclass
class EarlyList:
    since: datetime  # the draw reads the records made after this
    recorded: dict[str, int | None]  # member id -> sequence number, as read
    read_at: datetime


class ReadAhead:
    """The lists read ahead in this process, each used by one draw."""

    def __init__(self, db: AsyncDatabase, at_least: int = AT_LEAST) -> None:
        self.db = db
        self.at_least = at_least
        self._lists: dict[str, EarlyList] = {}

    async def read(self, order_id: str) -> bool:
        """Read this gift's join records now, if it is an open timed gift of at least
        `at_least` joins; True if it was."""
        now = clock.utcnow()
        self.forget_unused(now)
        gift = await gifts.get(self.db, order_id)
        if gift is None or gift["method"] != "timed" or gift["status"] != "open" or gift["joined_count"] < self.at_least:
            return False
        recorded = (await joins.member_ids(self.db, [order_id])).get(order_id, {})
        self._lists[order_id] = EarlyList(now - MARGIN, recorded, now)
        log.info("gift %s: %d join records read ahead of its draw", order_id, len(recorded))
        return True

    def forget_unused(self, now: datetime) -> None:
        """Drop the lists no draw here took in time (the sender opened the gift early at a web
        process, or another process leads now)."""
        self._lists = {o: kept for o, kept in self._lists.items() if kept.read_at > now - KEEP}

    def take(self, order_ids: list[str]) -> dict[str, EarlyList]:
        """The lists read for these gifts; each is taken once (a draw resumed later reads afresh)."""
        return {o: self._lists.pop(o) for o in order_ids if o in self._lists}

    async def recorded(self, order_id: str, kept: EarlyList) -> dict[str, int | None]:
        """The gift's join records now, as `joins.member_ids` gives them: the list read ahead,
        the records made since, and the numbers of those it read without one."""
        recent = await joins.member_ids_since(self.db, order_id, kept.since)
        unnumbered = [m for m, n in kept.recorded.items() if n is None and m not in recent]
        numbered = {m: join.get("sequence") for m, join in (await joins.of_members(
            self.db, order_id, unnumbered, len(kept.recorded))).items()} if unnumbered else {}
        return {**kept.recorded, **numbered, **recent}
