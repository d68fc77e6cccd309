"""`joins`: one record per member and gift, `_id` = `{order_id}:{member_id}`, so one join per
member is the unique `_id`. It holds what the member accepted (`subscribed`), and the outcome:
a direct gift's item from the join on; a drawn gift's winners' `won` and item copied from
`draw.winners` after the draw (readers take a drawn gift's result from the gift: a finished
drawn gift's join without `won` lost; records from before 2026-12 say `lost`)."""
import logging
from datetime import datetime
from typing import AsyncIterator, Iterable

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, OperationFailure

from lottery.storage.slices import in_slices
from lottery.storage.writes import DUPLICATE_KEY, insert_new, set_each

log = logging.getLogger(__name__)

# Reading all of a gift's joins costs about a quarter of fetching one by id (embedded engine).
SCAN_FACTOR = 4


async def ensure_indexes(db: AsyncDatabase) -> None:
    await db.joins.create_index([("order_id", ASCENDING), ("member_id", ASCENDING)], unique=True)
    # The pages' lists (newest joins, a direct gift's recipients). No index on `outcome`: a
    # draw writes it on every join, and results are read from the gift's `draw.winners`.
    await db.joins.create_index([("order_id", ASCENDING), ("joined_at", ASCENDING)])
    # Only direct-gift joins carry `notify` and `claim`; sparse keeps the indexes to them.
    await db.joins.create_index([("notify", ASCENDING)], sparse=True)
    await db.joins.create_index([("claim", ASCENDING)], sparse=True)
    # A sequence number belongs to one join of its gift, whoever binds it (a join's step, or a
    # draw numbering the records a crash left without one): the database refuses a second.
    try:
        await db.joins.create_index([("order_id", ASCENDING), ("sequence", ASCENDING)], unique=True,
                                    partialFilterExpression={"sequence": {"$type": "number"}})
    except OperationFailure as exc:
        if exc.code != DUPLICATE_KEY:
            raise
        # A database written before this index may hold a number given twice (the race it
        # closes): start anyway (the draw still waits for numbers in flight) and say what to do.
        log.error("joins: some gift gave a sequence number twice, so the unique (order_id, sequence) index "
                  "was not built; find them with an aggregate grouping joins by order_id and sequence, "
                  "renumber or accept those gifts, and restart (docs/deploy.md, the group commit release)")


def join_id(order_id: str, member_id: str) -> str:
    return f"{order_id}:{member_id}"


def new_join(order_id: str, member_id: str, now: datetime, form_id: str = "",
             subscribed: list[str] | None = None) -> dict:
    """A join record with no outcome yet."""
    return {"_id": join_id(order_id, member_id), "order_id": order_id, "member_id": member_id,
            "form_id": form_id, "subscribed": subscribed or [], "joined_at": now,
            "outcome": None, "item_index": None, "sequence": None}


async def bind_sequence(db: AsyncDatabase, order_id: str, member_id: str, sequence: int, receipt: str) -> bool:
    """Give this join its sequence number and the receipt's signature, unless it has a number
    already (False then, or when there is no such join)."""
    try:
        result = await db.joins.update_one({"_id": join_id(order_id, member_id), "sequence": None},
                                           {"$set": {"sequence": sequence, "receipt": receipt}})
    except DuplicateKeyError:
        return False  # the number is another join's
    return result.modified_count == 1


async def bind_sequences(db: AsyncDatabase, order_id: str, numbered: list[tuple[str, int, str]]) -> bool:
    """`bind_sequence` for many (member id, number, signature) at once, in one update for a
    step's joins (`set_each`: the timed gift's join rate went up by half, docs/benchmarks.md);
    False if any join had a number already (or is missing), or any number was another join's
    (then some of the others may be bound: the caller reads them again)."""
    try:
        bound = await set_each(db.joins, {join_id(order_id, member_id): {"sequence": sequence, "receipt": receipt}
                                          for member_id, sequence, receipt in numbered},
                               where={"sequence": None})
    except DuplicateKeyError:
        return False  # some numbers are other joins'
    return bound == len(numbered)


async def insert_many(db: AsyncDatabase, records: list[dict]) -> list[int]:
    """Record these joins in one write; returns the positions of those refused by the unique
    `_id` (the member had joined)."""
    return await insert_new(db.joins, records)


async def remove(db: AsyncDatabase, order_id: str, member_ids: list[str]) -> None:
    """Take back these members' records (joins a draw's frozen list left out, lottery/admission.py)."""
    await db.joins.delete_many({"_id": {"$in": [join_id(order_id, m) for m in member_ids]}})


async def get(db: AsyncDatabase, order_id: str, member_id: str) -> dict | None:
    return await db.joins.find_one({"_id": join_id(order_id, member_id)})


# The draw

async def member_ids(db: AsyncDatabase, order_ids: list[str]) -> dict[str, dict[str, int | None]]:
    """Members with a join record and their join's sequence number (None: not numbered yet), by
    gift (read in slices)."""
    found: dict[str, dict[str, int | None]] = {}
    projection = {"order_id": 1, "member_id": 1, "sequence": 1, "_id": 0}
    for ids in in_slices(order_ids, 50):
        async for doc in db.joins.find({"order_id": {"$in": ids}}, projection):
            found.setdefault(doc["order_id"], {})[doc["member_id"]] = doc.get("sequence")
    return found


async def member_ids_since(db: AsyncDatabase, order_id: str, since: datetime) -> dict[str, int | None]:
    """`member_ids` of one gift's joins made after `since` (the (order_id, joined_at) index)."""
    projection = {"member_id": 1, "sequence": 1, "_id": 0}
    return {doc["member_id"]: doc.get("sequence")
            async for doc in db.joins.find({"order_id": order_id, "joined_at": {"$gt": since}}, projection)}


