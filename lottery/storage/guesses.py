"""`phrase_guesses`: one document per member, `_id` = member id, counting their pass-phrase
guesses in the current window. A guess takes a ticket before the phrase is compared (one
conditional update whose filter holds the limit), so however many guesses race, no more than
the limit are compared in a window; a right guess gives its ticket back. The limit reached by
wrong guesses locks the member out until `locked_until`.

Fields: `wrong` (tickets held: wrong guesses and guesses being compared), `window_until`,
`locked_until`. Every filter is on `_id` with plain conditions (no `$or`)."""
from datetime import datetime

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from lottery.storage.gifts import EPOCH


async def take_ticket(db: AsyncDatabase, member_id: str, now: datetime, window_until: datetime, limit: int) -> bool:
    """One guess of this member may be compared now: False when they have `limit` tickets in
    the current window or are locked out."""
    for _ in range(2):
        counted = await db.phrase_guesses.update_one(
            {"_id": member_id, "locked_until": {"$lte": now}, "window_until": {"$gt": now}, "wrong": {"$lt": limit}},
            {"$inc": {"wrong": 1}})
        if counted.matched_count:
            return True
        renewed = await db.phrase_guesses.update_one(  # the last window is over: a new one
            {"_id": member_id, "locked_until": {"$lte": now}, "window_until": {"$lte": now}},
            {"$set": {"wrong": 1, "window_until": window_until}})
        if renewed.matched_count:
            return True
        try:
            await db.phrase_guesses.insert_one({"_id": member_id, "wrong": 1, "window_until": window_until,
                                                "locked_until": EPOCH})
            return True
        except DuplicateKeyError:
            continue  # another guess made it just now: count against it
    return False


async def give_back(db: AsyncDatabase, member_id: str) -> None:
    """A right guess does not count."""
    await db.phrase_guesses.update_one({"_id": member_id, "wrong": {"$gt": 0}}, {"$inc": {"wrong": -1}})


async def lock_if_over(db: AsyncDatabase, member_id: str, now: datetime, limit: int, locked_until: datetime) -> bool:
    """After a wrong guess: a member with `limit` wrong guesses in the window is locked out
    until `locked_until` (once: a lock in force is not extended)."""
    result = await db.phrase_guesses.update_one(
        {"_id": member_id, "wrong": {"$gte": limit}, "locked_until": {"$lte": now}},
        {"$set": {"locked_until": locked_until}})
    return result.modified_count == 1
