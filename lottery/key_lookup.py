"""Who is behind a login key, without a database read per request.

Every authenticated request and websocket resolves its login key. Two things keep that off the
database's hot path:

- A key resolved recently is answered from memory until its expiry, or `remember` at most (keys
  are never revoked before they expire; the bound keeps the memory to the keys in use now).
  Unknown keys are not remembered: a key just issued by another process works at once.
- Keys not in memory that arrive together (a reconnect storm of waiting pages, a burst of joins)
  are read together: one query for up to BATCH of them. The query runs under the first
  waiter's request budget (`pymongo.timeout`), so a hung database fails them all in time.

Only digests are kept, as in the database (accounts.key_digest)."""
import asyncio
from collections import OrderedDict
from datetime import datetime, timedelta

from pymongo.asynchronous.database import AsyncDatabase

from lottery import clock
from lottery.storage import login_keys

# Keys read in one query: $in over a few dozen ids is one cheap read everywhere; the embedded
# engine's $in grows worse than linearly past about a hundred (docs/benchmarks.md).
BATCH = 32


class KeyLookup:
    """member id by login-key digest: remembered, else read in batches."""

    def __init__(self, db: AsyncDatabase, remember: timedelta = timedelta(minutes=5),
                 max_remembered: int = 200_000) -> None:
        self.db = db
        self.remember = remember
        self.max_remembered = max_remembered
        self._known: OrderedDict[str, tuple[str, datetime]] = OrderedDict()  # digest -> (member, until)
        self._waiting: dict[str, asyncio.Future] = {}  # digest -> its answer, for the next read
        self._reading = False
        self.reads = 0  # database queries made (for tests and benchmarks)

    async def member_for(self, digest: str) -> str | None:
        """The member behind this live key's digest, or None."""
        known = self._known.get(digest)
        if known is not None:
            if known[1] > clock.utcnow():
                return known[0]
            del self._known[digest]
        answer = self._waiting.get(digest)
        if answer is None:
            answer = self._waiting[digest] = asyncio.get_running_loop().create_future()
            if not self._reading:
                self._reading = True
                # In this request's context, so the read runs under its budget.
                asyncio.get_running_loop().call_soon(self._read_waiting_soon)
        return await asyncio.shield(answer)

    def forget(self, digest: str) -> None:
        """Stop answering this key from memory (say, at a sign-out)."""
        self._known.pop(digest, None)

    def _read_waiting_soon(self) -> None:
        asyncio.ensure_future(self._read_waiting())

    async def _read_waiting(self) -> None:
        try:
            while self._waiting:
                digests = list(self._waiting)[:BATCH]
                answers = {digest: self._waiting.pop(digest) for digest in digests}
                now = clock.utcnow()
                try:
                    found = await login_keys.members_for(self.db, digests, now)
                except BaseException as exc:
                    for answer in answers.values():
                        if not answer.done():
                            answer.set_exception(exc)
                            answer.exception()  # a waiter that gave up must not leave it unread
                    if isinstance(exc, asyncio.CancelledError):
                        raise
                    continue
                self.reads += 1
                for digest, answer in answers.items():
                    member = found.get(digest)
                    if member is not None:
                        self._remember(digest, *member, now)
                    if not answer.done():
                        answer.set_result(member[0] if member else None)
        finally:
            self._reading = False
            if self._waiting:  # arrived while the last read failed out of the loop
                self._reading = True
                asyncio.get_running_loop().call_soon(self._read_waiting_soon)

    def _remember(self, digest: str, member_id: str, expires_at: datetime, now: datetime) -> None:
        self._known[digest] = (member_id, min(clock.as_utc(expires_at), now + self.remember))
        self._known.move_to_end(digest)
        while len(self._known) > self.max_remembered:
            self._known.popitem(last=False)