async def restore(db: AsyncDatabase, pairs: list[tuple[str, str]], now: datetime) -> None:
    """Join records for claimants whose join write never landed (their process died), marked
    `restored` (a slow join that finds one knows it was the draw's)."""
    await insert_new(db.joins, [{**new_join(order_id, member_id, now), "restored": True}
                                for order_id, member_id in pairs])


async def write_winners(db: AsyncDatabase, winners: list[tuple[str, str, int]]) -> None:
    """Mark (order id, member id, item index) won; writing the same values again is harmless."""
    items = {join_id(order_id, member_id): {"item_index": index} for order_id, member_id, index in winners}
    await set_each(db.joins, items, same={"outcome": "won"})


# Readers

async def of_members(db: AsyncDatabase, order_id: str, member_ids_: Iterable[str],
                     joined_count: int) -> dict[str, dict]:
    """The join records of these members in this gift, by member id (absent: not joined); the
    records leave their member id in the key (the realtime hub holds one per watcher).

    Few members: their records by `_id`, in small `$in` lists. Many members, compared with the
    gift's joins: all of the gift's joins through the (order_id, member_id) index, one pass."""
    wanted = set(member_ids_)
    projection = {"_id": 0, "member_id": 1, **dict.fromkeys(VIEW_FIELDS, 1)}
    found: dict[str, dict] = {}
    if joined_count <= SCAN_FACTOR * len(wanted):
        async for join in db.joins.find({"order_id": order_id}, projection):
            if join["member_id"] in wanted:
                found[join["member_id"]] = held(join)
        return found
    for ids in in_slices(join_id(order_id, m) for m in wanted):
        async for join in db.joins.find({"_id": {"$in": ids}}, projection):
            found[join["member_id"]] = held(join)
    return found


# What a member's view of a gift reads from their join (lottery/gifts.py, member_view).
VIEW_FIELDS = ("joined_at", "outcome", "item_index", "sequence", "receipt")


def held(join: dict) -> dict:
    """A join as the hub holds one per watcher: the fields a member's view reads, the unset ones
    left out, and the names shared (a decoded record carries its own copy of each name: at
    10,000 watchers, half a kilobyte a watcher)."""
    return {name: join[name] for name in VIEW_FIELDS if join.get(name) is not None}


async def direct_recipients(db: AsyncDatabase, order_id: str, limit: int) -> list[dict]:
    """A direct gift's joins (each received an item), in item order (every join holds one of
    at most 1000 items; the (order_id, joined_at) index serves the read)."""
    cursor = db.joins.find({"order_id": order_id}, {"_id": 0, "member_id": 1, "item_index": 1, "joined_at": 1}
                           ).sort("joined_at", ASCENDING).limit(limit)
    return sorted([j async for j in cursor if j.get("item_index") is not None], key=lambda j: j["item_index"])


async def latest(db: AsyncDatabase, order_id: str, limit: int) -> list[dict]:
    """The most recent joins of a gift, newest first."""
    cursor = db.joins.find({"order_id": order_id},
                           {"_id": 0, "member_id": 1, "joined_at": 1, "outcome": 1, "item_index": 1}
                           ).sort("joined_at", DESCENDING).limit(limit)
    return await cursor.to_list()


async def in_batches(db: AsyncDatabase, order_id: str, size: int) -> AsyncIterator[list[dict]]:
    """All of the gift's joins, `size` at a time, from one cursor in no particular order. (A
    page read per batch, `member_id > last` sorted, costs as much as the whole gift on the
    embedded engine: 100,000 joins took minutes, quadratically.)"""
    cursor = db.joins.find({"order_id": order_id}, {"member_id": 1, "subscribed": 1}, batch_size=size)
    try:
        while batch := await cursor.to_list(size):
            yield batch
    finally:
        await cursor.close()


# Direct-gift joins to notify (`notify: pending`, set by the join itself)

async def to_notify(db: AsyncDatabase, limit: int) -> list[dict]:
    cursor = db.joins.find({"notify": "pending"},
                           {"order_id": 1, "member_id": 1, "subscribed": 1, "item_index": 1}).limit(limit)
    return await cursor.to_list()


async def to_claim(db: AsyncDatabase, limit: int) -> list[dict]:
    """Direct-gift joins whose item's claim is not opened yet."""
    cursor = db.joins.find({"claim": "pending"}, {"order_id": 1, "member_id": 1, "item_index": 1, "joined_at": 1,
                                                  "subscribed": 1})
    return await cursor.limit(limit).to_list()


async def subscriptions(db: AsyncDatabase, order_id: str, member_ids_: Iterable[str]) -> dict[str, list[str]]:
    """The template ids these members accepted when they joined this gift, by member id."""
    found: dict[str, list[str]] = {}
    for ids in in_slices(join_id(order_id, m) for m in member_ids_):
        async for join in db.joins.find({"_id": {"$in": ids}}, {"_id": 0, "member_id": 1, "subscribed": 1}):
            found[join["member_id"]] = join.get("subscribed") or []
    return found


async def mark_claim_opened(db: AsyncDatabase, ids: list[str]) -> None:
    for some in in_slices(ids):
        await db.joins.update_many({"_id": {"$in": some}, "claim": "pending"}, {"$set": {"claim": "opened"}})


async def mark_notified(db: AsyncDatabase, ids: list[str]) -> None:
    for some in in_slices(ids):
        await db.joins.update_many({"_id": {"$in": some}, "notify": "pending"}, {"$set": {"notify": "done"}})
