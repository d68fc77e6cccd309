"""Retention by TTL index: MongoDB (and the embedded engine) remove a document once its date
field is older than the index's `expireAfterSeconds`. Documents without the field stay."""
from datetime import timedelta

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import OperationFailure

# The server refuses an index whose options differ from the existing one's (IndexOptionsConflict).
OPTIONS_CONFLICT = {85, 86}


async def ensure_ttl(collection: AsyncCollection, field: str, keep: timedelta) -> None:
    """A TTL index on `field` keeping documents for `keep`; a changed period is applied in place."""
    seconds = int(keep.total_seconds())
    try:
        await collection.create_index([(field, ASCENDING)], expireAfterSeconds=seconds)
    except OperationFailure as exc:
        if exc.code not in OPTIONS_CONFLICT:
            raise
        await collection.database.command("collMod", collection.name,
                                          index={"keyPattern": {field: 1}, "expireAfterSeconds": seconds})
