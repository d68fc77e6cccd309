"""Index upkeep shared by the collections: an index no query needs any more goes, since every
index costs each write on the collection (on the embedded engine, about as much as the
document's own write; docs/benchmarks.md). It is dropped at startup where a process of the
version before can do without it, and named for the operator to drop after the rollout where
that process still reads by it."""
from pymongo.asynchronous.collection import AsyncCollection


async def drop_retired(collection: AsyncCollection, keys: list[tuple[str, int]]) -> bool:
    """Drop the index on these keys (in order) if an earlier version made it; True if it did."""
    names = await present(collection, [keys])
    for name in names:
        await collection.drop_index(name)
    return bool(names)


async def present(collection: AsyncCollection, retired: list[list[tuple[str, int]]]) -> list[str]:
    """The names of those of these indexes (keys in order) that exist."""
    return [index["name"] async for index in await collection.list_indexes()
            if list(index["key"].items()) in retired]
