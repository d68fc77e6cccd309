"""`gifts`: one small document per gift, addressed by its order id. It holds the rules, the
counters, the claimant list of direct and open-when-full gifts, the draw's state and lease,
and after the draw its result (`draw.winners`). `version` grows on every change.

Joining is one conditional update whose filter holds every admission rule of the gift's method,
so the check and the write are one atomic step:
- direct and open-when-full gifts keep their (bounded) claimants in the document, a map from
  member id to seat (item) position, so "not already joined" and "a seat/item is left" are
  checked together with the claim (a map, not a list: a member's absence is one field lookup,
  where a list's `$nin` compares every member with every claimant, which on the embedded engine
  cost four times the rest of the update at 2,000 seats, docs/benchmarks.md);
- timed gifts have no bound, so they count in `joined_count` and rely on the unique `_id`
  of the join record for one join per member (a duplicate gives its count back).

A draw takes a gift `open|ready -> drawing` under a lease and finishes it with its result."""
import logging
import secrets
from datetime import datetime, timezone
from typing import Any, Iterable

from pymongo import ASCENDING, UpdateOne
from pymongo.asynchronous.change_stream import AsyncChangeStream
from pymongo.asynchronous.database import AsyncDatabase

from lottery import logs
from lottery.storage import indexes
from lottery.storage.slices import in_slices
from lottery.storage.writes import set_each

log = logging.getLogger(__name__)

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)  # before any due time: "has one"
# The secret seed and the claimant list stay in the database unless asked for.
PUBLIC = {"seed": 0, "claimants": 0}
# The fields the realtime channel follows. Projecting change events down to them keeps a join's
# event small (a pipeline update may report the whole claimant list as changed).
WATCHED_FIELDS = ("status", "version", "joined_count", "freeze")
VERSION_STEP = {"version": {"$add": ["$version", 1]}}  # `$inc` of a pipeline update (storage/writes.set_each)


# Indexes earlier versions made on gifts and nothing reads any more; deploy.md says when to drop
# them (an older process still running reads by them).
RETIRED_INDEXES = [[("scheduled", ASCENDING), ("due_at", ASCENDING)], [("lease_owner", ASCENDING)],
                   [("lease_until", ASCENDING)]]


async def ensure_indexes(db: AsyncDatabase) -> None:
    # Few indexes on gifts: every one is maintained on each write of a gift, each state change
    # of a draw included. The draws under way are found by their status, `drawing`, which
    # only they have; the gifts due soon by (status, due_at).
    await db.gifts.create_index([("status", ASCENDING), ("due_at", ASCENDING)])
    await db.gifts.create_index([("sender_id", ASCENDING), ("created_at", ASCENDING)])
    for name in await indexes.present(db.gifts, RETIRED_INDEXES):
        log.warning("gifts index %s is no longer used: drop it once no older version runs (docs/deploy.md)", name)


async def insert(db: AsyncDatabase, gift: dict) -> None:
    await db.gifts.insert_one(gift)


async def get(db: AsyncDatabase, order_id: str, with_secrets: bool = False) -> dict | None:
    return await db.gifts.find_one({"_id": order_id}, None if with_secrets else PUBLIC)


async def get_many(db: AsyncDatabase, order_ids: Iterable[str], projection: dict | None = None) -> list[dict]:
    """These gifts (public fields, or `projection`)."""
    found: list[dict] = []
    for ids in in_slices(order_ids):
        found += await db.gifts.find({"_id": {"$in": ids}}, projection or PUBLIC).to_list()
    return found


# Joining

async def claim(db: AsyncDatabase, gift: dict, member_ids: list[str], now: datetime,
                conditions: dict | None = None) -> bool:
    """Admit these members (distinct) to `gift` (as just read) together, in one atomic update
    whose filter holds every admission rule of its method; False if any refuses, and then none
    is admitted. The filter is plain field conditions on the gift's `_id`, which an index serves
    on any engine (an `$or` over the methods would make the embedded engine's write scan the
    whole collection), and the update is plain operators, the cheapest to apply.

    Direct and full: the members take the next seats (items), those `items_left`/`seats_left`
    (as read) names, so each one's position in `claimants` is known from the read: a direct
    gift's item, a full gift's join number. A racing claim that moved the count first makes
    this one refused; the caller reads again. The last item finishes a direct gift; the last
    seat makes a full gift `ready`.
    Timed: counted while `open_at` is still ahead by this server's clock.
    `conditions`: the entry conditions these joins met (lottery/entry.py: the group, the
    phrase's digest), held in the same filter."""
    count = len(member_ids)
    rules = {"_id": gift["_id"], "status": "open", "paid": True, "sender_id": {"$nin": member_ids}}
    rules.update(conditions or {})  # entry conditions (lottery/entry.py), plain field equalities
    update: dict[str, Any] = {"$inc": {"joined_count": count, "version": count}, "$set": {"updated_at": now}}
    if gift["method"] in ("direct", "full"):
        counter = "items_left" if gift["method"] == "direct" else "seats_left"
        left = gift[counter]
        if not 0 < count <= left:
            return False
        # `$type`: a claim never writes into the list of a gift an earlier version stored
        rules.update({counter: left, "deadline_at": {"$gt": now}, "claimants": {"$type": "object"}})
        rules.update({_claimant_field(m): {"$exists": False} for m in member_ids})
        first = first_position(gift)
        update["$set"].update({_claimant_field(m): first + i for i, m in enumerate(member_ids)})
        update["$inc"][counter] = -count
        if count == left:  # the last ones
            if gift["method"] == "direct":
                update["$set"]["status"] = "finished"
            else:  # the draw logs as the join that took the last seat
                update["$set"].update(status="ready", ready_request_id=logs.REQUEST_ID.get())
    else:
        rules.update(open_at={"$gt": now})
    result = await db.gifts.update_one(rules, update)
    return result.modified_count == 1


