"""What the realtime channel reads: the gift change stream, gift states by polling, and the
joins of many members of one gift at once.

Every read here is by `_id` (gifts) or `_id` in a list (joins, whose `_id` is
`{order_id}:{member_id}`), the fast shape on the embedded engine and on MongoDB."""
from typing import Any, Iterable

from pymongo.asynchronous.change_stream import AsyncChangeStream
from pymongo.asynchronous.database import AsyncDatabase

from lottery.storage.gifts import join_id

# The gift fields the channel follows. Projecting the events down to them keeps a join's event
# small (a pipeline update may report the whole claimant list as changed).
WATCHED_FIELDS = ("status", "version", "joined_count")
# ids per `$in`: the embedded engine's `$in` costs grow with the square of the list
IN_CHUNK = 100
# Reading all of a gift's joins costs about a quarter of fetching one by id (embedded engine).
SCAN_FACTOR = 4


def watch_pipeline() -> list[dict[str, Any]]:
    """Inserts and updates of gifts, reduced to the watched fields (`_id`, the resume token,
    must stay)."""
    project: dict[str, Any] = {"operationType": 1, "documentKey": 1}
    for field in WATCHED_FIELDS:
        project[f"updateDescription.updatedFields.{field}"] = 1
        project[f"fullDocument.{field}"] = 1
    return [{"$match": {"operationType": {"$in": ["insert", "update", "replace"]}}},
            {"$project": project}]


async def watch_gifts(db: AsyncDatabase, resume_after: dict | None,
                      max_await_ms: int = 1000) -> AsyncChangeStream:
    """One change stream on `gifts`, resumed after `resume_after` when given."""
    return await db.gifts.watch(watch_pipeline(), resume_after=resume_after,
                                max_await_time_ms=max_await_ms)


def change_fields(event: dict) -> tuple[str, dict]:
    """(order id, watched fields present) of a change event."""
    fields = (event.get("updateDescription") or {}).get("updatedFields") or event.get("fullDocument") or {}
    return event["documentKey"]["_id"], fields


async def gift_states(db: AsyncDatabase, order_ids: Iterable[str]) -> list[dict]:
    """`{_id, status, version, joined_count}` of these gifts (the polling read)."""
    ids = list(order_ids)
    found: list[dict] = []
    projection = {field: 1 for field in WATCHED_FIELDS}
    for start in range(0, len(ids), IN_CHUNK):
        found += await db.gifts.find({"_id": {"$in": ids[start:start + IN_CHUNK]}}, projection).to_list()
    return found


async def joins_of(db: AsyncDatabase, order_id: str, member_ids: Iterable[str],
                   joined_count: int) -> dict[str, dict]:
    """The join records of these members in this gift, by member id (absent: not joined).

    Few members: their records by `_id`, in small `$in` lists. Many members, compared with the gift's joins:
    all of the gift's joins through the (order_id, member_id) index, one pass."""
    wanted = set(member_ids)
    projection = {"_id": 0, "member_id": 1, "joined_at": 1, "outcome": 1, "item_index": 1}
    found: dict[str, dict] = {}
    if joined_count <= SCAN_FACTOR * len(wanted):
        async for join in db.joins.find({"order_id": order_id}, projection):
            if join["member_id"] in wanted:
                found[join["member_id"]] = join
        return found
    ids = [join_id(order_id, m) for m in wanted]
    for start in range(0, len(ids), IN_CHUNK):
        async for join in db.joins.find({"_id": {"$in": ids[start:start + IN_CHUNK]}}, projection):
            found[join["member_id"]] = join
    return found
