"""The draw: who wins a gift, decided once, verifiably, whatever crashes in between.

A draw is a state machine on the gift document: `open|ready -> drawing -> finished`. Taking a
gift into `drawing` is one conditional update that also sets a lease; a process that dies
mid-draw leaves a lease that expires, and the next taker finishes the same draw. The winners
follow from the committed seed and the frozen participant list (stored once, in `proofs`),
so a resumed draw commits the same winners, and every write is idempotent. The result is the
finished gift's `draw.winners`, written by the update that finishes it; the join records get
their outcomes `outcome_delay` (2 s) later, and readers take the result from the gift.

Gifts due together are drawn as one batch: the same handful of database commands serve one
gift or two hundred, which is what keeps many openings due in the same second on time (a
backlog goes in batches of `batch_size`)."""
import asyncio
import logging
import os
import secrets
import socket
from datetime import timedelta
from typing import Awaitable

from pymongo.asynchronous.database import AsyncDatabase

from lottery import clock, fairness
from lottery.errors import Forbidden, GiftNotFound, GiftOpened, NotOpenable, NotOpenedYet
from lottery.storage import draws as store
from lottery.storage import gifts as gift_store

log = logging.getLogger(__name__)


class Draws:
    """Opens gifts: on the last seat, when due, at the sender's request, or resuming."""

    def __init__(self, db: AsyncDatabase, lease: timedelta = timedelta(seconds=30),
                 settle_timeout: float = 2.0,
                 batch_window: float = 0.02, batch_size: int = 500, outcome_delay: float = 2.0) -> None:
        self.db = db
        self.lease = lease
        self.settle_timeout = settle_timeout
        self.batch_window = batch_window
        self.batch_size = batch_size
        self.outcome_delay = outcome_delay
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._tasks: set[asyncio.Task] = set()
        self._queued: set[str] = set()
        self._recording: set[str] = set()  # gifts whose outcomes this process is copying
        self._hurry = asyncio.Event()  # set by idle(): copy outcomes without waiting
        self._drainer: asyncio.Future | None = None

    # Entry points

    def open_soon(self, order_id: str) -> None:
        """Draw in the background, batched with whatever else comes due meanwhile (the joiner
        who took the last seat, or a scheduler job, does not wait)."""
        self._queued.add(order_id)
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.ensure_future(self._logged(self._drain()))

    async def _drain(self) -> None:
        # One batch at a time; requests that arrive meanwhile join the next one. Whatever else
        # is due rides along: when two hundred jobs fire in the same second, the first one
        # opens them all in one batch and the rest find nothing left to do.
        await asyncio.sleep(self.batch_window)
        while self._queued:
            self._queued = set()  # every queued gift is due (ready, or its time has come)
            await self.open_many(None)

    async def open(self, order_id: str) -> bool:
        """Draw the gift if it is due (or resume a stalled draw); True if this call finished it."""
        return order_id in await self.open_many([order_id])

    async def open_early(self, order_id: str, member_id: str) -> None:
        """The sender opens their full or timed gift now, among whoever joined."""
        gift = await gift_store.get_gift(self.db, order_id)
        if gift is None or not gift.get("paid"):
            raise GiftNotFound()
        if gift["sender_id"] != member_id:
            raise Forbidden("只有发起人可以提前开奖")
        if gift["method"] == "direct":
            raise NotOpenable()
        if not await self.open_many([order_id], early=True):
            raise GiftOpened()

    async def open_due(self) -> int:
        """The sweep: draw every gift that is due or whose draw stalled. Returns how many."""
        now = clock.utcnow()
        opened = 0
        try:
            opened = len(await self.open_many(None))
        except Exception:
            log.exception("draw batch failed; the next sweep retries")
        unrecorded = await store.unrecorded_outcomes(self.db, now - self.lease)
        if unrecorded:
            await self.record_outcomes(unrecorded)
        return opened

    async def proof(self, order_id: str) -> dict:
        """The public fairness proof of an opened gift."""
        gift = await gift_store.get_gift(self.db, order_id)
        if gift is None or not gift.get("paid"):
            raise GiftNotFound()
        proof = await store.get_proof(self.db, order_id)
        if gift["status"] != "finished" or proof is None:
            raise NotOpenedYet()
        return {
            "algorithm": proof["algorithm"], "version": proof["version"], "order_id": order_id,
            "seed_commitment": proof["seed_commitment"], "seed": proof["seed"],
            "participants": proof["participants"], "participants_hash": proof["participants_hash"],
            "items": proof["items"], "items_hash": proof["items_hash"], "winners": proof["winners"],
            "opened_at": clock.iso(gift.get("opened_at")),
        }

    async def idle(self, timeout: float | None = None) -> bool:
        """Finish the background work now (queued draws; outcome copies, without their delay)
        and wait for it. With a timeout (shutdown), what is left is cancelled: the sweep
        finishes it from the outbox. True if everything finished."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        self._hurry.set()
        try:
            while True:
                work = [*self._tasks, *[d for d in [self._drainer] if d is not None and not d.done()]]
                if not work:
                    return True
                left = None if deadline is None else deadline - loop.time()
                if left is not None and left <= 0:
                    for task in work:
                        task.cancel()
                    return False
                await asyncio.wait(work, timeout=left)
        finally:
            self._hurry.clear()

    # The draw

    async def open_many(self, order_ids: list[str] | None, early: bool = False) -> list[str]:
        """Take the due ones among these gifts (None: all due gifts) and draw them in batches;
        returns those this call finished."""
        now = clock.utcnow()
        token = f"{self.owner}:{secrets.token_hex(4)}"  # this call's lease
        gifts = await store.take(self.db, order_ids, token, now, now + self.lease, early)
        finished: list[str] = []
        for start in range(0, len(gifts), self.batch_size):
            if start:  # a backlog (say, after an outage): keep the rest leased meanwhile
                await store.extend_lease(self.db, token, clock.utcnow() + self.lease)
            finished += await self._draw_batch(gifts[start:start + self.batch_size])
        return finished

    async def _draw_batch(self, gifts: list[dict]) -> list[str]:
        participants, recorded = await self._participants(gifts)
        proofs = await store.save_proofs(self.db, [self._freeze(g, participants[g["_id"]]) for g in gifts])
        now = clock.utcnow()
        # Before the finish: restored joins, and the outbox records of what must follow it.
        await asyncio.gather(
            store.ensure_joins(self.db, [(g["_id"], m) for g in gifts for m in participants[g["_id"]]
                                         if m not in recorded[g["_id"]]], now),
            store.add_outbox(self.db, [
                {"_id": f"{prefix}:{g['_id']}", "kind": kind, "order_id": g["_id"], "status": "pending",
                 "created_at": now}
                for g in gifts for prefix, kind in (("opened", "gift_opened"), ("outcomes", "record_outcomes"))]))
        summaries = {g["_id"]: self._summary(g, proofs[g["_id"]]) for g in gifts}
        finished = await self._finish(summaries)
        for order_id in finished:
            log.info("gift %s opened: %d participants, %d winners", order_id,
                     summaries[order_id]["participant_count"], len(summaries[order_id]["winners"]))
        self._spawn(self.record_outcomes({o: summaries[o]["winners"] for o in finished}, self.outcome_delay))
        return finished

    async def record_outcomes(self, winners: dict[str, list[str]], delay: float = 0.0) -> None:
        """Copy the committed result of these finished gifts onto the join records: each
        winner's item, then `lost` on every other join. This comes after the finish because it
        touches every participant (seconds for 100,000 on the embedded engine), and a batch of
        gifts due together must not wait for it; until then readers take the result from the
        gift's `draw.winners`. `delay` lets the result's push and the reads it triggers go
        first (idle() cuts it short). The sweep finishes the copy for a process that died here
        (`record_outcomes` outbox)."""
        winners = {o: w for o, w in winners.items() if o not in self._recording}
        if not winners:
            return
        self._recording.update(winners)  # the sweep leaves this process's own copies alone
        try:
            if delay:
                try:
                    await asyncio.wait_for(self._hurry.wait(), delay)
                except asyncio.TimeoutError:
                    pass
            await self._write_winners([(order_id, member_id, index) for order_id, members in winners.items()
                                       for index, member_id in enumerate(members)])
            await store.write_losers(self.db, list(winners))
        finally:
            self._recording.difference_update(winners)

    async def _participants(self, gifts: list[dict]) -> tuple[dict[str, list[str]], dict[str, set[str]]]:
        """The participant list of each gift, and the members whose join record exists, by
        order id.

        Direct/full gifts: the claimants kept in the gift document (authoritative; a missing
        join record, from a process that died between its two writes, is restored).
        Timed: the join records, once they agree with the count (a timed join's count and
        record are two writes; wait briefly for writes already in flight)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settle_timeout
        expected = {g["_id"]: g["joined_count"] for g in gifts if g["method"] == "timed"}
        while True:
            recorded = await store.join_member_ids(self.db, [g["_id"] for g in gifts])
            unsettled = [o for o, count in expected.items() if len(recorded.get(o, ())) < count]
            if not unsettled or loop.time() >= deadline:
                break
            # Re-read the counts: a duplicate join gives its count back after the fact.
            expected.update(await store.joined_counts(self.db, unsettled))
            await asyncio.sleep(0.05)
        for order_id in unsettled:
            log.warning("gift %s: %d join records for a count of %d; drawing among the records",
                        order_id, len(recorded.get(order_id, ())), expected[order_id])
        participants = {g["_id"]: recorded.get(g["_id"], []) if g["method"] == "timed" else list(g["claimants"])
                        for g in gifts}
        return participants, {g["_id"]: set(recorded.get(g["_id"], ())) for g in gifts}

    def _freeze(self, gift: dict, member_ids: list[str]) -> dict:
        order_id = gift["_id"]
        by_pseudonym = {fairness.pseudonym(order_id, m): m for m in member_ids}
        participants = sorted(by_pseudonym)
        item_names = [item["name"] for item in gift["items"]]
        positions = fairness.draw(gift["seed"], order_id, participants, item_names)
        return {
            "_id": order_id, "algorithm": fairness.ALGORITHM, "version": fairness.VERSION,
            "seed_commitment": gift["seed_commitment"], "seed": gift["seed"],
            "participants": participants, "participants_hash": fairness.participants_hash(participants),
            "items": item_names, "items_hash": fairness.items_hash(item_names),
            "winners": [{"participant": participants[p], "item_index": i} for i, p in enumerate(positions)],
            "winner_member_ids": [by_pseudonym[participants[p]] for p in positions],
            "created_at": clock.utcnow(),
        }

    @staticmethod
    def _summary(gift: dict, proof: dict) -> dict:
        won = len(proof["winner_member_ids"])
        return {"winners": proof["winner_member_ids"], "returned": list(range(won, len(gift["items"]))),
                "participant_count": len(proof["participants"]),
                "participants_hash": proof["participants_hash"],
                "algorithm": f"{fairness.ALGORITHM}/v{fairness.VERSION}"}

    async def _finish(self, summaries: dict[str, dict]) -> list[str]:
        """The result, `draw.winners` (member ids in item order), committed with the finish;
        returns the gifts this call finished."""
        return await store.finish(self.db, summaries, clock.utcnow())

    async def _write_winners(self, winners: list[tuple[str, str, int]]) -> None:
        await store.write_winners(self.db, winners)

    def _spawn(self, work: Awaitable) -> None:
        task = asyncio.ensure_future(self._logged(work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _logged(work: Awaitable) -> None:
        try:
            await work
        except Exception:
            # The sweep retries; leases and idempotent writes make that safe.
            log.exception("background draw work failed")
