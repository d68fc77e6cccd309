"""Admitting members to a gift: the join's writes, grouped per gift.

A join is a seat (or item, or count) taken by one conditional update on the gift, then the
join record. The joins of one gift that arrive while its previous step is in the database go
together (lottery/group_commit.py): one update admits them all or none, and one insert records
them, so a hot gift costs the database about two writes per step instead of several per join.
Every admission rule stays in the update's filter, so racing steps in any number of processes
admit exactly what one-by-one joins would.

Direct and full gifts keep each claimant's position, and the update holds the count it read,
so each admitted member's position is known without a read: a direct gift's item, a full
gift's join sequence number (its receipt is signed before the record is written, and the
record holds both). Timed gifts only count; their records take numbers from the gift's counter
once they exist (storage/sequences.py), so a duplicate never takes one."""
import asyncio
import logging
from datetime import datetime, timedelta
from typing import Callable, Hashable, NamedTuple

from pymongo.asynchronous.database import AsyncDatabase

from lottery import clock, fairness, metrics
from lottery.errors import (AlreadyJoined, GiftClosed, GiftFull, GiftNotFound, GiftOpened, LotteryError,
                            JoinOutcomeUnknown, NoItemsLeft, OwnGift)
from lottery.group_commit import GroupCommit
from lottery.receipts import ReceiptKey
from lottery.storage import gifts as store
from lottery.storage import joins, proofs, sequences

log = logging.getLogger(__name__)

# Joins of one gift admitted in one step at most: the update's filter and `$set` name each of
# them in the claimant map, and sixteen keep a step short on any engine (docs/benchmarks.md).
MAX_BATCH = 16
# A step refused because a racing one moved the count first reads again and retries, at most
# this many times (each retry means other joiners got in).
MAX_CLAIMS = 50
# A full gift's joiner who saw this many seats or fewer left tells the draw to look.
NUDGE_SEATS = 16
# How long a draw waits for the records of joins already counted (lottery/draw.py). A timed join
# recorded half that long or more after its count may have missed it: it looks whether the
# frozen list has it, and waits at most FREEZE_WAIT for that list.
SETTLE_SECONDS = 2.0
LATE_RECORD = timedelta(seconds=SETTLE_SECONDS / 2)
FREEZE_WAIT = 10.0


class Joiner(NamedTuple):
    """A member asking to join, with what their request read and sent."""
    gift: dict
    member_id: str
    form_id: str
    subscribed: list[str] | None
    request_id: str | None


class Admitted(NamedTuple):
    gift: dict  # as this member's step left it
    item_index: int | None  # a direct gift's item, theirs
    receipt: dict | None  # the signed receipt of a drawn gift's join


class _RecordLost(Exception):
    """A member already holds a full gift's seat (at `position`) without a join record: the
    attempt that took it lost its answer before writing the record."""

    def __init__(self, position: int) -> None:
        super().__init__(position)
        self.position = position


def is_live(gift: dict | None) -> bool:
    """Whether a stored gift exists for members: unknown and unpaid gifts are "not found"."""
    return gift is not None and bool(gift.get("paid"))


def live(gift: dict | None) -> dict:
    """The stored gift if it exists for members; GiftNotFound for unknown and unpaid gifts."""
    if not is_live(gift):
        raise GiftNotFound()
    return gift


def receipt_of(order_id: str, member_id: str, join: dict) -> dict | None:
    """The signed receipt a join holds (None until it is numbered)."""
    if join.get("sequence") is None:
        return None
    return {"gift": order_id, "participant": fairness.pseudonym(order_id, member_id), "sequence": join["sequence"],
            "signature": join["receipt"]}