def _claimant_field(member_id: str) -> str:
    """The path of a member's entry in a gift's claimant map. Member ids are the server's own
    (accounts.member_id_for); anything that could be read as a path or operator is refused."""
    if not member_id or "." in member_id or member_id.startswith("$"):
        raise ValueError(f"not a member id: {member_id!r}")
    return f"claimants.{member_id}"


def claimants(gift: dict) -> list[str]:
    """A direct or full gift's claimants (as read with the claimant map) in seat order."""
    seats = gift["claimants"]
    if isinstance(seats, list):  # stored by an earlier version (adopt_claimant_list)
        return list(seats)
    return sorted(seats, key=seats.__getitem__)


# A claimant list in seat order made the map of its positions, in one atomic update.
_LIST_TO_MAP = [{"$set": {"claimants": {"$arrayToObject": {"$map": {
    "input": {"$range": [0, {"$size": "$claimants"}]}, "as": "i",
    "in": {"k": {"$arrayElemAt": ["$claimants", "$$i"]}, "v": "$$i"}}}}}}]


async def adopt_claimant_list(db: AsyncDatabase, order_id: str) -> bool:
    """A gift stored by an earlier version keeps its claimants as a list in seat order: it gets
    the map this version keeps instead (member id -> position). False if it has the map."""
    result = await db.gifts.update_one({"_id": order_id, "claimants": {"$type": "array"}}, _LIST_TO_MAP)
    return result.modified_count == 1


async def adopt_claimant_maps(db: AsyncDatabase) -> int:
    """The claimant list of every gift not yet drawn made a map (adopt_claimant_list), at
    startup; returns how many. A drawn gift's result is its `draw`: its old list is only looked
    at to tell a member without a join record that they joined, which their record tells first.
    A gift an earlier version's process makes during a rollout is adopted by the first claim
    it refuses (lottery/admission.py)."""
    lists = []
    for status in ("open", "ready", "drawing"):  # the status index serves each: live gifts only
        # Only whether each has a list comes back, not the claimants.
        lists += [g["_id"] async for g in db.gifts.find({"status": status}, {"listed": {"$isArray": "$claimants"}})
                  if g["listed"]]
    converted = sum([await adopt_claimant_list(db, order_id) for order_id in lists])
    if converted:
        log.info("%d gifts' claimant lists converted to claimant maps", converted)
    return converted


def first_position(gift: dict) -> int:
    """The claimant position (0-based) the next claim on this direct or full gift (as read) takes."""
    if gift["method"] == "direct":
        return gift["items_total"] - gift["items_left"]
    return gift["open_number"] - gift["seats_left"]


def after_claim(gift: dict, count: int = 1) -> dict:
    """The gift as a claim of `count` members left it (exact for direct and full gifts, whose
    claim held the count it read)."""
    after = {**gift, "joined_count": gift["joined_count"] + count, "version": gift["version"] + count}
    if gift["method"] == "direct":
        after["items_left"] = gift["items_left"] - count
        after["status"] = "finished" if after["items_left"] == 0 else gift["status"]
    if gift["method"] == "full":
        after["seats_left"] = gift["seats_left"] - count
        after["status"] = "ready" if after["seats_left"] <= 0 else gift["status"]
    return after


async def bind_group(db: AsyncDatabase, order_id: str, sender_id: str, opengid: str, now: datetime) -> bool:
    """Bind a group-only gift to its group, once, by its sender."""
    result = await db.gifts.update_one(
        {"_id": order_id, "sender_id": sender_id, "entry.group_only": True, "entry.opengid": None},
        {"$set": {"entry.opengid": opengid, "updated_at": now}, "$inc": {"version": 1}})
    return result.modified_count == 1


