"""`proofs`: each drawn gift's frozen participant list, stored once at the freeze; and
`draw_results`: its beacon round and winners, stored once when the round is verified. A proof is
the two together.

Why two documents: the result is inserted, not written into the frozen proof. On the embedded
engine an update rewrites the whole document and every index entry (a 100,000-participant list
is megabytes), and costs a batch of 200 proofs about 0.7 ms each against 0.05 ms for an insert
(bench/engine_writes.py). Proofs completed in place by earlier versions still read as before."""
from pymongo.asynchronous.database import AsyncDatabase

from lottery.storage.slices import in_slices
from lottery.storage.writes import insert_new

RESULT_FIELDS = ("beacon", "winners", "winner_member_ids")


async def get(db: AsyncDatabase, order_id: str) -> dict | None:
    """The stored proof, with its result once drawn (and the winners' member ids, which never
    leave the server)."""
    proof = await db.proofs.find_one({"_id": order_id})
    return None if proof is None else (await with_results(db, [proof]))[order_id]


async def exists(db: AsyncDatabase, order_id: str) -> bool:
    """Whether the gift has a frozen proof (without reading its list)."""
    return await db.proofs.count_documents({"_id": order_id}, limit=1) == 1


async def with_results(db: AsyncDatabase, proofs: list[dict]) -> dict[str, dict]:
    """These frozen proofs, each with its result where one is stored. By order id."""
    found = {p["_id"]: p for p in proofs}
    pending = [o for o, p in found.items() if "winners" not in p]  # (completed in place: earlier versions)
    for ids in in_slices(pending):
        async for result in db.draw_results.find({"_id": {"$in": ids}}):
            found[result["_id"]] = {**found[result["_id"]], **{f: result[f] for f in RESULT_FIELDS}}
    return found


async def participants(db: AsyncDatabase, order_id: str) -> set[str] | None:
    """The gift's frozen participant list (pseudonyms), or None if it has no proof."""
    proof = await db.proofs.find_one({"_id": order_id}, {"participants": 1})
    return None if proof is None else set(proof["participants"])


async def listed(db: AsyncDatabase, order_id: str, pseudonyms: list[str]) -> set[str]:
    """Which of these participants the gift's frozen list holds (one small read each)."""
    return {p for p in pseudonyms if await db.proofs.count_documents({"_id": order_id, "participants": p}, limit=1)}


async def save(db: AsyncDatabase, proofs: list[dict]) -> dict[str, dict]:
    """Store each frozen proof once; a resumed draw gets the one stored first, with its result
    if it has one. By order id."""
    saved = {p["_id"]: p for p in proofs}
    stored_before = [proofs[i]["_id"] for i in await insert_new(db.proofs, proofs)]
    for ids in in_slices(stored_before):
        saved.update(await with_results(db, [doc async for doc in db.proofs.find({"_id": {"$in": ids}})]))
    return saved


async def complete(db: AsyncDatabase, proofs: list[dict]) -> dict[str, dict]:
    """Store the result (beacon and winners) of these frozen proofs, once: a proof another
    process completed first keeps its own (the one read back). By order id."""
    results = [{"_id": p["_id"], **{f: p[f] for f in RESULT_FIELDS}} for p in proofs]
    completed = {p["_id"]: p for p in proofs}
    stored_before = [results[i]["_id"] for i in await insert_new(db.draw_results, results)]
    frozen = [{k: v for k, v in completed[o].items() if k not in RESULT_FIELDS} for o in stored_before]
    completed.update(await with_results(db, frozen))
    return completed