class Admission:
    """Joins, admitted per gift in steps of up to `max_batch`."""

    def __init__(self, db: AsyncDatabase, receipt_key: ReceiptKey, on_ready: Callable[[str], None] | None = None,
                 max_batch: int = MAX_BATCH) -> None:
        self.db = db
        self.receipt_key = receipt_key
        # Called with the order id when a step may have taken the last seat of a full gift.
        self.on_ready = on_ready
        self.steps = GroupCommit(self._step, max_batch)
        # order id -> the gift as this process's last step left it (the next step's best guess
        # of the counts, bounded: an old guess only costs a refused step and a read)
        self._latest: dict[str, dict] = {}

    async def join(self, joiner: Joiner, conditions: dict) -> Admitted:
        """Admit this member (their entry conditions met, as filter conditions); the refusal's
        error otherwise."""
        key = (joiner.gift["_id"], tuple(sorted(conditions.items())))
        return await self.steps.submit(key, joiner, joiner.member_id)

    async def _step(self, key: Hashable, joiners: list[Joiner],
                    release: Callable[[], None]) -> list[Admitted | LotteryError]:
        order_id, conditions = key[0], dict(key[1])
        metrics.JOIN_STEP_SIZE.observe(len(joiners))
        gift = max([j.gift for j in joiners] + [self._latest.pop(order_id, joiners[0].gift)],
                   key=lambda g: g["version"])
        if gift["method"] == "timed":
            outcomes = await self._counted(gift, joiners, conditions, release)
        else:
            outcomes = await self._seated(gift, joiners, conditions, release)
        return [outcomes[j.member_id] for j in joiners]

    # Direct and full gifts

    async def _seated(self, gift: dict, pending: list[Joiner], conditions: dict,
                      release: Callable[[], None]) -> dict[str, Admitted | LotteryError]:
        """Seats (items) for these members in claimant order, as many as are left; the gift's
        next step starts once this one's seats are taken."""
        outcomes: dict[str, Admitted | LotteryError] = {}
        now = clock.utcnow()
        counter = "items_left" if gift["method"] == "direct" else "seats_left"
        raced = False  # the last refusal came with the count moved by a racing step
        for _ in range(MAX_CLAIMS):
            if not pending:
                return outcomes
            left = gift[counter]
            taking = pending[:max(left, 0)]
            if gift["status"] == "open" and taking and await store.claim(
                    self.db, gift, [j.member_id for j in taking], now, conditions):
                first = store.first_position(gift)
                gift = store.after_claim(gift, len(taking))
                self._remember(gift)
                release()
                outcomes.update(await self._record_seats(gift, [(j, first + i) for i, j in enumerate(taking)], now))
                pending = pending[len(taking):]
                if gift["method"] == "full" and left <= NUDGE_SEATS and self.on_ready is not None:
                    # This step may have taken the last seat (a racing one may have seen a few
                    # left): the draw looks at once; it opens only a gift that is `ready`, and
                    # the sweep catches a last seat taken by a step that saw more left.
                    self.on_ready(gift["_id"])
                continue
            # Refused, or nothing left as read: read again. When a racing step moved the count,
            # try again with it; otherwise who is refused for a reason of their own is answered.
            # Twice in a row, though, each member is looked at (one may have joined already).
            seen, gift = gift, live(await store.get(self.db, gift["_id"]))
            raced = not raced and gift["status"] == "open" and 0 < gift[counter] != seen[counter] and \
                gift["sender_id"] not in (j.member_id for j in pending)
            if raced:
                continue
            pending = await self._answer_refused(gift, pending, now, conditions, outcomes)
            if pending:  # nothing refused them: the gift may keep an earlier version's list
                await store.adopt_claimant_list(self.db, gift["_id"])
        outcomes.update((j.member_id, LotteryError("参与失败，请重试")) for j in pending)
        return outcomes

    async def _record_seats(self, gift: dict, seated: list[tuple[Joiner, int]], now: datetime,
                            claimed_before: bool = False) -> dict[str, Admitted | LotteryError]:
        """The join records of members just seated at these claimant positions: a direct gift's
        with its item (the durable record its notification and claim come from), a full gift's
        with its number and receipt signature."""
        order_id = gift["_id"]
        records, receipts = [], {}
        for joiner, position in seated:
            record = joins.new_join(order_id, joiner.member_id, now, joiner.form_id, joiner.subscribed)
            if gift["method"] == "direct":
                record.update(outcome="won", item_index=position, notify="pending", claim="pending",
                              request_id=joiner.request_id)  # its notification logs as this request
            else:
                receipt = receipts[joiner.member_id] = self._sign(order_id, joiner.member_id, position + 1)
                record.update(sequence=position + 1, receipt=receipt["signature"])
            records.append(record)
        existed = {seated[i][0].member_id for i in await joins.insert_many(self.db, records)}
        outcomes: dict[str, Admitted | LotteryError] = {}
        for joiner, position in seated:
            receipt = receipts.get(joiner.member_id)
            if joiner.member_id in existed:
                # The record in the way is either the one a draw restored for this claimant while
                # this write was slow (they joined), or another attempt's of the same member (a
                # retry that found the seat without its record wrote it first): then this is the
                # duplicate.
                existing = await joins.get(self.db, order_id, joiner.member_id)
                if claimed_before or existing is None or not existing.get("restored"):
                    outcomes[joiner.member_id] = AlreadyJoined()
                    continue
                log.warning("gift %s: a draw restored this join's record before it was written", order_id)
                if receipt is not None and not await joins.bind_sequence(
                        self.db, order_id, joiner.member_id, receipt["sequence"], receipt["signature"]):
                    receipt = receipt_of(order_id, joiner.member_id,
                                         await joins.get(self.db, order_id, joiner.member_id) or {})
            item = position if gift["method"] == "direct" else None
            outcomes[joiner.member_id] = Admitted(gift, item, receipt)
        return outcomes

    # Timed gifts

    async def _counted(self, gift: dict, pending: list[Joiner], conditions: dict,
                       release: Callable[[], None]) -> dict[str, Admitted | LotteryError]:
        """Counted, recorded, then numbered, each one write for all of them; the gift's next
        step starts once they are counted."""
        outcomes: dict[str, Admitted | LotteryError] = {}
        now = clock.utcnow()
        for _ in range(MAX_CLAIMS):
            if not pending or await store.claim(self.db, gift, [j.member_id for j in pending], now, conditions):
                break
            gift = live(await store.get(self.db, gift["_id"]))
            pending = await self._answer_refused(gift, pending, now, conditions, outcomes)
        else:
            outcomes.update((j.member_id, LotteryError("参与失败，请重试")) for j in pending)
            return outcomes
        release()
        if not pending:
            return outcomes
        order_id = gift["_id"]
        gift = store.after_claim(gift, len(pending))
        records = [joins.new_join(order_id, j.member_id, now, j.form_id, j.subscribed) for j in pending]
        existed = {pending[i].member_id for i in await joins.insert_many(self.db, records)}
        if existed:
            await store.release_timed_seats(self.db, order_id, len(existed))
            outcomes.update((m, AlreadyJoined()) for m in existed)
        fresh = [j.member_id for j in pending if j.member_id not in existed]
        receipts = await self._number(gift, fresh)
        if clock.utcnow() - now >= LATE_RECORD:
            left_out = await self._left_out(order_id, fresh)
            outcomes.update((m, GiftOpened()) for m in left_out)
            fresh = [m for m in fresh if m not in left_out]
        outcomes.update((m, Admitted(gift, None, receipts.get(m))) for m in fresh)
        return outcomes

    async def _left_out(self, order_id: str, member_ids: list[str]) -> set[str]:
        """Of these members, counted and then recorded late, those the gift's draw froze its list
        without (it took the gift meanwhile and waits only so long for records in flight): their
        records and counts are taken back, and they are told the gift opened. Until the draw has
        frozen its list nobody can tell, so this waits for it (or for the gift to stay open)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + FREEZE_WAIT
        while True:
            gift = await store.get(self.db, order_id)
            if gift is None or gift["status"] == "open":
                return set()
            if gift.get("freeze") or gift["status"] == "finished":
                break
            if loop.time() >= deadline:
                raise JoinOutcomeUnknown()
            await asyncio.sleep(0.05)
        names = {fairness.pseudonym(order_id, m): m for m in member_ids}
        listed = await proofs.listed(self.db, order_id, list(names))
        left_out = {m for p, m in names.items() if p not in listed}
        if left_out:
            log.warning("gift %s: %d join(s) recorded after the draw froze its list; taken back", order_id, len(left_out))
            await joins.remove(self.db, order_id, list(left_out))
            await store.release_timed_seats(self.db, order_id, len(left_out))
        return left_out

    async def _number(self, gift: dict, member_ids: list[str]) -> dict[str, dict | None]:
        """Sequence numbers and signed receipts for these just-written records, taken together.
        The numbers are taken only once the records exist (a duplicate never takes one); a
        process that dies in between leaves them without, and the draw numbers them into the
        gap (lottery/draw.py)."""
        if not member_ids:
            return {}
        order_id = gift["_id"]
        last = await sequences.take(self.db, order_id, len(member_ids))
        receipts = {m: self._sign(order_id, m, last - len(member_ids) + 1 + i) for i, m in enumerate(member_ids)}
        if await joins.bind_sequences(self.db, order_id, [(m, r["sequence"], r["signature"])
                                                          for m, r in receipts.items()]):
            return receipts
        # Some were numbered meanwhile (by a draw): each keeps the number its record holds.
        found = await joins.of_members(self.db, order_id, member_ids, gift["joined_count"])
        return {m: receipt_of(order_id, m, found[m]) if m in found else None for m in member_ids}

    # Refusals

    async def _answer_refused(self, gift: dict, pending: list[Joiner], now: datetime, conditions: dict,
                              outcomes: dict[str, Admitted | LotteryError]) -> list[Joiner]:
        """Answer in `outcomes` the members a refused step refused for a reason of their own
        (the gift as just read); returns those who may try again."""
        retry = []
        for joiner in pending:
            try:
                await self._why_refused(gift, joiner.member_id, now, conditions)
                retry.append(joiner)
            except _RecordLost as lost:
                # An earlier attempt's seat was applied and its record never written (the
                # database stopped answering between the two): this one writes it.
                outcomes.update(await self._record_seats(gift, [(joiner, lost.position)], now, claimed_before=True))
            except LotteryError as exc:
                outcomes[joiner.member_id] = exc
        return retry

    async def _why_refused(self, gift: dict, member_id: str, now: datetime, conditions: dict) -> None:
        """Why this member's claim on the gift (as just read) is refused, raised; returns if
        nothing refuses them for a reason of their own (a racing step moved the count)."""
        order_id = gift["_id"]
        if gift["sender_id"] == member_id:
            raise OwnGift()
        if await joins.get(self.db, order_id, member_id) is not None:
            raise AlreadyJoined()
        position = None if gift["method"] == "timed" else await store.claimant_position(self.db, order_id, member_id)
        if position is not None:
            if gift["method"] == "full" and gift["status"] == "open":
                raise _RecordLost(position)
            raise AlreadyJoined()
        if gift["method"] == "direct" and gift["items_left"] <= 0:
            raise NoItemsLeft()
        if gift["method"] == "full" and gift["seats_left"] <= 0:
            raise GiftFull()  # as the seed said, even once the full gift has opened
        if gift["status"] == "finished":
            raise GiftOpened()
        if gift["status"] != "open":
            raise GiftClosed()
        if gift.get("deadline_at") and clock.as_utc(gift["deadline_at"]) <= now:
            raise GiftClosed()
        if gift["method"] == "timed" and clock.as_utc(gift["open_at"]) <= now:
            raise GiftClosed()
        if any(_field(gift, name) != value for name, value in conditions.items()):
            raise GiftClosed()  # its entry conditions changed since this join met them

    def _remember(self, gift: dict) -> None:
        self._latest[gift["_id"]] = gift
        if len(self._latest) > 1024:
            del self._latest[next(iter(self._latest))]

    def _sign(self, order_id: str, member_id: str, sequence: int) -> dict:
        return self.receipt_key.sign(order_id, fairness.pseudonym(order_id, member_id), sequence)


def _field(doc: dict, dotted: str):
    for part in dotted.split("."):
        doc = doc.get(part) if isinstance(doc, dict) else None
    return doc
