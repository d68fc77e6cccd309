"""Resolving login keys: keys arriving together are read together, each gets its own member,
a resolved key (or one this process issued) is answered from memory until it expires, and an
unknown one is never remembered."""
import asyncio
from datetime import timedelta

import pymongo
import pytest

from lottery import clock
from lottery.accounts import Accounts, key_digest
from lottery.errors import LoginExpired
from lottery.key_lookup import BATCH, KeyLookup
from lottery.storage import login_keys


async def issue(db, member_id: str, lifetime: timedelta = timedelta(days=1)) -> str:
    digest = key_digest(f"key-of-{member_id}")
    await login_keys.insert(db, digest, member_id, clock.utcnow() + lifetime)
    return digest


@pytest.mark.gen_test
async def test_a_burst_of_keys_is_read_in_batches_and_each_gets_its_own_member(db):
    members = [f"m{i}" for i in range(100)]
    digests = [await issue(db, m) for m in members]
    lookup = KeyLookup(db)
    answers = await asyncio.gather(*(lookup.member_for(d) for d in digests + digests[:10]))
    assert answers == members + members[:10]
    assert lookup.reads == -(-100 // BATCH)  # 100 keys, 4 reads: not 110


@pytest.mark.gen_test
async def test_a_resolved_key_is_answered_from_memory_until_it_expires(db, monkeypatch):
    digest = await issue(db, "m1", lifetime=timedelta(minutes=1))
    lookup = KeyLookup(db)
    assert await lookup.member_for(digest) == "m1"
    assert await lookup.member_for(digest) == "m1" and lookup.reads == 1
    later = clock.utcnow() + timedelta(minutes=2)
    monkeypatch.setattr(clock, "utcnow", lambda: later)
    assert await lookup.member_for(digest) is None  # expired: read again, and refused
    assert lookup.reads == 2


@pytest.mark.gen_test
async def test_memory_holds_a_key_no_longer_than_remember(db, monkeypatch):
    digest = await issue(db, "m1")
    lookup = KeyLookup(db, remember=timedelta(seconds=30))
    assert await lookup.member_for(digest) == "m1"
    await db.login_keys.delete_many({})  # gone from the database (say, removed by an operator)
    later = clock.utcnow() + timedelta(seconds=31)
    monkeypatch.setattr(clock, "utcnow", lambda: later)
    assert await lookup.member_for(digest) is None


@pytest.mark.gen_test
async def test_an_unknown_key_is_not_remembered_so_a_key_issued_elsewhere_works_at_once(db):
    lookup = KeyLookup(db)
    digest = key_digest("issued-by-another-process")
    assert await lookup.member_for(digest) is None
    await login_keys.insert(db, digest, "m2", clock.utcnow() + timedelta(days=1))
    assert await lookup.member_for(digest) == "m2"


@pytest.mark.gen_test
async def test_a_failed_read_fails_its_waiters_within_the_budget_and_the_next_burst_is_read_again(db, monkeypatch):
    digests = [await issue(db, f"m{i}") for i in range(5)]
    lookup = KeyLookup(db)
    real = login_keys.members_for

    async def unreachable(*args):
        raise pymongo.errors.ServerSelectionTimeoutError("no primary")
    monkeypatch.setattr(login_keys, "members_for", unreachable)
    results = await asyncio.gather(*(lookup.member_for(d) for d in digests), return_exceptions=True)
    assert all(isinstance(r, pymongo.errors.ServerSelectionTimeoutError) for r in results)
    monkeypatch.setattr(login_keys, "members_for", real)
    assert await asyncio.gather(*(lookup.member_for(d) for d in digests)) == [f"m{i}" for i in range(5)]


@pytest.mark.gen_test
async def test_a_key_this_process_issued_is_answered_without_a_read_until_it_expires(db, monkeypatch):
    accounts = Accounts(db, None, key_lifetime=timedelta(minutes=1))
    member_id = await accounts.ensure_member("o_fresh")
    login_key = await accounts.issue_key(member_id)
    assert await accounts.authenticate(login_key) == member_id
    assert accounts.keys.reads == 0
    later = clock.utcnow() + timedelta(minutes=2)
    monkeypatch.setattr(clock, "utcnow", lambda: later)
    with pytest.raises(LoginExpired):  # expired: read again, and refused
        await accounts.authenticate(login_key)
