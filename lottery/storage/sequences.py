"""`join_sequences`: one counter per drawn gift still taking joins, the last join sequence number
it handed out. Numbers are taken once a join's record exists and bound to that record
(storage/joins.py `bind_sequence`); the draw numbers the records a crash left without one and
removes the counter at the finish (lottery/draw.py).

Taking a number is findAndModify, the one atomic read-and-increment MongoDB has: on real
MongoDB it is an `_id` lookup; the embedded engine scans the collection for it, which this
collection keeps cheap by holding only the gifts still taking joins."""
from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from lottery.storage.slices import in_slices
from lottery.storage.writes import insert_new


async def take(db: AsyncDatabase, order_id: str, count: int = 1) -> int:
    """Take the next `count` numbers of this gift in one atomic update; returns the last taken.
    The counter is made first when missing (an insert that racing first joins may all try; one
    lands): an upsert inside findAndModify is not used, as the embedded engine may answer a
    racing one with nothing after applying it."""
    while True:
        counter = await db.join_sequences.find_one_and_update(
            {"_id": order_id}, {"$inc": {"last": count}}, return_document=ReturnDocument.AFTER)
        if counter is not None:
            return counter["last"]
        await insert_new(db.join_sequences, [{"_id": order_id, "last": 0}])


async def forget(db: AsyncDatabase, order_ids: list[str]) -> None:
    """Remove the counters of these finished gifts."""
    for ids in in_slices(order_ids):
        await db.join_sequences.delete_many({"_id": {"$in": ids}})


async def last(db: AsyncDatabase, order_id: str) -> int:
    """The last number this gift handed out (0: none)."""
    counter = await db.join_sequences.find_one({"_id": order_id})
    return counter["last"] if counter else 0
