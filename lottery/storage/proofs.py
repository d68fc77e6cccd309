"""`proofs`: each drawn gift's frozen participant list and fairness proof, stored once."""
from pymongo.asynchronous.database import AsyncDatabase

from lottery.storage.slices import in_slices
from lottery.storage.writes import insert_new, set_each


async def get(db: AsyncDatabase, order_id: str) -> dict | None:
    """The stored proof (with the winners' member ids, which never leave the server)."""
    return await db.proofs.find_one({"_id": order_id})


async def participants(db: AsyncDatabase, order_id: str) -> set[str] | None:
    """The gift's frozen participant list (pseudonyms), or None if it has no proof."""
    proof = await db.proofs.find_one({"_id": order_id}, {"participants": 1})
    return None if proof is None else set(proof["participants"])


async def listed(db: AsyncDatabase, order_id: str, pseudonyms: list[str]) -> set[str]:
    """Which of these participants the gift's frozen list holds (one small read each)."""
    return {p for p in pseudonyms if await db.proofs.count_documents({"_id": order_id, "participants": p}, limit=1)}


async def save(db: AsyncDatabase, proofs: list[dict]) -> dict[str, dict]:
    """Store each frozen proof once; a resumed draw gets the one stored first. By order id."""
    saved = {p["_id"]: p for p in proofs}
    stored_before = [proofs[i]["_id"] for i in await insert_new(db.proofs, proofs)]
    for ids in in_slices(stored_before):
        saved.update({doc["_id"]: doc async for doc in db.proofs.find({"_id": {"$in": ids}})})
    return saved


async def complete(db: AsyncDatabase, proofs: list[dict]) -> dict[str, dict]:
    """Add their beacon and winners to frozen proofs, once: a proof another process completed
    first keeps its own (the one read back). By order id."""
    if not proofs:
        return {}
    await set_each(db.proofs, {p["_id"]: {"beacon": p["beacon"], "winners": p["winners"],
                                          "winner_member_ids": p["winner_member_ids"]} for p in proofs},
                   where={"winners": {"$exists": False}})
    found: dict[str, dict] = {}
    for ids in in_slices([p["_id"] for p in proofs]):
        found.update({doc["_id"]: doc async for doc in db.proofs.find({"_id": {"$in": ids}})})
    return found
