"""`leases`: named leases held by one process at a time (the scheduler's leadership), and the
owner ids every lease in the system is taken under."""
import os
import secrets
import socket
from datetime import datetime

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