async def release_timed_seats(db: AsyncDatabase, order_id: str, count: int = 1) -> None:
    """Give back the count of timed joins that turned out to be duplicates."""
    await db.gifts.update_one({"_id": order_id, "method": "timed"},
                              {"$inc": {"joined_count": -count, "version": 1}})


async def is_claimant(db: AsyncDatabase, order_id: str, member_id: str) -> bool:
    """Whether the member holds a seat or item of a direct/full gift (join record or not)."""
    return await db.gifts.count_documents({"_id": order_id, _claimant_field(member_id): {"$exists": True}}, limit=1) > 0


async def claimant_position(db: AsyncDatabase, order_id: str, member_id: str) -> int | None:
    """The member's position among a direct/full gift's claimants (their item, or join number
    less one), or None if they hold no seat or item (join record or not)."""
    field = _claimant_field(member_id)
    gift = await db.gifts.find_one({"_id": order_id, field: {"$exists": True}}, {field: 1})
    return None if gift is None else gift["claimants"][member_id]


async def settle_wish(db: AsyncDatabase, order_id: str, text: str, shown: bool, verdict: str, now: datetime) -> bool:
    """A hidden wish's re-check: shown now (it replaces the default wish others saw), or kept
    hidden with its verdict; only while `text` is still the gift's hidden wish."""
    if shown:
        update = {"$set": {"wish": text, "updated_at": now}, "$unset": {"wish_pending": "", "wish_check": ""},
                  "$inc": {"version": 1}}
    else:
        update = {"$set": {"wish_check": verdict}}
    result = await db.gifts.update_one({"_id": order_id, "wish_pending": text}, update)
    return result.modified_count == 1


async def update_sender(db: AsyncDatabase, member_id: str, name: str, avatar: str, now: datetime) -> int:
    """The denormalised `sender` copy on the member's gifts follows the profile (the
    (sender_id, created_at) index); each changed gift's `version` grows."""
    sender = {"name": name, "avatar": avatar}  # stored in this key order, so equality compares it
    result = await db.gifts.update_many(
        {"sender_id": member_id, "sender": {"$ne": sender}},
        {"$set": {"sender": sender, "updated_at": now}, "$inc": {"version": 1}})
    return result.modified_count


# Scheduling

async def due_by(db: AsyncDatabase, until: datetime, limit: int = 1000) -> list[dict]:
    """Open gifts due (timed: open_at; full: deadline) by `until`, soonest first (the (status,
    due_at) index): those the scheduler gives a job now."""
    cursor = db.gifts.find({"status": "open", "due_at": {"$gte": EPOCH, "$lte": until}},
                           {"_id": 1, "due_at": 1, "method": 1}).sort("due_at", ASCENDING).limit(limit)
    return await cursor.to_list()


# The draw

def due_conditions(now: datetime, early: bool) -> list[dict]:
    """The ways a gift's draw is due now, each a plain filter an index serves: a stalled draw's
    lease lapsed, the last seat taken, its time come, or (`early`, the sender's request) any
    open full or timed gift. The stalled ones first: that filter reads every drawing gift, and
    before the others are taken those are only the draws under way elsewhere."""
    due = [{"status": "drawing", "lease_until": {"$lt": now}},
           {"status": "ready"},
           {"status": "open", "due_at": {"$gte": EPOCH, "$lte": now}}]  # not the gifts with none
    if early:
        due.append({"status": "open", "method": {"$in": ["full", "timed"]}})
    return due


async def take(db: AsyncDatabase, order_ids: list[str] | None, token: str, now: datetime,
               lease_until: datetime, early: bool = False) -> list[dict]:
    """Move the due gifts among these (None: every due gift) to `drawing` under this batch's
    lease token, and return them (with their secret seeds). Gifts not due, or drawn under a
    live lease, are left alone. One update per way of being due: no `$or`, whose write would scan
    the collection on the embedded engine. (No id list when none is needed: the embedded
    engine's `$in` is slow on long lists.)"""
    chosen = {} if order_ids is None else {"_id": {"$in": order_ids}}
    taken = 0
    for condition in due_conditions(now, early):
        result = await db.gifts.update_many(
            {**chosen, **condition},
            {"$set": {"status": "drawing", "lease_owner": token, "lease_until": lease_until,
                      "updated_at": now}, "$inc": {"version": 1}})
        taken += result.modified_count
    if not taken:
        return []
    return await db.gifts.find({"status": "drawing", "lease_owner": token}).to_list()


async def extend_lease(db: AsyncDatabase, token: str, lease_until: datetime) -> None:
    """Renew the lease on the gifts still drawing under this token."""
    await db.gifts.update_many({"status": "drawing", "lease_owner": token}, {"$set": {"lease_until": lease_until}})


