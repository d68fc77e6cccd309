"""Writes shared by the collections: insert-once for documents with stable ids, and one
update giving many documents each its own values."""
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError

from lottery.storage.slices import in_slices

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


# Documents set by one `set_each` update: each finds itself in the update's lists, so they stay short.
SET_EACH_SLICE = 50


async def set_each(collection: AsyncCollection, values: dict[Any, dict], where: dict | None = None,
                   same: dict | None = None, also: dict | None = None, unset: tuple[str, ...] = ()) -> int:
    """Give each document (by `_id`) its own field values, where the plain conditions `where`
    also hold: one update per SET_EACH_SLICE documents that set the same fields, each document
    picking its values from the update's lists by its position in the id list (a pipeline
    update, MongoDB 4.2+). `same`: values every document gets; `also`: aggregation expressions
    every document gets (say, a version step); `unset`: fields every document loses. Returns how
    many documents changed. Each document's write is atomic; a duplicate key raises as
    `update_many` does (DuplicateKeyError), after the documents before it.

    Why not a bulk of one update per document: on the embedded engine every write statement has
    a fixed cost of several milliseconds (docs/benchmarks.md), so a step's or a batch's writes
    cost one statement instead of one each."""
    shapes: dict[tuple[str, ...], list] = {}
    for doc_id, fields in values.items():
        shapes.setdefault(tuple(fields), []).append(doc_id)
    common = {**{field: {"$literal": value} for field, value in (same or {}).items()}, **(also or {})}
    modified = 0
    for names, all_ids in shapes.items():
        for ids in in_slices(all_ids, SET_EACH_SLICE):
            position = {"$indexOfArray": [{"$literal": ids}, "$_id"]}
            stage = {name: {"$arrayElemAt": [{"$literal": [values[i][name] for i in ids]}, position]}
                     for name in names}
            pipeline: list[dict] = [{"$set": {**stage, **common}}]
            if unset:
                pipeline.append({"$unset": list(unset)})
            result = await collection.update_many({"_id": {"$in": ids}, **(where or {})}, pipeline)
            modified += result.modified_count
    return modified
