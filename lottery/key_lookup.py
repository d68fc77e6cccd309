"""Who is behind a login key, without a database read per request.

Every authenticated request and websocket resolves its login key. Two things keep that off the
database's hot path:

- A key resolved recently, or issued by this process, is answered from memory until its expiry,
  or `remember` at most (keys are never revoked before they expire; the bound keeps the memory
  to the keys in use now). A member's first request after their login comes right after it,
  often to the same process. Unknown keys are not remembered: a key just issued by another
  process works at once.
- Keys not in memory that arrive together (a reconnect storm of waiting pages, a burst of joins)
  are read together: one query for up to BATCH of them, at most READS queries at a time. Each
  query runs under its first waiter's request budget (`pymongo.timeout`), so a hung database
  fails them all in time.

Only digests are kept, as in the database (accounts.key_digest)."""
import asyncio
import contextvars
from collections import OrderedDict
from datetime import datetime, timedelta

from pymongo.asynchronous.database import AsyncDatabase

from lottery import clock
from lottery.storage import login_keys

# Keys read in one query: $in over a few dozen ids is one cheap read everywhere; the embedded
# engine's $in grows worse than linearly past about a hundred (docs/benchmarks.md).
BATCH = 32
# Reads under way at once: keys arriving meanwhile wait for the next free one, so batches grow
# with the load instead of the queue of reads (and a quiet server reads a key at once).
READS = 4


class KeyLookup:
    """member id by login-key digest: remembered, else read in batches."""

    def __init__(self, db: AsyncDatabase, remember: timedelta = timedelta(minutes=5),
                 max_remembered: int = 200_000) -> None:
        self.db = db
        self.remember = remember
        self.max_remembered = max_remembered
        self._known: OrderedDict[str, tuple[str, datetime]] = OrderedDict()  # digest -> (member, until)
        self._waiting: dict[str, asyncio.Future] = {}  # digest -> its answer, read or to be read
        self._queued: list[tuple[str, contextvars.Context]] = []  # digests to read, with their requester's context
        self._slots = 0  # reads under way (or about to start)
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
            self._queued.append((digest, contextvars.copy_context()))
            if self._slots < READS:
                self._slots += 1
                asyncio.get_running_loop().call_soon(self._next_read)  # keys of this moment join it
        return await asyncio.shield(answer)

    def learn(self, digest: str, member_id: str, expires_at: datetime) -> None:
        """A key this process just stored: answered from memory from now on."""
        self._remember(digest, member_id, expires_at, clock.utcnow())

    def forget(self, digest: str) -> None:
        """Stop answering this key from memory (say, at a sign-out)."""
        self._known.pop(digest, None)

    def _next_read(self) -> None:
        """With a slot held: read the next batch, or give the slot back if none is queued."""
        if not self._queued:
            self._slots -= 1
            return
        batch, self._queued = self._queued[:BATCH], self._queued[BATCH:]
        # In its first requester's context: the read runs under that request's budget.
        batch[0][1].run(asyncio.ensure_future, self._read([digest for digest, _ in batch]))

    async def _read(self, digests: list[str]) -> None:
        now = clock.utcnow()
        try:
            found = await login_keys.members_for(self.db, digests, now)
        except BaseException as exc:
            for digest in digests:
                answer = self._waiting.pop(digest)
                if isinstance(exc, asyncio.CancelledError):
                    answer.cancel()
                else:
                    answer.set_exception(exc)
                    answer.exception()  # read: a waiter that gave up must not leave it unretrieved
            if isinstance(exc, asyncio.CancelledError):
                raise
            return  # the waiters have the error
        finally:
            asyncio.get_running_loop().call_soon(self._next_read)  # this slot serves the next batch
        self.reads += 1
        for digest in digests:
            member = found.get(digest)
            if member is not None:
                self._remember(digest, *member, now)
            self._waiting.pop(digest).set_result(member[0] if member else None)

    def _remember(self, digest: str, member_id: str, expires_at: datetime, now: datetime) -> None:
        self._known[digest] = (member_id, min(clock.as_utc(expires_at), now + self.remember))
        self._known.move_to_end(digest)
        while len(self._known) > self.max_remembered:
            self._known.popitem(last=False)
