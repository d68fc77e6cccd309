"""`reconciliations`: one report per day of WeChat Pay's bills, `_id` = the day (Asia/Shanghai,
`YYYY-MM-DD`). The document is also the day's run lock, so a day is reconciled once across
restarts and processes:

    (none) --claim--> running --finish--> done --rerun (the operator)--> running
                         \\--bill not ready / WeChat Pay away--> waiting (until `lease_until`)

A claim is one conditional update (or the insert of a new day): a running day whose lease
lapsed (its process died) or a waiting day whose wait is over is taken again; a finished report
is replaced only by its finisher's one update."""
from datetime import datetime

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

RUNNING, WAITING, DONE = "running", "waiting", "done"


async def ensure_indexes(db: AsyncDatabase) -> None:
    """Reports are read by `_id` only."""


async def get(db: AsyncDatabase, date: str) -> dict | None:
    return await db.reconciliations.find_one({"_id": date})


async def claim(db: AsyncDatabase, date: str, owner: str, now: datetime, until: datetime) -> bool:
    """Take the day's run: a new day, a running one whose lease lapsed, or a waiting one whose
    wait is over; True for exactly one taker."""
    taken = {"status": RUNNING, "lease_owner": owner, "lease_until": until, "started_at": now}
    try:
        await db.reconciliations.insert_one({"_id": date, **taken, "attempts": 1})
        return True
    except DuplicateKeyError:
        pass
    for status in (RUNNING, WAITING):  # one plain filter each (no top-level $or in a write)
        result = await db.reconciliations.update_one(
            {"_id": date, "status": status, "lease_until": {"$lt": now}}, {"$set": taken, "$inc": {"attempts": 1}})
        if result.modified_count == 1:
            return True
    return False


async def claim_again(db: AsyncDatabase, date: str, owner: str, now: datetime, until: datetime) -> bool:
    """Take a finished or waiting day at once (the operator's rerun); True for exactly one taker."""
    for status in (DONE, WAITING):
        result = await db.reconciliations.update_one(
            {"_id": date, "status": status},
            {"$set": {"status": RUNNING, "lease_owner": owner, "lease_until": until, "started_at": now},
             "$inc": {"attempts": 1}})
        if result.modified_count == 1:
            return True
    return False


async def finish(db: AsyncDatabase, date: str, owner: str, report: dict, now: datetime) -> bool:
    """The day's report, replacing the previous one, by the run that holds the day."""
    result = await db.reconciliations.update_one(
        {"_id": date, "status": RUNNING, "lease_owner": owner},
        {"$set": {**report, "status": DONE, "finished_at": now, "lease_until": None, "last_error": None}})
    return result.modified_count == 1


async def wait(db: AsyncDatabase, date: str, owner: str, until: datetime, reason: str) -> bool:
    """The run could not finish (the bill is not ready, WeChat Pay is away): try again after
    `until`."""
    result = await db.reconciliations.update_one(
        {"_id": date, "status": RUNNING, "lease_owner": owner},
        {"$set": {"status": WAITING, "lease_until": until, "last_error": reason[:300]}})
    return result.modified_count == 1
