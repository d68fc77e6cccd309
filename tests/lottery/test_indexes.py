"""An index no query needs any more is dropped at startup: every index costs each write."""
import logging

import pytest

from lottery.storage.connection import ensure_indexes


async def keys_of(collection) -> list[list[tuple[str, int]]]:
    return [list(index["key"].items()) async for index in await collection.list_indexes()]


@pytest.mark.gen_test
async def test_the_index_an_earlier_version_kept_for_lapsed_notifications_is_dropped(db):
    await db.notifications.create_index([("status", 1), ("lease_until", 1)])
    await ensure_indexes(db)
    assert [("status", 1), ("lease_until", 1)] not in await keys_of(db.notifications)
    # Lapsed entries are found by their next attempt, which a claim moves to its lease's end.
    assert [("status", 1), ("next_attempt_at", 1)] in await keys_of(db.notifications)
    await ensure_indexes(db)  # and again, with nothing to drop


@pytest.mark.gen_test
async def test_a_gifts_index_no_query_needs_is_named_at_startup_for_the_operator_to_drop(db, caplog):
    # Not dropped: a process of the version before still reads by it during a rollout.
    await db.gifts.create_index([("lease_owner", 1)], sparse=True)
    with caplog.at_level(logging.WARNING, logger="lottery.storage.gifts"):
        await ensure_indexes(db)
    assert [r.getMessage() for r in caplog.records] == [
        "gifts index lease_owner_1 is no longer used: drop it once no older version runs (docs/deploy.md)"]
    assert [("lease_owner", 1)] in await keys_of(db.gifts)