async def publish_freezes(db: AsyncDatabase, freezes: dict[str, dict]) -> None:
    """Show each drawing gift's frozen participant list (`freeze`: its hash, size, time and
    beacon round) once; its version grows, so the waiting pages get it."""
    await set_each(db.gifts, {order_id: {"freeze": freeze} for order_id, freeze in freezes.items()},
                   where={"status": "drawing", "freeze": {"$exists": False}}, also=VERSION_STEP)


async def hand_back(db: AsyncDatabase, order_ids: list[str], now: datetime) -> None:
    """End this process's lease on these drawing gifts now (their beacon round has not come):
    the next sweep resumes them."""
    for ids in in_slices(order_ids):
        await db.gifts.update_many({"_id": {"$in": ids}, "status": "drawing"}, {"$set": {"lease_until": now}})


async def joined_counts(db: AsyncDatabase, order_ids: list[str]) -> dict[str, int]:
    return {doc["_id"]: doc["joined_count"] for doc in await get_many(db, order_ids, {"joined_count": 1})}


async def finish(db: AsyncDatabase, summaries: dict[str, dict], now: datetime,
                 refunds: dict[str, dict[int, int]] | None = None) -> list[str]:
    """Commit the results; returns the gifts this call moved to `finished`. A bought gift's
    items nobody won (`refunds`: order id -> item index -> price) are registered for refund in
    the same update (storage/orders.py), so they are once and only if the gift finished."""
    token = secrets.token_hex(8)
    finished = {"status": "finished", "opened_at": now, "items_left": 0, "finish_token": token, "updated_at": now}
    refunds = {order_id: prices for order_id, prices in (refunds or {}).items() if prices and order_id in summaries}
    # One update for the gifts with nothing to refund (most of a batch due together), one each for the others.
    modified = await set_each(db.gifts, {o: {"draw": s} for o, s in summaries.items() if o not in refunds},
                              where={"status": "drawing"}, unset=("lease_owner", "lease_until"),
                              same=finished, also=VERSION_STEP)
    if refunds:
        updates = []
        for order_id, prices in refunds.items():
            parts = refund_items(prices, "not_won", now)
            updates.append(UpdateOne({"_id": order_id, "status": "drawing"},
                                     {"$set": {**finished, "draw": summaries[order_id], **parts["$set"]},
                                      "$unset": {"lease_owner": "", "lease_until": ""},
                                      "$inc": {"version": 1, **parts["$inc"]}}))
        modified += (await db.gifts.bulk_write(updates, ordered=False)).modified_count
    if modified == len(summaries):
        return list(summaries)
    found = await get_many(db, list(summaries), {"finish_token": 1})
    return [doc["_id"] for doc in found if doc.get("finish_token") == token]


def refund_items(prices: dict[int, int], cause: str, now: datetime) -> dict:
    """The update parts that register these items (index -> price) of a bought gift for refund,
    for an update that happens once. (The refunds' own queries are in storage/orders.py.)"""
    return {"$set": {f"order.refund_items.{i}": {"price": price, "cause": cause, "at": now}
                     for i, price in prices.items()},
            "$inc": {"order.refund_unbatched": len(prices)}}


async def drawn_winners(db: AsyncDatabase, order_ids: list[str]) -> dict[str, list[str]]:
    """The committed winners (member ids in item order) of these finished gifts."""
    found = await get_many(db, order_ids, {"status": 1, "draw.winners": 1})
    return {doc["_id"]: doc["draw"]["winners"] for doc in found if doc.get("status") == "finished"}


# Realtime

def watch_pipeline() -> list[dict[str, Any]]:
    """Inserts and updates of gifts, reduced to the watched fields (`_id`, the resume token,
    must stay)."""
    project: dict[str, Any] = {"operationType": 1, "documentKey": 1}
    for field in WATCHED_FIELDS:
        project[f"updateDescription.updatedFields.{field}"] = 1
        project[f"fullDocument.{field}"] = 1
    return [{"$match": {"operationType": {"$in": ["insert", "update", "replace"]}}},
            {"$project": project}]


async def watch(db: AsyncDatabase, resume_after: dict | None, max_await_ms: int = 1000) -> AsyncChangeStream:
    """One change stream on `gifts`, resumed after `resume_after` when given."""
    return await db.gifts.watch(watch_pipeline(), resume_after=resume_after, max_await_time_ms=max_await_ms)


def change_fields(event: dict) -> tuple[str, dict]:
    """(order id, watched fields present) of a change event."""
    fields = (event.get("updateDescription") or {}).get("updatedFields") or event.get("fullDocument") or {}
    return event["documentKey"]["_id"], fields


async def states(db: AsyncDatabase, order_ids: Iterable[str]) -> list[dict]:
    """`{_id, status, version, joined_count}` of these gifts (the realtime resync and poll)."""
    return await get_many(db, order_ids, {field: 1 for field in WATCHED_FIELDS})
