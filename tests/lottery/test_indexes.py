"""An index no query needs any more is dropped at startup: every index costs each write."""
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
