"""`claims`: one per won item, `_id` = `{order_id}:{item_index}`, so however often a draw's
winners or a direct gift's joins are read into claims, each item has one claim:

    unclaimed --address--> claimed --ship--> shipped --delivered--> delivered
    unclaimed --deadline--> expired (the item is refunded)
    unclaimed|claimed --the owner's refund by hand--> refunded (the item is refunded)

The winner may change the address until the item ships. Every transition is one conditional
update on the state it leaves. Addresses are personal data: only the winner's own reads and the
operator's shipping list return them."""
from datetime import datetime, timezone

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

from lottery.storage.writes import insert_new

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# What a list that is not the winner's or the operator's may show.
WITHOUT_ADDRESS = {"address": 0}


async def ensure_indexes(db: AsyncDatabase) -> None:
    await db.claims.create_index([("status", ASCENDING), ("deadline_at", ASCENDING)])
    await db.claims.create_index([("status", ASCENDING), ("_id", ASCENDING)])
    await db.claims.create_index([("winner_id", ASCENDING), ("won_at", ASCENDING)])
    await db.claims.create_index([("order_id", ASCENDING), ("item_index", ASCENDING)])
    # Present only until the reminder is sent / the refund registered: sparse, so the sweeps
    # read only the claims that still need them.
    await db.claims.create_index([("remind_at", ASCENDING)], sparse=True)
    await db.claims.create_index([("refund_pending", ASCENDING)], sparse=True)


def claim_id(order_id: str, item_index: int) -> str:
    return f"{order_id}:{item_index}"


async def open_many(db: AsyncDatabase, claims: list[dict]) -> int:
    """Insert the claims not yet present; returns how many were new."""
    return len(claims) - len(await insert_new(db.claims, claims))


async def get(db: AsyncDatabase, claim_id_: str) -> dict | None:
    return await db.claims.find_one({"_id": claim_id_})


async def give_address(db: AsyncDatabase, claim_id_: str, winner_id: str, address: dict, subscribed: list[str],
                       now: datetime) -> bool:
    """unclaimed|claimed -> claimed with this address, for its winner, before its deadline."""
    result = await db.claims.update_one(
        {"_id": claim_id_, "winner_id": winner_id, "status": {"$in": ["unclaimed", "claimed"]},
         "deadline_at": {"$gt": now}},
        {"$set": {"status": "claimed", "address": address, "subscribed": subscribed, "claimed_at": now,
                  "updated_at": now}, "$unset": {"remind_at": ""}, "$inc": {"version": 1}})
    return result.modified_count == 1


async def ship(db: AsyncDatabase, claim_id_: str, carrier: str, tracking_no: str, now: datetime) -> bool:
    result = await db.claims.update_one(
        {"_id": claim_id_, "status": "claimed"},
        {"$set": {"status": "shipped", "carrier": carrier, "tracking_no": tracking_no, "shipped_at": now,
                  "updated_at": now}, "$inc": {"version": 1}})
    return result.modified_count == 1


async def delivered(db: AsyncDatabase, claim_id_: str, now: datetime) -> bool:
    result = await db.claims.update_one(
        {"_id": claim_id_, "status": "shipped"},
        {"$set": {"status": "delivered", "delivered_at": now, "updated_at": now}, "$inc": {"version": 1}})
    return result.modified_count == 1


async def past_deadline(db: AsyncDatabase, now: datetime, limit: int) -> list[dict]:
    """Unclaimed claims whose deadline has passed (the (status, deadline_at) index)."""
    cursor = db.claims.find({"status": "unclaimed", "deadline_at": {"$lte": now}}, WITHOUT_ADDRESS).limit(limit)
    return await cursor.to_list()


async def expire(db: AsyncDatabase, claim_id_: str, now: datetime) -> bool:
    """unclaimed -> expired, its refund to be registered."""
    result = await db.claims.update_one(
        {"_id": claim_id_, "status": "unclaimed", "deadline_at": {"$lte": now}},
        {"$set": {"status": "expired", "expired_at": now, "refund_pending": True, "updated_at": now},
         "$unset": {"remind_at": ""}, "$inc": {"version": 1}})
    return result.modified_count == 1


async def refund_by_hand(db: AsyncDatabase, claim_id_: str, reason: str, now: datetime) -> bool:
    """unclaimed|claimed -> refunded, its refund to be registered: the item will not ship. One
    conditional update, so against a racing ship exactly one of them wins."""
    result = await db.claims.update_one(
        {"_id": claim_id_, "status": {"$in": ["unclaimed", "claimed"]}},
        {"$set": {"status": "refunded", "refunded_at": now, "refund_pending": True, "refund_cause": "manual",
                  "refund_reason": reason, "updated_at": now},
         "$unset": {"remind_at": ""}, "$inc": {"version": 1}})
    return result.modified_count == 1


async def refunds_to_register(db: AsyncDatabase, limit: int) -> list[dict]:
    cursor = db.claims.find({"refund_pending": True}, WITHOUT_ADDRESS).limit(limit)
    return await cursor.to_list()


async def refund_registered(db: AsyncDatabase, claim_id_: str) -> None:
    await db.claims.update_one({"_id": claim_id_}, {"$unset": {"refund_pending": ""}})


async def to_remind(db: AsyncDatabase, now: datetime, limit: int) -> list[dict]:
    """Unclaimed claims whose reminder is due (only those not reminded keep `remind_at`)."""
    cursor = db.claims.find({"remind_at": {"$lte": now}}, WITHOUT_ADDRESS).limit(limit)
    return await cursor.to_list()


async def reminded(db: AsyncDatabase, claim_id_: str, seen_remind_at: datetime) -> bool:
    """The reminder is this caller's to send, once."""
    result = await db.claims.update_one({"_id": claim_id_, "remind_at": seen_remind_at, "status": "unclaimed"},
                                        {"$unset": {"remind_at": ""}, "$set": {"reminded": True}})
    return result.modified_count == 1


async def of_winner(db: AsyncDatabase, winner_id: str, limit: int) -> list[dict]:
    """A member's prizes, newest first (with their own addresses)."""
    cursor = db.claims.find({"winner_id": winner_id, "won_at": {"$gte": EPOCH}}).sort("won_at", DESCENDING)
    return await cursor.limit(limit).to_list()


async def of_gift(db: AsyncDatabase, order_id: str) -> list[dict]:
    """A gift's claims in item order, without addresses (a gift has at most 1000 items)."""
    cursor = db.claims.find({"order_id": order_id}, WITHOUT_ADDRESS).sort("item_index", ASCENDING)
    return await cursor.to_list()


async def page(db: AsyncDatabase, status: str, after: str, limit: int) -> list[dict]:
    """Claims in this state, in id order after `after` (the operator's lists, with addresses)."""
    cursor = db.claims.find({"status": status, "_id": {"$gt": after}}).sort("_id", ASCENDING)
    return await cursor.limit(limit).to_list()

