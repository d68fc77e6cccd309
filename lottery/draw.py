"""The draw: who wins a gift, decided once, verifiably, whatever crashes in between.

A draw is a state machine on the gift document: `open|ready -> drawing -> finished`. Taking a
gift into `drawing` is one conditional update that also sets a lease; a process that dies
mid-draw leaves a lease that expires, and the next taker finishes the same draw. The winners
follow from the committed seed and the frozen participant list (stored once, in `proofs`),
so a resumed draw writes the same winners, and every write is idempotent."""
import asyncio
import logging
import os
import secrets
import socket
from datetime import timedelta

from pymongo.asynchronous.database import AsyncDatabase

from lottery import clock, fairness
from lottery.errors import Forbidden, GiftNotFound, GiftOpened, LotteryError
from lottery.storage import draws as store
from lottery.storage import gifts as gift_store

log = logging.getLogger(__name__)


class NotOpenable(LotteryError):
    code = "not_openable"
    status = 409
    message = "直接送礼不能提前开奖"


class NotOpenedYet(LotteryError):
    code = "not_opened"
    status = 409
    message = "尚未开奖"


class Draws:
    """Opens gifts: on the last seat, when due, at the sender's request, or resuming."""

    def __init__(self, db: AsyncDatabase, lease: timedelta = timedelta(seconds=30),
                 settle_timeout: float = 2.0, fault_pause_after_items: int = 0) -> None:
        self.db = db
        self.lease = lease
        self.settle_timeout = settle_timeout
        # Fault injection for tests: stop (forever) after writing this many winners.
        self.fault_pause_after_items = fault_pause_after_items
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._tasks: set[asyncio.Task] = set()

    def open_soon(self, order_id: str) -> None:
        """Start a draw in the background (the joiner who took the last seat does not wait)."""
        task = asyncio.get_running_loop().create_task(self._open_logged(order_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _open_logged(self, order_id: str) -> None:
        try:
            await self.open(order_id)
        except Exception:
            # The sweep retries; the lease makes that safe.
            log.exception("draw of gift %s failed", order_id)

    async def open(self, order_id: str) -> bool:
        """Draw the gift if it is due (or resume a stalled draw); True if this call finished it."""
        now = clock.utcnow()
        if not await store.take(self.db, order_id, self.owner, now, now + self.lease):
            return False
        return await self._draw(order_id)

    async def open_early(self, order_id: str, member_id: str) -> None:
        """The sender opens their full or timed gift now, among whoever joined."""
        gift = await gift_store.get_gift(self.db, order_id)
        if gift is None or not gift.get("paid"):
            raise GiftNotFound()
        if gift["sender_id"] != member_id:
            raise Forbidden("只有发起人可以提前开奖")
        if gift["method"] == "direct":
            raise NotOpenable()
        now = clock.utcnow()
        if not await store.take(self.db, order_id, self.owner, now, now + self.lease, early=True):
            raise GiftOpened()
        await self._draw(order_id)

    async def open_due(self) -> int:
        """The sweep: draw every gift that is due or whose draw stalled. Returns how many."""
        opened = 0
        for order_id in await store.due_gift_ids(self.db, clock.utcnow()):
            try:
                opened += await self.open(order_id)
            except Exception:
                log.exception("draw of gift %s failed; the next sweep retries", order_id)
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

    async def _draw(self, order_id: str) -> bool:
        gift = await gift_store.get_gift(self.db, order_id, with_secrets=True)
        proof = await store.get_proof(self.db, order_id)
        if proof is None:
            member_ids = await self._participants(gift)
            proof = await store.save_proof(self.db, self._freeze(gift, member_ids))
        if gift["method"] != "timed":
            await self._restore_missing_joins(gift)
        winners = list(zip(proof["winner_member_ids"], range(len(proof["winner_member_ids"]))))
        await self._write_winners(order_id, winners)
        await store.write_losers(self.db, order_id)
        await store.add_outbox(self.db, {"_id": f"opened:{order_id}", "kind": "gift_opened",
                                         "order_id": order_id, "status": "pending",
                                         "created_at": clock.utcnow()})
        summary = {"winners": proof["winner_member_ids"],
                   "returned": list(range(len(winners), len(gift["items"]))),
                   "participant_count": len(proof["participants"]),
                   "participants_hash": proof["participants_hash"],
                   "algorithm": f"{fairness.ALGORITHM}/v{fairness.VERSION}"}
        finished = await store.finish(self.db, order_id, summary, clock.utcnow())
        if finished:
            log.info("gift %s opened: %d participants, %d winners", order_id,
                     len(proof["participants"]), len(winners))
        return finished

    async def _participants(self, gift: dict) -> list[str]:
        """The frozen participant list. Direct/full gifts: the claimants in the gift document.
        Timed: the join records, once the counter and the records agree (a join's count and
        record are two writes; wait briefly for writes already in flight)."""
        if gift["method"] != "timed":
            return list(gift["claimants"])
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settle_timeout
        while True:
            member_ids = await store.join_member_ids(self.db, gift["_id"])
            current = await gift_store.get_gift(self.db, gift["_id"])
            if len(member_ids) >= current["joined_count"] or loop.time() >= deadline:
                if len(member_ids) != current["joined_count"]:
                    log.warning("gift %s: %d join records for a count of %d; drawing among the records",
                                gift["_id"], len(member_ids), current["joined_count"])
                return member_ids
            await asyncio.sleep(0.05)

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

    async def _restore_missing_joins(self, gift: dict) -> None:
        have = set(await store.join_member_ids(self.db, gift["_id"]))
        missing = [m for m in gift["claimants"] if m not in have]
        await store.ensure_joins(self.db, gift["_id"], missing, clock.utcnow())

    async def _write_winners(self, order_id: str, winners: list[tuple[str, int]]) -> None:
        if not self.fault_pause_after_items:
            await store.write_winners(self.db, order_id, winners)
            return
        for count, winner in enumerate(winners, 1):
            await store.write_winners(self.db, order_id, [winner])
            if count == self.fault_pause_after_items:
                log.warning("fault injection: draw of %s paused after %d winners", order_id, count)
                await asyncio.sleep(3600)
