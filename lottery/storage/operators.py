"""`operators`, `operator_sessions`, `sign_in_attempts`: the console's accounts, their sessions
and the sign-in rate limit.

A session's `_id` is the SHA-256 of the random id in its cookie (a database leak gives nobody a
working session); `expires_at` (absolute) is a TTL index, `idle_until` is checked on every read.
A sign-in attempt is counted before the password is checked, one conditional update per key and
window, so however many requests race, a window admits at most its limit."""
from datetime import datetime

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

# Never handed out of this module unless asked: the password hash and the TOTP secret.
WITHOUT_SECRETS = {"password_hash": 0, "totp_secret": 0}


async def ensure_indexes(db: AsyncDatabase) -> None:
    await db.operators.create_index([("name", ASCENDING)], unique=True)
    await db.operator_sessions.create_index([("expires_at", ASCENDING)], expireAfterSeconds=0)
    await db.operator_sessions.create_index([("operator_id", ASCENDING)])
    await db.sign_in_attempts.create_index([("expires_at", ASCENDING)], expireAfterSeconds=0)


# Accounts

async def insert(db: AsyncDatabase, operator: dict) -> bool:
    """A new account; False when its name is taken."""
    try:
        await db.operators.insert_one(operator)
    except DuplicateKeyError:
        return False
    return True


async def by_name(db: AsyncDatabase, name: str) -> dict | None:
    """With its secrets: for signing in."""
    return await db.operators.find_one({"name": name})


async def get(db: AsyncDatabase, operator_id: str, with_secrets: bool = False) -> dict | None:
    return await db.operators.find_one({"_id": operator_id}, None if with_secrets else WITHOUT_SECRETS)


async def listed(db: AsyncDatabase, limit: int) -> list[dict]:
    cursor = db.operators.find({"name": {"$gt": ""}}, WITHOUT_SECRETS).sort("name", ASCENDING).limit(limit)
    return await cursor.to_list()


async def update(db: AsyncDatabase, operator_id: str, fields: dict, now: datetime) -> bool:
    result = await db.operators.update_one({"_id": operator_id}, {"$set": {**fields, "updated_at": now}})
    return result.matched_count == 1


async def use_totp_step(db: AsyncDatabase, operator_id: str, step: int) -> bool:
    """A TOTP code's time step is used once: a code seen (or replayed) again is refused."""
    result = await db.operators.update_one({"_id": operator_id, "totp_step": {"$lt": step}},
                                           {"$set": {"totp_step": step}})
    return result.modified_count == 1


# Sessions

async def insert_session(db: AsyncDatabase, session: dict) -> None:
    await db.operator_sessions.insert_one(session)


async def session_with_operator(db: AsyncDatabase, digest: str, now: datetime) -> tuple[dict, dict] | None:
    """A live session (within both expiries) and its account, in one round trip; None otherwise."""
    cursor = await db.operator_sessions.aggregate([
        {"$match": {"_id": digest, "expires_at": {"$gt": now}, "idle_until": {"$gt": now}}},
        {"$lookup": {"from": "operators", "localField": "operator_id", "foreignField": "_id", "as": "operator"}},
        {"$unset": ["operator.password_hash", "operator.totp_secret"]},
    ])
    found = await cursor.to_list()
    if not found or not found[0]["operator"]:
        return None
    session = found[0]
    return session, session.pop("operator")[0]


async def touch_session(db: AsyncDatabase, digest: str, idle_until: datetime, now: datetime) -> None:
    await db.operator_sessions.update_one({"_id": digest}, {"$set": {"idle_until": idle_until, "seen_at": now}})


async def delete_session(db: AsyncDatabase, digest: str) -> None:
    await db.operator_sessions.delete_one({"_id": digest})


async def delete_sessions(db: AsyncDatabase, operator_id: str) -> int:
    """End every session of an account."""
    return (await db.operator_sessions.delete_many({"operator_id": operator_id})).deleted_count


# The sign-in rate limit

async def count_attempt(db: AsyncDatabase, key: str, limit: int, expires_at: datetime) -> bool:
    """Count one attempt under `key` (an account's or an address's, in one window); False when
    the window already holds `limit`. The increment is conditional on the count; the first of a
    window is an insert, and a racer whose insert lost counts on the document the winner made:
    never more than `limit` admitted, never one refused below it."""
    if await _counted(db, key, limit):
        return True
    try:
        await db.sign_in_attempts.insert_one({"_id": key, "count": 1, "expires_at": expires_at})
    except DuplicateKeyError:
        return await _counted(db, key, limit)
    return True


async def _counted(db: AsyncDatabase, key: str, limit: int) -> bool:
    result = await db.sign_in_attempts.update_one({"_id": key, "count": {"$lt": limit}}, {"$inc": {"count": 1}})
    return result.modified_count == 1


async def forget_attempts(db: AsyncDatabase, key: str) -> None:
    await db.sign_in_attempts.delete_one({"_id": key})
