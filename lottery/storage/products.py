"""`products`: the shop's catalogue. A product's `stock` is what can still be sold; an order
holds stock from creation until it is paid (a sale) or closed (given back), recorded in the
product's `held` map under the order id, so every stock move is one conditional update keyed by
the order and a retry or a second process changes nothing twice:

    hold:    stock >= q and no hold for the order  ->  stock -= q, held[order] = q
    release: held[order] == q                       ->  stock += q, held[order] removed
    sell:    held[order] exists                     ->  held[order] removed (the stock stays sold)

No product is ever oversold: `stock` only goes down by a conditional update that checked it."""
from datetime import datetime

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from lottery.storage.slices import in_slices

# What the public sees of a product (not the holds).
PUBLIC = {"held": 0}


async def ensure_indexes(db: AsyncDatabase) -> None:
    await db.products.create_index([("on_sale", ASCENDING), ("_id", ASCENDING)])
    await db.products.create_index([("category_id", ASCENDING), ("on_sale", ASCENDING), ("_id", ASCENDING)])


async def insert(db: AsyncDatabase, product: dict) -> None:
    await db.products.insert_one(product)


async def get(db: AsyncDatabase, product_id: str) -> dict | None:
    return await db.products.find_one({"_id": product_id}, PUBLIC)


async def get_many(db: AsyncDatabase, product_ids: list[str]) -> dict[str, dict]:
    found: dict[str, dict] = {}
    for ids in in_slices(product_ids):
        found.update({p["_id"]: p async for p in db.products.find({"_id": {"$in": ids}}, PUBLIC)})
    return found


async def update(db: AsyncDatabase, product_id: str, fields: dict, now: datetime) -> bool:
    result = await db.products.update_one({"_id": product_id}, {"$set": {**fields, "updated_at": now}})
    return result.matched_count == 1


async def on_sale_page(db: AsyncDatabase, category_id: str | None, after: str, limit: int) -> list[dict]:
    """Products on sale (of a category), in id order after the cursor `after`."""
    query = {"on_sale": True, "_id": {"$gt": after}}
    if category_id is not None:
        query = {"category_id": category_id, **query}
    cursor = db.products.find(query, PUBLIC).sort("_id", ASCENDING).limit(limit)
    return await cursor.to_list()


async def page_all(db: AsyncDatabase, after: str, limit: int) -> list[dict]:
    """Every product in id order after `after`, on sale or not (the operator's list)."""
    cursor = db.products.find({"_id": {"$gt": after}}).sort("_id", ASCENDING).limit(limit)
    return await cursor.to_list()


async def hold(db: AsyncDatabase, product_id: str, order_id: str, quantity: int) -> bool:
    """Take `quantity` from stock for this order, if the product is on sale and has it; True
    also when the order already holds it (a retry)."""
    result = await db.products.update_one(
        {"_id": product_id, "on_sale": True, "stock": {"$gte": quantity}, f"held.{order_id}": {"$exists": False}},
        {"$inc": {"stock": -quantity}, "$set": {f"held.{order_id}": quantity}})
    if result.modified_count:
        return True
    return await db.products.count_documents({"_id": product_id, f"held.{order_id}": quantity}, limit=1) == 1


async def release(db: AsyncDatabase, product_id: str, order_id: str, quantity: int) -> bool:
    """Give an unpaid order's held stock back, once."""
    result = await db.products.update_one({"_id": product_id, f"held.{order_id}": quantity},
                                          {"$inc": {"stock": quantity}, "$unset": {f"held.{order_id}": ""}})
    return result.modified_count == 1


async def sell(db: AsyncDatabase, product_id: str, order_id: str) -> None:
    """A paid order's hold becomes a sale: the hold goes, the stock stays taken."""
    await db.products.update_one({"_id": product_id, f"held.{order_id}": {"$exists": True}},
                                 {"$unset": {f"held.{order_id}": ""}})
