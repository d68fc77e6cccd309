"""Insert-once writes shared by the collections whose documents have stable ids."""
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError

DUPLICATE_KEY = 11000


async def insert_new(collection: AsyncCollection, docs: list[dict]) -> list[int]:
    """Insert the documents whose `_id` is not taken yet; returns the positions (in `docs`) of
    those that already existed. Any error other than a duplicate key is raised."""
    if not docs:
        return []
    try:
        await collection.insert_many(docs, ordered=False)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(error.get("code") != DUPLICATE_KEY for error in errors):
            raise
        return [error["index"] for error in errors]
    return []
