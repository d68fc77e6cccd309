"""Leases: named leases held by one process at a time (the scheduler's leadership), the owner
ids every lease in the system is taken under, and the one take-with-lease of the work queues
(outbox records, notification entries, refunds)."""
import os
import secrets
import socket
from datetime import datetime

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError


def owner_id() -> str:
    """A process's name on the leases it holds: host, pid and a random tag (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


async def hold(db: AsyncDatabase, name: str, owner: str, now: datetime, until: datetime) -> bool:
    """Take or renew the lease; False while another owner holds it unexpired. Each case is its
    own plain filter (an `$or` would make the write scan the collection on the embedded engine)."""
    renewed = await db.leases.update_one({"_id": name, "owner": owner}, {"$set": {"until": until}})
    if renewed.matched_count:
        return True
    taken = await db.leases.update_one({"_id": name, "until": {"$lt": now}},
                                       {"$set": {"owner": owner, "until": until}})
    if taken.matched_count:
        return True
    try:
        await db.leases.insert_one({"_id": name, "owner": owner, "until": until})
    except DuplicateKeyError:
        return False  # it exists and is someone else's
    return True


async def release(db: AsyncDatabase, name: str, owner: str, now: datetime) -> None:
    """End the lease now, if this owner holds it, so a standby need not wait for it to lapse."""
    await db.leases.update_one({"_id": name, "owner": owner}, {"$set": {"until": now}})


async def get(db: AsyncDatabase, name: str) -> dict | None:
    return await db.leases.find_one({"_id": name})


async def take(queue: AsyncCollection, seen: dict, held: str, owner: str, until: datetime,
               fields: dict | None = None) -> bool:
    """Take a queued document for one attempt, if it is still as `seen`: True for exactly one
    taker. It moves to status `held` under `owner` until `until`. Every take bumps `attempts`,
    so (status, attempts) is the version seen: a lapsed document taken by another process
    meanwhile, or recorded by its owner, no longer matches (a lease condition adds nothing, as
    the mutation run showed). A document written before it counted attempts matches `None`."""
    result = await queue.update_one(
        {"_id": seen["_id"], "status": seen["status"], "attempts": seen.get("attempts")},
        {"$set": {"status": held, "lease_owner": owner, "lease_until": until, **(fields or {})},
         "$inc": {"attempts": 1}})
    return result.modified_count == 1


async def record(queue: AsyncCollection, document_id: str, held: str, owner: str, fields: dict) -> bool:
    """Store what the attempt came to and end the lease, if `owner` still holds the document."""
    result = await queue.update_one(
        {"_id": document_id, "status": held, "lease_owner": owner},
        {"$set": {**fields, "lease_owner": None, "lease_until": None}})
    return result.modified_count == 1
